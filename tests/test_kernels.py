"""Every compiled backend equals the NumPy reference, kernel by kernel (differential tests).

Random depths 1-3, layer sizes 1-40, every hidden activation and every output/loss pair, both
dtypes. Bounds, relative to the largest entry: 1e-12 in float64; in float32 ``TOL[float32]`` =
2e-4 for one pass (a unit roundoff of 6e-8, sums over up to 40 terms, transcendental functions
of another libm) and ``EPOCH_TOL[float32]`` = 5e-3 after epochs of updates.
"""

import collections
import importlib
import types

import numpy as np
import pytest
from conftest import BACKENDS, COMPILED, HIDDEN_ACTIVATIONS, PAIRS, TOL
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from deltaprop.backends import get_backend
from deltaprop.contract import ACTIVATIONS, LOSSES, SOLVERS
from deltaprop.layout import make_layout, n_params, n_units

pytestmark = pytest.mark.skipif(not COMPILED, reason="no compiled backend is available")

REF = get_backend("numpy")


#: After up to 2 epochs of updates (momentum and Adam feed each rounding difference into every
#: later step) float32 runs drift further apart: the reference itself differs from a float64 run
#: by up to 7e-4 relative in the worst cases found. float64 keeps the kernel bound.
EPOCH_TOL = {np.float32: 5e-3, np.float64: TOL[np.float64]}


def assert_close(actual, expected, dtype, tol=TOL):
    """Relative to the largest magnitude of ``expected`` (entries can be near zero)."""
    scale = max(float(np.max(np.abs(expected))), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol[dtype] * scale)


@st.composite
def problems(draw):
    depth = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(1, 40), min_size=depth + 1, max_size=depth + 1))
    hidden = draw(st.sampled_from(HIDDEN_ACTIVATIONS))
    output, loss = draw(st.sampled_from(PAIRS))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.RandomState(seed)
    layout = make_layout(sizes)
    # weights scaled by 1/sqrt(n_in), as initialisations are, so activations stay O(1): a
    # differential test compares rounding, not the chaos of an exploding network
    w = rng.randn(n_params(layout))
    for n_in, _n_out, w_off, b_off, _ in layout:
        w[w_off : b_off] /= np.sqrt(n_in)
    w = w.astype(dtype)
    X = rng.randn(n, sizes[0]).astype(dtype)
    K = sizes[-1]
    if output == "softmax":
        T = np.eye(K, dtype=dtype)[rng.randint(0, K, n)]
    elif output == "logistic":
        T = rng.rand(n, K).astype(dtype)
    elif output == "exp":
        T = rng.poisson(1.0, (n, K)).astype(dtype)
    else:
        T = rng.randn(n, K).astype(dtype)
    codes = (ACTIVATIONS[hidden], ACTIVATIONS[output], LOSSES[loss])
    return layout, codes, w, X, T, dtype


def run_backward(k, layout, codes, w, X, T):
    h, f, e = codes
    n, U = X.shape[0], n_units(layout)
    A, Z, D = (np.zeros(n * U, dtype=w.dtype) for _ in range(3))
    g = np.zeros_like(w)
    k.forward(w, layout, h, f, X, A, Z)
    s = np.linspace(0.5, 1.5, n).astype(w.dtype)  # sample weights
    E = k.output_delta(layout, f, e, A, Z, T, s, D)
    k.backprop(w, layout, h, A, Z, D)
    k.gradient(layout, X, Z, D, g)
    return A, Z, D, g, E


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", COMPILED)
@SETTINGS
@given(problem=problems())
def test_forward_loss_and_gradient_match_reference(name, problem):
    layout, codes, w, X, T, dtype = problem
    got = run_backward(get_backend(name), layout, codes, w, X, T)
    want = run_backward(REF, layout, codes, w, X, T)
    for g_arr, w_arr in zip(got[:4], want[:4], strict=False):
        assert g_arr.dtype == dtype
        assert_close(g_arr, w_arr, dtype)
    assert_close(np.float64(got[4]), np.float64(want[4]), dtype)


