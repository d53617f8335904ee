"""``deltaprop train``: read DATA, fit an estimator in this process or on a Dask cluster, report, save.

In this process the data is read by :func:`deltaprop.cli.data.load_data` and fitted by
:func:`deltaprop.cli.training.fit`; on a cluster (``--scheduler`` or ``--dask-workers``) it is read
by :func:`deltaprop.cli.data.read_dask`, split and standardised on the workers by
:class:`deltaprop.cli.cluster.ClusterData` and fitted by :func:`deltaprop.cli.cluster.fit_dask`.
Both end in the same report and the same model file (:mod:`deltaprop.cli.pipeline`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from typing import Any, Callable, Iterator

import numpy as np

from .. import plots
from ..estimators import NON_FINITE_MESSAGE
from . import cluster, pipeline, training
from .data import DaskData, Dataset, decide_task, infer_task, load_data, read_dask
from .options import check_out
from .training import Progress

__all__ = ["run", "dask_client", "estimator_params"]


def run(args: argparse.Namespace) -> int:
    """Run ``deltaprop train`` with its parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        The options of :func:`deltaprop.cli.build_parser`'s ``train``.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    ValueError
        A user error: an option that does not fit the data or another option, a bad file.
    """
    if args.plot is not None and args.solver == "lbfgs":
        raise ValueError("--plot draws the loss per epoch; lbfgs has no epochs (use --solver sgd or adam)")
    check_out(args.plot, plot=True, option="--plot")
    check_out(args.out, option="--out")
    if args.scheduler is not None or args.dask_workers is not None:
        return _train_on_cluster(args)
    ds = load_data(args.data, args.target, need_target=True)
    X, y = ds.X, ds.y
    assert y is not None  # need_target: a target or a ValueError
    task = infer_task(y, args.task if args.task != "auto" else (ds.task or "auto"))
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
    with _advice_on_divergence(args):
        model, est, progress = training.fit(X, y, tr, va, task, estimator_params(args), args.dtype, args.quiet)
    score = (lambda: model.score(X[va], y[va])) if len(va) else (lambda: model.score(X[tr], y[tr]))
    _report(args, ds, task, model, est, progress, len(tr), len(va), score)
    return 0


def _train_on_cluster(args: argparse.Namespace) -> int:
    """``train --scheduler / --dask-workers``: train's steps with deltaprop.dask's estimators; the
    workers read DATA's partitions, split, standardise and score them where they are."""
    ds = read_dask(args.data, args.target)  # before any cluster: the file's columns and types
    requested = args.task if args.task != "auto" else (ds.task or "auto")
    task = None if requested == "auto" and ds.numeric else decide_task(ds.numeric, requested)
    with dask_client(args.scheduler, args.dask_workers, args.timeout) as client:
        threads = client.nthreads()
        print(f"dask cluster {client.scheduler.address}: {len(threads)} workers, "
              f"{sum(threads.values())} threads", file=sys.stderr)
        data = cluster.ClusterData(ds, args.validation_split, args.seed, task, client, sum(threads.values()))
        task = task or decide_task(ds.numeric, requested, data.n, data.n_unique, data.integral)
        if data.n < 2:
            raise ValueError(f"{ds.source}: needs at least 2 samples; got {data.n}")
        if task == "classification":
            if data.classes is None:
                raise ValueError(f"{ds.source}: the target has more than {cluster.MAX_CLUSTER_CLASSES} distinct "
                                 "values, too many classes to train on a cluster")
            if data.n_unique < 2:
                raise ValueError(f"{ds.source}: the target has a single class ({data.classes[0]}); nothing to learn")
        if args.validation_split and not (data.n_val and data.n_train):
            raise ValueError(f"--validation-split {args.validation_split} leaves an empty split for {data.n} samples")
        print(f"data {ds.source}: {data.n} samples, {len(ds.feature_names)} features, {task}"
              + (f" ({data.n_unique} classes)" if task == "classification" else "")
              + f"; {data.n_train} train / {data.n_val} held out, {len(data.parts)} partitions", file=sys.stderr)
        with _advice_on_divergence(args):
            model, est, progress = cluster.fit_dask(data, task, estimator_params(args), args.dtype, args.quiet,
                                                    client)
        X, y = data.rows(data.n_val > 0, task, args.dtype)
        _report(args, ds, task, model, est, progress, data.n_train, data.n_val,
                lambda: float(client.compute(est.score(X, y), sync=True)))
    return 0


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None, timeout: float = 5.0) -> Iterator[Any]:
    """A Dask client for the block: of a running scheduler, or of a LocalCluster started for it.

    Ctrl-C is this process's to handle: the workers start with SIGINT ignored (a terminal's
    Ctrl-C reaches the whole process group), and the tasks it abandons are not reported.

    Parameters
    ----------
    scheduler : str, optional
        The address of the scheduler to connect to (``tcp://host:8786``).
    n_workers : int, optional
        Without ``scheduler``: the LocalCluster's worker processes, one thread each; the cluster
        lives as long as the block, whatever ends it.
    timeout : float
        ``--timeout``: seconds to wait for ``scheduler`` to answer (``distributed.Client``'s
        ``timeout``, which Dask's ``distributed.comm.timeouts.connect`` sets otherwise).

    Yields
    ------
    distributed.Client

    Raises
    ------
    ImportError
        Without the ``distributed`` package.
    OSError
        The scheduler cannot be reached within ``timeout``.
    ValueError
        ``scheduler`` is not an address.
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
                client = distributed.Client(scheduler, timeout=timeout)
            except OSError as exc:
                raise OSError(f"cannot reach the Dask scheduler at {scheduler} within --timeout {timeout:g} s "
                              f"({exc})") from None
            except ValueError as exc:  # not an address
                raise ValueError(f"--scheduler {scheduler}: {exc}") from None
            with client:
                yield client
            return
        try:
            handler = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the worker processes
        except ValueError:  # not the main thread, which alone handles signals
            handler = None
        # The workers log only what is critical: a fit's errors reach the user through the client,
        # and on Ctrl-C a worker may outlive the scheduler by one heartbeat, which it would log
        # as an error with a traceback.
        try:
            cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                               dashboard_address=":0", silence_logs=logging.CRITICAL)
        finally:
            if handler is not None:
                signal.signal(signal.SIGINT, handler)
        with cluster, distributed.Client(cluster) as client:
            yield client
    finally:
        asyncio_log.setLevel(level)


@contextlib.contextmanager
def _advice_on_divergence(args: argparse.Namespace) -> Iterator[None]:
    """The estimators' error for weights that left the finite numbers, as advice that fits train: its
    inputs are standardised already, so the step size or the solver is what helps."""
    try:
        yield
    except ValueError as exc:
        if str(exc) != NON_FINITE_MESSAGE:
            raise
        if args.solver == "lbfgs":
            helps = "--solver adam, or a larger --alpha"
        else:
            helps = f"a smaller --lr (it is {args.lr:g})"
            if args.solver == "sgd":
                helps += (f" or --momentum (it is {args.momentum:g})" if args.momentum else "") + ", or --solver adam"
        raise ValueError("training diverged: the weights became NaN or infinite (the inputs are standardised "
                         f"already); try {helps}") from None


def estimator_params(args: argparse.Namespace) -> dict[str, Any]:
    """The estimator's constructor parameters from train's options.

    Parameters
    ----------
    args : argparse.Namespace
        train's parsed options.

    Returns
    -------
    dict
        Keyword arguments of :class:`deltaprop.MLPClassifier` / :class:`deltaprop.MLPRegressor`:
        ``--epochs`` is ``max_iter``, with no early stop (``tol`` 0, ``n_iter_no_change`` past it).
    """
    return dict(hidden_layer_sizes=tuple(args.hidden), activation=args.activation, solver=args.solver,
                alpha=args.alpha, batch_size=args.batch_size, learning_rate_init=args.lr,
                momentum=args.momentum, nesterovs_momentum=False, max_iter=args.epochs, shuffle=True,
                random_state=args.seed, tol=0.0, n_iter_no_change=args.epochs + 1, backend=args.backend)


def _report(args: argparse.Namespace, ds: Dataset | DaskData, task: str, model: Any, est: Any, progress: Progress,
            n_train: int, n_val: int, score: Callable[[], float]) -> None:
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
    seconds = progress.fit_seconds  # the fit, less the progress bar's time: the bar's last samples/s
    rate = est.n_iter_ * n_train / seconds if seconds > 0 else float("inf")
    what = f"{est.n_iter_} L-BFGS iterations" if args.solver == "lbfgs" else f"{est.n_iter_} epochs"
    print(f"training throughput: {rate:,.0f} samples/s over the whole fit ({what} x {n_train} samples in "
          f"{seconds:.2f} s, the progress bar's time excluded; backend {est.backend_})")
    if args.out:
        pipeline.save(args.out, model, ds.feature_names if ds.named else (), ds.target_name, ds.target_index)
        print(f"model saved to {args.out}", file=sys.stderr)
    if args.plot:
        ylabel = "log-loss" if task == "classification" else "half mean squared error (standardised)"
        plots.learning_curve(args.plot, progress.train_curve, progress.val_curve, ylabel,
                             f"deltaprop train {ds.source}: {shape}, {args.solver}")
        print(f"learning curve saved to {args.plot}", file=sys.stderr)
