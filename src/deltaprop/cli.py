"""The command line: ``deltaprop train | predict | bench | approx``.

Calls flow one way: this module parses arguments, reads data and writes files; the models are
built and trained by deltaprop's estimators (:func:`_make_estimator`) and stored and applied as a
:class:`deltaprop.MLP` (:class:`_Model`).
Every user error (a bad file, an unknown column, non-numeric data, a model file from elsewhere,
a bad option value) ends in one line on stderr and a non-zero exit status, never a traceback
(set ``DELTAPROP_DEBUG=1`` to see one). Every output file is written atomically: to a temporary
file in the same directory, then renamed, so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import sys
import time

import numpy as np

from .modelfile import Member, atomic_write  # atomic_write: importable from here too

__all__ = ["main"]

PROG = "deltaprop"
BUILTIN = {  # name -> (loader in sklearn.datasets, task)
    "digits": ("load_digits", "classification"),
    "iris": ("load_iris", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}
HIDDEN_CHOICES = ("tanh", "logistic", "relu", "gudermannian", "identity")
SOLVER_CHOICES = ("sgd", "adam", "lbfgs")
CLI_FORMAT = "deltaprop.cli"
CLI_VERSION = 1
PLOT_HINT = "matplotlib is needed for plots; install it with: pip install 'deltaprop[plot]'"
#: most distinct values a numeric integer target may have and still count as class labels
MAX_INFERRED_CLASSES = 20


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


# --------------------------------------------------------------------------- small helpers
def _pyplot():
    """matplotlib.pyplot with a file-only backend, or a CLIError saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CLIError(PLOT_HINT) from None
    return plt


def _save_figure(fig, path):
    ext = os.path.splitext(path)[1].lower().lstrip(".") or "png"
    plt = _pyplot()
    if ext not in fig.canvas.get_supported_filetypes():
        plt.close(fig)
        raise CLIError(f"{path}: unsupported image type '.{ext}' (use .png, .pdf or .svg)")
    try:
        with atomic_write(path) as fh:
            fig.savefig(fh, format=ext, dpi=120)
    finally:
        plt.close(fig)


def _check_plot_path(path):
    """Fail before training, not after, when a plot cannot be made."""
    if path is not None:
        _pyplot()
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise CLIError(f"{path}: directory does not exist")


def _check_out_path(path):
    if path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise CLIError(f"{path}: directory does not exist")


def _hidden_sizes(text):
    try:
        sizes = [int(s) for s in text.replace(" ", "").split(",") if s != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, e.g. 64 or 64,32; got {text!r}")
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"hidden layer sizes must be >= 1; got {text!r}")
    return sizes


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0; got {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0; got {text!r}")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1); got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1); got {text!r}")
    return value


# --------------------------------------------------------------------------- data
class Dataset:
    """Features X (n, D) float64, target y (n,) or None, and names."""

    def __init__(self, X, y, feature_names, target_name, source, task=None, target_index=None):
        self.X, self.y = X, y
        self.feature_names = list(feature_names)
        self.target_name = target_name
        self.target_index = target_index
        self.source = source
        self.task = task


def load_data(spec, target=None, need_target=True, n_features=None, model_target=("", -1)):
    """Read DATA: a built-in name, a ``.csv`` file or an ``.npz`` file with ``X`` (and ``y``).

    For prediction (``need_target=False``) a CSV with ``n_features + 1`` columns holds the
    target too: ``model_target`` (name, index) says which column to leave out.
    """
    if spec in BUILTIN and not os.path.exists(spec):
        if target is not None:
            raise CLIError(f"--target applies to CSV files, not to the built-in data set {spec!r}")
        return _load_builtin(spec)
    if not os.path.exists(spec):
        raise CLIError(f"{spec}: no such file, and not a built-in data set "
                       f"(built-in: {', '.join(BUILTIN)})")
    if os.path.isdir(spec):
        raise CLIError(f"{spec}: is a directory, not a data file")
    if spec.lower().endswith(".npz"):
        if target is not None:
            raise CLIError("--target applies to CSV files; an .npz file holds arrays 'X' and 'y'")
        return _load_npz(spec, need_target)
    return _load_csv(spec, target, need_target, n_features, model_target)


def _load_builtin(name):
    import sklearn.datasets

    loader, task = BUILTIN[name]
    bunch = getattr(sklearn.datasets, loader)()
    names = [str(f) for f in getattr(bunch, "feature_names", [])] or [f"x{i}" for i in range(bunch.data.shape[1])]
    y = np.asarray(bunch.target)
    if task == "classification" and getattr(bunch, "target_names", None) is not None and name != "digits":
        y = np.asarray(bunch.target_names)[y].astype(str)
    return Dataset(np.asarray(bunch.data, dtype=np.float64), y, names, "target", name, task)


def _check_zip(path, what):
    import zipfile

    if not zipfile.is_zipfile(path):
        raise CLIError(f"{path}: not {what} (not an .npz/zip archive)")


def _load_npz(path, need_target):
    import zipfile

    _check_zip(path, "an .npz data file")
    try:
        with np.load(path, allow_pickle=False) as data:
            files = set(data.files)
            if "X" not in files:
                raise CLIError(f"{path}: an .npz data file needs an array named 'X' (found: {', '.join(sorted(files)) or 'none'})")
            X = data["X"]
            y = data["y"] if "y" in files else None
    except CLIError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CLIError(f"{path}: not a readable .npz file ({_reason(exc)})") from None
    if X.dtype.kind not in "biuf":
        raise CLIError(f"{path}: X must be numeric; got dtype {X.dtype}")
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2 or X.shape[0] == 0:
        raise CLIError(f"{path}: X must be a non-empty 2-D array; got shape {X.shape}")
    if need_target and y is None:
        raise CLIError(f"{path}: training needs an array named 'y' beside 'X'")
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise CLIError(f"{path}: y must be 1-D with one value per row of X; got shape {y.shape} for X {X.shape}")
        if y.dtype.kind not in "biufUS":
            raise CLIError(f"{path}: y must be numbers or strings; got dtype {y.dtype}")
        if y.dtype.kind == "S":
            y = y.astype(str)
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise CLIError(f"{path}: X contains NaN or infinity")
    return Dataset(X, y, [f"x{i}" for i in range(X.shape[1])], "y", path)


