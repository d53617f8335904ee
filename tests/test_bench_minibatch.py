"""``deltaprop bench --minibatch`` and the machinery under it: pinning to one CPU, the peers
python (deltaprop/bench/peers/epoch_server.py in a subprocess) and its check against deltaprop's epoch.

No timing is asserted. The JAX / PyTorch peers are tested against deltaprop only where
``DELTAPROP_PEER_PYTHON`` names a Python that has them (e.g. ``peers/bin/python``); the
subprocess path itself is tested with this Python and the script's plain NumPy epoch.
"""

import contextlib
import importlib.util
import io
import json
import math
import os
import sys
import threading

import pytest

from deltaprop import available_backends, bench
from deltaprop.bench import minibatch, pinning, remote
from deltaprop.cli import main

needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no sched_setaffinity here")
PEER_PYTHON = os.environ.get("DELTAPROP_PEER_PYTHON")


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def thread_cpus():
    """tid -> the CPUs that thread of this process may run on."""
    return {tid: os.sched_getaffinity(tid) for tid in pinning.thread_ids()}


@needs_affinity
def test_pin_to_one_cpu_holds_every_thread_and_puts_them_back():
    allowed = os.sched_getaffinity(0)
    stop = threading.Event()
    before = threading.Thread(target=stop.wait)
    before.start()
    try:
        with bench.pin_to_one_cpu() as cpu:
            assert cpu == max(allowed)
            inside = threading.Thread(target=stop.wait)
            inside.start()
            assert set(map(frozenset, thread_cpus().values())) == {frozenset({cpu})}
        assert all(cpus == allowed for cpus in thread_cpus().values())
    finally:
        stop.set()
        before.join()
        inside.join()
    with bench.pin_to_one_cpu(min(allowed)) as cpu:
        assert cpu == min(allowed) and os.sched_getaffinity(0) == {cpu}
    with pytest.raises(ValueError, match="cannot pin to CPU"):
        with bench.pin_to_one_cpu(max(allowed) + 1000):
            pass
    assert os.sched_getaffinity(0) == allowed


@needs_affinity
@pytest.mark.parametrize("jobs", [1, 2])
def test_bench_pins_itself_to_one_cpu_for_one_thread_only(capsys, monkeypatch, jobs):
    seen = []

    def spy(*args, **kwargs):
        seen.append(os.sched_getaffinity(0))
        return [], []

    monkeypatch.setattr(bench, "run", spy)
    allowed = os.sched_getaffinity(0)
    code, out, err = run(capsys, "bench", "--json", "--jobs", jobs)
    assert code == 0, err
    report = json.loads(out)
    if jobs == 1:
        assert seen == [{max(allowed)}] and report["machine"]["pinned_cpu"] == max(allowed)
        assert f"pinned to CPU {max(allowed)}" in report["method"]
    else:
        assert seen == [allowed] and report["machine"]["pinned_cpu"] is None
    assert os.sched_getaffinity(0) == allowed
    code, out, err = run(capsys, "bench", "--jobs", jobs)
    assert ("pinned to CPU" if jobs == 1 else "not pinned to a CPU") in out.splitlines()[0]


#: one work of each kind (the whole --quick run spends most of its time in NumPy and scikit-learn per-sample epochs)
QUICK_WORKS = ("batch-32", "defaults-digits", "sgd-64-32-10")


def test_the_minibatch_works_are_the_table_in_order_on_standard_shapes():
    works = bench.MINIBATCH_WORKS
    assert list(works) == ["batch-32", "batch-200", "defaults-digits", "defaults-digits-x10", "sgd-784-128-10",
                           "sgd-64-32-10", "sgd-784-256-128-10"]
    assert [works[k]["batch_size"] for k in works if works[k]["kind"] == "epoch"] == [32, 200, 1, 1, 1]
    assert all(works[k]["shape"] in bench.SHAPES for k in works if works[k]["kind"] == "epoch")
    X, y = bench.digits_data(10)
    assert X.shape == (17970, 64) and y.shape == (17970,) and (X[:1797] == bench.digits_data()[0]).all()


