"""``deltaprop predict``: a saved model's predictions for every row of DATA, as CSV.

DATA's columns are the model's features by name when both have names (a CSV header, a built-in
data set; the other columns ignored, listed in a note on stderr), else in order.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import pipeline
from .data import load_data, write_csv
from .dataset import name_list
from .options import check_out

__all__ = ["run", "prediction_rows", "label_text"]


def run(args: argparse.Namespace) -> int:
    """Run ``deltaprop predict`` with its parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        The options of :func:`deltaprop.cli.build_parser`'s ``predict``.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    ValueError
        A bad model or data file, or data without the model's features: a named column missing
        (:func:`deltaprop.cli.dataset.match_columns`), or another number of unnamed columns.
    """
    check_out(args.out, option="--out")
    saved = pipeline.load(args.model)
    ds = load_data(args.data, need_target=False, n_features=saved.n_features,
                   model_target=(saved.target_name, saved.target_index), features=saved.feature_names)
    if ds.X.shape[1] != saved.n_features:
        raise ValueError(f"{ds.source}: {ds.X.shape[1]} feature columns, but the model expects {saved.n_features}")
    if ds.ignored:
        print(f"note: {ds.source}: ignoring the column{'s' if len(ds.ignored) > 1 else ''} "
              f"{name_list(ds.ignored)}, not among the model's features", file=sys.stderr)
    write_csv(prediction_rows(saved, ds.X, args.proba), args.out, sys.stdout)
    if args.out:
        print(f"{ds.X.shape[0]} predictions written to {args.out}", file=sys.stderr)
    return 0


def prediction_rows(saved: pipeline.SavedModel, X: np.ndarray, proba: bool) -> list[list[str]]:
    """The CSV rows of a model's predictions, the header first.

    Parameters
    ----------
    saved : deltaprop.cli.pipeline.SavedModel
        A loaded model file.
    X : ndarray of shape (n_samples, n_features)
        The inputs, not standardised (the model standardises them).
    proba : bool
        Classification: one ``p_<class>`` column per class after the prediction.

    Returns
    -------
    list of list of str
        A ``prediction`` column (a class label or a value; with ``proba``, then the
        probabilities), or for a plain :class:`deltaprop.MLP` file the network outputs
        ``y0, y1, ...``.
    """
    model = saved.model
    if saved.task == "outputs":
        out = model.forward(X)
        return [[f"y{k}" for k in range(out.shape[1])]] + [[repr(float(v)) for v in row] for row in out]
    if saved.task == "regression":
        return [["prediction"]] + [[repr(float(v))] for v in model.predict(X)]
    labels = [label_text(c) for c in model.predict(X)]
    if not proba:
        return [["prediction"]] + [[label] for label in labels]
    rows = [["prediction"] + [f"p_{label_text(c)}" for c in model.classes_]]
    proba_rows = model.predict_proba(X)
    return rows + [[label] + [f"{float(p):.6g}" for p in row] for label, row in zip(labels, proba_rows, strict=True)]


def label_text(value: object) -> str:
    """A class label as CSV text: ``3.0`` -> ``'3'``, anything else ``str(value)``.

    Parameters
    ----------
    value : object
        A class label.

    Returns
    -------
    str
    """
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
