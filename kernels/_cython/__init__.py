"""The Cython backend: the kernel contract as compiled ``.pyx`` kernels (built by setup.py).

Mirrors ``deltaprop.kernels._numpy`` module by module (forward, backprop, update, epoch); the
per-sample primitives they share are ``cdef inline`` functions in ``_core.pxd``. Every function
takes float32 or float64 arrays (fused types; one dtype across the floating arguments) and runs
its loops without the GIL. If the extension modules were not built, importing this package
raises ImportError and the backend registry lists ``cython`` as unavailable.
"""

import os

from .backprop import backprop, gradient, output_delta
from .forward import forward


def _cpu_has_avx2_fma():
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return False
    return bool(features.get("AVX2") and features.get("FMA3"))


def _epoch_module():
    """The epoch kernels compiled for this CPU: ``epoch_avx2`` (built with -mavx2 -mfma) when
    the CPU has AVX2 and FMA, else the baseline ``epoch``. ``DELTAPROP_CYTHON_SIMD=baseline``
    forces the baseline."""
    if os.environ.get("DELTAPROP_CYTHON_SIMD", "auto") != "baseline" and _cpu_has_avx2_fma():
        try:
            from . import epoch_avx2

            return epoch_avx2
        except ImportError:  # not built (non-x86 platform, DELTAPROP_NO_SIMD_VARIANT=1)
            pass
    from . import epoch

    return epoch


_epoch = _epoch_module()
sgd_epoch = _epoch.sgd_epoch
batch_epoch = _epoch.batch_epoch
#: the module the epoch kernels come from ("epoch" or "epoch_avx2")
EPOCH_MODULE = _epoch.__name__.rsplit(".", 1)[-1]

__all__ = ["forward", "output_delta", "backprop", "gradient", "sgd_epoch", "batch_epoch"]