@pytest.fixture(scope="module")
def quick_report():
    """``deltaprop bench --minibatch --quick --json`` (every backend, :data:`QUICK_WORKS`), run once."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(minibatch, "MINIBATCH_WORKS", {k: bench.MINIBATCH_WORKS[k] for k in QUICK_WORKS})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(["bench", "--minibatch", "--quick", "--json"])
    assert code == 0
    return json.loads(out.getvalue())


def test_minibatch_quick_has_every_work_with_finite_figures(quick_report):
    rows = quick_report["results"]
    assert [w for w in dict.fromkeys(r["work"] for r in rows)] == list(QUICK_WORKS)
    ours = [b for b in available_backends() if b != "numpy"] or ["numpy"]
    for row in rows:
        assert set(row["deltaprop_backends"]) == set(ours)
        assert row["deltaprop"] == max(row["deltaprop_backends"].values()) if row["unit"] == "samples/s" \
            else min(row["deltaprop_backends"].values())
        assert math.isfinite(row["deltaprop"]) and row["deltaprop"] > 0
        if row["peer_value"] is None:
            assert row["peer"] in bench.REMOTE_PEERS and row["note"] == "not measured (pass --peer-python)"
            continue
        assert math.isfinite(row["peer_value"]) and row["peer_value"] > 0
        expected = (row["deltaprop"] / row["peer_value"] if row["unit"] == "samples/s"
                    else row["peer_value"] / row["deltaprop"])
        assert row["ratio"] == pytest.approx(expected)
        assert row["where"] == "in-process"
    peers = {(r["work"], r["peer"]) for r in rows}
    for key in QUICK_WORKS:
        spec = bench.MINIBATCH_WORKS[key]
        wanted = {"sklearn"} if spec["kind"] == "fit" else {"sklearn", "jax", "torch"} | (
            {"numpy"} if ours != ["numpy"] else set())
        assert {p for k, p in peers if k == key} == wanted, key
    assert quick_report["skipped_peers"] == {p: "not measured (pass --peer-python)" for p in bench.REMOTE_PEERS}


def test_minibatch_epochs_of_batches_give_deltaprop_s_fraction_of_their_ceiling(quick_report):
    """Each mini-batch epoch's row has the ceiling of its shape and batch (samples/s) and
    deltaprop's figure over it; the fits and the per-sample epochs have neither."""
    rows = quick_report["results"]
    assert all({"ceiling", "of_ceiling"} <= set(row) for row in rows)
    for row in rows:
        spec = bench.MINIBATCH_WORKS[row["work"]]
        if spec["kind"] == "epoch" and spec["batch_size"] > 1:
            assert math.isfinite(row["ceiling"]) and row["ceiling"] > 0
            assert row["of_ceiling"] == pytest.approx(row["deltaprop"] / row["ceiling"])
        else:
            assert row["ceiling"] is None and row["of_ceiling"] is None, row["work"]
    assert any(row["ceiling"] is not None for row in rows)


def test_minibatch_table_prints_the_fraction_of_the_ceiling_once_per_work():
    rows = [dict(work="batch-32", label="batch_epoch 784-128-10 f32, batch 32", unit="samples/s",
                 deltaprop_backend="cython", deltaprop=158_000.0, deltaprop_backends={"cython": 158_000.0},
                 ceiling=200_000.0, of_ceiling=0.79, peer=peer, peer_label=minibatch.PEER_LABELS[peer],
                 peer_value=value, ratio=None if value is None else 158_000.0 / value,
                 where=None if value is None else "in-process", note=None if value else "not measured")
            for peer, value in (("sklearn", 70_000.0), ("jax", None))]
    rows.append(dict(work="defaults-digits", label="MLPClassifier() 30 it, digits", unit="s/fit",
                     deltaprop_backend="cython", deltaprop=0.06, deltaprop_backends={"cython": 0.06},
                     ceiling=None, of_ceiling=None, peer="sklearn", peer_label="scikit-learn", peer_value=0.15,
                     ratio=2.5, where="in-process", note=None, n_iter={"cython": 30, "sklearn": 30}))
    lines = bench.minibatch_table(rows, 3, dict(bench.machine_info(), pinned_cpu=None)).splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("work"))
    assert "of ceiling" in lines[head] and lines[head].index("of ceiling") < lines[head].index("peer")
    body = lines[head + 2 : head + 5]
    assert "cython 158k/s" in body[0] and "0.79 of 200k/s" in body[0] and "2.26x" in body[0]
    assert "of 200k/s" not in body[1] and "not measured" in body[1]
    assert " of " not in body[2].split("scikit-learn")[0] and "2.50x" in body[2]
    assert lines[-2].startswith("of ceiling: deltaprop's throughput / the ceiling")
    assert lines[-1].startswith("ratio: deltaprop's throughput / the peer's")


def test_minibatch_fits_run_the_same_iterations_in_deltaprop_and_sklearn(quick_report):
    for row in quick_report["results"]:
        if row["unit"] == "s/fit":
            assert set(row["n_iter"].values()) == {bench.FIT_ITERATIONS}, row["n_iter"]
            assert row["note"] is None


