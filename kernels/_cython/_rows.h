/* Row loops of the Cython backend's per-sample kernels, in C so that the compiler vectorises them.

   Declared to Cython in rows.pxd (``cdef extern from "_rows.h"``), which wraps each float/double
   pair in one fused-type function. Every loop runs over contiguous rows of a weight matrix W
   (n_in, n_out); pointers marked restrict never overlap, so no run-time alias checks are needed.
   Reductions carry "omp simd reduction" pragmas (compiled with -fopenmp-simd: no OpenMP
   runtime), which let the compiler reorder their additions and nothing else.
   Included by Cython-generated C, after Python.h (Py_ssize_t). */
#ifndef DELTAPROP_ROWS_H
#define DELTAPROP_ROWS_H

#include <stdint.h>
#include <math.h>
#include <string.h>

#include "_restrict.h"

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
#if !(defined(__AVX2__) && defined(__FMA__))  /* else in AVX2 vectors, below */
DELTAPROP_DOT_UPDATE4(float, deltaprop_dot_update4f)
DELTAPROP_DOT_UPDATE4(double, deltaprop_dot_update4)
#endif

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

/* out[r] = x . y_r for r < k, 1 <= k <= 6: x read once for the k sums (a row of the Gram
   matrix of a window of samples), each sum in its own vector accumulator. */
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define DELTAPROP_DOTS_BODY(T, VT, V, LOAD, FMADD, ZERO, HSUM, NAME) \
static inline __attribute__((always_inline)) void NAME##_k(Py_ssize_t n, \
        const T* DELTAPROP_RESTRICT x, const T* const* ys, T* out, const int k) { \
    VT s0 = ZERO(), s1 = ZERO(), s2 = ZERO(), s3 = ZERO(), s4 = ZERO(), s5 = ZERO(); \
    const T* y0 = ys[0]; \
    const T* y1 = k > 1 ? ys[1] : y0; \
    const T* y2 = k > 2 ? ys[2] : y0; \
    const T* y3 = k > 3 ? ys[3] : y0; \
    const T* y4 = k > 4 ? ys[4] : y0; \
    const T* y5 = k > 5 ? ys[5] : y0; \
    Py_ssize_t j = 0; \
    for (; j + V <= n; j += V) { \
        VT xj = LOAD(x + j); \
        s0 = FMADD(xj, LOAD(y0 + j), s0); \
        if (k > 1) s1 = FMADD(xj, LOAD(y1 + j), s1); \
        if (k > 2) s2 = FMADD(xj, LOAD(y2 + j), s2); \
        if (k > 3) s3 = FMADD(xj, LOAD(y3 + j), s3); \
        if (k > 4) s4 = FMADD(xj, LOAD(y4 + j), s4); \
        if (k > 5) s5 = FMADD(xj, LOAD(y5 + j), s5); \
    } \
    VT acc[6] = {s0, s1, s2, s3, s4, s5}; \
    for (int r = 0; r < k; r++) { \
        T t = HSUM(acc[r]); \
        for (Py_ssize_t i = j; i < n; i++) t += x[i] * ys[r][i]; \
        out[r] = t; \
    } \
} \
static inline void NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT x, const T* const* ys, int k, \
                        T* out) { \
    switch (k) { \
    case 1: NAME##_k(n, x, ys, out, 1); break; \
    case 2: NAME##_k(n, x, ys, out, 2); break; \
    case 3: NAME##_k(n, x, ys, out, 3); break; \
    case 4: NAME##_k(n, x, ys, out, 4); break; \
    case 5: NAME##_k(n, x, ys, out, 5); break; \
    default: NAME##_k(n, x, ys, out, 6); break; \
    } \
}
#endif
/* x . x in double, over four quarters of x at once: four vector accumulators, so a long sum
   (a layer's weights, the L2 penalty) runs at the adder's throughput instead of waiting on
   one accumulator's latency at every step. */
#define DELTAPROP_SUM_SQUARES(T, NAME) \
static inline double NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT x) { \
    Py_ssize_t q = n / 4; \
    const T* DELTAPROP_RESTRICT x1 = x + q; \
    const T* DELTAPROP_RESTRICT x2 = x + 2 * q; \
    const T* DELTAPROP_RESTRICT x3 = x + 3 * q; \
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0; \
    _Pragma("omp simd reduction(+:s0,s1,s2,s3)") \
    for (Py_ssize_t j = 0; j < q; j++) { \
        s0 += x[j] * x[j]; s1 += x1[j] * x1[j]; s2 += x2[j] * x2[j]; s3 += x3[j] * x3[j]; \
    } \
    for (Py_ssize_t j = 4 * q; j < n; j++) s0 += x[j] * x[j]; \
    return ((double)s0 + (double)s1) + ((double)s2 + (double)s3); \
}
DELTAPROP_SUM_SQUARES(float, deltaprop_sum_squaresf)
DELTAPROP_SUM_SQUARES(double, deltaprop_sum_squares)

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
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* The sums of four vectors' lanes, [sum s0, sum s1, sum s2, sum s3], with three horizontal adds
   and one add (rather than "omp simd reduction", which sums each accumulator's lanes one at a
   time through memory). */
