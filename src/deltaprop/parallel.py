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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Literal, TypeVar

from joblib import effective_n_jobs as _joblib_n_jobs

__all__ = ["effective_n_jobs", "shard_bounds", "piece_bounds", "Threads"]

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

#: threadpoolctl's ThreadpoolController, made at the first use
_CONTROLLER: list[Any] = []


def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded BLAS libraries, inspected once: inspecting the loaded
    libraries costs far more than setting a limit through the controller afterwards."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def effective_n_jobs(n_jobs: int | None) -> int:
    """The number of threads ``n_jobs`` asks for (scikit-learn's rules, at least 1).

    Parameters
    ----------
    n_jobs : None or int
        None is 1, a positive count itself, -1 all cores, -2 all but one, ...

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``n_jobs`` is not None or a non-zero integer.
    """
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ValueError(f"n_jobs must be None or a non-zero integer; got {n_jobs!r}")
    if n_jobs > 0:  # joblib's answer for a positive count, without asking its active backend
        return n_jobs
    return max(1, int(_joblib_n_jobs(n_jobs)))


def shard_bounds(n: int, n_shards: int, multiple: int = 1) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: ``n`` items in at most ``n_shards`` contiguous, balanced ranges
    whose starts are multiples of ``multiple`` (whole batches); empty ranges are dropped.

    Parameters
    ----------
    n : int
        Items.
    n_shards : int
        Ranges wanted, at most.
    multiple : int
        Every start is a multiple of it.

    Returns
    -------
    list of (int, int)
    """
    units = -(-n // multiple)
    n_shards = max(1, min(n_shards, units))
    cuts = [min(n, (units * j // n_shards) * multiple) for j in range(n_shards + 1)]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=False) if b > a]


def piece_bounds(n: int, n_threads: int, min_rows: int = 1, max_pieces: int = 0) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: ``n`` items in contiguous pieces of decreasing size, for
    ``n_threads`` threads that take them in turn (guided self-scheduling, Polychronopoulos &
    Kuck 1987). Each piece is 1/(2J) of the items still left, but at least 1/(16J) of all of
    them and ``min_rows``; there are at most ``max_pieces`` (if > 0), and the last takes what is
    left. The large first pieces keep the hand-overs few; the small last ones let a thread on a
    faster core take more of them, so the threads finish close together even when one core is
    slower (a VM's often is). The pieces depend on ``n`` and the arguments only.

    Parameters
    ----------
    n : int
        Items.
    n_threads : int
        J, the threads that take the pieces.
    min_rows : int
        Smallest piece (but the last).
    max_pieces : int
        Most pieces; 0 for no limit.

    Returns
    -------
    list of (int, int)
    """
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
    caller is interrupted (Ctrl-C) while waiting, it waits for every running call to finish
    (each is one work-sized kernel call, so this is short) before raising the first error in
    item order: no thread is still writing when the caller's rollback runs. ``stop`` is set as
    soon as one call fails or the caller is interrupted; a call that loops over several kernel
    calls checks it between them.

    Parameters
    ----------
    n : int
        Threads, the calling one included (the pool has ``n - 1``).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._limits = contextlib.ExitStack()

    def __enter__(self) -> Threads:
        self._limits.enter_context(_blas_controller().limit(limits=1, user_api="blas"))
        self._pool = ThreadPoolExecutor(max(1, self.n - 1), thread_name_prefix="deltaprop")
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        assert self._pool is not None, "__exit__ without __enter__"
        self._pool.shutdown(wait=True)
        self._limits.close()
        return False

    def run(self, fn: Callable[[_Item], _Result], items: Iterable[_Item],
            abort: Callable[[], object] | None = None) -> list[_Result | None]:
        """``[fn(item) for item in items]``, the first item on the calling thread, the others on the pool.

        Parameters
        ----------
        fn : callable
            Called once per item.
        items : iterable
            The items, in the order of the results.
        abort : callable, optional
            Called with ``stop`` set: for calls that wait for each other inside compiled code (a
            barrier), so that none waits for a call that failed.

        Returns
        -------
        list
            The results in the items' order; None for an item not started because ``stop`` was
            set.

        Raises
        ------
        BaseException
            The first error of a call, in item order, once every running call has finished.
        """
        def stop() -> None:
            self.stop.set()
            if abort is not None:
                abort()

        def call(item: _Item) -> _Result | None:
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
        pool = self._pool
        assert pool is not None, "run outside the with block"
        futures = [pool.submit(call, item) for item in items[1:]]
        try:
            first = call(items[0])  # the calling thread takes the first item: one handoff fewer
            wait(futures)
        except BaseException:  # failed or interrupted: let the threads finish their call
            stop()
            wait(futures)
            raise
        for f in futures:
            error = f.exception()
            if error is not None:
                raise error
        return [first] + [f.result() for f in futures]

    def run_dynamic(self, fn: Callable[[int, int], _Result], n_items: int) -> list[_Result]:
        """``[fn(i, j) for i in range(n_items)]``, the items taken in order by whichever of the
        threads is free (dynamic scheduling), ``j`` the taking thread's index (0 to n - 1, for
        buffers of its own). Which thread computes an item varies from call to call, so ``fn``'s
        result must not depend on ``j``. Errors and Ctrl-C as in :meth:`run`.

        Parameters
        ----------
        fn : callable
            ``fn(i, j)``, item i computed on thread j.
        n_items : int
            Items.

        Returns
        -------
        list
            The results in item order (every item is computed when this returns: a failed call
            raises).
        """
        results: list[Any] = [None] * n_items
        take = itertools.count().__next__  # one C call: atomic under the GIL

        def worker(j: int) -> None:
            while not self.stop.is_set():
                i = take()
                if i >= n_items:
                    return
                results[i] = fn(i, j)

        self.run(worker, range(min(self.n, n_items)))
        return results
