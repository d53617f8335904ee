"""Ctrl-C (a real SIGINT, sent to a subprocess) stops training within half a second.

The compiled kernels run without the GIL and never look at signals; Python raises
KeyboardInterrupt only when a compiled call returns. The engine therefore cuts training into
calls of ``deltaprop.engine.buffers.WORK_PER_CALL`` weight visits (tens of milliseconds). The network here,
784-1024-10 in float64, is one whose single epoch of 3,000 samples takes several seconds per
call when the work is cut by samples instead (one call per epoch, or per 20,000 samples).

Latency is measured on the monotonic clock the two processes share: the parent reads it just
before ``os.kill``, the child when KeyboardInterrupt reaches it (or when the estimator, which
keeps scikit-learn's contract of stopping with a warning, returns).
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import BACKENDS

#: the most a Ctrl-C may wait for the interrupted compiled call to end (calls are sized to a few
#: tens of milliseconds of work, so half a second leaves room for a loaded machine)
LATENCY = 0.5

def _default_sigint():
    """In the child, before exec: SIGINT back to its default action. A shell starts background
    jobs with SIGINT ignored, and Python leaves an inherited 'ignore' alone, so without this a
    test run in the background would send signals that nobody hears."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
           NUMBA_NUM_THREADS="1", PYTHONUNBUFFERED="1")

DATA = """
import time, warnings
import numpy as np
rng = np.random.RandomState(0)
X = rng.uniform(0, 1, (3000, 784))
Y = np.eye(10)[rng.randint(0, 10, 3000)]
"""

MLP_FIT = DATA + """
from deltaprop import MLP
net = MLP([784, 1024, 10], "tanh", "softmax", "cross_entropy", backend=BACKEND, random_state=0)
net.fit(X[:5], Y[:5], epochs=1, lr=0.01)  # compile (or load) the kernel first
w, curve = net.w.copy(), list(net.loss_curve_)
print("ready", flush=True)
try:
    net.fit(X, Y, epochs=100, lr=0.01, n_jobs=N_JOBS)
except KeyboardInterrupt:
    print("interrupted", time.monotonic(), flush=True)
    print("restored" if net.w.tobytes() == w.tobytes() and net.loss_curve_ == curve else "CHANGED")
"""

PARTIAL_FIT = DATA + """
from deltaprop import MLPClassifier
y = Y.argmax(axis=1)
est = MLPClassifier((1024,), solver="adam", batch_size=1, backend=BACKEND, random_state=0)
est.partial_fit(X[:20], y[:20], classes=np.arange(10))  # compile (or load) the kernel first
w, t = est._mlp.w.copy(), est.t_
print("ready", flush=True)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    est.partial_fit(X, y)
print("interrupted", time.monotonic(), flush=True)
assert any("interrupted" in str(m.message) for m in caught), "no 'interrupted' warning"
print("restored" if est._mlp.w.tobytes() == w.tobytes() and est.t_ == t else "CHANGED")
"""


def run_and_interrupt(code, wait_for="ready", delay=0.3, timeout=120):
    """Start ``code`` in a child, SIGINT it ``delay`` s after it prints ``wait_for``.

    Returns the child's output lines after the signal, its exit status and the seconds between
    the signal and the child's "interrupted" line (its own monotonic clock reading).
    """
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=ENV, preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + timeout
        line = child.stdout.readline()
        while wait_for not in line:
            if not line or time.monotonic() > deadline:
                raise AssertionError(f"child never got ready: {line!r} {child.stderr.read()}")
            line = child.stdout.readline()
        time.sleep(delay)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    lines = out.split("\n")
    latency = next((float(l.split()[1]) - sent for l in lines if l.startswith("interrupted")), None)
    return lines, err, child.returncode, latency


@pytest.mark.parametrize("backend, n_jobs", [(b, 1) for b in BACKENDS]
                         + [(b, 2) for b in BACKENDS if b != "numpy"])
def test_sigint_stops_mlp_fit_within_half_a_second_and_restores_it(backend, n_jobs):
    lines, err, status, latency = run_and_interrupt(
        f"BACKEND, N_JOBS = {backend!r}, {n_jobs}\n" + MLP_FIT)
    assert status == 0, err
    assert latency is not None, (lines, err)
    assert latency < LATENCY, f"{backend}: {latency:.3f} s from SIGINT to KeyboardInterrupt"
    assert "restored" in lines


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numpy"])
def test_sigint_stops_estimator_partial_fit_and_leaves_it_as_it_was(backend):
    lines, err, status, latency = run_and_interrupt(f"BACKEND = {backend!r}\n" + PARTIAL_FIT)
    assert status == 0, err
    assert latency is not None, (lines, err)
    assert latency < LATENCY, f"{backend}: {latency:.3f} s from SIGINT to partial_fit's return"
    assert "restored" in lines


def test_sigint_stops_deltaprop_train_with_status_130_and_keeps_the_old_model(tmp_path):
    rng = np.random.RandomState(0)
    data = tmp_path / "data.npz"
    np.savez(data, X=rng.uniform(0, 1, (3000, 784)), y=rng.randint(0, 10, 3000))
    out = tmp_path / "model.npz"
    out.write_bytes(b"the previous model")
    backend = "cython" if "cython" in BACKENDS else BACKENDS[0]
    child = subprocess.Popen(
        [sys.executable, "-m", "deltaprop", "train", str(data), "--hidden", "1024", "--epochs", "50",
         "--batch-size", "1", "--backend", backend, "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, preexec_fn=_default_sigint)
    try:
        line = child.stderr.readline()  # "data ...: 3000 samples, ..." is printed as training starts
        assert line.startswith("data"), line + child.stderr.read()
        time.sleep(0.5)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        status = child.wait(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert status == 130, child.stderr.read()
    assert elapsed < 5  # the interpreter's exit included; one epoch here is several seconds
    assert out.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz", "model.npz"]