def _reason(exc):
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_csv(path, target, need_target, n_features, model_target=("", -1)):
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [(i + 1, row) for i, row in enumerate(csv.reader(fh)) if any(f.strip() for f in row)]
    except UnicodeDecodeError:
        raise CLIError(f"{path}: not a text (UTF-8) CSV file") from None
    except csv.Error as exc:
        raise CLIError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows:
        raise CLIError(f"{path}: the file is empty")
    header = None
    first = [not _is_number(f) for f in rows[0][1]]
    second = [not _is_number(f) for f in rows[1][1]] if len(rows) > 1 else []
    # the first row is a header if it is all text, or has text above a number in the next row
    if len(rows) > 1 and (all(first) or any(a and not b for a, b in zip(first, second))):
        header = [f.strip() for f in rows[0][1]]
        rows = rows[1:]
    width = len(header) if header else len(rows[0][1])
    for line, row in rows:
        if len(row) != width:
            raise CLIError(f"{path}: line {line} has {len(row)} columns, expected {width}")
    names = header or [f"x{i}" for i in range(width)]
    if not rows:
        raise CLIError(f"{path}: no data rows after the header")
    table = [[f.strip() for f in row] for _, row in rows]
    lines = [line for line, _ in rows]

    # which column is the target (if any)
    t = None
    if target is not None:
        if header and target in header:
            t = header.index(target)
        else:
            try:
                t = int(target)
            except ValueError:
                raise CLIError(f"{path}: unknown column {target!r}; columns are: {', '.join(names)}") from None
            if not -width <= t < width:
                raise CLIError(f"{path}: column index {t} is out of range (the file has {width} columns)")
            t %= width
    elif need_target:
        t = width - 1
    elif n_features is not None and width == n_features + 1:
        name, index = model_target  # the model's own target column, left out
        t = header.index(name) if header and name in header else index % width
    if t is not None and width < 2:
        raise CLIError(f"{path}: needs at least one feature column besides the target")

    def column(j, numeric):
        values = [row[j] for row in table]
        if not numeric:
            return np.array(values, dtype=str)
        out = np.empty(len(values))
        for k, v in enumerate(values):
            try:
                out[k] = float(v)
            except ValueError:
                what = "missing value" if v == "" else f"non-numeric value {v!r}"
                raise CLIError(f"{path}: {what} in column {names[j]!r} (line {lines[k]})") from None
            if not np.isfinite(out[k]):
                raise CLIError(f"{path}: value {v!r} in column {names[j]!r} (line {lines[k]}) is not finite")
        return out

    feature_cols = [j for j in range(width) if j != t]
    X = np.column_stack([column(j, True) for j in feature_cols]) if feature_cols else np.empty((len(table), 0))
    y = None
    if t is not None:
        raw = [row[t] for row in table]
        y = column(t, True) if all(_is_number(v) for v in raw) else column(t, False)
        if y.dtype.kind == "U" and any(v == "" for v in raw):
            k = raw.index("")
            raise CLIError(f"{path}: missing value in target column {names[t]!r} (line {lines[k]})")
    return Dataset(X, y, [names[j] for j in feature_cols], names[t] if t is not None else None,
                   path, target_index=t)


