# Included by epoch.pyx (one extension module; the cimports are epoch.pyx's).
#
# Plain on-line sgd without L2 (numba: sgd_plain): zero inputs skip their rows of W_0,
# and W_0's update for sample n is fused with the forward sum of sample n+1 (dense inputs take
# sgd_windows.pxi's windows of samples where they run).

cdef inline void backprop_update_rows(floating* W, floating* b, Py_ssize_t n_in, Py_ssize_t n_out,
                                      int hidden, const floating* a, const floating* z,
                                      floating* delta_in, const floating* delta,
                                      floating eta) noexcept nogil:
    r"""Layer l ≥ 1 of one sample, one pass over the rows of ``W_l``: with the old row i,
    :math:`\delta_i = h'(a_i) \sum_k w_{ki} \delta_k` (5.56) into ``delta_in``; then
    :math:`w_{ki} \leftarrow w_{ki} - \eta z_i \delta_k` and :math:`w_{k0} \leftarrow w_{k0} - \eta \delta_k`.
    ``a``, ``z``, ``delta_in`` are layer l-1's units, ``delta`` layer l's."""
    cdef Py_ssize_t i = 0, k
    cdef floating* row
    cdef floating sums[4]
    axpy(n_out, -eta, delta, b)
    while i + 4 <= n_in:  # rows i..i+3: δ with the old rows, then their update
        row = W + i * n_out
        dot_update4(n_out, delta, row, row + n_out, row + 2 * n_out, row + 3 * n_out,
                    eta * z[i], eta * z[i + 1], eta * z[i + 2], eta * z[i + 3], sums)
        for k in range(4):
            delta_in[i + k] = derivative(hidden, a[i + k], z[i + k]) * sums[k]
        i += 4
    while i < n_in:
        delta_in[i] = derivative(hidden, a[i], z[i]) * dot_update1(n_out, delta, W + i * n_out,
                                                                   eta * z[i])
        i += 1


cdef inline void first_layer(floating* w, const Py_ssize_t* layout, floating* a,
                             const floating* delta, const floating* x, const floating* x2,
                             floating eta, Py_ssize_t* active, bint skip) noexcept nogil:
    r"""Layer 0, fused: :math:`w_{ji} \leftarrow w_{ji} - \eta x_i \delta_j` for this sample
    ``x``, and (if ``x2`` is not NULL) the next sample's sum :math:`a'_j = \sum_i w_{ji} x'_i + w_{j0}`
    with the updated rows, in one sweep. ``a`` and ``delta`` point at layer 0's units. With
    ``skip`` only rows with :math:`x_i \ne 0` or :math:`x'_i \ne 0` are visited; their indices go
    to ``active`` first, without branches (zeros are unpredictable), then they are taken four at
    a time so that ``a'`` is loaded and stored once per four rows. (numba's ``first_layer`` also
    does the first forward sum alone, ``upd=False``; here that is :func:`forward_rows`.)"""
    cdef Py_ssize_t n_in = col(layout, 0, N_IN), n_out = col(layout, 0, N_OUT)
    cdef floating* W = w + col(layout, 0, W_OFF)
    cdef floating* b = w + col(layout, 0, B_OFF)
    cdef Py_ssize_t i, i0, i1, i2, i3, k = 0, na
    cdef floating c0, c1, c2, c3, y0, y1, y2, y3
    cdef floating* r0
    cdef floating* r1
    cdef floating* r2
    cdef floating* r3
    axpy(n_out, -eta, delta, b)
    na = nonzero_rows(n_in, x, x2, active) if skip else n_in  # without skip, row k is k
    if x2 == NULL:
        for k in range(na):
            i = active[k] if skip else k
            axpy(n_out, -eta * x[i], delta, W + i * n_out)
        return
    memset(a, 0, n_out * sizeof(floating))
    while k + 4 <= na:
        if skip:
            i0, i1, i2, i3 = active[k], active[k + 1], active[k + 2], active[k + 3]
        else:
            i0, i1, i2, i3 = k, k + 1, k + 2, k + 3
        r0, r1, r2, r3 = W + i0 * n_out, W + i1 * n_out, W + i2 * n_out, W + i3 * n_out
        c0, c1, c2, c3 = eta * x[i0], eta * x[i1], eta * x[i2], eta * x[i3]
        y0, y1, y2, y3 = x2[i0], x2[i1], x2[i2], x2[i3]
        rows4(n_out, delta, r0, r1, r2, r3, c0, c1, c2, c3, y0, y1, y2, y3, a)
        k += 4
    while k < na:
        i = active[k] if skip else k
        axpy_axpy(n_out, -eta * x[i], delta, W + i * n_out, x2[i], a)
        k += 1
    axpy(n_out, 1, b, a)


cdef void sgd_plain(floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden, int output,
                    int loss, const floating* X, const floating* T, const floating* s,
                    const Py_ssize_t* order, Py_ssize_t n_epochs, Py_ssize_t m, floating eta,
                    floating* a, floating* z, floating* delta, double* losses, bint skip,
                    Py_ssize_t* active) noexcept nogil:
    r"""Plain on-line sgd without L2: :math:`w \leftarrow w - \eta \nabla E_n`, fused (see the
    design in epoch.pyx). ``active`` (n_in of layer 0,) is scratch for :func:`first_layer`."""
    cdef Py_ssize_t n_steps = n_epochs * m, p, pn, l, up, u
    cdef Py_ssize_t Din = col(layout, 0, N_IN), u0 = col(layout, 0, U_OFF)
    cdef Py_ssize_t K = col(layout, L - 1, N_OUT), uK = col(layout, L - 1, U_OFF)
    cdef const floating* x
    cdef bint far = Din * sizeof(floating) >= 1024  # long rows (short ones: the prefetch costs more)
    p = next_sample(order, s, 0, n_steps)
    if p < n_steps:  # the first forward sum of layer 0; later ones are fused with the update
        forward_rows(w + col(layout, 0, W_OFF), w + col(layout, 0, B_OFF), Din,
                     col(layout, 0, N_OUT), X + order[p] * Din, a + u0)
    while p < n_steps:
        x = X + order[p] * Din
        if far and p + 2 < n_steps:  # the row after the next one: in L2 when the sweep reads it
            deltaprop_prefetch_rows(X, order + p + 2, 1, Din * sizeof(floating))
        upper_forward(w, layout, L, hidden, output, z, a)
        losses[2 * (p // m)] += sample_delta(output, loss, a + uK, z + uK, T + order[p] * K,
                                             delta + uK, K)
        for l in range(L - 1, 0, -1):
            up, u = col(layout, l - 1, U_OFF), col(layout, l, U_OFF)
            backprop_update_rows(w + col(layout, l, W_OFF), w + col(layout, l, B_OFF),
                                 col(layout, l, N_IN), col(layout, l, N_OUT), hidden, a + up,
                                 z + up, delta + up, delta + u, eta)
        pn = next_sample(order, s, p + 1, n_steps)
        first_layer(w, layout, a + u0, delta + u0, x,
                    X + order[pn] * Din if pn < n_steps else NULL, eta, active, skip)
        p = pn

