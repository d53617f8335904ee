"""Seconds from Ctrl-C (SIGINT) to KeyboardInterrupt during ``MLP.fit``, per backend.

    python tools/sigint_latency.py [--n 30000] [--hidden 1024] [--repeats 5] [--per-call SAMPLES]

A child process fits a 784-H-10 tanh/softmax network (float64, per-sample SGD) on n random
samples; the parent sends SIGINT at a random moment 0.2-0.7 s into the fit and reads the child's
monotonic clock when KeyboardInterrupt reaches it. Prints the median and the maximum latency.
``--per-call SAMPLES`` sizes the compiled calls by samples instead of by work (e.g. 20000), to
compare the two ways of cutting the work in one run.
"""

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import time

CHILD = """
import sys, time
import numpy as np
from deltaprop import MLP
from deltaprop.engine import buffers
backend, n, hidden, per_call = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.RandomState(0)
X = rng.uniform(0, 1, (n, 784))
Y = np.eye(10)[rng.randint(0, 10, n)]
net = MLP([784, hidden, 10], "tanh", "softmax", "cross_entropy", backend=backend, random_state=0)
net.fit(X[:5], Y[:5], epochs=1, lr=0.01)
if per_call:
    buffers.WORK_PER_CALL = per_call * (buffers.SAMPLE_OVERHEAD + net.w.shape[0])
print("ready", flush=True)
try:
    net.fit(X, Y, epochs=1000, lr=0.01)
except KeyboardInterrupt:
    print("interrupted", time.monotonic(), flush=True)
"""


def latency(backend, n, hidden, per_call):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-c", CHILD, backend, str(n), str(hidden), str(per_call)],
                             stdout=subprocess.PIPE, text=True, env=env,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    while "ready" not in child.stdout.readline():
        pass
    time.sleep(random.uniform(0.2, 0.7))
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate()
    return float(out.split()[1]) - sent


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("backends", nargs="*", default=["numba", "cython", "numpy"])
    p.add_argument("--n", type=int, default=30000)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--per-call", type=int, default=0, help="samples per compiled call (0: by work)")
    args = p.parse_args()
    for backend in args.backends:
        times = [latency(backend, args.n, args.hidden, args.per_call) for _ in range(args.repeats)]
        print(f"{backend:7s} 784-{args.hidden}-10 n={args.n}: median {statistics.median(times):.3f} s, "
              f"max {max(times):.3f} s over {args.repeats} interrupts", flush=True)


if __name__ == "__main__":
    main()
