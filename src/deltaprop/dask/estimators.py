"""The Dask estimators: :class:`MLPClassifier` and :class:`MLPRegressor`, deltaprop's trained on a cluster.

Each is :class:`~deltaprop.dask.base.DaskMLP` placed before the single-machine estimator:
the constructor is the single-machine one plus ``client`` and ``average_every``; what is
particular to a classifier or a regressor on a cluster is here (the classes found in one
distributed pass, lazy prediction and scores of dask collections).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, TypeVar, overload

import dask
import dask.array as da
import numpy as np
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if

from .. import estimators
from . import shards
from .base import DaskMLP
from .inputs import known_rows, like_rows

if TYPE_CHECKING:
    import dask.dataframe as dd
    import distributed
    from numpy.typing import ArrayLike

    from ..estimators.base import MatrixLike
    from .cluster import Cluster
    from .inputs import Inputs

__all__ = ["MLPClassifier", "MLPRegressor"]

_E = TypeVar("_E", bound=DaskMLP)


def _dask_init(cls: type[_E]) -> type[_E]:
    """``cls`` with an ``__init__`` taking the parameters of its single-machine estimator
    (``cls._local_class``) plus ``client``, ``average_every`` and ``sync``.

    Its signature is the single-machine ``__init__``'s with the three added (what scikit-learn's
    get_params reads), so a parameter added to the single-machine estimators is a parameter here
    too. The type checker reads :class:`~deltaprop.dask._attributes.DaskAttributes`'s.
    """
    base = cls._local_class
    sig = inspect.signature(base.__init__)
    defaults = DaskMLP._dask_defaults
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
             for name, default in defaults.items()]

    def __init__(self: _E, *args: Any, client: distributed.Client | None = defaults["client"],
                 average_every: int | None = defaults["average_every"], sync: str = defaults["sync"],
                 **params: Any) -> None:
        super(cls, self).__init__(*args, **params)  # the single-machine estimator's
        self.client = client
        self.average_every = average_every
        self.sync = sync

    # what inspect.signature, and so scikit-learn's get_params, reads
    __init__.__signature__ = sig.replace(  # type: ignore[attr-defined]  # a function takes attributes
        parameters=[*sig.parameters.values(), *extra])
    # one function per class (each has its own signature); DaskAttributes declares its type
    cls.__init__ = __init__  # type: ignore[method-assign, assignment]
    return cls


def _no_partial_fit(est: Any) -> bool:
    raise AttributeError("partial_fit is not available on deltaprop.dask estimators: fit trains on "
                         "the whole distributed data set (to_local() gives a single-machine "
                         "estimator that has partial_fit)")


_EXTRA_DOC = """
    Trains on a dask.distributed cluster (see :mod:`deltaprop.dask`); the other parameters and
    the fitted attributes are those of the single-machine estimator.

    Parameters
    ----------
    client : distributed.Client or None, default=None
        The cluster to train on (None: the current client).
    average_every : int or None, default=None
        ``sgd`` / ``adam`` with local SGD (``sync`` "lr-scaled", "average" or "sum"): samples
        each partition visits between two averagings (or sums) of the partitions' weights
        (rounded down to whole batches; None: one local epoch, the most).
    sync : {"lr-scaled", "average", "sum", "batch"}, default="lr-scaled"
        ``sgd`` / ``adam``: how the J partitions' work becomes one model
        (:mod:`deltaprop.dask.sgd`).

        - "lr-scaled": local SGD, each partition taking its own steps from the same weights
          with the step size ``learning_rate_init`` (or the schedule's) multiplied by J, the
          weights and optimizer state then averaged: an epoch moves the weights about as far
          as one machine's epoch. An η near the largest that one machine tolerates may
          diverge at J η: lower it, or use "average".
        - "average": local SGD with the partitions' weights and state averaged (parameter
          mixing) at the step size η: the most stable, but with J partitions an epoch moves
          the weights about as far as 1/J of one machine's epoch while training is limited
          by its number of steps.
        - "sum": local SGD with the partitions' weight changes added,
          :math:`w \\leftarrow w + \\sum_j (w_j - w)` (state averaged, Adam's step counter
          advanced by every partition's steps). As far per epoch as one machine while each
          round is a few steps; rounds of many steps overshoot (set ``average_every``).
        - "batch": synchronous mini-batch gradient descent, one machine's algorithm: each batch
          takes rows from every partition, their gradients are added and one update applied.
          One round trip to the workers per batch (its latency is paid once per batch; the
          Dask performance page gives figures), so it pays with large batches.
    n_jobs : int or None, default=None
        Threads inside one partition's sums on a worker (``lbfgs``, ``sync="batch"``,
        validation, prediction);
        None: the worker's threads that its partitions leave free (each partition of a worker
        runs on a thread of its own).
    """


@_dask_init
class MLPClassifier(DaskMLP, estimators.MLPClassifier):
    __doc__ = "Multi-layer perceptron classifier on a Dask cluster.\n" + _EXTRA_DOC
    _local_class = estimators.MLPClassifier
    _parameter_constraints = {**estimators.MLPClassifier._parameter_constraints,
                              **DaskMLP._dask_constraints}

    @available_if(_no_partial_fit)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> None:
        """Not available (see :meth:`to_local`)."""

    def _targets(self, cluster: Cluster, parts: list[distributed.Future], data: Inputs,
                 first_pass: bool) -> tuple[shards.Targets, int]:
        """Classes from one distributed pass over the loaded partitions (``deltaprop-labels``:
        ``np.unique`` per partition, merged in the tree), the binarizer and class weights."""
        values, counts, n_columns = cluster.reduce(
            "labels", shards.merge_labels, cluster.map("labels", shards.labels, parts))[0].result()
        if n_columns:
            if not set(values.tolist()) <= {0, 1}:
                raise ValueError("Multioutput target data is not supported with label "
                                 "binarization")
            sample = np.vstack([np.eye(n_columns, dtype=int), np.zeros(n_columns, dtype=int)])
            binarizer = LabelBinarizer().fit(sample)
        else:
            binarizer = LabelBinarizer().fit(values)
        if first_pass or "classes_" not in self.__dict__:
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
        elif set(binarizer.classes_.tolist()) != set(self.classes_.tolist()):
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in the previous "
                f"call to fit. Previously got {self.classes_}, `y` has {binarizer.classes_}")
        weights = None
        if self.class_weight is not None:
            if n_columns:
                raise ValueError("class_weight is not supported for multilabel targets; pass "
                                 "sample_weight instead")
            if isinstance(self.class_weight, str):  # "balanced": n / (K n_k)
                weights = counts.sum() / (len(values) * counts.astype(np.float64))
            else:
                weights = compute_class_weight(self.class_weight, classes=self.classes_,
                                               y=self.classes_)
        lb = self._label_binarizer
        K = 1 if lb.y_type_ == "binary" else len(lb.classes_)
        return shards.Targets(lb, weights), K

    @overload
    def predict(self, X: da.Array | dd.DataFrame) -> da.Array: ...

    @overload
    def predict(self, X: MatrixLike) -> np.ndarray: ...

    def predict(self, X: da.Array | dd.DataFrame | MatrixLike) -> da.Array | np.ndarray:
        """Class labels: a lazy dask array for a dask X, else an ndarray (as deltaprop's).

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features), or array-like

        Returns
        -------
        y : dask array or ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        if not dask.is_dask_collection(X):
            return super().predict(X)
        return self._lazy_predict(X)

    def _lazy_predict(self, X: Any) -> da.Array:
        """Class labels of a dask X, lazily (labels of every output when multilabel)."""
        multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        return self._lazy(X, "predict", self.n_outputs_ if multilabel else None,
                          self._label_binarizer.transform(self.classes_[:1]).dtype
                          if multilabel else self.classes_.dtype)

    @overload
    def predict_proba(self, X: da.Array | dd.DataFrame) -> da.Array: ...

    @overload
    def predict_proba(self, X: MatrixLike) -> np.ndarray: ...

    def predict_proba(self, X: da.Array | dd.DataFrame | MatrixLike) -> da.Array | np.ndarray:
        """Probabilities, classes ordered as in ``classes_``: lazy for a dask X.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features), or array-like

        Returns
        -------
        y_prob : dask array or ndarray of shape (n_samples, n_classes)
        """
        if not dask.is_dask_collection(X):
            return super().predict_proba(X)
        return self._lazy(X, "predict_proba", max(2, self.n_outputs_), self._mlp.dtype)

    @overload
    def predict_log_proba(self, X: da.Array | dd.DataFrame) -> da.Array: ...

    @overload
    def predict_log_proba(self, X: MatrixLike) -> np.ndarray: ...

    def predict_log_proba(self, X: da.Array | dd.DataFrame | MatrixLike) -> da.Array | np.ndarray:
        """Log-probabilities (``deltaprop.MLPClassifier.predict_log_proba``): lazy for a dask X.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features), or array-like

        Returns
        -------
        log_y_prob : dask array or ndarray of shape (n_samples, n_classes)
        """
        if not dask.is_dask_collection(X):
            return super().predict_log_proba(X)
        return self._lazy(X, "predict_log_proba", max(2, self.n_outputs_), self._mlp.dtype)

    def score(self, X: da.Array | dd.DataFrame | MatrixLike, y: da.Array | dd.Series | ArrayLike,
              sample_weight: da.Array | ArrayLike | None = None) -> da.Array | float:
        """Accuracy (a sample is right when all its labels are); lazy for a dask X.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features), or array-like
        y : dask array or Series, or array-like, of n_samples rows
            The true labels.
        sample_weight : dask array or array-like of shape (n_samples,), default=None

        Returns
        -------
        score : 0-d dask array or float
            For a dask X a lazy 0-d dask array (``float()`` computes it).
        """
        if not dask.is_dask_collection(X):
            return super().score(X, y, sample_weight)
        pred = known_rows(self._lazy_predict(X), y, sample_weight)
        hit = pred == like_rows(y, pred, "y")
        if hit.ndim == 2:
            hit = hit.all(axis=1)
        if sample_weight is None:
            return hit.mean()
        u = like_rows(sample_weight, pred, "sample_weight")
        return (hit * u).sum() / u.sum()


