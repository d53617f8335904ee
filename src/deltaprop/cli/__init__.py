"""The command line: ``deltaprop train | predict | export | bench | approx``.

This module parses the arguments and runs one command; the jobs live beside it: data in
:mod:`deltaprop.dataio`, the fit with its progress bar in :mod:`deltaprop.training`, the model
file (a fitted estimator and its preprocessing, no pickle) in :mod:`deltaprop.savedmodel`, the
benchmark in :mod:`deltaprop.bench`, Fig. 5.3 in :mod:`deltaprop.demo`, figures in
:mod:`deltaprop.plots`.

Every user error (a bad file, an unknown column, non-numeric data, a model file from elsewhere,
a bad option value) ends in one line on stderr and a non-zero exit status, never a traceback
(``DELTAPROP_DEBUG=1`` shows one); Ctrl-C ends a command with status 130. Every output file is
written atomically.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys

import numpy as np

from . import dataio, demo, plots, savedmodel, training
from .backends import BACKENDS, available_backends
from .contract import DTYPES, HIDDEN_ACTIVATIONS
from .estimators import TrainingInterrupted

__all__ = ["main", "build_parser"]

PROG = "deltaprop"
SOLVERS = ("sgd", "adam", "lbfgs")
DTYPE_NAMES = tuple(np.dtype(d).name for d in DTYPES)


# --------------------------------------------------------------------------- option values
def _number(kind, what, accept):
    """An argparse type: text -> ``kind``, finite and ``accept``-ed, else a usage error naming ``what``."""

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not np.isfinite(value) or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}")
        return value

    return convert


_positive_int = _number(int, "an integer >= 1", lambda v: v >= 1)
_positive_float = _number(float, "a finite number > 0", lambda v: v > 0)
_fraction = _number(float, "a fraction in [0, 1)", lambda v: 0 <= v < 1)


def _jobs(text):
    """``--jobs``: scikit-learn's n_jobs (an integer, -1 for all cores) as a thread count."""
    from .parallel import effective_n_jobs

    try:
        return effective_n_jobs(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-zero integer; got {text!r}") from None


def _hidden_sizes(text):
    """``"64,32"`` -> ``[64, 32]``: comma-separated integers >= 1 (none: no hidden layer)."""
    return [_positive_int(s) for s in _csv_list(text)]


def _csv_list(text):
    return [s for s in text.replace(" ", "").split(",") if s]


def _check_out(path, plot=False):
    """Fail before the work, not after, when ``path`` cannot be written (or, ``plot``, drawn)."""
    if path is None:
        return
    if plot:
        plots.pyplot()
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValueError(f"{path}: directory does not exist")


# --------------------------------------------------------------------------- commands
def cmd_train(args):
    if args.plot is not None and args.solver == "lbfgs":
        raise ValueError("--plot draws the loss per epoch; lbfgs has no epochs (use --solver sgd or adam)")
    _check_out(args.plot, plot=True)
    _check_out(args.out)
    if args.scheduler is not None or args.dask_workers is not None:
        return _train_on_cluster(args)
    ds = dataio.load_data(args.data, args.target, need_target=True)
    X, y = ds.X, ds.y
    task = dataio.infer_task(y, args.task if args.task != "auto" else (ds.task or "auto"))
    if X.shape[1] == 0:
        raise ValueError(f"{ds.source}: no feature columns")
    if X.shape[0] < 2:
        raise ValueError(f"{ds.source}: needs at least 2 samples; got {X.shape[0]}")
    classes = np.unique(y) if task == "classification" else None
    if classes is not None and classes.size < 2:
        raise ValueError(f"{ds.source}: the target has a single class ({classes[0]}); nothing to learn")
    tr, va = training.split(y, args.validation_split, args.seed, stratify=classes is not None)
    print(f"data {ds.source}: {X.shape[0]} samples, {X.shape[1]} features, {task}"
          + (f" ({classes.size} classes)" if classes is not None else "")
          + f"; {len(tr)} train / {len(va)} held out", file=sys.stderr)
    model, est, progress = training.fit(X, y, tr, va, task, _params(args), args.dtype, args.quiet)
    score = (lambda: model.score(X[va], y[va])) if len(va) else (lambda: model.score(X[tr], y[tr]))
    _report(args, ds, task, model, est, progress, len(tr), len(va), score)
    return 0


def _train_on_cluster(args):
    """``train --scheduler / --dask-workers``: train's steps with deltaprop.dask's estimators; the
    workers read DATA's partitions, split, standardise and score them where they are."""
    ds = dataio.read_dask(args.data, args.target)  # before any cluster: the file's columns and types
    requested = args.task if args.task != "auto" else (ds.task or "auto")
    task = None if requested == "auto" and ds.numeric else dataio.decide_task(ds.numeric, requested)
    with _dask_client(args.scheduler, args.dask_workers) as client:
        threads = client.nthreads()
        print(f"dask cluster {client.scheduler.address}: {len(threads)} workers, "
              f"{sum(threads.values())} threads", file=sys.stderr)
        data = training.ClusterData(ds, args.validation_split, args.seed, task, client, sum(threads.values()))
        task = task or dataio.decide_task(ds.numeric, requested, data.n, data.n_unique, data.integral)
        if data.n < 2:
            raise ValueError(f"{ds.source}: needs at least 2 samples; got {data.n}")
        if task == "classification" and data.classes is None:
            raise ValueError(f"{ds.source}: the target has more than {training.MAX_CLUSTER_CLASSES} distinct "
                             "values, too many classes to train on a cluster")
        if task == "classification" and data.n_unique < 2:
            raise ValueError(f"{ds.source}: the target has a single class ({data.classes[0]}); nothing to learn")
        if args.validation_split and not (data.n_val and data.n_train):
            raise ValueError(f"--validation-split {args.validation_split} leaves an empty split for {data.n} samples")
        print(f"data {ds.source}: {data.n} samples, {len(ds.feature_names)} features, {task}"
              + (f" ({data.n_unique} classes)" if task == "classification" else "")
              + f"; {data.n_train} train / {data.n_val} held out, {len(data.parts)} partitions", file=sys.stderr)
        model, est, progress = training.fit_dask(data, task, _params(args), args.dtype, args.quiet, client)
        X, y = data.rows(data.n_val > 0, task, args.dtype)
        _report(args, ds, task, model, est, progress, data.n_train, data.n_val,
                lambda: float(client.compute(est.score(X, y), sync=True)))
    return 0


@contextlib.contextmanager
def _dask_client(scheduler=None, n_workers=None):
    """A ``distributed.Client`` of the scheduler at ``scheduler``, or of a LocalCluster of
    ``n_workers`` processes (one thread each) that lives as long as the block, whatever ends it.

    Ctrl-C is this process's to handle: the workers start with SIGINT ignored (a terminal's
    Ctrl-C reaches the whole process group), and the tasks it abandons are not reported.
    """
    try:
        import distributed
    except ImportError:
        raise ImportError("--scheduler and --dask-workers need dask: pip install 'deltaprop[dask]'") from None
    asyncio_log = logging.getLogger("asyncio")
    level = asyncio_log.level
    asyncio_log.setLevel(logging.CRITICAL)  # "Task exception was never retrieved" of abandoned tasks
    try:
        if scheduler is not None:
            try:
                client = distributed.Client(scheduler)
            except OSError as exc:
                raise OSError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
            except ValueError as exc:  # not an address
                raise ValueError(f"--scheduler {scheduler}: {exc}") from None
            with client:
                yield client
            return
        try:
            handler = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the worker processes
        except ValueError:  # not the main thread, which alone handles signals
            handler = None
        try:
            cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                               dashboard_address=":0", silence_logs=logging.ERROR)
        finally:
            if handler is not None:
                signal.signal(signal.SIGINT, handler)
        with cluster, distributed.Client(cluster) as client:
            yield client
    finally:
        asyncio_log.setLevel(level)


