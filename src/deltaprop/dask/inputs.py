"""What ``fit`` and ``score`` of :mod:`deltaprop.dask` take in: X, y and sample_weight as aligned row partitions.

A dask array's row blocks, a dask dataframe's partitions, or a NumPy / scipy array cut in one
piece per worker thread and scattered: :class:`Inputs` checks that X, y and sample_weight have
the same rows, and :meth:`Inputs.load` turns each partition into a loaded
:class:`~deltaprop.dask.shards.Part` on a worker (``deltaprop-load`` tasks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp

from . import shards

if TYPE_CHECKING:
    import distributed

    from .cluster import Cluster

__all__ = ["feature_names", "dask_array", "like_rows", "known_rows", "Inputs"]


def feature_names(obj: Any) -> np.ndarray | None:
    """The column names of a dataframe when they are all strings (scikit-learn's rule), else None."""
    columns = getattr(obj, "columns", None)
    if columns is None:
        return None
    names = list(columns)
    if names and all(isinstance(c, str) for c in names):
        return np.asarray(names, dtype=object)
    return None


def dask_array(obj: Any, lengths: bool = False) -> da.Array:
    """A dask array from a dask array, dataframe or series (row chunks unknown unless
    ``lengths``: then a pass over the partitions finds them)."""
    if isinstance(obj, da.Array):
        return obj
    if hasattr(obj, "to_dask_array"):
        return obj.to_dask_array(lengths=True) if lengths else obj.to_dask_array()
    raise TypeError(f"expected a dask array or dataframe; got {type(obj).__name__}")


def like_rows(a: Any, X: da.Array, name: str) -> da.Array:
    """``a`` (dask or NumPy) as a dask array with the row chunks of X (one column block)."""
    if not dask.is_dask_collection(a):
        a = np.asarray(a)
        if a.shape[0] != X.shape[0]:
            raise ValueError(f"{name} has {a.shape[0]} rows; X has {X.shape[0]}")
        return da.from_array(a, chunks=(X.chunks[0],) + a.shape[1:])
    a = dask_array(a)
    if a.ndim == 2 and a.numblocks[1] > 1:
        a = a.rechunk({1: -1})
    if not np.isnan(a.shape[0]) and not np.isnan(X.shape[0]):
        if a.shape[0] != X.shape[0]:
            raise ValueError(f"{name} has {a.shape[0]} rows; X has {X.shape[0]}")
        return a.rechunk({0: X.chunks[0]}) if a.chunks[0] != X.chunks[0] else a
    if a.numblocks[0] != X.numblocks[0]:
        raise ValueError(f"X and {name} have {X.numblocks[0]} and {a.numblocks[0]} row partitions "
                         "of unknown sizes: partition them alike (or use lengths=True)")
    return a


def known_rows(pred: da.Array, *others: Any) -> da.Array:
    """``pred`` with known row chunks if any of ``others`` is a NumPy array to align with it."""
    if np.isnan(pred.shape[0]) and any(a is not None and not dask.is_dask_collection(a)
                                       for a in others):
        return pred.compute_chunk_sizes()
    return pred


class Inputs:
    """X, y and sample_weight as aligned row partitions.

    Parameters
    ----------
    X : dask array or dask DataFrame of shape (n_samples, n_features), or array-like
    y : dask array or Series, or array-like, of n_samples rows
    sample_weight : dask array or array-like of shape (n_samples,), or None

    Attributes
    ----------
    dask : bool
        Whether X is a dask collection.
    X, y, s : dask arrays if ``dask``, else ndarrays (X perhaps scipy sparse)
        X (one column block), y and the sample weights (None: all 1), with the same rows.
    names : ndarray or None
        X's feature names (:func:`feature_names`).
    n_features : int
    dtype : {"float32", "float64"}
        The network's dtype: float32 X stays float32, anything else is float64.
    n_targets : int
        Columns of y (0 for a 1-D y or a single column).

    Raises
    ------
    ValueError
        X is not 2-D, or X, y and sample_weight do not have the same rows.
    """

    # dask arrays, or NumPy / scipy arrays: the type goes with ``dask`` (see Attributes)
    X: Any
    y: Any
    s: Any

    def __init__(self, X: Any, y: Any, sample_weight: Any) -> None:
        self.names = feature_names(X)
        self.dask = dask.is_dask_collection(X)
        if self.dask:
            local = not all(dask.is_dask_collection(a) for a in (y, sample_weight)
                            if a is not None)
            X = dask_array(X, lengths=local)  # NumPy y: row chunks must be known
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D; got {X.ndim} dimensions")
            if X.numblocks[1] > 1:
                X = X.rechunk({1: -1})
            if np.isnan(X.shape[0]) and local:
                X = X.compute_chunk_sizes()
            self.y = like_rows(y, X, "y")
            self.s = None if sample_weight is None else like_rows(sample_weight, X, "sample_weight")
            if self.s is not None and self.s.ndim != 1:
                raise ValueError("sample_weight must be 1-D")
        else:
            if not sp.issparse(X):
                X = np.asarray(X)
            if X.ndim != 2:
                raise ValueError(f"Expected 2D array, got {X.ndim}D array instead")
            y = np.asarray(y)
            s = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
            for a, name in ((y, "y"), (s, "sample_weight")):
                if a is not None and a.shape[0] != X.shape[0]:
                    raise ValueError(f"{name} has {a.shape[0]} rows; X has {X.shape[0]}")
            self.y, self.s = y, s
        self.X = X
        self.n_features = int(X.shape[1])
        self.dtype = "float32" if X.dtype == np.float32 else "float64"
        y_cols = self.y.shape[1] if self.y.ndim == 2 else 0
        self.n_targets = 0 if y_cols == 1 else y_cols  # 0: one column / 1-D

    def load(self, cluster: Cluster, nonnegative: bool) -> list[distributed.Future]:
        """Futures of :func:`~deltaprop.dask.shards.load` per partition (``deltaprop-load``
        tasks); ``nonnegative``: y must be >= 0 (Poisson)."""
        client, call = cluster.client, next(cluster.calls)
        if self.dask:
            xs = self.X.to_delayed()[:, 0]
            ys = self.y.to_delayed()[:, 0] if self.y.ndim == 2 else self.y.to_delayed()
            ss = self.s.to_delayed() if self.s is not None else [None] * len(xs)
            parts = [dask.delayed(shards.load)(x, y, s, self.dtype, nonnegative,
                                               dask_key_name=cluster.key("load", call, j))
                     for j, (x, y, s) in enumerate(zip(xs, ys, ss, strict=True))]
            return client.compute(parts)
        n = self.X.shape[0]
        k = max(1, min(n, sum(client.nthreads().values())))
        cuts = [n * i // k for i in range(k + 1)]
        pieces = [(self.X[a:b], self.y[a:b], None if self.s is None else self.s[a:b])
                  for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        futures = client.scatter(pieces, hash=False)
        return [client.submit(_load_piece, f, self.dtype, nonnegative,
                              key=cluster.key("load", call, j)) for j, f in enumerate(futures)]


def _load_piece(piece: tuple[Any, Any, Any], dtype: str, nonnegative: bool) -> shards.Part:
    return shards.load(*piece, dtype, nonnegative)

