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

from . import savedmodel
from .estimators import MLPClassifier, MLPRegressor, TrainingInterrupted

__all__ = ["split", "Progress", "fit"]


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
