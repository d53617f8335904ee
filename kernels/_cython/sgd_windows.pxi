# Included by epoch.pyx (one extension module; the cimports are epoch.pyx's).
#
# Plain on-line sgd, with or without L2, on dense inputs (numba: sgd_windows): the first layer a
# window of samples at a time, its forward sums and its updates one pass over W_0 each.

# the samples of one window: the rows of one register tile (_indexed.h)
cdef enum:
    WINDOW = 6


cdef inline bint use_windows(Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t itemsize) noexcept nogil:
    """Whether plain sgd on dense inputs takes :func:`sgd_windows`: where the indexed products
    take a batch of :data:`WINDOW` rows (the SIMD builds, a first layer of many inputs whose
    weights fit the L2 cache: ``_blas.use_indexed``)."""
    return use_indexed(WINDOW, n_in, n_out, itemsize)


cdef (int, bint) plain_path(int mode, int solver, object X, object order, Py_ssize_t n_out,
                            Py_ssize_t itemsize):
    """The per-sample path of a call, ``(mode, windows)``, from the test hook's ``mode`` (see
    :func:`set_skip_zeros`): dense inputs (``contract.mostly_nonzero`` on ``order``'s first
    samples) visit every row (mode 0), and plain sgd takes windows of samples
    (:func:`sgd_windows`) where :func:`use_windows` says so."""
    if mode == 1 and solver == SGD and mostly_nonzero(X, order):
        return 0, use_windows(X.shape[1], n_out, itemsize)
    if mode == 2:
        return 0, DELTAPROP_INDEXED and solver == SGD
    return mode, False


