r"""The arithmetic ceiling of a mini-batch epoch: its matrix products alone, timed through NumPy's BLAS.

One mini-batch of :math:`n` samples through an MLP with layer sizes :math:`d_0, \dots, d_L`
needs, for each layer :math:`l` (:math:`d_{l-1} \to d_l`), three products of the same count,
:math:`n\, d_{l-1} d_l` multiply-adds each (Bishop §5.3.1, in matrix form, the rows
of :math:`Z` being the batch's samples):

- the forward sums :math:`A = Z W` (eq. 5.48), :math:`(n, d_{l-1}) \times (d_{l-1}, d_l)`;
- the gradient :math:`Z^{\mathrm T} \Delta` (eq. 5.53 summed over the batch),
  :math:`(d_{l-1}, n) \times (n, d_l)`;
- above the first layer, the δ-recursion :math:`\Delta W^{\mathrm T}` (eq. 5.56),
  :math:`(n, d_l) \times (d_l, d_{l-1})`.

Their time alone, through the BLAS NumPy links (one thread), is the epoch's floor if the
activations, δ's elementwise factors, the gathers and the update cost nothing: a ceiling in
samples/s, ``n / seconds per batch``. It measures the machine's BLAS, not deltaprop. The caller
limits BLAS to one thread and pins the process
(:func:`~deltaprop.bench.pinning.pin_threads`,
:func:`~deltaprop.bench.pinning.pin_to_one_cpu`).

This file imports only the standard library and NumPy, like :mod:`~deltaprop.bench.data`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["MIN_REPEAT_SECONDS", "Ceiling", "batch_flop", "batch_products", "run_products", "products_ceiling"]

#: Every timed repeat of :func:`products_ceiling` lasts at least this long, whatever ``min_time``:
#: the products of one small batch take microseconds, well within the timer's and the
#: scheduler's noise.
MIN_REPEAT_SECONDS = 0.01

#: (left, right, out) of one product, ``np.dot(left, right, out)``
Product = tuple[np.ndarray, np.ndarray, np.ndarray]


class Ceiling(NamedTuple):
    """The arithmetic ceiling of one mini-batch shape, as :func:`products_ceiling` measures it.

    Attributes
    ----------
    seconds_per_batch : float
        The median over repeats of the time of one batch's products.
    mflop_per_batch : float
        :func:`batch_flop` / 1e6.
    gflop_per_second : float
        The rate the BLAS reached on those products, ``mflop_per_batch / seconds_per_batch / 1e3``.
    samples_per_second : float
        The ceiling, ``batch_size / seconds_per_batch``.
    """

    seconds_per_batch: float
    mflop_per_batch: float
    gflop_per_second: float
    samples_per_second: float


def _layers(sizes: Sequence[int]) -> list[tuple[int, int]]:
    if len(sizes) < 2 or any(int(d) < 1 for d in sizes):
        raise ValueError(f"layer sizes must be at least two positive integers, got {list(sizes)}")
    return [(int(d_in), int(d_out)) for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True)]


def batch_flop(sizes: Sequence[int], batch_size: int) -> int:
    r"""Floating-point operations in the matrix products of one mini-batch.

    .. math:: 2 n \sum_{l=1}^{L} c_l\, d_{l-1} d_l, \qquad c_1 = 2,\ c_l = 3 \ (l > 1)

    (forward sums and gradient in every layer, the δ-recursion above the first; one
    multiply-add is two operations).

    Parameters
    ----------
    sizes : sequence of int
        The layer sizes :math:`d_0, \dots, d_L`, inputs first.
    batch_size : int
        :math:`n`, the samples in the batch.

    Returns
    -------
    int
        The operation count.

    Raises
    ------
    ValueError
        If ``sizes`` has fewer than two entries or one below 1, or ``batch_size`` < 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return sum(2 * batch_size * d_in * d_out * (2 if i == 0 else 3) for i, (d_in, d_out) in enumerate(_layers(sizes)))


