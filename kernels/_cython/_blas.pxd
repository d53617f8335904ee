# cython: language_level=3
"""Matrix products through scipy's BLAS (``scipy.linalg.cython_blas``), for the fused floating type.

BLAS is column-major: a C-ordered (rows, cols) array is its (cols, rows) transpose, so the
row-major product ``C = A @ B`` is ``gemm('N', 'N', cols(C), rows(C), ...)`` with B first.
"""

from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm


cdef inline void gemm(char transa, char transb, int m, int n, int k, floating alpha,
                      const floating* A, int lda, const floating* B, int ldb, floating beta,
                      floating* C, int ldc) noexcept nogil:
    """Column-major ``C = alpha op(A) op(B) + beta C`` (Fortran BLAS ?gemm)."""
    if floating is float:
        sgemm(&transa, &transb, &m, &n, &k, &alpha, <float*>A, &lda, <float*>B, &ldb, &beta, C, &ldc)
    else:
        dgemm(&transa, &transb, &m, &n, &k, &alpha, <double*>A, &lda, <double*>B, &ldb, &beta, C, &ldc)


cdef inline void matmul(int n, int k, int m, const floating* A, const floating* B, floating beta,
                        floating* C) noexcept nogil:
    """Row-major ``C (n, m) = A (n, k) @ B (k, m) + beta C``."""
    gemm(c'N', c'N', m, n, k, 1, B, m, A, k, beta, C, m)


cdef inline void matmul_bt(int n, int k, int m, const floating* A, const floating* B,
                           floating* C) noexcept nogil:
    """Row-major ``C (n, m) = A (n, k) @ B.T`` with ``B`` (m, k)."""
    gemm(c'T', c'N', m, n, k, 1, B, k, A, k, 0, C, m)


cdef inline void matmul_at(int n, int k, int m, const floating* A, const floating* B,
                           floating* C, floating alpha=1, floating beta=0) noexcept nogil:
    """Row-major ``C (k, m) = alpha A.T @ B + beta C`` with ``A`` (n, k), ``B`` (n, m)."""
    gemm(c'N', c'T', m, k, n, alpha, B, m, A, k, beta, C, m)
