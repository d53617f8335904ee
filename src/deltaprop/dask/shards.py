r"""The worker side of :mod:`deltaprop.dask`: what one task does to one partition.

Design
------
A *shard* is one row partition of the training data, held in a worker's memory for the whole
fit (:class:`Shard`: X as the kernels take it, the encoded targets T and the sample weights s,
and with early stopping its own validation rows). Every task here is a pure function of a shard
and a few small arrays (the weights, the optimizer state), so Dask may run it anywhere, run it
again after a worker is lost, or recompute the shard from its lineage; nothing is kept on a
worker between tasks except spare networks (:func:`network`) whose weights every task
overwrites, and a shard's visiting order of the current epoch (:meth:`Shard.order`, drawn
again if lost). A round sends one task per worker (:func:`partitions`), which runs that worker's
shards and adds their results before anything goes over the network.

The arithmetic is the engine's, unchanged (DESIGN.md: the executors run the same shard
functions): :meth:`deltaprop.MLP.loss_and_gradient` gives the exact sums

.. math:: E_j = \sum_{n \in j} s_n E_n, \qquad g_j = \sum_{n \in j} s_n \nabla E_n

whose sum over the partitions j is the full-batch objective (L-BFGS) or, over a slice of each
shard's own shuffled order, one synchronous mini-batch's (:func:`batch_gradient`); and
:meth:`deltaprop.MLP.epoch_runner` runs the compiled per-sample or mini-batch epoch on a slice of
that order (local SGD, :func:`local_epoch`). The reductions (:func:`add`, :func:`mix`) carry
their sums as :class:`Acc` (value plus rounding error), so the result does not depend on which
worker added which partitions.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp
from dask.sizeof import sizeof

from ..engine import MLP, kernel_input
from ..estimators.objective import SklearnLoss
from ..parallel import Threads

if TYPE_CHECKING:
    from sklearn.preprocessing import LabelBinarizer

__all__ = ["NetSpec", "Targets", "Part", "Shard", "load", "labels", "merge_labels", "finalize",
           "summary", "partitions", "loss_and_gradient", "local_epoch", "mix", "batch_gradient",
           "validation", "add", "predict_block", "order", "Acc", "value"]


# --------------------------------------------------------------------------- networks
@dataclass(frozen=True)
class NetSpec:
    """What a worker needs to rebuild the network (everything but the weights)."""

    layer_sizes: tuple[int, ...]
    hidden: str
    output: str
    loss: str
    backend: str
    dtype: str

    @classmethod
    def of(cls, net: MLP, backend: str) -> NetSpec:
        """The spec of ``net``, rebuilt on the workers with ``backend``."""
        return cls(tuple(net.layer_sizes), net.hidden, net.output, net.loss_function, backend,
                   net.dtype.name)


_FREE: dict[NetSpec, list[MLP]] = {}  # spec -> networks not in use on this worker
_LOCK = threading.Lock()


@contextlib.contextmanager
def network(spec: NetSpec, w: np.ndarray) -> Iterator[MLP]:
    """A network for ``spec`` with weights ``w``, this task's alone while the block runs (built
    once per worker and reused: tasks on several threads each borrow their own)."""
    with _LOCK:
        free = _FREE.setdefault(spec, [])
        net = free.pop() if free else None
    if net is None:
        net = MLP(list(spec.layer_sizes), hidden=spec.hidden, output=spec.output, loss=spec.loss,
                  backend=spec.backend, dtype=spec.dtype, random_state=0)
    net.w[...] = w
    try:
        yield net
    finally:
        with _LOCK:
            free.append(net)


def partitions(fn: Callable[..., Any], reducer: Callable[..., tuple], payload: Any, shards: Sequence[Shard],
               args: Sequence[tuple], threads: int = 1, n_jobs: int | None = None) -> tuple:
    """One worker's share of a round: ``fn(shard, payload, *a, n_jobs=...)`` for each of its
    shards, on up to ``threads`` threads (:class:`deltaprop.parallel.Threads`: the kernels
    release the GIL), the results reduced in shard order.

    ``n_jobs`` (threads inside one shard's sums) defaults to the threads the shards leave free.
    """
    pool = max(1, min(int(threads), len(shards)))
    inner = n_jobs if n_jobs is not None else max(1, int(threads) // pool)
    if pool == 1:
        results = [fn(shard, payload, *a, n_jobs=inner)
                   for shard, a in zip(shards, args, strict=True)]
    else:
        with Threads(pool) as th:
            results = th.run(lambda k: fn(shards[k], payload, *args[k], n_jobs=inner),
                             range(len(shards)))
    return reducer(*results)


# --------------------------------------------------------------------------- the data
@dataclass
class Targets:
    """How raw targets become the network's T (and class weights multiply s).

    ``binarizer`` is the classifier's fitted LabelBinarizer (None for a regressor);
    ``class_weight`` the weight of each of ``binarizer.classes_`` (None: all 1).
    """

    binarizer: LabelBinarizer | None = None
    class_weight: np.ndarray | None = None

    def encode(self, y: np.ndarray, dtype: str | np.dtype) -> np.ndarray:
        """T (n, K) of the network's dtype: y binarised (classifier) or as it is (regressor)."""
        if self.binarizer is None:
            T = y.reshape(-1, 1) if y.ndim == 1 else y
        else:
            T = self.binarizer.transform(y)
            T = T.reshape(-1, 1) if T.ndim == 1 else T
        return np.ascontiguousarray(T, dtype=dtype)

    def weights(self, y: np.ndarray) -> np.ndarray | None:
        """Each sample's class weight (None when there are none)."""
        if self.class_weight is None:
            return None
        assert self.binarizer is not None  # class weights are a classifier's, with its binarizer
        return self.class_weight[np.searchsorted(self.binarizer.classes_, y)]


@dataclass
class Part:
    """A loaded partition: X cast for the kernels, raw targets y, raw sample weights s."""

    X: np.ndarray | sp.csr_matrix
    y: np.ndarray
    s: np.ndarray | None


@dataclass
class Shard:
    """A partition ready for training: rows (X, T, s) and validation rows (Xv, Tv, sv, yv)."""

    X: np.ndarray | sp.csr_matrix
    T: np.ndarray
    s: np.ndarray
    Xv: np.ndarray | sp.csr_matrix | None = None
    Tv: np.ndarray | None = None
    sv: np.ndarray | None = None
    yv: np.ndarray | None = None

    def rows(self, dtype: str | np.dtype,
             validation: bool = False) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray, np.ndarray]:
        """``(X, T, s)`` (or the validation rows) as the kernels take them: a shard that came
        over the network may hold read-only buffers, copied here (never otherwise)."""
        X, T, s = (self.Xv, self.Tv, self.sv) if validation else (self.X, self.T, self.s)
        return (kernel_input(X, dtype), np.require(T, dtype, ["C", "W"]),
                np.require(s, dtype, ["C", "W"]))

    def order(self, seed: int, j: int, epoch: int, shuffle: bool) -> np.ndarray:
        """:func:`order` of these rows as partition ``j``, kept until another epoch asks (the
        synchronous batches of an epoch each take a slice of it)."""
        key = (seed, j, epoch, shuffle)
        kept = self.__dict__.get("_order")
        if kept is None or kept[0] != key:
            kept = self._order = (key, order(self.n, seed, j, epoch, shuffle))
        return kept[1]

    @property
    def n(self) -> int:
        """The training rows."""
        return self.X.shape[0]

    @property
    def n_val(self) -> int:
        """The validation rows (0 without early stopping)."""
        return 0 if self.Xv is None else self.Xv.shape[0]


