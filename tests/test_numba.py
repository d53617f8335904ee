"""Claims specific to the numba backend (everything shared is tested over all backends elsewhere).

- float32 stays float32: the compiled signature of the epoch kernel holds no float64 array
  except the contract's float64 ``losses``;
- skipping zero inputs and fusing the first layer's update with the next forward sum changes no
  bit: the same kernel visiting every row gives identical weights;
- per-sample SGD with L2 keeps the first layer as a scale times a matrix (so zero inputs still
  skip their rows) and equals the reference, also where the scale is folded back;
- the sweep's update of four rows, emitted as explicit vector code, is bit for bit the plain
  loop LLVM vectorises, for every flag, both dtypes and column counts around the vector width;
- the helpers called for every sample are compiled without reference counting;
- ``tanh_units`` is within 2 units in the last place of max(|tanh x|, 1/2), ``exp_units``
  within 2 units in the last place of :math:`e^x` over softmax's range;
- kernels are compiled with ``cache=True`` and lazily (importing compiles nothing);
- the NUMBA_CACHE_DIR fallback of read-only installs.
"""

import os

import numpy as np
import pytest
from conftest import BACKENDS, TOL, sparse_problem

from deltaprop.contract import ACTIVATIONS, LOSSES, SOLVERS
from deltaprop.layout import make_layout, n_params, n_units

pytestmark = pytest.mark.skipif("numba" not in BACKENDS, reason="numba backend not available")

#: claims about compiled code (signatures, cache, reference counting) need the JIT; the maths
#: claims also hold in a coverage run with NUMBA_DISABLE_JIT=1
needs_jit = pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1",
                               reason="inspects compiled code; NUMBA_DISABLE_JIT=1 compiles nothing")


def plain_sgd(layout, w, X, T, order, skip_zeros):
    from deltaprop.kernels._numba.sgd_plain import sgd_plain

    dt = w.dtype
    w = w.copy()
    U = n_units(layout)
    s = np.ones(X.shape[0], dtype=dt)
    bufs = [np.zeros(U, dtype=dt) for _ in range(3)]
    losses = np.zeros((order.shape[0], 2))
    sgd_plain(w, layout, ACTIVATIONS["tanh"], ACTIVATIONS["softmax"], LOSSES["cross_entropy"], X, T, s,
              order, dt.type(0.1), *bufs, losses, skip_zeros)
    return w, losses


def test_zero_input_skipping_gives_identical_weights_to_visiting_every_row(dtype):
    layout, w, X, T = sparse_problem(dtype)
    rng = np.random.RandomState(1)
    order = np.stack([rng.permutation(X.shape[0]) for _ in range(3)]).astype(np.intp)
    w_skip, loss_skip = plain_sgd(layout, w, X, T, order, True)
    w_dense, loss_dense = plain_sgd(layout, w, X, T, order, False)
    assert not np.array_equal(w_skip, w)
    np.testing.assert_array_equal(w_skip, w_dense)
    np.testing.assert_array_equal(loss_skip, loss_dense)


@needs_jit
@pytest.mark.parametrize("solver, alpha, name", [("sgd", 0.0, "sgd_plain"), ("sgd", 1e-4, "sgd_decay"),
                                                  ("momentum", 1e-4, "sgd_general")])
def test_float32_epoch_compiles_without_float64_arrays(solver, alpha, name):
    from deltaprop.kernels import _numba

    layout, w, X, T = sparse_problem(np.float32)
    U, dt = n_units(layout), np.float32
    order = np.arange(X.shape[0], dtype=np.intp)[None, :]
    hyper = np.array([0.1, alpha, 0.9, 0.9, 0.999, 1e-8], dtype=dt)
    _numba.sgd_epoch(w, layout, ACTIVATIONS["tanh"], ACTIVATIONS["softmax"], LOSSES["cross_entropy"], X, T,
                     np.ones(X.shape[0], dt), order, SOLVERS[solver], hyper,
                     np.zeros((2, w.size), dt), np.zeros(1, np.int64), *(np.zeros(U, dt) for _ in range(3)),
                     np.zeros((1, 2)))
    import importlib

    kernel = getattr(importlib.import_module(f"deltaprop.kernels._numba.{name}"), name)
    sigs = [sig for sig in kernel.signatures if str(sig[0].dtype) == "float32"]
    assert sigs
    for sig in sigs:
        float64_args = [a for a in sig if str(getattr(a, "dtype", "")) == "float64"]
        assert [a.ndim for a in float64_args] == [2]  # losses (n_epochs, 2) only