def _params(args):
    """The estimator's constructor parameters from train's options."""
    return dict(hidden_layer_sizes=tuple(args.hidden), activation=args.activation, solver=args.solver,
                alpha=args.alpha, batch_size=args.batch_size, learning_rate_init=args.lr,
                momentum=args.momentum, nesterovs_momentum=False, max_iter=args.epochs, shuffle=True,
                random_state=args.seed, tol=0.0, n_iter_no_change=args.epochs + 1, backend=args.backend)


def _report(args, ds, task, model, est, progress, n_train, n_val, score):
    """After train's fit: the network, ``score()`` (held out, else on the training rows), the
    throughput; then --out and --plot."""
    shape = "-".join(str(s) for s in [est.n_features_in_, *args.hidden, est.n_outputs_])
    print(f"network {shape}, {args.activation} hidden, {est.out_activation_} output; backend {est.backend_}, "
          f"{np.dtype(args.dtype).name}, solver {args.solver}"
          + ("" if args.solver == "lbfgs" else f", lr {args.lr:g}, batch {args.batch_size}"), file=sys.stderr)
    metric = "accuracy" if task == "classification" else "R^2"
    if n_val:
        print(f"held-out {metric}: {score():.4f} ({n_val} samples)")
    else:
        print(f"training {metric}: {score():.4f} (no held-out split: --validation-split 0)")
    seconds = progress.fit_seconds  # the fit, less the progress bar's time
    rate = est.n_iter_ * n_train / seconds if seconds > 0 else float("inf")
    what = f"{est.n_iter_} L-BFGS iterations" if args.solver == "lbfgs" else f"{est.n_iter_} epochs"
    print(f"training throughput: {rate:,.0f} samples/s ({what} x {n_train} samples in {seconds:.2f} s, "
          f"backend {est.backend_})")
    if args.out:
        savedmodel.save(args.out, model, ds.feature_names, ds.target_name, ds.target_index)
        print(f"model saved to {args.out}", file=sys.stderr)
    if args.plot:
        ylabel = "log-loss" if task == "classification" else "half mean squared error (standardised)"
        plots.learning_curve(args.plot, progress.train_curve, progress.val_curve, ylabel,
                             f"deltaprop train {ds.source}: {shape}, {args.solver}")
        print(f"learning curve saved to {args.plot}", file=sys.stderr)


