"""n_jobs: parameter mixing, Hogwild, sharded L-BFGS gradients and prediction on threads.

Truths used: the one-thread result (n_jobs=1 must be it bit for bit; sums over shards equal it
up to the order of summation), an explicit average of two networks trained on the two halves
of an epoch, scikit-learn-style accuracy on digits, and threadpoolctl's view of BLAS.
"""

import warnings

import numpy as np
import pytest
from conftest import BACKENDS, TOL
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from deltaprop import MLP, MLPClassifier, MLPRegressor
from deltaprop.backends import get_backend
from deltaprop.engine import buffers, sweeps
from deltaprop.engine.epochs import OneThreadEpochs
from deltaprop.engine.parallel_epochs import MixingEpochs, SplitBatchEpochs
from deltaprop.parallel import Threads, effective_n_jobs, piece_bounds, shard_bounds

COMPILED = [b for b in BACKENDS if b != "numpy"] or BACKENDS


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    X = d.data / 16.0
    return X[:1347], d.target[:1347], X[1347:], d.target[1347:]


def test_n_jobs_follows_scikit_learn():
    import os

    # -1: every CPU this process may run on (joblib's count follows taskset / affinity)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert effective_n_jobs(None) == 1 and effective_n_jobs(1) == 1 and effective_n_jobs(3) == 3
    assert effective_n_jobs(-1) == usable
    assert effective_n_jobs(-2) == max(1, usable - 1)
    for bad in (0, 1.5, "2", True):
        with pytest.raises(ValueError, match="n_jobs"):
            effective_n_jobs(bad)


def test_shards_are_contiguous_balanced_whole_batches():
    assert shard_bounds(10, 2) == [(0, 5), (5, 10)]
    assert shard_bounds(10, 3, multiple=4) == [(0, 4), (4, 8), (8, 10)]
    assert shard_bounds(3, 8) == [(0, 1), (1, 2), (2, 3)]
    bounds = shard_bounds(1000, 7, multiple=32)
    assert bounds[0][0] == 0 and bounds[-1][1] == 1000
    assert all(b0 == a1 and a1 % 32 == 0 for (_, b0), (a1, _) in zip(bounds, bounds[1:], strict=False))


def test_pieces_are_contiguous_shrinking_and_bounded():
    # 1/(2J) of what is left, at least 1/(16J) of all: 20000 rows, 2 threads
    assert [b - a for a, b in piece_bounds(20000, 2, 64)] == [5000, 3750, 2813, 2110, 1582, 1187,
                                                                890, 667, 625, 625, 751]
    for n, J, min_rows, most in [(1, 2, 64, 0), (130, 2, 64, 0), (10**6, 64, 64, 0), (10**6, 64, 64, 100),
                                 (999, 3, 1, 4)]:
        pieces = piece_bounds(n, J, min_rows, most)
        assert pieces[0][0] == 0 and pieces[-1][1] == n
        assert all(b0 == a1 for (_, b0), (a1, _) in zip(pieces, pieces[1:], strict=False))
        sizes = [b - a for a, b in pieces]
        assert all(x >= y for x, y in zip(sizes[:-2], sizes[1:-1], strict=False))  # shrinking, but the last
        assert min(sizes) >= min(n, min_rows)
        assert not most or len(pieces) <= most


def test_dynamic_scheduling_gives_a_slow_thread_fewer_items_and_keeps_their_order():
    import threading

    taken = []
    all_taken = threading.Condition()

    def item(i, j):
        with all_taken:
            taken.append(j)
            all_taken.notify_all()
            if j == 1:  # thread 1 on a "slow core": its item lasts until every item is taken
                assert all_taken.wait_for(lambda: len(taken) == 12, timeout=60)
        return i * i

    with Threads(2) as threads:
        assert threads.run_dynamic(item, 12) == [i * i for i in range(12)]
    assert taken.count(1) <= 1 and taken.count(0) >= 11  # static halves would give each thread 6

    def failing(i, j):
        if i == 3:
            raise ValueError("piece 3")
        return i

    with Threads(2) as threads, pytest.raises(ValueError, match="piece 3"):
        threads.run_dynamic(failing, 50)


