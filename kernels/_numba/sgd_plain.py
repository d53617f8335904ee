r"""Per-sample SGD without L2 (solver sgd, α = 0), the common case:
:math:`w \leftarrow w - \eta \nabla E_n(w)`, one sample at a time.

For each sample: the forward pass, the output δ, and one pass per layer l ≥ 1 over the rows of
``W_l`` that both propagates δ (the dot product of row ``i`` with :math:`\delta_l`, using the
old weights) and updates the row in place (:func:`backprop_update_rows`). Nothing is allocated
in the loop and no gradient vector is ever stored. The first layer goes further, and stays
exact (:func:`first_layer`):

- a zero input :math:`x_i = 0` skips row ``i`` of ``W_0`` in the forward sum (it would add
  :math:`0 \cdot w`) and in the update (it would subtract :math:`\eta \cdot 0 \cdot \delta`), so
  sparse inputs such as images touch only their non-zero rows;
- the update of ``W_0`` for sample n is fused with the forward sum of sample n+1: row ``i`` is
  updated and then, still in registers, added to the next sample's pre-activations. The
  additions happen in the same order as in an unfused forward pass (compiled without
  ``reassoc``), so the results are identical, and ``W_0`` (by far the largest layer) is
  streamed once per sample instead of twice.
"""

import numpy as np

from deltaprop.contract import B_OFF, N_IN, N_OUT, U_OFF, W_OFF

from ._jit import exact_helper, helper, kernel
from .activations import derivative
from .backprop import sample_delta
from .rows import U64, next_sample, upper_forward


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
    n_in, n_out = U64(layout[0, N_IN]), U64(layout[0, N_OUT])
    wo, bo = U64(layout[0, W_OFF]), U64(layout[0, B_OFF])
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


@kernel
def sgd_plain(w, layout, hidden, output, loss, X, T, s, order, eta, a, z, delta, losses, skip_zeros):
    r"""Per-sample SGD, :math:`w \leftarrow w - \eta \nabla E_n(w)`, without L2: zero inputs skip
    their rows, and the update of ``W_0`` is fused with the next sample's forward sum.

    ``skip_zeros=False`` visits zero rows too (identical results; kept for the tests).
    """
    L = layout.shape[0]
    n_epochs = order.shape[0]
    uo, K = U64(layout[L - 1, U_OFF]), U64(layout[L - 1, N_OUT])
    active = np.empty(layout[0, N_IN], dtype=np.intp)
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
            backprop_update_rows(w, U64(layout[l, W_OFF]), U64(layout[l, B_OFF]), U64(layout[l, N_IN]),
                                 U64(layout[l, N_OUT]), hidden, a, z, delta, U64(layout[l - 1, U_OFF]),
                                 U64(layout[l, U_OFF]), eta)
        e2, p2 = next_sample(order, s, e, p + 1)
        if e2 < n_epochs:
            first_layer(w, layout, a, delta, x, xo, U64(order[e2, p2]) * Dx, eta, active, True, True,
                        skip_zeros)
        else:
            first_layer(w, layout, a, delta, x, xo, xo, eta, active, True, False, skip_zeros)
        e, p = e2, p2
