"""The peer side of ``deltaprop bench --minibatch``: JAX and PyTorch epochs, served in their own Python.

A script for a Python without deltaprop: it imports only the standard library, NumPy and the
peer library, and loads the benchmarks' data definitions (``deltaprop/bench/data.py``: the
problem file's layout) by their file path, so it runs in any environment that has those, e.g. a
"peers" venv made with ``python3 -m venv peers && peers/bin/pip install jax numpy``.
``deltaprop.bench.remote.PeerProcess`` starts ``PYTHON epoch_server.py --serve`` where it lies
(this folder holds only the peers' scripts, so nothing of deltaprop is on that Python's path),
pinned to the CPU the benchmark runs on, and talks to it in JSON lines on stdin / stdout:

``{"op": "hello"}``
    -> versions, which libraries import (or why not), and the CPUs its threads may run on.
``{"op": "setup", "name": N, "library": "jax" | "torch" | "reference", "data": PATH.npz,
"batch_size": B, "lr": ETA, "check_out": PATH.npz}``
    loads X (n, D), T (n, K) one-hot, the visiting order (``data.load_order``) and the initial
    weights ``W0, b0, W1, b1, ...`` (``W_l`` of shape (n_in, n_out), as ``x @ W + b``) from
    PATH.npz (``data.load_problem``),
    builds one epoch of gradient descent and runs it once from those weights (the warm-up: JIT
    compilation), writing the weights it ends with to ``check_out`` (``data.save_layers``) so
    that the caller can compare them with deltaprop's epoch from the same weights
    -> ``{"samples_per_epoch": n}``.
``{"op": "run", "name": N, "epochs": E}``
    -> ``{"seconds": s}``: E more epochs, timed here (``time.perf_counter``, JAX's results
    waited for), the weights carried on from epoch to epoch.
``{"op": "quit"}``

Every reply is one JSON line; a failed request answers ``{"error": "..."}``. The algorithm is
deltaprop's ``MLP.batch_epoch`` (``MLP.sgd_epoch`` for B = 1): tanh hidden layers, a softmax
output with cross-entropy, the samples visited in the order given, and for each batch B of
consecutive samples of that order (the last one possibly shorter)
:math:`w \\leftarrow w - \\frac{\\eta}{|B|} \\sum_{n \\in B} \\nabla E_n(w)`. Every epoch
gathers its samples' rows from X in that order, as deltaprop's epochs do (a shuffled epoch).

- ``jax``: ``jax.jit`` of the epoch: the rows taken in order (``jnp.take``), then ``lax.scan``
  over the whole batches (one more step for a shorter last batch), ``jax.grad`` of the
  batch-mean loss, float32 as given; one batch of one sample per step for B = 1 (a sample is a
  vector). XLA is held to one thread (``XLA_FLAGS``, set before jax is imported unless already
  set).
- ``torch``: the loop a PyTorch user writes: ``nn.Sequential`` of ``Linear`` and ``Tanh``,
  ``CrossEntropyLoss`` (batch mean), ``optim.SGD``, each batch's rows indexed by its part of
  the order; ``torch.set_num_threads(1)``.
- ``reference``: the same epoch in plain NumPy (a test double that needs no peer library).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from types import ModuleType
from typing import IO, Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

LIBRARIES = ("jax", "torch", "reference")

#: the weights ``[(W_0, b_0), (W_1, b_1), ...]``, ``W_l`` of shape (n_in, n_out)
Layers = list[tuple[np.ndarray, np.ndarray]]


def _load_data_module() -> ModuleType:
    """``deltaprop/bench/data.py``, the folder above this one, loaded by its file path."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data.py")
    spec = importlib.util.spec_from_file_location("deltaprop_bench_data", path)
    assert spec is not None and spec.loader is not None, path  # a .py file's path always has a spec
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sys.dont_write_bytecode = True  # the peers python writes nothing into deltaprop's folders
data = _load_data_module()


def _splits(n: int, B: int) -> tuple[int, int]:
    """(whole batches, rows of the shorter last batch)."""
    return n // B, n - (n // B) * B


