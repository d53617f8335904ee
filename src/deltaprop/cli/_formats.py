"""The readers of DATA's formats for :mod:`deltaprop.cli.data`: CSV, ``.npz``, built-in data sets.

Each reader returns a :class:`deltaprop.cli.dataset.Dataset` for
:func:`deltaprop.cli.data.load_data`. In a CSV file a first row is a header when it is all text or
has text above a number in the next row; the target is a column by header name or 0-based index
(default: the last). Given a model's feature names, a CSV with a header gives those columns by name
(:func:`deltaprop.cli.dataset.match_columns`), any other column left unread. Every problem (an unreadable or
ragged file, a missing or non-numeric value, an unknown column) is a ValueError naming the file,
the column and the line. An ``.npz`` data file is untrusted input like a model file: it is read by
:func:`deltaprop.engine.npzfile.read_npz`, which checks each member's header and size before reading
its data and never unpickles. :func:`deltaprop.cli.data.read_dask` reads a CSV's header with
:func:`first_rows`, :func:`is_header` and :func:`target_column`.
"""

from __future__ import annotations

import csv
from typing import Optional, Sequence

import numpy as np

from ..engine.npzfile import Member, read_npz
from .dataset import Dataset, match_columns

__all__ = ["BUILTIN", "MAX_DATA_VALUES", "first_line", "first_rows", "is_header", "target_column", "read_csv",
           "read_npz_data", "read_builtin"]

