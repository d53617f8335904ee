"""What :class:`~deltaprop.dask.base.DaskMLP` uses of the estimator it is mixed into, declared.

:class:`~deltaprop.dask.base.DaskMLP` is placed before ``deltaprop.MLPClassifier`` /
``MLPRegressor`` and trains with their solver mixins,
:class:`~deltaprop.estimators.stochastic.StochasticFit` and
:class:`~deltaprop.estimators.lbfgs.LbfgsFit` (which declare the estimator's parameters and
fitted records). :class:`DaskAttributes` is those two mixins plus the declarations of the rest it
reads and writes: the constructor's other parameters, the fitted attributes and methods of
:class:`~deltaprop.estimators.base.BaseMLP`, and what each Dask estimator defines. It is for the
type checker and defines nothing at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..estimators.lbfgs import LbfgsFit
from ..estimators.stochastic import StochasticFit

if TYPE_CHECKING:
    import distributed
    from typing_extensions import Self

    from ..estimators.base import BaseMLP
    from .cluster import Cluster
    from .inputs import Inputs
    from .shards import Targets

__all__ = ["DaskAttributes"]


class DaskAttributes(StochasticFit, LbfgsFit):
    """The parameters, fitted attributes and methods :class:`DaskMLP` uses (declarations only)."""

    # ------------------------------------------------------------------ parameters (deltaprop.dask's)
    client: distributed.Client | None
    average_every: int | None
    sync: str
    # ------------------------------------------------------------------ parameters (the estimator's)
    random_state: int | np.random.RandomState | None
    warm_start: bool
    backend: str

    # ------------------------------------------------------------------ fitted
    n_features_in_: int
    feature_names_in_: np.ndarray
    n_outputs_: int
    backend_: str

    # ------------------------------------------------------------------ each Dask estimator's
    #: the single-machine estimator it becomes (``to_local``)
    _local_class: ClassVar[type[BaseMLP]]

    if TYPE_CHECKING:
        def _targets(self, cluster: Cluster, parts: list[distributed.Future], data: Inputs,
                     first_pass: bool) -> tuple[Targets, int]: ...

        # ------------------------------------------------------------------ the estimator's methods
        def __init__(self, *args: Any, client: distributed.Client | None = None,
                     average_every: int | None = None, sync: str = ..., **params: Any) -> None: ...

        def get_params(self, deep: bool = True) -> dict[str, Any]: ...

        def __getstate__(self) -> dict[str, Any]: ...

        def __setstate__(self, state: dict[str, Any]) -> None: ...

        def _transaction(self, fn: Callable[..., Any], *args: Any) -> Self: ...

        def _hidden_units(self) -> list[int]: ...

        def _initialize(self, Y: np.ndarray, layer_units: list[int], dtype: np.dtype) -> None: ...
