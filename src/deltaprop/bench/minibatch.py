"""The mini-batch table of ``deltaprop bench --minibatch``: deltaprop against its peers.

Mini-batch epochs (``MLP.batch_epoch`` at batch 32 and 200), per-sample epochs
(``MLP.sgd_epoch``) and ``MLPClassifier()`` fits with scikit-learn's defaults, timed against the
NumPy backend, scikit-learn and, in a peers python (:mod:`deltaprop.bench.remote`), JAX and
PyTorch, all in the same interleaved rounds (:func:`~deltaprop.bench.timing.compare`). Beside
each mini-batch epoch, in the same rounds, its arithmetic ceiling: the batch's matrix products
alone through NumPy's BLAS (:class:`~deltaprop.bench.timing.ProductsTask`).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from .data import digits_data
from .machine import machine_line, pinning_words
from .persample import check_names
from .pinning import pin_threads
from .remote import PeerProcess, RemoteTask
from .timing import PeerTask, ProductsTask, Task, Timed, compare

__all__ = ["MINIBATCH_WORKS", "MINIBATCH_DTYPE", "FIT_ITERATIONS", "REMOTE_PEERS", "PEER_LABELS", "FitTask",
           "run_minibatch", "minibatch_table"]

#: The work ``deltaprop bench --minibatch`` times, in table order: key -> what it is.
MINIBATCH_WORKS: dict[str, dict[str, Any]] = {
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
#: Peers timed in the ``--peer-python`` process (libraries of the epoch server; its third,
#: ``"reference"``, a plain NumPy epoch, is a test double).
REMOTE_PEERS = ("jax", "torch")
PEER_LABELS = {"numpy": "NumPy backend", "sklearn": "scikit-learn", "jax": "JAX jit(lax.scan)",
               "torch": "PyTorch loop", "reference": "NumPy loop (peer script)"}


class FitTask(Timed):
    """``MLPClassifier(max_iter=30, random_state=0)`` with scikit-learn's other defaults, fitted to digits.

    The defaults: adam, batch min(200, n), relu, 100 hidden units, alpha 1e-4, float64. One
    "sample" is one whole fit, so :func:`~deltaprop.bench.timing.compare` gives fits per second.

    Parameters
    ----------
    library : str
        A deltaprop backend (deltaprop's estimator), or ``"sklearn"`` (scikit-learn's).
    copies : int, default 1
        The data set, :func:`~deltaprop.bench.data.digits_data` ``(copies)``.
    max_iter : int, default FIT_ITERATIONS

    Attributes
    ----------
    n_iter : int or None
        The iterations the last fit ran.
    """

    def __init__(self, library: str, copies: int = 1, max_iter: int = FIT_ITERATIONS) -> None:
        self.name = f"MLPClassifier() digits x{copies} {library}"
        self.backend, self.max_iter = library, max_iter
        self.n_iter: int | None = None
        self.X, self.y = digits_data(copies)
        if library == "sklearn":
            from sklearn.neural_network import MLPClassifier

            self.make: Callable[..., Any] = lambda **kw: MLPClassifier(random_state=0, **kw)
        else:
            from deltaprop import MLPClassifier as DeltapropClassifier

            self.make = lambda **kw: DeltapropClassifier(random_state=0, backend=library, **kw)
        self.make(max_iter=1).fit(self.X[:100], self.y[:100])  # warm-up: JIT compile or cache load, BLAS

    def run(self) -> float:
        """Fit :attr:`epochs` times; return the elapsed seconds."""
        t0 = time.perf_counter()
        for _ in range(self.epochs):
            est = self.make(max_iter=self.max_iter).fit(self.X, self.y)
        elapsed = time.perf_counter() - t0
        self.n_iter = int(est.n_iter_)
        return elapsed


#: One timed (or skipped) entry: (work key, "deltaprop", "peer" or "ceiling", backend or peer name (None: no
#: peer, or the ceiling), task (a Timed) or None, note or None)
_Entry = tuple[str, str, str | None, Any, str | None]


def run_minibatch(backends: Sequence[str], repeats: int = 5, min_time: float = 0.2, peer_python: str | None = None,
                  log: Callable[[str], None] | None = None, works: Sequence[str] | None = None,
                  peers: Sequence[str] = ("sklearn", *REMOTE_PEERS)) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Mini-batch and per-sample epochs and ``MLPClassifier()`` fits, deltaprop against peers.

    Times every work of :data:`MINIBATCH_WORKS` on each of ``backends`` but numpy (deltaprop)
    and on the peers: the NumPy backend (when ``numpy`` is in ``backends``), scikit-learn
    (``"sklearn"`` in ``peers``: partial_fit epochs of ``MLPClassifier(solver="sgd",
    momentum=0, alpha=0, batch_size=B, tanh)``, or the default estimator) and, in
    ``peer_python`` (:class:`~deltaprop.bench.remote.RemoteTask`), the other ``peers``: JAX and
    PyTorch. Each mini-batch epoch (``batch_size`` > 1) has its arithmetic ceiling beside it:
    the matrix products of one batch of its shape and dtype alone, through NumPy's BLAS
    (:class:`~deltaprop.bench.timing.ProductsTask`, :mod:`~deltaprop.bench.ceiling`).
    Everything is timed in the same ``repeats`` interleaved rounds; the caller pins the process
    (:func:`~deltaprop.bench.pinning.pin_to_one_cpu`) and the peers python inherits it.

    Parameters
    ----------
    backends : sequence of str
        deltaprop backends, each available here.
    repeats, min_time
        As for :func:`~deltaprop.bench.timing.compare`.
    peer_python : str or None, default None
        The Python that runs the remote peers; None: they are not measured.
    log : callable or None, default None
        ``log(message)`` reports progress.
    works : sequence of str or None, default None
        Keys of :data:`MINIBATCH_WORKS` (None: all of them).
    peers : sequence of str, default ("sklearn", "jax", "torch")
        ``"sklearn"`` runs in this process, the others in ``peer_python``.

    Returns
    -------
    rows : list of dict
        One per work and peer: ``work`` (key), ``label``, ``unit`` (``"samples/s"``, or
        ``"s/fit"`` for the fits), ``deltaprop`` (the fastest backend's figure),
        ``deltaprop_backend``, ``deltaprop_backends`` (each one's figure), ``peer``,
        ``peer_label``, ``peer_value``, ``ratio`` (deltaprop's throughput / the peer's: > 1 is
        deltaprop faster; for fits the peer's time / deltaprop's), ``ceiling`` (the mini-batch
        epochs' arithmetic ceiling, samples/s), ``of_ceiling`` (``deltaprop`` / ``ceiling``;
        both None for the fits and the per-sample epochs), ``where`` (``"in-process"`` or
        ``"peers python"``), ``note``. The fits add ``n_iter`` per library; the peers python
        rows ``check`` (see :class:`~deltaprop.bench.remote.RemoteTask`), ``peer_python``,
        ``peer_version`` and ``peer_cpus`` (the CPUs its threads may run on, read after the
        timing). A peer not measured has ``peer_value`` None and says why in ``note``.
    skipped : dict
        Peer -> why it was not measured.

    Raises
    ------
    ValueError
        If a backend or work is unknown, or the peers python does not run.
    """
    check_names(backends, (), ())
    works = list(MINIBATCH_WORKS) if works is None else list(works)
    for key in works:
        if key not in MINIBATCH_WORKS:
            raise ValueError(f"unknown work {key!r}; known: {', '.join(MINIBATCH_WORKS)}")
    ours = [b for b in backends if b != "numpy"] or list(backends)
    numpy_peer = "numpy" in backends and ours != ["numpy"]
    remote = [p for p in peers if p != "sklearn"]
    say = log or (lambda message: None)
    pin_threads(1)
    skipped: dict[str, str] = {}
    entries: list[_Entry] = []
    info: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="deltaprop-bench-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of the 30-iteration fits and partial_fit
        proc: PeerProcess | None = None
        try:
            if remote and peer_python:
                say(f"starting the peers python {peer_python}")
                proc = PeerProcess(peer_python, tmp)
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
                first: Task | None = None
                for name in ours + (["numpy"] if numpy_peer else []):
                    say(f"warming up {spec['label']}: {name}")
                    task = Task(name, MINIBATCH_DTYPE, shape, "epoch", B)
                    first = first or task
                    entries.append((key, "peer" if name == "numpy" and numpy_peer else "deltaprop", name, task, None))
                if B > 1:
                    say(f"warming up {spec['label']}: its matrix products alone (the ceiling)")
                    entries.append((key, "ceiling", None, ProductsTask(MINIBATCH_DTYPE, shape, B), None))
                if "sklearn" in peers:
                    say(f"warming up {spec['label']}: sklearn")
                    entries.append((key, "peer", "sklearn", PeerTask("sklearn", MINIBATCH_DTYPE, shape, B), None))
                for lib in remote:
                    if lib in skipped:
                        entries.append((key, "peer", lib, None, skipped[lib]))
                        continue
                    say(f"warming up {spec['label']}: {lib} in {peer_python}")
                    # a library not skipped runs in the peers python; ours has a backend at least
                    assert proc is not None and first is not None
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


