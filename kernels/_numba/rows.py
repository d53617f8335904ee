r"""The per-sample pieces every per-sample epoch shares: the next sample to visit, one sample's
forward pass over the rows of the flat weights, and the row sweeps under them.

The per-sample epochs (``sgd_plain``, ``sgd_decay``, ``sgd_general``) index flat buffers: ``w``,
the unit buffers ``a``, ``z``, ``delta`` (U,) and flat views of X and T (``ravel``), with offsets
instead of a view per sample. Offsets are unsigned (:data:`U64`): with signed offsets numba's
negative-index fix-up turns the contiguous loops into gathers. A weight matrix ``W`` (n_in,
n_out) is row-major, so row ``i`` (the weights leaving input ``i``) is contiguous.

Rows go four at a time: the accumulators of the four rows, or of the forward sum, stay in
registers across them, and the sums run in the same order as one row at a time. The sweeps are
written once, here, as ``_jit.inline`` functions (the mirror of the Cython backend's
``_rows.h``): :func:`sweep4` / :func:`sweep1` (update rows and/or add them into a forward sum;
:func:`sweep4`'s update is explicit vector code, :mod:`~deltaprop.kernels._numba.vectors`)
and :func:`dot_update4` / :func:`dot_update1` (a dot product of each old row with δ, then its
update). Their flags (``upd``, ``fwd``, ``norm``, ``decay``) are passed as literals, so each
caller's copy keeps only its own loop, compiled with the caller's options.

Every function here and in the epoch modules that runs once per sample is a ``_jit.helper``
(compiled without numba's reference counting).
"""

import numpy as np

from deltaprop.contract import B_OFF, N_IN, N_OUT, U_OFF, W_OFF

from ._jit import helper, inline
from .activations import activate, derivative
from .vectors import update_rows4, update_rows4_fwd, update_rows4_fwd_norm, update_rows4_norm

#: Offsets into the flat buffers are unsigned.
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
def sum_squares(w, lo, n):
    """:math:`\\sum w_p^2` over ``[lo, lo + n)`` (float64)."""
    sq = 0.0
    for i in range(n):
        sq += w[lo + i] * w[lo + i]
    return sq


# --------------------------------------------------------------------------- the row sweeps
@inline
def sweep4(w, r0, r1, r2, r3, n, d, c0, c1, c2, c3, y0, y1, y2, y3, a, u, pv, upd, fwd, norm):
    r"""Four rows of a weight matrix, at ``w[r0]`` ... ``w[r3]`` (n each), in one pass.

    With ``upd``, :math:`w_{kj} \leftarrow w_{kj} - c_k d_j` (and with ``norm``,
    :math:`pv_j \mathrel{+}= \sum_k c_k w_{kj}` of the old rows); with ``fwd``,
    :math:`a_{u+j} \mathrel{+}= y_0 w_{0j} + y_1 w_{1j} + y_2 w_{2j} + y_3 w_{3j}` with the new
    rows, added in that order. A sweep that updates is emitted as explicit vector code
    (:mod:`~deltaprop.kernels._numba.vectors`: :func:`sweep4_loop`'s arithmetic without LLVM's
    run-time checks that the rows, ``d``, ``a`` and ``pv`` do not overlap); the forward sum
    alone is :func:`sweep4_loop`.
    """
    if upd:
        if fwd and norm:
            update_rows4_fwd_norm(w, r0, r1, r2, r3, n, d, c0, c1, c2, c3, y0, y1, y2, y3, a, u, pv)
        elif fwd:
            update_rows4_fwd(w, r0, r1, r2, r3, n, d, c0, c1, c2, c3, y0, y1, y2, y3, a, u, pv)
        elif norm:
            update_rows4_norm(w, r0, r1, r2, r3, n, d, c0, c1, c2, c3, y0, y1, y2, y3, a, u, pv)
        else:
            update_rows4(w, r0, r1, r2, r3, n, d, c0, c1, c2, c3, y0, y1, y2, y3, a, u, pv)
    else:
        sweep4_loop(w, r0, r1, r2, r3, n, d, c0, c1, c2, c3, y0, y1, y2, y3, a, u, pv, False, fwd, norm)


