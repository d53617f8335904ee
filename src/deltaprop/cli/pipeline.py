r"""The command line's model file: a fitted estimator's parameters plus its preprocessing, no pickle.

What ``deltaprop train`` fits and ``deltaprop predict`` applies is one scikit-learn object
(:func:`assemble`)::

    Pipeline([("scale", StandardScaler), ("mlp", MLPClassifier)])
    Pipeline([("scale", StandardScaler), ("mlp", TransformedTargetRegressor(MLPRegressor, StandardScaler))])

The file is a :class:`deltaprop.MLP` file (the network's members; :meth:`deltaprop.MLP.load`
reads it too) with these members beside them:

``cli_format`` ``"deltaprop.cli"``, ``cli_version`` 1
``task``
    ``"classification"`` or ``"regression"``.
``classes``
    the classifier's labels in ``classes_`` order (empty for regression).
``x_mean``, ``x_scale``, ``x_var`` (D,), ``n_samples_seen``
    the fitted StandardScaler of the inputs.
``y_mean``, ``y_scale``, ``y_var``
    the fitted StandardScaler of a regression target (0, 1, 1 for a classifier).
``estimator_params``
    the estimator's constructor parameters (``get_params()`` without ``callback``) as JSON.
``feature_names`` (D,) or (0,), ``target_name``, ``target_index``
    the training data's columns: ``predict`` matches named columns to ``feature_names``
    (:meth:`deltaprop.cli.savedmodel.SavedModel.align`), empty for data without names, whose columns are taken in order
    (the target column dropped from a CSV that has it).

``x_var``, ``y_var``, ``n_samples_seen`` and ``estimator_params`` are optional: without them
``var_`` is ``scale_**2``, ``n_samples_seen_`` is not set and the estimator has its default
parameters. Loading reads every member through :func:`deltaprop.engine.npzfile.read_npz` (each
header and size checked before its data is read), then checks the preprocessing against the
network (:mod:`deltaprop.cli._modelcheck`); any problem is a ValueError naming the file.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Sequence

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..contract import OUTPUT_LOSS
from ..engine import MLP
from ..engine.modelfile import read_model
from ..engine.npzfile import atomic_write
from ..estimators import MLPClassifier, MLPRegressor
from ._modelcheck import MEMBERS, REQUIRED, checked_task, stored_params, stored_statistics, text
from .savedmodel import SavedModel

__all__ = ["CLI_FORMAT", "CLI_VERSION", "SavedModel", "assemble", "fitted_scaler", "save", "load"]

CLI_FORMAT = "deltaprop.cli"
CLI_VERSION = 1


def assemble(x_scaler: StandardScaler, est: Any, y_scaler: Optional[StandardScaler] = None) -> Pipeline:
    """The pipeline of a fitted input scaler, a fitted estimator and (regression) a target scaler.

    Parameters
    ----------
    x_scaler : StandardScaler
        Fitted to the training inputs.
    est : MLPClassifier or MLPRegressor
        Fitted to the standardised inputs (and, with ``y_scaler``, the standardised target).
    y_scaler : StandardScaler, optional
        Fitted to a regression target (shape (n, 1)).

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``scale`` then ``mlp``: the estimator, or a fitted ``TransformedTargetRegressor`` of it
        and ``y_scaler``; its ``predict`` takes raw inputs and gives labels or raw values.
    """
    final = est
    if y_scaler is not None:
        final = TransformedTargetRegressor(regressor=est, transformer=y_scaler)
        final.regressor_, final.transformer_ = est, y_scaler
        final._training_dim = 1  # what fit records for a 1-D target: predict returns 1-D
    return Pipeline([("scale", x_scaler), ("mlp", final)])


def fitted_scaler(mean: np.ndarray, scale: np.ndarray, var: np.ndarray,
                  n_samples_seen: Optional[int] = None) -> StandardScaler:
    """A fitted StandardScaler with these statistics, each (D,).

    Parameters
    ----------
    mean, scale, var : ndarray of shape (D,)
        ``mean_``, ``scale_`` (> 0), ``var_``.
    n_samples_seen : int, optional
        ``n_samples_seen_`` (not set when None).

    Returns
    -------
    StandardScaler
    """
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = (np.asarray(a, dtype=np.float64) for a in (mean, scale, var))
    scaler.n_features_in_ = scaler.mean_.shape[0]
    if n_samples_seen is not None:
        scaler.n_samples_seen_ = n_samples_seen
    return scaler


def save(path: str | os.PathLike, pipeline: Pipeline, feature_names: Sequence[str] = (),
         target_name: Optional[str] = "", target_index: Optional[int] = -1) -> None:
    """Write a pipeline made by :func:`assemble` to ``path`` (atomically; see the module for the format).

    Parameters
    ----------
    path : str or path-like
    pipeline : sklearn.pipeline.Pipeline
        :func:`assemble`'s.
    feature_names, target_name, target_index : sequence of str, str or None, int or None
        The training data's columns (no names: data without names, taken in order by
        ``predict``, which recognises and drops the target column).
    """
    x_scaler, final = pipeline.named_steps["scale"], pipeline.named_steps["mlp"]
    regression = isinstance(final, TransformedTargetRegressor)
    est = final.regressor_ if regression else final
    sizes = [est.n_features_in_, *(W.shape[1] for W in est.coefs_)]
    net = MLP(sizes, hidden=est.activation, output=est.out_activation_, loss=OUTPUT_LOSS[est.out_activation_],
              backend="numpy", dtype=est.coefs_[0].dtype.name, random_state=0)
    net.coefs_, net.intercepts_ = est.coefs_, est.intercepts_
    y_stats = (0.0, 1.0, 1.0)
    if regression:
        y = final.transformer_
        y_stats = (y.mean_[0], y.scale_[0], y.var_[0])
    params = {k: v for k, v in est.get_params().items() if k != "callback"}
    fields = net.to_fields()
    fields.update(
        cli_format=np.str_(CLI_FORMAT), cli_version=np.int64(CLI_VERSION),
        task=np.str_("regression" if regression else "classification"),
        classes=np.array([], dtype=np.float64) if regression else np.asarray(est.classes_),
        x_mean=x_scaler.mean_, x_scale=x_scaler.scale_, x_var=x_scaler.var_,
        n_samples_seen=np.int64(x_scaler.n_samples_seen_),
        **{f"y_{k}": np.float64(v) for k, v in zip(("mean", "scale", "var"), y_stats, strict=True)},
        estimator_params=np.str_(json.dumps(params)),
        feature_names=np.array(list(feature_names), dtype=str), target_name=np.str_(target_name or ""),
        target_index=np.int64(-1 if target_index is None else target_index),
    )
    with atomic_write(path) as fh:
        np.savez(fh, allow_pickle=False, **fields)  # numbers and text only: load reads no pickle


def load(path: str | os.PathLike) -> SavedModel:
    """Read a model file (``train --out``, or a plain :class:`deltaprop.MLP` file); see the module.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    SavedModel

    Raises
    ------
    ValueError
        Naming the file: missing, not a model file, from another format or version, or
        members that do not fit the network.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such model file")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, not a model file")
    fields = read_model(path, extra=MEMBERS)
    net = MLP.from_fields(fields)
    D = net.layer_sizes[0]
    if "cli_format" not in fields:
        return SavedModel(net, "outputs", D)
    if text(fields["cli_format"]) != CLI_FORMAT:
        raise ValueError(f"{path}: unknown command-line format {text(fields['cli_format'])!r} "
                         f"(expected {CLI_FORMAT!r})")
    version = int(fields["cli_version"][()]) if "cli_version" in fields else -1
    if version != CLI_VERSION:
        raise ValueError(f"{path}: model written by an incompatible deltaprop version "
                         f"(format {version}, this one reads {CLI_VERSION})")
    missing = [name for name in REQUIRED if name not in fields]
    if missing:
        raise ValueError(f"{path}: model file is missing {', '.join(missing)}")
    try:
        model = _rebuild(net, fields)
    except ValueError as exc:
        raise ValueError(f"{path}: model file is inconsistent: {exc}") from None
    return SavedModel(model, text(fields["task"]), D, text(fields["target_name"]),
                      int(fields["target_index"][()]), tuple(str(f) for f in fields["feature_names"]))


def _rebuild(net: MLP, fields: dict[str, np.ndarray]) -> Pipeline:
    """The pipeline of :func:`assemble` from a file's members, each checked against the network."""
    task, classes = checked_task(net, fields)
    x_scaler = fitted_scaler(*stored_statistics(fields, "x", n_samples_seen=fields.get("n_samples_seen")))
    y_scaler = fitted_scaler(*stored_statistics(fields, "y"))
    D = net.layer_sizes[0]
    if len(fields["feature_names"]) not in (0, D):
        raise ValueError(f"{len(fields['feature_names'])} feature names for a network with {D} inputs")
    if task == "classification":
        est = MLPClassifier.from_network(net, classes=classes, **stored_params(fields, MLPClassifier))
        return assemble(x_scaler, est)
    return assemble(x_scaler, MLPRegressor.from_network(net, **stored_params(fields, MLPRegressor)), y_scaler)
