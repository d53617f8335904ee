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

Mini-batches and peers in their own Python (:func:`run_minibatch`, ``deltaprop bench
--minibatch``): ``MLP.batch_epoch`` at batch 32 and 200, ``MLP.sgd_epoch``, and
``MLPClassifier()`` with scikit-learn's defaults, against the NumPy backend, scikit-learn and,
through ``--peer-python``, JAX and PyTorch (:class:`RemoteTask`: the script
``deltaprop/_peer_minibatch.py`` in that Python, fed the same data and initial weights, its
first epoch checked against deltaprop's, timed in the same interleaved rounds).

Pinning: :func:`pin_to_one_cpu` holds every thread of the process (and so every child started
meanwhile, which inherits it) to one CPU, so that no thread pool, ours or a peer's, borrows a
second core; ``deltaprop bench`` does so whenever it measures one thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

__all__ = ["SHAPES", "pin_threads", "pin_to_one_cpu", "make_data", "Task", "StreamProbe", "PeerTask",
           "FitTask", "RemoteTask", "measure", "compare", "run", "run_minibatch", "machine_info", "blas_info", "table",
           "minibatch_table", "MINIBATCH_WORKS"]

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


def _thread_ids():
    """The ids of this process's threads (Linux), else just 0 (the calling thread)."""
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


@contextlib.contextmanager
def pin_to_one_cpu(cpu=None):
    """Hold every thread of this process to one CPU while the block runs; yield that CPU.

    ``cpu`` must be one this process may run on (default: the highest-numbered such CPU;
    ``taskset -c 3 deltaprop bench`` thus measures on CPU 3). Threads started inside the block,
    and child processes (a ``--peer-python``), inherit the pinning, so no thread pool can
    borrow a second core. On leaving, every thread is put back on the CPUs it had (a thread
    started inside the block on those of the calling thread). Yields None, pinning nothing,
    where the OS has no ``sched_setaffinity`` (macOS, Windows).
    """
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    allowed = os.sched_getaffinity(0)
    if cpu is None:
        cpu = max(allowed)
    elif cpu not in allowed:
        raise ValueError(f"cannot pin to CPU {cpu}: this process may run on CPUs "
                         f"{', '.join(map(str, sorted(allowed)))}")
    before = {}
    for tid in _thread_ids():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            before[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, {cpu})
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        for tid in _thread_ids():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, before.get(tid, allowed))
        os.sched_setaffinity(0, allowed)


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
        """Grow ``epochs`` until one :meth:`run` takes at least ``min_time`` seconds (none for 0)."""
        while min_time > 0:
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
        self.backend, self.dtype, self.shape, self.seed = backend, dtype, shape, seed
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
    """Per-sample (or, scikit-learn, mini-batch) SGD in a peer library, timed like :class:`Task`.

    ``sklearn``: ``MLPClassifier``/``MLPRegressor`` with ``solver="sgd", batch_size=batch_size``
    (default 1), no momentum, no L2, one ``partial_fit`` per epoch. ``torch``: the loop a
    PyTorch user writes (``nn.Sequential``, ``optim.SGD``, one sample per step). Same data, shape
    and η as :class:`Task`. Raises ImportError when the library is not installed.
    """

    def __init__(self, library, dtype, shape, batch_size=1):
        sizes, hidden, output, loss = SHAPES[shape]
        if library != "sklearn" and batch_size != 1:
            raise ValueError(f"the in-process {library} peer times per-sample SGD only")
        self.name = f"{shape} {dtype} {library}" + (f" b={batch_size}" if batch_size > 1 else "")
        self.backend, self.dtype, self.shape, self.batch_size = library, dtype, shape, batch_size
        self.X, self.T = make_data(shape, dtype)
        self.samples_per_epoch = self.X.shape[0]
        classify = output == "softmax"
        if library == "sklearn":
            from sklearn.neural_network import MLPClassifier, MLPRegressor

            cls = MLPClassifier if classify else MLPRegressor
            self.est = cls(hidden_layer_sizes=tuple(sizes[1:-1]), activation=hidden, solver="sgd",
                           batch_size=batch_size, learning_rate_init=LR, momentum=0.0, alpha=0.0,
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
            "python": platform.python_version(), "numpy": np.__version__, "deltaprop": __version__,
            "blas": blas_info()}


