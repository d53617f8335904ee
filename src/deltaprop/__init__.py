"""deltaprop: multilayer perceptrons trained by error backpropagation, with compiled kernels."""

from .backends import available_backends, get_backend
from .engine import MLP
from .estimators import MLPClassifier, MLPRegressor
from .gradcheck import gradcheck

__version__ = "0.1.0"
__all__ = ["MLP", "MLPClassifier", "MLPRegressor", "gradcheck", "available_backends", "get_backend", "__version__"]
