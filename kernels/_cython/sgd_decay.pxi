# Included by epoch.pyx (one extension module; the cimports are epoch.pyx's).
#
# Plain on-line sgd with L2 (numba: sgd_decay), as fast as sgd_plain: W_0 = c V_0 is kept as a
# scalar times the stored matrix, so zero inputs still skip their rows and W_0's update stays
# fused with the next sample's forward sum (dense inputs take sgd_windows.pxi's windows of samples
# where they run).


cdef inline double backprop_decay_rows(floating* W, floating* b, Py_ssize_t n_in,
                                       Py_ssize_t n_out, int hidden, const floating* a,
                                       const floating* z, floating* delta_in,
                                       const floating* delta, floating eta,
                                       floating r) noexcept nogil:
    r""":func:`backprop_update_rows` with L2 weight decay: δ of layer l-1 as there, then
    :math:`w_{ki} \leftarrow r\, w_{ki} - \eta z_i \delta_k` with :math:`r = 1 - \eta\alpha/s_n`
    (biases are not decayed). Returns :math:`\sum w^2` of the old weights (the L2 penalty's
    share of this layer)."""
    cdef Py_ssize_t i = 0, k
    cdef floating* row
    cdef floating sums[5]
    cdef double q = 0
    axpy(n_out, -eta, delta, b)
    while i + 4 <= n_in:  # rows i..i+3: δ and Σw² with the old rows, then the decayed update
        row = W + i * n_out
        dot_decay4(n_out, delta, row, row + n_out, row + 2 * n_out, row + 3 * n_out,
                   eta * z[i], eta * z[i + 1], eta * z[i + 2], eta * z[i + 3], r, sums)
        for k in range(4):
            delta_in[i + k] = derivative(hidden, a[i + k], z[i + k]) * sums[k]
        q += sums[4]
        i += 4
    while i < n_in:
        dot_decay1(n_out, delta, W + i * n_out, eta * z[i], r, sums)
        delta_in[i] = derivative(hidden, a[i], z[i]) * sums[0]
        q += sums[1]
        i += 1
    return q


cdef inline double first_layer_scaled(floating* w, const Py_ssize_t* layout, floating* a,
                                      const floating* delta, const floating* x,
                                      const floating* x2, floating eta, floating c,
                                      Py_ssize_t* active, floating* raw,
                                      bint skip) noexcept nogil:
    r""":func:`first_layer` for :math:`W_0 = c V_0` (``w`` holds V in W_0's place): with
    :math:`k_i = \eta x_i / c` (``c`` after this step's decay),
    :math:`v_{ji} \leftarrow v_{ji} - k_i \delta_j`, :math:`w_{j0} \leftarrow w_{j0} - \eta \delta_j`,
    then (if ``x2`` is not NULL) the next sample's sum :math:`\rho_j = \sum_i v_{ji} x'_i` into
    ``raw`` and :math:`a'_j = w_{j0} + c \rho_j`. Zero rows are skipped as there (all rows are
    visited when ``skip`` is false: same results). Returns :math:`\sum_i k_i^2`. (numba's
    ``first_layer_scaled`` returns the same and also sums :math:`\sum_i k_i v_{ji}` into ``pv``
    for the norm of V; here that term comes from ``raw``, see :func:`sgd_decay`.)
    """
    cdef Py_ssize_t n_in = col(layout, 0, N_IN), n_out = col(layout, 0, N_OUT)
    cdef floating* V = w + col(layout, 0, W_OFF)
    cdef floating* b = w + col(layout, 0, B_OFF)
    cdef Py_ssize_t i, j, k = 0, na
    cdef floating kscale = eta / c, c0, c1, c2, c3
    cdef double kk = 0
    axpy(n_out, -eta, delta, b)
    if skip:
        na = nonzero_rows(n_in, x, x2, active)
    else:
        for i in range(n_in):
            active[i] = i
        na = n_in
    if x2 == NULL:
        for k in range(na):
            i = active[k]
            c0 = kscale * x[i]
            kk += c0 * c0
            axpy(n_out, -c0, delta, V + i * n_out)
        return kk
    memset(raw, 0, n_out * sizeof(floating))
    while k + 4 <= na:
        c0, c1 = kscale * x[active[k]], kscale * x[active[k + 1]]
        c2, c3 = kscale * x[active[k + 2]], kscale * x[active[k + 3]]
        kk = kk + c0 * c0 + c1 * c1 + c2 * c2 + c3 * c3  # in order: zero rows add exactly 0
        rows4(n_out, delta, V + active[k] * n_out, V + active[k + 1] * n_out,
              V + active[k + 2] * n_out, V + active[k + 3] * n_out, c0, c1, c2, c3,
              x2[active[k]], x2[active[k + 1]], x2[active[k + 2]], x2[active[k + 3]], raw)
        k += 4
    while k < na:
        i = active[k]
        c0 = kscale * x[i]
        kk += c0 * c0
        axpy_axpy(n_out, -c0, delta, V + i * n_out, x2[i], raw)
        k += 1
    for j in range(n_out):
        a[j] = b[j] + c * raw[j]
    return kk


cdef inline double scale_first_layer(floating* w, const Py_ssize_t* layout,
                                     floating c) noexcept nogil:
    r""":math:`V_0 \leftarrow c V_0` in place (folds the scale into the weights; skipped when
    c = 1); returns :math:`\lVert V_0 \rVert^2` after."""
    return scale_norm(col(layout, 0, N_IN) * col(layout, 0, N_OUT), w + col(layout, 0, W_OFF), c)


