"""deltaprop: multilayer perceptrons trained by error backpropagation, with compiled kernels."""

from importlib.metadata import PackageNotFoundError, version

from .backends import available_backends, get_backend
from .engine import MLP
from .estimators import MLPClassifier, MLPRegressor, TrainingInterrupted
from .gradcheck import gradcheck
from .onnx_export import to_onnx  # imports onnx only when called

try:
    __version__ = version("deltaprop")  # the one source: pyproject.toml's [project] version
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

__all__ = ["MLP", "MLPClassifier", "MLPRegressor", "TrainingInterrupted", "gradcheck", "available_backends",
           "get_backend", "to_onnx", "__version__"]
