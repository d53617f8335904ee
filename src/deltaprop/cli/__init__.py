"""The command line: ``deltaprop train | predict | export | bench | approx``.

:func:`main` parses the arguments (:func:`build_parser`, in :mod:`deltaprop.cli.parser`) and runs
one command, a module each: :mod:`~deltaprop.cli.train`, :mod:`~deltaprop.cli.predict`,
:mod:`~deltaprop.cli.export`, :mod:`~deltaprop.cli.bench`, :mod:`~deltaprop.cli.approx`
(``deltaprop --version`` prints the version). Beside them: the data readers
(:mod:`deltaprop.cli.data`, :mod:`deltaprop.cli._formats`) and the rule matching named columns to a
model's features (:mod:`deltaprop.cli.dataset`), the fit with its progress bar and its Dask path
(:mod:`deltaprop.cli.training`, :mod:`deltaprop.cli.cluster`, :mod:`deltaprop.cli._partitions`),
the model file (a fitted pipeline of scalers and estimator, no pickle: :mod:`deltaprop.cli.pipeline`,
loaded as a :class:`deltaprop.cli.savedmodel.SavedModel`) and the option values
(:mod:`deltaprop.cli.options`).

Every user error (a bad file, an unknown column, non-numeric data, a model file from elsewhere,
a bad option value) ends in one line on stderr and a non-zero exit status, never a traceback
(``DELTAPROP_DEBUG=1`` shows one); Ctrl-C ends a command with status 130. Every output file is
written atomically.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from ..estimators import TrainingInterrupted
from .parser import PROG, build_parser

__all__ = ["main", "build_parser"]


def _describe(exc: BaseException) -> str:
    """One line: the message of an expected kind of error, else the type and the message."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if text and isinstance(exc, (ValueError, TypeError, OSError, FloatingPointError, ImportError)):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deltaprop`` console script and of ``python -m deltaprop``.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 done, 1 an error (one line on stderr), 2 a usage error or no command
        (argparse exits with 2 itself for a bad option), 130 interrupted (Ctrl-C).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except (KeyboardInterrupt, TrainingInterrupted):
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # MemoryError or anything unexpected too: one line, exit 1
        if os.environ.get("DELTAPROP_DEBUG") == "1":
            raise
        print(f"{PROG} {args.command}: error: {_describe(exc)}", file=sys.stderr)
        return 1
