"""The kernels as a drop-in backend for a user's own NumPy code: ``deltaprop.layout``'s
``pack`` / ``unpack`` / ``unit_buffers``, ``deltaprop.lowlevel`` (the kernels with their
arguments checked: every mistake is an error naming the argument), and the gallery example
``examples/plot_numpy_kernels.py`` (a hand-written loop, then the same loop on the kernels),
which is run here on every available backend and must give the same weights."""

import pathlib
import runpy

import numpy as np
import pytest
from conftest import BACKENDS

import deltaprop
from deltaprop import backends, contract, lowlevel
from deltaprop import layout as layout_module
from deltaprop.layout import layer_params, layer_units, make_layout, n_params, n_units, pack, unit_buffers, unpack

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "plot_numpy_kernels.py"


def layers(rng, sizes, dtype=np.float64):
    coefs = [rng.randn(a, b).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    intercepts = [rng.randn(b).astype(dtype) for b in sizes[1:]]
    return coefs, intercepts


# --------------------------------------------------------------------------- the gallery example

@pytest.mark.parametrize("backend", BACKENDS)
def test_example_gives_the_same_weights(backend, monkeypatch, capsys):
    source = EXAMPLE.read_text(encoding="utf-8")
    assert source.index("# By hand") < source.index("# On the kernels"), \
        "the example shows the loop by hand, then on the kernels"
    assert "from deltaprop import lowlevel" in source
    # the example runs on "auto": make this backend the only one registered
    monkeypatch.setattr(backends, "BACKENDS", {backend: backends.BACKENDS[backend]})
    assert backends.get_backend("auto").name == backend
    ns = runpy.run_path(str(EXAMPLE), run_name="numpy_users_example")
    out = capsys.readouterr().out.split()
    assert out[1] == backend
    assert float(out[0]) > 0.9  # the hand-written loop learns
    assert out[-1] == "True"  # the example's own check
    for got, want in zip(ns["coefs"] + ns["intercepts"], [ns["W1"], ns["W2"], ns["b1"], ns["b2"]], strict=True):
        assert got.dtype == want.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # the weights moved: the test compares trained networks, not the starting point
    assert not np.allclose(ns["W1"], ns["start"][0][0])
    # unpack's views followed the kernels' in-place updates of w
    assert all(np.shares_memory(c, ns["w"]) for c in ns["coefs"] + ns["intercepts"])


# --------------------------------------------------------------------------- pack / unpack

@pytest.mark.parametrize("sizes", [[3, 1], [4, 8, 3], [5, 7, 2, 6]])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pack_unpack_round_trip(rng, sizes, dtype):
    coefs, intercepts = layers(rng, sizes, dtype)
    w, layout = pack(coefs, intercepts)
    assert w.dtype == dtype and w.shape == (n_params(make_layout(sizes)),) and w.flags.c_contiguous
    np.testing.assert_array_equal(layout, make_layout(sizes))
    assert layout.dtype == np.intp
    back_W, back_b = unpack(w, layout)
    assert len(back_W) == len(back_b) == len(sizes) - 1
    for got, want in zip(back_W + back_b, coefs + intercepts, strict=True):
        assert got.shape == want.shape and got.dtype == dtype
        np.testing.assert_array_equal(got, want)
    # the same places as the engine's own views
    for layer in range(len(sizes) - 1):
        W, b = layer_params(w, layout, layer)
        assert np.shares_memory(W, back_W[layer]) and np.shares_memory(b, back_b[layer])
    # and back again
    w2, layout2 = pack(back_W, back_b)
    np.testing.assert_array_equal(w2, w)
    np.testing.assert_array_equal(layout2, layout)


def test_pack_matches_the_engine(rng):
    net = deltaprop.MLP([4, 6, 3], hidden="tanh", output="softmax", loss="cross_entropy",
                        backend="numpy", random_state=0)
    w, layout = pack(net.coefs_, net.intercepts_)
    np.testing.assert_array_equal(w, net.w)
    np.testing.assert_array_equal(layout, net.layout)


def test_pack_copies(rng):
    coefs, intercepts = layers(rng, [3, 4, 2])
    w, layout = pack(coefs, intercepts)
    assert not any(np.shares_memory(w, a) for a in coefs + intercepts)
    w[:] = 0
    assert np.abs(coefs[0]).sum() > 0


def test_pack_dtype(rng):
    c64, b64 = layers(rng, [3, 4, 2])
    c32, b32 = layers(rng, [3, 4, 2], np.float32)
    assert pack(c32, b32)[0].dtype == np.float32
    assert pack(c32, b64)[0].dtype == np.float64  # one float dtype: the wider
    assert pack(c64, b64, dtype="float32")[0].dtype == np.float32
    assert pack([[[1, 2]]], [[0, 0]])[0].dtype == np.float64  # nested lists, integers
    np.testing.assert_array_equal(pack([[[1, 2]]], [[3, 4]])[0], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="float32 or float64"):
        pack(c64, b64, dtype="float16")
    with pytest.raises(ValueError, match="float32 or float64"):
        pack([c.astype(np.float16) for c in c64], [b.astype(np.float16) for b in b64], dtype=np.int32)
    with pytest.raises(TypeError, match=r"coefs\[1\].*real numeric"):
        pack([c64[0], c64[1].astype(complex)], b64)


def test_unpack_views_share_memory(rng):
    coefs, intercepts = layers(rng, [3, 5, 2])
    w, layout = pack(coefs, intercepts)
    W, b = unpack(w, layout)
    assert all(np.shares_memory(v, w) for v in W + b)
    w *= 2  # updating w updates the views
    np.testing.assert_array_equal(W[1], 2 * coefs[1])
    np.testing.assert_array_equal(b[0], 2 * intercepts[0])
    W[0][...] = 7.0  # and writing into a view writes into w
    b[1] -= 1.0
    np.testing.assert_array_equal(layer_params(w, layout, 0)[0], 7.0)
    np.testing.assert_array_equal(layer_params(w, layout, 1)[1], 2 * intercepts[1] - 1.0)
    # a gradient in w's layout unpacks the same way
    gW, gb = unpack(np.arange(w.size, dtype=float), layout)
    assert gW[0][0, 0] == 0 and gb[-1][-1] == w.size - 1


@pytest.mark.parametrize("coefs, intercepts, message", [
    ([np.ones((3, 4)), np.ones((5, 2))], [np.ones(4), np.ones(2)],
     r"coefs\[1\] \(layer 1\) has shape \(5, 2\), so 5 inputs, but layer 0 has 4 outputs"),
    ([np.ones((3, 4)), np.ones((4, 2))], [np.ones(4), np.ones(3)],
     r"intercepts\[1\] \(layer 1\) must have shape \(2,\)"),
    ([np.ones((3, 4))], [np.ones((1, 4))], r"intercepts\[0\] \(layer 0\) must have shape \(4,\)"),
    ([np.ones((3, 4)), np.ones(4)], [np.ones(4), np.ones(1)], r"coefs\[1\] \(layer 1\) must be 2-D"),
    ([np.ones((3, 0))], [np.ones(0)], r"coefs\[0\] \(layer 0\).*at least one"),
    ([np.ones((3, 4)), np.ones((4, 2))], [np.ones(4)], "2 layers but intercepts has 1"),
    ([], [], "at least one layer"),
], ids=["chain", "bias-length", "bias-2d", "weights-1d", "empty-layer", "counts", "no-layers"])
def test_pack_bad_shapes_name_the_layer(coefs, intercepts, message):
    """Each bad shape is a ValueError naming the layer (and the arrays) at fault."""
    with pytest.raises(ValueError, match=message):
        pack(coefs, intercepts)


def test_unpack_checks_its_arguments(rng):
    w, layout = pack(*layers(rng, [3, 4, 2]))
    with pytest.raises(ValueError, match=f"length {w.size}"):
        unpack(w[:-1], layout)
    with pytest.raises(ValueError, match="1-D"):
        unpack(w.reshape(1, -1), layout)
    with pytest.raises(ValueError, match=r"\(L, 5\)"):
        unpack(w, layout[:, :4])
    with pytest.raises(TypeError, match="NumPy array"):
        unpack(list(w), layout)


# --------------------------------------------------------------------------- unit_buffers

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unit_buffers(dtype):
    layout = make_layout([4, 8, 3])
    A, Z, D = unit_buffers(layout, 5, dtype)
    for buf in (A, Z, D):
        assert buf.shape == (5 * n_units(layout),) and buf.dtype == dtype and buf.flags.c_contiguous
        assert buf.flags.writeable and not buf.any()
    assert not (np.shares_memory(A, Z) or np.shares_memory(Z, D) or np.shares_memory(A, D))
    assert unit_buffers(layout, np.int64(2))[0].dtype == np.float64
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="positive integer"):
            unit_buffers(layout, bad, dtype)
    with pytest.raises(ValueError, match="float32 or float64"):
        unit_buffers(layout, 2, np.float16)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_helpers_feed_every_backend(backend, dtype, rng):
    """pack + unit_buffers give arrays every backend takes, through lowlevel: forward and the
    gradient agree with the engine's."""
    net = deltaprop.MLP([4, 6, 3], hidden="tanh", output="softmax", loss="cross_entropy",
                        backend=backend, dtype=dtype.__name__, random_state=1)
    X = rng.randn(7, 4).astype(dtype)
    T = np.eye(3, dtype=dtype)[rng.randint(0, 3, 7)]
    coefs = [c.copy() for c in net.coefs_]
    intercepts = [b.copy() for b in net.intercepts_]
    w, layout = pack(coefs, intercepts)
    A, Z, D = unit_buffers(layout, len(X), w.dtype)
    h, f, e = (contract.ACTIVATIONS["tanh"], contract.ACTIVATIONS["softmax"],
               contract.LOSSES["cross_entropy"])
    g = np.empty_like(w)
    lowlevel.forward(w, layout, h, f, X, A, Z, backend=backend)
    E = lowlevel.output_delta(layout, f, e, A, Z, T, np.ones(len(X), dtype=dtype), D, backend=backend)
    lowlevel.backprop(w, layout, h, A, Z, D, backend=backend)
    lowlevel.gradient(layout, X, Z, D, g, backend=backend)
    E_net, g_net = net.loss_and_gradient(X, T)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(layer_units(Z, layout, -1, len(X)), net.forward(X), rtol=tol, atol=tol)
    np.testing.assert_allclose(E, E_net, rtol=tol)
    np.testing.assert_allclose(g, g_net, rtol=tol, atol=tol)


