"""Frozen benchmark data and shared setup.

Data generators here are FROZEN: a change would break the comparison with every result already
recorded. Append new generators (with new names); never edit or remove an existing one.

Every measurement runs single-threaded (BLAS and OpenMP pinned to 1): on a 2-core machine a
second busy thread makes the figures meaningless. The environment below reaches the libraries
before numpy loads them (asv runs each benchmark in a fresh process, or forks it from one that
imported this module first); ``single_thread`` then pins the loaded ones with
``deltaprop.bench.pin_threads``. :func:`preload` then imports deltaprop and its backends.
"""

import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    # numba re-reads NUMBA_NUM_THREADS at every compilation and raises once its pool runs with
    # another size: set it only before numba is imported (asv's fresh processes; not pytest's)
    if _var != "NUMBA_NUM_THREADS" or "numba" not in sys.modules:
        os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

#: Backends an asv parameter may name; those not importable at a commit are skipped.
BACKENDS = ["numpy", "numba", "cython"]
DTYPES = ["float32", "float64"]
#: The standard shapes: Bishop's 1-3-1 (Fig. 5.3), a digits-sized net and MNIST-sized nets.
SHAPES = ["1-3-1", "64-32-10", "784-128-10", "784-256-128-10"]
#: Samples per epoch for each shape (a measured epoch takes milliseconds, not seconds, on numpy).
N_SAMPLES = {"1-3-1": 4000, "64-32-10": 2000, "784-128-10": 500, "784-256-128-10": 300}
LR = 0.01
SEED = 0


def layer_sizes(shape):
    """``"64-32-10"`` -> ``[64, 32, 10]``."""
    return [int(s) for s in shape.split("-")]


def single_thread():
    """Pin the loaded BLAS and OpenMP pools to one thread (``deltaprop.bench.pin_threads``;
    at a commit without it, the environment set above is the pinning)."""
    try:
        from deltaprop.bench import pin_threads
    except ImportError:
        return
    pin_threads(1)


def require_backend(backend):
    """Raise NotImplementedError (asv: skipped) when ``backend`` is not importable here."""
    import deltaprop

    if backend not in deltaprop.available_backends():
        raise NotImplementedError(f"backend {backend!r} is not available")


def preload():
    """Import deltaprop and load every backend it has, without running a kernel.

    Called when asv imports the suite. With ``--launch-method forkserver`` (the quick run) asv
    imports the suite once and forks each benchmark from that process, so each starts with
    deltaprop, scikit-learn, numba and the compiled kernels loaded instead of importing them
    again in ``setup``; no kernel has run, so no thread pool exists at the fork. In a spawned
    process (asv's default) the same imports happen here rather than in ``setup``: outside every
    timing either way. A deltaprop that does not import is left for ``setup`` to report.
    """
    try:
        import deltaprop

        deltaprop.available_backends()
    except Exception:  # at any commit, a failure here shows again in the benchmarks' setup
        pass


preload()


def sgd_data(shape, dtype, n=None):
    """Seeded inputs and targets for ``shape``: frozen.

    X ~ N(0, 1), shape (n, D). One output (1-3-1): t = sin(pi x_0), regression with an identity
    output and squared error. K > 1 outputs: class indices uniform on 0..K-1 (for a softmax
    output with cross-entropy).
    """
    sizes = layer_sizes(shape)
    n = N_SAMPLES[shape] if n is None else n
    rng = np.random.RandomState(SEED)
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    if sizes[-1] == 1:
        T = np.sin(np.pi * X[:, :1]).astype(dtype)
    else:
        T = rng.randint(0, sizes[-1], n)
    return X, T


def make_net(shape, backend, dtype):
    """The benchmark network for ``shape``: tanh hidden units; identity + squared error for one
    output, softmax + cross-entropy otherwise; seeded weights."""
    import deltaprop

    sizes = layer_sizes(shape)
    output, loss = ("identity", "squared_error") if sizes[-1] == 1 else ("softmax", "cross_entropy")
    return deltaprop.MLP(sizes, hidden="tanh", output=output, loss=loss, backend=backend,
                         dtype=dtype, random_state=SEED)


def digits(n=None):
    """scikit-learn's digits, standardised (train split only), frozen: X (n, 64) float64, y (n,)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    if n is not None:
        X, y = X[:n], y[:n]
    return np.ascontiguousarray(X), y