class JaxEpochs:
    """Epochs in JAX: ``jax.jit`` of the epoch: the rows gathered in order, ``lax.scan`` over the
    whole batches, then the shorter last one.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    T : ndarray of shape (n, K)
        One-hot targets.
    layers : list of (W, b)
        The initial weights.
    B : int
        Samples per batch.
    lr : float
        The learning rate η.
    order : ndarray of int, shape (m,)
        The samples an epoch visits, in order.
    """

    def __init__(self, X: np.ndarray, T: np.ndarray, layers: Layers, B: int, lr: float, order: np.ndarray) -> None:
        import jax
        import jax.numpy as jnp
        from jax import lax

        self.jax = jax
        n, whole = order.shape[0], _splits(order.shape[0], B)[0]

        def loss(params: Any, x: Any, t: Any) -> Any:  # the mean over the batch (one sample: x is a vector) of E_n
            h = x
            for W, b in params[:-1]:
                h = jnp.tanh(h @ W + b)
            W, b = params[-1]
            e = -jnp.sum(t * jax.nn.log_softmax(h @ W + b))
            return e / x.shape[0] if x.ndim == 2 else e

        grad = jax.grad(loss)

        def step(params: Any, xt: tuple[Any, Any]) -> tuple[Any, None]:
            g = grad(params, *xt)
            return jax.tree_util.tree_map(lambda p, d: p - lr * d, params, g), None

        def epoch(params: Any, X: Any, T: Any, order: Any) -> Any:
            Xo, To = jnp.take(X, order, axis=0), jnp.take(T, order, axis=0)
            if B == 1:
                Xb, Tb, Xr, Tr = Xo, To, Xo[:0], To[:0]
            else:
                Xb, Tb = Xo[: whole * B].reshape(whole, B, -1), To[: whole * B].reshape(whole, B, -1)
                Xr, Tr = Xo[whole * B :], To[whole * B :]
            params, _ = lax.scan(step, params, (Xb, Tb))
            if Xr.shape[0]:
                params, _ = step(params, (Xr, Tr))
            return params

        self.epoch = jax.jit(epoch)
        self.data = (jnp.asarray(X), jnp.asarray(T), jnp.asarray(order))
        self.params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in layers]
        self.n = n

    def run(self, epochs: int) -> float:
        """Run ``epochs`` epochs from the current weights; return the seconds they took."""
        params = self.params
        t0 = time.perf_counter()
        for _ in range(epochs):
            params = self.epoch(params, *self.data)
        self.jax.block_until_ready(params)
        seconds = time.perf_counter() - t0
        self.params = params
        return seconds

    def weights(self) -> Layers:
        """The current weights, as NumPy arrays."""
        return [(np.asarray(W), np.asarray(b)) for W, b in self.params]


class TorchEpochs:
    """Epochs in PyTorch: ``nn.Sequential``, ``CrossEntropyLoss``, ``optim.SGD``; arguments as :class:`JaxEpochs`."""

    def __init__(self, X: np.ndarray, T: np.ndarray, layers: Layers, B: int, lr: float, order: np.ndarray) -> None:
        import torch

        torch.set_num_threads(1)
        modules = []
        for i, (W, b) in enumerate(layers):
            lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=getattr(torch, str(W.dtype)))
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(b))
            modules.append(lin)
            if i < len(layers) - 1:
                modules.append(torch.nn.Tanh())
        self.model = torch.nn.Sequential(*modules)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.loss = torch.nn.CrossEntropyLoss()  # the batch mean
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(T.argmax(axis=1))
        self.order = torch.from_numpy(np.asarray(order, dtype=np.int64))
        self.B, self.n = B, order.shape[0]

    def run(self, epochs: int) -> float:
        """Run ``epochs`` epochs from the current weights; return the seconds they took."""
        model, opt, loss, X, y, B, n = self.model, self.opt, self.loss, self.X, self.y, self.B, self.n
        order = self.order
        t0 = time.perf_counter()
        for _ in range(epochs):
            for i in range(0, n, B):
                idx = order[i : i + B]
                opt.zero_grad(set_to_none=True)
                loss(model(X[idx]), y[idx]).backward()
                opt.step()
        return time.perf_counter() - t0

    def weights(self) -> Layers:
        """The current weights, ``W`` of shape (n_in, n_out)."""
        lins = [m for m in self.model if hasattr(m, "weight")]
        return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in lins]


