r"""The kernel contract: the functions every backend provides, and the one table of codes.

Design
------
A network with layer sizes ``[D, M_1, ..., K]`` has ``L = len(layer_sizes) - 1`` layers of
weights. Layer ``l`` maps ``n_in`` units to ``n_out`` units (Bishop 5.48):

.. math:: a_j = \sum_i w_{ji} z_i + w_{j0}, \qquad z_j = h(a_j)

and the last layer applies the output activation, :math:`y_k = f(a_k)`.

Every kernel works on plain C-contiguous NumPy arrays of ONE floating dtype (float32 or
float64); index arrays are ``np.intp``. Nothing in a signature is a list, so numba and Cython
see the same arguments. Outputs and work buffers are passed in by the caller and filled in
place; the return value is ``None`` or a scalar (the summed error E).

``w`` (P,)
    One flat parameter vector holding every weight and bias.
``layout`` (L, 5) intp
    Row ``l`` is ``(n_in, n_out, w_off, b_off, u_off)`` (:data:`LAYOUT_COLUMNS`, constants
    ``N_IN`` ... ``U_OFF``): ``W_l = w[w_off : w_off + n_in*n_out]`` reshaped ``(n_in, n_out)``
    (so ``W_l[i, j]`` holds :math:`w_{ji}`, scikit-learn's ``coefs_[l]`` layout),
    ``b_l = w[b_off : b_off + n_out]``, and the layer's units start at ``u_off`` in the unit
    buffers.
Unit buffers ``A``, ``Z``, ``D`` (n * U,)
    For a batch of ``n`` samples and ``U = sum(n_out)`` units, layer ``l`` owns the C-ordered
    block ``[n * u_off, n * (u_off + n_out))`` of shape ``(n, n_out)``: pre-activations
    :math:`a`, activations :math:`z = h(a)` (or :math:`y = f(a)` for the last layer) and
    errors :math:`\delta = \partial E / \partial a`. With ``n = 1`` the same layout serves
    one sample.
``X`` (n, D), ``T`` (n, K)
    Inputs and targets, same dtype as ``w``. Class indices are one-hot encoded by the engine.
``hidden``, ``output``, ``loss``
    Small integer codes from :data:`ACTIVATIONS` and :data:`LOSSES`.

The tables
----------
This module is the only place a code is written down. Estimators, the engine and the command
line validate names against the keys; the kernels receive the integers.

============  =======================================================================
table         codes
============  =======================================================================
activations   identity 0, logistic 1, tanh 2, relu 3, gudermannian 4, softmax 5, exp 6,
              softplus 7 (hidden: all but softmax and exp; output: identity, logistic,
              softmax, exp)
losses        squared_error 0, binary_cross_entropy 1, cross_entropy 2, poisson 3
solvers       sgd 0, momentum 1, nesterov 2, adam 3
hyper         slots eta 0, alpha 1, momentum 2, beta_1 3, beta_2 4, epsilon 5
layout        columns n_in 0, n_out 1, w_off 2, b_off 3, u_off 4
============  =======================================================================

Each code also has a module constant named after it in upper case (``TANH``,
``CROSS_ENTROPY``, ``ADAM``, ``ETA``, ``U_OFF``; the momentum slot of ``hyper`` is ``MU``):
:data:`CONSTANTS`. ``_numpy`` and ``_numba`` import these constants and define none of their
own; ``_cython`` declares the same names as ``cdef enum`` members. Each backend package has a
``codes()`` that returns the tables as its kernels see them (numba: the module globals it
freezes into the compiled code; Cython: its enums), and ``tests/test_contract.py`` compares it
with :func:`codes`. numba's on-disk cache is keyed on each kernel's own source file only:
after a code changes here, clear ``kernels/_numba/__pycache__``.

Canonical pairs (:data:`OUTPUT_LOSS`: identity + squared_error, logistic +
binary_cross_entropy, softmax + cross_entropy, exp + poisson) have
:math:`\delta_k = y_k - t_k`; :data:`PAIRS` adds logistic + squared_error and softmax +
squared_error.

The functions
-------------
Each backend module defines all of them under these names and parameter names
(:data:`SIGNATURES`):

``forward(w, layout, hidden, output, X, A, Z)``
    Forward propagation over a batch (5.48, 5.49); fills A and Z.
``output_delta(layout, output, loss, A, Z, T, s, D) -> E``
    Output errors :math:`s_n \delta_k = \partial (s_n E_n) / \partial a_k` into the last layer's
    block of D, and returns the weighted summed error :math:`E = \sum_n s_n E_n`, for sample
    weights ``s`` (n,) (all ones gives Bishop's :math:`E = \sum_n E_n`).
``backprop(w, layout, hidden, A, Z, D)``
    Hidden errors :math:`\delta_j = h'(a_j) \sum_k w_{kj} \delta_k` (5.56), layer by layer
    from the output back to the first hidden layer.
``gradient(layout, X, Z, D, g)``
    :math:`\partial E / \partial w_{ji} = \sum_n \delta_j z_i` and
    :math:`\partial E / \partial w_{j0} = \sum_n \delta_j` into ``g`` (P,), the same layout as
    ``w`` (matrix form :math:`\partial L / \partial W = Z^T \Delta`).
``loss_gradient(w, layout, hidden, output, loss, X, T, s, A, Z, D, g, grad) -> E``
    The four above over all rows of X in one call (:meth:`deltaprop.MLP.loss_and_gradient`'s
    sweep): the rows go in chunks of as many as the unit buffers hold,
    :math:`n_c = \lfloor |A| / U \rfloor` (at least one); for each chunk ``forward``,
    ``output_delta``, ``backprop`` and ``gradient`` into ``g`` (P,), which is added into
    ``grad`` (P,) float64. Returns :math:`E = \sum_n s_n E_n`, the float64 sum of the chunks'
    errors. The same sums in the same order as the four calls chunk by chunk, but with no
    Python between chunks (threads sweeping their own rows never wait for the GIL).
``batch_epoch(w, layout, hidden, output, loss, X, T, s, order, batch_size, solver, hyper, state, t, Xb, Tb, sb, A, Z, D, g, losses)``
    Mini-batch gradient descent. Batches B are consecutive runs of ``order`` (n_epochs, m)
    intp (the last one of an epoch may be shorter). For each batch, with sample weights
    ``s`` (n,) and :math:`S_B = \sum_{n \in B} s_n`, the gradient is

    .. math:: g = \frac{1}{S_B} \Big( \sum_{n \in B} s_n \nabla E_n(w) + \alpha W \Big)

    (the L2 term :math:`\alpha W` on weights only, never on biases: scikit-learn's scaling),
    then ``solver`` updates ``w`` in place (:data:`SOLVERS`):
    sgd :math:`w \leftarrow w - \eta g`;
    momentum :math:`v \leftarrow \mu v - \eta g,\ w \leftarrow w + v`;
    nesterov :math:`v \leftarrow \mu v - \eta g,\ w \leftarrow w + \mu v - \eta g`;
    adam :math:`t \leftarrow t + 1,\ m \leftarrow \beta_1 m + (1 - \beta_1) g,\
    v \leftarrow \beta_2 v + (1 - \beta_2) g^2,\
    w \leftarrow w - \eta \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t} \frac{m}{\sqrt{v} + \epsilon}`.
    ``hyper`` (6,) of the arrays' dtype holds :data:`HYPER` = (η, α, μ, β₁, β₂, ε);
    ``state`` (2, P) holds v (row 0) or Adam's m, v (rows 0, 1); ``t`` (1,) int64 counts Adam's
    updates. A batch with :math:`S_B = 0` is skipped. ``Xb`` (batch_size, D), ``Tb``
    (batch_size, K), ``sb`` (batch_size,), ``A``, ``Z``, ``D`` (batch_size * U,) and ``g`` (P,)
    are work buffers. ``losses`` (n_epochs, 2) float64 receives, for each epoch,
    :math:`\sum_B |B| \frac{1}{S_B} \sum_{n \in B} s_n E_n` and
    :math:`\sum_B |B| \frac{1}{S_B} \frac{\alpha}{2} \lVert W \rVert^2`, both taken before the
    batch's update. With unit weights and α = 0 the first is :math:`\sum_n E_n` and plain sgd is
    :math:`w \leftarrow w - \frac{\eta}{|B|} \sum_{n \in B} \nabla E_n(w)`.
``sgd_epoch(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, t, a, z, delta, losses)``
    The same with ``batch_size = 1`` — on-line gradient descent,
    :math:`w \leftarrow w - \eta \nabla E_n(w)`, one sample at a time — fused: forward, δ and
    the update of each weight in one pass per sample, no gradient buffer. ``a``, ``z``, ``delta``
    are (U,) buffers. It equals ``batch_epoch`` with ``batch_size=1``.
``average_epochs(j, w, W, layout, hidden, output, loss, X, T, s, order, bounds, solver, hyper, state, S, t, steps, a, z, delta, losses, sync)``
    Iterative parameter mixing (local SGD) on J threads: the J threads call it at once, thread
    j with its own ``j``; ``bounds`` (J, 2) intp gives thread j's shard ``[bounds[j, 0],
    bounds[j, 1])`` of every epoch's order. For each epoch (row of ``order``) thread j copies
    ``w`` (and, for solvers other than sgd, ``state``; and ``t``) into its row of ``W`` (J, ≥P)
    (``S`` (J, ≥2P), the rows of ``state``; ``steps`` (J, ≥1) int64), runs ``sgd_epoch`` on
    that copy over its shard with its own buffers ``a``, ``z``, ``delta`` (J, ≥U) and losses
    ``losses[j, e]`` (``losses`` (J, n_epochs, 2) float64), and waits for the others; then

    .. math:: w \leftarrow \frac{1}{J} \sum_{j} w_j

    summed in thread order (each thread writes its 1/J slice of the parameters), the same
    for ``state``, and ``t`` becomes the largest of the threads' step counts; and they wait for
    each other again. ``sync`` (3, ≥1) int64, zeros at the call, holds the barrier's counters
    (row 0 arrivals, row 1 generation, row 2 abort; a row per cache line in practice): a
    non-zero ``sync[2, 0]`` makes every waiting thread return at once, so a thread that fails
    before it arrives cannot hang the others (the weights are then unspecified).
``split_epochs(j, w, layout, hidden, output, loss, X, T, s, order, batch_size, solver, hyper, state, t, steps, Xb, Tb, sb, A, Z, D, G, g, losses, sync)``
    ``batch_epoch`` on J threads, each batch's rows split between them (data parallelism):
    the J threads call it at once, thread j with its own ``j``, J = ``len(G)``. Of a batch of
    :math:`n_B` consecutive entries of ``order`` starting at ``start``, thread j takes
    ``[start + n_B j // J, start + n_B (j + 1) // J)``, and puts
    :math:`g_j = \sum_{n \in B_j} s_n \nabla E_n` into its row of ``G`` (J, ≥P) (zeros if it
    has no rows), using its own buffers ``Xb`` (J, ≥b, D), ``Tb`` (J, ≥b, K), ``sb`` (J, ≥b),
    ``A``, ``Z``, ``D`` (J, ≥bU), with :math:`b = \lceil` ``batch_size`` / J :math:`\rceil`. At
    a barrier (``sync`` as in ``average_epochs``) the threads meet; then thread j sums its slice
    of the parameters, ``g[p] = G[0, p] + G[1, p] + ... + G[J-1, p]`` in thread order into
    ``g`` (P,), and applies ``batch_epoch``'s update to that slice of ``w`` and ``state`` (the
    rules are elementwise; ``t`` advances by one per batch through each thread's own copy in
    ``steps`` (J, ≥1) int64); they meet again before the next batch. Thread j's slice is
    ``[lo_j, lo_{j+1})`` with :math:`lo_j = 16 \lfloor \lfloor P j / J \rfloor / 16 \rfloor`
    (:math:`lo_0 = 0`, :math:`lo_J = P`: no two threads write one cache line). ``losses``
    (J, n_epochs, 2) float64 receives each thread's part of ``batch_epoch``'s losses (its
    rows' errors, its slice's penalty; their sums over j are the epoch's). The result is
    ``batch_epoch``'s up to the order in which a batch's gradient is summed; deterministic
    for a given J.

Rounding
--------
Every backend computes in the arrays' dtype except where this table says otherwise ("double":
terms formed in the dtype, summed in float64). The first five rows only feed the reported
error and penalty; the last two change the weights (for float32 arrays the reference forms
Adam's step in float64 and rounds it into the weights). Beyond the table, the compiled
backends may regroup sums and fuse ``x * y + z`` (numba's ``reassoc`` and ``contract`` flags,
Cython's ``omp simd`` reductions and its AVX2/FMA build). The differential tests' float32
tolerance covers all of it.

===============================  ==========  ================  =================================
sum or factor                    ``_numpy``  ``_numba``        ``_cython``
===============================  ==========  ================  =================================
:math:`E_n` over the K outputs   dtype       dtype             double
:math:`\sum_n s_n E_n`, a batch  dtype       double            double
epoch totals in ``losses``       dtype       double            double
L2 :math:`\sum w^2`, per sample  dtype       dtype             dtype within rows (sgd) or
                                                               quarters of a layer, double
                                                               across
L2 :math:`\sum w^2`, a batch     dtype       double            dtype within quarters of a
                                                               layer, double across
Adam's :math:`\eta_t`            double      double → dtype    double → dtype
Adam's step                      double      dtype             dtype
===============================  ==========  ================  =================================

In ``_numpy`` a batch's error is one ``np.sum`` over its ``(n, K)`` block (pairwise
summation); its float32 epoch totals stay float32 until they are stored into ``losses``.

From a user's own arrays
------------------------
:func:`pack` copies a list of ``(W_l, b_l)`` in scikit-learn's layout (``coefs_``,
``intercepts_``) into a new flat ``w`` and returns it with its ``layout``; :func:`unpack` gives
them back as views of ``w``; :func:`unit_buffers` allocates ``A``, ``Z``, ``D`` for a batch of
``n`` samples. With these a hand-written NumPy MLP can call the kernels directly (the README's
"Use the kernels from your own NumPy code").
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "HIDDEN_ACTIVATIONS",
    "OUTPUT_ACTIVATIONS",
    "LOSSES",
    "OUTPUT_LOSS",
    "SOLVERS",
    "HYPER",
    "HYPER_INDEX",
    "HYPER_DEFAULTS",
    "DEFAULT_ETA",
    "PARALLEL_MODES",
    "make_hyper",
    "PAIRS",
    "CANONICAL_PAIRS",
    "DTYPES",
    "LAYOUT_COLUMNS",
    "CONSTANTS",
    "SIGNATURES",
    "FUNCTIONS",
    "Kernels",
    "codes",
    "make_layout",
    "layer_params",
    "layer_units",
    "n_params",
    "n_units",
    "check_pair",
    "mostly_nonzero",
    "pack",
    "unpack",
    "unit_buffers",
]

# --------------------------------------------------------------------------- the tables

#: Activation codes. ``softmax`` and ``exp`` are output activations only.
ACTIVATIONS = {
    "identity": 0,
    "logistic": 1,
    "tanh": 2,
    "relu": 3,
    "gudermannian": 4,
    "softmax": 5,
    "exp": 6,
    "softplus": 7,
}
HIDDEN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "gudermannian", "softplus")
OUTPUT_ACTIVATIONS = ("identity", "logistic", "softmax", "exp")

#: Loss codes. ``poisson`` is :math:`E_n = \sum_k y_k - t_k \ln y_k` with the log link
#: :math:`y = e^{a}` (scikit-learn's half Poisson deviance without its constant terms).
LOSSES = {"squared_error": 0, "binary_cross_entropy": 1, "cross_entropy": 2, "poisson": 3}

#: The canonical loss of each output activation (its pair has :math:`\delta_k = y_k - t_k`).
OUTPUT_LOSS = {
    "identity": "squared_error",
    "logistic": "binary_cross_entropy",
    "softmax": "cross_entropy",
    "exp": "poisson",
}

#: Every meaningful (output activation, loss) pair. Canonical pairs have
#: :math:`\delta_k = y_k - t_k`; the others go through the chain rule
#: :math:`\delta_k = \sum_{k'} \partial E/\partial y_{k'} \; \partial y_{k'}/\partial a_k`.
CANONICAL_PAIRS = tuple(OUTPUT_LOSS.items())
PAIRS = CANONICAL_PAIRS + (("logistic", "squared_error"), ("softmax", "squared_error"))

#: Update rules of the epoch kernels.
SOLVERS = {"sgd": 0, "momentum": 1, "nesterov": 2, "adam": 3}

#: Slots of the ``hyper`` array of the epoch kernels, in order: η, α, μ, β₁, β₂, ε.
HYPER = ("eta", "alpha", "momentum", "beta_1", "beta_2", "epsilon")
HYPER_INDEX = {name: i for i, name in enumerate(HYPER)}

#: Columns of the layout table.
LAYOUT_COLUMNS = ("n_in", "n_out", "w_off", "b_off", "u_off")

#: How ``n_jobs`` threads share the weights (``MLP.fit``'s and the estimators' ``parallel``):
#: ``average`` is deterministic (mini-batches split between the threads, per-sample epochs
#: by parameter mixing), ``hogwild`` updates one shared ``w`` without locks.
PARALLEL_MODES = ("average", "hogwild")

#: Defaults of the engine's and the command line's training: the learning rate η, and the
#: values the ``hyper`` slots take when a solver does not set them (Adam's β₁, β₂, ε are
#: Kingma & Ba's, which scikit-learn uses too; the estimators write scikit-learn's defaults in
#: their own signatures, as scikit-learn does).
DEFAULT_ETA = 0.01
HYPER_DEFAULTS = {"eta": DEFAULT_ETA, "alpha": 0.0, "momentum": 0.0,
                  "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}

DTYPES = (np.float32, np.float64)

# --------------------------------------------------------------------------- the constants
# One module constant per code: the names the kernels use. ``_numpy`` and ``_numba`` import
# them from here (numba freezes a global int into the machine code as a constant); ``_cython``
# declares the same names in ``cdef enum`` blocks.

IDENTITY = ACTIVATIONS["identity"]
LOGISTIC = ACTIVATIONS["logistic"]
TANH = ACTIVATIONS["tanh"]
RELU = ACTIVATIONS["relu"]
GUDERMANNIAN = ACTIVATIONS["gudermannian"]
SOFTMAX = ACTIVATIONS["softmax"]
EXP = ACTIVATIONS["exp"]
SOFTPLUS = ACTIVATIONS["softplus"]

SQUARED_ERROR = LOSSES["squared_error"]
BINARY_CROSS_ENTROPY = LOSSES["binary_cross_entropy"]
CROSS_ENTROPY = LOSSES["cross_entropy"]
POISSON = LOSSES["poisson"]

SGD = SOLVERS["sgd"]
MOMENTUM = SOLVERS["momentum"]
NESTEROV = SOLVERS["nesterov"]
ADAM = SOLVERS["adam"]

ETA = HYPER_INDEX["eta"]
ALPHA = HYPER_INDEX["alpha"]
MU = HYPER_INDEX["momentum"]
BETA_1 = HYPER_INDEX["beta_1"]
BETA_2 = HYPER_INDEX["beta_2"]
EPSILON = HYPER_INDEX["epsilon"]

N_IN, N_OUT, W_OFF, B_OFF, U_OFF = range(len(LAYOUT_COLUMNS))

#: table -> {entry: name of its module constant}: the entry in upper case, except the
#: momentum slot of ``hyper``, ``MU`` (``MOMENTUM`` is the solver).
CONSTANTS = {
    "activations": {name: name.upper() for name in ACTIVATIONS},
    "losses": {name: name.upper() for name in LOSSES},
    "solvers": {name: name.upper() for name in SOLVERS},
    "hyper": {name: "MU" if name == "momentum" else name.upper() for name in HYPER},
    "layout": {name: name.upper() for name in LAYOUT_COLUMNS},
}


def make_hyper(dtype, **values: float) -> np.ndarray:
    """The ``hyper`` array of the epoch kernels: one value per slot of :data:`HYPER`, in order,
    each taken from ``values`` or else from :data:`HYPER_DEFAULTS`.

    >>> make_hyper(np.float64, eta=0.1, momentum=0.9)
    array([1.00e-01, 0.00e+00, 9.00e-01, 9.00e-01, 9.99e-01, 1.00e-08])
    """
    unknown = sorted(set(values) - set(HYPER))
    if unknown:
        raise ValueError(f"unknown hyper-parameter slot(s) {unknown}; the slots are {list(HYPER)}")
    return np.array([values.get(name, HYPER_DEFAULTS[name]) for name in HYPER], dtype=dtype)


def codes() -> dict:
    """The code tables in the form every backend's ``codes()`` returns them:
    ``{"activations": {name: code}, "losses": {...}, "solvers": {...}, "hyper": names in slot
    order, "layout": column names in order}``."""
    return {
        "activations": dict(ACTIVATIONS),
        "losses": dict(LOSSES),
        "solvers": dict(SOLVERS),
        "hyper": HYPER,
        "layout": LAYOUT_COLUMNS,
    }


# --------------------------------------------------------------------------- the functions

#: Parameter names of every contract function, as each backend module defines it (the listing in
#: this module's docstring is checked against this table by ``tests/test_contract.py``).
SIGNATURES = {
    "forward": ("w", "layout", "hidden", "output", "X", "A", "Z"),
    "output_delta": ("layout", "output", "loss", "A", "Z", "T", "s", "D"),
    "backprop": ("w", "layout", "hidden", "A", "Z", "D"),
    "gradient": ("layout", "X", "Z", "D", "g"),
    "loss_gradient": ("w", "layout", "hidden", "output", "loss", "X", "T", "s", "A", "Z", "D", "g", "grad"),
    "batch_epoch": ("w", "layout", "hidden", "output", "loss", "X", "T", "s", "order", "batch_size",
                    "solver", "hyper", "state", "t", "Xb", "Tb", "sb", "A", "Z", "D", "g", "losses"),
    "sgd_epoch": ("w", "layout", "hidden", "output", "loss", "X", "T", "s", "order", "solver", "hyper",
                  "state", "t", "a", "z", "delta", "losses"),
    "average_epochs": ("j", "w", "W", "layout", "hidden", "output", "loss", "X", "T", "s", "order", "bounds",
                       "solver", "hyper", "state", "S", "t", "steps", "a", "z", "delta", "losses", "sync"),
    "split_epochs": ("j", "w", "layout", "hidden", "output", "loss", "X", "T", "s", "order", "batch_size",
                     "solver", "hyper", "state", "t", "steps", "Xb", "Tb", "sb", "A", "Z", "D", "G", "g",
                     "losses", "sync"),
}


class Kernels(NamedTuple):
    """One backend: the contract's functions, bound to a backend name."""

    name: str
    forward: Callable
    output_delta: Callable
    backprop: Callable
    gradient: Callable
    loss_gradient: Callable
    sgd_epoch: Callable
    batch_epoch: Callable
    average_epochs: Callable
    split_epochs: Callable


