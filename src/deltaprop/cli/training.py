"""``deltaprop train``'s fit: standardise on the training rows, fit the estimator once with a
progress bar per epoch, and return the pipeline that predicts (:func:`deltaprop.savedmodel.assemble`).

Ctrl-C is an error here, not a shorter fit: the estimator warns with
:class:`deltaprop.estimators.TrainingInterrupted` when interrupted, and :func:`fit` turns that
warning into the exception (the estimator is then left as it was before the fit).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from . import dataio, savedmodel
from .estimators import MLPClassifier, MLPRegressor, TrainingInterrupted

__all__ = ["split", "Progress", "fit", "ClusterData", "fit_dask"]


def split(y, fraction, seed, stratify):
    """Training and held-out row indices; ``fraction`` of the rows held out (0: none)."""
    n = len(y)
    if fraction == 0:
        idx = np.random.RandomState(seed).permutation(n)
        return idx, idx[:0]
    n_val = int(round(n * fraction))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(f"--validation-split {fraction} leaves an empty split for {n} samples")
    try:
        return train_test_split(np.arange(n), test_size=n_val, random_state=seed, stratify=y if stratify else None)
    except ValueError:  # a class too small to stratify
        return train_test_split(np.arange(n), test_size=n_val, random_state=seed)


class Progress:
    """The estimator's ``callback``: after each epoch (L-BFGS iteration) a step of a tqdm bar
    with the loss, the loss on the held-out rows and samples/s.

    It keeps the learning curves (``train_curve``, ``val_curve``: mean log-loss, or half mean
    squared error of the standardised target) and ``fit_seconds``, the time spent in the fit
    (the block it is entered for) less the time spent in here.
    """

    def __init__(self, total, n_train, X_val, y_val, quiet=False):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="train", unit="epoch", file=sys.stderr, disable=quiet,
                        dynamic_ncols=True)
        self.n_train, self.X_val, self.y_val = n_train, X_val, y_val
        self.train_curve, self.val_curve = [], []
        self.fit_seconds = 0.0

    def __enter__(self):
        self._since = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.fit_seconds += time.perf_counter() - self._since
        self.bar.close()

    def __call__(self, est):
        dt = time.perf_counter() - self._since
        self.fit_seconds += dt
        self.train_curve.append(float(est.loss_))
        post = {"loss": f"{est.loss_:.4f}"}
        if len(self.y_val):
            if is_classifier(est):
                loss = log_loss(self.y_val, est.predict_proba(self.X_val), labels=est.classes_)
            else:
                loss = 0.5 * np.mean((est.predict(self.X_val) - self.y_val) ** 2)
            self.val_curve.append(float(loss))
            post["val_loss"] = f"{loss:.4f}"
        post["samples/s"] = f"{self.n_train / dt:,.0f}" if dt > 0 else "inf"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)
        self._since = time.perf_counter()


def fit(X, y, tr, va, task, params, dtype="float64", quiet=False):
    """Fit on the rows ``tr`` of X, y: ``(pipeline, estimator, progress)``.

    The inputs (and a regression target) are standardised with the training rows' mean and
    standard deviation, cast to ``dtype`` (float32 stays float32 in the estimators), and
    ``MLPClassifier(**params)`` / ``MLPRegressor(**params)`` is fitted once, its ``callback``
    a :class:`Progress` that scores the rows ``va``. Ctrl-C raises TrainingInterrupted (or
    KeyboardInterrupt); other warnings (ConvergenceWarning at ``max_iter``) are silenced.
    """
    x_scaler = StandardScaler().fit(X[tr])
    Z = x_scaler.transform(X).astype(dtype)
    y_scaler = None
    if task == "regression":
        y_scaler = StandardScaler().fit(y[tr].reshape(-1, 1).astype(np.float64))
        y = y_scaler.transform(y.reshape(-1, 1).astype(np.float64)).ravel()
    progress = Progress(params.get("max_iter", 200), len(tr), Z[va], y[va], quiet)
    est = (MLPClassifier if task == "classification" else MLPRegressor)(**params, callback=progress)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", TrainingInterrupted)
        with progress:
            est.fit(Z[tr], y[tr])
    return savedmodel.assemble(x_scaler, est, y_scaler), est, progress


# --------------------------------------------------------------------------- on a Dask cluster
#: most distinct target values a classification on a cluster may have (the classes are counted
#: before the fit, each partition sending at most this many values)
MAX_CLUSTER_CLASSES = 1000


def _held_out(n, fraction, seed, j):
    """Partition ``j``'s held-out rows as a mask: round(fraction * n) rows drawn from (seed, j)."""
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng([seed, j]).permutation(n)[: int(round(n * fraction))]] = True
    return mask


def _columns(part, features, target, numeric):
    """A partition (pandas) as X (n, D) float64 and y: float64, or text labels ``<U``."""
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


