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
``feature_names`` (D,), ``target_name``, ``target_index``
    the training data's columns (``predict`` drops the target column from a CSV that has it).

``x_var``, ``y_var``, ``n_samples_seen`` and ``estimator_params`` are optional: without them
``var_`` is ``scale_**2``, ``n_samples_seen_`` is not set and the estimator has its default
parameters. Loading reads every member through :func:`deltaprop.modelfile.read_npz` (each
header and size checked before its data is read), then checks the preprocessing against the
network; any problem is a ValueError naming the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .contract import OUTPUT_LOSS
from .engine import MLP
from .estimators import MLPClassifier, MLPRegressor
from .modelfile import Member, atomic_write

__all__ = ["SavedModel", "assemble", "save", "load"]

CLI_FORMAT = "deltaprop.cli"
CLI_VERSION = 1
MAX_PARAMS_CHARS = 4096


@dataclass
class SavedModel:
    """A loaded model file: ``model`` predicts (see the module), ``task`` says what it gives.

    ``task`` is ``"classification"``, ``"regression"`` or ``"outputs"``: a plain
    :class:`deltaprop.MLP` file, whose ``model`` is the network and predicts its raw outputs.
    """

    model: object
    task: str
    n_features: int
    target_name: str = ""
    target_index: int = -1


def _n_inputs(fields):
    return int(fields["layer_sizes"][0])


def _n_outputs(fields):
    return int(fields["layer_sizes"][-1])


#: Members of the format beyond the network's, read after it; all optional to the reader (a
#: plain deltaprop.MLP file has none), :data:`_REQUIRED` once ``cli_format`` is there.
_MEMBERS = {
    "cli_format": Member("U", 0, max_chars=64, optional=True),
    "cli_version": Member("iu", 0, optional=True),
    "task": Member("U", 0, max_chars=64, optional=True),
    "classes": Member("biufU", 1, max_size=lambda f: max(2, _n_outputs(f)), max_chars=1024, optional=True),
    "x_mean": Member("f", 1, shape=lambda f: (_n_inputs(f),), optional=True),
    "x_scale": Member("f", 1, shape=lambda f: (_n_inputs(f),), optional=True),
    "x_var": Member("f", 1, shape=lambda f: (_n_inputs(f),), optional=True),
    "n_samples_seen": Member("iu", 0, optional=True),
    "y_mean": Member("f", 0, optional=True),
    "y_scale": Member("f", 0, optional=True),
    "y_var": Member("f", 0, optional=True),
    "estimator_params": Member("U", 0, max_chars=MAX_PARAMS_CHARS, optional=True),
    "feature_names": Member("U", 1, max_size=_n_inputs, max_chars=1024, optional=True),
    "target_name": Member("U", 0, max_chars=1024, optional=True),
    "target_index": Member("iu", 0, optional=True),
}
_REQUIRED = ("task", "classes", "x_mean", "x_scale", "y_mean", "y_scale", "feature_names",
             "target_name", "target_index")


def assemble(x_scaler, est, y_scaler=None):
    """The pipeline of a fitted input scaler, a fitted estimator and (regression) a target scaler."""
    final = est
    if y_scaler is not None:
        final = TransformedTargetRegressor(regressor=est, transformer=y_scaler)
        final.regressor_, final.transformer_ = est, y_scaler
        final._training_dim = 1  # what fit records for a 1-D target: predict returns 1-D
    return Pipeline([("scale", x_scaler), ("mlp", final)])


def _scaler(mean, scale, var, n_samples_seen=None):
    """A fitted StandardScaler with these statistics."""
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = (np.asarray(a, dtype=np.float64) for a in (mean, scale, var))
    scaler.n_features_in_ = scaler.mean_.shape[0]
    if n_samples_seen is not None:
        scaler.n_samples_seen_ = n_samples_seen
    return scaler


def save(path, pipeline, feature_names=(), target_name="", target_index=-1):
    """Write a pipeline made by :func:`assemble` to ``path`` (atomically)."""
    x_scaler, final = pipeline.named_steps["scale"], pipeline.named_steps["mlp"]
    regression = isinstance(final, TransformedTargetRegressor)
    est = final.regressor_ if regression else final
    sizes = [est.n_features_in_, *(W.shape[1] for W in est.coefs_)]
    net = MLP(sizes, hidden=est.activation, output=est.out_activation_, loss=OUTPUT_LOSS[est.out_activation_],
              backend="numpy", dtype=est.coefs_[0].dtype.name, random_state=0)
    net.coefs_, net.intercepts_ = est.coefs_, est.intercepts_
    y = final.transformer_ if regression else None
    y_stats = (y.mean_[0], y.scale_[0], y.var_[0]) if regression else (0.0, 1.0, 1.0)
    params = {k: v for k, v in est.get_params().items() if k != "callback"}
    fields = net._fields()
    fields.update(
        cli_format=np.str_(CLI_FORMAT), cli_version=np.int64(CLI_VERSION),
        task=np.str_("regression" if regression else "classification"),
        classes=np.array([], dtype=np.float64) if regression else np.asarray(est.classes_),
        x_mean=x_scaler.mean_, x_scale=x_scaler.scale_, x_var=x_scaler.var_,
        n_samples_seen=np.int64(x_scaler.n_samples_seen_),
        **{f"y_{k}": np.float64(v) for k, v in zip(("mean", "scale", "var"), y_stats)},
        estimator_params=np.str_(json.dumps(params)),
        feature_names=np.array(list(feature_names), dtype=str), target_name=np.str_(target_name or ""),
        target_index=np.int64(-1 if target_index is None else target_index),
    )
    with atomic_write(path) as fh:
        np.savez(fh, **fields)


