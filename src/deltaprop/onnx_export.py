r"""Export to ONNX: a network's forward pass as an ONNX graph, to serve it elsewhere.

:func:`to_onnx` turns a :class:`deltaprop.MLP`, :class:`deltaprop.MLPClassifier` or
:class:`deltaprop.MLPRegressor` into an ``onnx.ModelProto``; :func:`export_model_file` does the
same for a command-line model file, with its preprocessing. The ``onnx`` package is imported
only here, inside the functions (``pip install 'deltaprop[onnx]'``), so ``import deltaprop``
never needs it.

Design
------
The graph is the seed's forward pass (Bishop 5.48, 5.49), one layer at a time:

.. math:: a = z W + b \;\; (\texttt{MatMul}, \texttt{Add}), \qquad z = h(a), \qquad y = f(a)

with ``W = coefs_[l]`` (n_in, n_out) and ``b = intercepts_[l]`` as initializers of the model's
dtype. The input ``X`` is (N, D) with a symbolic batch dimension ``N`` (1 and 0 rows work); its
element type is the model's dtype, float32 or float64. Each activation is a row of
:data:`HIDDEN` or :data:`OUTPUT`:

============  ===================================  ==========================================
activation    float32                              float64 (ONNX Runtime's CPU provider has
                                                   no double Atan and no double Softplus)
============  ===================================  ==========================================
identity      none (the ``Add`` is the output)     the same
logistic      hidden: ``Sigmoid``; output: the     the same
              reference's two-branch form (below)
tanh          ``Tanh``                             ``Tanh``
relu          ``Relu``                             ``Relu``
gudermannian  :math:`2 \arctan(\tanh(a/2))`:       the same, with :math:`\arctan x` as
              ``Mul`` ½, ``Tanh``, ``Atan``,       Cephes' rational approximation (``Abs``,
              ``Mul`` 2                            ``Greater``, ``Where``, ``Mul``, ``Add``,
                                                   ``Div``; below)
softplus      ``Softplus``                         :math:`\max(a, 0) + \ln(1 + e^{-|a|})`
                                                   (``Relu``, ``Abs``, ``Neg``, ``Exp``), the
                                                   logarithm as :math:`\mathrm{log1p}(e)`
                                                   (below)
softmax       ``Softmax`` (axis −1)                ``Softmax`` (axis −1)
exp           ``Exp``                              ``Exp``
============  ===================================  ==========================================

Both float64 workarounds keep the numerics of the NumPy reference
(``deltaprop.kernels._numpy.activations``) to a few units in the last place (measured: 4 ulp
for the Gudermannian, 3 for softplus). :math:`\arctan x`, :math:`|x| \le 1`, is Cephes'
(Moshier's; Go's ``math.Atan``): :math:`s = |x|`, reduced by
:math:`\arctan s = \pi/4 + \arctan\frac{s-1}{s+1}` when :math:`s > 0.66`, then
:math:`r + r z P(z)/Q(z)` with :math:`z = r^2` and quartic P, Q, the sign of x put back.
:math:`\mathrm{log1p}(e)` is Goldberg's
:math:`\ln(u) \, e / (u - 1)` with :math:`u = 1 + e` (and :math:`e` itself where
:math:`u = 1`), accurate where :math:`\ln(1 + e)` would lose the small :math:`e`.
A logistic *output* is the reference's :math:`1 / (1 + e)` for :math:`a \ge 0`, else
:math:`e / (1 + e)`, :math:`e = e^{-|a|}` (``Exp``, ``Add``, ``Div``, ``GreaterOrEqual``,
``Where``), because ONNX Runtime's ``Sigmoid`` is accurate in absolute terms only (float32:
1e-5 relative at a = −5 and worse beyond; float64: 1e-3 at a = −30), which would show in
small probabilities; for hidden units the absolute error is what matters. ONNX Runtime's
float32 ``Tanh`` is a fast approximation too (absolute error ~3e-7).

What the model outputs (the heads, :data:`HEADS`):

``MLP``
    ``y`` (N, K): :meth:`deltaprop.MLP.forward`.
``MLPRegressor``
    ``variable`` (N, n_outputs): ``predict`` as a column per output (skl2onnx's name and shape).
``MLPClassifier``
    ``label`` and ``probabilities`` (N, n_classes), as skl2onnx names them (no ZipMap):
    ``probabilities`` is ``predict_proba``; ``label`` is ``predict``: binary (one logistic
    output p) ``classes_[p > 0.5]`` with probabilities ``(1 - p, p)``; multiclass
    ``classes_[argmax]`` (``ArgMax``, first of ties, as NumPy); both through ``Gather`` on a
    constant tensor of the classes (int64, double, bool or string), shape (N,); multilabel the
    int64 indicator matrix ``p > 0.5``, shape (N, K).

A command-line model file (:mod:`deltaprop.savedmodel`) adds its preprocessing:
``(X - x_mean) / x_scale`` (``Sub``, ``Div``) in front of the network and, for regression,
``y * y_scale + y_mean`` (``Mul``, ``Add``) after it.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

__all__ = ["to_onnx", "export_model_file", "DEFAULT_OPSET", "MIN_OPSET", "HIDDEN", "OUTPUT", "HEADS"]

#: The default ``target_opset``: recent, and loaded by ONNX Runtime >= 1.20 and onnx >= 1.16
#: (lowered to the installed onnx's newest opset if that is older).
DEFAULT_OPSET = 21
#: The oldest opset the graphs are written for (Softmax over the last axis, ArgMax, Squeeze with
#: axes as an input).
MIN_OPSET = 13


# --------------------------------------------------------------------------- the graph builder

class _Graph:
    """Nodes and initializers of one graph under construction, in one floating dtype."""

    def __init__(self, dtype):
        from onnx import helper

        self.dtype = np.dtype(dtype)
        self.elem = helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes = []
        self.initializers = []
        self._used = set()
        self._consts = {}

    def name(self, stem: str) -> str:
        """A value name not used yet: ``stem``, else ``stem_1``, ``stem_2``, ..."""
        name, i = stem, 0
        while name in self._used:
            i += 1
            name = f"{stem}_{i}"
        self._used.add(name)
        return name

    def const(self, stem: str, value, dtype=None) -> str:
        """An initializer holding ``value`` (in the graph's dtype unless ``dtype`` is given); a
        scalar asked for again under the same stem is the same initializer."""
        from onnx import helper, numpy_helper

        value = np.asarray(value)
        key = (stem, value.item()) if value.ndim == 0 and dtype is None else None
        if key in self._consts:
            return self._consts[key]
        name = self.name(stem)
        if key is not None:
            self._consts[key] = name
        if value.dtype.kind in "OUS":  # strings: a STRING tensor of UTF-8 bytes
            tensor = helper.make_tensor(name, helper.TensorProto.STRING, value.shape,
                                        [str(v).encode("utf-8") for v in value.ravel()])
        else:
            tensor = numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype or self.dtype), name)
        self.initializers.append(tensor)
        return name

    def op(self, op_type: str, inputs, out: str | None = None, **attrs) -> str:
        """Append one node; return the name of its output (``out``, or a fresh name)."""
        from onnx import helper

        if out is None:
            out = self.name(op_type.lower())
        elif out in self._used:
            raise AssertionError(f"value name {out!r} is taken")  # a bug in a head, never the user's
        self._used.add(out)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=f"{op_type}_{len(self.nodes)}",
                                           **attrs))
        return out

    def model(self, inputs, outputs, opset: int, doc: str):
        """The checked ``ModelProto`` with these graph inputs and outputs (value infos)."""
        import onnx
        from onnx import helper

        graph = helper.make_graph(self.nodes, "deltaprop", inputs, outputs, self.initializers)
        opsets = [helper.make_opsetid("", opset)]
        from . import __version__

        model = helper.make_model(graph, opset_imports=opsets, producer_name="deltaprop",
                                  producer_version=__version__, doc_string=doc,
                                  ir_version=helper.find_min_ir_version_for(opsets, ignore_unknown=True))
        onnx.checker.check_model(model, full_check=True)
        return model


# --------------------------------------------------------------------------- the activations

def _sigmoid(g, a, out=None):
    return g.op("Sigmoid", [a], out)


def _logistic_tails(g, a, out=None):
    r"""The reference's :math:`\sigma(a)`: :math:`1 / (1 + e)` for :math:`a \ge 0`, else
    :math:`e / (1 + e)`, with :math:`e = e^{-|a|}`: relatively accurate in both tails (ONNX
    Runtime's ``Sigmoid`` is accurate in absolute terms only: in float32 about 1e-5 relative at
    a = -5, in float64 1e-3 at a = -30). For output probabilities; hidden units use ``Sigmoid``."""
    e = g.op("Exp", [g.op("Neg", [g.op("Abs", [a])])])
    d = g.op("Add", [g.const("one", 1.0), e])
    return g.op("Where", [g.op("GreaterOrEqual", [a, g.const("zero", 0.0)]),
                          g.op("Div", [g.const("one", 1.0), d]), g.op("Div", [e, d])], out)


def _tanh(g, a, out=None):
    return g.op("Tanh", [a], out)


def _relu(g, a, out=None):
    return g.op("Relu", [a], out)


#: Cephes' atan (Moshier): :math:`\arctan r = r + r z P(z) / Q(z)`, :math:`z = r^2`, for
#: :math:`|r| \le 0.66`; the leading coefficient of Q is 1.
_ATAN_P = (-8.750608600031904122785e-01, -1.615753718733365076637e+01, -7.500855792314704667340e+01,
           -1.228866684490136173410e+02, -6.485021904942025371773e+01)
_ATAN_Q = (2.485846490142306297962e+01, 1.650270098316988542046e+02, 4.328810604912902668951e+02,
           4.853903996359136964868e+02, 1.945506571482613964425e+02)
#: :math:`\pi/4` and the bits of it a double drops (Cephes' ``0.5 * MOREBITS``)
_PI_4, _PI_4_LO = 7.85398163397448309616e-01, 3.061616997868382943065e-17


def _atan(g, x):
    r""":math:`\arctan x` for :math:`|x| \le 1` (here :math:`x = \tanh(a/2)`): ``Atan`` in
    float32; in float64 (ONNX Runtime's CPU provider has no double Atan; 1.20 has no double Sin
    or Cos either, so no Newton step from a float32 Atan) Cephes' rational approximation from ``Mul``, ``Add``, ``Div``, ``Where``: with
    :math:`s = |x|`, :math:`\arctan s = \pi/4 + \arctan\frac{s - 1}{s + 1}` for :math:`s > 0.66`,
    the sign of x restored at the end (1-2 ulp, as Cephes and Go's ``math.Atan``)."""
    if g.dtype == np.float32:
        return g.op("Atan", [x])
    one = g.const("one", 1.0)
    s = g.op("Abs", [x])
    reduce = g.op("Greater", [s, g.const("atan_split", 0.66)])
    r = g.op("Where", [reduce, g.op("Div", [g.op("Sub", [s, one]), g.op("Add", [s, one])]), s])
    z = g.op("Mul", [r, r])
    num = g.const("atan_p0", _ATAN_P[0])
    for c in _ATAN_P[1:]:
        num = g.op("Add", [g.op("Mul", [num, z]), g.const("atan_p", c)])
    den = g.op("Add", [z, g.const("atan_q", _ATAN_Q[0])])
    for c in _ATAN_Q[1:]:
        den = g.op("Add", [g.op("Mul", [den, z]), g.const("atan_q", c)])
    t = g.op("Add", [g.op("Mul", [r, g.op("Div", [g.op("Mul", [z, num]), den])]), r])  # r z P/Q + r
    shifted = g.op("Add", [g.const("pi_4", _PI_4), g.op("Add", [t, g.const("pi_4_lo", _PI_4_LO)])])
    y = g.op("Where", [reduce, shifted, t])
    return g.op("Where", [g.op("Less", [x, g.const("zero", 0.0)]), g.op("Neg", [y]), y])


def _gudermannian(g, a, out=None):
    r""":math:`\mathrm{gd}(a) = 2 \arctan(\tanh(a/2))`, as the reference writes it."""
    x = g.op("Tanh", [g.op("Mul", [a, g.const("half", 0.5)])])
    return g.op("Mul", [_atan(g, x), g.const("two", 2.0)], out)


def _log1p(g, e):
    r""":math:`\ln(1 + e)` without losing a small :math:`e` (Goldberg): :math:`u = 1 + e`, then
    :math:`e` where :math:`u = 1`, else :math:`\ln(u) \, e / (u - 1)`."""
    one = g.const("one", 1.0)
    u = g.op("Add", [e, one])
    ratio = g.op("Div", [e, g.op("Sub", [u, one])])
    return g.op("Where", [g.op("Equal", [u, one]), e, g.op("Mul", [g.op("Log", [u]), ratio])])


def _softplus(g, a, out=None):
    r""":math:`\ln(1 + e^{a})`: ``Softplus`` in float32; in float64 the reference's
    :math:`\max(a, 0) + \mathrm{log1p}(e^{-|a|})` (ONNX Runtime has no double Softplus)."""
    if g.dtype == np.float32:
        return g.op("Softplus", [a], out)
    e = g.op("Exp", [g.op("Neg", [g.op("Abs", [a])])])
    return g.op("Add", [g.op("Relu", [a]), _log1p(g, e)], out)


def _softmax(g, a, out=None):
    return g.op("Softmax", [a], out, axis=-1)


def _exp(g, a, out=None):
    return g.op("Exp", [a], out)


#: Hidden activation h -> ``emit(graph, a, out) -> z`` (None: identity, no node).
HIDDEN = {
    "identity": None,
    "logistic": _sigmoid,
    "tanh": _tanh,
    "relu": _relu,
    "gudermannian": _gudermannian,
    "softplus": _softplus,
}

#: Output activation f -> ``emit(graph, a, out) -> y`` (None: identity, no node).
OUTPUT = {
    "identity": None,
    "logistic": _logistic_tails,
    "softmax": _softmax,
    "exp": _exp,
}


def _network(g, net, x, out):
    r"""The forward pass of ``net`` from value ``x``; the outputs :math:`y` are named ``out``."""
    L = len(net.coefs_)
    for l, (W, b) in enumerate(zip(net.coefs_, net.intercepts_)):
        last = l == L - 1
        emit = OUTPUT[net.output] if last else HIDDEN[net.hidden]
        a = g.op("Add", [g.op("MatMul", [x, g.const(f"W{l}", W)]), g.const(f"b{l}", b)],
                 out if last and emit is None else f"a{l}")
        x = a if emit is None else emit(g, a, out if last else f"z{l}")
    return x


# --------------------------------------------------------------------------- the heads

def _info(name, elem, shape):
    from onnx import helper

    return helper.make_tensor_value_info(name, elem, shape)


def _head_outputs(g, net, x, **_):
    """``y`` (N, K) = forward."""
    _network(g, net, x, "y")
    return [_info("y", g.elem, ["N", net.layer_sizes[-1]])]


def _head_regressor(g, net, x, y_mean=None, y_scale=None, **_):
    """``variable`` (N, n_outputs) = predict; ``y * y_scale + y_mean`` when the target was scaled."""
    if y_mean is None:
        _network(g, net, x, "variable")
    else:
        y = _network(g, net, x, "y")
        g.op("Add", [g.op("Mul", [y, g.const("y_scale", y_scale)]), g.const("y_mean", y_mean)], "variable")
    return [_info("variable", g.elem, ["N", net.layer_sizes[-1]])]


def _labels(g, classes, index):
    """``label`` = ``classes[index]`` (``Gather`` on a constant tensor of the classes)."""
    from onnx import helper

    dtype = _label_dtype(classes)
    values = g.const("classes", classes, None if dtype is None else dtype)
    g.op("Gather", [values, index], "label", axis=0)
    elem = helper.TensorProto.STRING if dtype is None else helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return _info("label", elem, ["N"])


def _head_binary(g, net, x, classes, **_):
    """One logistic output p: probabilities (1 - p, p), label ``classes[p > 0.5]``."""
    from onnx import TensorProto

    p = _network(g, net, x, "p")
    g.op("Concat", [g.op("Sub", [g.const("one", 1.0), p]), p], "probabilities", axis=1)
    positive = g.op("Cast", [g.op("Greater", [p, g.const("threshold", 0.5)])], to=TensorProto.INT64)
    index = g.op("Squeeze", [positive, g.const("axis1", [1], np.int64)])
    return [_labels(g, classes, index), _info("probabilities", g.elem, ["N", 2])]


def _head_multiclass(g, net, x, classes, **_):
    """K softmax outputs: probabilities as they are, label ``classes[argmax]``."""
    _network(g, net, x, "probabilities")
    index = g.op("ArgMax", ["probabilities"], axis=1, keepdims=0)
    return [_labels(g, classes, index), _info("probabilities", g.elem, ["N", len(classes)])]


def _head_multilabel(g, net, x, classes, **_):
    """K independent logistic outputs: probabilities as they are, label the indicator ``p > 0.5``."""
    from onnx import TensorProto

    _network(g, net, x, "probabilities")
    g.op("Cast", [g.op("Greater", ["probabilities", g.const("threshold", 0.5)])], "label", to=TensorProto.INT64)
    K = net.layer_sizes[-1]
    return [_info("label", TensorProto.INT64, ["N", K]), _info("probabilities", g.elem, ["N", K])]


#: What the graph outputs after the network: ``emit(graph, net, x, **extra) -> output value infos``.
HEADS = {
    "outputs": _head_outputs,
    "regressor": _head_regressor,
    "binary": _head_binary,
    "multiclass": _head_multiclass,
    "multilabel": _head_multilabel,
}


def _label_dtype(classes):
    """The tensor dtype of the class labels: int64, float64 or bool, None for strings."""
    classes = np.asarray(classes)
    kind = classes.dtype.kind
    if kind in "US" or (kind == "O" and all(isinstance(c, str) for c in classes)):
        return None
    if kind in "iu":
        if not np.array_equal(classes.astype(np.int64), classes):
            raise ValueError(f"class labels {classes!r} do not fit in int64")
        return np.int64
    if kind in "fb":
        return np.float64 if kind == "f" else np.bool_
    raise ValueError(f"class labels of dtype {classes.dtype} cannot be exported to ONNX "
                     "(integers, floats, booleans or strings can)")


# --------------------------------------------------------------------------- what is exported

def _plan(model):
    """``(net, head, extra)`` for a model: the engine network, a key of :data:`HEADS`, and the
    head's keyword arguments. Raises ValueError for anything not exportable."""
    from sklearn.utils.validation import check_is_fitted

    from .engine import MLP
    from .estimators import MLPClassifier, MLPRegressor

    if isinstance(model, MLP):
        return model, "outputs", {}
    if isinstance(model, MLPClassifier):
        check_is_fitted(model)  # scikit-learn's NotFittedError (a ValueError) naming the estimator
        net, classes = model._mlp, np.asarray(model.classes_)
        if net.output == "softmax":
            head = "multiclass"
        elif net.output == "logistic" and net.layer_sizes[-1] == 1 and len(classes) == 2:
            head = "binary"
        elif net.output == "logistic" and np.array_equal(classes, np.arange(net.layer_sizes[-1])):
            head = "multilabel"
        else:
            raise ValueError(f"MLPClassifier with a {net.output!r} output, {net.layer_sizes[-1]} outputs and "
                             f"{len(classes)} classes cannot be exported to ONNX (binary, multiclass or "
                             "multilabel can)")
        return net, head, {"classes": classes}
    if isinstance(model, MLPRegressor):
        check_is_fitted(model)
        return model._mlp, "regressor", {}
    raise ValueError(f"to_onnx exports deltaprop.MLP, MLPClassifier and MLPRegressor; got {type(model).__name__}")


def _check_net(net):
    """ValueError naming the first piece of ``net`` that has no ONNX form."""
    if net.hidden not in HIDDEN:
        raise ValueError(f"hidden activation {net.hidden!r} cannot be exported to ONNX; "
                         f"supported: {', '.join(HIDDEN)}")
    if net.output not in OUTPUT:
        raise ValueError(f"output activation {net.output!r} cannot be exported to ONNX; "
                         f"supported: {', '.join(OUTPUT)}")
    if np.dtype(net.dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype {np.dtype(net.dtype).name} cannot be exported to ONNX (float32 or float64)")


def _check_opset(target_opset) -> int:
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if target_opset is None:
        return min(DEFAULT_OPSET, newest)
    if not isinstance(target_opset, numbers.Integral) or isinstance(target_opset, bool) \
            or not MIN_OPSET <= target_opset <= newest:
        raise ValueError(f"target_opset must be an integer from {MIN_OPSET} to {newest} (the installed onnx's "
                         f"newest); got {target_opset!r}")
    return int(target_opset)


def _check_sample(X_sample, n_features, dtype):
    """ValueError unless ``X_sample`` is 2-D with ``n_features`` columns of the model's dtype."""
    if X_sample is None:
        return
    import scipy.sparse as sp

    X = X_sample if sp.issparse(X_sample) else np.asarray(X_sample)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"X_sample must have shape (n_samples, {n_features}) for this model; got {X.shape}")
    if X.dtype != dtype:
        raise ValueError(f"X_sample has dtype {X.dtype}; the ONNX model takes {dtype.name} inputs (the model's "
                         f"dtype): pass X.astype(np.{dtype.name})")


def _export(net, head, extra, opset, doc, x_mean=None, x_scale=None):
    _check_net(net)
    g = _Graph(net.dtype)
    x = g.name("X")
    inputs = [_info(x, g.elem, ["N", net.layer_sizes[0]])]
    if x_mean is not None:
        x = g.op("Div", [g.op("Sub", [x, g.const("x_mean", x_mean)]), g.const("x_scale", x_scale)], "x_scaled")
    outputs = HEADS[head](g, net, x, **extra)
    return g.model(inputs, outputs, opset, doc)


def to_onnx(model, X_sample=None, target_opset=None):
    """Export a fitted model's forward pass to ONNX (see the module docstring for the graph).

    Parameters
    ----------
    model : deltaprop.MLP, MLPClassifier or MLPRegressor
        float32 or float64. An ``MLP`` may have any output activation and loss.
    X_sample : array-like of shape (n_samples, n_features), optional
        Only checked: its number of columns and its dtype must be the model's.
    target_opset : int, optional
        The ONNX opset of the default domain (default :data:`DEFAULT_OPSET`, at most the
        installed onnx's newest; at least :data:`MIN_OPSET`).

    Returns
    -------
    onnx.ModelProto
        Input ``X`` (N, D) of the model's dtype; outputs ``y`` (``MLP``), ``variable``
        (regressor), ``label`` and ``probabilities`` (classifier). Checked by
        ``onnx.checker.check_model``.

    Raises
    ------
    ValueError
        naming what cannot be exported: a model type, an activation, a dtype, class labels, an
        opset; scikit-learn's NotFittedError (a ValueError) for an unfitted estimator.
    """
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError("deltaprop.to_onnx needs the onnx package: pip install 'deltaprop[onnx]'") from None
    net, head, extra = _plan(model)
    opset = _check_opset(target_opset)
    _check_sample(X_sample, net.layer_sizes[0], np.dtype(net.dtype))
    return _export(net, head, extra, opset, doc=repr(model))


def export_model_file(path_in, path_out, target_opset=None):
    """Export a command-line model file (``deltaprop train --out``, or a plain ``MLP.save`` file)
    to an ``.onnx`` file, preprocessing included; return the ``onnx.ModelProto``.

    The file is read by :func:`deltaprop.savedmodel.load` (untrusted input: every member is
    checked, and a bad file is a ValueError naming it). A classifier's graph is
    ``(X - x_mean) / x_scale`` -> network -> ``label``, ``probabilities``; a regressor's ends in
    ``variable`` = ``y * y_scale + y_mean`` (N, 1); a plain network file gives ``y`` as
    :func:`to_onnx` does. ``path_out`` is written atomically.
    """
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError("exporting to ONNX needs the onnx package: pip install 'deltaprop[onnx]'") from None
    from .engine.npzfile import atomic_write
    from .savedmodel import load

    opset = _check_opset(target_opset)
    saved = load(path_in)
    if saved.task == "outputs":
        proto = to_onnx(saved.model, target_opset=opset)
    else:
        scaler, final = saved.model.named_steps["scale"], saved.model.named_steps["mlp"]
        est = final.regressor_ if saved.task == "regression" else final
        net, head, extra = _plan(est)
        dtype = np.dtype(net.dtype)
        if saved.task == "regression":
            y = final.transformer_
            extra = {"y_mean": y.mean_.astype(dtype), "y_scale": y.scale_.astype(dtype)}
        proto = _export(net, head, extra, opset, doc=f"{os.path.basename(path_in)}: {saved.task}, {net!r}",
                        x_mean=scaler.mean_.astype(dtype), x_scale=scaler.scale_.astype(dtype))
    with atomic_write(path_out) as fh:
        fh.write(proto.SerializeToString())
    return proto
