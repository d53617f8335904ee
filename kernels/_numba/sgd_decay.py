r"""Per-sample SGD with L2 (solver sgd, α > 0, scikit-learn's default ``alpha=1e-4``),
:math:`w \leftarrow w - \eta (\nabla E_n + \alpha W / s_n)` (biases not decayed), as fast as
``sgd_plain``: zero inputs still skip their rows of ``W_0`` and its update stays fused with the
next sample's forward sum.

The decay :math:`W_0 \leftarrow (1 - \eta\alpha/s_n) W_0` would touch every weight of the first
layer at every sample, so ``W_0`` is stored as :math:`c V_0` and the decay only multiplies the
scalar ``c`` (the gradient step on ``V_0`` is divided by ``c``; ``c`` is folded back into
``V_0`` when it leaves [2^-10, 2^10]). Layers l ≥ 1 are visited densely anyway and decay in
place. Equal to the reference to rounding, not bit for bit.
"""

import numpy as np

from deltaprop.contract import B_OFF, N_IN, N_OUT, U_OFF, W_OFF

from ._jit import exact_helper, helper, kernel
from .activations import derivative
from .backprop import sample_delta
from .rows import U64, next_sample, upper_forward


@helper
def backprop_decay_rows(w, wo, bo, n_in, n_out, hidden, a, z, delta, up, u, eta, r):
    r"""``sgd_plain.backprop_update_rows`` with L2 weight decay: with the old row i, δ of layer
    l-1 as there; then :math:`w_{ki} \leftarrow r\, w_{ki} - \eta z_i \delta_k` with
    :math:`r = 1 - \eta\alpha/S` (biases are not decayed). Returns :math:`\sum w^2` of the old
    weights (the L2 penalty's share of this layer)."""
    one = w.dtype.type(1)
    q = w.dtype.type(0)
    i = U64(0)
    while i + U64(4) <= n_in:
        r0 = wo + i * n_out
        r1, r2, r3 = r0 + n_out, r0 + U64(2) * n_out, r0 + U64(3) * n_out
        z0, z1, z2, z3 = z[up + i], z[up + i + U64(1)], z[up + i + U64(2)], z[up + i + U64(3)]
        c0, c1, c2, c3 = eta * z0, eta * z1, eta * z2, eta * z3
        s0 = s1 = s2 = s3 = z0 - z0
        for j in range(n_out):
            dj = delta[u + j]
            w0, w1, w2, w3 = w[r0 + j], w[r1 + j], w[r2 + j], w[r3 + j]
            s0 += w0 * dj
            s1 += w1 * dj
            s2 += w2 * dj
            s3 += w3 * dj
            q += w0 * w0 + w1 * w1 + w2 * w2 + w3 * w3
            w[r0 + j] = r * w0 - c0 * dj
            w[r1 + j] = r * w1 - c1 * dj
            w[r2 + j] = r * w2 - c2 * dj
            w[r3 + j] = r * w3 - c3 * dj
        delta[up + i] = derivative(hidden, a[up + i], z0, one) * s0
        delta[up + i + U64(1)] = derivative(hidden, a[up + i + U64(1)], z1, one) * s1
        delta[up + i + U64(2)] = derivative(hidden, a[up + i + U64(2)], z2, one) * s2
        delta[up + i + U64(3)] = derivative(hidden, a[up + i + U64(3)], z3, one) * s3
        i += U64(4)
    while i < n_in:
        r0 = wo + i * n_out
        zi = z[up + i]
        c = eta * zi
        acc = zi - zi
        for j in range(n_out):
            dj = delta[u + j]
            wij = w[r0 + j]
            acc += wij * dj
            q += wij * wij
            w[r0 + j] = r * wij - c * dj
        delta[up + i] = derivative(hidden, a[up + i], zi, one) * acc
        i += U64(1)
    for j in range(n_out):
        w[bo + j] -= eta * delta[u + j]
    return q


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
    na = U64(0)
    for i in range(n_in):
        active[na] = i
        if not skip_zeros:
            na += U64(1)
        elif upd and fwd:
            na += U64((x[xo + i] != zero) | (x[x2o + i] != zero))
        elif upd:
            na += U64(x[xo + i] != zero)
        else:
            na += U64(x[x2o + i] != zero)
    kk = zero
    k = U64(0)
    if upd and fwd:
        while k + U64(4) <= na:
            i0, i1, i2, i3 = U64(active[k]), U64(active[k + U64(1)]), U64(active[k + U64(2)]), U64(active[k + U64(3)])
            r0, r1, r2, r3 = wo + i0 * n_out, wo + i1 * n_out, wo + i2 * n_out, wo + i3 * n_out
            c0, c1, c2, c3 = kscale * x[xo + i0], kscale * x[xo + i1], kscale * x[xo + i2], kscale * x[xo + i3]
            kk = kk + c0 * c0 + c1 * c1 + c2 * c2 + c3 * c3
            y0, y1, y2, y3 = x[x2o + i0], x[x2o + i1], x[x2o + i2], x[x2o + i3]
            for j in range(n_out):
                dj = delta[j]
                o0, o1, o2, o3 = w[r0 + j], w[r1 + j], w[r2 + j], w[r3 + j]
                w0 = o0 - c0 * dj
                w1 = o1 - c1 * dj
                w2 = o2 - c2 * dj
                w3 = o3 - c3 * dj
                w[r0 + j] = w0
                w[r1 + j] = w1
                w[r2 + j] = w2
                w[r3 + j] = w3
                acc = a[j]
                acc = acc + y0 * w0
                acc = acc + y1 * w1
                acc = acc + y2 * w2
                acc = acc + y3 * w3
                a[j] = acc
                q = pv[j]
                q = q + c0 * o0
                q = q + c1 * o1
                q = q + c2 * o2
                q = q + c3 * o3
                pv[j] = q
            k += U64(4)
        while k < na:
            i0 = U64(active[k])
            r0 = wo + i0 * n_out
            c0, y0 = kscale * x[xo + i0], x[x2o + i0]
            kk = kk + c0 * c0
            for j in range(n_out):
                o0 = w[r0 + j]
                w0 = o0 - c0 * delta[j]
                w[r0 + j] = w0
                a[j] = a[j] + y0 * w0
                pv[j] = pv[j] + c0 * o0
            k += U64(1)
    elif upd:
        while k < na:
            i0 = U64(active[k])
            r0 = wo + i0 * n_out
            c0 = kscale * x[xo + i0]
            kk = kk + c0 * c0
            for j in range(n_out):
                o0 = w[r0 + j]
                w[r0 + j] = o0 - c0 * delta[j]
                pv[j] = pv[j] + c0 * o0
            k += U64(1)
    elif fwd:
        while k + U64(4) <= na:
            i0, i1, i2, i3 = U64(active[k]), U64(active[k + U64(1)]), U64(active[k + U64(2)]), U64(active[k + U64(3)])
            r0, r1, r2, r3 = wo + i0 * n_out, wo + i1 * n_out, wo + i2 * n_out, wo + i3 * n_out
            y0, y1, y2, y3 = x[x2o + i0], x[x2o + i1], x[x2o + i2], x[x2o + i3]
            for j in range(n_out):
                acc = a[j]
                acc = acc + y0 * w[r0 + j]
                acc = acc + y1 * w[r1 + j]
                acc = acc + y2 * w[r2 + j]
                acc = acc + y3 * w[r3 + j]
                a[j] = acc
            k += U64(4)
        while k < na:
            i0 = U64(active[k])
            r0 = wo + i0 * n_out
            y0 = x[x2o + i0]
            for j in range(n_out):
                a[j] = a[j] + y0 * w[r0 + j]
            k += U64(1)
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
    while e < n_epochs:
        n = order[e, p]
        xo = U64(n) * Dx
        S = s[n]
        upper_forward(w, layout, hidden, output, z, a)
        losses[e, 0] += sample_delta(output, loss, a, z, tf, U64(n) * K, delta, uo, K)
        r = one - eta_alpha / S
        sq = c * c * sq0
        for l in range(L - 1, 0, -1):
            sq += backprop_decay_rows(w, U64(layout[l, W_OFF]), U64(layout[l, B_OFF]), U64(layout[l, N_IN]),
                                      U64(layout[l, N_OUT]), hidden, a, z, delta, U64(layout[l - 1, U_OFF]),
                                      U64(layout[l, U_OFF]), eta, r)
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
