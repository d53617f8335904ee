r"""The Dask estimators' shared machinery: fit on the cluster, its two solvers, lazy prediction.

Design
------
``fit`` turns X, y, sample_weight into row partitions (:mod:`~deltaprop.dask.inputs`), loads
and persists them as shards on the workers (:class:`~deltaprop.dask.cluster.Cluster`), and
trains with the single-machine estimator's drivers, the sums coming from rounds of tasks:

- ``lbfgs``: each evaluation of SciPy's L-BFGS-B on the client is one round of
  ``deltaprop-gradient`` tasks returning :math:`(\sum_j E_j, \sum_j g_j)`;
  :class:`ClusterLossGradient` is the estimators' L-BFGS objective
  (:class:`deltaprop.estimators.objective.LossGradient`) with those sums: the same model as
  ``deltaprop.MLPClassifier(solver="lbfgs")`` on the same data.
- ``sgd`` / ``adam``: epochs as ``sync`` says (:mod:`~deltaprop.dask.sgd`): local SGD, in
  each round of ``deltaprop-local-epoch`` tasks every partition running the compiled epoch
  kernel from the broadcast weights over the next ``average_every`` samples of its own
  shuffled order (one local epoch by default), the models then combined (by default averaged
  after steps of J times the step size, J partitions); or synchronous mini-batches, a round of
  ``deltaprop-batch-gradient`` tasks per batch. ``early_stopping`` adds a
  ``deltaprop-validate`` round per epoch. The records, schedules and stopping rules are the
  single-machine estimator's (:class:`deltaprop.estimators.stochastic.StochasticFit`).

An evaluation or an epoch is all-or-nothing on the client, and ``fit`` is the base class's
transaction: a lost worker whose partitions cannot be recomputed ends the fit with
:class:`~deltaprop.dask.cluster.WorkerLostError` and leaves the estimator as before the call.
"""

from __future__ import annotations

from numbers import Integral
from typing import TYPE_CHECKING, Any, ClassVar

import dask
import numpy as np
from sklearn.base import _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..engine import rollback
from ..estimators.exceptions import NON_FINITE_MESSAGE
from ..estimators.objective import LossGradient, epoch_loss, output_scale, reported_loss, squared_weights, weight_slices
from ..estimators.solvers import STOCHASTIC_SOLVERS, Optimizer
from . import sgd, shards
from ._attributes import DaskAttributes
from .cluster import Cluster, get_client
from .inputs import Inputs, dask_array, feature_names

if TYPE_CHECKING:
    import dask.array as da
    import dask.dataframe as dd
    from numpy.typing import ArrayLike
    from typing_extensions import Self

    from ..engine import MLP
    from ..estimators.base import BaseMLP, MatrixLike

__all__ = ["DaskMLP", "ClusterLossGradient", "score_from_stats"]


