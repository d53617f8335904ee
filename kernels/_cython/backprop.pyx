r"""Error backpropagation: output errors, the δ-recursion (Bishop 5.56) and the gradient.

Mirrors ``kernels/_numpy/backprop.py``. Matrix form through BLAS gemm where a layer is large
enough (:math:`\Delta_{l-1} = h'(A_{l-1}) \odot \Delta_l W_l^T`,
:math:`\partial L / \partial W = Z_{prev}^T \Delta`), per-sample row loops for tiny layers.
``sample_delta`` (one sample's output errors, shared with the per-sample epoch) is inlined from
``backprop.pxd``.
"""

from cython cimport floating
from libc.string cimport memset

from ._blas cimport matmul_at, matmul_bt
from ._core cimport (BLAS_MIN_FLOPS, B_OFF, CROSS_ENTROPY, N_IN, N_OUT, SOFTMAX, U_OFF, W_OFF,
                     axpy, col, f_log)
from .activations cimport scale_by_derivative
from .forward cimport forward_batch
from .rows cimport backprop_rows
from ._checks import check_gradient, check_loss_gradient, check_output_delta, check_units

cdef inline bint use_blas(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil:
    return n > 1 and n * n_in * n_out >= BLAS_MIN_FLOPS


cdef double softmax_cross_entropy_batch(Py_ssize_t n, Py_ssize_t K, const floating* A,
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


cdef double output_delta_batch(const Py_ssize_t* layout, Py_ssize_t L, int output, int loss,
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


cdef void backprop_batch(const floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden,
                         Py_ssize_t n, const floating* A, const floating* Z,
                         floating* D) noexcept nogil:
    r"""The body of :func:`backprop`: :math:`\delta_j = h'(a_j) \sum_k w_{kj} \delta_k` from the
    last layer back to the first."""
    cdef Py_ssize_t l, r, n_in, n_out, up
    cdef const floating* W
    cdef const floating* d
    for l in range(L - 1, 0, -1):
        n_in, n_out = col(layout, l, N_IN), col(layout, l, N_OUT)
        W = w + col(layout, l, W_OFF)
        d = D + n * col(layout, l, U_OFF)
        up = n * col(layout, l - 1, U_OFF)
        if use_blas(n, n_in, n_out):
            matmul_bt(<int>n, <int>n_out, <int>n_in, d, W, D + up)
            scale_by_derivative(hidden, A + up, Z + up, D + up, n * n_in)
        else:
            for r in range(n):
                backprop_rows(W, n_in, n_out, hidden, A + up + r * n_in, Z + up + r * n_in,
                              D + up + r * n_in, d + r * n_out)


cdef void gradient_batch(const Py_ssize_t* layout, Py_ssize_t L, Py_ssize_t n, const floating* X,
                         const floating* Z, const floating* D, floating* g) noexcept nogil:
    r"""The body of :func:`gradient`: :math:`\partial E / \partial w_{ji} = \sum_n \delta_j z_i`,
    :math:`\partial E / \partial w_{j0} = \sum_n \delta_j`."""
    cdef Py_ssize_t l, r, i, j, n_in, n_out
    cdef const floating* z_prev = X
    cdef const floating* d
    cdef floating* gW
    cdef floating* gb
    cdef floating zi
    for l in range(L):
        n_in, n_out = col(layout, l, N_IN), col(layout, l, N_OUT)
        gW = g + col(layout, l, W_OFF)
        gb = g + col(layout, l, B_OFF)
        d = D + n * col(layout, l, U_OFF)
        if n > 0 and use_blas(n, n_in, n_out):
            matmul_at(<int>n, <int>n_in, <int>n_out, z_prev, d, gW)
        else:
            memset(gW, 0, n_in * n_out * sizeof(floating))
            for r in range(n):
                for i in range(n_in):
                    zi = z_prev[r * n_in + i]
                    if zi != 0:
                        axpy(n_out, zi, d + r * n_out, gW + i * n_out)
        memset(gb, 0, n_out * sizeof(floating))
        for r in range(n):
            for j in range(n_out):
                gb[j] += d[r * n_out + j]
        z_prev = Z + n * col(layout, l, U_OFF)


cdef void gradient_step(const Py_ssize_t* layout, Py_ssize_t L, Py_ssize_t n, const floating* X,
                        const floating* Z, const floating* D, floating c, floating* w) noexcept nogil:
    r"""Plain gradient step without a gradient buffer, :math:`w \leftarrow w + c\, \nabla E`
    (:math:`c = -\eta / S_B`): the gradient's gemm accumulates straight into W (beta = 1)."""
    cdef Py_ssize_t l, r, i, n_in, n_out
    cdef const floating* z_prev = X
    cdef const floating* d
    cdef floating* W
    cdef floating* b
    cdef floating zi
    for l in range(L):
        n_in, n_out = col(layout, l, N_IN), col(layout, l, N_OUT)
        W = w + col(layout, l, W_OFF)
        b = w + col(layout, l, B_OFF)
        d = D + n * col(layout, l, U_OFF)
        if use_blas(n, n_in, n_out):
            matmul_at(<int>n, <int>n_in, <int>n_out, z_prev, d, W, c, 1)
        else:
            for r in range(n):
                for i in range(n_in):
                    zi = z_prev[r * n_in + i]
                    if zi != 0:
                        axpy(n_out, c * zi, d + r * n_out, W + i * n_out)
        for r in range(n):
            axpy(n_out, c, d + r * n_out, b)
        z_prev = Z + n * col(layout, l, U_OFF)


def output_delta(const Py_ssize_t[:, ::1] layout, int output, int loss, const floating[::1] A,
                 const floating[::1] Z, const floating[:, ::1] T, const floating[::1] s,
                 floating[::1] D):
    r"""Output errors :math:`s_n \delta_k = \partial (s_n E_n) / \partial a_k` into D; return
    :math:`E = \sum_n s_n E_n` (see ``deltaprop.contract``)."""
    cdef Py_ssize_t n = T.shape[0]
    cdef double E
    check_output_delta(layout, A, Z, T, s, D)
    if n == 0:
        return 0.0
    with nogil:
        E = output_delta_batch(&layout[0, 0], layout.shape[0], output, loss, n, &A[0], &Z[0],
                               &T[0, 0], &s[0], &D[0])
    return E


def backprop(const floating[::1] w, const Py_ssize_t[:, ::1] layout, int hidden,
             const floating[::1] A, const floating[::1] Z, floating[::1] D):
    r"""Propagate δ from the output layer back to the first hidden layer (Bishop 5.56).

    .. math:: \delta_j = h'(a_j) \sum_k w_{kj} \delta_k
    """
    cdef Py_ssize_t n = check_units(w, layout, A, Z, D)
    if n == 0:
        return
    with nogil:
        backprop_batch(&w[0], &layout[0, 0], layout.shape[0], hidden, n, &A[0], &Z[0], &D[0])


def gradient(const Py_ssize_t[:, ::1] layout, const floating[:, ::1] X, const floating[::1] Z,
             const floating[::1] D, floating[::1] g):
    r"""Gradient of E summed over the batch into ``g`` (same layout as ``w``).

    .. math:: \frac{\partial E}{\partial w_{ji}} = \sum_n \delta_j z_i, \qquad
              \frac{\partial E}{\partial w_{j0}} = \sum_n \delta_j
    """
    cdef Py_ssize_t n = X.shape[0]
    check_gradient(layout, X, Z, D, g)
    with nogil:
        gradient_batch(&layout[0, 0], layout.shape[0], n, &X[0, 0] if n > 0 else NULL,
                       &Z[0] if n > 0 else NULL, &D[0] if n > 0 else NULL, &g[0])


def loss_gradient(const floating[::1] w, const Py_ssize_t[:, ::1] layout, int hidden, int output,
                  int loss, const floating[:, ::1] X, const floating[:, ::1] T,
                  const floating[::1] s, floating[::1] A, floating[::1] Z, floating[::1] D,
                  floating[::1] g, double[::1] grad):
    r"""``forward``, ``output_delta``, ``backprop`` and ``gradient`` over all rows of X in one
    call, in chunks of :math:`|A| / U` rows: E returned, :math:`\sum_n s_n \nabla E_n` added
    into ``grad`` (P,) float64 (see ``deltaprop.contract``). The whole sweep runs without the
    GIL, so threads calling it on their own rows never wait for each other."""
    cdef Py_ssize_t n = X.shape[0], P = w.shape[0], L = layout.shape[0]
    cdef Py_ssize_t rows = check_loss_gradient(w, layout, X, T, s, A, Z, D, g, grad)
    cdef Py_ssize_t start, m, p
    cdef double E = 0
    if n == 0:
        return 0.0
    start = 0
    with nogil:
        while start < n:
            m = min(rows, n - start)
            forward_batch(&w[0], &layout[0, 0], L, hidden, output, &X[start, 0], m, &A[0], &Z[0])
            E += output_delta_batch(&layout[0, 0], L, output, loss, m, &A[0], &Z[0], &T[start, 0],
                                    &s[start], &D[0])
            backprop_batch(&w[0], &layout[0, 0], L, hidden, m, &A[0], &Z[0], &D[0])
            gradient_batch(&layout[0, 0], L, m, &X[start, 0], &Z[0], &D[0], &g[0])
            for p in range(P):
                grad[p] += g[p]
            start += m
    return E
