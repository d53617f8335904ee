"""Fixtures shared by every test: the available backends, both dtypes, a seeded RNG."""

import os

import numpy as np
import pytest
from hypothesis import settings

import deltaprop
from deltaprop.contract import CANONICAL_PAIRS, HIDDEN_ACTIVATIONS, PAIRS

# CI replays the same examples every run (a red build is reproducible); locally each run explores.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

BACKENDS = deltaprop.available_backends()
COMPILED = [b for b in BACKENDS if b != "numpy"]

#: relative tolerance of a compiled backend against the NumPy reference
TOL = {np.float32: 2e-4, np.float64: 1e-12}
#: gradcheck bound: backprop vs five-point central differences in float64
GRADCHECK_TOL = {np.float32: 1e-3, np.float64: 1e-7}


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Every backend that imports on this machine."""
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.RandomState(0)


def targets(rng, n, K, output):
    """Random targets fitting an output activation: one-hot rows for softmax, [0, 1] for logistic."""
    if output == "softmax":
        return np.eye(K)[rng.randint(0, K, n)]
    if output == "logistic":
        return rng.rand(n, K)
    return rng.randn(n, K)


def sparse_problem(dtype, sizes=(30, 12, 7, 5), n=9, seed=0):
    """A net's flat weights, layout and image-like data: 80 % zero inputs and one all-zero sample."""
    from deltaprop.layout import make_layout, n_params

    rng = np.random.RandomState(seed)
    layout = make_layout(list(sizes))
    w = (rng.randn(n_params(layout)) * 0.3).astype(dtype)
    X = rng.rand(n, sizes[0])
    X[rng.rand(*X.shape) < 0.8] = 0.0  # 80 % zero inputs, as in images
    X[2] = 0.0  # and one all-zero sample
    T = np.eye(sizes[-1])[rng.randint(0, sizes[-1], n)]
    return layout, w, X.astype(dtype), T.astype(dtype)


__all__ = ["BACKENDS", "COMPILED", "TOL", "GRADCHECK_TOL", "PAIRS", "CANONICAL_PAIRS",
           "HIDDEN_ACTIVATIONS", "targets", "sparse_problem"]


@pytest.fixture(scope="module")
def client():
    """A two-worker LocalCluster (processes, one thread each) and its client, one per test
    module (a module may kill a worker)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=50) as cluster:
        with distributed.Client(cluster) as c:
            yield c
