"""The BLAS ``?gemm`` the compiled kernels call for their matrix products.

Both compiled backends do a batch's products (the forward sums :math:`A = Z W`, the
δ-recursion :math:`\\Delta W^T`, the gradient :math:`Z^T \\Delta`) through a Fortran BLAS
``sgemm`` / ``dgemm``, found here once per process, by address:

``"numpy"``
    NumPy's own OpenBLAS, the library ``numpy.dot`` runs on, when NumPy ships one (its wheels
    do: ``numpy.libs/libscipy_openblas64_*``, symbols ``scipy_sgemm_64_`` / ``scipy_dgemm_64_``);
    this is the library the products-only ceiling of ``deltaprop.bench.ceiling`` is measured
    with. Found among the loaded BLAS libraries by ``threadpoolctl``.
``"scipy"``
    SciPy's BLAS, ``scipy.linalg.cython_blas`` (the library numba's own ``np.dot`` calls): the
    fallback when NumPy's is not an OpenBLAS found this way.

``DELTAPROP_BLAS=scipy`` (or ``numpy``) in the environment chooses one; a choice that is not
available falls back to SciPy's. Both are called with the Fortran interface and pointers to
64-bit integers: an ILP64 library (NumPy's) reads them whole, an LP64 library (SciPy's) reads
their low 32 bits, which on a little-endian machine are the first four bytes, the same value for
any size below :math:`2^{31}` (``GemmLibrary.ilp64`` says which kind was found, for a caller that
would rather pass 32-bit integers to an LP64 library; numba runs on little-endian machines only).
"""

import ctypes
import functools
import os
from typing import NamedTuple

__all__ = ["gemm_library", "GemmLibrary"]

#: symbol names tried in an OpenBLAS library, ILP64 first: (sgemm, dgemm)
_OPENBLAS_SYMBOLS = (("scipy_sgemm_64_", "scipy_dgemm_64_"), ("sgemm_64_", "dgemm_64_"),
                     ("scipy_sgemm_", "scipy_dgemm_"), ("sgemm_", "dgemm_"))


class GemmLibrary(NamedTuple):
    """Where the kernels' ``sgemm`` / ``dgemm`` are: ``name`` ("numpy" or "scipy"), the path of the
    library file (or the SciPy module), the two functions' addresses, and ``ilp64``, whether
    their integers are 64-bit."""

    name: str
    path: str
    sgemm: int
    dgemm: int
    ilp64: bool


def _numpy_openblas():
    """NumPy's OpenBLAS as a :class:`GemmLibrary`, or None."""
    import numpy

    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    roots = [os.path.dirname(os.path.abspath(numpy.__file__))]
    roots.append(roots[0] + ".libs")
    for info in threadpool_info():
        path = os.path.abspath(info.get("filepath", ""))
        if info.get("internal_api") != "openblas" or not any(path.startswith(r + os.sep) for r in roots):
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for s_name, d_name in _OPENBLAS_SYMBOLS:
            try:
                s, d = getattr(lib, s_name), getattr(lib, d_name)
            except AttributeError:
                continue
            return GemmLibrary("numpy", path, ctypes.cast(s, ctypes.c_void_p).value,
                               ctypes.cast(d, ctypes.c_void_p).value, s_name.endswith("64_"))
    return None


def _capsule_address(capsule):
    """The pointer a ``__pyx_capi__`` capsule holds."""
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))


def _scipy_blas():
    """SciPy's ``cython_blas`` as a :class:`GemmLibrary` (LP64)."""
    from scipy.linalg import cython_blas

    capi = cython_blas.__pyx_capi__
    return GemmLibrary("scipy", "scipy.linalg.cython_blas", _capsule_address(capi["sgemm"]),
                       _capsule_address(capi["dgemm"]), False)


@functools.cache
def gemm_library():
    """The :class:`GemmLibrary` of this process (see the module's docstring), found once."""
    choice = os.environ.get("DELTAPROP_BLAS", "numpy").strip().lower()
    if choice not in ("numpy", "scipy"):
        raise ValueError(f"DELTAPROP_BLAS must be 'numpy' or 'scipy'; got {choice!r}")
    found = _numpy_openblas() if choice == "numpy" else None
    return found if found is not None else _scipy_blas()
