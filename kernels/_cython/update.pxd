# cython: language_level=3
from cython cimport floating
from libc.stdint cimport int64_t

from ._core cimport ADAM, BETA_1, BETA_2, EPSILON, ETA, MOMENTUM, MU, NESTEROV, SGD, f_sqrt
from .rows cimport dot

cdef void update(floating* w, const floating* g, Py_ssize_t P, int solver, const floating* hyper,
                 floating* state, int64_t* t) noexcept nogil
cdef double adam_rate(const floating* hyper, int64_t* t) noexcept nogil


cdef inline void update_row(int solver, floating* w, floating* m, floating* v, Py_ssize_t n,
                            floating zi, const floating* delta, floating c, const floating* hyper,
                            double eta_t) noexcept nogil:
    r"""Update ``w[:n]`` (one row, or the biases with ``zi = 1, c = 0``) with one sample's
    gradient :math:`g_j = z_i \delta_j + c\, w_j` by ``solver``; ``m``, ``v`` are the same
    entries of ``state``'s rows (v of momentum and Nesterov in ``m``). No reduction in these
    loops, so they vectorise."""
    cdef Py_ssize_t j
    cdef floating g, wj, et
    cdef floating eta = hyper[ETA], mu = hyper[MU], b1 = hyper[BETA_1], b2 = hyper[BETA_2]
    cdef floating eps = hyper[EPSILON]
    if solver == SGD:
        for j in range(n):
            wj = w[j]
            w[j] = wj - eta * (zi * delta[j] + c * wj)
    elif solver == MOMENTUM:
        for j in range(n):
            wj = w[j]
            m[j] = mu * m[j] - eta * (zi * delta[j] + c * wj)
            w[j] = wj + m[j]
    elif solver == NESTEROV:
        for j in range(n):
            wj = w[j]
            g = zi * delta[j] + c * wj
            m[j] = mu * m[j] - eta * g
            w[j] = wj + (mu * m[j] - eta * g)
    elif solver == ADAM:
        et = <floating>eta_t  # in the arrays' dtype: float32 stays float32 (vectorised)
        for j in range(n):
            wj = w[j]
            g = zi * delta[j] + c * wj
            m[j] = b1 * m[j] + (1 - b1) * g
            v[j] = b2 * v[j] + (1 - b2) * (g * g)
            w[j] = wj - et * m[j] / (f_sqrt(v[j]) + eps)


cdef inline double update_rows(int solver, floating* w, floating* m, floating* v, Py_ssize_t wo,
                               Py_ssize_t bo, Py_ssize_t n_in, Py_ssize_t n_out,
                               const floating* z, const floating* delta, const floating* hyper,
                               double eta_t, floating alpha, floating c) noexcept nogil:
    r"""Apply one sample's gradient to a whole layer in place, without storing it:
    :math:`g_{ji} = z_i \delta_j + c\, w_{ji}` for the weights at ``w + wo`` (n_in, n_out) and
    :math:`g_{j0} = \delta_j` for the biases at ``w + bo``, by ``solver`` (:func:`update_row`);
    ``m``, ``v`` are ``state``'s rows, at the same offsets. The inputs are ``z`` (n_in,), the
    layer's unweighted δ ``delta`` (n_out,), and :math:`c = \alpha / s_n` (numba's
    ``update_rows`` takes δ times :math:`s_n` and divides by it). Returns :math:`\sum w_{ji}^2`
    of the weights before the update when ``alpha`` is not 0 (the L2 penalty), taken row by row
    by a vectorised dot product before the row's update."""
    cdef Py_ssize_t i, ro
    cdef double sq = 0
    update_row(solver, w + bo, m + bo, v + bo, n_out, 1, delta, 0, hyper, eta_t)
    for i in range(n_in):
        ro = wo + i * n_out
        if alpha != 0:
            sq += dot(n_out, w + ro, w + ro)
        update_row(solver, w + ro, m + ro, v + ro, n_out, z[i], delta, c, hyper, eta_t)
    return sq