def infer_task(y, requested="auto"):
    """``classification`` for text labels or few distinct integers, else ``regression``."""
    numeric = y.dtype.kind in "biuf"
    if requested == "regression":
        if not numeric:
            raise CLIError("--task regression needs a numeric target; the target column holds text labels")
        return "regression"
    if requested == "classification":
        return "classification"
    if not numeric:
        return "classification"
    integral = np.all(y == np.round(y))
    n_unique = np.unique(y).size
    if integral and n_unique <= MAX_INFERRED_CLASSES and n_unique < max(3, y.size // 2):
        return "classification"
    return "regression"


# --------------------------------------------------------------------------- the model
#: output activation of a fitted estimator -> the engine's loss for that output
_OUTPUT_LOSS = {"softmax": "cross_entropy", "logistic": "binary_cross_entropy", "identity": "squared_error"}


class _Model:
    """A trained network with the preprocessing the command line adds around it.

    Inputs are standardised with the training split's mean and standard deviation; regression
    targets too (predictions are mapped back). The weights live in a :class:`deltaprop.MLP`
    (scikit-learn's layout), which is what the model file stores and what predicts.
    """

    def __init__(self, net, task, classes, x_mean, x_scale, y_mean=0.0, y_scale=1.0,
                 feature_names=(), target_name="", target_index=-1):
        self.net, self.task, self.classes = net, task, classes
        self.x_mean, self.x_scale = x_mean, x_scale
        self.y_mean, self.y_scale = float(y_mean), float(y_scale)
        self.feature_names = list(feature_names)
        self.target_name = target_name or ""
        self.target_index = int(target_index if target_index is not None else -1)

    @classmethod
    def from_estimator(cls, est, dtype, **kwargs):
        """Copy a fitted MLPClassifier/MLPRegressor's weights into a :class:`deltaprop.MLP`."""
        from .engine import MLP

        sizes = [est.coefs_[0].shape[0]] + [W.shape[1] for W in est.coefs_]
        out = est.out_activation_
        net = MLP(sizes, hidden=est.activation, output=out, loss=_OUTPUT_LOSS[out], backend="numpy",
                  dtype=dtype)
        net.coefs_ = est.coefs_
        net.intercepts_ = est.intercepts_
        return cls(net, **kwargs)

    @property
    def n_features(self):
        return self.net.layer_sizes[0]

    def transform_X(self, X):
        return (X - self.x_mean) / self.x_scale

    def predict_outputs(self, X):
        return self.net.forward(self.transform_X(X))

    def decode(self, out):
        """Network outputs -> class labels (classification) or target values (regression)."""
        if self.task == "classification":
            idx = (out[:, 0] > 0.5).astype(np.intp) if out.shape[1] == 1 else np.argmax(out, axis=1)
            return self.classes[idx]
        return out[:, 0] * self.y_scale + self.y_mean

    def proba(self, out):
        """Class probabilities, one column per class."""
        return np.column_stack([1 - out[:, 0], out[:, 0]]) if out.shape[1] == 1 else out

    def predict(self, X):
        return self.decode(self.predict_outputs(X))

    # -- persistence: the engine's .npz fields plus the command line's own
    def save(self, path):
        classes = self.classes if self.classes is not None else np.array([], dtype=np.float64)
        fields = self.net._fields()
        fields.update(
            cli_format=np.str_(CLI_FORMAT), cli_version=np.int64(CLI_VERSION), task=np.str_(self.task),
            classes=np.asarray(classes), x_mean=self.x_mean, x_scale=self.x_scale,
            y_mean=np.float64(self.y_mean), y_scale=np.float64(self.y_scale),
            feature_names=np.array(self.feature_names, dtype=str), target_name=np.str_(self.target_name),
            target_index=np.int64(self.target_index),
        )
        with atomic_write(path) as fh:
            np.savez(fh, **fields)

    @classmethod
    def load(cls, path):
        """Read a model file (``train --out``, or a plain :class:`deltaprop.MLP` file).

        The file is untrusted: it is read by the engine's checked loader (one pass over the
        network's members and those of ``_CLI_MEMBERS``, each checked before its data is read),
        then the preprocessing is checked against the network. Any problem is a CLIError naming
        the file.
        """
        from .engine import MLP

        path = os.fspath(path)
        if not os.path.exists(path):
            raise CLIError(f"{path}: no such model file")
        if os.path.isdir(path):
            raise CLIError(f"{path}: is a directory, not a model file")
        try:
            net, fields = MLP._load(path, extra=_CLI_MEMBERS)
        except ValueError as exc:
            raise CLIError(f"{_reason(exc)}" if path in str(exc) else f"{path}: {_reason(exc)}") from None
        D, K = net.layer_sizes[0], net.layer_sizes[-1]
        if "cli_format" not in fields:
            # a plain deltaprop.MLP file: predictions are the raw network outputs
            return cls(net, "outputs", None, np.zeros(D), np.ones(D))
        if str(fields["cli_format"][()]) != CLI_FORMAT:
            raise CLIError(f"{path}: unknown command-line format {str(fields['cli_format'][()])!r} "
                           f"(expected {CLI_FORMAT!r})")
        version = int(fields["cli_version"][()]) if "cli_version" in fields else -1
        if version != CLI_VERSION:
            raise CLIError(f"{path}: model written by an incompatible deltaprop version "
                           f"(format {version}, this one reads {CLI_VERSION})")
        missing = [name for name in _CLI_MEMBERS if name not in fields]
        if missing:
            raise CLIError(f"{path}: model file is missing {', '.join(missing)}")

        def bad(problem):
            return CLIError(f"{path}: model file is inconsistent: {problem}")

        task, classes = str(fields["task"][()]), fields["classes"]
        x_mean, x_scale = (np.asarray(fields[k], dtype=np.float64) for k in ("x_mean", "x_scale"))
        y_mean, y_scale = (float(fields[k][()]) for k in ("y_mean", "y_scale"))
        feature_names = [str(s) for s in fields["feature_names"].tolist()]
        if task == "classification":
            n_classes = 2 if K == 1 else K  # binary: one logistic output for two classes
            if classes.size != n_classes:
                raise bad(f"{classes.size} class labels for a network with {K} output{'s' if K > 1 else ''} "
                          f"(needs {n_classes})")
            if classes.dtype.kind == "f" and not np.isfinite(classes).all():
                raise bad("the class labels contain NaN or infinity")
        elif task == "regression":
            if K != 1 or classes.size:
                raise bad(f"a regression model has one network output and no class labels; this one has "
                          f"{K} outputs and {classes.size} labels")
        else:
            raise bad(f"unknown task {task!r} (classification or regression)")
        if not np.isfinite(x_mean).all():
            raise bad("x_mean contains NaN or infinity")
        if not (np.isfinite(x_scale).all() and (x_scale > 0).all()):
            raise bad("x_scale must be positive and finite")
        if not np.isfinite(y_mean):
            raise bad(f"y_mean is {y_mean}")
        if not (np.isfinite(y_scale) and y_scale > 0):
            raise bad(f"y_scale must be positive and finite; it is {y_scale}")
        if feature_names and len(feature_names) != D:
            raise bad(f"{len(feature_names)} feature names for a network with {D} inputs")
        return cls(net, task, classes if classes.size else None, x_mean, x_scale, y_mean, y_scale,
                   feature_names, str(fields["target_name"][()]), int(fields["target_index"][()]))


def _n_inputs(fields):
    return int(fields["layer_sizes"][0])


def _n_outputs(fields):
    return int(fields["layer_sizes"][-1])


#: The command line's members of a model file, read (and checked) after the network's own. All are
#: optional to the reader: a plain deltaprop.MLP file has none; one with ``cli_format`` needs all.
_CLI_MEMBERS = {
    "cli_format": Member("U", 0, max_chars=64, optional=True),
    "cli_version": Member("iu", 0, optional=True),
    "task": Member("U", 0, max_chars=64, optional=True),
    "classes": Member("biufU", 1, max_size=lambda f: max(2, _n_outputs(f)), max_chars=1024, optional=True),
    "x_mean": Member("f", 1, shape=lambda f: (_n_inputs(f),), optional=True),
    "x_scale": Member("f", 1, shape=lambda f: (_n_inputs(f),), optional=True),
    "y_mean": Member("f", 0, optional=True),
    "y_scale": Member("f", 0, optional=True),
    "feature_names": Member("U", 1, max_size=_n_inputs, max_chars=1024, optional=True),
    "target_name": Member("U", 0, max_chars=1024, optional=True),
    "target_index": Member("iu", 0, optional=True),
}


def _make_estimator(args, task):
    """The scikit-learn-style estimator ``train`` fits: the one place that builds it."""
    import deltaprop

    cls = deltaprop.MLPClassifier if task == "classification" else deltaprop.MLPRegressor
    return cls(hidden_layer_sizes=tuple(args.hidden), activation=args.activation, solver=args.solver,
               alpha=args.alpha, batch_size=args.batch_size, learning_rate_init=args.lr,
               momentum=args.momentum, nesterovs_momentum=False, max_iter=args.epochs,
               shuffle=True, random_state=args.seed, tol=0.0, n_iter_no_change=args.epochs + 1,
               backend=args.backend, progress_bar=args.solver == "lbfgs" and not args.quiet)


def _validation_loss(est, X, y, task):
    """Mean loss on held-out data in the estimator's convention (log-loss, or half squared error)."""
    if task == "classification":
        from sklearn.metrics import log_loss

        return float(log_loss(y, est.predict_proba(X), labels=est.classes_))
    return float(0.5 * np.mean((est.predict(X) - y) ** 2))


# --------------------------------------------------------------------------- train
def _split(n, fraction, seed, y=None, stratify=False):
    if fraction == 0:
        idx = np.random.RandomState(seed).permutation(n)
        return idx, idx[:0]
    from sklearn.model_selection import train_test_split

    n_val = int(round(n * fraction))
    if n_val < 1 or n - n_val < 1:
        raise CLIError(f"--validation-split {fraction} leaves an empty split for {n} samples")
    try:
        return train_test_split(np.arange(n), test_size=n_val, random_state=seed,
                                stratify=y if stratify else None)
    except ValueError:  # a class too small to stratify
        return train_test_split(np.arange(n), test_size=n_val, random_state=seed)


def cmd_train(args):
    import warnings

    from tqdm import tqdm

    if args.plot is not None and args.solver == "lbfgs":
        raise CLIError("--plot draws the loss per epoch; lbfgs has no epochs (use --solver sgd or adam)")
    _check_plot_path(args.plot)
    _check_out_path(args.out)
    ds = load_data(args.data, args.target, need_target=True)
    X, y = ds.X, ds.y
    task = infer_task(y, args.task if args.task != "auto" else (ds.task or "auto"))
    if X.shape[1] == 0:
        raise CLIError(f"{ds.source}: no feature columns")
    if X.shape[0] < 2:
        raise CLIError(f"{ds.source}: needs at least 2 samples; got {X.shape[0]}")
    classes = np.unique(y) if task == "classification" else None
    if task == "classification" and classes.size < 2:
        raise CLIError(f"{ds.source}: the target has a single class ({classes[0]}); nothing to learn")
    tr, va = _split(X.shape[0], args.validation_split, args.seed, y, task == "classification")
    x_mean = X[tr].mean(axis=0)
    x_scale = X[tr].std(axis=0)
    x_scale[x_scale == 0] = 1.0
    y_mean, y_scale = 0.0, 1.0
    if task == "regression":
        y = y.astype(np.float64)
        y_mean, y_scale = float(y[tr].mean()), float(y[tr].std()) or 1.0
        y = (y - y_mean) / y_scale  # the network learns standardised targets
    Z = ((X - x_mean) / x_scale).astype(args.dtype)  # float32 stays float32 in the estimators
    Ztr, ytr, Zva, yva = Z[tr], y[tr], Z[va], y[va]

    est = _make_estimator(args, task)
    print(f"data {ds.source}: {X.shape[0]} samples, {X.shape[1]} features, {task}"
          + (f" ({classes.size} classes)" if classes is not None else "")
          + f"; {len(tr)} train / {len(va)} held out", file=sys.stderr)
    train_curve, val_curve = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: the epoch count is the user's choice
        if args.solver == "lbfgs":
            t0 = time.perf_counter()
            est.fit(Ztr, ytr)
            fit_seconds = time.perf_counter() - t0
            n_trained = est.n_iter_ * len(tr)
        else:
            fit_seconds = 0.0
            bar = tqdm(range(args.epochs), desc="train", unit="epoch", file=sys.stderr,
                       disable=args.quiet, dynamic_ncols=True)
            for epoch in bar:
                t0 = time.perf_counter()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    if task == "classification":
                        est.partial_fit(Ztr, ytr, classes=classes if epoch == 0 else None)
                    else:
                        est.partial_fit(Ztr, ytr)
                if any("interrupted" in str(w.message) for w in caught):
                    raise KeyboardInterrupt  # the estimator swallows Ctrl-C at the epoch's end
                dt = time.perf_counter() - t0
                fit_seconds += dt
                train_curve.append(float(est.loss_))
                post = {"loss": f"{train_curve[-1]:.4f}"}
                if len(va):
                    val_curve.append(_validation_loss(est, Zva, yva, task))
                    post["val_loss"] = f"{val_curve[-1]:.4f}"
                post["samples/s"] = f"{len(tr) / dt:,.0f}" if dt > 0 else "inf"
                bar.set_postfix(post, refresh=False)
            bar.close()
            n_trained = args.epochs * len(tr)
    shape = "-".join(str(s) for s in [X.shape[1], *args.hidden, est.coefs_[-1].shape[1]])
    print(f"network {shape}, {args.activation} hidden, {est.out_activation_} output; backend {est.backend_}, "
          f"{np.dtype(args.dtype).name}, solver {args.solver}"
          + ("" if args.solver == "lbfgs" else f", lr {args.lr:g}, batch {args.batch_size}"), file=sys.stderr)

    metric = "accuracy" if task == "classification" else "R^2"
    if len(va):
        print(f"held-out {metric}: {est.score(Zva, yva):.4f} ({len(va)} samples)")
    else:
        print(f"training {metric}: {est.score(Ztr, ytr):.4f} (no held-out split: --validation-split 0)")
    throughput = n_trained / fit_seconds if fit_seconds > 0 else float("inf")
    what = f"{est.n_iter_} L-BFGS iterations" if args.solver == "lbfgs" else f"{args.epochs} epochs"
    print(f"training throughput: {throughput:,.0f} samples/s "
          f"({what} x {len(tr)} samples in {fit_seconds:.2f} s, backend {est.backend_})")
    if args.out:
        model = _Model.from_estimator(
            est, args.dtype, task=task, classes=est.classes_ if task == "classification" else None,
            x_mean=x_mean, x_scale=x_scale, y_mean=y_mean, y_scale=y_scale,
            feature_names=ds.feature_names, target_name=ds.target_name,
            target_index=ds.target_index if ds.target_index is not None else -1)
        model.save(args.out)
        print(f"model saved to {args.out}", file=sys.stderr)
    if args.plot:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        epochs = np.arange(1, len(train_curve) + 1)
        ax.plot(epochs, train_curve, label="training")
        if val_curve:
            ax.plot(epochs, val_curve, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("log-loss" if task == "classification" else "half mean squared error (standardised)")
        ax.set_title(f"deltaprop train {ds.source}: {shape}, {args.solver}")
        if min(train_curve + val_curve) > 0:
            ax.set_yscale("log")
        ax.legend()
        fig.tight_layout()
        _save_figure(fig, args.plot)
        print(f"learning curve saved to {args.plot}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- predict
def cmd_predict(args):
    _check_out_path(args.out)
    model = _Model.load(args.model)
    ds = load_data(args.data, None, need_target=False, n_features=model.n_features,
                   model_target=(model.target_name, model.target_index))
    X = ds.X
    if X.shape[1] != model.n_features:
        raise CLIError(f"{ds.source}: {X.shape[1]} feature columns, but the model expects {model.n_features}")
    out = model.predict_outputs(X)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if model.task == "outputs":
        writer.writerow([f"y{k}" for k in range(out.shape[1])])
        writer.writerows([[repr(float(v)) for v in row] for row in out])
    elif model.task == "classification":
        labels = model.decode(out)
        head = ["prediction"] + ([f"p_{_fmt(c)}" for c in model.classes] if args.proba else [])
        writer.writerow(head)
        for lab, row in zip(labels, model.proba(out)):
            writer.writerow([_fmt(lab)] + ([f"{float(v):.6g}" for v in row] if args.proba else []))
    else:
        writer.writerow(["prediction"])
        writer.writerows([[repr(float(v))] for v in model.decode(out)])
    if args.out:
        with atomic_write(args.out, "w") as fh:
            fh.write(buf.getvalue())
        print(f"{X.shape[0]} predictions written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(buf.getvalue())
    return 0


def _fmt(label):
    if isinstance(label, (float, np.floating)) and float(label).is_integer():
        return str(int(label))
    return str(label)


# --------------------------------------------------------------------------- approx (Fig. 5.3)
#: Fig. 5.3 of the seed: the four functions and the RMS error each fit must reach (tested).
APPROX_FUNCTIONS = (
    ("x^2", "$f(x) = x^2$", lambda x: x ** 2, 0.01),
    ("sin(x)", r"$f(x) = \sin(x)$", np.sin, 0.01),
    ("|x|", "$f(x) = |x|$", np.abs, 0.03),
    ("H(x)", "$f(x) = H(x)$", lambda x: (x > 0).astype(np.float64), 0.1),
)


def fit_fig53(seed=0, n=50, restarts=4, maxiter=3000):
    """Fit the four functions of Fig. 5.3 with 1-3-1 tanh networks; a list of result dicts.

    N points uniform on (-1, 1); each network (``deltaprop.MLPRegressor``, 3 tanh hidden units,
    identity output, no L2 penalty) minimises the sum-of-squares error by L-BFGS on deltaprop's
    backprop gradient, and the best of ``restarts`` seeded initialisations is kept (the seed's
    local minima :math:`w_A`, :math:`w_B`). ``E`` is :math:`\\frac12 \\sum_n (y_n - t_n)^2`.
    """
    import warnings

    import deltaprop

    results = []
    rng = np.random.RandomState(seed)
    for k, (name, label, f, bound) in enumerate(APPROX_FUNCTIONS):
        x = np.sort(rng.uniform(-1, 1, n))
        t = f(x)
        best = None
        for r in range(restarts):
            est = deltaprop.MLPRegressor(hidden_layer_sizes=(3,), activation="tanh", solver="lbfgs",
                                         alpha=0.0, tol=1e-12, max_iter=maxiter, max_fun=10 * maxiter,
                                         random_state=1000 * seed + 10 * k + r)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
                est.fit(x.reshape(-1, 1), t)
            E = 0.5 * float(np.sum((est.predict(x.reshape(-1, 1)) - t) ** 2))
            if best is None or E < best[0]:
                best = (E, est)
        E, est = best
        results.append(dict(name=name, label=label, x=x, t=t, est=est, E=E,
                            rms=float(np.sqrt(2 * E / n)), bound=bound))
    return results


def cmd_approx(args):
    plt = _pyplot()  # fail before the fits when matplotlib is missing
    _check_out_path(args.out)
    results = fit_fig53(seed=args.seed, n=args.n, restarts=args.restarts)
    fig, axes = plt.subplots(2, 2, figsize=(8, 6.5))
    grid = np.linspace(-1, 1, 201)
    for ax, res in zip(axes.ravel(), results):
        est = res["est"]
        W0, b0 = est.coefs_[0], est.intercepts_[0]
        hidden = np.tanh(grid[:, None] @ W0 + b0)  # z_j = tanh(a_j), the three hidden units
        ax.plot(res["x"], res["t"], "o", color="tab:blue", ms=4, label="data")
        for j in range(hidden.shape[1]):
            ax.plot(grid, hidden[:, j], "--", lw=1, label="hidden units" if j == 0 else None)
        ax.plot(grid, est.predict(grid[:, None]), "-", color="tab:red", lw=2, label="network")
        ax.set_title(f"{res['label']}   (RMS error {res['rms']:.3g})", fontsize=10)
        ax.set_xlim(-1, 1)
        ax.set_ylim(-1.1, 1.6)
    axes[0, 0].legend(fontsize=8, loc="upper center")
    fig.suptitle(f"Fig. 5.3: 1-3-1 network, tanh hidden units, linear output, N = {args.n}")
    fig.tight_layout()
    _save_figure(fig, args.out)
    for res in results:
        print(f"{res['name']:>7}: E = {res['E']:.3g}  RMS error = {res['rms']:.3g}")
    print(f"figure saved to {args.out}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- bench
class _PeerTask:
    """Per-sample SGD in a peer library, timed like :class:`deltaprop.bench.Task` (duck-typed).

    ``sklearn``: ``MLPClassifier``/``MLPRegressor`` with ``solver="sgd", batch_size=1``, no
    momentum, no L2, one ``partial_fit`` per epoch. ``torch``: the loop a PyTorch user writes
    (``nn.Sequential``, ``optim.SGD``, one sample per step). Same data, shape and η as deltaprop.
    """

    def __init__(self, library, dtype, shape):
        from . import bench

        sizes, hidden, output, loss = bench.SHAPES[shape]
        self.name = f"{shape} {dtype} {library}"
        self.backend, self.dtype, self.shape = library, dtype, shape
        self.X, self.T = bench.make_data(shape, dtype)
        self.epochs = 1
        classify = output == "softmax"
        if library == "sklearn":
            from sklearn.neural_network import MLPClassifier, MLPRegressor

            cls = MLPClassifier if classify else MLPRegressor
            self.est = cls(hidden_layer_sizes=tuple(sizes[1:-1]), activation=hidden, solver="sgd",
                           batch_size=1, learning_rate_init=bench.LR, momentum=0.0, alpha=0.0,
                           shuffle=False, random_state=0)
            self.y = self.T.argmax(axis=1) if classify else self.T[:, 0]
            self.classes = np.arange(sizes[-1]) if classify else None
            self._step = self._sklearn_epoch
        else:
            import torch

            torch.set_num_threads(1)
            tdtype = getattr(torch, dtype)
            layers = []
            for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
                layers += [torch.nn.Linear(n_in, n_out), torch.nn.Tanh()]
            layers.append(torch.nn.Linear(sizes[-2], sizes[-1]))
            self.model = torch.nn.Sequential(*layers).to(tdtype)
            self.opt = torch.optim.SGD(self.model.parameters(), lr=bench.LR)
            self.loss = (torch.nn.CrossEntropyLoss(reduction="sum") if classify
                         else torch.nn.MSELoss(reduction="sum"))
            self.Xt = torch.as_tensor(self.X)
            self.Tt = torch.as_tensor(self.T.argmax(axis=1)) if classify else torch.as_tensor(self.T)
            self._step = self._torch_epoch
        self.run()  # warm-up

    @property
    def samples(self):
        return self.epochs * self.X.shape[0]

    def _sklearn_epoch(self):
        if self.classes is not None:
            self.est.partial_fit(self.X, self.y, classes=self.classes)
        else:
            self.est.partial_fit(self.X, self.y)

    def _torch_epoch(self):
        model, opt, loss, X, T = self.model, self.opt, self.loss, self.Xt, self.Tt
        for i in range(X.shape[0]):
            opt.zero_grad()
            loss(model(X[i : i + 1]), T[i : i + 1]).backward()
            opt.step()

    def run(self):
        t0 = time.perf_counter()
        for _ in range(self.epochs):
            self._step()
        return time.perf_counter() - t0

    def calibrate(self, min_time):
        while True:
            elapsed = self.run()
            if elapsed >= min_time:
                return
            self.epochs = max(self.epochs + 1, int(self.epochs * min(1.2 * min_time / max(elapsed, 1e-6), 10)))


def machine_info():
    """CPU, cores, Python, NumPy and deltaprop versions: where a benchmark table came from."""
    import platform

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    from . import __version__

    return {"cpu": cpu, "cores": os.cpu_count(), "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "numpy": np.__version__, "deltaprop": __version__}


def _csv_list(text):
    return [s for s in text.replace(" ", "").split(",") if s]


def run_bench(backends, dtypes, shapes, peers, repeats, min_time, log=None):
    """Median per-sample SGD samples/s of every (shape, dtype, backend or peer): a list of dicts."""
    import warnings

    from . import bench

    bench.pin_threads(1)
    tasks, skipped = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning from the sklearn peer's partial_fit
        for shape in shapes:
            for dtype in dtypes:
                for backend in backends:
                    if log:
                        log(f"warming up {shape} {dtype} {backend}")
                    tasks.append(bench.Task(backend, dtype, shape))  # MLP.fit, batch size 1
                for peer in peers:
                    try:
                        tasks.append(_PeerTask(peer, dtype, shape))
                    except ImportError:
                        skipped.append(peer)
        if log:
            log(f"timing {len(tasks)} configurations, {repeats} interleaved rounds")
        rates = bench.compare(tasks, repeats=repeats, min_time=min_time)
    rows = []
    for task in tasks:
        rows.append(dict(shape=task.shape, dtype=task.dtype, backend=task.backend,
                         samples_per_second=float(rates[task.name])))
    for row in rows:
        for ref in ("numpy", "sklearn", "torch"):
            base = [r["samples_per_second"] for r in rows
                    if r["backend"] == ref and r["shape"] == row["shape"] and r["dtype"] == row["dtype"]]
            if base:
                row[f"vs_{ref}"] = row["samples_per_second"] / base[0]
    return rows, sorted(set(skipped))


def cmd_bench(args):
    import json

    from . import available_backends

    try:
        from . import bench
    except ImportError:
        raise CLIError("deltaprop.bench is missing from this installation") from None
    if args.plot:
        _check_plot_path(args.plot)
    available = available_backends()
    backends = _csv_list(args.backends) if args.backends else available
    for b in backends:
        if b not in available:
            raise CLIError(f"backend {b!r} is not available here; available: {', '.join(available)}")
    shapes = _csv_list(args.shapes) if args.shapes else list(bench.SHAPES)
    for s in shapes:
        if s not in bench.SHAPES:
            raise CLIError(f"unknown shape {s!r}; standard shapes: {', '.join(bench.SHAPES)}")
    dtypes = _csv_list(args.dtypes)
    for d in dtypes:
        if d not in ("float32", "float64"):
            raise CLIError(f"unknown dtype {d!r}; use float32, float64")
    peers = [] if args.no_peers else ["sklearn", "torch"]
    repeats, min_time = (1, 0.0) if args.quick else (args.repeats, args.min_time)
    log = None if (args.json or args.quiet) else (lambda msg: print(msg, file=sys.stderr))
    rows, skipped = run_bench(backends, dtypes, shapes, peers, repeats, min_time, log)
    info = machine_info()
    if args.json:
        print(json.dumps({"unit": "samples/s", "method": f"per-sample SGD (MLP.fit, batch_size=1), median of {repeats} rounds, one thread",
                          "machine": info, "skipped_peers": skipped, "results": rows}, indent=1))
    else:
        refs = [r for r in ("numpy", "sklearn", "torch") if any(f"vs_{r}" in row for row in rows)]
        print(f"per-sample SGD throughput, samples/s (median of {repeats} interleaved rounds, one thread)")
        print(f"machine: {info['cpu']}, {info['cores']} cores, {info['system']}, Python {info['python']}, "
              f"NumPy {info['numpy']}, deltaprop {info['deltaprop']}")
        if skipped:
            print(f"not installed (skipped): {', '.join(skipped)}")
        head = f"{'shape':<18} {'dtype':<8} {'backend':<8} {'samples/s':>12}" + "".join(f" {'x ' + r:>10}" for r in refs)
        print(head)
        print("-" * len(head))
        for row in rows:
            print(f"{row['shape']:<18} {row['dtype']:<8} {row['backend']:<8} {row['samples_per_second']:>12,.0f}"
                  + "".join(f" {row[f'vs_{r}']:>10.2f}" if f"vs_{r}" in row else f" {'':>10}" for r in refs))
    if args.plot:
        _plot_bench(rows, shapes, dtypes, args.plot)
        print(f"bar chart saved to {args.plot}", file=sys.stderr)
    return 0


def _plot_bench(rows, shapes, dtypes, path):
    plt = _pyplot()
    names = list(dict.fromkeys(r["backend"] for r in rows))
    fig, axes = plt.subplots(1, len(dtypes), figsize=(5 + 2 * len(shapes), 4.5), squeeze=False)
    width = 0.8 / len(names)
    for ax, dtype in zip(axes[0], dtypes):
        for i, name in enumerate(names):
            values = [next((r["samples_per_second"] for r in rows if r["backend"] == name
                            and r["shape"] == s and r["dtype"] == dtype), 0.0) for s in shapes]
            ax.bar(np.arange(len(shapes)) + (i - (len(names) - 1) / 2) * width, values, width, label=name)
        ax.set_xticks(np.arange(len(shapes)), shapes, rotation=15)
        ax.set_yscale("log")
        ax.set_ylabel("samples/s (per-sample SGD)")
        ax.set_title(dtype)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("deltaprop bench: per-sample SGD throughput, one thread")
    fig.tight_layout()
    _save_figure(fig, path)


# --------------------------------------------------------------------------- argument parsing
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except for options whose default is 'not given'."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser():
    from .backends import BACKENDS

    parser = argparse.ArgumentParser(
        prog=PROG, description="Train multilayer perceptrons by error backpropagation with compiled kernels.",
        epilog="Run 'deltaprop COMMAND --help' for the options of each command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fmt = _HelpFormatter
    p = sub.add_parser(
        "train", formatter_class=fmt, help="train a network on a data set and report its held-out score",
        description="Train a network on DATA with a progress bar per epoch; print the held-out score "
                    "(accuracy for classification, R^2 for regression) and the training throughput. "
                    "Trains deltaprop.MLPClassifier / MLPRegressor; inputs (and regression targets) "
                    "are standardised with the training split's mean and standard deviation, "
                    "stored in the model file.")
    p.add_argument("data", nargs="?", default="digits", metavar="DATA",
                   help=f"a CSV file, an .npz file with arrays X and y, or a built-in data set: {', '.join(BUILTIN)}")
    p.add_argument("--target", metavar="COLUMN",
                   help="CSV target column, by header name or 0-based index (default: the last column)")
    p.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                   help="auto: text labels or at most 20 distinct integers are classes, anything else regression")
    p.add_argument("--hidden", type=_hidden_sizes, default="32", metavar="SIZES",
                   help="hidden layer sizes, comma-separated (e.g. 64,32)")
    p.add_argument("--activation", choices=HIDDEN_CHOICES, default="tanh", help="hidden activation h")
    p.add_argument("--solver", choices=SOLVER_CHOICES, default="sgd",
                   help="sgd: gradient descent (per-sample with --batch-size 1); adam; lbfgs: full-batch quasi-Newton")
    p.add_argument("--epochs", type=_positive_int, default=20,
                   help="passes over the training split (lbfgs: most iterations)")
    p.add_argument("--lr", type=_positive_float, default=0.01, help="learning rate eta (sgd, adam)")
    p.add_argument("--momentum", type=float, default=0.0, help="sgd momentum mu (0: plain gradient descent)")
    p.add_argument("--alpha", type=float, default=0.0, help="L2 penalty on the weights")
    p.add_argument("--batch-size", type=_positive_int, default=1,
                   help="samples per update (1: on-line, per-sample SGD)")
    p.add_argument("--backend", choices=("auto", *BACKENDS), default="auto",
                   help="kernel backend (auto: the fastest available)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="floating-point type")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the initial weights and the shuffling")
    p.add_argument("--validation-split", type=_fraction, default=0.2, metavar="FRACTION",
                   help="fraction of the samples held out for the score (0: none)")
    p.add_argument("--out", metavar="MODEL.npz", help="save the trained model (written atomically)")
    p.add_argument("--plot", metavar="CURVE.png",
                   help="draw the learning curve (training and validation loss); needs matplotlib")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "predict", formatter_class=fmt, help="predict with a saved model, as CSV",
        description="Predict with a model saved by 'deltaprop train --out' for every row of DATA; write CSV "
                    "with a 'prediction' column (class label or value). A CSV with one column more than the "
                    "model's features has its target column dropped. A plain deltaprop.MLP file gives the "
                    "raw network outputs y0, y1, ...")
    p.add_argument("model", metavar="MODEL", help="model file written by 'deltaprop train --out'")
    p.add_argument("data", metavar="DATA", help=f"a CSV file, an .npz file with X, or a built-in data set: {', '.join(BUILTIN)}")
    p.add_argument("--out", metavar="FILE.csv", help="write the CSV here (atomically) instead of to stdout")
    p.add_argument("--proba", action="store_true", help="classification: add one probability column per class")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "bench", formatter_class=fmt, help="per-sample SGD throughput of every available backend",
        description="Measure per-sample SGD throughput (samples/s: whole epochs of on-line gradient descent "
                    "after a warm-up, one thread, the median of interleaved rounds) of every available "
                    "backend on the standard shapes of deltaprop.bench, with ratios to the NumPy backend "
                    "and to scikit-learn's and PyTorch's per-sample SGD when they are installed.")
    p.add_argument("--backends", metavar="LIST", help="comma-separated backends (default: every available one)")
    p.add_argument("--dtypes", metavar="LIST", default="float32,float64", help="comma-separated dtypes")
    p.add_argument("--shapes", metavar="LIST",
                   help="comma-separated standard shapes (default: all of deltaprop.bench.SHAPES)")
    p.add_argument("--repeats", type=_positive_int, default=5, help="interleaved timing rounds (median)")
    p.add_argument("--min-time", type=_positive_float, default=0.2, metavar="SECONDS",
                   help="each timed call runs whole epochs for at least this long")
    p.add_argument("--quick", action="store_true", help="one round, one epoch each: a smoke test, noisy figures")
    p.add_argument("--no-peers", action="store_true", help="skip the scikit-learn and PyTorch peers")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    p.add_argument("--plot", metavar="BARS.png", help="draw a bar chart; needs matplotlib")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "approx", formatter_class=fmt, help="the seed's Fig. 5.3: a 1-3-1 tanh network fitting four functions",
        description="Reproduce Fig. 5.3 of the seed (Bishop, PRML): N points uniform on (-1, 1) of x^2, sin x, "
                    "|x| and the Heaviside step, each fitted by a network with 3 tanh hidden units and a linear "
                    "output (deltaprop.MLPRegressor, L-BFGS on deltaprop's backprop gradient, best of a few seeded restarts). Draws "
                    "the data, the network function and the three hidden units' outputs (dashed), and prints "
                    "each panel's final error. Needs matplotlib.")
    p.add_argument("--out", required=True, metavar="FIG.png", help="the figure file (written atomically)")
    p.add_argument("--n", type=_positive_int, default=50, help="number of data points per panel")
    p.add_argument("--restarts", type=_positive_int, default=4, help="seeded restarts per panel (best kept)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the initial weights")
    p.set_defaults(func=cmd_approx)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``deltaprop`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    debug = os.environ.get("DELTAPROP_DEBUG") == "1"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except CLIError as exc:
        if debug:
            raise
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError, FloatingPointError) as exc:
        if debug:
            raise
        print(f"{PROG} {args.command}: error: {_reason(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # MemoryError or anything unexpected: still one line, exit 1
        if debug:
            raise
        print(f"{PROG} {args.command}: error: {type(exc).__name__}"
              + (f": {_reason(exc)}" if str(exc) else ""), file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
