r"""The stochastic solvers' state and epochs: the sgd / adam rule, the step-size schedules, one epoch.

Design
------
Everything here works on a :class:`deltaprop.MLP` and plain arrays (``X`` dense C-contiguous or
scipy CSR, ``T`` (n, K) targets, ``s`` (n,) sample weights, all of the network's dtype) and
reaches the kernels only through the engine's epoch runners.

- :class:`Optimizer`: the sgd / adam rule, its state and hyper-parameters, the step size η and
  its schedule (scikit-learn's ``learning_rate``) and the adaptive schedule's stopping rule.
- :class:`EpochRunner`: one epoch, as a transaction, and scikit-learn's ``loss_`` of it.

The L-BFGS objective is :mod:`deltaprop.estimators.objective`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from ..contract import ETA, SOLVERS, make_hyper
from ..engine import rollback
from .objective import SklearnLoss, epoch_loss

if TYPE_CHECKING:
    import scipy.sparse as sp

    from ..engine import MLP

__all__ = ["STOCHASTIC_SOLVERS", "SOLVER_NAMES", "Optimizer", "EpochRunner"]

#: the solvers that train epoch by epoch (the others: L-BFGS)
STOCHASTIC_SOLVERS = ("sgd", "adam")
#: every ``solver`` the estimators take: scikit-learn's MLP values (the kernels' update rules
#: are :data:`deltaprop.contract.SOLVERS`)
SOLVER_NAMES = (*STOCHASTIC_SOLVERS, "lbfgs")


class Optimizer:
    r"""The stochastic solver's state, carried across epochs and ``partial_fit`` calls.

    For sgd the kernel rule is plain sgd when ``momentum == 0`` (scikit-learn's
    :math:`v \leftarrow 0 \cdot v - \eta g` is the same update), else Nesterov or classical
    momentum. The step size η follows scikit-learn's schedules (``lr_schedule``, the estimators'
    ``learning_rate``): ``"constant"`` keeps :math:`\eta_0`; ``"invscaling"`` sets
    :math:`\eta = \eta_0 / (t + 1)^{p}` at the end of each epoch (t counts samples);
    ``"adaptive"`` divides η by 5 when training stalls. Adam keeps η constant.

    Parameters
    ----------
    solver : {"sgd", "adam"}
    n_params : int
        P, the length of the flat parameter vector.
    dtype : numpy dtype
        The network's dtype (of ``hyper`` and ``state``).
    eta0 : float
        :math:`\eta_0`, the initial step size (the estimators' ``learning_rate_init``).
    lr_schedule : {"constant", "invscaling", "adaptive"}
        The schedule of η for sgd.
    momentum : float
        μ (sgd).
    nesterov : bool
        Nesterov's momentum rather than the classical one (sgd with μ > 0).
    power_t : float
        p of ``"invscaling"``.
    beta_1, beta_2, epsilon : float
        Adam's β₁, β₂, ε.
    alpha : float
        α, the L2 penalty.

    Attributes
    ----------
    eta : float
        The current step size η.
    code : int
        The kernels' rule (``deltaprop.contract.SOLVERS``).
    hyper : ndarray of shape (6,)
        The kernels' hyper-parameter slots (``deltaprop.contract.HYPER``).
    state : ndarray of shape (2, n_params)
        Momentum's v, or Adam's m and v.
    t : ndarray of shape (1,), int64
        Adam's update counter.
    """

    def __init__(self, solver: str, n_params: int, dtype: np.dtype, *, eta0: float, lr_schedule: str,
                 momentum: float, nesterov: bool, power_t: float, beta_1: float, beta_2: float,
                 epsilon: float, alpha: float) -> None:
        self.solver = solver
        if solver == "adam":
            rule = "adam"
        elif momentum > 0:
            rule = "nesterov" if nesterov else "momentum"
        else:
            rule = "sgd"
        self.code = SOLVERS[rule]
        self.eta0 = eta0
        self.eta = float(eta0)
        self.lr_schedule = lr_schedule if solver == "sgd" else "constant"
        self.power_t = power_t
        self.hyper = make_hyper(dtype, eta=eta0, alpha=alpha, momentum=momentum, beta_1=beta_1,
                                beta_2=beta_2, epsilon=epsilon)
        self.state = np.zeros((2, n_params), dtype=dtype)
        self.t = np.zeros(1, dtype=np.int64)

    def copy(self) -> Optimizer:
        """An independent copy (its own ``hyper``, ``state`` and ``t``)."""
        new = object.__new__(Optimizer)
        new.__dict__.update(self.__dict__)
        new.hyper, new.state, new.t = self.hyper.copy(), self.state.copy(), self.t.copy()
        return new

    def prepare(self) -> None:
        """Write the current step size η into ``hyper`` before an epoch."""
        self.hyper[ETA] = self.eta

    def iteration_ends(self, time_step: int) -> None:
        """The schedule after an epoch: ``"invscaling"`` sets η from ``time_step`` (samples seen)."""
        if self.lr_schedule == "invscaling":
            self.eta = float(self.eta0) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg: str, verbose: bool) -> bool:
        """scikit-learn's rule when training stalls: stop, unless the adaptive schedule can still
        divide η by 5.

        Parameters
        ----------
        msg : str
            What stalled, printed when ``verbose``.
        verbose : bool

        Returns
        -------
        bool
            True: stop the fit.
        """
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.eta <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.eta /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.eta)
        return False


class EpochRunner:
    """The epochs of a stochastic solver through the engine's epoch runner.

    Each epoch visits the samples in scikit-learn's order (``random_state.shuffle`` of the
    previous epoch's order, when ``shuffle``) and returns scikit-learn's ``loss_`` of it. A
    call of :meth:`run` trains one epoch or several consecutive ones (their orders drawn
    first, as scikit-learn draws them epoch by epoch) and is a transaction: if it raises
    (KeyboardInterrupt included), the weights and the optimizer state are put back as they were
    when it started, so an interrupted fit keeps the epochs of its last whole call (their copies
    live in buffers the runner keeps from call to call). With ``n_jobs`` > 1 the epochs run on
    threads (``parallel`` says how); the runner is a context manager that keeps them for the
    whole fit.

    Parameters
    ----------
    net : MLP
    X : ndarray of shape (n_samples, n_features) or CSR matrix
        Inputs as the kernels take them.
    T : ndarray of shape (n_samples, K)
    s : ndarray of shape (n_samples,)
        Sample weights (all of the network's dtype).
    batch_size : int
    loss : SklearnLoss
        The loss convention of T.
    weighted : bool
        Whether ``s`` holds sample weights (then the Poisson constant follows each shuffle).
    random_state : numpy.random.RandomState or None
        Shuffles the order before each epoch (None: no shuffling).
    n_jobs : int or None
        Threads (scikit-learn's convention: None is 1).
    parallel : {"average", "hogwild"}
        How threads share the weights (``deltaprop.contract.PARALLEL_MODES``).
    """

    def __init__(self, net: MLP, X: np.ndarray | sp.csr_matrix, T: np.ndarray, s: np.ndarray,
                 batch_size: int, loss: SklearnLoss, weighted: bool,
                 random_state: np.random.RandomState | None, n_jobs: int | None,
                 parallel: str) -> None:
        self.net, self.X, self.T, self.s = net, X, T, s
        self.batch_size, self.loss = batch_size, loss
        self.weighted, self.random_state = weighted, random_state
        self.epochs = net.epoch_runner(X, T, batch_size, n_jobs, parallel)
        self.order = np.arange(X.shape[0], dtype=np.intp)
        self.const = loss.epoch_const(s, self.order, batch_size)
        self.saved: list[np.ndarray] = []  # w, the optimizer's state and t when a call starts

    def __enter__(self) -> EpochRunner:
        self.epochs.__enter__()
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        return self.epochs.__exit__(*exc)

    def most_epochs(self, opt: Optimizer) -> int:
        """The most epochs :meth:`run` takes at once: as many whole epochs as one compiled call
        of the engine's runner holds (``samples_per_call``), at least one, so that a call stays
        as short as the runner's and Ctrl-C loses little. Mini-batch epochs only: their weights
        are the same, bit for bit, however the epochs are grouped into calls, while the on-line
        kernel with an L2 penalty carries the weights' decay as one factor through a call, so
        that where a call ends moves the last bits (and an on-line epoch is long beside the
        Python work between calls)."""
        n = self.order.shape[0]
        if self.batch_size == 1:
            return 1
        return max(1, self.epochs.samples_per_call(opt.code) // max(n, 1))

    def run(self, opt: Optimizer, epochs: int = 1) -> list[float]:
        """``epochs`` consecutive epochs with ``opt`` (its step size η fixed for all of them);
        scikit-learn's ``loss_`` of each (data term + L2 penalty, per sample,
        :func:`~deltaprop.estimators.objective.epoch_loss`)."""
        n = self.order.shape[0]
        orders = np.empty((epochs, n), dtype=np.intp)
        consts = []
        for e in range(epochs):
            if self.random_state is not None:
                # scikit-learn's draw: sklearn.utils.shuffle shuffles arange(n) into a
                # permutation and indexes the order with it; shuffling the order in place makes
                # the same draws and moves its elements by the same permutation
                self.random_state.shuffle(self.order)
                if self.weighted:
                    self.const = self.loss.epoch_const(self.s, self.order, self.batch_size)
            orders[e] = self.order
            consts.append(self.const)
        losses = np.zeros((epochs, 2), dtype=np.float64)
        opt.prepare()
        with rollback(self.net.w, opt.state, opt.t, saved=self.saved):
            self.epochs(self.X, self.T, self.s, orders, opt.code, opt.hyper, opt.state, opt.t,
                        losses)
        return [epoch_loss(data, self.loss.scale, penalty, const, n)
                for (data, penalty), const in zip(losses, consts, strict=True)]
