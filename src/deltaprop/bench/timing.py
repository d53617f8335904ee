r"""Timed work and how it is timed: samples per second, the median of interleaved rounds.

One question: how many samples per second does on-line gradient descent,
:math:`w \leftarrow w - \eta \nabla E_n(w)` (Bishop §5.2.4, eq. 5.43), process on a given backend, dtype
and network shape? :class:`Task` times :class:`deltaprop.MLP`, :class:`PeerTask` the same work
in scikit-learn or PyTorch, :class:`StreamProbe` a memory-bound pass over a buffer the size of
the weights, :class:`ProductsTask` the matrix products of one mini-batch alone (the arithmetic
ceiling of a mini-batch epoch, :mod:`~deltaprop.bench.ceiling`).

Method (:func:`compare`): single thread (BLAS and OpenMP pinned to 1 by
:func:`~deltaprop.bench.pinning.pin_threads`), one warm-up call when a task is built (JIT
compilation or cache load stays out of the figure), a calibration that sizes each timed call to
at least ``max(min_time, MIN_CALL_SECONDS)`` seconds, then ``repeats`` rounds in which every
task is timed once (interleaved, so a drift of the machine's speed hits all of them alike); the
figure is the median over rounds.

Roofline: per-sample SGD must at least read every weight for the forward sum and
read-modify-write it for δ and the update (three passes); fusing the first layer's update with
the next sample's forward sum leaves two (one read-modify-write). :class:`StreamProbe` streams
a buffer as large as the weights, reading it (``"read"``) or reading and writing it in place
(``"rmw"``), so its rates bound per-sample SGD in samples/s: ``1 / (1/read + 1/rmw)`` and ``rmw``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

from .ceiling import batch_products, run_products
from .data import ETA, SHAPES, make_data
from .pinning import pin_threads

__all__ = ["MIN_CALL_SECONDS", "Timed", "Task", "StreamProbe", "ProductsTask", "PeerTask", "compare", "measure"]

#: Every timed call runs at least this long, whatever ``min_time`` (0 in a quick run): a call to
#: ``MLP.fit`` has a fixed cost (validation, buffers, the shuffle) that one epoch of a small data
#: set (50 samples of 1-3-1) does not outweigh, and the figure must be the rate of the work.
MIN_CALL_SECONDS = 0.01


class Timed:
    """What :func:`compare` times: :meth:`run` processes :attr:`samples` samples.

    Attributes
    ----------
    name : str
        Unique among the tasks timed together.
    epochs : int
        Epochs one :meth:`run` processes (grown by :meth:`calibrate`).
    samples_per_epoch : int
        Samples in one epoch.
    """

    name = ""
    epochs = 1
    samples_per_epoch = 1

    @property
    def samples(self) -> int:
        """The samples one :meth:`run` processes, ``epochs * samples_per_epoch``."""
        return self.epochs * self.samples_per_epoch

    def run(self) -> float:
        """Process :attr:`samples` samples once.

        Returns
        -------
        float
            The elapsed seconds.
        """
        raise NotImplementedError

    def calibrate(self, min_time: float) -> None:
        """Grow :attr:`epochs` until one :meth:`run` takes at least ``min_time`` seconds.

        Parameters
        ----------
        min_time : float
            Seconds; 0 runs nothing and keeps :attr:`epochs`.
        """
        while min_time > 0:
            elapsed = self.run()
            if elapsed >= min_time:
                return
            self.epochs = max(self.epochs + 1, int(self.epochs * min(1.2 * min_time / max(elapsed, 1e-6), 10)))


class Task(Timed):
    """One configuration of :class:`deltaprop.MLP` (backend, dtype, shape, level, batch size).

    The data are :func:`~deltaprop.bench.data.make_data`'s; building the task runs it once (the
    warm-up).

    Parameters
    ----------
    backend : str
        A deltaprop backend (``"numpy"``, ``"numba"``, ``"cython"``).
    dtype : {"float32", "float64"}
    shape : str
        A key of :data:`~deltaprop.bench.data.SHAPES`.
    level : {"fit", "epoch"}, default "fit"
        ``"fit"`` times :meth:`MLP.fit` (shuffled epochs, several per compiled call for small
        data); ``"epoch"`` times :meth:`MLP.sgd_epoch` (:meth:`MLP.batch_epoch` for
        ``batch_size`` > 1) over a fixed random order, :attr:`order`.
    batch_size : int, default 1
    seed : int, default 0
        Seeds the data, the initial weights and the order.
    n_jobs : int, default 1
        ``MLP.fit``'s threads (``level="fit"``).
    parallel : {"average", "hogwild"}, default "average"
        How ``n_jobs`` > 1 threads share the weights.
    """

    def __init__(self, backend: str, dtype: str, shape: str, level: str = "fit", batch_size: int = 1,
                 seed: int = 0, n_jobs: int = 1, parallel: str = "average") -> None:
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
        """Process :attr:`samples` samples once; return the elapsed seconds."""
        net, X, T = self.net, self.X, self.T
        t0 = time.perf_counter()
        if self.level == "fit":
            net.fit(X, T, epochs=self.epochs, lr=ETA, batch_size=self.batch_size, n_jobs=self.n_jobs,
                    parallel=self.parallel)
        else:
            for _ in range(self.epochs):
                if self.batch_size == 1:
                    net.sgd_epoch(X, T, ETA, order=self.order)
                else:
                    net.batch_epoch(X, T, ETA, self.batch_size, order=self.order)
        return time.perf_counter() - t0


class StreamProbe(Timed):
    """A memory-bound probe: one "sample" is one pass over a buffer as large as the weights.

    Each pass is one NumPy call, so the probe measures bandwidth only where a pass takes well
    over a microsecond (the 784-input shapes); for 1-3-1 and 64-32-10 it measures call overhead.

    Parameters
    ----------
    shape : str
        A key of :data:`~deltaprop.bench.data.SHAPES`: the buffer holds as many elements as
        its weight matrices.
    dtype : {"float32", "float64"}, default "float32"
    kind : {"read", "rmw"}, default "rmw"
        Read the buffer (``max``), or read and write it in place (``w -= c``).
    """

    def __init__(self, shape: str, dtype: str = "float32", kind: str = "rmw") -> None:
        sizes = SHAPES[shape][0]
        n_weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.name = f"{shape} {dtype} bound-{kind}"
        self.kind = kind
        self.buf = np.zeros(n_weights, dtype=dtype)
        self.c = self.buf.dtype.type(1e-30)
        self.run()

    def run(self) -> float:
        """Make :attr:`epochs` passes over the buffer; return the elapsed seconds."""
        buf, c = self.buf, self.c
        t0 = time.perf_counter()
        if self.kind == "read":
            for _ in range(self.epochs):
                buf.max()
        else:
            for _ in range(self.epochs):
                np.subtract(buf, c, out=buf)
        return time.perf_counter() - t0


class ProductsTask(Timed):
    """The matrix products of one mini-batch alone, through NumPy's BLAS: a mini-batch epoch's ceiling.

    The products :func:`~deltaprop.bench.ceiling.batch_products` builds for the shape's layer
    sizes; one "epoch" is one batch, so :func:`compare` gives the ceiling in samples/s, timed in
    the same rounds as the epochs it bounds. It measures the machine's BLAS, not deltaprop.

    Parameters
    ----------
    dtype : {"float32", "float64"}
    shape : str
        A key of :data:`~deltaprop.bench.data.SHAPES`.
    batch_size : int
    """

    def __init__(self, dtype: str, shape: str, batch_size: int) -> None:
        self.name = f"{shape} {dtype} b={batch_size} products"
        self.products = batch_products(SHAPES[shape][0], batch_size, dtype)
        self.samples_per_epoch = batch_size
        self.run()  # warm-up

    def run(self) -> float:
        """Compute :attr:`epochs` batches of products; return the elapsed seconds."""
        t0 = time.perf_counter()
        run_products(self.products, self.epochs)
        return time.perf_counter() - t0


class PeerTask(Timed):
    """Per-sample (scikit-learn: also mini-batch) SGD in a peer library, timed like :class:`Task`.

    Same data, shape and η as :class:`Task`.

    Parameters
    ----------
    library : {"sklearn", "torch"}
        ``"sklearn"``: ``MLPClassifier``/``MLPRegressor`` with ``solver="sgd",
        batch_size=batch_size``, no momentum, no L2, one ``partial_fit`` per epoch.
        ``"torch"``: the loop a PyTorch user writes (``nn.Sequential``, ``optim.SGD``, one
        sample per step).
    dtype : {"float32", "float64"}
    shape : str
        A key of :data:`~deltaprop.bench.data.SHAPES`.
    batch_size : int, default 1
        Only scikit-learn's peer takes batches.

    Raises
    ------
    ImportError
        If the library is not installed.
    ValueError
        If ``batch_size`` > 1 for the torch peer.
    """

    def __init__(self, library: str, dtype: str, shape: str, batch_size: int = 1) -> None:
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
                           batch_size=batch_size, learning_rate_init=ETA, momentum=0.0, alpha=0.0,
                           shuffle=False, random_state=0)
            self.y = self.T.argmax(axis=1) if classify else self.T[:, 0]
            self.fit_args = {"classes": np.arange(sizes[-1])} if classify else {}
            self._epoch = lambda: self.est.partial_fit(self.X, self.y, **self.fit_args)
        else:
            self._epoch = self._torch_epoch(sizes, dtype, classify)
        self.run()  # warm-up

    def _torch_epoch(self, sizes: list[int], dtype: str, classify: bool) -> Callable[[], None]:
        import torch

        torch.set_num_threads(1)
        layers = []
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1], strict=True):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.Tanh()]
        layers.append(torch.nn.Linear(sizes[-2], sizes[-1]))
        model = torch.nn.Sequential(*layers).to(getattr(torch, dtype))
        opt = torch.optim.SGD(model.parameters(), lr=ETA)
        loss = torch.nn.CrossEntropyLoss(reduction="sum") if classify else torch.nn.MSELoss(reduction="sum")
        X = torch.as_tensor(self.X)
        T = torch.as_tensor(self.T.argmax(axis=1)) if classify else torch.as_tensor(self.T)

        def epoch() -> None:
            for i in range(X.shape[0]):
                opt.zero_grad()
                loss(model(X[i : i + 1]), T[i : i + 1]).backward()
                opt.step()

        return epoch

    def run(self) -> float:
        """Run :attr:`epochs` epochs of the peer; return the elapsed seconds."""
        t0 = time.perf_counter()
        for _ in range(self.epochs):
            self._epoch()
        return time.perf_counter() - t0


def compare(tasks: Sequence[Timed], repeats: int = 5, min_time: float = 0.2) -> dict[str, float]:
    """Median samples/s of each task, timed in ``repeats`` interleaved rounds.

    Parameters
    ----------
    tasks : sequence of Timed
        Each with a unique ``name``.
    repeats : int, default 5
        Rounds; each round times every task once.
    min_time : float, default 0.2
        Seconds each timed call lasts at least (never less than :data:`MIN_CALL_SECONDS`).

    Returns
    -------
    dict
        ``task.name`` -> the median over rounds of ``samples / seconds``.
    """
    pin_threads(1)
    for task in tasks:
        task.calibrate(max(min_time, MIN_CALL_SECONDS))
    rates: dict[str, list[float]] = {task.name: [] for task in tasks}
    for _ in range(repeats):
        for task in tasks:
            rates[task.name].append(task.samples / task.run())
    return {name: statistics.median(r) for name, r in rates.items()}


def measure(backend: str, dtype: str, shape: str, level: str = "fit", batch_size: int = 1, repeats: int = 5,
            min_time: float = 0.2) -> float:
    """Median samples/s of one :class:`Task` (per-sample SGD for ``batch_size=1``).

    Parameters
    ----------
    backend, dtype, shape, level, batch_size
        As for :class:`Task`.
    repeats, min_time
        As for :func:`compare`.

    Returns
    -------
    float
        Samples per second.
    """
    pin_threads(1)
    task = Task(backend, dtype, shape, level, batch_size)
    return compare([task], repeats, min_time)[task.name]
