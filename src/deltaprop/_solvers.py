r"""The estimators' compute: kernel calls over the rows of X, in chunks when X is sparse.

Design
------
Everything here works on a :class:`deltaprop.MLP` (flat ``w`` + ``layout`` + ``kernels``) and
plain arrays: ``X`` dense C-contiguous or scipy CSR, ``T`` (n, K) targets, ``s`` (n,) sample
weights, all of the network's dtype. A dense X goes to the kernels whole: one ``batch_epoch``
(or ``sgd_epoch`` for ``batch_size=1``) call per epoch. A sparse X is densified a chunk of rows
at a time (:data:`CHUNK_ELEMENTS` dense values at most, a whole number of batches), and the
kernel runs once per chunk with the optimiser state carried over, which is the same
computation: batches are consecutive runs of the epoch's order either way.

The estimators report losses as scikit-learn does; :class:`Objective` holds the conversion
from the kernels' summed error E to scikit-learn's numbers (half squared error averaged over
the outputs, half Poisson deviance with its constant terms).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import xlogy

from .contract import ACTIVATIONS, HYPER, LOSSES, SOLVERS, layer_units, n_units
from .engine import Epochs, rollback, work_rows

__all__ = ["CHUNK_ELEMENTS", "Objective", "Optimizer", "EpochRunner", "forward", "evaluate",
           "LossGradient"]

#: at most this many dense values per densified chunk of a sparse X (8 MB in float64)
CHUNK_ELEMENTS = 1 << 20
#: rows per forward-pass chunk bound: unit buffers of at most this many values
_UNIT_ELEMENTS = 1 << 22

ETA = HYPER.index("eta")


def chunk_rows(n_cols: int, multiple: int = 1, budget: int = CHUNK_ELEMENTS) -> int:
    """Rows per chunk: ``budget // n_cols`` rounded down to a multiple of ``multiple`` (>= it)."""
    rows = max(1, budget // max(1, n_cols))
    return max(multiple, rows - rows % multiple)


def dense_rows(X, rows, dtype):
    """Rows ``rows`` (slice or index array) of X as a dense C-contiguous array of ``dtype``."""
    part = X[rows]
    if sp.issparse(part):
        part = part.toarray()
    return np.ascontiguousarray(part, dtype=dtype)


def kernel_input(X, dtype):
    """X as the kernels take it: CSR stays sparse; dense becomes C-contiguous and writeable.

    Writeable because numba compiles a separate specialisation for read-only arrays (and
    Cython's memoryviews reject them); the copy is made only when X is read-only.
    """
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=dtype)
    return np.require(X, dtype=dtype, requirements=["C", "W"])


def weight_slices(layout):
    """Slices of the weights (not the biases) of every layer in the flat vector."""
    return [slice(int(w_off), int(w_off + n_in * n_out)) for n_in, n_out, w_off, _, _ in layout]


def squared_weights(w, slices) -> float:
    r""":math:`\lVert W \rVert^2` over every layer's weights (biases excluded)."""
    return float(sum(np.dot(w[sl], w[sl]) for sl in slices))


class Objective:
    r"""scikit-learn's loss reporting for one loss function.

    The kernels return :math:`E = \sum_n s_n E_n` with :math:`E_n` summed over the outputs
    (half squared error, binary / categorical cross-entropy, Poisson :math:`y - t \ln y`).
    scikit-learn reports the squared error averaged over the K outputs (``scale = K``) and the
    Poisson deviance with the constant :math:`c_n = \sum_k t_{nk} \ln t_{nk} - t_{nk}`.
    """

    def __init__(self, loss: str, T: np.ndarray):
        self.scale = T.shape[1] if loss == "squared_error" else 1
        self.const = (xlogy(T, T) - T).sum(axis=1) if loss == "poisson" else None

    def data(self, E_sum_over_batches: float) -> float:
        return E_sum_over_batches / self.scale

    def epoch_const(self, s, order, batch_size) -> float:
        r""":math:`\sum_B |B| \sum_{n \in B} s_n c_n / S_B`, the Poisson constant of one epoch."""
        if self.const is None:
            return 0.0
        ss = s[order]
        cs = (s * self.const)[order]
        starts = np.arange(0, order.shape[0], batch_size)
        S = np.add.reduceat(ss, starts)
        C = np.add.reduceat(cs, starts)
        sizes = np.diff(np.append(starts, order.shape[0]))
        keep = S != 0
        return float(np.sum(sizes[keep] * C[keep] / S[keep]))

    def batch_const(self, s, rows=slice(None)) -> float:
        r""":math:`\sum_n s_n c_n` over ``rows`` (the Poisson constant of one full batch)."""
        if self.const is None:
            return 0.0
        return float(np.dot(s[rows], self.const[rows]))


