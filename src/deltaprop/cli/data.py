"""The command line's data: built-in scikit-learn data sets, CSV files and ``.npz`` data files.

:func:`load_data` turns a DATA argument into a :class:`Dataset`; :func:`write_csv` writes rows
atomically. Every problem with a file (missing, unreadable, ragged, non-numeric, an unknown
column) is a ValueError naming the file, the column and the line. An ``.npz`` data file is
untrusted input like a model file: it is read by :func:`deltaprop.modelfile.read_npz`, which
checks each member's header and size before reading its data and never unpickles.
"""

from __future__ import annotations

import csv
import glob
import io
import os
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Optional

import numpy as np

from .modelfile import Member, atomic_write, read_npz

__all__ = ["BUILTIN", "Dataset", "load_data", "DaskData", "read_dask", "infer_task", "decide_task", "write_csv",
           "prediction_rows", "label_text"]

BUILTIN = {  # name -> (loader in sklearn.datasets, task)
    "digits": ("load_digits", "classification"),
    "iris": ("load_iris", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}
#: most distinct values a numeric integer target may have and still count as class labels
MAX_INFERRED_CLASSES = 20
#: most values an ``.npz`` data file's X may hold (8 GiB of float64)
MAX_DATA_VALUES = 2**30
_NPZ_DATA = {
    "X": Member("biuf", (1, 2), max_size=MAX_DATA_VALUES),
    "y": Member("biufUS", 1, shape=lambda f: (f["X"].shape[0],), max_chars=1024, optional=True),
}


@dataclass
class Dataset:
    """Features X (n, D) float64, target y (n,) or None, and where they came from."""

    X: np.ndarray
    y: Optional[np.ndarray]
    feature_names: list
    target_name: Optional[str]
    source: str
    task: Optional[str] = None
    target_index: Optional[int] = None


def load_data(spec, target=None, need_target=True, n_features=None, model_target=("", -1)):
    """Read DATA: a built-in name, a ``.csv`` file or an ``.npz`` file with ``X`` (and ``y``).

    For prediction (``need_target=False``) a CSV with ``n_features + 1`` columns holds the
    target too: ``model_target`` (name, index) says which column to leave out.
    """
    if spec in BUILTIN and not os.path.exists(spec):
        if target is not None:
            raise ValueError(f"--target applies to CSV files, not to the built-in data set {spec!r}")
        return _load_builtin(spec)
    if not os.path.exists(spec):
        raise ValueError(f"{spec}: no such file, and not a built-in data set (built-in: {', '.join(BUILTIN)})")
    if os.path.isdir(spec):
        raise ValueError(f"{spec}: is a directory, not a data file")
    if spec.lower().endswith(".npz"):
        if target is not None:
            raise ValueError("--target applies to CSV files; an .npz file holds arrays 'X' and 'y'")
        return _load_npz(spec, need_target)
    return _load_csv(spec, target, need_target, n_features, model_target)


@dataclass
class DaskData:
    """DATA as a lazy dask DataFrame: the feature columns, then the target column."""

    frame: object
    feature_names: list
    target_name: str
    numeric: bool
    source: str
    task: Optional[str] = None
    target_index: Optional[int] = None


#: the file name endings read as Parquet (a directory is read as Parquet too)
PARQUET = (".parquet", ".pq")


def read_dask(spec, target=None):
    """DATA for ``train --scheduler / --dask-workers`` as a :class:`DaskData`.

    A CSV or Parquet file (a Parquet directory, a glob, or a URL that dask reads) becomes a
    ``dask.dataframe`` whose partitions the workers read; only the column names and types (and
    CSV's first block, for the header and the types) are read here. CSV follows
    :func:`load_data`'s rules (the header, ``--target``); every feature is read as float64. An
    ``.npz`` file or a built-in data set is loaded here by :func:`load_data`, as one partition.
    """
    if find_spec("dask") is None:
        raise ImportError("training on a Dask cluster needs dask: pip install 'deltaprop[dask]'")
    if find_spec("pyarrow") is None:  # Parquet, and dask.dataframe's strings
        raise ImportError("reading data with dask.dataframe needs pyarrow: pip install pyarrow")
    import dask.dataframe as dd

    local = "://" not in spec
    matches = sorted(glob.glob(spec)) if local and glob.has_magic(spec) else [spec]
    if not matches:
        raise ValueError(f"{spec}: no file matches")
    first = matches[0]
    if spec.lower().endswith(".npz") or (local and not os.path.exists(first)):
        ds = load_data(spec, target, need_target=True)  # a built-in data set, an .npz, or the error
        import pandas as pd

        df = pd.DataFrame(ds.X, columns=ds.feature_names).assign(**{ds.target_name: ds.y})
        return DaskData(dd.from_pandas(df, npartitions=1, sort=False), list(ds.feature_names),
                        ds.target_name, ds.y.dtype.kind in "biuf", ds.source, ds.task, ds.target_index)
    parquet = spec.lower().endswith(PARQUET) or (local and os.path.isdir(first))
    if not parquet:
        rows = _first_rows(first)
        header = [f.strip() for f in rows[0]] if len(rows) > 1 and _is_header(*rows) else None
        options = dict(header=0 if header else None, skipinitialspace=True,
                       names=header or [f"x{i}" for i in range(len(rows[0]))])
    try:
        frame = dd.read_parquet(spec) if parquet else dd.read_csv(spec, **options)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{spec}: not a readable {'Parquet' if parquet else 'CSV'} file "
                         f"({_first_line(exc)})") from None
    names = list(frame.columns)
    t = _target_column(spec, names, names, target, True, None, ("", -1))
    features = [c for j, c in enumerate(names) if j != t]
    from pandas.api.types import is_numeric_dtype

    for c in features:
        if not is_numeric_dtype(frame.dtypes[c]):
            raise ValueError(f"{spec}: non-numeric values in column {c!r} (a feature; --target names "
                             "the target column)")
    numeric = is_numeric_dtype(frame.dtypes[names[t]])
    if not parquet:  # every block parsed as the first (a block's own guess may differ)
        types = {c: "float64" for c in features} | {names[t]: "float64" if numeric else "string"}
        frame = dd.read_csv(spec, **options, dtype=types)
    return DaskData(frame[features + [names[t]]], features, names[t], numeric, spec, target_index=t)


