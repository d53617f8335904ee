"""The command line's data: DATA read into memory or for a Dask cluster, the task it asks for, CSV out.

:func:`load_data` turns a DATA argument (a built-in data set, a CSV or an ``.npz`` file, read by
:mod:`deltaprop.cli._formats`) into a :class:`Dataset`; :func:`read_dask` into a :class:`DaskData`
whose partitions Dask workers read; :func:`infer_task` decides classification or regression;
:func:`write_csv` writes rows atomically. Every problem with a file (missing, unreadable, ragged,
non-numeric, an unknown column) is a ValueError naming the file, the column and the line.
"""

from __future__ import annotations

import csv
import glob
import io
import os
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any, Optional, Sequence, TextIO

import numpy as np

from ..engine.npzfile import atomic_write
from ._formats import BUILTIN, first_line, first_rows, is_header, read_builtin, read_csv, read_npz_data, target_column
from .dataset import Dataset, match_columns

__all__ = ["BUILTIN", "MAX_INFERRED_CLASSES", "PARQUET", "Dataset", "load_data", "DaskData",
           "read_dask", "infer_task", "decide_task", "write_csv"]

#: most distinct values a numeric integer target may have and still count as class labels
MAX_INFERRED_CLASSES = 20


def load_data(spec: str, target: Optional[str] = None, need_target: bool = True, n_features: Optional[int] = None,
              model_target: tuple[str, int] = ("", -1), features: Sequence[str] = ()) -> Dataset:
    """Read DATA: a built-in name, a ``.csv`` file or an ``.npz`` file with ``X`` (and ``y``).

    Parameters
    ----------
    spec : str
        A name of :data:`BUILTIN` (unless a file has that name) or a file.
    target : str, optional
        ``--target``: a CSV's target column, by header name or 0-based index (default: the last).
    need_target : bool
        Training: the data must hold a target.
    n_features, model_target : int and (str, int), optional
        Prediction: a CSV with ``n_features + 1`` columns holds the target too, the column
        ``model_target`` (name, index) that is left out.
    features : sequence of str, optional
        Prediction: the model's feature names (none: a model trained without names). Data with
        column names (a CSV header, a built-in data set) then gives these columns by name, in
        this order (:func:`deltaprop.cli.dataset.match_columns`), its other columns ``ignored``;
        data without names is taken in column order.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Naming the file and its problem (and for a CSV the column and the line).
    """
    if spec in BUILTIN and not os.path.exists(spec):
        if target is not None:
            raise ValueError(f"--target applies to CSV files, not to the built-in data set {spec!r}")
        ds = read_builtin(spec)
        if features:
            columns, ds.ignored = match_columns(features, ds.feature_names, spec)
            ds.X, ds.feature_names = ds.X[:, columns], list(features)
        return ds
    if not os.path.exists(spec):
        raise ValueError(f"{spec}: no such file, and not a built-in data set (built-in: {', '.join(BUILTIN)})")
    if os.path.isdir(spec):
        raise ValueError(f"{spec}: is a directory, not a data file")
    if spec.lower().endswith(".npz"):
        if target is not None:
            raise ValueError("--target applies to CSV files; an .npz file holds arrays 'X' and 'y'")
        return read_npz_data(spec, need_target)
    return read_csv(spec, target, need_target, n_features, model_target, features)


@dataclass
class DaskData:
    """DATA as a lazy dask DataFrame: the feature columns, then the target (``numeric``: numbers).

    ``named``: the feature names come from the data (a header, Parquet), as :class:`Dataset`'s.
    """

    frame: Any  # a dask.dataframe.DataFrame (dask is optional)
    feature_names: list
    target_name: str
    numeric: bool
    source: str
    task: Optional[str] = None
    target_index: Optional[int] = None
    named: bool = True


#: the file name endings read as Parquet (a directory is read as Parquet too)
PARQUET = (".parquet", ".pq")


