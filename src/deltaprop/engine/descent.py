r"""MLP's training by gradient descent: ``sgd_epoch``, ``batch_epoch``, ``fit`` and ``epoch_runner``.

:class:`GradientDescentMixin` gives :class:`~deltaprop.engine.MLP` its training methods:
``sgd_epoch``, ``batch_epoch`` and ``fit``, transactions over the epoch runners, and
``epoch_runner``, the runner the estimators' solvers drive.

On-line gradient descent updates the weights after each sample,
:math:`w \leftarrow w - \eta \nabla E_n(w)` (Bishop 5.43); batch gradient descent after the whole
set, :math:`w \leftarrow w - \eta \nabla E(w)` (5.41); mini-batches in between, with the mean
gradient of each batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ..contract import DEFAULT_ETA, PARALLEL_MODES, SGD, make_hyper
from ..parallel import effective_n_jobs
from ..validation import X_NOT_FINITE, check_lr, check_order, check_positive_int, finite_X
from .buffers import aligned_empty, rollback, work_rows
from .epochs import Epochs, OneThreadEpochs
from .parallel_epochs import choose_runner

if TYPE_CHECKING:
    from typing import TypeAlias

    from typing_extensions import Self

    from .mlp import MLP

    #: X, T and the sample weights s validated, as the kernels take them (``MLP._check_XT``)
    Checked: TypeAlias = tuple[np.ndarray | sp.csr_matrix, np.ndarray, np.ndarray | None]

__all__ = ["GradientDescentMixin", "gradient_descent", "descend"]


class GradientDescentMixin:
    """The training methods of :class:`~deltaprop.engine.MLP`, which inherits them.

    They use the network's ``w``, ``_rng`` (the random state), ``loss_curve_`` and its input
    checks. ``sgd_epoch``, ``batch_epoch`` and ``fit`` are transactions (on any error the
    weights are left as they were); the runner of ``epoch_runner`` leaves that to its caller.
    """

    # what the network that inherits these methods provides
    w: np.ndarray
    dtype: np.dtype
    loss_curve_: list[float]
    _rng: np.random.RandomState

    if TYPE_CHECKING:
        def _check_XT(self, X: npt.ArrayLike | sp.spmatrix, T: npt.ArrayLike,
                      sample_weight: npt.ArrayLike | None = None, finite_X: bool = True) -> Checked: ...

    def epoch_runner(self, X: np.ndarray | sp.spmatrix, T: np.ndarray, batch_size: int,
                     n_jobs: int | None = None, parallel: str = "average") -> Epochs:
        """The epoch runner for inputs and targets shaped like X and T (only their shapes are read).

        The runner is called with the kernel contract's epoch arguments,
        ``runner(X, T, s, orders, solver, hyper, state, t, losses) -> losses``
        (:meth:`deltaprop.engine.epochs.Epochs.__call__`: X, T, s validated and of the network's
        dtype, ``orders`` (n_epochs, m) of intp, the optimizer's code, ``hyper``, ``state``,
        ``t`` and ``losses`` (n_epochs, 2) float64), runs those epochs on ``w`` in place and
        returns ``losses``. It is a context manager: ``with runner:`` keeps its threads for
        several calls. It is not a transaction: wrap calls in :func:`~deltaprop.engine.rollback`.

        Parameters
        ----------
        X : ndarray or sparse matrix (n, D)
            Inputs (their number of columns D sizes the batch buffers).
        T : ndarray (n, K)
            Targets.
        batch_size : int
            Samples per update B; 1 is on-line (per-sample) gradient descent.
        n_jobs : None or int
            Threads (scikit-learn's convention: None is 1, -1 all cores).
        parallel : {"average", "hogwild"}
            How ``n_jobs`` > 1 threads share the weights, as in :meth:`fit`.

        Returns
        -------
        Epochs
            The runner of the algorithm asked for (:func:`deltaprop.engine.parallel_epochs.choose_runner`).

        Raises
        ------
        ValueError
            If ``batch_size`` is not a positive integer, ``n_jobs`` not None or a non-zero
            integer, or ``parallel`` not one of the modes.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        n_jobs = effective_n_jobs(n_jobs)
        return choose_runner(_network(self), X.shape[1], T.shape[1], batch_size, n_jobs, _check_parallel(parallel))

    def sgd_epoch(self, X: npt.ArrayLike | sp.spmatrix, T: npt.ArrayLike, lr: float,
                  order: npt.ArrayLike | None = None) -> float:
        r"""One epoch of on-line gradient descent, :math:`w \leftarrow w - \eta \nabla E_n(w)` (Bishop 5.43).

        Samples are visited in ``order``, the weights updated after each one, fused in compiled
        calls. A transaction: on any error (divergence, KeyboardInterrupt) ``w`` is left as it was.
        X's values are checked for NaN and infinity only if the epoch fails (:func:`descend`):
        such a value in a visited row always makes the weights non-finite.

        Parameters
        ----------
        X, T
            As for :meth:`loss`.
        lr : float
            Learning rate η > 0.
        order : array-like of int, optional
            Sample indices in visiting order (default ``0..n-1``; an empty order visits nothing).

        Returns
        -------
        float
            :math:`\sum_n E_n`, each taken before its update (0.0 for an empty order).

        Raises
        ------
        FloatingPointError
            If the error or the weights became NaN or infinite.
        ValueError
            For bad inputs, targets, learning rate or order, or a NaN or an infinity in a row of X
            the epoch visits (found when the epoch fails; rows it does not visit are not read).
        """
        X, T, _ = self._check_XT(X, T, finite_X=False)
        lr = check_lr(lr)
        order = np.arange(X.shape[0], dtype=np.intp) if order is None else check_order(order, X.shape[0])
        runner = OneThreadEpochs(_network(self), X.shape[1], T.shape[1], 1)
        return float(descend(runner, X, T, order[None, :], lr)[0])

    def batch_epoch(self, X: npt.ArrayLike | sp.spmatrix, T: npt.ArrayLike, lr: float, batch_size: int,
                    order: npt.ArrayLike | None = None) -> float:
        r"""One epoch of mini-batch gradient descent with the mean gradient of each batch.

        .. math:: w \leftarrow w - \frac{\eta}{|B|} \sum_{n \in B} \nabla E_n(w)

        ``batch_size >= n`` is full-batch gradient descent; ``batch_size=1`` equals
        :meth:`sgd_epoch`. A transaction, and X checked, as in :meth:`sgd_epoch`.

        Parameters
        ----------
        X, T, lr, order
            As for :meth:`sgd_epoch`.
        batch_size : int
            Samples per batch, :math:`|B|`, at least 1.

        Returns
        -------
        float
            :math:`\sum_n E_n`, each batch's taken before its update (0.0 for an empty order).

        Raises
        ------
        FloatingPointError
            If the error or the weights became NaN or infinite.
        ValueError
            For bad inputs, targets, learning rate, batch size or order, or a NaN or an infinity
            in a row of X the epoch visits (as in :meth:`sgd_epoch`).
        """
        X, T, _ = self._check_XT(X, T, finite_X=False)
        lr = check_lr(lr)
        batch_size = check_positive_int("batch_size", batch_size)
        order = np.arange(X.shape[0], dtype=np.intp) if order is None else check_order(order, X.shape[0])
        runner = OneThreadEpochs(_network(self), X.shape[1], T.shape[1], max(1, min(batch_size, order.shape[0])))
        return float(descend(runner, X, T, order[None, :], lr)[0])

    def fit(self, X: npt.ArrayLike | sp.spmatrix, T: npt.ArrayLike, epochs: int = 100, lr: float = DEFAULT_ETA,
            batch_size: int = 1, shuffle: bool = True, progress: Callable[[int, float], object] | None = None,
            n_jobs: int | None = None, parallel: str = "average") -> Self:
        """Train for ``epochs`` epochs of gradient descent.

        The work is cut into compiled calls of
        :data:`~deltaprop.engine.buffers.WORK_PER_CALL` weight visits: several epochs per call
        on small data (all their orders drawn up front), parts of an epoch on large data, so
        Ctrl-C is honoured within a fraction of a second. A transaction: if training diverges,
        is interrupted or fails in any other way, the weights, ``loss_curve_`` and the random
        state are put back exactly as they were before this call, and the error is raised.

        Parameters
        ----------
        X, T
            As for :meth:`loss`.
        epochs : int
            Passes over the data, at least 1.
        lr : float
            Learning rate η > 0.
        batch_size : int
            1 is on-line SGD, larger sizes mini-batch, ``>= n`` full batch.
        shuffle : bool
            Visit the samples of each epoch in a fresh random order drawn from ``random_state``.
        progress : callable, optional
            ``progress(n_epochs_done, loss)``, called after each group of whole epochs (e.g. to
            move a progress bar).
        n_jobs : None or int
            Threads (scikit-learn's convention: None is 1, -1 all cores); ``n_jobs=1`` is the
            sequential algorithm, bit for bit.
        parallel : {"average", "hogwild"}
            How the threads share the weights. ``"average"`` is deterministic for a given
            ``n_jobs``: for mini-batches each batch's rows are split between the threads, the
            one-thread result up to rounding (``SplitBatchEpochs``); for per-sample SGD the
            threads' copies are averaged after each round on contiguous shards of each epoch
            (parameter mixing, ``MixingEpochs``). ``"hogwild"`` updates one shared ``w`` without
            locks, for mostly-zero inputs (``HogwildEpochs``). The runners are in
            :mod:`deltaprop.engine.parallel_epochs`.

        Returns
        -------
        MLP
            ``self``, with each epoch's summed error appended to ``loss_curve_``.

        Raises
        ------
        FloatingPointError
            If training diverged (the error or the weights became NaN or infinite).
        ValueError
            For bad inputs, targets or parameters, naming the parameter; a NaN or an infinity in
            X is found as in :meth:`sgd_epoch`, after the first epochs that read it (the weights,
            ``loss_curve_`` and random state then restored).
        """
        X, T, _ = self._check_XT(X, T, finite_X=False)
        lr = check_lr(lr)
        epochs = check_positive_int("epochs", epochs)
        batch_size = check_positive_int("batch_size", batch_size)
        parallel = _check_parallel(parallel)
        n_jobs = effective_n_jobs(n_jobs)
        n = X.shape[0]
        per_call = max(1, min(epochs, work_rows(self.w.shape[0]) // n))
        n_curve, rng_state, w_before = len(self.loss_curve_), self._rng.get_state(), self.w.copy()
        runner = choose_runner(_network(self), X.shape[1], T.shape[1], min(batch_size, n), n_jobs, parallel)
        try:
            with runner:
                self._fit_epochs(X, T, epochs, lr, per_call, shuffle, progress, runner)
        except BaseException:
            self.w[...] = w_before
            self._rng.set_state(rng_state)
            del self.loss_curve_[n_curve:]
            raise
        return self

    def _fit_epochs(self, X: np.ndarray | sp.csr_matrix, T: np.ndarray, epochs: int, lr: float, per_call: int,
                    shuffle: bool, progress: Callable[[int, float], object] | None, runner: Epochs) -> None:
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
                losses = descend(runner, X, T, orders, lr)
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


def gradient_descent(runner: Epochs, X: np.ndarray | sp.csr_matrix, T: np.ndarray, orders: np.ndarray,
                     eta: float) -> np.ndarray:
    r"""Plain gradient descent, :math:`w \leftarrow w - \frac{\eta}{|B|} \sum_{n \in B} \nabla E_n(w)`,
    over the epochs of ``orders``; a transaction.

    Parameters
    ----------
    runner : Epochs
        The runner; it updates ``runner.net.w``.
    X : ndarray (n, D) or csr_matrix
        Inputs, validated, of the network's dtype.
    T : ndarray (n, K)
        Targets, validated, of the network's dtype.
    orders : ndarray (n_epochs, m) of intp
        Each epoch's visiting order.
    eta : float
        Learning rate η.

    Returns
    -------
    ndarray (n_epochs,) of float64
        Each epoch's summed error :math:`\sum_n E_n`, each batch's taken before its update.

    Raises
    ------
    FloatingPointError
        If an epoch's error or a weight became NaN or infinite (divergence).
        On this or any other exception (KeyboardInterrupt included) ``w`` is put back as it was.
    """
    net, dt = runner.net, runner.net.dtype
    # plain sgd keeps no optimizer state: the kernels neither read nor write it
    state = aligned_empty(2 * net.w.shape[0], dt).reshape(2, -1)
    t = np.zeros(1, dtype=np.int64)
    losses = np.zeros((orders.shape[0], 2), dtype=np.float64)
    s = np.ones(X.shape[0], dtype=dt)
    with rollback(net.w):
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
            runner(X, T, s, orders, SGD, make_hyper(dt, eta=eta), state, t, losses)
        _check_finite(losses[:, 0], net.w)
    return losses[:, 0]


def descend(runner: Epochs, X: np.ndarray | sp.csr_matrix, T: np.ndarray, orders: np.ndarray,
            eta: float) -> np.ndarray:
    r""":func:`gradient_descent` on an X whose values were not checked for NaN and infinity.

    The check is made only if the epochs fail, to name the cause. It is sound because every
    epoch kernel multiplies each input :math:`x_i` of a row it visits (every sample weight is 1
    on this path) into the first layer's update,
    :math:`w_{ji} \leftarrow w_{ji} - \eta\, \delta_j x_i` (per sample, or summed over a batch):
    a NaN, or an infinity times any finite :math:`\eta \delta_j` (zero included), makes a weight
    NaN or infinite, which :func:`gradient_descent` reports. A run that ends finite read only
    finite values; checking them first would cost a pass over all of X from memory per call.

    Parameters
    ----------
    runner, X, T, orders, eta
        As for :func:`gradient_descent`.

    Returns
    -------
    ndarray (n_epochs,) of float64
        As :func:`gradient_descent`.

    Raises
    ------
    ValueError
        If the epochs failed and X holds a NaN or an infinity (``w`` put back as it was).
    FloatingPointError
        If they diverged on a finite X.
    """
    try:
        return gradient_descent(runner, X, T, orders, eta)
    except FloatingPointError:
        if not finite_X(X):
            raise ValueError(X_NOT_FINITE) from None
        raise


def _network(mixin: GradientDescentMixin) -> MLP:
    """The network a method of the mixin runs on: :class:`~deltaprop.engine.MLP`, the one class
    that inherits it (mypy cannot see that from the mixin)."""
    return cast("MLP", mixin)


def _check_parallel(parallel: str) -> str:
    if parallel not in PARALLEL_MODES:
        raise ValueError(f"parallel must be {' or '.join(map(repr, PARALLEL_MODES))}; got {parallel!r}")
    return parallel


def _check_finite(losses: np.ndarray, w: np.ndarray) -> None:
    """FloatingPointError if an epoch's error or a weight is NaN or infinite (divergence)."""
    if not (np.isfinite(losses).all() and np.isfinite(w).all()):
        raise FloatingPointError(
            "training diverged (the error or the weights became NaN or infinite); the weights "
            "were restored to their values before this call. Lower the learning rate.")