def chunked_sweep(k, layout, codes, w, X, T, s, rows, grad):
    """``loss_gradient`` spelled out: the four kernels called chunk by chunk from Python."""
    h, f, e = codes
    U = n_units(layout)
    E = 0.0
    for start in range(0, X.shape[0], rows):
        Xc, Tc, sc = X[start : start + rows], T[start : start + rows], s[start : start + rows]
        A, Z, D = (np.zeros(Xc.shape[0] * U, dtype=w.dtype) for _ in range(3))
        g = np.zeros_like(w)
        k.forward(w, layout, h, f, Xc, A, Z)
        E += float(k.output_delta(layout, f, e, A, Z, Tc, sc, D))
        k.backprop(w, layout, h, A, Z, D)
        k.gradient(layout, Xc, Z, D, g)
        grad += g
    return E


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(problem=problems(), rows=st.integers(1, 9), spare=st.integers(0, 5))
def test_loss_gradient_is_the_chunked_sweep(name, problem, rows, spare):
    """One ``loss_gradient`` call equals the four kernels over chunks of ``len(A) // U`` rows
    (``spare`` values beyond whole rows are not used), added into a float64 ``grad`` that
    already holds a sum; in float64 bit for bit on the NumPy reference."""
    layout, codes, w, X, T, dtype = problem
    k, U = get_backend(name), n_units(layout)
    s = np.linspace(0.5, 1.5, X.shape[0]).astype(dtype)
    start = np.linspace(-1.0, 1.0, w.shape[0])  # a sum from other rows, added to
    A, Z, D = (np.full(rows * U + spare, np.nan, dtype=dtype) for _ in range(3))
    grad = start.copy()
    E = k.loss_gradient(w, layout, *codes, X, T, s, A, Z, D, np.zeros_like(w), grad)
    chunk = A.shape[0] // U  # rows, or one more when the spare values make a whole row
    want_grad = start.copy()
    want_E = chunked_sweep(REF, layout, codes, w, X, T, s, chunk, want_grad)
    assert grad.dtype == np.float64
    if name == "numpy" and dtype == np.float64:
        assert E == want_E and np.array_equal(grad, want_grad)
    assert_close(grad, want_grad, dtype)
    assert_close(np.float64(E), np.float64(want_E), dtype)
    own_grad = start.copy()
    own_E = chunked_sweep(k, layout, codes, w, X, T, s, chunk, own_grad)
    assert_close(grad, own_grad, dtype)
    assert_close(np.float64(E), np.float64(own_E), dtype)


@pytest.mark.parametrize("name", BACKENDS)
def test_loss_gradient_of_no_rows_adds_nothing(name):
    layout = make_layout([3, 4, 2])
    k, U = get_backend(name), n_units(layout)
    w = np.ones(n_params(layout))
    grad = np.arange(w.shape[0], dtype=np.float64)
    E = k.loss_gradient(w, layout, ACTIVATIONS["tanh"], ACTIVATIONS["identity"], LOSSES["squared_error"],
                        np.zeros((0, 3)), np.zeros((0, 2)), np.zeros(0), *(np.zeros(U) for _ in range(3)),
                        np.zeros_like(w), grad)
    assert E == 0 and np.array_equal(grad, np.arange(w.shape[0]))


def run_epoch(k, layout, codes, w, X, T, order, batch_size, solver, alpha):
    h, f, e = codes
    w = w.copy()
    n, U, dt = X.shape[0], n_units(layout), w.dtype
    s = np.linspace(0.0 if n > 2 else 0.5, 2.0, n).astype(dt)  # includes a zero weight
    hyper = np.array([0.05, alpha, 0.9, 0.9, 0.999, 1e-8], dtype=dt)
    state = np.zeros((2, w.shape[0]), dtype=dt)
    t = np.zeros(1, dtype=np.int64)
    losses = np.zeros((order.shape[0], 2))
    if batch_size == 1:
        bufs = [np.zeros(U, dtype=dt) for _ in range(3)]
        k.sgd_epoch(w, layout, h, f, e, X, T, s, order, solver, hyper, state, t, *bufs, losses)
    else:
        Xb = np.zeros((batch_size, X.shape[1]), dtype=dt)
        Tb = np.zeros((batch_size, T.shape[1]), dtype=dt)
        sb = np.zeros(batch_size, dtype=dt)
        bufs = [np.zeros(batch_size * U, dtype=dt) for _ in range(3)]
        k.batch_epoch(w, layout, h, f, e, X, T, s, order, batch_size, solver, hyper, state, t,
                      Xb, Tb, sb, *bufs, np.zeros_like(w), losses)
    return w, state, t, losses