def blas_info() -> list:
    """threadpoolctl's view of the BLAS and OpenMP libraries loaded now, with their current
    thread counts: ``[{"library", "api", "version", "threads"}, ...]`` (the batch kernels'
    GEMMs run on SciPy's BLAS with as many threads as it has, except inside ``n_jobs`` > 1)."""
    from threadpoolctl import threadpool_info  # a dependency of scikit-learn

    return [{"library": os.path.basename(d.get("filepath", "")), "api": d.get("internal_api"),
             "version": d.get("version"), "threads": d.get("num_threads")}
            for d in threadpool_info()]


def _machine_line(info) -> str:
    line = (f"machine: {info['cpu']}, {info['cores']} cores, {info['system']}, Python {info['python']}, "
            f"NumPy {info['numpy']}, deltaprop {info['deltaprop']}")
    if info.get("blas"):
        line += "\nthread pools: " + ", ".join(
            " ".join(filter(None, (b["api"], b["version"])))
            + f" ({b['threads']} thread{'s' if b['threads'] != 1 else ''})" for b in info["blas"])
    return line


def _pinning(info) -> str:
    """``info["pinned_cpu"]`` (set by ``deltaprop bench``) in words."""
    cpu = info.get("pinned_cpu")
    return "not pinned to a CPU" if cpu is None else f"pinned to CPU {cpu}"


def table(rows, repeats, info, skipped=()) -> str:
    """The rows of :func:`run` as the text table ``deltaprop bench`` prints.

    ``info`` is :func:`machine_info`'s, with ``pinned_cpu`` (None: not pinned) added.
    """
    refs = [r for r in ("numpy", "sklearn", "torch", "one_thread") if any(f"vs_{r}" in row for row in rows)]
    jobs = sorted({row["n_jobs"] for row in rows if "n_jobs" in row})
    threads = "one thread" + "".join(f" and {n} threads" for n in jobs)
    lines = [f"per-sample SGD throughput, samples/s (median of {repeats} interleaved rounds, {threads}, "
             f"{_pinning(info)})", _machine_line(info)]
    if skipped:
        lines.append(f"not installed (skipped): {', '.join(skipped)}")
    head = f"{'shape':<18} {'dtype':<8} {'backend':<9} {'samples/s':>12}" + "".join(f" {'x ' + r:>12}" for r in refs)
    lines += [head, "-" * len(head)]
    for row in rows:
        lines.append(f"{row['shape']:<18} {row['dtype']:<8} {row['backend']:<9} {row['samples_per_second']:>12,.0f}"
                     + "".join(f" {row[f'vs_{r}']:>12.2f}" if f"vs_{r}" in row else f" {'':>12}" for r in refs))
    return "\n".join(lines)