static inline __m128 deltaprop_hsum4f(__m256 s0, __m256 s1, __m256 s2, __m256 s3) {
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

static inline __m256d deltaprop_hsum4(__m256d s0, __m256d s1, __m256d s2, __m256d s3) {
    __m256d t01 = _mm256_hadd_pd(s0, s1), t23 = _mm256_hadd_pd(s2, s3);
    return _mm256_add_pd(_mm256_permute2f128_pd(t01, t23, 0x20),
                         _mm256_permute2f128_pd(t01, t23, 0x31));
}

static inline float deltaprop_hsumf(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

static inline double deltaprop_hsum(__m256d v) {
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

/* DELTAPROP_DOT_UPDATE4 (decay 0) and DELTAPROP_DOT_DECAY4 (decay 1, rows scaled by rd and
   out[4] = their squared norm) in AVX2 vectors of V lanes: the sums in vector accumulators,
   reduced once at the end, the last n % V columns in scalar ones. The two are NAME with decay
   a constant, which the compiler folds. */
#define DELTAPROP_DOT4_AVX2(T, VT, V, SET1, LOAD, STORE, FMADD, FNMADD, MUL, ADD, ZERO, HSUM, \
                            HSUM4_STORE, NAME) \
static inline void NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT d, \
        T* DELTAPROP_RESTRICT r0, T* DELTAPROP_RESTRICT r1, T* DELTAPROP_RESTRICT r2, \
        T* DELTAPROP_RESTRICT r3, T c0, T c1, T c2, T c3, T rd, T* DELTAPROP_RESTRICT out, \
        const int decay) { \
    VT s0 = ZERO(), s1 = ZERO(), s2 = ZERO(), s3 = ZERO(), q = ZERO(); \
    VT k0 = SET1(c0), k1 = SET1(c1), k2 = SET1(c2), k3 = SET1(c3), kd = SET1(rd); \
    Py_ssize_t j = 0; \
    for (; j + V <= n; j += V) { \
        VT dj = LOAD(d + j), w0 = LOAD(r0 + j), w1 = LOAD(r1 + j), w2 = LOAD(r2 + j), w3 = LOAD(r3 + j); \
        s0 = FMADD(w0, dj, s0); s1 = FMADD(w1, dj, s1); s2 = FMADD(w2, dj, s2); s3 = FMADD(w3, dj, s3); \
        if (decay) { \
            q = ADD(q, ADD(FMADD(w0, w0, MUL(w1, w1)), FMADD(w2, w2, MUL(w3, w3)))); \
            w0 = MUL(kd, w0); w1 = MUL(kd, w1); w2 = MUL(kd, w2); w3 = MUL(kd, w3); \
        } \
        STORE(r0 + j, FNMADD(k0, dj, w0)); STORE(r1 + j, FNMADD(k1, dj, w1)); \
        STORE(r2 + j, FNMADD(k2, dj, w2)); STORE(r3 + j, FNMADD(k3, dj, w3)); \
    } \
    T t0 = 0, t1 = 0, t2 = 0, t3 = 0, tq = 0; \
    for (; j < n; j++) { \
        T dj = d[j], w0 = r0[j], w1 = r1[j], w2 = r2[j], w3 = r3[j]; \
        t0 += w0 * dj; t1 += w1 * dj; t2 += w2 * dj; t3 += w3 * dj; \
        if (decay) { \
            tq += (w0 * w0 + w1 * w1) + (w2 * w2 + w3 * w3); \
            w0 = rd * w0; w1 = rd * w1; w2 = rd * w2; w3 = rd * w3; \
        } \
        r0[j] = w0 - c0 * dj; r1[j] = w1 - c1 * dj; r2[j] = w2 - c2 * dj; r3[j] = w3 - c3 * dj; \
    } \
    HSUM4_STORE; \
    out[0] += t0; out[1] += t1; out[2] += t2; out[3] += t3; \
    if (decay) out[4] = HSUM(q) + tq; \
}
DELTAPROP_DOT4_AVX2(float, __m256, 8, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps,
                    _mm256_fmadd_ps, _mm256_fnmadd_ps, _mm256_mul_ps, _mm256_add_ps,
                    _mm256_setzero_ps, deltaprop_hsumf,
                    _mm_storeu_ps(out, deltaprop_hsum4f(s0, s1, s2, s3)), deltaprop_dot4f_avx2)
DELTAPROP_DOT4_AVX2(double, __m256d, 4, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd,
                    _mm256_fmadd_pd, _mm256_fnmadd_pd, _mm256_mul_pd, _mm256_add_pd,
                    _mm256_setzero_pd, deltaprop_hsum,
                    _mm256_storeu_pd(out, deltaprop_hsum4(s0, s1, s2, s3)), deltaprop_dot4_avx2)

#define DELTAPROP_DOT4_AVX2_NAMES(T, DOT4, UPDATE4, DECAY4) \
static inline void UPDATE4(Py_ssize_t n, const T* DELTAPROP_RESTRICT d, \
        T* DELTAPROP_RESTRICT r0, T* DELTAPROP_RESTRICT r1, T* DELTAPROP_RESTRICT r2, \
        T* DELTAPROP_RESTRICT r3, T c0, T c1, T c2, T c3, T* DELTAPROP_RESTRICT out) { \
    DOT4(n, d, r0, r1, r2, r3, c0, c1, c2, c3, 1, out, 0); \
} \
static inline void DECAY4(Py_ssize_t n, const T* DELTAPROP_RESTRICT d, \
        T* DELTAPROP_RESTRICT r0, T* DELTAPROP_RESTRICT r1, T* DELTAPROP_RESTRICT r2, \
        T* DELTAPROP_RESTRICT r3, T c0, T c1, T c2, T c3, T rd, T* DELTAPROP_RESTRICT out) { \
    DOT4(n, d, r0, r1, r2, r3, c0, c1, c2, c3, rd, out, 1); \
}
DELTAPROP_DOT4_AVX2_NAMES(float, deltaprop_dot4f_avx2, deltaprop_dot_update4f, deltaprop_dot_decay4f)
DELTAPROP_DOT4_AVX2_NAMES(double, deltaprop_dot4_avx2, deltaprop_dot_update4, deltaprop_dot_decay4)
#else
DELTAPROP_DOT_DECAY4(float, deltaprop_dot_decay4f)
DELTAPROP_DOT_DECAY4(double, deltaprop_dot_decay4)
#endif

#if defined(__AVX2__) && defined(__FMA__)
DELTAPROP_DOTS_BODY(float, __m256, 8, _mm256_loadu_ps, _mm256_fmadd_ps, _mm256_setzero_ps,
                   deltaprop_hsumf, deltaprop_dotsf)
DELTAPROP_DOTS_BODY(double, __m256d, 4, _mm256_loadu_pd, _mm256_fmadd_pd, _mm256_setzero_pd,
                    deltaprop_hsum, deltaprop_dots)
#else
#define DELTAPROP_DOTS(T, NAME) \
static inline void NAME(Py_ssize_t n, const T* DELTAPROP_RESTRICT x, const T* const* ys, int k, \
                        T* out) { \
    for (int r = 0; r < k; r++) { \
        const T* DELTAPROP_RESTRICT y = ys[r]; \
        T s = 0; \
        _Pragma("omp simd reduction(+:s)") \
        for (Py_ssize_t j = 0; j < n; j++) s += x[j] * y[j]; \
        out[r] = s; \
    } \
}
DELTAPROP_DOTS(float, deltaprop_dotsf)
DELTAPROP_DOTS(double, deltaprop_dots)
#endif

/* The updates of a window of k samples (1 <= k <= 6) in one pass over W (n_in, n_out):
   w_ij <- q w_ij - sum_r (eta_r x_r[i]) d_rj, the old w_ij scaled by q (1 leaves it exact),
   then r = 0, 1, ... in turn with one rounding each (with q = 1 and every eta_r the same, each
   element ends as k sample-by-sample updates would leave it); xs[r] is sample r's row of
   inputs, D (k, n_out) its deltas, c scratch for k n_in values (the eta_r x_r[i]). Two vectors
   of columns at a time: their k deltas stay in registers while the pass goes down the rows. */
#if defined(__AVX2__) && defined(__FMA__)
#define DELTAPROP_WINDOW_UPDATE(T, VT, V, LOAD, STORE, SET1, BCAST, FNMADD, MUL, NAME) \
static inline __attribute__((always_inline)) void NAME##_k(Py_ssize_t n_in, Py_ssize_t n_out, \
        T* DELTAPROP_RESTRICT W, const T* DELTAPROP_RESTRICT c, const T* DELTAPROP_RESTRICT D, \
        T q, const int k, const int scaled) { \
    Py_ssize_t j = 0; \
    VT qv = SET1(q); \
    for (; j + 2 * V <= n_out; j += 2 * V) { \
        VT d0[6], d1[6]; \
        for (int r = 0; r < k; r++) { \
            d0[r] = LOAD(D + r * n_out + j); d1[r] = LOAD(D + r * n_out + j + V); \
        } \
        T* DELTAPROP_RESTRICT w = W + j; \
        for (Py_ssize_t i = 0; i < n_in; i++, w += n_out) { \
            VT w0 = LOAD(w), w1 = LOAD(w + V); \
            if (scaled) { w0 = MUL(qv, w0); w1 = MUL(qv, w1); } \
            for (int r = 0; r < k; r++) { \
                VT b = BCAST(c + r * n_in + i); \
                w0 = FNMADD(b, d0[r], w0); w1 = FNMADD(b, d1[r], w1); \
            } \
            STORE(w, w0); STORE(w + V, w1); \
        } \
    } \
    for (; j + V <= n_out; j += V) { \
        VT d0[6]; \
        for (int r = 0; r < k; r++) d0[r] = LOAD(D + r * n_out + j); \
        T* DELTAPROP_RESTRICT w = W + j; \
        for (Py_ssize_t i = 0; i < n_in; i++, w += n_out) { \
            VT w0 = LOAD(w); \
            if (scaled) w0 = MUL(qv, w0); \
            for (int r = 0; r < k; r++) w0 = FNMADD(BCAST(c + r * n_in + i), d0[r], w0); \
            STORE(w, w0); \
        } \
    } \
    for (; j < n_out; j++) \
        for (Py_ssize_t i = 0; i < n_in; i++) { \
            T w0 = W[i * n_out + j]; \
            if (scaled) w0 = q * w0; \
            for (int r = 0; r < k; r++) w0 = fma(-c[r * n_in + i], D[r * n_out + j], w0); \
            W[i * n_out + j] = w0; \
        } \
} \
static inline __attribute__((always_inline)) void NAME##_s(Py_ssize_t n_in, Py_ssize_t n_out, \
        T* DELTAPROP_RESTRICT W, const T* DELTAPROP_RESTRICT c, const T* DELTAPROP_RESTRICT D, \
        T q, int k, const int scaled) { \
    switch (k) { \
    case 1: NAME##_k(n_in, n_out, W, c, D, q, 1, scaled); break; \
    case 2: NAME##_k(n_in, n_out, W, c, D, q, 2, scaled); break; \
    case 3: NAME##_k(n_in, n_out, W, c, D, q, 3, scaled); break; \
    case 4: NAME##_k(n_in, n_out, W, c, D, q, 4, scaled); break; \
    case 5: NAME##_k(n_in, n_out, W, c, D, q, 5, scaled); break; \
    default: NAME##_k(n_in, n_out, W, c, D, q, 6, scaled); break; \
    } \
} \
static inline void NAME(Py_ssize_t n_in, Py_ssize_t n_out, T* DELTAPROP_RESTRICT W, \
        const T* const* xs, const T* DELTAPROP_RESTRICT D, const T* etas, T q, int k, \
        T* DELTAPROP_RESTRICT c) { \
    for (int r = 0; r < k; r++) \
        for (Py_ssize_t i = 0; i < n_in; i++) c[r * n_in + i] = etas[r] * xs[r][i]; \
    if (q == (T)1) NAME##_s(n_in, n_out, W, c, D, q, k, 0); \
    else NAME##_s(n_in, n_out, W, c, D, q, k, 1); \
}
DELTAPROP_WINDOW_UPDATE(float, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps,
                        _mm256_broadcast_ss, _mm256_fnmadd_ps, _mm256_mul_ps,
                        deltaprop_window_updatef)
