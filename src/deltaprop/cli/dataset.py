"""DATA in memory (:class:`Dataset`) and the rule that matches a table's named columns to a model's features.

The readers of :mod:`deltaprop.cli._formats` return a :class:`Dataset`. :func:`match_columns` is
the one rule by which ``deltaprop predict`` (through :func:`deltaprop.cli.data.load_data`) and
:meth:`deltaprop.cli.pipeline.SavedModel.align` take a model's inputs from a table whose columns
have names: each of the model's features is the column of that name, in any order; the other
columns are left out (the caller lists them); a feature without a column, or with two, is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

__all__ = ["Dataset", "match_columns", "name_list"]

#: most names an error message or a note lists before it says how many there are in all
MAX_LISTED = 8


@dataclass
class Dataset:
    """DATA read into memory: features X (n, D) float64, target y (n,) or None, where they came from.

    ``task`` is a built-in data set's own task; ``target_index`` the target's column in a CSV;
    ``named`` whether ``feature_names`` come from the data (a CSV header, a built-in data set)
    rather than being made up (``x0, x1, ...``: a headerless CSV, an ``.npz`` file);
    ``ignored`` the named columns left out because they are not among a model's features.
    """

    X: np.ndarray
    y: Optional[np.ndarray]
    feature_names: list
    target_name: Optional[str]
    source: str
    task: Optional[str] = None
    target_index: Optional[int] = None
    named: bool = True
    ignored: list = field(default_factory=list)


def name_list(names: Sequence[str]) -> str:
    """Names for a one-line message: ``'a', 'b'``, the first :data:`MAX_LISTED` and a count when longer.

    Parameters
    ----------
    names : sequence of str

    Returns
    -------
    str
    """
    shown = ", ".join(repr(str(n)) for n in names[:MAX_LISTED])
    return shown if len(names) <= MAX_LISTED else f"{shown}, ... ({len(names)} in all)"


def match_columns(features: Sequence[str], columns: Sequence[str], source: str = "X") -> tuple[list[int], list[str]]:
    """Where each of a model's features is among a table's columns, by name.

    Parameters
    ----------
    features : sequence of str
        The model's feature names, in the order of its inputs.
    columns : sequence of str
        The table's column names, in its order.
    source : str
        What the table is, for the error message (a file name).

    Returns
    -------
    indices : list of int
        ``indices[i]`` is the column of ``features[i]``.
    ignored : list of str
        The columns that are not among the features, in the table's order.

    Raises
    ------
    ValueError
        One line naming the features without a column (and the columns the table has besides
        the features), or a feature whose name two columns share.
    """
    columns = [str(c) for c in columns]
    missing = [f for f in features if f not in columns]
    ignored = [c for c in columns if c not in set(features)]
    if missing:
        others = f"; other columns: {name_list(ignored)}" if ignored else ""
        raise ValueError(f"{source}: no column for the model's feature{'s' if len(missing) > 1 else ''} "
                         f"{name_list(missing)}{others}")
    twice = [f for f in features if columns.count(f) > 1]
    if twice:
        raise ValueError(f"{source}: more than one column named {name_list(twice)}")
    return [columns.index(f) for f in features], ignored
