r"""Error backpropagation: output errors, the δ-recursion (Bishop 5.56) and the gradient,
mirroring ``_numpy/backprop.py``.

Batches use BLAS (``blas.gemm`` inside the kernels):
:math:`\Delta_{l-1} = h'(A_{l-1}) \odot (\Delta_l W_l^T)` and
:math:`\partial L/\partial W = Z^T \Delta`. :func:`sample_delta` serves both the batch
kernels and the per-sample epochs.
"""

import math

import numpy as np

from deltaprop.contract import (
    ALPHA,
    B_OFF,
    BINARY_CROSS_ENTROPY,
    CROSS_ENTROPY,
    ETA,
    LOGISTIC,
    MU,
    N_OUT,
    POISSON,
    SGD,
    SOFTMAX,
    SQUARED_ERROR,
    U_OFF,
    W_OFF,
)

from ._jit import helper, kernel
from .activations import log1pexp, scale_by_derivative
from .blas import gemm
from .forward import forward, units, weights
from .indexed import indexed_matmul_at
from .rows import sum_squares


@helper
def sample_delta(output, loss, a, y, t, to, delta, u, K):
    r"""Output errors :math:`\delta_k = \partial E_n / \partial a_k` of one sample; return :math:`E_n`.

    The sample's K output units sit at offset ``u`` (unsigned) of ``a``, ``y``, ``delta``;
    its K targets start at offset ``to`` (unsigned) of ``t``. Canonical pairs give
    :math:`\delta_k = y_k - t_k`; logistic + squared error (Mitchell)
    :math:`(y_k - t_k) y_k (1 - y_k)`; softmax + squared error
    :math:`y_k (g_k - \sum_j g_j y_j)` with :math:`g = y - t`. The errors are those of
    ``_numpy.backprop.output_delta``: squared error :math:`\frac12 \lVert y - t \rVert^2`, binary
    cross-entropy :math:`\ln(1 + e^{a}) - t a`, cross-entropy
    :math:`-\sum_k t_k (a_k - \max a - \ln \sum_j e^{a_j - \max a})`, Poisson
    :math:`\sum_k y_k - t_k a_k`.
    """
    zero = a.dtype.type(0)
    one = a.dtype.type(1)
    E = zero
    if loss == SQUARED_ERROR:
        for k in range(K):
            g = y[u + k] - t[to + k]
            E += g * g
            delta[u + k] = g
        E = E * a.dtype.type(0.5)
        if output == LOGISTIC:
            for k in range(u, u + K):
                delta[k] = delta[k] * y[k] * (one - y[k])
        elif output == SOFTMAX:
            gy = zero
            for k in range(u, u + K):
                gy += delta[k] * y[k]
            for k in range(u, u + K):
                delta[k] = y[k] * (delta[k] - gy)
    elif loss == BINARY_CROSS_ENTROPY:
        for k in range(K):
            E += log1pexp(a[u + k], zero) - t[to + k] * a[u + k]
            delta[u + k] = y[u + k] - t[to + k]
    elif loss == POISSON:
        for k in range(K):
            E += y[u + k] - t[to + k] * a[u + k]
            delta[u + k] = y[u + k] - t[to + k]
    elif loss == CROSS_ENTROPY:
        amax = a[u]
        for k in range(u, u + K):
            if a[k] > amax:
                amax = a[k]
        total = zero
        for k in range(u, u + K):
            total += math.exp(a[k] - amax)
        lse = amax + math.log(total)
        for k in range(K):
            E -= t[to + k] * (a[u + k] - lse)
            delta[u + k] = y[u + k] - t[to + k]
    return E


