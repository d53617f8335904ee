"""Argument checks of the Cython kernels' ``def`` wrappers, run once per call before ``nogil``.

The compiled loops run without bounds checks, so a buffer that is too short would be written
past its end. These checks turn such a mistake into a ValueError; they read shapes and the
layout's few rows (and the range of ``order``), never the data. (dtype agreement is enforced
by the fused-type dispatch itself: every floating argument must have the same dtype.)
"""

import numpy as np

from deltaprop.contract import HYPER, LAYOUT_COLUMNS, SOLVERS

__all__ = ["check_forward", "check_units", "check_output_delta", "check_gradient", "check_loss_gradient",
           "check_epoch", "check_average", "check_split"]


def _layout(layout, P):
    """Check the layout table against a parameter vector of length P; return (D, K, U).

    The table has one row per layer, so its rows are read as Python ints (``tolist()``) and
    checked in a plain loop: for so few values that is cheaper than NumPy reductions over the
    columns, each of which has a fixed cost per call."""
    lay = np.asarray(layout)
    if lay.ndim != 2 or lay.shape[1] != len(LAYOUT_COLUMNS) or lay.shape[0] < 1:
        raise ValueError(f"layout must have shape (L, {len(LAYOUT_COLUMNS)}) with L >= 1; got {lay.shape}")
    rows = lay.tolist()
    U = 0
    for layer, (n_in, n_out, w_off, b_off, u_off) in enumerate(rows):
        if n_in < 1 or n_out < 1 or w_off < 0 or b_off < 0 or u_off < 0:
            raise ValueError("layout entries must be non-negative, with layer sizes >= 1")
        if layer > 0 and n_in != rows[layer - 1][1]:
            raise ValueError("layout: each layer's n_in must equal the previous layer's n_out")
        if w_off + n_in * n_out > P or b_off + n_out > P:
            raise ValueError(f"layout addresses parameters beyond w's length {P}")
        U = max(U, u_off + n_out)
    return rows[0][0], rows[-1][1], U


def _inputs(X, Din):
    if X.shape[1] != Din:
        raise ValueError(f"X has {X.shape[1]} columns, the layout's first layer has {Din} inputs")


def _need(name, arr, size):
    if arr.shape[0] < size:
        raise ValueError(f"{name} has length {arr.shape[0]}, needs at least {size}")


def check_forward(w, layout, hidden, output, X, A, Z):
    D, K, U = _layout(layout, w.shape[0])
    _inputs(X, D)
    n = X.shape[0]
    _need("A", A, n * U)
    _need("Z", Z, n * U)


def check_units(w, layout, A, Z, D):
    """backprop: n = len(A) // U, as in the reference; Z and D must hold as many."""
    _, _, U = _layout(layout, w.shape[0])
    n = A.shape[0] // U
    _need("Z", Z, n * U)
    _need("D", D, n * U)
    return n


def check_output_delta(layout, A, Z, T, s, D):
    _, K, U = _layout(layout, np.iinfo(np.intp).max)
    n = T.shape[0]
    if T.shape[1] != K:
        raise ValueError(f"T has {T.shape[1]} columns, the network has {K} outputs")
    _need("s", s, n)
    for name, buf in (("A", A), ("Z", Z), ("D", D)):
        _need(name, buf, n * U)


def check_gradient(layout, X, Z, D, g):
    Din, _, U = _layout(layout, g.shape[0])
    n = X.shape[0]
    _inputs(X, Din)
    _need("Z", Z, n * U)
    _need("D", D, n * U)


def _samples(X, T, s, Din, K):
    """X (n, Din), T (n, K) and sample weights s (n,) agree with the layout and each other."""
    n = X.shape[0]
    _inputs(X, Din)
    if T.shape[0] != n or T.shape[1] != K:
        raise ValueError(f"T must have shape ({n}, {K}); got ({T.shape[0]}, {T.shape[1]})")
    _need("s", s, n)
    return n


def check_loss_gradient(w, layout, X, T, s, A, Z, D, g, grad):
    """loss_gradient: the rows per chunk, len(A) // U (at least one row's units)."""
    P = w.shape[0]
    Din, K, U = _layout(layout, P)
    _samples(X, T, s, Din, K)
    _need("A", A, U)
    rows = A.shape[0] // U
    _need("Z", Z, rows * U)
    _need("D", D, rows * U)
    _need("g", g, P)
    _need("grad", grad, P)
    return rows


