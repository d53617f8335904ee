"""The NumPy backend: the readable reference every compiled backend is tested against.

Each function is written in vectorised NumPy and named after the seed's equation it implements;
see ``deltaprop.contract`` for the arrays and their layout.
"""

from .backprop import backprop, gradient, output_delta
from .epoch import batch_epoch, sgd_epoch
from .forward import forward

__all__ = ["forward", "output_delta", "backprop", "gradient", "sgd_epoch", "batch_epoch"]
