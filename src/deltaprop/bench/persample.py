"""The per-sample table of ``deltaprop bench``: samples/s of every backend and peer, and its text.

:func:`run` times per-sample SGD (``MLP.fit``, batch size 1) of every (shape, dtype, backend)
and of the peers scikit-learn and PyTorch on the same work; :func:`table` prints the rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .data import SHAPES
from .machine import machine_line, pinning_words
from .pinning import pin_threads
from .timing import PeerTask, Task, compare

__all__ = ["check_names", "run", "table"]


def check_names(backends: Iterable[str], dtypes: Iterable[str], shapes: Iterable[str]) -> None:
    """Check that every backend is available here and every dtype and shape is a standard one.

    Parameters
    ----------
    backends, dtypes, shapes : iterable of str

    Raises
    ------
    ValueError
        Naming the first unknown name and the allowed ones.
    """
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


def run(backends: Sequence[str], dtypes: Sequence[str], shapes: Sequence[str], peers: Sequence[str] = (),
        repeats: int = 5, min_time: float = 0.2, log: Callable[[str], None] | None = None, jobs: int = 1,
        parallel: str = "average") -> tuple[list[dict[str, Any]], list[str]]:
    """Median samples/s of every (shape, dtype, backend or peer), timed in interleaved rounds.

    Parameters
    ----------
    backends : sequence of str
        deltaprop backends, each available here.
    dtypes : sequence of {"float32", "float64"}
    shapes : sequence of str
        Keys of :data:`~deltaprop.bench.data.SHAPES`.
    peers : sequence of {"sklearn", "torch"}, default ()
        Peers timed on the same work (:class:`~deltaprop.bench.timing.PeerTask`); one not
        installed is skipped.
    repeats, min_time
        As for :func:`~deltaprop.bench.timing.compare`.
    log : callable or None, default None
        ``log(message)`` reports progress.
    jobs : int, default 1
        With ``jobs`` > 1 every compiled backend is also timed on that many threads
        (``MLP.fit``'s ``n_jobs``).
    parallel : {"average", "hogwild"}, default "average"
        How those threads share the weights.

    Returns
    -------
    rows : list of dict
        One per configuration: ``shape``, ``dtype``, ``backend``, ``samples_per_second`` and
        ``vs_numpy``, ``vs_sklearn``, ``vs_torch`` (ratios to those rows of the same shape and
        dtype, where measured). A threaded row's backend reads e.g. ``cython x2``; it adds
        ``n_jobs``, ``parallel`` and ``vs_one_thread`` (the ratio to the same backend on one
        thread).
    skipped : list of str
        The peers not installed, sorted.

    Raises
    ------
    ValueError
        If a backend, dtype or shape is unknown (:func:`check_names`).
    """
    check_names(backends, dtypes, shapes)
    pin_threads(1)
    tasks: list[Task | PeerTask] = []
    skipped = []
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
    rows: list[dict[str, Any]] = [
        dict(shape=t.shape, dtype=t.dtype, backend=t.backend, samples_per_second=float(rates[t.name]))
        for t in tasks]
    for row, t in zip(rows, tasks, strict=True):
        if isinstance(t, Task) and t.n_jobs > 1:
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


def table(rows: Sequence[dict[str, Any]], repeats: int, info: dict[str, Any], skipped: Sequence[str] = ()) -> str:
    """The rows of :func:`run` as the text table ``deltaprop bench`` prints.

    Parameters
    ----------
    rows : sequence of dict
        :func:`run`'s rows.
    repeats : int
        The rounds they are the median of.
    info : dict
        :func:`~deltaprop.bench.machine.machine_info`'s, with ``pinned_cpu`` (None: not
        pinned) added.
    skipped : sequence of str, default ()
        Peers not installed.

    Returns
    -------
    str
        The heading (method, machine, thread pools), the skipped peers, and one line per row.
    """
    refs = [r for r in ("numpy", "sklearn", "torch", "one_thread") if any(f"vs_{r}" in row for row in rows)]
    jobs = sorted({row["n_jobs"] for row in rows if "n_jobs" in row})
    threads = "one thread" + "".join(f" and {n} threads" for n in jobs)
    lines = [f"per-sample SGD throughput, samples/s (median of {repeats} interleaved rounds, {threads}, "
             f"{pinning_words(info)})", machine_line(info)]
    if skipped:
        lines.append(f"not installed (skipped): {', '.join(skipped)}")
    head = f"{'shape':<18} {'dtype':<8} {'backend':<9} {'samples/s':>12}" + "".join(f" {'x ' + r:>12}" for r in refs)
    lines += [head, "-" * len(head)]
    for row in rows:
        lines.append(f"{row['shape']:<18} {row['dtype']:<8} {row['backend']:<9} {row['samples_per_second']:>12,.0f}"
                     + "".join(f" {row[f'vs_{r}']:>12.2f}" if f"vs_{r}" in row else f" {'':>12}" for r in refs))
    return "\n".join(lines)
