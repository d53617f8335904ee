"""n_jobs: per-sample SGD on threads (parameter mixing, Hogwild), mini-batches split between
threads, and L-BFGS gradient evaluations.

Every class asks one question: how does throughput change from ``n_jobs=1`` to 2 (and all
cores)? BLAS stays at one thread (common.py); the threads are deltaprop's own.
"""

import os
import time

import numpy as np

from .common import LR, make_net, require_backend, sgd_data, single_thread

JOBS = ["1", "2", "all"]
#: shape, with "-sparse": 80 % of the inputs zero (the kernels skip their rows; Hogwild's case)
PARALLEL_SHAPES = ["64-32-10", "784-128-10", "784-128-10-sparse"]
N_PARALLEL = {"64-32-10": 4000, "784-128-10": 2000, "784-128-10-sparse": 2000}


def n_jobs(jobs):
    return os.cpu_count() if jobs == "all" else int(jobs)


def epoch_samples_per_second(bench) -> float:
    """samples/s of one epoch of ``bench.net.fit(bench.X, bench.T, **bench.kw)``, median of 5."""
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        bench.net.fit(bench.X, bench.T, **bench.kw)
        times.append(time.perf_counter() - t0)
    return bench.X.shape[0] / float(np.median(times))


class ParallelSGD:
    """One epoch of per-sample SGD (``MLP.fit(epochs=1, n_jobs=...)``), float32."""

    params = (["cython", "numba"], ["average", "hogwild"], PARALLEL_SHAPES, JOBS)
    quick_params = (["cython", "numba"], ["average", "hogwild"], ["784-128-10"], ["1", "2"])
    param_names = ["backend", "parallel", "shape", "n_jobs"]
    timeout = 300

    def setup(self, backend, parallel, shape, jobs):
        require_backend(backend)
        single_thread()
        base = shape.replace("-sparse", "")
        self.X, self.T = sgd_data(base, "float32", N_PARALLEL[shape])
        if shape.endswith("-sparse"):
            rng = np.random.RandomState(1)
            self.X[rng.uniform(0, 1, self.X.shape) < 0.8] = 0.0
        self.net = make_net(base, backend, "float32")
        self.kw = dict(epochs=1, lr=LR, n_jobs=n_jobs(jobs), parallel=parallel)
        self.net.fit(self.X, self.T, **self.kw)  # warm-up

    def time_epoch(self, backend, parallel, shape, jobs):
        self.net.fit(self.X, self.T, **self.kw)

    def track_samples_per_second(self, backend, parallel, shape, jobs):
        return epoch_samples_per_second(self)

    track_samples_per_second.unit = "samples/s"


class ParallelMiniBatch:
    """One epoch of mini-batch SGD (``MLP.fit(epochs=1, batch_size=B, n_jobs=...)``), float32:
    each batch's rows split between the threads (``split_epochs``)."""

    params = (["cython", "numba"], ["64-32-10", "784-128-10"], ["32", "200"], JOBS)
    quick_params = (["cython"], ["784-128-10"], ["200"], ["1", "2"])
    param_names = ["backend", "shape", "batch_size", "n_jobs"]
    timeout = 300

    def setup(self, backend, shape, batch_size, jobs):
        require_backend(backend)
        single_thread()
        self.X, self.T = sgd_data(shape, "float32", N_PARALLEL[shape])
        self.net = make_net(shape, backend, "float32")
        self.kw = dict(epochs=1, lr=LR, batch_size=int(batch_size), n_jobs=n_jobs(jobs))
        self.net.fit(self.X, self.T, **self.kw)  # warm-up

    def time_epoch(self, backend, shape, batch_size, jobs):
        self.net.fit(self.X, self.T, **self.kw)

    def track_samples_per_second(self, backend, shape, batch_size, jobs):
        return epoch_samples_per_second(self)

    track_samples_per_second.unit = "samples/s"


class ParallelLossGradient:
    """The full-batch loss and gradient L-BFGS evaluates, 20,000 x 64 rows, 64-100-10, float64."""

    params = (["cython", "numba"], JOBS)
    quick_params = (["cython", "numba"], ["1", "2"])
    param_names = ["backend", "n_jobs"]

    def setup(self, backend, jobs):
        require_backend(backend)
        single_thread()
        from deltaprop import MLP

        rng = np.random.RandomState(0)
        self.X = rng.uniform(0, 1, (20000, 64))
        self.T = np.eye(10)[rng.randint(0, 10, 20000)]
        self.net = MLP([64, 100, 10], "relu", "softmax", "cross_entropy", backend=backend,
                       random_state=0)
        self.g = np.empty(self.net.w.shape[0])
        self.jobs = n_jobs(jobs)
        self.time_loss_and_gradient(backend, jobs)

    def time_loss_and_gradient(self, backend, jobs):
        self.net.loss_and_gradient(self.X, self.T, out=self.g, check_input=False, n_jobs=self.jobs)

    def track_evaluations_per_second(self, backend, jobs):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            self.time_loss_and_gradient(backend, jobs)
            times.append(time.perf_counter() - t0)
        return 1.0 / float(np.median(times))

    track_evaluations_per_second.unit = "evaluations/s"
