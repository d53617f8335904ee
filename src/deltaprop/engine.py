r"""The engine: :class:`MLP`, a multilayer perceptron in the seed's notation.

The network with layer sizes ``[D, M_1, ..., K]`` computes (Bishop 5.7, any depth)

.. math:: y_k(\mathbf{x}, \mathbf{w}) = f\Big(\sum_j w^{(L)}_{kj}\, h\big(\cdots h\big(\sum_i w^{(1)}_{ji} x_i + w^{(1)}_{j0}\big)\cdots\big) + w^{(L)}_{k0}\Big)

All parameters live in one flat vector ``w`` described by a layout table (see
:mod:`deltaprop.contract`); ``coefs_[l]`` (n_in, n_out) and ``intercepts_[l]`` (n_out,) are
views into it, in scikit-learn's layout. Bishop absorbs the bias as a weight from an extra input
:math:`x_0 = 1` (:math:`a_j = \sum_{i=0}^D w_{ji} x_i`); that is the same model, and the
intercepts are kept as separate vectors here.

The engine validates, casts and allocates; the backend's kernels do the arithmetic.
"""

from __future__ import annotations

import contextlib
import copy
import types

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from .backends import get_backend
from .contract import ACTIVATIONS, ALPHA, LOSSES, MOMENTUM, MU, SGD, SOLVERS
from .layout import layer_params, layer_units, make_layout, n_params, n_units
from .modelfile import Member, atomic_write, read_npz
from .parallel import Threads, effective_n_jobs, piece_bounds, shard_bounds
from .validation import (check_config, check_lr, check_order, check_positive_int, check_sample_weight,
                         check_T, check_X)

__all__ = ["MLP", "Epochs", "SplitEpochs", "ParallelEpochs", "rollback", "aligned_zeros", "kernel_input",
           "WORK_PER_CALL", "work_rows", "UNIT_ELEMENTS", "OUTPUT_DERIVATIVES"]

FORMAT = "deltaprop.MLP"
FORMAT_VERSION = 1

#: The size of one compiled call, in weight visits: a call handles at most about
#: ``WORK_PER_CALL / (P + SAMPLE_OVERHEAD)`` samples (a quarter of that for per-sample momentum,
#: Nesterov and Adam, whose update reads and writes three arrays per weight). The kernels run
#: without the GIL and never look for signals, so Ctrl-C (KeyboardInterrupt) is seen only when
#: a call returns. The size is chosen so that a call lasts tens of milliseconds on one core:
#: short enough for a prompt Ctrl-C, long enough that the Python work between calls is lost in it.
WORK_PER_CALL = 100_000_000
#: fewer rows than this per thread are not worth a thread (forward, loss, gradient)
_MIN_SHARD_ROWS = 64
#: at most this many bytes of float64 gradients of pieces of rows, one per piece, in a sharded
#: gradient sweep (this many pieces at least: 2 per thread)
_PIECE_BYTES = 32 << 20
#: per-sample work that does not scale with the number of weights, in weight visits
SAMPLE_OVERHEAD = 500
#: cost factor of the per-sample rules that keep optimizer state (momentum, Nesterov, Adam)
_STATEFUL_PER_SAMPLE = 4


#: at most this many values in each unit buffer (A, Z, D) and densified chunk of a sparse X
UNIT_ELEMENTS = 1 << 22
#: the unit buffers of one chunk of rows should hold about this many values (three buffers of
#: 0.5 MB in float64: the forward pass's A and Z are still in cache when δ-backprop and the
#: gradient read them back), but at least :data:`MIN_CHUNK_ROWS` rows, for the matrix products
CACHE_ELEMENTS = 1 << 16
MIN_CHUNK_ROWS = 256

#: :math:`\partial y_k / \partial a_{k'}` of each output activation, as an (n, K, K) array
#: from the outputs y (n, K) and the identity matrix (the Jacobian's output error vectors)
OUTPUT_DERIVATIVES = {
    "identity": lambda y, eye: np.broadcast_to(eye, (y.shape[0],) + eye.shape),
    "logistic": lambda y, eye: eye * (y * (1 - y))[:, :, None],
    "exp": lambda y, eye: eye * y[:, :, None],
    "softmax": lambda y, eye: y[:, :, None] * (eye - y[:, None, :]),  # y_k (I_kk' - y_k')
}


#: byte alignment of ``w``: a cache line, and a whole AVX-512 vector
ALIGNMENT = 64


def aligned_zeros(n: int, dtype, alignment: int = ALIGNMENT) -> np.ndarray:
    """A zeroed (n,) array of ``dtype`` whose first element starts on an ``alignment``-byte
    boundary. The per-sample kernels sweep the first layer's rows of ``w`` with vector loads;
    NumPy aligns to 16 bytes only, and a ``w`` that starts off a 32-byte boundary makes every
    row's vectors straddle cache lines.

    The allocation is padded to whole ``alignment``-byte blocks, so the array shares no cache
    line with any other: a buffer one thread writes for every sample (units, δ, the epoch's
    loss sums, Adam's step count) is never false-shared with another thread's."""
    dtype = np.dtype(dtype)
    nbytes = -(-n * dtype.itemsize // alignment) * alignment
    buf = np.zeros(nbytes + alignment, dtype=np.uint8)
    start = (-buf.ctypes.data) % alignment
    return buf[start : start + n * dtype.itemsize].view(dtype)


def kernel_input(X, dtype):
    """X as the kernels take it: CSR stays sparse; dense becomes C-contiguous and writeable.

    Writeable because numba compiles a separate specialisation for read-only arrays (and
    Cython's memoryviews reject them); the copy is made only when X is read-only.
    """
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=dtype)
    return np.require(X, dtype=dtype, requirements=["C", "W"])


def _dense_rows(X, rows, dtype):
    """Rows ``rows`` (slice or index array) of X as a dense C-contiguous array of ``dtype``."""
    part = X[rows]
    if sp.issparse(part):
        part = part.toarray()
    return np.ascontiguousarray(part, dtype=dtype)


