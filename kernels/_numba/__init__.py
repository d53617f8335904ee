"""The numba backend: every function of the kernel contract as ``@njit`` kernels.

Each module mirrors its namesake in ``_numpy`` (activations, forward, backprop, update, epoch);
``_jit`` holds the numba options. Kernels compile lazily, once per
dtype, on first use, and are cached on disk (``cache=True``), so importing this package is quick.
"""

from . import activations, backprop as _backprop, epoch as _epoch, forward as _forward, update
from .backprop import backprop, gradient, output_delta
from .epoch import batch_epoch, sgd_epoch
from .forward import forward

__all__ = ["forward", "output_delta", "backprop", "gradient", "sgd_epoch", "batch_epoch", "codes"]

#: every module whose functions read a code
MODULES = (activations, _forward, _backprop, update, _epoch)


def codes():
    """The code tables as the compiled kernels see them: each module's global of every contract
    constant, the value numba freezes into the machine code (see
    ``deltaprop.kernels.codes_read_by``)."""
    from deltaprop.kernels import codes_read_by

    return codes_read_by(*MODULES)
