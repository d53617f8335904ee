# cython: language_level=3
r"""Per-sample primitives of the Cython backend, shared by every ``.pyx`` module.

Design
------
Everything here is ``cdef inline ... noexcept nogil`` on raw pointers of ONE fused floating
type (float32 or float64), so the C compiler inlines it into each caller's loop: no function
call, no Python object and no allocation per sample. The codes mirror
``deltaprop.contract`` (``ACTIVATIONS``, ``LOSSES``, ``SOLVERS``, ``HYPER``).

Memory layout and loop order (chosen for speed): a weight matrix ``W`` (n_in, n_out) is
row-major, so the forward sum :math:`a = \sum_i z_i W_{i,:} + b` and the update
:math:`W_{i,:} \mathrel{-}= \eta z_i \delta` both run over contiguous rows (axpy, vectorised),
and a zero input :math:`z_i = 0` skips its whole row in both, exactly. The δ-recursion reads
the same row as a dot product, :math:`\sum_k w_{kj} \delta_k = W_{j,:} \cdot \delta`.
"""

from cython cimport floating
from libc.math cimport (atan, atanf, cos, cosf, exp, expf, fabs, fabsf, log, log1p, log1pf,
                        logf, sqrt, sqrtf, tanh, tanhf)
from libc.string cimport memset

# --------------------------------------------------------------------------- codes
# Mirrors deltaprop.contract.ACTIVATIONS / LOSSES / SOLVERS / HYPER (test_cython checks it).
cdef enum Activation:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3
    GUDERMANNIAN = 4
    SOFTMAX = 5
    EXP = 6

cdef enum Loss:
    SQUARED_ERROR = 0
    BINARY_CROSS_ENTROPY = 1
    CROSS_ENTROPY = 2
    POISSON = 3

cdef enum Solver:
    SGD = 0
    MOMENTUM = 1
    NESTEROV = 2
    ADAM = 3

# entries of `hyper` (HYPER)
cdef enum:
    ETA = 0
    ALPHA = 1
    MU = 2
    BETA_1 = 3
    BETA_2 = 4
    EPSILON = 5

# Columns of the layout table: (n_in, n_out, w_off, b_off, u_off).
cdef enum:
    N_IN = 0
    N_OUT = 1
    W_OFF = 2
    B_OFF = 3
    U_OFF = 4


# --------------------------------------------------------------------------- libm, per dtype
# float32 arithmetic stays in float32 (expf, tanhf, ...): no silent upcast.
cdef inline floating f_exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)

cdef inline floating f_log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)

cdef inline floating f_log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)

cdef inline floating f_tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)

cdef inline floating f_atan(floating x) noexcept nogil:
    if floating is float:
        return atanf(x)
    else:
        return atan(x)

cdef inline floating f_cos(floating x) noexcept nogil:
    if floating is float:
        return cosf(x)
    else:
        return cos(x)

cdef inline floating f_abs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)

cdef inline floating f_sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


# --------------------------------------------------------------------------- activations
cdef inline floating logistic(floating a) noexcept nogil:
    r""":math:`\sigma(a) = 1 / (1 + e^{-a})`; for :math:`a < 0` as :math:`e^a / (1 + e^a)` (no overflow)."""
    cdef floating e
    if a >= 0:
        e = f_exp(-a)
        return 1 / (1 + e)
    e = f_exp(a)
    return e / (1 + e)

cdef inline floating log1pexp(floating a) noexcept nogil:
    r""":math:`\ln(1 + e^a)` (softplus) as :math:`\max(a, 0) + \ln(1 + e^{-|a|})`."""
    return (a if a > 0 else 0) + f_log1p(f_exp(-f_abs(a)))

