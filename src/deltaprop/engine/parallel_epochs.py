r"""Epoch runners on ``n_jobs`` threads (split batches, parameter mixing, Hogwild) and their table.

:data:`RUNNERS` and :func:`choose_runner` pick the runner for ``n_jobs``, ``batch_size`` and
``parallel``.

The public ``parallel="average"`` names two algorithms, both deterministic for a given
``n_jobs``: :class:`SplitBatchEpochs` for mini-batches (data parallelism, the one-thread result
up to rounding) and :class:`MixingEpochs` for per-sample SGD (iterative parameter mixing).
``parallel="hogwild"`` is :class:`HogwildEpochs` for any batch size. Every runner here is
called as :class:`~deltaprop.engine.epochs.Epochs` says.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp

from ..contract import ALPHA, MOMENTUM, MU, SGD
from ..layout import n_units
from ..parallel import Threads, shard_bounds
from .buffers import aligned_zeros, thread_rows
from .epochs import Epochs, OneThreadEpochs

if TYPE_CHECKING:
    from .mlp import MLP

__all__ = ["SplitBatchEpochs", "MixingEpochs", "HogwildEpochs", "RUNNERS", "choose_runner"]


class _OnThreads(Epochs):
    """A runner on a pool of ``n_threads`` threads, kept from ``__enter__`` to ``__exit__`` (or
    started for one call); ``_run(threads, ...)`` does the work of a call."""

    n_threads: int
    _threads: Threads | None = None

    def __enter__(self) -> Epochs:
        """Start the threads (and hold BLAS to one thread) until :meth:`__exit__`."""
        self._threads = Threads(self.n_threads).__enter__()
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        threads, self._threads = self._threads, None
        assert threads is not None, "__exit__ without __enter__"
        return threads.__exit__(*exc)

    def __call__(self, X: np.ndarray | sp.csr_matrix, T: np.ndarray, s: np.ndarray, orders: np.ndarray,
                 solver: int, hyper: np.ndarray, state: np.ndarray, t: np.ndarray,
                 losses: np.ndarray) -> np.ndarray:
        if self._threads is None:
            with self:
                return self(X, T, s, orders, solver, hyper, state, t, losses)
        self._threads.stop.clear()
        return self._run(self._threads, X, T, s, orders, solver, hyper, state, t, losses)

    def _run(self, threads: Threads, X: np.ndarray | sp.csr_matrix, T: np.ndarray, s: np.ndarray,
             orders: np.ndarray, solver: int, hyper: np.ndarray, state: np.ndarray, t: np.ndarray,
             losses: np.ndarray) -> np.ndarray:
        """The work of one call, on ``threads``; the arguments and the result as :meth:`__call__`'s."""
        raise NotImplementedError