@helper
def softmax_cross_entropy(A, Y, T, s, D, base, K):
    r"""Softmax + cross-entropy for a batch whose outputs ``Y`` are the forward pass's softmax of
    ``A`` (the n samples' K units from offset ``base``): :math:`s_n \delta_k = s_n (y_k - t_k)`
    into ``D`` and :math:`E = \sum_n s_n \sum_k t_k (\max a - a_k + \ln \sum_j e^{a_j - \max a})`,
    the log-sum taken from the output at the arg-max, :math:`y_{k^*} = 1 / \sum_j e^{a_j - \max a}`
    (the forward pass divided :math:`e^0 = 1` by that sum): one ``log`` per sample instead of K
    ``exp`` (the same value to rounding; ``sample_delta`` recomputes the sum)."""
    n = T.shape[0]
    E = 0.0
    for r in range(n):
        u = base + np.uint64(r) * K
        kmax = u
        amax = A[u]
        for k in range(u + np.uint64(1), u + K):
            if A[k] > amax:
                amax = A[k]
                kmax = k
        log_total = A.dtype.type(-math.log(Y[kmax]))
        En = A.dtype.type(0)
        sr = s[r]
        for k in range(K):
            tk = T[r, k]
            if tk != 0:
                En += tk * ((amax - A[u + k]) + log_total)
            D[u + k] = (Y[u + k] - tk) * sr
        E += sr * En
    return A.dtype.type(E)


@kernel
def output_delta(layout, output, loss, A, Z, T, s, D):
    r"""Output errors :math:`s_n \delta_k = \partial (s_n E_n) / \partial a_k` into ``D``; return
    :math:`E = \sum_n s_n E_n` (see :func:`sample_delta` for the pairs)."""
    n = T.shape[0]
    layer = layout.shape[0] - 1
    K = np.uint64(layout[layer, N_OUT])
    base = np.uint64(n * layout[layer, U_OFF])
    if output == SOFTMAX and loss == CROSS_ENTROPY:
        return softmax_cross_entropy(A, Z, T, s, D, base, K)
    E = 0.0
    for r in range(n):
        u = base + np.uint64(r) * K
        En = sample_delta(output, loss, A, Z, T[r], np.uint64(0), D, u, K)
        sr = s[r]
        E += sr * En
        for k in range(u, u + K):
            D[k] *= sr
    return A.dtype.type(E)


@kernel
def backprop(w, layout, hidden, A, Z, D):
    r"""Propagate δ from the output layer back to the first hidden layer (Bishop 5.56).

    .. math:: \delta_j = h'(a_j) \sum_k w_{kj} \delta_k
    """
    n = A.shape[0] // (layout[-1, U_OFF] + layout[-1, N_OUT])
    one, zero = w.dtype.type(1), w.dtype.type(0)
    for layer in range(layout.shape[0] - 1, 0, -1):
        W, _ = weights(w, layout, layer)
        d, d_prev = units(D, layout, layer, n), units(D, layout, layer - 1, n)
        n_in = W.shape[0]
        gemm(d, W, d_prev, one, zero, False, True)
        scale_by_derivative(hidden, A, Z, D, np.uint64(n * layout[layer - 1, U_OFF]), np.uint64(n * n_in))


@kernel
def gradient(layout, X, Z, D, g):
    r"""Gradient of E summed over the batch into ``g`` (same layout as ``w``).

    .. math:: \frac{\partial E}{\partial w_{ji}} = \sum_n \delta_j z_i, \qquad
              \frac{\partial E}{\partial w_{j0}} = \sum_n \delta_j
    """
    batch_gradient(layout, X, np.empty(0, np.int64), Z, D, g)


@kernel
def batch_gradient(layout, X, idx, Z, D, g):
    """:func:`gradient` of a batch whose inputs are ``X`` itself when ``idx`` is empty, else the
    rows ``X[idx]``, read where they are (``indexed.indexed_matmul_at``)."""
    n = idx.shape[0] if idx.shape[0] > 0 else X.shape[0]
    one, zero = g.dtype.type(1), g.dtype.type(0)
    z_prev = X[:n]
    for layer in range(layout.shape[0]):
        gW, gb = weights(g, layout, layer)
        delta = units(D, layout, layer, n)
        n_out = gW.shape[1]
        if layer == 0 and idx.shape[0] > 0:
            indexed_matmul_at(X, idx, delta, gW, one, zero)
        else:
            gemm(z_prev, delta, gW, one, zero, True, False)
        for j in range(n_out):
            gb[j] = 0
        for r in range(n):
            for j in range(n_out):
                gb[j] += delta[r, j]
        z_prev = units(Z, layout, layer, n)


