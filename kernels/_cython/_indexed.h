/* The first layer's two large products of a mini-batch, reading the batch's rows of X where
   they are, through the visiting order idx (no gathered copy of the batch):

     forward    A = b + X[idx] W            (m, N)       W (K, N), row-major
     gradient   W = beta W + c X[idx]^T D   (K, N)       D (m, N), row-major

   in AVX2/FMA or AVX-512 register tiles (BLIS's loop order, the "micro-kernel" of Van Zee and
   van de Geijn, ACM TOMS 41(3), 2015); the forward can store relu(A) alone, the gradient can
   fold the bias's sum_r D[r] into its packing of D. The same tiles take the δ-backprop through
   a layer of few outputs, h' * (D W^T) (deltaprop_narrow_bt), which can leave its result
   packed as the gradient packs D, with its column sums (the first layer's deltas, read by the
   first layer's gradient alone: that product then packs and sums nothing). Only the SIMD builds of the kernels (``-mavx2 -mfma``,
   and the AVX-512 one) have them: ``DELTAPROP_INDEXED`` is 1 there and 0 in the portable build,
   whose batch kernels gather the rows and call BLAS instead (its functions here are never
   called).

   Tiles: MR = 6 rows by NR = two vectors of columns (16 floats, 8 doubles): twelve vector
   accumulators, two vector loads and six broadcasts per step of the sum; a last panel of at
   most one vector of columns takes a tile of one vector (half the work), and in the AVX-512
   build one of at most half a vector a tile of 256-bit vectors (Zen 4 executes a 512-bit FMA
   as two 256-bit halves: a quarter of the work); a last block of fewer than MR rows sums 2 or
   4 of them, not 6 (the full tiles only). The forward product packs W, KC rows by NC
   columns at a time, into panels of NR columns (zeros past N) in the caller's buffer of
   DELTAPROP_PANEL_BYTES; each tile broadcasts from six rows of X. The gradient product takes
   the batch a block of rows at a time (DP_D_BYTES of D: in the AVX2 build about the L1 cache,
   64 rows of 128 floats; in the AVX-512 build the whole buffer), packs the block's rows of D
   into panels of NR columns in the same buffer, and passes every tile of W over them,
   broadcasting six columns of X's rows; each tile of W is read and written once per block.

   The float and double versions are _indexed_body.h, included twice with the type's
   intrinsics. Included by Cython-generated C, after Python.h (Py_ssize_t). */
#ifndef DELTAPROP_INDEXED_H
#define DELTAPROP_INDEXED_H

/* the packed panels of W: at most this many bytes (fits in a 1 MB L2 beside the rows of X) */
#define DELTAPROP_PANEL_BYTES (256 * 1024)

/* Where the products above replace gather + BLAS: batches of at most INDEXED_MAX_ROWS rows
   (the gradient reads and writes each tile of W once per block of rows: a long batch pays
   that more often than the gather it saves) and a first layer of at most INDEXED_MAX_W_BYTES
   (so that W stays in a 1 MB L2 cache while the blocks pass; larger, the gradient's passes
   over W go to L3 and BLAS's packed products are faster). */
#define DELTAPROP_INDEXED_MAX_ROWS 512
/* ... and, for batches of fewer than INDEXED_SHORT rows, a first layer of at least
   INDEXED_MIN_INPUTS inputs: a short batch of short rows has little gather to save, and BLAS's
   kernels for small products lose less at the tiles' edges */
#define DELTAPROP_INDEXED_SHORT 128
#define DELTAPROP_INDEXED_MIN_INPUTS 384
#define DELTAPROP_INDEXED_MAX_W_BYTES (1024 * 1024)

/* The δ-backprop through a narrow layer (deltaprop_narrow_bt): at most this many outputs, the
   length of each sum, where BLAS's kernels, blocked for long sums, run far below the peak;
   the derivative h' it applies as it stores: */
