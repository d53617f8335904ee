r"""The flat parameter vector w, its layout table and the unit buffers.

Every kernel (``deltaprop.contract``) takes one flat parameter vector ``w`` (P,) holding every
weight and bias, the table ``layout`` (L, 5) of intp that says where each layer's weights,
biases and units are, and unit buffers ``A``, ``Z``, ``D`` (n * U,) for the pre-activations
:math:`a`, the activations :math:`z = h(a)` (:math:`y = f(a)` in the output block) and the
errors :math:`\delta` of a batch of n samples:

- :func:`make_layout`, :func:`n_params`, :func:`n_units`: the table and its sizes P and U;
- :func:`layer_params`, :func:`layer_units`: a layer's ``(W_l, b_l)`` views in ``w`` (or in a
  gradient), and its ``(n, n_out)`` block in a unit buffer;
- :func:`pack`, :func:`unpack`, :func:`unit_buffers`: from a user's own arrays in
  scikit-learn's layout (``coefs_``, ``intercepts_``) to ``w`` and back, and buffers for a
  batch. With these a hand-written NumPy MLP calls the kernels through ``deltaprop.lowlevel``
  (the user guide's "The kernels from your own NumPy code", ``docs/user_guide/numpy_kernels.rst``,
  and its gallery example ``examples/plot_numpy_kernels.py``).

``W_l[i, j]`` holds :math:`w_{ji}` (from unit i of layer l-1 to unit j of layer l), so
:math:`a_j = \sum_i w_{ji} z_i + w_{j0}` (Bishop 5.48) is ``a = z @ W_l + b_l``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .contract import B_OFF, DTYPES, LAYOUT_COLUMNS, N_IN, N_OUT, U_OFF, W_OFF

__all__ = ["make_layout", "n_params", "n_units", "layer_params", "layer_units", "pack", "unpack",
           "unit_buffers"]


def make_layout(layer_sizes: Sequence[int]) -> np.ndarray:
    """The layout table of a network with the given layer sizes.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[D, M_1, ..., K]``: inputs, the hidden layers' units, outputs.

    Returns
    -------
    layout : ndarray (L, 5) of intp
        Row ``l`` is ``(n_in, n_out, w_off, b_off, u_off)``; each layer's weights are followed
        by its biases, ``w = [W_0, b_0, W_1, b_1, ...]``, and its units follow the previous
        layer's in the unit buffers.
    """
    sizes = [int(s) for s in layer_sizes]
    layout = np.zeros((len(sizes) - 1, len(LAYOUT_COLUMNS)), dtype=np.intp)
    off = 0
    u_off = 0
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layout[layer, N_IN], layout[layer, N_OUT] = n_in, n_out
        layout[layer, W_OFF], layout[layer, B_OFF], layout[layer, U_OFF] = off, off + n_in * n_out, u_off
        off += n_in * n_out + n_out
        u_off += n_out
    return layout


def n_params(layout: np.ndarray) -> int:
    """The length P of the flat parameter vector ``w`` of ``layout`` (every weight and bias).

    Parameters
    ----------
    layout : ndarray (L, 5) of intp
        The layout table (:func:`make_layout`).

    Returns
    -------
    int
    """
    return int(layout[-1, B_OFF] + layout[-1, N_OUT])


def n_units(layout: np.ndarray) -> int:
    """The number U of units (hidden and output) of one sample: the unit buffers hold ``n * U``.

    Parameters
    ----------
    layout : ndarray (L, 5) of intp
        The layout table (:func:`make_layout`).

    Returns
    -------
    int
    """
    return int(layout[-1, U_OFF] + layout[-1, N_OUT])


def layer_params(flat: np.ndarray, layout: np.ndarray, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """Views of one layer's weights and biases in a flat vector laid out like ``w``.

    Parameters
    ----------
    flat : ndarray (P,)
        Parameters ``w``, or a vector in their layout (a gradient ``g``).
    layout : ndarray (L, 5) of intp
        The layout table.
    layer : int
        The layer (negative counts from the last).

    Returns
    -------
    W : ndarray (n_in, n_out)
        A view of ``flat``; ``W[i, j]`` holds :math:`w_{ji}`.
    b : ndarray (n_out,)
        A view of ``flat``: the biases :math:`w_{j0}`.
    """
    n_in, n_out, w_off, b_off = (int(layout[layer, c]) for c in (N_IN, N_OUT, W_OFF, B_OFF))
    return flat[w_off : w_off + n_in * n_out].reshape(n_in, n_out), flat[b_off : b_off + n_out]


def layer_units(buf: np.ndarray, layout: np.ndarray, layer: int, n: int) -> np.ndarray:
    """View of one layer's block in a unit buffer (``A``, ``Z`` or ``D``) of ``n`` samples.

    Parameters
    ----------
    buf : ndarray (n * U,)
        A unit buffer; layer l owns ``[n * u_off, n * (u_off + n_out))``.
    layout : ndarray (L, 5) of intp
        The layout table.
    layer : int
        The layer (``-1``: the outputs).
    n : int
        Samples in the batch the buffer holds.

    Returns
    -------
    ndarray (n, n_out)
        A view of ``buf``.
    """
    n_out, u_off = int(layout[layer, N_OUT]), int(layout[layer, U_OFF])
    return buf[n * u_off : n * (u_off + n_out)].reshape(n, n_out)


def pack(coefs: Sequence[ArrayLike], intercepts: Sequence[ArrayLike],
         dtype: DTypeLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Copy per-layer weights and biases into one flat parameter vector ``w``.

    Parameters
    ----------
    coefs : sequence of array_like
        ``coefs[l]`` of shape (n_in, n_out) holds :math:`w_{ji}` of layer l at ``[i, j]``
        (scikit-learn's ``coefs_`` layout). Each layer's n_in must equal the previous layer's
        n_out.
    intercepts : sequence of array_like
        ``intercepts[l]`` of shape (n_out,) holds the biases :math:`w_{j0}` of layer l
        (scikit-learn's ``intercepts_``).
    dtype : {None, "float32", "float64"}
        dtype of ``w``. ``None``: float32 if every array is float32 (or a narrower type), else
        float64.

    Returns
    -------
    w : ndarray (P,)
        A new C-contiguous vector, ``[W_0, b_0, W_1, b_1, ...]``; the arrays given are not
        referenced.
    layout : ndarray (L, 5) of intp
        ``make_layout([D, M_1, ..., K])`` for the layer sizes the shapes describe.

    Raises
    ------
    ValueError
        If the lists are empty or of different lengths, an array has the wrong number of
        dimensions, a bias does not match its layer's n_out, consecutive layers do not chain,
        or ``dtype`` is not float32 or float64. The message names the layer.
    TypeError
        If an array is not of a real numeric dtype.

    See Also
    --------
    unpack : the inverse, as views into ``w``.
    """
    coef_list, intercept_list = list(coefs), list(intercepts)
    if not coef_list:
        raise ValueError("coefs is empty: pack needs at least one layer")
    if len(coef_list) != len(intercept_list):
        raise ValueError(f"coefs has {len(coef_list)} layers but intercepts has {len(intercept_list)}; "
                         "pack needs one (W, b) pair per layer")
    Ws = [np.asarray(W) for W in coef_list]
    bs = [np.asarray(b) for b in intercept_list]
    for name, arrays in (("coefs", Ws), ("intercepts", bs)):
        for layer, arr in enumerate(arrays):
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"{name}[{layer}] must be a real numeric array; got dtype {arr.dtype}")
    sizes: list[int] = []
    for layer, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        if W.ndim != 2:
            raise ValueError(f"coefs[{layer}] (layer {layer}) must be 2-D (n_in, n_out); got shape {W.shape}")
        if b.shape != (W.shape[1],):
            raise ValueError(f"intercepts[{layer}] (layer {layer}) must have shape ({W.shape[1]},) to match "
                             f"coefs[{layer}] of shape {W.shape}; got shape {b.shape}")
        if min(W.shape) < 1:
            raise ValueError(f"coefs[{layer}] (layer {layer}) has shape {W.shape}; every layer needs at "
                             "least one input and one output")
        if layer == 0:
            sizes.append(W.shape[0])
        elif W.shape[0] != sizes[-1]:
            raise ValueError(f"coefs[{layer}] (layer {layer}) has shape {W.shape}, so {W.shape[0]} inputs, but "
                             f"layer {layer - 1} has {sizes[-1]} outputs (coefs[{layer - 1}] of shape "
                             f"{Ws[layer - 1].shape}); consecutive layers must chain")
        sizes.append(W.shape[1])
    if dtype is None:
        dt = np.result_type(*Ws, *bs, np.float32)
    else:
        dt = np.dtype(dtype)
    if dt not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64; got {dt}")
    layout = make_layout(sizes)
    w = np.empty(n_params(layout), dtype=dt)
    for layer, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        Wl, bl = layer_params(w, layout, layer)
        Wl[...] = W
        bl[...] = b
    return w, layout


