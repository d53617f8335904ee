"""Input checks for the engine: every bad input gets an error that names the problem.

The engine validates and casts once, before any kernel runs, so a rejected call never touches
the weights.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Iterable
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from .contract import DTYPES, HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS, check_pair

__all__ = ["check_option", "check_config", "check_X", "check_T", "check_sample_weight", "check_lr",
           "check_positive_int", "check_order", "finite_X"]


def check_option(name: str, value: object, allowed: Collection[str]) -> str:
    """``value`` if it is one of the ``allowed`` strings.

    Parameters
    ----------
    name : str
        The parameter, for the error.
    value : object
        What was passed.
    allowed : collection of str
        The accepted strings.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    ValueError
        Naming the parameter, the accepted strings and ``value``.
    """
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def check_config(layer_sizes: Iterable[int], hidden: str, output: str, loss: str,
                 dtype: npt.DTypeLike) -> tuple[tuple[int, ...], np.dtype]:
    """Validate an MLP configuration.

    Parameters
    ----------
    layer_sizes : iterable of int
        ``[D, M_1, ..., K]``, at least two positive integers.
    hidden, output, loss : str
        Hidden activation, output activation and error function (an allowed pair of the last two).
    dtype : dtype-like
        float32 or float64.

    Returns
    -------
    sizes : tuple of int
    dtype : numpy.dtype

    Raises
    ------
    TypeError
        If ``layer_sizes`` is not iterable.
    ValueError
        For any other bad value, naming the parameter.
    """
    try:
        sizes = tuple(layer_sizes)
    except TypeError:
        raise TypeError(f"layer_sizes must be a sequence of integers, got {layer_sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least 2 entries (inputs, outputs); got {list(sizes)}")
    for s in sizes:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool) or s < 1:
            raise ValueError(f"layer_sizes must be positive integers; got {list(sizes)}")
    check_option("hidden", hidden, HIDDEN_ACTIVATIONS)
    check_option("output", output, OUTPUT_ACTIVATIONS)
    check_option("loss", loss, tuple(LOSSES))
    check_pair(output, loss)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}") from None
    if dt.type not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    return tuple(int(s) for s in sizes), dt


def _numeric(name: str, arr: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real numbers; got complex dtype {arr.dtype}")
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be numeric; got dtype {arr.dtype}") from None
    return arr


#: the error of an X with a NaN or an infinity
X_NOT_FINITE = "X contains NaN or infinity"


def finite_X(X: np.ndarray | sp.csr_matrix) -> bool:
    """Whether X (as :func:`check_X` returns it) holds no NaN and no infinity.

    Parameters
    ----------
    X : ndarray or csr_matrix of shape (n, D)

    Returns
    -------
    bool
    """
    if sp.issparse(X):
        return bool(np.isfinite(cast(Any, X).data).all())
    return _all_finite(X)


def _all_finite(X: np.ndarray) -> bool:
    """No NaN and no infinity in a C-contiguous (n, D) array of float32 or float64.

    A NaN or an infinity in a row makes the row's sum NaN or infinite, so finite sums (one
    matrix-vector product with ones: a single pass over X and no temporary of its size) prove
    every value finite. Sums that are not finite (or that overflow) send X to the element-wise
    check.
    """
    if X.size >= 4096:
        with np.errstate(over="ignore", invalid="ignore"):  # a sum may overflow: then the fallback
            sums = X @ np.ones(X.shape[1], dtype=X.dtype)
        if np.isfinite(sums).all():
            return True
    return bool(np.isfinite(X).all())


def check_X(X: npt.ArrayLike | sp.spmatrix, n_features: int, dtype: np.dtype,
            finite: bool = True) -> np.ndarray | sp.csr_matrix:
    """X as a C-contiguous (n, D) array (or CSR matrix) of ``dtype``.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n, D)
        Inputs.
    n_features : int
        D, the network's inputs.
    dtype : numpy.dtype
        The network's dtype.
    finite : bool
        Check that every value of a dense X is finite (a pass over all of X). False leaves that
        to the caller (the training methods, :func:`finite_X` when an epoch fails); a sparse
        X's stored values are always checked.

    Returns
    -------
    ndarray or csr_matrix of shape (n, D)

    Raises
    ------
    ValueError
        For no samples, the wrong number of features, or NaN or infinity.
    TypeError
        For values that are not real numbers.
    """
    if sp.issparse(X):
        sparse: Any = X  # scipy.sparse has no annotations: issparse does not narrow X for mypy
        if sparse.shape[0] == 0:
            raise ValueError("X is empty: it has 0 samples")
        if sparse.shape[1] != n_features:
            raise ValueError(f"X has {sparse.shape[1]} features, but the network expects {n_features}")
        sparse = sp.csr_matrix(sparse, dtype=dtype)
        if not np.isfinite(sparse.data).all():
            raise ValueError(X_NOT_FINITE)
        return sparse
    X = _numeric("X", X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got an array of shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("X is empty: it has 0 samples")
    if X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but the network expects {n_features}")
    X = np.ascontiguousarray(X, dtype=dtype)
    if finite and not _all_finite(X):
        raise ValueError(X_NOT_FINITE)
    return X


def check_T(T: npt.ArrayLike, n: int, n_outputs: int, loss: str, dtype: np.dtype) -> np.ndarray:
    """Targets as a C-contiguous (n, K) array of ``dtype``.

    Class indices (a 1-D integer array) are accepted for ``cross_entropy`` (and for
    ``binary_cross_entropy`` or ``squared_error`` when K = 1, as the target values themselves)
    and one-hot encoded. Cross-entropy targets must be distributions over the K classes
    (rows in [0, 1] summing to 1); binary cross-entropy targets must lie in [0, 1].

    Parameters
    ----------
    T : array-like of shape (n, K) or (n,)
        Targets :math:`t_n`.
    n : int
        Samples of X.
    n_outputs : int
        K, the network's outputs.
    loss : str
        The error function (which targets it takes).
    dtype : numpy.dtype
        The network's dtype.

    Returns
    -------
    ndarray of shape (n, K)

    Raises
    ------
    ValueError
        For the wrong shape, NaN or infinity, or values the error function does not take.
    TypeError
        For values that are not real numbers.
    """
    T = _numeric("T", T)
    if T.ndim == 0 or T.ndim > 2:
        raise ValueError(f"T must be 1-D or 2-D; got an array of shape {T.shape}")
    if T.shape[0] != n:
        raise ValueError(f"T has {T.shape[0]} rows but X has {n} samples")
    if not np.isfinite(T).all():
        raise ValueError("T contains NaN or infinity")
    if T.ndim == 1 and loss == "cross_entropy":
        if T.dtype.kind == "f" and not np.all(T == np.round(T)):
            raise ValueError("1-D cross-entropy targets must be integer class indices")
        idx = T.astype(np.intp)
        if idx.min() < 0 or idx.max() >= n_outputs:
            raise ValueError(
                f"class indices must lie in [0, {n_outputs - 1}]; got values from {idx.min()} to {idx.max()}"
            )
        onehot = np.zeros((n, n_outputs), dtype=dtype)
        onehot[np.arange(n), idx] = 1
        return onehot
    if T.ndim == 1:
        if n_outputs != 1:
            raise ValueError(f"T is 1-D but the network has {n_outputs} outputs; pass T of shape (n, {n_outputs})")
        T = T.reshape(n, 1)
    if T.shape[1] != n_outputs:
        raise ValueError(f"T has {T.shape[1]} columns but the network has {n_outputs} outputs")
    T = np.ascontiguousarray(T, dtype=dtype)
    if loss in ("binary_cross_entropy", "cross_entropy") and (T.min() < 0 or T.max() > 1):
        raise ValueError(f"{loss} targets must lie in [0, 1]")
    if loss == "poisson" and T.min() < 0:
        raise ValueError("poisson targets must be >= 0 (counts or rates)")
    if loss == "cross_entropy":
        # the rows' sums in float64 through one matrix-vector product (a reduction along a
        # short axis is slower); within np.allclose(sums, 1, atol=atol)'s bound, atol + 1e-5
        sums = T.astype(np.float64, copy=False) @ np.ones(T.shape[1])
        if not (np.abs(sums - 1.0) <= (1e-5 if dtype == np.float32 else 1e-10) + 1e-5).all():
            raise ValueError("cross_entropy targets must be one-hot rows (or distributions summing to 1)")
    return T


def check_sample_weight(sample_weight: npt.ArrayLike, n: int, dtype: np.dtype) -> np.ndarray:
    """Sample weights :math:`s_n`: finite and >= 0, as a C-contiguous array of ``dtype``.

    Parameters
    ----------
    sample_weight : array-like of shape (n,)
    n : int
        Samples of X.
    dtype : numpy.dtype
        The network's dtype.

    Returns
    -------
    ndarray of shape (n,)

    Raises
    ------
    ValueError
        For the wrong shape, or a weight that is negative, NaN or infinite.
    """
    s = _numeric("sample_weight", sample_weight)
    if s.ndim != 1 or s.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},); got {s.shape}")
    if not np.isfinite(s).all() or (s < 0).any():
        raise ValueError("sample_weight must be finite and >= 0")
    return np.ascontiguousarray(s, dtype=dtype)


def check_lr(lr: float) -> float:
    """The learning rate η, a finite real number > 0.

    Parameters
    ----------
    lr : float
        Any real number type (int, float, NumPy scalar, ``fractions.Fraction``).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``lr`` is not a real number, or not finite and > 0.
    """
    if not isinstance(lr, numbers.Real) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"learning rate must be a finite number > 0; got {lr!r}")
    return float(lr)


def check_positive_int(name: str, value: int) -> int:
    """``value``, an integer >= 1, as a Python int.

    Parameters
    ----------
    name : str
        The parameter, for the error.
    value : int
        Any integer type but bool.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``value`` is not an integer >= 1.
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def check_order(order: npt.ArrayLike, n: int) -> np.ndarray:
    """Sample indices: a 1-D integer array with values in [0, n), as ``np.intp``.

    Parameters
    ----------
    order : array-like of int
        Sample indices in visiting order.
    n : int
        Samples of X.

    Returns
    -------
    ndarray of intp, C-contiguous

    Raises
    ------
    ValueError
        If ``order`` is not 1-D and of integers, or holds an index outside [0, n).
    """
    order = np.asarray(order)
    if order.ndim != 1 or order.dtype.kind not in "iu":
        raise ValueError("order must be a 1-D array of integer sample indices; "
                         f"got {order.dtype} of shape {order.shape}")
    if order.size and (order.min() < 0 or order.max() >= n):
        raise ValueError(f"order holds sample indices outside [0, {n - 1}]")
    return np.ascontiguousarray(order, dtype=np.intp)