def cmd_predict(args):
    _check_out(args.out)
    saved = savedmodel.load(args.model)
    ds = dataio.load_data(args.data, need_target=False, n_features=saved.n_features,
                          model_target=(saved.target_name, saved.target_index))
    if ds.X.shape[1] != saved.n_features:
        raise ValueError(f"{ds.source}: {ds.X.shape[1]} feature columns, but the model expects {saved.n_features}")
    dataio.write_csv(dataio.prediction_rows(saved, ds.X, args.proba), args.out, sys.stdout)
    if args.out:
        print(f"{ds.X.shape[0]} predictions written to {args.out}", file=sys.stderr)
    return 0


def cmd_bench(args):
    from contextlib import nullcontext

    from . import bench

    if args.minibatch:
        return _bench_minibatch(args, bench)
    if args.peer_python:
        raise ValueError("--peer-python runs the peers of --minibatch; add --minibatch")
    if args.cpu is not None and args.jobs > 1:
        raise ValueError("--cpu pins the one-thread measurement; it does not go with --jobs N > 1")
    _check_out(args.plot, plot=True)
    shapes = _csv_list(args.shapes) if args.shapes else list(bench.SHAPES)
    dtypes = _csv_list(args.dtypes)
    repeats, min_time = (1, 0.0) if args.quick else (args.repeats, args.min_time)
    log = None if (args.json or args.quiet) else (lambda msg: print(msg, file=sys.stderr))
    with bench.pin_to_one_cpu(args.cpu) if args.jobs == 1 else nullcontext() as cpu:  # --jobs N: N cores
        rows, skipped = bench.run(_csv_list(args.backends) if args.backends else available_backends(), dtypes,
                                  shapes, () if args.no_peers else ("sklearn", "torch"), repeats, min_time, log,
                                  args.jobs, args.parallel)
    info = dict(bench.machine_info(), pinned_cpu=cpu)
    if args.json:
        threads = "one thread" + (f" and {args.jobs} threads" if args.jobs > 1 else "")
        print(json.dumps({"unit": "samples/s", "method": "per-sample SGD (MLP.fit, batch_size=1), "
                          f"median of {repeats} rounds, {threads}, {bench._pinning(info)}", "machine": info,
                          "skipped_peers": skipped, "results": rows}, indent=1))
    else:
        print(bench.table(rows, repeats, info, skipped))
    if args.plot:
        plots.bench_bars(rows, shapes, dtypes, args.plot)
        print(f"bar chart saved to {args.plot}", file=sys.stderr)
    return 0


