"""Per-sample SGD throughput (the headline), forward pass, mini-batch epochs, peak memory."""

import time

import numpy as np

from .common import BACKENDS, DTYPES, LR, SHAPES, make_net, require_backend, sgd_data, single_thread


class PerSampleSGD:
    """On-line SGD, w <- w - eta grad E_n(w) one sample at a time: one epoch per measurement.

    ``track_samples_per_second`` is the dashboard's headline; asv reads every figure as
    lower-is-better, so ``time_sgd_epoch`` (the same epoch) is the one its regression detection
    watches.
    """

    params = (BACKENDS, DTYPES, SHAPES)
    quick_params = (BACKENDS, DTYPES, ["1-3-1", "784-128-10"])
    param_names = ["backend", "dtype", "shape"]
    timeout = 300

    def setup(self, backend, dtype, shape):
        require_backend(backend)
        single_thread()
        self.X, self.T = sgd_data(shape, dtype)
        self.net = make_net(shape, backend, dtype)
        self.net.sgd_epoch(self.X, self.T, LR)  # warm-up: JIT compile or cache load stays out

    def time_sgd_epoch(self, backend, dtype, shape):
        self.net.sgd_epoch(self.X, self.T, LR)

    def track_samples_per_second(self, backend, dtype, shape):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            self.net.sgd_epoch(self.X, self.T, LR)
            times.append(time.perf_counter() - t0)
        return self.X.shape[0] / float(np.median(times))

    track_samples_per_second.unit = "samples/s"


class Forward:
    """Forward pass (predict) over a batch: y(x_n, w) for every sample."""

    params = (BACKENDS, DTYPES, SHAPES)
    quick_params = (BACKENDS, ["float32"], ["1-3-1", "784-128-10"])
    param_names = ["backend", "dtype", "shape"]

    def setup(self, backend, dtype, shape):
        require_backend(backend)
        single_thread()
        self.X, _ = sgd_data(shape, dtype)
        self.net = make_net(shape, backend, dtype)
        self.net.forward(self.X)

    def time_forward(self, backend, dtype, shape):
        self.net.forward(self.X)


class MiniBatchEpoch:
    """One epoch of mini-batch gradient descent (mean gradient of each batch), float32."""

    params = (BACKENDS, ["64", "256"], ["64-32-10", "784-128-10"])
    quick_params = (BACKENDS, ["256"], ["64-32-10"])
    param_names = ["backend", "batch_size", "shape"]

    def setup(self, backend, batch_size, shape):
        require_backend(backend)
        single_thread()
        self.X, self.T = sgd_data(shape, "float32", n=4096)
        self.net = make_net(shape, backend, "float32")
        self.batch_size = int(batch_size)
        self.net.batch_epoch(self.X, self.T, LR, self.batch_size)

    def time_batch_epoch(self, backend, batch_size, shape):
        self.net.batch_epoch(self.X, self.T, LR, self.batch_size)


class FitMemory:
    """Peak memory of a fit: 2 per-sample epochs of a 784-128-10 net on 2000 samples, float32."""

    params = (BACKENDS,)
    param_names = ["backend"]

    def setup(self, backend):
        require_backend(backend)
        single_thread()
        self.X, self.T = sgd_data("784-128-10", "float32", n=2000)

    def peakmem_fit(self, backend):
        make_net("784-128-10", backend, "float32").fit(self.X, self.T, epochs=2, lr=LR)