def batch_products(sizes: Sequence[int], batch_size: int, dtype: str = "float32",
                   seed: int = 0) -> list[Product]:
    r"""The operands of every matrix product of one mini-batch, on seeded random arrays.

    Per layer: :math:`Z W`, :math:`Z^{\mathrm T} \Delta` and, above the first layer,
    :math:`\Delta W^{\mathrm T}`, with :math:`Z^{\mathrm T}` and :math:`W^{\mathrm T}`
    transposed views (the BLAS reads them transposed, as an epoch does) and each output
    allocated once.

    Parameters
    ----------
    sizes : sequence of int
        The layer sizes :math:`d_0, \dots, d_L`.
    batch_size : int
        :math:`n`.
    dtype : str, default "float32"
    seed : int, default 0
        Seeds the values (uniform on [0, 1)).

    Returns
    -------
    list of (left, right, out)
        ``np.dot(left, right, out)`` computes one product; :func:`run_products` runs them all.

    Raises
    ------
    ValueError
        As for :func:`batch_flop`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    rng = np.random.RandomState(seed)
    products: list[Product] = []
    for i, (d_in, d_out) in enumerate(_layers(sizes)):
        Z = rng.rand(batch_size, d_in).astype(dtype)
        W = rng.rand(d_in, d_out).astype(dtype)
        delta = rng.rand(batch_size, d_out).astype(dtype)
        products.append((Z, W, np.empty((batch_size, d_out), dtype)))  # A = Z W
        products.append((Z.T, delta, np.empty((d_in, d_out), dtype)))  # Z^T Δ
        if i > 0:
            products.append((delta, W.T, np.empty((batch_size, d_in), dtype)))  # Δ W^T
    return products


def run_products(products: Sequence[Product], batches: int = 1) -> None:
    """Compute every product of :func:`batch_products` ``batches`` times, into its output.

    Parameters
    ----------
    products : sequence of (left, right, out)
    batches : int, default 1
    """
    for _ in range(batches):
        for left, right, out in products:
            np.dot(left, right, out)


def products_ceiling(sizes: Sequence[int], batch_size: int, dtype: str = "float32", repeats: int = 7,
                     min_time: float = 0.05, seed: int = 0) -> Ceiling:
    """Time the matrix products of one mini-batch through NumPy's BLAS: the epoch's arithmetic ceiling.

    One warm-up batch, then a calibration that sizes a repeat to at least
    ``max(min_time, MIN_REPEAT_SECONDS)`` seconds of batches, then ``repeats`` repeats; the
    figure is the median. It measures the machine's BLAS, not deltaprop: run it on one BLAS
    thread, pinned, as the epoch it bounds.

    Parameters
    ----------
    sizes : sequence of int
        The layer sizes :math:`d_0, \\dots, d_L`.
    batch_size : int
        :math:`n`, the samples in a batch.
    dtype : str, default "float32"
    repeats : int, default 7
    min_time : float, default 0.05
        Seconds each repeat lasts at least (never less than :data:`MIN_REPEAT_SECONDS`).
    seed : int, default 0
        Seeds the operands (:func:`batch_products`).

    Returns
    -------
    Ceiling
        Seconds, MFLOP and GFLOP/s per batch, and the ceiling in samples/s.

    Raises
    ------
    ValueError
        As for :func:`batch_flop`, or if ``repeats`` < 1.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    products = batch_products(sizes, batch_size, dtype, seed)
    flop = batch_flop(sizes, batch_size)
    min_time = max(min_time, MIN_REPEAT_SECONDS)
    run_products(products)  # warm-up: the BLAS's buffers and the operands in cache
    batches = 1
    while True:
        t0 = time.perf_counter()
        run_products(products, batches)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            break
        batches = max(batches + 1, int(batches * min(1.2 * min_time / max(elapsed, 1e-9), 10)))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_products(products, batches)
        times.append((time.perf_counter() - t0) / batches)
    seconds = statistics.median(times)
    return Ceiling(seconds_per_batch=seconds, mflop_per_batch=flop / 1e6, gflop_per_second=flop / seconds / 1e9,
                   samples_per_second=batch_size / seconds)