DELTAPROP_WINDOW_UPDATE(double, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_set1_pd,
                        _mm256_broadcast_sd, _mm256_fnmadd_pd, _mm256_mul_pd,
                        deltaprop_window_update)
#else
#define DELTAPROP_WINDOW_UPDATE(T, NAME) \
static inline void NAME(Py_ssize_t n_in, Py_ssize_t n_out, T* DELTAPROP_RESTRICT W, \
        const T* const* xs, const T* DELTAPROP_RESTRICT D, const T* etas, T q, int k, \
        T* DELTAPROP_RESTRICT c) { \
    (void)c; \
    for (Py_ssize_t i = 0; i < n_in; i++) { \
        T* DELTAPROP_RESTRICT r0 = W + i * n_out; \
        if (q != (T)1) \
            for (Py_ssize_t j = 0; j < n_out; j++) r0[j] = q * r0[j]; \
        for (int r = 0; r < k; r++) { \
            T cr = etas[r] * xs[r][i]; \
            const T* DELTAPROP_RESTRICT d = D + r * n_out; \
            for (Py_ssize_t j = 0; j < n_out; j++) r0[j] -= cr * d[j]; \
        } \
    } \
}
DELTAPROP_WINDOW_UPDATE(float, deltaprop_window_updatef)
DELTAPROP_WINDOW_UPDATE(double, deltaprop_window_update)
#endif

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

#endif  /* DELTAPROP_ROWS_H */