@kernel
def gradient_step(layout, solver, X, idx, Z, D, w, v, hyper, inv_S):
    r"""The gradient of a batch and the step of plain sgd or momentum in its products, with no
    gradient buffer; returns :math:`\lVert W \rVert^2` before the step (float64) when α is not 0,
    else 0.

    With :math:`c = \eta / S` (``inv_S`` = 1/S) and the summed gradient :math:`Z^T \Delta` of
    each layer, plain sgd is one product with :math:`\beta = 1 - c\alpha`:
    :math:`W \leftarrow (1 - c\alpha) W - c\, Z^T \Delta`, :math:`b \leftarrow b - c \sum_n \delta_n`;
    momentum is one product into the velocity ``v`` (the first row of the solver state) with
    :math:`\beta = \mu`, then one pass over the layer:
    :math:`V \leftarrow \mu V - c\, Z^T \Delta - c\alpha W`, :math:`W \leftarrow W + V`. The same
    rule as ``update.batch_step`` on :math:`g = (Z^T \Delta + \alpha W) / S`, to rounding. The
    batch's inputs are those of :func:`batch_gradient`.
    """
    direct = idx.shape[0] > 0
    n = idx.shape[0] if direct else X.shape[0]
    alpha = hyper[ALPHA]
    c = hyper[ETA] * inv_S
    decay = c * alpha
    mu = hyper[MU]
    one = w.dtype.type(1)
    sq = 0.0
    z_prev = X[:n]
    for layer in range(layout.shape[0]):
        W, _ = weights(w, layout, layer)
        delta = units(D, layout, layer, n)
        wo, bo = np.uint64(layout[layer, W_OFF]), np.uint64(layout[layer, B_OFF])
        n_out = np.uint64(layout[layer, N_OUT])
        if alpha != 0:
            sq += sum_squares(w, wo, bo - wo)
        if solver == SGD:
            if layer == 0 and direct:
                indexed_matmul_at(X, idx, delta, W, -c, one - decay)
            else:
                gemm(z_prev, delta, W, -c, one - decay, True, False)
            for r in range(n):
                for j in range(n_out):
                    w[bo + j] -= c * delta[r, j]
        else:
            V, _ = weights(v, layout, layer)
            if layer == 0 and direct:
                indexed_matmul_at(X, idx, delta, V, -c, mu)
            else:
                gemm(z_prev, delta, V, -c, mu, True, False)
            for p in range(wo, bo):
                v[p] -= decay * w[p]
                w[p] += v[p]
            for j in range(n_out):
                v[bo + j] *= mu
            for r in range(n):
                for j in range(n_out):
                    v[bo + j] -= c * delta[r, j]
            for j in range(n_out):
                w[bo + j] += v[bo + j]
        z_prev = units(Z, layout, layer, n)
    return sq


@kernel
def loss_gradient(w, layout, hidden, output, loss, X, T, s, A, Z, D, g, grad):
    r"""``forward``, ``output_delta``, ``backprop`` and ``gradient`` over all rows of X in one
    call, in chunks of :math:`|A| / U` rows: E returned, :math:`\sum_n s_n \nabla E_n` added
    into ``grad`` (P,) float64 (see ``deltaprop.contract``). No Python between chunks, so
    threads calling it on their own rows never wait for the GIL mid-sweep."""
    n = X.shape[0]
    U = layout[-1, U_OFF] + layout[-1, N_OUT]
    rows = A.shape[0] // U
    E = 0.0
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        size = (stop - start) * U
        a, z, d = A[:size], Z[:size], D[:size]
        forward(w, layout, hidden, output, X[start:stop], a, z)
        E += output_delta(layout, output, loss, a, z, T[start:stop], s[start:stop], d)
        backprop(w, layout, hidden, a, z, d)
        gradient(layout, X[start:stop], z, d, g)
        for p in range(grad.shape[0]):
            grad[p] += g[p]
    return E
