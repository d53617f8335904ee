r"""The client side of :mod:`deltaprop.dask`: the estimators, their solvers and the cluster.

Design
------
``fit`` turns X, y, sample_weight into one list of row partitions (a dask array's row
blocks, a dask dataframe's partitions, or a NumPy array cut in one piece per worker thread and
scattered), loads and persists each as a :class:`~deltaprop.dask._shards.Shard` on a worker
(its *home*: where it was loaded, unless that worker got more than its share), and from then on
sends only small things. A round (:meth:`_Cluster.round`) is one task per home worker carrying
the payload (the weights; with the optimizer state for local SGD), which runs that worker's
partitions and adds their results there; the per-worker sums come back to the client (through
a tree of ``deltaprop-sum`` tasks when there are more than :data:`SPLIT_EVERY` workers). Sums
are carried with their rounding errors (:class:`~deltaprop.dask._shards.Acc`), so a result does
not depend on which worker added which partitions.

- ``lbfgs``: each evaluation of SciPy's L-BFGS-B on the client is one round of
  ``deltaprop-gradient`` tasks returning :math:`(\sum_j E_j, \sum_j g_j)`: the exact
  full-batch objective of ``deltaprop.MLPClassifier``.
- ``sgd`` / ``adam``: local SGD. In each round of ``deltaprop-local-epoch`` tasks every
  partition runs the compiled epoch kernel from the broadcast weights over the next
  ``average_every`` samples of its own shuffled order; the weights and optimizer state are
  averaged, weighted by the samples each partition visited. One round is one local epoch by
  default. ``early_stopping`` adds a ``deltaprop-validate`` round per epoch.

A round or an evaluation is all-or-nothing on the client: its result is applied only once it
has arrived. If a worker dies, Dask reruns its tasks elsewhere and recomputes lost partitions
from their lineage (dask collections); the round is retried. Partitions that cannot be
recomputed (scattered from the client) end the fit with :class:`WorkerLostError`, and the
estimator is left exactly as before the call (the base class's ``_transaction``).
"""

from __future__ import annotations

import inspect
import itertools
import time
import uuid
from concurrent.futures import CancelledError
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import _fit_context, clone
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

import dask
import dask.array as da
import distributed
from distributed.comm.core import CommClosedError
from distributed.scheduler import KilledWorker

from .. import estimators
from ..estimators import solvers as _optim
from ..contract import SOLVERS
from ..engine import rollback
from ..estimators.base import _NON_FINITE
from . import shards as _shards

__all__ = ["MLPClassifier", "MLPRegressor", "WorkerLostError"]

#: inputs per task of the reduction tree across workers (its last level is added on the client)
SPLIT_EVERY = 4
#: seconds between two looks at which workers are alive (a shard's home may have gone)
WORKERS_EVERY = 2.0
#: a payload (weights, optimizer state) up to this size travels inside its task (through the
#: scheduler, no extra round trip); a larger one is scattered from the client to the workers
EMBED_BYTES = 1 << 20
#: how often a round or evaluation is retried after losing a worker whose partitions Dask
#: could recompute
RETRIES = 3
_LOST = (CancelledError, KilledWorker, CommClosedError)


class WorkerLostError(RuntimeError):
    """A worker died during ``fit`` and the fit could not go on (the estimator is unchanged)."""


