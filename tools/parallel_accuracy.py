"""Held-out accuracy after the same number of epochs: n_jobs=1 against n_jobs=2 (average, hogwild).

    python tools/parallel_accuracy.py

Digits (1,797 x 64) and digits scaled to 28 x 28 (784 features, three copies with noise on
the lit pixels), 75/25 split, ``MLPClassifier((64,), activation="tanh", max_iter=20)`` with
per-sample sgd, adam at batch 32 and scikit-learn's default (adam, batch 200, rate 0.001), the
mean over three seeds.
"""


def main():
    import warnings

    import numpy as np
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from deltaprop import MLPClassifier

    warnings.simplefilter("ignore")
    X, y = load_digits(return_X_y=True)
    X = X / 16
    rs = np.random.RandomState(0)
    big = zoom(X.reshape(-1, 8, 8), (1, 3.5, 3.5), order=1).reshape(-1, 784)
    X784 = np.vstack([np.clip(big + rs.normal(0, 0.1, big.shape) * (big > 0), 0, 1) for _ in range(3)])
    tasks = {"digits": (X, y), "digits 28x28 x3": (X784, np.tile(y, 3))}
    for name, (A, b) in tasks.items():
        Xtr, Xte, ytr, yte = train_test_split(A, b, test_size=0.25, random_state=0)
        for solver, batch, lr in (("sgd", 1, 0.01), ("adam", 32, 0.003), ("adam", 200, 0.001)):
            row = []
            for n_jobs, parallel in ((1, "average"), (2, "average"), (2, "hogwild")):
                acc = [MLPClassifier((64,), activation="tanh", solver=solver, batch_size=batch,
                                     learning_rate_init=lr, momentum=0, max_iter=20, random_state=seed,
                                     n_jobs=n_jobs, parallel=parallel).fit(Xtr, ytr).score(Xte, yte)
                       for seed in range(3)]
                row.append(f"n_jobs={n_jobs} {parallel}: {np.mean(acc):.4f}")
            print(f"{name}, {solver} batch {batch}: " + ", ".join(row), flush=True)


if __name__ == "__main__":
    main()
