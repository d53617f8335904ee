"""``deltaprop train``'s fit: split, standardise, fit once with a progress bar, return the pipeline.

:func:`fit` standardises on the training rows, fits the estimator once with a :class:`Progress`
bar per epoch and returns the pipeline that predicts (:func:`deltaprop.cli.pipeline.assemble`);
:mod:`deltaprop.cli.cluster` does the same on a Dask cluster.

Ctrl-C is an error here, not a shorter fit: the estimator warns with
:class:`deltaprop.estimators.TrainingInterrupted` when interrupted, and :func:`fit` turns that
warning into the exception (the estimator is then left as it was before the fit).
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from ..estimators import MLPClassifier, MLPRegressor, TrainingInterrupted
from . import pipeline

__all__ = ["split", "Progress", "fit"]


def split(y: np.ndarray, fraction: float, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out row indices, shuffled.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        The target (its classes stratify the split when they can).
    fraction : float in [0, 1)
        ``--validation-split``: the share of the rows held out (0: none).
    seed : int
    stratify : bool
        Keep each class's share in both parts (when every class has enough rows).

    Returns
    -------
    train, held_out : ndarray of int

    Raises
    ------
    ValueError
        A part would be empty.
    """
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
    with the loss, the loss on the held-out rows and samples/s over the fit so far.

    It keeps the learning curves (``train_curve``, ``val_curve``: mean log-loss, or half mean
    squared error of the standardised target) and ``fit_seconds``, the time spent in the fit
    (the block it is entered for) less the time spent in here. The bar's samples/s is the
    epochs so far times ``n_train`` over ``fit_seconds`` so far: at the end, the throughput that
    ``deltaprop train`` reports for the whole fit.

    Parameters
    ----------
    total : int
        The most epochs (``max_iter``), the bar's length.
    n_train : int
        Training rows per epoch, for samples/s.
    X_val, y_val : ndarray
        The held-out rows, standardised as the estimator sees them (none: no held-out loss).
    quiet : bool
        No bar.
    """

    def __init__(self, total: int, n_train: int, X_val: np.ndarray, y_val: np.ndarray, quiet: bool = False) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="train", unit="epoch", file=sys.stderr, disable=quiet,
                        dynamic_ncols=True)
        self.n_train, self.X_val, self.y_val = n_train, X_val, y_val
        self.train_curve: list[float] = []
        self.val_curve: list[float] = []
        self.fit_seconds = 0.0

    def __enter__(self) -> Progress:
        self._since = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.fit_seconds += time.perf_counter() - self._since
        self.bar.close()

    def __call__(self, est: Any) -> None:
        """After an epoch: record and show the loss, the held-out loss and samples/s so far.

        Parameters
        ----------
        est : MLPClassifier or MLPRegressor
            The estimator being fitted (its ``loss_``, and its predictions of the held-out rows).
        """
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
        seen = len(self.train_curve) * self.n_train
        post["samples/s"] = f"{seen / self.fit_seconds:,.0f}" if self.fit_seconds > 0 else "inf"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)
        self._since = time.perf_counter()


def fit(X: np.ndarray, y: np.ndarray, tr: np.ndarray, va: np.ndarray, task: str, params: dict,
        dtype: str = "float64", quiet: bool = False) -> tuple[Any, Any, Progress]:
    """Fit on the rows ``tr`` of X, y once, with a progress bar that scores the rows ``va``.

    The inputs (and a regression target) are standardised with the training rows' mean and
    standard deviation, cast to ``dtype`` (float32 stays float32 in the estimators), and
    ``MLPClassifier(**params)`` / ``MLPRegressor(**params)`` is fitted once, its ``callback``
    a :class:`Progress`. Other warnings (ConvergenceWarning at ``max_iter``) are silenced.

    Parameters
    ----------
    X, y : ndarray of shape (n_samples, n_features) and (n_samples,)
    tr, va : ndarray of int
        The training and held-out rows (:func:`split`).
    task : {"classification", "regression"}
    params : dict
        The estimator's parameters (:func:`deltaprop.cli.train.estimator_params`).
    dtype : {"float32", "float64"}
    quiet : bool
        No progress bar.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        :func:`deltaprop.cli.pipeline.assemble`'s, predicting from raw inputs.
    estimator : MLPClassifier or MLPRegressor
    progress : Progress

    Raises
    ------
    TrainingInterrupted or KeyboardInterrupt
        Ctrl-C.
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
    return pipeline.assemble(x_scaler, est, y_scaler), est, progress
