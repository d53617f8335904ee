# cython: language_level=3
r"""Activation functions h, f and their derivatives over one sample's units; mirrors
``kernels/_numba/activations.py`` (and the reference ``kernels/_numpy/activations.py``).

``cdef inline ... noexcept nogil`` on raw pointers of one fused floating type, so each call is
inlined into its caller's loop. A pointer ``a`` here is numba's ``(a, u)``: the sample's units
start at ``a``. The branch on ``code`` sits outside the element loops.
"""

from cython cimport floating

from ._core cimport (EXP, GUDERMANNIAN, IDENTITY, LOGISTIC, RELU, SOFTMAX, SOFTPLUS, TANH,
                     f_abs, f_atan, f_cos, f_exp, f_log1p, f_tanh)


cdef extern from "_tanh.h":
    void deltaprop_tanhf(Py_ssize_t n, const float* a, float* z) noexcept nogil
    void deltaprop_tanh(Py_ssize_t n, const double* a, double* z) noexcept nogil
    float deltaprop_expf_shifted(Py_ssize_t n, const float* a, float shift, float* z) noexcept nogil
    double deltaprop_exp_shifted(Py_ssize_t n, const double* a, double shift, double* z) noexcept nogil
    void deltaprop_softmaxf_rows(Py_ssize_t n, Py_ssize_t K, const float* a, float* z) noexcept nogil
    void deltaprop_softmax_rows(Py_ssize_t n, Py_ssize_t K, const double* a, double* z) noexcept nogil


cdef inline void tanh_units(const floating* a, floating* z, Py_ssize_t n) noexcept nogil:
    r""":math:`z = \tanh(a)` over ``n`` units by a formula the C compiler vectorises (libm's
    ``tanh`` is a call per unit; ``_tanh.h``).

    Cephes' method, in the dtype of ``a`` (the same as the numba backend's ``tanh_units``): for
    :math:`|x| < 0.625` the rational form :math:`x + x^3 P(x^2) / Q(x^2)`; above,
    :math:`\pm(1 - 2 / (e^{2|x|} + 1))` with :math:`e^t = 2^k e^r`,
    :math:`k = \lfloor t \log_2 e + \frac12 \rfloor` (Cody-Waite reduction), Cephes' Padé form
    for :math:`e^r` and :math:`2^k` from its bits; :math:`|x| > 22` gives ±1. Both branches are
    computed and one selected (no branch, one division). Error within 2 units in the last place
    of :math:`\max(|\tanh x|, \frac12)`; NaN stays NaN.
    """
    if floating is float:
        deltaprop_tanhf(n, a, z)
    else:
        deltaprop_tanh(n, a, z)


cdef inline floating exp_units(const floating* a, floating shift, floating* z,
                               Py_ssize_t n) noexcept nogil:
    r""":math:`z = e^{a - \mathrm{shift}}` over ``n`` units with :math:`a \le \mathrm{shift}`
    (softmax's shift by :math:`\max a`); returns :math:`\sum z`. Vectorised by the C compiler
    (``_tanh.h``), the same method as the numba backend's ``exp_units``: Cephes' exp, Cody-Waite
    reduction :math:`x = k \ln 2 + r`, the Padé form of :math:`e^r` and :math:`2^k` from its
    bits; 0 below :math:`-87` (float32) or :math:`-708` (float64), where :math:`2^k` would leave
    the normal range; NaN stays NaN."""
    if floating is float:
        return deltaprop_expf_shifted(n, a, shift, z)
    else:
        return deltaprop_exp_shifted(n, a, shift, z)


cdef inline void softmax_rows(const floating* a, floating* z, Py_ssize_t n,
                              Py_ssize_t K) noexcept nogil:
    r"""Softmax of each of ``n`` rows of ``K`` units,
    :math:`z_k = e^{a_k - \max a} / \sum_j e^{a_j - \max a}` (the exp of :func:`exp_units`,
    vectorised across the rows: ``_tanh.h``)."""
    if floating is float:
        deltaprop_softmaxf_rows(n, K, a, z)
    else:
        deltaprop_softmax_rows(n, K, a, z)


cdef inline floating logistic(floating a) noexcept nogil:
    r""":math:`\sigma(a) = 1 / (1 + e^{-a})`; for :math:`a < 0` as :math:`e^a / (1 + e^a)` (no overflow)."""
    cdef floating e
    if a >= 0:
        e = f_exp(-a)
        return 1 / (1 + e)
    e = f_exp(a)
    return e / (1 + e)


cdef inline floating log1pexp(floating a) noexcept nogil:
    r"""Softplus :math:`\ln(1 + e^a)` as :math:`\max(a, 0) + \ln(1 + e^{-|a|})` (no overflow)."""
    return (a if a > 0 else 0) + f_log1p(f_exp(-f_abs(a)))


cdef inline void activate(int code, const floating* a, floating* z, Py_ssize_t n) noexcept nogil:
    r""":math:`z = h(a)` over ``n`` units: identity, logistic, tanh, relu, Gudermannian
    :math:`2\arctan(\tanh(a/2))`, softmax (log-sum-exp shift), exp or softplus
    :math:`\ln(1 + e^a)`."""
    cdef Py_ssize_t j
    cdef floating m, total
    if code == TANH:
        tanh_units(a, z, n)
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
    elif code == SOFTPLUS:
        for j in range(n):
            z[j] = log1pexp(a[j])
    elif code == SOFTMAX:
        m = a[0]
        for j in range(1, n):
            if a[j] > m:
                m = a[j]
        total = exp_units(a, m, z, n)
        for j in range(n):
            z[j] = z[j] / total
    elif code == EXP:
        for j in range(n):
            z[j] = f_exp(a[j])


cdef inline floating derivative(int code, floating a, floating z) noexcept nogil:
    r""":math:`h'(a)` given ``a`` and ``z = h(a)``: 1, z(1 − z), 1 − z², [a > 0] (read as
    [z > 0], the same for every a, NaN included: the batch kernels may not store a relu layer's
    ``a``), gd'(a) = cos z, softplus' = σ(a) (from ``a``: accurate where z underflows)."""
    if code == TANH:
        return 1 - z * z
    if code == RELU:
        return 1 if z > 0 else 0
    if code == LOGISTIC:
        return z * (1 - z)
    if code == GUDERMANNIAN:
        return f_cos(z)
    if code == SOFTPLUS:
        return logistic(a)
    return 1


cdef inline void scale_by_derivative(int code, const floating* a, const floating* z,
                                     floating* delta, Py_ssize_t n) noexcept nogil:
    r""":math:`\delta_j \leftarrow h'(a_j)\, \delta_j` over ``n`` units (the factor of Bishop 5.56).
    One loop per code, each calling :func:`derivative` with a constant code: the loop body has
    no branch on the code, so it vectorises."""
    cdef Py_ssize_t j
    if code == TANH:
        for j in range(n):
            delta[j] = derivative(TANH, a[j], z[j]) * delta[j]
    elif code == RELU:
        for j in range(n):
            delta[j] = derivative(RELU, a[j], z[j]) * delta[j]
    elif code == LOGISTIC:
        for j in range(n):
            delta[j] = derivative(LOGISTIC, a[j], z[j]) * delta[j]
    elif code == GUDERMANNIAN:
        for j in range(n):
            delta[j] = derivative(GUDERMANNIAN, a[j], z[j]) * delta[j]
    elif code == SOFTPLUS:
        for j in range(n):
            delta[j] = derivative(SOFTPLUS, a[j], z[j]) * delta[j]
