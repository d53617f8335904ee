r"""The standard per-sample SGD throughput measurement (samples per second).

Shared by ``deltaprop bench`` and the asv suite. It answers one question: how many samples per
second does on-line gradient descent, :math:`w \leftarrow w - \eta \nabla E_n(w)`, process on a
given backend, dtype and network shape?

The standard shapes (:data:`SHAPES`):

``1-3-1``
    the seed's Fig. 5.3 net: tanh hidden, identity output, squared error, N = 50 points on
    (-1, 1), t = x²; a long fit runs many epochs per compiled call.
``64-32-10``
    tanh, softmax, cross-entropy on scikit-learn's digits (1797 samples, pixels scaled to [0, 1]).
``784-128-10`` / ``784-128-10-sparse``
    tanh, softmax, cross-entropy on MNIST-sized random inputs in [0, 1): dense, and with 80 % of
    the inputs zero (as in images).
``784-256-128-10``
    the same with two hidden layers.

Roofline: :class:`StreamProbe` measures, interleaved with the tasks, how often per second one
core streams a buffer the size of the network's weights through the cache, reading it
(``sum``) or reading and writing it in place (``w -= c``). Per-sample SGD must at least read
every weight for the forward sum and read-modify-write it for δ and the update (three passes);
fusing the first layer's update with the next sample's forward sum leaves two (one RMW). The
probes' rates are those bounds in samples/s: ``1 / (1/read + 1/rmw)`` and ``rmw``.

Method: single thread (BLAS, OpenMP and numba pinned to 1), one warm-up call (JIT compile or
cache load stays out of the figure), a calibration that sizes each timed call to about
``min_time`` seconds, then ``repeats`` rounds in which every configuration is timed once
(interleaved, so a drift of the machine's speed hits all of them alike); the figure is the median
over rounds. Only :class:`deltaprop.MLP` is used.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np

__all__ = ["SHAPES", "pin_threads", "make_data", "Task", "StreamProbe", "measure", "compare"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")

#: name -> (layer sizes, hidden, output, loss)
SHAPES = {
    "1-3-1": ([1, 3, 1], "tanh", "identity", "squared_error"),
    "64-32-10": ([64, 32, 10], "tanh", "softmax", "cross_entropy"),
    "784-128-10": ([784, 128, 10], "tanh", "softmax", "cross_entropy"),
    "784-128-10-sparse": ([784, 128, 10], "tanh", "softmax", "cross_entropy"),
    "784-256-128-10": ([784, 256, 128, 10], "tanh", "softmax", "cross_entropy"),
}
#: samples of the random data sets (digits has 1797, 1-3-1 has 50)
N_RANDOM = 2000
LR = 0.01


def pin_threads(n: int = 1) -> None:
    """Limit BLAS and OpenMP to ``n`` threads.

    The environment variables reach libraries not loaded yet, threadpoolctl the loaded ones.
    Best: set ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``NUMBA_NUM_THREADS`` before
    Python starts (an OpenBLAS pool started with more threads and limited later was seen to
    stall a 32-row GEMM for 28 ms). numba's own pool is left alone: deltaprop's kernels are
    serial, and numba re-reads ``NUMBA_NUM_THREADS`` at every compilation and raises if it
    differs from a pool already launched, so it is only set while numba is not imported.
    """
    for var in _THREAD_VARS:
        if var != "NUMBA_NUM_THREADS" or "numba" not in sys.modules:
            os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass


def make_data(shape: str, dtype="float32", seed: int = 0):
    """Seeded inputs X (n, D) and one-hot or real targets T (n, K) of a standard shape.

    Frozen: the same ``(shape, seed)`` always gives the same data.
    """
    rng = np.random.RandomState(seed)
    if shape == "1-3-1":
        X = rng.uniform(-1, 1, (50, 1))
        T = X**2
    elif shape == "64-32-10":
        from sklearn.datasets import load_digits

        digits = load_digits()
        X = digits.data / 16.0
        T = np.eye(10)[digits.target]
    elif shape in SHAPES:
        X = rng.uniform(0, 1, (N_RANDOM, 784))
        if shape.endswith("-sparse"):
            X[rng.uniform(0, 1, X.shape) < 0.8] = 0.0
        T = np.eye(10)[rng.randint(0, 10, N_RANDOM)]
    else:
        raise ValueError(f"unknown shape {shape!r}; standard shapes: {', '.join(SHAPES)}")
    return np.ascontiguousarray(X, dtype=dtype), np.ascontiguousarray(T, dtype=dtype)


class Task:
    """One configuration (backend, dtype, shape, level, batch size), ready to be timed.

    ``level="fit"`` times :meth:`MLP.fit` (shuffled epochs, several per compiled call for small
    data); ``level="epoch"`` times :meth:`MLP.sgd_epoch` / :meth:`MLP.batch_epoch` over a fixed
    random order. ``samples`` is the number of samples one :meth:`run` processes.
    """

    def __init__(self, backend, dtype, shape, level="fit", batch_size=1, seed=0):
        from deltaprop import MLP

        sizes, hidden, output, loss = SHAPES[shape]
        self.name = (f"{shape} {dtype} {backend}" + (f" b={batch_size}" if batch_size > 1 else "")
                     + ("" if level == "fit" else f" {level}"))
        self.backend, self.dtype, self.shape = backend, dtype, shape
        self.level, self.batch_size = level, batch_size
        self.X, self.T = make_data(shape, dtype, seed)
        self.net = MLP(sizes, hidden, output, loss, backend=backend, dtype=dtype, random_state=seed)
        self.order = np.random.RandomState(seed).permutation(self.X.shape[0])
        self.epochs = 1
        self.run()  # warm-up: compile or load the kernels

    @property
    def samples(self) -> int:
        return self.epochs * self.X.shape[0]

    def run(self) -> float:
        """Process ``samples`` samples once; return the elapsed seconds."""
        net, X, T = self.net, self.X, self.T
        t0 = time.perf_counter()
        if self.level == "fit":
            net.fit(X, T, epochs=self.epochs, lr=LR, batch_size=self.batch_size)
        else:
            for _ in range(self.epochs):
                if self.batch_size == 1:
                    net.sgd_epoch(X, T, LR, order=self.order)
                else:
                    net.batch_epoch(X, T, LR, self.batch_size, order=self.order)
        return time.perf_counter() - t0

    def calibrate(self, min_time: float) -> None:
        """Grow ``epochs`` until one :meth:`run` takes at least ``min_time`` seconds."""
        while True:
            elapsed = self.run()
            if elapsed >= min_time:
                return
            self.epochs = max(self.epochs + 1, int(self.epochs * min(1.2 * min_time / max(elapsed, 1e-6), 10)))


class StreamProbe:
    """Memory-bound probe with the interface of :class:`Task`: one "sample" is one pass over a
    buffer as large as the weights of ``shape``; ``kind`` is ``"read"`` or ``"rmw"``.

    Each pass is one NumPy call, so the probe measures bandwidth only where a pass takes well
    over a microsecond (the 784-input shapes); for 1-3-1 and 64-32-10 it measures call overhead.
    """

    def __init__(self, shape, dtype="float32", kind="rmw"):
        sizes = SHAPES[shape][0]
        n_weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        self.name = f"{shape} {dtype} bound-{kind}"
        self.kind = kind
        self.buf = np.zeros(n_weights, dtype=dtype)
        self.c = self.buf.dtype.type(1e-30)
        self.epochs = 1
        self.run()

    @property
    def samples(self) -> int:
        return self.epochs

    def run(self) -> float:
        buf, c = self.buf, self.c
        t0 = time.perf_counter()
        if self.kind == "read":
            for _ in range(self.epochs):
                buf.max()
        else:
            for _ in range(self.epochs):
                np.subtract(buf, c, out=buf)
        return time.perf_counter() - t0

    calibrate = Task.calibrate


def compare(tasks, repeats: int = 5, min_time: float = 0.2) -> dict:
    """Median samples/s of each :class:`Task`, timed in ``repeats`` interleaved rounds."""
    pin_threads(1)
    for task in tasks:
        task.calibrate(min_time)
    rates = {task.name: [] for task in tasks}
    for _ in range(repeats):
        for task in tasks:
            rates[task.name].append(task.samples / task.run())
    return {name: statistics.median(r) for name, r in rates.items()}


def measure(backend, dtype, shape, level="fit", batch_size=1, repeats=5, min_time=0.2) -> float:
    """Median samples/s of per-sample SGD (``batch_size=1``) for one configuration."""
    pin_threads(1)
    task = Task(backend, dtype, shape, level, batch_size)
    return compare([task], repeats, min_time)[task.name]


if __name__ == "__main__":  # python -m deltaprop.bench [backend ...]: a JSON table of samples/s
    import json

    pin_threads(1)
    backends = sys.argv[1:] or ["numpy", "numba"]
    tasks = []
    for shape in SHAPES:
        for dtype in ("float32", "float64"):
            tasks += [Task(b, dtype, shape) for b in backends]
            tasks += [StreamProbe(shape, dtype, kind) for kind in ("read", "rmw")]
    tasks += [Task(b, d, "784-128-10", "epoch", 32) for b in backends for d in ("float32", "float64")]
    print(json.dumps(compare(tasks), indent=1))
