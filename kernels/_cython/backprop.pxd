# cython: language_level=3
from cython cimport floating
from libc.string cimport memset

from ._blas cimport (DELTAPROP_DERIV_LOGISTIC, DELTAPROP_DERIV_ONE, DELTAPROP_DERIV_RELU,
                    DELTAPROP_DERIV_TANH, batch_row, indexed_matmul_at, matmul_at, matmul_bt,
                    narrow_backprop, use_blas, use_narrow, use_packed_delta)
from ._core cimport (ALPHA, B_OFF, BINARY_CROSS_ENTROPY, CROSS_ENTROPY, ETA, IDENTITY, LOGISTIC,
                     MOMENTUM, MU, RELU, TANH,
                     N_IN, N_OUT, SOFTMAX, SQUARED_ERROR, U_OFF, W_OFF, axpy, col, f_exp, f_log)
from .activations cimport log1pexp, scale_by_derivative
from .rows cimport backprop_rows, sum_squares


cdef inline double sample_delta(int output, int loss, const floating* a, const floating* y,
                                const floating* t, floating* delta, Py_ssize_t K) noexcept nogil:
    r"""Unweighted output errors :math:`\delta_k = \partial E_n / \partial a_k` of one sample into
    ``delta``; return :math:`E_n`. ``a``, ``y``, ``delta`` point at the sample's K output units,
    ``t`` at its K targets.

    Canonical pairs give :math:`\delta = y - t`; logistic + squared error
    :math:`(y - t) y (1 - y)` (Mitchell); softmax + squared error
    :math:`y (g - \sum_j g_j y_j)`, :math:`g = y - t`. Binary cross-entropy is taken from the
    pre-activation, :math:`\ln(1 + e^a) - t a`; cross-entropy as
    :math:`-\sum_k t_k (a_k - \max a - \ln \sum_j e^{a_j - \max a})`; Poisson
    :math:`\sum_k e^{a_k} - t_k a_k`.
    """
    cdef Py_ssize_t k
    cdef double E = 0
    cdef floating g, gy, m, total, log_total
    if loss == SQUARED_ERROR:
        gy = 0
        for k in range(K):
            g = y[k] - t[k]
            E += g * g
            delta[k] = g
            gy += g * y[k]
        E *= 0.5
        if output == LOGISTIC:
            for k in range(K):
                delta[k] = delta[k] * y[k] * (1 - y[k])
        elif output == SOFTMAX:
            for k in range(K):
                delta[k] = y[k] * (delta[k] - gy)
        return E
    if loss == CROSS_ENTROPY:
        m = a[0]
        for k in range(1, K):
            if a[k] > m:
                m = a[k]
        total = 0
        for k in range(K):
            total += f_exp(a[k] - m)
        log_total = f_log(total)
        for k in range(K):
            if t[k] != 0:
                E -= t[k] * ((a[k] - m) - log_total)
            delta[k] = y[k] - t[k]
        return E
    if loss == BINARY_CROSS_ENTROPY:
        for k in range(K):
            E += log1pexp(a[k]) - t[k] * a[k]
            delta[k] = y[k] - t[k]
        return E
    # POISSON
    for k in range(K):
        E += y[k] - t[k] * a[k]
        delta[k] = y[k] - t[k]
    return E


cdef inline double softmax_cross_entropy_batch(Py_ssize_t n, Py_ssize_t K, const floating* A,
                                        const floating* Y, const floating* T, const floating* s,
                                        floating* D) noexcept nogil:
    r"""Softmax + cross-entropy for a batch whose outputs ``Y`` are the forward pass's softmax of
    ``A``: :math:`s_n \delta_k = s_n (y_k - t_k)` and
    :math:`E_n = \sum_k t_k (\max a - a_k + \ln \sum_j e^{a_j - \max a})`, with the log-sum
    taken from the output at the arg-max, :math:`y_{k^*} = 1 / \sum_j e^{a_j - \max a}` (the
    forward pass divided :math:`e^0 = 1` by that sum): one ``log`` per sample instead of K
    ``exp`` (the same value to rounding; ``sample_delta`` recomputes the sum)."""
    cdef Py_ssize_t r, k, kmax
    cdef double E = 0, En, log_total
    cdef const floating* a
    cdef const floating* y
    cdef const floating* t
    cdef floating* d
    cdef floating m
    for r in range(n):
        a, y, t, d = A + r * K, Y + r * K, T + r * K, D + r * K
        kmax = 0
        m = a[0]
        for k in range(1, K):
            if a[k] > m:
                m = a[k]
                kmax = k
        log_total = -f_log(y[kmax])
        En = 0
        for k in range(K):
            if t[k] != 0:
                En += t[k] * ((m - a[k]) + log_total)
            d[k] = (y[k] - t[k]) * s[r]
        E += s[r] * En
    return E


