/* A tanh and a shifted exp over n units that the C compiler vectorises (libm's tanh and exp
   are one call per unit).

   Declared to Cython in activations.pxd (``cdef extern from "_tanh.h"``), wrapped there as the
   fused-type tanh_units and exp_units. Included by Cython-generated C, after Python.h
   (Py_ssize_t). */
#ifndef DELTAPROP_TANH_H
#define DELTAPROP_TANH_H

#include <stdint.h>

#include "_restrict.h"

/* 2^k for an integer-valued k of the normal range, from its bits: unlike ldexp it vectorises. */
static inline float deltaprop_pow2f(float k) {
    union { float f; int32_t i; } u; u.i = ((int32_t)k + 127) << 23; return u.f;
}
static inline double deltaprop_pow2(double k) {
    union { double f; int64_t i; } u; u.i = ((int64_t)k + 1023) << 52; return u.f;
}

/* tanh by Cephes' method, both branches computed and one selected (see tanh_units).
   GCC's sinking, PRE and jump threading move each branch's arithmetic back under a
   condition, after which the loop no longer vectorises ("control flow in loop"); they
   are switched off for this one function (results are unchanged: they only move code). */
#if defined(__GNUC__) && !defined(__clang__)
#define DELTAPROP_SELECTS_VECTORISE \
    __attribute__((optimize("no-tree-sink", "no-tree-pre", "no-tree-dominator-opts", "no-thread-jumps")))
#else
#define DELTAPROP_SELECTS_VECTORISE
#endif
/* e^t = P2K QP / QM by Cephes' exp, as statements declaring P2K, QP and QM: t = k ln 2 + r with
   k the nearest integer to t log2 e, computed as the truncation of t log2 e + HALF (HALF = 1/2
   for t >= 0, -1/2 for t <= 0), ln 2 = c1 + c2 with k c1 exact (Cody-Waite reduction), Cephes'
   Pade form e^r = (dq + pr) / (dq - pr) and 2^k from its bits (t must keep 2^k in the normal
   range). NaN: any k, the result stays NaN. */
#define DELTAPROP_EXP_PARTS(T, POW2, t, HALF, P2K, QP, QM) \
    T kf_ = (t) * (T)1.4426950408889634073599 + (T)(HALF); \
    kf_ = kf_ == kf_ ? kf_ : (T)0; \
    T k_ = (T)(int)kf_; \
    T r_ = (t) - k_ * (T)6.93145751953125e-1 - k_ * (T)1.42860682030941723212e-6; \
    T rr_ = r_ * r_; \
    T pr_ = r_ * (((T)1.26177193074810590878e-4 * rr_ + (T)3.02994407707441961300e-2) * rr_ \
                  + (T)9.99999999999999999910e-1); \
    T dq_ = (((T)3.00198505138664455042e-6 * rr_ + (T)2.52448340349684104192e-3) * rr_ \
             + (T)2.27265548208155028766e-1) * rr_ + (T)2.00000000000000000009e0; \
    T P2K = POW2(k_), QP = dq_ + pr_, QM = dq_ - pr_;

#define DELTAPROP_TANH(T, NAME, POW2) \
DELTAPROP_SELECTS_VECTORISE \
static void NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT a, T* DELTAPROP_RESTRICT z) { \
    const T p0 = (T)-9.64399179425052238628e-1, p1 = (T)-9.92877231001918586564e1; \
    const T p2 = (T)-1.61468768441708447952e3; \
    const T q0 = (T)1.12811678491632931402e2, q1 = (T)2.23548839060100448583e3; \
    const T q2 = (T)4.84406305325125486048e3; \
    for (Py_ssize_t j = 0; j < n; j++) { \
        T x = a[j]; \
        T mx = -x; \
        T ax = x < (T)0 ? mx : x; \
        T s = x * x; \
        T t = (T)2 * (ax > (T)22 ? (T)22 : ax); \
        DELTAPROP_EXP_PARTS(T, POW2, t, 0.5, p2k, qp, qm) \
        int small = ax < (T)0.625; \
        T num_s = x * s * ((p0 * s + p1) * s + p2); \
        T den_s = ((s + q0) * s + q1) * s + q2; \
        T num_l = (T)2 * qm;                /* 2 / (e^t + 1) = 2 qm / (2^k qp + qm) */ \
        T den_l = p2k * qp + qm; \
        T num = small ? num_s : num_l; \
        T den = small ? den_s : den_l; \
        T ratio = num / den; \
        T y = (T)1 - ratio; \
        T ny = -y; \
        T zl = x < (T)0 ? ny : y; \
        T zs = x + ratio; \
        z[j] = small ? zs : zl; \
    } \
}
DELTAPROP_TANH(float, deltaprop_tanhf, deltaprop_pow2f)
DELTAPROP_TANH(double, deltaprop_tanh, deltaprop_pow2)

