"""Claims only the Cython backend makes; the differential tests shared by every compiled backend
live in test_kernels.py and the engine tests run on every available backend.

- the extension is built where CI says it must be (DELTAPROP_REQUIRE_COMPILED=1);
- the kernels release the GIL (the two threads of one call meet at the compiled barrier; every
  wrapper's loops run under ``with nogil``), and two models trained at once in two threads end
  with the weights they get one after the other;
- read-only and float32 inputs are accepted; mixed dtypes and short buffers are clear errors;
- the per-sample epoch's fast path (zero inputs skip their rows, the first layer's update is
  fused with the next sample's forward sum) equals the reference on sparse inputs;
- so does its L2 variant (W_0 = c V_0, the decay kept in c), including the steps that fold c
  back into V, and skipping zero inputs changes no bit on either path;
- the codes and kernel constants compiled into the kernels (``codes()``, from the enums of
  ``_core.pxd``) are ``deltaprop.contract``'s;
- the epoch kernels built for AVX2 equal the portable ones, and the portable ones are chosen
  when NumPy's CPU feature table cannot be read; the AVX-512 build serves ``batch_epoch`` only
  on CPUs that have AVX-512 F, VL, BW and DQ.
"""

import contextlib
import os
import threading

import numpy as np
import pytest
from conftest import TOL, sparse_problem

import deltaprop
from deltaprop import MLP
from deltaprop.backends import get_backend
from deltaprop.contract import ACTIVATIONS, HYPER, KERNEL_CONSTANTS, LAYOUT_COLUMNS, LOSSES, SOLVERS
from deltaprop.layout import make_layout, n_params, n_units

REQUIRED = os.environ.get("DELTAPROP_REQUIRE_COMPILED") == "1"


def test_cython_backend_is_built_when_required():
    """CI sets DELTAPROP_REQUIRE_COMPILED=1, so a missing build step cannot hide behind skips."""
    if not REQUIRED and "cython" not in deltaprop.available_backends():
        pytest.skip("cython backend not built; set DELTAPROP_REQUIRE_COMPILED=1 to make this an error")
    assert "cython" in deltaprop.available_backends(), (
        "the Cython extension is not importable: " + deltaprop.backends._errors.get("cython", "?")
    )
    assert get_backend("cython").name == "cython"


pytestmark_cython = pytest.mark.skipif("cython" not in deltaprop.available_backends(),
                                       reason="the Cython extension is not built")


def _epoch_args(sizes, dtype, n=40, n_epochs=2, seed=0, sparse=0.0, zero_weights=False,
                solver="sgd", alpha=0.0, read_only=False):
    rng = np.random.RandomState(seed)
    layout = make_layout(sizes)
    U = n_units(layout)
    w = (rng.randn(n_params(layout)) * 0.3).astype(dtype)
    X = rng.randn(n, sizes[0]).astype(dtype)
    X[rng.rand(*X.shape) < sparse] = 0
    T = np.eye(sizes[-1], dtype=dtype)[rng.randint(0, sizes[-1], n)]
    s = np.ones(n, dtype=dtype)
    if zero_weights:
        s[::3] = 0
    order = np.stack([rng.permutation(n) for _ in range(n_epochs)]).astype(np.intp)
    hyper = np.array([0.05, alpha, 0.9, 0.9, 0.999, 1e-8], dtype=dtype)
    if read_only:
        for arr in (layout, X, T, s, order, hyper):
            arr.flags.writeable = False
    state = np.zeros((2, w.shape[0]), dtype=dtype)
    t = np.zeros(1, dtype=np.int64)
    a, z, d = (np.zeros(U, dtype=dtype) for _ in range(3))
    losses = np.zeros((n_epochs, 2))
    codes = (ACTIVATIONS["tanh"], ACTIVATIONS["softmax"], LOSSES["cross_entropy"])
    return [w, layout, *codes, X, T, s, order, SOLVERS[solver], hyper, state, t, a, z, d, losses]