@inline
def sweep4_loop(w, r0, r1, r2, r3, n, d, c0, c1, c2, c3, y0, y1, y2, y3, a, u, pv, upd, fwd, norm):
    """:func:`sweep4` as a plain loop over the columns, which LLVM vectorises behind run-time
    overlap checks (the reference the vector code is tested against)."""
    for j in range(n):
        w0, w1, w2, w3 = w[r0 + j], w[r1 + j], w[r2 + j], w[r3 + j]
        if upd:
            dj = d[j]
            if norm:
                q = pv[j]
                q = q + c0 * w0
                q = q + c1 * w1
                q = q + c2 * w2
                q = q + c3 * w3
                pv[j] = q
            w0 = w0 - c0 * dj
            w1 = w1 - c1 * dj
            w2 = w2 - c2 * dj
            w3 = w3 - c3 * dj
            w[r0 + j] = w0
            w[r1 + j] = w1
            w[r2 + j] = w2
            w[r3 + j] = w3
        if fwd:
            acc = a[u + j]
            acc = acc + y0 * w0
            acc = acc + y1 * w1
            acc = acc + y2 * w2
            acc = acc + y3 * w3
            a[u + j] = acc


@inline
def sweep1(w, r0, n, d, c0, y0, a, u, pv, upd, fwd, norm):
    """:func:`sweep4` for one row."""
    for j in range(n):
        w0 = w[r0 + j]
        if upd:
            if norm:
                pv[j] = pv[j] + c0 * w0
            w0 = w0 - c0 * d[j]
            w[r0 + j] = w0
        if fwd:
            a[u + j] = a[u + j] + y0 * w0


@inline
def dot_update4(w, r0, r1, r2, r3, n, d, u, eta, z0, z1, z2, z3, r, q, decay):
    r"""Four rows at ``w[r0]`` ... ``w[r3]`` (n each) in one pass: :math:`s_k = \sum_j w_{kj}
    d_{u+j}` with the old rows, then :math:`w_{kj} \leftarrow w_{kj} - \eta z_k d_{u+j}`, or with
    ``decay`` :math:`w_{kj} \leftarrow r\, w_{kj} - \eta z_k d_{u+j}` while :math:`\sum_{kj}
    w_{kj}^2` of the old rows is added to ``q``. Returns ``(s0, s1, s2, s3, q)``."""
    c0, c1, c2, c3 = eta * z0, eta * z1, eta * z2, eta * z3
    s0 = s1 = s2 = s3 = z0 - z0
    for j in range(n):
        dj = d[u + j]
        w0, w1, w2, w3 = w[r0 + j], w[r1 + j], w[r2 + j], w[r3 + j]
        s0 += w0 * dj
        s1 += w1 * dj
        s2 += w2 * dj
        s3 += w3 * dj
        if decay:
            q += w0 * w0 + w1 * w1 + w2 * w2 + w3 * w3
            w[r0 + j] = r * w0 - c0 * dj
            w[r1 + j] = r * w1 - c1 * dj
            w[r2 + j] = r * w2 - c2 * dj
            w[r3 + j] = r * w3 - c3 * dj
        else:
            w[r0 + j] = w0 - c0 * dj
            w[r1 + j] = w1 - c1 * dj
            w[r2 + j] = w2 - c2 * dj
            w[r3 + j] = w3 - c3 * dj
    return s0, s1, s2, s3, q


@inline
def dot_update1(w, r0, n, d, u, eta, zi, r, q, decay):
    """:func:`dot_update4` for one row: returns ``(s, q)``."""
    c = eta * zi
    acc = zi - zi
    for j in range(n):
        dj = d[u + j]
        wij = w[r0 + j]
        acc += wij * dj
        if decay:
            q += wij * wij
            w[r0 + j] = r * wij - c * dj
        else:
            w[r0 + j] = wij - c * dj
    return acc, q


# --------------------------------------------------------------------------- one sample
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
        sweep4(w, r0, r1, r2, r3, n_out, a, z0, z1, z2, z3, z0, z1, z2, z3, a, u, a, False, True, False)
        i += U64(4)
    while i < n_in:
        zi = z[up + i]
        sweep1(w, wo + i * n_out, n_out, a, zi, zi, a, u, a, False, True, False)
        i += U64(1)


@helper
def upper_forward(w, layout, hidden, output, z, a):
    """Activations of layer 0 (its pre-activations are ready in ``a``) and the forward pass of
    layers 1..L-1, for one sample, on the flat unit buffers."""
    L = layout.shape[0]
    for layer in range(L):
        n_out, u = U64(layout[layer, N_OUT]), U64(layout[layer, U_OFF])
        if layer > 0:
            forward_rows(w, U64(layout[layer, W_OFF]), U64(layout[layer, B_OFF]), U64(layout[layer, N_IN]), n_out,
                         z, U64(layout[layer - 1, U_OFF]), a, u)
        activate(output if layer == L - 1 else hidden, a, z, u, n_out)


