"""A loaded model file (:class:`SavedModel`): the model that predicts and the inputs it takes, by name.

:func:`deltaprop.cli.pipeline.load` returns it. :meth:`SavedModel.align` takes the model's inputs
from a table by the rule of ``deltaprop predict`` (:func:`deltaprop.cli.dataset.match_columns`):
with names on both sides, by name, in any order; else in column order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .dataset import match_columns

__all__ = ["SavedModel"]


@dataclass
class SavedModel:
    """A loaded model file: ``model`` predicts (see :mod:`deltaprop.cli.pipeline`), ``task`` says what it gives.

    ``task`` is ``"classification"``, ``"regression"`` or ``"outputs"``: a plain
    :class:`deltaprop.MLP` file, whose ``model`` is the network and predicts its raw outputs.
    ``feature_names`` are the names of the ``n_features`` inputs, empty for a model trained on
    data without names (a headerless CSV, an ``.npz`` file) and for a plain network file.
    """

    model: Any  # a deltaprop.MLP ("outputs") or a scikit-learn Pipeline, which has no type hints
    task: str
    n_features: int
    target_name: str = ""
    target_index: int = -1
    feature_names: tuple = ()

    def align(self, X: Any, columns: Optional[Sequence[str]] = None) -> np.ndarray:
        """The model's inputs from a table: its columns matched to the model's features by name.

        With names on both sides (the model's ``feature_names`` and the table's columns) each
        feature is the column of its name, in any order, and the other columns are left out;
        otherwise the columns are taken in order and must be ``n_features``.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_samples, n_columns)
            The table.
        columns : sequence of str, optional
            X's column names (default: a DataFrame's ``columns``; an array has none).

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            float64, the columns in the order of the model's inputs: ``model.predict`` takes it.

        Raises
        ------
        ValueError
            A feature without a column (naming the features, and the table's other columns),
            two columns of a feature's name, a number of columns other than ``n_features``
            taken in order, or values that are not numbers.
        """
        if columns is None and hasattr(X, "columns"):
            columns = [str(c) for c in X.columns]
        if self.feature_names and columns is not None:
            indices, _ = match_columns(self.feature_names, columns)
            X = X.iloc[:, indices] if hasattr(X, "iloc") else np.asarray(X)[:, indices]
        try:
            A = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"X: the model's inputs must be numbers ({exc})") from None
        if A.ndim != 2 or A.shape[1] != self.n_features:
            raise ValueError(f"X has shape {A.shape}; the model takes {self.n_features} columns"
                             + ("" if self.feature_names else " (in order: it was trained without feature names)"))
        return A
