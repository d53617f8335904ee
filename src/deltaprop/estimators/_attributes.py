"""What the solver mixins read and write on an estimator: its parameters and fitted attributes, declared.

:class:`~deltaprop.estimators.stochastic.StochasticFit` and
:class:`~deltaprop.estimators.lbfgs.LbfgsFit` are mixins of
:class:`~deltaprop.estimators.base.BaseMLP`: they read the constructor's parameters (set by
:class:`~deltaprop.estimators.MLPClassifier` / :class:`~deltaprop.estimators.MLPRegressor`) and
write the fitted records. :class:`EstimatorAttributes` declares them once, with their types, for
the type checker; it defines nothing at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..engine import MLP
    from .solvers import Optimizer

__all__ = ["EstimatorAttributes"]


class EstimatorAttributes:
    """The parameters and fitted attributes the solver mixins use (declarations only)."""

    # ------------------------------------------------------------------ parameters (scikit-learn's)
    solver: str
    alpha: float
    batch_size: int | str
    learning_rate: str
    learning_rate_init: float
    power_t: float
    max_iter: int
    shuffle: bool
    tol: float
    verbose: bool
    momentum: float
    nesterovs_momentum: bool
    early_stopping: bool
    validation_fraction: float
    beta_1: float
    beta_2: float
    epsilon: float
    n_iter_no_change: int
    max_fun: int
    # ------------------------------------------------------------------ parameters (deltaprop's)
    callback: Callable[[Any], object] | None
    n_jobs: int | None
    parallel: str

    # ------------------------------------------------------------------ fitted
    _mlp: MLP
    _random_state: np.random.RandomState
    _optimizer: Optimizer
    _best_w: np.ndarray
    _no_improvement_count: int
    n_iter_: int
    t_: int
    loss_: float
    loss_curve_: list[float]
    best_loss_: float | None
    validation_scores_: list[float] | None
    validation_loss_curve_: list[float] | None
    best_validation_score_: float | None

    if TYPE_CHECKING:
        # ------------------------------------------------------------------ the estimator's methods
        def _progress(self, total: int) -> Any: ...

        def _decode(self, Y: np.ndarray) -> np.ndarray: ...

        def _score_outputs(self, out: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None) -> float: ...