# --------------------------------------------------------------------------- mini-batches and peers
#: The work ``deltaprop bench --minibatch`` times, in table order: key -> what it is.
MINIBATCH_WORKS = {
    "batch-32": dict(kind="epoch", shape="784-128-10", batch_size=32,
                     label="batch_epoch 784-128-10 f32, batch 32"),
    "batch-200": dict(kind="epoch", shape="784-128-10", batch_size=200,
                      label="batch_epoch 784-128-10 f32, batch 200"),
    "defaults-digits": dict(kind="fit", copies=1, label="MLPClassifier() 30 it, digits"),
    "defaults-digits-x10": dict(kind="fit", copies=10, label="MLPClassifier() 30 it, digits x10"),
    "sgd-784-128-10": dict(kind="epoch", shape="784-128-10", batch_size=1, label="sgd_epoch 784-128-10 f32"),
    "sgd-64-32-10": dict(kind="epoch", shape="64-32-10", batch_size=1, label="sgd_epoch 64-32-10 f32 (digits)"),
    "sgd-784-256-128-10": dict(kind="epoch", shape="784-256-128-10", batch_size=1,
                               label="sgd_epoch 784-256-128-10 f32"),
}
MINIBATCH_DTYPE = "float32"
#: ``max_iter`` of the MLPClassifier() rows
FIT_ITERATIONS = 30
#: Peers timed in the ``--peer-python`` process (names of ``deltaprop/_peer_minibatch.py``; its
#: third, ``"reference"``, a plain NumPy epoch, is a test double).
REMOTE_PEERS = ("jax", "torch")
PEER_LABELS = {"numpy": "NumPy backend", "sklearn": "scikit-learn", "jax": "JAX jit(lax.scan)",
               "torch": "PyTorch loop", "reference": "NumPy loop (peer script)"}
#: XLA on one thread (appended to the peers python's XLA_FLAGS)
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
#: The largest |w_peer - w_deltaprop| allowed after the checked epoch (float32, the same start).
CHECK_TOLERANCE = 1e-5
_PEER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_peer_minibatch.py")


def digits_data(copies: int = 1):
    """Digits as ``benchmarks/estimators_vs_sklearn.py --copies`` builds them (frozen).

    X: the pixels / 16, float64 (1,797 x 64); y: the labels. ``copies`` > 1 stacks
    ``copies - 1`` noisy copies (Gaussian noise, sd 0.05, seeded) under the original.
    """
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    if copies > 1:
        noise = np.random.RandomState(0)
        X = np.vstack([X] + [X + noise.normal(0, 0.05, X.shape) for _ in range(copies - 1)])
        y = np.tile(y, copies)
    return X, y


class FitTask(_Timed):
    """``MLPClassifier(max_iter=30, random_state=0)`` with scikit-learn's other defaults (adam,
    batch min(200, n), relu 100 hidden, alpha 1e-4, float64) fitted to digits (``copies`` as
    :func:`digits_data`): deltaprop's on backend ``library``, or scikit-learn's (``"sklearn"``).

    One "sample" is one whole fit, so :func:`compare` gives fits per second; ``n_iter`` is the
    iterations the last fit ran.
    """

    def __init__(self, library, copies=1, max_iter=FIT_ITERATIONS):
        self.name = f"MLPClassifier() digits x{copies} {library}"
        self.backend, self.max_iter, self.n_iter = library, max_iter, None
        self.X, self.y = digits_data(copies)
        if library == "sklearn":
            from sklearn.neural_network import MLPClassifier

            self.make = lambda **kw: MLPClassifier(random_state=0, **kw)
        else:
            from deltaprop import MLPClassifier

            self.make = lambda **kw: MLPClassifier(random_state=0, backend=library, **kw)
        self.make(max_iter=1).fit(self.X[:100], self.y[:100])  # warm-up: JIT compile or cache load, BLAS

    def run(self) -> float:
        t0 = time.perf_counter()
        for _ in range(self.epochs):
            est = self.make(max_iter=self.max_iter).fit(self.X, self.y)
        elapsed = time.perf_counter() - t0
        self.n_iter = int(est.n_iter_)
        return elapsed