#define DELTAPROP_NARROW_MAX_OUT 32
/* ... for batches of at least this many rows (fewer do not pay for packing W's transpose) */
#define DELTAPROP_NARROW_MIN_ROWS 32
#define DELTAPROP_DERIV_ONE 0       /* identity */
#define DELTAPROP_DERIV_RELU 1      /* [a > 0], read as [z > 0] */
#define DELTAPROP_DERIV_TANH 2      /* 1 - z^2 */
#define DELTAPROP_DERIV_LOGISTIC 3  /* z (1 - z) */

#include "_restrict.h"

/* Ask the caches for rows idx[0..n) of a table of rows of row_bytes bytes (into L2: the next
   batch's rows, fetched while this batch computes). */
static inline void deltaprop_prefetch_rows(const void* base, const Py_ssize_t* idx, Py_ssize_t n,
                                           Py_ssize_t row_bytes) {
#if defined(__GNUC__) || defined(__clang__)
    for (Py_ssize_t r = 0; r < n; r++) {
        const char* p = (const char*)base + idx[r] * row_bytes;
        for (Py_ssize_t o = 0; o < row_bytes; o += 64)
            __builtin_prefetch(p + o, 0, 2);
        __builtin_prefetch(p + row_bytes - 1, 0, 2);
    }
#else
    (void)base; (void)idx; (void)n; (void)row_bytes;
#endif
}

/* Rows of a table still to ask the caches for, a few at a time as a long product runs (the
   next batch's inputs, during this batch's forward product): deltaprop_prefetch_some. */
typedef struct {
    const void* base;        /* the table */
    const Py_ssize_t* idx;   /* the rows still to fetch, n of them */
    Py_ssize_t n;
    Py_ssize_t row_bytes;
} deltaprop_prefetch;

/* Ask for the next `rows` rows of p (fewer if fewer are left); p may be NULL. */
static inline void deltaprop_prefetch_some(deltaprop_prefetch* p, Py_ssize_t rows) {
    if (p == NULL || p->n <= 0) return;
    Py_ssize_t k = rows < p->n ? rows : p->n;
    deltaprop_prefetch_rows(p->base, p->idx, k, p->row_bytes);
    p->idx += k;
    p->n -= k;
}

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#define DELTAPROP_INDEXED 1
#if defined(__GNUC__) || defined(__clang__)
#define DP_ALWAYS_INLINE __attribute__((always_inline))
#else
#define DP_ALWAYS_INLINE
#endif
#define DP_MR 6
#define DP_KC 384          /* at most this many rows of W per packed block */
#define DP_PACK_ROWS 64    /* the forward product packs W for batches of this many rows or more */

#if defined(__AVX512F__)  /* the AVX-512 build: tiles of 6 rows by 32 floats or 16 doubles */
#define DP_NR_BYTES 128
/* the gradient's rows of D per block: as many as the buffer holds (one block for a batch of
   200 x 128 floats): with 512-bit tiles, fewer passes over W gain more than keeping D in L1 */
#define DP_D_BYTES DELTAPROP_PANEL_BYTES
#define DP_T float
#define DP_VT __m512
#define DP_VL 16
#define DP_FN(name) deltaprop_##name##f
#define DP_LOAD _mm512_loadu_ps
#define DP_STORE _mm512_storeu_ps
#define DP_BCAST(p) _mm512_set1_ps(*(p))
#define DP_SET1 _mm512_set1_ps
#define DP_FMADD _mm512_fmadd_ps
#define DP_MUL _mm512_mul_ps
#define DP_ADD _mm512_add_ps
#define DP_MAX _mm512_max_ps
#define DP_SUB _mm512_sub_ps
#define DP_STEP01(a) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ), _mm512_set1_ps(1.0f))
#define DP_ZERO _mm512_setzero_ps
#define DP_MASKT __mmask16
#define DP_MASKLOAD(p, m) _mm512_maskz_loadu_ps(m, p)
#define DP_MASKSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define DP_MASK(n) ((__mmask16)((n) <= 0 ? 0u : (n) >= 16 ? 0xFFFFu : (1u << (n)) - 1u))
/* half vectors (256 bits), for a last panel of at most half a vector of columns */
#define DP_HVT __m256
#define DP_HVL 8
#define DP_HLOAD _mm256_loadu_ps
#define DP_HBCAST _mm256_broadcast_ss
#define DP_HSET1 _mm256_set1_ps
#define DP_HFMADD _mm256_fmadd_ps
#define DP_HMUL _mm256_mul_ps
#define DP_HADD _mm256_add_ps
#define DP_HMAX _mm256_max_ps
#define DP_HZERO _mm256_setzero_ps
#define DP_HMASKLOAD(p, m) _mm256_maskz_loadu_ps(m, p)
#define DP_HMASKSTORE(p, m, v) _mm256_mask_storeu_ps(p, m, v)
#include "_indexed_body.h"