def _values(a: Any) -> Any:
    """A block as a NumPy array (pandas partitions included); scipy sparse stays sparse."""
    if sp.issparse(a):
        return a
    return np.asarray(a.to_numpy() if hasattr(a, "to_numpy") else a)


def load(X: Any, y: Any, s: Any, dtype: str, nonnegative: bool = False) -> Part:
    """Partition ``(X, y, s)`` as the kernels take it; ValueError for what the estimators reject."""
    X, y = _values(X), _values(y)
    s = None if s is None else _values(s)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D; a partition has shape {X.shape}")
    if not sp.issparse(X) and X.dtype.kind not in "biuf":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"X must be numeric; a partition has dtype {X.dtype}") from None
    X = kernel_input(X, dtype)
    data = X.data if sp.issparse(X) else X
    if not np.isfinite(data).all():
        raise ValueError("Input X contains NaN or infinity.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.shape[0] != X.shape[0] or (s is not None and s.shape != (X.shape[0],)):
        raise ValueError(f"a partition has {X.shape[0]} rows of X, {y.shape[0]} of y"
                         + ("" if s is None else f" and {s.shape[0]} sample weights")
                         + ": X, y and sample_weight must be partitioned alike")
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        raise ValueError("Input y contains NaN or infinity.")
    if nonnegative and y.size and np.min(y) < 0:
        raise ValueError("Some value(s) of y are negative which is not allowed for Poisson "
                         "regression.")
    if s is not None:
        s = np.ascontiguousarray(s, dtype=dtype)
    return Part(X, y, s)


def labels(part: Part) -> tuple[np.ndarray, np.ndarray, int]:
    """``(values, counts, n_columns)`` of the partition's targets (n_columns 0 for a 1-D y)."""
    values, counts = np.unique(part.y, return_counts=True)
    return values, counts, (part.y.shape[1] if part.y.ndim == 2 else 0)


def merge_labels(*results: tuple) -> tuple[np.ndarray, np.ndarray, int]:
    """The union of :func:`labels` results, counts added (one step of the tree)."""
    values = np.unique(np.concatenate([v for v, _, _ in results]))
    counts = np.zeros(values.shape[0], dtype=np.int64)
    for v, c, _ in results:
        counts[np.searchsorted(values, v)] += c
    return values, counts, max(k for _, _, k in results)


def finalize(part: Part, j: int, targets: Targets, dtype: str, validation_fraction: float,
             seed: int) -> Shard:
    """The shard of partition ``j``: targets encoded, class weights applied, and (with
    ``validation_fraction`` > 0) ceil(fraction * n) rows, drawn from ``(seed, j)``, set aside."""
    T = targets.encode(part.y, dtype)
    s = np.ones(part.X.shape[0], dtype=dtype) if part.s is None else np.require(part.s, dtype, "W")
    part = Part(kernel_input(part.X, dtype), part.y, s)  # a part that came over the network
    # may hold read-only buffers: copied once here, not in every task
    cw = targets.weights(part.y)
    if cw is not None:
        s = np.ascontiguousarray(s * cw, dtype=dtype)
    if not validation_fraction:
        return Shard(part.X, T, s)
    n = part.X.shape[0]
    perm = np.random.default_rng((seed, j)).permutation(n)
    n_val = int(np.ceil(validation_fraction * n))  # train_test_split's rounding
    val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    X = part.X
    return Shard(kernel_input(X[tr], dtype), T[tr], s[tr], kernel_input(X[val], dtype), T[val],
                 s[val], part.y[val])


def summary(shard: Shard, loss: str, spec_backend: str) -> tuple:
    """``(n, S, C, n_val, S_val, C_val, backend)``: rows, sums of weights and Poisson constants
    :math:`\\sum_n s_n c_n` of the training and validation rows, and the backend used here."""
    from ..backends import get_backend

    out = [shard.n, float(shard.s.sum(dtype=np.float64)),
           SklearnLoss(loss, shard.T).batch_const(shard.s)]
    Tv, sv = shard.Tv, shard.sv
    if Tv is None or sv is None:  # no validation rows (Xv, Tv, sv and yv come together)
        out += [0, 0.0, 0.0]
    else:
        out += [shard.n_val, float(sv.sum(dtype=np.float64)), SklearnLoss(loss, Tv).batch_const(sv)]
    return (*out, get_backend(spec_backend).name)


# --------------------------------------------------------------------------- L-BFGS
def loss_and_gradient(shard: Shard, w: np.ndarray, spec: NetSpec,
                      n_jobs: int | None = None) -> tuple[float, np.ndarray]:
    r"""``(E_j, g_j)``: :math:`\sum_n s_n E_n` and :math:`\sum_n s_n \nabla E_n` over the
    shard's rows at weights ``w``, the gradient in float64 (the engine's sums, unchanged)."""
    g = np.empty(len(w), dtype=np.float64)
    with network(spec, w) as net:
        X, T, s = shard.rows(net.dtype)
        E, _ = net.loss_and_gradient(X, T, s, out=g, check_input=False, n_jobs=n_jobs)
    return float(E), g


class Acc:
    r"""A sum carried as ``hi + lo`` (Knuth's TwoSum): each addition keeps its rounding error.

    .. math:: s = a + b, \quad b' = s - a, \quad e = (a - (s - b')) + (b - b')

    ``value()`` is then the exact sum rounded once, whatever order the terms came in (up to
    errors of order :math:`\varepsilon^2`): sums over partitions do not depend on which worker
    added which partitions, so a fit is reproducible bit for bit wherever its tasks ran.
    """

    __slots__ = ("hi", "lo")

    def __init__(self, hi: Any, lo: Any = 0.0) -> None:
        self.hi, self.lo = hi, lo

    def __add__(self, other: Any) -> Acc:
        b, lo = (other.hi, other.lo) if isinstance(other, Acc) else (other, 0.0)
        s = self.hi + b
        bb = s - self.hi
        return Acc(s, self.lo + lo + ((self.hi - (s - bb)) + (b - bb)))

    def value(self) -> Any:
        """hi + lo: the sum, rounded once."""
        return self.hi + self.lo


def _reduce(parts: Sequence[tuple], ops: Sequence[str]) -> tuple:
    """Position-wise reduction of tuples: ``"sum"`` (as :class:`Acc`), ``"max"`` or ``"all"``."""
    total = [Acc(p) if op == "sum" and not isinstance(p, Acc) else p
             for p, op in zip(parts[0], ops, strict=True)]
    for part in parts[1:]:
        for i, (p, op) in enumerate(zip(part, ops, strict=True)):
            total[i] = total[i] + p if op == "sum" else (max(total[i], p) if op == "max"
                                                          else total[i] and p)
    return tuple(total)


def add(*parts: tuple) -> tuple:
    """Position-wise sums of tuples of numbers and arrays (each an :class:`Acc`)."""
    return _reduce(parts, ("sum",) * len(parts[0]))


def value(result: tuple) -> tuple:
    """A reduced tuple with every :class:`Acc` rounded to its value."""
    return tuple(v.value() if isinstance(v, Acc) else v for v in result)


# --------------------------------------------------------------------------- local SGD
def order(n: int, seed: int, j: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The visiting order of partition ``j`` in ``epoch``: a permutation drawn from
    ``(seed, j, epoch)`` (any worker, any retry draws the same one), or ``0..n-1``."""
    if not shuffle:
        return np.arange(n, dtype=np.intp)
    return np.random.default_rng((seed, j, epoch)).permutation(n).astype(np.intp)


def local_epoch(shard: Shard, params: tuple, j: int, spec: NetSpec, batch_size: int, seed: int,
                epoch: int, shuffle: bool, start: int, stop: int, weigh: bool = True,
                n_jobs: int | None = None) -> tuple:
    r"""Local SGD on one partition: from the broadcast ``params = (w, state, t, hyper, code)``
    (weights, optimizer state or None for plain sgd, step counter, hyper-parameters and rule of
    :class:`deltaprop.estimators.solvers.Optimizer`), run the compiled epoch kernel
    (:meth:`deltaprop.MLP.epoch_runner`) over ``order[start:stop]`` of this epoch's order, and
    return what :func:`mix` adds.

    Returns ``(u w', m state', t' - t, t', data, penalty, const, m, finite)`` with m = stop -
    start samples visited and u = m if ``weigh`` (the terms of the weighted mean
    :math:`\bar w = \sum_j m_j w_j / \sum_j m_j`) else 1 (the terms of :math:`\sum_j w_j`):
    the step counter's increment and its value, the kernels' loss sums (each batch's taken
    before its update), the Poisson constant of these batches and whether the weights stayed
    finite. One thread (``n_jobs`` is not used: the partitions are the parallelism).
    """
    w, state, t, hyper, code = params
    stateless = state is None  # plain sgd keeps no state: none is sent, none comes back
    if stateless:
        state = np.zeros((2, len(w)), dtype=np.asarray(w).dtype)
    B = max(1, min(batch_size, shard.n))
    visit = order(shard.n, seed, j, epoch, shuffle)[start:stop]
    state, t, hyper = (np.array(a, copy=True) for a in (state, t, hyper))  # ours to write
    t0 = int(t[0])
    losses = np.zeros((1, 2), dtype=np.float64)
    m = float(visit.shape[0])
    with network(spec, w) as net:
        X, T, s = shard.rows(net.dtype)
        net.epoch_runner(X, T, B)(X, T, s, visit[None, :], code, hyper, state, t, losses)
        finite = bool(np.isfinite(net.w).all() and np.isfinite(losses).all())
        uw = net.w.astype(np.float64)
        if weigh:
            uw *= m
    const = SklearnLoss(spec.loss, T).epoch_const(s, visit, B)
    return (uw, 0.0 if stateless else m * state.astype(np.float64), int(t[0]) - t0, int(t[0]),
            float(losses[0, 0]), float(losses[0, 1]), const, m, finite)


def mix(*parts: tuple) -> tuple:
    """Sum :func:`local_epoch` results (the step counters: their increments added and their
    largest value kept; finite: all)."""
    return _reduce(parts, ("sum", "sum", "sum", "max", "sum", "sum", "sum", "sum", "all"))


def batch_gradient(shard: Shard, w: np.ndarray, j: int, spec: NetSpec, seed: int, epoch: int,
                   shuffle: bool, start: int, stop: int, n_jobs: int | None = None) -> tuple:
    r"""Partition j's share of one synchronous mini-batch: the sums over the rows
    ``order[start:stop]`` of this epoch's order (:func:`order`) at weights ``w``.

    Returns ``(E, g, S, C, m)``: :math:`E = \sum_n s_n E_n`, :math:`g = \sum_n s_n \nabla
    E_n` (float64), :math:`S = \sum_n s_n`, the Poisson constant :math:`C = \sum_n s_n c_n`
    and m rows, all of which add over the partitions to the batch's own sums
    (:meth:`deltaprop.MLP.loss_and_gradient`, unchanged).
    """
    visit = shard.order(seed, j, epoch, shuffle)[start:stop]
    g = np.zeros(len(w), dtype=np.float64)
    if visit.shape[0] == 0:
        return 0.0, g, 0.0, 0.0, 0.0
    with network(spec, w) as net:
        X, T, s = shard.rows(net.dtype)
        Xb, Tb, sb = X[visit], np.ascontiguousarray(T[visit]), np.ascontiguousarray(s[visit])
        E, _ = net.loss_and_gradient(kernel_input(Xb, net.dtype), Tb, sb, out=g,
                                     check_input=False, n_jobs=n_jobs)
    return (float(E), g, float(sb.sum(dtype=np.float64)), SklearnLoss(spec.loss, Tb).batch_const(sb),
            float(visit.shape[0]))


# --------------------------------------------------------------------------- early stopping
def validation(shard: Shard, w: np.ndarray, spec: NetSpec, targets: Targets, weighted: bool,
               n_jobs: int | None = None) -> tuple[float, np.ndarray]:
    r"""Sums for the validation score and loss on the shard's validation rows at ``w``.

    ``(E, stats)``: :math:`E = \sum s_n E_n` and, for a classifier, ``[Σ u, Σ u·correct]``,
    for a regressor ``[Σ u, Σ u t, Σ u t², Σ u (t - y)²]`` per output, with u the sample
    weights when ``weighted`` (else 1): what accuracy and R² need, added over partitions.
    """
    if shard.n_val == 0:
        K = spec.layer_sizes[-1]
        return 0.0, np.zeros(2 if targets.binarizer is not None else (4, K))
    with network(spec, w) as net:
        Xv, Tv, sv = shard.rows(net.dtype, validation=True)
        out = np.empty(Tv.shape, dtype=net.dtype)
        E = net.loss(Xv, Tv, sv, outputs=out, check_input=False, n_jobs=n_jobs)
    u = sv.astype(np.float64) if weighted else np.ones(shard.n_val)
    if not np.isfinite(out).all():
        return float(E), np.full(2 if targets.binarizer is not None else (4, out.shape[1]), np.nan)
    if targets.binarizer is not None:
        pred = targets.binarizer.inverse_transform(out.ravel() if out.shape[1] == 1 else out)
        correct = pred == shard.yv if pred.ndim == 1 else (pred == shard.yv).all(axis=1)
        return float(E), np.array([u.sum(), u @ correct])
    T = Tv.astype(np.float64)
    r = T - out
    return float(E), np.array([np.broadcast_to(u.sum(), T.shape[1]), u @ T, u @ (T * T),
                               u @ (r * r)])


# --------------------------------------------------------------------------- sizes
# What Dask counts for these objects (worker memory limits, spilling, the transfer logs):
# their arrays' bytes, not the few bytes of a Python object it would count otherwise.
@sizeof.register(Acc)
def _sizeof_acc(a: Acc) -> int:
    return sizeof(a.hi) + sizeof(a.lo)


@sizeof.register(Part)
@sizeof.register(Shard)
def _sizeof_rows(p: Part | Shard) -> int:
    return sum(sizeof(v) for v in vars(p).values() if v is not None)


# --------------------------------------------------------------------------- prediction
def predict_block(X: Any, model: Any, method: str) -> np.ndarray:
    """``model.<method>(X)`` on one block of rows (``model``: a plain deltaprop estimator)."""
    return getattr(model, method)(_values(X))
