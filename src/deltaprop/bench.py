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

Method: single thread (BLAS and OpenMP pinned to 1 by :func:`pin_threads`), one warm-up call
(JIT compile or cache load stays out of the figure), a calibration that sizes each timed call to
about ``min_time`` seconds, then ``repeats`` rounds in which every configuration is timed once
(interleaved, so a drift of the machine's speed hits all of them alike); the figure is the median
over rounds. :class:`Task` times :class:`deltaprop.MLP`; :class:`PeerTask` times the same work in
scikit-learn or PyTorch, and :func:`run` gives ``deltaprop bench`` its table.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

__all__ = ["SHAPES", "pin_threads", "make_data", "Task", "StreamProbe", "PeerTask", "measure", "compare",
           "run", "machine_info", "table"]

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
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    for var in _THREAD_VARS:
        if var != "NUMBA_NUM_THREADS" or "numba" not in sys.modules:
            os.environ[var] = str(n)
    threadpool_limits(n)


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


class _Timed:
    """What :func:`compare` times: ``run()`` processes ``samples`` samples and returns the seconds."""

    epochs = 1
    samples_per_epoch = 1

    @property
    def samples(self) -> int:
        return self.epochs * self.samples_per_epoch

    def calibrate(self, min_time: float) -> None:
        """Grow ``epochs`` until one :meth:`run` takes at least ``min_time`` seconds."""
        while True:
            elapsed = self.run()
            if elapsed >= min_time:
                return
            self.epochs = max(self.epochs + 1, int(self.epochs * min(1.2 * min_time / max(elapsed, 1e-6), 10)))


class Task(_Timed):
    """One configuration (backend, dtype, shape, level, batch size), ready to be timed.

    ``level="fit"`` times :meth:`MLP.fit` (shuffled epochs, several per compiled call for small
    data); ``level="epoch"`` times :meth:`MLP.sgd_epoch` / :meth:`MLP.batch_epoch` over a fixed
    random order. ``samples`` is the number of samples one :meth:`run` processes.
    """

    def __init__(self, backend, dtype, shape, level="fit", batch_size=1, seed=0, n_jobs=1,
                 parallel="average"):
        from deltaprop import MLP

        sizes, hidden, output, loss = SHAPES[shape]
        self.name = (f"{shape} {dtype} {backend}" + (f" b={batch_size}" if batch_size > 1 else "")
                     + ("" if level == "fit" else f" {level}")
                     + (f" n_jobs={n_jobs} {parallel}" if n_jobs != 1 else ""))
        self.backend, self.dtype, self.shape = backend, dtype, shape
        self.level, self.batch_size = level, batch_size
        self.n_jobs, self.parallel = n_jobs, parallel
        self.X, self.T = make_data(shape, dtype, seed)
        self.net = MLP(sizes, hidden, output, loss, backend=backend, dtype=dtype, random_state=seed)
        self.order = np.random.RandomState(seed).permutation(self.X.shape[0])
        self.samples_per_epoch = self.X.shape[0]
        self.run()  # warm-up: compile or load the kernels

    def run(self) -> float:
        """Process ``samples`` samples once; return the elapsed seconds."""
        net, X, T = self.net, self.X, self.T
        t0 = time.perf_counter()
        if self.level == "fit":
            net.fit(X, T, epochs=self.epochs, lr=LR, batch_size=self.batch_size, n_jobs=self.n_jobs,
                    parallel=self.parallel)
        else:
            for _ in range(self.epochs):
                if self.batch_size == 1:
                    net.sgd_epoch(X, T, LR, order=self.order)
                else:
                    net.batch_epoch(X, T, LR, self.batch_size, order=self.order)
        return time.perf_counter() - t0


class StreamProbe(_Timed):
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
        self.run()

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


class PeerTask(_Timed):
    """Per-sample SGD in a peer library, timed like :class:`Task`.

    ``sklearn``: ``MLPClassifier``/``MLPRegressor`` with ``solver="sgd", batch_size=1``, no
    momentum, no L2, one ``partial_fit`` per epoch. ``torch``: the loop a PyTorch user writes
    (``nn.Sequential``, ``optim.SGD``, one sample per step). Same data, shape and η as
    :class:`Task`. Raises ImportError when the library is not installed.
    """

    def __init__(self, library, dtype, shape):
        sizes, hidden, output, loss = SHAPES[shape]
        self.name = f"{shape} {dtype} {library}"
        self.backend, self.dtype, self.shape = library, dtype, shape
        self.X, self.T = make_data(shape, dtype)
        self.samples_per_epoch = self.X.shape[0]
        classify = output == "softmax"
        if library == "sklearn":
            from sklearn.neural_network import MLPClassifier, MLPRegressor

            cls = MLPClassifier if classify else MLPRegressor
            self.est = cls(hidden_layer_sizes=tuple(sizes[1:-1]), activation=hidden, solver="sgd",
                           batch_size=1, learning_rate_init=LR, momentum=0.0, alpha=0.0,
                           shuffle=False, random_state=0)
            self.y = self.T.argmax(axis=1) if classify else self.T[:, 0]
            self.fit_args = {"classes": np.arange(sizes[-1])} if classify else {}
            self._epoch = lambda: self.est.partial_fit(self.X, self.y, **self.fit_args)
        else:
            self._torch_setup(sizes, dtype, classify)
        self.run()  # warm-up

    def _torch_setup(self, sizes, dtype, classify):
        import torch

        torch.set_num_threads(1)
        layers = []
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.Tanh()]
        layers.append(torch.nn.Linear(sizes[-2], sizes[-1]))
        model = torch.nn.Sequential(*layers).to(getattr(torch, dtype))
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        loss = torch.nn.CrossEntropyLoss(reduction="sum") if classify else torch.nn.MSELoss(reduction="sum")
        X = torch.as_tensor(self.X)
        T = torch.as_tensor(self.T.argmax(axis=1)) if classify else torch.as_tensor(self.T)

        def epoch():
            for i in range(X.shape[0]):
                opt.zero_grad()
                loss(model(X[i : i + 1]), T[i : i + 1]).backward()
                opt.step()

        self._epoch = epoch

    def run(self) -> float:
        t0 = time.perf_counter()
        for _ in range(self.epochs):
            self._epoch()
        return time.perf_counter() - t0


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


