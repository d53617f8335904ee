"""The command line's option values: argparse types, the lists they choose from, output paths.

Each type turns an option's text into its value or raises ``argparse.ArgumentTypeError``, which
argparse reports as a usage error (exit status 2) naming the option.
"""

from __future__ import annotations

import argparse
import os
from typing import Callable, TypeVar

import numpy as np

from .. import plots
from ..contract import DTYPES
from ..estimators.solvers import SOLVER_NAMES

__all__ = ["TRAIN_SOLVERS", "DTYPE_NAMES", "number", "positive_int", "positive_float", "fraction", "cpu",
           "non_negative_float", "unit_interval", "seed", "jobs", "hidden_sizes", "csv_list", "check_out"]

#: the solvers ``deltaprop train --solver`` offers: the estimators' ``solver`` values
TRAIN_SOLVERS = SOLVER_NAMES
#: the floating-point types of ``--dtype`` and ``--dtypes``, by name
DTYPE_NAMES = tuple(np.dtype(d).name for d in DTYPES)

T = TypeVar("T", int, float)


def number(kind: Callable[[str], T], what: str, accept: Callable[[T], bool]) -> Callable[[str], T]:
    """An argparse type: text -> ``kind``, finite and accepted, else a usage error naming ``what``.

    Parameters
    ----------
    kind : int or float
        Converts the text.
    what : str
        The values accepted, as the error message names them ("an integer >= 1").
    accept : callable
        True for an acceptable value.

    Returns
    -------
    callable
        ``convert(text) -> value``, raising ``argparse.ArgumentTypeError``.
    """

    def convert(text: str) -> T:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not np.isfinite(value) or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}")
        return value

    convert.__doc__ = f"An option's text as {kind.__name__}: {what}, else argparse.ArgumentTypeError."
    return convert


positive_int = number(int, "an integer >= 1", lambda v: v >= 1)
positive_float = number(float, "a finite number > 0", lambda v: v > 0)
fraction = number(float, "a fraction in [0, 1)", lambda v: 0 <= v < 1)
cpu = number(int, "a CPU number (an integer >= 0)", lambda v: v >= 0)
non_negative_float = number(float, "a finite number >= 0", lambda v: v >= 0)
unit_interval = number(float, "a number in [0, 1]", lambda v: 0 <= v <= 1)
seed = number(int, "an integer from 0 to 2**32 - 1", lambda v: 0 <= v < 2**32)  # NumPy's RandomState seeds


def jobs(text: str) -> int:
    """``--jobs``: scikit-learn's n_jobs (an integer, -1 for all cores) as a thread count.

    Parameters
    ----------
    text : str
        A non-zero integer; negative counts from the number of cores (-1: all of them).

    Returns
    -------
    int
        The number of threads, >= 1.
    """
    from ..parallel import effective_n_jobs

    try:
        return effective_n_jobs(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-zero integer; got {text!r}") from None


def hidden_sizes(text: str) -> list[int]:
    """``--hidden``: ``"64,32"`` -> ``[64, 32]``, integers >= 1 (none: no hidden layer).

    Parameters
    ----------
    text : str
        Comma-separated layer sizes.

    Returns
    -------
    list of int
        The hidden layers' sizes, input side first.
    """
    return [positive_int(s) for s in csv_list(text)]


def csv_list(text: str) -> list[str]:
    """The non-empty items of a comma-separated list, spaces removed.

    Parameters
    ----------
    text : str
        ``"a, b,,c"``.

    Returns
    -------
    list of str
        ``["a", "b", "c"]``.
    """
    return [s for s in text.replace(" ", "").split(",") if s]


def check_out(path: str | None, plot: bool = False, option: str | None = None) -> None:
    """Fail before the work, not after, when ``path`` cannot be written (or, ``plot``, drawn).

    Parameters
    ----------
    path : str or None
        An output file (None: none asked for, nothing to check).
    plot : bool
        The file is a figure: matplotlib must be importable.
    option : str, optional
        The option that gave ``path`` (``"--out"``), named in the error.

    Raises
    ------
    ValueError
        The file's directory does not exist.
    ImportError
        ``plot`` and no matplotlib, with the command that installs it.
    """
    if path is None:
        return
    if plot:
        plots.pyplot()
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValueError(f"{option + ' ' if option else ''}{path}: directory does not exist")
