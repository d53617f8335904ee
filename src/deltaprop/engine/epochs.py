r"""Epoch runners: their interface, and epochs of gradient descent on the calling thread.

Every runner is called the same way, with the kernel contract's arguments
(:mod:`deltaprop.contract`: already validated, of the network's dtype)::

    runner(X, T, s, orders, solver, hyper, state, t, losses) -> losses

and runs the ``orders.shape[0]`` epochs of ``orders`` on ``runner.net.w`` in place. The work
is cut into compiled calls of about :data:`~deltaprop.engine.buffers.WORK_PER_CALL` weight
visits, with Python between them, so KeyboardInterrupt is raised within one call's time. A
runner is a context manager: one on threads keeps its pool (and BLAS held to one thread) from
``__enter__`` to ``__exit__``; called outside a ``with`` block it starts a pool for the call.

=========================  ======================================  ==============================
runner                     algorithm                               chosen for
=========================  ======================================  ==============================
:class:`OneThreadEpochs`   on-line (per-sample) or mini-batch      ``n_jobs=1``
                           gradient descent
``SplitBatchEpochs``       each batch's rows split between the     ``parallel="average"``,
                           threads (data parallelism)              ``batch_size`` > 1
``MixingEpochs``           iterative parameter mixing (local SGD)  ``parallel="average"``,
                                                                   ``batch_size=1``
``HogwildEpochs``          Hogwild: one shared ``w``, no locks     ``parallel="hogwild"``
=========================  ======================================  ==============================

The runners on threads live in :mod:`deltaprop.engine.parallel_epochs`, with the table that
picks one (``RUNNERS``, ``choose_runner``): the public ``parallel="average"`` names two
algorithms, both deterministic for a given ``n_jobs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp

from ..contract import SGD
from ..layout import n_units
from .buffers import STATEFUL_PER_SAMPLE, aligned_empty, dense_rows, densified_rows, work_rows

if TYPE_CHECKING:
    from .mlp import MLP

__all__ = ["Epochs", "OneThreadEpochs"]


class Epochs:
    """The interface of every epoch runner; ``MLP.epoch_runner`` makes the one a task needs.

    Attributes
    ----------
    net : MLP
        The network whose ``w`` the epochs update in place.
    batch_size : int
        Samples per update B (1: on-line gradient descent).
    """

    net: MLP
    batch_size: int

    def __enter__(self) -> Epochs:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        return False

    def samples_per_call(self, solver: int) -> int:
        """Samples of an epoch's order handled by one compiled call (or one round of calls).

        Parameters
        ----------
        solver : int
            Code of the update rule (``deltaprop.contract.SOLVERS``).

        Returns
        -------
        int
            At least one batch.
        """
        raise NotImplementedError

    def __call__(self, X: np.ndarray | sp.csr_matrix, T: np.ndarray, s: np.ndarray, orders: np.ndarray,
                 solver: int, hyper: np.ndarray, state: np.ndarray, t: np.ndarray,
                 losses: np.ndarray) -> np.ndarray:
        r"""Run the epochs of ``orders`` on ``net.w``, in place.

        Parameters
        ----------
        X : ndarray (n, D) or csr_matrix
            Inputs, as :func:`~deltaprop.engine.kernel_input` makes them.
        T : ndarray (n, K)
            Targets.
        s : ndarray (n,)
            Sample weights :math:`s_n`.
        orders : ndarray (n_epochs, m) of intp
            Each epoch's visiting order (row indices of X).
        solver : int
            Update rule (``deltaprop.contract.SOLVERS``).
        hyper : ndarray (6,)
            :math:`(\eta, \alpha, \mu, \beta_1, \beta_2, \epsilon)`
            (:func:`deltaprop.contract.make_hyper`).
        state : ndarray (2, P)
            Optimizer state (velocity; Adam's two moments), carried across calls.
        t : ndarray (1,) of int64
            Step counter (Adam), carried across calls.
        losses : ndarray (>= n_epochs, 2) of float64
            Receives each epoch's :math:`\sum_n s_n E_n` (each batch's taken before its update)
            and its L2 penalty.

        Returns
        -------
        ndarray
            ``losses``.
        """
        raise NotImplementedError


class OneThreadEpochs(Epochs):
    """Epochs on the calling thread: the backend's ``sgd_epoch`` (B = 1, on-line, fused per
    sample) or ``batch_epoch`` (mini-batches), with work buffers allocated once.

    The work is cut into compiled calls: several whole epochs per call when an epoch is small,
    else consecutive parts of one epoch, each a whole number of batches (the same batches, in the
    same order, as one call: the kernels carry ``w``, ``state`` and ``t`` across calls, and an
    epoch's losses are sums over its batches).

    Parameters
    ----------
    net : MLP
        The network to train.
    n_features, n_outputs : int
        D and K, for the batch buffers.
    batch_size : int
        Samples per update B, at least 1.
    """

    codes: tuple[int, int, int]
    #: unit buffers (B * U,) and, for B > 1, a batch's inputs, targets, weights and gradient
    A: np.ndarray
    Z: np.ndarray
    D: np.ndarray
    Xb: np.ndarray
    Tb: np.ndarray
    sb: np.ndarray
    g: np.ndarray

    def __init__(self, net: MLP, n_features: int, n_outputs: int, batch_size: int) -> None:
        self.net = net
        self.batch_size = batch_size
        self.codes = net._codes
        dt, B, U = net.dtype, batch_size, n_units(net.layout)
        # in cache lines of their own: with n_jobs threads, each thread's buffers are written
        # for every sample or batch; the kernels write each before they read it (outputs only)
        self.A, self.Z, self.D = (aligned_empty(B * U, dt) for _ in range(3))
        if B > 1:
            self.Xb = aligned_empty(B * n_features, dt).reshape(B, n_features)
            self.Tb = aligned_empty(B * n_outputs, dt).reshape(B, n_outputs)
            self.sb = aligned_empty(B, dt)
            self.g = aligned_empty(net.w.shape[0], dt)

    def samples_per_call(self, solver: int) -> int:
        """:func:`~deltaprop.engine.buffers.work_rows`, a whole number of batches (at least one).

        Parameters
        ----------
        solver : int
            Update rule; per-sample rules that keep state cost :data:`STATEFUL_PER_SAMPLE` times more.

        Returns
        -------
        int
            Samples per compiled call.
        """
        stateful = self.batch_size == 1 and solver != SGD
        rows = work_rows(self.net.w.shape[0], STATEFUL_PER_SAMPLE if stateful else 1)
        return max(self.batch_size, rows - rows % self.batch_size)

    def __call__(self, X: np.ndarray | sp.csr_matrix, T: np.ndarray, s: np.ndarray, orders: np.ndarray,
                 solver: int, hyper: np.ndarray, state: np.ndarray, t: np.ndarray,
                 losses: np.ndarray) -> np.ndarray:
        n_epochs, m = orders.shape
        losses[:n_epochs] = 0.0
        if m == 0:
            return losses
        if sp.issparse(X):
            return self._sparse(X, T, s, orders, solver, hyper, state, t, losses)
        per_call = self.samples_per_call(solver)
        if m <= per_call:  # whole epochs, as many per call as fit
            group = max(1, per_call // m)
            for epoch in range(0, n_epochs, group):
                self._kernel(X, T, s, orders[epoch : epoch + group], solver, hyper, state, t,
                             losses[epoch : epoch + group])
        else:  # parts of an epoch: consecutive whole batches
            part = np.zeros((1, 2), dtype=np.float64)
            for epoch in range(n_epochs):
                for start in range(0, m, per_call):
                    self._kernel(X, T, s, orders[epoch : epoch + 1, start : start + per_call], solver,
                                 hyper, state, t, part)
                    losses[epoch] += part[0]
        return losses

    def _sparse(self, X: sp.csr_matrix, T: np.ndarray, s: np.ndarray, orders: np.ndarray, solver: int,
                hyper: np.ndarray, state: np.ndarray, t: np.ndarray, losses: np.ndarray) -> np.ndarray:
        """A CSR X, densified a chunk of the order at a time (whole batches, at most
        :data:`~deltaprop.engine.buffers.UNIT_ELEMENTS` values), each chunk run as a dense epoch part."""
        B = self.batch_size
        rows = densified_rows(X.shape[1])
        rows = max(B, rows - rows % B)
        part = np.zeros((1, 2), dtype=np.float64)
        for epoch in range(orders.shape[0]):
            for start in range(0, orders.shape[1], rows):
                idx = orders[epoch, start : start + rows]
                local = np.arange(idx.shape[0], dtype=np.intp)[None, :]
                self(dense_rows(X, idx, self.net.dtype), T[idx], s[idx], local, solver, hyper,
                     state, t, part)
                losses[epoch] += part[0]
        return losses

    def _kernel(self, X: np.ndarray, T: np.ndarray, s: np.ndarray, orders: np.ndarray, solver: int,
                hyper: np.ndarray, state: np.ndarray, t: np.ndarray, losses: np.ndarray) -> None:
        """One compiled call: the epochs (or epoch part) of ``orders`` on a dense X."""
        net = self.net
        if self.batch_size == 1:
            net._kernels.sgd_epoch(net.w, net.layout, *self.codes, X, T, s, orders, solver, hyper, state, t,
                                   self.A, self.Z, self.D, losses)
        else:
            net._kernels.batch_epoch(net.w, net.layout, *self.codes, X, T, s, orders, self.batch_size,
                                     solver, hyper, state, t, self.Xb, self.Tb, self.sb, self.A, self.Z,
                                     self.D, self.g, losses)