def _minibatch_rows(works: list[str], entries: list[_Entry], rates: dict[str, float], peer_python: str | None,
                    info: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for key in works:
        spec = MINIBATCH_WORKS[key]
        fit = spec["kind"] == "fit"
        here = [e for e in entries if e[0] == key]
        mine = {name: rates[task.name] for _, role, name, task, _ in here if role == "deltaprop"}
        best = max(mine, key=mine.__getitem__)

        def figure(rate: float, fit: bool = fit) -> float:
            return 1.0 / rate if fit else float(rate)

        base: dict[str, Any] = dict(work=key, label=spec["label"], unit="s/fit" if fit else "samples/s",
                    deltaprop_backend=best, deltaprop=figure(mine[best]),
                    deltaprop_backends={name: figure(r) for name, r in mine.items()}, ceiling=None, of_ceiling=None)
        for _, role, _, task, _ in here:
            if role == "ceiling":
                base.update(ceiling=float(rates[task.name]), of_ceiling=mine[best] / rates[task.name])
        if fit:
            base["n_iter"] = {name: task.n_iter for _, _, name, task, _ in here}
        peers: list[_Entry] = [e for e in here if e[1] == "peer"] or [(key, "peer", None, None, "no peer measured")]
        for _, _, name, task, note in peers:
            label = None if name is None else PEER_LABELS.get(name, name)
            row = dict(base, peer=name, peer_label=label, peer_value=None, ratio=None, where=None, note=note)
            if task is not None:
                row.update(peer_value=figure(rates[task.name]), ratio=mine[best] / rates[task.name],
                           where="in-process")
            if isinstance(task, RemoteTask):
                assert info is not None  # the peers python's answer, read after the timing
                row.update(where="peers python", check=task.check, peer_python=peer_python,
                           peer_version=info["versions"].get(name), peer_cpus=info.get("cpus"))
                if not task.check["ok"]:
                    row["note"] = (f"CHECK FAILED: its first epoch ends {task.check['max_abs_diff']:.2g} away "
                                   f"from deltaprop's weights")
            if fit and len(set(base["n_iter"].values())) > 1:
                row["note"] = "iterations differ: " + ", ".join(f"{n} {i}" for n, i in base["n_iter"].items())
            rows.append(row)
    return rows


def _figure(value: float, unit: str) -> str:
    if unit == "s/fit":
        return f"{value:.3g} s"
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}/s"
    return f"{value:.3g}/s"


