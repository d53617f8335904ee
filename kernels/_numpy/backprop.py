r"""Error backpropagation: output errors, the δ-recursion (Bishop 5.56) and the gradient."""

import numpy as np

from deltaprop.contract import (
    BINARY_CROSS_ENTROPY,
    CROSS_ENTROPY,
    IDENTITY,
    LOGISTIC,
    N_OUT,
    POISSON,
    SOFTMAX,
    SQUARED_ERROR,
    U_OFF,
)
from deltaprop.layout import layer_params, layer_units

from .activations import derivative, log1pexp
from .forward import forward


def output_delta(layout, output, loss, A, Z, T, s, D):
    r"""Output errors :math:`s_n \delta_k = \partial (s_n E_n) / \partial a_k` into ``D``; return
    :math:`E = \sum_n s_n E_n` (sample weights ``s`` (n,); all ones for Bishop's plain sum).

    Errors (summed over samples n and outputs k):

    - squared error :math:`E = \frac12 \sum_n \lVert y_n - t_n \rVert^2`;
    - binary cross-entropy :math:`E = -\sum_{n,k} t_{nk} \ln y_{nk} + (1 - t_{nk}) \ln(1 - y_{nk})`,
      computed from the pre-activation as :math:`\ln(1 + e^{a}) - t a` (no :math:`\ln 0`);
    - cross-entropy :math:`E = -\sum_{n,k} t_{nk} \ln y_{nk}`, with
      :math:`\ln y_k = a_k - \ln \sum_j e^{a_j}` (log-sum-exp);
    - Poisson :math:`E = \sum_{n,k} y_{nk} - t_{nk} \ln y_{nk} = \sum_{n,k} e^{a_{nk}} - t_{nk} a_{nk}`.

    Canonical pairs (identity + squared error, logistic + binary cross-entropy, softmax +
    cross-entropy, exp + Poisson) give :math:`\delta_k = y_k - t_k`. Otherwise the chain rule through f:
    logistic + squared error (Mitchell) :math:`\delta_k = (y_k - t_k)\, y_k (1 - y_k)`;
    softmax + squared error :math:`\delta_k = y_k (g_k - \sum_j g_j y_j)`, :math:`g = y - t`
    (softmax's Jacobian-vector product).
    """
    n = T.shape[0]
    layer = layout.shape[0] - 1
    a, y, delta = (layer_units(buf, layout, layer, n) for buf in (A, Z, D))
    if loss == SQUARED_ERROR:
        g = y - T
        E = 0.5 * np.sum(s[:, None] * g * g)
        if output == IDENTITY:
            delta[...] = g
        elif output == LOGISTIC:
            delta[...] = g * y * (1 - y)
        elif output == SOFTMAX:
            delta[...] = y * (g - np.sum(g * y, axis=1, keepdims=True))
        else:
            raise ValueError("squared error needs an identity, logistic or softmax output")
    elif loss == BINARY_CROSS_ENTROPY:
        E = np.sum(s[:, None] * (log1pexp(a) - T * a))
        delta[...] = y - T
    elif loss == POISSON:
        E = np.sum(s[:, None] * (y - T * a))
        delta[...] = y - T
    elif loss == CROSS_ENTROPY:
        amax = a.max(axis=1, keepdims=True)
        log_y = a - amax - np.log(np.sum(np.exp(a - amax), axis=1, keepdims=True))
        E = -np.sum(s[:, None] * T * log_y)
        delta[...] = y - T
    else:
        raise ValueError(f"unknown loss code {loss}")
    delta *= s[:, None]
    return E


def backprop(w, layout, hidden, A, Z, D):
    r"""Propagate δ from the output layer back to the first hidden layer (Bishop 5.56).

    .. math:: \delta_j = h'(a_j) \sum_k w_{kj} \delta_k

    in matrix form :math:`\Delta_{l-1} = h'(A_{l-1}) \odot (\Delta_l W_l^T)`.
    """
    n = A.shape[0] // (layout[-1, U_OFF] + layout[-1, N_OUT])
    for layer in range(layout.shape[0] - 1, 0, -1):
        W, _ = layer_params(w, layout, layer)
        a, z = layer_units(A, layout, layer - 1, n), layer_units(Z, layout, layer - 1, n)
        delta = layer_units(D, layout, layer, n)
        layer_units(D, layout, layer - 1, n)[...] = derivative(hidden, a, z) * (delta @ W.T)


def gradient(layout, X, Z, D, g):
    r"""Gradient of E summed over the batch into ``g`` (same layout as ``w``).

    .. math:: \frac{\partial E}{\partial w_{ji}} = \sum_n \delta_j z_i, \qquad
              \frac{\partial E}{\partial w_{j0}} = \sum_n \delta_j

    in matrix form :math:`\partial L / \partial W = Z_{prev}^T \Delta`,
    :math:`\partial L / \partial b = \sum_{rows} \Delta`.
    """
    n = X.shape[0]
    z_prev = X
    for layer in range(layout.shape[0]):
        gW, gb = layer_params(g, layout, layer)
        delta = layer_units(D, layout, layer, n)
        gW[...] = z_prev.T @ delta
        gb[...] = delta.sum(axis=0)
        z_prev = layer_units(Z, layout, layer, n)


def loss_gradient(w, layout, hidden, output, loss, X, T, s, A, Z, D, g, grad):
    r"""``forward``, ``output_delta``, ``backprop`` and ``gradient`` over all rows of X in one
    call: :math:`E = \sum_n s_n E_n` (returned) and :math:`\sum_n s_n \nabla E_n` added into
    ``grad`` (P,) float64.

    The rows go in chunks of as many as the unit buffers hold, :math:`n_c = |A| / U`; each
    chunk's gradient is formed in ``g`` (P,) and added to ``grad``, and E is the float64 sum of
    the chunks' errors: the same sums, in the same order, as calling the four functions chunk
    by chunk.
    """
    n = X.shape[0]
    U = layout[-1, U_OFF] + layout[-1, N_OUT]
    rows = A.shape[0] // U
    E = 0.0
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        size = (stop - start) * U
        a, z, d = A[:size], Z[:size], D[:size]
        forward(w, layout, hidden, output, X[start:stop], a, z)
        E += float(output_delta(layout, output, loss, a, z, T[start:stop], s[start:stop], d))
        backprop(w, layout, hidden, a, z, d)
        gradient(layout, X[start:stop], z, d, g)
        grad += g
    return E
