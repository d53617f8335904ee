r"""Work buffers and work sizes: aligned and kept buffers, samples per call, row chunks, rollback.

Aligned arrays, arrays and thread pools kept between calls, samples per compiled call, row
chunks, inputs as the kernels take them, and the rollback that makes a training call a
transaction.

The kernels run without the GIL and never look for signals, so Ctrl-C (KeyboardInterrupt) is
seen only when a compiled call returns. Every size here bounds the work of one call, counted in
weight visits: a sample visits each of the P weights once forward and once backward, plus
:data:`SAMPLE_OVERHEAD` of work that does not scale with P. The sizes are read when a call is
planned, so a test may shrink them (``monkeypatch.setattr(buffers, "WORK_PER_CALL", ...)``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ..parallel import Threads

__all__ = ["ALIGNMENT", "WORK_PER_CALL", "SAMPLE_OVERHEAD", "STATEFUL_PER_SAMPLE", "UNIT_ELEMENTS",
           "CACHE_ELEMENTS", "MIN_CHUNK_ROWS", "MIN_SHARD_ROWS", "PIECE_BYTES", "aligned_empty", "aligned_zeros",
           "thread_rows", "work_rows", "densified_rows", "chunk_rows", "kernel_input", "dense_rows",
           "rollback", "Workspace", "work_arrays", "thread_pool"]

#: byte alignment of ``w`` and of every per-thread buffer: a cache line, and a whole AVX-512 vector
ALIGNMENT = 64

#: The size of one compiled call, in weight visits: a call handles at most about
#: ``WORK_PER_CALL / (P + SAMPLE_OVERHEAD)`` samples (a quarter of that for per-sample momentum,
#: Nesterov and Adam, whose update reads and writes three arrays per weight). The size is chosen
#: so that a call lasts tens of milliseconds on one core: short enough for a prompt Ctrl-C, long
#: enough that the Python work between calls is lost in it.
WORK_PER_CALL = 100_000_000
#: per-sample work that does not scale with the number of weights, in weight visits
SAMPLE_OVERHEAD = 500
#: cost factor of the per-sample rules that keep optimizer state (momentum, Nesterov, Adam)
STATEFUL_PER_SAMPLE = 4

#: at most this many values in each unit buffer (A, Z, D) and densified chunk of a sparse X
UNIT_ELEMENTS = 1 << 22
#: the unit buffers of one chunk of rows should hold about this many values (three buffers of
#: 0.5 MB in float64: the forward pass's A and Z are still in cache when δ-backprop and the
#: gradient read them back), but at least :data:`MIN_CHUNK_ROWS` rows, for the matrix products
CACHE_ELEMENTS = 1 << 16
MIN_CHUNK_ROWS = 256
#: fewer rows than this per thread are not worth a thread (forward, loss, gradient)
MIN_SHARD_ROWS = 64
#: at most this many bytes of float64 gradients of pieces of rows, one per piece, in a sharded
#: gradient sweep (this many pieces at least: 2 per thread)
PIECE_BYTES = 32 << 20


def aligned_empty(n: int, dtype: npt.DTypeLike, alignment: int = ALIGNMENT) -> np.ndarray:
    """An uninitialised array whose first element starts on an ``alignment``-byte boundary.

    The per-sample kernels sweep the first layer's rows of ``w`` with vector loads; NumPy aligns
    to 16 bytes only, and a ``w`` that starts off a 32-byte boundary makes every row's vectors
    straddle cache lines. The allocation is padded to whole ``alignment``-byte blocks, so the
    array shares no cache line with any other: a buffer one thread writes for every sample
    (units, δ, the epoch's loss sums, Adam's step count) is never false-shared with another
    thread's. For the work buffers a kernel writes before it reads (a batch's rows, units, δ,
    gradient): no pass of zeros goes through the cache before the kernel's first write.

    Parameters
    ----------
    n : int
        Number of elements.
    dtype : dtype-like
        Element type.
    alignment : int
        Byte boundary of the first element and granularity of the allocation.

    Returns
    -------
    ndarray of shape (n,)
        C-contiguous and writeable; its values are whatever the memory held.
    """
    return _aligned(np.empty, n, dtype, alignment)


def aligned_zeros(n: int, dtype: npt.DTypeLike, alignment: int = ALIGNMENT) -> np.ndarray:
    """:func:`aligned_empty`, zeroed (the same parameters); returns zeros."""
    return _aligned(np.zeros, n, dtype, alignment)


def _aligned(make: Any, n: int, dtype: npt.DTypeLike, alignment: int) -> np.ndarray:
    dtype = np.dtype(dtype)
    nbytes = -(-n * dtype.itemsize // alignment) * alignment
    buf = make(nbytes + alignment, dtype=np.uint8)
    start = (-buf.ctypes.data) % alignment
    return buf[start : start + n * dtype.itemsize].view(dtype)


def thread_rows(n_threads: int, width: int, dtype: npt.DTypeLike) -> np.ndarray:
    """A zeroed array with a row per thread, each row in cache lines of its own.

    Parameters
    ----------
    n_threads : int
        Rows J, one per thread.
    width : int
        Elements each row needs; rows are padded to whole cache lines.
    dtype : dtype-like
        Element type.

    Returns
    -------
    ndarray of shape (n_threads, >= width)
        Zeros; row j is written by thread j only.
    """
    line = ALIGNMENT // np.dtype(dtype).itemsize
    width = max(1, -(-width // line)) * line
    return aligned_zeros(n_threads * width, dtype).reshape(n_threads, width)


def work_rows(n_params: int, factor: int = 1) -> int:
    """Samples per compiled call for a network of ``n_params`` weights.

    Parameters
    ----------
    n_params : int
        Number P of weights and biases.
    factor : int
        Cost of a sample relative to plain SGD (:data:`STATEFUL_PER_SAMPLE` for per-sample rules
        that keep optimizer state).

    Returns
    -------
    int
        ``WORK_PER_CALL // (factor * (P + SAMPLE_OVERHEAD))``, at least 1.
    """
    return max(1, WORK_PER_CALL // (factor * (int(n_params) + SAMPLE_OVERHEAD)))


def densified_rows(n_features: int) -> int:
    """Rows of a sparse X densified at once: at most :data:`UNIT_ELEMENTS` values, at least one row.

    Parameters
    ----------
    n_features : int
        Number D of inputs.

    Returns
    -------
    int
        ``UNIT_ELEMENTS // D``, at least 1.
    """
    return max(1, UNIT_ELEMENTS // max(1, n_features))


def chunk_rows(n_units: int, n_params: int, X: np.ndarray | sp.spmatrix) -> int:
    """Rows of X per kernel call in a forward, loss or gradient sweep.

    Unit buffers of about :data:`CACHE_ELEMENTS` values (at least :data:`MIN_CHUNK_ROWS` rows)
    and at most :data:`UNIT_ELEMENTS`, at most :data:`WORK_PER_CALL` weight visits (at least
    :data:`MIN_CHUNK_ROWS` rows), and for a sparse X at most :data:`UNIT_ELEMENTS` densified
    inputs (:func:`densified_rows`).

    Parameters
    ----------
    n_units : int
        Units U of the network per sample (every layer's outputs).
    n_params : int
        Number P of weights and biases.
    X : ndarray or sparse matrix of shape (n, D)
        The inputs to be swept.

    Returns
    -------
    int
        Rows per chunk, at least 1.
    """
    rows = min(max(1, UNIT_ELEMENTS // n_units), max(MIN_CHUNK_ROWS, CACHE_ELEMENTS // n_units),
               max(MIN_CHUNK_ROWS, work_rows(n_params)))
    if sp.issparse(X):
        rows = min(rows, densified_rows(X.shape[1]))
    return rows


def kernel_input(X: npt.ArrayLike | sp.spmatrix, dtype: npt.DTypeLike) -> np.ndarray | sp.csr_matrix:
    """X as the kernels take it: a CSR matrix stays sparse; dense becomes C-contiguous and writeable.

    Writeable because numba compiles a separate specialisation for read-only arrays (and
    Cython's memoryviews reject them); the copy is made only when X is read-only or of another
    layout or dtype. No value is checked: this is for inputs already validated.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n, D)
        Inputs.
    dtype : dtype-like
        The network's dtype.

    Returns
    -------
    ndarray or csr_matrix of shape (n, D)
        X of ``dtype``, as the kernels take it (X itself when it already is).
    """
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=dtype)
    return np.require(X, dtype=dtype, requirements=["C", "W"])


def dense_rows(X: np.ndarray | sp.spmatrix, rows: slice | np.ndarray, dtype: npt.DTypeLike) -> np.ndarray:
    """Some rows of X as a dense C-contiguous array.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, D)
        Inputs.
    rows : slice or ndarray of intp
        The rows, in the order wanted.
    dtype : dtype-like
        The network's dtype.

    Returns
    -------
    ndarray of shape (len(rows), D)
        The rows, densified if X is sparse.
    """
    part: Any = X[rows]  # an ndarray, or a sparse matrix of those rows
    if sp.issparse(part):
        part = part.toarray()
    return np.ascontiguousarray(part, dtype=dtype)


@contextlib.contextmanager
def rollback(*arrays: np.ndarray, saved: list[np.ndarray] | None = None) -> Iterator[None]:
    """Put ``arrays`` back as they were, bit for bit, if the block raises anything.

    KeyboardInterrupt included: a training call is a transaction. The arrays (weights ``w``,
    optimizer state, step counter) are copied when the block starts and written back in place
    if it raises; the exception then propagates.

    Parameters
    ----------
    *arrays : ndarray
        The arrays the block may change.
    saved : list of ndarray, optional
        Copies kept from one block to the next (one per array): the arrays are copied into them,
        and the list's items are replaced by new copies where their shapes or dtypes differ.
        Without it, each block makes new copies.

    Yields
    ------
    None

    Examples
    --------
    >>> with rollback(net.w, state, t):  # doctest: +SKIP
    ...     runner(X, T, s, orders, solver, hyper, state, t, losses)
    """
    if saved is None:
        saved = [a.copy() for a in arrays]
    else:
        if len(saved) != len(arrays) or any(old.shape != a.shape or old.dtype != a.dtype
                                            for a, old in zip(arrays, saved, strict=True)):
            saved[:] = [np.empty_like(a) for a in arrays]
        for a, old in zip(arrays, saved, strict=True):
            np.copyto(old, a)
    try:
        yield
    except BaseException:
        for a, old in zip(arrays, saved, strict=True):
            a[...] = old
        raise


class Workspace:
    """Work arrays and thread pools kept for a block of calls (``MLP.reuse_buffers``).

    :func:`work_arrays` keeps one set of arrays per slot (a concurrent shard and use), grown
    when too small; :func:`thread_pool` one pool per thread count, started at its first use.
    Leaving the ``with`` block shuts the pools down.
    """

    def __init__(self) -> None:
        self.arrays: dict[Hashable, tuple[np.ndarray, ...]] = {}
        self.pools: dict[int, Threads] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        self._stack.close()
        return False


def work_arrays(kept: Workspace | None, slot: Hashable, size: int, count: int,
                dtype: npt.DTypeLike) -> tuple[np.ndarray, ...]:
    """``count`` uninitialised work arrays of ``size`` values.

    Parameters
    ----------
    kept : Workspace or None
        Where arrays are kept between calls; None allocates fresh ones.
    slot : hashable
        Which of the kept sets (one per concurrent shard and use).
    size : int
        Values per array.
    count : int
        Number of arrays.
    dtype : dtype-like
        Element type.

    Returns
    -------
    tuple of ndarray of shape (size,)
        Fresh arrays, or views of the slot's kept ones (replaced by larger ones when too small).
    """
    dtype = np.dtype(dtype)
    if kept is None:
        return tuple(np.empty(size, dtype=dtype) for _ in range(count))
    bufs = kept.arrays.get(slot)
    if bufs is None or bufs[0].shape[0] < size or bufs[0].dtype != dtype:
        bufs = kept.arrays[slot] = tuple(np.empty(size, dtype=dtype) for _ in range(count))
    return tuple(b[:size] for b in bufs)


def thread_pool(kept: Workspace | None, n: int) -> contextlib.AbstractContextManager[Threads]:
    """A context giving a pool of ``n`` threads (:class:`~deltaprop.parallel.Threads`).

    Parameters
    ----------
    kept : Workspace or None
        Where pools are kept; None starts a pool for the context only.
    n : int
        Threads.

    Returns
    -------
    context manager
        Entering it gives the running pool: a new one (shut down on exit), or the workspace's,
        started once for all its calls and left running on exit.
    """
    if kept is None:
        return Threads(n)
    if n not in kept.pools:
        kept.pools[n] = kept._stack.enter_context(Threads(n))
    kept.pools[n].stop.clear()
    return contextlib.nullcontext(kept.pools[n])
