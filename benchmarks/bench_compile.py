"""numba compile time: the first call with an empty cache, and with a warm on-disk cache."""

import os
import subprocess
import sys
import tempfile

from .common import require_backend

# Run in a fresh interpreter: import deltaprop and numba (not timed), then time building a
# numba-backed 64-32-10 net plus its first per-sample SGD epoch and forward pass.
_SCRIPT = """
import time
import numpy as np
import numba
import deltaprop
X = np.random.RandomState(0).standard_normal((50, 64))
T = np.arange(50) % 10
t0 = time.perf_counter()
net = deltaprop.MLP([64, 32, 10], hidden="tanh", output="softmax", loss="cross_entropy",
                    backend="numba", dtype="{dtype}", random_state=0)
net.sgd_epoch(X, T, 0.01)
net.forward(X)
print(time.perf_counter() - t0)
"""


class NumbaCompile:
    """Seconds from a cold or warm numba cache to a trained epoch and a forward pass."""

    params = (["first", "cached"], ["float32", "float64"])
    quick_params = (["first", "cached"], ["float64"])
    param_names = ["cache", "dtype"]
    timeout = 600
    number = 1
    repeat = 1

    def setup(self, cache, dtype):
        require_backend("numba")

    def _run(self, cache_dir, dtype):
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
        out = subprocess.run([sys.executable, "-c", _SCRIPT.format(dtype=dtype)], env=env,
                             capture_output=True, text=True, check=True, timeout=600)
        return float(out.stdout.strip().splitlines()[-1])

    def track_compile_seconds(self, cache, dtype):
        with tempfile.TemporaryDirectory(prefix="deltaprop-numba-cache-") as cache_dir:
            seconds = self._run(cache_dir, dtype)
            if cache == "cached":
                seconds = self._run(cache_dir, dtype)
        return seconds

    track_compile_seconds.unit = "seconds"
