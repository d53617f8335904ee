r"""Gradient-descent epochs, on-line and mini-batch, each ONE compiled call (mirrors
``_numpy/epoch.py``).

.. math:: w^{(\tau+1)} = w^{(\tau)} - \eta \nabla E_n(w^{(\tau)})

The per-sample epoch (:func:`sgd_epoch`) fuses, for each sample: the forward pass, the output
δ, and one pass per layer over the rows of ``W_l`` that both propagates δ (the dot product of
row ``i`` with :math:`\delta_l`, using the old weights) and updates the row in place. Nothing is
allocated in the loop and no gradient vector is ever stored.

Plain SGD without L2 (:func:`sgd_plain`, the common case) goes further, and stays exact:

- a zero input :math:`x_i = 0` skips row ``i`` of ``W_0`` in the forward sum (it would add
  :math:`0 \cdot w`) and in the update (it would subtract :math:`\eta \cdot 0 \cdot \delta`), so
  sparse inputs such as images touch only their non-zero rows;
- the update of ``W_0`` for sample n is fused with the forward sum of sample n+1: row ``i`` is
  updated and then, still in registers, added to the next sample's pre-activations. The
  additions happen in the same order as in an unfused forward pass (compiled without
  ``reassoc``), so the results are identical, and ``W_0`` (by far the largest layer) is
  streamed once per sample instead of twice.

Rows are processed four at a time (the accumulators of the four rows, or of the forward sum,
stay in registers across them), in the same order as one at a time. Offsets into the flat
buffers are unsigned (``np.uint64``): with signed offsets numba's negative-index fix-up turns
the contiguous loops into gathers.

The helpers called for every sample are compiled without numba's reference counting
(``_jit.helper``), and the epochs index flat views of X and T (``ravel``: a copy only if X is not
C-contiguous) instead of making a view per sample: on a 1-3-1 net the atomic reference-count updates had cost 75 % of the time.

Plain SGD with L2 (:func:`sgd_decay`, scikit-learn's default ``alpha=1e-4``) keeps both: the
decay :math:`W_0 \leftarrow (1 - \eta\alpha/s_n) W_0` would touch every weight, so ``W_0`` is
stored as :math:`c V_0` and the decay only multiplies the scalar ``c`` (the gradient step on
``V_0`` is divided by ``c``; ``c`` is folded back into ``V_0`` when it leaves [2^-10, 2^10]).
Equal to the reference to rounding, not bit for bit.

Momentum, Nesterov and Adam change every weight at every step, so they cannot skip rows;
they run :func:`sgd_general`.
"""

import numpy as np

from deltaprop.contract import ADAM, ALPHA, BETA_1, BETA_2, EPSILON, ETA, MU, SGD

from ._jit import exact_helper, helper, kernel
from .activations import activate, derivative
from .backprop import backprop, gradient, output_delta, sample_delta
from .forward import forward, weights
from .update import adam_rate, update, update_rows

U64 = np.uint64


@helper
def next_sample(order, s, e, p):
    """Position ``(e, p)`` of the next sample of ``order`` with a non-zero weight, from ``(e, p)``
    on (``(n_epochs, 0)`` when there is none): batches of one sample with :math:`S_B = 0` are
    skipped."""
    n_epochs, m = order.shape
    while e < n_epochs:
        while p < m:
            if s[order[e, p]] != 0:
                return e, p
            p += 1
        e += 1
        p = 0
    return e, p


@helper
def forward_rows(w, wo, bo, n_in, n_out, z, up, a, u):
    r"""One sample through one layer, :math:`a_j = w_{j0} + \sum_i w_{ji} z_i`, on flat buffers.

    ``W`` starts at ``w[wo]`` (n_in, n_out), ``b`` at ``w[bo]``, the inputs at ``z[up]``, the
    outputs at ``a[u]``. Four rows per sweep; the sum still runs over i in order.
    """
    for j in range(n_out):
        a[u + j] = w[bo + j]
    i = U64(0)
    while i + U64(4) <= n_in:
        r0 = wo + i * n_out
        r1, r2, r3 = r0 + n_out, r0 + U64(2) * n_out, r0 + U64(3) * n_out
        z0, z1, z2, z3 = z[up + i], z[up + i + U64(1)], z[up + i + U64(2)], z[up + i + U64(3)]
        for j in range(n_out):
            acc = a[u + j]
            acc = acc + z0 * w[r0 + j]
            acc = acc + z1 * w[r1 + j]
            acc = acc + z2 * w[r2 + j]
            acc = acc + z3 * w[r3 + j]
            a[u + j] = acc
        i += U64(4)
    while i < n_in:
        zi = z[up + i]
        r0 = wo + i * n_out
        for j in range(n_out):
            a[u + j] += zi * w[r0 + j]
        i += U64(1)