def test_helpers_are_public():
    for name in ("pack", "unpack", "unit_buffers", "make_layout", "n_params", "n_units", "layer_params",
                 "layer_units"):
        assert name in layout_module.__all__
        assert getattr(layout_module, name).__doc__
    for name in contract.FUNCTIONS:
        if name not in ("average_epochs", "split_epochs"):  # the engine's thread kernels
            assert name in lowlevel.__all__
            assert "Parameters" in getattr(lowlevel, name).__doc__


# --------------------------------------------------------------------------- lowlevel's checks

def small_problem(dtype=np.float64, n=6, sizes=(4, 5, 3)):
    rng = np.random.RandomState(0)
    w, layout = pack(*layers(rng, list(sizes), dtype))
    X = rng.randn(n, sizes[0]).astype(dtype)
    T = np.eye(sizes[-1], dtype=dtype)[rng.randint(0, sizes[-1], n)]
    s = np.ones(n, dtype=dtype)
    A, Z, D = unit_buffers(layout, n, dtype)
    codes = (contract.ACTIVATIONS["tanh"], contract.ACTIVATIONS["softmax"], contract.LOSSES["cross_entropy"])
    return w, layout, X, T, s, A, Z, D, codes


def epoch_args(dtype=np.float64, n=6, sizes=(4, 5, 3), n_epochs=2):
    """The arguments of ``sgd_epoch``, by name."""
    w, layout, X, T, s, _, _, _, (h, f, e) = small_problem(dtype, n, sizes)
    U, P = n_units(layout), n_params(layout)
    order = np.stack([np.random.RandomState(k).permutation(n) for k in range(n_epochs)]).astype(np.intp)
    return dict(w=w, layout=layout, hidden=h, output=f, loss=e, X=X, T=T, s=s, order=order,
                solver=contract.SOLVERS["adam"], hyper=contract.make_hyper(dtype, eta=0.05),
                state=np.zeros((2, P), dtype), step=np.zeros(1, np.int64), a=np.zeros(U, dtype),
                z=np.zeros(U, dtype), delta=np.zeros(U, dtype), losses=np.zeros((n_epochs, 2)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lowlevel_epochs_equal_the_raw_kernels(backend, dtype):
    """The checks change nothing: sgd_epoch and batch_epoch through lowlevel give the bits the
    backend's own kernels give."""
    checked, raw = epoch_args(dtype), epoch_args(dtype)
    lowlevel.sgd_epoch(**checked, backend=backend)
    deltaprop.get_backend(backend).sgd_epoch(*raw.values())
    for name in ("w", "state", "step", "losses"):
        np.testing.assert_array_equal(checked[name], raw[name], err_msg=name)
    assert checked["step"][0] == checked["order"].size  # Adam counted every sample
    B = 4
    for args in (checked, raw):
        U, D, K = n_units(args["layout"]), args["X"].shape[1], args["T"].shape[1]
        args.update(Xb=np.zeros((B, D), dtype), Tb=np.zeros((B, K), dtype), sb=np.zeros(B, dtype),
                    A=np.zeros(B * U, dtype), Z=np.zeros(B * U, dtype), D=np.zeros(B * U, dtype),
                    g=np.zeros(n_params(args["layout"]), dtype))
        for buf in ("a", "z", "delta"):
            del args[buf]
    names = contract.SIGNATURES["batch_epoch"]
    lowlevel.batch_epoch(*(B if p == "batch_size" else checked[p] for p in names), backend=backend)
    deltaprop.get_backend(backend).batch_epoch(*(B if p == "batch_size" else raw[p] for p in names))
    for name in ("w", "state", "step", "losses"):
        np.testing.assert_array_equal(checked[name], raw[name], err_msg=name)


def test_lowlevel_loss_gradient_adds_the_gradient():
    w, layout, X, T, s, A, Z, D, codes = small_problem()
    g, grad = np.empty_like(w), np.zeros_like(w)
    E = lowlevel.loss_gradient(w, layout, *codes, X, T, s, A[: 2 * n_units(layout)], Z, D, g, grad)
    net = deltaprop.MLP([4, 5, 3], hidden="tanh", output="softmax", loss="cross_entropy", backend="numpy")
    net.w[...] = w
    E_net, g_net = net.loss_and_gradient(X, T)
    np.testing.assert_allclose(E, E_net, rtol=1e-12)
    np.testing.assert_allclose(grad, g_net, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call, error, message", [
    # wrong dtype
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w.astype(np.float16), lay, *c[:2], X, A, Z), TypeError,
     "w must be float32 or float64; got float16"),
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay.astype(np.int32), *c[:2], X, A, Z), TypeError,
     "layout must be of dtype intp"),
    # mixed dtypes
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay, *c[:2], X.astype(np.float32), A, Z), TypeError,
     "X is float32 but the call's other floating arrays are float64"),
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay, *c[:2], X, A, Z.astype(np.float32)), TypeError,
     "Z is float32 but"),
    # not an array, not C-contiguous, read-only
    (lambda w, lay, X, A, Z, c: lowlevel.forward(list(w), lay, *c[:2], X, A, Z), TypeError,
     "w must be a NumPy array; got list"),
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay, *c[:2], np.asfortranarray(X), A, Z), ValueError,
     r"X must be C-contiguous"),
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay, *c[:2], X, A[::2], Z), ValueError,
     r"A must be C-contiguous"),
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay, *c[:2], X, A, np.frombuffer(Z.tobytes())), ValueError,
     "Z is read-only"),
    # wrong shape
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w[:-1], lay, *c[:2], X, A, Z), ValueError,
     r"w must have shape \(\d+,\) \(the layout's parameter count\)"),
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay, *c[:2], X[:, :3].copy(), A, Z), ValueError,
     r"X must have shape \(n, 4\) \(the layout's inputs\); got \(6, 3\)"),
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay, *c[:2], X, A[:-1], Z), ValueError,
     r"A must have length at least 48 \(n \* U"),
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay, *c[:2], X[0], A, Z), ValueError,
     r"X must be 2-D; got shape \(4,\)"),
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay[:, :4].copy(), *c[:2], X, A, Z), ValueError,
     r"layout must have shape \(L, 5\)"),
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay + 1, *c[:2], X, A, Z), ValueError,
     "layout is not the layout table"),
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay, *c[:2], X, A, A), ValueError,
     "A and Z must not share memory"),
    # codes
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay, contract.ACTIVATIONS["softmax"], c[1], X, A, Z),
     ValueError, r"hidden must be the code of a hidden activation.*got 5"),
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay, "tanh", c[1], X, A, Z), ValueError,
     r"hidden must be the code.*tanh 2.*got 'tanh'"),
    (lambda w, lay, X, A, Z, c: lowlevel.forward(w, lay, c[0], 99, X, A, Z), ValueError,
     r"output must be the code of an output activation"),
], ids=["dtype-w", "dtype-layout", "mixed-X", "mixed-Z", "list", "fortran-X", "strided-A", "read-only-Z",
        "shape-w", "shape-X", "short-A", "1d-X", "layout-columns", "layout-offsets", "aliased", "hidden-softmax",
        "hidden-name", "output-code"])
