r"""Per-sample SGD with L2 (solver sgd, α > 0, scikit-learn's default ``alpha=1e-4``),
:math:`w \leftarrow w - \eta (\nabla E_n + \alpha W / s_n)` (biases not decayed), as fast as
``sgd_plain``: zero inputs still skip their rows of ``W_0`` and its update stays fused with the
next sample's forward sum.

The decay :math:`W_0 \leftarrow (1 - \eta\alpha/s_n) W_0` would touch every weight of the first
layer at every sample, so ``W_0`` is stored as :math:`c V_0` and the decay only multiplies the
scalar ``c`` (the gradient step on ``V_0`` is divided by ``c``; ``c`` is folded back into
``V_0`` when it leaves [2^-10, 2^10]). Layers l ≥ 1 are visited densely anyway and decay in
place. Equal to the reference to rounding, not bit for bit. Dense inputs take the first layer
a window of samples at a time where ``sgd_plain.use_windows`` says so
(:func:`sgd_decay_windows`).
"""

import numpy as np

from deltaprop.contract import B_OFF, N_IN, N_OUT, U_OFF, W_OFF

from ._jit import exact_helper, helper, kernel
from .backprop import sample_delta
from .indexed import indexed_matmul, window_update
from .rows import U64, backprop_update, first_rows, list_rows, next_sample, upper_forward
from .sgd_plain import WINDOW, next_window, prefetch_window
from .vectors import prefetch


@helper
def backprop_decay_rows(w, wo, bo, n_in, n_out, hidden, a, z, delta, up, u, eta, r):
    r"""``sgd_plain.backprop_update_rows`` with L2 weight decay: with the old row i, δ of layer
    l-1 as there; then :math:`w_{ki} \leftarrow r\, w_{ki} - \eta z_i \delta_k` with
    :math:`r = 1 - \eta\alpha/S` (biases are not decayed). Returns :math:`\sum w^2` of the old
    weights (the L2 penalty's share of this layer)."""
    return backprop_update(w, wo, bo, n_in, n_out, hidden, a, z, delta, up, u, eta, r, True)


@exact_helper
def first_layer_scaled(w, layout, a, delta, x, xo, x2o, eta, c, active, pv, upd, fwd, skip_zeros):
    r"""``sgd_plain.first_layer`` for weights kept as :math:`W_0 = c V_0` (``w`` holds V in
    W_0's place): update :math:`v_{ji} \leftarrow v_{ji} - (\eta / c) x_i \delta_j` (``c`` is the scale after
    this step's decay, so :math:`W_0` receives :math:`-\eta x_i \delta_j`) and
    :math:`w_{j0} \leftarrow w_{j0} - \eta \delta_j`, then the next sample's
    :math:`a'_j = w_{j0} + c \sum_i v_{ji} x'_i`. Zero inputs skip their rows as there.

    For the L2 penalty ``pv`` (n_out,) receives :math:`\sum_i k_i v_{ji}` (old v,
    :math:`k_i = \eta x_i / c`), and the return value is :math:`\sum_i k_i^2`, so that
    :math:`\lVert V' \rVert^2 = \lVert V \rVert^2 - 2 \sum_j \delta_j\, pv_j + \sum_i k_i^2 \lVert \delta \rVert^2`.
    """
    n_in, n_out = U64(layout[0, N_IN]), U64(layout[0, N_OUT])
    wo, bo = U64(layout[0, W_OFF]), U64(layout[0, B_OFF])
    zero = w.dtype.type(0)
    kscale = eta / c
    for j in range(n_out):
        a[j] = zero
        pv[j] = zero
    na = list_rows(x, xo, x2o, n_in, active, upd, fwd, skip_zeros)
    kk = zero
    if upd and fwd:
        kk = first_rows(w, wo, n_out, active, na, x, xo, x2o, kscale, delta, a, pv, True, True, True)
    elif upd:
        kk = first_rows(w, wo, n_out, active, na, x, xo, x2o, kscale, delta, a, pv, True, False, True)
    elif fwd:
        first_rows(w, wo, n_out, active, na, x, xo, x2o, kscale, delta, a, pv, False, True, False)
    for j in range(n_out):
        if upd:
            w[bo + j] -= eta * delta[j]
        if fwd:
            a[j] = w[bo + j] + c * a[j]
    return kk


