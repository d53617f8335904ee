"""The command line's argument tree: ``deltaprop COMMAND [options]``, each command's options and help.

Each subcommand's parser sets ``func``, the function of :mod:`deltaprop.cli` that runs it with the
parsed arguments (``train``: :func:`deltaprop.cli.train.run`, ...). The option values are converted
and checked by the types of :mod:`deltaprop.cli.options`.
"""

from __future__ import annotations

import argparse

from .. import __version__
from ..backends import BACKENDS
from ..bench.timing import MIN_CALL_SECONDS
from ..contract import DEFAULT_ETA, HIDDEN_ACTIVATIONS, HYPER_DEFAULTS, PARALLEL_MODES
from . import approx, bench, export, predict, train
from .data import BUILTIN, MAX_INFERRED_CLASSES
from .options import (
    DTYPE_NAMES,
    TRAIN_SOLVERS,
    cpu,
    fraction,
    hidden_sizes,
    jobs,
    non_negative_float,
    positive_float,
    positive_int,
    seed,
    unit_interval,
)

__all__ = ["PROG", "build_parser"]

PROG = "deltaprop"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except for options whose default is 'not given'."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _add_train(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train", formatter_class=_HelpFormatter, help="train a network on a data set and report its held-out score",
        description="Train a network on DATA with a progress bar per epoch; print the held-out score "
                    "(accuracy for classification, R^2 for regression) and the training throughput. "
                    "Trains deltaprop.MLPClassifier / MLPRegressor; inputs (and regression targets) "
                    "are standardised with the training split's mean and standard deviation, "
                    "stored in the model file.")
    p.add_argument("data", nargs="?", default="digits", metavar="DATA",
                   help=f"a CSV file, an .npz file with arrays X and y, or a built-in data set: {', '.join(BUILTIN)}; "
                        "with --scheduler or --dask-workers also a Parquet file or directory, or a glob")
    p.add_argument("--target", metavar="COLUMN",
                   help="CSV target column, by header name or 0-based index (default: the last column)")
    p.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                   help=f"auto: text labels or at most {MAX_INFERRED_CLASSES} distinct integers are "
                        "classes, anything else regression")
    p.add_argument("--hidden", type=hidden_sizes, default="32", metavar="SIZES",
                   help="hidden layer sizes, comma-separated (e.g. 64,32)")
    p.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="tanh", help="hidden activation h")
    p.add_argument("--solver", choices=TRAIN_SOLVERS, default="sgd",
                   help="sgd: gradient descent (per-sample with --batch-size 1); adam; lbfgs: full-batch quasi-Newton")
    p.add_argument("--epochs", type=positive_int, default=20,
                   help="passes over the training split (lbfgs: most iterations)")
    p.add_argument("--lr", type=positive_float, default=DEFAULT_ETA, help="learning rate eta (sgd, adam)")
    p.add_argument("--momentum", type=unit_interval, default=HYPER_DEFAULTS["momentum"],
                   help="sgd momentum mu (0: plain gradient descent)")
    p.add_argument("--alpha", type=non_negative_float, default=HYPER_DEFAULTS["alpha"],
                   help="L2 penalty on the weights")
    p.add_argument("--batch-size", type=positive_int, default=1, help="samples per update (1: on-line, per-sample SGD)")
    p.add_argument("--backend", choices=("auto", *BACKENDS), default="auto",
                   help="kernel backend (auto: the fastest available)")
    p.add_argument("--dtype", choices=DTYPE_NAMES, default="float64", help="floating-point type")
    p.add_argument("--seed", type=seed, default=0, help="seed of the split, the initial weights and the shuffling")
    p.add_argument("--validation-split", type=fraction, default=0.2, metavar="FRACTION",
                   help="fraction of the samples held out for the score (0: none)")
    p.add_argument("--out", metavar="MODEL.npz", help="save the trained model (written atomically)")
    p.add_argument("--plot", metavar="CURVE.png",
                   help="draw the learning curve (training and validation loss); needs matplotlib")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    dask = p.add_argument_group(
        "on a Dask cluster", "Train deltaprop.dask.MLPClassifier / MLPRegressor instead: the workers read DATA "
        "with dask.dataframe (a path every worker can read), hold out --validation-split of each partition's "
        "rows (not stratified), standardise and score them where they are. Needs pip install 'deltaprop[dask]'.")
    where = dask.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="the Dask scheduler to connect to (tcp://host:8786)")
    where.add_argument("--dask-workers", type=positive_int, metavar="N",
                       help="start a LocalCluster of N worker processes, one thread each, for this run")
    dask.add_argument("--timeout", type=positive_float, default=5.0, metavar="SECONDS",
                      help="how long to wait for --scheduler to answer (Dask's connect timeout)")
    p.set_defaults(func=train.run)


