r"""deltaprop on a Dask cluster: the estimators, trained where the data is.

``pip install 'deltaprop[dask]'`` (dask, distributed). :class:`MLPClassifier` and
:class:`MLPRegressor` take the constructor parameters of ``deltaprop.MLPClassifier`` /
``MLPRegressor`` plus ``client``, ``average_every`` and ``sync``; ``fit`` takes dask arrays or
dask dataframes (or NumPy arrays, which it scatters) and trains on the workers that hold them:

- the partitions are loaded and persisted once on the workers (:mod:`.shards`), and every
  iteration moves only the weights out and the per-partition sums back;
- ``lbfgs``: SciPy's L-BFGS-B on the client, with the exact full-batch loss and gradient summed
  over the partitions (compiled kernels on each worker, a fixed reduction tree on the cluster);
  the same model as ``deltaprop.MLPClassifier(solver="lbfgs")`` on the same data;
- ``sgd`` / ``adam``: local SGD, each partition running the compiled per-sample or mini-batch
  epoch from the broadcast weights on its own shuffles with J times the step size (J
  partitions), the weights (and optimizer state) averaged every ``average_every`` samples per
  partition (default: one local epoch), so that an epoch learns about as much as one
  machine's; ``sync`` chooses another rule (plain averaging, summed changes, or synchronous
  mini-batches: :mod:`.sgd`); ``early_stopping`` scores a validation split that stays on the
  workers.

``predict``, ``predict_proba`` and ``score`` of a dask collection are lazy dask arrays
(``map_blocks``); ``to_local()`` gives the plain single-machine estimator.

Modules: :mod:`.estimators` (the two estimators), :mod:`.base` (fit on the cluster, its
solvers, lazy prediction), :mod:`.sgd` (an sgd / adam epoch on the cluster), :mod:`.cluster`
(rounds of tasks, retries), :mod:`.inputs` (X, y and sample_weight as row partitions),
:mod:`.shards` (what a task does to one partition, on a worker).
"""

from .cluster import WorkerLostError
from .estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "WorkerLostError"]
