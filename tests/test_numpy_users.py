"""The kernels as a drop-in backend for a user's own NumPy code: ``contract.pack`` /
``unpack`` / ``unit_buffers``, and the gallery example ``examples/plot_numpy_kernels.py`` (a
hand-written loop, then the same loop on the kernels), which is run here on every available
backend and must give the same weights."""

import pathlib
import runpy

import numpy as np
import pytest
from conftest import BACKENDS

import deltaprop
from deltaprop import contract
from deltaprop.contract import layer_params, make_layout, n_params, n_units, pack, unit_buffers, unpack

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
    assert "get_backend(deltaprop.available_backends()[0])" in source
    # the example takes the first available backend: make it this one
    monkeypatch.setattr(deltaprop, "available_backends", lambda: [backend])
    ns = runpy.run_path(str(EXAMPLE), run_name="numpy_users_example")
    assert ns["kernels"].name == backend
    out = capsys.readouterr().out.split()
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
    """pack + unit_buffers give arrays every backend takes: forward and the gradient agree with
    the engine's."""
    net = deltaprop.MLP([4, 6, 3], hidden="tanh", output="softmax", loss="cross_entropy",
                        backend=backend, dtype=dtype.__name__, random_state=1)
    X = rng.randn(7, 4).astype(dtype)
    T = np.eye(3, dtype=dtype)[rng.randint(0, 3, 7)]
    coefs = [c.copy() for c in net.coefs_]
    intercepts = [b.copy() for b in net.intercepts_]
    w, layout = pack(coefs, intercepts)
    k = deltaprop.get_backend(backend)
    A, Z, D = unit_buffers(layout, len(X), w.dtype)
    h, f, e = (contract.ACTIVATIONS["tanh"], contract.ACTIVATIONS["softmax"],
               contract.LOSSES["cross_entropy"])
    g = np.empty_like(w)
    k.forward(w, layout, h, f, X, A, Z)
    E = k.output_delta(layout, f, e, A, Z, T, np.ones(len(X), dtype=dtype), D)
    k.backprop(w, layout, h, A, Z, D)
    k.gradient(layout, X, Z, D, g)
    E_net, g_net = net.loss_and_gradient(X, T)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(contract.layer_units(Z, layout, -1, len(X)), net.forward(X), rtol=tol, atol=tol)
    np.testing.assert_allclose(E, E_net, rtol=tol)
    np.testing.assert_allclose(g, g_net, rtol=tol, atol=tol)


def test_helpers_are_public():
    for name in ("pack", "unpack", "unit_buffers"):
        assert name in contract.__all__
        assert getattr(contract, name).__doc__
