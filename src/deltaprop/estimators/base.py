r"""scikit-learn drop-in estimators: :class:`MLPClassifier` and :class:`MLPRegressor`.

Same constructor, defaults, attributes, random draws and update rules as
``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` (change one import, keep the
pipeline), with the arithmetic in deltaprop's compiled kernels: each epoch of ``sgd`` or
``adam`` is one kernel call (``sgd_epoch`` for ``batch_size=1``, ``batch_epoch`` otherwise),
and ``lbfgs`` is scipy's L-BFGS-B on the flat parameter vector of a :class:`deltaprop.MLP`
with loss and gradient from the forward / output_delta / backprop / gradient kernels.

Differences from scikit-learn (each one a fix or an addition):

- ``activation="gudermannian"`` or ``"softplus"`` and ``backend=`` (``"auto"``, ``"numpy"``,
  ``"numba"``, ``"cython"``); ``progress_bar=True`` shows a tqdm bar; ``callback`` is called after each
  epoch (L-BFGS iteration) and may stop the fit; ``class_weight`` ("balanced" or a
  dict) for the classifier; ``validation_loss_curve_`` next to ``validation_scores_``.
- L-BFGS minimises the objective its gradient belongs to (scikit-learn#8349: scikit-learn's
  multi-output squared-error loss averages the outputs while its gradient sums them);
  ``loss_`` is still reported in scikit-learn's convention. Single-output fits are unchanged.
- ``predict_log_proba`` is ``np.log(predict_proba(X))`` wherever a probability is > 0, and the
  stable log-sigmoid / log-softmax of the output pre-activation where it underflows to 0
  (scikit-learn gives ``-inf`` there): finite wherever the pre-activation is.
- ``partial_fit`` exists only for the stochastic solvers, on both estimators.
- ``verbose`` prints progress for L-BFGS too; the log-loss is not clipped at machine epsilon.
- A fit that drives the weights to NaN/inf stops at that epoch and raises scikit-learn's
  ValueError; any failed ``fit`` / ``partial_fit`` leaves the estimator as it was before. With
  ``early_stopping=True`` it raises nothing: as in scikit-learn (scikit-learn#29504) the fit
  runs on to ``max_iter`` (NaN validation scores) and returns to the best validation epoch.
- ``loss="poisson"`` rejects negative targets.
"""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
import scipy.optimize
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network._multilayer_perceptron import BaseMultilayerPerceptron
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import solvers as _optim
from ..contract import ALPHA, HIDDEN_ACTIVATIONS, OUTPUT_LOSS
from ..engine import MLP, kernel_input

try:  # scipy < 1.15 prints L-BFGS-B progress unless told not to
    from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
except ImportError:  # pragma: no cover
    def _get_additional_lbfgs_options_dict(key, value):
        return {}

__all__ = ["MLPClassifier", "MLPRegressor", "TrainingInterrupted"]

_STOCHASTIC_SOLVERS = ("sgd", "adam")


class TrainingInterrupted(UserWarning):
    """Ctrl-C ended a fit early (scikit-learn's contract: warn, keep the finished epochs).

    Turn it into an error with ``warnings.simplefilter("error", TrainingInterrupted)`` to make
    an interrupted fit raise instead (and leave the estimator as it was before the call).
    """


_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
               "values and need to be preprocessed.")


