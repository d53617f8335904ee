"""The numba backend: every function of the kernel contract as ``@njit`` kernels.

Each module mirrors its namesake in ``_numpy`` (activations, forward, backprop, update, epoch);
``_jit`` holds the numba options. Kernels compile lazily, once per dtype, on first use, and are
cached on disk (``cache=True``), so importing this package is quick.
"""

from .backprop import backprop, gradient, output_delta
from .epoch import batch_epoch, sgd_epoch
from .forward import forward

__all__ = ["forward", "output_delta", "backprop", "gradient", "sgd_epoch", "batch_epoch"]
