"""The estimators' shared machinery: parameters, the network and its weights, fit as a transaction, prediction.

:class:`BaseMLP` is what :class:`~deltaprop.estimators.MLPClassifier` and
:class:`~deltaprop.estimators.MLPRegressor` have in common: the constraints table, the fitted
weights (views into a :class:`deltaprop.MLP`), pickling, ``fit`` (validate, build or check the
network, run a solver: :class:`~deltaprop.estimators.stochastic.StochasticFit` or
:class:`~deltaprop.estimators.lbfgs.LbfgsFit`) as a transaction, and the forward pass of
prediction. What differs (targets, output unit, scores) is each estimator's.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from numbers import Integral
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from sklearn.base import BaseEstimator, _fit_context, is_classifier
from sklearn.neural_network._multilayer_perceptron import BaseMultilayerPerceptron
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..contract import HIDDEN_ACTIVATIONS, OUTPUT_LOSS, PARALLEL_MODES
from ..engine import MLP, kernel_input
from .exceptions import NON_FINITE_MESSAGE
from .lbfgs import LbfgsFit
from .solvers import STOCHASTIC_SOLVERS
from .stochastic import StochasticFit

if TYPE_CHECKING:
    from typing import TypeAlias

    import scipy.sparse as sp
    from numpy.typing import ArrayLike, DTypeLike
    from sklearn.utils import Tags
    from typing_extensions import Self

    #: what ``X`` may be: anything ``np.asarray`` takes, or a scipy sparse matrix
    MatrixLike: TypeAlias = ArrayLike | sp.spmatrix | sp.sparray

__all__ = ["BaseMLP"]


class BaseMLP(StochasticFit, LbfgsFit, BaseEstimator):
    """Shared machinery of :class:`MLPClassifier` and :class:`MLPRegressor` (not an estimator
    by itself: the subclasses say how targets are encoded, which output unit the network has
    and how a prediction is scored)."""

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS))],
        "random_state": ["random_state"],
        "backend": [str],
        "progress_bar": ["boolean"],
        "callback": [callable, None],
        "n_jobs": [Integral, None],
        "parallel": [StrOptions(set(PARALLEL_MODES))],
    }

    # ------------------------------------------------------------------ fitted weights
    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices, ``coefs_[i]`` (n_in, n_out): views into the engine's flat ``w``."""
        return self._net().coefs_

    @coefs_.setter
    def coefs_(self, values: list[np.ndarray]) -> None:
        self._net().coefs_ = values

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, ``intercepts_[i]`` (n_out,): views into the engine's flat ``w``."""
        return self._net().intercepts_

    @intercepts_.setter
    def intercepts_(self, values: list[np.ndarray]) -> None:
        self._net().intercepts_ = values

    def _net(self) -> MLP:
        try:
            return self.__dict__["_mlp"]
        except KeyError:
            raise AttributeError(f"This {type(self).__name__} instance is not fitted yet") from None

    @classmethod
    def from_network(cls, net: MLP, classes: ArrayLike | None = None, **params: Any) -> Self:
        """A fitted estimator that predicts with ``net`` (its weights shared, not copied).

        This is how a saved network becomes an estimator again without pickle (the command
        line's model file, :mod:`deltaprop.cli.pipeline`).

        Parameters
        ----------
        net : deltaprop.MLP
            The network; its output unit and loss must be the estimator's (a classifier: one
            logistic output with binary cross-entropy, or K softmax outputs with cross-entropy;
            a regressor: identity outputs with the sum-of-squares error).
        classes : array-like of shape (n_classes,), optional
            A classifier's labels in ``classes_`` order (sorted; two labels for a single
            logistic output, K labels for K softmax outputs). None for a regressor.
        **params
            Constructor parameters; ``activation`` and ``hidden_layer_sizes`` are the network's.

        Returns
        -------
        MLPClassifier or MLPRegressor
            Fitted to predict with ``net``; its training attributes (``n_iter_`` 0, an empty
            ``loss_curve_``) are those of an estimator that has not been trained here.

        Raises
        ------
        ValueError
            A parameter that scikit-learn's constraints reject, or labels or an output unit
            that do not fit the network.
        """
        est = cls(**{**params, "activation": net.hidden,
                     "hidden_layer_sizes": tuple(net.layer_sizes[1:-1])})
        est._validate_params()
        est._check_net(net, classes)
        est._mlp = net
        est.backend_ = net.backend
        est.n_features_in_ = net.layer_sizes[0]
        est.n_outputs_ = net.layer_sizes[-1]
        est.n_layers_ = len(net.layer_sizes)
        est.out_activation_ = net.output
        est.n_iter_, est.t_, est.loss_curve_ = 0, 0, []
        return est

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict:
        state = super().__getstate__()
        net = state.get("_mlp")
        if net is not None:
            state = dict(state)
            state["_mlp"] = {"layer_sizes": list(net.layer_sizes), "hidden": net.hidden,
                             "output": net.output, "loss": net.loss_function,
                             "dtype": net.dtype.name, "w": net.w.copy()}
        return state

    def __setstate__(self, state: dict) -> None:
        spec = state.get("_mlp")
        if isinstance(spec, dict):
            state = dict(state)
            args = (spec["layer_sizes"], spec["hidden"], spec["output"], spec["loss"])
            backend = state.get("backend_", state.get("backend", "auto"))
            try:
                net = _make_net(*args, backend, spec["dtype"], 0)
            except ValueError:  # pickled where a backend exists that is missing here
                warnings.warn(f"deltaprop backend {backend!r} is not available; using 'auto'",
                              stacklevel=2)
                net = _make_net(*args, "auto", spec["dtype"], 0)
                state["backend_"] = net.backend
            net.w[...] = spec["w"]
            state["_mlp"] = net
        super().__setstate__(state)

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets (class labels for a classifier, real numbers for a regressor).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights :math:`s_n` (None: all 1).

        Returns
        -------
        self
            The fitted estimator.

        Raises
        ------
        ValueError
            A parameter or the data is invalid, or the weights became non-finite; the
            estimator is then as it was before the call.
        """
        return self._transaction(self._fit, X, y, sample_weight, False)

    def _check_solver(self) -> bool:
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 "%s is not stochastic." % self.solver)
        return True

    def _transaction(self, fn: Callable[..., Any], *args: Any) -> Self:
        """Run ``fn(*args)``; on any error put every attribute and weight back as it was."""
        saved: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}
        net = saved.get("_mlp")
        w = net.w.copy() if net is not None else None
        opt = saved.get("_optimizer")
        opt_copy = opt.copy() if opt is not None else None
        try:
            fn(*args)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            if net is not None:
                net.w[...] = w
            if opt_copy is not None:
                self._optimizer = opt_copy
            raise
        return self

    def _hidden_units(self) -> list[int]:
        """``hidden_layer_sizes`` as a list; ValueError for a hidden layer without units."""
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if np.any(np.array(hidden) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden)
        return [int(h) for h in hidden]

    def _fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None, incremental: bool) -> None:
        hidden = self._hidden_units()
        first_pass = "_mlp" not in self.__dict__ or (not self.warm_start and not incremental)
        X, Y, sample_weight = self._validate_input(X, y, sample_weight, incremental,
                                                   reset=first_pass)
        n_samples, n_features = X.shape
        layer_units = [n_features, *hidden, Y.shape[1]]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(Y, layer_units, X.dtype)
        elif list(self._mlp.layer_sizes) != layer_units:
            raise ValueError(
                f"warm_start / partial_fit needs the same network: the fitted one has layer "
                f"sizes {list(self._mlp.layer_sizes)}, this call needs {layer_units}")
        self.n_outputs_ = Y.shape[1]
        # early stopping's split stratifies single-output classification on the binarised
        # boolean targets, as scikit-learn does (its error names the classes 'True' / 'False');
        # not multilabel, nor multiclass (one-hot rows: n_outputs_ > 1), scikit-learn's rule
        stratify = Y if (is_classifier(self) and self.n_outputs_ == 1) else None
        dtype = self._mlp.dtype
        X = kernel_input(X, dtype)
        Y = np.ascontiguousarray(Y, dtype=dtype)
        if sample_weight is None:
            s = np.ones(n_samples, dtype=dtype)
        else:
            s = np.ascontiguousarray(sample_weight, dtype=dtype)
        with self._mlp.reuse_buffers():  # L-BFGS's evaluations, early stopping's scores
            if self.solver in STOCHASTIC_SOLVERS:
                self._fit_stochastic(X, Y, s, sample_weight is not None, incremental, stratify)
            else:
                self._fit_lbfgs(X, Y, s)
        if not np.isfinite(self._mlp.w).all():
            raise ValueError(NON_FINITE_MESSAGE)

    def _initialize(self, Y: np.ndarray, layer_units: list[int], dtype: np.dtype) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        loss = OUTPUT_LOSS[self.out_activation_]
        self._mlp = _make_net(layer_units, self.activation, self.out_activation_, loss,
                              self.backend, dtype, self._random_state)
        self.backend_ = self._mlp.backend
        self._best_w = self._mlp.w.copy()
        self.__dict__.pop("_optimizer", None)
        if self.solver in STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self._init_stopping_records()

    def _progress(self, total: int) -> Any:
        """A tqdm bar of ``total`` epochs with ``progress_bar``, else None."""
        if not self.progress_bar:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=f"{type(self).__name__}({self.solver})", unit="epoch",
                    leave=False)

    # ------------------------------------------------------------------ prediction
    @overload
    def _forward(self, X: MatrixLike, pre_activation: Literal[False] = False) -> np.ndarray: ...

    @overload
    def _forward(self, X: MatrixLike, pre_activation: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...

    def _forward(self, X: MatrixLike, pre_activation: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The network's outputs y (n, K) on X, and with ``pre_activation`` the output units' a."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        net = self._mlp
        out = np.empty((X.shape[0], net.layer_sizes[-1]), dtype=net.dtype)
        a = np.empty_like(out) if pre_activation else None
        net.forward(kernel_input(X, net.dtype), out=out, pre_activation=a, check_input=False,
                    n_jobs=self.n_jobs)
        return out if a is None else (out, a)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _make_net(layer_units: list[int], hidden: str, output: str, loss: str, backend: str, dtype: DTypeLike,
              random_state: int | np.random.RandomState | None) -> MLP:
    return MLP(layer_units, hidden=hidden, output=output, loss=loss, backend=backend,
               dtype=np.dtype(dtype).name, random_state=random_state)