def load(path) -> SavedModel:
    """Read a model file (``train --out``, or a plain :class:`deltaprop.MLP` file); see the module."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such model file")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, not a model file")
    net, fields = MLP._load(path, extra=_MEMBERS)
    D = net.layer_sizes[0]
    if "cli_format" not in fields:
        return SavedModel(net, "outputs", D)
    if _text(fields["cli_format"]) != CLI_FORMAT:
        raise ValueError(f"{path}: unknown command-line format {_text(fields['cli_format'])!r} "
                         f"(expected {CLI_FORMAT!r})")
    version = int(fields["cli_version"][()]) if "cli_version" in fields else -1
    if version != CLI_VERSION:
        raise ValueError(f"{path}: model written by an incompatible deltaprop version "
                         f"(format {version}, this one reads {CLI_VERSION})")
    missing = [name for name in _REQUIRED if name not in fields]
    if missing:
        raise ValueError(f"{path}: model file is missing {', '.join(missing)}")
    try:
        model = _rebuild(net, fields)
    except ValueError as exc:
        raise ValueError(f"{path}: model file is inconsistent: {exc}") from None
    return SavedModel(model, _text(fields["task"]), D, _text(fields["target_name"]),
                      int(fields["target_index"][()]))


def _text(value) -> str:
    return str(value[()])


def _rebuild(net, fields):
    """The pipeline of :func:`assemble` from a file's members, each checked against the network."""
    task, classes = _text(fields["task"]), fields["classes"]
    D, K = net.layer_sizes[0], net.layer_sizes[-1]
    if task == "classification":
        n_classes = 2 if K == 1 else K  # binary: one logistic output for two classes
        if classes.size != n_classes:
            raise ValueError(f"{classes.size} class labels for a network with {K} output{'s' if K > 1 else ''} "
                             f"(needs {n_classes})")
        if classes.dtype.kind == "f" and not np.isfinite(classes).all():
            raise ValueError("the class labels contain NaN or infinity")
    elif task == "regression":
        if K != 1 or classes.size:
            raise ValueError(f"a regression model has one network output and no class labels; this one "
                             f"has {K} outputs and {classes.size} labels")
    else:
        raise ValueError(f"unknown task {task!r} (classification or regression)")
    x_scaler = _stored_scaler(fields, "x", n_samples_seen=fields.get("n_samples_seen"))
    y_scaler = _stored_scaler(fields, "y")
    if len(fields["feature_names"]) not in (0, D):
        raise ValueError(f"{len(fields['feature_names'])} feature names for a network with {D} inputs")
    if task == "classification":
        est = MLPClassifier._from_net(net, classes=classes, **_params(fields, MLPClassifier))
        return assemble(x_scaler, est)
    return assemble(x_scaler, MLPRegressor._from_net(net, **_params(fields, MLPRegressor)), y_scaler)


def _stored_scaler(fields, prefix, n_samples_seen=None):
    """The StandardScaler of ``x_*`` or ``y_*``: finite means, positive finite scales."""
    mean, scale = (np.atleast_1d(np.asarray(fields[f"{prefix}_{k}"], dtype=np.float64)) for k in ("mean", "scale"))
    var = fields.get(f"{prefix}_var")
    var = scale**2 if var is None else np.atleast_1d(np.asarray(var, dtype=np.float64))
    scalar = prefix == "y"
    if not np.isfinite(mean).all():
        raise ValueError(f"{prefix}_mean is {mean[0]}" if scalar else f"{prefix}_mean contains NaN or infinity")
    if not (np.isfinite(scale).all() and (scale > 0).all()):
        raise ValueError(f"{prefix}_scale must be positive and finite" + (f"; it is {scale[0]}" if scalar else ""))
    if not (np.isfinite(var).all() and (var >= 0).all()):
        raise ValueError(f"{prefix}_var must be finite and >= 0")
    if n_samples_seen is not None:
        n_samples_seen = int(n_samples_seen[()])
        if n_samples_seen < 1:
            raise ValueError(f"n_samples_seen must be >= 1; it is {n_samples_seen}")
    return _scaler(mean, scale, var, n_samples_seen)


def _params(fields, cls) -> dict:
    """The stored constructor parameters: JSON, names the estimator has, values it accepts."""
    if "estimator_params" not in fields:
        return {}
    try:
        params = json.loads(_text(fields["estimator_params"]))
    except ValueError as exc:
        raise ValueError(f"estimator_params is not JSON ({exc})") from None
    allowed = set(cls().get_params()) - {"callback"}
    if not isinstance(params, dict) or not set(params) <= allowed:
        unknown = sorted(set(params) - allowed) if isinstance(params, dict) else []
        raise ValueError(f"estimator_params must be {cls.__name__}'s parameters"
                         + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    cls(**params)._validate_params()
    return params
