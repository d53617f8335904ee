"""The numba backend: every function of the kernel contract as ``@njit`` kernels.

Each module of ``_numpy`` has its namesake here (activations, forward, backprop, update,
epoch); the per-sample epochs are split by solver family into ``sgd_plain`` (sgd, α = 0),
``sgd_decay`` (sgd with L2) and ``sgd_general`` (momentum, Nesterov, Adam), with their shared
per-sample pieces in ``rows``. ``_jit`` holds the numba options. Kernels compile lazily, once per
dtype, on first use, and are cached on disk (``cache=True``), so importing this package is quick.
"""

from . import activations, backprop as _backprop, epoch as _epoch, forward as _forward, rows
from . import sgd_decay as _sgd_decay, sgd_general as _sgd_general, sgd_plain as _sgd_plain, update
from .backprop import backprop, gradient, output_delta
from .epoch import batch_epoch, sgd_epoch
from .forward import forward

__all__ = ["forward", "output_delta", "backprop", "gradient", "sgd_epoch", "batch_epoch", "codes"]

#: every module whose functions read a code
MODULES = (activations, _forward, _backprop, update, rows, _sgd_plain, _sgd_decay, _sgd_general, _epoch)


def codes():
    """The code tables as the compiled kernels see them: each module's global of every contract
    constant, the value numba freezes into the machine code (see
    ``deltaprop.kernels.codes_read_by``)."""
    from deltaprop.kernels import codes_read_by

    return codes_read_by(*MODULES)