@helper
def scale_first_layer(w, layout, c):
    r"""``V_0 *= c`` in place (folds the scale into the weights); returns :math:`\lVert V_0 \rVert^2` after."""
    wo, end = U64(layout[0, W_OFF]), U64(layout[0, B_OFF])
    one = w.dtype.type(1)
    q = w.dtype.type(0)
    if c != one:
        for p in range(wo, end):
            w[p] = c * w[p]
    for p in range(wo, end):
        q += w[p] * w[p]
    return q


@kernel
def sgd_decay(w, layout, hidden, output, loss, X, T, s, order, eta, alpha, a, z, delta, losses,
              skip_zeros):
    r"""Per-sample SGD with L2, :math:`w \leftarrow w - \eta (\nabla E_n + \alpha W / s_n)` (biases
    not decayed), as fast as :func:`sgd_plain`: zero inputs still skip their rows of ``W_0``.

    The decay :math:`W_0 \leftarrow r W_0`, :math:`r = 1 - \eta\alpha/s_n`, would touch every
    weight of the first layer at every sample; instead ``W_0 = c V_0`` is kept as a scalar times
    the stored matrix: the decay multiplies ``c``, the gradient step on V is divided by ``c``
    (:func:`first_layer_scaled`). When ``|c|`` leaves [2^-10, 2^10] (or the step would make it
    0), the scale is folded into V (one dense pass) and ``c`` restarts at 1; at the end ``w``
    holds :math:`W_0` again. :math:`\lVert V_0 \rVert^2` for the penalty is updated from the
    step's own sums and recomputed exactly at every epoch. Layers l ≥ 1 are visited densely
    anyway and decay in place (:func:`backprop_decay_rows`).
    """
    L = layout.shape[0]
    n_epochs = order.shape[0]
    one = w.dtype.type(1)
    zero = w.dtype.type(0)
    lo, hi = w.dtype.type(2.0 ** -10), w.dtype.type(2.0 ** 10)
    uo, K = U64(layout[L - 1, U_OFF]), U64(layout[L - 1, N_OUT])
    n_out0 = U64(layout[0, N_OUT])
    active = np.empty(layout[0, N_IN], dtype=np.intp)
    pv = np.empty(layout[0, N_OUT], dtype=w.dtype)
    eta_alpha = eta * alpha
    losses[:, :] = 0.0
    c = one
    sq0 = scale_first_layer(w, layout, one)
    x, tf, Dx = X.ravel(), T.ravel(), U64(X.shape[1])
    e, p = next_sample(order, s, 0, 0)
    if e < n_epochs:
        xo = U64(order[e, p]) * Dx
        first_layer_scaled(w, layout, a, delta, x, xo, xo, eta, c, active, pv, False, True, skip_zeros)
    m = order.shape[1]
    row_bytes = U64(X.shape[1] * X.itemsize)
    far = row_bytes >= 1024  # long rows (for short ones the prefetch costs more than it saves)
    while e < n_epochs:
        n = order[e, p]
        xo = U64(n) * Dx
        if far:  # the row after the next one: in L2 when the sweep reads it
            ef, pf = (e, p + 2) if p + 2 < m else (e + 1, p + 2 - m)
            if ef < n_epochs and pf < m:
                prefetch(x, U64(order[ef, pf]) * Dx, row_bytes)
        S = s[n]
        upper_forward(w, layout, hidden, output, z, a)
        losses[e, 0] += sample_delta(output, loss, a, z, tf, U64(n) * K, delta, uo, K)
        r = one - eta_alpha / S
        sq = c * c * sq0
        for layer in range(L - 1, 0, -1):
            sq += backprop_decay_rows(w, U64(layout[layer, W_OFF]), U64(layout[layer, B_OFF]), U64(layout[layer, N_IN]),
                                      U64(layout[layer, N_OUT]), hidden, a, z, delta, U64(layout[layer - 1, U_OFF]),
                                      U64(layout[layer, U_OFF]), eta, r)
        losses[e, 1] += 0.5 * alpha * sq / S
        c_new = c * r
        if not (lo <= abs(c_new) <= hi):  # fold the scale into V (also when c_new is 0 or NaN)
            sq0 = scale_first_layer(w, layout, c_new)
            c_new = one
        e2, p2 = next_sample(order, s, e, p + 1)
        if e2 < n_epochs:
            kk = first_layer_scaled(w, layout, a, delta, x, xo, U64(order[e2, p2]) * Dx, eta, c_new,
                                    active, pv, True, True, skip_zeros)
        else:
            kk = first_layer_scaled(w, layout, a, delta, x, xo, xo, eta, c_new, active, pv, True, False,
                                    skip_zeros)
        dd = zero
        dp = zero
        for j in range(n_out0):
            dd += delta[j] * delta[j]
            dp += delta[j] * pv[j]
        sq0 += kk * dd - (dp + dp)
        c = c_new
        if e2 != e and e2 < n_epochs:  # keep the running norm from drifting
            sq0 = scale_first_layer(w, layout, one)
        e, p = e2, p2
    scale_first_layer(w, layout, c)