#: The function names every backend module must define.
FUNCTIONS = Kernels._fields[1:]


def make_layout(layer_sizes) -> np.ndarray:
    """Layout table ``(L, 5)`` of ``(n_in, n_out, w_off, b_off, u_off)`` for ``layer_sizes``.

    Each layer's weights are followed by its biases: ``[W_0, b_0, W_1, b_1, ...]``.
    """
    sizes = [int(s) for s in layer_sizes]
    layout = np.zeros((len(sizes) - 1, len(LAYOUT_COLUMNS)), dtype=np.intp)
    off = 0
    u_off = 0
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layout[l, N_IN], layout[l, N_OUT] = n_in, n_out
        layout[l, W_OFF], layout[l, B_OFF], layout[l, U_OFF] = off, off + n_in * n_out, u_off
        off += n_in * n_out + n_out
        u_off += n_out
    return layout


def n_params(layout: np.ndarray) -> int:
    """Length P of the flat parameter vector."""
    return int(layout[-1, B_OFF] + layout[-1, N_OUT])


def n_units(layout: np.ndarray) -> int:
    """Number U of units (hidden and output) per sample."""
    return int(layout[-1, U_OFF] + layout[-1, N_OUT])


def layer_params(flat: np.ndarray, layout: np.ndarray, l: int):
    """Views ``(W_l, b_l)`` of layer ``l`` in a flat vector laid out like ``w`` (or a gradient)."""
    n_in, n_out, w_off, b_off = (int(layout[l, c]) for c in (N_IN, N_OUT, W_OFF, B_OFF))
    return flat[w_off : w_off + n_in * n_out].reshape(n_in, n_out), flat[b_off : b_off + n_out]


