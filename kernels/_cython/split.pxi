# Included by epoch.pyx (numba: split.py), after mixing.pxi (its barrier). Mini-batch gradient
# descent on J threads, each batch's rows split between them: each thread sums the gradient of
# its rows into its row of G, the threads meet, each sums its slice of the parameters over the
# rows of G (in thread order) and applies the solver's update to that slice, and they meet again.

cdef inline (Py_ssize_t, Py_ssize_t) param_slice(Py_ssize_t P, Py_ssize_t j,
                                                 Py_ssize_t J) noexcept nogil:
    """Thread j's slice ``[lo, hi)`` of the P parameters: J near-equal parts, cut at multiples
    of ``LINE`` (``_core.pxd``, the contract's value: no two threads write one cache line)."""
    cdef Py_ssize_t lo = 0 if j == 0 else (P * j // J) // LINE * LINE
    cdef Py_ssize_t hi = P if j == J - 1 else (P * (j + 1) // J) // LINE * LINE
    return lo, hi


cdef void split_run(Py_ssize_t j, floating* w, const Py_ssize_t* layout, Py_ssize_t L,
                    int hidden, int output, int loss, const floating* X, const floating* T,
                    const floating* s, const Py_ssize_t* order, Py_ssize_t n_epochs,
                    Py_ssize_t m, Py_ssize_t B, int solver, const floating* hyper,
                    floating* state, Py_ssize_t P, int64_t* step, int64_t* steps, Py_ssize_t ldt,
                    floating* Xb, Py_ssize_t ldX, floating* Tb, Py_ssize_t ldT, floating* sb,
                    Py_ssize_t lds, floating* A, floating* Z, floating* D, Py_ssize_t ldU,
                    floating* G, Py_ssize_t ldG, floating* g, Py_ssize_t J, double* losses,
                    int64_t* sync, Py_ssize_t ldsync) noexcept nogil:
    """The body of :func:`split_epochs` (numba's ``split_epochs`` kernel)."""
    cdef Py_ssize_t Din = col(layout, 0, N_IN), K = col(layout, L - 1, N_OUT)
    cdef Py_ssize_t lo, hi
    cdef Py_ssize_t e, start, nb, r, idx, first, k, i, l, p, a0, a1, c0, c1, wo, bo
    cdef floating alpha = hyper[ALPHA], S, inv_S
    cdef floating eta = hyper[ETA], mu = hyper[MU], b1 = hyper[BETA_1], b2 = hyper[BETA_2]
    cdef floating eps = hyper[EPSILON]
    cdef floating* xb = Xb + j * ldX
    cdef floating* tb = Tb + j * ldT
    cdef floating* s_b = sb + j * lds
    cdef floating* a = A + j * ldU
    cdef floating* z = Z + j * ldU
    cdef floating* d = D + j * ldU
    cdef floating* gj = G + j * ldG
    cdef floating* mv = state
    cdef floating* vv = state + P
    cdef int64_t* tj = steps + j * ldt
    cdef double E, sq, et
    cdef double* out
    lo, hi = param_slice(P, j, J)
    tj[0] = step[0]
    for e in range(n_epochs):
        losses[2 * (j * n_epochs + e)] = 0
        losses[2 * (j * n_epochs + e) + 1] = 0
    for e in range(n_epochs):
        out = losses + 2 * (j * n_epochs + e)
        start = 0
        while start < m:
            nb = B if start + B <= m else m - start
            S = 0
            for r in range(nb):
                S += s[order[e * m + start + r]]
            if S == 0:
                start += nb
                continue
            first = start + nb * j // J
            k = start + nb * (j + 1) // J - first
            start += nb
            E = 0
            if k > 0:
                for r in range(k):
                    idx = order[e * m + first + r]
                    memcpy(xb + r * Din, X + idx * Din, Din * sizeof(floating))
                    memcpy(tb + r * K, T + idx * K, K * sizeof(floating))
                    s_b[r] = s[idx]
                forward_batch(w, layout, L, hidden, output, xb, k, a, z, NULL, NULL, NULL)
                E = output_delta_batch(layout, L, output, loss, k, a, z, tb, s_b, d)
                backprop_batch(w, layout, L, hidden, k, a, z, d, NULL, False)
                gradient_batch(layout, L, k, xb, z, d, gj, NULL, NULL, False)
            else:
                memset(gj, 0, P * sizeof(floating))
            if not barrier(sync, sync + ldsync, sync + 2 * ldsync, J):
                return
            # g = G[0] + G[1] + ... + G[J-1] on this thread's slice, in thread order
            memcpy(g + lo, G + lo, (hi - lo) * sizeof(floating))
            for i in range(1, J):
                for p in range(lo, hi):
                    g[p] = g[p] + G[i * ldG + p]
            et = adam_rate_inline(hyper, tj) if solver == ADAM else 0
            inv_S = 1 / S
            sq = 0
            for l in range(L):
                wo = col(layout, l, W_OFF)
                bo = col(layout, l, B_OFF)
                a0 = wo if wo > lo else lo  # this slice's weights of layer l
                a1 = bo if bo < hi else hi
                if a1 > a0:
                    if alpha != 0:
                        sq += sum_squares(w + a0, a1 - a0)
                    step_range(solver, w + a0, g + a0, mv + a0, vv + a0, a1 - a0, alpha, inv_S,
                               eta, mu, b1, b2, eps, <floating>et)
                c0 = bo if bo > lo else lo  # and its biases
                c1 = bo + col(layout, l, N_OUT)
                c1 = c1 if c1 < hi else hi
                if c1 > c0:
                    step_range(solver, w + c0, g + c0, mv + c0, vv + c0, c1 - c0, 0, inv_S,
                               eta, mu, b1, b2, eps, <floating>et)
            out[0] += nb * E / S
            out[1] += nb * 0.5 * alpha * sq / S
            if not barrier(sync, sync + ldsync, sync + 2 * ldsync, J):
                return
    if j == 0:
        step[0] = tj[0]


def split_epochs(Py_ssize_t j, floating[::1] w, const Py_ssize_t[:, ::1] layout, int hidden,
                 int output, int loss, const floating[:, ::1] X, const floating[:, ::1] T,
                 const floating[::1] s, const Py_ssize_t[:, ::1] order, Py_ssize_t batch_size,
                 int solver, const floating[::1] hyper, floating[:, ::1] state, int64_t[::1] step,
                 int64_t[:, ::1] steps, floating[:, :, ::1] Xb, floating[:, :, ::1] Tb,
                 floating[:, ::1] sb, floating[:, ::1] A, floating[:, ::1] Z, floating[:, ::1] D,
                 floating[:, ::1] G, floating[::1] g, double[:, :, ::1] losses,
                 int64_t[:, ::1] sync):
    r"""Thread j's part of mini-batch epochs over the rows of ``order`` (n_epochs, m) on
    J = len(G) threads, each batch's rows split between them; the J threads call it at once,
    each with its own j (see ``deltaprop.contract``)."""
    cdef Py_ssize_t n_epochs = order.shape[0], m = order.shape[1], P = w.shape[0]
    check_split(j, w, layout, X, T, s, order, batch_size, solver, hyper, state, step, steps, Xb, Tb,
                sb, A, Z, D, G, g, losses, sync)
    if n_epochs == 0:
        return
    with nogil:
        split_run(j, &w[0], &layout[0, 0], layout.shape[0], hidden, output, loss, &X[0, 0],
                  &T[0, 0], &s[0], &order[0, 0], n_epochs, m, batch_size, solver, &hyper[0],
                  &state[0, 0], P, &step[0], &steps[0, 0], steps.shape[1], &Xb[0, 0, 0],
                  Xb.shape[1] * Xb.shape[2], &Tb[0, 0, 0], Tb.shape[1] * Tb.shape[2], &sb[0, 0],
                  sb.shape[1], &A[0, 0], &Z[0, 0], &D[0, 0], A.shape[1], &G[0, 0], G.shape[1],
                  &g[0], G.shape[0], &losses[0, 0, 0], &sync[0, 0], sync.shape[1])