@inline
def backprop_update(w, wo, bo, n_in, n_out, hidden, a, z, delta, up, u, eta, r, decay):
    r"""Layer l ≥ 1 of one sample, one pass over the rows of ``W_l`` (at ``w[wo]``): with the old
    row i, :math:`\delta_i = h'(a_i) \sum_k w_{ki} \delta_k` (5.56) for the unit of layer l-1 at
    ``up + i``; then :math:`w_{ki} \leftarrow w_{ki} - \eta z_i \delta_k` (with ``decay``,
    :math:`w_{ki} \leftarrow r\, w_{ki} - \eta z_i \delta_k`) and
    :math:`w_{k0} \leftarrow w_{k0} - \eta \delta_k` (biases never decay). Returns
    :math:`\sum w^2` of the old weights with ``decay`` (the L2 penalty's share), else 0."""
    one = w.dtype.type(1)
    q = w.dtype.type(0)
    i = U64(0)
    while i + U64(4) <= n_in:
        r0 = wo + i * n_out
        r1, r2, r3 = r0 + n_out, r0 + U64(2) * n_out, r0 + U64(3) * n_out
        z0, z1, z2, z3 = z[up + i], z[up + i + U64(1)], z[up + i + U64(2)], z[up + i + U64(3)]
        s0, s1, s2, s3, q = dot_update4(w, r0, r1, r2, r3, n_out, delta, u, eta, z0, z1, z2, z3, r, q, decay)
        delta[up + i] = derivative(hidden, a[up + i], z0, one) * s0
        delta[up + i + U64(1)] = derivative(hidden, a[up + i + U64(1)], z1, one) * s1
        delta[up + i + U64(2)] = derivative(hidden, a[up + i + U64(2)], z2, one) * s2
        delta[up + i + U64(3)] = derivative(hidden, a[up + i + U64(3)], z3, one) * s3
        i += U64(4)
    while i < n_in:
        zi = z[up + i]
        acc, q = dot_update1(w, wo + i * n_out, n_out, delta, u, eta, zi, r, q, decay)
        delta[up + i] = derivative(hidden, a[up + i], zi, one) * acc
        i += U64(1)
    for j in range(n_out):
        w[bo + j] -= eta * delta[u + j]
    return q


@inline
def list_rows(x, xo, x2o, n_in, active, upd, fwd, skip_zeros):
    """The rows of the first layer a fused step visits: their indices into ``active``, returns
    how many. Every row without ``skip_zeros``; else the rows i with :math:`x_i \\ne 0` (the
    sample at ``x[xo:]``, if ``upd``) or :math:`x'_i \\ne 0` (the next sample at ``x[x2o:]``, if
    ``fwd``). Built without branches: zeros are unpredictable."""
    zero = x.dtype.type(0)
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
    return na


@inline
def first_rows(w, wo, n_out, active, na, x, xo, x2o, kscale, d, a, pv, upd, fwd, norm):
    r"""The first layer's rows listed in ``active[:na]``, four at a time (:func:`sweep4`): with
    ``upd`` each row i is updated by :math:`c_i d` with :math:`c_i = \kappa x_i` (``kscale`` κ,
    the sample at ``x[xo:]``), with ``fwd`` it is then added into ``a`` (n_out,) times
    :math:`x'_i` (the next sample at ``x[x2o:]``), and with ``norm`` ``pv`` (n_out,) receives
    :math:`\sum_i c_i w_{ji}` of the old rows. Returns :math:`\sum_i c_i^2` with ``norm``, else 0.
    """
    kk = w.dtype.type(0)
    k = U64(0)
    while k + U64(4) <= na:
        i0, i1, i2, i3 = U64(active[k]), U64(active[k + U64(1)]), U64(active[k + U64(2)]), U64(active[k + U64(3)])
        r0, r1, r2, r3 = wo + i0 * n_out, wo + i1 * n_out, wo + i2 * n_out, wo + i3 * n_out
        c0, c1, c2, c3 = kscale * x[xo + i0], kscale * x[xo + i1], kscale * x[xo + i2], kscale * x[xo + i3]
        y0, y1, y2, y3 = x[x2o + i0], x[x2o + i1], x[x2o + i2], x[x2o + i3]
        if norm:
            kk = kk + c0 * c0 + c1 * c1 + c2 * c2 + c3 * c3
        sweep4(w, r0, r1, r2, r3, n_out, d, c0, c1, c2, c3, y0, y1, y2, y3, a, U64(0), pv, upd, fwd, norm)
        k += U64(4)
    while k < na:
        i0 = U64(active[k])
        c0 = kscale * x[xo + i0]
        if norm:
            kk = kk + c0 * c0
        sweep1(w, wo + i0 * n_out, n_out, d, c0, x[x2o + i0], a, U64(0), pv, upd, fwd, norm)
        k += U64(1)
    return kk
