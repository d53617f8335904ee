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


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* 2^k for an integer-valued k of the normal range, from its bits: unlike ldexp it vectorises. */
    static inline float deltaprop_pow2f(float k) {
        union { float f; int32_t i; } u; u.i = ((int32_t)k + 127) << 23; return u.f;
    }
    static inline double deltaprop_pow2(double k) {
        union { double f; int64_t i; } u; u.i = ((int64_t)k + 1023) << 52; return u.f;
    }
    """
    float deltaprop_pow2f(float k) noexcept nogil
    double deltaprop_pow2(double k) noexcept nogil

cdef extern from *:
    """
    #if defined(_MSC_VER)
    #define DELTAPROP_RESTRICT __restrict
    #else
    #define DELTAPROP_RESTRICT __restrict__
    #endif
    /* Four rows of W_0 updated with this sample's delta, then summed into the next sample's
       pre-activations a (one load and store of a per four rows). The rows, delta and a never
       overlap: restrict lets the compiler vectorise without run-time alias checks. */
    #define DELTAPROP_ROWS4(T, NAME) \
    static inline void NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT d, \
            T* DELTAPROP_RESTRICT r0, T* DELTAPROP_RESTRICT r1, T* DELTAPROP_RESTRICT r2, \
            T* DELTAPROP_RESTRICT r3, T c0, T c1, T c2, T c3, T y0, T y1, T y2, T y3, \
            T* DELTAPROP_RESTRICT a) { \
        for (Py_ssize_t j = 0; j < n; j++) { \
            T dj = d[j]; \
            T w0 = r0[j] - c0 * dj, w1 = r1[j] - c1 * dj, w2 = r2[j] - c2 * dj, w3 = r3[j] - c3 * dj; \
            r0[j] = w0; r1[j] = w1; r2[j] = w2; r3[j] = w3; \
            a[j] = (((a[j] + y0 * w0) + y1 * w1) + y2 * w2) + y3 * w3; \
        } \
    }
    DELTAPROP_ROWS4(float, deltaprop_rows4f)
    DELTAPROP_ROWS4(double, deltaprop_rows4)

    /* a += z0 r0 + z1 r1 + z2 r2 + z3 r3, added in that order (the forward sum, four rows). */
    #define DELTAPROP_SUM4(T, NAME) \
    static inline void NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT r0, \
            const T* DELTAPROP_RESTRICT r1, const T* DELTAPROP_RESTRICT r2, \
            const T* DELTAPROP_RESTRICT r3, T z0, T z1, T z2, T z3, T* DELTAPROP_RESTRICT a) { \
        for (Py_ssize_t j = 0; j < n; j++) \
            a[j] = (((a[j] + z0 * r0[j]) + z1 * r1[j]) + z2 * r2[j]) + z3 * r3[j]; \
    }
    DELTAPROP_SUM4(float, deltaprop_sum4f)
    DELTAPROP_SUM4(double, deltaprop_sum4)

    /* Layer l >= 1 of one sample, four rows in one pass: s_k = r_k . d with the old row, then
       r_k -= c_k d. The four dot products are reductions: "omp simd" (-fopenmp-simd, no
       OpenMP runtime) lets the compiler vectorise them by reordering their additions only. */
    #define DELTAPROP_DOT_UPDATE4(T, NAME) \
    static inline void NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT d, \
            T* DELTAPROP_RESTRICT r0, T* DELTAPROP_RESTRICT r1, T* DELTAPROP_RESTRICT r2, \
            T* DELTAPROP_RESTRICT r3, T c0, T c1, T c2, T c3, T* DELTAPROP_RESTRICT out) { \
        T s0 = 0, s1 = 0, s2 = 0, s3 = 0; \
        _Pragma("omp simd reduction(+:s0,s1,s2,s3)") \
        for (Py_ssize_t j = 0; j < n; j++) { \
            T dj = d[j], w0 = r0[j], w1 = r1[j], w2 = r2[j], w3 = r3[j]; \
            s0 += w0 * dj; s1 += w1 * dj; s2 += w2 * dj; s3 += w3 * dj; \
            r0[j] = w0 - c0 * dj; r1[j] = w1 - c1 * dj; r2[j] = w2 - c2 * dj; r3[j] = w3 - c3 * dj; \
        } \
        out[0] = s0; out[1] = s1; out[2] = s2; out[3] = s3; \
    }
    DELTAPROP_DOT_UPDATE4(float, deltaprop_dot_update4f)
    DELTAPROP_DOT_UPDATE4(double, deltaprop_dot_update4)

    /* One row: return r . d with the old row, then r -= c d. */
    #define DELTAPROP_DOT_UPDATE1(T, NAME) \
    static inline T NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT d, T* DELTAPROP_RESTRICT r, T c) { \
        T s = 0; \
        _Pragma("omp simd reduction(+:s)") \
        for (Py_ssize_t j = 0; j < n; j++) { T dj = d[j], wj = r[j]; s += wj * dj; r[j] = wj - c * dj; } \
        return s; \
    }
    DELTAPROP_DOT_UPDATE1(float, deltaprop_dot_update1f)
    DELTAPROP_DOT_UPDATE1(double, deltaprop_dot_update1)

    /* r . d, vectorised by reordering the additions (omp simd reduction). */
    #define DELTAPROP_DOT(T, NAME) \
    static inline T NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT x, const T* DELTAPROP_RESTRICT y) { \
        T s = 0; \
        _Pragma("omp simd reduction(+:s)") \
        for (Py_ssize_t j = 0; j < n; j++) s += x[j] * y[j]; \
        return s; \
    }
    DELTAPROP_DOT(float, deltaprop_dotf)
    DELTAPROP_DOT(double, deltaprop_dot)

    /* Layer l >= 1 with L2 decay, four rows in one pass: out[k] = r_k . d and out[4] =
       sum_k r_k . r_k with the old rows, then r_k = rd r_k - c_k d. */
    #define DELTAPROP_DOT_DECAY4(T, NAME) \
    static inline void NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT d, \
            T* DELTAPROP_RESTRICT r0, T* DELTAPROP_RESTRICT r1, T* DELTAPROP_RESTRICT r2, \
            T* DELTAPROP_RESTRICT r3, T c0, T c1, T c2, T c3, T rd, T* DELTAPROP_RESTRICT out) { \
        T s0 = 0, s1 = 0, s2 = 0, s3 = 0, q = 0; \
        _Pragma("omp simd reduction(+:s0,s1,s2,s3,q)") \
        for (Py_ssize_t j = 0; j < n; j++) { \
            T dj = d[j], w0 = r0[j], w1 = r1[j], w2 = r2[j], w3 = r3[j]; \
            s0 += w0 * dj; s1 += w1 * dj; s2 += w2 * dj; s3 += w3 * dj; \
            q += (w0 * w0 + w1 * w1) + (w2 * w2 + w3 * w3); \
            r0[j] = rd * w0 - c0 * dj; r1[j] = rd * w1 - c1 * dj; \
            r2[j] = rd * w2 - c2 * dj; r3[j] = rd * w3 - c3 * dj; \
        } \
        out[0] = s0; out[1] = s1; out[2] = s2; out[3] = s3; out[4] = q; \
    }
    DELTAPROP_DOT_DECAY4(float, deltaprop_dot_decay4f)
    DELTAPROP_DOT_DECAY4(double, deltaprop_dot_decay4)

    /* One row with L2 decay: out[0] = r . d, out[1] = r . r (old row), then r = rd r - c d. */
    #define DELTAPROP_DOT_DECAY1(T, NAME) \
    static inline void NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT d, T* DELTAPROP_RESTRICT r, \
            T c, T rd, T* DELTAPROP_RESTRICT out) { \
        T s = 0, q = 0; \
        _Pragma("omp simd reduction(+:s,q)") \
        for (Py_ssize_t j = 0; j < n; j++) { \
            T dj = d[j], wj = r[j]; s += wj * dj; q += wj * wj; r[j] = rd * wj - c * dj; \
        } \
        out[0] = s; out[1] = q; \
    }
    DELTAPROP_DOT_DECAY1(float, deltaprop_dot_decay1f)
    DELTAPROP_DOT_DECAY1(double, deltaprop_dot_decay1)

    /* x *= c (if c != 1); return x . x after (the squared norm of the scaled rows). */
    #define DELTAPROP_SCALE_NORM(T, NAME) \
    static inline double NAME(Py_ssize_t n, T* DELTAPROP_RESTRICT x, T c) { \
        T q = 0; \
        if (c != (T)1) \
            for (Py_ssize_t j = 0; j < n; j++) x[j] = c * x[j]; \
        _Pragma("omp simd reduction(+:q)") \
        for (Py_ssize_t j = 0; j < n; j++) q += x[j] * x[j]; \
        return q; \
    }
    DELTAPROP_SCALE_NORM(float, deltaprop_scale_normf)
    DELTAPROP_SCALE_NORM(double, deltaprop_scale_norm)

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
    #define DELTAPROP_TANH(T, NAME, POW2) \
    DELTAPROP_SELECTS_VECTORISE \
    static void NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT a, T* DELTAPROP_RESTRICT z) { \
        const T p0 = (T)-9.64399179425052238628e-1, p1 = (T)-9.92877231001918586564e1; \
        const T p2 = (T)-1.61468768441708447952e3; \
        const T q0 = (T)1.12811678491632931402e2, q1 = (T)2.23548839060100448583e3; \
        const T q2 = (T)4.84406305325125486048e3; \
        const T e0 = (T)1.26177193074810590878e-4, e1 = (T)3.02994407707441961300e-2; \
        const T e2 = (T)9.99999999999999999910e-1; \
        const T d0 = (T)3.00198505138664455042e-6, d1 = (T)2.52448340349684104192e-3; \
        const T d2 = (T)2.27265548208155028766e-1, d3 = (T)2.00000000000000000009e0; \
        const T log2e = (T)1.4426950408889634073599, c1 = (T)6.93145751953125e-1; \
        const T c2 = (T)1.42860682030941723212e-6; \
        for (Py_ssize_t j = 0; j < n; j++) { \
            T x = a[j]; \
            T mx = -x; \
            T ax = x < (T)0 ? mx : x; \
            T s = x * x; \
            T t = (T)2 * (ax > (T)22 ? (T)22 : ax); \
            T kf = t * log2e + (T)0.5; \
            kf = kf == kf ? kf : (T)0;          /* NaN: any k, the result stays NaN */ \
            T k = (T)(int)kf;                   /* t >= 0: truncation is floor */ \
            T r = t - k * c1 - k * c2; \
            T rr = r * r; \
            T pr = r * ((e0 * rr + e1) * rr + e2); \
            T dq = ((d0 * rr + d1) * rr + d2) * rr + d3; \
            int small = ax < (T)0.625; \
            T num_s = x * s * ((p0 * s + p1) * s + p2); \
            T den_s = ((s + q0) * s + q1) * s + q2; \
            T num_l = (T)2 * (dq - pr);         /* 2 / (e^t + 1), e^t = 2^k (dq + pr) / (dq - pr) */ \
            T den_l = POW2(k) * (dq + pr) + (dq - pr); \
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

    /* Indices i with x[i] != 0 or x2[i] != 0 (x2 may be NULL) into active; return how many.
       Tested on the bits ((bits << 1) != 0: -0.0 counts as zero, NaN as non-zero, as with
       x != 0) with no branch: zeros in images are unpredictable, and a float compare costs
       more than an integer one. */
    #define DELTAPROP_NONZERO(T, U, NAME) \
    static inline Py_ssize_t NAME(Py_ssize_t n, const T* x, const T* x2, Py_ssize_t* active) { \
        Py_ssize_t na = 0; \
        U a, b; \
        if (x2 == NULL) { \
            for (Py_ssize_t i = 0; i < n; i++) { \
                memcpy(&a, x + i, sizeof(U)); \
                active[na] = i; na += (U)(a << 1) != 0; \
            } \
        } else { \
            for (Py_ssize_t i = 0; i < n; i++) { \
                memcpy(&a, x + i, sizeof(U)); memcpy(&b, x2 + i, sizeof(U)); \
                active[na] = i; na += (U)((a | b) << 1) != 0; \
            } \
        } \
        return na; \
    }
    DELTAPROP_NONZERO(float, uint32_t, deltaprop_nonzerof)
    DELTAPROP_NONZERO(double, uint64_t, deltaprop_nonzero)
    """
    void deltaprop_rows4f(Py_ssize_t n, const float* d, float* r0, float* r1, float* r2, float* r3,
                          float c0, float c1, float c2, float c3, float y0, float y1, float y2,
                          float y3, float* a) noexcept nogil
    void deltaprop_rows4(Py_ssize_t n, const double* d, double* r0, double* r1, double* r2,
                         double* r3, double c0, double c1, double c2, double c3, double y0,
                         double y1, double y2, double y3, double* a) noexcept nogil

    void deltaprop_sum4f(Py_ssize_t n, const float* r0, const float* r1, const float* r2,
                         const float* r3, float z0, float z1, float z2, float z3,
                         float* a) noexcept nogil
    void deltaprop_sum4(Py_ssize_t n, const double* r0, const double* r1, const double* r2,
                        const double* r3, double z0, double z1, double z2, double z3,
                        double* a) noexcept nogil
    void deltaprop_dot_update4f(Py_ssize_t n, const float* d, float* r0, float* r1, float* r2,
                                float* r3, float c0, float c1, float c2, float c3,
                                float* out) noexcept nogil
    void deltaprop_dot_update4(Py_ssize_t n, const double* d, double* r0, double* r1,
                               double* r2, double* r3, double c0, double c1, double c2,
                               double c3, double* out) noexcept nogil
    float deltaprop_dot_update1f(Py_ssize_t n, const float* d, float* r, float c) noexcept nogil
    double deltaprop_dot_update1(Py_ssize_t n, const double* d, double* r, double c) noexcept nogil
    float deltaprop_dotf(Py_ssize_t n, const float* x, const float* y) noexcept nogil
    double deltaprop_dot(Py_ssize_t n, const double* x, const double* y) noexcept nogil
    void deltaprop_dot_decay4f(Py_ssize_t n, const float* d, float* r0, float* r1, float* r2,
                               float* r3, float c0, float c1, float c2, float c3, float rd,
                               float* out) noexcept nogil
    void deltaprop_dot_decay4(Py_ssize_t n, const double* d, double* r0, double* r1, double* r2,
                              double* r3, double c0, double c1, double c2, double c3, double rd,
                              double* out) noexcept nogil
    void deltaprop_dot_decay1f(Py_ssize_t n, const float* d, float* r, float c, float rd,
                               float* out) noexcept nogil
    void deltaprop_dot_decay1(Py_ssize_t n, const double* d, double* r, double c, double rd,
                              double* out) noexcept nogil
    double deltaprop_scale_normf(Py_ssize_t n, float* x, float c) noexcept nogil
    double deltaprop_scale_norm(Py_ssize_t n, double* x, double c) noexcept nogil
    void deltaprop_tanhf(Py_ssize_t n, const float* a, float* z) noexcept nogil
    Py_ssize_t deltaprop_nonzerof(Py_ssize_t n, const float* x, const float* x2,
                                  Py_ssize_t* active) noexcept nogil
    Py_ssize_t deltaprop_nonzero(Py_ssize_t n, const double* x, const double* x2,
                                 Py_ssize_t* active) noexcept nogil
    void deltaprop_tanh(Py_ssize_t n, const double* a, double* z) noexcept nogil


cdef inline Py_ssize_t nonzero_rows(Py_ssize_t n, const floating* x, const floating* x2,
                                    Py_ssize_t* active) noexcept nogil:
    """Indices i with x[i] != 0 or x2[i] != 0 (x2 may be NULL) into ``active``; return how many."""
    if floating is float:
        return deltaprop_nonzerof(n, x, x2, active)
    else:
        return deltaprop_nonzero(n, x, x2, active)


cdef inline void sum4(Py_ssize_t n, const floating* r0, const floating* r1, const floating* r2,
                      const floating* r3, floating z0, floating z1, floating z2, floating z3,
                      floating* a) noexcept nogil:
    """a += z0 r0 + z1 r1 + z2 r2 + z3 r3 (in that order)."""
    if floating is float:
        deltaprop_sum4f(n, r0, r1, r2, r3, z0, z1, z2, z3, a)
    else:
        deltaprop_sum4(n, r0, r1, r2, r3, z0, z1, z2, z3, a)


cdef inline void dot_update4(Py_ssize_t n, const floating* d, floating* r0, floating* r1,
                             floating* r2, floating* r3, floating c0, floating c1, floating c2,
                             floating c3, floating* out) noexcept nogil:
    """out[k] = r_k . d (old rows), then r_k -= c_k d, for four rows in one pass."""
    if floating is float:
        deltaprop_dot_update4f(n, d, r0, r1, r2, r3, c0, c1, c2, c3, out)
    else:
        deltaprop_dot_update4(n, d, r0, r1, r2, r3, c0, c1, c2, c3, out)


cdef inline floating dot_update1(Py_ssize_t n, const floating* d, floating* r,
                                 floating c) noexcept nogil:
    """Return r . d (old row), then r -= c d."""
    if floating is float:
        return deltaprop_dot_update1f(n, d, r, c)
    else:
        return deltaprop_dot_update1(n, d, r, c)


cdef inline void rows4(Py_ssize_t n, const floating* d, floating* r0, floating* r1, floating* r2,
                       floating* r3, floating c0, floating c1, floating c2, floating c3,
                       floating y0, floating y1, floating y2, floating y3,
                       floating* a) noexcept nogil:
    r""":math:`r_k \mathrel{-}= c_k \delta` for four rows, then :math:`a \mathrel{+}= \sum_k y_k r_k` (in order)."""
    if floating is float:
        deltaprop_rows4f(n, d, r0, r1, r2, r3, c0, c1, c2, c3, y0, y1, y2, y3, a)
    else:
        deltaprop_rows4(n, d, r0, r1, r2, r3, c0, c1, c2, c3, y0, y1, y2, y3, a)


cdef inline void dot_decay4(Py_ssize_t n, const floating* d, floating* r0, floating* r1,
                            floating* r2, floating* r3, floating c0, floating c1, floating c2,
                            floating c3, floating rd, floating* out) noexcept nogil:
    """out[k] = r_k . d, out[4] = sum_k |r_k|^2 (old rows), then r_k = rd r_k - c_k d."""
    if floating is float:
        deltaprop_dot_decay4f(n, d, r0, r1, r2, r3, c0, c1, c2, c3, rd, out)
    else:
        deltaprop_dot_decay4(n, d, r0, r1, r2, r3, c0, c1, c2, c3, rd, out)


cdef inline void dot_decay1(Py_ssize_t n, const floating* d, floating* r, floating c, floating rd,
                            floating* out) noexcept nogil:
    """out[0] = r . d, out[1] = |r|^2 (old row), then r = rd r - c d."""
    if floating is float:
        deltaprop_dot_decay1f(n, d, r, c, rd, out)
    else:
        deltaprop_dot_decay1(n, d, r, c, rd, out)


cdef inline double scale_norm(Py_ssize_t n, floating* x, floating c) noexcept nogil:
    """x *= c (skipped when c == 1); return |x|^2 after."""
    if floating is float:
        return deltaprop_scale_normf(n, x, c)
    else:
        return deltaprop_scale_norm(n, x, c)


cdef inline floating pow2(floating k) noexcept nogil:
    if floating is float:
        return deltaprop_pow2f(k)
    else:
        return deltaprop_pow2(k)


cdef inline void tanh_units(Py_ssize_t n, const floating* a, floating* z) noexcept nogil:
    r""":math:`z = \tanh(a)` over ``n`` units by a formula the C compiler vectorises (libm's
    ``tanh`` is a call per unit, and cost as much as a batch's whole forward gemm).

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
        tanh_units(n, a, z)
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
    """x · y, vectorised (a dot product is otherwise bound by the latency of one add chain:
    ``omp simd reduction`` lets the compiler reorder the additions)."""
    if floating is float:
        return deltaprop_dotf(n, x, y)
    else:
        return deltaprop_dot(n, x, y)

cdef inline void dense(Py_ssize_t n_in, Py_ssize_t n_out, const floating* W, const floating* b,
                       const floating* z_in, floating* a) noexcept nogil:
    r""":math:`a_j = \sum_i w_{ji} z_i + w_{j0}` for one sample (5.48): rows of W scaled by
    :math:`z_i` and summed in order, four non-zero rows per sweep (zero inputs are skipped:
    exact), the bias added last."""
    cdef Py_ssize_t i, j, k, cnt = 0
    cdef Py_ssize_t idx[4]
    memset(a, 0, n_out * sizeof(floating))
    for i in range(n_in):
        idx[cnt] = i
        cnt += z_in[i] != 0
        if cnt == 4:
            sum4(n_out, W + idx[0] * n_out, W + idx[1] * n_out, W + idx[2] * n_out,
                 W + idx[3] * n_out, z_in[idx[0]], z_in[idx[1]], z_in[idx[2]], z_in[idx[3]], a)
            cnt = 0
    for k in range(cnt):
        axpy(n_out, z_in[idx[k]], W + idx[k] * n_out, a)
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
