"""``deltaprop bench``: run :mod:`deltaprop.bench` (per-sample or mini-batch) and print its table or JSON.

The options are checked against each other here; the measurements, the pinning to one CPU and
the tables are :mod:`deltaprop.bench`'s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import nullcontext
from types import ModuleType

from .. import plots
from ..backends import available_backends
from ..contract import PARALLEL_MODES
from .options import DTYPE_NAMES, check_out, csv_list

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """Run ``deltaprop bench`` with its parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        The options of :func:`deltaprop.cli.build_parser`'s ``bench``.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    ValueError
        Options that do not go together, or an unknown backend, dtype or shape.
    """
    from .. import bench

    if args.minibatch:
        return _minibatch(args, bench)
    if args.peer_python:
        raise ValueError("--peer-python runs the peers of --minibatch; add --minibatch")
    if args.cpu is not None and args.jobs > 1:
        raise ValueError("--cpu pins the one-thread measurement; it does not go with --jobs N > 1")
    _check_cpu(args.cpu)
    check_out(args.plot, plot=True, option="--plot")
    shapes = csv_list(args.shapes) if args.shapes else list(bench.SHAPES)
    dtypes = csv_list(args.dtypes)
    repeats, min_time = (1, 0.0) if args.quick else (args.repeats, args.min_time)
    log = None if (args.json or args.quiet) else (lambda msg: print(msg, file=sys.stderr))
    with bench.pin_to_one_cpu(args.cpu) if args.jobs == 1 else nullcontext() as cpu:  # --jobs N: N cores
        rows, skipped = bench.run(csv_list(args.backends) if args.backends else available_backends(), dtypes,
                                  shapes, () if args.no_peers else ("sklearn", "torch"), repeats, min_time, log,
                                  args.jobs, args.parallel)
    info = dict(bench.machine_info(), pinned_cpu=cpu)
    if args.json:
        threads = "one thread" + (f" and {args.jobs} threads" if args.jobs > 1 else "")
        print(json.dumps({"unit": "samples/s", "method": "per-sample SGD (MLP.fit, batch_size=1), "
                          f"median of {repeats} rounds, {threads}, {bench.pinning_words(info)}", "machine": info,
                          "skipped_peers": skipped, "results": rows}, indent=1))
    else:
        print(bench.table(rows, repeats, info, skipped))
    if args.plot:
        plots.bench_bars(rows, shapes, dtypes, args.plot)
        print(f"bar chart saved to {args.plot}", file=sys.stderr)
    return 0


def _check_cpu(cpu: int | None) -> None:
    """``--cpu K``: a CPU this process may run on (where the OS pins threads at all)."""
    if cpu is not None and hasattr(os, "sched_getaffinity") and cpu not in os.sched_getaffinity(0):
        allowed = ", ".join(str(c) for c in sorted(os.sched_getaffinity(0)))
        raise ValueError(f"--cpu {cpu}: this process may run on CPUs {allowed}")


def _minibatch(args: argparse.Namespace, bench: ModuleType) -> int:
    """``deltaprop bench --minibatch``: :func:`deltaprop.bench.run_minibatch`, pinned to one CPU."""
    given = [option for option, on in (("--shapes", args.shapes), ("--dtypes", args.dtypes != ",".join(DTYPE_NAMES)),
                                       ("--jobs", args.jobs != 1), ("--parallel", args.parallel != PARALLEL_MODES[0]),
                                       ("--plot", args.plot)) if on]
    if given:
        raise ValueError(f"{', '.join(given)} apply to the per-sample table; --minibatch times its own fixed "
                         "work (float32 epochs, float64 fits) on one thread")
    if args.no_peers and args.peer_python:
        raise ValueError("--no-peers skips the peers that --peer-python would run")
    _check_cpu(args.cpu)
    repeats, min_time = (1, 0.0) if args.quick else (args.repeats, args.min_time)
    log = None if (args.json or args.quiet) else (lambda msg: print(msg, file=sys.stderr))
    peers = () if args.no_peers else ("sklearn", *bench.REMOTE_PEERS)
    with bench.pin_to_one_cpu(args.cpu) as cpu:  # the peers python inherits the pinning
        rows, skipped = bench.run_minibatch(csv_list(args.backends) if args.backends else available_backends(),
                                            repeats, min_time, args.peer_python, log, peers=peers)
    info = dict(bench.machine_info(), pinned_cpu=cpu)
    if args.json:
        print(json.dumps({"method": f"median of {repeats} interleaved rounds, one thread, {bench.pinning_words(info)}; "
                          "unit per row: samples/s, or s/fit; ceiling (samples/s): a mini-batch's matrix products "
                          "alone through NumPy's BLAS, timed in the same rounds", "machine": info,
                          "skipped_peers": skipped,
                          "results": rows}, indent=1))
    else:
        print(bench.minibatch_table(rows, repeats, info))
    return 0