@helper
def backprop_update_rows(w, wo, bo, n_in, n_out, hidden, a, z, delta, up, u, eta):
    r"""Layer l ≥ 1 of one sample, one pass over the rows of ``W_l``: with the old row i,
    :math:`\delta_i = h'(a_i) \sum_k w_{ki} \delta_k` (5.56); then
    :math:`w_{ki} \leftarrow w_{ki} - \eta z_i \delta_k` and :math:`w_{k0} \leftarrow w_{k0} - \eta \delta_k`.
    """
    one = w.dtype.type(1)
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
            w[r0 + j] = w0 - c0 * dj
            w[r1 + j] = w1 - c1 * dj
            w[r2 + j] = w2 - c2 * dj
            w[r3 + j] = w3 - c3 * dj
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
            w[r0 + j] = wij - c * dj
        delta[up + i] = derivative(hidden, a[up + i], zi, one) * acc
        i += U64(1)
    for j in range(n_out):
        w[bo + j] -= eta * delta[u + j]


@exact_helper
def first_layer(w, layout, a, delta, x, xo, x2o, eta, active, upd, fwd, skip_zeros):
    r"""Layer 0, fused: update ``W_0``, ``b_0`` with the sample at ``x[xo:]``'s δ (if ``upd``), and
    compute the pre-activations ``a_0`` of the next sample, at ``x[x2o:]`` (if ``fwd``), in one
    sweep over the rows (``x`` is the flat X, offsets unsigned: no views per sample).

    .. math:: w_{ji} \leftarrow w_{ji} - \eta x_i \delta_j, \qquad
              a'_j \leftarrow w_{j0} + \sum_i w_{ji} x'_i

    With ``skip_zeros`` only the rows with :math:`x_i \ne 0` or :math:`x'_i \ne 0` are visited
    (``active`` (n_in,) intp receives their indices); the others would change nothing (exact for
    finite weights). Compiled without ``reassoc``: the sum runs over i in order, in blocks of
    four rows or not, with zero inputs or without, so every variant gives the same bits.
    """
    n_in, n_out = U64(layout[0, 0]), U64(layout[0, 1])
    wo, bo = U64(layout[0, 2]), U64(layout[0, 3])
    zero = w.dtype.type(0)
    for j in range(n_out):
        if upd:
            w[bo + j] -= eta * delta[j]
        if fwd:
            a[j] = w[bo + j]
    na = U64(0)  # the list of rows to visit, built without branches (zeros are unpredictable)
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
    k = U64(0)
    if upd and fwd:
        while k + U64(4) <= na:
            i0, i1, i2, i3 = U64(active[k]), U64(active[k + U64(1)]), U64(active[k + U64(2)]), U64(active[k + U64(3)])
            r0, r1, r2, r3 = wo + i0 * n_out, wo + i1 * n_out, wo + i2 * n_out, wo + i3 * n_out
            c0, c1, c2, c3 = eta * x[xo + i0], eta * x[xo + i1], eta * x[xo + i2], eta * x[xo + i3]
            y0, y1, y2, y3 = x[x2o + i0], x[x2o + i1], x[x2o + i2], x[x2o + i3]
            for j in range(n_out):
                dj = delta[j]
                w0 = w[r0 + j] - c0 * dj
                w1 = w[r1 + j] - c1 * dj
                w2 = w[r2 + j] - c2 * dj
                w3 = w[r3 + j] - c3 * dj
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
            k += U64(4)
        while k < na:
            i0 = U64(active[k])
            r0 = wo + i0 * n_out
            c0, y0 = eta * x[xo + i0], x[x2o + i0]
            for j in range(n_out):
                w0 = w[r0 + j] - c0 * delta[j]
                w[r0 + j] = w0
                a[j] = a[j] + y0 * w0
            k += U64(1)
    elif upd:
        while k < na:
            i0 = U64(active[k])
            r0 = wo + i0 * n_out
            c0 = eta * x[xo + i0]
            for j in range(n_out):
                w[r0 + j] = w[r0 + j] - c0 * delta[j]
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