BUILTIN = {  # name -> (loader in sklearn.datasets, task)
    "digits": ("load_digits", "classification"),
    "iris": ("load_iris", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}
#: most values an ``.npz`` data file's X may hold (8 GiB of float64)
MAX_DATA_VALUES = 2**30
_NPZ_DATA = {
    "X": Member("biuf", (1, 2), max_size=MAX_DATA_VALUES),
    "y": Member("biufUS", 1, shape=lambda f: (f["X"].shape[0],), max_chars=1024, optional=True),
}


def first_line(exc: BaseException) -> str:
    """An exception's first line of text, or its type's name when it has none."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def first_rows(path: str, count: int = 2) -> list[list[str]]:
    """The first ``count`` non-blank rows of a CSV file (a local path or a URL; at least one row).

    Raises ValueError naming the file when it is empty, unreadable or not UTF-8.
    """
    import fsspec

    rows = []
    try:
        with fsspec.open(path, "rt", encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh):
                if any(f.strip() for f in row):
                    rows.append(row)
                    if len(rows) == count:
                        break
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text (UTF-8) CSV file") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: not a readable CSV file ({exc})") from None
    except OSError as exc:
        raise ValueError(f"{path}: {first_line(exc)}") from None
    if not rows:
        raise ValueError(f"{path}: the file is empty")
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_rows(path: str) -> tuple[Optional[list[str]], list[tuple[int, list[str]]]]:
    """Non-blank rows of a CSV file as ``(header or None, [(line number, fields)])``."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [(i + 1, row) for i, row in enumerate(csv.reader(fh)) if any(f.strip() for f in row)]
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text (UTF-8) CSV file") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows:
        raise ValueError(f"{path}: the file is empty")
    header = None
    if len(rows) > 1 and is_header(rows[0][1], rows[1][1]):
        header = [f.strip() for f in rows[0][1]]
        rows = rows[1:]
    width = len(header) if header else len(rows[0][1])
    for line, row in rows:
        if len(row) != width:
            raise ValueError(f"{path}: line {line} has {len(row)} columns, expected {width}")
    if not rows:
        raise ValueError(f"{path}: no data rows after the header")
    return header, rows


def is_header(first: Sequence[str], second: Sequence[str]) -> bool:
    """Whether the first row is a header: all text, or text above a number in the next row."""
    text, text_below = [not _is_number(f) for f in first], [not _is_number(f) for f in second]
    return all(text) or any(a and not b for a, b in zip(text, text_below, strict=False))


def target_column(path: str, header: Optional[Sequence[str]], names: Sequence[str], target: Optional[str],
                  need_target: bool, n_features: Optional[int], model_target: tuple[str, int]) -> Optional[int]:
    """The 0-based index of the target column, or None when the file has none.

    ``header`` holds the header's names (None without one), ``names`` the columns' names; the
    other arguments are :func:`deltaprop.cli.data.load_data`'s (training without ``target``:
    the last column). Raises ValueError naming the file for an unknown column, an index out of
    range, or no feature column besides the target.
    """
    width = len(names)
    t = None
    if target is not None:
        if header and target in header:
            t = header.index(target)
        else:
            try:
                t = int(target)
            except ValueError:
                raise ValueError(f"{path}: unknown column {target!r}; columns are: {', '.join(names)}") from None
            if not -width <= t < width:
                raise ValueError(f"{path}: column index {t} is out of range (the file has {width} columns)")
            t %= width
    elif need_target:
        t = width - 1
    elif n_features is not None and width == n_features + 1:
        name, index = model_target  # the model's own target column, left out
        t = header.index(name) if header and name in header else index % width
    if t is not None and width < 2:
        raise ValueError(f"{path}: needs at least one feature column besides the target")
    return t


def read_csv(path: str, target: Optional[str], need_target: bool, n_features: Optional[int],
             model_target: tuple[str, int] = ("", -1), features: Sequence[str] = ()) -> Dataset:
    """A CSV file's features and target.

    Parameters
    ----------
    path, target, need_target, n_features, model_target, features
        As :func:`deltaprop.cli.data.load_data`'s.

    Returns
    -------
    Dataset
        X float64; y float64 when every value is a number, else the text labels, None (as the
        target's name and index) without a target column. With ``features`` and a header: the
        columns of those names, in that order, no target, the other columns ``ignored``.

    Raises
    ------
    ValueError
        Naming the file, the column and the line of the first problem.
    """
    header, rows = _read_rows(path)
    names = header or [f"x{i}" for i in range(len(rows[0][1]))]
    table = [[f.strip() for f in row] for _, row in rows]
    lines = [line for line, _ in rows]
    ignored: list[str] = []
    if header and features:
        feature_cols, ignored = match_columns(features, header, path)
        t = None
    else:
        t = target_column(path, header, names, target, need_target, n_features, model_target)
        feature_cols = [j for j in range(len(names)) if j != t]

    def column(j: int) -> np.ndarray:
        out = np.empty(len(table))
        for k, row in enumerate(table):
            v = row[j]
            try:
                out[k] = float(v)
            except ValueError:
                what = "missing value" if v == "" else f"non-numeric value {v!r}"
                raise ValueError(f"{path}: {what} in column {names[j]!r} (line {lines[k]})") from None
            if not np.isfinite(out[k]):
                raise ValueError(f"{path}: value {v!r} in column {names[j]!r} (line {lines[k]}) is not finite")
        return out

    X = np.column_stack([column(j) for j in feature_cols]) if feature_cols else np.empty((len(table), 0))
    y = None
    if t is not None:
        raw = [row[t] for row in table]
        y = column(t) if all(_is_number(v) for v in raw) else np.array(raw, dtype=str)
        if y.dtype.kind == "U" and "" in raw:
            raise ValueError(f"{path}: missing value in target column {names[t]!r} (line {lines[raw.index('')]})")
    return Dataset(X, y, [names[j] for j in feature_cols], names[t] if t is not None else None, path,
                   target_index=t, named=header is not None, ignored=ignored)


def read_npz_data(path: str, need_target: bool) -> Dataset:
    """An ``.npz`` data file's arrays ``X`` (and ``y``), each checked before it is read.

    Returns a Dataset without names (``x0, x1, ...``), the target ``y``, X float64 (a 1-D X is one column); raises
    ValueError naming the file for a bad member, an empty or non-finite X, or no ``y`` when
    ``need_target``.
    """
    arrays = read_npz(path, _NPZ_DATA, what="an .npz data file")
    X, y = arrays["X"], arrays.get("y")
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{path}: X must be a non-empty 2-D array; got shape {X.shape}")
    if need_target and y is None:
        raise ValueError(f"{path}: training needs an array named 'y' beside 'X'")
    if y is not None and y.dtype.kind == "S":
        y = y.astype(str)
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise ValueError(f"{path}: X contains NaN or infinity")
    return Dataset(X, y, [f"x{i}" for i in range(X.shape[1])], "y", path, named=False)


def read_builtin(name: str) -> Dataset:
    """The built-in data set ``name`` (a key of :data:`BUILTIN`), from ``sklearn.datasets``.

    Returns a Dataset with scikit-learn's feature names, the target ``"target"`` and the data
    set's task; a classification's labels are its class names (digits: 0-9).
    """
    import sklearn.datasets

    loader, task = BUILTIN[name]
    bunch = getattr(sklearn.datasets, loader)()
    names = [str(f) for f in getattr(bunch, "feature_names", [])] or [f"x{i}" for i in range(bunch.data.shape[1])]
    y = np.asarray(bunch.target)
    if task == "classification" and getattr(bunch, "target_names", None) is not None and name != "digits":
        y = np.asarray(bunch.target_names)[y].astype(str)
    return Dataset(np.asarray(bunch.data, dtype=np.float64), y, names, "target", name, task)