@helper
def gram_row(X, idx, k, out):
    """``out[r] = X[idx[k]] . X[idx[r]]`` for r <= k (a row of the window's Gram matrix, in
    float64)."""
    x = X[idx[k]]
    for r in range(k + 1):
        xr = X[idx[r]]
        g = 0.0
        for i in range(x.shape[0]):
            g += x[i] * xr[i]
        out[r] = g


@helper
def window_norm(P, sq0, eta, q, DA, G, DD, k):
    r""":math:`\lVert W_k \rVert^2` for :math:`W_k = P W_0 - \eta \sum_{m<k} q_m x_m \delta_m^T`:
    :math:`P^2 \lVert W_0 \rVert^2 - 2 \eta P \sum_m q_m\, \delta_m \cdot (x_m W_0)
    + \eta^2 \sum_{m, m'} q_m q_{m'} (x_m \cdot x_{m'}) (\delta_m \cdot \delta_{m'})`, from
    ``sq0`` (:math:`\lVert W_0 \rVert^2`), ``DA`` (:math:`\delta_m \cdot x_m W_0`), ``G`` (the
    Gram matrix of the x) and ``DD`` (of the δ), in float64."""
    cross = 0.0
    quad = 0.0
    for r in range(k):
        cross += q[r] * DA[r]
        for r2 in range(k):
            quad += q[r] * q[r2] * G[r, r2] * DD[r, r2]
    return P * P * sq0 - 2.0 * eta * P * cross + eta * eta * quad


