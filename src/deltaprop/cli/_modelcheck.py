"""The checks of a command-line model file's members beyond the network's (untrusted input).

:func:`deltaprop.cli.pipeline.load` reads the members listed in :data:`MEMBERS` through
:func:`deltaprop.engine.npzfile.read_npz` (each header and size checked before its data is read),
then checks them here against the network: the task and its class labels, the scalers'
statistics, the names of the estimator's stored parameters (their values are checked by the
estimator's ``from_network``). Each problem is a ValueError saying what is wrong; the loader adds
the file's name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from ..engine import MLP
from ..engine.npzfile import Member

__all__ = ["MAX_PARAMS_CHARS", "MEMBERS", "REQUIRED", "text", "checked_task", "stored_statistics", "stored_params"]

MAX_PARAMS_CHARS = 4096


def _n_inputs(fields: Mapping[str, np.ndarray]) -> int:
    return int(fields["layer_sizes"][0])


def _n_outputs(fields: Mapping[str, np.ndarray]) -> int:
    return int(fields["layer_sizes"][-1])


#: Members of the format beyond the network's, read after it; all optional to the reader (a
#: plain deltaprop.MLP file has none), :data:`REQUIRED` once ``cli_format`` is there.
MEMBERS = {
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
REQUIRED = ("task", "classes", "x_mean", "x_scale", "y_mean", "y_scale", "feature_names",
            "target_name", "target_index")


def text(value: np.ndarray) -> str:
    """A 0-d string member as a ``str``."""
    return str(value[()])


def checked_task(net: MLP, fields: dict) -> tuple[str, np.ndarray]:
    """``(task, classes)``: the stored task, and its class labels fitting the network's outputs."""
    task, classes = text(fields["task"]), fields["classes"]
    K = net.layer_sizes[-1]
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
    return task, classes


def stored_statistics(fields: dict, prefix: str, n_samples_seen: np.ndarray | None = None) -> tuple:
    """``(mean, scale, var, n_samples_seen)`` of the StandardScaler ``x_*`` or ``y_*``: finite
    means, positive finite scales, finite variances >= 0 (``scale**2`` when not stored)."""
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
    seen = None if n_samples_seen is None else int(n_samples_seen[()])
    if seen is not None and seen < 1:
        raise ValueError(f"n_samples_seen must be >= 1; it is {seen}")
    return mean, scale, var, seen


def stored_params(fields: dict, cls: type) -> dict:
    """The stored constructor parameters: JSON, names the estimator ``cls`` has (their values are
    checked by ``cls.from_network``, against scikit-learn's constraints)."""
    if "estimator_params" not in fields:
        return {}
    try:
        params = json.loads(text(fields["estimator_params"]))
    except ValueError as exc:
        raise ValueError(f"estimator_params is not JSON ({exc})") from None
    allowed = set(cls().get_params()) - {"callback"}
    if not isinstance(params, dict) or not set(params) <= allowed:
        unknown = sorted(set(params) - allowed) if isinstance(params, dict) else []
        raise ValueError(f"estimator_params must be {cls.__name__}'s parameters"
                         + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    return params
