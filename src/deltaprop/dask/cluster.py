r"""One fit's view of the Dask cluster: where the shards live, named tasks, rounds, retries.

Design
------
``fit`` loads and persists each row partition as a :class:`~deltaprop.dask.shards.Shard` on a
worker (its *home*: where it was loaded, unless that worker got more than its share,
:meth:`Cluster.place`), and from then on sends only small things. A round
(:meth:`Cluster.round`) is one task per home worker carrying the payload (the weights; with
the optimizer state for local SGD), which runs that worker's partitions and adds their results
there; the per-worker sums come back to the client (through a tree of ``deltaprop-sum`` tasks
when there are more than :data:`SPLIT_EVERY` workers). Sums are carried with their rounding
errors (:class:`~deltaprop.dask.shards.Acc`), so a result does not depend on which worker
added which partitions.

A round is all-or-nothing on the client: its result is applied only once it has arrived. If a
worker dies, Dask reruns its tasks elsewhere and recomputes lost partitions from their lineage
(dask collections); the round is retried (:meth:`Cluster.run`). Partitions that cannot be
recomputed (scattered from the client) end the fit with :class:`WorkerLostError`.
"""

from __future__ import annotations

import itertools
import time
import uuid
from concurrent.futures import CancelledError
from typing import Any, Callable, Sequence, TypeVar

import distributed
import numpy as np
from distributed.comm.core import CommClosedError
from distributed.scheduler import KilledWorker

from .shards import partitions, value

__all__ = ["SPLIT_EVERY", "WORKERS_EVERY", "EMBED_BYTES", "RETRIES", "WorkerLostError", "Cluster",
           "get_client"]

#: inputs per task of the reduction tree across workers (its last level is added on the client)
SPLIT_EVERY = 4
#: seconds between two looks at which workers are alive (a shard's home may have gone)
WORKERS_EVERY = 2.0
#: a payload (weights, optimizer state) up to this size travels inside its task (through the
#: scheduler, no extra round trip); a larger one is scattered from the client to the workers
EMBED_BYTES = 1 << 20
#: how often a round or evaluation is retried after losing a worker whose partitions Dask
#: could recompute
RETRIES = 3
_LOST = (CancelledError, KilledWorker, CommClosedError)
_R = TypeVar("_R")


class WorkerLostError(RuntimeError):
    """A worker died during ``fit`` and the fit could not go on (the estimator is unchanged)."""


