# cython: language_level=3
from cython cimport floating
from libc.stdint cimport int64_t

from libc.math cimport pow, sqrt

from ._core cimport (ADAM, ALPHA, B_OFF, BETA_1, BETA_2, EPSILON, ETA, MOMENTUM, MU, N_IN, N_OUT,
                     NESTEROV, SGD, W_OFF, col, f_sqrt)
from .rows cimport sum_squares

cdef extern from "_update.h":
    void deltaprop_momentum_rowf(Py_ssize_t n, float* w, float* m, const float* d, float zi, float c,
                                 float eta, float mu) noexcept nogil
    void deltaprop_momentum_row(Py_ssize_t n, double* w, double* m, const double* d, double zi, double c,
                                double eta, double mu) noexcept nogil
    void deltaprop_nesterov_rowf(Py_ssize_t n, float* w, float* m, const float* d, float zi, float c,
                                 float eta, float mu) noexcept nogil
    void deltaprop_nesterov_row(Py_ssize_t n, double* w, double* m, const double* d, double zi, double c,
                                double eta, double mu) noexcept nogil
    void deltaprop_adam_rowf(Py_ssize_t n, float* w, float* m, float* v, const float* d, float zi, float c,
                             float b1, float b2, float c1, float c2, float et, float eps) noexcept nogil
    void deltaprop_adam_row(Py_ssize_t n, double* w, double* m, double* v, const double* d, double zi,
                            double c, double b1, double b2, double c1, double c2, double et,
                            double eps) noexcept nogil

cdef void update(floating* w, const floating* g, Py_ssize_t P, int solver, const floating* hyper,
                 floating* state, int64_t* step) noexcept nogil
cdef double adam_rate(const floating* hyper, int64_t* step) noexcept nogil


cdef inline void update_row(int solver, floating* w, floating* m, floating* v, Py_ssize_t n,
                            floating zi, const floating* delta, floating c, const floating* hyper,
                            double eta_t) noexcept nogil:
    r"""Update ``w[:n]`` (one row, or the biases with ``zi = 1, c = 0``) with one sample's
    gradient :math:`g_j = z_i \delta_j + c\, w_j` by ``solver``; ``m``, ``v`` are the same
    entries of ``state``'s rows (v of momentum and Nesterov in ``m``). No reduction in these
    loops, so they vectorise; momentum, Nesterov and Adam are ``_update.h``'s C loops, whose
    ``restrict`` pointers spare the run-time alias checks."""
    cdef Py_ssize_t j
    cdef floating wj, et, c1, c2
    cdef floating eta = hyper[ETA], mu = hyper[MU], b1 = hyper[BETA_1], b2 = hyper[BETA_2]
    cdef floating eps = hyper[EPSILON]
    if solver == SGD:
        for j in range(n):
            wj = w[j]
            w[j] = wj - eta * (zi * delta[j] + c * wj)
    elif solver == MOMENTUM:  # the C loops of _update.h: restrict pointers
        if floating is float:
            deltaprop_momentum_rowf(n, w, m, delta, zi, c, eta, mu)
        else:
            deltaprop_momentum_row(n, w, m, delta, zi, c, eta, mu)
    elif solver == NESTEROV:
        if floating is float:
            deltaprop_nesterov_rowf(n, w, m, delta, zi, c, eta, mu)
        else:
            deltaprop_nesterov_row(n, w, m, delta, zi, c, eta, mu)
    elif solver == ADAM:
        et = <floating>eta_t  # in the arrays' dtype: float32 stays float32 (vectorised)
        c1, c2 = 1 - b1, 1 - b2
        if floating is float:
            deltaprop_adam_rowf(n, w, m, v, delta, zi, c, b1, b2, c1, c2, et, eps)
        else:
            deltaprop_adam_row(n, w, m, v, delta, zi, c, b1, b2, c1, c2, et, eps)


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
    of the weights before the update when ``alpha`` is not 0 (the L2 penalty), one
    ``sum_squares`` over the whole layer before any row changes: a long sum with four
    accumulators, not a short one per row bound by one accumulator's add latency."""
    cdef Py_ssize_t i, ro
    cdef double sq = 0
    if alpha != 0:
        sq = sum_squares(w + wo, n_in * n_out)
    update_row(solver, w + bo, m + bo, v + bo, n_out, 1, delta, 0, hyper, eta_t)
    for i in range(n_in):
        ro = wo + i * n_out
        update_row(solver, w + ro, m + ro, v + ro, n_out, z[i], delta, c, hyper, eta_t)
    return sq


