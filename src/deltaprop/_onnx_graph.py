r"""ONNX graph pieces for :mod:`deltaprop.onnx_export`: the builder, one emitter per activation.

The graph is Bishop's forward pass (5.48, 5.49) one layer at a time, each activation an emitter
of :data:`HIDDEN` or :data:`OUTPUT`; :mod:`deltaprop.onnx_export` says which operators each one
writes in float32 and float64, and why. The ``onnx`` package is imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from onnx import ModelProto, NodeProto, TensorProto, ValueInfoProto

    from .engine import MLP

__all__ = ["Graph", "HIDDEN", "OUTPUT", "network", "value_info"]


# --------------------------------------------------------------------------- the graph builder

class Graph:
    """Nodes and initializers of one graph under construction, in one floating dtype.

    Parameters
    ----------
    dtype : float32 or float64
        The element type of the network's values and initializers.
    """

    def __init__(self, dtype: np.dtype | type) -> None:
        from onnx import helper

        self.dtype = np.dtype(dtype)
        self.elem = helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._used: set[str] = set()
        self._consts: dict[tuple[str, Any], str] = {}

    def name(self, stem: str) -> str:
        """A value name not used yet: ``stem``, else ``stem_1``, ``stem_2``, ..."""
        name, i = stem, 0
        while name in self._used:
            i += 1
            name = f"{stem}_{i}"
        self._used.add(name)
        return name

    def const(self, stem: str, value: object, dtype: np.dtype | type | None = None) -> str:
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
            # onnx annotates vals as numbers or one bytes blob; a STRING tensor takes a list of bytes
            tensor = helper.make_tensor(name, helper.TensorProto.STRING, value.shape,
                                        [str(v).encode("utf-8") for v in value.ravel()])  # type: ignore[misc]
        else:
            tensor = numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype or self.dtype), name)
        self.initializers.append(tensor)
        return name

    def op(self, op_type: str, inputs: Sequence[str], out: str | None = None, **attrs: Any) -> str:
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

    def model(self, inputs: list[ValueInfoProto], outputs: list[ValueInfoProto], opset: int,
              doc: str) -> ModelProto:
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

def _sigmoid(g: Graph, a: str, out: str | None = None) -> str:
    return g.op("Sigmoid", [a], out)


def _logistic_tails(g: Graph, a: str, out: str | None = None) -> str:
    r"""The reference's :math:`\sigma(a)`: :math:`1 / (1 + e)` for :math:`a \ge 0`, else
    :math:`e / (1 + e)`, with :math:`e = e^{-|a|}`: relatively accurate in both tails (ONNX
    Runtime's ``Sigmoid`` is accurate in absolute terms only: in float32 about 1e-5 relative at
    a = -5, in float64 1e-3 at a = -30). For output probabilities; hidden units use ``Sigmoid``."""
    e = g.op("Exp", [g.op("Neg", [g.op("Abs", [a])])])
    d = g.op("Add", [g.const("one", 1.0), e])
    return g.op("Where", [g.op("GreaterOrEqual", [a, g.const("zero", 0.0)]),
                          g.op("Div", [g.const("one", 1.0), d]), g.op("Div", [e, d])], out)


def _tanh(g: Graph, a: str, out: str | None = None) -> str:
    return g.op("Tanh", [a], out)


def _relu(g: Graph, a: str, out: str | None = None) -> str:
    return g.op("Relu", [a], out)


#: Cephes' atan (Moshier): :math:`\arctan r = r + r z P(z) / Q(z)`, :math:`z = r^2`, for
#: :math:`|r| \le 0.66`; the leading coefficient of Q is 1.
_ATAN_P = (-8.750608600031904122785e-01, -1.615753718733365076637e+01, -7.500855792314704667340e+01,
           -1.228866684490136173410e+02, -6.485021904942025371773e+01)
_ATAN_Q = (2.485846490142306297962e+01, 1.650270098316988542046e+02, 4.328810604912902668951e+02,
           4.853903996359136964868e+02, 1.945506571482613964425e+02)
#: :math:`\pi/4` and the bits of it a double drops (Cephes' ``0.5 * MOREBITS``)
_PI_4, _PI_4_LO = 7.85398163397448309616e-01, 3.061616997868382943065e-17


def _atan(g: Graph, x: str) -> str:
    r""":math:`\arctan x` for :math:`|x| \le 1` (here :math:`x = \tanh(a/2)`): ``Atan`` in
    float32; in float64 (ONNX Runtime's CPU provider has no double Atan; 1.20 has no double Sin
    or Cos either, so no Newton step from a float32 Atan) Cephes' rational approximation from
    ``Mul``, ``Add``, ``Div``, ``Where``: with :math:`s = |x|`,
    :math:`\arctan s = \pi/4 + \arctan\frac{s - 1}{s + 1}` for :math:`s > 0.66`, the sign of x
    restored at the end (1-2 ulp, as Cephes and Go's ``math.Atan``)."""
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


def _gudermannian(g: Graph, a: str, out: str | None = None) -> str:
    r""":math:`\mathrm{gd}(a) = 2 \arctan(\tanh(a/2))`, as the reference writes it."""
    x = g.op("Tanh", [g.op("Mul", [a, g.const("half", 0.5)])])
    return g.op("Mul", [_atan(g, x), g.const("two", 2.0)], out)


def _log1p(g: Graph, e: str) -> str:
    r""":math:`\ln(1 + e)` without losing a small :math:`e` (Goldberg): :math:`u = 1 + e`, then
    :math:`e` where :math:`u = 1`, else :math:`\ln(u) \, e / (u - 1)`."""
    one = g.const("one", 1.0)
    u = g.op("Add", [e, one])
    ratio = g.op("Div", [e, g.op("Sub", [u, one])])
    return g.op("Where", [g.op("Equal", [u, one]), e, g.op("Mul", [g.op("Log", [u]), ratio])])


def _softplus(g: Graph, a: str, out: str | None = None) -> str:
    r""":math:`\ln(1 + e^{a})`: ``Softplus`` in float32; in float64 the reference's
    :math:`\max(a, 0) + \mathrm{log1p}(e^{-|a|})` (ONNX Runtime has no double Softplus)."""
    if g.dtype == np.float32:
        return g.op("Softplus", [a], out)
    e = g.op("Exp", [g.op("Neg", [g.op("Abs", [a])])])
    return g.op("Add", [g.op("Relu", [a]), _log1p(g, e)], out)


def _softmax(g: Graph, a: str, out: str | None = None) -> str:
    return g.op("Softmax", [a], out, axis=-1)


def _exp(g: Graph, a: str, out: str | None = None) -> str:
    return g.op("Exp", [a], out)


#: ``emit(graph, a, out) -> name``: the nodes of one activation, from the value a to ``out``
Emitter = Callable[[Graph, str, str | None], str]

#: Hidden activation h -> ``emit(graph, a, out) -> z`` (None: identity, no node).
HIDDEN: dict[str, Emitter | None] = {
    "identity": None,
    "logistic": _sigmoid,
    "tanh": _tanh,
    "relu": _relu,
    "gudermannian": _gudermannian,
    "softplus": _softplus,
}

#: Output activation f -> ``emit(graph, a, out) -> y`` (None: identity, no node).
OUTPUT: dict[str, Emitter | None] = {
    "identity": None,
    "logistic": _logistic_tails,
    "softmax": _softmax,
    "exp": _exp,
}


def network(g: Graph, net: MLP, x: str, out: str) -> str:
    r"""Emit the forward pass of ``net`` from the value ``x`` (Bishop 5.48, 5.49).

    Parameters
    ----------
    g : Graph
    net : deltaprop.MLP
        Its ``coefs_``, ``intercepts_``, ``hidden`` and ``output`` activations.
    x : str
        The name of the input value (N, D).
    out : str
        The name given to the outputs :math:`y` (N, K).

    Returns
    -------
    str
        ``out``.
    """
    L = len(net.coefs_)
    for layer, (W, b) in enumerate(zip(net.coefs_, net.intercepts_, strict=True)):
        last = layer == L - 1
        emit = OUTPUT[net.output] if last else HIDDEN[net.hidden]
        a = g.op("Add", [g.op("MatMul", [x, g.const(f"W{layer}", W)]), g.const(f"b{layer}", b)],
                 out if last and emit is None else f"a{layer}")
        x = a if emit is None else emit(g, a, out if last else f"z{layer}")
    return x


def value_info(name: str, elem: int, shape: list[int | str]) -> ValueInfoProto:
    """An ``onnx.ValueInfoProto``: a graph input's or output's name, element type and shape.

    Parameters
    ----------
    name : str
    elem : int
        An ``onnx.TensorProto`` element type.
    shape : list of int or str
        The dimensions, a name for a symbolic one (``"N"``).

    Returns
    -------
    onnx.ValueInfoProto
    """
    from onnx import helper

    return helper.make_tensor_value_info(name, elem, shape)
