"""MLPRegressor: scikit-learn's multi-layer perceptron regressor on deltaprop's compiled kernels.

Targets are the network's outputs as they are: an identity output with squared error, or with
``loss="poisson"`` an exp output with the half Poisson deviance (targets >= 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _check_sample_weight, validate_data

from .base import BaseMLP

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from sklearn.utils import Tags
    from typing_extensions import Self

    from ..engine import MLP
    from .base import MatrixLike

__all__ = ["MLPRegressor"]


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer Perceptron regressor: scikit-learn's, on deltaprop's compiled kernels.

    The parameters, defaults and fitted attributes are those of
    :class:`sklearn.neural_network.MLPRegressor` (see its documentation), including
    ``loss="poisson"`` (exp output, half Poisson deviance; targets must be >= 0), plus
    ``activation="gudermannian"`` / ``"softplus"``, ``backend``, ``progress_bar``, ``callback``,
    ``n_jobs``, ``parallel`` and ``validation_loss_curve_`` as in :class:`MLPClassifier`. With several outputs and
    ``solver="lbfgs"`` the gradient is that of the objective L-BFGS line-searches on
    (scikit-learn#8349).
    """

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: int | tuple[int, ...] = (100,),
                 activation: str = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: int | str = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: int | np.random.RandomState | None = None,
                 tol: float = 1e-4, verbose: bool = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000,
                 backend: str = "auto", progress_bar: bool = False,
                 callback: Callable[[Self], bool | None] | None = None, n_jobs: int | None = None,
                 parallel: str = "average") -> None:
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.progress_bar = progress_bar
        self.callback = callback
        self.n_jobs = n_jobs
        self.parallel = parallel

    def _output_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _check_net(self, net: MLP, classes: ArrayLike | None) -> None:
        expected = ("exp", "poisson") if self.loss == "poisson" else ("identity", "squared_error")
        if classes is not None:
            raise ValueError("a regressor has no class labels")
        if (net.output, net.loss_function) != expected:
            raise ValueError(f"MLPRegressor(loss={self.loss!r}) has a {expected[0]} output and "
                             f"{expected[1]}; the network has {net.output} and {net.loss_function}")

    def _validate_input(self, X: Any, y: Any, sample_weight: Any, incremental: bool,
                        reset: bool) -> tuple[Any, np.ndarray, np.ndarray | None]:
        """X, y and the sample weights as the user passed them, validated by scikit-learn: X (an
        array or a sparse matrix), the targets Y (n, K) as the network's outputs, the weights."""
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.min(y) < 0:
            raise ValueError("Some value(s) of y are negative which is not allowed for Poisson "
                             "regression.")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        return X, Y, sample_weight

    def _decode(self, Y: np.ndarray) -> np.ndarray:
        return Y.ravel() if Y.shape[1] == 1 else Y

    def _score_outputs(self, out: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None) -> float:
        if not np.isfinite(out).all():
            return np.nan
        return r2_score(y, out.ravel() if out.shape[1] == 1 else out, sample_weight=sample_weight)

    def predict(self, X: MatrixLike) -> np.ndarray:
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        out = self._forward(X)
        return out.ravel() if out.shape[1] == 1 else out

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Update the model with a single iteration over the given data.

        Only for the stochastic solvers (``sgd``, ``adam``); the optimizer state carries over
        from one call to the next.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights :math:`s_n` (None: all 1).

        Returns
        -------
        self
            The updated estimator.

        Raises
        ------
        ValueError
            The data is invalid, or the weights became non-finite; the estimator is then as it
            was before the call.
        """
        return self._transaction(self._fit, X, y, sample_weight, True)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = self.loss == "poisson"
        return tags