@pytestmark_cython
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver, alpha", [("sgd", 0.0), ("sgd", 0.01), ("adam", 0.0)])
@pytest.mark.parametrize("sizes", [[30, 12, 7, 4], [20, 41, 19, 13]])
def test_sgd_epoch_on_sparse_inputs_equals_reference(dtype, solver, alpha, sizes):
    """70% zero inputs, every third sample weighted 0, three epochs in one call: the fused fast
    path (sgd, alpha=0) and the general path give the reference's weights and losses. The
    second network's upper rows (19 and 13 wide, 41 of them) end in part of a vector, and its
    41 rows in a block of fewer than four."""
    tol = TOL[dtype]
    ref = _epoch_args(sizes, dtype, n_epochs=3, sparse=0.7, zero_weights=True,
                      solver=solver, alpha=alpha)
    got = [x.copy() if isinstance(x, np.ndarray) else x for x in ref]
    get_backend("numpy").sgd_epoch(*ref)
    get_backend("cython").sgd_epoch(*got)
    for i in (0, 11, 12, 16):  # w, state, t, losses
        np.testing.assert_allclose(got[i], ref[i], rtol=0, atol=tol * max(1.0, np.abs(ref[i]).max()))


@pytestmark_cython
def test_read_only_and_float32_inputs_are_accepted():
    """Read-only inputs (e.g. memory-mapped data) bind to the ``const`` memoryviews, float32
    arrays to the float32 specialisation."""
    args = _epoch_args([5, 4, 3], np.float32, read_only=True)
    k = get_backend("cython")
    k.sgd_epoch(*args)
    assert np.isfinite(args[0]).all() and args[0].dtype == np.float32
    w, layout, h, f, e, X, T, s = args[:8]
    w.flags.writeable = False
    n, U = X.shape[0], n_units(layout)
    A, Z, D = (np.zeros(n * U, dtype=np.float32) for _ in range(3))
    k.forward(w, layout, h, f, X, A, Z)
    E = k.output_delta(layout, f, e, A, Z, T, s, D)
    k.backprop(w, layout, h, A, Z, D)
    g = np.zeros(w.shape[0], dtype=np.float32)
    k.gradient(layout, X, Z, D, g)
    assert np.isfinite(E) and np.isfinite(g).all()


@pytestmark_cython
def test_mixed_dtypes_and_short_buffers_are_clear_errors():
    args = _epoch_args([5, 4, 3], np.float64)
    k = get_backend("cython")
    bad = list(args)
    bad[5] = args[5].astype(np.float32)  # X float32, w float64
    with pytest.raises((TypeError, ValueError)):
        k.sgd_epoch(*bad)
    bad = list(args)
    bad[13] = args[13][:2]  # a too short
    with pytest.raises(ValueError, match="has length 2, needs at least"):
        k.sgd_epoch(*bad)
    bad = list(args)
    bad[8] = args[8] + 1000  # order out of range
    with pytest.raises(ValueError, match="order"):
        k.sgd_epoch(*bad)


@pytestmark_cython
def test_loss_gradient_rejects_short_buffers():
    layout = make_layout([5, 4, 3])
    k, U, P = get_backend("cython"), n_units(layout), n_params(layout)
    X, T, s = np.zeros((6, 5)), np.zeros((6, 3)), np.ones(6)
    codes = (ACTIVATIONS["tanh"], ACTIVATIONS["softmax"], LOSSES["cross_entropy"])
    A, Z, D = (np.zeros(2 * U) for _ in range(3))
    w, g, grad = np.zeros(P), np.zeros(P), np.zeros(P)
    with pytest.raises(ValueError, match="A has length 3, needs at least"):
        k.loss_gradient(w, layout, *codes, X, T, s, A[:3], Z, D, g, grad)
    with pytest.raises(ValueError, match="D has length"):
        k.loss_gradient(w, layout, *codes, X, T, s, A, Z, D[: U + 1], g, grad)
    with pytest.raises(ValueError, match="grad has length"):
        k.loss_gradient(w, layout, *codes, X, T, s, A, Z, D, g, grad[:-1])
    with pytest.raises(ValueError, match="T must have shape"):
        k.loss_gradient(w, layout, *codes, X, T[:5], s, A, Z, D, g, grad)


def _in_threads(target, args):
    """``target(*a)`` for each ``a`` of ``args``, all at once, each in its own thread."""
    threads = [threading.Thread(target=target, args=a) for a in args]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def _fit(sizes, seed, X, T, dtype="float64"):
    net = MLP(sizes, hidden="tanh", output="softmax", loss="cross_entropy", backend="cython",
              dtype=dtype, random_state=seed)
    net.fit(X, T, epochs=4, lr=0.05, batch_size=1)
    return net.w


