/* The BLAS ?gemm of the Cython kernels, by address: the library ``deltaprop.kernels.blas``
   finds (NumPy's OpenBLAS, else SciPy's), set once per extension module at its import by
   ``_blas.pxd``'s ``init_gemm``. The pointers are static, so each module has its own copy.

   Fortran interface: every argument by pointer; the integers are 64-bit for an ILP64 library
   and 32-bit for an LP64 one. Included by Cython-generated C. */
#ifndef DELTAPROP_GEMM_H
#define DELTAPROP_GEMM_H

#include <stdint.h>

typedef void (*deltaprop_gemm64_t)(const char*, const char*, const int64_t*, const int64_t*,
                                   const int64_t*, const void*, const void*, const int64_t*,
                                   const void*, const int64_t*, const void*, void*, const int64_t*);
typedef void (*deltaprop_gemm32_t)(const char*, const char*, const int32_t*, const int32_t*,
                                   const int32_t*, const void*, const void*, const int32_t*,
                                   const void*, const int32_t*, const void*, void*, const int32_t*);

static void* deltaprop_sgemm_fn = 0;
static void* deltaprop_dgemm_fn = 0;
static int deltaprop_gemm_ilp64 = 0;

static void deltaprop_set_gemm(uintptr_t sgemm, uintptr_t dgemm, int ilp64) {
    deltaprop_sgemm_fn = (void*)sgemm;
    deltaprop_dgemm_fn = (void*)dgemm;
    deltaprop_gemm_ilp64 = ilp64;
}

/* Column-major C = alpha op(A) op(B) + beta C; ``dbl`` picks dgemm (alpha, beta point at
   doubles) or sgemm (at floats). */
static inline void deltaprop_gemm(int dbl, char ta, char tb, int64_t m, int64_t n, int64_t k,
                                  const void* alpha, const void* A, int64_t lda, const void* B,
                                  int64_t ldb, const void* beta, void* C, int64_t ldc) {
    void* fn = dbl ? deltaprop_dgemm_fn : deltaprop_sgemm_fn;
    if (deltaprop_gemm_ilp64) {
        ((deltaprop_gemm64_t)fn)(&ta, &tb, &m, &n, &k, alpha, A, &lda, B, &ldb, beta, C, &ldc);
    } else {
        int32_t m4 = (int32_t)m, n4 = (int32_t)n, k4 = (int32_t)k;
        int32_t lda4 = (int32_t)lda, ldb4 = (int32_t)ldb, ldc4 = (int32_t)ldc;
        ((deltaprop_gemm32_t)fn)(&ta, &tb, &m4, &n4, &k4, alpha, A, &lda4, B, &ldb4, beta, C, &ldc4);
    }
}

#endif  /* DELTAPROP_GEMM_H */