def test_minibatch_quick_prints_the_table(capsys, monkeypatch):
    """The text table through the command line (two of the works, to stay quick)."""
    works = {k: bench.MINIBATCH_WORKS[k] for k in ("batch-32", "defaults-digits")}
    monkeypatch.setattr(minibatch, "MINIBATCH_WORKS", works)
    code, out, err = run(capsys, "bench", "--minibatch", "--quick")
    assert code == 0, err
    assert "warming up" in err
    lines = out.splitlines()
    assert "one thread, pinned to CPU" in lines[0] or not hasattr(os, "sched_setaffinity")
    text = "\n".join(lines)
    for spec in works.values():
        assert spec["label"] in text
    assert "JAX jit(lax.scan)" in text and "not measured (pass --peer-python)" in text
    assert "scikit-learn" in text and lines[-1].startswith("ratio: deltaprop's throughput / the peer's")
    assert "of ceiling" in text and lines[-2].startswith("of ceiling: ")


@pytest.mark.parametrize("argv, message", [
    (["--shapes", "1-3-1"], "--shapes apply to the per-sample table"),
    (["--jobs", "2"], "--jobs apply to the per-sample table"),
    (["--no-peers", "--peer-python", sys.executable], "--no-peers skips the peers"),
])
def test_minibatch_rejects_the_per_sample_options(capsys, argv, message):
    code, _, err = run(capsys, "bench", "--minibatch", "--quick", *argv)
    assert code == 1 and message in err and "Traceback" not in err


def test_peer_python_and_cpu_need_their_mode(capsys):
    code, _, err = run(capsys, "bench", "--quick", "--peer-python", sys.executable)
    assert code == 1 and "add --minibatch" in err
    code, _, err = run(capsys, "bench", "--quick", "--jobs", "2", "--cpu", "0")
    assert code == 1 and "--cpu pins the one-thread measurement" in err


@pytest.mark.parametrize("python, message", [
    ("/nonexistent/bin/python", "peer python /nonexistent/bin/python: "),
    ("/bin/false", "peer python /bin/false: it ended (status 1)"),
])
def test_a_peer_python_that_does_not_run_is_a_one_line_error(capsys, python, message):
    code, _, err = run(capsys, "bench", "--minibatch", "--quick", "--peer-python", python)
    assert code == 1 and message in err and "Traceback" not in err


@needs_affinity
def test_the_peers_python_runs_pinned_and_ends_where_deltaprop_does():
    """This Python as the peers python, with the script's plain NumPy epoch (the "reference"
    peer): the subprocess, its pinning, the check against deltaprop and the interleaved timing."""
    torch_here = importlib.util.find_spec("torch") is not None
    with bench.pin_to_one_cpu() as cpu:
        rows, skipped = bench.run_minibatch(available_backends(), repeats=2, min_time=0.0,
                                            peer_python=sys.executable, works=["batch-32", "sgd-64-32-10"],
                                            peers=("reference", "torch"))
    by = {(r["work"], r["peer"]): r for r in rows}
    for work in ("batch-32", "sgd-64-32-10"):
        row = by[work, "reference"]
        assert row["where"] == "peers python" and row["peer_python"] == sys.executable
        assert row["peer_cpus"] == [cpu]
        assert row["check"]["ok"], row["check"]
        assert row["check"]["max_abs_step"] > 100 * row["check"]["max_abs_diff"]
        assert row["peer_value"] > 0 and row["ratio"] == pytest.approx(row["deltaprop"] / row["peer_value"])
        if not torch_here:
            assert by[work, "torch"]["note"] == f"not installed in {sys.executable}"
    if not torch_here:
        assert skipped == {"torch": f"not installed in {sys.executable}"}
    info = dict(bench.machine_info(), pinned_cpu=cpu)
    text = bench.minibatch_table(rows, 2, info)
    assert f"every thread on CPU {cpu}" in text and "checked: each peers python epoch" in text
    assert f"CPU {cpu}, peers python" in text


@pytest.mark.skipif(not PEER_PYTHON, reason="set DELTAPROP_PEER_PYTHON to a Python with jax (and/or torch)")
@pytest.mark.parametrize("shape, batch_size", [("784-128-10", 32), ("784-128-10", 200), ("784-128-10", 1),
                                               ("64-32-10", 1), ("784-256-128-10", 1)])
def test_jax_and_torch_run_the_same_epoch_as_deltaprop(tmp_path, shape, batch_size):
    """One JAX (PyTorch) epoch from deltaprop's initial weights ends at deltaprop's weights to
    float32 rounding: the peers compute the same algorithm."""
    backend = available_backends()[-1]
    peer = remote.PeerProcess(PEER_PYTHON, str(tmp_path))
    try:
        libraries = [lib for lib in bench.REMOTE_PEERS if lib in peer.info["versions"]]
        assert libraries, f"{PEER_PYTHON} has neither jax nor torch"
        task = bench.Task(backend, "float32", shape, "epoch", batch_size)
        for lib in libraries:
            timed = bench.RemoteTask(peer, lib, task)
            assert timed.check["ok"], (lib, timed.check)
            assert timed.run() > 0
    finally:
        peer.close()
