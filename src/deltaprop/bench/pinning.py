"""One thread on one CPU: the thread-count variables of BLAS and OpenMP, and CPU pinning.

A benchmark of one thread must not let a thread pool (BLAS, OpenMP, numba, a peer library's)
borrow a second core: :func:`pin_threads` limits the pools, :func:`pin_to_one_cpu` holds every
thread of the process, and every child it starts, to one CPU.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["THREAD_VARS", "pin_threads", "thread_ids", "pin_to_one_cpu"]

#: The environment variables that size the thread pools of OpenMP, OpenBLAS, MKL and numba.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def pin_threads(n: int = 1) -> None:
    """Limit BLAS and OpenMP to ``n`` threads.

    The environment variables of :data:`THREAD_VARS` reach the libraries not loaded yet,
    threadpoolctl the loaded ones. Setting them before Python starts is surer still: an
    OpenBLAS pool started with more threads and limited afterwards can stall small products.
    ``NUMBA_NUM_THREADS`` is only set while numba is not imported: numba re-reads it at every
    compilation and raises if it differs from the size of a pool already launched (deltaprop's
    kernels are serial, so numba's own pool is left alone).

    Parameters
    ----------
    n : int, default 1
        The number of threads each pool may use.
    """
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    for var in THREAD_VARS:
        if var != "NUMBA_NUM_THREADS" or "numba" not in sys.modules:
            os.environ[var] = str(n)
    threadpool_limits(n)


def thread_ids() -> list[int]:
    """The ids of this process's threads.

    Returns
    -------
    list of int
        The entries of ``/proc/self/task`` (Linux); ``[0]`` (the calling thread) where the
        OS has no such directory.
    """
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


@contextlib.contextmanager
def pin_to_one_cpu(cpu: int | None = None) -> Iterator[int | None]:
    """Hold every thread of this process to one CPU while the block runs; yield that CPU.

    Threads started inside the block, and child processes (a ``--peer-python``), inherit the
    pinning, so no thread pool can borrow a second core. On leaving, every thread is put back
    on the CPUs it had (a thread started inside the block on those of the calling thread).

    Parameters
    ----------
    cpu : int or None, default None
        A CPU this process may run on; None: the highest-numbered such CPU (so
        ``taskset -c 3 deltaprop bench`` measures on CPU 3).

    Yields
    ------
    int or None
        The CPU; None, pinning nothing, where the OS has no ``sched_setaffinity`` (macOS,
        Windows).

    Raises
    ------
    ValueError
        If ``cpu`` is not one this process may run on.
    """
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    allowed = os.sched_getaffinity(0)
    if cpu is None:
        cpu = max(allowed)
    elif cpu not in allowed:
        raise ValueError(f"cannot pin to CPU {cpu}: this process may run on CPUs "
                         f"{', '.join(map(str, sorted(allowed)))}")
    before = {}
    for tid in thread_ids():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            before[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, {cpu})
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        for tid in thread_ids():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, before.get(tid, allowed))
        os.sched_setaffinity(0, allowed)
