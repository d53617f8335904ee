r"""Per-sample SGD with L2 (solver sgd, α > 0, scikit-learn's default ``alpha=1e-4``),
:math:`w \leftarrow w - \eta (\nabla E_n + \alpha W / s_n)` (biases not decayed), as fast as
``sgd_plain``: zero inputs still skip their rows of ``W_0`` and its update stays fused with the
next sample's forward sum.

The decay :math:`W_0 \leftarrow (1 - \eta\alpha/s_n) W_0` would touch every weight of the first
layer at every sample, so ``W_0`` is stored as :math:`c V_0` and the decay only multiplies the
scalar ``c`` (the gradient step on ``V_0`` is divided by ``c``; ``c`` is folded back into
``V_0`` when it leaves [2^-10, 2^10]). Layers l ≥ 1 are visited densely anyway and decay in
place. Equal to the reference to rounding, not bit for bit. Dense inputs take the first layer
a window of samples at a time where ``sgd_windows.use_windows`` says so
(``sgd_windows.sgd_windows``).
"""

import numpy as np

from deltaprop.contract import B_OFF, N_IN, N_OUT, U_OFF, W_OFF

from ._jit import exact_helper, helper, kernel
from .backprop import sample_delta
from .rows import U64, backprop_update, first_rows, list_rows, next_sample, upper_forward
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

