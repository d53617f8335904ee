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

Modules
-------
- :mod:`.classifier`, :mod:`.regressor`: the two estimators (targets, output unit, scores);
- :mod:`._labels`: class labels to the classifier's targets and back (LabelBinarizer's results);
- :mod:`.base`: what they share (parameters, the network, fit as a transaction, prediction);
- :mod:`.stochastic`: the sgd / adam fit loop (records, schedules, early stopping);
- :mod:`.lbfgs`: the L-BFGS fit (SciPy's L-BFGS-B);
- :mod:`.solvers`: the stochastic solvers' state (:class:`~.solvers.Optimizer`) and epochs;
- :mod:`.objective`: the L-BFGS objective and scikit-learn's loss reporting;
- :mod:`.exceptions`: :class:`TrainingInterrupted` and the non-finite weights' message.
"""

from .classifier import MLPClassifier
from .exceptions import NON_FINITE_MESSAGE, TrainingInterrupted
from .regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "TrainingInterrupted", "NON_FINITE_MESSAGE"]