cdef inline double output_delta_batch(const Py_ssize_t* layout, Py_ssize_t L, int output, int loss,
                               Py_ssize_t n, const floating* A, const floating* Z,
                               const floating* T, const floating* s, floating* D) noexcept nogil:
    r"""The body of :func:`output_delta`: :math:`s_n \delta_{nk}` into the last layer's block of
    D; return :math:`\sum_n s_n E_n`."""
    cdef Py_ssize_t r, k, K = col(layout, L - 1, N_OUT), off = n * col(layout, L - 1, U_OFF)
    cdef double E = 0, En
    cdef floating* d
    if output == SOFTMAX and loss == CROSS_ENTROPY:
        return softmax_cross_entropy_batch(n, K, A + off, Z + off, T, s, D + off)
    for r in range(n):
        d = D + off + r * K
        En = sample_delta(output, loss, A + off + r * K, Z + off + r * K, T + r * K, d, K)
        for k in range(K):
            d[k] = d[k] * s[r]
        E += s[r] * En
    return E


cdef inline int narrow_deriv(int hidden) noexcept nogil:
    """The ``DELTAPROP_DERIV_*`` code of ``narrow_backprop`` for ``hidden``, -1 if it has none."""
    if hidden == IDENTITY:
        return DELTAPROP_DERIV_ONE
    if hidden == RELU:
        return DELTAPROP_DERIV_RELU
    if hidden == TANH:
        return DELTAPROP_DERIV_TANH
    if hidden == LOGISTIC:
        return DELTAPROP_DERIV_LOGISTIC
    return -1


cdef inline bint backprop_batch(const floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden,
                         Py_ssize_t n, const floating* A, const floating* Z,
                         floating* D, floating* panel, bint pack_first) noexcept nogil:
    r"""The body of :func:`backprop`: :math:`\delta_j = h'(a_j) \sum_k w_{kj} \delta_k` from the
    last layer back to the first. With ``panel`` (the AVX2 build's buffer), a layer of few
    outputs takes ``narrow_backprop`` (the derivative applied as its tiles are stored) instead
    of BLAS and a pass for the derivative. With ``pack_first`` (the first layer's gradient takes
    the indexed product, ``panel`` is free until it), the first layer's deltas may be left
    packed in ``panel`` for it instead of in D (``use_packed_delta``): returns whether they
    were."""
    cdef Py_ssize_t l, r, n_in, n_out, up
    cdef const floating* W
    cdef const floating* d
    cdef int deriv = narrow_deriv(hidden)
    cdef bint packed = False
    for l in range(L - 1, 0, -1):
        n_in, n_out = col(layout, l, N_IN), col(layout, l, N_OUT)
        W = w + col(layout, l, W_OFF)
        d = D + n * col(layout, l, U_OFF)
        up = n * col(layout, l - 1, U_OFF)
        if (use_blas(n, n_in, n_out) and panel != NULL and deriv >= 0
                and use_narrow(n, n_in, n_out, sizeof(floating))):
            packed = pack_first and l == 1 and use_packed_delta(n, n_in, n_out, sizeof(floating))
            narrow_backprop(n, n_in, n_out, d, W, deriv, A + up, Z + up, D + up, panel, packed)
        elif use_blas(n, n_in, n_out):
            matmul_bt(n, n_out, n_in, d, W, D + up)
            scale_by_derivative(hidden, A + up, Z + up, D + up, n * n_in)
        else:
            for r in range(n):
                backprop_rows(W, n_in, n_out, hidden, A + up + r * n_in, Z + up + r * n_in,
                              D + up + r * n_in, d + r * n_out)
    return packed


cdef inline void gradient_batch(const Py_ssize_t* layout, Py_ssize_t L, Py_ssize_t n, const floating* X,
                         const floating* Z, const floating* D, floating* g,
                         const Py_ssize_t* idx, floating* panel, bint packed) noexcept nogil:
    r"""The body of :func:`gradient`: :math:`\partial E / \partial w_{ji} = \sum_n \delta_j z_i`,
    :math:`\partial E / \partial w_{j0} = \sum_n \delta_j`. With ``idx``, the batch's inputs
    are ``X``'s rows ``idx[r]`` (as in ``forward_batch``, with its ``panel``), and the first
    layer's bias sums are taken by its product as it packs :math:`\Delta`; with ``packed``,
    ``backprop_batch`` left that layer's :math:`\Delta` packed in ``panel``, summed."""
    cdef Py_ssize_t l, r, i, j, n_in, n_out
    cdef const floating* z_prev = X
    cdef const floating* d
    cdef const floating* x
    cdef floating* gW
    cdef floating* gb
    cdef floating zi
    for l in range(L):
        n_in, n_out = col(layout, l, N_IN), col(layout, l, N_OUT)
        gW = g + col(layout, l, W_OFF)
        gb = g + col(layout, l, B_OFF)
        d = D + n * col(layout, l, U_OFF)
        if l == 0 and idx != NULL and use_blas(n, n_in, n_out):  # with the bias's sums
            indexed_matmul_at(n, n_in, n_out, X, idx, d, gW, 1, 0, panel, gb, 0, packed)
        else:
            if n > 0 and use_blas(n, n_in, n_out):
                matmul_at(n, n_in, n_out, z_prev, d, gW)
            else:
                memset(gW, 0, n_in * n_out * sizeof(floating))
                for r in range(n):
                    x = batch_row(z_prev, idx if l == 0 else NULL, r, n_in)
                    for i in range(n_in):
                        zi = x[i]
                        if zi != 0:
                            axpy(n_out, zi, d + r * n_out, gW + i * n_out)
            memset(gb, 0, n_out * sizeof(floating))
            for r in range(n):
                for j in range(n_out):
                    gb[j] += d[r * n_out + j]
        z_prev = Z + n * col(layout, l, U_OFF)