def check_epoch(w, layout, X, T, s, order, batch_size, solver, hyper, state, step, A, Z, D, losses,
                Xb=None, Tb=None, sb=None, g=None):
    Din, K, U = _layout(layout, w.shape[0])
    n = _samples(X, T, s, Din, K)
    if order.shape[0] and order.shape[1]:
        o = np.asarray(order)
        if o.min() < 0 or o.max() >= n:
            raise ValueError(f"order holds sample indices outside [0, {n})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if solver not in SOLVERS.values():
        raise ValueError(f"unknown solver code {solver}")
    _need("hyper", hyper, len(HYPER))
    if state.shape[0] < 2 or state.shape[1] != w.shape[0]:
        raise ValueError(f"state must have shape (2, {w.shape[0]}); got ({state.shape[0]}, {state.shape[1]})")
    _need("step", step, 1)
    B = batch_size
    for name, buf in (("A", A), ("Z", Z), ("D", D)):
        _need(name, buf, B * U)
    if losses.shape[0] < order.shape[0] or losses.shape[1] < 2:
        raise ValueError(f"losses must have shape ({order.shape[0]}, 2)")
    if Xb is not None:
        if Xb.shape[0] < B or Xb.shape[1] != Din or Tb.shape[0] < B or Tb.shape[1] != K:
            raise ValueError(f"Xb, Tb must have shapes ({B}, {Din}), ({B}, {K})")
        _need("sb", sb, B)
        _need("g", g, w.shape[0])


def check_average(j, w, W, layout, X, T, s, order, bounds, solver, hyper, state, S, step, steps, a, z,
                  delta, losses, sync):
    """average_epochs: thread j of J = len(bounds); every per-thread array has J rows."""
    P, J = w.shape[0], bounds.shape[0]
    _, _, U = _layout(layout, P)
    if bounds.shape[1] != 2 or not 0 <= j < J:
        raise ValueError(f"bounds must have shape (J, 2) and 0 <= j < J; got {tuple(bounds.shape)}, j={j}")
    m = order.shape[1]
    b = np.asarray(bounds)
    if J and (b.min() < 0 or b.max() > m or (b[:, 1] < b[:, 0]).any()):
        raise ValueError(f"bounds must be ranges within [0, {m}]")
    check_epoch(w, layout, X, T, s, order, 1, solver, hyper, state, step, a[0], z[0], delta[0],
                losses[0])
    for name, arr, size in (("W", W, P), ("S", S, 2 * P), ("steps", steps, 1), ("a", a, U),
                            ("z", z, U), ("delta", delta, U)):
        if arr.shape[0] != J or arr.shape[1] < size:
            raise ValueError(f"{name} must have {J} rows of at least {size}; got {tuple(arr.shape)}")
    if losses.shape[0] != J or losses.shape[1] < order.shape[0] or losses.shape[2] != 2:
        raise ValueError(f"losses must have shape ({J}, {order.shape[0]}, 2)")
    if sync.shape[0] != 3 or sync.shape[1] < 1:
        raise ValueError("sync must have 3 rows (arrivals, generation, abort)")


def check_split(j, w, layout, X, T, s, order, batch_size, solver, hyper, state, step, steps, Xb, Tb, sb,
                A, Z, D, G, g, losses, sync):
    """split_epochs: thread j of J = len(G); every per-thread array has J rows, each for
    b = ceil(batch_size / J) samples."""
    P, J = w.shape[0], G.shape[0]
    Din, K, U = _layout(layout, P)
    if not 0 <= j < J:
        raise ValueError(f"j must be in [0, {J}) (G has {J} rows); got {j}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    b = -(-batch_size // J)
    check_epoch(w, layout, X, T, s, order, 1, solver, hyper, state, step, A[0], Z[0], D[0], losses[0])
    for name, arr, size in (("G", G, P), ("steps", steps, 1), ("sb", sb, b), ("A", A, b * U),
                            ("Z", Z, b * U), ("D", D, b * U)):
        if arr.shape[0] != J or arr.shape[1] < size:
            raise ValueError(f"{name} must have {J} rows of at least {size}; got {tuple(arr.shape)}")
    for name, arr, width in (("Xb", Xb, Din), ("Tb", Tb, K)):
        if arr.shape[0] != J or arr.shape[1] < b or arr.shape[2] != width:
            raise ValueError(f"{name} must have shape ({J}, >= {b}, {width}); got {tuple(arr.shape)}")
    _need("g", g, P)
    if losses.shape[0] != J or losses.shape[1] < order.shape[0] or losses.shape[2] != 2:
        raise ValueError(f"losses must have shape ({J}, {order.shape[0]}, 2)")
    if sync.shape[0] != 3 or sync.shape[1] < 1:
        raise ValueError("sync must have 3 rows (arrivals, generation, abort)")
