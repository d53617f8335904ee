"""MLPClassifier: scikit-learn's multi-layer perceptron classifier on deltaprop's compiled kernels.

Targets become the network's outputs here (LabelBinarizer: one logistic unit for two classes,
K softmax units for K classes, K logistic units for multilabel targets), class weights become
sample weights, and the outputs become labels, probabilities and their logarithms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target
from sklearn.utils.validation import _check_sample_weight, validate_data

from ._labels import PLAIN_KINDS, binarize, class_labels, decode, fit_binarizer
from .base import BaseMLP

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from sklearn.utils import Tags
    from typing_extensions import Self

    from ..engine import MLP
    from .base import MatrixLike

__all__ = ["MLPClassifier"]


class MLPClassifier(ClassifierMixin, BaseMLP):
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
        **BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }
    loss = "log_loss"  # scikit-learn's classifier has this (non-parameter) attribute too

    def __init__(self, hidden_layer_sizes: int | tuple[int, ...] = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: int | np.random.RandomState | None = None, tol: float = 1e-4,
                 verbose: bool = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000,
                 class_weight: dict | str | None = None, backend: str = "auto",
                 progress_bar: bool = False, callback: Callable[[Self], bool | None] | None = None,
                 n_jobs: int | None = None, parallel: str = "average") -> None:
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

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _check_net(self, net: MLP, classes: ArrayLike | None) -> None:
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
        self._label_binarizer = fit_binarizer(classes)[0]
        self.classes_ = self._label_binarizer.classes_
        if not np.array_equal(self.classes_, classes):
            raise ValueError("class labels must be given sorted, as in classes_")

    def _validate_input(self, X: Any, y: Any, sample_weight: Any, incremental: bool,
                        reset: bool) -> tuple[Any, np.ndarray, np.ndarray | None]:
        """X, y and the sample weights as the user passed them, validated by scikit-learn: X (an
        array or a sparse matrix), the targets Y (n, K) as the network's outputs, the weights."""
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # incremental warm_start classes_ defined -> action (scikit-learn's table)
        #   0 0 0 / 0 1 0 / 0 0 1: define classes_; 0 1 1 / 1 1 1: same classes as before;
        #   1 0 1: classes must be among the previous ones
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer, codes = fit_binarizer(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes, codes = class_labels(y)
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
        return X, binarize(self._label_binarizer, y, codes), sample_weight

    def _class_weights(self, y: np.ndarray, X: Any, sample_weight: np.ndarray | None,
                       incremental: bool) -> np.ndarray:
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

    def _decode(self, Y: np.ndarray) -> np.ndarray:
        """Labels of binarised targets (for the validation split's accuracy)."""
        return decode(self._label_binarizer, Y)

    def _score_outputs(self, out: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None) -> float:
        if not np.isfinite(out).all():
            return np.nan
        pred = decode(self._label_binarizer, out.ravel() if self.n_outputs_ == 1 else out)
        if sample_weight is None and y.ndim == 1 and y.dtype.kind in PLAIN_KINDS:
            return float(np.mean(y == pred))  # accuracy_score's value, without its input checks
        return accuracy_score(y, pred, sample_weight=sample_weight)

    def predict(self, X: MatrixLike) -> np.ndarray:
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes (a 0/1 indicator matrix for multilabel targets).
        """
        out = self._forward(X)
        if self.n_outputs_ == 1:
            out = out.ravel()
        return decode(self._label_binarizer, out)

    def predict_proba(self, X: MatrixLike) -> np.ndarray:
        """Probability estimates, classes ordered as in ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The probability of each class (of each label, for multilabel targets).
        """
        out = self._forward(X)
        if self.n_outputs_ == 1:
            p = out.ravel()
            return np.vstack([1 - p, p]).T
        return out

    def predict_log_proba(self, X: MatrixLike) -> np.ndarray:
        r"""Log of the probability estimates: ``log(predict_proba(X))``, finite where that is -inf.

        Wherever a probability of ``predict_proba(X)`` is > 0 this is exactly its ``np.log``
        (as in scikit-learn). Where it underflows to 0 (scikit-learn gives ``-inf``) it is the
        stable form from the output pre-activation a instead: binary
        :math:`(\ln \sigma(-a), \ln \sigma(a))`, multilabel :math:`\ln \sigma(a_k)`,
        multiclass :math:`a_k - \ln \sum_j e^{a_j}`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            The log-probability of each class.
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
    def partial_fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
                    classes: ArrayLike | None = None) -> Self:
        """Update the model with a single iteration over the given data.

        Only for the stochastic solvers (``sgd``, ``adam``); the optimizer state carries over
        from one call to the next.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            The target classes (a 0/1 indicator matrix for multilabel targets).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights :math:`s_n` (None: all 1).
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit; required on the first call.

        Returns
        -------
        self
            The updated estimator.

        Raises
        ------
        ValueError
            The data or the classes are invalid, or the weights became non-finite; the
            estimator is then as it was before the call.
        """
        return self._transaction(self._partial_fit, X, y, sample_weight, classes)

    def _partial_fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None,
                     classes: ArrayLike | None) -> None:
        if _check_partial_fit_first_call(self, classes):
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer = LabelBinarizer().fit(y)
            else:
                self._label_binarizer = fit_binarizer(classes)[0]
        self._fit(X, y, sample_weight, True)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