@pytestmark_cython
def test_two_models_trained_in_two_threads_equal_sequential_training():
    rng = np.random.RandomState(3)
    jobs = [([20, 16, 3], 1, rng.randn(400, 20), rng.randint(0, 3, 400)),
            ([12, 8, 8, 5], 2, rng.randn(500, 12), rng.randint(0, 5, 500))]
    sequential = [_fit(*job) for job in jobs]
    results = [None, None]

    def work(i):
        results[i] = _fit(*jobs[i])

    _in_threads(work, [(0,), (1,)])
    for got, want in zip(results, sequential, strict=False):
        np.testing.assert_array_equal(got, want)


@pytestmark_cython
def test_mini_batch_epochs_in_two_threads_equal_sequential_ones():
    """Two ``batch_epoch`` calls at once, in two threads, on first layers that read the batch's
    rows through the order (the products' packed panels live in a buffer per thread): each ends
    with the weights it gets alone."""
    from deltaprop.contract import make_hyper

    k = get_backend("cython")
    rng = np.random.RandomState(5)
    codes = (ACTIVATIONS["tanh"], ACTIVATIONS["softmax"], LOSSES["cross_entropy"])

    def problem(sizes, B, n=1000, epochs=30):
        layout = make_layout(sizes)
        P, U = n_params(layout), n_units(layout)
        X, T = rng.rand(n, sizes[0]), np.eye(sizes[-1])[rng.randint(0, sizes[-1], n)]
        order = np.stack([rng.permutation(n) for _ in range(epochs)]).astype(np.intp)
        w = rng.randn(P) * 0.05

        def call():  # the weights and fresh buffers and state of one call
            return (w.copy(), layout, *codes, X, T, np.ones(n), order, B, SOLVERS["momentum"],
                    make_hyper(np.float64, eta=0.05), np.zeros((2, P)), np.zeros(1, np.int64),
                    np.zeros((B, sizes[0])), np.zeros((B, sizes[-1])), np.zeros(B),
                    np.zeros(B * U), np.zeros(B * U), np.zeros(B * U), np.zeros(P),
                    np.zeros((epochs, 2)))
        return call

    jobs = [problem([400, 64, 10], 32), problem([300, 48, 10], 200)]
    sequential = []
    for job in jobs:
        args = job()
        k.batch_epoch(*args)
        sequential.append(args[0])
    calls = [job() for job in jobs]
    results = [args[0] for args in calls]
    _in_threads(k.batch_epoch, calls)
    for got, want in zip(results, sequential, strict=True):
        np.testing.assert_array_equal(got, want)


#: run in a child process: thread 0 of a two-thread call runs on a worker, thread 1 on the main
#: thread, and the two meet at the kernel's compiled barrier (prints the kernels that returned)
MEET_AT_THE_BARRIER = """
import threading
import numpy as np
from deltaprop.backends import get_backend
from deltaprop.contract import ACTIVATIONS, LOSSES, SOLVERS, make_hyper
from deltaprop.layout import make_layout, n_params, n_units

k = get_backend("cython")
J, n, E, B = 2, 64, 3, 8
layout = make_layout([5, 4, 3])
P, U = n_params(layout), n_units(layout)
rng = np.random.RandomState(0)
X = rng.randn(n, 5)
T = np.eye(3)[rng.randint(0, 3, n)]
s = np.ones(n)
order = np.stack([rng.permutation(n) for _ in range(E)]).astype(np.intp)
codes = (ACTIVATIONS["tanh"], ACTIVATIONS["softmax"], LOSSES["cross_entropy"])
hyper = make_hyper(np.float64, eta=0.05)


def both(kernel, *args):
    worker = threading.Thread(target=kernel, args=(0, *args))
    worker.start()
    kernel(1, *args)  # returns only after the worker's call has met it at the barrier, twice per batch
    worker.join()


w = rng.randn(P) * 0.3
start = w.copy()
both(k.average_epochs, w, np.zeros((J, P)), layout, *codes, X, T, s, order,
     np.array([[0, n // 2], [n // 2, n]], dtype=np.intp), SOLVERS["sgd"], hyper, np.zeros((2, P)),
     np.zeros((J, 2 * P)), np.zeros(1, np.int64), np.zeros((J, 1), np.int64), np.zeros((J, U)),
     np.zeros((J, U)), np.zeros((J, U)), np.zeros((J, E, 2)), np.zeros((3, 8), np.int64))
assert not np.array_equal(w, start)
print("average_epochs")
b = B // J
both(k.split_epochs, w, layout, *codes, X, T, s, order, B, SOLVERS["sgd"], hyper, np.zeros((2, P)),
     np.zeros(1, np.int64), np.zeros((J, 1), np.int64), np.zeros((J, b, 5)), np.zeros((J, b, 3)),
     np.zeros((J, b)), np.zeros((J, b * U)), np.zeros((J, b * U)), np.zeros((J, b * U)), np.zeros((J, P)),
     np.zeros(P), np.zeros((J, E, 2)), np.zeros((3, 8), np.int64))
print("split_epochs")
"""


