r"""The benchmarks' data: the standard shapes, their frozen data sets, η, and the problem file.

This file imports only the standard library and NumPy (scikit-learn only inside
:func:`digits_data`, for its digits), because the peers' scripts, which run in a Python
without deltaprop, load it by its file path: ``bench/peers/epoch_server.py`` (``deltaprop bench
--minibatch --peer-python``) and ``tools/peer_torch.py``. So every peer trains on the same
arrays and writes its weights in the same file layout.

The standard shapes (:data:`SHAPES`):

``1-3-1``
    Bishop's Fig. 5.3 net: tanh hidden, identity output, squared error, N = 50 points on
    (-1, 1), t = x²; a long fit runs many epochs per compiled call.
``64-32-10``
    tanh, softmax, cross-entropy on scikit-learn's digits (1797 samples, pixels scaled to [0, 1]).
``784-128-10`` / ``784-128-10-sparse``
    tanh, softmax, cross-entropy on MNIST-sized random inputs in [0, 1): dense, and with 80 % of
    the inputs zero (as in images).
``784-256-128-10``
    the same with two hidden layers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = ["SHAPES", "N_RANDOM", "ETA", "make_data", "digits_data", "save_problem", "load_problem", "load_order",
           "save_layers", "load_layers"]

#: name -> (layer sizes, hidden activation, output activation, loss)
SHAPES = {
    "1-3-1": ([1, 3, 1], "tanh", "identity", "squared_error"),
    "64-32-10": ([64, 32, 10], "tanh", "softmax", "cross_entropy"),
    "784-128-10": ([784, 128, 10], "tanh", "softmax", "cross_entropy"),
    "784-128-10-sparse": ([784, 128, 10], "tanh", "softmax", "cross_entropy"),
    "784-256-128-10": ([784, 256, 128, 10], "tanh", "softmax", "cross_entropy"),
}
#: samples of the random data sets (digits has 1797, 1-3-1 has 50)
N_RANDOM = 2000
#: the learning rate η of every benchmark's update :math:`w \leftarrow w - \eta \nabla E_n`
#: (``deltaprop.contract.DEFAULT_ETA``; written out because the peers load this file without deltaprop)
ETA = 0.01


def digits_data(copies: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits, pixels scaled to [0, 1], optionally stacked with noisy copies (frozen).

    Parameters
    ----------
    copies : int, default 1
        ``copies`` > 1 stacks ``copies - 1`` noisy copies (Gaussian noise, sd 0.05, seeded)
        under the original, a digits-like table ``copies`` times larger.

    Returns
    -------
    X : ndarray of shape (1797 * copies, 64), float64
        The pixels / 16.
    y : ndarray of shape (1797 * copies,)
        The labels 0-9.
    """
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    if copies > 1:
        noise = np.random.RandomState(0)
        X = np.vstack([X] + [X + noise.normal(0, 0.05, X.shape) for _ in range(copies - 1)])
        y = np.tile(y, copies)
    return X, y


