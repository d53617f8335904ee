"""Held-out accuracy per epoch of deltaprop.dask's sgd / adam against one machine, and time per epoch.

    python tools/dask_accuracy.py                       # the table of the Dask guide (a few minutes)
    python tools/dask_accuracy.py --sync sum average    # other ``sync`` modes beside the default
    python tools/dask_accuracy.py --quick               # one seed, 2 partitions: a smoke run
    python tools/dask_accuracy.py --data synthetic --epochs 3 --partitions 4 8 --sync lr-scaled sum

Digits (scikit-learn's ``load_digits``, 1,797 x 64), a stratified 75/25 split
(``random_state=0``), standardised with the training rows' mean and deviation. Every fit uses
the estimators' defaults (``hidden_layer_sizes=(100,)``, relu, ``batch_size="auto"`` = 200,
``learning_rate_init=0.001``; sgd with Nesterov momentum 0.9) but ``max_iter`` (30 epochs) and
``random_state`` (0, 1, 2: the accuracy is their mean). ``deltaprop.MLPClassifier`` trains on
the training rows in this process; ``deltaprop.dask.MLPClassifier`` trains on the same rows cut
into 2 or 4 equal row chunks of a dask array, on a ``LocalCluster`` of two one-thread workers.

``--data synthetic`` is a larger task instead: ``make_classification`` with 80,000 rows, 40
features (30 informative), 10 classes of 2 clusters each, ``class_sep=1.5``, split and
standardised as digits. Its partitions take tens of steps per round of local SGD, where digits'
take one or two.

The workers are processes (``processes=True``): each round then pickles the weights and sends
them over TCP to another process and back, as on a real cluster, so the time per epoch includes
the round trips that the ``sync`` modes differ in (``--threads`` runs the workers as threads of
this process instead, which leaves out the serialisation). Times are wall-clock milliseconds per
epoch of ``fit`` (its whole duration over ``n_iter_``, after one untimed fit that lets the
workers import and compile), on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import time
import warnings


def digits(data="digits"):
    """``(X_train, X_test, y_train, y_test)``: digits (or the synthetic task), a stratified 75/25
    split, standardised."""
    from sklearn.datasets import load_digits, make_classification
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if data == "digits":
        X, y = load_digits(return_X_y=True)
    else:
        X, y = make_classification(n_samples=80_000, n_features=40, n_informative=30, n_classes=10,
                                   n_clusters_per_class=2, class_sep=1.5, random_state=0)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te


def fit_score(est, X, y, X_te, y_te):
    """``(held-out accuracy, seconds per epoch)`` of ``est.fit(X, y)``."""
    start = time.perf_counter()
    est.fit(X, y)
    return est.score(X_te, y_te), (time.perf_counter() - start) / est.n_iter_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--solvers", nargs="+", default=["sgd", "adam", "lbfgs"],
                        choices=["sgd", "adam", "lbfgs"])
    parser.add_argument("--partitions", nargs="+", type=int, default=[2, 4])
    parser.add_argument("--sync", nargs="+", default=None,
                        help="deltaprop.dask's sync modes to measure (default: the estimator's default)")
    parser.add_argument("--seeds", type=int, default=3, help="random_state 0 .. seeds-1 (default 3)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--data", choices=["digits", "synthetic"], default="digits")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="learning_rate_init (default: the estimators' 0.001)")
    parser.add_argument("--threads", action="store_true",
                        help="workers as threads of this process (processes=False)")
    parser.add_argument("--quick", action="store_true", help="one seed, 2 partitions")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.partitions = 1, [2]

    import dask.array as da
    import numpy as np
    from distributed import Client, LocalCluster

    import deltaprop
    import deltaprop.dask as ddp
    from deltaprop.dask.sgd import SYNC_MODES

    syncs = args.sync or [SYNC_MODES[0]]
    warnings.simplefilter("ignore")  # ConvergenceWarning: 30 epochs are not convergence
    X, X_te, y, y_te = digits(args.data)
    seeds = range(args.seeds)
    print(f"{args.data}: {len(y)} training rows, {len(y_te)} held out; {args.epochs} epochs; mean of "
          f"random_state 0..{args.seeds - 1}; LocalCluster(n_workers=2, threads_per_worker=1, "
          f"processes={not args.threads})")
    header = f"{'solver':7} {'parts':>5} {'one machine':>18} " + " ".join(
        f"{'sync=' + s:>22}" for s in syncs)
    print(header + "\n" + "-" * len(header), flush=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=not args.threads,
                      dashboard_address=":0", silence_logs=50) as cluster, Client(cluster):
        half = -(-len(y) // 2)  # a first fit, untimed: the workers import and compile once
        ddp.MLPClassifier(max_iter=1).fit(da.from_array(X, chunks=(half, -1)), da.from_array(y, chunks=half))
        for solver in args.solvers:
            params = dict(solver=solver, max_iter=args.epochs)
            if args.learning_rate is not None:
                params["learning_rate_init"] = args.learning_rate
            local = np.mean([fit_score(deltaprop.MLPClassifier(**params, random_state=seed), X, y,
                                       X_te, y_te) for seed in seeds], axis=0)
            for n_parts in args.partitions:
                chunk = -(-len(y) // n_parts)
                Xd, yd = da.from_array(X, chunks=(chunk, -1)), da.from_array(y, chunks=chunk)
                cells = []
                for sync in syncs if solver != "lbfgs" else syncs[:1]:
                    acc, sec = np.mean([fit_score(ddp.MLPClassifier(**params, random_state=seed,
                                                                     sync=sync), Xd, yd, X_te, y_te)
                                        for seed in seeds], axis=0)
                    cells.append(f"{acc:.4f} ({acc - local[0]:+.3f}) {sec * 1e3:5.0f} ms")
                print(f"{solver:7} {n_parts:5d} {local[0]:8.4f} {local[1] * 1e3:6.1f} ms "
                      + " ".join(f"{c:>22}" for c in cells), flush=True)
    print("cells: held-out accuracy (its difference from one machine) and milliseconds per epoch "
          "(lbfgs: per iteration; it has no sync mode, its one cell is the exact full-batch gradient)")


if __name__ == "__main__":
    main()