def numba_module(name):
    import importlib

    return importlib.import_module(f"deltaprop.kernels._numba.{name}")


@needs_jit
def test_kernels_are_cached_and_compiled_lazily():
    _jit, forward, backprop, epoch = (numba_module(m) for m in ("_jit", "forward", "backprop", "epoch"))
    for kernel in (forward.forward, backprop.output_delta, backprop.backprop, backprop.gradient,
                   numba_module("sgd_plain").sgd_plain, numba_module("sgd_decay").sgd_decay,
                   numba_module("sgd_general").sgd_general, epoch.batch_epoch,
                   numba_module("sgd_plain").first_layer, numba_module("sgd_decay").first_layer_scaled):
        assert type(kernel._cache).__name__ == "FunctionCache"  # cache=True
        assert kernel.targetoptions["nogil"] is True
    assert not {"nnan", "ninf", "fast"} & set(_jit.FASTMATH)  # NaN and inf stay meaningful


@needs_jit
def test_per_sample_helpers_skip_reference_counting():
    """The helpers called once per sample borrow their arrays (``_nrt=False``): with numba's
    reference counting every call pays atomic increments per array argument."""
    from numba.core.registry import CPUDispatcher

    # the epoch kernels allocate their buffers
    kernels = {"sgd_plain", "sgd_decay", "sgd_general", "sgd_windows"}
    helpers = [f for m in ("rows", "sgd_plain", "sgd_decay", "sgd_general", "sgd_windows")
               for name, f in vars(numba_module(m)).items()
               if isinstance(f, CPUDispatcher) and name not in kernels]
    helpers += [numba_module("activations").activate, numba_module("activations").derivative,
                numba_module("backprop").sample_delta, numba_module("update").update_rows,
                numba_module("update").adam_rate]
    assert len(helpers) >= 15
    for helper in helpers:
        assert helper.targetoptions["_nrt"] is False, helper.py_func.__qualname__
        assert type(helper._cache).__name__ == "FunctionCache"


