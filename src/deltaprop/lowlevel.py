r"""The kernels for a user's own NumPy loop, with their arguments checked.

Each function here is the kernel of the same name (``deltaprop.contract``: the arrays, their
layout and the maths), called on the backend ``backend`` (``"auto"``: the fastest available;
``"cython"``, ``"numba"``, ``"numpy"``) after its arguments are checked. The kernels themselves
check nothing: a buffer that is too short or an array of another dtype makes a compiled kernel
read or write past the end of an array. Here a mistake is a ``TypeError`` (not an ndarray,
not float32 / float64, mixed dtypes) or a ``ValueError`` (shape, memory order, read-only
output, a code that is not in the contract's tables) that names the argument.

The checks look at shapes, dtypes, flags and the layout table only: their cost does not grow
with the data, except one ``min`` / ``max`` over the epoch kernels' ``order`` (the sample
indices, which a compiled kernel would otherwise follow out of ``X``). Nothing is copied.

``deltaprop.layout`` makes the arguments: ``pack`` (``w`` and ``layout`` from scikit-learn's
``coefs_`` / ``intercepts_``), ``unpack`` (views back) and ``unit_buffers`` (``A``, ``Z``,
``D``). ``deltaprop.get_backend`` gives the unchecked kernels (the engine's way in).

Examples
--------
>>> import numpy as np
>>> from deltaprop import lowlevel
>>> from deltaprop.contract import ACTIVATIONS, LOSSES
>>> from deltaprop.layout import pack, unit_buffers
>>> w, layout = pack([np.ones((2, 3)), np.ones((3, 1))], [np.zeros(3), np.zeros(1)])
>>> X, T, s = np.ones((4, 2)), np.zeros((4, 1)), np.ones(4)
>>> A, Z, D = unit_buffers(layout, 4)
>>> h, f = ACTIVATIONS["tanh"], ACTIVATIONS["identity"]
>>> lowlevel.forward(w, layout, h, f, X, A, Z)
>>> E = lowlevel.output_delta(layout, f, LOSSES["squared_error"], A, Z, T, s, D)
>>> lowlevel.forward(w, layout, h, f, np.ones((4, 3)), A, Z)
Traceback (most recent call last):
    ...
ValueError: X must have shape (n, 2) (the layout's inputs); got (4, 3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np
from numpy.typing import DTypeLike

from .backends import get_backend
from .contract import (
    ACTIVATIONS,
    DTYPES,
    HIDDEN_ACTIVATIONS,
    HYPER,
    LAYOUT_COLUMNS,
    LOSSES,
    OUTPUT_ACTIVATIONS,
    PAIRS,
    SOLVERS,
)
from .layout import make_layout, n_params, n_units

__all__ = ["forward", "output_delta", "backprop", "gradient", "loss_gradient", "sgd_epoch", "batch_epoch"]

_HIDDEN = {ACTIVATIONS[name]: name for name in HIDDEN_ACTIVATIONS}
_OUTPUT = {ACTIVATIONS[name]: name for name in OUTPUT_ACTIVATIONS}
_LOSSES = {code: name for name, code in LOSSES.items()}
_SOLVERS = {code: name for name, code in SOLVERS.items()}
_PAIRS = {(ACTIVATIONS[o], LOSSES[e]) for o, e in PAIRS}


# --------------------------------------------------------------------------- the checks
def _array(name: str, x: object, dtype: DTypeLike | None = None, ndim: int = 1, out: bool = False,
           fixed: bool = False) -> np.dtype:
    """``x`` as the kernels take it: an ndarray of ``ndim`` dimensions, C-contiguous, writeable
    if ``out``, of ``dtype``: the floating dtype the call's arrays share (any of float32 and
    float64 when None), or a dtype of its own (``fixed``: intp, int64, float64). Returns
    ``x.dtype``."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array; got {type(x).__name__}")
    if dtype is None:
        if x.dtype not in DTYPES:
            raise TypeError(f"{name} must be float32 or float64; got {x.dtype}")
    elif x.dtype != dtype:
        if fixed:
            raise TypeError(f"{name} must be {np.dtype(dtype)}; got {x.dtype}")
        raise TypeError(f"{name} is {x.dtype} but the call's other floating arrays are {np.dtype(dtype)}: "
                        "the kernels take one floating dtype (float32 or float64) for all of them")
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {x.shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (np.ascontiguousarray({name}))")
    if out and not x.flags.writeable:
        raise ValueError(f"{name} is read-only; the kernel writes into it")
    return x.dtype


def _shape(name: str, x: np.ndarray, shape: tuple[int | None, ...], what: str) -> None:
    """``x.shape`` must be ``shape`` (None: any size in that axis)."""
    if len(x.shape) != len(shape) or any(want is not None and got != want
                                         for got, want in zip(x.shape, shape, strict=True)):
        text = ", ".join("n" if want is None else str(want) for want in shape)
        raise ValueError(f"{name} must have shape ({text}{',' if len(shape) == 1 else ''}) ({what}); "
                         f"got {x.shape}")


def _length(name: str, x: np.ndarray, size: int, what: str, exact: bool = False) -> None:
    if x.shape[0] < size or (exact and x.shape[0] != size):
        need = "" if exact else "at least "
        raise ValueError(f"{name} must have length {need}{size} ({what}); got {x.shape[0]}")


def _layout(layout: object, w: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """Check the layout table (and that ``w`` fits it); return (D, K, U, P)."""
    if not isinstance(layout, np.ndarray):
        raise TypeError(f"layout must be a NumPy array (deltaprop.layout.make_layout); got {type(layout).__name__}")
    if layout.dtype != np.intp:
        raise TypeError(f"layout must be of dtype intp (deltaprop.layout.make_layout); got {layout.dtype}")
    if layout.ndim != 2 or layout.shape[0] < 1 or layout.shape[1] != len(LAYOUT_COLUMNS):
        raise ValueError(f"layout must have shape (L, {len(LAYOUT_COLUMNS)}) with L >= 1; got {layout.shape}")
    if not layout.flags.c_contiguous:
        raise ValueError("layout must be C-contiguous (np.ascontiguousarray(layout))")
    sizes = [int(layout[0, 0]), *(int(n_out) for n_out in layout[:, 1])]
    if min(sizes) < 1 or not np.array_equal(layout, make_layout(sizes)):
        raise ValueError(f"layout is not the layout table of layer sizes {sizes} (deltaprop.layout.make_layout)")
    P = n_params(layout)
    if w is not None:
        _shape("w", w, (P,), "the layout's parameter count")
    return sizes[0], sizes[-1], n_units(layout), P


def _code(name: str, code: object, table: Mapping[int, str], what: str) -> None:
    if isinstance(code, (bool, np.bool_)) or not isinstance(code, (int, np.integer)) or int(code) not in table:
        allowed = ", ".join(f"{n} {c}" for c, n in sorted(table.items()))
        raise ValueError(f"{name} must be the code of {what} in deltaprop.contract ({allowed}); got {code!r}")


def _pair(output: int, loss: int) -> None:
    _code("output", output, _OUTPUT, "an output activation")
    _code("loss", loss, _LOSSES, "a loss")
    if (int(output), int(loss)) not in _PAIRS:
        raise ValueError(f"output {_OUTPUT[int(output)]!r} cannot be paired with loss {_LOSSES[int(loss)]!r}; "
                         f"allowed pairs: {', '.join(f'{o}+{e}' for o, e in PAIRS)}")


def _units(names: Sequence[str], buffers: Sequence[np.ndarray], dt: np.dtype, size: int, what: str,
           out: Sequence[str], exact: bool = False) -> None:
    """Unit buffers: 1-D of the dtype, at least (or exactly) ``size`` long, not overlapping."""
    for name, buf in zip(names, buffers, strict=True):
        _array(name, buf, dt, out=name in out)
        _length(name, buf, size, what, exact)
    for i in range(len(buffers)):
        for k in range(i + 1, len(buffers)):
            if np.may_share_memory(buffers[i], buffers[k]):
                raise ValueError(f"{names[i]} and {names[k]} must not share memory")


def _samples(X: np.ndarray, T: np.ndarray | None, s: np.ndarray | None, dt: np.dtype, D: int,
             K: int | None) -> int:
    """X (n, D), T (n, K), s (n,), all of the dtype; returns n."""
    _array("X", X, dt, ndim=2)
    _shape("X", X, (None, D), "the layout's inputs")
    n = X.shape[0]
    if T is not None:
        _array("T", T, dt, ndim=2)
        _shape("T", T, (n, K), "one row per row of X, the layout's outputs")
        _array("s", s, dt)
        _shape("s", cast(np.ndarray, s), (n,), "one sample weight per row of X")  # _array raised unless it is
    return n


def _epoch_args(w: np.ndarray, layout: np.ndarray, hidden: int, output: int, loss: int, X: np.ndarray,
                T: np.ndarray, s: np.ndarray, order: np.ndarray, solver: int, hyper: np.ndarray,
                state: np.ndarray, step: np.ndarray, losses: np.ndarray) -> tuple[np.dtype, int, int, int, int]:
    """The arguments ``sgd_epoch`` and ``batch_epoch`` share; returns (dtype, D, K, U, P)."""
    dt = _array("w", w, out=True)
    D, K, U, P = _layout(layout, w)
    _code("hidden", hidden, _HIDDEN, "a hidden activation")
    _pair(output, loss)
    n = _samples(X, T, s, dt, D, K)
    _array("order", order, np.intp, ndim=2, fixed=True)
    if order.size and (order.min() < 0 or order.max() >= n):
        raise ValueError(f"order must hold sample indices in [0, {n}) (rows of X)")
    _code("solver", solver, _SOLVERS, "a solver")
    _array("hyper", hyper, dt)
    _shape("hyper", hyper, (len(HYPER),), f"the slots {', '.join(HYPER)}")
    _array("state", state, dt, ndim=2, out=True)
    _shape("state", state, (2, P), "two rows of the parameters' length")
    _array("step", step, np.int64, out=True, fixed=True)
    _shape("step", step, (1,), "Adam's step count")
    _array("losses", losses, np.float64, ndim=2, out=True, fixed=True)
    _shape("losses", losses, (order.shape[0], 2), "one row per epoch, the rows of order")
    return dt, D, K, U, P


# --------------------------------------------------------------------------- the kernels
def forward(w: np.ndarray, layout: np.ndarray, hidden: int, output: int, X: np.ndarray, A: np.ndarray,
            Z: np.ndarray, *, backend: str = "auto") -> None:
    r"""Forward propagation over a batch (Bishop 5.48, 5.49): fills ``A`` and ``Z``.

    .. math:: a_j = \sum_i w_{ji} z_i + w_{j0}, \quad z_j = h(a_j), \quad y_k = f(a_k)

    Parameters
    ----------
    w : ndarray (P,)
        The flat parameters, float32 or float64; every other floating array has its dtype.
    layout : ndarray (L, 5) of intp
        The layout table of ``w``.
    hidden, output : int
        Codes of the hidden and output activations (``contract.ACTIVATIONS``).
    X : ndarray (n, D)
        The inputs.
    A, Z : ndarray (at least n * U,)
        Filled with the pre-activations and activations of every unit (written).
    backend : str
        The backend that runs the kernel.

    Raises
    ------
    TypeError
        If an array is not an ndarray, or not of w's dtype (``layout``: intp).
    ValueError
        If a shape, a code or the memory order is wrong, or an output is read-only; the
        message names the argument.
    """
    dt = _array("w", w)
    D, _, U, _ = _layout(layout, w)
    _code("hidden", hidden, _HIDDEN, "a hidden activation")
    _code("output", output, _OUTPUT, "an output activation")
    n = _samples(X, None, None, dt, D, None)
    _units(("A", "Z"), (A, Z), dt, n * U, "n * U, for the rows of X", out=("A", "Z"))
    get_backend(backend).forward(w, layout, hidden, output, X, A, Z)


def output_delta(layout: np.ndarray, output: int, loss: int, A: np.ndarray, Z: np.ndarray, T: np.ndarray,
                 s: np.ndarray, D: np.ndarray, *, backend: str = "auto") -> float:
    r"""Output errors :math:`s_n \delta_k = \partial (s_n E_n) / \partial a_k` into the last layer's
    block of ``D``; returns :math:`E = \sum_n s_n E_n`.

    Parameters
    ----------
    layout : ndarray (L, 5) of intp
        The layout table.
    output, loss : int
        Codes of the output activation and the loss (a pair of ``contract.PAIRS``).
    A, Z : ndarray (at least n * U,)
        ``forward``'s unit buffers (read); their dtype is every floating array's.
    T : ndarray (n, K)
        The targets.
    s : ndarray (n,)
        The sample weights (all ones: Bishop's :math:`E = \sum_n E_n`).
    D : ndarray (at least n * U,)
        Receives the output errors (written).
    backend : str
        The backend that runs the kernel.

    Returns
    -------
    float
        The weighted summed error E.

    Raises
    ------
    TypeError, ValueError
        As :func:`forward`.
    """
    dt = _array("A", A)
    _, K, U, _ = _layout(layout)
    _pair(output, loss)
    _array("T", T, dt, ndim=2)
    _shape("T", T, (None, K), "the layout's outputs")
    n = T.shape[0]
    _array("s", s, dt)
    _shape("s", s, (n,), "one sample weight per row of T")
    _units(("A", "Z", "D"), (A, Z, D), dt, n * U, "n * U, for the rows of T", out=("D",))
    return float(get_backend(backend).output_delta(layout, output, loss, A, Z, T, s, D))


def backprop(w: np.ndarray, layout: np.ndarray, hidden: int, A: np.ndarray, Z: np.ndarray, D: np.ndarray, *,
             backend: str = "auto") -> None:
    r"""Hidden errors :math:`\delta_j = h'(a_j) \sum_k w_{kj} \delta_k` (Bishop 5.56), from the
    output layer's block of ``D`` back to the first hidden layer's.

    Parameters
    ----------
    w : ndarray (P,)
        The flat parameters.
    layout : ndarray (L, 5) of intp
        The layout table of ``w``.
    hidden : int
        Code of the hidden activation.
    A, Z : ndarray (n * U,)
        ``forward``'s unit buffers (read): their length says the batch size n.
    D : ndarray (at least n * U,)
        The output errors in, every unit's errors out (written).
    backend : str
        The backend that runs the kernel.

    Raises
    ------
    TypeError, ValueError
        As :func:`forward`.
    """
    dt = _array("w", w)
    _, _, U, _ = _layout(layout, w)
    _code("hidden", hidden, _HIDDEN, "a hidden activation")
    _array("A", A, dt)
    if A.shape[0] < U or A.shape[0] % U:
        raise ValueError(f"A must have length n * U = n * {U} (its length says the batch size n); "
                         f"got {A.shape[0]}")
    _units(("A", "Z", "D"), (A, Z, D), dt, A.shape[0], "the length of A", out=("D",))
    get_backend(backend).backprop(w, layout, hidden, A, Z, D)


def gradient(layout: np.ndarray, X: np.ndarray, Z: np.ndarray, D: np.ndarray, g: np.ndarray, *,
             backend: str = "auto") -> None:
    r""":math:`\partial E / \partial w_{ji} = \sum_n \delta_j z_i` and
    :math:`\partial E / \partial w_{j0} = \sum_n \delta_j` into ``g``, in the layout of ``w``.

    Parameters
    ----------
    layout : ndarray (L, 5) of intp
        The layout table.
    X : ndarray (n, D)
        The inputs (the first layer's :math:`z_i`); its dtype is every floating array's.
    Z, D : ndarray (at least n * U,)
        The activations and the errors of every unit (read).
    g : ndarray (P,)
        Receives the gradient (written).
    backend : str
        The backend that runs the kernel.

    Raises
    ------
    TypeError, ValueError
        As :func:`forward`.
    """
    dt = _array("X", X, ndim=2)
    D_in, _, U, P = _layout(layout)
    n = _samples(X, None, None, dt, D_in, None)
    _units(("Z", "D"), (Z, D), dt, n * U, "n * U, for the rows of X", out=())
    _array("g", g, dt, out=True)
    _shape("g", g, (P,), "the layout's parameter count")
    get_backend(backend).gradient(layout, X, Z, D, g)


def loss_gradient(w: np.ndarray, layout: np.ndarray, hidden: int, output: int, loss: int, X: np.ndarray,
                  T: np.ndarray, s: np.ndarray, A: np.ndarray, Z: np.ndarray, D: np.ndarray, g: np.ndarray,
                  grad: np.ndarray, *, backend: str = "auto") -> float:
    r"""``forward``, ``output_delta``, ``backprop`` and ``gradient`` over all rows of ``X``, in
    chunks of as many rows as ``A`` holds: returns :math:`E = \sum_n s_n E_n` and adds
    :math:`\sum_n s_n \nabla E_n` into ``grad``.

    Parameters
    ----------
    w : ndarray (P,)
        The flat parameters.
    layout : ndarray (L, 5) of intp
        The layout table of ``w``.
    hidden, output, loss : int
        Codes of the activations and the loss.
    X, T, s : ndarray (n, D), (n, K), (n,)
        Inputs, targets and sample weights.
    A, Z, D : ndarray (at least U,)
        Unit buffers of a chunk of ``len(A) // U`` rows (written).
    g : ndarray (P,)
        A chunk's gradient (written).
    grad : ndarray (P,) of float64
        The gradient is added into it.
    backend : str
        The backend that runs the kernel.

    Returns
    -------
    float
        The weighted summed error E.

    Raises
    ------
    TypeError, ValueError
        As :func:`forward`.
    """
    dt = _array("w", w)
    D_in, K, U, P = _layout(layout, w)
    _code("hidden", hidden, _HIDDEN, "a hidden activation")
    _pair(output, loss)
    _samples(X, T, s, dt, D_in, K)
    _array("A", A, dt)
    _length("A", A, U, "U, one row's units")
    _units(("A", "Z", "D"), (A, Z, D), dt, A.shape[0] // U * U, "the rows A holds", out=("A", "Z", "D"))
    _array("g", g, dt, out=True)
    _shape("g", g, (P,), "the layout's parameter count")
    _array("grad", grad, np.float64, out=True, fixed=True)
    _shape("grad", grad, (P,), "the layout's parameter count")
    return float(get_backend(backend).loss_gradient(w, layout, hidden, output, loss, X, T, s, A, Z, D, g, grad))


def sgd_epoch(w: np.ndarray, layout: np.ndarray, hidden: int, output: int, loss: int, X: np.ndarray,
              T: np.ndarray, s: np.ndarray, order: np.ndarray, solver: int, hyper: np.ndarray,
              state: np.ndarray, step: np.ndarray, a: np.ndarray, z: np.ndarray, delta: np.ndarray,
              losses: np.ndarray, *, backend: str = "auto") -> None:
    r"""On-line gradient descent, :math:`w \leftarrow w - \eta \nabla E_n(w)` one sample at a
    time, for every epoch (row) of ``order``, in one call; ``w`` is updated in place.

    Parameters
    ----------
    w : ndarray (P,)
        The flat parameters (updated).
    layout : ndarray (L, 5) of intp
        The layout table of ``w``.
    hidden, output, loss : int
        Codes of the activations and the loss.
    X, T, s : ndarray (n, D), (n, K), (n,)
        Inputs, targets and sample weights.
    order : ndarray (n_epochs, m) of intp
        The samples of each epoch, in order (rows of X).
    solver : int
        Code of the update rule (``contract.SOLVERS``).
    hyper : ndarray (6,)
        η, α, μ, β₁, β₂, ε (``contract.make_hyper``).
    state : ndarray (2, P)
        The velocity, or Adam's moments (updated).
    step : ndarray (1,) of int64
        Adam's step count τ (updated).
    a, z, delta : ndarray (U,)
        One sample's unit buffers (written).
    losses : ndarray (n_epochs, 2) of float64
        Each epoch's summed error and L2 penalty (written).
    backend : str
        The backend that runs the kernel.

    Raises
    ------
    TypeError, ValueError
        As :func:`forward`.
    """
    dt, _, _, U, _ = _epoch_args(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, step,
                                 losses)
    _units(("a", "z", "delta"), (a, z, delta), dt, U, "U, one sample's units", out=("a", "z", "delta"),
           exact=True)
    get_backend(backend).sgd_epoch(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, step,
                                   a, z, delta, losses)


def batch_epoch(w: np.ndarray, layout: np.ndarray, hidden: int, output: int, loss: int, X: np.ndarray,
                T: np.ndarray, s: np.ndarray, order: np.ndarray, batch_size: int, solver: int,
                hyper: np.ndarray, state: np.ndarray, step: np.ndarray, Xb: np.ndarray, Tb: np.ndarray,
                sb: np.ndarray, A: np.ndarray, Z: np.ndarray, D: np.ndarray, g: np.ndarray,
                losses: np.ndarray, *, backend: str = "auto") -> None:
    r"""Mini-batch gradient descent over consecutive batches of ``order``, in one call; ``w`` is
    updated in place, :math:`w \leftarrow w - \eta (\sum_{n \in B} s_n \nabla E_n + \alpha W) / S_B`
    for plain sgd.

    Parameters
    ----------
    w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, step, losses
        As :func:`sgd_epoch`.
    batch_size : int
        Samples per batch (the last batch of an epoch may be shorter).
    Xb, Tb, sb : ndarray (at least batch_size, D), (at least batch_size, K), (at least batch_size,)
        A batch's inputs, targets and sample weights (written).
    A, Z, D : ndarray (batch_size * U,)
        A batch's unit buffers (written).
    g : ndarray (P,)
        A batch's gradient (written).
    backend : str
        The backend that runs the kernel.

    Raises
    ------
    TypeError, ValueError
        As :func:`forward`.
    """
    dt, D_in, K, U, P = _epoch_args(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state,
                                    step, losses)
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    B = int(batch_size)
    for name, buf, width in (("Xb", Xb, D_in), ("Tb", Tb, K)):
        _array(name, buf, dt, ndim=2, out=True)
        _shape(name, buf, (None, width), "a batch's rows")
        _length(name, buf, B, "batch_size rows")
    _array("sb", sb, dt, out=True)
    _length("sb", sb, B, "batch_size")
    _units(("A", "Z", "D"), (A, Z, D), dt, B * U, "batch_size * U", out=("A", "Z", "D"), exact=True)
    _array("g", g, dt, out=True)
    _shape("g", g, (P,), "the layout's parameter count")
    get_backend(backend).batch_epoch(w, layout, hidden, output, loss, X, T, s, order, B, solver, hyper, state,
                                     step, Xb, Tb, sb, A, Z, D, g, losses)