def _moments(A):
    """``(n, mean, M2)``: rows, column means and sums of squared deviations."""
    mean = A.mean(axis=0) if len(A) else np.zeros(A.shape[1:])
    return len(A), mean, ((A - mean) ** 2).sum(axis=0)


def _summary(part, j, features, target, numeric, fraction, seed, cap):
    """One partition's rows held out, the training rows' moments of X (and a numeric y), at
    most ``cap + 1`` distinct target values, and whether every target value is an integer."""
    X, y = _columns(part, features, target, numeric)
    val = _held_out(len(y), fraction, seed, j)
    values = np.unique(y)[: cap + 1]
    return (len(y), int(val.sum()), _moments(X[~val]), _moments(y[~val]) if numeric else None,
            values, bool(numeric and np.all(y == np.round(y))))


def _merge_moments(moments):
    """The ``(n, mean, M2)`` of a union of row sets (Chan, Golub and LeVeque's update)."""
    n, mean, m2 = 0, 0.0, 0.0
    for nb, mb, m2b in moments:
        if nb:
            total = n + nb
            delta = mb - mean
            mean, m2, n = mean + delta * (nb / total), m2 + m2b + delta**2 * (n * nb / total), total
    return n, mean, m2


def _scaler(moments):
    """A StandardScaler fitted to the rows of these moments (scale 1 for a constant column)."""
    n, mean, m2 = moments
    mean, var = np.atleast_1d(mean), np.atleast_1d(m2 / n)
    eps = np.finfo(np.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2  # scikit-learn's rule
    return savedmodel._scaler(mean, np.where(constant, 1.0, np.sqrt(var)), var, n)


def _rows(part, j, features, target, numeric, fraction, seed, held_out, x_scaler, y_scaler, dtype):
    """One partition's training (or held-out) rows, standardised: ``(Z, y)``."""
    X, y = _columns(part, features, target, numeric)
    keep = _held_out(len(y), fraction, seed, j)
    keep = keep if held_out else ~keep
    Z = x_scaler.transform(X[keep]).astype(dtype)
    y = y[keep] if y_scaler is None else y_scaler.transform(y[keep].reshape(-1, 1)).ravel()
    return Z, y


class ClusterData:
    """A :class:`deltaprop.dataio.DaskData` split into training and held-out rows on the workers.

    Each partition holds out round(fraction * n) of its rows, drawn from ``(seed, partition)``
    (not stratified). One pass over the partitions on the cluster counts them, checks every
    value, summarises the target (``numeric``, ``n_unique``, ``integral``, ``classes``) and
    fits the input scaler (and a numeric target's) to the training rows; :meth:`rows` gives
    them standardised, as dask arrays computed where the partitions are read.

    ``task`` is train's task when known before the pass (None: to be inferred from the
    summary); ``partitions``, the least number of partitions (the cluster's threads).
    """

    def __init__(self, data, fraction, seed, task, client, partitions=1):
        import dask

        np.random.RandomState(seed)  # the seed's range check, before any work
        frame = data.frame
        if frame.npartitions < partitions:  # at least one partition per worker thread
            frame = frame.repartition(npartitions=partitions)
        self.parts, self.dataset, self.fraction, self.seed = frame.to_delayed(), data, fraction, seed
        self.numeric = data.numeric
        cap = MAX_CLUSTER_CLASSES if task == "classification" or not self.numeric else \
            dataio.MAX_INFERRED_CLASSES
        summary = dask.delayed(_summary, pure=True)
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
        self.x_scaler = _scaler(_merge_moments([s[2] for s in sums])) if self.n_train else None
        self.y_scaler = _scaler(_merge_moments([s[3] for s in sums])) if self.numeric and self.n_train \
            else None
        self.classes = np.unique(np.concatenate([s[4] for s in sums]))[: cap + 1]
        self.n_unique = len(self.classes)
        self.integral = all(s[5] for s in sums)
        if self.n_unique > cap:
            self.classes = None  # more than cap: too many to list

    def rows(self, held_out, task, dtype="float64"):
        """``(X, y)`` of the training (or held-out) rows as dask arrays: X standardised and cast
        to ``dtype``, y the labels (classification) or standardised in float64 (regression)."""
        import dask
        import dask.array as da

        rows = dask.delayed(_rows, pure=True, nout=2)
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


def fit_dask(data, task, params, dtype="float64", quiet=False, client=None):
    """:func:`fit` on a cluster: ``deltaprop.dask.MLPClassifier(**params)`` / ``MLPRegressor``
    fitted on a :class:`ClusterData`'s training rows; ``(pipeline, estimator, progress)``, the
    pipeline holding the plain estimator (``to_local()``), the progress without held-out losses."""
    from . import dask as ddp

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
    return savedmodel.assemble(data.x_scaler, est.to_local(), y_scaler), est, progress