# --------------------------------------------------------------------------- the cluster
class _Cluster:
    """One fit's view of the cluster: where the shards live, named tasks, rounds, retries.

    Keys are ``deltaprop-<name>-<fit token>-<call>-<index>``, so the dashboard groups the
    tasks by ``<name>`` (``deltaprop-gradient``, ``deltaprop-local-epoch``, ...). Partition j
    has a home worker (``homes[j]``); its tasks are placed there (a preference, not a
    requirement: when the home is gone they run wherever Dask recomputes the shard).
    """

    def __init__(self, client):
        self.client = client
        self.token = uuid.uuid4().hex[:12]
        self.calls = itertools.count()
        self.shards = []
        self.homes = []
        self._threads, self._asked = {}, -np.inf

    def key(self, name, call, index) -> str:
        return f"deltaprop-{name}-{self.token}-{call}-{index}"

    def submit(self, name, call, index, fn, *args, home=None):
        where = {} if home is None else {"workers": [home], "allow_other_workers": True}
        return self.client.submit(fn, *args, key=self.key(name, call, index), **where)

    def map(self, name, fn, items, *args) -> list:
        """``fn(item, *args)`` for every item, one task each (items may be futures)."""
        call = next(self.calls)
        return [self.submit(name, call, i, fn, item, *args) for i, item in enumerate(items)]

    def reduce(self, name, fn, futures, at_most=1, homes=None) -> list:
        """Reduce ``futures`` with ``fn(*group)`` in a fixed tree of :data:`SPLIT_EVERY`-sized
        groups, in their order, until at most ``at_most`` remain (each group's task placed on
        ``homes`` of its first item, if given)."""
        while len(futures) > at_most:
            call = next(self.calls)
            futures = [self.submit(name, call, i // SPLIT_EVERY, fn, *futures[i : i + SPLIT_EVERY],
                                   home=None if homes is None else homes[i])
                       for i in range(0, len(futures), SPLIT_EVERY)]
            homes = None if homes is None else homes[::SPLIT_EVERY]
        return futures

    # ------------------------------------------------------------------ the shards
    def place(self, parts, fn, *args):
        """Persist ``fn(part_j, j, *args)`` as shard j, keeping each partition on the worker that
        loaded it unless that worker holds more than its share (by threads): those move once."""
        distributed.wait(parts)
        who = self.client.who_has(parts)
        threads = self._workers(refresh=True)
        total, J = sum(threads.values()), len(parts)
        cap = {a: -(-J * n // total) for a, n in threads.items()}
        count = dict.fromkeys(threads, 0)
        homes = []
        for p in parts:
            home = next((a for a in who.get(p.key, ()) if a in cap and count[a] < cap[a]), None)
            homes.append(home)
            if home is not None:
                count[home] += 1
        for j, home in enumerate(homes):
            if home is None:
                home = homes[j] = min(threads, key=lambda a: (count[a] / threads[a], a))
                count[home] += 1
        call = next(self.calls)
        self.shards = [self.submit("shard", call, j, fn, p, j, *args, home=homes[j])
                       for j, p in enumerate(parts)]
        self.homes = homes

    def _workers(self, refresh=False) -> dict:
        """``{address: threads}`` of the live workers, asked of the scheduler at most every
        :data:`WORKERS_EVERY` seconds (or when ``refresh``)."""
        now = time.monotonic()
        if refresh or now - self._asked > WORKERS_EVERY:
            self._threads, self._asked = self.client.nthreads(), now
        return self._threads

    def _refresh_homes(self, refresh=False):
        """After a worker left: where each shard is now (None while Dask recomputes it)."""
        alive = self._workers(refresh)
        if all(h in alive for h in self.homes):
            return
        who = self.client.who_has(self.shards)
        self.homes = [next((a for a in who.get(f.key, ()) if a in alive), None) for f in self.shards]

    # ------------------------------------------------------------------ rounds
    def round(self, name, fn, payload, reducer, args=lambda j: (), active=None, n_jobs=None):
        """One round: ``fn(shard_j, payload, *args(j))`` for every active partition, reduced.

        One task per home worker (``deltaprop-<name>``) carries ``payload`` (the weights) and
        runs its partitions (on the worker's threads, :func:`_shards.partitions`), adding their
        results in partition order; those are added in a fixed tree (``deltaprop-sum``), its
        last level of at most :data:`SPLIT_EVERY` on the client. Retried as :meth:`run` says.
        """
        active = list(range(len(self.shards))) if active is None else list(active)

        def build(retry):
            self._refresh_homes(refresh=retry)
            threads = self._workers()
            call = next(self.calls)
            groups = {}
            for j in active:
                groups.setdefault(self.homes[j], []).append(j)
            sent = payload
            if _nbytes(payload) > EMBED_BYTES:  # large: straight from the client to the workers
                homes = [a for a in groups if a is not None]
                sent = self.client.scatter([payload], workers=homes or None,
                                           broadcast=bool(homes), hash=False)[0]
            futures = [self.submit(name, call, i, _shards.partitions, fn, reducer, sent,
                                   [self.shards[j] for j in js], [args(j) for j in js],
                                   threads.get(a, 1), n_jobs, home=a)
                       for i, (a, js) in enumerate(groups.items())]
            futures = self.reduce("sum", reducer, futures, SPLIT_EVERY, list(groups))
            return _shards.value(reducer(*self.client.gather(futures)))

        return self.run(build)

    def run(self, build):
        """``build(retry)``: submit the tasks of one round and return its result.

        A lost worker is survived when Dask can recompute everything (the round is submitted
        again, at most :data:`RETRIES` times); otherwise :class:`WorkerLostError`.
        """
        for attempt in range(RETRIES + 1):
            try:
                return build(attempt > 0)
            except _LOST as exc:
                lost = [j for j, f in enumerate(self.shards) if f.status in ("cancelled", "lost")]
                if lost or isinstance(exc, KilledWorker) or attempt == RETRIES:
                    raise WorkerLostError(self._lost_message(lost, exc)) from exc

    def _lost_message(self, lost, exc) -> str:
        if lost:
            why = (f"partitions {lost} of the training data were lost with it and cannot be "
                   "recomputed: they were scattered from this client (NumPy input), not computed "
                   "from a dask collection. Pass dask arrays or dataframes so that Dask can "
                   "recompute lost partitions")
        elif isinstance(exc, KilledWorker):
            why = f"a task killed {type(exc).__name__}: {exc}"
        else:
            why = f"the round failed {RETRIES + 1} times ({type(exc).__name__}: {exc})"
        return (f"a Dask worker was lost during fit: {why}. The estimator is unchanged "
                "(as before this fit).")

    def release(self):
        if self.shards:
            self.client.cancel(self.shards)
        self.shards = []


def _nbytes(payload) -> int:
    return sum(getattr(a, "nbytes", 8) for a in payload) if isinstance(payload, tuple) \
        else getattr(payload, "nbytes", 8)


def _client(client):
    if client is not None:
        return client
    try:
        return distributed.default_client()
    except ValueError:
        raise ValueError("deltaprop.dask estimators train on a dask.distributed cluster: create "
                         "a distributed.Client first (e.g. Client('tcp://scheduler:8786')) or "
                         "pass client=") from None


# --------------------------------------------------------------------------- inputs
def _feature_names(obj):
    columns = getattr(obj, "columns", None)
    if columns is None:
        return None
    names = list(columns)
    if names and all(isinstance(c, str) for c in names):
        return np.asarray(names, dtype=object)
    return None


def _dask_array(obj, lengths=False):
    """A dask array from a dask array, dataframe or series (row chunks unknown unless
    ``lengths``: then a pass over the partitions finds them)."""
    if isinstance(obj, da.Array):
        return obj
    if hasattr(obj, "to_dask_array"):
        return obj.to_dask_array(lengths=True) if lengths else obj.to_dask_array()
    raise TypeError(f"expected a dask array or dataframe; got {type(obj).__name__}")


def _like_rows(a, X, name):
    """``a`` (dask or NumPy) as a dask array with the row chunks of X (one column block)."""
    if not dask.is_dask_collection(a):
        a = np.asarray(a)
        if a.shape[0] != X.shape[0]:
            raise ValueError(f"{name} has {a.shape[0]} rows; X has {X.shape[0]}")
        return da.from_array(a, chunks=(X.chunks[0],) + a.shape[1:])
    a = _dask_array(a)
    if a.ndim == 2 and a.numblocks[1] > 1:
        a = a.rechunk({1: -1})
    if not np.isnan(a.shape[0]) and not np.isnan(X.shape[0]):
        if a.shape[0] != X.shape[0]:
            raise ValueError(f"{name} has {a.shape[0]} rows; X has {X.shape[0]}")
        return a.rechunk({0: X.chunks[0]}) if a.chunks[0] != X.chunks[0] else a
    if a.numblocks[0] != X.numblocks[0]:
        raise ValueError(f"X and {name} have {X.numblocks[0]} and {a.numblocks[0]} row partitions "
                         "of unknown sizes: partition them alike (or use lengths=True)")
    return a


def _known_rows(pred, *others):
    """``pred`` with known row chunks if any of ``others`` is a NumPy array to align with it."""
    if np.isnan(pred.shape[0]) and any(a is not None and not dask.is_dask_collection(a)
                                       for a in others):
        return pred.compute_chunk_sizes()
    return pred


class _Inputs:
    """X, y and sample_weight as aligned row partitions: futures of loaded ``Part``\\ s."""

    def __init__(self, X, y, sample_weight):
        self.names = _feature_names(X)
        self.dask = dask.is_dask_collection(X)
        if self.dask:
            local = not all(dask.is_dask_collection(a) for a in (y, sample_weight)
                            if a is not None)
            X = _dask_array(X, lengths=local)  # NumPy y: row chunks must be known
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D; got {X.ndim} dimensions")
            if X.numblocks[1] > 1:
                X = X.rechunk({1: -1})
            if np.isnan(X.shape[0]) and local:
                X = X.compute_chunk_sizes()
            self.y = _like_rows(y, X, "y")
            self.s = None if sample_weight is None else _like_rows(sample_weight, X, "sample_weight")
            if self.s is not None and self.s.ndim != 1:
                raise ValueError("sample_weight must be 1-D")
        else:
            if not sp.issparse(X):
                X = np.asarray(X)
            if X.ndim != 2:
                raise ValueError(f"Expected 2D array, got {X.ndim}D array instead")
            y = np.asarray(y)
            s = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
            for a, name in ((y, "y"), (s, "sample_weight")):
                if a is not None and a.shape[0] != X.shape[0]:
                    raise ValueError(f"{name} has {a.shape[0]} rows; X has {X.shape[0]}")
            self.y, self.s = y, s
        self.X = X
        self.n_features = int(X.shape[1])
        self.dtype = "float32" if X.dtype == np.float32 else "float64"
        y_cols = self.y.shape[1] if self.y.ndim == 2 else 0
        self.n_targets = 0 if y_cols == 1 else y_cols  # 0: one column / 1-D

    def load(self, cluster: _Cluster, nonnegative) -> list:
        """Futures of ``_shards.load`` per partition (``deltaprop-load`` tasks)."""
        client, call = cluster.client, next(cluster.calls)
        if self.dask:
            xs = self.X.to_delayed()[:, 0]
            ys = self.y.to_delayed()[:, 0] if self.y.ndim == 2 else self.y.to_delayed()
            ss = self.s.to_delayed() if self.s is not None else [None] * len(xs)
            parts = [dask.delayed(_shards.load)(x, y, s, self.dtype, nonnegative,
                                                dask_key_name=cluster.key("load", call, j))
                     for j, (x, y, s) in enumerate(zip(xs, ys, ss))]
            return client.compute(parts)
        n = self.X.shape[0]
        k = max(1, min(n, sum(client.nthreads().values())))
        cuts = [n * i // k for i in range(k + 1)]
        pieces = [(self.X[a:b], self.y[a:b], None if self.s is None else self.s[a:b])
                  for a, b in zip(cuts[:-1], cuts[1:])]
        futures = client.scatter(pieces, hash=False)
        return [client.submit(_load_piece, f, self.dtype, nonnegative,
                              key=cluster.key("load", call, j)) for j, f in enumerate(futures)]


def _load_piece(piece, dtype, nonnegative):
    return _shards.load(*piece, dtype, nonnegative)


# --------------------------------------------------------------------------- the estimators
class _DaskMLP:
    """What the Dask estimators add to deltaprop's (use :class:`MLPClassifier` /
    :class:`MLPRegressor`)."""

    _dask_constraints = {
        "client": "no_validation",
        "average_every": [Interval(Integral, 1, None, closed="left"), None],
    }

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit on the cluster: X, y, sample_weight as dask arrays / dataframes, or NumPy.

        Parameters
        ----------
        X : dask array or dask DataFrame (n_samples, n_features), or array-like (scattered)
        y : dask array or Series (n_samples,) or (n_samples, n_outputs), or array-like
        sample_weight : dask array (n_samples,), array-like or None

        Returns
        -------
        self
        """
        return self._transaction(self._fit_dask, X, y, sample_weight)

    def _fit_dask(self, X, y, sample_weight):
        client = _client(self.client)
        data = _Inputs(X, y, sample_weight)
        first_pass = "_mlp" not in self.__dict__ or not self.warm_start
        self._check_features(data.n_features, data.names, reset=first_pass)
        cluster = _Cluster(client)
        try:
            parts = data.load(cluster, getattr(self, "loss", None) == "poisson")
            targets, n_outputs = self._targets(cluster, parts, data, first_pass)
            hidden = self.hidden_layer_sizes
            hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
            if np.any(np.array(hidden) <= 0):
                raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden)
            layer_units = [data.n_features, *[int(h) for h in hidden], n_outputs]
            self._random_state = check_random_state(self.random_state)
            if first_pass:
                self._initialize(np.empty((0, n_outputs)), layer_units, data.dtype)
            elif list(self._mlp.layer_sizes) != layer_units:
                raise ValueError(
                    f"warm_start needs the same network: the fitted one has layer sizes "
                    f"{list(self._mlp.layer_sizes)}, this call needs {layer_units}")
            self.n_outputs_ = n_outputs
            seed = int(self._random_state.randint(np.iinfo(np.int32).max))
            stochastic = self.solver in ("sgd", "adam")
            fraction = self.validation_fraction if (stochastic and self.early_stopping) else 0.0
            cluster.place(parts, _shards.finalize, targets, self._mlp.dtype.name, fraction, seed)
            del parts
            spec = _shards.NetSpec.of(self._mlp, self.backend)
            sums = client.gather(cluster.map("summary", _shards.summary, cluster.shards,
                                             spec.loss, self.backend))
            backends = {s[-1] for s in sums}
            if len(backends) == 1:
                self.backend_ = backends.pop()
            weighted = sample_weight is not None or getattr(self, "class_weight", None) is not None
            if stochastic:
                self._fit_local_sgd(cluster, spec, sums, seed, targets, weighted)
            else:
                self._fit_lbfgs_dask(cluster, spec, sums)
        finally:
            cluster.release()
        if not np.isfinite(self._mlp.w).all():
            raise ValueError(_NON_FINITE)
        return self

    def _check_features(self, n_features, names, reset):
        if reset:
            self.n_features_in_ = n_features
            if names is not None:
                self.feature_names_in_ = names
            else:
                self.__dict__.pop("feature_names_in_", None)
            return
        if n_features != self.n_features_in_:
            raise ValueError(f"X has {n_features} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input.")
        fitted = getattr(self, "feature_names_in_", None)
        if names is not None and fitted is not None and not np.array_equal(names, fitted):
            raise ValueError("The feature names should match those that were passed during fit: "
                             f"fitted with {list(fitted)}, got {list(names)}")

    # ------------------------------------------------------------------ L-BFGS
    def _fit_lbfgs_dask(self, cluster, spec, sums):
        """The single-machine estimator's L-BFGS driver with the objective summed on the
        cluster (:class:`_LossGradient`)."""
        self._minimize_lbfgs(_LossGradient(cluster, spec, self._mlp, sums, self.alpha, self.n_jobs))

    # ------------------------------------------------------------------ local SGD
    def _fit_local_sgd(self, cluster, spec, sums, seed, targets, weighted):
        """sgd / adam as local SGD with parameter averaging (see the module docstring); the
        records, schedules and stopping rules are the single-machine estimator's."""
        self._start_records()
        opt = self._stochastic_optimizer(False)
        net = self._mlp
        sizes = [s[0] for s in sums]
        n_train = sum(sizes)
        if n_train == 0:
            raise ValueError("no training samples")
        batch = self._batch_size(n_train)
        every = max(sizes) if self.average_every is None else int(self.average_every)
        every = max(batch, every - every % batch)  # whole batches: the same batches as one call
        scale = net.layer_sizes[-1] if net.loss_function == "squared_error" else 1
        val = None
        if self.early_stopping:
            n_val = sum(s[3] for s in sums)
            if n_val < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                                 "or the size of your dataset.")
            val = (sum(s[4] for s in sums), sum(s[5] for s in sums), targets, weighted)
        epoch = [len(self.loss_curve_)]

        def run_epoch():
            with rollback(net.w, opt.state, opt.t):
                data, penalty, const, finite = self._local_epoch(
                    cluster, spec, opt, sizes, batch, every, seed, epoch[0])
            epoch[0] += 1
            if not self.early_stopping and not finite:
                raise ValueError(_NON_FINITE)
            return float((data / scale + penalty + const) / n_train)

        def after_epoch():
            if val is None:
                self._update_no_improvement_count(False, None)
            else:
                self._validate(cluster, spec, val, scale)

        self._epoch_loop(opt, run_epoch, n_train, after_epoch)

    def _local_epoch(self, cluster, spec, opt, sizes, batch, every, seed, epoch):
        """One epoch in rounds of ``every`` samples per partition; ``(data, penalty, const,
        finite)``: the kernels' loss sums and the Poisson constant, over the partitions."""
        net = self._mlp
        opt.prepare()
        state = None if opt.code == SOLVERS["sgd"] else opt.state  # plain sgd: no state to mix
        total, reg, const, finite = 0.0, 0.0, 0.0, True
        for start in range(0, max(sizes), every):
            mw, mstate, t, data, penalty, c, m, ok = cluster.round(
                "local-epoch", _shards.local_epoch, (net.w, state, opt.t, opt.hyper, opt.code),
                _shards.mix, active=[j for j, n in enumerate(sizes) if n > start],
                args=lambda j: (j, spec, batch, seed, epoch, self.shuffle, start,
                                min(start + every, sizes[j])))
            net.w[...] = mw / m
            if state is not None:
                opt.state[...] = mstate / m
            opt.t[...] = t
            total += data
            reg += penalty
            const += c
            finite = finite and ok
        return total, reg, const, finite

    def _validate(self, cluster, spec, val, scale):
        """Early stopping on the validation rows that stay on the workers: the score and loss
        of the current weights from summed statistics (accuracy, or R² per output averaged)."""
        S_val, C_val, targets, weighted = val
        net = self._mlp
        E, stats = cluster.round("validate", _shards.validation, net.w.copy(), _shards.add,
                                 args=lambda j: (spec, targets, weighted), n_jobs=self.n_jobs)
        sq = _optim.squared_weights(net.w, _optim.weight_slices(net.layout))
        self._record_validation(_score(stats), (E / scale + C_val + 0.5 * self.alpha * sq) / S_val)

    # ------------------------------------------------------------------ prediction
    def _lazy(self, X, method, n_columns, dtype):
        """``method`` of the plain estimator mapped over the row blocks of a dask X: a lazy
        dask array (1-D if ``n_columns`` is None, else (n, n_columns))."""
        check_is_fitted(self)
        names = _feature_names(X)
        X = _dask_array(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D; got {X.ndim} dimensions")
        self._check_features(int(X.shape[1]), names, reset=False)
        if X.numblocks[1] > 1:
            X = X.rechunk({1: -1})
        model = self._block_model()
        token = dask.base.tokenize(X.name, method, self._mlp.w.tobytes(), type(self).__name__)
        model_d = dask.delayed(model, name=f"deltaprop-model-{token}", traverse=False)
        dtype = np.dtype(dtype)
        if n_columns is None:
            return X.map_blocks(_shards.predict_block, model_d, method, drop_axis=1, dtype=dtype,
                                meta=np.empty((0,), dtype), name=f"deltaprop-{method}-{token}")
        return X.map_blocks(_shards.predict_block, model_d, method, chunks=(X.chunks[0], (n_columns,)),
                            dtype=dtype, meta=np.empty((0, 0), dtype),
                            name=f"deltaprop-{method}-{token}")

    def _block_model(self):
        """The plain estimator the prediction tasks use (blocks come without feature names)."""
        model = self.to_local()
        model.__dict__.pop("feature_names_in_", None)
        return model

    def to_local(self):
        """This fitted model as a plain ``deltaprop.MLPClassifier`` / ``MLPRegressor`` (no Dask
        needed to use or unpickle it; the weights are copied)."""
        check_is_fitted(self)
        state = self.__getstate__()
        for name in self._dask_constraints:
            state.pop(name, None)
        local = object.__new__(self._local_class)
        local.__setstate__(state)
        return local

    def __getstate__(self):
        state = super().__getstate__()
        if state.get("client") is not None:  # a pickle does not carry a connection
            state = dict(state)
            state["client"] = None
        return state

    def __sklearn_clone__(self):
        """clone() keeps the client object itself (a connection is not deep-copied)."""
        params = self.get_params(deep=False)
        client = params.pop("client")
        return type(self)(**{k: clone(v, safe=False) for k, v in params.items()}, client=client)


class _LossGradient:
    r"""The L-BFGS objective of :class:`deltaprop._optim.LossGradient`, summed on the cluster.

    .. math:: F(w) = \frac{1}{S} \Big( \sum_j E_j(w) + C + \frac{\alpha}{2} \lVert W \rVert^2 \Big),
              \qquad \nabla F = \frac{1}{S} \Big( \sum_j g_j(w) + \alpha W \Big)

    Each call sends w to each worker, runs ``deltaprop-gradient`` on every partition, adds the
    ``(E_j, g_j)`` in the fixed tree: the same numbers as the single-machine objective up to
    the order of summation.
    """

    def __init__(self, cluster, spec, net, sums, alpha, n_jobs=None):
        self.cluster, self.spec, self.net = cluster, spec, net
        self.alpha, self.n_jobs = alpha, n_jobs
        self.S = float(sum(s[1] for s in sums))
        self.const = float(sum(s[2] for s in sums))
        self.scale = net.layer_sizes[-1] if net.loss_function == "squared_error" else 1
        self.wslices = _optim.weight_slices(net.layout)
        self.last = None  # (x, E, ||W||^2) of the latest evaluation
        self.evaluations = 0

    def sums(self, w):
        """``(E, g)``: the per-partition sums at ``w``, added on the cluster."""
        self.evaluations += 1
        return self.cluster.round("gradient", _shards.loss_and_gradient, w, _shards.add,
                                  args=lambda j: (self.spec,), n_jobs=self.n_jobs)

    def __call__(self, x):
        w = self.net.w
        w[...] = x
        E, g = self.sums(w.copy())
        sq = _optim.squared_weights(w, self.wslices)
        for sl in self.wslices:
            g[sl] += self.alpha * w[sl]
        self.last = (np.array(x, dtype=np.float64), E, sq)
        return (E + self.const + 0.5 * self.alpha * sq) / self.S, g / self.S

    def reported(self, x) -> float:
        """scikit-learn's ``loss_`` at ``x`` (outputs averaged for squared error, + penalty)."""
        if self.last is None or not np.array_equal(self.last[0], x):
            self(x)
        _, E, sq = self.last
        return (E / self.scale + self.const + 0.5 * self.alpha * sq) / self.S


def _score(stats) -> float:
    """Accuracy from ``[Σ u, Σ u·correct]`` or mean R² from ``[Σ u, Σ u t, Σ u t², Σ u r²]``."""
    stats = np.asarray(stats, dtype=np.float64)
    if not np.isfinite(stats).all():
        return np.nan
    if stats.ndim == 1:
        return float(stats[1] / stats[0])
    u, ut, utt, urr = stats
    tot = utt - ut * ut / u
    r2 = np.where(tot > 0, 1 - urr / np.where(tot > 0, tot, 1), np.where(urr == 0, 1.0, 0.0))
    return float(r2.mean())


def _dask_init(base):
    """``__init__`` taking ``base``'s parameters plus ``client`` and ``average_every``.

    Its signature is ``base.__init__``'s with the two added (what scikit-learn's get_params
    reads), so a parameter added to the single-machine estimators is a parameter here too.
    """
    sig = inspect.signature(base.__init__)
    extra = [inspect.Parameter("client", inspect.Parameter.KEYWORD_ONLY, default=None),
             inspect.Parameter("average_every", inspect.Parameter.KEYWORD_ONLY, default=None)]

    def __init__(self, *args, client=None, average_every=None, **params):
        base.__init__(self, *args, **params)
        self.client = client
        self.average_every = average_every

    __init__.__signature__ = sig.replace(parameters=[*sig.parameters.values(), *extra])
    return __init__


def _no_partial_fit(est):
    raise AttributeError("partial_fit is not available on deltaprop.dask estimators: fit trains on "
                         "the whole distributed data set (to_local() gives a single-machine "
                         "estimator that has partial_fit)")


_EXTRA_DOC = """
    Trains on a dask.distributed cluster (see :mod:`deltaprop.dask`); the other parameters and
    the fitted attributes are those of the single-machine estimator.

    Parameters
    ----------
    client : distributed.Client or None, default=None
        The cluster to train on (None: the current client).
    average_every : int or None, default=None
        ``sgd`` / ``adam``: samples each partition visits between two averagings of the
        weights (rounded down to whole batches; None: one local epoch, the most).
    n_jobs : int or None, default=None
        Threads inside one partition's sums on a worker (``lbfgs``, validation, prediction);
        None: the worker's threads that its partitions leave free (each partition of a worker
        runs on a thread of its own).
    """


class MLPClassifier(_DaskMLP, estimators.MLPClassifier):
    __doc__ = "Multi-layer perceptron classifier on a Dask cluster.\n" + _EXTRA_DOC
    _local_class = estimators.MLPClassifier
    _parameter_constraints = {**estimators.MLPClassifier._parameter_constraints,
                              **_DaskMLP._dask_constraints}
    __init__ = _dask_init(estimators.MLPClassifier)

    @available_if(_no_partial_fit)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Not available (see :meth:`to_local`)."""

    def _targets(self, cluster, parts, data, first_pass):
        """Classes from one distributed pass over the loaded partitions (``deltaprop-labels``:
        ``np.unique`` per partition, merged in the tree), the binarizer and class weights."""
        values, counts, n_columns = cluster.reduce(
            "labels", _shards.merge_labels, cluster.map("labels", _shards.labels, parts))[0].result()
        if n_columns:
            if not set(values.tolist()) <= {0, 1}:
                raise ValueError("Multioutput target data is not supported with label "
                                 "binarization")
            sample = np.vstack([np.eye(n_columns, dtype=int), np.zeros(n_columns, dtype=int)])
            binarizer = LabelBinarizer().fit(sample)
        else:
            binarizer = LabelBinarizer().fit(values)
        if first_pass or "classes_" not in self.__dict__:
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
        elif set(binarizer.classes_.tolist()) != set(self.classes_.tolist()):
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in the previous "
                f"call to fit. Previously got {self.classes_}, `y` has {binarizer.classes_}")
        weights = None
        if self.class_weight is not None:
            if n_columns:
                raise ValueError("class_weight is not supported for multilabel targets; pass "
                                 "sample_weight instead")
            if isinstance(self.class_weight, str):  # "balanced": n / (K n_k)
                weights = counts.sum() / (len(values) * counts.astype(np.float64))
            else:
                weights = compute_class_weight(self.class_weight, classes=self.classes_,
                                               y=self.classes_)
        lb = self._label_binarizer
        K = 1 if lb.y_type_ == "binary" else len(lb.classes_)
        return _shards.Targets(lb, weights), K

    def predict(self, X):
        """Class labels: a lazy dask array for a dask X, else an ndarray (as deltaprop's)."""
        if not dask.is_dask_collection(X):
            return super().predict(X)
        multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        return self._lazy(X, "predict", self.n_outputs_ if multilabel else None,
                          self._label_binarizer.transform(self.classes_[:1]).dtype
                          if multilabel else self.classes_.dtype)

    def predict_proba(self, X):
        """Probabilities (n, n_classes): lazy for a dask X."""
        if not dask.is_dask_collection(X):
            return super().predict_proba(X)
        return self._lazy(X, "predict_proba", max(2, self.n_outputs_), self._mlp.dtype)

    def predict_log_proba(self, X):
        """Log-probabilities (n, n_classes): lazy for a dask X."""
        if not dask.is_dask_collection(X):
            return super().predict_log_proba(X)
        return self._lazy(X, "predict_log_proba", max(2, self.n_outputs_), self._mlp.dtype)

    def score(self, X, y, sample_weight=None):
        """Accuracy; for a dask X a lazy 0-d dask array (``float()`` computes it)."""
        if not dask.is_dask_collection(X):
            return super().score(X, y, sample_weight)
        pred = _known_rows(self.predict(X), y, sample_weight)
        y = _like_rows(y, pred, "y")
        hit = pred == y
        if hit.ndim == 2:
            hit = hit.all(axis=1)
        if sample_weight is None:
            return hit.mean()
        u = _like_rows(sample_weight, pred, "sample_weight")
        return (hit * u).sum() / u.sum()


class MLPRegressor(_DaskMLP, estimators.MLPRegressor):
    __doc__ = "Multi-layer perceptron regressor on a Dask cluster.\n" + _EXTRA_DOC
    _local_class = estimators.MLPRegressor
    _parameter_constraints = {**estimators.MLPRegressor._parameter_constraints,
                              **_DaskMLP._dask_constraints}
    __init__ = _dask_init(estimators.MLPRegressor)

    @available_if(_no_partial_fit)
    def partial_fit(self, X, y, sample_weight=None):
        """Not available (see :meth:`to_local`)."""

    def _targets(self, cluster, parts, data, first_pass):
        return _shards.Targets(), max(1, data.n_targets)

    def predict(self, X):
        """Predictions: a lazy dask array for a dask X, else an ndarray (as deltaprop's)."""
        if not dask.is_dask_collection(X):
            return super().predict(X)
        return self._lazy(X, "predict", None if self.n_outputs_ == 1 else self.n_outputs_,
                          self._mlp.dtype)

    def score(self, X, y, sample_weight=None):
        """R² (outputs averaged); for a dask X a lazy 0-d dask array."""
        if not dask.is_dask_collection(X):
            return super().score(X, y, sample_weight)
        pred = _known_rows(self.predict(X), y, sample_weight)
        y = _like_rows(y, pred, "y").astype(np.float64)
        if pred.ndim == 1:
            pred, y = pred[:, None], (y[:, None] if y.ndim == 1 else y)
        u = (da.ones_like(pred[:, 0], dtype=np.float64) if sample_weight is None
             else _like_rows(sample_weight, pred, "sample_weight").astype(np.float64))[:, None]
        mean = (u * y).sum(axis=0) / u.sum()
        num = (u * (y - pred) ** 2).sum(axis=0)
        den = (u * (y - mean) ** 2).sum(axis=0)
        r2 = da.where(den > 0, 1 - num / da.where(den > 0, den, 1), da.where(num == 0, 1.0, 0.0))
        return r2.mean()