class ReferenceEpochs:
    """The same epochs in plain NumPy (a test double); arguments as :class:`JaxEpochs`."""

    def __init__(self, X: np.ndarray, T: np.ndarray, layers: Layers, B: int, lr: float, order: np.ndarray) -> None:
        self.X, self.T, self.B, self.n, self.order = X, T, B, order.shape[0], order
        self.lr = X.dtype.type(lr)
        self.layers = [(W.copy(), b.copy()) for W, b in layers]

    def _batch(self, x: np.ndarray, t: np.ndarray) -> None:
        zs = [x]
        for W, b in self.layers[:-1]:
            zs.append(np.tanh(zs[-1] @ W + b))
        W, b = self.layers[-1]
        a = zs[-1] @ W + b
        y = np.exp(a - a.max(axis=1, keepdims=True))
        delta = y / y.sum(axis=1, keepdims=True) - t
        grads = []
        for i in range(len(self.layers) - 1, -1, -1):
            grads.append((zs[i].T @ delta, delta.sum(axis=0)))
            if i:
                delta = (delta @ self.layers[i][0].T) * (1 - zs[i] ** 2)
        scale = self.lr / self.X.dtype.type(x.shape[0])
        for (W, b), (gW, gb) in zip(self.layers, grads[::-1], strict=True):
            W -= scale * gW
            b -= scale * gb

    def run(self, epochs: int) -> float:
        """Run ``epochs`` epochs from the current weights; return the seconds they took."""
        t0 = time.perf_counter()
        for _ in range(epochs):
            for i in range(0, self.n, self.B):
                idx = self.order[i : i + self.B]
                self._batch(self.X[idx], self.T[idx])
        return time.perf_counter() - t0

    def weights(self) -> Layers:
        """The current weights."""
        return self.layers


EPOCHS: dict[str, type[JaxEpochs] | type[TorchEpochs] | type[ReferenceEpochs]] = {
    "jax": JaxEpochs, "torch": TorchEpochs, "reference": ReferenceEpochs}


def _cpus() -> list[int] | None:
    """The CPUs the threads of this process may run on (all threads, not only the main one)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = set(os.sched_getaffinity(0))
    try:
        for tid in os.listdir("/proc/self/task"):
            try:
                cpus |= os.sched_getaffinity(int(tid))
            except OSError:  # the thread ended meanwhile
                pass
    except OSError:
        pass
    return sorted(cpus)


def hello() -> dict[str, Any]:
    """The answer to ``hello``: versions, the libraries that do not import and why, the CPUs."""
    versions: dict[str, str] = {"reference": np.__version__}
    missing: dict[str, str] = {}
    for name in ("jax", "torch"):
        try:
            versions[name] = __import__(name).__version__
        except Exception as exc:  # ImportError, or a broken install
            missing[name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return {"python": sys.version.split()[0], "executable": sys.executable, "numpy": np.__version__,
            "versions": versions, "missing": missing, "cpus": _cpus(),
            "xla_flags": os.environ.get("XLA_FLAGS", "")}


def serve(inp: IO[str], out: IO[str]) -> None:
    """Answer the JSON-line requests of ``inp`` on ``out`` until ``quit`` or the end of ``inp``."""
    tasks: dict[str, Any] = {}
    for line in inp:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        reply: dict[str, Any]
        try:
            if op == "quit":
                break
            if op == "hello":
                reply = hello()
            elif op == "setup":
                X, T, layers = data.load_problem(req["data"])
                task = EPOCHS[req["library"]](X, T, layers, int(req["batch_size"]), float(req["lr"]),
                                              data.load_order(req["data"]))
                task.run(1)  # warm-up (compilation) and the check: one epoch from the given weights
                data.save_layers(req["check_out"], task.weights())
                tasks[req["name"]] = task
                reply = {"samples_per_epoch": int(task.n), "cpus": _cpus()}
            elif op == "run":
                reply = {"seconds": tasks[req["name"]].run(int(req["epochs"]))}
            else:
                reply = {"error": f"unknown op {op!r}"}
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def main(argv: list[str]) -> int:
    """``--serve``: serve stdin / stdout; anything else prints the protocol and returns 2."""
    if argv != ["--serve"]:
        print(__doc__, file=sys.stderr)
        return 2
    out = os.fdopen(os.dup(1), "w")  # the replies; anything else printed goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
