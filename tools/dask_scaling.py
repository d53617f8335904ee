"""deltaprop.dask on a LocalCluster: L-BFGS scaling, per-iteration overhead, bytes, local SGD.

A standalone script::

    pip install -e '.[dask]'
    python tools/dask_scaling.py            # the figures of docs/performance/dask.rst (a few minutes)
    python tools/dask_scaling.py --quick    # 10x less data, for a smoke run

It prints four measurements:

1. L-BFGS on a 400,000 x 64 dask array (chunks of 50,000 rows, 10 classes), 64-32-10: seconds per
   evaluation of the distributed loss and gradient (median) on 1 worker and on 2 workers
   (``LocalCluster(processes=True, threads_per_worker=1)``), and the ratio.
2. The per-iteration overhead for a ~10k-parameter network (64-128-10, 9,610 parameters): the
   same round on 2 partitions of 8 rows each, where the arithmetic is negligible, so what is
   left is scheduling, sending the weights and adding the sums.
3. Bytes moved per L-BFGS evaluation: the weights inside the tasks (their pickled size, one per
   worker) and every transfer out of a worker (to another worker or to this client), read from
   the workers' transfer logs (``transfer_outgoing_log``), against (2 + n_partitions) x P x 8.
4. Local SGD with plain averaging (``sync="average"``) against the single-machine estimator on
   digits (held-out accuracy after the same number of epochs; ``tools/dask_accuracy.py``
   compares every ``sync`` mode with the estimators' defaults).
"""

from __future__ import annotations

import argparse
import pickle
import time
import warnings


def _cluster(n_workers):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=50)
    return cluster, Client(cluster)


def _problem(n, chunk, seed=0):
    """X (n, 64) uniform, y the argmax of a fixed random linear map: made on the workers."""
    import dask.array as da
    import numpy as np

    rs = da.random.RandomState(seed)
    X = rs.random_sample((n, 64), chunks=(chunk, 64))
    W = np.random.RandomState(seed).randn(64, 10)
    y = (X @ W).argmax(axis=1)
    return X, y


class _Timed:
    """Record the wall time of every distributed loss-and-gradient evaluation."""

    def __init__(self):
        from deltaprop.dask.base import ClusterLossGradient

        self.cls = ClusterLossGradient
        self.original = self.cls.sums
        self.times = []

    def __enter__(self):
        original, times = self.original, self.times

        def sums(fun, w):
            t = time.perf_counter()
            out = original(fun, w)
            times.append(time.perf_counter() - t)
            return out

        self.cls.sums = sums
        return self

    def __exit__(self, *exc):
        self.cls.sums = self.original


def lbfgs_scaling(n, chunk, iters, rounds):
    import numpy as np

    import deltaprop
    import deltaprop.dask as ddp

    X, y = _problem(n, chunk)
    times = {1: [], 2: []}
    for _ in range(rounds):  # 1 and 2 workers interleaved: a shared machine drifts
        for workers in (1, 2):
            cluster, client = _cluster(workers)
            try:
                Xp, yp = client.persist([X, y])
                est = ddp.MLPClassifier(hidden_layer_sizes=(32,), activation="tanh",
                                        solver="lbfgs", max_iter=iters, random_state=0)
                with _Timed() as timed:
                    est.fit(Xp, yp)
                times[workers] += timed.times[1:]
            finally:
                client.close()
                cluster.close()
    for workers, ts in times.items():
        print(f"  {workers} worker(s): {np.median(ts):.3f} s per evaluation (median of {len(ts)}; "
              f"p10 {np.percentile(ts, 10):.3f}, p90 {np.percentile(ts, 90):.3f})")
    print(f"  2 workers / 1 worker: {np.median(times[1]) / np.median(times[2]):.2f}x faster per "
          "evaluation")
    # the same sums in this process, for reference: MLP.loss_and_gradient on 1 and 2 threads
    Xl, yl = X.compute(), y.compute()
    net = deltaprop.MLP([64, 32, 10], hidden="tanh", output="softmax", loss="cross_entropy")
    T = np.eye(10)[yl]
    g = np.empty(net.w.shape[0])
    net.loss_and_gradient(Xl, T, out=g)  # warm-up
    for n_jobs in (1, 2):
        ts = []
        for _ in range(3 * rounds):
            t = time.perf_counter()
            net.loss_and_gradient(Xl, T, out=g, n_jobs=n_jobs)
            ts.append(time.perf_counter() - t)
        print(f"  in this process, MLP.loss_and_gradient n_jobs={n_jobs}: {np.median(ts):.3f} s")


