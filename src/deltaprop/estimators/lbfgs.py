"""The L-BFGS fit: SciPy's L-BFGS-B on the objective, with scikit-learn's progress, callback and stopping.

:class:`LbfgsFit` is a mixin of :class:`deltaprop.estimators.base.BaseMLP`. It minimises a
:class:`~deltaprop.estimators.objective.LossGradient` from the network's weights; the objective
decides where its sums come from (rows in memory here, partitions on a cluster in
``deltaprop.dask``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.optimize
from sklearn.utils.optimize import _check_optimize_result

from ._attributes import EstimatorAttributes
from .exceptions import NON_FINITE_MESSAGE
from .objective import BatchLossGradient, LossGradient, SklearnLoss

if TYPE_CHECKING:
    import scipy.sparse as sp

try:  # scipy < 1.15 prints L-BFGS-B progress unless told not to
    from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
except ImportError:  # pragma: no cover
    def _get_additional_lbfgs_options_dict(key: str, value: object) -> dict[str, object]:
        return {}

__all__ = ["LbfgsFit"]


class LbfgsFit(EstimatorAttributes):
    """L-BFGS for the estimators (a mixin: the estimator supplies parameters and network)."""

    def _fit_lbfgs(self, X: np.ndarray | sp.csr_matrix, Y: np.ndarray, s: np.ndarray) -> None:
        net = self._mlp
        self._minimize_lbfgs(BatchLossGradient(net, X, Y, s, self.alpha,
                                               SklearnLoss(net.loss_function, Y), self.n_jobs))

    def _minimize_lbfgs(self, fun: LossGradient) -> None:
        """SciPy's L-BFGS-B on ``fun(x) -> (F, grad F)`` (with ``fun.reported(x)``, scikit-learn's
        ``loss_``), from the network's weights; progress, callback and stopping as scikit-learn."""
        net = self._mlp
        verbose = self.verbose is True or self.verbose >= 1
        bar = self._progress(self.max_iter)
        iteration = [0]
        stopped = [False]

        def callback(intermediate_result: scipy.optimize.OptimizeResult) -> None:
            iteration[0] += 1
            if verbose or bar is not None or self.callback is not None:
                loss = fun.reported(intermediate_result.x)
                if verbose:
                    print("Iteration %d, loss = %.8f" % (iteration[0], loss))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.6g}")
                if self.callback is not None:
                    net.w[...] = intermediate_result.x
                    self.n_iter_, self.loss_ = iteration[0], float(loss)
                    if self.callback(self):
                        stopped[0] = True
                        raise StopIteration  # scipy ends the minimisation at this iterate

        try:
            opt_res = scipy.optimize.minimize(
                fun, net.w.astype(np.float64), method="L-BFGS-B", jac=True, callback=callback,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                         **_get_additional_lbfgs_options_dict("iprint", -1)})
        finally:
            if bar is not None:
                bar.close()
        if stopped[0]:
            self.n_iter_ = iteration[0]
        else:
            self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
        net.w[...] = opt_res.x
        if not np.isfinite(net.w).all():
            raise ValueError(NON_FINITE_MESSAGE)
        self.loss_ = float(fun.reported(opt_res.x))
        if verbose:
            print("L-BFGS-B: %s (%d iterations, %d evaluations)"
                  % (opt_res.message, self.n_iter_, opt_res.nfev))
