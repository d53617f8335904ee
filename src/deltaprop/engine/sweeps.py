r"""Sweeps over the rows of X: forward pass, error and gradient in chunks and on threads; the Jacobian.

A sweep computes, over the rows of X, the forward pass (Bishop 5.48, 5.49), the error
:math:`E = \sum_n s_n E_n` and, by δ-backprop (5.56), the gradient
:math:`\sum_n s_n \nabla E_n`. Every result is a plain sum over the rows, so sums over chunks,
threads and machines add up to the sum over all of them; :func:`sharded` adds them in a fixed
order, so a result is deterministic for a given ``n_jobs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ..layout import layer_units, n_units
from ..parallel import piece_bounds
from .buffers import MIN_SHARD_ROWS, PIECE_BYTES, dense_rows

if TYPE_CHECKING:
    from .mlp import MLP

__all__ = ["OUTPUT_DERIVATIVES", "sweep", "sharded", "jacobian"]

#: :math:`\partial y_k / \partial a_{k'}` of each output activation, as an (n, K, K) array
#: from the outputs y (n, K) and the identity matrix (the Jacobian's output error vectors)
OUTPUT_DERIVATIVES = {
    "identity": lambda y, eye: np.broadcast_to(eye, (y.shape[0],) + eye.shape),
    "logistic": lambda y, eye: eye * (y * (1 - y))[:, :, None],
    "exp": lambda y, eye: eye * y[:, :, None],
    "softmax": lambda y, eye: y[:, :, None] * (eye - y[:, None, :]),  # y_k (I_kk' - y_k')
}


def sweep(net: MLP, X: np.ndarray | sp.csr_matrix, T: np.ndarray | None = None, s: np.ndarray | None = None,
          outputs: np.ndarray | None = None, pre_activation: np.ndarray | None = None,
          grad: np.ndarray | None = None, slot: object = 0) -> float:
    r"""One pass over the rows of X on the calling thread, a chunk (:meth:`MLP.chunk_rows`) per
    kernel call.

    The gradient sweep of a dense X with nothing else asked for is one ``loss_gradient`` call
    (the chunks in compiled code, with no Python and so no GIL between them; ``grad`` summed in
    float64).

    Parameters
    ----------
    net : MLP
        The network, at its weights ``w``.
    X : ndarray (n, D) or csr_matrix
        Inputs, validated, of the network's dtype.
    T : ndarray (n, K), optional
        Targets; with them the output δ and E are computed.
    s : ndarray (n,), optional
        Sample weights :math:`s_n` (ones if None).
    outputs, pre_activation : ndarray (n, K), optional
        Receive the outputs y and the output units' a.
    grad : ndarray (P,), optional
        Receives :math:`\sum_n s_n \nabla E_n` (needs T).
    slot : hashable
        Which kept unit buffers to use inside :meth:`MLP.reuse_buffers` (one per thread).

    Returns
    -------
    float
        :math:`E = \sum_n s_n E_n` (0.0 without T).
    """
    n = X.shape[0]
    rows = min(n, net.chunk_rows(X))
    hidden, output, loss = net._codes
    kernels, w, layout, U = net._kernels, net.w, net.layout, n_units(net.layout)
    A, Z, D = net._buffers(max(rows, 1), slot)
    if T is not None and s is None:
        s = np.ones(n, dtype=net.dtype)
    if grad is not None and outputs is None and pre_activation is None and not sp.issparse(X):
        # the whole sweep in one compiled call (no Python, so no GIL, between chunks)
        acc = grad if grad.dtype == np.float64 else np.empty(grad.shape[0])
        acc[...] = 0
        work = net._buffers(1, ("g", slot), size=w.shape[0], count=1)[0]
        E = float(kernels.loss_gradient(w, layout, hidden, output, loss, X, T, s, A, Z, D, work, acc))
        if acc is not grad:
            grad[...] = acc
        return E
    g = None
    if grad is not None:
        grad[...] = 0
        g = grad if (rows == n and grad.dtype == net.dtype) else np.empty_like(w)
    E = 0.0
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        m = stop - start
        Xc = dense_rows(X, slice(start, stop), net.dtype) if rows < n or sp.issparse(X) else X
        a, z, d = A[: m * U], Z[: m * U], D[: m * U]
        kernels.forward(w, layout, hidden, output, Xc, a, z)
        if outputs is not None:
            outputs[start:stop] = layer_units(z, layout, -1, m)
        if pre_activation is not None:
            pre_activation[start:stop] = layer_units(a, layout, -1, m)
        if T is None:
            continue
        assert s is not None  # ones when T is given without weights
        E += float(kernels.output_delta(layout, output, loss, a, z, T[start:stop], s[start:stop], d))
        if grad is not None:
            kernels.backprop(w, layout, hidden, a, z, d)
            kernels.gradient(layout, Xc, z, d, g)
            if g is not grad:
                grad += g
    return E


def sharded(net: MLP, X: np.ndarray | sp.csr_matrix, T: np.ndarray | None, s: np.ndarray | None, n_jobs: int,
            outputs: np.ndarray | None = None, pre_activation: np.ndarray | None = None,
            grad: np.ndarray | None = None) -> float:
    r""":func:`sweep` over ``n_jobs`` threads.

    The rows are cut into contiguous pieces (:func:`~deltaprop.parallel.piece_bounds`, which
    depend on n and ``n_jobs`` only) that the threads take in turn as each becomes free, so a
    slower core takes fewer of them. Outputs go by rows; E and the gradient are summed in piece
    order (each piece's gradient in its own float64 buffer), so the result is deterministic for
    a given ``n_jobs``. Fewer than two threads' worth of rows
    (:data:`~deltaprop.engine.buffers.MIN_SHARD_ROWS` each) is one :func:`sweep`.

    Parameters
    ----------
    net : MLP
        The network.
    X, T, s, outputs, pre_activation, grad
        As for :func:`sweep`.
    n_jobs : int
        Threads, at least 1 (already as :func:`deltaprop.parallel.effective_n_jobs` gives it).

    Returns
    -------
    float
        :math:`E = \sum_n s_n E_n` (0.0 without T).
    """
    n = X.shape[0]
    J = min(n_jobs, n // MIN_SHARD_ROWS)
    if J < 2:
        return sweep(net, X, T, s, outputs, pre_activation, grad)
    if T is not None and s is None:
        s = np.ones(n, dtype=net.dtype)
    P = net.w.shape[0]
    pieces = piece_bounds(n, J, MIN_SHARD_ROWS, max(2 * J, PIECE_BYTES // (8 * P)))
    grads = None if grad is None else net._buffers(
        1, "pieces", size=len(pieces) * P, count=1, dtype=np.float64)[0].reshape(len(pieces), P)
    if "_kept" in net.__dict__:  # each thread's kept buffers sized for the largest piece at once
        for j in range(J):
            net._buffers(min(max(b - a for a, b in pieces), net.chunk_rows(X)), j)

    def piece(k: int, j: int) -> float:
        a, b = pieces[k]
        return sweep(net, X[a:b], None if T is None else T[a:b], None if s is None else s[a:b],
                     None if outputs is None else outputs[a:b],
                     None if pre_activation is None else pre_activation[a:b],
                     None if grads is None else grads[k], slot=j)

    with net._threads(J) as threads:
        E = threads.run_dynamic(piece, len(pieces))
    if grad is not None:  # ((g_0 + g_1) + g_2) + ... (J >= 2 makes two pieces at least)
        assert grads is not None  # made above when grad is given
        total = grad if grad.dtype == np.float64 else grads[0]
        np.add(grads[0], grads[1], out=total)
        for g in grads[2:]:
            total += g
        if total is not grad:
            grad[...] = total
    return float(sum(E))


def jacobian(net: MLP, X: np.ndarray) -> np.ndarray:
    r"""Jacobian :math:`J_{ki} = \partial y_k / \partial x_i` of every sample, by backpropagation.

    For each output k the error vector at the output units is
    :math:`\partial y_k / \partial a_{k'}` (the output activation's derivative,
    :data:`OUTPUT_DERIVATIVES`), which the δ-recursion (5.56) carries back to the first hidden
    layer; then :math:`\partial y_k / \partial x_i = \sum_j w_{ji} \delta_j`
    (:math:`\partial L/\partial X = \partial L/\partial Y\, W^T`). No per-layer Jacobian matrix
    is ever formed.

    Parameters
    ----------
    net : MLP
        The network.
    X : ndarray (n, D)
        Inputs, validated, dense, of the network's dtype.

    Returns
    -------
    ndarray (n, K, D)
        :math:`J_{ki}` of each sample.
    """
    n, K, layout = X.shape[0], net.layer_sizes[-1], net.layout
    hidden, output, _ = net._codes
    A, Z, _ = net._buffers(n)
    net._kernels.forward(net.w, layout, hidden, output, X, A, Z)
    # A batch of n*K rows: row n*K + k carries sample n with output k's error vector.
    U = n_units(layout)
    Ar, Zr, Dr = (np.empty(n * K * U, dtype=net.dtype) for _ in range(3))
    for layer in range(net.n_layers):
        for src, dst in ((A, Ar), (Z, Zr)):
            layer_units(dst, layout, layer, n * K)[...] = np.repeat(layer_units(src, layout, layer, n), K, axis=0)
    y = layer_units(Z, layout, -1, n)
    dy_da = OUTPUT_DERIVATIVES[net.output](y, np.eye(K, dtype=net.dtype))
    layer_units(Dr, layout, -1, n * K)[...] = dy_da.reshape(n * K, K)
    net._kernels.backprop(net.w, layout, hidden, Ar, Zr, Dr)
    delta0 = layer_units(Dr, layout, 0, n * K)
    return (delta0 @ net.coefs_[0].T).reshape(n, K, net.layer_sizes[0])