@needs_jit
def test_import_compiles_nothing():
    import subprocess
    import sys

    code = ("import deltaprop.kernels._numba as k, importlib; "
            "m = lambda name: importlib.import_module('deltaprop.kernels._numba.' + name); "
            "print(sum(len(f.signatures) for f in (k.forward, k.output_delta, k.backprop, "
            "k.gradient, m('sgd_plain').sgd_plain, m('sgd_decay').sgd_decay, "
            "m('sgd_general').sgd_general, k.batch_epoch)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_units_is_within_two_ulp(dtype):
    """Error of the vectorised tanh against float64 (float32 arrays) or long double (float64)
    at most 2 units in the last place of max(|tanh x|, 1/2), on a grid over both branches,
    the clamp and the tails; NaN stays NaN."""
    tanh_units = numba_module("activations").tanh_units
    x = np.concatenate([np.linspace(-30, 30, 200_001), np.geomspace(1e-30, 30, 10_001),
                        -np.geomspace(1e-30, 30, 10_001), [0.0, 0.625, -0.625, 22.0, np.inf, -np.inf]])
    a = x.astype(dtype)
    z = np.empty_like(a)
    tanh_units(a, z, np.uint64(0), np.uint64(a.size))
    exact = np.tanh(a.astype(np.longdouble if dtype == np.float64 else np.float64))
    ulp = np.spacing(np.maximum(np.abs(exact), 0.5).astype(dtype)).astype(exact.dtype)
    assert np.all(np.abs(z - exact) <= 2 * ulp)
    nan = np.array([np.nan], dtype=dtype)
    out = np.empty_like(nan)
    tanh_units(nan, out, np.uint64(0), np.uint64(1))
    assert np.isnan(out[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_units_is_within_two_ulp(dtype):
    """The vectorised shifted exp of softmax against float64 (float32 arrays) or long double
    (float64): within 2 units in the last place where :math:`e^x` is a normal number above the
    cut-off (-87 / -708), 0 below it, the sum returned; NaN stays NaN."""
    exp_units = numba_module("activations").exp_units
    lo = -87.0 if dtype == np.float32 else -708.0
    x = np.concatenate([-np.geomspace(1e-30, -lo, 100_001), np.linspace(lo, 0, 100_001), [0.0, -0.0, lo - 0.5,
                        2 * lo, -np.inf]])
    a = (x + 3).astype(dtype)  # shifted by 3: exp(a - 3)
    z = np.empty_like(a)
    total = exp_units(a, z, np.uint64(0), np.uint64(a.size), dtype(3))
    shifted = a - dtype(3)  # rounded as the kernel rounds it; the exp of that is the truth
    exact = np.exp(shifted.astype(np.longdouble if dtype == np.float64 else np.float64))
    normal = shifted >= lo
    ulp = np.spacing(exact[normal].astype(dtype)).astype(exact.dtype)
    assert np.all(np.abs(z[normal] - exact[normal]) <= 2 * ulp)
    assert np.all(z[~normal] == 0) and (~normal).sum() >= 3
    assert total == pytest.approx(float(z.astype(np.float64).sum()), rel=1e-5)
    nan = np.array([np.nan], dtype=dtype)
    assert np.isnan(exp_units(nan, np.empty_like(nan), np.uint64(0), np.uint64(1), dtype(0)))


def test_numba_cache_falls_back_to_a_temp_dir_when_nothing_is_writable(monkeypatch):
    import deltaprop.kernels as kernels

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(kernels, "_writable", lambda path: False)
    config = pytest.importorskip("numba.core.config")
    monkeypatch.setattr(config, "CACHE_DIR", config.CACHE_DIR)
    kernels._numba_cache_fallback()
    import os

    assert os.environ["NUMBA_CACHE_DIR"].startswith(__import__("tempfile").gettempdir())
    assert config.CACHE_DIR == os.environ["NUMBA_CACHE_DIR"]


def decay_sgd(layout, w, X, T, s, order, eta, alpha, skip_zeros):
    from deltaprop.kernels._numba.sgd_decay import sgd_decay

    dt = w.dtype
    w = w.copy()
    U = n_units(layout)
    bufs = [np.zeros(U, dtype=dt) for _ in range(3)]
    losses = np.zeros((order.shape[0], 2))
    sgd_decay(w, layout, ACTIVATIONS["tanh"], ACTIVATIONS["softmax"], LOSSES["cross_entropy"], X, T, s,
              order, dt.type(eta), dt.type(alpha), *bufs, losses, skip_zeros)
    return w, losses


def test_l2_sgd_zero_input_skipping_gives_identical_weights(dtype):
    layout, w, X, T = sparse_problem(dtype)
    rng = np.random.RandomState(1)
    order = np.stack([rng.permutation(X.shape[0]) for _ in range(3)]).astype(np.intp)
    s = np.linspace(0.5, 1.5, X.shape[0]).astype(dtype)
    w_skip, loss_skip = decay_sgd(layout, w, X, T, s, order, 0.1, 0.01, True)
    w_dense, loss_dense = decay_sgd(layout, w, X, T, s, order, 0.1, 0.01, False)
    np.testing.assert_array_equal(w_skip, w_dense)
    np.testing.assert_array_equal(loss_skip, loss_dense)


@pytest.mark.parametrize("eta_alpha", [(0.1, 1e-4), (0.1, 0.05), (0.5, 0.9)])
def test_l2_sgd_with_a_scaled_first_layer_equals_the_reference(eta_alpha):
    """W_0 = c V_0 with the decay in c: equal to the reference's dense decay, including steps
    that fold c back into V (small sample weights make 1 - ηα/s tiny, zero or negative)."""
    from deltaprop.backends import get_backend

    eta, alpha = eta_alpha
    ref = get_backend("numpy")
    layout, w, X, T = sparse_problem(np.float64, n=12)
    rng = np.random.RandomState(2)
    order = np.stack([rng.permutation(X.shape[0]) for _ in range(4)]).astype(np.intp)
    s = np.array([1.0, 0.0, 2.0, 0.5, eta * alpha, 1.0, 0.3, 0.6 * eta * alpha, 1.0, 1.5, 0.01, 1.0])
    w_got, loss_got = decay_sgd(layout, w, X, T, s, order, eta, alpha, True)
    want = w.copy()
    U = n_units(layout)
    loss_want = np.zeros((order.shape[0], 2))
    hyper = np.array([eta, alpha, 0.9, 0.9, 0.999, 1e-8])
    ref.sgd_epoch(want, layout, ACTIVATIONS["tanh"], ACTIVATIONS["softmax"], LOSSES["cross_entropy"], X, T, s,
                  order, SOLVERS["sgd"], hyper, np.zeros((2, w.size)), np.zeros(1, np.int64),
                  *(np.zeros(U) for _ in range(3)), loss_want)
    scale = max(np.abs(want).max(), 1.0)
    np.testing.assert_allclose(w_got, want, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(loss_got, loss_want, rtol=1e-12, atol=1e-12)


def test_numba_cache_is_dropped_when_any_kernel_source_changes(tmp_path):
    """numba keys a cached kernel on its own file only; the package drops its in-tree cache when
    any source (or the contract) changes, and keeps it otherwise."""
    from deltaprop.kernels._numba import _drop_stale_cache

    rows, contract = tmp_path / "rows.py", tmp_path / "contract.py"
    rows.write_text("A = 1\n")
    contract.write_text("TANH = 2\n")
    (tmp_path / "__pycache__").mkdir()
    kernel = tmp_path / "__pycache__" / "epoch.sgd_plain-10.py311.nbi"

    def cache_survives(change=None):
        kernel.write_bytes(b"compiled")
        if change:
            change()
        _drop_stale_cache(str(tmp_path), [str(contract)])
        return kernel.exists()

    assert not cache_survives()  # no fingerprint yet
    assert cache_survives()  # nothing changed
    assert not cache_survives(lambda: contract.write_text("TANH = 3\n"))
    assert cache_survives()
    assert not cache_survives(lambda: rows.write_text("A = 2\n"))
    assert cache_survives()


@pytest.mark.parametrize("solver", list(SOLVERS))
def test_update_equals_the_reference(solver, dtype):
    """``update(w, g, solver, hyper, state, step)``, the reference's signature and rules, twice
    in a row (Adam's step count advances)."""
    from deltaprop.contract import make_hyper
    from deltaprop.kernels._numpy.update import update as reference

    rng = np.random.RandomState(0)
    w0, g = rng.randn(37).astype(dtype), rng.randn(37).astype(dtype)
    hyper = make_hyper(dtype, eta=0.1, momentum=0.9)
    got = [w0.copy(), np.zeros((2, 37), dtype), np.zeros(1, np.int64)]
    want = [a.copy() for a in got]
    for _ in range(2):
        numba_module("update").update(got[0], g, SOLVERS[solver], hyper, got[1], got[2])
        reference(want[0], g, SOLVERS[solver], hyper, want[1], want[2])
    tol = TOL[dtype]
    np.testing.assert_allclose(got[0], want[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(got[1], want[1], rtol=tol, atol=tol)
    assert got[2][0] == want[2][0] == (2 if solver == "adam" else 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fwd,norm", [(True, False), (False, False), (True, True), (False, True)])
def test_vector_row_update_is_bit_for_bit_the_plain_loop(dtype, fwd, norm):
    """``vectors.update_rows4*`` against ``rows.sweep4_loop`` on the same arrays: the four rows
    (interleaved with gaps, as rows of W_0 listed by skipped zeros), the forward sum at an
    offset and ``pv``, for column counts below, at and around multiples of the vector width."""
    import numba

    from deltaprop.kernels._numba import vectors
    from deltaprop.kernels._numba.rows import sweep4_loop

    fn = {(True, False): vectors.update_rows4_fwd, (False, False): vectors.update_rows4,
          (True, True): vectors.update_rows4_fwd_norm, (False, True): vectors.update_rows4_norm}[(fwd, norm)]

    @numba.njit(fastmath={"contract", "arcp", "nsz"}, error_model="numpy")
    def vector(w, r, n, d, c, y, a, u, pv):
        fn(w, r[0], r[1], r[2], r[3], n, d, c[0], c[1], c[2], c[3], y[0], y[1], y[2], y[3], a, u, pv)

    @numba.njit(fastmath={"contract", "arcp", "nsz"}, error_model="numpy")
    def loop(w, r, n, d, c, y, a, u, pv):
        sweep4_loop(w, r[0], r[1], r[2], r[3], n, d, c[0], c[1], c[2], c[3], y[0], y[1], y[2], y[3], a, u, pv,
                    True, fwd, norm)

    rng = np.random.RandomState(0)
    for n in (1, 3, 4, 7, 8, 9, 16, 31, 128, 131):
        stride = n + 5
        w = rng.randn(6 * stride).astype(dtype)
        r = np.array([0, 2 * stride, stride, 5 * stride], dtype=np.uint64)
        d, a, pv = rng.randn(n).astype(dtype), rng.randn(n + 3).astype(dtype), rng.randn(n).astype(dtype)
        c, y = rng.randn(4).astype(dtype), rng.randn(4).astype(dtype)
        got, want = [w.copy(), a.copy(), pv.copy()], [w.copy(), a.copy(), pv.copy()]
        vector(got[0], r, np.uint64(n), d, c, y, got[1], np.uint64(3), got[2])
        loop(want[0], r, np.uint64(n), d, c, y, want[1], np.uint64(3), want[2])
        for g, x in zip(got, want):
            np.testing.assert_array_equal(g, x)
        assert not np.array_equal(got[0], w)  # the rows moved
        assert np.array_equal(got[1], a) != fwd and np.array_equal(got[2], pv) != norm


@pytest.mark.parametrize("vector_bytes", [32, 64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_indexed_products_equal_numpy(vector_bytes, dtype):
    """The first layer's products read through the visiting order, ``A = X[idx] W`` and
    ``C = beta C + alpha X[idx]^T D``, in both vector widths (AVX2's and AVX-512's; either runs on
    any CPU LLVM compiles for) against NumPy in float64: inputs leaving a last block of 1 to 5
    rows of W (K), outputs ending in a panel of part of one vector or of two (masked), whole
    panels, batches of 1 to 512 rows (several blocks of rows in both products), ``idx`` a
    strided row of a 2-D order; beta 0 over a C of NaN (C not read) and beta 0.9. The relu
    layer, ``A = X[idx] W + b`` and ``Z = relu(A)`` as the tiles are stored, is the product, then
    the bias and the relu, bit for bit (NaN stays NaN, a <= 0 gives 0)."""
    import numba

    from deltaprop.kernels._numba.indexed import make_products

    if os.environ.get("NUMBA_DISABLE_JIT") == "1":
        pytest.skip("intrinsics need the JIT; the module's pure-Python twins are NumPy itself")
    matmul, matmul_at, relu_layer, _ = make_products(vector_bytes)

    @numba.njit
    def forward(X, order, W, A):
        matmul(X, order[1, 3 : 3 + A.shape[0]], W, A)

    @numba.njit
    def relu(X, order, W, b, A, Z):
        relu_layer(X, order[1, 3 : 3 + A.shape[0]], W, b, A, Z)

    @numba.njit
    def gradient(X, order, D, C, alpha, beta):
        matmul_at(X, order[1, 3 : 3 + D.shape[0]], D, C, alpha, beta)

    rng = np.random.RandomState(1)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    n = 600
    for K, N, m in [(1, 3, 7), (5, 8, 200), (13, 43, 1), (13, 40, 512), (389, 100, 200), (389, 150, 7),
                    (64, 128, 250), (385, 64, 512), (7, 16, 33), (2, 200, 130)]:
        X = rng.randn(n, K).astype(dtype)
        W = rng.randn(K, N).astype(dtype)
        order = np.stack([rng.permutation(n) for _ in range(2)]).astype(np.int64)
        Xi = X[order[1, 3 : 3 + m]].astype(np.float64)
        A = np.full((m, N), np.nan, dtype)
        forward(X, order, W, A)
        want = Xi @ W
        np.testing.assert_allclose(A, want, rtol=tol, atol=tol * np.abs(want).max())
        b = rng.randn(N).astype(dtype)
        b[::7] = -A[0, ::7]  # a = 0 (or -0.0) in row 0 where the sum is exact
        b[1::11] = np.nan
        Ar, Z = np.full((m, N), np.nan, dtype), np.full((m, N), np.nan, dtype)
        relu(X, order, W, b, Ar, Z)
        np.testing.assert_array_equal(Ar, A + b)
        np.testing.assert_array_equal(Z, np.where(A + b <= 0, dtype(0), A + b))
        assert (Z >= 0).sum() + np.isnan(Z).sum() == Z.size
        D = rng.randn(m, N).astype(dtype)
        C0 = rng.randn(K, N).astype(dtype)
        for beta, C in ((0.9, C0.copy()), (0.0, np.full((K, N), np.nan, dtype))):
            gradient(X, order, D, C, dtype(-0.5), dtype(beta))
            want = -0.5 * (Xi.T @ D) + beta * C0
            np.testing.assert_allclose(C, want, rtol=tol, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("vector_bytes", [32, 64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_window_update_equals_numpy(vector_bytes, dtype):
    """``indexed.window_update``, the updates of a window of k samples in one pass over W,
    ``W = q W - sum_r outer(C[r], D[r])`` taken r = 0, 1, ... in turn, in both vector widths,
    against NumPy in float64: k = 1 to 6, q = 1 (no scaling), 0.75 and -0.5, outputs ending in
    part of a vector, in one vector or two (masked), whole panels; with q = 1, a sample whose
    coefficients are all zero changes no bit."""
    import numba

    from deltaprop.kernels._numba.indexed import make_products

    if os.environ.get("NUMBA_DISABLE_JIT") == "1":
        pytest.skip("intrinsics need the JIT; the module's pure-Python twin is NumPy itself")
    window_update = make_products(vector_bytes)[3]

    @numba.njit
    def update(W, C, D, q=1.0):
        window_update(W, C, D, W.dtype.type(q))

    rng = np.random.RandomState(3)
    tol = 4 * np.finfo(dtype).eps
    for K, N in [(1, 3), (7, 8), (13, 43), (389, 100), (40, 128), (5, 16), (3, 200)]:
        for k in range(1, 7):
            W0 = rng.randn(K, N).astype(dtype)
            C = rng.randn(k, K).astype(dtype)
            D = rng.randn(k, N).astype(dtype)
            for q in (1.0, 0.75, -0.5):
                W = W0.copy()
                update(W, C, D, q)
                want = q * W0.astype(np.float64) - C.T.astype(np.float64) @ D.astype(np.float64)
                scale = np.abs(W0).max() + np.abs(C).max() * np.abs(D).max() * k
                np.testing.assert_allclose(W, want, rtol=0, atol=tol * scale, err_msg=str((K, N, k, q)))
            C[:] = 0
            W = W0.copy()
            update(W, C, D)
            np.testing.assert_array_equal(W, W0)


@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_dense_inputs_take_windows_where_the_indexed_products_run(dtype, alpha):
    """``sgd_epoch`` sends plain sgd on dense inputs, without and with L2, through
    ``sgd_windows`` where ``sgd_windows.use_windows`` says so (384 inputs or more, weights of at
    most 1 MB, a CPU with the products' vectors), bit for bit, and sparse inputs and narrower
    layers to the sample-by-sample sweep; the windows equal the sweep up to rounding."""
    from deltaprop.kernels._numba import epoch, indexed
    from deltaprop.kernels._numba.sgd_decay import sgd_decay
    from deltaprop.kernels._numba.sgd_plain import sgd_plain
    from deltaprop.kernels._numba.sgd_windows import sgd_windows, use_windows

    use = getattr(use_windows, "py_func", use_windows)
    assert use(784, 128, 4) == (indexed.VECTOR_BYTES > 0) and not use(383, 128, 4)
    assert not use(784, 400, 4)  # 1.25 MB
    rng = np.random.RandomState(7)
    dt = np.dtype(dtype)
    for sizes, dense, windows in (((400, 43, 10), True, use(400, 43, dt.itemsize)),
                                  ((383, 43, 10), True, False), ((400, 43, 10), False, False)):
        layout = make_layout(list(sizes))
        w = (rng.randn(n_params(layout)) * 0.05).astype(dtype)
        X = rng.rand(60, sizes[0]).astype(dtype)
        if not dense:
            X[rng.rand(*X.shape) < 0.5] = 0
        T = np.eye(sizes[-1], dtype=dtype)[rng.randint(0, sizes[-1], 60)]
        s = np.ones(60, dtype=dtype)
        order = rng.permutation(60).astype(np.intp)[None, :]
        codes = (ACTIVATIONS["tanh"], ACTIVATIONS["softmax"], LOSSES["cross_entropy"])
        eta, a = dt.type(0.05), dt.type(alpha)
        U = n_units(layout)
        runs = []
        for how in ("epoch", "windows", "sweep"):
            wk, losses = w.copy(), np.zeros((1, 2))
            bufs = [np.zeros(U, dtype=dtype) for _ in range(3)]
            if how == "epoch":
                hyper = np.array([0.05, alpha, 0.9, 0.9, 0.999, 1e-8], dtype=dtype)
                epoch.sgd_epoch(wk, layout, *codes, X, T, s, order, SOLVERS["sgd"], hyper,
                                np.zeros((2, w.size), dtype), np.zeros(1, np.int64), *bufs, losses)
            elif how == "windows":
                sgd_windows(wk, layout, *codes, X, T, s, order, eta, a, *bufs, losses)
            elif alpha:
                sgd_decay(wk, layout, *codes, X, T, s, order, eta, a, *bufs, losses, not dense)
            else:
                sgd_plain(wk, layout, *codes, X, T, s, order, eta, *bufs, losses, not dense)
            runs.append((wk, losses))
        (w_epoch, l_epoch), (w_win, l_win), (w_sweep, l_sweep) = runs
        expected = runs[1] if windows else runs[2]
        np.testing.assert_array_equal(w_epoch, expected[0], err_msg=str(sizes))
        np.testing.assert_array_equal(l_epoch, expected[1], err_msg=str(sizes))
        np.testing.assert_allclose(w_win, w_sweep, rtol=0, atol=TOL[dtype] * np.abs(w_sweep).max())
        np.testing.assert_allclose(l_win, l_sweep, rtol=TOL[dtype])
        assert np.abs(w_win - w).max() > 1e-3


def test_batch_epochs_read_the_first_layers_rows_in_place_where_expected():
    """``indexed.use_indexed`` sends the BLAS-sized tests' first layers (``test_kernels``) through
    the indexed products where this CPU has the vectors: batches of 128 rows or more, or of any
    size with 384 inputs or more, weights of at most 1 MB; short batches of short rows and
    larger weights are gathered for BLAS."""
    from deltaprop.kernels._numba import indexed

    if indexed.VECTOR_BYTES == 0:
        pytest.skip("no AVX2/FMA or AVX-512: every batch is gathered")
    assert indexed.VECTOR_BYTES == (64 if _cpu_has("avx512f") else 32)
    use = getattr(indexed.use_indexed, "py_func", indexed.use_indexed)
    assert use(200, 64, 40, 8) and use(250, 70, 100, 8) and use(7, 400, 150, 4) and use(32, 784, 128, 4)
    assert use(7, 800, 300, 4) and not use(7, 800, 300, 8)  # 0.96 MB, 1.9 MB
    assert not use(32, 64, 40, 8) and not use(127, 383, 40, 4) and not use(513, 784, 128, 4)


def _cpu_has(flag):
    try:
        with open("/proc/cpuinfo") as fh:
            return any(line.startswith("flags") and flag in line.split() for line in fh)
    except OSError:
        pytest.skip("no /proc/cpuinfo")
