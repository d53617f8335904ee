"""``deltaprop train`` on a Dask cluster: DATA split and standardised on the workers, then the fit.

:class:`ClusterData` makes one pass over the partitions of a :class:`deltaprop.cli.data.DaskData`
where they are read (:mod:`deltaprop.cli._partitions`): each holds out its share of rows, and
only counts, distinct target values and moments come back, from which the scalers are fitted.
:func:`fit_dask` fits ``deltaprop.dask``'s estimators on the training rows, with the same
progress bar and the same pipeline as :func:`deltaprop.cli.training.fit`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..estimators import TrainingInterrupted
from . import _partitions, pipeline
from .data import MAX_INFERRED_CLASSES, DaskData
from .training import Progress

__all__ = ["MAX_CLUSTER_CLASSES", "ClusterData", "fit_dask"]

#: most distinct target values a classification on a cluster may have (the classes are counted
#: before the fit, each partition sending at most this many values)
MAX_CLUSTER_CLASSES = 1000


class ClusterData:
    """A :class:`deltaprop.cli.data.DaskData` split into training and held-out rows on the workers.

    Each partition holds out round(fraction * n) of its rows, drawn from ``(seed, partition)``
    (not stratified). One pass over the partitions on the cluster counts them, checks every
    value, summarises the target (``numeric``, ``n_unique``, ``integral``, ``classes``) and
    fits the input scaler (and a numeric target's) to the training rows; :meth:`rows` gives
    them standardised, as dask arrays computed where the partitions are read.

    Parameters
    ----------
    data : DaskData
    fraction, seed
        As :func:`deltaprop.cli.training.split`'s.
    task : {"classification", "regression"} or None
        train's task when known before the pass (None: to be inferred from the summary).
    client : distributed.Client
    partitions : int
        The least number of partitions (the cluster's threads).

    Raises
    ------
    ValueError
        Naming the file and the column of a missing or non-finite value.
    """

    def __init__(self, data: DaskData, fraction: float, seed: int, task: str | None, client: Any,
                 partitions: int = 1) -> None:
        import dask

        np.random.RandomState(seed)  # the seed's range check, before any work
        frame = data.frame
        if frame.npartitions < partitions:  # at least one partition per worker thread
            frame = frame.repartition(npartitions=partitions)
        self.parts, self.dataset, self.fraction, self.seed = frame.to_delayed(), data, fraction, seed
        self.numeric = data.numeric
        cap = MAX_CLUSTER_CLASSES if task == "classification" or not self.numeric else \
            MAX_INFERRED_CLASSES
        summary = dask.delayed(_partitions.partition_summary, pure=True)
        try:
            sums = client.compute([summary(p, j, data.feature_names, data.target_name, self.numeric,
                                           fraction, seed, cap) for j, p in enumerate(self.parts)],
                                  sync=True)
        except ValueError as exc:
            raise ValueError(f"{data.source}: {exc}") from None
        self.sizes = [(n - m, m) for n, m, *_ in sums]
        self.n = sum(n for n, *_ in sums)
        self.n_val = sum(m for _, m, *_ in sums)
        self.n_train = self.n - self.n_val
        scaler, merge = _partitions.scaler_from_moments, _partitions.merge_moments
        self.x_scaler = scaler(merge([s[2] for s in sums])) if self.n_train else None
        self.y_scaler = scaler(merge([s[3] for s in sums])) if self.numeric and self.n_train else None
        self.classes: np.ndarray | None = np.unique(np.concatenate([s[4] for s in sums]))[: cap + 1]
        self.n_unique = len(self.classes)
        self.integral = all(s[5] for s in sums)
        if self.n_unique > cap:
            self.classes = None  # more than cap: too many to list

    def rows(self, held_out: bool, task: str, dtype: str = "float64") -> tuple[Any, Any]:
        """The training (or held-out) rows as dask arrays, computed where the partitions are read.

        Parameters
        ----------
        held_out : bool
            The held-out rows, else the training rows.
        task : {"classification", "regression"}
        dtype : {"float32", "float64"}

        Returns
        -------
        X : dask array of shape (n, D)
            Standardised, cast to ``dtype``.
        y : dask array of shape (n,)
            The labels (classification), or the target standardised in float64 (regression).
        """
        import dask
        import dask.array as da

        rows = dask.delayed(_partitions.partition_rows, pure=True, nout=2)
        y_scaler = self.y_scaler if task == "regression" else None
        features, target = self.dataset.feature_names, self.dataset.target_name
        Xs, ys = [], []
        for j, p in enumerate(self.parts):
            m = self.sizes[j][1 if held_out else 0]
            if m:
                Z, y = rows(p, j, features, target, self.numeric, self.fraction, self.seed, held_out,
                            self.x_scaler, y_scaler, dtype)
                Xs.append(da.from_delayed(Z, (m, len(features)), dtype=np.dtype(dtype)))
                ys.append(da.from_delayed(y, (m,), dtype=np.float64 if self.numeric else np.dtype(str)))
        return da.concatenate(Xs), da.concatenate(ys)


def fit_dask(data: ClusterData, task: str, params: dict, dtype: str = "float64", quiet: bool = False,
             client: Any = None) -> tuple[Any, Any, Progress]:
    """:func:`deltaprop.cli.training.fit` on a cluster: ``deltaprop.dask.MLPClassifier(**params)`` / ``MLPRegressor``
    fitted on a :class:`ClusterData`'s training rows.

    Returns
    -------
    tuple
        ``(pipeline, estimator, progress)`` as :func:`deltaprop.cli.training.fit`'s, the pipeline holding the plain
        estimator (``to_local()``), the progress without held-out losses.
    """
    from .. import dask as ddp

    X, y = data.rows(False, task, dtype)
    D = len(data.dataset.feature_names)
    progress = Progress(params.get("max_iter", 200), data.n_train, np.empty((0, D)), np.empty(0), quiet)
    est = (ddp.MLPClassifier if task == "classification" else ddp.MLPRegressor)(
        **params, callback=progress, client=client)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", TrainingInterrupted)
        with progress:
            est.fit(X, y)
    est.set_params(callback=None)  # the prediction tasks ship the estimator: no progress bar in it
    y_scaler = data.y_scaler if task == "regression" else None
    return pipeline.assemble(data.x_scaler, est.to_local(), y_scaler), est, progress
