r"""The engine: the multilayer perceptron :class:`MLP`, the only caller of the kernels.

The engine validates, casts and allocates once; the backend's kernels (:mod:`deltaprop.contract`)
do the arithmetic. Its modules, one job each:

``mlp``              :class:`MLP`: parameters, forward pass, error, gradient, Jacobian
``descent``          its training: ``sgd_epoch``, ``batch_epoch``, ``fit``, ``epoch_runner``
``modelfile``        its model file: members and checks, ``save`` and ``load``
``sweeps``           passes over the rows of X, in chunks and on threads; the Jacobian
``epochs``           the epoch runners' interface, and epochs on one thread
``parallel_epochs``  epochs on threads: split batches, parameter mixing, Hogwild
``buffers``          aligned and kept buffers, work sizes, row chunks, rollback
``npzfile``          untrusted ``.npz`` files read safely; atomic writes

The layers above (estimators, command line, Dask) use the names exported here and the public
methods of :class:`MLP`.
"""

from .buffers import kernel_input, rollback
from .mlp import MLP

__all__ = ["MLP", "kernel_input", "rollback"]