class DaskMLP(DaskAttributes):
    """What the Dask estimators add to deltaprop's (a mixin placed before
    :class:`deltaprop.MLPClassifier` / ``MLPRegressor``; use :class:`deltaprop.dask.MLPClassifier`
    / :class:`deltaprop.dask.MLPRegressor`)."""

    #: the Dask estimators' own parameters and their defaults
    _dask_defaults: ClassVar[dict[str, Any]] = {
        "client": None,
        "average_every": None,
        "sync": sgd.SYNC_MODES[0],
    }
    _dask_constraints: ClassVar[dict[str, Any]] = {
        "client": "no_validation",
        "average_every": [Interval(Integral, 1, None, closed="left"), None],
        "sync": [StrOptions(set(sgd.SYNC_MODES))],
    }

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: da.Array | dd.DataFrame | MatrixLike, y: da.Array | dd.Series | ArrayLike,
            sample_weight: da.Array | ArrayLike | None = None) -> Self:
        """Fit on the cluster: X, y, sample_weight as dask arrays / dataframes, or NumPy.

        A transaction: whatever it raises, the estimator is as it was before the call.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features), or array-like
            The inputs; a NumPy or scipy array is cut in one piece per worker thread and
            scattered (such pieces cannot be recomputed if a worker is lost).
        y : dask array or Series of shape (n_samples,) or (n_samples, n_outputs), or array-like
            The targets, partitioned as X.
        sample_weight : dask array or array-like of shape (n_samples,), default=None
            Sample weights :math:`s_n` (None: all 1).

        Returns
        -------
        self
            The fitted estimator.

        Raises
        ------
        ValueError
            A parameter or the data is invalid, or the weights became non-finite.
        WorkerLostError
            A worker was lost and the fit could not go on.
        """
        return self._transaction(self._fit_dask, X, y, sample_weight)

    def _fit_dask(self, X: Any, y: Any, sample_weight: Any) -> None:
        client = get_client(self.client)
        data = Inputs(X, y, sample_weight)
        first_pass = "_mlp" not in self.__dict__ or not self.warm_start
        self._check_features(data.n_features, data.names, reset=first_pass)
        cluster = Cluster(client)
        try:
            parts = data.load(cluster, getattr(self, "loss", None) == "poisson")
            targets, n_outputs = self._targets(cluster, parts, data, first_pass)
            layer_units = [data.n_features, *self._hidden_units(), n_outputs]
            self._random_state = check_random_state(self.random_state)
            if first_pass:
                self._initialize(np.empty((0, n_outputs)), layer_units, np.dtype(data.dtype))
            elif list(self._mlp.layer_sizes) != layer_units:
                raise ValueError(
                    f"warm_start needs the same network: the fitted one has layer sizes "
                    f"{list(self._mlp.layer_sizes)}, this call needs {layer_units}")
            self.n_outputs_ = n_outputs
            seed = int(self._random_state.randint(np.iinfo(np.int32).max))
            stochastic = self.solver in STOCHASTIC_SOLVERS
            fraction = self.validation_fraction if (stochastic and self.early_stopping) else 0.0
            cluster.place(parts, shards.finalize, targets, self._mlp.dtype.name, fraction, seed)
            del parts
            spec = shards.NetSpec.of(self._mlp, self.backend)
            sums = client.gather(cluster.map("summary", shards.summary, cluster.shards,
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
            raise ValueError(NON_FINITE_MESSAGE)

    def _check_features(self, n_features: int, names: np.ndarray | None, reset: bool) -> None:
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
    def _fit_lbfgs_dask(self, cluster: Cluster, spec: shards.NetSpec, sums: list[tuple]) -> None:
        """The single-machine estimator's L-BFGS driver with the objective summed on the
        cluster (:class:`ClusterLossGradient`)."""
        self._minimize_lbfgs(ClusterLossGradient(cluster, spec, self._mlp, sums, self.alpha,
                                                 self.n_jobs))

    # ------------------------------------------------------------------ local SGD
    def _fit_local_sgd(self, cluster: Cluster, spec: shards.NetSpec, sums: list[tuple], seed: int,
                       targets: shards.Targets, weighted: bool) -> None:
        """sgd / adam in epochs of local SGD or synchronous batches (see the module docstring);
        the records, schedules and stopping rules are the single-machine estimator's."""
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
        scale = output_scale(net.loss_function, net.layer_sizes[-1])
        val: tuple[float, float, shards.Targets, bool] | None = None
        if self.early_stopping:
            n_val = sum(s[3] for s in sums)
            if n_val < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                                 "or the size of your dataset.")
            val = (sum(s[4] for s in sums), sum(s[5] for s in sums), targets, weighted)
        epoch = [len(self.loss_curve_)]

        def run_epoch() -> float:
            with rollback(net.w, opt.state, opt.t):
                data, penalty, const, finite = self._local_epoch(
                    cluster, spec, opt, sizes, batch, every, seed, epoch[0])
            epoch[0] += 1
            if not self.early_stopping and not finite:
                raise ValueError(NON_FINITE_MESSAGE)
            return epoch_loss(data, scale, penalty, const, n_train)

        def after_epoch() -> None:
            if val is None:
                self._update_no_improvement_count(False, None)
            else:
                self._validate(cluster, spec, val, scale)

        self._epoch_loop(opt, lambda k: [run_epoch()], n_train, after_epoch)

    def _local_epoch(self, cluster: Cluster, spec: shards.NetSpec, opt: Optimizer, sizes: list[int],
                     batch: int, every: int, seed: int, epoch: int) -> tuple[float, float, float, bool]:
        """One epoch as ``sync`` says (:mod:`~deltaprop.dask.sgd`); ``(data, penalty, const,
        finite)``: the kernels' loss sums and the Poisson constant, over the partitions."""
        if self.sync == "batch":
            return sgd.synchronous_batches(cluster, spec, self._mlp, opt, sizes, batch, seed, epoch,
                                           self.shuffle, self.n_jobs)
        return sgd.local_rounds(cluster, spec, self._mlp, opt, sizes, batch, every, seed, epoch,
                                self.shuffle, self.sync)

    def _validate(self, cluster: Cluster, spec: shards.NetSpec,
                  val: tuple[float, float, shards.Targets, bool], scale: int) -> None:
        """Early stopping on the validation rows that stay on the workers: the score and loss
        of the current weights from summed statistics (accuracy, or R² per output averaged)."""
        S_val, C_val, targets, weighted = val
        net = self._mlp
        E, stats = cluster.round("validate", shards.validation, net.w.copy(), shards.add,
                                 args=lambda j: (spec, targets, weighted), n_jobs=self.n_jobs)
        sq = squared_weights(net.w, weight_slices(net.layout))
        self._record_validation(score_from_stats(stats),
                                reported_loss(E, scale, C_val, self.alpha, sq, S_val))

    # ------------------------------------------------------------------ prediction
    def _lazy(self, X: Any, method: str, n_columns: int | None, dtype: np.dtype) -> da.Array:
        """``method`` of the plain estimator mapped over the row blocks of a dask X: a lazy
        dask array (1-D if ``n_columns`` is None, else (n, n_columns))."""
        check_is_fitted(self)
        names = feature_names(X)
        X = dask_array(X)
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
            return X.map_blocks(shards.predict_block, model_d, method, drop_axis=1, dtype=dtype,
                                meta=np.empty((0,), dtype), name=f"deltaprop-{method}-{token}")
        return X.map_blocks(shards.predict_block, model_d, method, chunks=(X.chunks[0], (n_columns,)),
                            dtype=dtype, meta=np.empty((0, 0), dtype),
                            name=f"deltaprop-{method}-{token}")

    def _block_model(self) -> BaseMLP:
        """The plain estimator the prediction tasks use (blocks come without feature names)."""
        model = self.to_local()
        model.__dict__.pop("feature_names_in_", None)
        return model

    def to_local(self) -> BaseMLP:
        """This fitted model as a plain ``deltaprop.MLPClassifier`` / ``MLPRegressor``.

        Returns
        -------
        deltaprop.MLPClassifier or deltaprop.MLPRegressor
            A fitted single-machine estimator with this one's parameters (but ``client``,
            ``average_every`` and ``sync``) and a copy of its weights: no Dask needed to use or
            unpickle it.
        """
        check_is_fitted(self)
        state = self.__getstate__()
        for name in self._dask_constraints:
            state.pop(name, None)
        local = object.__new__(self._local_class)
        local.__setstate__(state)
        return local

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if state.get("client") is not None:  # a pickle does not carry a connection
            state = dict(state)
            state["client"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a parameter the pickle lacks (pickled by a deltaprop without it) takes its default,
        # as in a new estimator
        super().__setstate__({**self._dask_defaults, **state})

    def __sklearn_clone__(self) -> Self:
        """clone() keeps the client object itself (a connection is not deep-copied)."""
        params = self.get_params(deep=False)
        client = params.pop("client")
        return type(self)(**{k: clone(v, safe=False) for k, v in params.items()}, client=client)


class ClusterLossGradient(LossGradient):
    r"""The estimators' L-BFGS objective with its sums added on the cluster.

    :class:`deltaprop.estimators.objective.LossGradient` (F, its gradient, the L2 term and
    scikit-learn's ``loss_``) whose :meth:`sums` are one round of ``deltaprop-gradient`` tasks:
    w goes to each worker, every partition j gives :math:`(E_j, g_j)`, and those are added in
    the fixed tree, so F is the single-machine objective up to the order of summation.

    Parameters
    ----------
    cluster : Cluster
        The fit's cluster, its shards placed.
    spec : NetSpec
        The network the workers rebuild.
    net : MLP
        The client's network (its ``w`` is the point evaluated).
    sums : list of tuple
        :func:`~deltaprop.dask.shards.summary` of every shard: their rows' weight sums S and
        Poisson constants C are added here.
    alpha : float
        α, the L2 penalty.
    n_jobs : int or None, default=None
        Threads inside one partition's sums.
    """

    def __init__(self, cluster: Cluster, spec: shards.NetSpec, net: MLP, sums: list[tuple], alpha: float,
                 n_jobs: int | None = None) -> None:
        super().__init__(net, alpha, float(sum(s[1] for s in sums)), float(sum(s[2] for s in sums)),
                         output_scale(net.loss_function, net.layer_sizes[-1]))
        self.cluster, self.spec, self.n_jobs = cluster, spec, n_jobs
        self.evaluations = 0

    def sums(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        """``(E, g)``: the per-partition sums at ``w``, added on the cluster."""
        self.evaluations += 1
        return self.cluster.round("gradient", shards.loss_and_gradient, w.copy(), shards.add,
                                  args=lambda j: (self.spec,), n_jobs=self.n_jobs)


def score_from_stats(stats: ArrayLike) -> float:
    """Accuracy from ``[Σ u, Σ u·correct]``, or R² averaged over the outputs from
    ``[Σ u, Σ u t, Σ u t², Σ u r²]`` (per output): the validation score of summed statistics.

    Parameters
    ----------
    stats : array-like of shape (2,) or (4, K)
        :func:`~deltaprop.dask.shards.validation`'s statistics, added over the partitions.

    Returns
    -------
    float
        NaN if any statistic is not finite.
    """
    stats = np.asarray(stats, dtype=np.float64)
    if not np.isfinite(stats).all():
        return np.nan
    if stats.ndim == 1:
        return float(stats[1] / stats[0])
    u, ut, utt, urr = stats
    tot = utt - ut * ut / u
    r2 = np.where(tot > 0, 1 - urr / np.where(tot > 0, tot, 1), np.where(urr == 0, 1.0, 0.0))
    return float(r2.mean())