@pytestmark_cython
def test_thread_kernels_release_the_gil():
    """The two threads of one ``average_epochs`` call, and of one ``split_epochs`` call, meet at the
    kernel's compiled barrier: one thread's call waits there, inside the kernel, until the other
    thread has entered the kernel too, which it can only do if the first call released the GIL.
    A wrapper holding the GIL would hang both threads, so the calls run in a child process that
    the test waits for with a timeout far beyond the time they take (nothing is timed)."""
    import subprocess
    import sys

    try:
        out = subprocess.run([sys.executable, "-c", MEET_AT_THE_BARRIER], capture_output=True, text=True,
                             timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("the two threads never met at the barrier: a thread kernel holds the GIL")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["average_epochs", "split_epochs"]


@pytestmark_cython
def test_every_contract_wrapper_runs_its_loops_without_the_gil():
    """Each ``def`` wrapper of a contract function releases the GIL (``with nogil:``) around its
    compiled body, after its argument checks: threads (``n_jobs``, Hogwild, two models at once)
    run the kernels in parallel. Read from the sources, so it cannot race."""
    import pathlib
    import re

    from deltaprop.contract import FUNCTIONS

    here = pathlib.Path(deltaprop.kernels.__file__).parent / "_cython"
    text = "\n".join(path.read_text() for ext in ("pyx", "pxi") for path in sorted(here.glob(f"*.{ext}")))
    for name in FUNCTIONS:
        found = re.search(rf"^def {name}\(.*?(?=^\S)", text + "\nend", flags=re.M | re.S)
        assert found, f"no def {name} in the Cython sources"
        assert "\n    with nogil:\n" in found.group(0), f"{name} does not release the GIL"


@pytestmark_cython
def test_compiled_codes_are_the_contracts():
    """``codes()`` returns the enum values compiled into the kernels; they are the contract's."""
    from deltaprop.kernels._cython import codes

    assert codes() == {"activations": ACTIVATIONS, "losses": LOSSES, "solvers": SOLVERS,
                       "hyper": HYPER, "layout": LAYOUT_COLUMNS, "kernel": KERNEL_CONSTANTS}


@pytestmark_cython
def test_portable_epoch_build_is_chosen_without_numpys_cpu_table(monkeypatch):
    """NumPy's ``__cpu_features__`` is private: where it is missing, the CPU dispatch falls back to
    the portable ``epoch`` build instead of failing."""
    import numpy._core._multiarray_umath as umath

    from deltaprop.kernels import _cython

    monkeypatch.delattr(umath, "__cpu_features__")
    assert _cython._cpu_features() == {}
    assert _cython._cpu_has_avx2_fma() is False and _cython._cpu_has_avx512() is False
    assert _cython._simd_module("epoch") is _cython.epoch
    assert _cython._simd_module("epoch", avx512=True) is _cython.epoch
    for name in ("forward", "backprop", "epoch"):
        assert _cython._simd_module(name).__name__ == f"deltaprop.kernels._cython.{name}"


@pytestmark_cython
def test_baseline_build_can_be_forced(monkeypatch):
    from deltaprop.kernels import _cython

    monkeypatch.setenv("DELTAPROP_CYTHON_SIMD", "baseline")
    assert _cython._simd_module("epoch") is _cython.epoch
    assert _cython._simd_module("epoch", avx512=True) is _cython.epoch
    for name in ("forward", "backprop"):
        assert _cython._simd_module(name).__name__ == f"deltaprop.kernels._cython.{name}"


@pytestmark_cython
def test_avx512_build_is_chosen_for_batch_epochs_only_where_it_runs(monkeypatch):
    """``batch_epoch`` comes from ``epoch_avx512`` on CPUs with AVX-512 F, VL, BW and DQ (the
    per-sample epochs from ``epoch_avx2``); ``DELTAPROP_CYTHON_SIMD=avx2`` stops at AVX2, and a
    CPU without AVX-512 gets the AVX2 build."""
    from deltaprop.kernels import _cython

    try:
        from deltaprop.kernels._cython import epoch_avx2, epoch_avx512
    except ImportError:
        pytest.skip("the SIMD builds are not built on this platform")
    monkeypatch.delenv("DELTAPROP_CYTHON_SIMD", raising=False)
    monkeypatch.setattr(_cython, "_cpu_features", lambda: {"AVX2": True, "FMA3": True, "AVX512F": True,
                                                           "AVX512VL": True, "AVX512BW": True,
                                                           "AVX512DQ": True})
    assert _cython._simd_module("epoch", avx512=True) is epoch_avx512
    assert _cython._simd_module("epoch") is epoch_avx2
    monkeypatch.setenv("DELTAPROP_CYTHON_SIMD", "avx2")
    assert _cython._simd_module("epoch", avx512=True) is epoch_avx2
    monkeypatch.delenv("DELTAPROP_CYTHON_SIMD")
    monkeypatch.setattr(_cython, "_cpu_features", lambda: {"AVX2": True, "FMA3": True, "AVX512F": True})
    assert _cython._simd_module("epoch", avx512=True) is epoch_avx2


@pytestmark_cython
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avx2_build_of_the_epoch_kernels_equals_the_baseline(dtype):
    """``epoch_avx2`` (the same source compiled with -mavx2 -mfma, picked at import time on CPUs
    with AVX2 and FMA) equals the baseline ``epoch`` module up to rounding (FMA contraction)."""
    from deltaprop.kernels._cython import _cpu_has_avx2_fma, epoch

    try:
        from deltaprop.kernels._cython import epoch_avx2
    except ImportError:
        pytest.skip("epoch_avx2 not built on this platform")
    if not _cpu_has_avx2_fma():
        pytest.skip("this CPU has no AVX2/FMA")
    tol = TOL[dtype]
    for solver, alpha in (("sgd", 0.0), ("momentum", 0.01)):
        base = _epoch_args([50, 40, 6], dtype, n_epochs=2, sparse=0.5, solver=solver, alpha=alpha)
        simd = [x.copy() if isinstance(x, np.ndarray) else x for x in base]
        epoch.sgd_epoch(*base)
        epoch_avx2.sgd_epoch(*simd)
        for i in (0, 11, 16):
            np.testing.assert_allclose(simd[i], base[i], rtol=0,
                                       atol=tol * max(1.0, np.abs(base[i]).max()))


@pytestmark_cython
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hidden", ["tanh", "logistic", "relu"])
def test_avx2_builds_of_forward_and_backprop_equal_the_baseline(dtype, hidden, monkeypatch):
    """``forward_avx2`` and ``backprop_avx2`` (the same sources compiled with -mavx2 -mfma, the
    ones the backend uses on CPUs with AVX2 and FMA) give the baseline modules' units, δ and
    gradient up to rounding, on a batch large enough for the BLAS path (43 rows)."""
    import importlib

    from deltaprop.kernels._cython import _cpu_has_avx2_fma, _simd_module

    forward = importlib.import_module("deltaprop.kernels._cython.forward")
    backprop = importlib.import_module("deltaprop.kernels._cython.backprop")
    try:
        from deltaprop.kernels._cython import backprop_avx2, forward_avx2
    except ImportError:
        pytest.skip("the AVX2 builds are not built on this platform")
    if not _cpu_has_avx2_fma():
        pytest.skip("this CPU has no AVX2/FMA")
    monkeypatch.delenv("DELTAPROP_CYTHON_SIMD", raising=False)
    assert _simd_module("forward") is forward_avx2 and _simd_module("backprop") is backprop_avx2
    tol = TOL[dtype]
    rng = np.random.RandomState(3)
    sizes = [37, 29, 13, 5]
    layout = make_layout(sizes)
    U, P, n = n_units(layout), n_params(layout), 43
    w = (rng.randn(P) * 0.4).astype(dtype)
    X = rng.randn(n, sizes[0]).astype(dtype)
    T = np.eye(sizes[-1], dtype=dtype)[rng.randint(0, sizes[-1], n)]
    s = rng.rand(n).astype(dtype)
    h, f, e = ACTIVATIONS[hidden], ACTIVATIONS["softmax"], LOSSES["cross_entropy"]
    got, want = {}, {}
    for mod, out in ((forward_avx2, got), (forward, want)):
        A, Z = np.zeros(n * U, dtype), np.zeros(n * U, dtype)
        mod.forward(w, layout, h, f, X, A, Z)
        out["A"], out["Z"] = A, Z
    for mod, out in ((backprop_avx2, got), (backprop, want)):
        A, Z, D, g = (np.zeros(n * U, dtype) for _ in range(4))
        grad = np.zeros(P, np.float64)
        out["E"] = mod.loss_gradient(w, layout, h, f, e, X, T, s, A, Z, D, np.zeros(P, dtype), grad)
        out["grad"] = grad
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=0,
                                   atol=tol * max(1.0, np.abs(want[key]).max()), err_msg=key)
    assert np.abs(want["A"]).max() > 1 and np.abs(want["grad"]).max() > 0


