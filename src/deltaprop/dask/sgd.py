r"""sgd / adam on a cluster: one epoch as rounds of local SGD, or as synchronous mini-batches.

Design
------
``sync`` (:data:`SYNC_MODES`) says how the partitions' work becomes one model. In the three
local-SGD modes, each round sends the weights (and the optimizer state) to the workers; every
partition j runs the compiled epoch kernel from them over the next ``average_every`` samples
of its own shuffled order (:func:`deltaprop.dask.shards.local_epoch`), taking its own steps, and
the J partitions' models :math:`w_j` come back:

``"average"``
    Parameter mixing: :math:`w \leftarrow \sum_j m_j w_j / \sum_j m_j` for partitions of
    :math:`m_j` samples (the optimizer state likewise; Adam's step counter t advances by the
    steps of one partition). To first order in the step size η, J partitions that each took
    1/J of an epoch's steps, averaged, move w as far as 1/J of one machine's epoch: while
    training is limited by the number of steps, the progress per epoch falls as J grows.
``"lr-scaled"`` (the default)
    ``"average"`` with each partition's step size η multiplied by J, the number of partitions
    in the round: to first order the round then moves w as far as one machine's steps over
    the same samples, and the average keeps the stability of parameter mixing when a round is
    long enough for the partitions to converge. Each partition runs at J η, so an η close to
    the largest stable step size of one machine can diverge here.
``"sum"``
    The weight changes are added,

    .. math:: w \leftarrow w + \sum_j (w_j - w),

    with the state averaged (momentum's velocity, Adam's moments: per-step quantities) and t
    advanced by the steps of all the partitions, as one machine's would be. To first order the
    same progress as one machine; but a direction in which each partition has already
    converged within the round is moved J times as far as the minimum, so rounds of many steps
    overshoot, and with J > 2 diverge.

``"batch"`` is synchronous mini-batch gradient descent, the single machine's algorithm: each of
an epoch's :math:`\lceil n / B \rceil` batches takes its rows from every partition (partition
j gives :math:`\approx m_j B / n` of them, the next slice of its own order,
:func:`batch_bounds`), the partitions' sums :math:`\sum_n s_n \nabla E_n` are added (one
round of ``deltaprop-batch-gradient`` tasks per batch, :func:`deltaprop.dask.shards.batch_gradient`)
and the client applies the rule (:func:`update`). Exact, but one round trip per batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..contract import ADAM, ALPHA, BETA_1, BETA_2, EPSILON, ETA, MOMENTUM, MU, NESTEROV, SGD
from ..estimators.objective import squared_weights, weight_slices
from . import shards

if TYPE_CHECKING:
    from ..engine import MLP
    from ..estimators.solvers import Optimizer
    from .cluster import Cluster

__all__ = ["SYNC_MODES", "local_rounds", "synchronous_batches", "batch_bounds", "update"]

#: how the partitions' work becomes one model (see the module docstring); the first is the default
SYNC_MODES = ("lr-scaled", "average", "sum", "batch")


def local_rounds(cluster: Cluster, spec: shards.NetSpec, net: MLP, opt: Optimizer, sizes: list[int],
                 batch: int, every: int, seed: int, epoch: int, shuffle: bool,
                 sync: str) -> tuple[float, float, float, bool]:
    r"""One epoch of local SGD in rounds of ``every`` samples per partition.

    Parameters
    ----------
    cluster : Cluster
        The fit's cluster, its shards placed.
    spec : NetSpec
        The network the workers rebuild.
    net : MLP
        The client's network: its ``w`` is updated in place.
    opt : Optimizer
        The rule, its hyper-parameters, state and step counter (updated in place).
    sizes : list of int
        The training rows of each partition.
    batch : int
        B, samples per update.
    every : int
        Samples each partition visits per round (whole batches).
    seed, epoch : int
        The shuffles' seed and this epoch's number.
    shuffle : bool
        Whether each epoch visits a partition in a new order.
    sync : {"lr-scaled", "average", "sum"}
        How the partitions' models are combined.

    Returns
    -------
    data, penalty, const : float
        The kernels' loss sums and the Poisson constant over the partitions
        (:func:`deltaprop.estimators.objective.epoch_loss`).
    finite : bool
        Whether every partition's weights stayed finite.
    """
    opt.prepare()
    state = None if opt.code == SGD else opt.state  # plain sgd: no state to combine
    total, reg, const, finite = 0.0, 0.0, 0.0, True
    for start in range(0, max(sizes), every):
        active = [j for j, n in enumerate(sizes) if n > start]
        hyper = opt.hyper
        if sync == "lr-scaled":
            hyper = hyper.copy()
            hyper[ETA] *= len(active)

        def args(j: int, start: int = start) -> tuple:
            return (j, spec, batch, seed, epoch, shuffle, start, min(start + every, sizes[j]),
                    sync != "sum")

        uw, ustate, steps, t, data, penalty, c, m, ok = cluster.round(
            "local-epoch", shards.local_epoch, (net.w, state, opt.t, hyper, opt.code), shards.mix,
            active=active, args=args)
        if sync == "sum":  # sum_j w_j - (J - 1) w: one partition's w_j as it is
            net.w[...] = uw - (len(active) - 1) * net.w if len(active) > 1 else uw
            opt.t += int(steps)
        else:
            net.w[...] = uw / m
            opt.t[...] = t
        if state is not None:
            opt.state[...] = ustate / m
        total += data
        reg += penalty
        const += c
        finite = finite and ok
    return total, reg, const, finite


def batch_bounds(size: int, k: int, n_batches: int) -> tuple[int, int]:
    r"""Partition rows ``[lo, hi)`` of its order that batch k of ``n_batches`` takes:
    :math:`\lfloor k m_j / K \rfloor` to :math:`\lfloor (k + 1) m_j / K \rfloor`.

    Parameters
    ----------
    size : int
        :math:`m_j`, the partition's training rows.
    k : int
        The batch, 0 <= k < ``n_batches``.
    n_batches : int
        K, the epoch's batches.

    Returns
    -------
    tuple of int
    """
    return size * k // n_batches, size * (k + 1) // n_batches


def synchronous_batches(cluster: Cluster, spec: shards.NetSpec, net: MLP, opt: Optimizer,
                        sizes: list[int], batch: int, seed: int, epoch: int, shuffle: bool,
                        n_jobs: int | None = None) -> tuple[float, float, float, bool]:
    r"""One epoch of synchronous mini-batch gradient descent: :math:`K = \lceil n / B \rceil`
    batches, each one round of every partition's gradient sums, added, then one update.

    For batch :math:`\mathcal{B}` of weight :math:`S = \sum_{n \in \mathcal{B}} s_n` the step is
    the kernels' (Bishop 5.41 with the L2 term, 5.112, on the weights but not the biases):

    .. math:: g = \frac{1}{S} \Big( \sum_j \sum_{n \in \mathcal{B}_j} s_n \nabla E_n
              + \alpha W \Big), \qquad w \leftarrow \mathrm{rule}(w, g)

    Parameters
    ----------
    cluster, spec, net, opt, sizes, batch, seed, epoch, shuffle
        As for :func:`local_rounds`.
    n_jobs : int or None, default=None
        Threads inside one partition's sums.

    Returns
    -------
    data, penalty, const, finite
        As for :func:`local_rounds`.
    """
    opt.prepare()
    alpha = float(opt.hyper[ALPHA])
    slices = weight_slices(net.layout)
    n_batches = -(-sum(sizes) // batch)
    total, reg, const, finite = 0.0, 0.0, 0.0, True
    for k in range(n_batches):
        rows = [batch_bounds(n, k, n_batches) for n in sizes]

        def args(j: int, rows: list[tuple[int, int]] = rows) -> tuple:
            return (j, spec, seed, epoch, shuffle, *rows[j])

        E, g, S, C, m = cluster.round(
            "batch-gradient", shards.batch_gradient, net.w.copy(), shards.add,
            active=[j for j, (lo, hi) in enumerate(rows) if hi > lo], args=args, n_jobs=n_jobs)
        if S == 0:
            continue
        sq = 0.0
        if alpha != 0:
            for sl in slices:
                g[sl] += alpha * net.w[sl]
            sq = squared_weights(net.w, slices)
        g /= S
        total += m * E / S
        reg += m * 0.5 * alpha * sq / S
        const += m * C / S
        update(net.w, g.astype(net.dtype, copy=False), opt)
        finite = finite and bool(np.isfinite(E) and np.isfinite(net.w).all())
    return total, reg, const, finite


def update(w: np.ndarray, g: np.ndarray, opt: Optimizer) -> None:
    r"""One step of ``opt``'s rule with gradient g, in place on w and ``opt``'s state: the
    update the epoch kernels apply after each batch (scikit-learn's SGD and Adam optimisers).

    - sgd: :math:`w \leftarrow w - \eta g` (Bishop 5.41)
    - momentum: :math:`v \leftarrow \mu v - \eta g`, :math:`w \leftarrow w + v`
    - Nesterov: :math:`v \leftarrow \mu v - \eta g`, :math:`w \leftarrow w + \mu v - \eta g`
    - Adam: :math:`t \leftarrow t + 1`, :math:`m \leftarrow \beta_1 m + (1 - \beta_1) g`,
      :math:`v \leftarrow \beta_2 v + (1 - \beta_2) g^2`,
      :math:`w \leftarrow w - \eta_t\, m / (\sqrt{v} + \epsilon)` with
      :math:`\eta_t = \eta \sqrt{1 - \beta_2^t} / (1 - \beta_1^t)`

    Parameters
    ----------
    w : ndarray of shape (P,)
        The weights, updated in place.
    g : ndarray of shape (P,)
        The batch's gradient (with its L2 term, divided by S), of w's dtype.
    opt : Optimizer
        The rule (``code``), ``hyper``, ``state`` and ``t``, the last two updated in place.

    Raises
    ------
    ValueError
        An unknown rule.
    """
    hyper, state, t = opt.hyper, opt.state, opt.t
    eta = hyper[ETA]
    if opt.code == SGD:
        w -= eta * g
    elif opt.code in (MOMENTUM, NESTEROV):
        v = state[0]
        v[...] = hyper[MU] * v - eta * g
        w += v if opt.code == MOMENTUM else hyper[MU] * v - eta * g
    elif opt.code == ADAM:
        t[0] += 1
        m, v = state[0], state[1]
        b1, b2 = hyper[BETA_1], hyper[BETA_2]
        m[...] = b1 * m + (1 - b1) * g
        v[...] = b2 * v + (1 - b2) * (g * g)
        eta_t = eta * np.sqrt(1 - b2 ** t[0]) / (1 - b1 ** t[0])
        w -= eta_t * m / (np.sqrt(v) + hyper[EPSILON])
    else:
        raise ValueError(f"unknown solver code {opt.code}")
