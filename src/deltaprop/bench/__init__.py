"""Benchmarks of deltaprop's training throughput, for ``deltaprop bench`` and the asv suite.

``deltaprop bench`` (:func:`run`, :func:`table`): samples per second of per-sample SGD,
:math:`w \\leftarrow w - \\eta \\nabla E_n(w)` (Bishop §5.2.4), on every backend, dtype and
standard shape (:data:`SHAPES`), against scikit-learn and PyTorch. ``deltaprop bench
--minibatch`` (:func:`run_minibatch`, :func:`minibatch_table`): mini-batch and per-sample epochs
and ``MLPClassifier()`` fits against the NumPy backend, scikit-learn and, in a peers python,
JAX and PyTorch; the mini-batch epochs also against their arithmetic ceiling, one batch's matrix
products alone through NumPy's BLAS (:func:`products_ceiling`). One thread, pinned to one CPU
(:func:`pin_threads`, :func:`pin_to_one_cpu`), the median of interleaved rounds.

The modules, one job each:

- :mod:`~deltaprop.bench.pinning`: the thread pools and the CPU pinning;
- :mod:`~deltaprop.bench.data`: the standard shapes, their frozen data, η and the problem file
  (standard library and NumPy only: the peers' scripts load it by its path);
- :mod:`~deltaprop.bench.ceiling`: the arithmetic ceiling of a mini-batch epoch, its matrix
  products alone through NumPy's BLAS (standard library and NumPy only);
- :mod:`~deltaprop.bench.timing`: the timed tasks and the interleaved rounds;
- :mod:`~deltaprop.bench.machine`: the machine, its thread pools and the pinning, in words;
- :mod:`~deltaprop.bench.persample`: the per-sample table;
- :mod:`~deltaprop.bench.minibatch`: the mini-batch table;
- :mod:`~deltaprop.bench.remote`: the peers python and its timed epochs;
- ``peers/epoch_server.py``: the script a peers python runs.
"""

from .ceiling import Ceiling, batch_flop, products_ceiling
from .ceiling import batch_products as batch_products
from .ceiling import run_products as run_products
from .data import SHAPES, make_data
from .data import digits_data as digits_data
from .machine import blas_info as blas_info
from .machine import machine_info, pinning_words
from .minibatch import FIT_ITERATIONS as FIT_ITERATIONS
from .minibatch import MINIBATCH_WORKS as MINIBATCH_WORKS
from .minibatch import REMOTE_PEERS, minibatch_table, run_minibatch
from .minibatch import FitTask as FitTask
from .persample import run, table
from .pinning import pin_threads, pin_to_one_cpu
from .remote import RemoteTask as RemoteTask
from .timing import PeerTask as PeerTask
from .timing import StreamProbe as StreamProbe
from .timing import Task as Task
from .timing import compare as compare
from .timing import measure

# The names above imported "as" themselves are public too (the tasks, the work table), kept
# out of __all__: the command line and the asv suite use the names in it.
__all__ = ["SHAPES", "make_data", "pin_threads", "pin_to_one_cpu", "measure", "run", "table", "run_minibatch",
           "minibatch_table", "REMOTE_PEERS", "machine_info", "pinning_words", "products_ceiling", "Ceiling",
           "batch_flop"]