/* e^x for x <= 0, as the statements declaring Y, by DELTAPROP_EXP_PARTS: below LO (where 2^k
   would leave the normal range) Y is 0; NaN stays NaN. */
#define DELTAPROP_EXP_NONPOS(T, POW2, LO, x, Y) \
    T xc_ = (x) < (T)(LO) ? (T)(LO) : (x); \
    DELTAPROP_EXP_PARTS(T, POW2, xc_, -0.5, p2k_, qp_, qm_) \
    T Y = p2k_ * (qp_ / qm_); \
    Y = (x) < (T)(LO) ? (T)0 : Y;

/* z = exp(a - shift) over n units, for a - shift <= 0 (softmax's log-sum-exp shift), and their
   sum, by DELTAPROP_EXP_NONPOS. The sum is a vector reduction (omp simd, honoured with
   -fopenmp-simd). */
#define DELTAPROP_EXP(T, NAME, POW2, LO) \
DELTAPROP_SELECTS_VECTORISE \
static inline T NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT a, T shift, T* DELTAPROP_RESTRICT z) { \
    T total = 0; \
    _Pragma("omp simd reduction(+:total)") \
    for (Py_ssize_t j = 0; j < n; j++) { \
        T x = a[j] - shift; \
        DELTAPROP_EXP_NONPOS(T, POW2, LO, x, y) \
        z[j] = y; \
        total += y; \
    } \
    return total; \
}
DELTAPROP_EXP(float, deltaprop_expf_shifted, deltaprop_pow2f, -87.0)
DELTAPROP_EXP(double, deltaprop_exp_shifted, deltaprop_pow2, -708.0)

/* Softmax of each of n rows of K units: z = exp(a - max a) / sum, with the exp of
   DELTAPROP_EXP_NONPOS. The exps run as one loop over all n K units (a row of ten outputs alone is
   too short a loop for vectors); the shifts before and the sums after go row by row. */
#define DELTAPROP_SOFTMAX(T, NAME, POW2, LO) \
DELTAPROP_SELECTS_VECTORISE \
static void NAME(Py_ssize_t n, Py_ssize_t K, const T* DELTAPROP_RESTRICT a, \
                 T* DELTAPROP_RESTRICT z) { \
    for (Py_ssize_t r = 0; r < n; r++) { \
        const T* ar = a + r * K; \
        T* zr = z + r * K; \
        T m = ar[0]; \
        for (Py_ssize_t k = 1; k < K; k++) \
            m = ar[k] > m ? ar[k] : m; \
        for (Py_ssize_t k = 0; k < K; k++) \
            zr[k] = ar[k] - m; \
    } \
    for (Py_ssize_t j = 0; j < n * K; j++) { \
        T x = z[j]; \
        DELTAPROP_EXP_NONPOS(T, POW2, LO, x, y) \
        z[j] = y; \
    } \
    for (Py_ssize_t r = 0; r < n; r++) { \
        T* zr = z + r * K; \
        T total = 0; \
        for (Py_ssize_t k = 0; k < K; k++) \
            total += zr[k]; \
        for (Py_ssize_t k = 0; k < K; k++) \
            zr[k] = zr[k] / total; \
    } \
}
DELTAPROP_SOFTMAX(float, deltaprop_softmaxf_rows, deltaprop_pow2f, -87.0)
DELTAPROP_SOFTMAX(double, deltaprop_softmax_rows, deltaprop_pow2, -708.0)

#endif  /* DELTAPROP_TANH_H */