cdef inline void activate(int code, Py_ssize_t n, const floating* a, floating* z) noexcept nogil:
    r""":math:`z = h(a)` over ``n`` units: identity, logistic, tanh, relu, Gudermannian
    :math:`2\arctan(\tanh(a/2))`, softmax (log-sum-exp shift) or exp. One branch per call,
    not per unit."""
    cdef Py_ssize_t j
    cdef floating m, total
    if code == TANH:
        for j in range(n):
            z[j] = f_tanh(a[j])
    elif code == RELU:
        for j in range(n):
            z[j] = a[j] if a[j] > 0 else 0
    elif code == LOGISTIC:
        for j in range(n):
            z[j] = logistic(a[j])
    elif code == IDENTITY:
        for j in range(n):
            z[j] = a[j]
    elif code == GUDERMANNIAN:
        for j in range(n):
            z[j] = 2 * f_atan(f_tanh(a[j] / 2))
    elif code == SOFTMAX:
        m = a[0]
        for j in range(1, n):
            if a[j] > m:
                m = a[j]
        total = 0
        for j in range(n):
            z[j] = f_exp(a[j] - m)
            total += z[j]
        for j in range(n):
            z[j] = z[j] / total
    elif code == EXP:
        for j in range(n):
            z[j] = f_exp(a[j])

cdef inline floating derivative(int code, floating a, floating z) noexcept nogil:
    r""":math:`h'(a)` given ``a`` and ``z = h(a)``: 1, z(1 − z), 1 − z², [a > 0], gd'(a) = cos z."""
    if code == TANH:
        return 1 - z * z
    if code == RELU:
        return 1 if a > 0 else 0
    if code == LOGISTIC:
        return z * (1 - z)
    if code == GUDERMANNIAN:
        return f_cos(z)
    return 1


# --------------------------------------------------------------------------- vector primitives
cdef inline void axpy(Py_ssize_t n, floating c, const floating* x, floating* y) noexcept nogil:
    """y += c x (contiguous: vectorised by the C compiler)."""
    cdef Py_ssize_t j
    for j in range(n):
        y[j] += c * x[j]

cdef inline void axpy_axpy(Py_ssize_t n, floating c, const floating* x, floating* w,
                           floating c2, floating* y) noexcept nogil:
    """w += c x, then y += c2 w with the updated w, in one pass over w."""
    cdef Py_ssize_t j
    cdef floating r
    for j in range(n):
        r = w[j] + c * x[j]
        w[j] = r
        y[j] += c2 * r

cdef inline floating dot(Py_ssize_t n, const floating* x, const floating* y) noexcept nogil:
    """x · y with eight independent partial sums (a dot product is otherwise bound by the
    latency of one add chain; the C compiler packs the eight into SIMD registers)."""
    cdef floating s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0
    cdef Py_ssize_t j = 0
    while j + 8 <= n:
        s0 += x[j] * y[j]
        s1 += x[j + 1] * y[j + 1]
        s2 += x[j + 2] * y[j + 2]
        s3 += x[j + 3] * y[j + 3]
        s4 += x[j + 4] * y[j + 4]
        s5 += x[j + 5] * y[j + 5]
        s6 += x[j + 6] * y[j + 6]
        s7 += x[j + 7] * y[j + 7]
        j += 8
    while j < n:
        s0 += x[j] * y[j]
        j += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))

cdef inline void dense(Py_ssize_t n_in, Py_ssize_t n_out, const floating* W, const floating* b,
                       const floating* z_in, floating* a) noexcept nogil:
    r""":math:`a_j = \sum_i w_{ji} z_i + w_{j0}` for one sample (5.48): rows of W scaled by
    :math:`z_i` and summed, zero inputs skipped (exact), the bias added last."""
    cdef Py_ssize_t i, j
    cdef floating zi
    memset(a, 0, n_out * sizeof(floating))
    for i in range(n_in):
        zi = z_in[i]
        if zi != 0:
            axpy(n_out, zi, W + i * n_out, a)
    for j in range(n_out):
        a[j] += b[j]


# --------------------------------------------------------------------------- output errors
cdef inline double output_error(int output, int loss, Py_ssize_t K, const floating* a,
                                const floating* y, const floating* t, floating* delta) noexcept nogil:
    r"""Unweighted :math:`\delta_k = \partial E_n / \partial a_k` into ``delta``; return :math:`E_n`.

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
