"""scikit-learn drop-in estimators: :class:`MLPClassifier` and :class:`MLPRegressor`."""

from .base import MLPClassifier, MLPRegressor, TrainingInterrupted

__all__ = ["MLPClassifier", "MLPRegressor", "TrainingInterrupted"]
