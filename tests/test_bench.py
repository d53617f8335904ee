"""deltaprop.bench's data definitions, shared with the peers' scripts, and how a timed call is sized.

No timing is asserted: the sizing is checked on a task whose clock is simulated.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from deltaprop import bench
from deltaprop.bench import data, remote, timing
from deltaprop.contract import DEFAULT_ETA

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")


def load_by_path(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_data_module_imports_only_the_standard_library_and_numpy():
    code = (f"import importlib.util, json, sys\n"
            f"before = set(sys.modules)\n"
            f"spec = importlib.util.spec_from_file_location('bench_data', {data.__file__!r})\n"
            f"spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
            f"new = {{n.split('.')[0] for n in set(sys.modules) - before}}\n"
            f"print(json.dumps(sorted(new - set(sys.stdlib_module_names))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout) == ["numpy"]


def test_the_benchmarks_eta_is_the_default_learning_rate():
    assert data.ETA == DEFAULT_ETA


def test_make_data_is_frozen_and_knows_only_the_standard_shapes():
    X, T = data.make_data("1-3-1", "float64")
    assert X.shape == (50, 1) and np.array_equal(T, X**2)
    X, T = data.make_data("64-32-10")
    digits, y = data.digits_data()
    assert X.dtype == np.float32 and np.array_equal(X, digits.astype(np.float32)) and (T.argmax(1) == y).all()
    X, T = data.make_data("784-128-10-sparse", seed=3)
    assert X.shape == (data.N_RANDOM, 784) and np.array_equal(X, data.make_data("784-128-10-sparse", seed=3)[0])
    assert 0.75 < np.mean(X == 0) < 0.85 and (T.sum(axis=1) == 1).all()
    with pytest.raises(ValueError, match="unknown shape '2-2-2'"):
        data.make_data("2-2-2")


def test_a_problem_file_gives_back_its_samples_and_weights(tmp_path):
    rng = np.random.RandomState(0)
    layers = [(rng.rand(4, 3), rng.rand(3)), (rng.rand(3, 2), rng.rand(2))]
    X, T = rng.rand(5, 4), np.eye(2)[[0, 1, 1, 0, 1]]
    data.save_problem(tmp_path / "p.npz", X, T, layers)
    X2, T2, layers2 = data.load_problem(tmp_path / "p.npz")
    assert np.array_equal(X2, X) and np.array_equal(T2, T) and len(layers2) == 2
    for (W, b), (W2, b2) in zip(layers, layers2, strict=True):
        assert np.array_equal(W, W2) and np.array_equal(b, b2)
    data.save_layers(tmp_path / "w.npz", layers[:1])
    assert [W.shape for W, _ in data.load_layers(tmp_path / "w.npz")] == [(4, 3)]
    assert np.array_equal(data.load_order(tmp_path / "p.npz"), np.arange(5))  # no order: every sample, in order
    data.save_problem(tmp_path / "q.npz", X, T, layers, order=[4, 0, 3])
    order = data.load_order(tmp_path / "q.npz")
    assert order.dtype == np.int64 and order.tolist() == [4, 0, 3]


def test_the_peer_scripts_load_the_data_module_of_this_package():
    server = remote.PEER_SCRIPT
    assert os.path.samefile(os.path.join(os.path.dirname(os.path.dirname(server)), "data.py"), data.__file__)
    # the folder the peers python runs the server from holds nothing of deltaprop's to import
    assert set(os.listdir(os.path.dirname(server))) - {"__pycache__"} == {"__init__.py", "epoch_server.py"}


@pytest.fixture
def thread_env(monkeypatch):
    """Restore the thread-count variables the scripts set at import."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        if var in os.environ:
            monkeypatch.setenv(var, os.environ[var])
        else:
            monkeypatch.delenv(var, raising=False)


def test_peer_torch_trains_on_the_same_data_as_deltaprop(thread_env):
    peer_torch = load_by_path("peer_torch", os.path.join(TOOLS, "peer_torch.py"))
    assert peer_torch.data.SHAPES == bench.SHAPES and peer_torch.data.ETA == data.ETA
    for shape in ("1-3-1", "784-128-10-sparse"):
        for ours, theirs in zip(bench.make_data(shape), peer_torch.data.make_data(shape), strict=True):
            assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(TOOLS) if f.endswith(".py")))
def test_every_tool_script_imports_without_running(name, thread_env):
    """The scripts run under ``__main__`` only; their optional libraries load when they run."""
    module = load_by_path(name[:-3], os.path.join(TOOLS, name))
    assert module.__doc__ and hasattr(module, "main")


class SimulatedTask(timing.Timed):
    """Each run "takes" ``seconds_per_epoch`` per epoch, plus a fixed cost per call."""

    def __init__(self, seconds_per_epoch, per_call=0.0):
        self.name, self.samples_per_epoch = "simulated", 50
        self.seconds_per_epoch, self.per_call = seconds_per_epoch, per_call

    def run(self):
        return self.per_call + self.epochs * self.seconds_per_epoch


@pytest.mark.parametrize("min_time", [0.0, 0.2])
def test_every_timed_call_runs_at_least_the_minimum_call_time(min_time):
    task = SimulatedTask(1e-5, per_call=5e-4)
    rates = timing.compare([task], repeats=1, min_time=min_time)
    assert task.run() >= max(min_time, timing.MIN_CALL_SECONDS)
    # the fixed cost of a call is then a small part of the figure: within 10 % of the work's rate
    assert rates["simulated"] == pytest.approx(task.samples_per_epoch / task.seconds_per_epoch, rel=0.1)
