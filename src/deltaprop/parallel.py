"""Executors: how shards of work run, here on ``n_jobs`` threads of this process.

A shard is a contiguous range of rows of X (or of an epoch's order). The compiled kernels
release the GIL, so threads run them on as many cores; inside a parallel region BLAS is held
to one thread (``threadpoolctl``), so ``n_jobs`` threads use ``n_jobs`` cores and never
``n_jobs`` times BLAS's pool. This module knows nothing of networks: the engine decides what a
shard computes and how results combine (always in shard order, so a result is deterministic
for a given ``n_jobs``).

``n_jobs`` follows scikit-learn (joblib's ``effective_n_jobs``): ``None`` is 1, ``-1`` all
cores, ``-2`` all but one.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor, wait

from joblib import effective_n_jobs as _joblib_n_jobs

__all__ = ["effective_n_jobs", "shard_bounds", "piece_bounds", "Threads"]


_CONTROLLER = []


def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, inspected once (that takes ~5 ms;
    setting a limit through it afterwards takes ~20 µs)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def effective_n_jobs(n_jobs) -> int:
    """The number of threads ``n_jobs`` asks for (scikit-learn's rules, at least 1)."""
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ValueError(f"n_jobs must be None or a non-zero integer; got {n_jobs!r}")
    if n_jobs > 0:  # joblib's answer for a positive count, without asking its active backend
        return n_jobs
    return max(1, int(_joblib_n_jobs(n_jobs)))


def shard_bounds(n: int, n_shards: int, multiple: int = 1) -> list:
    """``[(start, stop), ...]``: ``n`` items in at most ``n_shards`` contiguous, balanced ranges
    whose starts are multiples of ``multiple`` (whole batches); empty ranges are dropped."""
    units = -(-n // multiple)
    n_shards = max(1, min(n_shards, units))
    cuts = [min(n, (units * j // n_shards) * multiple) for j in range(n_shards + 1)]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def piece_bounds(n: int, n_threads: int, min_rows: int = 1, max_pieces: int = 0) -> list:
    """``[(start, stop), ...]``: ``n`` items in contiguous pieces of decreasing size, for
    ``n_threads`` threads that take them in turn (guided self-scheduling, Polychronopoulos &
    Kuck 1987). Each piece is 1/(2J) of the items still left, but at least 1/(16J) of all of
    them and ``min_rows``; there are at most ``max_pieces`` (if > 0), and the last takes what is
    left. The large first pieces keep the hand-overs few; the small last ones let a thread on a
    faster core take more of them, so the threads finish close together even when one core is
    slower (a VM's often is). The pieces depend on ``n`` and the arguments only."""
    J = max(1, n_threads)
    floor = max(1, min_rows, n // (16 * J), -(-n // max_pieces) if max_pieces > 0 else 1)
    pieces, a = [], 0
    while a < n:
        b = min(n, a + max(floor, -(-(n - a) // (2 * J))))
        if n - b < floor:  # no piece smaller than the floor at the end
            b = n
        pieces.append((a, b))
        a = b
    return pieces


class Threads:
    """A pool of ``n`` threads with BLAS held to one thread while it is open.

    ``run(fn, items)`` calls ``fn(item)`` for every item, the first in the calling thread and the
    others on the pool, and returns the results in the items' order. If any call raises, or the
    caller is interrupted (Ctrl-C) while waiting, it waits for every running call to finish (each is one work-sized kernel call, so this is
    short) before raising the first error in item order: no thread is still writing when the
    caller's rollback runs. ``stop`` is set as soon as one call fails or the caller is
    interrupted; a call that loops over several kernel calls checks it between them.
    """

    def __init__(self, n: int):
        self.n = n
        self.stop = threading.Event()
        self._pool = None
        self._limits = contextlib.ExitStack()

    def __enter__(self):
        self._limits.enter_context(_blas_controller().limit(limits=1, user_api="blas"))
        self._pool = ThreadPoolExecutor(max(1, self.n - 1), thread_name_prefix="deltaprop")
        return self

    def __exit__(self, *exc):
        self._pool.shutdown(wait=True)
        self._limits.close()
        return False

    def run(self, fn, items, abort=None):
        """``abort()``, if given, is called with ``stop`` set: for calls that wait for each
        other inside compiled code (a barrier), so that none waits for a call that failed."""
        def stop():
            self.stop.set()
            if abort is not None:
                abort()

        def call(item):
            if self.stop.is_set():
                return None
            try:
                return fn(item)
            except BaseException:
                stop()
                raise

        items = list(items)
        if not items:
            return []
        futures = [self._pool.submit(call, item) for item in items[1:]]
        try:
            first = call(items[0])  # the calling thread takes the first item: one handoff fewer
            wait(futures)
        except BaseException:  # failed or interrupted: let the threads finish their call
            stop()
            wait(futures)
            raise
        for f in futures:
            if f.exception() is not None:
                raise f.exception()
        return [first] + [f.result() for f in futures]

    def run_dynamic(self, fn, n_items):
        """``[fn(i, j) for i in range(n_items)]``, the items taken in order by whichever of the
        threads is free (dynamic scheduling), ``j`` the taking thread's index (0 to n - 1, for
        buffers of its own). Which thread computes an item varies from call to call, so ``fn``'s
        result must not depend on ``j``. Errors and Ctrl-C as in :meth:`run`."""
        results = [None] * n_items
        take = itertools.count().__next__  # one C call: atomic under the GIL

        def worker(j):
            while not self.stop.is_set():
                i = take()
                if i >= n_items:
                    return
                results[i] = fn(i, j)

        self.run(worker, range(min(self.n, n_items)))
        return results