def make_data(shape: str, dtype: str = "float32", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded inputs and targets of a standard shape (frozen: the same arguments, the same arrays).

    Parameters
    ----------
    shape : str
        A key of :data:`SHAPES`.
    dtype : {"float32", "float64"}, default "float32"
    seed : int, default 0
        Seeds the random inputs, targets and sparsity (digits and 1-3-1's inputs are fixed
        data for one seed).

    Returns
    -------
    X : ndarray of shape (N, D)
        C-contiguous inputs.
    T : ndarray of shape (N, K)
        One-hot targets (softmax shapes) or real targets t = x² (1-3-1).

    Raises
    ------
    ValueError
        If ``shape`` is not a standard shape.
    """
    rng = np.random.RandomState(seed)
    if shape == "1-3-1":
        X = rng.uniform(-1, 1, (50, 1))
        T = X**2
    elif shape == "64-32-10":
        X, y = digits_data()
        T = np.eye(10)[y]
    elif shape in SHAPES:
        X = rng.uniform(0, 1, (N_RANDOM, 784))
        if shape.endswith("-sparse"):
            X[rng.uniform(0, 1, X.shape) < 0.8] = 0.0
        T = np.eye(10)[rng.randint(0, 10, N_RANDOM)]
    else:
        raise ValueError(f"unknown shape {shape!r}; standard shapes: {', '.join(SHAPES)}")
    return np.ascontiguousarray(X, dtype=dtype), np.ascontiguousarray(T, dtype=dtype)


# --- the problem file: what a peer trains on, and the weights it ends with ----------------------
# One .npz: X, T (the problem file only) and W0, b0, W1, b1, ...: W_l of shape (n_in, n_out) and
# b_l of shape (n_out,), the layer a = z @ W_l + b_l (scikit-learn's coefs_ / intercepts_ layout).

Layers = Sequence[tuple[np.ndarray, np.ndarray]]


def save_layers(path: str | os.PathLike, layers: Layers, **arrays: np.ndarray) -> None:
    """Write the weights ``[(W_0, b_0), (W_1, b_1), ...]`` (and any named ``arrays``) to ``path``.

    Parameters
    ----------
    path : str or path-like
        The .npz file.
    layers : sequence of (W, b)
        ``W`` of shape (n_in, n_out), ``b`` of shape (n_out,), one pair per layer.
    **arrays : ndarray
        Further arrays stored under their names (``X``, ``T`` for a problem file).
    """
    for i, (W, b) in enumerate(layers):
        arrays[f"W{i}"], arrays[f"b{i}"] = np.asarray(W), np.asarray(b)
    np.savez(path, allow_pickle=False, **arrays)  # numbers only: load_layers reads no pickle


def load_layers(path: str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """The weights written by :func:`save_layers` (or :func:`save_problem`).

    Parameters
    ----------
    path : str or path-like
        The .npz file.

    Returns
    -------
    list of (W, b)
        One pair per layer, in order.
    """
    with np.load(path, allow_pickle=False) as f:
        n_layers = sum(1 for k in f.files if k.startswith("W"))
        return [(f[f"W{i}"], f[f"b{i}"]) for i in range(n_layers)]


def save_problem(path: str | os.PathLike, X: np.ndarray, T: np.ndarray, layers: Layers,
                 order: np.ndarray | None = None) -> None:
    """Write a peer's problem: the samples, the order it visits them in and its initial weights.

    Parameters
    ----------
    path : str or path-like
        The .npz file.
    X : ndarray of shape (N, D)
    T : ndarray of shape (N, K)
    layers : sequence of (W, b)
        The initial weights, as for :func:`save_layers`.
    order : ndarray of int, shape (M,), optional
        The samples an epoch visits, in order (:func:`load_order`); by default every sample,
        in the order of X.
    """
    arrays = {"X": np.asarray(X), "T": np.asarray(T)}
    if order is not None:
        arrays["order"] = np.asarray(order, dtype=np.int64)
    save_layers(path, layers, **arrays)


def load_problem(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The problem written by :func:`save_problem`.

    Parameters
    ----------
    path : str or path-like
        The .npz file.

    Returns
    -------
    X : ndarray of shape (N, D)
    T : ndarray of shape (N, K)
    layers : list of (W, b)
    """
    with np.load(path, allow_pickle=False) as f:
        X, T = f["X"], f["T"]
    return X, T, load_layers(path)


def load_order(path: str | os.PathLike) -> np.ndarray:
    """The visiting order of the problem written by :func:`save_problem`.

    Parameters
    ----------
    path : str or path-like
        The .npz file.

    Returns
    -------
    ndarray of int64, shape (M,)
        The order it was given, else ``arange(N)``.
    """
    with np.load(path, allow_pickle=False) as f:
        return f["order"] if "order" in f.files else np.arange(f["X"].shape[0], dtype=np.int64)