class _BaseMLP(BaseEstimator):
    """Shared machinery of the two estimators (do not use directly)."""

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS))],
        "backend": [str],
        "progress_bar": ["boolean"],
        "callback": [callable, None],
        "n_jobs": [Integral, None],
        "parallel": [StrOptions({"average", "hogwild"})],
    }

    # ------------------------------------------------------------------ fitted weights
    @property
    def coefs_(self):
        """Weight matrices, ``coefs_[i]`` (n_in, n_out): views into the engine's flat ``w``."""
        return self._net().coefs_

    @coefs_.setter
    def coefs_(self, values):
        self._net().coefs_ = values

    @property
    def intercepts_(self):
        """Bias vectors, ``intercepts_[i]`` (n_out,): views into the engine's flat ``w``."""
        return self._net().intercepts_

    @intercepts_.setter
    def intercepts_(self, values):
        self._net().intercepts_ = values

    def _net(self) -> MLP:
        try:
            return self.__dict__["_mlp"]
        except KeyError:
            raise AttributeError(f"This {type(self).__name__} instance is not fitted yet") from None

    @classmethod
    def _from_net(cls, net: MLP, classes=None, **params):
        """A fitted estimator that predicts with ``net`` (weights shared, not copied).

        ``params`` are constructor parameters (``activation`` is taken from the network);
        ``classes`` are the classifier's labels in ``classes_`` order (two labels for a single
        logistic output, K labels for K softmax outputs). This is how a model file becomes an
        estimator again without pickle; training attributes (``loss_curve_``, ``n_iter_``) are
        those of an estimator that has not been trained here.
        """
        est = cls(**{**params, "activation": net.hidden,
                     "hidden_layer_sizes": tuple(net.layer_sizes[1:-1])})
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
    def __getstate__(self):
        state = super().__getstate__()
        net = state.get("_mlp")
        if net is not None:
            state = dict(state)
            state["_mlp"] = {"layer_sizes": list(net.layer_sizes), "hidden": net.hidden,
                             "output": net.output, "loss": net.loss_function,
                             "dtype": net.dtype.name, "w": net.w.copy()}
        return state

    def __setstate__(self, state):
        spec = state.get("_mlp")
        if isinstance(spec, dict):
            state = dict(state)
            args = (spec["layer_sizes"], spec["hidden"], spec["output"], spec["loss"])
            backend = state.get("backend_", state.get("backend", "auto"))
            try:
                net = _make_net(*args, backend, spec["dtype"], 0)
            except ValueError:  # pickled where a backend exists that is missing here
                warnings.warn(f"deltaprop backend {backend!r} is not available; using 'auto'")
                net = _make_net(*args, "auto", spec["dtype"], 0)
                state["backend_"] = net.backend
            net.w[...] = spec["w"]
            state["_mlp"] = net
        super().__setstate__(state)

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        return self._transaction(self._fit, X, y, sample_weight, False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 "%s is not stochastic." % self.solver)
        return True

    def _transaction(self, fn, *args):
        """Run ``fn(*args)``; on any error put every attribute and weight back as it was."""
        saved = {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}
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
            if opt is not None:
                self._optimizer = opt_copy
            raise
        return self

    def _fit(self, X, y, sample_weight, incremental):
        hidden = self.hidden_layer_sizes
        if not hasattr(hidden, "__iter__"):
            hidden = [hidden]
        hidden = list(hidden)
        if np.any(np.array(hidden) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden)
        first_pass = "_mlp" not in self.__dict__ or (not self.warm_start and not incremental)
        X, Y, sample_weight = self._validate_input(X, y, sample_weight, incremental,
                                                   reset=first_pass)
        n_samples, n_features = X.shape
        layer_units = [n_features, *[int(h) for h in hidden], Y.shape[1]]
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
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(X, Y, s, sample_weight is not None, incremental, stratify)
            else:
                self._fit_lbfgs(X, Y, s)
        if not np.isfinite(self._mlp.w).all():
            raise ValueError(_NON_FINITE)
        return self

    def _initialize(self, Y, layer_units, dtype):
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
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self._init_stopping_records()

    def _init_stopping_records(self):
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

    # ------------------------------------------------------------------ stochastic solvers
    def _fit_stochastic(self, X, Y, s, weighted, incremental, stratify):
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        self._start_records()
        opt = self._stochastic_optimizer(incremental)
        X_tr, Y_tr, s_tr, val = self._split_validation(X, Y, s, weighted, stratify)
        net = self._mlp
        epochs = _optim.EpochRunner(net, X_tr, Y_tr, s_tr, self._batch_size(X_tr.shape[0]),
                                    _optim.Objective(net.loss_function, Y_tr), weighted,
                                    self._random_state if self.shuffle else None, self.n_jobs,
                                    self.parallel)
        with epochs:
            self._epoch_loop(opt, lambda: epochs.run(opt), X_tr.shape[0],
                             lambda: self._update_no_improvement_count(self.early_stopping, val),
                             incremental)

    def _epoch_loop(self, opt, run_epoch, n_samples, after_epoch, incremental=False):
        """scikit-learn's loop of stochastic epochs: ``run_epoch()`` trains one and returns its
        ``loss_``; then the records, ``after_epoch()`` (validation or the training-loss rule), the
        schedule and the stopping rules; Ctrl-C ends it with a TrainingInterrupted warning. With
        early stopping the best validation epoch's weights are restored at the end."""
        net = self._mlp
        bar = None if incremental else self._progress(self.max_iter)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                loss = run_epoch()
                if not self.early_stopping and not np.isfinite(net.w).all():
                    raise ValueError(_NON_FINITE)
                self._record_epoch(loss, n_samples, bar)
                after_epoch()
                opt.iteration_ends(self.t_)
                if self._stop_after_epoch(opt) or incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                                  "optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", TrainingInterrupted)
        finally:
            if bar is not None:
                bar.close()
        if self.early_stopping:
            # restore the best weights. A diverged epoch (NaN/inf weights) scores NaN, which
            # never counts as "no improvement": as in scikit-learn (scikit-learn#29504) the fit
            # runs on to max_iter and returns to the best validation epoch (to the weights it
            # started from if no epoch scored)
            net.w[...] = self._best_w

    def _start_records(self):
        # warm start after lbfgs, or with early_stopping switched: scikit-learn fails with an
        # AttributeError on the missing records; start them instead
        if "loss_curve_" not in self.__dict__:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self._init_stopping_records()
        elif (self.validation_scores_ is None) == bool(self.early_stopping):
            self._init_stopping_records()

    def _stochastic_optimizer(self, incremental) -> _optim.Optimizer:
        net = self._mlp
        if not incremental or "_optimizer" not in self.__dict__:
            self._optimizer = _optim.Optimizer(
                self.solver, net.w.shape[0], net.dtype, self.learning_rate_init, self.learning_rate,
                self.momentum, self.nesterovs_momentum, self.power_t, self.beta_1, self.beta_2,
                self.epsilon, self.alpha)
        self._optimizer.hyper[ALPHA] = self.alpha
        return self._optimizer

    def _split_validation(self, X, Y, s, weighted, stratify):
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
               _optim.Objective(self._mlp.loss_function, Y_val))
        return X_tr, Y_tr, s_tr, val

    def _batch_size(self, n_samples) -> int:
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to "
                          "be clipped")
        return int(np.clip(self.batch_size, 1, n_samples))

    def _record_epoch(self, loss, n_samples, bar):
        self.n_iter_ += 1
        self.loss_ = loss
        self.t_ += n_samples
        self.loss_curve_.append(loss)
        if self.verbose:
            print("Iteration %d, loss = %.8f" % (self.n_iter_, loss))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.6g}")

    def _stop_after_epoch(self, opt) -> bool:
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

    def _update_no_improvement_count(self, early_stopping, val):
        if early_stopping:
            X_val, Y_val, s_val, y_val, sw_val, objective = val
            net = self._mlp
            out = np.empty(Y_val.shape, dtype=net.dtype)
            E = net.loss(X_val, Y_val, s_val, outputs=out, check_input=False, n_jobs=self.n_jobs)
            S = float(s_val.sum(dtype=np.float64))
            sq = _optim.squared_weights(net.w, _optim.weight_slices(net.layout))
            self._record_validation(self._score_outputs(out, y_val, sw_val),
                                    (objective.data(E) + objective.batch_const(s_val)
                                     + 0.5 * self.alpha * sq) / S)
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _record_validation(self, score, loss):
        """Early stopping's records of one epoch (scikit-learn's rule): no improvement unless the
        score beats the best by ``tol``; the best score's weights are kept."""
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

    def _progress(self, total):
        if not self.progress_bar:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=f"{type(self).__name__}({self.solver})", unit="epoch",
                    leave=False)

    # ------------------------------------------------------------------ L-BFGS
    def _fit_lbfgs(self, X, Y, s):
        objective = _optim.Objective(self._mlp.loss_function, Y)
        self._minimize_lbfgs(_optim.LossGradient(self._mlp, X, Y, s, self.alpha, objective,
                                                 self.n_jobs))

    def _minimize_lbfgs(self, fun):
        """SciPy's L-BFGS-B on ``fun(x) -> (F, grad F)`` (with ``fun.reported(x)``, scikit-learn's
        ``loss_``), from the network's weights; progress, callback and stopping as scikit-learn."""
        net = self._mlp
        verbose = self.verbose is True or self.verbose >= 1
        bar = self._progress(self.max_iter)
        iteration = [0]
        stopped = [False]

        def callback(intermediate_result):
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
            raise ValueError(_NON_FINITE)
        self.loss_ = float(fun.reported(opt_res.x))
        if verbose:
            print("L-BFGS-B: %s (%d iterations, %d evaluations)"
                  % (opt_res.message, self.n_iter_, opt_res.nfev))

    # ------------------------------------------------------------------ prediction
    def _forward(self, X, pre_activation=False):
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        net = self._mlp
        out = np.empty((X.shape[0], net.layer_sizes[-1]), dtype=net.dtype)
        a = np.empty_like(out) if pre_activation else None
        net.forward(kernel_input(X, net.dtype), out=out, pre_activation=a, check_input=False,
                    n_jobs=self.n_jobs)
        return (out, a) if pre_activation else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _make_net(layer_units, hidden, output, loss, backend, dtype, random_state) -> MLP:
    return MLP(layer_units, hidden=hidden, output=output, loss=loss, backend=backend,
               dtype=np.dtype(dtype).name, random_state=random_state)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer Perceptron classifier: scikit-learn's, on deltaprop's compiled kernels.

    The parameters, defaults and fitted attributes are those of
    :class:`sklearn.neural_network.MLPClassifier` (see its documentation), plus:

    Parameters
    ----------
    activation : {"identity", "logistic", "tanh", "relu", "gudermannian", "softplus"}, default="relu"
        Hidden activation (the names of ``deltaprop.contract.HIDDEN_ACTIVATIONS``);
        ``gudermannian`` is :math:`\\mathrm{gd}(a) = 2 \\arctan(\\tanh(a/2))`, ``softplus``
        :math:`\\ln(1 + e^a)`.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight`` (as in scikit-learn's linear
        models); "balanced" uses ``n_samples / (n_classes * np.bincount(y))``. Not for
        multilabel targets; "balanced" is not available in ``partial_fit``.
    backend : str, default="auto"
        Kernel backend: "auto" (fastest available), "numpy", "numba" or "cython".
    progress_bar : bool, default=False
        Show a tqdm progress bar over the epochs (L-BFGS iterations).
    callback : callable or None, default=None
        ``callback(estimator)``, called after each epoch of ``sgd`` / ``adam`` (once
        ``loss_curve_`` and the validation records hold it) and after each L-BFGS iteration (with
        ``loss_`` and ``n_iter_`` of that iteration); the fit stops when it returns True.
    n_jobs : int or None, default=None
        Threads (scikit-learn's convention: None is 1, -1 all cores). ``lbfgs`` sums its
        full-batch loss and gradient over row shards in a fixed order (deterministic, equal to
        one thread's up to rounding); ``sgd`` / ``adam`` train as ``parallel`` says; prediction
        splits the rows. ``n_jobs=1`` is the one-thread algorithm.
    parallel : {"average", "hogwild"}, default="average"
        How threads share the weights in ``sgd`` / ``adam``. ``"average"`` (deterministic): with
        mini-batches, each batch's rows are split between the threads and their gradients
        summed, so the fit is the one-thread fit up to rounding; with ``batch_size=1`` each
        thread trains its own copy on a shard of the epoch, and the copies are averaged every
        work-sized call and at least once per epoch (parameter mixing). ``"hogwild"`` lets
        them update one shared copy without locks (for mostly-zero inputs; not deterministic).

    Attributes
    ----------
    validation_loss_curve_ : list of float or None
        With ``early_stopping``, the loss on the validation split after each epoch (computed as
        ``loss_`` is), next to ``validation_scores_``.
    backend_ : str
        The backend that ran the fit.
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }
    loss = "log_loss"  # scikit-learn's classifier has this (non-parameter) attribute too

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 class_weight=None, backend="auto", progress_bar=False, callback=None, n_jobs=None,
                 parallel="average"):
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
        self.class_weight = class_weight
        self.backend = backend
        self.progress_bar = progress_bar
        self.callback = callback
        self.n_jobs = n_jobs
        self.parallel = parallel

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _check_net(self, net, classes):
        classes = np.asarray(classes) if classes is not None else None
        K = net.layer_sizes[-1]
        if classes is None or classes.ndim != 1 or len(np.unique(classes)) != len(classes):
            raise ValueError("a classifier needs its class labels: a 1-D array without repeats")
        expected = ("logistic", "binary_cross_entropy") if K == 1 else ("softmax", "cross_entropy")
        if len(classes) != (2 if K == 1 else K) or len(classes) < 2:
            raise ValueError(f"{len(classes)} class labels do not fit a network with {K} outputs "
                             "(2 labels for 1 logistic output, K labels for K softmax outputs)")
        if (net.output, net.loss_function) != expected:
            raise ValueError(f"a classifier with {len(classes)} classes has a {expected[0]} output "
                             f"and {expected[1]}; the network has {net.output} and "
                             f"{net.loss_function}")
        self._label_binarizer = LabelBinarizer().fit(classes)
        self.classes_ = self._label_binarizer.classes_
        if not np.array_equal(self.classes_, classes):
            raise ValueError("class labels must be given sorted, as in classes_")

    def _validate_input(self, X, y, sample_weight, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # incremental warm_start classes_ defined -> action (scikit-learn's table)
        #   0 0 0 / 0 1 0 / 0 0 1: define classes_; 0 1 1 / 1 1 1: same classes as before;
        #   1 0 1: classes must be among the previous ones
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. "
                                 f"`self.classes_` has {self.classes_}. 'y' has {classes}.")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if self.class_weight is not None:
            sample_weight = self._class_weights(y, X, sample_weight, incremental)
        Y = self._label_binarizer.transform(y).astype(bool)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        return X, Y, sample_weight

    def _class_weights(self, y, X, sample_weight, incremental):
        if self._label_binarizer.y_type_.startswith("multilabel"):
            raise ValueError("class_weight is not supported for multilabel targets; pass "
                             "sample_weight instead")
        if incremental and isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight '{0}' is not supported for partial_fit. In order to use 'balanced' "
                "weights, use compute_class_weight('{0}', classes=classes, y=y). In place of y you "
                "can use a large enough sample of the full training set target to properly "
                "estimate the class frequency distributions. Pass the resulting weights as the "
                "class_weight parameter.".format(self.class_weight))
        cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        w = cw[np.searchsorted(self.classes_, y)].astype(X.dtype)
        return w if sample_weight is None else sample_weight * w

    def _decode(self, Y):
        """Labels of binarised targets (for the validation split's accuracy)."""
        return self._label_binarizer.inverse_transform(Y)

    def _score_outputs(self, out, y, sample_weight):
        if not np.isfinite(out).all():
            return np.nan
        pred = self._label_binarizer.inverse_transform(out.ravel() if self.n_outputs_ == 1
                                                       else out)
        return accuracy_score(y, pred, sample_weight=sample_weight)

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray, shape (n_samples,) or (n_samples, n_classes)
        """
        out = self._forward(X)
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def predict_proba(self, X):
        """Probability estimates, classes ordered as in ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
        """
        out = self._forward(X)
        if self.n_outputs_ == 1:
            p = out.ravel()
            return np.vstack([1 - p, p]).T
        return out

    def predict_log_proba(self, X):
        r"""Log of the probability estimates: ``log(predict_proba(X))``, finite where that is -inf.

        Wherever a probability of ``predict_proba(X)`` is > 0 this is exactly its ``np.log``
        (as in scikit-learn). Where it underflows to 0 (scikit-learn gives ``-inf``) it is the
        stable form from the output pre-activation a instead: binary
        :math:`(\ln \sigma(-a), \ln \sigma(a))`, multilabel :math:`\ln \sigma(a_k)`,
        multiclass :math:`a_k - \ln \sum_j e^{a_j}`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
        """
        out, a = self._forward(X, pre_activation=True)
        if self.out_activation_ == "softmax":
            p = out
            amax = a.max(axis=1, keepdims=True)
            stable = a - amax - np.log(np.exp(a - amax).sum(axis=1, keepdims=True))
        elif self.n_outputs_ == 1:
            p, a = out.ravel(), a.ravel()
            p = np.vstack([1 - p, p]).T  # as predict_proba
            stable = np.vstack([-np.logaddexp(0, a), -np.logaddexp(0, -a)]).T
        else:
            p = out
            stable = -np.logaddexp(0, -a)
        with np.errstate(divide="ignore"):
            return np.where(p > 0, np.log(p), stable)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit; required on the first call.

        Returns
        -------
        self
        """
        return self._transaction(self._partial_fit, X, y, sample_weight, classes)

    def _partial_fit(self, X, y, sample_weight, classes):
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        self._fit(X, y, sample_weight, True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
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
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend="auto", progress_bar=False, callback=None, n_jobs=None,
                 parallel="average"):
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

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _check_net(self, net, classes):
        expected = ("exp", "poisson") if self.loss == "poisson" else ("identity", "squared_error")
        if classes is not None:
            raise ValueError("a regressor has no class labels")
        if (net.output, net.loss_function) != expected:
            raise ValueError(f"MLPRegressor(loss={self.loss!r}) has a {expected[0]} output and "
                             f"{expected[1]}; the network has {net.output} and {net.loss_function}")

    def _validate_input(self, X, y, sample_weight, incremental, reset):
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

    def _decode(self, Y):
        return Y.ravel() if Y.shape[1] == 1 else Y

    def _score_outputs(self, out, y, sample_weight):
        if not np.isfinite(out).all():
            return np.nan
        return r2_score(y, out.ravel() if out.shape[1] == 1 else out, sample_weight=sample_weight)

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        out = self._forward(X)
        return out.ravel() if out.shape[1] == 1 else out

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        return self._transaction(self._fit, X, y, sample_weight, True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = self.loss == "poisson"
        return tags
