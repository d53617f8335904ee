"""deltaprop: multilayer perceptrons trained by error backpropagation, with compiled kernels."""

from .backends import available_backends, get_backend
from .engine import MLP
from .estimators import MLPClassifier, MLPRegressor
from .gradcheck import gradcheck
from .onnx_export import to_onnx  # imports onnx only when called

__version__ = "0.1.0"
__all__ = ["MLP", "MLPClassifier", "MLPRegressor", "gradcheck", "available_backends", "get_backend", "to_onnx", "__version__"]
