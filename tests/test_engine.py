"""The engine `deltaprop.MLP` on every backend: training, the worked examples of Bishop §5.2-5.3 and
Mitchell §4.5, persistence, bad input."""

import warnings

import numpy as np
import pytest
from conftest import targets
from sklearn.exceptions import ConvergenceWarning

from deltaprop import MLP
from deltaprop.engine import buffers

# ------------------------------------------------------------------ training behaviour
FIG_5_3 = {  # target function, mean squared error reached (stated bound)
    "square": (lambda x: x**2, 5e-4),
    "sin": (np.sin, 1e-5),
    "abs": (np.abs, 1e-3),
    "heaviside": (lambda x: (x > 0).astype(float), 1e-2),
}


@pytest.mark.parametrize("name", sorted(FIG_5_3))
def test_fig_5_3_three_tanh_units_approximate_each_function(backend, name):
    """Bishop Fig. 5.3: N = 50 points uniform on (-1, 1), 3 tanh hidden units, linear output."""
    f, bound = FIG_5_3[name]
    x = np.random.RandomState(0).uniform(-1, 1, (50, 1))
    t = f(x)
    net = MLP([1, 3, 1], hidden="tanh", output="identity", loss="squared_error",
              backend=backend, random_state=0)
    # full-batch gradient descent with a step small enough that E decreases at every epoch
    net.fit(x, t, epochs=4000, lr=0.5, batch_size=50)
    mse = 2 * net.loss(x, t) / 50  # E = ½ Σ (y - t)²
    assert mse < bound
    assert np.all(np.diff(net.loss_curve_) <= 1e-12)


def test_mitchell_logistic_network_learns_xor_by_per_sample_sgd(backend):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    T = np.array([0, 1, 1, 0], dtype=float)
    net = MLP([2, 2, 1], hidden="logistic", output="logistic", loss="squared_error",
              backend=backend, random_state=0)
    net.fit(X, T, epochs=3000, lr=3.0, batch_size=1)
    y = net.forward(X).ravel()
    assert np.all(np.abs(y - T) < 0.1), y


