/* The per-sample solvers' update of one row, in C so that the rows, the solver's state and delta
   are restrict pointers: the compiler vectorises each loop with no run-time alias checks.

   Declared to Cython in update.pxd (``cdef extern from "_update.h"``), whose ``update_row``
   picks the float or double one. One sample's gradient of a row is g_j = zi d_j + c w_j
   (c = alpha / s_n; zi = 1 and c = 0 for the biases), applied by the rule of scikit-learn's
   optimisers; every expression is update.pxd's, in the same order. Unrolled four times: a row
   of W_0 and its state come from the L2 (they do not fit the L1), and more loads and stores in
   flight per iteration keep it busy. Included by Cython-generated C, after Python.h (Py_ssize_t). */
#ifndef DELTAPROP_UPDATE_H
#define DELTAPROP_UPDATE_H

#include <math.h>

#include "_restrict.h"

#if defined(__GNUC__) && !defined(__clang__)
#define DELTAPROP_UNROLL4 _Pragma("GCC unroll 4")
#elif defined(__clang__)
#define DELTAPROP_UNROLL4 _Pragma("clang loop unroll_count(4)")
#else
#define DELTAPROP_UNROLL4
#endif

/* momentum: m <- mu m - eta g, w <- w + m */
#define DELTAPROP_MOMENTUM_ROW(T, NAME) \
static inline void NAME(Py_ssize_t n, T* DELTAPROP_RESTRICT w, T* DELTAPROP_RESTRICT m, \
        const T* DELTAPROP_RESTRICT d, T zi, T c, T eta, T mu) { \
    DELTAPROP_UNROLL4 \
    for (Py_ssize_t j = 0; j < n; j++) { \
        T wj = w[j]; \
        m[j] = mu * m[j] - eta * (zi * d[j] + c * wj); \
        w[j] = wj + m[j]; \
    } \
}
DELTAPROP_MOMENTUM_ROW(float, deltaprop_momentum_rowf)
DELTAPROP_MOMENTUM_ROW(double, deltaprop_momentum_row)

/* Nesterov: m <- mu m - eta g, w <- w + (mu m - eta g) */
#define DELTAPROP_NESTEROV_ROW(T, NAME) \
static inline void NAME(Py_ssize_t n, T* DELTAPROP_RESTRICT w, T* DELTAPROP_RESTRICT m, \
        const T* DELTAPROP_RESTRICT d, T zi, T c, T eta, T mu) { \
    DELTAPROP_UNROLL4 \
    for (Py_ssize_t j = 0; j < n; j++) { \
        T wj = w[j]; \
        T g = zi * d[j] + c * wj; \
        m[j] = mu * m[j] - eta * g; \
        w[j] = wj + (mu * m[j] - eta * g); \
    } \
}
DELTAPROP_NESTEROV_ROW(float, deltaprop_nesterov_rowf)
DELTAPROP_NESTEROV_ROW(double, deltaprop_nesterov_row)

/* Adam: m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2, w <- w - eta_t m / (sqrt(v) + eps)
   (c1 = 1 - b1, c2 = 1 - b2) */
#define DELTAPROP_ADAM_ROW(T, NAME, SQRT) \
static inline void NAME(Py_ssize_t n, T* DELTAPROP_RESTRICT w, T* DELTAPROP_RESTRICT m, \
        T* DELTAPROP_RESTRICT v, const T* DELTAPROP_RESTRICT d, T zi, T c, T b1, T b2, T c1, \
        T c2, T et, T eps) { \
    DELTAPROP_UNROLL4 \
    for (Py_ssize_t j = 0; j < n; j++) { \
        T wj = w[j]; \
        T g = zi * d[j] + c * wj; \
        m[j] = b1 * m[j] + c1 * g; \
        v[j] = b2 * v[j] + c2 * (g * g); \
        w[j] = wj - et * m[j] / (SQRT(v[j]) + eps); \
    } \
}
DELTAPROP_ADAM_ROW(float, deltaprop_adam_rowf, sqrtf)
DELTAPROP_ADAM_ROW(double, deltaprop_adam_row, sqrt)

#endif  /* DELTAPROP_UPDATE_H */
