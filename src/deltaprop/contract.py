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
kernel        LINE 16, SPINS 2000, BLAS_MIN_FLOPS 4096 (not codes: see Kernel constants)
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
``batch_epoch(w, layout, hidden, output, loss, X, T, s, order, batch_size, solver, hyper, state, step, Xb, Tb, sb, A, Z, D, g, losses)``
    Mini-batch gradient descent. Batches B are consecutive runs of ``order`` (n_epochs, m)
    intp (the last one of an epoch may be shorter). For each batch, with sample weights
    ``s`` (n,) and :math:`S_B = \sum_{n \in B} s_n`, the gradient is

    .. math:: g = \frac{1}{S_B} \Big( \sum_{n \in B} s_n \nabla E_n(w) + \alpha W \Big)

    (the L2 term :math:`\alpha W` on weights only, never on biases: scikit-learn's scaling),
    then ``solver`` updates ``w`` in place (:data:`SOLVERS`):
    sgd :math:`w \leftarrow w - \eta g`;
    momentum :math:`v \leftarrow \mu v - \eta g,\ w \leftarrow w + v`;
    nesterov :math:`v \leftarrow \mu v - \eta g,\ w \leftarrow w + \mu v - \eta g`;
    adam :math:`\tau \leftarrow \tau + 1,\ m \leftarrow \beta_1 m + (1 - \beta_1) g,\
    v \leftarrow \beta_2 v + (1 - \beta_2) g^2,\
    w \leftarrow w - \eta \frac{\sqrt{1 - \beta_2^\tau}}{1 - \beta_1^\tau} \frac{m}{\sqrt{v} + \epsilon}`.
    ``hyper`` (6,) of the arrays' dtype holds :data:`HYPER` = (η, α, μ, β₁, β₂, ε);
    ``state`` (2, P) holds v (row 0) or Adam's m, v (rows 0, 1); ``step`` (1,) int64 holds Adam's
    step count τ (``T`` and ``t`` are the targets). A batch with :math:`S_B = 0` is skipped.
    ``Xb`` (batch_size, D), ``Tb`` (batch_size, K), ``sb`` (batch_size,), ``A``, ``Z``, ``D``
    (batch_size * U,) and ``g`` (P,) are work buffers. ``losses`` (n_epochs, 2) float64 receives, for each epoch,
    :math:`\sum_B |B| \frac{1}{S_B} \sum_{n \in B} s_n E_n` and
    :math:`\sum_B |B| \frac{1}{S_B} \frac{\alpha}{2} \lVert W \rVert^2`, both taken before the
    batch's update. With unit weights and α = 0 the first is :math:`\sum_n E_n` and plain sgd is
    :math:`w \leftarrow w - \frac{\eta}{|B|} \sum_{n \in B} \nabla E_n(w)`.
``sgd_epoch(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, step, a, z, delta, losses)``
    The same with ``batch_size = 1`` — on-line gradient descent,
    :math:`w \leftarrow w - \eta \nabla E_n(w)`, one sample at a time — fused: forward, δ and
    the update of each weight in one pass per sample, no gradient buffer. ``a``, ``z``, ``delta``
    are (U,) buffers. It equals ``batch_epoch`` with ``batch_size=1``.
``average_epochs(j, w, W, layout, hidden, output, loss, X, T, s, order, bounds, solver, hyper, state, S, step, steps, a, z, delta, losses, sync)``
    Iterative parameter mixing (local SGD) on J threads: the J threads call it at once, thread
    j with its own ``j``; ``bounds`` (J, 2) intp gives thread j's shard ``[bounds[j, 0],
    bounds[j, 1])`` of every epoch's order. For each epoch (row of ``order``) thread j copies
    ``w`` (and, for solvers other than sgd, ``state``; and ``step``) into its row of ``W`` (J, ≥P)
    (``S`` (J, ≥2P), the rows of ``state``; ``steps`` (J, ≥1) int64), runs ``sgd_epoch`` on
    that copy over its shard with its own buffers ``a``, ``z``, ``delta`` (J, ≥U) and losses
    ``losses[j, e]`` (``losses`` (J, n_epochs, 2) float64), and waits for the others; then

    .. math:: w \leftarrow \frac{1}{J} \sum_{j} w_j

    summed in thread order (each thread writes its 1/J slice of the parameters), the same
    for ``state``, and ``step`` becomes the largest of the threads' step counts; and they wait for
    each other again. ``sync`` (3, ≥1) int64, zeros at the call, holds the barrier's counters
    (row 0 arrivals, row 1 generation, row 2 abort; a row per cache line in practice): a
    non-zero ``sync[2, 0]`` makes every waiting thread return at once, so a thread that fails
    before it arrives cannot hang the others (the weights are then unspecified).
