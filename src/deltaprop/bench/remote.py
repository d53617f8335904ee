"""Peers in their own Python: the process that runs the epoch server, and its timed epochs.

JAX and PyTorch are not deltaprop's dependencies; ``deltaprop bench --minibatch --peer-python
PATH`` runs them in the Python at PATH (e.g. a "peers" venv), where the script
``bench/peers/epoch_server.py`` answers JSON lines on stdin / stdout (its docstring is the
protocol). :class:`PeerProcess` starts it; :class:`RemoteTask` hands it a deltaprop task's
problem, checks its first epoch against deltaprop's and times its epochs, so that
:func:`~deltaprop.bench.timing.compare` interleaves it with the tasks of this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from typing import IO, Any

import numpy as np

from .data import ETA, SHAPES, load_layers, save_problem
from .timing import Task, Timed

__all__ = ["PEER_SCRIPT", "XLA_ONE_THREAD", "CHECK_TOLERANCE", "PeerProcess", "RemoteTask"]

#: The epoch server a peers python runs, in place: ``bench/peers/`` holds only the peers'
#: scripts, so nothing of deltaprop is on that Python's path.
PEER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers", "epoch_server.py")
#: XLA on one thread (appended to the peers python's XLA_FLAGS)
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
#: The largest |w_peer - w_deltaprop| allowed after the checked epoch (float32, the same start).
CHECK_TOLERANCE = 1e-5


class PeerProcess:
    """A peer library's Python running :data:`PEER_SCRIPT` ``--serve``.

    Started in ``workdir`` (where the problem files go) with BLAS, OpenMP and XLA on one
    thread. It inherits the CPU pinning of the calling thread, and is set to it again,
    explicitly.

    Parameters
    ----------
    python : str
        The peers python's executable.
    workdir : str
        A directory for its working files (and ``peer-stderr.txt``, its standard error).

    Attributes
    ----------
    info : dict
        Its answer to ``hello``: versions, the libraries that do not import and why, the CPUs
        its threads may run on.

    Raises
    ------
    ValueError
        If the executable does not start, or does not answer as the epoch server does.
    """

    def __init__(self, python: str, workdir: str) -> None:
        self.python, self.workdir = python, workdir
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
        env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_ONE_THREAD}".strip()
        self._stderr = open(os.path.join(workdir, "peer-stderr.txt"), "w+")
        try:
            self.proc = subprocess.Popen([python, PEER_SCRIPT, "--serve"], stdin=subprocess.PIPE,
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
                raise RuntimeError("it does not answer as deltaprop's epoch server does")
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

    def request(self, **req: Any) -> dict[str, Any]:
        """Send one request, return the reply.

        Parameters
        ----------
        **req
            The request's fields (``op`` and its arguments).

        Returns
        -------
        dict
            The reply.

        Raises
        ------
        RuntimeError
            If the request failed (the server's message) or the process ended (its last line
            of standard error).
        """
        stdin, stdout = self._pipes()
        try:
            stdin.write(json.dumps(req) + "\n")
            stdin.flush()
            line = stdout.readline()
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
        """Ask the server to quit, wait for it (30 s, then kill it) and close the pipes."""
        stdin, stdout = self._pipes()
        with contextlib.suppress(OSError, ValueError):
            stdin.write('{"op": "quit"}\n')
            stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError, ValueError):
            stdout.close()
        self._stderr.close()

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        """The server's standard input and output (pipes: the process is started with both)."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        return stdin, stdout


class RemoteTask(Timed):
    """The epochs of a deltaprop :class:`~deltaprop.bench.timing.Task` in a peer library.

    The epochs run in a :class:`PeerProcess`, timed there and reported here (this process waits,
    idle, meanwhile). The peer gets the task's data, its visiting order (each epoch gathers the
    rows in that order, as deltaprop's do) and deltaprop's initial weights, and runs one epoch
    from them at once (its warm-up).

    Parameters
    ----------
    peer : PeerProcess
    library : str
        ``"jax"``, ``"torch"`` or ``"reference"`` (the server's plain NumPy epoch).
    task : Task
        ``level="epoch"``: its backend, dtype, shape, batch size, seed and order.

    Attributes
    ----------
    check : dict
        The weights the peer's first epoch ends with against ``MLP.batch_epoch``
        (``sgd_epoch`` for batch 1) of the task's backend from the same weights:
        ``max_abs_diff``, ``max_abs_step`` (how far deltaprop's weights moved), ``against``
        (the backend) and ``ok`` (the difference within :data:`CHECK_TOLERANCE` and under 1 %
        of the step).

    Raises
    ------
    RuntimeError
        If the peer fails to set the problem up.
    """

    def __init__(self, peer: PeerProcess, library: str, task: Task) -> None:
        from deltaprop import MLP

        sizes, hidden, output, loss = SHAPES[task.shape]
        B = task.batch_size
        self.name = f"{task.shape} {task.dtype} {library}" + (f" b={B}" if B > 1 else "")
        self.backend, self.dtype, self.shape, self.batch_size = library, task.dtype, task.shape, B
        self.peer = peer
        net = MLP(sizes, hidden, output, loss, backend=task.backend, dtype=task.dtype, random_state=task.seed)
        slug = self.name.replace(" ", "-").replace("=", "")
        data, out = (os.path.join(peer.workdir, f"{slug}-{what}.npz") for what in ("data", "check"))
        save_problem(data, task.X, task.T, list(zip(net.coefs_, net.intercepts_, strict=True)), order=task.order)
        reply = peer.request(op="setup", name=self.name, library=library, data=data, batch_size=B, lr=ETA,
                             check_out=out)
        self.samples_per_epoch = int(reply["samples_per_epoch"])
        w0 = net.w.copy()
        if B == 1:
            net.sgd_epoch(task.X, task.T, ETA, order=task.order)
        else:
            net.batch_epoch(task.X, task.T, ETA, B, order=task.order)
        theirs = np.concatenate([p.ravel() for layer in load_layers(out) for p in layer])
        ours = np.concatenate([p[i].ravel() for i in range(net.n_layers) for p in (net.coefs_, net.intercepts_)])
        diff = float(np.max(np.abs(theirs.astype(np.float64) - ours))) if theirs.shape == ours.shape else np.inf
        step = float(np.max(np.abs(net.w - w0)))
        self.check = {"max_abs_diff": diff, "max_abs_step": step, "against": task.backend,
                      "ok": bool(diff <= CHECK_TOLERANCE and diff <= 0.01 * step)}

    def run(self) -> float:
        """Run :attr:`epochs` epochs in the peer; return the seconds it reports."""
        return float(self.peer.request(op="run", name=self.name, epochs=self.epochs)["seconds"])
