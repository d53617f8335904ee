"""``deltaprop approx``: Fig. 5.3 of Bishop's Pattern Recognition and Machine Learning, fitted and drawn.

The fits are :func:`deltaprop.demo.fit_fig53`'s, the figure :func:`deltaprop.plots.fig53`'s.
"""

from __future__ import annotations

import argparse
import sys

from .. import demo, plots
from .options import check_out

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """Run ``deltaprop approx`` with its parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        The options of :func:`deltaprop.cli.build_parser`'s ``approx``.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    ImportError
        Without matplotlib, before any fit.
    ValueError
        The figure's directory does not exist, or its file type is not one matplotlib writes.
    """
    check_out(args.out, plot=True, option="--out")  # before the fits: matplotlib and the directory
    results = demo.fit_fig53(seed=args.seed, n=args.n, restarts=args.restarts)
    plots.fig53(results, args.out)
    for res in results:
        print(f"{res['name']:>7}: E = {res['E']:.3g}  RMS error = {res['rms']:.3g}")
    print(f"figure saved to {args.out}", file=sys.stderr)
    return 0