def layer_units(buf: np.ndarray, layout: np.ndarray, l: int, n: int) -> np.ndarray:
    """View ``(n, n_out)`` of layer ``l``'s block in a unit buffer of a batch of ``n`` samples
    (``l = -1``: the outputs)."""
    n_out, u_off = int(layout[l, N_OUT]), int(layout[l, U_OFF])
    return buf[n * u_off : n * (u_off + n_out)].reshape(n, n_out)


def check_pair(output: str, loss: str) -> None:
    """Raise ValueError unless ``(output, loss)`` is one of :data:`PAIRS`."""
    if (output, loss) not in PAIRS:
        allowed = ", ".join(f"{o}+{e}" for o, e in PAIRS)
        raise ValueError(
            f"output activation {output!r} cannot be paired with loss {loss!r}; "
            f"allowed pairs: {allowed}"
        )


#: the first samples of a per-sample call that :func:`mostly_nonzero` looks at, and the
#: fraction of non-zero inputs from which they count as dense
DENSE_PROBE = 16
DENSE_FRACTION = 0.9


def mostly_nonzero(X, order) -> bool:
    """Whether the first :data:`DENSE_PROBE` samples of ``order`` have at least
    :data:`DENSE_FRACTION` non-zero inputs. The compiled backends' plain per-sample sgd then
    visits every row of W_0 instead of listing each sample's non-zero inputs (the list costs
    more than the zero rows it skips on dense inputs); the results are the same bits."""
    probe = np.asarray(X)[np.asarray(order).ravel()[:DENSE_PROBE]]
    return probe.size > 0 and np.count_nonzero(probe) >= DENSE_FRACTION * probe.size