def minibatch_table(rows: Sequence[dict[str, Any]], repeats: int, info: dict[str, Any]) -> str:
    """The rows of :func:`run_minibatch` as the text table ``deltaprop bench --minibatch`` prints.

    Parameters
    ----------
    rows : sequence of dict
        :func:`run_minibatch`'s rows.
    repeats : int
        The rounds they are the median of.
    info : dict
        :func:`~deltaprop.bench.machine.machine_info`'s with ``pinned_cpu`` added (None: not
        pinned).

    Returns
    -------
    str
        The heading (method, machine, the peers python and its check), one line per row, and
        what the ceiling and the ratio mean.
    """
    cpu = info.get("pinned_cpu")
    on = f"CPU {cpu}, " if cpu is not None else ""
    lines = [f"mini-batch and per-sample SGD epochs, MLPClassifier() fits: deltaprop vs peers "
             f"(median of {repeats} interleaved rounds, one thread, {pinning_words(info)})", machine_line(info)]
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
    head = f"{'work':<40} {'deltaprop':>17} {'of ceiling':>15}  {'peer':<24} {'figure':>10} {'ratio':>7}  where"
    lines += [head, "-" * len(head)]
    last = None
    for row in rows:
        if row["work"] != last:
            dp = f"{row['deltaprop_backend']} {_figure(row['deltaprop'], row['unit'])}"
            ceiling = ("" if row.get("ceiling") is None else
                       f"{row['of_ceiling']:.2f} of {_figure(row['ceiling'], row['unit'])}")
            lead = f"{row['label']:<40} {dp:>17} {ceiling:>15}"
        else:
            lead = " " * 74
        last = row["work"]
        if row["peer_value"] is None:
            lines.append(f"{lead}  {row['peer_label'] or '':<24} {row['note']}")
            continue
        where = f"{on}{'this process' if row['where'] == 'in-process' else row['where']}"
        ratio = f"{row['ratio']:.0f}x" if row["ratio"] >= 10 else f"{row['ratio']:.2f}x"
        line = f"{lead}  {row['peer_label']:<24} {_figure(row['peer_value'], row['unit']):>10} {ratio:>7}  {where}"
        lines.append(line + (f"  ({row['note']})" if row.get("note") else ""))
    backends = sorted({b for row in rows for b in row["deltaprop_backends"]})
    if any(row.get("ceiling") is not None for row in rows):
        lines.append("of ceiling: deltaprop's throughput / the ceiling, the batch's matrix products alone through "
                     "NumPy's BLAS (forward, gradient, δ-recursion), timed in the same rounds")
    lines.append(f"ratio: deltaprop's throughput / the peer's (MLPClassifier rows: the peer's fit time / "
                 f"deltaprop's); deltaprop: the fastest of {', '.join(backends)} (each one's figure: --json)")
    return "\n".join(lines)
