r"""The L-BFGS objective (loss, L2 term, gradient) and scikit-learn's way of reporting a loss.

Design
------
The kernels return sums over samples: :math:`E = \sum_n s_n E_n(w)`, with :math:`E_n` summed over
the K outputs (half squared error, binary / categorical cross-entropy, Poisson
:math:`y - t \ln y`), and :math:`\sum_n s_n \nabla E_n`. Everything the estimators make of them
is written here once:

- :func:`output_scale` and :class:`SklearnLoss`: scikit-learn reports the squared error averaged
  over the outputs (divided by K) and the Poisson deviance with its constant terms
  :math:`c_n = \sum_k t_{nk} \ln t_{nk} - t_{nk}`;
- :func:`reported_loss`: scikit-learn's ``loss_`` of a batch with the weight-decay term
  :math:`\frac{\alpha}{2} \lVert W \rVert^2` (Bishop 5.112), biases excluded;
- :class:`LossGradient`: the objective L-BFGS minimises and its gradient. Where the sums come
  from is a subclass's business: :class:`BatchLossGradient` adds the rows in this process
  (over ``n_jobs`` threads), ``deltaprop.dask`` adds the partitions on a cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.special import xlogy

if TYPE_CHECKING:
    import scipy.sparse as sp

    from ..engine import MLP

__all__ = ["output_scale", "SklearnLoss", "weight_slices", "squared_weights", "reported_loss",
           "epoch_loss", "LossGradient", "BatchLossGradient"]


def output_scale(loss: str, n_outputs: int) -> int:
    """What scikit-learn divides the summed error by: K outputs for squared error, else 1.

    Parameters
    ----------
    loss : str
        The network's loss function (a name of ``deltaprop.contract.LOSSES``).
    n_outputs : int
        K, the number of output units.

    Returns
    -------
    int
    """
    return n_outputs if loss == "squared_error" else 1


class SklearnLoss:
    r"""scikit-learn's convention for reporting one loss on targets T.

    Parameters
    ----------
    loss : str
        The network's loss function.
    T : ndarray of shape (n_samples, K)
        The targets, encoded as the network's outputs.

    Attributes
    ----------
    scale : int
        :func:`output_scale` of the loss.
    const : ndarray of shape (n_samples,) or None
        The Poisson constant :math:`c_n = \sum_k t_{nk} \ln t_{nk} - t_{nk}` of each sample
        (None for the other losses, whose constant is 0).
    """

    def __init__(self, loss: str, T: np.ndarray) -> None:
        self.scale = output_scale(loss, T.shape[1])
        self.const = (xlogy(T, T) - T).sum(axis=1) if loss == "poisson" else None

    def data(self, E: float) -> float:
        """The kernels' summed error :math:`E` in scikit-learn's convention, :math:`E / K` or E."""
        return E / self.scale

    def epoch_const(self, s: np.ndarray, order: np.ndarray, batch_size: int) -> float:
        r""":math:`\sum_B |B| \sum_{n \in B} s_n c_n / S_B`, the Poisson constant of one epoch.

        Parameters
        ----------
        s : ndarray of shape (n_samples,)
            Sample weights.
        order : ndarray of shape (m,)
            The epoch's visiting order, cut into batches B of ``batch_size`` rows.
        batch_size : int

        Returns
        -------
        float
            0 for every loss but Poisson.
        """
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

    def batch_const(self, s: np.ndarray, rows: slice | np.ndarray = slice(None)) -> float:
        r""":math:`\sum_n s_n c_n` over ``rows``: the Poisson constant of one full batch (0 for
        every other loss)."""
        if self.const is None:
            return 0.0
        return float(np.dot(s[rows], self.const[rows]))


def weight_slices(layout: np.ndarray) -> list[slice]:
    """Slices of the weights (not the biases) of every layer in the flat parameter vector.

    Parameters
    ----------
    layout : ndarray of shape (n_layers, 5)
        The network's layout (``deltaprop.contract.LAYOUT_COLUMNS``).

    Returns
    -------
    list of slice
    """
    return [slice(int(w_off), int(w_off + n_in * n_out)) for n_in, n_out, w_off, _, _ in layout]


def squared_weights(w: np.ndarray, slices: list[slice]) -> float:
    r""":math:`\lVert W \rVert^2` over every layer's weights (biases excluded).

    Parameters
    ----------
    w : ndarray of shape (n_params,)
        The flat parameter vector.
    slices : list of slice
        :func:`weight_slices` of its layout.

    Returns
    -------
    float
    """
    return float(sum(np.dot(w[sl], w[sl]) for sl in slices))


def reported_loss(E: float, scale: float, const: float, alpha: float, sq: float, S: float) -> float:
    r"""scikit-learn's ``loss_`` of a batch at weights w: data term, constant and weight decay.

    .. math:: \frac{1}{S} \Big( \frac{E}{\mathrm{scale}} + C
              + \frac{\alpha}{2} \lVert W \rVert^2 \Big)

    With ``scale = 1`` this is the L-BFGS objective F of :class:`LossGradient`.

    Parameters
    ----------
    E : float
        :math:`\sum_n s_n E_n(w)`, the kernels' summed error.
    scale : float
        :func:`output_scale` (1 for the objective itself).
    const : float
        :math:`C = \sum_n s_n c_n` (:meth:`SklearnLoss.batch_const`).
    alpha : float
        α, the L2 penalty.
    sq : float
        :math:`\lVert W \rVert^2` (:func:`squared_weights`).
    S : float
        :math:`\sum_n s_n`.

    Returns
    -------
    float
    """
    return (E / scale + const + 0.5 * alpha * sq) / S


def epoch_loss(E: float, scale: float, penalty: float, const: float, n: float) -> float:
    r"""scikit-learn's ``loss_`` of a stochastic epoch, per sample.

    .. math:: \frac{1}{n} \Big( \frac{E}{\mathrm{scale}} + P + C \Big)

    Unlike :func:`reported_loss`, each batch's error and penalty are taken at the weights that
    batch saw, before its update: the kernels sum them over the epoch.

    Parameters
    ----------
    E : float
        The kernels' :math:`\sum_B |B| \frac{1}{S_B} \sum_{n \in B} s_n E_n` over the epoch's
        batches B.
    scale : float
        :func:`output_scale`.
    penalty : float
        P, the kernels' :math:`\sum_B |B| \frac{1}{S_B} \frac{\alpha}{2} \lVert W \rVert^2`.
    const : float
        The epoch's Poisson constant (:meth:`SklearnLoss.epoch_const`).
    n : float
        Samples visited.

    Returns
    -------
    float
    """
    return float(E / scale + penalty + const) / n


class LossGradient:
    r"""The objective L-BFGS minimises and its gradient, on the flat parameter vector.

    .. math:: F(w) = \frac{1}{S} \Big( \sum_n s_n E_n(w) + C + \frac{\alpha}{2} \lVert W \rVert^2
              \Big), \qquad \nabla F = \frac{1}{S} \Big( \sum_n s_n \nabla E_n + \alpha W \Big)

    with :math:`S = \sum_n s_n` and C the Poisson constant (0 for the other losses). :math:`E_n`
    sums the outputs, so F and its gradient belong together for every number of outputs
    (scikit-learn#8349: scikit-learn pairs this gradient with a loss averaged over the outputs);
    :meth:`reported` gives scikit-learn's ``loss_``. A subclass says where the sums come from
    (:meth:`sums`).

    Parameters
    ----------
    net : MLP
        The network; each evaluation writes its point into ``net.w``.
    alpha : float
        α, the L2 penalty on the weights (biases excluded).
    S : float
        :math:`\sum_n s_n`.
    const : float
        C.
    scale : float
        :func:`output_scale` of the loss (for :meth:`reported`).
    """

    def __init__(self, net: MLP, alpha: float, S: float, const: float, scale: float) -> None:
        self.net, self.alpha = net, alpha
        self.S, self.const, self.scale = S, const, scale
        self.wslices = weight_slices(net.layout)
        self.last: tuple[np.ndarray, float, float] | None = None  # (x, E, ||W||^2), latest evaluation

    def sums(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        r""":math:`(\sum_n s_n E_n, \sum_n s_n \nabla E_n)` at ``w`` (the gradient in float64,
        an array this object may change)."""
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(F(x), ∇F(x))`` for SciPy's ``minimize(..., jac=True)``; ``net.w`` is set to x."""
        w = self.net.w
        w[...] = x
        E, g = self.sums(w)
        sq = squared_weights(w, self.wslices)
        for sl in self.wslices:
            g[sl] += self.alpha * w[sl]
        self.last = (np.array(x, dtype=np.float64), E, sq)
        return reported_loss(E, 1, self.const, self.alpha, sq, self.S), g / self.S

    def reported(self, x: np.ndarray) -> float:
        """scikit-learn's ``loss_`` at ``x``: outputs averaged for squared error, + penalty."""
        if self.last is None or not np.array_equal(self.last[0], x):
            self(x)
        assert self.last is not None  # the evaluation at x
        _, E, sq = self.last
        return reported_loss(E, self.scale, self.const, self.alpha, sq, self.S)


class BatchLossGradient(LossGradient):
    r""":class:`LossGradient` of rows held here: the sums from :meth:`MLP.loss_and_gradient`.

    The sums are accumulated in float64, over ``n_jobs`` threads (deterministic for a given
    ``n_jobs``).

    Parameters
    ----------
    net : MLP
    X : ndarray of shape (n_samples, n_features) or CSR matrix
        Inputs as the kernels take them (:func:`deltaprop.engine.kernel_input`).
    T : ndarray of shape (n_samples, K)
        Targets of the network's dtype.
    s : ndarray of shape (n_samples,)
        Sample weights of the network's dtype.
    alpha : float
    loss : SklearnLoss
        The loss convention of T (its Poisson constant and output scale).
    n_jobs : int or None, default=None
        Threads for the sums (scikit-learn's convention).
    """

    def __init__(self, net: MLP, X: np.ndarray | sp.csr_matrix, T: np.ndarray, s: np.ndarray,
                 alpha: float, loss: SklearnLoss, n_jobs: int | None = None) -> None:
        super().__init__(net, alpha, float(s.sum(dtype=np.float64)), loss.batch_const(s), loss.scale)
        self.X, self.T, self.s, self.n_jobs = X, T, s, n_jobs
        self.gsum = np.empty(net.w.shape[0], dtype=np.float64)

    def sums(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        E, _ = self.net.loss_and_gradient(self.X, self.T, self.s, out=self.gsum, check_input=False,
                                          n_jobs=self.n_jobs)
        return E, self.gsum
