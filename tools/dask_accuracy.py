"""Held-out accuracy per epoch of deltaprop.dask's sgd / adam against one machine, and time per epoch.

    python tools/dask_accuracy.py                       # the table of the Dask guide (a few minutes)
    python tools/dask_accuracy.py --sync sum average    # other ``sync`` modes beside the default
    python tools/dask_accuracy.py --quick               # one seed, 2 partitions: a smoke run

Digits (scikit-learn's ``load_digits``, 1,797 x 64), a stratified 75/25 split
(``random_state=0``), standardised with the training rows' mean and deviation. Every fit uses
the estimators' defaults (``hidden_layer_sizes=(100,)``, relu, ``batch_size="auto"`` = 200,
``learning_rate_init=0.001``; sgd with Nesterov momentum 0.9) but ``max_iter`` (30 epochs) and
``random_state`` (0, 1, 2: the accuracy is their mean). ``deltaprop.MLPClassifier`` trains on
the training rows in this process; ``deltaprop.dask.MLPClassifier`` trains on the same rows cut
into 2 or 4 equal row chunks of a dask array, on a ``LocalCluster`` of two one-thread workers.

The workers are processes (``processes=True``): each round then pickles the weights and sends
them over TCP to another process and back, as on a real cluster, so the time per epoch includes
the round trips that the ``sync`` modes differ in (``--threads`` runs the workers as threads of
this process instead, which leaves out the serialisation). Times are wall-clock seconds per
epoch of ``fit`` (its whole duration over ``n_iter_``), on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import time
import warnings


def digits():
    """``(X_train, X_test, y_train, y_test)``: digits, a stratified 75/25 split, standardised."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
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
    X, X_te, y, y_te = digits()
    seeds = range(args.seeds)
    print(f"digits: {len(y)} training rows, {len(y_te)} held out; {args.epochs} epochs; mean of "
          f"random_state 0..{args.seeds - 1}; LocalCluster(n_workers=2, threads_per_worker=1, "
          f"processes={not args.threads})")
    header = f"{'solver':7} {'parts':>5} {'one machine':>18} " + " ".join(
        f"{'sync=' + s:>22}" for s in syncs)
    print(header + "\n" + "-" * len(header), flush=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=not args.threads,
                      dashboard_address=":0", silence_logs=50) as cluster, Client(cluster):
        for solver in args.solvers:
            params = dict(solver=solver, max_iter=args.epochs)
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
    print("cells: held-out accuracy (difference from one machine) and seconds per epoch; lbfgs "
          "has no sync mode (its one cell is the exact full-batch gradient)")


if __name__ == "__main__":
    main()