def test_lowlevel_forward_names_the_bad_argument(call, error, message):
    w, layout, X, T, s, A, Z, D, codes = small_problem()
    with pytest.raises(error, match=message):
        call(w, layout, X, A, Z, codes)
    assert not A.any() and not Z.any()  # the kernel never ran


def test_lowlevel_checks_every_kernel_names_the_argument():
    w, layout, X, T, s, A, Z, D, (h, f, e) = small_problem()
    with pytest.raises(ValueError, match=r"T must have shape \(n, 3\)"):
        lowlevel.output_delta(layout, f, e, A, Z, T[:, :2].copy(), s, D)
    with pytest.raises(ValueError, match=r"s must have shape \(6,\)"):
        lowlevel.output_delta(layout, f, e, A, Z, T, s[:-1], D)
    with pytest.raises(ValueError, match="output 'softmax' cannot be paired with loss 'poisson'"):
        lowlevel.output_delta(layout, f, contract.LOSSES["poisson"], A, Z, T, s, D)
    with pytest.raises(TypeError, match="T is float32 but"):
        lowlevel.output_delta(layout, f, e, A, Z, T.astype(np.float32), s, D)
    with pytest.raises(ValueError, match=r"A must have length n \* U = n \* 8"):
        lowlevel.backprop(w, layout, h, A[:-1], Z, D)
    with pytest.raises(ValueError, match=r"D must have length at least 48"):
        lowlevel.backprop(w, layout, h, A, Z, D[:40])
    with pytest.raises(ValueError, match=r"g must have shape \(43,\)"):
        lowlevel.gradient(layout, X, Z, D, np.empty(42))
    with pytest.raises(TypeError, match="grad must be float64; got float32"):
        lowlevel.loss_gradient(w, layout, h, f, e, X, T, s, A, Z, D, np.empty_like(w), np.zeros(43, np.float32))