@contextlib.contextmanager
def _skip_zeros(module, mode):
    """Run plain sgd in ``module`` with the test hook's ``mode``: 1 skips zero inputs' rows (the
    default), 0 visits every row, 2 takes windows of samples, -1 takes the general path instead
    of the fast ones. A module without the hook (the NumPy reference) runs as it is."""
    if not hasattr(module, "set_skip_zeros"):
        yield
        return
    previous = module.set_skip_zeros(mode)
    try:
        yield
    finally:
        module.set_skip_zeros(previous)


def _sgd(module, layout, w, X, T, s, order, eta, alpha, skip_zeros=1):
    """One ``sgd_epoch`` call with solver sgd (``alpha`` > 0: with L2) in the given mode."""
    dt = w.dtype
    w = w.copy()
    U = n_units(layout)
    losses = np.zeros((order.shape[0], 2))
    hyper = np.array([eta, alpha, 0.9, 0.9, 0.999, 1e-8], dtype=dt)
    with _skip_zeros(module, skip_zeros):
        module.sgd_epoch(w, layout, ACTIVATIONS["tanh"], ACTIVATIONS["softmax"],
                         LOSSES["cross_entropy"], X, T, s.astype(dt), order, SOLVERS["sgd"], hyper,
                         np.zeros((2, w.size), dt), np.zeros(1, np.int64),
                         *(np.zeros(U, dt) for _ in range(3)), losses)
    return w, losses