def _bench_minibatch(args, bench):
    """``deltaprop bench --minibatch``: :func:`deltaprop.bench.run_minibatch`, pinned to one CPU."""
    given = [option for option, on in (("--shapes", args.shapes), ("--dtypes", args.dtypes != ",".join(DTYPE_NAMES)),
                                       ("--jobs", args.jobs != 1), ("--parallel", args.parallel != "average"),
                                       ("--plot", args.plot)) if on]
    if given:
        raise ValueError(f"{', '.join(given)} apply to the per-sample table; --minibatch times its own fixed "
                         "work (float32 epochs, float64 fits) on one thread")
    if args.no_peers and args.peer_python:
        raise ValueError("--no-peers skips the peers that --peer-python would run")
    repeats, min_time = (1, 0.0) if args.quick else (args.repeats, args.min_time)
    log = None if (args.json or args.quiet) else (lambda msg: print(msg, file=sys.stderr))
    peers = () if args.no_peers else ("sklearn", *bench.REMOTE_PEERS)
    with bench.pin_to_one_cpu(args.cpu) as cpu:  # the peers python inherits the pinning
        rows, skipped = bench.run_minibatch(_csv_list(args.backends) if args.backends else available_backends(),
                                            repeats, min_time, args.peer_python, log, peers=peers)
    info = dict(bench.machine_info(), pinned_cpu=cpu)
    if args.json:
        print(json.dumps({"method": f"median of {repeats} interleaved rounds, one thread, {bench._pinning(info)}; "
                          "unit per row: samples/s, or s/fit", "machine": info, "skipped_peers": skipped,
                          "results": rows}, indent=1))
    else:
        print(bench.minibatch_table(rows, repeats, info))
    return 0


def cmd_export(args):
    from .onnx_export import export_model_file

    _check_out(args.out)
    proto = export_model_file(args.model, args.out, target_opset=args.opset)
    names = ", ".join(o.name for o in proto.graph.output)
    print(f"{args.out}: ONNX opset {proto.opset_import[0].version}, input X, outputs {names}",
          file=sys.stderr)
    return 0


