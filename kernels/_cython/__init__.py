"""The Cython backend: the kernel contract as compiled ``.pyx`` kernels (built by setup.py).

Mirrors ``deltaprop.kernels._numpy`` module by module (forward, backprop, update, epoch); the
per-sample primitives they share are ``cdef inline`` functions in ``_core.pxd``. Every function
takes float32 or float64 arrays (fused types; one dtype across the floating arguments) and runs
its loops without the GIL. If the extension modules were not built, importing this package
raises ImportError and the backend registry lists ``cython`` as unavailable.
"""

from .backprop import backprop, gradient, output_delta
from .epoch import batch_epoch, sgd_epoch
from .forward import forward

__all__ = ["forward", "output_delta", "backprop", "gradient", "sgd_epoch", "batch_epoch"]
