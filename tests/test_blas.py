"""The BLAS the compiled kernels call (``deltaprop.kernels.blas``): NumPy's OpenBLAS when NumPy
ships one, SciPy's otherwise or when ``DELTAPROP_BLAS=scipy``; the kernels give the reference's
results on either, and a bad choice is a clear error."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import COMPILED

from deltaprop.kernels import blas

#: one mini-batch epoch of each compiled backend, printed as JSON (weights after the epoch)
EPOCH = r"""
import json, warnings, numpy as np
from deltaprop import MLPClassifier
from deltaprop.kernels.blas import gemm_library
warnings.simplefilter("ignore")
rng = np.random.RandomState(0)
X, y = rng.randn(300, 40), rng.randint(0, 4, 300)
out = {"library": gemm_library().name}
for backend in %r:
    est = MLPClassifier(hidden_layer_sizes=(30,), solver="sgd", momentum=0.9, nesterovs_momentum=False,
                        batch_size=32, max_iter=2, random_state=0, backend=backend).fit(X, y)
    out[backend] = np.concatenate([c.ravel() for c in est.coefs_ + est.intercepts_]).tolist()
print(json.dumps(out))
"""


def run_epoch(choice):
    env = dict(os.environ, DELTAPROP_BLAS=choice)
    done = subprocess.run([sys.executable, "-c", EPOCH % (list(COMPILED),)], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def test_numpy_openblas_is_found_where_numpy_ships_one():
    from threadpoolctl import threadpool_info

    numpy_dir = os.path.dirname(os.path.abspath(np.__file__))
    ships = any(i.get("internal_api") == "openblas" and os.path.abspath(i["filepath"]).startswith(numpy_dir)
                for i in threadpool_info())
    if not ships:
        pytest.skip("this NumPy has no OpenBLAS of its own")
    lib = blas.gemm_library()
    assert lib.name == "numpy" and lib.sgemm and lib.dgemm
    assert lib.path.startswith(numpy_dir)


@pytest.mark.skipif(not COMPILED, reason="no compiled backend")
def test_either_library_gives_the_same_epochs():
    """Momentum's step runs inside the gradient's product, so the library's alpha and beta are
    exercised: the weights after two epochs agree between the two libraries to rounding."""
    on_numpy, on_scipy = run_epoch("numpy"), run_epoch("scipy")
    assert on_scipy["library"] == "scipy"
    for backend in COMPILED:
        np.testing.assert_allclose(on_numpy[backend], on_scipy[backend], rtol=0, atol=1e-10)


def test_a_bad_choice_names_the_variable(monkeypatch):
    monkeypatch.setenv("DELTAPROP_BLAS", "mkl")
    blas.gemm_library.cache_clear()
    try:
        with pytest.raises(ValueError, match="DELTAPROP_BLAS must be 'numpy' or 'scipy'; got 'mkl'"):
            blas.gemm_library()
    finally:
        blas.gemm_library.cache_clear()