def read_dask(spec: str, target: Optional[str] = None) -> DaskData:
    """DATA for ``train --scheduler / --dask-workers`` as a :class:`DaskData`.

    A CSV or Parquet file (a Parquet directory, a glob, or a URL that dask reads) becomes a
    ``dask.dataframe`` whose partitions the workers read; only the column names and types (and
    CSV's first block, for the header and the types) are read here. CSV follows
    :func:`load_data`'s rules (the header, ``--target``); every feature is read as float64. An
    ``.npz`` file or a built-in data set is loaded here by :func:`load_data`, as one partition.

    Parameters
    ----------
    spec, target : str
        DATA and ``--target``, as :func:`load_data`'s.

    Returns
    -------
    DaskData

    Raises
    ------
    ImportError
        Without dask or pyarrow.
    ValueError
        Naming the file and its problem.
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
        assert ds.y is not None and ds.target_name is not None  # need_target: a target or a ValueError
        import pandas as pd

        df = pd.DataFrame(ds.X, columns=ds.feature_names).assign(**{ds.target_name: ds.y})
        return DaskData(dd.from_pandas(df, npartitions=1, sort=False), list(ds.feature_names),
                        ds.target_name, ds.y.dtype.kind in "biuf", ds.source, ds.task, ds.target_index, ds.named)
    parquet = spec.lower().endswith(PARQUET) or (local and os.path.isdir(first))
    header = None
    if not parquet:
        rows = first_rows(first)
        header = [f.strip() for f in rows[0]] if len(rows) > 1 and is_header(*rows) else None
        options = dict(header=0 if header else None, skipinitialspace=True,
                       names=header or [f"x{i}" for i in range(len(rows[0]))])
    try:
        frame = dd.read_parquet(spec) if parquet else dd.read_csv(spec, **options)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{spec}: not a readable {'Parquet' if parquet else 'CSV'} file "
                         f"({first_line(exc)})") from None
    names = list(frame.columns)
    t = target_column(spec, names, names, target, True, None, ("", -1))
    assert t is not None  # need_target: a column or a ValueError
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
    return DaskData(frame[features + [names[t]]], features, names[t], numeric, spec, target_index=t,
                    named=parquet or header is not None)  # a headerless CSV's names are made up


def infer_task(y: np.ndarray, requested: str = "auto") -> str:
    """``classification`` for text labels or few distinct integers, else ``regression``.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
    requested : {"auto", "classification", "regression"}
        ``--task``; anything but auto is kept (regression needs a numeric target).

    Returns
    -------
    str
        ``"classification"`` or ``"regression"``.
    """
    numeric = y.dtype.kind in "biuf"
    if requested != "auto" or not numeric:
        return decide_task(numeric, requested)
    return decide_task(numeric, requested, y.size, np.unique(y).size, bool(np.all(y == np.round(y))))


def decide_task(numeric: bool, requested: str, n: int = 0, n_unique: int = 0, integral: bool = False) -> str:
    """:func:`infer_task`'s rule on a summary of the target.

    Parameters
    ----------
    numeric : bool
        The target holds numbers, not text labels.
    requested : {"auto", "classification", "regression"}
        ``--task``.
    n, n_unique, integral : int, int, bool
        The target's values, how many are distinct (any count above :data:`MAX_INFERRED_CLASSES`
        decides alike), whether all are integers.

    Returns
    -------
    str
        ``"classification"`` or ``"regression"``; ValueError for ``--task regression`` of text labels.
    """
    if requested == "regression":
        if not numeric:
            raise ValueError("--task regression needs a numeric target; the target column holds text labels")
        return "regression"
    if requested == "classification" or not numeric:
        return "classification"
    if integral and n_unique <= MAX_INFERRED_CLASSES and n_unique < max(3, n // 2):
        return "classification"
    return "regression"


def write_csv(rows: list[list[str]], path: Optional[str] = None, stdout: Optional[TextIO] = None) -> None:
    """Write ``rows`` (lists of strings) as CSV to ``path`` atomically, or to ``stdout``.

    Parameters
    ----------
    rows : list of list of str
    path, stdout : str and file, optional
        The file (written to a temporary file, then renamed), else the stream.
    """
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    if path is None:
        assert stdout is not None, "write_csv needs a path or a stream"
        stdout.write(buf.getvalue())
        return
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())