def cmd_approx(args):
    _check_out(args.out, plot=True)  # before the fits: matplotlib and the directory
    results = demo.fit_fig53(seed=args.seed, n=args.n, restarts=args.restarts)
    plots.fig53(results, args.out)
    for res in results:
        print(f"{res['name']:>7}: E = {res['E']:.3g}  RMS error = {res['rms']:.3g}")
    print(f"figure saved to {args.out}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- argument parsing
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except for options whose default is 'not given'."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _add_train(sub):
    p = sub.add_parser(
        "train", formatter_class=_HelpFormatter, help="train a network on a data set and report its held-out score",
        description="Train a network on DATA with a progress bar per epoch; print the held-out score "
                    "(accuracy for classification, R^2 for regression) and the training throughput. "
                    "Trains deltaprop.MLPClassifier / MLPRegressor; inputs (and regression targets) "
                    "are standardised with the training split's mean and standard deviation, "
                    "stored in the model file.")
    p.add_argument("data", nargs="?", default="digits", metavar="DATA",
                   help=f"a CSV file, an .npz file with arrays X and y, or a built-in data set: {', '.join(dataio.BUILTIN)}; "
                        "with --scheduler or --dask-workers also a Parquet file or directory, or a glob")
    p.add_argument("--target", metavar="COLUMN",
                   help="CSV target column, by header name or 0-based index (default: the last column)")
    p.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                   help=f"auto: text labels or at most {dataio.MAX_INFERRED_CLASSES} distinct integers are "
                        "classes, anything else regression")
    p.add_argument("--hidden", type=_hidden_sizes, default="32", metavar="SIZES",
                   help="hidden layer sizes, comma-separated (e.g. 64,32)")
    p.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="tanh", help="hidden activation h")
    p.add_argument("--solver", choices=SOLVERS, default="sgd",
                   help="sgd: gradient descent (per-sample with --batch-size 1); adam; lbfgs: full-batch quasi-Newton")
    p.add_argument("--epochs", type=_positive_int, default=20, help="passes over the training split (lbfgs: most iterations)")
    p.add_argument("--lr", type=_positive_float, default=0.01, help="learning rate eta (sgd, adam)")
    p.add_argument("--momentum", type=float, default=0.0, help="sgd momentum mu (0: plain gradient descent)")
    p.add_argument("--alpha", type=float, default=0.0, help="L2 penalty on the weights")
    p.add_argument("--batch-size", type=_positive_int, default=1, help="samples per update (1: on-line, per-sample SGD)")
    p.add_argument("--backend", choices=("auto", *BACKENDS), default="auto", help="kernel backend (auto: the fastest available)")
    p.add_argument("--dtype", choices=DTYPE_NAMES, default="float64", help="floating-point type")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the initial weights and the shuffling")
    p.add_argument("--validation-split", type=_fraction, default=0.2, metavar="FRACTION",
                   help="fraction of the samples held out for the score (0: none)")
    p.add_argument("--out", metavar="MODEL.npz", help="save the trained model (written atomically)")
    p.add_argument("--plot", metavar="CURVE.png", help="draw the learning curve (training and validation loss); needs matplotlib")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    dask = p.add_argument_group(
        "on a Dask cluster", "Train deltaprop.dask.MLPClassifier / MLPRegressor instead: the workers read DATA "
        "with dask.dataframe (a path every worker can read), hold out --validation-split of each partition's "
        "rows (not stratified), standardise and score them where they are. Needs pip install 'deltaprop[dask]'.")
    where = dask.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="the Dask scheduler to connect to (tcp://host:8786)")
    where.add_argument("--dask-workers", type=_positive_int, metavar="N",
                       help="start a LocalCluster of N worker processes, one thread each, for this run")
    p.set_defaults(func=cmd_train)


def _add_predict(sub):
    p = sub.add_parser(
        "predict", formatter_class=_HelpFormatter, help="predict with a saved model, as CSV",
        description="Predict with a model saved by 'deltaprop train --out' for every row of DATA; write CSV "
                    "with a 'prediction' column (class label or value). A CSV with one column more than the "
                    "model's features has its target column dropped. A plain deltaprop.MLP file gives the "
                    "raw network outputs y0, y1, ...")
    p.add_argument("model", metavar="MODEL", help="model file written by 'deltaprop train --out'")
    p.add_argument("data", metavar="DATA", help=f"a CSV file, an .npz file with X, or a built-in data set: {', '.join(dataio.BUILTIN)}")
    p.add_argument("--out", metavar="FILE.csv", help="write the CSV here (atomically) instead of to stdout")
    p.add_argument("--proba", action="store_true", help="classification: add one probability column per class")
    p.set_defaults(func=cmd_predict)