@helper
def upper_forward(w, layout, hidden, output, z, a):
    """Activations of layer 0 (its pre-activations are ready in ``a``) and the forward pass of
    layers 1..L-1, for one sample, on the flat unit buffers."""
    L = layout.shape[0]
    for l in range(L):
        n_out, u = U64(layout[l, 1]), U64(layout[l, 4])
        if l > 0:
            forward_rows(w, U64(layout[l, 2]), U64(layout[l, 3]), U64(layout[l, 0]), n_out,
                         z, U64(layout[l - 1, 4]), a, u)
        activate(output if l == L - 1 else hidden, a, z, u, n_out)


@kernel
def sgd_plain(w, layout, hidden, output, loss, X, T, s, order, eta, a, z, delta, losses, skip_zeros):
    r"""Per-sample SGD, :math:`w \leftarrow w - \eta \nabla E_n(w)`, without L2: zero inputs skip
    their rows, and the update of ``W_0`` is fused with the next sample's forward sum.

    ``skip_zeros=False`` visits zero rows too (identical results; kept for the tests).
    """
    L = layout.shape[0]
    n_epochs = order.shape[0]
    uo, K = U64(layout[L - 1, 4]), U64(layout[L - 1, 1])
    active = np.empty(layout[0, 0], dtype=np.intp)
    x, tf, Dx = X.ravel(), T.ravel(), U64(X.shape[1])  # flat views: no array is made per sample
    losses[:, :] = 0.0
    e, p = next_sample(order, s, 0, 0)
    if e < n_epochs:  # the first forward sum of layer 0; later ones are fused with the update
        xo = U64(order[e, p]) * Dx
        first_layer(w, layout, a, delta, x, xo, xo, eta, active, False, True, skip_zeros)
    while e < n_epochs:
        n = order[e, p]
        xo = U64(n) * Dx
        upper_forward(w, layout, hidden, output, z, a)
        losses[e, 0] += sample_delta(output, loss, a, z, tf, U64(n) * K, delta, uo, K)
        for l in range(L - 1, 0, -1):
            backprop_update_rows(w, U64(layout[l, 2]), U64(layout[l, 3]), U64(layout[l, 0]),
                                 U64(layout[l, 1]), hidden, a, z, delta, U64(layout[l - 1, 4]),
                                 U64(layout[l, 4]), eta)
        e2, p2 = next_sample(order, s, e, p + 1)
        if e2 < n_epochs:
            first_layer(w, layout, a, delta, x, xo, U64(order[e2, p2]) * Dx, eta, active, True, True,
                        skip_zeros)
        else:
            first_layer(w, layout, a, delta, x, xo, xo, eta, active, True, False, skip_zeros)
        e, p = e2, p2


