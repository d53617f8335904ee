"""``deltaprop train --scheduler / --dask-workers`` through ``deltaprop.cli.main``.

Starting a cluster takes seconds, so few are started: one LocalCluster for the module (the
``--scheduler`` runs and :class:`deltaprop.cli.cluster.ClusterData`), one ``--dask-workers 2``
run, and one ``--dask-workers 1`` run in a subprocess that is interrupted. The error cases fail
before any cluster starts (LocalCluster is replaced by a function that fails the test).
"""

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
psutil = pytest.importorskip("psutil")

import dask  # noqa: E402
from test_cli import assert_one_line_error, run  # noqa: E402

from deltaprop.cli import cluster as training  # noqa: E402
from deltaprop.cli import data as dataio  # noqa: E402
from deltaprop.cli import pipeline as savedmodel  # noqa: E402


@pytest.fixture
def no_cluster(monkeypatch):
    """Fail the test if a LocalCluster is started."""
    def started(*args, **kwargs):
        pytest.fail("a LocalCluster was started")

    monkeypatch.setattr(distributed, "LocalCluster", started)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def linear(rng, n):
    """Regression data far from standardised: y = 3 + x . (1, -2, 0.5) on x of scale 10."""
    X = rng.standard_normal((n, 3)) * 10
    return X, 3.0 + X @ [1.0, -2.0, 0.5]


def predictions(capsys, model, data):
    code, out, err = run(capsys, "predict", model, data)
    assert code == 0, err
    return out.splitlines()[1:]


def held_out(err):
    m = re.search(r"(\d+) samples, (\d+) features, (\w+).*?; (\d+) train / (\d+) held out", err)
    return [int(m.group(i)) for i in (1, 2, 4, 5)], m.group(3)


def alive(p, name=""):
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE and name in " ".join(p.cmdline())
    except psutil.Error:  # ended meanwhile
        return False


def descendants():
    """This process's children, less multiprocessing's resource tracker (it lives as long as we do)."""
    return {p.pid: p for p in psutil.Process().children(recursive=True)
            if alive(p) and not alive(p, "resource_tracker")}