def _first_line(exc):
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _first_rows(path, count=2):
    """The first ``count`` non-blank rows of a CSV file (a local path or a URL)."""
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
        raise ValueError(f"{path}: {_first_line(exc)}") from None
    if not rows:
        raise ValueError(f"{path}: the file is empty")
    return rows


def _load_builtin(name):
    import sklearn.datasets

    loader, task = BUILTIN[name]
    bunch = getattr(sklearn.datasets, loader)()
    names = [str(f) for f in getattr(bunch, "feature_names", [])] or [f"x{i}" for i in range(bunch.data.shape[1])]
    y = np.asarray(bunch.target)
    if task == "classification" and getattr(bunch, "target_names", None) is not None and name != "digits":
        y = np.asarray(bunch.target_names)[y].astype(str)
    return Dataset(np.asarray(bunch.data, dtype=np.float64), y, names, "target", name, task)


def _load_npz(path, need_target):
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
    return Dataset(X, y, [f"x{i}" for i in range(X.shape[1])], "y", path)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_rows(path):
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
    if len(rows) > 1 and _is_header(rows[0][1], rows[1][1]):
        header = [f.strip() for f in rows[0][1]]
        rows = rows[1:]
    width = len(header) if header else len(rows[0][1])
    for line, row in rows:
        if len(row) != width:
            raise ValueError(f"{path}: line {line} has {len(row)} columns, expected {width}")
    if not rows:
        raise ValueError(f"{path}: no data rows after the header")
    return header, rows


def _is_header(first, second):
    """The first row is a header if it is all text, or has text above a number in the next row."""
    first, second = [not _is_number(f) for f in first], [not _is_number(f) for f in second]
    return all(first) or any(a and not b for a, b in zip(first, second))


def _target_column(path, header, names, target, need_target, n_features, model_target):
    """The 0-based index of the target column, or None when the file has none."""
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


def _load_csv(path, target, need_target, n_features, model_target=("", -1)):
    header, rows = _read_rows(path)
    names = header or [f"x{i}" for i in range(len(rows[0][1]))]
    table = [[f.strip() for f in row] for _, row in rows]
    lines = [line for line, _ in rows]
    t = _target_column(path, header, names, target, need_target, n_features, model_target)

    def column(j):
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

    feature_cols = [j for j in range(len(names)) if j != t]
    X = np.column_stack([column(j) for j in feature_cols]) if feature_cols else np.empty((len(table), 0))
    y = None
    if t is not None:
        raw = [row[t] for row in table]
        y = column(t) if all(_is_number(v) for v in raw) else np.array(raw, dtype=str)
        if y.dtype.kind == "U" and "" in raw:
            raise ValueError(f"{path}: missing value in target column {names[t]!r} (line {lines[raw.index('')]})")
    return Dataset(X, y, [names[j] for j in feature_cols], names[t] if t is not None else None,
                   path, target_index=t)


def infer_task(y, requested="auto"):
    """``classification`` for text labels or few distinct integers, else ``regression``."""
    numeric = y.dtype.kind in "biuf"
    if requested != "auto" or not numeric:
        return decide_task(numeric, requested)
    return decide_task(numeric, requested, y.size, np.unique(y).size, bool(np.all(y == np.round(y))))


def decide_task(numeric, requested, n=0, n_unique=0, integral=False):
    """:func:`infer_task`'s rule on a summary of the target: ``n`` values, ``n_unique`` of them
    distinct (any count above :data:`MAX_INFERRED_CLASSES` decides alike), all integers or not."""
    if requested == "regression":
        if not numeric:
            raise ValueError("--task regression needs a numeric target; the target column holds text labels")
        return "regression"
    if requested == "classification" or not numeric:
        return "classification"
    if integral and n_unique <= MAX_INFERRED_CLASSES and n_unique < max(3, n // 2):
        return "classification"
    return "regression"


def write_csv(rows, path=None, stdout=None):
    """Write ``rows`` (lists of strings) as CSV to ``path`` atomically, or to ``stdout``."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    if path is None:
        stdout.write(buf.getvalue())
        return
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())


def prediction_rows(saved, X, proba):
    """CSV rows: a 'prediction' column (and ``p_<class>`` columns), or y0, y1, ... of a plain MLP."""
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
    return rows + [[label] + [f"{float(p):.6g}" for p in row] for label, row in zip(labels, model.predict_proba(X))]


def label_text(value):
    """A class label as CSV text: 3.0 -> '3'."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