class Cluster:
    """One fit's view of the cluster: where the shards live, named tasks, rounds, retries.

    Keys are ``deltaprop-<name>-<fit token>-<call>-<index>``, so the dashboard groups the
    tasks by ``<name>`` (``deltaprop-gradient``, ``deltaprop-local-epoch``, ...). Partition j
    has a home worker (``homes[j]``); its tasks are placed there (a preference, not a
    requirement: when the home is gone they run wherever Dask recomputes the shard).

    Parameters
    ----------
    client : distributed.Client
        The client the fit submits its tasks through.
    """

    def __init__(self, client: distributed.Client) -> None:
        self.client = client
        self.token = uuid.uuid4().hex[:12]
        self.calls = itertools.count()
        self.shards: list[distributed.Future] = []
        self.homes: list[str | None] = []
        self._threads: dict[str, int] = {}
        self._asked = -np.inf

    def key(self, name: str, call: int, index: int) -> str:
        """The task key ``deltaprop-<name>-<fit token>-<call>-<index>``."""
        return f"deltaprop-{name}-{self.token}-{call}-{index}"

    def submit(self, name: str, call: int, index: int, fn: Callable[..., Any], *args: Any,
               home: str | None = None) -> distributed.Future:
        """``fn(*args)`` as the task :meth:`key` ``(name, call, index)``, preferably on ``home``."""
        where = {} if home is None else {"workers": [home], "allow_other_workers": True}
        return self.client.submit(fn, *args, key=self.key(name, call, index), **where)

    def map(self, name: str, fn: Callable[..., Any], items: Sequence[Any], *args: Any) -> list[distributed.Future]:
        """``fn(item, *args)`` for every item, one task each (items may be futures)."""
        call = next(self.calls)
        return [self.submit(name, call, i, fn, item, *args) for i, item in enumerate(items)]

    def reduce(self, name: str, fn: Callable[..., Any], futures: list[distributed.Future], at_most: int = 1,
               homes: list[str | None] | None = None) -> list[distributed.Future]:
        """Reduce ``futures`` with ``fn(*group)`` in a fixed tree of :data:`SPLIT_EVERY`-sized
        groups, in their order, until at most ``at_most`` remain (each group's task placed on
        ``homes`` of its first item, if given)."""
        while len(futures) > at_most:
            call = next(self.calls)
            futures = [self.submit(name, call, i // SPLIT_EVERY, fn, *futures[i : i + SPLIT_EVERY],
                                   home=None if homes is None else homes[i])
                       for i in range(0, len(futures), SPLIT_EVERY)]
            homes = None if homes is None else homes[::SPLIT_EVERY]
        return futures

    # ------------------------------------------------------------------ the shards
    def place(self, parts: list[distributed.Future], fn: Callable[..., Any], *args: Any) -> None:
        """Persist ``fn(part_j, j, *args)`` as shard j, keeping each partition on the worker that
        loaded it unless that worker holds more than its share (by threads): those move once."""
        distributed.wait(parts)
        who = self.client.who_has(parts)
        threads = self._workers(refresh=True)
        total, J = sum(threads.values()), len(parts)
        cap = {a: -(-J * n // total) for a, n in threads.items()}
        count = dict.fromkeys(threads, 0)
        homes: list[str | None] = []
        for p in parts:
            home = next((a for a in who.get(p.key, ()) if a in cap and count[a] < cap[a]), None)
            homes.append(home)
            if home is not None:
                count[home] += 1
        for j, home in enumerate(homes):
            if home is None:
                home = homes[j] = min(threads, key=lambda a: (count[a] / threads[a], a))
                count[home] += 1
        call = next(self.calls)
        self.shards = [self.submit("shard", call, j, fn, p, j, *args, home=homes[j])
                       for j, p in enumerate(parts)]
        self.homes = homes

    def _workers(self, refresh: bool = False) -> dict[str, int]:
        """``{address: threads}`` of the live workers, asked of the scheduler at most every
        :data:`WORKERS_EVERY` seconds (or when ``refresh``)."""
        now = time.monotonic()
        if refresh or now - self._asked > WORKERS_EVERY:
            self._threads, self._asked = self.client.nthreads(), now
        return self._threads

    def _refresh_homes(self, refresh: bool = False) -> None:
        """After a worker left: where each shard is now (None while Dask recomputes it)."""
        alive = self._workers(refresh)
        if all(h in alive for h in self.homes):
            return
        who = self.client.who_has(self.shards)
        self.homes = [next((a for a in who.get(f.key, ()) if a in alive), None) for f in self.shards]

    # ------------------------------------------------------------------ rounds
    def round(self, name: str, fn: Callable[..., Any], payload: Any, reducer: Callable[..., tuple],
              args: Callable[[int], tuple] = lambda j: (), active: Sequence[int] | None = None,
              n_jobs: int | None = None) -> tuple:
        """One round: ``fn(shard_j, payload, *args(j))`` for every active partition, reduced.

        One task per home worker (``deltaprop-<name>``) carries ``payload`` (the weights) and
        runs its partitions (on the worker's threads, :func:`~deltaprop.dask.shards.partitions`),
        adding their results in partition order; those are added in a fixed tree
        (``deltaprop-sum``), its last level of at most :data:`SPLIT_EVERY` on the client.
        Retried as :meth:`run` says.

        Parameters
        ----------
        name : str
            The tasks' name (``deltaprop-<name>`` on the dashboard).
        fn : callable
            ``fn(shard, payload, *args(j), n_jobs=...)``, one partition's result.
        payload : object
            What every task carries (the weights, ...).
        reducer : callable
            Adds results (:func:`~deltaprop.dask.shards.add`, :func:`~deltaprop.dask.shards.mix`).
        args : callable, default: no arguments
            ``args(j)``: partition j's own arguments.
        active : sequence of int or None, default=None
            The partitions taking part (None: all).
        n_jobs : int or None, default=None
            Threads inside one partition's sums.

        Returns
        -------
        tuple
            The reduced result, every sum rounded once.

        Raises
        ------
        WorkerLostError
            A worker was lost and the round cannot be run again.
        """
        active = list(range(len(self.shards))) if active is None else list(active)

        def build(retry: bool) -> tuple:
            self._refresh_homes(refresh=retry)
            threads = self._workers()
            call = next(self.calls)
            groups: dict[str | None, list[int]] = {}
            for j in active:
                groups.setdefault(self.homes[j], []).append(j)
            sent = payload
            if _nbytes(payload) > EMBED_BYTES:  # large: straight from the client to the workers
                homes = [a for a in groups if a is not None]
                sent = self.client.scatter([payload], workers=homes or None,
                                           broadcast=bool(homes), hash=False)[0]
            futures = [self.submit(name, call, i, partitions, fn, reducer, sent,
                                   [self.shards[j] for j in js], [args(j) for j in js],
                                   1 if a is None else threads.get(a, 1), n_jobs, home=a)
                       for i, (a, js) in enumerate(groups.items())]
            futures = self.reduce("sum", reducer, futures, SPLIT_EVERY, list(groups))
            return value(reducer(*self.client.gather(futures)))

        return self.run(build)

    def run(self, build: Callable[[bool], _R]) -> _R:
        """``build(retry)``: submit the tasks of one round and return its result.

        A lost worker is survived when Dask can recompute everything (the round is submitted
        again, at most :data:`RETRIES` times); otherwise :class:`WorkerLostError`.
        """
        attempt = 0
        while True:  # ends with the result, or with WorkerLostError after RETRIES retries
            try:
                return build(attempt > 0)
            except _LOST as exc:
                lost = [j for j, f in enumerate(self.shards) if f.status in ("cancelled", "lost")]
                if lost or isinstance(exc, KilledWorker) or attempt == RETRIES:
                    raise WorkerLostError(self._lost_message(lost, exc)) from exc
            attempt += 1

    def _lost_message(self, lost: list[int], exc: BaseException) -> str:
        if lost:
            why = (f"partitions {lost} of the training data were lost with it and cannot be "
                   "recomputed: they were scattered from this client (NumPy input), not computed "
                   "from a dask collection. Pass dask arrays or dataframes so that Dask can "
                   "recompute lost partitions")
        elif isinstance(exc, KilledWorker):
            why = f"a task killed {type(exc).__name__}: {exc}"
        else:
            why = f"the round failed {RETRIES + 1} times ({type(exc).__name__}: {exc})"
        return (f"a Dask worker was lost during fit: {why}. The estimator is unchanged "
                "(as before this fit).")

    def release(self) -> None:
        """Cancel the shards: the fit is over (the workers free their memory)."""
        if self.shards:
            self.client.cancel(self.shards)
        self.shards = []


def _nbytes(payload: Any) -> int:
    return sum(getattr(a, "nbytes", 8) for a in payload) if isinstance(payload, tuple) \
        else getattr(payload, "nbytes", 8)


def get_client(client: distributed.Client | None) -> distributed.Client:
    """``client``, or else the current one (ValueError when there is none)."""
    if client is not None:
        return client
    try:
        return distributed.default_client()
    except ValueError:
        raise ValueError("deltaprop.dask estimators train on a dask.distributed cluster: create "
                         "a distributed.Client first (e.g. Client('tcp://scheduler:8786')) or "
                         "pass client=") from None