cdef inline double gradient_step(const Py_ssize_t* layout, Py_ssize_t L, int solver, Py_ssize_t n,
                                 const floating* X, const floating* Z, const floating* D,
                                 floating* w, floating* v, const floating* hyper,
                                 floating inv_S, const Py_ssize_t* idx,
                                 floating* panel, bint packed) noexcept nogil:
    r"""The gradient of a batch and the step of plain sgd or momentum in its products, with no
    gradient buffer (numba's ``backprop.gradient_step``); returns :math:`\lVert W \rVert^2`
    before the step when α is not 0, else 0.

    With :math:`c = \eta / S` (``inv_S`` = 1/S) and each layer's summed gradient
    :math:`Z^T \Delta`, plain sgd is one product with :math:`\beta = 1 - c\alpha`,
    :math:`W \leftarrow (1 - c\alpha) W - c\, Z^T \Delta`, :math:`b \leftarrow b - c \sum_n
    \delta_n`; momentum is one product into the velocity ``v`` (the solver state's first row)
    with :math:`\beta = \mu`, then one pass: :math:`V \leftarrow \mu V - c\, Z^T \Delta -
    c\alpha W`, :math:`W \leftarrow W + V`. Small layers (no BLAS) take the same steps by rows.
    With ``idx``, the batch's inputs are ``X``'s rows ``idx[r]`` (as in ``forward_batch``, with
    its ``panel``), and the first layer's product also takes its bias's step (``packed`` as in
    :func:`gradient_batch`)."""
    cdef Py_ssize_t l, r, i, p, n_in, n_out, wo, bo
    cdef const floating* z_prev = X
    cdef const floating* d
    cdef const floating* x
    cdef floating* W
    cdef floating* b
    cdef floating* V
    cdef floating zi
    cdef bint fused
    cdef floating c = hyper[ETA] * inv_S
    cdef floating decay = c * hyper[ALPHA]
    cdef floating beta = hyper[MU] if solver == MOMENTUM else 1 - decay  # the product's beta
    cdef double sq = 0
    for l in range(L):
        n_in, n_out = col(layout, l, N_IN), col(layout, l, N_OUT)
        wo, bo = col(layout, l, W_OFF), col(layout, l, B_OFF)
        d = D + n * col(layout, l, U_OFF)
        if hyper[ALPHA] != 0:
            sq += sum_squares(w + wo, n_in * n_out)
        W = v + wo if solver == MOMENTUM else w + wo  # the product's target
        b = v + bo if solver == MOMENTUM else w + bo
        fused = l == 0 and idx != NULL and use_blas(n, n_in, n_out)
        if fused:  # the bias's step in the product too
            indexed_matmul_at(n, n_in, n_out, X, idx, d, W, -c, beta, panel, b,
                              beta if solver == MOMENTUM else 1, packed)
        elif use_blas(n, n_in, n_out):
            matmul_at(n, n_in, n_out, z_prev, d, W, -c, beta)
        else:
            if beta != 1:
                for p in range(n_in * n_out):
                    W[p] = beta * W[p]
            for r in range(n):
                x = batch_row(z_prev, idx if l == 0 else NULL, r, n_in)
                for i in range(n_in):
                    zi = x[i]
                    if zi != 0:
                        axpy(n_out, -c * zi, d + r * n_out, W + i * n_out)
        if not fused:
            if solver == MOMENTUM:
                for p in range(n_out):
                    b[p] = beta * b[p]
            for r in range(n):
                axpy(n_out, -c, d + r * n_out, b)
        if solver == MOMENTUM:
            V = v + wo
            for p in range(n_in * n_out):
                V[p] = V[p] - decay * w[wo + p]
                w[wo + p] = w[wo + p] + V[p]
            for p in range(n_out):
                w[bo + p] = w[bo + p] + v[bo + p]
        z_prev = Z + n * col(layout, l, U_OFF)
    return sq
