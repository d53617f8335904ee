"""How fast can a mini-batch epoch be on this core? The arithmetic bound, measured.

A mini-batch epoch of an MLP is dominated by its GEMM-shaped products: per batch of n samples
and each layer (D_in -> D_out), the forward sum A = Z W (n D_in D_out multiply-adds), the
gradient Z^T Delta (the same count) and, above the first layer, the δ-recursion Delta W^T
(the same count again). This script measures, one thread, pinned to one CPU:

- the attainable GEMM rate: a large square product through NumPy's BLAS (OpenBLAS), GFLOP/s;
- for each configuration of the mini-batch table (``deltaprop bench --minibatch``), the time of
  exactly those products on the configuration's shapes, through the same BLAS, per batch,
  which is the epoch's floor if nothing else cost anything: a ceiling in samples/s
  (``deltaprop.bench.products_ceiling``, which the mini-batch table and the asv suite use too);
- for ``MLPClassifier()``'s defaults on digits, that floor over a 30-epoch fit, against
  scikit-learn's fit time: the largest speed-up over scikit-learn any implementation that does
  the same arithmetic through the same BLAS can reach.

Run:

    python tools/roofline.py [--repeats 7]

It measures the machine, not deltaprop.
"""

import argparse
import os
import time
import warnings

#: (name, layer sizes, batch, dtype): the mini-batch table's configurations
CONFIGS = [
    ("784-128-10 float32, batch 32", [784, 128, 10], 32, "float32"),
    ("784-128-10 float32, batch 200", [784, 128, 10], 200, "float32"),
    ("64-100-10 float64, batch 200 (MLPClassifier() on digits)", [64, 100, 10], 200, "float64"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    from deltaprop.bench import pin_threads, pin_to_one_cpu

    pin_threads(1)
    with pin_to_one_cpu() as cpu:
        measure(args, cpu)


def measure(args, cpu):
    import numpy as np

    from deltaprop.bench import products_ceiling

    def best_rate(fn, flop, repeats=args.repeats):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times)), flop / float(np.median(times)) / 1e9

    print(f"one thread, pinned to CPU {cpu}; medians of {args.repeats}")
    rng = np.random.RandomState(0)
    peak = {}
    for dt in ("float32", "float64"):
        a = rng.rand(2048, 2048).astype(dt)
        b = rng.rand(2048, 2048).astype(dt)
        c = np.empty_like(a)
        _, peak[dt] = best_rate(lambda a=a, b=b, c=c: np.dot(a, b, c), 2 * 2048**3)
        print(f"attainable GEMM rate, {dt}: {peak[dt]:.1f} GFLOP/s (2048^3 through NumPy's BLAS)")

    print()
    print(f"{'configuration':58s} {'MFLOP/batch':>11s} {'GEMMs [us]':>10s} {'GFLOP/s':>8s} "
          f"{'ceiling [samples/s]':>20s}")
    floors = {}
    for name, sizes, n, dt in CONFIGS:
        ceiling = products_ceiling(sizes, n, dt, repeats=args.repeats)
        floors[name] = ceiling.seconds_per_batch
        print(f"{name:58s} {ceiling.mflop_per_batch:11.2f} {ceiling.seconds_per_batch * 1e6:10.1f} "
              f"{ceiling.gflop_per_second:8.1f} {ceiling.samples_per_second:20,.0f}")

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X_tr, _, y_tr, _ = train_test_split(X / 16.0, y, test_size=0.25, stratify=y, random_state=0)
    warnings.simplefilter("ignore", ConvergenceWarning)
    name = CONFIGS[2][0]
    batches = -(-X_tr.shape[0] // 200)
    full, last = divmod(X_tr.shape[0], 200)
    floor = 30 * floors[name] * (full + last / 200)
    sk, _ = best_rate(lambda: MLPClassifier(max_iter=30, random_state=0).fit(X_tr, y_tr), 1,
                      repeats=max(3, args.repeats // 2))
    print()
    print(f"MLPClassifier() defaults, 30 epochs on {X_tr.shape[0]} digits ({batches} batches "
          f"an epoch): GEMMs alone {floor * 1e3:.1f} ms; scikit-learn's fit {sk * 1e3:.1f} ms; "
          f"largest possible speed-up with the same arithmetic {sk / floor:.2f}x")


if __name__ == "__main__":
    main()