@helper
def backprop_decay_rows(w, wo, bo, n_in, n_out, hidden, a, z, delta, up, u, eta, r):
    r""":func:`backprop_update_rows` with L2 weight decay: with the old row i, δ of layer l-1 as
    there; then :math:`w_{ki} \leftarrow r\, w_{ki} - \eta z_i \delta_k` with
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
    r""":func:`first_layer` for weights kept as :math:`W_0 = c V_0` (``w`` holds V in W_0's place):
    update :math:`v_{ji} \leftarrow v_{ji} - (\eta / c) x_i \delta_j` (``c`` is the scale after
    this step's decay, so :math:`W_0` receives :math:`-\eta x_i \delta_j`) and
    :math:`w_{j0} \leftarrow w_{j0} - \eta \delta_j`, then the next sample's
    :math:`a'_j = w_{j0} + c \sum_i v_{ji} x'_i`. Zero inputs skip their rows as there.

    For the L2 penalty ``pv`` (n_out,) receives :math:`\sum_i k_i v_{ji}` (old v,
    :math:`k_i = \eta x_i / c`), and the return value is :math:`\sum_i k_i^2`, so that
    :math:`\lVert V' \rVert^2 = \lVert V \rVert^2 - 2 \sum_j \delta_j\, pv_j + \sum_i k_i^2 \lVert \delta \rVert^2`.
    """
    n_in, n_out = U64(layout[0, 0]), U64(layout[0, 1])
    wo, bo = U64(layout[0, 2]), U64(layout[0, 3])
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
    wo, end = U64(layout[0, 2]), U64(layout[0, 3])
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
    uo, K = U64(layout[L - 1, 4]), U64(layout[L - 1, 1])
    n_out0 = U64(layout[0, 1])
    active = np.empty(layout[0, 0], dtype=np.intp)
    pv = np.empty(layout[0, 1], dtype=w.dtype)
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
            sq += backprop_decay_rows(w, U64(layout[l, 2]), U64(layout[l, 3]), U64(layout[l, 0]),
                                      U64(layout[l, 1]), hidden, a, z, delta, U64(layout[l - 1, 4]),
                                      U64(layout[l, 4]), eta, r)
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
def backprop_rows(w, wo, n_in, n_out, hidden, a, z, delta, up, u):
    r""":math:`\delta_i = h'(a_i) \sum_k w_{ki} \delta_k` (5.56) for the n_in units of layer l-1
    at ``up``, from layer l's δ at ``u`` and its weights at ``w[wo]`` (one sample, unsigned offsets)."""
    one = w.dtype.type(1)
    zero = w.dtype.type(0)
    for i in range(n_in):
        ro = wo + i * n_out
        acc = zero
        for j in range(n_out):
            acc += w[ro + j] * delta[u + j]
        delta[up + i] = derivative(hidden, a[up + i], z[up + i], one) * acc


@kernel
def sgd_general(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, t,
                a, z, delta, losses):
    r"""Per-sample gradient descent with any solver and L2: for each sample, forward, δ weighted
    by :math:`s_n`, then one pass per layer over the rows that propagates δ (old weights) and
    applies :math:`g = (s_n \delta_j z_i + \alpha w_{ji}) / s_n` with the solver's rule."""
    L = layout.shape[0]
    one = w.dtype.type(1)
    zero = w.dtype.type(0)
    alpha = hyper[ALPHA]
    uo, K = U64(layout[L - 1, 4]), U64(layout[L - 1, 1])
    eta, mu, b1, b2, eps = hyper[ETA], hyper[MU], hyper[BETA_1], hyper[BETA_2], hyper[EPSILON]
    eta_t = eta
    m, v = state[0], state[1]
    x, tf, Dx = X.ravel(), T.ravel(), U64(X.shape[1])  # flat views: no array is made per sample
    losses[:, :] = 0.0
    for e in range(order.shape[0]):
        for p in range(order.shape[1]):
            n = order[e, p]
            S = s[n]
            if S == 0:
                continue
            inv_S = one / S
            xo = U64(n) * Dx
            forward_rows(w, U64(layout[0, 2]), U64(layout[0, 3]), U64(layout[0, 0]), U64(layout[0, 1]),
                         x, xo, a, U64(0))
            upper_forward(w, layout, hidden, output, z, a)
            E = sample_delta(output, loss, a, z, tf, U64(n) * K, delta, uo, K)
            for k in range(uo, uo + K):
                delta[k] *= S
            losses[e, 0] += S * E * inv_S
            if solver == ADAM:
                eta_t = adam_rate(hyper, t)
            sq = zero
            for l in range(L - 1, -1, -1):
                n_in, n_out = U64(layout[l, 0]), U64(layout[l, 1])
                wo, bo, u = U64(layout[l, 2]), U64(layout[l, 3]), U64(layout[l, 4])
                if l > 0:  # δ of layer l-1 with the old weights, then the update
                    up = U64(layout[l - 1, 4])
                    backprop_rows(w, wo, n_in, n_out, hidden, a, z, delta, up, u)
                    sq += update_rows(solver, w, m, v, wo, bo, n_in, n_out, z, up, delta, u,
                                      eta, eta_t, mu, b1, b2, eps, alpha, inv_S)
                else:
                    sq += update_rows(solver, w, m, v, wo, bo, n_in, n_out, x, xo, delta, u,
                                      eta, eta_t, mu, b1, b2, eps, alpha, inv_S)
            if alpha != 0:  # (never 0 * inf: the penalty of a diverged run with α = 0 stays 0)
                losses[e, 1] += 0.5 * alpha * sq * inv_S


def sgd_epoch(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, t, a, z, delta, losses):
    r"""On-line gradient descent, :math:`w \leftarrow w - \eta \nabla E_n(w)`, one sample at a
    time, for every epoch of ``order`` (n_epochs, m), in one compiled call.

    Equals ``batch_epoch`` with ``batch_size=1`` (see ``deltaprop.contract``). This thin Python
    function only picks the compiled kernel, :func:`sgd_plain` (solver sgd, α = 0),
    :func:`sgd_decay` (solver sgd, α > 0) or :func:`sgd_general`, so that each compiles on its own
    first use: a user of one never waits for the others' compilation (cold, float64, 2 cores:
    4.5-4.8 s, 4.2 s and 3.1 s; 0.17 s each from the cache).
    """
    if solver == SGD and hyper[ALPHA] == 0:
        sgd_plain(w, layout, hidden, output, loss, X, T, s, order, hyper[ETA], a, z, delta, losses, True)
    elif solver == SGD:
        sgd_decay(w, layout, hidden, output, loss, X, T, s, order, hyper[ETA], hyper[ALPHA], a, z, delta,
                  losses, True)
    else:
        sgd_general(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, t,
                    a, z, delta, losses)


@kernel
def batch_epoch(w, layout, hidden, output, loss, X, T, s, order, batch_size, solver, hyper, state, t,
                Xb, Tb, sb, A, Z, D, g, losses):
    r"""Mini-batch gradient descent over consecutive batches B of ``order`` (n_epochs, m).

    For each batch: gather the samples into ``Xb``, ``Tb``, ``sb``; forward, output δ weighted
    by :math:`s_n`, δ-backprop and the gradient in matrix form (BLAS for large layers); then
    :math:`g = (\sum_{n \in B} s_n \nabla E_n + \alpha W) / S_B` and the solver's update.
    """
    U = A.shape[0] // batch_size
    alpha = hyper[ALPHA]
    L = layout.shape[0]
    one = w.dtype.type(1)
    n_epochs, m = order.shape
    for e in range(n_epochs):
        data = 0.0
        penalty = 0.0
        for start in range(0, m, batch_size):
            nb = min(batch_size, m - start)
            S = w.dtype.type(0)
            for r in range(nb):
                idx = order[e, start + r]
                Xb[r, :] = X[idx]
                Tb[r, :] = T[idx]
                sb[r] = s[idx]
                S += sb[r]
            if S == 0:
                continue
            xb, tb, s_b = Xb[:nb], Tb[:nb], sb[:nb]
            a, z, d = A[: nb * U], Z[: nb * U], D[: nb * U]
            forward(w, layout, hidden, output, xb, a, z)
            E = output_delta(layout, output, loss, a, z, tb, s_b, d)
            backprop(w, layout, hidden, a, z, d)
            gradient(layout, xb, z, d, g)
            sq = 0.0
            if alpha != 0:
                for l in range(L):
                    W, _ = weights(w, layout, l)
                    gW, _ = weights(g, layout, l)
                    n_in, n_out = W.shape
                    for i in range(n_in):
                        for j in range(n_out):
                            gW[i, j] += alpha * W[i, j]
                            sq += W[i, j] * W[i, j]
            data += nb * E / S
            if alpha != 0:
                penalty += nb * 0.5 * alpha * sq / S
            update(w, g, solver, hyper, state, t, one / S)
        losses[e, 0] = data
        losses[e, 1] = penalty