@pytest.mark.parametrize("backend", COMPILED)
def test_sharded_gradient_does_not_depend_on_which_thread_takes_a_piece(backend, monkeypatch):
    import time

    rng = np.random.RandomState(0)
    X = rng.randn(4000, 8)
    T = rng.randn(4000, 2)
    net = MLP([8, 16, 2], backend=backend, random_state=0)
    E, g = net.loss_and_gradient(X, T, out=np.empty(net.w.shape[0]), n_jobs=2)
    real = sweeps.sweep
    slots = []

    def slow_thread_one(self, *args, slot=0, **kw):
        slots.append(slot)
        if slot == 1:
            time.sleep(0.02)
        return real(self, *args, slot=slot, **kw)

    monkeypatch.setattr(sweeps, "sweep", slow_thread_one)
    E2, g2 = net.loss_and_gradient(X, T, out=np.empty(net.w.shape[0]), n_jobs=2)
    assert slots.count(0) > slots.count(1)  # the pieces went another way than unhindered...
    assert E2 == E and g2.tobytes() == g.tobytes()  # ...and the sums are the same, bit for bit


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_job_is_the_sequential_algorithm_bit_for_bit(backend, digits):
    X, y, _, _ = digits
    T = np.eye(10)[y]
    nets = [MLP([64, 16, 10], "tanh", "softmax", "cross_entropy", backend=backend, random_state=0)
            for _ in range(2)]
    nets[0].fit(X, T, epochs=3, lr=0.01)
    nets[1].fit(X, T, epochs=3, lr=0.01, n_jobs=1)
    assert nets[0].w.tobytes() == nets[1].w.tobytes()
    kw = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(**kw).fit(X, y)
        b = MLPClassifier(n_jobs=1, **kw).fit(X, y)
    assert a._mlp.w.tobytes() == b._mlp.w.tobytes()


