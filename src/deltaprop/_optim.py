r"""What the estimators' solvers need around the engine: objective, optimizer state, epochs.

Design
------
Everything here works on a :class:`deltaprop.MLP` and plain arrays (``X`` dense C-contiguous or
scipy CSR, ``T`` (n, K) targets, ``s`` (n,) sample weights, all of the network's dtype) and
reaches the kernels only through the engine: :class:`deltaprop.engine.Epochs` for the
stochastic solvers' epochs and :meth:`MLP.loss_and_gradient` for L-BFGS.

- :class:`Objective`: scikit-learn's loss reporting (half squared error averaged over the
  outputs, half Poisson deviance with its constant terms) from the kernels' summed error E.
- :class:`Optimizer`: the sgd / adam rule, its state and hyper-parameters, the learning-rate
  schedules and the adaptive schedule's stopping rule.
- :class:`EpochRunner`: one epoch, as a transaction.
- :class:`LossGradient`: the full-batch objective and gradient L-BFGS minimises.
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from .contract import ETA, SOLVERS
from .engine import rollback

__all__ = ["Objective", "Optimizer", "EpochRunner", "LossGradient", "squared_weights",
           "weight_slices"]

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
    """The epochs of a stochastic solver through the engine's :class:`Epochs`.

    Each epoch visits the samples in scikit-learn's order (``random_state.shuffle`` of the
    previous epoch's order, when ``shuffle``) and returns scikit-learn's ``loss_`` of it. An
    epoch is a transaction: if it raises (KeyboardInterrupt included), the weights and the
    optimizer state are put back as they were when it started, so an interrupted fit keeps its
    last whole epoch. With ``n_jobs`` > 1 the epochs run on threads
    (:class:`deltaprop.engine.ParallelEpochs`); the runner is a context manager that keeps them
    for the whole fit.
    """

    def __enter__(self):
        self.epochs.__enter__()
        return self

    def __exit__(self, *exc):
        return self.epochs.__exit__(*exc)

    def __init__(self, net, X, T, s, batch_size: int, objective: Objective, weighted: bool,
                 random_state=None, n_jobs=None, parallel="average"):
        self.net, self.X, self.T, self.s = net, X, T, s
        self.batch_size, self.objective = batch_size, objective
        self.weighted, self.random_state = weighted, random_state
        self.epochs = net.epoch_runner(X, T, batch_size, n_jobs, parallel)
        self.losses = np.zeros((1, 2), dtype=np.float64)
        self.order = np.arange(X.shape[0], dtype=np.intp)
        self.const = objective.epoch_const(s, self.order, batch_size)

    def run(self, opt: Optimizer) -> float:
        """One epoch; scikit-learn's ``loss_`` of it (data term + L2 penalty, per sample)."""
        n = self.order.shape[0]
        if self.random_state is not None:  # sklearn.utils.shuffle's draw: shuffle arange(n)
            perm = np.arange(n)
            self.random_state.shuffle(perm)
            self.order = np.ascontiguousarray(self.order[perm])
            if self.weighted:
                self.const = self.objective.epoch_const(self.s, self.order, self.batch_size)
        opt.prepare()
        with rollback(self.net.w, opt.state, opt.t):
            self.epochs(self.X, self.T, self.s, self.order[None, :], opt.code, opt.hyper,
                        opt.state, opt.t, self.losses)
        data, penalty = self.losses[0]
        return float(self.objective.data(data) + penalty + self.const) / n


class LossGradient:
    r"""Loss and gradient of the full-batch objective for L-BFGS, on the flat vector.

    .. math:: F(w) = \frac{1}{S} \Big( \sum_n s_n E_n(w) + \frac{\alpha}{2} \lVert W \rVert^2 \Big),
              \qquad \nabla F = \frac{1}{S} \Big( \sum_n s_n \nabla E_n + \alpha W \Big)

    with :math:`S = \sum_n s_n`; the sums come from :meth:`MLP.loss_and_gradient` (accumulated
    in float64, over ``n_jobs`` threads: deterministic for a given ``n_jobs``). :math:`E_n` sums the outputs, so F and its gradient belong together for every
    number of outputs (scikit-learn#8349: scikit-learn pairs this gradient with a loss averaged
    over the outputs). ``reported(w)`` gives scikit-learn's ``loss_``.
    """

    def __init__(self, net, X, T, s, alpha, objective: Objective, n_jobs=None):
        self.net, self.X, self.T, self.s = net, X, T, s
        self.n_jobs = n_jobs
        self.alpha = alpha
        self.objective = objective
        self.S = float(s.sum(dtype=np.float64))
        self.gsum = np.empty(net.w.shape[0], dtype=np.float64)
        self.wslices = weight_slices(net.layout)
        self.const = objective.batch_const(s)
        self.last = None  # (x, E, ||W||^2) of the latest evaluation

    def __call__(self, x):
        w = self.net.w
        w[...] = x
        E, _ = self.net.loss_and_gradient(self.X, self.T, self.s, out=self.gsum, check_input=False,
                                          n_jobs=self.n_jobs)
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