def _epoch_modules():
    from deltaprop.kernels._cython import _cpu_has_avx2_fma, epoch

    mods = [epoch]
    try:
        from deltaprop.kernels._cython import epoch_avx2
    except ImportError:
        return mods
    return mods + [epoch_avx2] if _cpu_has_avx2_fma() else mods


@pytestmark_cython
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_zero_input_skipping_gives_identical_weights(dtype, alpha):
    """Plain sgd (alpha = 0) and its scaled L2 path visiting only the non-zero rows of W_0 give
    the same bits as visiting every row (a zero row's update and forward term are exactly 0),
    in both builds."""
    layout, w, X, T = sparse_problem(dtype)
    rng = np.random.RandomState(1)
    order = np.stack([rng.permutation(X.shape[0]) for _ in range(3)]).astype(np.intp)
    s = np.linspace(0.5, 1.5, X.shape[0])
    for module in _epoch_modules():
        w_skip, loss_skip = _sgd(module, layout, w, X, T, s, order, 0.1, alpha, 1)
        w_dense, loss_dense = _sgd(module, layout, w, X, T, s, order, 0.1, alpha, 0)
        np.testing.assert_array_equal(w_skip, w_dense)
        np.testing.assert_array_equal(loss_skip, loss_dense)


def _all_epoch_modules():
    """Every build of the epoch module that this CPU runs: portable, AVX2, AVX-512."""
    from deltaprop.kernels import _cython

    mods = _epoch_modules()
    try:
        from deltaprop.kernels._cython import epoch_avx512
    except ImportError:
        return mods
    return mods + [epoch_avx512] if _cython._cpu_has_avx512() else mods