def test_batch_epoch_with_batch_size_one_equals_sgd_epoch(backend, dtype, rng):
    X, T = rng.randn(20, 4), targets(rng, 20, 3, "softmax")
    a = MLP([4, 6, 3], output="softmax", loss="cross_entropy", backend=backend, dtype=dtype, random_state=0)
    b = MLP([4, 6, 3], output="softmax", loss="cross_entropy", backend=backend, dtype=dtype, random_state=0)
    order = rng.permutation(20)
    Ea = a.sgd_epoch(X, T, 0.1, order=order)
    Eb = b.batch_epoch(X, T, 0.1, batch_size=1, order=order)
    np.testing.assert_allclose(a.w, b.w, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert Ea == pytest.approx(Eb, rel=1e-5)


def test_full_batch_epoch_is_one_step_along_the_summed_gradient(backend, rng):
    """w ← w - (η/N) ∇E with ∇E = Σ_n ∇E_n (batch gradient descent, Bishop eq. 5.41)."""
    X, T = rng.randn(10, 3), rng.randn(10, 2)
    net = MLP([3, 5, 2], backend=backend, random_state=0)
    _, g = net.loss_and_gradient(X, T)
    expected = net.w - 0.1 / 10 * g
    net.batch_epoch(X, T, 0.1, batch_size=100)
    np.testing.assert_allclose(net.w, expected, rtol=1e-12, atol=1e-14)


def test_gradient_is_the_sum_of_per_sample_gradients(backend, rng):
    X, T = rng.randn(5, 3), rng.randn(5, 2)
    net = MLP([3, 4, 2], hidden="relu", backend=backend, random_state=0)
    coef_grads, intercept_grads = net.gradient(X, T)
    for n in range(5):
        cg, ig = net.gradient(X[n : n + 1], T[n : n + 1])
        for l in range(2):
            coef_grads[l] -= cg[l]
            intercept_grads[l] -= ig[l]
    for arr in coef_grads + intercept_grads:
        np.testing.assert_allclose(arr, 0, atol=1e-12)


def test_same_seed_reproduces_a_fit_and_another_seed_is_a_restart(backend, rng):
    X, T = rng.randn(30, 2), rng.randn(30, 1)
    fits = [MLP([2, 4, 1], backend=backend, random_state=s).fit(X, T, epochs=3, lr=0.05) for s in (7, 7, 8)]
    np.testing.assert_array_equal(fits[0].w, fits[1].w)
    assert not np.allclose(fits[0].w, fits[2].w)


def test_weights_are_initialised_exactly_as_scikit_learn_draws_them():
    from sklearn.neural_network import MLPRegressor

    y = np.zeros(10)
    sk = MLPRegressor(hidden_layer_sizes=(4,), max_iter=1, random_state=3)
    sk._random_state = np.random.RandomState(3)
    sk._initialize(y.reshape(-1, 1), [3, 4, 1], np.float64)
    net = MLP([3, 4, 1], random_state=3)
    for ours, theirs in zip(net.coefs_ + net.intercepts_, sk.coefs_ + sk.intercepts_):
        np.testing.assert_array_equal(ours, theirs)


# ------------------------------------------------------------------ the Jacobian
@pytest.mark.parametrize("output,loss", [("identity", "squared_error"), ("logistic", "binary_cross_entropy"),
                                         ("softmax", "cross_entropy"), ("exp", "poisson")])
def test_jacobian_matches_central_differences(backend, output, loss, rng):
    net = MLP([3, 5, 4, 2], hidden="tanh", output=output, loss=loss, backend=backend, random_state=0)
    X = rng.randn(4, 3)
    J = net.jacobian(X)
    assert J.shape == (4, 2, 3)
    eps = 1e-6
    for i in range(3):
        dX = np.zeros_like(X)
        dX[:, i] = eps
        fd = (net.forward(X + dX) - net.forward(X - dX)) / (2 * eps)
        np.testing.assert_allclose(J[:, :, i], fd, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------ parameters
def test_coefs_and_intercepts_are_views_of_the_flat_vector(backend):
    net = MLP([3, 4, 2], backend=backend, random_state=0)
    assert [c.shape for c in net.coefs_] == [(3, 4), (4, 2)]
    assert [b.shape for b in net.intercepts_] == [(4,), (2,)]
    net.coefs_[1][0, 1] = 5.0
    assert net.w[net.layout[1, 2] + 1] == 5.0
    net.intercepts_[0] = [1, 2, 3, 4]  # item assignment writes through
    np.testing.assert_array_equal(net.w[net.layout[0, 3] : net.layout[0, 3] + 4], [1, 2, 3, 4])


def test_assigned_weights_are_validated_and_nothing_changes_on_error():
    net = MLP([3, 4, 2], dtype="float32", random_state=0)
    before = net.w.copy()
    with pytest.raises(ValueError, match=r"coefs_\[1\] must have shape \(4, 2\)"):
        net.coefs_ = [np.zeros((3, 4)), np.zeros((2, 4))]
    with pytest.raises(ValueError, match="NaN"):
        net.intercepts_ = [np.zeros(4), np.array([0.0, np.nan])]
    np.testing.assert_array_equal(net.w, before)
    net.coefs_ = [np.ones((3, 4)), np.ones((4, 2))]
    assert net.coefs_[0].dtype == np.float32 and net.coefs_[0].flags.c_contiguous


# ------------------------------------------------------------------ persistence
def test_save_load_round_trip_is_exact(tmp_path, backend, dtype, rng):
    net = MLP([4, 3, 2], hidden="gudermannian", output="softmax", loss="cross_entropy",
              backend=backend, dtype=dtype, random_state=0)
    net.fit(rng.randn(10, 4), rng.randint(0, 2, 10), epochs=2, lr=0.1)
    net.save(tmp_path / "m.npz")
    back = MLP.load(tmp_path / "m.npz", backend=backend)
    assert back.w.dtype == dtype
    np.testing.assert_array_equal(back.w, net.w)
    assert (back.hidden, back.output, back.loss_function, back.layer_sizes) == (
        "gudermannian", "softmax", "cross_entropy", (4, 3, 2))
    X = rng.randn(3, 4)
    np.testing.assert_array_equal(back.forward(X), net.forward(X))


def test_loading_a_file_that_is_not_a_model_is_a_clear_error(tmp_path):
    net = MLP([2, 2, 1], random_state=0)
    net.save(tmp_path / "good.npz")
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.npz").write_text("hello")
    np.savez(tmp_path / "other.npz", X=np.zeros(3))
    for name in ("truncated.npz", "text.npz", "other.npz"):
        with pytest.raises(ValueError, match="not a deltaprop model file"):
            MLP.load(tmp_path / name)
    fields = dict(np.load(tmp_path / "good.npz"))
    fields["version"] = np.int64(99)
    np.savez(tmp_path / "future.npz", **fields)
    with pytest.raises(ValueError, match="version 99 is not supported"):
        MLP.load(tmp_path / "future.npz")


def test_loading_never_unpickles(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    import zipfile

    with zipfile.ZipFile(tmp_path / "pickled.npz", "w") as zf:
        zf.write(tmp_path / "obj.npy", "w.npy")
        zf.writestr("format.npy", b"")
    with pytest.raises(ValueError):
        MLP.load(tmp_path / "pickled.npz")


# ------------------------------------------------------------------ bad input
BAD_CALLS = [
    ("X not 2-D", lambda net: net.loss(np.zeros(3), np.zeros((3, 2))), ValueError, "X must be 2-D"),
    ("T rows", lambda net: net.loss(np.zeros((3, 3)), np.zeros((4, 2))), ValueError, "T has 4 rows but X has 3"),
    ("features", lambda net: net.forward(np.zeros((3, 5))), ValueError, "X has 5 features, but the network expects 3"),
    ("NaN X", lambda net: net.sgd_epoch([[np.nan, 0, 0]], [[0, 1]], 0.1), ValueError, "X contains NaN"),
    ("inf T", lambda net: net.sgd_epoch([[0, 0, 0]], [[np.inf, 1]], 0.1), ValueError, "T contains NaN"),
    ("class index", lambda net: net.fit([[0, 0, 0]], [2], epochs=1), ValueError, r"class indices must lie in \[0, 1\]"),
    ("lr zero", lambda net: net.sgd_epoch([[0, 0, 0]], [0], 0.0), ValueError,
     "learning rate must be a finite number > 0"),
    ("lr negative", lambda net: net.fit([[0, 0, 0]], [0], lr=-1), ValueError, "learning rate"),
    ("empty X", lambda net: net.fit(np.zeros((0, 3)), np.zeros(0)), ValueError, "X is empty"),
    ("strings", lambda net: net.forward([["a", "b", "c"]]), TypeError, "X must be numeric"),
    ("complex", lambda net: net.forward(np.zeros((1, 3), complex)), TypeError, "complex"),
    ("order", lambda net: net.sgd_epoch([[0, 0, 0]], [0], 0.1, order=[3]), ValueError, "order holds sample indices"),
    ("batch size", lambda net: net.batch_epoch([[0, 0, 0]], [0], 0.1, batch_size=0), ValueError,
     "batch_size must be an integer"),
    ("not one-hot", lambda net: net.loss([[0, 0, 0]], [[0.5, 0.6]]), ValueError, "one-hot"),
]


@pytest.mark.parametrize("what,call,exc,message", BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_input_is_a_clear_error_and_leaves_weights_unchanged(what, call, exc, message):
    net = MLP([3, 4, 2], output="softmax", loss="cross_entropy", random_state=0)
    before = net.w.copy()
    with pytest.raises(exc, match=message):
        call(net)
    np.testing.assert_array_equal(net.w, before)


@pytest.mark.parametrize("kwargs,message", [
    ({"hidden": "sigmoid"}, "hidden must be one of"),
    ({"output": "softmax", "loss": "squared_errors"}, "loss must be one of"),
    ({"output": "identity", "loss": "cross_entropy"}, "cannot be paired with loss"),
    ({"backend": "gpu"}, "unknown backend 'gpu'"),
    ({"dtype": "float16"}, "dtype must be"),
    ({"layer_sizes": [3]}, "at least 2 entries"),
    ({"layer_sizes": [3, 0, 1]}, "positive integers"),
])
def test_bad_configuration_is_a_clear_error(kwargs, message):
    config = {"layer_sizes": [3, 2], **kwargs}
    with pytest.raises(ValueError, match=message):
        MLP(**config)


@pytest.mark.parametrize("seed", [1.5, -1, 2**32, "1", np.random.default_rng(0)])
def test_bad_random_state_is_a_clear_error_that_names_it(seed):
    with pytest.raises(ValueError, match=r"random_state must be None, an integer in \[0, 2\*\*32\) or a "
                                         r"numpy.random.RandomState; got "):
        MLP([2, 3, 1], random_state=seed)


def test_random_state_takes_none_an_integer_or_a_random_state():
    w = MLP([2, 3, 1], random_state=7).w
    assert MLP([2, 3, 1], random_state=np.int64(7)).w.tobytes() == w.tobytes()
    assert MLP([2, 3, 1], random_state=np.random.RandomState(7)).w.tobytes() == w.tobytes()
    assert MLP([2, 3, 1], random_state=2**32 - 1).w.shape == w.shape
    assert MLP([2, 3, 1], random_state=None).w.shape == w.shape


def test_divergence_restores_the_weights_and_raises(backend):
    X = np.array([[1e3, -1e3]])
    net = MLP([2, 3, 1], hidden="identity", backend=backend, random_state=0)
    before = net.w.copy()
    with pytest.raises(FloatingPointError, match="diverged"):
        net.fit(X, [[1e3]], epochs=200, lr=1.0)
    np.testing.assert_array_equal(net.w, before)
    assert np.isfinite(net.w).all()


def test_logistic_and_losses_do_not_overflow_at_large_activations(backend, dtype):
    net = MLP([1, 2], output="logistic", loss="binary_cross_entropy", backend=backend, dtype=dtype)
    net.coefs_ = [[[1.0, -1.0]]]
    net.intercepts_ = [[0.0, 0.0]]
    X = np.array([[1000.0], [-1000.0]])
    y = net.forward(X)
    np.testing.assert_array_equal(y, [[1.0, 0.0], [0.0, 1.0]])
    # E = ln(1 + e^a) - t a: a = 1000, t = 0 gives 1000; a = -1000, t = 1 gives 1000
    assert net.loss(X, [[0, 1], [1, 0]]) == pytest.approx(4000.0, rel=1e-6)
    soft = MLP([1, 2], output="softmax", loss="cross_entropy", backend=backend, dtype=dtype)
    soft.coefs_ = [[[1.0, -1.0]]]
    soft.intercepts_ = [[0.0, 0.0]]
    assert soft.loss(X, [1, 0]) == pytest.approx(4000.0, rel=1e-6)  # -ln y = 2000 each
    assert np.isfinite(soft.forward(X)).all()


# ------------------------------------------------------------------ the gateway: chunked sums
def chunked_problem(rng, dtype, n=23):
    import scipy.sparse as sp

    X = rng.randn(n, 6)
    X[rng.rand(n, 6) < 0.6] = 0.0
    T = np.eye(3)[rng.randint(0, 3, n)]
    s = rng.uniform(0, 2, n)
    net = MLP([6, 5, 4, 3], hidden="tanh", output="softmax", loss="cross_entropy",
              dtype=np.dtype(dtype).name, random_state=0)
    return net, X.astype(dtype), T.astype(dtype), s.astype(dtype), sp.csr_matrix(X.astype(dtype))


def test_loss_and_gradient_are_weighted_sums_of_per_sample_terms(backend, dtype, rng):
    """E = Σ s_n E_n and g = Σ s_n ∇E_n, each term from a one-sample call (independent of the
    chunking), also when X is sparse and when the rows go in several chunks."""
    net, X, T, s, Xs = chunked_problem(rng, dtype)
    net = MLP(net.layer_sizes, net.hidden, net.output, net.loss_function, backend=backend,
              dtype=net.dtype.name, random_state=0)
    E_ref = sum(s[n] * net.loss(X[n : n + 1], T[n : n + 1]) for n in range(X.shape[0]))
    g_ref = sum(s[n] * net.loss_and_gradient(X[n : n + 1], T[n : n + 1])[1].astype(np.float64)
                for n in range(X.shape[0]))
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    for data in (X, Xs):
        E, g = net.loss_and_gradient(data, T, s, out=np.empty(net.w.shape[0]))
        assert E == pytest.approx(E_ref, rel=rtol)
        np.testing.assert_allclose(g, g_ref, rtol=rtol, atol=rtol * 1e-2)
        assert net.loss(data, T, s) == pytest.approx(E_ref, rel=rtol)


def test_chunked_sweeps_equal_one_chunk(backend, dtype, rng, monkeypatch):
    from deltaprop.engine import buffers

    net, X, T, s, Xs = chunked_problem(rng, dtype)
    net = MLP(net.layer_sizes, net.hidden, net.output, net.loss_function, backend=backend,
              dtype=net.dtype.name, random_state=0)
    y1 = net.forward(X)
    E1, g1 = net.loss_and_gradient(X, T, s)
    monkeypatch.setattr(buffers, "UNIT_ELEMENTS", 12 * 5)  # 5 rows per chunk: 5 chunks
    monkeypatch.setattr(buffers, "WORK_PER_CALL", 1)
    assert net.chunk_rows(X) == 5 and net.chunk_rows(Xs) == 5
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    for data in (X, Xs):
        np.testing.assert_array_equal(net.forward(data), y1)
        out = np.empty_like(y1)
        E = net.loss(data, T, s, outputs=out)
        np.testing.assert_array_equal(out, y1)
        E2, g2 = net.loss_and_gradient(data, T, s)
        assert E2 == pytest.approx(E1, rel=rtol) and E == pytest.approx(E1, rel=rtol)
        np.testing.assert_allclose(g2, g1, rtol=rtol, atol=rtol)


def test_forward_fills_out_and_the_output_pre_activation(backend, rng):
    net = MLP([3, 4, 2], hidden="tanh", output="logistic", loss="binary_cross_entropy",
              backend=backend, random_state=0)
    X = rng.randn(7, 3)
    out, a = np.empty((7, 2)), np.empty((7, 2))
    assert net.forward(X, out=out, pre_activation=a) is out
    W0, W1 = net.coefs_
    b0, b1 = net.intercepts_
    a_ref = np.tanh(X @ W0 + b0) @ W1 + b1  # a_k = Σ_j w_kj z_j + w_k0
    np.testing.assert_allclose(a, a_ref, rtol=1e-12)
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-a_ref)), rtol=1e-12)


def test_bad_sample_weight_is_a_clear_error(rng):
    net = MLP([2, 1])
    X, T = rng.randn(4, 2), rng.randn(4)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(4,\)"):
        net.loss(X, T, np.ones(3))
    with pytest.raises(ValueError, match="finite and >= 0"):
        net.loss_and_gradient(X, T, np.array([1.0, -1.0, 1.0, 1.0]))


def test_weights_start_on_a_64_byte_boundary(backend):
    """The per-sample kernels' vector loads over the first layer's rows; NumPy alone aligns 16."""
    from deltaprop.engine.buffers import aligned_zeros

    for sizes in ([784, 128, 10], [3, 5, 1], [1, 1]):
        net = MLP(sizes, backend=backend, dtype="float32", random_state=0)
        assert net.w.ctypes.data % 64 == 0 and net._replica().w.ctypes.data % 64 == 0
    for n, dt in ((1, np.float32), (1001, np.float64), (7, np.float32)):
        a = aligned_zeros(n, dt)
        assert a.shape == (n,) and a.dtype == dt and a.flags.c_contiguous and a.flags.writeable
        assert a.ctypes.data % 64 == 0 and not a.any()
        # the cache lines a touches belong to its own allocation: no other array shares them
        # (threads write such buffers for every sample)
        owner = a.base
        while owner.base is not None:
            owner = owner.base
        last_line_end = -(-(a.ctypes.data + a.nbytes) // 64) * 64
        assert owner.ctypes.data <= a.ctypes.data and last_line_end <= owner.ctypes.data + owner.nbytes


def test_loading_a_model_leaves_numpys_global_random_state_alone(tmp_path):
    path = tmp_path / "m.npz"
    MLP([3, 4, 2], random_state=1).save(path)
    np.random.seed(123)
    expected = np.random.random_sample(3)
    np.random.seed(123)
    MLP.load(path)
    np.testing.assert_array_equal(np.random.random_sample(3), expected)


def test_reuse_buffers_keeps_one_set_per_shard_for_the_block_only(backend, rng):
    """Inside reuse_buffers, repeated loss_and_gradient calls reuse their unit buffers (one set
    per thread) and give the same sums as fresh buffers; after the block none is kept."""
    net = MLP([5, 7, 3], hidden="relu", output="softmax", loss="cross_entropy", backend=backend,
              random_state=0)
    X, T = rng.rand(300, 5), np.eye(3)[rng.randint(0, 3, 300)]
    g_fresh, g_kept = np.empty(net.w.shape[0]), np.empty(net.w.shape[0])
    E_fresh, _ = net.loss_and_gradient(X, T, out=g_fresh)
    seen = []
    original = MLP._buffers

    def spy(self, n, slot=0, **kw):
        bufs = original(self, n, slot, **kw)
        if not kw:  # the unit buffers (the sweep's gradient buffer has a slot of its own)
            seen.append((slot, bufs[0].__array_interface__["data"][0]))
        return bufs

    with net.reuse_buffers():
        MLP._buffers = spy
        try:
            for _ in range(3):
                E_kept, _ = net.loss_and_gradient(X, T, out=g_kept)
            net.loss_and_gradient(X, T, out=np.empty_like(g_kept), n_jobs=2)
            first = len(seen)
            net.loss_and_gradient(X, T, out=np.empty_like(g_kept), n_jobs=2)
        finally:
            MLP._buffers = original
        assert "_kept" in net.__dict__ and "_kept" not in net._replica().__dict__
    assert E_kept == E_fresh and np.array_equal(g_kept, g_fresh)
    one_thread = {address for slot, address in seen[:3]}
    assert len(one_thread) == 1  # the same memory every call
    threads = {}
    for slot, address in seen[first:]:
        threads.setdefault(slot, set()).add(address)
    # two threads take the pieces (which: whichever is free), a set each, kept from the first
    # call with threads (grown there to the largest piece) for every piece of the second
    assert set(threads) <= {0, 1} and all(len(a) == 1 for a in threads.values())
    assert {a for s, a in seen[3:first]} >= {a for s, a in seen[first:]}
    assert len(seen) - first > 2  # several pieces
    assert "_kept" not in net.__dict__


def test_reuse_buffers_keeps_one_thread_pool_for_the_block(rng, monkeypatch):
    """n_jobs=2 sweeps inside reuse_buffers start their pool once and give the sums of
    pools started per call; the pool's threads are gone after the block."""
    import threading

    from deltaprop.engine import buffers

    net = MLP([5, 7, 3], hidden="tanh", output="softmax", loss="cross_entropy", random_state=0)
    X, T = rng.rand(400, 5), np.eye(3)[rng.randint(0, 3, 400)]
    want = [np.empty(net.w.shape[0]) for _ in range(3)]
    E_want = [net.loss_and_gradient(X, T, out=g, n_jobs=2)[0] for g in want]
    started = []

    class Counted(buffers.Threads):
        def __enter__(self):
            started.append(self)
            return super().__enter__()

    monkeypatch.setattr(buffers, "Threads", Counted)
    before = threading.active_count()
    got = [np.empty(net.w.shape[0]) for _ in range(3)]
    with net.reuse_buffers():
        E_got = [net.loss_and_gradient(X, T, out=g, n_jobs=2)[0] for g in got]
    assert len(started) == 1
    assert E_got == E_want and all(np.array_equal(a, b) for a, b in zip(got, want))
    assert threading.active_count() == before


def _filled_with(fill):
    """An ``aligned_empty`` whose arrays hold ``fill`` (0 or NaN) instead of whatever memory held."""
    def filled(n, dtype):
        a = buffers.aligned_zeros(n, dtype)
        a[...] = fill
        return a
    return filled


@pytest.mark.parametrize("solver,batch_size,sparse", [
    ("sgd", 1, False), ("sgd", 7, False), ("sgd", 32, True), ("momentum", 1, False), ("momentum", 32, False),
    ("nesterov", 7, False), ("nesterov", 1, True), ("adam", 1, False), ("adam", 200, False), ("adam", 500, False)])
def test_epoch_work_buffers_are_written_before_they_are_read(backend, solver, batch_size, sparse, monkeypatch,
                                                            rng):
    """The epoch runner's work buffers (a batch's rows, targets and weights, units, δ, the
    gradient) start uninitialised: filled with NaN instead of zeros, the fit is bit for bit the
    same, for every solver family, on-line, mini-batch and full batch, a short last batch and
    rows of sample weight 0."""
    import scipy.sparse as sp

    from deltaprop import MLPClassifier
    from deltaprop.engine import epochs

    X = rng.rand(300, 6) * (rng.rand(300, 6) < 0.5)
    y = rng.randint(0, 3, 300)
    s = rng.rand(300)
    s[::5] = 0.0
    fits = []
    for fill in (0.0, np.nan):
        monkeypatch.setattr(epochs, "aligned_empty", _filled_with(fill))
        clf = MLPClassifier((9,), activation="tanh", solver="adam" if solver == "adam" else "sgd",
                            momentum=0.0 if solver == "sgd" else 0.9, nesterovs_momentum=solver == "nesterov",
                            batch_size=batch_size, alpha=1e-3, learning_rate_init=0.01, max_iter=3, tol=0,
                            random_state=0, backend=backend)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", "Got `batch_size`")  # 500 > 300 rows: the full batch
            clf.fit(sp.csr_matrix(X) if sparse else X, y, sample_weight=s)
        fits.append(clf)
    zero, nan = fits
    assert np.isfinite(nan.loss_curve_).all()
    assert nan.loss_curve_ == zero.loss_curve_
    for a, b in zip(zero.coefs_ + zero.intercepts_, nan.coefs_ + nan.intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch_size,n_jobs", [(1, 1), (7, 1), (32, 2), (1, 2), (500, 1)])
def test_plain_gradient_descent_reads_no_optimizer_state(backend, batch_size, n_jobs, monkeypatch, rng):
    """MLP.fit, batch_epoch and sgd_epoch hand the kernels an uninitialised solver state (plain
    sgd keeps none) and uninitialised work buffers: filled with NaN, every weight and error is
    bit for bit what zeros give."""
    from deltaprop.engine import descent, epochs

    X, T = rng.rand(300, 6), np.eye(3)[rng.randint(0, 3, 300)]
    results = []
    for fill in (0.0, np.nan):
        monkeypatch.setattr(descent, "aligned_empty", _filled_with(fill))
        monkeypatch.setattr(epochs, "aligned_empty", _filled_with(fill))
        net = MLP([6, 9, 3], hidden="tanh", output="softmax", loss="cross_entropy", backend=backend,
                  random_state=0)
        net.fit(X, T, epochs=2, lr=0.05, batch_size=batch_size, n_jobs=n_jobs)
        E = (net.batch_epoch(X, T, 0.05, batch_size) if batch_size > 1 else net.sgd_epoch(X, T, 0.05))
        results.append((net.w.copy(), list(net.loss_curve_) + [E]))
    (w0, curve0), (w1, curve1) = results
    assert np.isfinite(w1).all() and curve1 == curve0
    np.testing.assert_array_equal(w1, w0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("hidden", ["tanh", "relu"])
@pytest.mark.parametrize("call", ["sgd_epoch", "batch_epoch", "fit-1", "fit-32", "fit-200", "fit-2-threads"])
def test_a_nan_or_infinity_in_a_visited_row_of_X_is_a_clear_error(backend, bad, hidden, call, rng):
    """The training methods check X's values only when an epoch fails; a NaN or ±inf in any row
    the epochs visit (here one value of one row, large weights so that tanh and relu saturate
    or die on it) is still a ValueError naming X, with the weights, loss curve and random state
    as they were. Batches of 200 read the rows in place in numba's first layer (``indexed``)."""
    X, T = rng.rand(250, 5), np.eye(3)[rng.randint(0, 3, 250)]
    X[37, 2] = bad
    net = MLP([5, 6, 3], hidden=hidden, output="softmax", loss="cross_entropy", backend=backend, random_state=0)
    net.w *= 50
    net.fit(np.nan_to_num(X, posinf=0, neginf=0), T, epochs=1, lr=1e-6)
    before, curve, rng_state = net.w.copy(), list(net.loss_curve_), net._rng.get_state()[1].copy()
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        if call == "sgd_epoch":
            net.sgd_epoch(X, T, 1e-3)
        elif call == "batch_epoch":
            net.batch_epoch(X, T, 1e-3, 7)
        else:
            _, b, *threads = call.split("-")
            net.fit(X, T, epochs=3, lr=1e-3, batch_size=int(b), n_jobs=2 if threads else 1)
    np.testing.assert_array_equal(net.w, before)
    assert net.loss_curve_ == curve and np.array_equal(net._rng.get_state()[1], rng_state)


def test_rows_of_X_an_epoch_does_not_visit_are_not_read(rng):
    """A NaN in a row outside ``order`` changes nothing: the epoch is the one without that row."""
    X, T = rng.rand(50, 4), np.eye(2)[rng.randint(0, 2, 50)]
    order = np.arange(1, 50)
    nets = [MLP([4, 5, 2], output="softmax", loss="cross_entropy", random_state=0) for _ in range(2)]
    bad = X.copy()
    bad[0, 1] = np.nan
    E_bad = nets[0].batch_epoch(bad, T, 0.1, 8, order=order)
    E = nets[1].batch_epoch(X, T, 0.1, 8, order=order)
    assert E_bad == E and np.array_equal(nets[0].w, nets[1].w)