def _check_names(backends, dtypes, shapes):
    from deltaprop import available_backends

    available = available_backends()
    for b in backends:
        if b not in available:
            raise ValueError(f"backend {b!r} is not available here; available: {', '.join(available)}")
    for s in shapes:
        if s not in SHAPES:
            raise ValueError(f"unknown shape {s!r}; standard shapes: {', '.join(SHAPES)}")
    for d in dtypes:
        if d not in ("float32", "float64"):
            raise ValueError(f"unknown dtype {d!r}; use float32, float64")


def run(backends, dtypes, shapes, peers=(), repeats=5, min_time=0.2, log=None, jobs=1,
        parallel="average"):
    """Median samples/s of every (shape, dtype, backend or peer): ``(rows, skipped peers)``.

    Each row is a dict: shape, dtype, backend, samples_per_second, and ``vs_numpy``,
    ``vs_sklearn``, ``vs_torch`` (ratios to those rows of the same shape and dtype, where
    measured). A peer that is not installed is skipped. ``log(message)`` reports progress.
    With ``jobs`` > 1 every compiled backend is also timed on that many threads (``MLP.fit``'s
    ``n_jobs`` and ``parallel``), in rows whose backend reads e.g. ``cython x2`` and whose
    ``vs_one_thread`` is the ratio to the same backend on one thread.
    """
    _check_names(backends, dtypes, shapes)
    pin_threads(1)
    tasks, skipped = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning from the sklearn peer's partial_fit
        for shape in shapes:
            for dtype in dtypes:
                for backend in backends:
                    if log:
                        log(f"warming up {shape} {dtype} {backend}")
                    tasks.append(Task(backend, dtype, shape))
                    if jobs > 1 and backend != "numpy":
                        tasks.append(Task(backend, dtype, shape, n_jobs=jobs, parallel=parallel))
                for peer in peers:
                    try:
                        tasks.append(PeerTask(peer, dtype, shape))
                    except ImportError:
                        skipped.append(peer)
        if log:
            log(f"timing {len(tasks)} configurations, {repeats} interleaved rounds")
        rates = compare(tasks, repeats=repeats, min_time=min_time)
    rows = [dict(shape=t.shape, dtype=t.dtype, backend=t.backend, samples_per_second=float(rates[t.name]))
            for t in tasks]
    for row, t in zip(rows, tasks):
        if getattr(t, "n_jobs", 1) > 1:
            one = next(r for r in rows if r["backend"] == t.backend and r["shape"] == t.shape
                       and r["dtype"] == t.dtype)
            row["vs_one_thread"] = row["samples_per_second"] / one["samples_per_second"]
            row["backend"] = f"{t.backend} x{t.n_jobs}"
            row["n_jobs"], row["parallel"] = t.n_jobs, t.parallel
    for row in rows:
        for ref in ("numpy", "sklearn", "torch"):
            base = [r["samples_per_second"] for r in rows
                    if r["backend"] == ref and r["shape"] == row["shape"] and r["dtype"] == row["dtype"]]
            if base:
                row[f"vs_{ref}"] = row["samples_per_second"] / base[0]
    return rows, sorted(set(skipped))


def machine_info() -> dict:
    """CPU, cores, Python, NumPy and deltaprop versions: where a benchmark table came from."""
    from deltaprop import __version__

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    return {"cpu": cpu, "cores": os.cpu_count(), "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "numpy": np.__version__, "deltaprop": __version__}


def table(rows, repeats, info, skipped=()) -> str:
    """The rows of :func:`run` as the text table ``deltaprop bench`` prints."""
    refs = [r for r in ("numpy", "sklearn", "torch", "one_thread") if any(f"vs_{r}" in row for row in rows)]
    lines = [f"per-sample SGD throughput, samples/s (median of {repeats} interleaved rounds, one thread)",
             f"machine: {info['cpu']}, {info['cores']} cores, {info['system']}, Python {info['python']}, "
             f"NumPy {info['numpy']}, deltaprop {info['deltaprop']}"]
    if skipped:
        lines.append(f"not installed (skipped): {', '.join(skipped)}")
    head = f"{'shape':<18} {'dtype':<8} {'backend':<9} {'samples/s':>12}" + "".join(f" {'x ' + r:>12}" for r in refs)
    lines += [head, "-" * len(head)]
    for row in rows:
        lines.append(f"{row['shape']:<18} {row['dtype']:<8} {row['backend']:<9} {row['samples_per_second']:>12,.0f}"
                     + "".join(f" {row[f'vs_{r}']:>12.2f}" if f"vs_{r}" in row else f" {'':>12}" for r in refs))
    return "\n".join(lines)


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