def overhead(repeats):
    import dask.array as da
    import numpy as np

    import deltaprop.dask as ddp

    cluster, client = _cluster(2)
    try:
        rng = np.random.RandomState(0)
        X = da.from_array(rng.rand(16, 64), chunks=(8, 64))
        y = da.from_array(np.arange(16) % 10, chunks=8)
        with _Timed() as timed:
            est = ddp.MLPClassifier(hidden_layer_sizes=(128,), solver="lbfgs", max_iter=repeats,
                                    max_fun=repeats, tol=0.0, random_state=0).fit(X, y)
        P = est._mlp.w.shape[0]
        per = np.array(timed.times[2:]) * 1e3
        print(f"  64-128-10 ({P} parameters), 2 partitions of 8 rows on 2 workers: "
              f"{np.median(per):.1f} ms per evaluation (median of {per.size}; "
              f"p10 {np.percentile(per, 10):.1f}, p90 {np.percentile(per, 90):.1f})")
    finally:
        client.close()
        cluster.close()


def bytes_per_evaluation(n_partitions=8):
    import numpy as np

    import deltaprop.dask as ddp

    cluster, client = _cluster(2)
    try:
        X, y = _problem(n_partitions * 1000, 1000)
        Xp, yp = client.persist([X, y])
        client.run(lambda dask_worker: dask_worker.transfer_outgoing_log.clear())
        with _Timed() as timed:
            est = ddp.MLPClassifier(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=10,
                                    random_state=0).fit(Xp, yp)
        P = est._mlp.w.shape[0]
        logs = client.run(lambda dask_worker: list(dask_worker.transfer_outgoing_log))
        by_name = {}
        for log in logs.values():
            for entry in log:
                for key, nbytes in entry["keys"].items():
                    key = key if isinstance(key, str) else str(key)
                    name = key.split("-")[1] if key.startswith("deltaprop-") else "other"
                    by_name[name] = by_name.get(name, 0) + nbytes
        evals = len(timed.times)
        n_workers = len(client.nthreads())
        payload = len(pickle.dumps(np.zeros(P))) * n_workers
        out = by_name.get("gradient", 0) + by_name.get("sum", 0)
        print(f"  {P} parameters (P x 8 = {P * 8} bytes), {n_partitions} partitions on "
              f"{n_workers} workers, {evals} evaluations:")
        print(f"    weights out: {payload} bytes per evaluation (inside {n_workers} tasks)")
        print(f"    sums back (transfer logs): {out / evals:.0f} bytes per evaluation")
        total = payload + out / evals
        print(f"    total {total:.0f} bytes = {total / (P * 8):.2f} x P x 8; the bound, the weights to each of "
              f"the 2 workers and one gradient back per partition, (2 + n_partitions) x P x 8 = "
              f"{(2 + n_partitions) * P * 8}")
        other = {k: v for k, v in by_name.items() if k not in ("gradient", "sum")}
        print(f"    other transfers during the fit (loading, placing): {other}")
    finally:
        client.close()
        cluster.close()


def local_sgd(epochs):
    import dask.array as da
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import deltaprop
    import deltaprop.dask as ddp

    X, y = load_digits(return_X_y=True)
    X, Xte, y, yte = train_test_split(X / 16.0, y, random_state=0)
    cluster, client = _cluster(2)
    try:
        half = -(-X.shape[0] // 2)
        Xd, yd = da.from_array(X, chunks=(half, -1)), da.from_array(y, chunks=half)
        for name, params in (
                ("sgd, batch 1", dict(solver="sgd", batch_size=1, momentum=0.0,
                                      learning_rate_init=0.01)),
                ("adam, batch 32", dict(solver="adam", batch_size=32, learning_rate_init=0.01))):
            accs = []
            for seed in range(3):
                common = dict(hidden_layer_sizes=(32,), activation="tanh", max_iter=epochs,
                              random_state=seed, **params)
                local = deltaprop.MLPClassifier(**common).fit(X, y)
                dist = ddp.MLPClassifier(**common, sync="average").fit(Xd, yd)
                accs.append((local.score(Xte, yte), dist.score(Xte, yte)))
            loc = sum(a for a, _ in accs) / 3
            dis = sum(b for _, b in accs) / 3
            print(f"  {name}, {epochs} epochs, 2 partitions: single machine {loc:.4f}, "
                  f"local SGD {dis:.4f} (mean of seeds 0-2; {accs})")
    finally:
        client.close()
        cluster.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x less data, fewer repeats")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    n, chunk = (40_000, 5_000) if args.quick else (400_000, 50_000)
    print(f"1. L-BFGS, {n} x 64, chunks of {chunk} rows, 64-32-10")
    lbfgs_scaling(n, chunk, 5 if args.quick else 10, 1 if args.quick else 2)
    print("2. per-iteration overhead")
    overhead(20 if args.quick else 60)
    print("3. bytes per L-BFGS evaluation")
    bytes_per_evaluation()
    print('4. local SGD, sync="average", vs single machine (digits, 1347 train / 450 test)')
    local_sgd(10)


if __name__ == "__main__":
    main()
