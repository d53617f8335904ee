"""n_jobs scaling of the estimators: L-BFGS fit and prediction, n_jobs=1 vs N, in one run.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python tools/parallel_scaling.py [--jobs 2] [--repeats 5]

Fits ``MLPClassifier(solver="lbfgs", hidden_layer_sizes=(64,), max_iter=50)`` on 20,000 x 64
rows (digits, standardised, with noisy copies), interleaving n_jobs=1 and n_jobs=N, and prints
median fit times, their ratio, and the largest relative weight difference between the two fits
(summation order only); then ``predict_proba`` on 200,000 rows, and scikit-learn's default
path, ``MLPClassifier((64,))`` (adam, batches of 200), for 10 epochs on 20,000 and on 1,347
rows. Per-sample SGD scaling is ``deltaprop bench --jobs N``.
"""

import argparse
import statistics
import time
import warnings


def main():
    import numpy as np
    from sklearn.datasets import load_digits

    from deltaprop import MLPClassifier

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--backend", default="auto")
    args = p.parse_args()
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1)
    rng = np.random.RandomState(0)
    reps = -(-20000 // X.shape[0])
    X = np.vstack([X + rng.normal(0, 0.3, X.shape) for _ in range(reps)])[:20000]
    y = np.tile(y, reps)[:20000]
    times = {1: [], args.jobs: []}
    predict = {1: [], args.jobs: []}
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.repeats):
            for jobs in times:
                est = MLPClassifier((64,), solver="lbfgs", max_iter=50, random_state=0,
                                    backend=args.backend, n_jobs=jobs)
                t0 = time.perf_counter()
                est.fit(X, y)
                times[jobs].append(time.perf_counter() - t0)
                fits[jobs] = est
            for jobs in times:
                big = np.vstack([X] * 10)
                t0 = time.perf_counter()
                fits[jobs].predict_proba(big)
                predict[jobs].append(time.perf_counter() - t0)
    one, many = (statistics.median(times[j]) for j in times)
    p1, pn = (statistics.median(predict[j]) for j in predict)
    w1, wn = fits[1]._mlp.w, fits[args.jobs]._mlp.w
    rel = float(np.max(np.abs(wn - w1)) / np.max(np.abs(w1)))
    print(f"L-BFGS fit, 20000 x 64, 64-64-10, backend {fits[1].backend_}: n_jobs=1 {one:.3f} s, "
          f"n_jobs={args.jobs} {many:.3f} s, speed-up {one / many:.2f}x; "
          f"max |w_{args.jobs} - w_1| / max |w_1| = {rel:.1e}; iterations {fits[1].n_iter_}, "
          f"{fits[args.jobs].n_iter_}")
    print(f"predict_proba, 200000 x 64: n_jobs=1 {p1 * 1e3:.1f} ms, n_jobs={args.jobs} {pn * 1e3:.1f} ms, "
          f"speed-up {p1 / pn:.2f}x")
    # scikit-learn's default path: adam, batches of 200, each batch's rows split between threads
    for rows in (20000, 1347):
        adam = {1: [], args.jobs: []}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(args.repeats):
                for jobs in adam:
                    est = MLPClassifier((64,), max_iter=10, tol=0, n_iter_no_change=1000, random_state=0,
                                        backend=args.backend, n_jobs=jobs)
                    t0 = time.perf_counter()
                    est.fit(X[:rows], y[:rows])
                    adam[jobs].append(time.perf_counter() - t0)
                    fits[jobs] = est
        a1, an = (statistics.median(adam[j]) for j in adam)
        w1, wn = fits[1]._mlp.w, fits[args.jobs]._mlp.w
        rel = float(np.max(np.abs(wn - w1)) / np.max(np.abs(w1)))
        print(f"adam fit (batch 200), {rows} x 64, 10 epochs: n_jobs=1 {a1 * 1e3:.1f} ms, "
              f"n_jobs={args.jobs} {an * 1e3:.1f} ms, speed-up {a1 / an:.2f}x; "
              f"max |w_{args.jobs} - w_1| / max |w_1| = {rel:.1e}")


if __name__ == "__main__":
    main()