#: Diverging runs are discarded, not compared; at most this fraction of the examples drawn may
#: be (a test that discards everything must not pass).
MAX_DISCARDED = 0.2


@pytest.mark.parametrize("name", COMPILED)
def test_epochs_update_weights_like_reference(name):
    tally = collections.Counter()

    @SETTINGS
    @given(problem=problems(), n_epochs=st.integers(1, 2), batch_size=st.integers(1, 5),
           solver=st.sampled_from(sorted(SOLVERS.values())), alpha=st.sampled_from([0.0, 0.01]),
           seed=st.integers(0, 1000))
    def compare(problem, n_epochs, batch_size, solver, alpha, seed):
        tally["drawn"] += 1
        layout, codes, w, X, T, dtype = problem
        rng = np.random.RandomState(seed)
        order = np.stack([rng.permutation(X.shape[0]) for _ in range(n_epochs)]).astype(np.intp)
        with np.errstate(all="ignore"):  # overflow in a diverging run is discarded below
            try:
                got = run_epoch(get_backend(name), layout, codes, w, X, T, order, batch_size, solver, alpha)
            except OverflowError:  # math.exp of pure Python, under NUMBA_DISABLE_JIT=1 (coverage runs)
                discard("overflow")
            want = run_epoch(REF, layout, codes, w, X, T, order, batch_size, solver, alpha)
        # A diverging trajectory (exp outputs grow fast) amplifies rounding without bound: compare
        # only runs that stay in a numerically meaningful range.
        if not all(np.isfinite(arr).all() and np.abs(arr).max() < 1e6 for arr in want[:1] + want[3:]):
            discard("diverged")
        for g_arr, w_arr in zip(got, want, strict=False):
            assert_close(g_arr, w_arr, dtype, EPOCH_TOL)
        tally["compared"] += 1

    def discard(reason):
        tally["discarded"] += 1
        event(f"discarded: {reason}")
        assume(False)

    compare()
    assert tally["compared"] > 0
    assert tally["discarded"] <= MAX_DISCARDED * tally["drawn"], dict(tally)


#: (layer sizes, batch size): the per-sample kernels (batch 1) on the smallest shape only
BLAS_SIZED = [([64, 40, 10], b) for b in (1, 7, 32, 200, 250)] + [
    (sizes, b) for sizes in ([70, 43, 10], [400, 150, 10], [800, 300, 7]) for b in (7, 32, 200, 250)
] + [([70, 100, 10], 200)]


