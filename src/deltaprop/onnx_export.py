r"""Export to ONNX: a network's forward pass as an ONNX graph, to serve it elsewhere.

:func:`to_onnx` turns a :class:`deltaprop.MLP`, :class:`deltaprop.MLPClassifier` or
:class:`deltaprop.MLPRegressor` into an ``onnx.ModelProto``; :func:`to_onnx_standardised` does
the same for an estimator trained on standardised data, the standardisation in the graph. The
``onnx`` package is imported only here, inside the functions (``pip install 'deltaprop[onnx]'``),
so ``import deltaprop`` never needs it.

Design
------
The graph is the forward pass of Bishop, Pattern Recognition and Machine Learning (5.48, 5.49),
one layer at a time:

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
(``deltaprop.kernels._numpy.activations``) to a few units in the last place: :math:`\arctan x`
is Cephes' rational approximation (Moshier's; Go's ``math.Atan``), :math:`\ln(1 + e)` is
Goldberg's log1p, both written out in their emitters below. A logistic *output* is the
reference's :math:`1 / (1 + e)` for :math:`a \ge 0`, else :math:`e / (1 + e)`, :math:`e = e^{-|a|}`,
relatively accurate in both tails, because ONNX Runtime's ``Sigmoid`` is accurate in absolute
terms only, which would show in small probabilities; for hidden units the absolute error is what
matters. ONNX Runtime's float32 ``Tanh`` is a fast approximation too.

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

:func:`to_onnx_standardised` adds the standardisation: ``(X - x_mean) / x_scale`` (``Sub``,
``Div``) in front of the network and, for a regressor of a standardised target,
``y * y_scale + y_mean`` (``Mul``, ``Add``) after it.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ._onnx_graph import HIDDEN, OUTPUT, Graph, network, value_info

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from onnx import ModelProto, ValueInfoProto

    from .engine import MLP
    from .estimators import MLPClassifier, MLPRegressor

    Exportable = Union[MLP, MLPClassifier, MLPRegressor]

__all__ = ["to_onnx", "to_onnx_standardised", "resolve_opset", "DEFAULT_OPSET", "MIN_OPSET", "HIDDEN", "OUTPUT",
           "HEADS"]

#: The default ``target_opset``: recent, and loaded by ONNX Runtime >= 1.20 and onnx >= 1.16
#: (lowered to the installed onnx's newest opset if that is older).
DEFAULT_OPSET = 21
#: The oldest opset the graphs are written for (Softmax over the last axis, ArgMax, Squeeze with
#: axes as an input).
MIN_OPSET = 13


# --------------------------------------------------------------------------- the heads

def _head_outputs(g: Graph, net: MLP, x: str, **_: Any) -> list[ValueInfoProto]:
    """``y`` (N, K) = forward."""
    network(g, net, x, "y")
    return [value_info("y", g.elem, ["N", net.layer_sizes[-1]])]


def _head_regressor(g: Graph, net: MLP, x: str, y_mean: np.ndarray | None = None, y_scale: np.ndarray | None = None,
                    **_: Any) -> list[ValueInfoProto]:
    """``variable`` (N, n_outputs) = predict; ``y * y_scale + y_mean`` when the target was scaled."""
    if y_mean is None:
        network(g, net, x, "variable")
    else:
        y = network(g, net, x, "y")
        g.op("Add", [g.op("Mul", [y, g.const("y_scale", y_scale)]), g.const("y_mean", y_mean)], "variable")
    return [value_info("variable", g.elem, ["N", net.layer_sizes[-1]])]


def _labels(g: Graph, classes: np.ndarray, index: str) -> ValueInfoProto:
    """``label`` = ``classes[index]`` (``Gather`` on a constant tensor of the classes)."""
    from onnx import helper

    dtype = _label_dtype(classes)
    values = g.const("classes", classes, None if dtype is None else dtype)
    g.op("Gather", [values, index], "label", axis=0)
    elem = helper.TensorProto.STRING if dtype is None else helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return value_info("label", elem, ["N"])


def _head_binary(g: Graph, net: MLP, x: str, classes: np.ndarray, **_: Any) -> list[ValueInfoProto]:
    """One logistic output p: probabilities (1 - p, p), label ``classes[p > 0.5]``."""
    from onnx import TensorProto

    p = network(g, net, x, "p")
    g.op("Concat", [g.op("Sub", [g.const("one", 1.0), p]), p], "probabilities", axis=1)
    positive = g.op("Cast", [g.op("Greater", [p, g.const("threshold", 0.5)])], to=TensorProto.INT64)
    index = g.op("Squeeze", [positive, g.const("axis1", [1], np.int64)])
    return [_labels(g, classes, index), value_info("probabilities", g.elem, ["N", 2])]


def _head_multiclass(g: Graph, net: MLP, x: str, classes: np.ndarray, **_: Any) -> list[ValueInfoProto]:
    """K softmax outputs: probabilities as they are, label ``classes[argmax]``."""
    network(g, net, x, "probabilities")
    index = g.op("ArgMax", ["probabilities"], axis=1, keepdims=0)
    return [_labels(g, classes, index), value_info("probabilities", g.elem, ["N", len(classes)])]


def _head_multilabel(g: Graph, net: MLP, x: str, classes: np.ndarray, **_: Any) -> list[ValueInfoProto]:
    """K independent logistic outputs: probabilities as they are, label the indicator ``p > 0.5``."""
    from onnx import TensorProto

    network(g, net, x, "probabilities")
    g.op("Cast", [g.op("Greater", ["probabilities", g.const("threshold", 0.5)])], "label", to=TensorProto.INT64)
    K = net.layer_sizes[-1]
    return [value_info("label", TensorProto.INT64, ["N", K]), value_info("probabilities", g.elem, ["N", K])]


#: What the graph outputs after the network: ``emit(graph, net, x, **extra) -> output value infos``.
HEADS: dict[str, Callable[..., list[ValueInfoProto]]] = {
    "outputs": _head_outputs,
    "regressor": _head_regressor,
    "binary": _head_binary,
    "multiclass": _head_multiclass,
    "multilabel": _head_multilabel,
}


def _label_dtype(classes: ArrayLike) -> type[np.generic] | None:
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

def _plan(model: object) -> tuple[MLP, str, dict[str, Any]]:
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


def _check_net(net: MLP) -> None:
    """ValueError naming the first piece of ``net`` that has no ONNX form."""
    if net.hidden not in HIDDEN:
        raise ValueError(f"hidden activation {net.hidden!r} cannot be exported to ONNX; "
                         f"supported: {', '.join(HIDDEN)}")
    if net.output not in OUTPUT:
        raise ValueError(f"output activation {net.output!r} cannot be exported to ONNX; "
                         f"supported: {', '.join(OUTPUT)}")
    if np.dtype(net.dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype {np.dtype(net.dtype).name} cannot be exported to ONNX (float32 or float64)")


def resolve_opset(target_opset: int | None = None, name: str = "target_opset") -> int:
    """The opset of the default domain a graph is written for: ``target_opset``, checked.

    Parameters
    ----------
    target_opset : int, optional
        From :data:`MIN_OPSET` to the installed onnx's newest (default: :data:`DEFAULT_OPSET`,
        lowered to the installed onnx's newest).
    name : str
        What the error message calls ``target_opset`` (the command line: ``--opset``).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        ``target_opset`` is not an integer in that range.
    """
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if target_opset is None:
        return min(DEFAULT_OPSET, newest)
    if not isinstance(target_opset, numbers.Integral) or isinstance(target_opset, bool) \
            or not MIN_OPSET <= target_opset <= newest:
        raise ValueError(f"{name} must be an integer from {MIN_OPSET} to {newest} (the installed onnx's "
                         f"newest); got {target_opset!r}")
    return int(target_opset)


def _check_sample(X_sample: Any, n_features: int, dtype: np.dtype) -> None:
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


def _export(net: MLP, head: str, extra: dict[str, Any], opset: int, doc: str, x_mean: np.ndarray | None = None,
            x_scale: np.ndarray | None = None) -> ModelProto:
    _check_net(net)
    g = Graph(net.dtype)
    x = g.name("X")
    inputs = [value_info(x, g.elem, ["N", net.layer_sizes[0]])]
    if x_mean is not None:
        x = g.op("Div", [g.op("Sub", [x, g.const("x_mean", x_mean)]), g.const("x_scale", x_scale)], "x_scaled")
    outputs = HEADS[head](g, net, x, **extra)
    return g.model(inputs, outputs, opset, doc)


def _require_onnx(what: str) -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError(f"{what} needs the onnx package: pip install 'deltaprop[onnx]'") from None


def to_onnx(model: Exportable, X_sample: ArrayLike | None = None, target_opset: int | None = None) -> ModelProto:
    """Export a fitted model's forward pass to ONNX (see the module docstring for the graph).

    Parameters
    ----------
    model : deltaprop.MLP, MLPClassifier or MLPRegressor
        float32 or float64. An ``MLP`` may have any output activation and loss.
    X_sample : array-like of shape (n_samples, n_features), optional
        Only checked: its number of columns and its dtype must be the model's.
    target_opset : int, optional
        The ONNX opset of the default domain (default :data:`DEFAULT_OPSET`, at most the
        installed onnx's newest; at least :data:`MIN_OPSET`): :func:`resolve_opset`.

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
    ImportError
        Without the onnx package.
    """
    _require_onnx("deltaprop.to_onnx")
    net, head, extra = _plan(model)
    opset = resolve_opset(target_opset)
    _check_sample(X_sample, net.layer_sizes[0], np.dtype(net.dtype))
    return _export(net, head, extra, opset, doc=repr(model))


def to_onnx_standardised(model: Exportable, x_mean: ArrayLike, x_scale: ArrayLike, y_mean: ArrayLike | None = None,
                         y_scale: ArrayLike | None = None, target_opset: int | None = None,
                         source: str | None = None) -> ModelProto:
    """Export a model fitted on standardised inputs (and targets), the standardisation in the graph.

    The graph is :func:`to_onnx`'s with ``(X - x_mean) / x_scale`` in front of the network and,
    for a regressor of a standardised target, ``variable = y * y_scale + y_mean`` after it.

    Parameters
    ----------
    model : deltaprop.MLP, MLPClassifier or MLPRegressor
        Fitted on ``(X - x_mean) / x_scale``.
    x_mean, x_scale : array-like of shape (n_features,)
        The inputs' means and scales (a fitted StandardScaler's ``mean_`` and ``scale_``).
    y_mean, y_scale : array-like of shape (1,) or (n_outputs,), optional
        A regressor's target standardisation, both or neither.
    target_opset : int, optional
        As :func:`to_onnx`'s.
    source : str, optional
        Where the model comes from (a file name), at the head of the graph's ``doc_string``.

    Returns
    -------
    onnx.ModelProto
        Input ``X`` (N, D), not standardised, of the model's dtype; the outputs of :func:`to_onnx`.

    Raises
    ------
    ValueError
        What :func:`to_onnx` raises; statistics of the wrong shape, or a target
        standardisation for a model that is not a regressor.
    ImportError
        Without the onnx package.
    """
    _require_onnx("deltaprop.to_onnx_standardised")
    net, head, extra = _plan(model)
    opset = resolve_opset(target_opset)
    dtype, (D, K) = np.dtype(net.dtype), (net.layer_sizes[0], net.layer_sizes[-1])
    x_mean, x_scale = (np.asarray(v).astype(dtype) for v in (x_mean, x_scale))
    if x_mean.shape != (D,) or x_scale.shape != (D,):
        raise ValueError(f"x_mean and x_scale must have shape ({D},); got {x_mean.shape} and {x_scale.shape}")
    if y_mean is not None or y_scale is not None:
        if y_mean is None or y_scale is None or head != "regressor":
            raise ValueError("y_mean and y_scale standardise a regressor's target: both, and for MLPRegressor only")
        extra = {"y_mean": np.asarray(y_mean).astype(dtype), "y_scale": np.asarray(y_scale).astype(dtype)}
        if any(v.shape not in ((1,), (K,)) for v in extra.values()):
            raise ValueError("y_mean and y_scale must have shape (1,)" + (f" or ({K},)" if K > 1 else ""))
    doc = repr(model) if source is None else f"{source}, {net!r}"
    return _export(net, head, extra, opset, doc, x_mean=x_mean, x_scale=x_scale)
