"""The work on one partition of DATA, done by a Dask worker for ``train --scheduler / --dask-workers``.

:class:`deltaprop.cli.training.ClusterData` ships these functions to the workers: each partition
holds out its own rows (drawn from the seed and the partition's number, so every pass draws the
same ones), summarises its training rows in one pass (:func:`partition_summary`), and gives them
standardised when the fit asks (:func:`partition_rows`). Only the summaries, counts and moments
(Chan, Golub and LeVeque's pairwise update, :func:`merge_moments`), travel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import StandardScaler

from .pipeline import fitted_scaler

__all__ = ["held_out_mask", "partition_columns", "column_moments", "partition_summary", "merge_moments",
           "scaler_from_moments", "partition_rows"]


def held_out_mask(n: int, fraction: float, seed: int, j: int) -> np.ndarray:
    """Partition ``j``'s held-out rows as a mask: round(fraction * n) rows drawn from (seed, j)."""
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng([seed, j]).permutation(n)[: int(round(n * fraction))]] = True
    return mask


def partition_columns(part: Any, features: list, target: str, numeric: bool) -> tuple[np.ndarray, np.ndarray]:
    """A partition (a pandas DataFrame) as X (n, D) float64 and y: float64, or text labels ``<U``.

    Raises ValueError naming the column of a missing or non-finite value.
    """
    X = part[features].to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(X).all(axis=0)
    if not finite.all():
        raise ValueError(f"missing or non-finite value in column {features[int(np.argmin(finite))]!r}")
    y = part[target]
    if y.isna().any():
        raise ValueError(f"missing value in target column {target!r}")
    y = y.to_numpy(dtype=np.float64) if numeric else y.to_numpy().astype(str)
    if numeric and not np.isfinite(y).all():
        raise ValueError(f"non-finite value in target column {target!r}")
    return X, y


def column_moments(A: np.ndarray) -> tuple:
    """``(n, mean, M2)``: rows, column means and sums of squared deviations."""
    mean = A.mean(axis=0) if len(A) else np.zeros(A.shape[1:])
    return len(A), mean, ((A - mean) ** 2).sum(axis=0)


def partition_summary(part: Any, j: int, features: list, target: str, numeric: bool, fraction: float, seed: int,
                      cap: int) -> tuple:
    """One partition's rows and rows held out, the training rows' :func:`column_moments` of X
    (and of a numeric y), at most ``cap + 1`` distinct target values, and whether every target
    value is an integer."""
    X, y = partition_columns(part, features, target, numeric)
    val = held_out_mask(len(y), fraction, seed, j)
    values = np.unique(y)[: cap + 1]
    return (len(y), int(val.sum()), column_moments(X[~val]), column_moments(y[~val]) if numeric else None,
            values, bool(numeric and np.all(y == np.round(y))))


def merge_moments(parts: list) -> tuple:
    """The ``(n, mean, M2)`` of a union of row sets (Chan, Golub and LeVeque's update)."""
    n, mean, m2 = 0, 0.0, 0.0
    for nb, mb, m2b in parts:
        if nb:
            total = n + nb
            delta = mb - mean
            mean, m2, n = mean + delta * (nb / total), m2 + m2b + delta**2 * (n * nb / total), total
    return n, mean, m2


def scaler_from_moments(moments: tuple) -> StandardScaler:
    """A StandardScaler fitted to the rows of these moments (scale 1 for a constant column)."""
    n, mean, m2 = moments
    mean, var = np.atleast_1d(mean), np.atleast_1d(m2 / n)
    eps = np.finfo(np.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2  # scikit-learn's rule
    return fitted_scaler(mean, np.where(constant, 1.0, np.sqrt(var)), var, n)


def partition_rows(part: Any, j: int, features: list, target: str, numeric: bool, fraction: float, seed: int,
                   held_out: bool, x_scaler: StandardScaler, y_scaler: StandardScaler | None,
                   dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """One partition's training (or held-out) rows, standardised: ``(Z, y)``."""
    X, y = partition_columns(part, features, target, numeric)
    keep = held_out_mask(len(y), fraction, seed, j)
    keep = keep if held_out else ~keep
    Z = x_scaler.transform(X[keep]).astype(dtype)
    y = y[keep] if y_scaler is None else y_scaler.transform(y[keep].reshape(-1, 1)).ravel()
    return Z, y