class SplitBatchEpochs(_OnThreads, OneThreadEpochs):
    r"""Mini-batch epochs with each batch's rows split between the threads (data parallelism):
    what ``parallel="average"`` runs for ``batch_size`` > 1, with the contract's ``split_epochs``.

    For every batch, thread j sums the gradient of its share of the rows; the threads meet at a
    barrier in compiled code, each sums its slice of the J gradients (in thread order) and
    updates that slice of ``w`` and of the optimizer state, and they meet again. This is the
    one-thread algorithm, ``batch_epoch``, with each batch's gradient summed in another order:
    ``n_jobs`` changes neither the steps per epoch nor the accuracy (averaging parameters after
    rounds of several batches would halve the steps), and the result is deterministic for a
    given ``n_jobs``.

    Parameters
    ----------
    net : MLP
        The network to train.
    n_features, n_outputs : int
        D and K, for the batch buffers.
    batch_size : int
        Samples per update B, at least 2.
    n_jobs : int
        Threads; at most B of them are used (J = min(n_jobs, B)).
    """

    G: np.ndarray
    steps: np.ndarray
    sync: np.ndarray

    def __init__(self, net: MLP, n_features: int, n_outputs: int, batch_size: int, n_jobs: int) -> None:
        self.net = net
        self.batch_size = batch_size
        self.codes = net._codes
        self.J = self.n_threads = J = max(1, min(n_jobs, batch_size))
        dt, P, U = net.dtype, net.w.shape[0], n_units(net.layout)
        b = -(-batch_size // J)  # a thread's rows of a batch, at most
        self.Xb = aligned_zeros(J * b * n_features, dt).reshape(J, b, n_features)
        self.Tb = aligned_zeros(J * b * n_outputs, dt).reshape(J, b, n_outputs)
        self.sb, self.A, self.Z, self.D = (thread_rows(J, size, dt) for size in (b, b * U, b * U, b * U))
        self.G = thread_rows(J, P, dt)
        self.g = aligned_zeros(P, dt)
        self.steps = thread_rows(J, 1, np.int64)
        self.sync = aligned_zeros(3 * 8, np.int64).reshape(3, 8)

    def samples_per_call(self, solver: int) -> int:
        """J threads each take a call's worth of :class:`OneThreadEpochs`' work.

        Parameters
        ----------
        solver : int
            Update rule.

        Returns
        -------
        int
            Samples per round of J compiled calls.
        """
        return self.J * super().samples_per_call(solver)

    def _run(self, threads: Threads, X: np.ndarray | sp.csr_matrix, T: np.ndarray, s: np.ndarray,
             orders: np.ndarray, solver: int, hyper: np.ndarray, state: np.ndarray, t: np.ndarray,
             losses: np.ndarray) -> np.ndarray:
        return OneThreadEpochs.__call__(self, X, T, s, orders, solver, hyper, state, t, losses)

    def _kernel(self, X: np.ndarray, T: np.ndarray, s: np.ndarray, orders: np.ndarray, solver: int,
                hyper: np.ndarray, state: np.ndarray, t: np.ndarray, losses: np.ndarray) -> None:
        net, J = self.net, self.J
        threads = self._threads
        assert threads is not None  # a call runs inside the pool's with block (_OnThreads.__call__)
        parts = np.zeros((J, orders.shape[0], 2))
        self.sync[...] = 0

        def part(j: int) -> None:
            net._kernels.split_epochs(j, net.w, net.layout, *self.codes, X, T, s, orders, self.batch_size,
                                      solver, hyper, state, t, self.steps, self.Xb, self.Tb, self.sb,
                                      self.A, self.Z, self.D, self.G, self.g, parts, self.sync)

        threads.run(part, range(J), abort=lambda: self.sync.__setitem__((2, 0), 1))
        losses[...] = parts[0]
        for more in parts[1:]:
            losses += more


class _ShardEpochs(_OnThreads):
    """Each epoch's order cut into ``n_jobs`` contiguous shards (whole batches), shard j run by
    thread j with a :class:`OneThreadEpochs` of network ``nets[j]``. The epoch's losses are the
    sums of the threads' (each taken before its own updates)."""

    def __init__(self, net: MLP, nets: list[MLP], n_features: int, n_outputs: int, batch_size: int,
                 n_jobs: int) -> None:
        self.net, self.batch_size, self.n_threads = net, batch_size, n_jobs
        self.epochs = [OneThreadEpochs(r, n_features, n_outputs, batch_size) for r in nets]
        # each thread's loss sums, in cache lines of their own: the kernels write them for every sample
        self.parts = [aligned_zeros(2, np.float64).reshape(1, 2) for _ in nets]

    def samples_per_call(self, solver: int) -> int:
        """A thread's compiled call: :meth:`OneThreadEpochs.samples_per_call`.

        Parameters
        ----------
        solver : int
            Update rule.

        Returns
        -------
        int
            Samples per call of one thread.
        """
        return self.epochs[0].samples_per_call(solver)

    def _run(self, threads: Threads, X: np.ndarray | sp.csr_matrix, T: np.ndarray, s: np.ndarray,
             orders: np.ndarray, solver: int, hyper: np.ndarray, state: np.ndarray, t: np.ndarray,
             losses: np.ndarray) -> np.ndarray:
        n_epochs, m = orders.shape
        losses[:n_epochs] = 0.0
        if m == 0:
            return losses
        bounds = shard_bounds(m, self.n_threads, self.batch_size)
        per_call = self.samples_per_call(solver)
        solver, hyper = self._rule(solver, hyper)
        for epoch in range(n_epochs):
            self._epoch(threads, X, T, s, orders[epoch : epoch + 1], bounds, per_call, solver, hyper,
                        state, t, losses[epoch])
        return losses

    def _rule(self, solver: int, hyper: np.ndarray) -> tuple[int, np.ndarray]:
        """The update rule the threads run for ``solver``: that rule itself."""
        return solver, hyper

    def _epoch(self, threads: Threads, X: np.ndarray | sp.csr_matrix, T: np.ndarray, s: np.ndarray,
               order: np.ndarray, bounds: list[tuple[int, int]], per_call: int, solver: int, hyper: np.ndarray,
               state: np.ndarray, t: np.ndarray, loss: np.ndarray) -> None:
        """One epoch of ``order`` (1, m), its shards ``bounds`` one per thread; adds its losses to ``loss`` (2,)."""
        raise NotImplementedError


class MixingEpochs(_ShardEpochs):
    r"""Iterative parameter mixing (local SGD): what ``parallel="average"`` runs for per-sample
    SGD (``batch_size=1``).

    Each epoch's order is cut into ``n_jobs`` contiguous shards, shard j visited by thread j in
    its order. Every thread starts a round from the same ``w`` (and optimizer state), runs one
    work-sized call (:meth:`samples_per_call` samples; a whole number of batches if B > 1) of its
    shard on its own copy, and the copies are averaged, :math:`w \leftarrow \frac{1}{J} \sum_j
    w_j` (the optimizer state likewise; Adam's step counter advances by one thread's steps).
    Rounds repeat until the epoch is done, so the copies meet at least once per epoch and
    after every compiled call's worth of work (``buffers.WORK_PER_CALL``). Deterministic for a
    given ``n_jobs``. Per-sample epochs whose shards fit in one round run as one
    ``average_epochs`` call per thread instead: the threads meet at a
    barrier in compiled code, so an epoch costs no Python and no thread wake-up (the same rounds,
    with the Python rounds' results bit for bit).

    Parameters
    ----------
    net : MLP
        The network to train; each thread trains a replica of it.
    n_features, n_outputs : int
        D and K.
    batch_size : int
        Samples per update B (1 when chosen by ``parallel="average"``).
    n_jobs : int
        Threads J, at least 2.
    """

    def __init__(self, net: MLP, n_features: int, n_outputs: int, batch_size: int, n_jobs: int) -> None:
        super().__init__(net, [net._replica() for _ in range(n_jobs)], n_features, n_outputs, batch_size,
                         n_jobs)
        # each thread's optimizer state (2, P) and step count (the contract's shapes), in cache
        # lines of their own: the kernels write them for every sample
        P = net.w.shape[0]
        self.states = [aligned_zeros(2 * P, net.dtype).reshape(2, P) for _ in range(n_jobs)]
        self.steps = [aligned_zeros(1, np.int64) for _ in range(n_jobs)]
        self._mix: types.SimpleNamespace | None = None  # average_epochs' buffers, allocated at their first use

    def _run(self, threads: Threads, X: np.ndarray | sp.csr_matrix, T: np.ndarray, s: np.ndarray,
             orders: np.ndarray, solver: int, hyper: np.ndarray, state: np.ndarray, t: np.ndarray,
             losses: np.ndarray) -> np.ndarray:
        m = orders.shape[1]
        bounds = shard_bounds(m, self.n_threads, self.batch_size)
        if (self.batch_size == 1 and len(bounds) > 1 and not sp.issparse(X)
                and _rounds(bounds, self.samples_per_call(solver)) == 1):
            losses[: orders.shape[0]] = 0.0
            self._compiled_rounds(threads, X, T, s, orders, bounds, solver, hyper, state, t, losses)
            return losses
        return super()._run(threads, X, T, s, orders, solver, hyper, state, t, losses)

    def _compiled_rounds(self, threads: Threads, X: np.ndarray, T: np.ndarray, s: np.ndarray, orders: np.ndarray,
                         bounds: list[tuple[int, int]], solver: int, hyper: np.ndarray, state: np.ndarray,
                         t: np.ndarray, losses: np.ndarray) -> None:
        """Every epoch of ``orders`` as one round each, in one ``average_epochs`` call per
        thread. A thread that fails (or a Ctrl-C before the main thread's call) sets the abort
        flag, so no thread waits at the barrier for it."""
        net, J, n_epochs = self.net, len(bounds), orders.shape[0]
        if self._mix is None:
            self._mix = _mixing_buffers(net, self.n_threads)
        mix = self._mix
        mix.sync[...] = 0
        parts = np.zeros((J, n_epochs, 2))
        edges = np.asarray(bounds, dtype=np.intp)

        def part(j: int) -> None:
            net._kernels.average_epochs(j, net.w, mix.W[:J], net.layout, *net._codes, X, T, s, orders, edges,
                                        solver, hyper, state, mix.S[:J], t, mix.steps[:J], mix.a[:J],
                                        mix.z[:J], mix.delta[:J], parts, mix.sync)

        threads.run(part, range(J), abort=lambda: mix.sync.__setitem__((2, 0), 1))
        for epoch in range(n_epochs):
            for j in range(J):
                losses[epoch] += parts[j, epoch]

    def _epoch(self, threads: Threads, X: np.ndarray | sp.csr_matrix, T: np.ndarray, s: np.ndarray,
               order: np.ndarray, bounds: list[tuple[int, int]], per_call: int, solver: int, hyper: np.ndarray,
               state: np.ndarray, t: np.ndarray, loss: np.ndarray) -> None:
        """One epoch in Python rounds: each thread a call on its copy, then the copies averaged."""
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

        def shard(j: int) -> bool:
            a, b = done[j], min(done[j] + step, bounds[j][1])
            if a >= b:
                return False
            runner = self.epochs[j]
            runner.net.w[...] = w
            if stateful:
                states[j][...] = state
            steps[j][...] = t
            runner(X, T, s, order[:, a:b], solver, hyper, states[j], steps[j], parts[j])
            done[j] = b
            return True

        while any(d < b for d, (_, b) in zip(done, bounds, strict=True)):
            worked = [j for j, ok in enumerate(threads.run(shard, range(len(bounds)))) if ok]
            _mean([self.epochs[j].net.w for j in worked], w)
            if stateful:
                _mean([states[j] for j in worked], state)
            t[...] = max(steps[j][0] for j in worked)
            for j in worked:
                loss += parts[j][0]


class HogwildEpochs(_ShardEpochs):
    """Hogwild (Niu et al. 2011): what ``parallel="hogwild"`` runs, for any batch size.

    Every thread updates the one shared ``w`` without locks, a call at a time, on its contiguous
    shard of each epoch's order; it pays off when updates touch few weights (inputs that are
    mostly zero, whose rows the kernels skip). Not deterministic: updates race. Plain SGD with
    an L2 penalty runs as momentum with μ = 0 (the same update): ``sgd``'s kernel keeps the first
    layer as c V, the decay in a scalar per call, which threads sharing V cannot.

    Parameters
    ----------
    net : MLP
        The network to train, shared by the threads.
    n_features, n_outputs : int
        D and K.
    batch_size : int
        Samples per update B.
    n_jobs : int
        Threads J, at least 2.
    """

    def __init__(self, net: MLP, n_features: int, n_outputs: int, batch_size: int, n_jobs: int) -> None:
        super().__init__(net, [net] * n_jobs, n_features, n_outputs, batch_size, n_jobs)

    def _rule(self, solver: int, hyper: np.ndarray) -> tuple[int, np.ndarray]:
        """Plain SGD with L2 as momentum with μ = 0 (threads sharing ``w`` cannot keep c V)."""
        if solver == SGD and hyper[ALPHA] != 0:
            solver, hyper = MOMENTUM, hyper.copy()
            hyper[MU] = 0
        return solver, hyper

    def _epoch(self, threads: Threads, X: np.ndarray | sp.csr_matrix, T: np.ndarray, s: np.ndarray,
               order: np.ndarray, bounds: list[tuple[int, int]], per_call: int, solver: int, hyper: np.ndarray,
               state: np.ndarray, t: np.ndarray, loss: np.ndarray) -> None:
        parts = self.parts
        sums = [np.zeros(2) for _ in bounds]

        def shard(j: int) -> None:
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


#: ``parallel`` mode -> (runner for per-sample SGD, runner for mini-batches) on n_jobs > 1 threads
RUNNERS = {"average": (MixingEpochs, SplitBatchEpochs), "hogwild": (HogwildEpochs, HogwildEpochs)}


def choose_runner(net: MLP, n_features: int, n_outputs: int, batch_size: int, n_jobs: int,
                  mode: str) -> Epochs:
    """The runner of the algorithm ``n_jobs``, ``batch_size`` and ``mode`` ask for.

    Parameters
    ----------
    net : MLP
        The network to train.
    n_features, n_outputs : int
        D and K.
    batch_size : int
        Samples per update B, at least 1 (already at most the number of samples).
    n_jobs : int
        Threads, at least 1 (already as :func:`deltaprop.parallel.effective_n_jobs` gives it).
    mode : str
        A key of :data:`RUNNERS` (one of ``deltaprop.contract.PARALLEL_MODES``).

    Returns
    -------
    Epochs
        :class:`OneThreadEpochs` for one thread, else ``RUNNERS[mode][batch_size > 1]``.
    """
    if n_jobs == 1:
        return OneThreadEpochs(net, n_features, n_outputs, batch_size)
    return RUNNERS[mode][batch_size > 1](net, n_features, n_outputs, batch_size, n_jobs)


def _rounds(bounds: list[tuple[int, int]], per_call: int) -> int:
    """Rounds per epoch in parameter mixing: of about ``per_call`` samples, of equal length (no
    short last round); the longest shard sets the length, so shards one sample apart end in the
    same round."""
    return max(1, round(max(b - a for a, b in bounds) / per_call))


def _mixing_buffers(net: MLP, J: int) -> types.SimpleNamespace:
    """``average_epochs``' per-thread arrays for J threads: copies of w (W) and of the optimizer
    state (S), step counts and unit buffers, each thread's row in cache lines of its own; and
    the barrier's counters, a cache line per row."""
    dt, P, U = net.dtype, net.w.shape[0], n_units(net.layout)
    return types.SimpleNamespace(
        W=thread_rows(J, P, dt), S=thread_rows(J, 2 * P, dt), steps=thread_rows(J, 1, np.int64),
        a=thread_rows(J, U, dt), z=thread_rows(J, U, dt), delta=thread_rows(J, U, dt),
        sync=aligned_zeros(3 * 8, np.int64).reshape(3, 8))


def _mean(arrays: list[np.ndarray], out: np.ndarray) -> None:
    """``out[...] = (arrays[0] + arrays[1] + ...) / len(arrays)``, summed in list order."""
    np.add(arrays[0], arrays[1], out=out) if len(arrays) > 1 else np.copyto(out, arrays[0])
    for a in arrays[2:]:
        out += a
    if len(arrays) > 1:
        out /= len(arrays)