class _PeerProcess:
    """A peer library's Python running ``deltaprop/_peer_minibatch.py --serve``.

    The script is copied to ``workdir`` (so that the modules beside it in deltaprop are not on
    that Python's path) and started there with BLAS, OpenMP and XLA on one thread. It inherits
    the CPU pinning of the calling thread (and is set to it again, explicitly); ``info`` is its
    ``hello`` (versions, missing libraries, the CPUs its threads may run on).
    """

    def __init__(self, python, workdir):
        self.python, self.workdir = python, workdir
        script = os.path.join(workdir, os.path.basename(_PEER_SCRIPT))
        shutil.copyfile(_PEER_SCRIPT, script)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
        env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_ONE_THREAD}".strip()
        self._stderr = open(os.path.join(workdir, "peer-stderr.txt"), "w+")
        try:
            self.proc = subprocess.Popen([python, script, "--serve"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._stderr, text=True,
                                         cwd=workdir, env=env)
        except OSError as exc:
            self._stderr.close()
            raise ValueError(f"peer python {python}: {exc.strerror or exc}") from None
        if hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.proc.pid, os.sched_getaffinity(0))
        try:
            self.info = self.request(op="hello")
            if not isinstance(self.info.get("versions"), dict):
                raise RuntimeError("it does not answer as deltaprop/_peer_minibatch.py does")
        except RuntimeError as exc:
            self.close()
            raise ValueError(f"peer python {python}: {exc}") from None

    def _stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.flush()
            self._stderr.seek(0)
            lines = [line.strip() for line in self._stderr.read().splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return "no message"

    def request(self, **req) -> dict:
        """Send one request, return the reply; RuntimeError if it failed or the process ended."""
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (OSError, ValueError):
            line = ""
        if not line:
            self.proc.wait()
            raise RuntimeError(f"it ended (status {self.proc.returncode}): {self._stderr_tail()}")
        try:
            reply = json.loads(line)
        except ValueError:
            raise RuntimeError(f"it answered {line.strip()[:80]!r}, not JSON") from None
        if not isinstance(reply, dict):
            raise RuntimeError(f"it answered {line.strip()[:80]!r}")
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write('{"op": "quit"}\n')
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdout.close()
        self._stderr.close()


class RemoteTask(_Timed):
    """The epochs of a deltaprop :class:`Task` (``level="epoch"``) in a peer library running in
    a :class:`_PeerProcess`, timed there and reported here, so :func:`compare` interleaves it
    with the tasks of this process (which waits, idle, while the peer runs).

    The peer gets the task's data (its samples in the task's visiting order) and deltaprop's
    initial weights for it, and runs one epoch from them at once (its warm-up); ``check`` compares
    the weights it ends with against ``MLP.batch_epoch`` (``sgd_epoch`` for batch 1) of the
    task's backend from the same weights: ``max_abs_diff``, ``max_abs_step`` (how far deltaprop's
    weights moved) and ``ok`` (the difference within :data:`CHECK_TOLERANCE` and under 1 % of
    the step).
    """

    def __init__(self, peer, library, task):
        from deltaprop import MLP

        sizes, hidden, output, loss = SHAPES[task.shape]
        B = task.batch_size
        self.name = f"{task.shape} {task.dtype} {library}" + (f" b={B}" if B > 1 else "")
        self.backend, self.dtype, self.shape, self.batch_size = library, task.dtype, task.shape, B
        self.peer = peer
        net = MLP(sizes, hidden, output, loss, backend=task.backend, dtype=task.dtype, random_state=task.seed)
        slug = self.name.replace(" ", "-").replace("=", "")
        data, out = (os.path.join(peer.workdir, f"{slug}-{what}.npz") for what in ("data", "check"))
        arrays = {"X": task.X[task.order], "T": task.T[task.order]}
        for l, (W, b) in enumerate(zip(net.coefs_, net.intercepts_)):
            arrays[f"W{l}"], arrays[f"b{l}"] = W, b
        np.savez(data, **arrays)
        reply = peer.request(op="setup", name=self.name, library=library, data=data, batch_size=B, lr=LR,
                             check_out=out)
        self.samples_per_epoch = int(reply["samples_per_epoch"])
        w0 = net.w.copy()
        if B == 1:
            net.sgd_epoch(task.X, task.T, LR, order=task.order)
        else:
            net.batch_epoch(task.X, task.T, LR, B, order=task.order)
        with np.load(out, allow_pickle=False) as f:
            theirs = np.concatenate([f[f"{k}{l}"].ravel() for l in range(net.n_layers) for k in "Wb"])
        ours = np.concatenate([p[l].ravel() for l in range(net.n_layers) for p in (net.coefs_, net.intercepts_)])
        diff = float(np.max(np.abs(theirs.astype(np.float64) - ours))) if theirs.shape == ours.shape else np.inf
        step = float(np.max(np.abs(net.w - w0)))
        self.check = {"max_abs_diff": diff, "max_abs_step": step, "against": task.backend,
                      "ok": bool(diff <= CHECK_TOLERANCE and diff <= 0.01 * step)}

    def run(self) -> float:
        return float(self.peer.request(op="run", name=self.name, epochs=self.epochs)["seconds"])


def run_minibatch(backends, repeats=5, min_time=0.2, peer_python=None, log=None, works=None,
                  peers=("sklearn", *REMOTE_PEERS)):
    """Mini-batch and per-sample epochs and ``MLPClassifier()`` fits, deltaprop against peers.

    Times every work of :data:`MINIBATCH_WORKS` (``works``: a subset of its keys) on each of
    ``backends`` but numpy (deltaprop) and the peers: the NumPy backend (when ``numpy`` is in
    ``backends``), scikit-learn (``"sklearn"`` in ``peers``; partial_fit epochs of
    ``MLPClassifier(solver="sgd", momentum=0, alpha=0, batch_size=B, tanh)``, or the default
    estimator) and, in ``peer_python`` (:class:`RemoteTask`), the other ``peers``: JAX and
    PyTorch. Everything is timed in the same ``repeats`` interleaved rounds (:func:`compare`);
    the caller pins the process (:func:`pin_to_one_cpu`) and the peers python inherits it.

    Returns ``(rows, skipped)``. One row per work and peer: ``work`` (key), ``label``, ``unit``
    (``"samples/s"``, or ``"s/fit"`` for the fits), ``deltaprop`` (the fastest backend's
    figure), ``deltaprop_backend``, ``deltaprop_backends`` (each one's figure), ``peer``,
    ``peer_label``, ``peer_value``, ``ratio`` (deltaprop's throughput / the peer's: > 1 is
    deltaprop faster; for fits the peer's time / deltaprop's), ``where`` (``"in-process"`` or
    ``"peers python"``), ``note``; the fits add ``n_iter`` per library, the peers python rows
    ``check`` (see :class:`RemoteTask`), ``peer_python``, ``peer_version`` and ``peer_cpus``
    (the CPUs its threads may run on, read after the timing). A peer not measured has
    ``peer_value`` None and says why in ``note``; ``skipped`` maps such peers to the reason.
    """
    _check_names(backends, (), ())
    works = list(MINIBATCH_WORKS) if works is None else list(works)
    for key in works:
        if key not in MINIBATCH_WORKS:
            raise ValueError(f"unknown work {key!r}; known: {', '.join(MINIBATCH_WORKS)}")
    ours = [b for b in backends if b != "numpy"] or list(backends)
    numpy_peer = "numpy" in backends and ours != ["numpy"]
    remote = [p for p in peers if p != "sklearn"]
    say = log or (lambda message: None)
    pin_threads(1)
    skipped, entries, info = {}, [], None  # entries: (work, role, name, task or None, note)
    with tempfile.TemporaryDirectory(prefix="deltaprop-bench-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of the 30-iteration fits and partial_fit
        proc = None
        try:
            if remote and peer_python:
                say(f"starting the peers python {peer_python}")
                proc = _PeerProcess(peer_python, tmp)
                for lib in remote:
                    if lib not in proc.info["versions"]:
                        reason = proc.info.get("missing", {}).get(lib, "not available")
                        skipped[lib] = (f"not installed in {peer_python}" if reason.startswith("ModuleNotFound")
                                        else f"does not import in {peer_python}: {reason}")
            else:
                skipped.update((lib, "not measured (pass --peer-python)") for lib in remote)
            for key in works:
                spec = MINIBATCH_WORKS[key]
                if spec["kind"] == "fit":
                    for name in ours + (["sklearn"] if "sklearn" in peers else []):
                        say(f"warming up {spec['label']}: {name}")
                        entries.append((key, "peer" if name == "sklearn" else "deltaprop", name,
                                        FitTask(name, spec["copies"]), None))
                    continue
                shape, B = spec["shape"], spec["batch_size"]
                first = None
                for name in ours + (["numpy"] if numpy_peer else []):
                    say(f"warming up {spec['label']}: {name}")
                    task = Task(name, MINIBATCH_DTYPE, shape, "epoch", B)
                    first = first or task
                    entries.append((key, "peer" if name == "numpy" and numpy_peer else "deltaprop", name, task, None))
                if "sklearn" in peers:
                    say(f"warming up {spec['label']}: sklearn")
                    entries.append((key, "peer", "sklearn", PeerTask("sklearn", MINIBATCH_DTYPE, shape, B), None))
                for lib in remote:
                    if lib in skipped:
                        entries.append((key, "peer", lib, None, skipped[lib]))
                        continue
                    say(f"warming up {spec['label']}: {lib} in {peer_python}")
                    try:
                        entries.append((key, "peer", lib, RemoteTask(proc, lib, first), None))
                    except RuntimeError as exc:
                        entries.append((key, "peer", lib, None, f"failed in {peer_python}: {exc}"))
                        if proc.proc.poll() is not None:
                            raise ValueError(f"peer python {peer_python}: {exc}") from None
            tasks = [e[3] for e in entries if e[3] is not None]
            say(f"timing {len(tasks)} configurations, {repeats} interleaved rounds")
            rates = compare(tasks, repeats=repeats, min_time=min_time)
            if proc is not None:
                info = proc.request(op="hello")  # the CPUs of its threads, now that they all run
        finally:
            if proc is not None:
                proc.close()
    return _minibatch_rows(works, entries, rates, peer_python, info), skipped


def _minibatch_rows(works, entries, rates, peer_python, info):
    rows = []
    for key in works:
        spec = MINIBATCH_WORKS[key]
        fit = spec["kind"] == "fit"
        here = [e for e in entries if e[0] == key]
        mine = {name: rates[task.name] for _, role, name, task, _ in here if role == "deltaprop"}
        best = max(mine, key=mine.get)

        def figure(rate):
            return 1.0 / rate if fit else float(rate)

        base = dict(work=key, label=spec["label"], unit="s/fit" if fit else "samples/s",
                    deltaprop_backend=best, deltaprop=figure(mine[best]),
                    deltaprop_backends={name: figure(r) for name, r in mine.items()})
        if fit:
            base["n_iter"] = {name: task.n_iter for _, _, name, task, _ in here}
        peers = [e for e in here if e[1] == "peer"] or [(key, "peer", None, None, "no peer measured")]
        for _, _, name, task, note in peers:
            row = dict(base, peer=name, peer_label=PEER_LABELS.get(name, name), peer_value=None, ratio=None,
                       where=None, note=note)
            if task is not None:
                row.update(peer_value=figure(rates[task.name]), ratio=mine[best] / rates[task.name],
                           where="in-process")
            if isinstance(task, RemoteTask):
                row.update(where="peers python", check=task.check, peer_python=peer_python,
                           peer_version=info["versions"].get(name), peer_cpus=info.get("cpus"))
                if not task.check["ok"]:
                    row["note"] = (f"CHECK FAILED: its first epoch ends {task.check['max_abs_diff']:.2g} away "
                                   f"from deltaprop's weights")
            if fit and len(set(base["n_iter"].values())) > 1:
                row["note"] = "iterations differ: " + ", ".join(f"{n} {i}" for n, i in base["n_iter"].items())
            rows.append(row)
    return rows


def _figure(value, unit) -> str:
    if unit == "s/fit":
        return f"{value:.3g} s"
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}/s"
    return f"{value:.3g}/s"


def minibatch_table(rows, repeats, info) -> str:
    """The rows of :func:`run_minibatch` as the text table ``deltaprop bench --minibatch`` prints.

    ``info`` is :func:`machine_info`'s with ``pinned_cpu`` added (None: not pinned).
    """
    cpu = info.get("pinned_cpu")
    on = f"CPU {cpu}, " if cpu is not None else ""
    lines = [f"mini-batch and per-sample SGD epochs, MLPClassifier() fits: deltaprop vs peers "
             f"(median of {repeats} interleaved rounds, one thread, {_pinning(info)})", _machine_line(info)]
    remote = [r for r in rows if r.get("peer_python")]
    if remote:
        versions = ", ".join(sorted({f"{r['peer_label'].split()[0]} {r['peer_version']}" for r in remote}))
        cpus = remote[-1].get("peer_cpus")
        lines.append(f"peers python {remote[-1]['peer_python']} ({versions}): its own process, every thread "
                     f"on CPU {', '.join(map(str, cpus)) if cpus else '?'}, BLAS/XLA one thread, timed in "
                     f"the same interleaved rounds")
        worst = max(r["check"]["max_abs_diff"] for r in remote)
        failed = [r for r in remote if not r["check"]["ok"]]
        lines.append(f"checked: each peers python epoch from deltaprop's initial weights ends where deltaprop's "
                     f"does, max |w diff| {worst:.1g} (float32)" if not failed else
                     f"WARNING: {len(failed)} peers python epoch(s) do NOT end where deltaprop's does (see notes)")
    head = f"{'work':<40} {'deltaprop':>17}  {'peer':<24} {'figure':>10} {'ratio':>7}  where"
    lines += [head, "-" * len(head)]
    last = None
    for row in rows:
        if row["work"] != last:
            dp = f"{row['deltaprop_backend']} {_figure(row['deltaprop'], row['unit'])}"
            lead = f"{row['label']:<40} {dp:>17}"
        else:
            lead = " " * 58
        last = row["work"]
        if row["peer_value"] is None:
            lines.append(f"{lead}  {row['peer_label'] or '':<24} {row['note']}")
            continue
        where = f"{on}{'this process' if row['where'] == 'in-process' else row['where']}"
        ratio = f"{row['ratio']:.0f}x" if row["ratio"] >= 10 else f"{row['ratio']:.2f}x"
        line = f"{lead}  {row['peer_label']:<24} {_figure(row['peer_value'], row['unit']):>10} {ratio:>7}  {where}"
        lines.append(line + (f"  ({row['note']})" if row.get("note") else ""))
    backends = sorted({b for row in rows for b in row["deltaprop_backends"]})
    lines.append(f"ratio: deltaprop's throughput / the peer's (MLPClassifier rows: the peer's fit time / "
                 f"deltaprop's); deltaprop: the fastest of {', '.join(backends)} (each one's figure: --json)")
    return "\n".join(lines)

if __name__ == "__main__":  # python -m deltaprop.bench [backend ...]: a JSON table of samples/s
    pin_threads(1)
    backends = sys.argv[1:] or ["numpy", "numba"]
    tasks = []
    for shape in SHAPES:
        for dtype in ("float32", "float64"):
            tasks += [Task(b, dtype, shape) for b in backends]
            tasks += [StreamProbe(shape, dtype, kind) for kind in ("read", "rmw")]
    tasks += [Task(b, d, "784-128-10", "epoch", 32) for b in backends for d in ("float32", "float64")]
    print(json.dumps(compare(tasks), indent=1))