cdef inline void step_range(int solver, floating* w, const floating* g, floating* m, floating* v,
                            Py_ssize_t n, floating c, floating inv_S, floating eta, floating mu,
                            floating b1, floating b2, floating eps, floating et) noexcept nogil:
    r"""One mini-batch update of ``w[:n]`` with :math:`g'_p = (g_p + c\, w_p) / S` (``c`` = α
    on weights, 0 on biases; ``inv_S`` = 1/S), the solver's rule applied in the same pass: the
    scaling, the L2 term and the update cost one sweep over w, g and the state, and no
    reduction sits in the loop, so it vectorises."""
    cdef Py_ssize_t p
    cdef floating gp, wp, c1, c2
    if solver == SGD:
        for p in range(n):
            wp = w[p]
            w[p] = wp - eta * ((g[p] + c * wp) * inv_S)
    elif solver == MOMENTUM:
        for p in range(n):
            wp = w[p]
            m[p] = mu * m[p] - eta * ((g[p] + c * wp) * inv_S)
            w[p] = wp + m[p]
    elif solver == NESTEROV:
        for p in range(n):
            wp = w[p]
            gp = (g[p] + c * wp) * inv_S
            m[p] = mu * m[p] - eta * gp
            w[p] = wp + (mu * m[p] - eta * gp)
    elif solver == ADAM:
        c1, c2 = 1 - b1, 1 - b2  # floating: a literal 1 in the loop would make it double
        for p in range(n):
            wp = w[p]
            gp = (g[p] + c * wp) * inv_S
            m[p] = b1 * m[p] + c1 * gp
            v[p] = b2 * v[p] + c2 * (gp * gp)
            w[p] = wp - et * m[p] / (f_sqrt(v[p]) + eps)


cdef inline double adam_rate_inline(const floating* hyper, int64_t* step) noexcept nogil:
    r"""``adam_rate`` (update.pyx), inlined: increment the step count τ (``step[0]``), return
    :math:`\eta \sqrt{1 - \beta_2^\tau} / (1 - \beta_1^\tau)` in double."""
    step[0] += 1
    return (<double>hyper[ETA] * sqrt(1 - pow(<double>hyper[BETA_2], <double>step[0]))
            / (1 - pow(<double>hyper[BETA_1], <double>step[0])))


cdef inline double batch_step(const Py_ssize_t* layout, Py_ssize_t L, int solver, floating* w,
                              const floating* g, Py_ssize_t P, const floating* hyper,
                              floating* state, int64_t* step, floating inv_S) noexcept nogil:
    r"""The mini-batch update :math:`w \leftarrow \mathrm{rule}(w, (g + \alpha W) / S)` (α on
    the weights only) in one pass over the parameters, layer by layer (``step_range``); returns
    :math:`\lVert W \rVert^2` before the update when α is not 0 (a vectorised dot product per
    layer, summed in double), else 0. Replaces three sweeps (g += αW, g /= S, update)."""
    cdef Py_ssize_t l, wo, bo, size
    cdef double sq = 0, et = 0
    cdef floating alpha = hyper[ALPHA]
    cdef floating* m = state
    cdef floating* v = state + P
    if solver == ADAM:
        et = adam_rate_inline(hyper, step)
    for l in range(L):
        wo = col(layout, l, W_OFF)
        bo = col(layout, l, B_OFF)
        size = col(layout, l, N_IN) * col(layout, l, N_OUT)
        if alpha != 0:
            sq += sum_squares(w + wo, size)
        step_range(solver, w + wo, g + wo, m + wo, v + wo, size, alpha, inv_S, hyper[ETA],
                   hyper[MU], hyper[BETA_1], hyper[BETA_2], hyper[EPSILON], <floating>et)
        step_range(solver, w + bo, g + bo, m + bo, v + bo, col(layout, l, N_OUT), 0, inv_S,
                   hyper[ETA], hyper[MU], hyper[BETA_1], hyper[BETA_2], hyper[EPSILON],
                   <floating>et)
    return sq