def _add_predict(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "predict", formatter_class=_HelpFormatter, help="predict with a saved model, as CSV",
        description="Predict with a model saved by 'deltaprop train --out' for every row of DATA; write CSV "
                    "with a 'prediction' column (class label or value). Columns: when DATA has column names "
                    "(a CSV header, a built-in data set) and the model was trained on named columns, each "
                    "feature is the column of its name, in any order; other columns (the target, an id) are "
                    "ignored and listed in a note on stderr; a feature without a column is an error. "
                    "Otherwise (a headerless CSV, an .npz file, a model trained on one) the columns are "
                    "taken in order, and a CSV with one column more than the model's features has its "
                    "target column dropped. A plain deltaprop.MLP file gives the raw network outputs "
                    "y0, y1, ...")
    p.add_argument("model", metavar="MODEL", help="model file written by 'deltaprop train --out'")
    p.add_argument("data", metavar="DATA",
                   help=f"a CSV file, an .npz file with X, or a built-in data set: {', '.join(BUILTIN)}")
    p.add_argument("--out", metavar="FILE.csv", help="write the CSV here (atomically) instead of to stdout")
    p.add_argument("--proba", action="store_true", help="classification: add one probability column per class")
    p.set_defaults(func=predict.run)


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench", formatter_class=_HelpFormatter, help="per-sample SGD throughput of every available backend",
        description="Measure per-sample SGD throughput (samples/s: whole epochs of on-line gradient descent "
                    "after a warm-up, one thread, the median of interleaved rounds) of every available "
                    "backend on the standard shapes of deltaprop.bench, with ratios to the NumPy backend "
                    "and to scikit-learn's and PyTorch's per-sample SGD when they are installed. "
                    "--minibatch: mini-batch epochs (784-128-10, batch 32 and 200) with the fraction of "
                    "their arithmetic ceiling (a batch's matrix products alone, through NumPy's BLAS), "
                    "per-sample epochs and MLPClassifier() fits against the NumPy backend, scikit-learn and, run by "
                    "--peer-python in its own process, JAX and PyTorch. One thread is measured pinned "
                    "to one CPU (every thread of the process, and the peers python), so that no "
                    "thread pool borrows a second core.")
    p.add_argument("--backends", metavar="LIST", help="comma-separated backends (default: every available one)")
    p.add_argument("--dtypes", metavar="LIST", default=",".join(DTYPE_NAMES), help="comma-separated dtypes")
    p.add_argument("--shapes", metavar="LIST",
                   help="comma-separated standard shapes (default: all of deltaprop.bench.SHAPES)")
    p.add_argument("--repeats", type=positive_int, default=5, help="interleaved timing rounds (median)")
    p.add_argument("--min-time", type=positive_float, default=0.2, metavar="SECONDS",
                   help="each timed call runs whole epochs for at least this long")
    p.add_argument("--quick", action="store_true",
                   help=f"one round, each timed call lasting at least {MIN_CALL_SECONDS:g} s: a smoke test; "
                        "figures of small shapes are then noisy and overhead-bound")
    p.add_argument("--no-peers", action="store_true", help="skip the scikit-learn and PyTorch peers")
    p.add_argument("--jobs", type=jobs, default=1, metavar="N",
                   help="also time each compiled backend on N threads (MLP.fit's n_jobs; -1: all cores)")
    p.add_argument("--parallel", choices=PARALLEL_MODES, default=PARALLEL_MODES[0],
                   help="how the --jobs threads share the weights")
    p.add_argument("--minibatch", action="store_true",
                   help="the mini-batch table instead: batch_epoch, sgd_epoch and MLPClassifier() against "
                        "NumPy, scikit-learn, JAX and PyTorch")
    p.add_argument("--peer-python", metavar="PATH",
                   help="--minibatch: a Python with jax and/or torch and numpy (e.g. peers/bin/python); "
                        "its peers run in their own process on the same CPU")
    p.add_argument("--cpu", type=cpu, metavar="K",
                   help="pin to CPU K (default: the highest-numbered CPU this process may run on)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    p.add_argument("--plot", metavar="BARS.png", help="draw a bar chart; needs matplotlib")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=bench.run)


def _add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export", formatter_class=_HelpFormatter, help="export a saved model to ONNX",
        description="Write MODEL (from 'deltaprop train --out', or a deltaprop.MLP file) as an ONNX graph "
                    "that ONNX Runtime and other ONNX runtimes execute: the stored standardisation, the "
                    "network, and a classifier's labels and probabilities (a regressor's de-standardised "
                    "values). Needs the onnx package: pip install 'deltaprop[onnx]'.")
    p.add_argument("model", metavar="MODEL", help="model file written by 'deltaprop train --out'")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file (written atomically)")
    p.add_argument("--opset", type=positive_int, help="ONNX opset (default: a recent one ONNX Runtime runs)")
    p.set_defaults(func=export.run)


def _add_approx(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "approx", formatter_class=_HelpFormatter,
        help="Fig. 5.3 of Bishop's Pattern Recognition and Machine Learning: a 1-3-1 tanh network fitting "
             "four functions",
        description="Reproduce Fig. 5.3 of Bishop's Pattern Recognition and Machine Learning: N points uniform "
                    "on (-1, 1) of x^2, sin x, |x| and the Heaviside step, each fitted by a network with 3 tanh "
                    "hidden units and a linear output (deltaprop.MLPRegressor, L-BFGS on deltaprop's backprop "
                    "gradient, best of a few seeded restarts). Draws the data, the network function and the "
                    "three hidden units' outputs (dashed), and prints each panel's final error. Needs matplotlib.")
    p.add_argument("--out", required=True, metavar="FIG.png", help="the figure file (written atomically)")
    p.add_argument("--n", type=positive_int, default=50, help="number of data points per panel")
    p.add_argument("--restarts", type=positive_int, default=4, help="seeded restarts per panel (best kept)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the data and the initial weights")
    p.set_defaults(func=approx.run)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``deltaprop``: one subcommand per command, each setting ``func``.

    Returns
    -------
    argparse.ArgumentParser
        ``parse_args`` gives a namespace with ``command`` (None when no command is given) and,
        for a command, ``func(args) -> int`` and the command's options.
    """
    parser = argparse.ArgumentParser(
        prog=PROG, description="Train multilayer perceptrons by error backpropagation with compiled kernels.",
        epilog="Run 'deltaprop COMMAND --help' for the options of each command.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}",
                        help="print the version of deltaprop and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_train, _add_predict, _add_export, _add_bench, _add_approx):
        add(sub)
    return parser