@pytest.mark.parametrize("backend", COMPILED)
def test_average_is_the_mean_of_the_shards_trained_from_the_same_weights(backend):
    """One round (an epoch smaller than a call): thread j trains a copy on shard j of the order
    from the common w, and w becomes the mean of the copies."""
    rng = np.random.RandomState(0)
    X, T = rng.randn(40, 5), rng.randn(40, 2)
    net = MLP([5, 6, 2], backend=backend, random_state=0)
    w0 = net.w.copy()
    halves = []
    for rows in (np.arange(0, 20), np.arange(20, 40)):
        twin = MLP([5, 6, 2], backend=backend, random_state=0)
        twin.sgd_epoch(X, T, 0.05, order=rows)
        halves.append(twin.w)
    net.fit(X, T, epochs=1, lr=0.05, shuffle=False, n_jobs=2)
    assert not np.array_equal(net.w, w0)
    np.testing.assert_allclose(net.w, (halves[0] + halves[1]) / 2, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_jobs", [2, 3])
def test_mini_batches_on_threads_are_the_one_thread_epochs(backend, n_jobs, digits):
    """batch_size > 1: each batch's rows are split between the threads (split_epochs), so the
    weights and the loss curve are the one-thread ones up to the order of summation."""
    rng = np.random.RandomState(0)
    X, T = rng.randn(61, 5), rng.randn(61, 2)
    fits = [MLP([5, 6, 2], backend=backend, random_state=0).fit(X, T, epochs=3, lr=0.05, batch_size=7,
                                                                n_jobs=jobs) for jobs in (1, n_jobs)]
    assert not np.array_equal(fits[0].w, MLP([5, 6, 2], backend=backend, random_state=0).w)
    np.testing.assert_allclose(fits[1].w, fits[0].w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fits[1].loss_curve_, fits[0].loss_curve_, rtol=1e-12)
    import scipy.sparse as sp

    X[np.abs(X) < 1] = 0  # CSR rows: densified a chunk of the order at a time, then split
    fits = [MLP([5, 6, 2], backend=backend, random_state=0).fit(sp.csr_matrix(X), T, epochs=3, lr=0.05,
                                                                batch_size=7, n_jobs=jobs) for jobs in (1, n_jobs)]
    np.testing.assert_allclose(fits[1].w, fits[0].w, rtol=1e-12, atol=1e-14)
    X, y, Xt, yt = digits  # scikit-learn's default path: adam, batches of 200
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clfs = [MLPClassifier((16,), max_iter=5, random_state=0, backend=backend, n_jobs=jobs).fit(X, y)
                for jobs in (1, n_jobs)]
    np.testing.assert_allclose(clfs[1]._mlp.w, clfs[0]._mlp.w, rtol=1e-9, atol=1e-12)
    assert clfs[1].score(Xt, yt) == clfs[0].score(Xt, yt)


@pytest.mark.parametrize("backend", COMPILED)
def test_shards_one_sample_apart_meet_once_per_epoch(backend):
    """41 samples on two threads: shards of 20 and 21, one round (not a second round for the
    21st sample), so w is the mean of the two copies trained on their whole shards."""
    rng = np.random.RandomState(1)
    X, T = rng.randn(41, 5), rng.randn(41, 2)
    net = MLP([5, 6, 2], backend=backend, random_state=0)
    halves = []
    for rows in (np.arange(0, 20), np.arange(20, 41)):
        twin = MLP([5, 6, 2], backend=backend, random_state=0)
        twin.sgd_epoch(X, T, 0.05, order=rows)
        halves.append(twin.w)
    net.fit(X, T, epochs=1, lr=0.05, shuffle=False, n_jobs=2)
    np.testing.assert_allclose(net.w, (halves[0] + halves[1]) / 2, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("backend", COMPILED)
def test_average_is_deterministic_for_a_given_n_jobs(backend, digits, monkeypatch):
    X, y, _, _ = digits
    T = np.eye(10)[y]
    monkeypatch.setattr(buffers, "WORK_PER_CALL", 200 * (buffers.SAMPLE_OVERHEAD + 64 * 16 + 16 * 11))
    runs = []
    for _ in range(2):
        net = MLP([64, 16, 10], "tanh", "softmax", "cross_entropy", backend=backend, random_state=0)
        net.fit(X, T, epochs=2, lr=0.01, n_jobs=2)  # several rounds per epoch
        runs.append(net.w.copy())
    assert runs[0].tobytes() == runs[1].tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = [MLPClassifier((16,), solver="adam", batch_size=32, max_iter=3, random_state=0,
                              backend=backend, n_jobs=2).fit(X, y)._mlp.w for _ in range(2)]
    assert fits[0].tobytes() == fits[1].tobytes()


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("parallel", ["average", "hogwild"])
@pytest.mark.parametrize("solver, batch_size", [("sgd", 1), ("adam", 32)])
def test_parallel_training_reaches_one_thread_accuracy_on_digits(backend, parallel, solver,
                                                                batch_size, digits):
    X, y, Xt, yt = digits
    kw = dict(hidden_layer_sizes=(32,), activation="tanh", solver=solver, batch_size=batch_size,
              learning_rate_init=0.01 if solver == "sgd" else 0.003, momentum=0.0, alpha=0.0,
              max_iter=20, random_state=0, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = MLPClassifier(**kw).fit(X, y).score(Xt, yt)
        two = MLPClassifier(n_jobs=2, parallel=parallel, **kw).fit(X, y).score(Xt, yt)
    assert one > 0.9
    assert two >= one - 0.015  # 0.5 points is the benchmark's target; the test allows noise


@pytest.mark.parametrize("backend", BACKENDS)
def test_sharded_lbfgs_gradient_and_fit_equal_one_thread(backend):
    rng = np.random.RandomState(0)
    X = rng.randn(3000, 8)
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    net = MLP([8, 16, 1], backend=backend, random_state=0)
    E1, g1 = net.loss_and_gradient(X, y, out=np.empty(net.w.shape[0]))
    E2, g2 = net.loss_and_gradient(X, y, out=np.empty(net.w.shape[0]), n_jobs=2)
    assert E2 == pytest.approx(E1, rel=1e-13)
    np.testing.assert_allclose(g2, g1, rtol=1e-12, atol=1e-12 * np.abs(g1).max())
    kw = dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=30, random_state=0, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = MLPRegressor(**kw).fit(X, y)
        two = MLPRegressor(n_jobs=2, **kw).fit(X, y)
        again = MLPRegressor(n_jobs=2, **kw).fit(X, y)
    assert two._mlp.w.tobytes() == again._mlp.w.tobytes()  # deterministic for a given n_jobs
    np.testing.assert_allclose(two._mlp.w, one._mlp.w, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(two.predict(X), one.predict(X), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_prediction_on_threads_equals_one_thread(backend, digits):
    X, y, Xt, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier((16,), max_iter=5, random_state=0, backend=backend).fit(X, y)
    p1 = clf.predict_proba(Xt)
    clf.set_params(n_jobs=2)
    np.testing.assert_allclose(clf.predict_proba(Xt), p1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(clf.predict_log_proba(Xt), np.log(p1), rtol=1e-10)


def test_a_failing_thread_stops_the_fit_and_leaves_the_model_as_it_was(digits, monkeypatch):
    X, y, _, _ = digits
    T = np.eye(10)[y]
    net = MLP([64, 8, 10], "tanh", "softmax", "cross_entropy", backend=COMPILED[0], random_state=0)
    net.fit(X, T, epochs=1, lr=0.01)
    w, curve = net.w.copy(), list(net.loss_curve_)
    real = OneThreadEpochs._kernel
    calls = []

    def kernel(self, X, T, s, orders, *args):
        calls.append(1)
        if len(calls) == 5:
            raise MemoryError("out of memory in a worker")
        return real(self, X, T, s, orders, *args)

    monkeypatch.setattr(OneThreadEpochs, "_kernel", kernel)
    # several rounds per epoch: the Python rounds (OneThreadEpochs' kernel calls), not average_epochs
    monkeypatch.setattr(buffers, "WORK_PER_CALL", 200 * (buffers.SAMPLE_OVERHEAD + 64 * 8 + 8 * 11))
    with pytest.raises(MemoryError, match="worker"):
        net.fit(X, T, epochs=10, lr=0.01, n_jobs=2)
    assert net.w.tobytes() == w.tobytes() and net.loss_curve_ == curve
    monkeypatch.setattr(OneThreadEpochs, "_kernel", real)
    line = MLP([1, 1], hidden="identity", backend=COMPILED[0], random_state=0)
    w = line.w.copy()
    with pytest.raises(FloatingPointError, match="restored"):  # each sample doubles the error
        line.fit(np.full((16, 1), 2.0), np.ones(16), epochs=1000, lr=0.6, n_jobs=2)
    assert line.w.tobytes() == w.tobytes()


def _solver_hyper(dtype, solver, alpha):
    from deltaprop.contract import HYPER_INDEX, SOLVERS

    hyper = np.zeros(len(HYPER_INDEX), dtype=dtype)
    for name, value in dict(eta=0.02, alpha=alpha, momentum=0.9, beta_1=0.9, beta_2=0.999,
                            epsilon=1e-8).items():
        hyper[HYPER_INDEX[name]] = value
    return SOLVERS[solver], hyper


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver, alpha", [("sgd", 0.0), ("sgd", 1e-3), ("momentum", 0.0), ("adam", 1e-4)])
@pytest.mark.parametrize("n_jobs", [2, 3])
def test_average_epochs_in_one_call_equal_the_python_rounds(backend, dtype, solver, alpha, n_jobs):
    """MixingEpochs' compiled rounds (average_epochs, a barrier in compiled code) give the
    Python rounds' weights, optimizer state, step count and losses, bit for bit: the same
    kernels on the same shards, averaged in the same order."""
    rng = np.random.RandomState(0)
    X = (rng.rand(61, 7) * (rng.rand(61, 7) < 0.6)).astype(dtype)  # some zero inputs
    T = np.eye(3, dtype=dtype)[rng.randint(0, 3, 61)]
    s = np.ones(61, dtype=dtype)
    orders = np.stack([rng.permutation(61) for _ in range(3)]).astype(np.intp)
    code, hyper = _solver_hyper(dtype, solver, alpha)
    results = []
    for compiled in (True, False):
        net = MLP([7, 5, 3], "tanh", "softmax", "cross_entropy", backend=backend, dtype=dtype,
                  random_state=0)
        state, t, losses = np.zeros((2, net.w.shape[0]), dtype=dtype), np.zeros(1, np.int64), np.zeros((3, 2))
        runner = MixingEpochs(net, 7, 3, 1, n_jobs)
        runner.samples_per_call = lambda solver: 10**9  # every epoch one round
        with runner:
            if compiled:
                runner(X, T, s, orders, code, hyper, state, t, losses)
                assert runner._mix is not None  # the compiled rounds ran (their buffers exist)
            else:  # the same rounds through Python, an epoch at a time
                bounds = shard_bounds(61, n_jobs)
                for e in range(3):
                    runner._epoch(runner._threads, X, T, s, orders[e : e + 1], bounds, 61, code,
                                    hyper, state, t, losses[e])
        results.append((net.w, state, t, losses))
    for got, want in zip(*results, strict=False):
        assert got.tobytes() == want.tobytes()
    assert results[0][3][:, 0].min() > 0 and not np.array_equal(results[0][0], MLP(
        [7, 5, 3], "tanh", "softmax", "cross_entropy", backend=backend, dtype=dtype, random_state=0).w)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha", [0.0, 1e-3])
def test_average_epochs_on_dense_wide_inputs_take_windows_of_samples(backend, dtype, alpha):
    """Plain sgd, without and with L2, on dense inputs of 400 columns, where each thread's shard
    takes the first layer a window of six samples at a time: the compiled rounds give the Python
    rounds' weights and losses bit for bit, and the reference's up to rounding."""
    rng = np.random.RandomState(3)
    X = rng.rand(61, 400).astype(dtype)
    T = np.eye(3, dtype=dtype)[rng.randint(0, 3, 61)]
    s = np.ones(61, dtype=dtype)
    orders = np.stack([rng.permutation(61) for _ in range(2)]).astype(np.intp)
    code, hyper = _solver_hyper(dtype, "sgd", alpha)
    results = []
    for name, compiled in ((backend, True), (backend, False), ("numpy", True)):
        net = MLP([400, 13, 3], "tanh", "softmax", "cross_entropy", backend=name, dtype=dtype,
                  random_state=0)
        state, t, losses = np.zeros((2, net.w.shape[0]), dtype=dtype), np.zeros(1, np.int64), np.zeros((2, 2))
        runner = MixingEpochs(net, 400, 3, 1, 2)
        runner.samples_per_call = lambda solver: 10**9
        with runner:
            if compiled:
                runner(X, T, s, orders, code, hyper, state, t, losses)
            else:
                bounds = shard_bounds(61, 2)
                for e in range(2):
                    runner._epoch(runner._threads, X, T, s, orders[e : e + 1], bounds, 61, code,
                                  hyper, state, t, losses[e])
        results.append((net.w, losses))
    (w_c, l_c), (w_p, l_p), (w_ref, l_ref) = results
    assert w_c.tobytes() == w_p.tobytes() and l_c.tobytes() == l_p.tobytes()
    tol = TOL[dtype]
    np.testing.assert_allclose(w_c, w_ref, rtol=0, atol=tol * np.abs(w_ref).max())
    np.testing.assert_allclose(l_c, l_ref, rtol=tol)


@pytest.mark.parametrize("backend", COMPILED)
def test_average_epochs_match_the_reference(backend):
    """The compiled average_epochs against the NumPy reference's (its Python barrier), on
    three threads, adam: the same weights up to float64 rounding."""
    rng = np.random.RandomState(2)
    X, T = rng.randn(50, 6), rng.randn(50, 2)
    code, hyper = _solver_hyper(np.float64, "adam", 1e-4)
    orders = np.stack([rng.permutation(50) for _ in range(2)]).astype(np.intp)
    ws = []
    for name in ("numpy", backend):
        net = MLP([6, 4, 2], backend=name, random_state=0)
        runner = MixingEpochs(net, 6, 2, 1, 3)
        runner.samples_per_call = lambda solver: 10**9
        with runner:
            runner(X, T, np.ones(50), orders, code, hyper, np.zeros((2, net.w.shape[0])),
                   np.zeros(1, np.int64), np.zeros((2, 2)))
        ws.append(net.w)
    np.testing.assert_allclose(ws[1], ws[0], rtol=1e-12, atol=1e-12)


def _released_by_the_abort_row(kernel, args, sync):
    """Thread 0 of two runs ``kernel``, arrives at the barrier and waits for thread 1, which
    never comes; setting the abort row of ``sync`` lets it return (no timing asserted: the join
    would hang without it)."""
    import threading

    worker = threading.Thread(target=kernel, args=(0, *args), daemon=True)
    worker.start()
    while sync[0, 0] == 0:  # thread 0 has arrived
        worker.join(0.001)
    sync[2, 0] = 1
    worker.join(60)
    assert not worker.is_alive()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_thread_that_never_arrives_cannot_hang_the_barrier(backend):
    net = MLP([4, 3, 2], backend=backend, random_state=0)
    P, U = net.w.shape[0], 5
    X, T = np.random.RandomState(0).randn(10, 4), np.zeros((10, 2))
    code, hyper = _solver_hyper(np.float64, "sgd", 0.0)
    sync = np.zeros((3, 8), np.int64)
    args = (net.w, np.zeros((2, P)), net.layout, *net._codes, X, T, np.ones(10),
            np.arange(10, dtype=np.intp)[None, :], np.array([[0, 5], [5, 10]], dtype=np.intp), code,
            hyper, np.zeros((2, P)), np.zeros((2, 2 * P)), np.zeros(1, np.int64),
            np.zeros((2, 1), np.int64), *(np.zeros((2, U)) for _ in range(3)), np.zeros((2, 1, 2)), sync)
    _released_by_the_abort_row(get_backend(backend).average_epochs, args, sync)


def _split_epochs(net, J, X, T, s, orders, B, code, hyper):
    """``split_epochs`` on J threads with fresh buffers: (w, state, t, the threads' losses summed)."""
    from deltaprop.layout import n_units

    dt, P, U, b = net.dtype, net.w.shape[0], n_units(net.layout), -(-B // J)
    state, t = np.zeros((2, P), dt), np.zeros(1, np.int64)
    losses, sync = np.zeros((J, orders.shape[0], 2)), np.zeros((3, 8), np.int64)
    buffers = (np.zeros((J, 1), np.int64), np.zeros((J, b, X.shape[1]), dt), np.zeros((J, b, T.shape[1]), dt),
               np.zeros((J, b), dt), *(np.zeros((J, b * U), dt) for _ in range(3)), np.zeros((J, P), dt),
               np.zeros(P, dt))
    with Threads(J) as threads:
        threads.run(lambda j: get_backend(net.backend).split_epochs(j, net.w, net.layout, *net._codes, X, T, s,
                                                                    orders, B, code, hyper, state, t, *buffers,
                                                                    losses, sync), range(J))
    return net.w, state, t, losses.sum(axis=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver, alpha", [("sgd", 0.0), ("sgd", 1e-3), ("nesterov", 0.0), ("adam", 1e-4)])
@pytest.mark.parametrize("J, B", [(1, 8), (2, 8), (3, 8), (3, 2)])
@pytest.mark.parametrize("n_in", [7, 389])
def test_split_epochs_are_batch_epoch_up_to_the_order_of_summation(backend, dtype, solver, alpha, J, B, n_in):
    """split_epochs on J threads against one thread's batch_epoch: the same weights, optimizer
    state, step count and losses up to rounding (batches of 8 and 5 rows on 3 threads; batches of
    2 leave one thread without rows; the first batch weighs nothing and is skipped), and the
    same bits run to run. With 389 inputs numba's first layer reads every batch's rows, and
    every thread's share of them, in place (``indexed``)."""
    rng = np.random.RandomState(0)
    X = (rng.rand(61, n_in) * (rng.rand(61, n_in) < 0.6)).astype(dtype)
    T = np.eye(3, dtype=dtype)[rng.randint(0, 3, 61)]
    orders = np.stack([rng.permutation(61) for _ in range(3)]).astype(np.intp)
    s = rng.uniform(0.5, 2, 61).astype(dtype)
    s[orders[0, :B]] = 0
    code, hyper = _solver_hyper(dtype, solver, alpha)

    def net():
        return MLP([n_in, 5, 3], "tanh", "softmax", "cross_entropy", backend=backend, dtype=dtype, random_state=0)

    one = net()
    P, U = one.w.shape[0], 8
    state, t, losses = np.zeros((2, P), dtype), np.zeros(1, np.int64), np.zeros((3, 2))
    get_backend(backend).batch_epoch(one.w, one.layout, *one._codes, X, T, s, orders, B, code, hyper, state, t,
                                     np.zeros((B, n_in), dtype), np.zeros((B, 3), dtype), np.zeros(B, dtype),
                                     *(np.zeros(B * U, dtype) for _ in range(3)), np.zeros(P, dtype), losses)
    runs = [_split_epochs(net(), J, X, T, s, orders, B, code, hyper) for _ in range(2)]
    for got, again in zip(*runs, strict=False):
        assert got.tobytes() == again.tobytes()  # deterministic for a given J
    w, st, steps, parts = runs[0]
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w, one.w, **tol)
    np.testing.assert_allclose(st, state, **tol)
    np.testing.assert_allclose(parts, losses, **tol)
    weighed = sum(s[order[i : i + B]].sum() > 0 for order in orders for i in range(0, 61, B))
    assert weighed < 3 * -(-61 // B)  # the first batch is skipped
    assert steps[0] == t[0] and (solver != "adam" or t[0] == weighed)
    assert not np.array_equal(w, net().w)


@pytest.mark.parametrize("backend", COMPILED)
def test_split_epochs_match_the_reference(backend):
    """The compiled split_epochs against the NumPy reference's on three threads (adam, L2):
    the same sums in the same order, so the same weights up to float64 rounding."""
    rng = np.random.RandomState(2)
    X, T = rng.randn(50, 6), rng.randn(50, 2)
    code, hyper = _solver_hyper(np.float64, "adam", 1e-4)
    orders = np.stack([rng.permutation(50) for _ in range(2)]).astype(np.intp)
    runs = [_split_epochs(MLP([6, 4, 2], backend=name, random_state=0), 3, X, T, np.ones(50), orders, 10,
                          code, hyper) for name in ("numpy", backend)]
    for got, want in zip(runs[1], runs[0], strict=False):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_split_epochs_thread_that_never_arrives_cannot_hang_the_barrier(backend):
    net = MLP([4, 3, 2], backend=backend, random_state=0)
    P, U = net.w.shape[0], 5
    X, T = np.random.RandomState(0).randn(10, 4), np.zeros((10, 2))
    code, hyper = _solver_hyper(np.float64, "sgd", 0.0)
    sync = np.zeros((3, 8), np.int64)
    args = (net.w, net.layout, *net._codes, X, T, np.ones(10), np.arange(10, dtype=np.intp)[None, :], 4,
            code, hyper, np.zeros((2, P)), np.zeros(1, np.int64), np.zeros((2, 1), np.int64),
            np.zeros((2, 2, 4)), np.zeros((2, 2, 2)), np.zeros((2, 2)), *(np.zeros((2, 2 * U)) for _ in range(3)),
            np.zeros((2, P)), np.zeros(P), np.zeros((2, 1, 2)), sync)
    _released_by_the_abort_row(get_backend(backend).split_epochs, args, sync)


@pytest.mark.parametrize("failing", [0, 1])
@pytest.mark.parametrize("kernel, batch_size", [("average_epochs", 1), ("split_epochs", 16)])
def test_a_thread_failing_before_the_barrier_stops_the_others(digits, monkeypatch, failing, kernel,
                                                              batch_size):
    """average_epochs / split_epochs on two threads, one of which fails before it reaches the
    kernel: the other is released from the barrier, the error propagates and the model is as
    it was."""
    X, y, _, _ = digits
    T = np.eye(10)[y]
    net = MLP([64, 8, 10], "tanh", "softmax", "cross_entropy", backend=COMPILED[0], random_state=0)
    net.fit(X, T, epochs=1, lr=0.01, batch_size=batch_size)
    w, curve = net.w.copy(), list(net.loss_curve_)
    real = getattr(net._kernels, kernel)
    calls = []

    def failing_kernel(j, *args):
        calls.append(j)
        if j == failing and len(calls) > 4:
            raise MemoryError("out of memory in a worker")
        return real(j, *args)

    monkeypatch.setattr(net, "_kernels", net._kernels._replace(**{kernel: failing_kernel}))
    if kernel == "split_epochs":  # several calls per epoch (per-sample epochs stay one round)
        monkeypatch.setattr(buffers, "WORK_PER_CALL", 300 * (buffers.SAMPLE_OVERHEAD + 64 * 8 + 8 * 11))
    with pytest.raises(MemoryError, match="worker"):
        net.fit(X, T, epochs=200 // batch_size, lr=0.01, batch_size=batch_size, n_jobs=2)
    assert len(calls) > 4
    assert net.w.tobytes() == w.tobytes() and net.loss_curve_ == curve


def test_blas_runs_one_thread_inside_the_parallel_region(digits, monkeypatch):
    from threadpoolctl import threadpool_info

    X, y, _, _ = digits
    seen = {}

    def spy(cls, name):
        real = getattr(cls, name)

        def kernel(self, *args):
            seen.setdefault(cls.__name__, set()).update(
                lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
            return real(self, *args)

        monkeypatch.setattr(cls, name, kernel)

    spy(MixingEpochs, "_compiled_rounds")  # per-sample parameter mixing, compiled rounds
    spy(SplitBatchEpochs, "_kernel")  # mini-batches split between the threads
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier((8,), batch_size=64, max_iter=1, random_state=0, n_jobs=2).fit(X, y)
        MLPClassifier((8,), solver="sgd", batch_size=1, max_iter=1, random_state=0, n_jobs=2).fit(X, y)
    assert seen == {"MixingEpochs": {1}, "SplitBatchEpochs": {1}}


def test_every_parallel_mode_has_a_runner_for_samples_and_for_batches():
    from deltaprop.contract import PARALLEL_MODES
    from deltaprop.engine.parallel_epochs import RUNNERS, HogwildEpochs

    assert tuple(RUNNERS) == PARALLEL_MODES
    # "average" is two algorithms: parameter mixing per sample, split batches for mini-batches
    assert RUNNERS["average"] == (MixingEpochs, SplitBatchEpochs)
    assert RUNNERS["hogwild"] == (HogwildEpochs, HogwildEpochs)
    net = MLP([3, 2])
    X, T = np.zeros((10, 3)), np.zeros((10, 2))
    assert type(net.epoch_runner(X, T, 1)) is OneThreadEpochs
    assert type(net.epoch_runner(X, T, 4, n_jobs=2)) is SplitBatchEpochs
    assert type(net.epoch_runner(X, T, 1, n_jobs=2)) is MixingEpochs
    assert type(net.epoch_runner(X, T, 4, n_jobs=2, parallel="hogwild")) is HogwildEpochs


def test_bad_parallel_mode_is_a_clear_error(digits):
    X, y, _, _ = digits
    with pytest.raises(ValueError, match="parallel"):
        MLP([64, 10]).fit(X, np.eye(10)[y], epochs=1, n_jobs=2, parallel="sometimes")
    with pytest.raises(ValueError, match="parallel"):
        MLPClassifier(parallel="sometimes").fit(X, y)