#define DP_T double
#define DP_VT __m512d
#define DP_VL 8
#define DP_FN(name) deltaprop_##name
#define DP_LOAD _mm512_loadu_pd
#define DP_STORE _mm512_storeu_pd
#define DP_BCAST(p) _mm512_set1_pd(*(p))
#define DP_SET1 _mm512_set1_pd
#define DP_FMADD _mm512_fmadd_pd
#define DP_MUL _mm512_mul_pd
#define DP_ADD _mm512_add_pd
#define DP_MAX _mm512_max_pd
#define DP_SUB _mm512_sub_pd
#define DP_STEP01(a) _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(a, _mm512_setzero_pd(), _CMP_GT_OQ), _mm512_set1_pd(1.0))
#define DP_ZERO _mm512_setzero_pd
#define DP_MASKT __mmask8
#define DP_MASKLOAD(p, m) _mm512_maskz_loadu_pd(m, p)
#define DP_MASKSTORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define DP_MASK(n) ((__mmask8)((n) <= 0 ? 0u : (n) >= 8 ? 0xFFu : (1u << (n)) - 1u))
/* half vectors (256 bits), for a last panel of at most half a vector of columns */
#define DP_HVT __m256d
#define DP_HVL 4
#define DP_HLOAD _mm256_loadu_pd
#define DP_HBCAST _mm256_broadcast_sd
#define DP_HSET1 _mm256_set1_pd
#define DP_HFMADD _mm256_fmadd_pd
#define DP_HMUL _mm256_mul_pd
#define DP_HADD _mm256_add_pd
#define DP_HMAX _mm256_max_pd
#define DP_HZERO _mm256_setzero_pd
#define DP_HMASKLOAD(p, m) _mm256_maskz_loadu_pd(m, p)
#define DP_HMASKSTORE(p, m, v) _mm256_mask_storeu_pd(p, m, v)
#include "_indexed_body.h"

#else  /* the AVX2 build: tiles of 6 rows by 16 floats or 8 doubles */
#define DP_NR_BYTES 64
/* the gradient's rows of D per block: about the L1 cache, where the block stays while every
   tile of W passes over it */
#define DP_D_BYTES 32768
#define DP_T float
#define DP_VT __m256
#define DP_VL 8
#define DP_FN(name) deltaprop_##name##f
#define DP_LOAD _mm256_loadu_ps
#define DP_STORE _mm256_storeu_ps
#define DP_BCAST _mm256_broadcast_ss
#define DP_SET1 _mm256_set1_ps
#define DP_FMADD _mm256_fmadd_ps
#define DP_MUL _mm256_mul_ps
#define DP_ADD _mm256_add_ps
#define DP_MAX _mm256_max_ps
#define DP_SUB _mm256_sub_ps
#define DP_STEP01(a) _mm256_and_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_set1_ps(1.0f))
#define DP_ZERO _mm256_setzero_ps
#define DP_MASKLOAD _mm256_maskload_ps
#define DP_MASKSTORE _mm256_maskstore_ps
#define DP_MASKT __m256i
#define DP_MASK(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#include "_indexed_body.h"