cdef inline Py_ssize_t window_buffer(Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil:
    """The values of :func:`sgd_windows`' ``win`` buffer: the window's products and δ of layer
    0, the update's scratch, a zero bias."""
    return WINDOW * (2 * n_out + n_in) + n_out


cdef inline Py_ssize_t next_window(const Py_ssize_t* order, const floating* s, Py_ssize_t* p,
                                   Py_ssize_t n_steps, Py_ssize_t* idx,
                                   Py_ssize_t* at) noexcept nogil:
    """The next window of samples from position ``p[0]`` of ``order`` (``next_sample``'s: weight
    0 skipped): their rows of X into ``idx``, their positions into ``at``, at most
    :data:`WINDOW`; ``p[0]`` moves past them. Returns how many there are."""
    cdef Py_ssize_t nw = 0
    while p[0] < n_steps and nw < WINDOW:
        idx[nw] = order[p[0]]
        at[nw] = p[0]
        nw += 1
        p[0] = next_sample(order, s, p[0] + 1, n_steps)
    return nw


cdef inline double window_norm(double P, double sq0, double eta, const floating* q,
                               const double* DA, const double* G, const double* DD,
                               Py_ssize_t k) noexcept nogil:
    r""":math:`\lVert W_k \rVert^2` for :math:`W_k = P W_0 - \eta \sum_{m<k} q_m x_m \delta_m^T`:
    :math:`P^2 \lVert W_0 \rVert^2 - 2 \eta P \sum_m q_m\, \delta_m \cdot (x_m W_0)
    + \eta^2 \sum_{m, m'} q_m q_{m'} (x_m \cdot x_{m'}) (\delta_m \cdot \delta_{m'})`, from
    ``sq0`` (:math:`\lVert W_0 \rVert^2`), ``DA`` (:math:`\delta_m \cdot x_m W_0`), ``G`` and
    ``DD`` (the Gram matrices of the x and the δ, WINDOW × WINDOW, row-major)."""
    cdef double cross = 0, quad = 0
    cdef Py_ssize_t r, r2
    for r in range(k):
        cross += q[r] * DA[r]
        for r2 in range(k):
            quad += q[r] * q[r2] * G[r * WINDOW + r2] * DD[r * WINDOW + r2]
    return P * P * sq0 - 2 * eta * P * cross + eta * eta * quad


cdef void sgd_windows(floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden, int output,
                      int loss, const floating* X, const floating* T, const floating* s,
                      const Py_ssize_t* order, Py_ssize_t n_epochs, Py_ssize_t m, floating eta,
                      floating alpha, floating* a, floating* z, floating* delta, double* losses,
                      floating* win, floating* panel) noexcept nogil:
    """:func:`windows_run` with ``decay`` a constant: the loop compiled once without L2's
    bookkeeping, once with it."""
    if alpha == 0:
        windows_run(w, layout, L, hidden, output, loss, X, T, s, order, n_epochs, m, eta, alpha, a,
                    z, delta, losses, win, panel, False)
    else:
        windows_run(w, layout, L, hidden, output, loss, X, T, s, order, n_epochs, m, eta, alpha, a,
                    z, delta, losses, win, panel, True)


cdef inline void windows_run(floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden,
                             int output, int loss, const floating* X, const floating* T,
                             const floating* s, const Py_ssize_t* order, Py_ssize_t n_epochs,
                             Py_ssize_t m, floating eta, floating alpha, floating* a, floating* z,
                             floating* delta, double* losses, floating* win, floating* panel,
                             const bint decay) noexcept nogil:
    r"""On-line sgd, :math:`w \leftarrow w - \eta (\nabla E_n + (\alpha / s_n) W)` (biases not
    decayed; α = 0 is plain sgd), on dense inputs, the first layer a window of :data:`WINDOW`
    samples at a time (the SIMD builds: the indexed products of ``_indexed.h``).

    Sample k of a window decays the weights by :math:`r_k = 1 - \eta\alpha/s_k` (1 without L2)
    before its step, so the first layer it sees is
    :math:`W_k = P_k W_0 - \eta \sum_{m<k} Q_{mk}\, x_m \delta_m^T` with
    :math:`P_k = \prod_{l<k} r_l` and :math:`Q_{mk} = \prod_{m<l<k} r_l` (:math:`W_0` as the
    window began), and its pre-activations are exactly
    :math:`a_k = b_k + P_k\, x_k W_0 - \eta \sum_{m<k} Q_{mk} (x_k \cdot x_m)\, \delta_m`: the
    products :math:`x_k W_0` of the whole window are one pass over ``W_0`` (a register tile of
    the window's rows), and its updates one more,
    :math:`W_0 \leftarrow P_K W_0 - \eta \sum_k Q_{kK}\, x_k \delta_k^T` (``window_update``;
    without L2 each weight is updated sample after sample, rounded as the sweep rounds it),
    where :func:`sgd_plain` makes one pass per sample. The bias and the layers above step (and
    decay) sample by sample as in :func:`sgd_plain` and :func:`sgd_decay`. With L2 the
    penalty's :math:`\lVert W_k \rVert^2` follows without a pass (:func:`window_norm`), with
    :math:`\lVert W_0 \rVert^2` summed exactly at the first window of each epoch. The same steps
    as the sample-by-sample kernels in exact arithmetic; the pre-activations of layer 0 are
    summed in another order, so the rounding differs. ``win`` holds :func:`window_buffer`
    values, ``panel`` the forward product's scratch."""
    cdef Py_ssize_t n_steps = n_epochs * m, p, l, up, u, k, r, j, nw, e, e_first = 0
    cdef Py_ssize_t Din = col(layout, 0, N_IN), H = col(layout, 0, N_OUT)
    cdef Py_ssize_t u0 = col(layout, 0, U_OFF)
    cdef Py_ssize_t K = col(layout, L - 1, N_OUT), uK = col(layout, L - 1, U_OFF)
    cdef floating* W0 = w + col(layout, 0, W_OFF)
    cdef floating* b0 = w + col(layout, 0, B_OFF)
    cdef floating* a0 = a + u0
    cdef floating* A = win
    cdef floating* D = win + WINDOW * H
    cdef floating* c = D + WINDOW * H
    cdef floating* zero = c + WINDOW * Din
    cdef Py_ssize_t idx[WINDOW]
    cdef Py_ssize_t at[WINDOW]
    cdef const floating* rows[WINDOW]
    cdef const floating* drows[WINDOW]
    cdef const floating* arow[1]
    cdef floating dot_row[WINDOW]
    cdef floating q[WINDOW]
    cdef floating etas[WINDOW]
    cdef double G[WINDOW * WINDOW]
    cdef double DD[WINDOW * WINDOW]
    cdef double DA[WINDOW]
    cdef floating P, rk = 1, S, eta_alpha = eta * alpha
    cdef double sq0 = 0, sq = 0
    memset(zero, 0, H * sizeof(floating))
    if decay:
        sq0 = sum_squares(W0, Din * H)
    p = next_sample(order, s, 0, n_steps)
    while p < n_steps:
        nw = next_window(order, s, &p, n_steps, idx, at)
        if decay and at[0] // m != e_first:  # the first window of an epoch: the exact norm
            e_first = at[0] // m
            sq0 = sum_squares(W0, Din * H)
        indexed_matmul(nw, Din, H, X, idx, W0, zero, A, panel, False, NULL)
        if p < n_steps:  # the next window's rows: in L2 when its products read them
            deltaprop_prefetch_rows(X, order + p, WINDOW if p + WINDOW <= n_steps else n_steps - p,
                                    Din * sizeof(floating))
        P = 1
        for k in range(nw):
            rows[k] = X + idx[k] * Din
            drows[k] = D + k * H
            for j in range(H):
                a0[j] = b0[j] + P * A[k * H + j]
            if k > 0 or decay:  # x_k . x_r for r < k (and r = k, for the penalty)
                dots(Din, rows[k], rows, k + 1 if decay else k, dot_row)
            for r in range(k):  # the window's earlier steps, seen through x_k
                axpy(H, -eta * q[r] * dot_row[r], D + r * H, a0)
            upper_forward(w, layout, L, hidden, output, z, a)
            e = at[k] // m
            S = s[idx[k]]
            losses[2 * e] += sample_delta(output, loss, a + uK, z + uK, T + idx[k] * K,
                                          delta + uK, K)
            if decay:
                for r in range(k + 1):
                    G[k * WINDOW + r] = dot_row[r]
                    G[r * WINDOW + k] = dot_row[r]
                rk = 1 - eta_alpha / S
                sq = window_norm(P, sq0, eta, q, DA, G, DD, k)
            for l in range(L - 1, 0, -1):
                up, u = col(layout, l - 1, U_OFF), col(layout, l, U_OFF)
                if decay:
                    sq += backprop_decay_rows(w + col(layout, l, W_OFF), w + col(layout, l, B_OFF),
                                              col(layout, l, N_IN), col(layout, l, N_OUT), hidden,
                                              a + up, z + up, delta + up, delta + u, eta, rk)
                else:
                    backprop_update_rows(w + col(layout, l, W_OFF), w + col(layout, l, B_OFF),
                                         col(layout, l, N_IN), col(layout, l, N_OUT), hidden,
                                         a + up, z + up, delta + up, delta + u, eta)
            memcpy(D + k * H, delta + u0, H * sizeof(floating))
            axpy(H, -eta, D + k * H, b0)
            if decay:
                losses[2 * e + 1] += 0.5 * alpha * sq / S
                dots(H, D + k * H, drows, k + 1, dot_row)  # delta_k . delta_r, r <= k
                for r in range(k + 1):
                    DD[k * WINDOW + r] = dot_row[r]
                    DD[r * WINDOW + k] = dot_row[r]
                arow[0] = A + k * H
                dots(H, D + k * H, arow, 1, dot_row)
                DA[k] = dot_row[0]
            for r in range(k):
                q[r] *= rk
            q[k] = 1
            P *= rk
        for r in range(nw):
            etas[r] = eta * q[r]
        if decay:
            sq0 = window_norm(P, sq0, eta, q, DA, G, DD, nw)
        window_update(Din, H, W0, rows, D, etas, P, nw, c)