@kernel
def sgd_decay_windows(w, layout, hidden, output, loss, X, T, s, order, eta, alpha, a, z, delta, losses):
    r"""Per-sample SGD with L2 on dense inputs, the first layer a window of
    ``sgd_plain.WINDOW`` samples at a time (``sgd_plain.sgd_plain_windows`` with the decay).

    Sample k of a window decays the weights by :math:`r_k = 1 - \eta\alpha/s_k` before its
    step, so the first layer it sees is
    :math:`W_k = P_k W_0 - \eta \sum_{m<k} Q_{mk}\, x_m \delta_m^T` with
    :math:`P_k = \prod_{l<k} r_l` and :math:`Q_{mk} = \prod_{m<l<k} r_l` (:math:`W_0` as the
    window began), and its pre-activations are
    :math:`a_k = b_k + P_k\, x_k W_0 - \eta \sum_{m<k} Q_{mk} (x_k \cdot x_m)\, \delta_m` (the bias
    is not decayed and is updated sample by sample). The penalty's :math:`\lVert W_k \rVert^2`
    follows without a pass, :math:`P_k^2 \lVert W_0 \rVert^2 - 2 \eta P_k \sum_m Q_{mk}\,
    \delta_m \cdot (x_m W_0) + \eta^2 \sum_{m, m'} Q_{mk} Q_{m'k} (x_m \cdot x_{m'})
    (\delta_m \cdot \delta_{m'})`, with :math:`\lVert W_0 \rVert^2` summed exactly at the first
    window of each epoch. The window's updates are one pass,
    :math:`W \leftarrow P_K W_0 - \eta \sum_m Q_{mK}\, x_m \delta_m^T`
    (``indexed.window_update``). Layers l ≥ 1 decay and step sample by sample
    (:func:`backprop_decay_rows`).
    """
    L = layout.shape[0]
    n_epochs = order.shape[0]
    n_in, n_out = layout[0, N_IN], layout[0, N_OUT]
    wo, bo, u0 = U64(layout[0, W_OFF]), U64(layout[0, B_OFF]), U64(layout[0, U_OFF])
    uo, K = U64(layout[L - 1, U_OFF]), U64(layout[L - 1, N_OUT])
    W0 = w[wo:wo + U64(n_in * n_out)].reshape((n_in, n_out))
    A = np.empty((WINDOW, n_out), dtype=w.dtype)
    D = np.empty((WINDOW, n_out), dtype=w.dtype)
    C = np.empty((WINDOW, n_in), dtype=w.dtype)
    idx = np.empty(WINDOW, dtype=np.intp)
    at = np.empty(WINDOW, dtype=np.intp)
    q = np.empty(WINDOW, dtype=w.dtype)
    G = np.empty((WINDOW, WINDOW))
    DD = np.empty((WINDOW, WINDOW))
    DA = np.empty(WINDOW)
    row = np.empty(WINDOW)
    tf = T.ravel()
    one = w.dtype.type(1)
    eta_alpha = eta * alpha
    losses[:, :] = 0.0
    sq0 = 0.0
    e_first = -1
    e, p = next_sample(order, s, 0, 0)
    while e < n_epochs:
        e, p, nw = next_window(order, s, e, p, idx, at)
        if at[0] != e_first:  # the first window of an epoch: the exact norm, no drift
            e_first = at[0]
            sq0 = 0.0
            for i in range(n_in):
                for j in range(n_out):
                    sq0 += W0[i, j] * W0[i, j]
        rows = idx[:nw]
        indexed_matmul(X, rows, W0, A[:nw])
        prefetch_window(X, order, e, p)
        P = one
        for k in range(nw):
            n = idx[k]
            gram_row(X, idx, k, row)
            for r in range(k + 1):
                G[k, r] = row[r]
                G[r, k] = row[r]
            for j in range(n_out):
                a[u0 + j] = w[bo + j] + P * A[k, j]
            for r in range(k):  # the window's earlier steps, seen through x_k
                c = -eta * q[r] * w.dtype.type(row[r])
                for j in range(n_out):
                    a[u0 + j] += c * D[r, j]
            upper_forward(w, layout, hidden, output, z, a)
            S = s[n]
            losses[at[k], 0] += sample_delta(output, loss, a, z, tf, U64(n) * K, delta, uo, K)
            rk = one - eta_alpha / S
            sq = window_norm(P, sq0, eta, q, DA, G, DD, k)
            for layer in range(L - 1, 0, -1):
                sq += backprop_decay_rows(w, U64(layout[layer, W_OFF]), U64(layout[layer, B_OFF]),
                                          U64(layout[layer, N_IN]), U64(layout[layer, N_OUT]), hidden, a, z,
                                          delta, U64(layout[layer - 1, U_OFF]), U64(layout[layer, U_OFF]), eta,
                                          rk)
            losses[at[k], 1] += 0.5 * alpha * sq / S
            for j in range(n_out):
                D[k, j] = delta[u0 + j]
                w[bo + j] -= eta * delta[u0 + j]
            for r in range(k + 1):
                g = 0.0
                for j in range(n_out):
                    g += D[k, j] * D[r, j]
                DD[k, r] = g
                DD[r, k] = g
            g = 0.0
            for j in range(n_out):
                g += D[k, j] * A[k, j]
            DA[k] = g
            for r in range(k):
                q[r] *= rk
            q[k] = one
            P *= rk
        for r in range(nw):
            x = X[idx[r]]
            c = eta * q[r]
            for i in range(n_in):
                C[r, i] = c * x[i]
        sq0 = window_norm(P, sq0, eta, q, DA, G, DD, nw)
        window_update(W0, C[:nw], D[:nw], P)