def work_rows(n_params: int, factor: int = 1) -> int:
    """Samples per compiled call for a network of ``n_params`` weights (at least 1)."""
    return max(1, WORK_PER_CALL // (factor * (int(n_params) + SAMPLE_OVERHEAD)))


@contextlib.contextmanager
def rollback(*arrays):
    """Put ``arrays`` back as they were, bit for bit, if the block raises anything.

    KeyboardInterrupt included: a training call is a transaction.
    """
    saved = [a.copy() for a in arrays]
    try:
        yield
    except BaseException:
        for a, old in zip(arrays, saved):
            a[...] = old
        raise


class _LayerList(list):
    """The list behind ``coefs_`` / ``intercepts_``: item assignment writes into ``w``."""

    def __init__(self, views, name):
        super().__init__(views)
        self._name = name

    def __setitem__(self, index, value):
        if not isinstance(index, int):
            raise TypeError(f"{self._name} items are assigned one layer at a time")
        view = list.__getitem__(self, index)
        view[...] = _as_param(value, view, f"{self._name}[{index}]")


def _as_param(value, view, name):
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    if arr.shape != view.shape:
        raise ValueError(f"{name} must have shape {view.shape}; got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return arr.astype(view.dtype, copy=False)


class MLP:
    r"""A multilayer perceptron trained by error backpropagation and gradient descent.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[D, M_1, ..., K]``: inputs, hidden layers (any number, also none), outputs.
    hidden : {"identity", "logistic", "tanh", "relu", "gudermannian", "softplus"}
        Hidden activation h.
    output : {"identity", "logistic", "softmax", "exp"}
        Output activation f.
    loss : {"squared_error", "binary_cross_entropy", "cross_entropy", "poisson"}
        Error function E(w), summed over samples. Allowed pairs with ``output``
        (``deltaprop.contract.PAIRS``): identity + squared_error, logistic +
        binary_cross_entropy or squared_error, softmax + cross_entropy or squared_error,
        exp + poisson.
    backend : str
        ``"auto"`` (fastest available), ``"numpy"``, ``"numba"`` or ``"cython"``.
    dtype : {"float64", "float32"}
        dtype of weights, buffers and arithmetic.
    random_state : None, int or numpy.random.RandomState
        Seeds the weight initialisation and the shuffling in :meth:`fit`. Training finds one
        of many minima of E(w) (the seed's :math:`w_A`, :math:`w_B`): a seed reproduces a run,
        different seeds are restarts.

    Attributes
    ----------
    w : ndarray (P,)
        Every weight and bias, in the layout of ``layout``.
    layout : ndarray (L, 5) of intp
        ``(n_in, n_out, w_off, b_off, u_off)`` per layer.
    coefs_, intercepts_ : list of ndarray
        Views of ``w``: ``coefs_[l]`` (n_in, n_out), ``intercepts_[l]`` (n_out,). Assigning a
        list, or one item, validates and copies the values into ``w``.
    loss_curve_ : list of float
        Summed error of each epoch of :meth:`fit`.
    """

    def __init__(self, layer_sizes, hidden="tanh", output="identity", loss="squared_error",
                 backend="auto", dtype="float64", random_state=None):
        sizes, dt = check_config(layer_sizes, hidden, output, loss, dtype)
        self.kernels = get_backend(backend)
        self.layer_sizes = sizes
        self.hidden = hidden
        self.output = output
        self.loss_function = loss
        self.backend = self.kernels.name
        self.dtype = dt
        self.random_state = random_state
        self.layout = make_layout(sizes)
        self._rng = check_random_state(random_state)  # scikit-learn's rules
        self.w = aligned_zeros(n_params(self.layout), dt)
        self._init_weights()
        self.loss_curve_ = []

    # ----------------------------------------------------------------- parameters
    def _init_weights(self):
        r"""Glorot-uniform initialisation, drawn exactly as scikit-learn's MLP draws it.

        For each layer, :math:`w \sim U(-b, b)` with :math:`b = \sqrt{6 / (n_{in} + n_{out})}`
        (:math:`\sqrt{2 / (n_{in} + n_{out})}` for logistic hidden units), weights then biases.
        """
        factor = 2.0 if self.hidden == "logistic" else 6.0
        for W, b in zip(self.coefs_, self.intercepts_):
            bound = np.sqrt(factor / (W.shape[0] + W.shape[1]))
            W[...] = self._rng.uniform(-bound, bound, W.shape)
            b[...] = self._rng.uniform(-bound, bound, b.shape)

    def _replica(self) -> "MLP":
        """The same network (configuration, backend) with its own copy of ``w``."""
        twin = copy.copy(self)
        twin.__dict__.pop("_kept", None)
        twin.w = aligned_zeros(self.w.shape[0], self.dtype)
        twin.w[...] = self.w
        twin.loss_curve_ = []
        return twin

    @property
    def n_layers(self) -> int:
        """Number L of weight layers."""
        return self.layout.shape[0]

    @property
    def coefs_(self):
        return _LayerList([layer_params(self.w, self.layout, l)[0] for l in range(self.n_layers)], "coefs_")

    @coefs_.setter
    def coefs_(self, values):
        self._assign(values, 0, "coefs_")

    @property
    def intercepts_(self):
        return _LayerList([layer_params(self.w, self.layout, l)[1] for l in range(self.n_layers)], "intercepts_")

    @intercepts_.setter
    def intercepts_(self, values):
        self._assign(values, 1, "intercepts_")

    def _assign(self, values, which, name):
        values = list(values)
        if len(values) != self.n_layers:
            raise ValueError(f"{name} needs {self.n_layers} arrays, one per layer; got {len(values)}")
        views = [layer_params(self.w, self.layout, l)[which] for l in range(self.n_layers)]
        checked = [_as_param(v, view, f"{name}[{l}]") for l, (v, view) in enumerate(zip(values, views))]
        for view, v in zip(views, checked):  # all validated first: nothing changes on error
            view[...] = v

    # ----------------------------------------------------------------- codes and buffers
    @property
    def _codes(self):
        return ACTIVATIONS[self.hidden], ACTIVATIONS[self.output], LOSSES[self.loss_function]

    def _buffers(self, n, slot=0, size=None, count=3, dtype=None):
        """Unit buffers ``(A, Z, D)`` for a batch of ``n`` (or ``count`` buffers of ``size``
        values, of ``dtype`` if not the network's): fresh ones, or inside
        :meth:`reuse_buffers` the kept ones of ``slot`` (one per concurrent shard and use; grown
        when too small)."""
        size = n * n_units(self.layout) if size is None else size
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        kept = self.__dict__.get("_kept")
        if kept is None:
            return tuple(np.empty(size, dtype=dtype) for _ in range(count))
        bufs = kept.buffers.get(slot)
        if bufs is None or bufs[0].shape[0] < size or bufs[0].dtype != dtype:
            bufs = kept.buffers[slot] = tuple(np.empty(size, dtype=dtype) for _ in range(count))
        return tuple(b[:size] for b in bufs)

    @contextlib.contextmanager
    def reuse_buffers(self):
        """While the block runs, :meth:`forward`, :meth:`loss` and :meth:`loss_and_gradient` keep
        their unit buffers between calls (one set per row shard) instead of allocating them anew:
        for callers that evaluate many times, as L-BFGS does (buffers of a few hundred KB come
        back from the allocator as fresh pages, which must be touched in anew at every call).
        With ``n_jobs`` > 1 the block also keeps its thread pools (:meth:`_threads`). Buffers
        and pools are released when the block ends."""
        if "_kept" in self.__dict__:  # nested: the outer block keeps them
            yield self
            return
        try:
            with contextlib.ExitStack() as stack:
                self._kept = types.SimpleNamespace(buffers={}, pools={}, stack=stack)
                yield self
        finally:
            self.__dict__.pop("_kept", None)

    def _threads(self, n):
        """A context giving a :class:`Threads` pool of ``n``: a new one, or inside
        :meth:`reuse_buffers` the block's, started once for all its calls."""
        kept = self.__dict__.get("_kept")
        if kept is None:
            return Threads(n)
        if n not in kept.pools:
            kept.pools[n] = kept.stack.enter_context(Threads(n))
        kept.pools[n].stop.clear()
        return contextlib.nullcontext(kept.pools[n])

    def _check_XT(self, X, T, sample_weight=None):
        X = check_X(X, self.layer_sizes[0], self.dtype)
        T = check_T(T, X.shape[0], self.layer_sizes[-1], self.loss_function, self.dtype)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        return X, T, sample_weight

    def chunk_rows(self, X) -> int:
        """Rows of X per kernel call in :meth:`forward`, :meth:`loss` and
        :meth:`loss_and_gradient`: unit buffers of about :data:`CACHE_ELEMENTS` values (at least
        :data:`MIN_CHUNK_ROWS` rows) and at most :data:`UNIT_ELEMENTS`, at most
        :data:`WORK_PER_CALL` weight visits (at least :data:`MIN_CHUNK_ROWS` rows), and for a
        sparse X at most :data:`UNIT_ELEMENTS` densified inputs."""
        U = n_units(self.layout)
        rows = min(max(1, UNIT_ELEMENTS // U), max(MIN_CHUNK_ROWS, CACHE_ELEMENTS // U),
                   max(MIN_CHUNK_ROWS, work_rows(self.w.shape[0])))
        if sp.issparse(X):
            rows = min(rows, max(1, UNIT_ELEMENTS // max(1, X.shape[1])))
        return rows

    def _sweep(self, X, T=None, s=None, outputs=None, pre_activation=None, grad=None, slot=0) -> float:
        r"""One pass over the rows of X, a chunk (:meth:`chunk_rows`) per kernel call.

        Forward always; ``outputs`` / ``pre_activation`` (n, K) receive y and the output layer's
        a. With targets T also the output δ and :math:`E = \sum_n s_n E_n` (returned); with
        ``grad`` (P,) also δ-backprop and :math:`\sum_n s_n \nabla E_n` into ``grad``. Every
        sum is over the chunks, so sums over other rows (threads, machines) add to them. The
        gradient sweep of a dense X is one ``loss_gradient`` call (the chunks in compiled
        code; ``grad`` summed in float64).
        """
        n = X.shape[0]
        rows = min(n, self.chunk_rows(X))
        h, f, e = self._codes
        U = n_units(self.layout)
        A, Z, D = self._buffers(max(rows, 1), slot)
        if T is not None and s is None:
            s = np.ones(n, dtype=self.dtype)
        if grad is not None and outputs is None and pre_activation is None and not sp.issparse(X):
            # the whole sweep in one compiled call (no Python, so no GIL, between chunks)
            acc = grad if grad.dtype == np.float64 else np.empty(grad.shape[0])
            acc[...] = 0
            g = self._buffers(1, ("g", slot), size=self.w.shape[0], count=1)[0]
            E = float(self.kernels.loss_gradient(self.w, self.layout, h, f, e, X, T, s, A, Z, D, g, acc))
            if acc is not grad:
                grad[...] = acc
            return E
        g = None
        if grad is not None:
            grad[...] = 0
            g = grad if (rows == n and grad.dtype == self.dtype) else np.empty_like(self.w)
        E = 0.0
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            m = stop - start
            Xc = _dense_rows(X, slice(start, stop), self.dtype) if rows < n or sp.issparse(X) else X
            a, z, d = A[: m * U], Z[: m * U], D[: m * U]
            self.kernels.forward(self.w, self.layout, h, f, Xc, a, z)
            if outputs is not None:
                outputs[start:stop] = layer_units(z, self.layout, -1, m)
            if pre_activation is not None:
                pre_activation[start:stop] = layer_units(a, self.layout, -1, m)
            if T is None:
                continue
            E += float(self.kernels.output_delta(self.layout, f, e, a, z, T[start:stop], s[start:stop], d))
            if grad is not None:
                self.kernels.backprop(self.w, self.layout, h, a, z, d)
                self.kernels.gradient(self.layout, Xc, z, d, g)
                if g is not grad:
                    grad += g
        return E

    def _sharded(self, X, T, s, n_jobs, outputs=None, pre_activation=None, grad=None) -> float:
        """:meth:`_sweep` over ``n_jobs`` threads: the rows cut into contiguous pieces
        (:func:`~deltaprop.parallel.piece_bounds`, which depend on n and ``n_jobs`` only) that
        the threads take in turn as each becomes free, so a slower core takes fewer of them.
        Outputs go by rows; E and the gradient are summed in piece order (each piece's gradient
        in its own float64 buffer), so the result is deterministic for a given ``n_jobs``."""
        n = X.shape[0]
        J = min(effective_n_jobs(n_jobs), n // _MIN_SHARD_ROWS)
        if J < 2:
            return self._sweep(X, T, s, outputs, pre_activation, grad)
        if T is not None and s is None:
            s = np.ones(n, dtype=self.dtype)
        P = self.w.shape[0]
        pieces = piece_bounds(n, J, _MIN_SHARD_ROWS, max(2 * J, _PIECE_BYTES // (8 * P)))
        grads = None if grad is None else self._buffers(
            1, "pieces", size=len(pieces) * P, count=1, dtype=np.float64)[0].reshape(len(pieces), P)
        if "_kept" in self.__dict__:  # each thread's kept buffers sized for the largest piece at once
            for j in range(J):
                self._buffers(min(max(b - a for a, b in pieces), self.chunk_rows(X)), j)

        def piece(k, j):
            a, b = pieces[k]
            return self._sweep(X[a:b], None if T is None else T[a:b], None if s is None else s[a:b],
                               None if outputs is None else outputs[a:b],
                               None if pre_activation is None else pre_activation[a:b],
                               None if grad is None else grads[k], slot=j)

        with self._threads(J) as threads:
            E = threads.run_dynamic(piece, len(pieces))
        if grad is not None:  # ((g_0 + g_1) + g_2) + ... (J >= 2 makes two pieces at least)
            total = grad if grad.dtype == np.float64 else grads[0]
            np.add(grads[0], grads[1], out=total)
            for g in grads[2:]:
                total += g
            if total is not grad:
                grad[...] = total
        return float(sum(E))

    # ----------------------------------------------------------------- the maths
    def forward(self, X, out=None, *, pre_activation=None, check_input=True, n_jobs=None):
        r"""Network outputs :math:`y(\mathbf{x}_n, \mathbf{w})`, shape (n, K).

        X is dense or scipy-sparse (densified a chunk of rows at a time, see
        :meth:`chunk_rows`). ``out`` (n, K) of the network's dtype receives the outputs (a new
        array if None) and is returned; ``pre_activation`` (n, K), if given, receives the output
        units' :math:`a_k`. ``check_input=False`` skips validation (X already as
        :func:`kernel_input` makes it). ``n_jobs`` threads (scikit-learn's convention) split
        the rows.
        """
        if check_input:
            X = check_X(X, self.layer_sizes[0], self.dtype)
        if out is None:
            out = np.empty((X.shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        self._sharded(X, None, None, n_jobs, outputs=out, pre_activation=pre_activation)
        return out

    def loss(self, X, T, sample_weight=None, *, outputs=None, check_input=True, n_jobs=None) -> float:
        r"""Error :math:`E(\mathbf{w}) = \sum_n s_n E_n(\mathbf{w})` over the samples of X, T.

        ``sample_weight`` s (n,) defaults to ones (Bishop's :math:`E = \sum_n E_n`);
        ``outputs`` (n, K), if given, receives y from the same forward pass.
        """
        if check_input:
            X, T, sample_weight = self._check_XT(X, T, sample_weight)
        return self._sharded(X, T, sample_weight, n_jobs, outputs=outputs)

    def loss_and_gradient(self, X, T, sample_weight=None, out=None, *, check_input=True, n_jobs=None):
        r"""``(E, g)``: :math:`E = \sum_n s_n E_n` and :math:`g = \sum_n s_n \nabla E_n`.

        The gradient is one flat vector laid out like ``w``, by δ-backprop (5.56). Both are
        plain sums over the samples (no mean, no regularisation), so sums over chunks of rows,
        threads or machines add up to the sums over all of them. ``out`` (P,) receives g (a
        new array of the network's dtype if None; pass float64 to accumulate a float32
        network's gradient in double). With ``n_jobs`` threads the rows are split into
        contiguous shards whose sums are added in shard order: deterministic for a given
        ``n_jobs``, equal to the one-thread result up to the order of summation.
        """
        if check_input:
            X, T, sample_weight = self._check_XT(X, T, sample_weight)
        if out is None:
            out = np.empty_like(self.w)
        E = self._sharded(X, T, sample_weight, n_jobs, grad=out)
        return E, out

    def gradient(self, X, T):
        r"""``(coef_grads, intercept_grads)``: :math:`\partial E / \partial w`, summed over samples.

        By δ-backprop: :math:`\delta_j = h'(a_j) \sum_k w_{kj} \delta_k` (5.56) and
        :math:`\partial E_n / \partial w_{ji} = \delta_j z_i`; in matrix form
        :math:`\partial L / \partial W = Z^T \Delta`.
        """
        _, g = self.loss_and_gradient(X, T)
        return ([layer_params(g, self.layout, l)[0] for l in range(self.n_layers)],
                [layer_params(g, self.layout, l)[1] for l in range(self.n_layers)])

    def jacobian(self, X):
        r"""Jacobian :math:`J_{ki} = \partial y_k / \partial x_i` of every sample, shape (n, K, D).

        By backpropagation: for each output k the error vector at the output units is
        :math:`\partial y_k / \partial a_{k'}` (the output activation's derivative,
        :data:`OUTPUT_DERIVATIVES`), which the δ-recursion (5.56) carries back to the first
        hidden layer; then :math:`\partial y_k / \partial x_i = \sum_j w_{ji} \delta_j`
        (:math:`\partial L/\partial X = \partial L/\partial Y\, W^T`). No per-layer Jacobian
        matrix is ever formed.
        """
        X = check_X(X, self.layer_sizes[0], self.dtype)
        n, K = X.shape[0], self.layer_sizes[-1]
        h, f, _ = self._codes
        A, Z, _ = self._buffers(n)
        self.kernels.forward(self.w, self.layout, h, f, X, A, Z)
        # A batch of n*K rows: row n*K + k carries sample n with output k's error vector.
        U = n_units(self.layout)
        Ar, Zr, Dr = (np.empty(n * K * U, dtype=self.dtype) for _ in range(3))
        for l in range(self.n_layers):
            for src, dst in ((A, Ar), (Z, Zr)):
                layer_units(dst, self.layout, l, n * K)[...] = np.repeat(
                    layer_units(src, self.layout, l, n), K, axis=0)
        y = layer_units(Z, self.layout, -1, n)
        dy_da = OUTPUT_DERIVATIVES[self.output](y, np.eye(K, dtype=self.dtype))
        layer_units(Dr, self.layout, -1, n * K)[...] = dy_da.reshape(n * K, K)
        self.kernels.backprop(self.w, self.layout, h, Ar, Zr, Dr)
        delta0 = layer_units(Dr, self.layout, 0, n * K)
        return (delta0 @ self.coefs_[0].T).reshape(n, K, self.layer_sizes[0])

    # ----------------------------------------------------------------- training
    def _epochs(self, X, T, batch_size, n_jobs=None, parallel="average"):
        """The epoch runner for X, T: :class:`Epochs`, or :class:`ParallelEpochs` on threads."""
        if effective_n_jobs(n_jobs) > 1:
            return ParallelEpochs(self, X.shape[1], T.shape[1], batch_size, n_jobs, parallel)
        return Epochs(self, X.shape[1], T.shape[1], batch_size)

    def _run_epochs(self, X, T, orders, lr, epochs):
        """Plain gradient descent over ``orders`` (n_epochs, m); the summed error of each epoch.

        A transaction: if the error or the weights become non-finite (FloatingPointError), or
        anything else is raised (KeyboardInterrupt included), ``w`` is put back as it was.
        """
        dt = self.dtype
        hyper = np.array([lr, 0.0, 0.0, 0.9, 0.999, 1e-8], dtype=dt)  # (η, α, μ, β₁, β₂, ε)
        state = np.zeros((2, self.w.shape[0]), dtype=dt)
        t = np.zeros(1, dtype=np.int64)
        losses = np.zeros((orders.shape[0], 2), dtype=np.float64)
        s = np.ones(X.shape[0], dtype=dt)
        with rollback(self.w):
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
                epochs(X, T, s, orders, SOLVERS["sgd"], hyper, state, t, losses)
            _check_finite(losses[:, 0], self.w)
        return losses[:, 0]

    def sgd_epoch(self, X, T, lr, order=None) -> float:
        r"""One epoch of on-line gradient descent, :math:`w \leftarrow w - \eta \nabla E_n(w)`.

        Samples are visited in ``order`` (default ``0..n-1``; an empty order is an epoch that
        visits nothing and returns 0.0), the weights updated after each one, fused in compiled
        calls. Returns :math:`\sum_n E_n`, each taken before its update. On any error
        (divergence: FloatingPointError; KeyboardInterrupt) ``w`` is left as it was.
        """
        X, T, _ = self._check_XT(X, T)
        lr = check_lr(lr)
        order = np.arange(X.shape[0], dtype=np.intp) if order is None else check_order(order, X.shape[0])
        return float(self._run_epochs(X, T, order[None, :], lr, self._epochs(X, T, 1))[0])

    def batch_epoch(self, X, T, lr, batch_size, order=None) -> float:
        r"""One epoch of mini-batch gradient descent with the mean gradient of each batch.

        .. math:: w \leftarrow w - \frac{\eta}{|B|} \sum_{n \in B} \nabla E_n(w)

        ``batch_size >= n`` is full-batch gradient descent; ``batch_size=1`` equals
        :meth:`sgd_epoch`. Returns :math:`\sum_n E_n`, each batch's taken before its update
        (0.0 for an empty ``order``). On any error ``w`` is left as it was.
        """
        X, T, _ = self._check_XT(X, T)
        lr = check_lr(lr)
        batch_size = check_positive_int("batch_size", batch_size)
        order = np.arange(X.shape[0], dtype=np.intp) if order is None else check_order(order, X.shape[0])
        epochs = self._epochs(X, T, max(1, min(batch_size, order.shape[0])))
        return float(self._run_epochs(X, T, order[None, :], lr, epochs)[0])

    def fit(self, X, T, epochs=100, lr=0.01, batch_size=1, shuffle=True, progress=None, n_jobs=None,
            parallel="average"):
        """Train for ``epochs`` epochs of gradient descent; return ``self``.

        ``batch_size=1`` is on-line SGD, larger sizes mini-batch, ``>= n`` full batch. With
        ``shuffle`` each epoch visits the samples in a fresh random order drawn from
        ``random_state``. The work is cut into compiled calls of :data:`WORK_PER_CALL` weight
        visits: several epochs per call on small data (all their orders drawn up front), parts
        of an epoch on large data, so Ctrl-C is honoured within a fraction of a second.
        ``progress`` is an optional callable ``progress(n_epochs_done, loss)`` called after each
        group of whole epochs (e.g. to move a progress bar). Appends each epoch's summed error
        to ``loss_curve_``.

        ``n_jobs`` threads (scikit-learn's convention: None is 1, -1 all cores) train as
        ``parallel`` says: ``"average"`` (deterministic; mini-batches: each batch's rows split
        between the threads, the one-thread result up to rounding; per-sample SGD: parameter
        mixing over contiguous shards of each epoch) or ``"hogwild"`` (one shared ``w``, for
        mostly-zero inputs); see :class:`ParallelEpochs`. ``n_jobs=1`` is the sequential
        algorithm, bit for bit.

        A transaction: if training diverges (FloatingPointError), is interrupted
        (KeyboardInterrupt) or fails in any other way, the weights, ``loss_curve_`` and the
        random state are put back exactly as they were before this call, and the error is
        raised.
        """
        X, T, _ = self._check_XT(X, T)
        lr = check_lr(lr)
        epochs = check_positive_int("epochs", epochs)
        batch_size = check_positive_int("batch_size", batch_size)
        n = X.shape[0]
        if parallel not in ("average", "hogwild"):
            raise ValueError(f"parallel must be 'average' or 'hogwild'; got {parallel!r}")
        n_jobs = effective_n_jobs(n_jobs)
        per_call = max(1, min(epochs, work_rows(self.w.shape[0]) // n))
        n_curve, rng_state, w_before = len(self.loss_curve_), self._rng.get_state(), self.w.copy()
        runner = self._epochs(X, T, min(batch_size, n), n_jobs, parallel)
        try:
            with runner:
                self._fit_epochs(X, T, epochs, lr, per_call, shuffle, progress, runner)
        except BaseException:
            self.w[...] = w_before
            self._rng.set_state(rng_state)
            del self.loss_curve_[n_curve:]
            raise
        return self

    def _fit_epochs(self, X, T, epochs, lr, per_call, shuffle, progress, runner):
        """``epochs`` epochs of :meth:`fit`, ``per_call`` at a time (their orders drawn at once)."""
        n = X.shape[0]
        done = 0
        while done < epochs:
            k = min(per_call, epochs - done)
            if shuffle:  # k random permutations at once: argsort of uniform keys
                orders = self._rng.random_sample((k, n)).argsort(axis=1).astype(np.intp)
            else:
                orders = np.tile(np.arange(n, dtype=np.intp), (k, 1))
            try:
                losses = self._run_epochs(X, T, orders, lr, runner)
            except FloatingPointError:
                which = f"epoch {done + 1}" if k == 1 else f"epochs {done + 1}-{done + k}"
                raise FloatingPointError(
                    f"training diverged in {which} of {epochs} (the error or the weights became NaN "
                    "or infinite); the weights, loss_curve_ and random state were restored to their "
                    "values before this fit. Lower the learning rate.") from None
            self.loss_curve_.extend(float(v) for v in losses)
            done += k
            if progress is not None:
                progress(k, float(losses[-1]))

    # ----------------------------------------------------------------- persistence
    def _fields(self) -> dict:
        """The members of the model file (name -> array), as :meth:`save` writes them."""
        return dict(format=np.str_(FORMAT), version=np.int64(FORMAT_VERSION),
                    layer_sizes=np.asarray(self.layer_sizes, dtype=np.int64),
                    hidden=np.str_(self.hidden), output=np.str_(self.output),
                    loss=np.str_(self.loss_function), dtype=np.str_(self.dtype.name), w=self.w)

    def save(self, path) -> None:
        """Write weights and configuration to a ``.npz`` file, atomically (temporary file, rename)."""
        with atomic_write(path) as fh:
            np.savez(fh, **self._fields())

    @classmethod
    def load(cls, path, backend="auto") -> "MLP":
        """Read a model written by :meth:`save` (never unpickles: loading runs no code).

        The file is untrusted input: only its members are read, each checked (dtype, shape,
        sizes against ``layer_sizes`` and the file's size) before its data is read
        (:func:`deltaprop.modelfile.read_npz`). A malformed file raises ValueError naming the
        path and the problem; a missing one FileNotFoundError.
        """
        return cls._load(path, backend)[0]

    @classmethod
    def _load(cls, path, backend="auto", extra=None):
        """``(net, members)``: :meth:`load`, also reading the members ``extra`` names.

        ``extra`` maps further member names to :class:`deltaprop.modelfile.Member` (read after
        the network's own, whose arrays their shapes may depend on); ``members`` holds every
        member read, as arrays.
        """
        fields = read_npz(path, {**_MODEL_MEMBERS, **(extra or {})})
        # random_state=0: the initial draw is overwritten; never consume the global RNG's draws
        net = cls(_stored_sizes(fields), hidden=_text(fields["hidden"]), output=_text(fields["output"]),
                  loss=_text(fields["loss"]), backend=backend, dtype=_text(fields["dtype"]),
                  random_state=0)
        net.random_state, net._rng = None, check_random_state(None)  # later fits: as MLP(...)
        net.w[...] = fields["w"]
        return net, fields

    def __repr__(self):
        return (f"MLP(layer_sizes={list(self.layer_sizes)}, hidden={self.hidden!r}, "
                f"output={self.output!r}, loss={self.loss_function!r}, backend={self.backend!r}, "
                f"dtype={self.dtype.name!r})")


class Epochs:
    """Work buffers for the epoch kernels of one network, allocated once; one call runs epochs.

    ``Epochs(net, n_features, n_outputs, batch_size)(X, T, s, orders, solver, hyper, state, t,
    losses)`` runs the backend's ``sgd_epoch`` (batch_size 1: on-line, fused per sample) or
    ``batch_epoch`` on ``net.w`` in place; the arguments are those of the kernel contract
    (:mod:`deltaprop.contract`), already validated and of the network's dtype. The work is cut
    into compiled calls of about :data:`WORK_PER_CALL` weight visits: several whole epochs per
    call when an epoch is small, else consecutive parts of one epoch, each a whole number of
    batches (the same batches, in the same order, as one call: the kernels carry ``w``,
    ``state`` and ``t`` across calls, and an epoch's losses are sums over its batches). Between
    calls Python runs, so KeyboardInterrupt is raised within one call's time.
    """

    def __init__(self, net, n_features, n_outputs, batch_size):
        self.net = net
        self.batch_size = max(1, int(batch_size))
        self.codes = net._codes
        dt, B, U = net.dtype, self.batch_size, n_units(net.layout)
        # in cache lines of their own: with n_jobs threads, each thread's buffers are written
        # for every sample or batch
        self.A, self.Z, self.D = (aligned_zeros(B * U, dt) for _ in range(3))
        if B > 1:
            self.Xb = aligned_zeros(B * n_features, dt).reshape(B, n_features)
            self.Tb = aligned_zeros(B * n_outputs, dt).reshape(B, n_outputs)
            self.sb = aligned_zeros(B, dt)
            self.g = aligned_zeros(net.w.shape[0], dt)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def samples_per_call(self, solver) -> int:
        """Samples in one compiled call: :func:`work_rows`, at least one batch."""
        stateful = self.batch_size == 1 and solver != SOLVERS["sgd"]
        rows = work_rows(self.net.w.shape[0], _STATEFUL_PER_SAMPLE if stateful else 1)
        return max(self.batch_size, rows - rows % self.batch_size)

    def __call__(self, X, T, s, orders, solver, hyper, state, t, losses):
        n_epochs, m = orders.shape
        losses[:n_epochs] = 0.0
        if m == 0:
            return losses
        if sp.issparse(X):
            return self._sparse(X, T, s, orders, solver, hyper, state, t, losses)
        per_call = self.samples_per_call(solver)
        if m <= per_call:  # whole epochs, as many per call as fit
            group = max(1, per_call // m)
            for e in range(0, n_epochs, group):
                self._kernel(X, T, s, orders[e : e + group], solver, hyper, state, t,
                             losses[e : e + group])
        else:  # parts of an epoch: consecutive whole batches
            part = np.zeros((1, 2), dtype=np.float64)
            for e in range(n_epochs):
                for start in range(0, m, per_call):
                    self._kernel(X, T, s, orders[e : e + 1, start : start + per_call], solver,
                                 hyper, state, t, part)
                    losses[e] += part[0]
        return losses

    def _sparse(self, X, T, s, orders, solver, hyper, state, t, losses):
        """A CSR X, densified a chunk of the order at a time (whole batches, at most
        :data:`UNIT_ELEMENTS` values), each chunk then run as a dense epoch part."""
        B = self.batch_size
        rows = max(1, UNIT_ELEMENTS // max(1, X.shape[1]))
        rows = max(B, rows - rows % B)
        part = np.zeros((1, 2), dtype=np.float64)
        for e in range(orders.shape[0]):
            for start in range(0, orders.shape[1], rows):
                idx = orders[e, start : start + rows]
                local = np.arange(idx.shape[0], dtype=np.intp)[None, :]
                self(_dense_rows(X, idx, self.net.dtype), T[idx], s[idx], local, solver, hyper,
                     state, t, part)
                losses[e] += part[0]
        return losses

    def _kernel(self, X, T, s, orders, solver, hyper, state, t, losses):
        net, (h, f, e) = self.net, self.codes
        if self.batch_size == 1:
            net.kernels.sgd_epoch(net.w, net.layout, h, f, e, X, T, s, orders, solver, hyper, state, t,
                                  self.A, self.Z, self.D, losses)
        else:
            net.kernels.batch_epoch(net.w, net.layout, h, f, e, X, T, s, orders, self.batch_size, solver,
                                    hyper, state, t, self.Xb, self.Tb, self.sb, self.A, self.Z, self.D,
                                    self.g, losses)


class SplitEpochs(Epochs):
    r"""Mini-batch epochs on ``n_jobs`` threads, each batch's rows split between them (data
    parallelism): the same call as :class:`Epochs`, running the contract's ``split_epochs``.

    For every batch, thread j sums the gradient of its share of the rows; the threads meet at
    a barrier in compiled code, each sums its slice of the J gradients (in thread order) and
    updates that slice of ``w`` and of the optimizer state, and they meet again. This is the
    one-thread algorithm, ``batch_epoch``, with each batch's gradient summed in another order:
    no accuracy is lost, and the result is deterministic for a given ``n_jobs``. ``threads``
    (a running :class:`~deltaprop.parallel.Threads`) is set by the caller before a call.
    """

    def __init__(self, net, n_features, n_outputs, batch_size, n_jobs):
        self.net = net
        self.batch_size = max(1, int(batch_size))
        self.codes = net._codes
        self.threads = None
        self.J = J = max(1, min(effective_n_jobs(n_jobs), self.batch_size))
        dt, P, U = net.dtype, net.w.shape[0], n_units(net.layout)
        b = -(-self.batch_size // J)  # a thread's rows of a batch, at most
        self.Xb = aligned_zeros(J * b * n_features, dt).reshape(J, b, n_features)
        self.Tb = aligned_zeros(J * b * n_outputs, dt).reshape(J, b, n_outputs)
        self.sb, self.A, self.Z, self.D = (_thread_rows(J, size, dt) for size in (b, b * U, b * U, b * U))
        self.G = _thread_rows(J, P, dt)
        self.g = aligned_zeros(P, dt)
        self.steps = _thread_rows(J, 1, np.int64)
        self.sync = aligned_zeros(3 * 8, np.int64).reshape(3, 8)

    def samples_per_call(self, solver) -> int:
        """J threads each take a call's worth of :class:`Epochs`' work."""
        return self.J * super().samples_per_call(solver)

    def _kernel(self, X, T, s, orders, solver, hyper, state, t, losses):
        net, J = self.net, self.J
        parts = np.zeros((J, orders.shape[0], 2))
        self.sync[...] = 0

        def part(j):
            net.kernels.split_epochs(j, net.w, net.layout, *self.codes, X, T, s, orders, self.batch_size,
                                     solver, hyper, state, t, self.steps, self.Xb, self.Tb, self.sb,
                                     self.A, self.Z, self.D, self.G, self.g, parts, self.sync)

        self.threads.run(part, range(J), abort=lambda: self.sync.__setitem__((2, 0), 1))
        losses[...] = parts[0]
        for more in parts[1:]:
            losses += more


class ParallelEpochs:
    r"""Epochs on ``n_jobs`` threads: the same call as :class:`Epochs`, for any batch size.

    ``mode`` says how the threads share the weights:

    ``"average"``, mini-batches (``batch_size`` > 1): the threads average their gradients
        Each batch's rows are split between the threads and their gradients summed, every
        batch (:class:`SplitEpochs`): the one-thread algorithm, with each batch's gradient
        summed in another order, so ``n_jobs`` changes neither the steps per epoch nor the
        accuracy (averaging parameters after rounds of several batches would halve the steps).
    ``"average"``, per-sample SGD: iterative parameter mixing, local SGD
        Each epoch's order is cut into ``n_jobs`` contiguous shards, shard j visited by thread
        j in its order. Every thread starts a round from the same ``w`` (and optimizer
        state), runs one work-sized call (:meth:`Epochs.samples_per_call` samples) of its
        shard on its own copy, and the copies are averaged,
        :math:`w \leftarrow \frac{1}{J} \sum_j w_j` (the optimizer state likewise; Adam's step
        counter advances by one thread's steps). Rounds repeat until the epoch is done, so the
        copies meet at least once per epoch and every ~10-40 ms of work. Deterministic for a
        given ``n_jobs``. Epochs whose shards fit in one round run as one ``average_epochs``
        call per thread instead: the threads meet at a barrier in compiled code, so an epoch
        costs no Python and no thread wake-up (the same rounds, with the Python rounds'
        results bit for bit).
    ``"hogwild"`` (Niu et al. 2011)
        Every thread updates the one shared ``w`` without locks, a call at a time, on its
        shard; it pays off when updates touch few weights (inputs that are mostly zero, whose
        rows the kernels skip). Not deterministic: updates race.

    The epoch's losses are the sums of the threads' (each taken before its own updates).
    """

    def __init__(self, net, n_features, n_outputs, batch_size, n_jobs, mode="average"):
        if mode not in ("average", "hogwild"):
            raise ValueError(f"parallel must be 'average' or 'hogwild'; got {mode!r}")
        self.net, self.mode = net, mode
        self.batch_size = max(1, int(batch_size))
        self.n_jobs = effective_n_jobs(n_jobs)
        self._threads = None
        # mini-batches with mode average: each batch's rows split between the threads
        self.split = (SplitEpochs(net, n_features, n_outputs, batch_size, n_jobs)
                      if mode == "average" and self.batch_size > 1 else None)
        if self.split is not None:
            return
        nets = [net] * self.n_jobs if mode == "hogwild" else [net._replica() for _ in range(self.n_jobs)]
        self.epochs = [Epochs(r, n_features, n_outputs, batch_size) for r in nets]
        # each thread's optimizer state (2, P), step count and loss sums (the contract's shapes),
        # in cache lines of their own: the kernels write them for every sample
        P, J = net.w.shape[0], len(self.epochs)
        self.states = [aligned_zeros(2 * P, net.dtype).reshape(2, P) for _ in range(J)]
        self.steps = [aligned_zeros(1, np.int64) for _ in range(J)]
        self.parts = [aligned_zeros(2, np.float64).reshape(1, 2) for _ in range(J)]
        self._mix = None  # average_epochs' buffers, allocated at their first use

    def __enter__(self):
        """Keep the threads (and BLAS's one-thread limit) until :meth:`__exit__`."""
        self._threads = Threads(self.n_jobs).__enter__()
        return self

    def __exit__(self, *exc):
        threads, self._threads = self._threads, None
        return threads.__exit__(*exc)

    def samples_per_call(self, solver) -> int:
        return (self.split or self.epochs[0]).samples_per_call(solver)

    def __call__(self, X, T, s, orders, solver, hyper, state, t, losses):
        if self._threads is None:
            with self:
                return self(X, T, s, orders, solver, hyper, state, t, losses)
        if self.split is not None:
            self._threads.stop.clear()
            self.split.threads = self._threads
            return self.split(X, T, s, orders, solver, hyper, state, t, losses)
        n_epochs, m = orders.shape
        losses[:n_epochs] = 0.0
        bounds = shard_bounds(m, self.n_jobs, self.batch_size)
        per_call = self.samples_per_call(solver)
        run = self._hogwild if self.mode == "hogwild" else self._average
        if self.mode == "hogwild" and solver == SGD and hyper[ALPHA] != 0:
            # sgd with L2 keeps the first layer as c V (the decay in a scalar per call), which
            # threads sharing V cannot: momentum with mu = 0 is the same update, done directly
            solver, hyper = MOMENTUM, hyper.copy()
            hyper[MU] = 0
        self._threads.stop.clear()
        if (self.mode == "average" and self.batch_size == 1 and len(bounds) > 1
                and not sp.issparse(X) and _rounds(bounds, per_call) == 1):
            self._mixed(self._threads, X, T, s, orders, bounds, solver, hyper, state, t, losses)
            return losses
        for e in range(n_epochs):
            run(self._threads, X, T, s, orders[e : e + 1], bounds, per_call, solver, hyper, state, t,
                losses[e])
        return losses

    def _mixed(self, threads, X, T, s, orders, bounds, solver, hyper, state, t, losses):
        """Every epoch of ``orders`` as one round each, in one ``average_epochs`` call per
        thread. A thread that fails (or a Ctrl-C before the main thread's call) sets the abort
        flag, so no thread waits at the barrier for it."""
        net, J, n_epochs = self.net, len(bounds), orders.shape[0]
        if self._mix is None:
            self._mix = _mixing_buffers(net, self.n_jobs)
        mix = self._mix
        mix.sync[...] = 0
        parts = np.zeros((J, n_epochs, 2))
        edges = np.asarray(bounds, dtype=np.intp)
        codes = net._codes

        def part(j):
            net.kernels.average_epochs(j, net.w, mix.W[:J], net.layout, *codes, X, T, s, orders, edges,
                                       solver, hyper, state, mix.S[:J], t, mix.steps[:J], mix.a[:J],
                                       mix.z[:J], mix.delta[:J], parts, mix.sync)

        threads.run(part, range(J), abort=lambda: mix.sync.__setitem__((2, 0), 1))
        for e in range(n_epochs):
            for j in range(J):
                losses[e] += parts[j, e]

    def _average(self, threads, X, T, s, order, bounds, per_call, solver, hyper, state, t, loss):
        w = self.net.w
        stateful = solver != SGD  # plain sgd keeps no optimizer state: nothing to mix
        states = self.states if stateful else [state] * len(self.states)
        steps, parts = self.steps, self.parts
        done = [a for a, _ in bounds]
        longest = max(b - a for a, b in bounds)
        rounds = _rounds(bounds, per_call)
        B = self.batch_size
        step = -(-longest // rounds)
        step = -(-step // B) * B

        def shard(j):
            a, b = done[j], min(done[j] + step, bounds[j][1])
            if a >= b:
                return False
            ep = self.epochs[j]
            ep.net.w[...] = w
            if stateful:
                states[j][...] = state
            steps[j][...] = t
            ep(X, T, s, order[:, a:b], solver, hyper, states[j], steps[j], parts[j])
            done[j] = b
            return True

        while any(d < b for d, (_, b) in zip(done, bounds)):
            worked = [j for j, ok in enumerate(threads.run(shard, range(len(bounds)))) if ok]
            _mean([self.epochs[j].net.w for j in worked], w)
            if stateful:
                _mean([states[j] for j in worked], state)
            t[...] = max(steps[j][0] for j in worked)
            for j in worked:
                loss += parts[j][0]

    def _hogwild(self, threads, X, T, s, order, bounds, per_call, solver, hyper, state, t, loss):
        parts = self.parts
        sums = [np.zeros(2) for _ in bounds]

        def shard(j):
            a, b = bounds[j]
            for start in range(a, b, per_call):
                if threads.stop.is_set():
                    return
                self.epochs[j](X, T, s, order[:, start : min(b, start + per_call)], solver, hyper,
                               state, t, parts[j])
                sums[j] += parts[j][0]

        threads.run(shard, range(len(bounds)))
        for part in sums:
            loss += part


def _rounds(bounds, per_call) -> int:
    """Rounds per epoch in parameter mixing: of about ``per_call`` samples, of equal length (no
    short last round); the longest shard sets the length, so shards one sample apart end in the
    same round."""
    return max(1, round(max(b - a for a, b in bounds) / per_call))


def _mixing_buffers(net, J):
    """``average_epochs``' per-thread arrays for J threads: copies of w (W) and of the optimizer
    state (S), step counts and unit buffers, each thread's row in cache lines of its own; and
    the barrier's counters, a cache line per row."""
    dt, P, U = net.dtype, net.w.shape[0], n_units(net.layout)
    return types.SimpleNamespace(
        W=_thread_rows(J, P, dt), S=_thread_rows(J, 2 * P, dt), steps=_thread_rows(J, 1, np.int64),
        a=_thread_rows(J, U, dt), z=_thread_rows(J, U, dt), delta=_thread_rows(J, U, dt),
        sync=aligned_zeros(3 * 8, np.int64).reshape(3, 8))


def _thread_rows(J, width, dtype) -> np.ndarray:
    """A zeroed (J, ≥width) array of ``dtype``: a row per thread, each in cache lines of its own."""
    line = ALIGNMENT // np.dtype(dtype).itemsize
    width = max(1, -(-width // line)) * line
    return aligned_zeros(J * width, dtype).reshape(J, width)


def _mean(arrays, out):
    """``out[...] = (arrays[0] + arrays[1] + ...) / len(arrays)``, summed in list order."""
    np.add(arrays[0], arrays[1], out=out) if len(arrays) > 1 else np.copyto(out, arrays[0])
    for a in arrays[2:]:
        out += a
    if len(arrays) > 1:
        out /= len(arrays)


def _check_finite(losses, w):
    """FloatingPointError if an epoch's error or a weight is NaN or infinite (divergence)."""
    if not (np.isfinite(losses).all() and np.isfinite(w).all()):
        raise FloatingPointError(
            "training diverged (the error or the weights became NaN or infinite); the weights "
            "were restored to their values before this call. Lower the learning rate.")


# --------------------------------------------------------------------------- the model file
#: Sanity limits of a model file, checked in Python ints before anything is allocated (a file is
#: also bounded by its own size: its weight vector cannot be larger than the bytes holding it).
MAX_LAYERS = 1024
MAX_PARAMS = 2**28


def _text(value) -> str:
    return str(value[()])


def _stored_sizes(fields) -> list:
    return [int(s) for s in fields["layer_sizes"].tolist()]


def _param_count(sizes) -> int:
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))


def _check_format(value, fields):
    if _text(value) != FORMAT:
        raise ValueError(f"not a deltaprop model file (format marker {_text(value)!r}, expected {FORMAT!r})")


def _check_version(value, fields):
    if int(value[()]) != FORMAT_VERSION:
        raise ValueError(f"model file version {int(value[()])} is not supported "
                         f"(this deltaprop reads version {FORMAT_VERSION})")


def _check_layer_sizes(value, fields):
    sizes = [int(s) for s in value.tolist()]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"layer_sizes must be at least 2 positive integers; got {sizes}")
    if _param_count(sizes) > MAX_PARAMS:
        raise ValueError(f"layer_sizes {sizes} describe {_param_count(sizes)} parameters; "
                         f"at most {MAX_PARAMS} are loaded")


def _check_stored_config(value, fields):
    """On ``dtype``, the last member before ``w``: the whole configuration, before ``w`` is read."""
    check_config(_stored_sizes(fields), _text(fields["hidden"]), _text(fields["output"]),
                 _text(fields["loss"]), _text(value))


def _check_weights(value, fields):
    expected = np.dtype(_text(fields["dtype"]))
    if value.dtype.itemsize != expected.itemsize:
        raise ValueError(f"member 'w' has dtype {value.dtype}, but the file's dtype is {expected}")
    if not np.isfinite(value).all():
        raise ValueError("member 'w' (the weights) contains NaN or infinity")


#: The members of a model file, in the order they are read and checked.
_MODEL_MEMBERS = {
    "format": Member("U", 0, max_chars=64, check=_check_format),
    "version": Member("iu", 0, check=_check_version),
    "layer_sizes": Member("iu", 1, max_size=MAX_LAYERS, check=_check_layer_sizes),
    "hidden": Member("U", 0, max_chars=64),
    "output": Member("U", 0, max_chars=64),
    "loss": Member("U", 0, max_chars=64),
    "dtype": Member("U", 0, max_chars=64, check=_check_stored_config),
    "w": Member("f", 1, shape=lambda fields: (_param_count(_stored_sizes(fields)),), check=_check_weights),
}