``split_epochs(j, w, layout, hidden, output, loss, X, T, s, order, batch_size, solver, hyper, state, step, steps, Xb, Tb, sb, A, Z, D, G, g, losses, sync)``
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
    rules are elementwise; ``step`` advances by one per batch through each thread's own copy in
    ``steps`` (J, ≥1) int64); they meet again before the next batch. Thread j's slice is
    ``[lo_j, lo_{j+1})`` with :math:`lo_j = \mathrm{LINE} \lfloor \lfloor P j / J \rfloor / \mathrm{LINE} \rfloor`
    (:math:`lo_0 = 0`, :math:`lo_J = P`: no two threads write one cache line). ``losses``
    (J, n_epochs, 2) float64 receives each thread's part of ``batch_epoch``'s losses (its
    rows' errors, its slice's penalty; their sums over j are the epoch's). The result is
    ``batch_epoch``'s up to the order in which a batch's gradient is summed; deterministic
    for a given J.

Kernel constants
----------------
Numbers of the kernels' loops, not codes, but written down here once for the same reason: every
backend that uses one must use the same value (:data:`KERNEL_CONSTANTS`, module constants of
the same names). ``_numpy`` and ``_numba`` import them; ``_cython`` declares them once, in
``_core.pxd``; each backend's ``codes()`` reports the ones it uses as the table ``kernel``.

==================  =====  ==================================================  ====================
constant            value  meaning                                             used by
==================  =====  ==================================================  ====================
``LINE``            16     ``split_epochs``: the threads' slices of the        numpy, numba, cython
                           parameters start at multiples of LINE values (64
                           bytes of float32): no two threads write one cache
                           line
``SPINS``           2000   the compiled barrier of ``average_epochs`` and      numba, cython
                           ``split_epochs``: rounds a waiting thread spins
                           before it starts to yield its core
``BLAS_MIN_FLOPS``  4096   the batch kernels: a layer goes through BLAS gemm   cython
                           when :math:`n \cdot n_{in} \cdot n_{out}` reaches
                           it, through row loops below it
==================  =====  ==================================================  ====================

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

The flat vector and the buffers
-------------------------------
``deltaprop.layout`` builds and reads ``w``, ``layout`` and the unit buffers (``make_layout``,
``n_params``, ``n_units``, ``layer_params``, ``layer_units``, and ``pack`` / ``unpack`` /
``unit_buffers`` for a user's own arrays). The kernels themselves check nothing (a wrong
shape writes past a buffer's end); ``deltaprop.lowlevel`` is the same functions with their
arguments checked, for a user's own NumPy loop.
"""  # noqa: E501 (the signatures above are one line each)

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = ["ACTIVATIONS", "HIDDEN_ACTIVATIONS", "OUTPUT_ACTIVATIONS", "LOSSES", "OUTPUT_LOSS", "PAIRS",
           "CANONICAL_PAIRS", "SOLVERS", "HYPER", "HYPER_INDEX", "HYPER_DEFAULTS", "DEFAULT_ETA", "make_hyper",
           "PARALLEL_MODES", "DTYPES", "LAYOUT_COLUMNS", "KERNEL_CONSTANTS", "CONSTANTS", "SIGNATURES", "FUNCTIONS",
           "Kernels", "codes", "check_pair", "mostly_nonzero"]

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

#: Numbers of the kernels' loops (see "Kernel constants" above), the same in every backend.
KERNEL_CONSTANTS = {"LINE": 16, "SPINS": 2000, "BLAS_MIN_FLOPS": 4096}

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

LINE = KERNEL_CONSTANTS["LINE"]
SPINS = KERNEL_CONSTANTS["SPINS"]
BLAS_MIN_FLOPS = KERNEL_CONSTANTS["BLAS_MIN_FLOPS"]

#: table -> {entry: name of its module constant}: the entry in upper case, except the
#: momentum slot of ``hyper``, ``MU`` (``MOMENTUM`` is the solver).
CONSTANTS = {
    "activations": {name: name.upper() for name in ACTIVATIONS},
    "losses": {name: name.upper() for name in LOSSES},
    "solvers": {name: name.upper() for name in SOLVERS},
    "hyper": {name: "MU" if name == "momentum" else name.upper() for name in HYPER},
    "layout": {name: name.upper() for name in LAYOUT_COLUMNS},
    "kernel": {name: name for name in KERNEL_CONSTANTS},
}


def make_hyper(dtype: DTypeLike, **values: float) -> np.ndarray:
    """The ``hyper`` array of the epoch kernels, built by slot name.

    Parameters
    ----------
    dtype : {"float32", "float64"}
        The arrays' dtype.
    **values : float
        Values of slots of :data:`HYPER` (``eta=0.1``, ``momentum=0.9``, ...); the other slots
        take :data:`HYPER_DEFAULTS`.

    Returns
    -------
    hyper : ndarray (6,)
        One value per slot, in :data:`HYPER`'s order.

    Raises
    ------
    ValueError
        If a name is not a slot of :data:`HYPER`.

    Examples
    --------
    >>> make_hyper(np.float64, eta=0.1, momentum=0.9)
    array([1.00e-01, 0.00e+00, 9.00e-01, 9.00e-01, 9.99e-01, 1.00e-08])
    """
    unknown = sorted(set(values) - set(HYPER))
    if unknown:
        raise ValueError(f"unknown hyper-parameter slot(s) {unknown}; the slots are {list(HYPER)}")
    return np.array([values.get(name, HYPER_DEFAULTS[name]) for name in HYPER], dtype=dtype)


def codes() -> dict[str, Any]:
    """The tables in the form every backend's ``codes()`` returns them.

    Returns
    -------
    dict
        ``{"activations": {name: code}, "losses": {...}, "solvers": {...}, "hyper": slot
        names in order, "layout": column names in order, "kernel": {constant: value}}``. A
        backend's ``kernel`` table holds only the constants its kernels use.
    """
    return {
        "activations": dict(ACTIVATIONS),
        "losses": dict(LOSSES),
        "solvers": dict(SOLVERS),
        "hyper": HYPER,
        "layout": LAYOUT_COLUMNS,
        "kernel": dict(KERNEL_CONSTANTS),
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
                    "solver", "hyper", "state", "step", "Xb", "Tb", "sb", "A", "Z", "D", "g", "losses"),
    "sgd_epoch": ("w", "layout", "hidden", "output", "loss", "X", "T", "s", "order", "solver", "hyper",
                  "state", "step", "a", "z", "delta", "losses"),
    "average_epochs": ("j", "w", "W", "layout", "hidden", "output", "loss", "X", "T", "s", "order", "bounds",
                       "solver", "hyper", "state", "S", "step", "steps", "a", "z", "delta", "losses", "sync"),
    "split_epochs": ("j", "w", "layout", "hidden", "output", "loss", "X", "T", "s", "order", "batch_size",
                     "solver", "hyper", "state", "step", "steps", "Xb", "Tb", "sb", "A", "Z", "D", "G", "g",
                     "losses", "sync"),
}


class Kernels(NamedTuple):
    """One backend: the contract's functions, bound to a backend name.

    The functions are the backend's own: they do not check their arguments (see
    ``deltaprop.lowlevel`` for checked ones).
    """

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


def check_pair(output: str, loss: str) -> None:
    """Check that an output activation and a loss go together.

    Parameters
    ----------
    output : str
        A name of :data:`OUTPUT_ACTIVATIONS`.
    loss : str
        A name of :data:`LOSSES`.

    Raises
    ------
    ValueError
        Unless ``(output, loss)`` is one of :data:`PAIRS`; the message lists the pairs.
    """
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


def mostly_nonzero(X: ArrayLike, order: ArrayLike) -> bool:
    """Whether the inputs a per-sample call visits first are dense.

    The compiled backends' plain per-sample sgd then visits every row of W_0 instead of
    listing each sample's non-zero inputs (the list costs more than the zero rows it skips on
    dense inputs); the results are the same bits.

    Parameters
    ----------
    X : array_like (n, D)
        The inputs.
    order : array_like of int
        The samples in the order of the call (any shape; read flat).

    Returns
    -------
    bool
        True if the first :data:`DENSE_PROBE` samples of ``order`` have at least
        :data:`DENSE_FRACTION` non-zero inputs.
    """
    probe = np.asarray(X)[np.asarray(order).ravel()[:DENSE_PROBE]]
    return probe.size > 0 and np.count_nonzero(probe) >= DENSE_FRACTION * probe.size