@pytest.mark.parametrize("name", COMPILED)
@pytest.mark.parametrize(("sizes", "batch_size"), BLAS_SIZED)
@pytest.mark.parametrize("solver", ["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("alpha", [0.0, 1e-4])
def test_epochs_on_blas_sized_layers_match_reference(name, batch_size, solver, alpha, sizes, dtype):
    """The mini-batch path where the compiled backends call BLAS (relu, softmax, 250 samples,
    one of weight 0: batches of 1 (per-sample kernels, on 64-40-10), 7, 32, 200 (short last
    batches) and the full batch), two epochs of each solver, equal to the reference. Plain sgd and momentum take
    their step inside the gradient's products, Nesterov and Adam from a gradient buffer. The
    first layer's products in Cython's AVX2 and AVX-512 builds read the rows through the order in
    register tiles of 6 rows by two vectors of columns (16 or 32 floats, 8 or 16 doubles; W
    packed, at most 384 rows at a time, for batches of 64 rows or more; else read where it is),
    on batches of 128 rows or more, or of any size with 384 inputs or more: 64-40 fills whole
    AVX2 tiles (in double), 70-43 and 400-150 end in part of one in both directions (43 and 150
    leave, between them, a last panel of at most one vector and one of more in every build and
    dtype: the narrow tile and the masked full one), 400-150 takes W in two blocks of rows, and
    800-300 in blocks of rows and of columns (in float; in double its W is past the size those
    products take, and the batch is gathered for BLAS); 70-100 (scikit-learn's 100 hidden units)
    ends in a panel of 4 columns, which the AVX-512 build takes in 256-bit tiles. numba's
    batch epochs read the rows through the order on the same batches (``indexed``: tiles of
    6 rows by two vectors, the last panel of one vector or two masked past the columns; both
    products in blocks of rows, several in a batch of 200 or 250 rows of 400 or 800 inputs), so
    400-150 and 800-300 (float) take it at every batch size, 64-40, 70-43 and 70-100 at 200
    and 250, adding the bias and applying relu as the forward tiles are stored."""
    args = blas_sized_problem(sizes, batch_size, solver, alpha, dtype)
    got = run_epoch(get_backend(name), *args)
    want = run_epoch(REF, *args)
    for g_arr, w_arr in zip(got, want, strict=False):
        assert_close(g_arr, w_arr, dtype, EPOCH_TOL)


def cython_epoch_builds():
    """Every build of Cython's epoch module that this CPU runs (portable, AVX2, AVX-512)."""
    try:
        from deltaprop.kernels import _cython
    except ImportError:
        return []
    mods = [_cython.epoch]
    for variant, runs in (("avx2", _cython._cpu_has_avx2_fma), ("avx512", _cython._cpu_has_avx512)):
        try:
            mod = importlib.import_module(f"deltaprop.kernels._cython.epoch_{variant}")
        except ImportError:
            continue
        if runs():
            mods.append(mod)
    return mods


#: inputs and batches whose last blocks of 6 rows are short in every way: 389 inputs end in 5
#: rows of W, 385 in 1; batches of 200 in 2 rows, of 7 in 1 and their last (250 = 35 x 7 + 5) in 5
ROW_TAILS = [([389, 43, 10], 200), ([385, 40, 10], 7)]


@pytest.mark.parametrize("build", cython_epoch_builds(), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize(("sizes", "batch_size"), [sb for sb in BLAS_SIZED if sb[0][0] > 64] + ROW_TAILS)
@pytest.mark.parametrize("solver", ["sgd", "momentum", "adam"])
def test_each_cython_build_of_batch_epoch_matches_reference(build, sizes, batch_size, solver, dtype):
    """The test above on each build of Cython's epoch module, not only the one the backend picks
    on this CPU (with L2, so that plain sgd's product scales W by beta != 1; Adam's writes a
    gradient buffer with beta = 0), and on :data:`ROW_TAILS`: the register tiles of a last,
    short block of rows sum only the rows it has (2 or 4 of 6), in the forward product (the
    batch's rows) and the gradient (W's rows)."""
    args = blas_sized_problem(sizes, batch_size, solver, 1e-4, dtype)
    kernels = types.SimpleNamespace(batch_epoch=build.batch_epoch)
    got = run_epoch(kernels, *args)
    want = run_epoch(REF, *args)
    for g_arr, w_arr in zip(got, want, strict=False):
        assert_close(g_arr, w_arr, dtype, EPOCH_TOL)


@pytest.mark.parametrize("build", cython_epoch_builds(), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("hidden", ["identity", "logistic", "tanh", "relu", "softplus"])
@pytest.mark.parametrize(("sizes", "batch_size"), [([70, 43, 10], 200), ([70, 43, 10], 32),
                                                   ([70, 43, 10], 16), ([64, 40, 20, 7], 250)])
def test_backprop_through_narrow_layers_matches_reference(build, hidden, sizes, batch_size, dtype):
    """Cython's SIMD builds take the δ-backprop through a layer of at most 32 outputs, on
    batches of 32 rows or more, in register tiles that multiply by h' as they store: for each
    hidden activation they take (identity, logistic, tanh, relu; softplus goes through BLAS and
    a pass), on 43 units below (a last panel of part of a vector or of two, by build and dtype)
    and on a network of two such layers (20 and 7 outputs), equal to the reference; batch 16
    (BLAS) beside it. One epoch of the first 2 x batch_size samples (at most 250), and the
    steps compared (the weights' change), so that float32 holds the tolerance of one call."""
    layout, codes, w, X, T, order, _, solver, alpha = blas_sized_problem(sizes, batch_size, "sgd",
                                                                          1e-4, dtype, hidden)
    args = (layout, codes, w, X, T, order[:1, :2 * batch_size], batch_size, solver, alpha)
    got = run_epoch(types.SimpleNamespace(batch_epoch=build.batch_epoch), *args)
    want = run_epoch(REF, *args)
    assert_close(got[0] - w, want[0] - w, dtype)
    assert_close(got[3], want[3], dtype)


def blas_sized_problem(sizes, batch_size, solver, alpha, dtype, hidden="relu"):
    """:func:`run_epoch`'s arguments for the BLAS-sized tests (``hidden``, softmax,
    cross-entropy)."""
    rng = np.random.RandomState(11)
    n_in = sizes[0]
    layout = make_layout(sizes)
    w = rng.randn(n_params(layout))
    for fan_in, _n_out, w_off, b_off, _ in layout:
        w[w_off:b_off] /= np.sqrt(fan_in)
    w = w.astype(dtype)
    m = 250
    X = (rng.rand(m, n_in) * (rng.rand(m, n_in) > 0.5)).astype(dtype)  # digits-like: half zeros
    T = np.eye(sizes[-1], dtype=dtype)[rng.randint(0, sizes[-1], m)]
    order = np.stack([rng.permutation(m) for _ in range(2)]).astype(np.intp)
    if batch_size == 1:  # hundreds of per-sample Adam steps amplify rounding past 1e-12: 60 steps
        order = order[:1, :60]
    codes = (ACTIVATIONS[hidden], ACTIVATIONS["softmax"], LOSSES["cross_entropy"])
    return (layout, codes, w, X, T, order, batch_size, SOLVERS[solver], alpha)


#: dense first layers of 384 inputs or more, which per-sample plain sgd takes in windows of six
#: samples (both compiled backends, where this CPU has the indexed products' vectors), with a
#: hidden activation: 43 outputs end in part of a vector in every vector width (every
#: activation), 785 inputs in an odd row, a second hidden layer, and a net of one layer
#: (softmax regression, its δ the output's)
WINDOWED = [([400, 43, 10], "tanh"), ([400, 43, 10], "relu"), ([400, 43, 10], "logistic"),
            ([785, 100, 3], "tanh"), ([400, 40, 20, 7], "relu"), ([390, 5], "tanh")]


def dense_problem(sizes, dtype, hidden="tanh", n=250, seed=5):
    """:func:`run_epoch`'s arguments on dense inputs in [0, 1) (``hidden``, softmax,
    cross-entropy)."""
    rng = np.random.RandomState(seed)
    layout = make_layout(sizes)
    w = rng.randn(n_params(layout))
    for fan_in, _n_out, w_off, b_off, _ in layout:
        w[w_off:b_off] /= np.sqrt(fan_in)
    X = rng.rand(n, sizes[0]).astype(dtype)
    T = np.eye(sizes[-1], dtype=dtype)[rng.randint(0, sizes[-1], n)]
    codes = (ACTIVATIONS[hidden], ACTIVATIONS["softmax"], LOSSES["cross_entropy"])
    return layout, codes, w.astype(dtype), X, T


@pytest.mark.parametrize("name", COMPILED)
@pytest.mark.parametrize(("sizes", "hidden"), WINDOWED)
@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_per_sample_sgd_on_dense_inputs_matches_reference(name, sizes, hidden, alpha, dtype):
    """Plain per-sample sgd, without and with L2, on dense inputs, where the compiled backends
    take the first layer a window of six samples at a time (each sample's pre-activations from
    the window's first weights, corrected by the window's earlier steps and decays; the
    window's updates in one pass; the penalty's norm of the first layer from the window's sums):
    three epochs of 250 samples in one call (41 full windows and one of 4 per epoch, windows
    running across the epochs' boundaries), samples of weight 0 skipped and weights from near 0
    to 2 (decays from 0.75 to 1), equal to the reference in weights and per-epoch losses and
    penalties."""
    layout, codes, w, X, T = dense_problem(sizes, dtype, hidden)
    rng = np.random.RandomState(2)
    order = np.stack([rng.permutation(X.shape[0]) for _ in range(3)]).astype(np.intp)
    got = run_epoch(get_backend(name), layout, codes, w, X, T, order, 1, SOLVERS["sgd"], alpha)
    want = run_epoch(REF, layout, codes, w, X, T, order, 1, SOLVERS["sgd"], alpha)
    assert ((want[3][:, 1] > 0) == (alpha > 0)).all()
    assert np.abs(got[0] - w).max() > 0.01  # the weights moved
    for g_arr, w_arr in zip(got, want, strict=False):
        assert_close(g_arr, w_arr, dtype, EPOCH_TOL)


def test_dense_inputs_are_told_by_the_first_samples_of_the_call():
    """Per-sample plain sgd lists the non-zero inputs of each sample unless the call's first 16
    samples (in the order) are at least 90 % non-zero: then every row is visited (the same
    bits; the list costs more than it saves on dense inputs)."""
    from deltaprop.contract import mostly_nonzero as rule
    rng = np.random.RandomState(0)
    X = rng.uniform(0.5, 1.0, (40, 10))
    order = np.arange(40, dtype=np.intp)[None, :]
    assert rule(X, order)
    sparse = X.copy()
    sparse[rng.uniform(size=X.shape) < 0.5] = 0
    assert not rule(sparse, order)
    # 16 samples of 10 inputs: 144 non-zeros are 90 %, 143 are not
    edge = X.copy()
    edge[:16].flat[:16] = 0
    assert rule(edge, order)
    edge[:16].flat[16] = 0
    assert not rule(edge, order)
    # only the order's first 16 samples count: dense ones first, then sparse ones
    mixed = np.vstack([X[:16], sparse[16:]])
    assert rule(mixed, order) and not rule(mixed, order[:, ::-1].copy())
    assert not rule(X, np.empty((1, 0), dtype=np.intp))


@pytest.mark.parametrize("name", BACKENDS)
def test_softmax_of_wide_logits_is_within_a_few_ulp(name, dtype):
    """The forward pass's softmax over 20 units whose logits span thousands (many below the exp
    cut-off of the compiled backends), 500 samples, against the exact softmax (in float64 or
    long double) of the shifted logits as the dtype rounds them: within 4 units in the last
    place where the output is well inside the normal range, below the smallest normal number
    where it underflows, each row summing to 1."""
    k = get_backend(name)
    layout = make_layout([3, 20])
    rng = np.random.RandomState(0)
    w = (rng.randn(n_params(layout)) * 300).astype(dtype)
    X = rng.randn(500, 3).astype(dtype)
    A = np.empty(500 * n_units(layout), dtype)
    Z = np.empty_like(A)
    k.forward(w, layout, ACTIVATIONS["identity"], ACTIVATIONS["softmax"], X, A, Z)
    a = A.reshape(500, 20)
    shifted = a - a.max(axis=1, keepdims=True)  # rounded as the kernels round it
    assert (shifted < -1000).mean() > 0.2 and ((shifted > -80) & (shifted < -1)).sum() > 100
    e = np.exp(shifted.astype(np.longdouble if dtype == np.float64 else np.float64))
    exact = e / e.sum(axis=1, keepdims=True)
    z = Z.reshape(500, 20)
    tiny = np.finfo(dtype).tiny
    ok = exact > tiny * 2**40
    ulp = np.spacing(exact[ok].astype(dtype)).astype(exact.dtype)
    assert np.all(np.abs(z[ok] - exact[ok]) <= 4 * ulp)
    assert np.all(z[exact < tiny] < tiny)  # 0, or a subnormal number
    np.testing.assert_allclose(z.astype(np.float64).sum(axis=1), 1, rtol=10 * np.finfo(dtype).eps)