def _add_bench(sub):
    p = sub.add_parser(
        "bench", formatter_class=_HelpFormatter, help="per-sample SGD throughput of every available backend",
        description="Measure per-sample SGD throughput (samples/s: whole epochs of on-line gradient descent "
                    "after a warm-up, one thread, the median of interleaved rounds) of every available "
                    "backend on the standard shapes of deltaprop.bench, with ratios to the NumPy backend "
                    "and to scikit-learn's and PyTorch's per-sample SGD when they are installed. "
                    "--minibatch: mini-batch epochs (784-128-10, batch 32 and 200), per-sample epochs "
                    "and MLPClassifier() fits against the NumPy backend, scikit-learn and, run by "
                    "--peer-python in its own process, JAX and PyTorch. One thread is measured pinned "
                    "to one CPU (every thread of the process, and the peers python), so that no "
                    "thread pool borrows a second core.")
    p.add_argument("--backends", metavar="LIST", help="comma-separated backends (default: every available one)")
    p.add_argument("--dtypes", metavar="LIST", default=",".join(DTYPE_NAMES), help="comma-separated dtypes")
    p.add_argument("--shapes", metavar="LIST", help="comma-separated standard shapes (default: all of deltaprop.bench.SHAPES)")
    p.add_argument("--repeats", type=_positive_int, default=5, help="interleaved timing rounds (median)")
    p.add_argument("--min-time", type=_positive_float, default=0.2, metavar="SECONDS",
                   help="each timed call runs whole epochs for at least this long")
    p.add_argument("--quick", action="store_true", help="one round, one epoch each: a smoke test, noisy figures")
    p.add_argument("--no-peers", action="store_true", help="skip the scikit-learn and PyTorch peers")
    p.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                   help="also time each compiled backend on N threads (MLP.fit's n_jobs; -1: all cores)")
    p.add_argument("--parallel", choices=("average", "hogwild"), default="average",
                   help="how the --jobs threads share the weights")
    p.add_argument("--minibatch", action="store_true",
                   help="the mini-batch table instead: batch_epoch, sgd_epoch and MLPClassifier() against "
                        "NumPy, scikit-learn, JAX and PyTorch")
    p.add_argument("--peer-python", metavar="PATH",
                   help="--minibatch: a Python with jax and/or torch and numpy (e.g. peers/bin/python); "
                        "its peers run in their own process on the same CPU")
    p.add_argument("--cpu", type=_number(int, "a CPU number (an integer >= 0)", lambda v: v >= 0), metavar="K",
                   help="pin to CPU K (default: the highest-numbered CPU this process may run on)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    p.add_argument("--plot", metavar="BARS.png", help="draw a bar chart; needs matplotlib")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=cmd_bench)


def _add_export(sub):
    p = sub.add_parser(
        "export", formatter_class=_HelpFormatter, help="export a saved model to ONNX",
        description="Write MODEL (from 'deltaprop train --out', or a deltaprop.MLP file) as an ONNX graph "
                    "that ONNX Runtime and other ONNX runtimes execute: the stored standardisation, the "
                    "network, and a classifier's labels and probabilities (a regressor's de-standardised "
                    "values). Needs the onnx package: pip install 'deltaprop[onnx]'.")
    p.add_argument("model", metavar="MODEL", help="model file written by 'deltaprop train --out'")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file (written atomically)")
    p.add_argument("--opset", type=_positive_int, help="ONNX opset (default: a recent one ONNX Runtime runs)")
    p.set_defaults(func=cmd_export)


def _add_approx(sub):
    p = sub.add_parser(
        "approx", formatter_class=_HelpFormatter, help="the seed's Fig. 5.3: a 1-3-1 tanh network fitting four functions",
        description="Reproduce Fig. 5.3 of the seed (Bishop, PRML): N points uniform on (-1, 1) of x^2, sin x, "
                    "|x| and the Heaviside step, each fitted by a network with 3 tanh hidden units and a linear "
                    "output (deltaprop.MLPRegressor, L-BFGS on deltaprop's backprop gradient, best of a few "
                    "seeded restarts). Draws the data, the network function and the three hidden units' "
                    "outputs (dashed), and prints each panel's final error. Needs matplotlib.")
    p.add_argument("--out", required=True, metavar="FIG.png", help="the figure file (written atomically)")
    p.add_argument("--n", type=_positive_int, default=50, help="number of data points per panel")
    p.add_argument("--restarts", type=_positive_int, default=4, help="seeded restarts per panel (best kept)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the initial weights")
    p.set_defaults(func=cmd_approx)


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description="Train multilayer perceptrons by error backpropagation with compiled kernels.",
        epilog="Run 'deltaprop COMMAND --help' for the options of each command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_train, _add_predict, _add_export, _add_bench, _add_approx):
        add(sub)
    return parser


def _describe(exc):
    """One line: the message of an expected kind of error, else the type and the message."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if text and isinstance(exc, (ValueError, TypeError, OSError, FloatingPointError, ImportError)):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main(argv=None) -> int:
    """Entry point of the ``deltaprop`` console script; returns the exit status."""
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