@pytest.mark.parametrize("name, bad, error, message", [
    ("order", lambda a: a["order"] + a["X"].shape[0], ValueError, r"order must hold sample indices in \[0, 6\)"),
    ("order", lambda a: a["order"].astype(np.int32), TypeError, "order must be int64|order must be intp"),
    ("solver", lambda a: 7, ValueError, r"solver must be the code of a solver.*sgd 0"),
    ("hyper", lambda a: a["hyper"][:5].copy(), ValueError, r"hyper must have shape \(6,\)"),
    ("state", lambda a: a["state"][:1].copy(), ValueError, r"state must have shape \(2, 43\)"),
    ("step", lambda a: a["step"].astype(np.int32), TypeError, "step must be int64; got int32"),
    ("losses", lambda a: a["losses"][:1].copy(), ValueError, r"losses must have shape \(2, 2\)"),
    ("a", lambda a: np.zeros(9), ValueError, r"a must have length 8 \(U, one sample's units\); got 9"),
    ("w", lambda a: a["w"].astype(np.float32), TypeError, r"X is float64 but the call's other floating arrays "
                                                          r"are float32"),
], ids=["order-range", "order-dtype", "solver", "hyper", "state", "step", "losses", "unit-buffer", "mixed"])
def test_lowlevel_sgd_epoch_names_the_bad_argument(name, bad, error, message):
    args = epoch_args()
    args[name] = bad(args)
    before = args["w"].copy()
    with pytest.raises(error, match=message):
        lowlevel.sgd_epoch(**args)
    np.testing.assert_array_equal(args["w"], before)

