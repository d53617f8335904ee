# Included by epoch.pyx (one extension module; the cimports are epoch.pyx's).
#
# On-line gradient descent with any solver and L2 term (numba: sgd_general): momentum,
# Nesterov and Adam change every weight at every step, so no row is skipped.


cdef void sgd_general(floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden,
                      int output, int loss, const floating* X, const floating* T,
                      const floating* s, const Py_ssize_t* order, Py_ssize_t n_epochs,
                      Py_ssize_t m, int solver, const floating* hyper, floating* state,
                      Py_ssize_t P, int64_t* step, floating* a, floating* z, floating* delta,
                      double* losses) noexcept nogil:
    r"""Per-sample gradient descent with any solver and L2: for each sample, forward, δ, then per
    layer from the last: δ of the layer below with the old weights (:func:`backprop_rows`), and
    :math:`g = z_i \delta_j + (\alpha / s_n) w_{ji}` applied by the solver's rule
    (:func:`update_rows`)."""
    cdef Py_ssize_t n_steps = n_epochs * m, p, e, idx, l, n_in, n_out, up, u
    cdef Py_ssize_t Din = col(layout, 0, N_IN), u0 = col(layout, 0, U_OFF)
    cdef Py_ssize_t K = col(layout, L - 1, N_OUT), uK = col(layout, L - 1, U_OFF)
    cdef floating alpha = hyper[ALPHA], sn, c
    cdef floating* mv = state      # v of momentum and Nesterov, or Adam's m
    cdef floating* vv = state + P  # Adam's v
    cdef const floating* x
    cdef const floating* zp
    cdef bint far = Din * sizeof(floating) >= 1024  # long rows (short ones: the prefetch costs more)
    cdef double sq, eta_t = 0
    for p in range(n_steps):
        idx = order[p]
        if far and p + 1 < n_steps:  # the next row: in L2 when the next sample's forward sum reads it
            deltaprop_prefetch_rows(X, order + p + 1, 1, Din * sizeof(floating))
        sn = s[idx]
        if sn == 0:
            continue
        e = p // m
        x = X + idx * Din
        forward_rows(w + col(layout, 0, W_OFF), w + col(layout, 0, B_OFF), Din,
                     col(layout, 0, N_OUT), x, a + u0)
        upper_forward(w, layout, L, hidden, output, z, a)
        losses[2 * e] += sample_delta(output, loss, a + uK, z + uK, T + idx * K, delta + uK, K)
        c = alpha / sn
        if solver == ADAM:
            eta_t = adam_rate(hyper, step)
        sq = 0
        for l in range(L - 1, -1, -1):
            n_in, n_out, u = col(layout, l, N_IN), col(layout, l, N_OUT), col(layout, l, U_OFF)
            if l > 0:
                up = col(layout, l - 1, U_OFF)
                backprop_rows(w + col(layout, l, W_OFF), n_in, n_out, hidden, a + up, z + up,
                              delta + up, delta + u)
                zp = z + up
            else:
                zp = x
            sq += update_rows(solver, w, mv, vv, col(layout, l, W_OFF), col(layout, l, B_OFF),
                              n_in, n_out, zp, delta + u, hyper, eta_t, alpha, c)
        losses[2 * e + 1] += 0.5 * alpha * sq / sn