#define DP_T double
#define DP_VT __m256d
#define DP_VL 4
#define DP_FN(name) deltaprop_##name
#define DP_LOAD _mm256_loadu_pd
#define DP_STORE _mm256_storeu_pd
#define DP_BCAST _mm256_broadcast_sd
#define DP_SET1 _mm256_set1_pd
#define DP_FMADD _mm256_fmadd_pd
#define DP_MUL _mm256_mul_pd
#define DP_ADD _mm256_add_pd
#define DP_MAX _mm256_max_pd
#define DP_SUB _mm256_sub_pd
#define DP_STEP01(a) _mm256_and_pd(_mm256_cmp_pd(a, _mm256_setzero_pd(), _CMP_GT_OQ), _mm256_set1_pd(1.0))
#define DP_ZERO _mm256_setzero_pd
#define DP_MASKLOAD _mm256_maskload_pd
#define DP_MASKSTORE _mm256_maskstore_pd
#define DP_MASKT __m256i
#define DP_MASK(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n)), _mm256_setr_epi64x(0, 1, 2, 3))
#include "_indexed_body.h"

#endif

/* Whether narrow_bt can leave the deltas of m rows of N units packed for indexed_xtd (their
   packed argument), below W's K columns: the m packed rows, their column sums and W^T's K
   panels, each N padded to NR, must fit DELTAPROP_PANEL_BYTES. */
static inline int deltaprop_packed_delta(Py_ssize_t m, Py_ssize_t N, Py_ssize_t K,
                                         Py_ssize_t itemsize) {
    Py_ssize_t row = (N * itemsize + DP_NR_BYTES - 1) / DP_NR_BYTES * DP_NR_BYTES;
    return (m + 1 + K) * row <= DELTAPROP_PANEL_BYTES;
}

#else  /* no AVX2: never called (DELTAPROP_INDEXED is 0) */

#define DELTAPROP_INDEXED 0
#define DP_NARROW_STUB(T, S) \
static inline void deltaprop_narrow_bt##S(Py_ssize_t m, Py_ssize_t K, Py_ssize_t N, const T* D, \
        const T* W, int deriv, const T* Ah, const T* Zh, T* C, T* Bp, int packed) { \
    (void)m; (void)K; (void)N; (void)D; (void)W; (void)deriv; (void)Ah; (void)Zh; (void)C; \
    (void)Bp; (void)packed; }
#define DP_STUBS(T, S) \
static inline void deltaprop_indexed_xw##S(Py_ssize_t m, Py_ssize_t K, Py_ssize_t N, const T* X, \
        const Py_ssize_t* idx, const T* W, const T* b, T* C, T* Bp, int relu, \
        deltaprop_prefetch* pf) { \
    (void)m; (void)K; (void)N; (void)X; (void)idx; (void)W; (void)b; (void)C; (void)Bp; \
    (void)relu; (void)pf; } \
static inline void deltaprop_indexed_xtd##S(Py_ssize_t m, Py_ssize_t K, Py_ssize_t N, const T* X, \
        const Py_ssize_t* idx, const T* D, T* W, T c, T beta, T* Dp, T* bias, T bbeta, \
        int packed) { \
    (void)m; (void)K; (void)N; (void)X; (void)idx; (void)D; (void)W; (void)c; (void)beta; \
    (void)Dp; (void)bias; (void)bbeta; (void)packed; }
static inline int deltaprop_packed_delta(Py_ssize_t m, Py_ssize_t N, Py_ssize_t K,
                                         Py_ssize_t itemsize) {
    (void)m; (void)N; (void)K; (void)itemsize;
    return 0;
}
DP_NARROW_STUB(float, f)
DP_STUBS(float, f)
DP_NARROW_STUB(double, )
DP_STUBS(double, )
#undef DP_STUBS
#undef DP_NARROW_STUB

#endif

#endif  /* DELTAPROP_INDEXED_H */