def gone(procs, timeout=15):
    """Whether every process in ``procs`` has ended within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while any(alive(p) for p in procs):
        if time.monotonic() > end:
            return False
        time.sleep(0.2)
    return True


def test_dask_workers_trains_a_csv_into_a_model_that_predicts_like_one_machine(capsys, tmp_path):
    X, y = load_digits(return_X_y=True)
    X, Xte, y, yte = train_test_split(X, y, random_state=0)
    header = ["digit"] + [f"p{i}" for i in range(64)]  # the target first: --target digit
    train = write_csv(tmp_path / "train.csv", header, [[t, *x] for x, t in zip(X.astype(int), y)])
    test = write_csv(tmp_path / "test.csv", header, [[t, *x] for x, t in zip(Xte.astype(int), yte)])
    options = ["--target", "digit", "--hidden", "32", "--epochs", "10", "-q"]
    before = descendants()
    code, out, err = run(capsys, "train", train, *options, "--dask-workers", "2",
                         "--out", tmp_path / "dask.npz")
    assert code == 0, err
    assert "2 workers, 2 threads" in err and "2 partitions" in err
    (n, D, n_train, n_val), task = held_out(err)
    assert (n, D, task) == (len(y), 64, "classification") and "(10 classes)" in err
    assert n_train + n_val == n and abs(n_val - round(0.2 * n)) <= 1
    assert float(re.search(r"held-out accuracy: ([\d.]+)", out).group(1)) > 0.9
    assert gone([p for pid, p in descendants().items() if pid not in before])  # the cluster stopped

    code, out, err = run(capsys, "train", train, *options, "--out", tmp_path / "one.npz")
    assert code == 0, err
    accuracy = {name: np.mean(np.array(predictions(capsys, tmp_path / f"{name}.npz", test), dtype=int) == yte)
                for name in ("dask", "one")}
    assert accuracy["dask"] > 0.93 and abs(accuracy["dask"] - accuracy["one"]) <= 0.02, accuracy
    saved = savedmodel.load(tmp_path / "dask.npz")  # train's model file, with the data's columns
    assert (saved.task, saved.n_features, saved.target_name, saved.target_index) == ("classification", 64,
                                                                                     "digit", 0)


def test_scheduler_trains_a_parquet_file_with_text_labels(capsys, client, tmp_path, rng):
    X = rng.standard_normal((600, 3))
    label = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    frame = pd.DataFrame({"a": X[:, 0], "label": label, "b": X[:, 1], "c": X[:, 2]})
    frame[:500].to_parquet(tmp_path / "train.parquet")
    frame[500:].to_csv(tmp_path / "test.csv", index=False)
    code, out, err = run(capsys, "train", tmp_path / "train.parquet", "--target", "label", "--solver", "lbfgs",
                         "--hidden", "8", "--scheduler", client.scheduler.address, "--out", tmp_path / "m.npz")
    assert code == 0, err
    assert held_out(err) == ([500, 3, 400, 100], "classification") and "(2 classes)" in err
    assert float(re.search(r"held-out accuracy: ([\d.]+)", out).group(1)) > 0.9
    predicted = predictions(capsys, tmp_path / "m.npz", tmp_path / "test.csv")
    assert np.mean(np.array(predicted) == label[500:]) > 0.9
    np.testing.assert_array_equal(savedmodel.load(tmp_path / "m.npz").model.classes_, ["no", "yes"])


def test_scheduler_regression_standardises_and_restores_the_target(capsys, client, tmp_path, rng):
    X, y = linear(rng, 500)
    np.savetxt(tmp_path / "train.csv", np.column_stack([X[:400], y[:400]]), delimiter=",", fmt="%.6f")
    np.savetxt(tmp_path / "test.csv", X[400:], delimiter=",", fmt="%.6f")
    code, out, err = run(capsys, "train", tmp_path / "train.csv", "--solver", "lbfgs", "--epochs", "100",
                         "--hidden", "8", "--scheduler", client.scheduler.address, "--out", tmp_path / "m.npz")
    assert code == 0, err
    assert held_out(err) == ([400, 3, 320, 80], "regression")
    assert float(re.search(r"held-out R\^2: ([-\d.]+)", out).group(1)) > 0.99
    pred = np.array(predictions(capsys, tmp_path / "m.npz", tmp_path / "test.csv"), dtype=float)
    assert np.sqrt(np.mean((pred - y[400:]) ** 2)) < 0.05 * y.std()  # in the target's own units


def test_cluster_data_splits_every_partition_and_standardises_on_its_training_rows(client, tmp_path, rng):
    X, y = linear(rng, 301)
    np.savetxt(tmp_path / "d.csv", np.column_stack([X, y]), delimiter=",", fmt="%.6f")
    X = np.loadtxt(tmp_path / "d.csv", delimiter=",")[:, :3]  # as written
    data = training.ClusterData(dataio.read_dask(str(tmp_path / "d.csv")), 0.25, 7, None, client, partitions=3)
    assert len(data.parts) == 3 and (data.n, data.n_train + data.n_val) == (301, 301)
    assert [v for _, v in data.sizes] == [round(0.25 * (t + v)) for t, v in data.sizes]
    assert not data.integral and data.n_unique > dataio.MAX_INFERRED_CLASSES
    (Zt, yt), (Zv, yv) = (client.compute(data.rows(held, "regression"), sync=True) for held in (False, True))
    assert Zt.shape == (data.n_train, 3) and Zv.shape == (data.n_val, 3)
    train = data.x_scaler.inverse_transform(Zt)
    rows = np.vstack([train, data.x_scaler.inverse_transform(Zv)])  # every row once: train or held out
    np.testing.assert_allclose(rows[np.lexsort(rows.T)], X[np.lexsort(X.T)], rtol=0, atol=1e-9)
    reference = StandardScaler().fit(train)
    np.testing.assert_allclose(data.x_scaler.mean_, reference.mean_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(data.x_scaler.scale_, reference.scale_, rtol=1e-12)
    assert abs(yt.mean()) < 1e-12 and yt.std() == pytest.approx(1, rel=1e-12)  # the target's scaler too
    again = client.compute(data.rows(True, "regression"), sync=True)[0]
    np.testing.assert_array_equal(again, Zv)  # the same held-out rows every time


@pytest.mark.parametrize("case, argv, message", [
    ("missing file", ["{tmp}/nope.csv"], "no such file"),
    ("unknown column", ["{clf}", "--target", "zzz"], "unknown column 'zzz'"),
    ("non-numeric feature", ["{clf}"], "non-numeric values in column 'label'"),
    ("text target for regression", ["{clf}", "--target", "label", "--task", "regression"], "numeric target"),
    ("not a parquet file", ["{fake_parquet}"], "not a readable Parquet file"),
    ("no pyarrow", ["{parquet}"], "pip install pyarrow"),
    ("no matching file", ["{tmp}/*.parquet.none"], "no file matches"),
])
def test_bad_input_fails_before_a_cluster_starts(capsys, monkeypatch, no_cluster, tmp_path, case, argv, message):
    files = dict(tmp=tmp_path, clf=write_csv(tmp_path / "clf.csv", ["a", "label", "b"], [[1, "x", 2], [3, "y", 4]]),
                 fake_parquet=tmp_path / "fake.parquet", parquet=tmp_path / "d.parquet")
    files["fake_parquet"].write_text("a,b\n1,2\n")
    pd.DataFrame({"a": [1.0, 2.0], "t": [0, 1]}).to_parquet(files["parquet"])
    if case == "no pyarrow":
        monkeypatch.setitem(sys.modules, "pyarrow", None)
    code, _, err = run(capsys, "train", *[a.format(**files) for a in argv], "--dask-workers", "2")
    assert_one_line_error(code, err, "train")
    assert message in err


@pytest.mark.parametrize("argv, message", [
    (["--dask-workers", "0"], "argument --dask-workers: expected an integer >= 1; got '0'"),
    (["--dask-workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not allowed with argument"),
])
def test_bad_cluster_options_are_usage_errors(capsys, no_cluster, argv, message):
    code, _, err = run(capsys, "train", "iris", *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_unreachable_scheduler_is_a_one_line_error(capsys, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code, _, err = run(capsys, "train", "iris", "--scheduler", f"tcp://127.0.0.1:{port}")
    assert_one_line_error(code, err, "train")
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err


def test_a_bad_value_deep_in_the_file_is_found_on_the_workers(capsys, client, tmp_path, rng):
    rows = [[f"{v:.4f}" for v in x] + [int(x[0] > 0)] for x in rng.standard_normal((3000, 2))]
    rows[2500][1] = ""  # a missing value, far beyond the block the client reads
    path = write_csv(tmp_path / "d.csv", ["a", "b", "t"], rows)
    code, _, err = run(capsys, "train", path, "--scheduler", client.scheduler.address, "-q")
    assert_one_line_error(code, err, "train")
    assert f"{path}: missing or non-finite value in column 'b'" in err


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background shell job inherits it ignored


def test_ctrl_c_stops_the_local_cluster_and_leaves_no_process(tmp_path, rng):
    X = rng.standard_normal((2000, 5))
    np.savetxt(tmp_path / "d.csv", np.column_stack([X, X[:, 0] > 0]), delimiter=",", fmt="%.4f")
    child = subprocess.Popen([sys.executable, "-m", "deltaprop", "train", str(tmp_path / "d.csv"), "--epochs",
                              "100000", "--dask-workers", "1"], stderr=subprocess.PIPE, text=True,
                             cwd=tmp_path, start_new_session=True, preexec_fn=_default_sigint,
                             env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        seen = ""
        while "loss=" not in seen:  # training: the cluster is up
            char = child.stderr.read(1)
            assert char, seen
            seen += char
        cluster = psutil.Process(child.pid).children(recursive=True)
        assert cluster
        os.killpg(child.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
        rest = child.stderr.read()
        assert child.wait(timeout=60) == 130, rest
    finally:
        if child.poll() is None:
            child.kill()
    assert rest.splitlines()[-1] == "deltaprop train: interrupted" and "Traceback" not in rest
    assert gone(cluster)
