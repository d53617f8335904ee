"""Estimators fit on digits, side by side: deltaprop, scikit-learn and (optional) PyTorch.

The same task for each library: a 64-32-10 network, tanh hidden units, softmax and
cross-entropy, plain per-sample SGD (batch size 1, no momentum, no L2), 5 epochs, on the first
1500 digits (standardised); the accuracy is taken on the remaining 297. PyTorch is a peer, never
a dependency: without it the torch benchmarks are skipped.
"""

import time
import warnings

import numpy as np

from .common import SEED, digits, single_thread

EPOCHS = 5
N_TRAIN = 1500
_COMMON = dict(hidden_layer_sizes=(32,), activation="tanh", solver="sgd", batch_size=1,
               learning_rate_init=0.01, learning_rate="constant", momentum=0.0,
               nesterovs_momentum=False, alpha=0.0, max_iter=EPOCHS, tol=0.0,
               n_iter_no_change=10 * EPOCHS, early_stopping=False, shuffle=True, random_state=SEED)


def _configured(cls):
    """``cls`` set to the common task, passing only the parameters it declares."""
    est = cls()
    accepted = est.get_params()
    return est.set_params(**{k: v for k, v in _COMMON.items() if k in accepted})


class _TorchPerSample:
    """A per-sample SGD loop in PyTorch, the way a user would write it."""

    def __init__(self):
        import torch

        self.torch = torch
        torch.set_num_threads(1)

    def fit(self, X, y):
        torch = self.torch
        torch.manual_seed(SEED)
        self.model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 32), torch.nn.Tanh(),
                                         torch.nn.Linear(32, int(y.max()) + 1))
        opt = torch.optim.SGD(self.model.parameters(), lr=0.01)
        loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
        Xt, yt = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y)
        self.model = self.model.double()
        rng = np.random.RandomState(SEED)
        for _ in range(EPOCHS):
            for i in rng.permutation(len(Xt)):
                opt.zero_grad()
                loss_fn(self.model(Xt[i : i + 1]), yt[i : i + 1]).backward()
                opt.step()
        return self

    def predict(self, X):
        with self.torch.no_grad():
            return self.model(self.torch.as_tensor(X, dtype=self.torch.float64)).argmax(1).numpy()


def _make(library):
    if library == "deltaprop":
        import deltaprop

        if not hasattr(deltaprop, "MLPClassifier"):
            raise NotImplementedError("deltaprop.MLPClassifier does not exist at this commit")
        return _configured(deltaprop.MLPClassifier)
    if library == "sklearn":
        from sklearn.neural_network import MLPClassifier

        return _configured(MLPClassifier)
    try:
        return _TorchPerSample()
    except ImportError:
        raise NotImplementedError("PyTorch is not installed") from None


class DigitsFit:
    """Fit a classifier on digits: time, throughput and held-out accuracy per library."""

    params = (["deltaprop", "sklearn", "torch"],)
    quick_params = (["deltaprop", "sklearn"],)
    param_names = ["library"]
    timeout = 300

    def setup(self, library):
        single_thread()
        X, y = digits()
        self.X, self.y = X[:N_TRAIN], y[:N_TRAIN]
        self.X_test, self.y_test = X[N_TRAIN:], y[N_TRAIN:]
        self.est = _make(library)
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the point here

    def time_fit(self, library):
        self.est.fit(self.X, self.y)

    def track_fit_samples_per_second(self, library):
        t0 = time.perf_counter()
        self.est.fit(self.X, self.y)
        return EPOCHS * len(self.X) / (time.perf_counter() - t0)

    track_fit_samples_per_second.unit = "samples/s"

    def track_holdout_accuracy(self, library):
        self.est.fit(self.X, self.y)
        return float(np.mean(self.est.predict(self.X_test) == self.y_test))

    track_holdout_accuracy.unit = "accuracy"
