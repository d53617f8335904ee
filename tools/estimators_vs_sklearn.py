"""deltaprop.MLPClassifier against sklearn.neural_network.MLPClassifier, side by side.

Digits (scaled to [0, 1]), a stratified 75/25 split, one thread. Each configuration fits
scikit-learn and every compiled deltaprop backend in turn, ``--repeats`` times interleaved,
and reports median fit times, the speed-up (sklearn / deltaprop) and held-out accuracy.
Run it as

    python tools/estimators_vs_sklearn.py [--repeats 5] [--backends numba,cython]
        [--copies 10] [--only defaults]

``--only`` runs the configurations whose name contains it.

``--copies k`` stacks k noisy copies of digits (Gaussian noise, sd 0.05 on the [0, 1] pixels,
seeded; the first copy is the original), a digits-like table k times larger.
"""

import os

CONFIGS = {
    "sgd batch 1 (tanh 32, 10 ep)": dict(solver="sgd", batch_size=1, momentum=0.0,
                                         hidden_layer_sizes=(32,), activation="tanh",
                                         max_iter=10, learning_rate_init=0.01),
    # the same with alpha=0: the kernels' fast path (no L2 decay: zero inputs skip their row)
    "sgd batch 1, alpha=0": dict(solver="sgd", batch_size=1, momentum=0.0, alpha=0.0,
                                 hidden_layer_sizes=(32,), activation="tanh", max_iter=10,
                                 learning_rate_init=0.01),
    "adam batch 64 (relu 64, 40 ep)": dict(solver="adam", batch_size=64, hidden_layer_sizes=(64,),
                                           activation="relu", max_iter=40),
    # scikit-learn's defaults (adam, batch min(200, n), relu 100, alpha 1e-4) for 30 epochs
    "defaults (adam, relu 100, 30 ep)": dict(max_iter=30),
    "lbfgs (relu 64, 200 it)": dict(solver="lbfgs", hidden_layer_sizes=(64,), activation="relu",
                                    max_iter=200),
}


def main(argv=None):
    import argparse
    import statistics
    import time
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP

    import deltaprop
    from deltaprop.bench import digits_data, pin_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--copies", type=int, default=1, help="noisy copies of digits (1: digits)")
    parser.add_argument("--only", default="", help="run the configurations whose name has this")
    parser.add_argument("--backends", default=",".join(
        b for b in deltaprop.available_backends() if b != "numpy") or "numpy")
    args = parser.parse_args(argv)
    backends = args.backends.split(",")

    X, y = digits_data(args.copies)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    warnings.simplefilter("ignore", ConvergenceWarning)
    pin_threads(1)

    def fit(make):
        est = make()
        t0 = time.perf_counter()
        est.fit(X_tr, y_tr)
        return time.perf_counter() - t0, est.score(X_te, y_te)

    data = f"digits x{args.copies} (noisy copies)" if args.copies > 1 else "digits"
    print(f"{data} {X_tr.shape[0]} train / {X_te.shape[0]} test, 1 thread, "
          f"median of {args.repeats} interleaved repeats; deltaprop backends: {', '.join(backends)}")
    header = f"{'configuration':32s} {'tool':18s} {'fit [s]':>9s} {'speed-up':>9s} {'accuracy':>9s}"
    print(header)
    print("-" * len(header))
    for name, params in CONFIGS.items():
        if args.only not in name:
            continue
        makers = {"scikit-learn": lambda p=params: SkMLP(random_state=0, **p)}
        for b in backends:
            makers[f"deltaprop {b}"] = lambda p=params, b=b: deltaprop.MLPClassifier(
                random_state=0, backend=b, **p)
        for make in makers.values():  # warm-up: JIT compile / cache load, BLAS
            est = make().set_params(max_iter=1)
            est.fit(X_tr[:100], y_tr[:100])
        times = {k: [] for k in makers}
        acc = {}
        for _ in range(args.repeats):
            for k, make in makers.items():
                t, acc[k] = fit(make)
                times[k].append(t)
        ref = statistics.median(times["scikit-learn"])
        for k in makers:
            med = statistics.median(times[k])
            print(f"{name:32s} {k:18s} {med:9.4f} {ref / med:8.1f}x {acc[k]:9.4f}")
        print()


if __name__ == "__main__":
    # one thread everywhere, set before numpy / numba load
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[_var] = "1"
    main()
