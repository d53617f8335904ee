"""Mini-batch throughput: ``MLP.batch_epoch`` on 784-128-10, and the estimator's defaults.

Two questions, one class each:

- :class:`BatchEpoch`: one epoch of mini-batch gradient descent (BLAS path) on 784-128-10
  float32, at batch sizes 32 and 200;
- :class:`DefaultClassifier`: ``MLPClassifier()`` as a scikit-learn user keeps it (adam,
  ``batch_size=min(200, n)``, relu 100 hidden, float64, L2 ``alpha=1e-4``), 30 epochs on
  digits: the configuration most users of the drop-in run.

As in ``bench_sgd``: ``track_samples_per_second`` (unit samples/s, median of 5) is the
headline; its ``time_`` twin is what asv's regression detection watches. Beside it,
``BatchEpoch.track_fraction_of_ceiling`` (unit ratio): that throughput over the epoch's
arithmetic ceiling, the batch's matrix products alone through NumPy's BLAS
(``deltaprop.bench.products_ceiling``), measured in the same process.
"""

import time
import warnings

import numpy as np

from .common import BACKENDS, LR, SEED, digits, layer_sizes, make_net, require_backend, sgd_data, single_thread

REPEATS = 5
EPOCHS = 30


def _median_rate(run, n_samples):
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return n_samples / float(np.median(times))


class BatchEpoch:
    """One epoch of mini-batch gradient descent, 784-128-10 float32 (4096 samples)."""

    params = (BACKENDS, ["32", "200"])
    quick_params = (BACKENDS, ["32"])
    param_names = ["backend", "batch_size"]
    timeout = 300

    def setup(self, backend, batch_size):
        require_backend(backend)
        single_thread()
        self.X, self.T = sgd_data("784-128-10", "float32", n=4096)
        self.net = make_net("784-128-10", backend, "float32")
        self.batch_size = int(batch_size)
        self.ceiling = None  # samples/s, measured once by track_fraction_of_ceiling
        self.net.batch_epoch(self.X, self.T, LR, self.batch_size)  # warm-up (JIT, BLAS)

    def time_batch_epoch(self, backend, batch_size):
        self.net.batch_epoch(self.X, self.T, LR, self.batch_size)

    def track_samples_per_second(self, backend, batch_size):
        return _median_rate(lambda: self.net.batch_epoch(self.X, self.T, LR, self.batch_size),
                            self.X.shape[0])

    track_samples_per_second.unit = "samples/s"

    def track_fraction_of_ceiling(self, backend, batch_size):
        """``track_samples_per_second`` divided by the products-only ceiling measured in the same
        setup: the samples/s of one batch's matrix products alone (forward sums, gradient,
        δ-recursion; 784-128-10 float32 at this batch size) through NumPy's BLAS on one thread,
        ``deltaprop.bench.products_ceiling`` (median of 5). 1 would be an epoch that costs only
        its products; it measures deltaprop against the machine's BLAS."""
        try:
            from deltaprop.bench import products_ceiling
        except ImportError:  # a commit before the ceiling: NaN, which asv records as not run
            return float("nan")
        if self.ceiling is None:
            self.ceiling = products_ceiling(layer_sizes("784-128-10"), self.batch_size, "float32",
                                            repeats=REPEATS).samples_per_second
        return self.track_samples_per_second(backend, batch_size) / self.ceiling

    track_fraction_of_ceiling.unit = "ratio"


class DefaultClassifier:
    """``MLPClassifier(max_iter=30)`` with scikit-learn's other defaults, fit on digits
    (samples/s counts samples times the epochs a fit runs)."""

    params = (BACKENDS,)
    param_names = ["backend"]
    timeout = 300

    def setup(self, backend):
        require_backend(backend)
        single_thread()
        import deltaprop

        self.X, self.y = digits()
        self.make = lambda: deltaprop.MLPClassifier(max_iter=EPOCHS, random_state=SEED,
                                                    backend=backend)
        self.n_iter = self._fit().n_iter_  # warm-up (JIT, BLAS); epochs a fit runs

    def _fit(self):
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = self.make().fit(self.X, self.y)
        return est

    def time_fit(self, backend):
        self._fit()

    def track_samples_per_second(self, backend):
        return _median_rate(self._fit, self.X.shape[0] * self.n_iter)

    track_samples_per_second.unit = "samples/s"