cdef void sgd_decay(floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden, int output,
                    int loss, const floating* X, const floating* T, const floating* s,
                    const Py_ssize_t* order, Py_ssize_t n_epochs, Py_ssize_t m, floating eta,
                    floating alpha, floating* a, floating* z, floating* delta, double* losses,
                    bint skip, Py_ssize_t* active, floating* raw) noexcept nogil:
    r"""On-line sgd with L2, :math:`w \leftarrow w - \eta (\nabla E_n + (\alpha / s_n) W)` (biases
    not decayed), as fast as :func:`sgd_plain`.

    The decay :math:`W_0 \leftarrow r W_0`, :math:`r = 1 - \eta\alpha/s_n`, would touch every
    weight of the first layer; instead :math:`W_0 = c V_0` is kept as a scalar times the stored
    matrix: the decay multiplies ``c`` and the step on V is divided by ``c``
    (:func:`first_layer_scaled`), so zero inputs still skip their rows and the update stays fused
    with the next sample's forward sum. When ``c`` leaves [2^-10, 2^10] (or would become ≤ 0 or
    NaN) it is folded into V (one dense pass) and restarts at 1; at the end ``w`` holds
    :math:`W_0` again. :math:`\lVert V \rVert^2` for the penalty is recomputed exactly at every
    epoch and in between follows from the step: with :math:`k_i = \eta x_i / c` and
    :math:`\rho_j = \sum_i v_{ji} x_i` (the sample's forward sum before the bias, kept in ``raw``
    (M_0 + 1,): V does not change between that sum and this update),
    :math:`\lVert V' \rVert^2 = \lVert V \rVert^2 - 2 (\eta / c)\, \delta \cdot \rho + \sum_i k_i^2 \lVert \delta \rVert^2`.
    Layers l ≥ 1 decay in place (:func:`backprop_decay_rows`). Equal to the reference to
    rounding, not bit for bit.
    """
    cdef Py_ssize_t n_steps = n_epochs * m, p, pn, l, k, idx, e, up, u
    cdef Py_ssize_t Din = col(layout, 0, N_IN), M0 = col(layout, 0, N_OUT)
    cdef Py_ssize_t u0 = col(layout, 0, U_OFF)
    cdef Py_ssize_t K = col(layout, L - 1, N_OUT), uK = col(layout, L - 1, U_OFF)
    cdef floating* a0 = a + u0
    cdef const floating* d0 = delta + u0
    cdef const floating* b0 = w + col(layout, 0, B_OFF)
    cdef const floating* x
    cdef bint far = Din * sizeof(floating) >= 1024  # long rows (short ones: the prefetch costs more)
    cdef floating c = 1, c_new, r, S, eta_alpha = eta * alpha
    cdef floating lo = 1.0 / 1024, hi = 1024
    cdef double sq, sq0, kk, dd, dpv
    sq0 = scale_first_layer(w, layout, <floating>1)
    p = next_sample(order, s, 0, n_steps)
    if p < n_steps:  # the first sum (c = 1), into raw (a bias of zeros); later ones are fused
        memset(a0, 0, M0 * sizeof(floating))
        forward_rows(w + col(layout, 0, W_OFF), a0, Din, M0, X + order[p] * Din, raw)
        for k in range(M0):
            a0[k] = b0[k] + raw[k]
    while p < n_steps:
        idx = order[p]
        e = p // m
        S = s[idx]
        x = X + idx * Din
        if far and p + 2 < n_steps:  # the row after the next one: in L2 when the sweep reads it
            deltaprop_prefetch_rows(X, order + p + 2, 1, Din * sizeof(floating))
        upper_forward(w, layout, L, hidden, output, z, a)
        losses[2 * e] += sample_delta(output, loss, a + uK, z + uK, T + idx * K, delta + uK, K)
        r = 1 - eta_alpha / S
        sq = c * c * sq0
        for l in range(L - 1, 0, -1):
            up, u = col(layout, l - 1, U_OFF), col(layout, l, U_OFF)
            sq += backprop_decay_rows(w + col(layout, l, W_OFF), w + col(layout, l, B_OFF),
                                      col(layout, l, N_IN), col(layout, l, N_OUT), hidden,
                                      a + up, z + up, delta + up, delta + u, eta, r)
        losses[2 * e + 1] += 0.5 * alpha * sq / S
        c_new = c * r
        if not (c_new >= lo and c_new <= hi):  # fold the scale into V (also ≤ 0 or NaN)
            sq0 = scale_first_layer(w, layout, c_new)
            for k in range(M0):
                raw[k] = c_new * raw[k]
            c_new = 1
        dd = 0
        dpv = 0
        for k in range(M0):
            dd += d0[k] * d0[k]
            dpv += d0[k] * raw[k]
        dpv *= eta / c_new
        pn = next_sample(order, s, p + 1, n_steps)
        kk = first_layer_scaled(w, layout, a0, d0, x, X + order[pn] * Din if pn < n_steps else NULL,
                                eta, c_new, active, raw, skip)
        sq0 += kk * dd - (dpv + dpv)
        c = c_new
        if pn < n_steps and pn // m != e:  # keep the running norm from drifting
            sq0 = scale_first_layer(w, layout, <floating>1)
        p = pn
    scale_first_layer(w, layout, c)