def unpack(w: np.ndarray, layout: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    r"""Per-layer weights and biases of a flat parameter vector, as views into it.

    Parameters
    ----------
    w : ndarray (P,)
        A flat vector laid out by ``layout`` (parameters, or a gradient ``g``).
    layout : ndarray (L, 5) of intp
        The layout table (:func:`make_layout`, or the one :func:`pack` returned).

    Returns
    -------
    coefs : list of ndarray
        ``coefs[l]`` of shape (n_in, n_out), a view of ``w`` (scikit-learn's layout).
    intercepts : list of ndarray
        ``intercepts[l]`` of shape (n_out,), a view of ``w``.

    Nothing is copied: a kernel updating ``w`` in place updates ``coefs`` and ``intercepts``,
    and writing into them (``coefs[0][...] = W``, ``intercepts[1] -= 0.1``) writes into ``w``.
    Rebinding a list item (``coefs[0] = W``) only changes the list.

    Raises
    ------
    TypeError
        If ``w`` is not a NumPy array (a list would be copied, and the views would not share
        its memory).
    ValueError
        If ``layout`` is not an (L, 5) table or ``w`` is not 1-D of length ``n_params(layout)``.
    """
    if not isinstance(w, np.ndarray):
        raise TypeError(f"w must be a NumPy array (unpack returns views into it); got {type(w).__name__}")
    layout = np.asarray(layout)
    if layout.ndim != 2 or layout.shape[0] < 1 or layout.shape[1] != len(LAYOUT_COLUMNS):
        raise ValueError(f"layout must be an (L, {len(LAYOUT_COLUMNS)}) table with L >= 1; "
                         f"got shape {layout.shape}")
    P = n_params(layout)
    if w.ndim != 1 or w.shape[0] != P:
        raise ValueError(f"w must be 1-D of length {P} (the layout's parameter count); got shape {w.shape}")
    views = [layer_params(w, layout, layer) for layer in range(layout.shape[0])]
    return [W for W, _ in views], [b for _, b in views]


def unit_buffers(layout: np.ndarray, n: int,
                 dtype: DTypeLike = np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Allocate the unit buffers ``A``, ``Z``, ``D`` for a batch of ``n`` samples.

    Parameters
    ----------
    layout : ndarray (L, 5) of intp
        The network's layout table.
    n : int
        Samples per batch (the rows of ``X`` given to the kernels). A smaller batch uses the
        first ``m * U`` values of each buffer (``A[: m * U]``).
    dtype : {"float32", "float64"}
        The dtype of ``w`` and ``X``.

    Returns
    -------
    A, Z, D : ndarray (n * U,)
        Three zeroed C-contiguous buffers for the pre-activations :math:`a`, the activations
        :math:`z` (:math:`y` in the output block) and the errors :math:`\delta` of every
        unit, ``U = n_units(layout)``; :func:`layer_units` gives a layer's ``(n, n_out)`` view.

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer or ``dtype`` is not float32 or float64.
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer (samples per batch); got {n!r}")
    dt = np.dtype(dtype)
    if dt not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64; got {dt}")
    size = int(n) * n_units(layout)
    return np.zeros(size, dtype=dt), np.zeros(size, dtype=dt), np.zeros(size, dtype=dt)