def _dense_problem(dtype, sizes=(400, 43, 10), n=100, seed=3):
    rng = np.random.RandomState(seed)
    layout = make_layout(list(sizes))
    w = (rng.randn(n_params(layout)) * 0.05).astype(dtype)
    X = rng.rand(n, sizes[0]).astype(dtype)
    T = np.eye(sizes[-1], dtype=dtype)[rng.randint(0, sizes[-1], n)]
    return layout, w, X, T


@pytestmark_cython
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_windows_of_samples_in_each_build(dtype, alpha):
    """Plain per-sample sgd in windows of six samples (test hook mode 2), without and with L2,
    in each build: where the build has the indexed products (AVX2, AVX-512) the weights, losses
    and penalties differ from the sample-by-sample sweep's only by rounding, and equal the
    reference's; the portable build has no windows and runs the sweep, bit for bit. Two epochs
    of 100 samples in one call, every fifth sample weighted 0 (windows run across the epochs'
    boundary and skip those); with L2, samples weighted eta alpha (decay r = 0), 0.6 eta alpha
    (r < 0) and 0.01 (r = 0.75) among them."""
    layout, w, X, T = _dense_problem(dtype)
    rng = np.random.RandomState(4)
    order = np.stack([rng.permutation(X.shape[0]) for _ in range(2)]).astype(np.intp)
    s = np.ones(X.shape[0])
    s[::7] = 0.05 * alpha
    s[3::11] = 0.6 * 0.05 * alpha
    s[1::17] = 0.01
    s[::5] = 0
    ref_w, ref_losses = _sgd(get_backend("numpy"), layout, w, X, T, s, order, 0.05, alpha)
    assert (ref_losses[:, 1] > 0).all() == (alpha > 0)
    tol = TOL[dtype]
    for module in _all_epoch_modules():
        w_win, loss_win = _sgd(module, layout, w, X, T, s, order, 0.05, alpha, 2)
        w_sweep, loss_sweep = _sgd(module, layout, w, X, T, s, order, 0.05, alpha, 0)
        if module.__name__.endswith(".epoch"):
            np.testing.assert_array_equal(w_win, w_sweep)
            np.testing.assert_array_equal(loss_win, loss_sweep)
        else:
            assert not np.array_equal(w_win, w_sweep), module.__name__
        np.testing.assert_allclose(w_win, ref_w, rtol=0, atol=tol * np.abs(ref_w).max())
        np.testing.assert_allclose(loss_win, ref_losses, rtol=tol)
        assert np.abs(w_win - w).max() > 0.01


@pytestmark_cython
def test_dense_inputs_take_windows_where_the_indexed_products_run():
    """The default mode sends plain sgd on dense inputs, without and with L2, through windows of
    samples where ``use_windows`` says so (384 inputs or more, weights that fit the L2 cache),
    the same bits as test hook mode 2; with fewer inputs, another solver, or on sparse inputs it
    runs the sample-by-sample sweep (the bits of mode 0)."""
    from deltaprop.kernels._cython import _cpu_has_avx2_fma

    module = _epoch_modules()[-1]
    if not _cpu_has_avx2_fma():
        pytest.skip("no AVX2 build on this CPU: no windows")
    s = np.ones(100)
    order = np.random.RandomState(5).permutation(100).astype(np.intp)[None, :]
    for sizes, alpha, windows in (((400, 43, 10), 0.0, True), ((383, 43, 10), 0.0, False),
                                  ((400, 43, 10), 0.01, True), ((383, 43, 10), 0.01, False)):
        layout, w, X, T = _dense_problem(np.float32, sizes)
        default = _sgd(module, layout, w, X, T, s, order, 0.1, alpha, 1)
        forced = _sgd(module, layout, w, X, T, s, order, 0.1, alpha, 2 if windows else 0)
        for got, want in zip(default, forced, strict=True):
            np.testing.assert_array_equal(got, want, err_msg=str((sizes, alpha)))
    layout, w, X, T = _dense_problem(np.float32)
    X[np.random.RandomState(6).rand(*X.shape) < 0.5] = 0
    default = _sgd(module, layout, w, X, T, s, order, 0.1, 0.0, 1)
    sweep = _sgd(module, layout, w, X, T, s, order, 0.1, 0.0, 0)
    for got, want in zip(default, sweep, strict=True):
        np.testing.assert_array_equal(got, want)