class Optimizer:
    r"""The stochastic solver's state, carried across epochs and ``partial_fit`` calls.

    ``solver`` is ``"sgd"`` or ``"adam"``; for sgd the kernel rule is plain sgd when
    ``momentum == 0`` (scikit-learn's :math:`v \leftarrow 0 \cdot v - \eta g` is the same
    update), else Nesterov or classical momentum. ``learning_rate`` follows scikit-learn's
    schedules: ``invscaling`` sets :math:`\eta = \eta_0 / (t + 1)^{p}` at the end of each epoch
    (t counts samples), ``adaptive`` divides it by 5 when training stalls.
    """

    def __init__(self, solver, n_params, dtype, learning_rate_init, lr_schedule="constant",
                 momentum=0.9, nesterov=True, power_t=0.5, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 alpha=0.0):
        self.solver = solver
        if solver == "adam":
            rule = "adam"
        elif momentum > 0:
            rule = "nesterov" if nesterov else "momentum"
        else:
            rule = "sgd"
        self.code = SOLVERS[rule]
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule if solver == "sgd" else "constant"
        self.power_t = power_t
        self.hyper = np.array([learning_rate_init, alpha, momentum, beta_1, beta_2, epsilon],
                              dtype=dtype)
        self.state = np.zeros((2, n_params), dtype=dtype)
        self.t = np.zeros(1, dtype=np.int64)

    def copy(self) -> "Optimizer":
        new = object.__new__(Optimizer)
        new.__dict__.update(self.__dict__)
        new.hyper, new.state, new.t = self.hyper.copy(), self.state.copy(), self.t.copy()
        return new

    def prepare(self):
        """Write the current learning rate into ``hyper`` before an epoch."""
        self.hyper[ETA] = self.learning_rate

    def iteration_ends(self, time_step: int) -> None:
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg: str, verbose) -> bool:
        """scikit-learn's rule: stop, unless the adaptive schedule can still divide η by 5."""
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class EpochRunner:
    """One epoch through the engine's :class:`Epochs` (per chunk of a sparse X).

    An epoch is a transaction: if it raises (KeyboardInterrupt included), the weights and the
    optimizer state are put back as they were when it started, so an interrupted fit keeps
    its last whole epoch.
    """

    def __init__(self, net, X, T, s, batch_size: int):
        self.net, self.X, self.T, self.s = net, X, T, s
        self.sparse = sp.issparse(X)
        self.epochs = Epochs(net, X.shape[1], T.shape[1], batch_size)
        self.losses = np.zeros((1, 2), dtype=np.float64)
        self.rows = chunk_rows(X.shape[1], batch_size) if self.sparse else None

    def _call(self, X, T, s, order, opt):
        self.epochs(X, T, s, order, opt.code, opt.hyper, opt.state, opt.t, self.losses)
        return self.losses[0, 0], self.losses[0, 1]

    def run(self, order: np.ndarray, opt: Optimizer):
        """One epoch over ``order`` (m,) intp; returns the kernels' (data, penalty) sums."""
        opt.prepare()
        with rollback(self.net.w, opt.state, opt.t):
            return self._run(order, opt)

    def _run(self, order, opt):
        if not self.sparse:
            return self._call(self.X, self.T, self.s, order[None, :], opt)
        data = penalty = 0.0
        for start in range(0, order.shape[0], self.rows):
            idx = order[start : start + self.rows]
            Xc = dense_rows(self.X, idx, self.net.dtype)
            local = np.arange(idx.shape[0], dtype=np.intp)[None, :]
            d, p = self._call(Xc, self.T[idx], self.s[idx], local, opt)
            data += d
            penalty += p
        return data, penalty


def _chunks(n, U, D, sparse, P):
    """Row ranges of X per kernel call: bounded by buffer size and by the engine's work per call."""
    rows = min(chunk_rows(U, 1, _UNIT_ELEMENTS), max(256, work_rows(P)))
    if sparse:
        rows = min(rows, chunk_rows(D))
    return [(start, min(n, start + rows)) for start in range(0, n, rows)] or [(0, 0)]


def forward(net, X, pre_activation=False):
    """Network outputs y (n, K) of X (dense or CSR), and the output pre-activations if asked."""
    n, D = X.shape
    K = net.layer_sizes[-1]
    U = n_units(net.layout)
    h, f = ACTIVATIONS[net.hidden], ACTIVATIONS[net.output]
    sparse = sp.issparse(X)
    chunks = _chunks(n, U, D, sparse, net.w.shape[0])
    rows = max(stop - start for start, stop in chunks)
    A = np.empty(rows * U, dtype=net.dtype)
    Z = np.empty(rows * U, dtype=net.dtype)
    Y = np.empty((n, K), dtype=net.dtype)
    Apre = np.empty((n, K), dtype=net.dtype) if pre_activation else None
    for start, stop in chunks:
        m = stop - start
        Xc = dense_rows(X, slice(start, stop), net.dtype) if sparse or chunks[1:] else X
        net.kernels.forward(net.w, net.layout, h, f, Xc, A[: m * U], Z[: m * U])
        Y[start:stop] = layer_units(Z[: m * U], net.layout, -1, m)
        if pre_activation:
            Apre[start:stop] = layer_units(A[: m * U], net.layout, -1, m)
    return (Y, Apre) if pre_activation else Y


