"""What the estimators warn about and raise: an interrupted fit, weights that left the finite numbers."""

from __future__ import annotations

__all__ = ["TrainingInterrupted", "NON_FINITE_MESSAGE"]


class TrainingInterrupted(UserWarning):
    """Ctrl-C ended a fit early (scikit-learn's contract: warn, keep the finished epochs).

    Turn it into an error with ``warnings.simplefilter("error", TrainingInterrupted)`` to make
    an interrupted fit raise instead (and leave the estimator as it was before the call).
    """


#: scikit-learn's ValueError message when a solver drives the weights to NaN or infinity.
NON_FINITE_MESSAGE = ("Solver produced non-finite parameter weights. The input data may contain large "
                      "values and need to be preprocessed.")
