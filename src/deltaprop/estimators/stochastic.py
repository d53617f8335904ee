"""The sgd / adam fit loop: epochs, records, step-size schedules, early stopping (scikit-learn's rules).

:class:`StochasticFit` is a mixin of :class:`deltaprop.estimators.base.BaseMLP`: its methods read
the estimator's parameters and write its fitted records (``loss_curve_``, ``n_iter_``, ``t_``,
``validation_scores_``, ``best_loss_``, ...) exactly as scikit-learn's ``_fit_stochastic`` does.
``deltaprop.dask`` reuses :meth:`StochasticFit._epoch_loop` with epochs that run on a cluster.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ..contract import ALPHA
from ..engine import kernel_input
from ._attributes import EstimatorAttributes
from .exceptions import NON_FINITE_MESSAGE, TrainingInterrupted
from .objective import SklearnLoss, reported_loss, squared_weights, weight_slices
from .solvers import EpochRunner, Optimizer

if TYPE_CHECKING:
    from typing import TypeAlias

    import scipy.sparse as sp

    #: early stopping's validation split: X, Y, s, the targets decoded, the weights for the
    #: score (None: unweighted) and the loss convention of Y
    Validation: TypeAlias = tuple[np.ndarray | sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray,
                                  np.ndarray | None, SklearnLoss]

__all__ = ["StochasticFit"]


class StochasticFit(EstimatorAttributes):
    """sgd / adam for the estimators (a mixin: the estimator supplies parameters and network)."""

    def _fit_stochastic(self, X: np.ndarray | sp.csr_matrix, Y: np.ndarray, s: np.ndarray,
                        weighted: bool, incremental: bool, stratify: np.ndarray | None) -> None:
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        self._start_records()
        opt = self._stochastic_optimizer(incremental)
        X_tr, Y_tr, s_tr, val = self._split_validation(X, Y, s, weighted, stratify)
        net = self._mlp
        epochs = EpochRunner(net, X_tr, Y_tr, s_tr, self._batch_size(X_tr.shape[0]),
                             SklearnLoss(net.loss_function, Y_tr), weighted,
                             self._random_state if self.shuffle else None, self.n_jobs,
                             self.parallel)
        with epochs:
            self._epoch_loop(opt, lambda k: epochs.run(opt, k), X_tr.shape[0],
                             lambda: self._update_no_improvement_count(self.early_stopping, val),
                             incremental, epochs.most_epochs(opt))

    def _epoch_loop(self, opt: Optimizer, run_epochs: Callable[[int], list[float]],
                    n_samples: int, after_epoch: Callable[[], None], incremental: bool = False,
                    most: int = 1) -> None:
        """scikit-learn's loop of stochastic epochs: ``run_epochs(k)`` trains k consecutive
        epochs (at most ``most``; :meth:`_epochs_at_once`) and returns their ``loss_`` values;
        then, epoch by epoch, the records, ``after_epoch()`` (validation or the training-loss
        rule), the schedule and the stopping rules; Ctrl-C ends it with a TrainingInterrupted
        warning. With early stopping the best validation epoch's weights are restored at the
        end."""
        net = self._mlp
        bar = None if incremental else self._progress(self.max_iter)
        try:
            self.n_iter_ = 0
            left, stop = self.max_iter, False
            while left > 0 and not stop:
                k = self._epochs_at_once(opt, most, left, incremental, bar)
                losses = run_epochs(k)
                left -= k
                if not self.early_stopping and not np.isfinite(net.w).all():
                    raise ValueError(NON_FINITE_MESSAGE)
                for loss in losses:
                    self._record_epoch(loss, n_samples, bar)
                    after_epoch()
                    opt.iteration_ends(self.t_)
                    if self._stop_after_epoch(opt) or incremental:
                        stop = True  # the last of the k epochs (_epochs_at_once)
                        break
                    if self.n_iter_ == self.max_iter:
                        warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and "
                                      "the optimization hasn't converged yet." % self.max_iter,
                                      ConvergenceWarning, stacklevel=2)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", TrainingInterrupted, stacklevel=2)
        finally:
            if bar is not None:
                bar.close()
        if self.early_stopping:
            # restore the best weights. A diverged epoch (NaN/inf weights) scores NaN, which
            # never counts as "no improvement": as in scikit-learn (scikit-learn#29504) the fit
            # runs on to max_iter and returns to the best validation epoch (to the weights it
            # started from if no epoch scored)
            net.w[...] = self._best_w

    def _epochs_at_once(self, opt: Optimizer, most: int, left: int, incremental: bool,
                        bar: Any) -> int:
        """How many epochs the next call trains, from 1 to ``most``: the loop's rules then act
        on their losses epoch by epoch, as if each had been a call of its own. Only so many
        that no rule could act before the last of them: the ``n_iter_no_change`` rule (stop,
        or the adaptive schedule's smaller η) needs more than ``n_iter_no_change`` epochs
        without improvement, and each epoch adds at most one. One epoch at a time where every
        epoch's outcome shapes the next (``"invscaling"``'s η, early stopping's validation,
        the callback), where the epoch is the unit of the output (``verbose``, the progress
        bar) and in ``partial_fit``."""
        if (most <= 1 or incremental or bar is not None or self.verbose
                or self.callback is not None or self.early_stopping
                or opt.lr_schedule == "invscaling"):
            return 1
        quiet = self.n_iter_no_change - self._no_improvement_count + 1
        return max(1, min(most, left, quiet))

    def _start_records(self) -> None:
        # warm start after lbfgs, or with early_stopping switched: scikit-learn fails with an
        # AttributeError on the missing records; start them instead
        if "loss_curve_" not in self.__dict__:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self._init_stopping_records()
        elif (self.validation_scores_ is None) == bool(self.early_stopping):
            self._init_stopping_records()

    def _init_stopping_records(self) -> None:
        self._best_w = self._mlp.w.copy()  # what early stopping returns to if no epoch scores
        if self.early_stopping:
            self.validation_scores_ = []
            self.validation_loss_curve_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None

    def _stochastic_optimizer(self, incremental: bool) -> Optimizer:
        net = self._mlp
        if not incremental or "_optimizer" not in self.__dict__:
            self._optimizer = Optimizer(
                self.solver, net.w.shape[0], net.dtype, eta0=self.learning_rate_init,
                lr_schedule=self.learning_rate, momentum=self.momentum,
                nesterov=self.nesterovs_momentum, power_t=self.power_t, beta_1=self.beta_1,
                beta_2=self.beta_2, epsilon=self.epsilon, alpha=self.alpha)
        self._optimizer.hyper[ALPHA] = self.alpha
        return self._optimizer

    def _split_validation(self, X: np.ndarray | sp.csr_matrix, Y: np.ndarray, s: np.ndarray, weighted: bool,
                          stratify: np.ndarray | None
                          ) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray, np.ndarray, Validation | None]:
        """``(X_tr, Y_tr, s_tr, val)``: the training rows and, with early stopping, the
        validation split (scikit-learn's draw) with what scoring it needs."""
        if not self.early_stopping:
            return X, Y, s, None
        X_tr, X_val, Y_tr, Y_val, s_tr, s_val = train_test_split(
            X, Y, s, random_state=self._random_state, test_size=self.validation_fraction,
            stratify=stratify)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        dtype = self._mlp.dtype
        X_tr, X_val = kernel_input(X_tr, dtype), kernel_input(X_val, dtype)
        Y_tr, Y_val = np.ascontiguousarray(Y_tr), np.ascontiguousarray(Y_val)
        s_tr, s_val = np.ascontiguousarray(s_tr), np.ascontiguousarray(s_val)
        val = (X_val, Y_val, s_val, self._decode(Y_val), s_val if weighted else None,
               SklearnLoss(self._mlp.loss_function, Y_val))
        return X_tr, Y_tr, s_tr, val

    def _batch_size(self, n_samples: int) -> int:
        batch_size = self.batch_size
        if isinstance(batch_size, str):  # "auto", the one string the parameter constraints allow
            return min(200, n_samples)
        if batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to "
                          "be clipped", stacklevel=2)
        return int(np.clip(batch_size, 1, n_samples))

    def _record_epoch(self, loss: float, n_samples: int, bar: Any) -> None:
        self.n_iter_ += 1
        self.loss_ = loss
        self.t_ += n_samples
        self.loss_curve_.append(loss)
        if self.verbose:
            print("Iteration %d, loss = %.8f" % (self.n_iter_, loss))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.6g}")

    def _stop_after_epoch(self, opt: Optimizer) -> bool:
        """The user's callback, then scikit-learn's rule: ``n_iter_no_change`` epochs without an
        improvement of ``tol`` stop the fit (or divide η by 5 with the adaptive schedule)."""
        if self.callback is not None and self.callback(self):
            return True
        if self._no_improvement_count <= self.n_iter_no_change:
            return False
        what = "Validation score" if self.early_stopping else "Training loss"
        msg = "%s did not improve more than tol=%f for %d consecutive epochs." % (
            what, self.tol, self.n_iter_no_change)
        if opt.trigger_stopping(msg, self.verbose):
            return True
        self._no_improvement_count = 0
        return False

    def _update_no_improvement_count(self, early_stopping: bool, val: Validation | None) -> None:
        if early_stopping:
            assert val is not None  # early stopping splits off its validation rows
            X_val, Y_val, s_val, y_val, sw_val, loss = val
            net = self._mlp
            out = np.empty(Y_val.shape, dtype=net.dtype)
            E = net.loss(X_val, Y_val, s_val, outputs=out, check_input=False, n_jobs=self.n_jobs)
            S = float(s_val.sum(dtype=np.float64))
            sq = squared_weights(net.w, weight_slices(net.layout))
            self._record_validation(self._score_outputs(out, y_val, sw_val),
                                    reported_loss(E, loss.scale, loss.batch_const(s_val),
                                                  self.alpha, sq, S))
        else:
            assert self.best_loss_ is not None  # inf from the start without early stopping
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _record_validation(self, score: float, loss: float) -> None:
        """Early stopping's records of one epoch (scikit-learn's rule): no improvement unless the
        score beats the best by ``tol``; the best score's weights are kept."""
        # early stopping's records, started with the fit (_init_stopping_records)
        assert self.validation_loss_curve_ is not None and self.validation_scores_ is not None
        assert self.best_validation_score_ is not None
        self.validation_loss_curve_.append(loss)
        self.validation_scores_.append(score)
        if self.verbose:
            print("Validation score: %f" % score)
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            self._best_w = self._mlp.w.copy()