def evaluate(net, X, T, s):
    r"""Outputs y (n, K) and the summed error :math:`E = \sum_n s_n E_n` of X, T, s."""
    n, D = X.shape
    K = net.layer_sizes[-1]
    U = n_units(net.layout)
    h, f, e = ACTIVATIONS[net.hidden], ACTIVATIONS[net.output], LOSSES[net.loss_function]
    sparse = sp.issparse(X)
    chunks = _chunks(n, U, D, sparse, net.w.shape[0])
    rows = max(stop - start for start, stop in chunks)
    A, Z, Dl = (np.empty(rows * U, dtype=net.dtype) for _ in range(3))
    Y = np.empty((n, K), dtype=net.dtype)
    E = 0.0
    for start, stop in chunks:
        m = stop - start
        Xc = dense_rows(X, slice(start, stop), net.dtype) if sparse or chunks[1:] else X
        net.kernels.forward(net.w, net.layout, h, f, Xc, A[: m * U], Z[: m * U])
        E += float(net.kernels.output_delta(net.layout, f, e, A[: m * U], Z[: m * U],
                                            T[start:stop], s[start:stop], Dl[: m * U]))
        Y[start:stop] = layer_units(Z[: m * U], net.layout, -1, m)
    return Y, E


class LossGradient:
    r"""Loss and gradient of the full-batch objective for L-BFGS, on the flat vector.

    .. math:: F(w) = \frac{1}{S} \Big( \sum_n s_n E_n(w) + \frac{\alpha}{2} \lVert W \rVert^2 \Big),
              \qquad \nabla F = \frac{1}{S} \Big( \sum_n s_n \nabla E_n + \alpha W \Big)

    with :math:`S = \sum_n s_n`, from the forward / output_delta / backprop / gradient kernels
    (chunked over the rows of X). :math:`E_n` sums the outputs, so F and its gradient belong
    together for every number of outputs (scikit-learn#8349: scikit-learn pairs this gradient
    with a loss averaged over the outputs). ``reported(w)`` gives scikit-learn's ``loss_``.
    """

    def __init__(self, net, X, T, s, alpha, objective: Objective):
        self.net, self.X, self.T, self.s = net, X, T, s
        self.alpha = alpha
        self.objective = objective
        self.S = float(s.sum(dtype=np.float64))
        n, D = X.shape
        self.U = n_units(net.layout)
        self.sparse = sp.issparse(X)
        self.chunks = _chunks(n, self.U, D, self.sparse, net.w.shape[0])
        rows = max(stop - start for start, stop in self.chunks)
        self.A, self.Z, self.Dl = (np.empty(rows * self.U, dtype=net.dtype) for _ in range(3))
        self.g = np.empty_like(net.w)
        self.gsum = np.empty(net.w.shape[0], dtype=np.float64)
        self.wslices = weight_slices(net.layout)
        self.const = objective.batch_const(s)
        self.codes = (ACTIVATIONS[net.hidden], ACTIVATIONS[net.output], LOSSES[net.loss_function])
        self.last = None  # (x, E, ||W||^2) of the latest evaluation

    def _data_and_gradient(self):
        net, k = self.net, self.net.kernels
        h, f, e = self.codes
        U = self.U
        E = 0.0
        self.gsum[...] = 0.0
        for start, stop in self.chunks:
            m = stop - start
            if self.sparse or self.chunks[1:]:
                Xc = dense_rows(self.X, slice(start, stop), net.dtype)
            else:
                Xc = self.X
            A, Z, Dl = self.A[: m * U], self.Z[: m * U], self.Dl[: m * U]
            k.forward(net.w, net.layout, h, f, Xc, A, Z)
            E += float(k.output_delta(net.layout, f, e, A, Z, self.T[start:stop],
                                      self.s[start:stop], Dl))
            k.backprop(net.w, net.layout, h, A, Z, Dl)
            k.gradient(net.layout, Xc, Z, Dl, self.g)
            self.gsum += self.g
        return E

    def __call__(self, x):
        w = self.net.w
        w[...] = x
        E = self._data_and_gradient()
        sq = squared_weights(w, self.wslices)
        for sl in self.wslices:
            self.gsum[sl] += self.alpha * w[sl]
        self.last = (np.array(x, dtype=np.float64), E, sq)
        F = (E + self.const + 0.5 * self.alpha * sq) / self.S
        return F, self.gsum / self.S

    def reported(self, x) -> float:
        """scikit-learn's ``loss_`` at ``x``: outputs averaged for squared error, + penalty."""
        if self.last is None or not np.array_equal(self.last[0], x):
            self(x)
        _, E, sq = self.last
        return (self.objective.data(E) + self.const + 0.5 * self.alpha * sq) / self.S
