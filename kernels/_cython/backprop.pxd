# cython: language_level=3
from cython cimport floating

from ._core cimport BINARY_CROSS_ENTROPY, CROSS_ENTROPY, LOGISTIC, SOFTMAX, SQUARED_ERROR, f_exp, f_log
from .activations cimport log1pexp

cdef double output_delta_batch(const Py_ssize_t* layout, Py_ssize_t L, int output, int loss,
                               Py_ssize_t n, const floating* A, const floating* Z,
                               const floating* T, const floating* s, floating* D) noexcept nogil
cdef void backprop_batch(const floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden,
                         Py_ssize_t n, const floating* A, const floating* Z,
                         floating* D) noexcept nogil
cdef void gradient_batch(const Py_ssize_t* layout, Py_ssize_t L, Py_ssize_t n, const floating* X,
                         const floating* Z, const floating* D, floating* g) noexcept nogil
cdef void gradient_step(const Py_ssize_t* layout, Py_ssize_t L, Py_ssize_t n, const floating* X,
                        const floating* Z, const floating* D, floating c, floating* w) noexcept nogil


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