# --------------------------------------------------------------------------- users' own arrays


def pack(coefs, intercepts, dtype=None):
    r"""Copy per-layer weights and biases into one flat parameter vector ``w``.

    Parameters
    ----------
    coefs : sequence of array_like
        ``coefs[l]`` of shape (n_in, n_out) holds :math:`w_{ji}` of layer ``l`` at ``[i, j]``
        (scikit-learn's ``coefs_`` layout). Each layer's n_in must equal the previous layer's
        n_out.
    intercepts : sequence of array_like
        ``intercepts[l]`` of shape (n_out,) holds the biases :math:`w_{j0}` of layer ``l``
        (scikit-learn's ``intercepts_``).
    dtype : {None, "float32", "float64"}
        dtype of ``w``. ``None``: float32 if every array is float32 (or a narrower type), else
        float64.

    Returns
    -------
    w : ndarray (P,)
        A new C-contiguous vector, ``[W_0, b_0, W_1, b_1, ...]``; the arrays given are not
        referenced.
    layout : ndarray (L, 5) of intp
        ``make_layout([D, M_1, ..., K])`` for the layer sizes the shapes describe.

    Raises
    ------
    ValueError
        If the lists are empty or of different lengths, an array has the wrong number of
        dimensions, a bias does not match its layer's n_out, consecutive layers do not chain,
        or ``dtype`` is not float32 or float64. The message names the layer.
    TypeError
        If an array is not of a real numeric dtype.

    See Also
    --------
    unpack : the inverse, as views into ``w``.
    """
    coefs, intercepts = list(coefs), list(intercepts)
    if not coefs:
        raise ValueError("coefs is empty: pack needs at least one layer")
    if len(coefs) != len(intercepts):
        raise ValueError(f"coefs has {len(coefs)} layers but intercepts has {len(intercepts)}; "
                         "pack needs one (W, b) pair per layer")
    coefs = [np.asarray(W) for W in coefs]
    intercepts = [np.asarray(b) for b in intercepts]
    for name, arrays in (("coefs", coefs), ("intercepts", intercepts)):
        for l, arr in enumerate(arrays):
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"{name}[{l}] must be a real numeric array; got dtype {arr.dtype}")
    sizes = []
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        if W.ndim != 2:
            raise ValueError(f"coefs[{l}] (layer {l}) must be 2-D (n_in, n_out); got shape {W.shape}")
        if b.shape != (W.shape[1],):
            raise ValueError(f"intercepts[{l}] (layer {l}) must have shape ({W.shape[1]},) to match "
                             f"coefs[{l}] of shape {W.shape}; got shape {b.shape}")
        if min(W.shape) < 1:
            raise ValueError(f"coefs[{l}] (layer {l}) has shape {W.shape}; every layer needs at "
                             "least one input and one output")
        if l == 0:
            sizes.append(W.shape[0])
        elif W.shape[0] != sizes[-1]:
            raise ValueError(f"coefs[{l}] (layer {l}) has shape {W.shape}, so {W.shape[0]} inputs, but "
                             f"layer {l - 1} has {sizes[-1]} outputs (coefs[{l - 1}] of shape "
                             f"{coefs[l - 1].shape}); consecutive layers must chain")
        sizes.append(W.shape[1])
    if dtype is None:
        dt = np.result_type(*coefs, *intercepts, np.float32)
    else:
        dt = np.dtype(dtype)
    if dt not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64; got {dt}")
    layout = make_layout(sizes)
    w = np.empty(n_params(layout), dtype=dt)
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        Wl, bl = layer_params(w, layout, l)
        Wl[...] = W
        bl[...] = b
    return w, layout