@_dask_init
class MLPRegressor(DaskMLP, estimators.MLPRegressor):
    __doc__ = "Multi-layer perceptron regressor on a Dask cluster.\n" + _EXTRA_DOC
    _local_class = estimators.MLPRegressor
    _parameter_constraints = {**estimators.MLPRegressor._parameter_constraints,
                              **DaskMLP._dask_constraints}

    @available_if(_no_partial_fit)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> None:
        """Not available (see :meth:`to_local`)."""

    def _targets(self, cluster: Cluster, parts: list[distributed.Future], data: Inputs,
                 first_pass: bool) -> tuple[shards.Targets, int]:
        return shards.Targets(), max(1, data.n_targets)

    @overload
    def predict(self, X: da.Array | dd.DataFrame) -> da.Array: ...

    @overload
    def predict(self, X: MatrixLike) -> np.ndarray: ...

    def predict(self, X: da.Array | dd.DataFrame | MatrixLike) -> da.Array | np.ndarray:
        """Predictions: a lazy dask array for a dask X, else an ndarray (as deltaprop's).

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features), or array-like

        Returns
        -------
        y : dask array or ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        if not dask.is_dask_collection(X):
            return super().predict(X)
        return self._lazy_predict(X)

    def _lazy_predict(self, X: Any) -> da.Array:
        """Predictions of a dask X, lazily (1-D for one output)."""
        return self._lazy(X, "predict", None if self.n_outputs_ == 1 else self.n_outputs_,
                          self._mlp.dtype)

    def score(self, X: da.Array | dd.DataFrame | MatrixLike, y: da.Array | dd.Series | ArrayLike,
              sample_weight: da.Array | ArrayLike | None = None) -> da.Array | float:
        """R², averaged over the outputs; lazy for a dask X.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features), or array-like
        y : dask array or Series, or array-like, of n_samples rows
            The true targets.
        sample_weight : dask array or array-like of shape (n_samples,), default=None

        Returns
        -------
        score : 0-d dask array or float
            For a dask X a lazy 0-d dask array (``float()`` computes it).
        """
        if not dask.is_dask_collection(X):
            return super().score(X, y, sample_weight)
        pred = known_rows(self._lazy_predict(X), y, sample_weight)
        t = like_rows(y, pred, "y").astype(np.float64)
        if pred.ndim == 1:
            pred, t = pred[:, None], (t[:, None] if t.ndim == 1 else t)
        u = (da.ones_like(pred[:, 0], dtype=np.float64) if sample_weight is None
             else like_rows(sample_weight, pred, "sample_weight").astype(np.float64))[:, None]
        mean = (u * t).sum(axis=0) / u.sum()
        num = (u * (t - pred) ** 2).sum(axis=0)
        den = (u * (t - mean) ** 2).sum(axis=0)
        r2 = da.where(den > 0, 1 - num / da.where(den > 0, den, 1), da.where(num == 0, 1.0, 0.0))
        return r2.mean()