@pytestmark_cython
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eta_alpha", [(0.1, 1e-4), (0.1, 0.05), (0.5, 0.9)])
def test_l2_sgd_with_a_scaled_first_layer_equals_the_reference(dtype, eta_alpha):
    """W_0 = c V_0 with the decay in c equals the reference's dense decay, including the steps
    that fold c back into V: small sample weights make r = 1 - ηα/s tiny, zero or negative
    (s = ηα gives r = 0, s = 0.6ηα gives r < 0), s = 0.01 makes c leave [2^-10, 2^10] fast,
    s = 0 skips its sample; four epochs in one call (the norm of V is recomputed at each)."""
    eta, alpha = eta_alpha
    layout, w, X, T = sparse_problem(dtype, n=12)
    rng = np.random.RandomState(2)
    order = np.stack([rng.permutation(X.shape[0]) for _ in range(4)]).astype(np.intp)
    s = np.array([1.0, 0.0, 2.0, 0.5, eta * alpha, 1.0, 0.3, 0.6 * eta * alpha, 1.0, 1.5, 0.01, 1.0])
    want = _epoch_args([30, 12, 7, 5], dtype)  # buffers of the right kind, then this problem's data
    want[0], want[5], want[6], want[7], want[8] = w.copy(), X, T, s.astype(dtype), order
    want[1] = layout
    want[10] = np.array([eta, alpha, 0.9, 0.9, 0.999, 1e-8], dtype=dtype)
    want[16] = np.zeros((order.shape[0], 2))
    get_backend("numpy").sgd_epoch(*want)
    tol = TOL[dtype]
    for module in _epoch_modules():
        for skip in (1, -1):  # the scaled path, and the general path it replaces
            w_got, loss_got = _sgd(module, layout, w, X, T, s, order, eta, alpha, skip)
            scale = max(np.abs(want[0]).max(), 1.0)
            np.testing.assert_allclose(w_got, want[0], rtol=0, atol=tol * scale)
            np.testing.assert_allclose(loss_got, want[16], rtol=tol, atol=tol)


@pytestmark_cython
def test_l2_sgd_folds_the_scale_back_into_the_weights():
    """Many steps with r = 1 - ηα/s = 0.5 drive c below 2^-10 several times in one call (each
    time c is folded into V); ``w`` holds the true weights at the end, as the reference's."""
    layout, w, X, T = sparse_problem(np.float64, n=12)
    order = np.tile(np.arange(X.shape[0]), (30, 1)).astype(np.intp)  # 360 steps: c = 2^-360
    s = np.ones(X.shape[0])
    want, loss_want = _sgd(_epoch_modules()[0], layout, w, X, T, s, order, 0.5, 1.0, -1)
    for module in _epoch_modules():
        got, loss_got = _sgd(module, layout, w, X, T, s, order, 0.5, 1.0, 1)
        tol = TOL[np.float64]
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * max(1.0, np.abs(want).max()))
        np.testing.assert_allclose(loss_got, loss_want, rtol=tol, atol=tol)


@pytest.mark.parametrize("bad, P, message", [
    ([[3, 4, 0, 12, 0], [4, 2, 16, 24, 4]], 10, "beyond w's length"),
    ([[3, 4, 0, 12, 0], [5, 2, 16, 26, 4]], 100, "previous layer's n_out"),
    ([[0, 4, 0, 0, 0]], 100, "layer sizes >= 1"),
    ([[3, 4, -1, 12, 0]], 100, "non-negative"),
])
def test_layout_check_rejects_a_bad_table(bad, P, message):
    from deltaprop.kernels._cython._checks import _layout

    with pytest.raises(ValueError, match=message):
        _layout(np.array(bad, dtype=np.intp), P)


def test_layout_check_returns_inputs_outputs_and_units():
    from deltaprop.kernels._cython._checks import _layout

    assert _layout(make_layout([64, 100, 10]), 7510) == (64, 10, 110)
