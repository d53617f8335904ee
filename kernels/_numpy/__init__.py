"""The NumPy backend: the readable reference every compiled backend is tested against.

Each function is written in vectorised NumPy and its docstring names the equation it implements
(Bishop §5.2-5.3); see ``deltaprop.contract`` for the arrays and their layout.
"""

from deltaprop import layout as _layout

from . import activations, update
from . import backprop as _backprop
from . import epoch as _epoch
from . import forward as _forward
from . import mixing as _mixing
from . import split as _split
from .backprop import backprop, gradient, loss_gradient, output_delta
from .epoch import batch_epoch, sgd_epoch
from .forward import forward
from .mixing import average_epochs
from .split import split_epochs

__all__ = ["forward", "output_delta", "backprop", "gradient", "loss_gradient", "sgd_epoch", "batch_epoch",
           "average_epochs", "split_epochs", "codes"]


def codes():
    """The code tables as this backend's modules hold them (see ``deltaprop.kernels.codes_read_by``).

    The layout columns are read through ``deltaprop.layout.layer_params`` / ``layer_units``,
    so that module is one of the modules read."""
    from deltaprop.kernels import codes_read_by

    return codes_read_by(activations, _forward, _backprop, update, _epoch, _mixing, _split, _layout)