def unpack(w, layout):
    r"""Per-layer weights and biases of a flat parameter vector, as views into it.

    Parameters
    ----------
    w : ndarray (P,)
        A flat vector laid out by ``layout`` (parameters, or a gradient ``g``).
    layout : ndarray (L, 5) of intp
        The layout table (:func:`make_layout`, or the one :func:`pack` returned).

    Returns
    -------
    coefs : list of ndarray
        ``coefs[l]`` of shape (n_in, n_out), a view of ``w`` (scikit-learn's layout).
    intercepts : list of ndarray
        ``intercepts[l]`` of shape (n_out,), a view of ``w``.

    Nothing is copied: a kernel updating ``w`` in place updates ``coefs`` and ``intercepts``,
    and writing into them (``coefs[0][...] = W``, ``intercepts[1] -= 0.1``) writes into ``w``.
    Rebinding a list item (``coefs[0] = W``) only changes the list.

    Raises
    ------
    TypeError
        If ``w`` is not a NumPy array (a list would be copied, and the views would not share
        its memory).
    ValueError
        If ``layout`` is not an (L, 5) table or ``w`` is not 1-D of length ``n_params(layout)``.
    """
    if not isinstance(w, np.ndarray):
        raise TypeError(f"w must be a NumPy array (unpack returns views into it); got {type(w).__name__}")
    layout = np.asarray(layout)
    if layout.ndim != 2 or layout.shape[0] < 1 or layout.shape[1] != len(LAYOUT_COLUMNS):
        raise ValueError(f"layout must be an (L, {len(LAYOUT_COLUMNS)}) table with L >= 1; "
                         f"got shape {layout.shape}")
    P = n_params(layout)
    if w.ndim != 1 or w.shape[0] != P:
        raise ValueError(f"w must be 1-D of length {P} (the layout's parameter count); got shape {w.shape}")
    views = [layer_params(w, layout, l) for l in range(layout.shape[0])]
    return [W for W, _ in views], [b for _, b in views]


def unit_buffers(layout, n, dtype=np.float64):
    r"""Allocate the unit buffers ``A``, ``Z``, ``D`` for a batch of ``n`` samples.

    Parameters
    ----------
    layout : ndarray (L, 5) of intp
        The network's layout table.
    n : int
        Samples per batch (the rows of ``X`` given to the kernels). A smaller batch uses the
        first ``m * U`` values of each buffer (``A[: m * U]``).
    dtype : {"float32", "float64"}
        The dtype of ``w`` and ``X``.

    Returns
    -------
    A, Z, D : ndarray (n * U,)
        Three zeroed C-contiguous buffers for the pre-activations :math:`a`, the activations
        :math:`z` (:math:`y` in the output block) and the errors :math:`\delta` of every
        unit, ``U = n_units(layout)``; :func:`layer_units` gives a layer's ``(n, n_out)`` view.

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer or ``dtype`` is not float32 or float64.
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer (samples per batch); got {n!r}")
    dt = np.dtype(dtype)
    if dt not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64; got {dt}")
    size = int(n) * n_units(layout)
    return np.zeros(size, dtype=dt), np.zeros(size, dtype=dt), np.zeros(size, dtype=dt)
