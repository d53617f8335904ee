# cython: language_level=3
"""Matrix products through the BLAS ``?gemm`` that ``deltaprop.kernels.blas`` finds (NumPy's
OpenBLAS, else SciPy's), for the fused floating type; the call is in ``_gemm.h``.

Every module that runs a product calls :func:`init_gemm` once at import (the function pointers
are per module). BLAS is column-major: a C-ordered (rows, cols) array is its (cols, rows)
transpose, so the row-major product ``C = A @ B`` is ``gemm('N', 'N', cols(C), rows(C), ...)``
with B first.
"""

from cython cimport floating
from libc.stdint cimport int64_t, uintptr_t

from ._core cimport BLAS_MIN_FLOPS


cdef extern from "_gemm.h":
    void deltaprop_set_gemm(uintptr_t sgemm, uintptr_t dgemm, int ilp64) noexcept nogil
    void deltaprop_gemm(int dbl, char ta, char tb, int64_t m, int64_t n, int64_t k,
                        const void* alpha, const void* A, int64_t lda, const void* B,
                        int64_t ldb, const void* beta, void* C, int64_t ldc) noexcept nogil


cdef inline int init_gemm() except -1:
    """Point this module's products at the library of ``deltaprop.kernels.blas.gemm_library``."""
    from deltaprop.kernels.blas import gemm_library

    lib = gemm_library()
    deltaprop_set_gemm(<uintptr_t>lib.sgemm, <uintptr_t>lib.dgemm, bool(lib.ilp64))
    return 0


cdef inline void gemm(char transa, char transb, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                      floating alpha, const floating* A, Py_ssize_t lda, const floating* B,
                      Py_ssize_t ldb, floating beta, floating* C, Py_ssize_t ldc) noexcept nogil:
    """Column-major ``C = alpha op(A) op(B) + beta C`` (Fortran BLAS ?gemm)."""
    deltaprop_gemm(floating is double, transa, transb, m, n, k, &alpha, A, lda, B, ldb, &beta,
                   C, ldc)


cdef inline void matmul(Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, const floating* A,
                        const floating* B, floating beta, floating* C) noexcept nogil:
    """Row-major ``C (n, m) = A (n, k) @ B (k, m) + beta C``."""
    gemm(c'N', c'N', m, n, k, 1, B, m, A, k, beta, C, m)


cdef inline void matmul_bt(Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, const floating* A,
                           const floating* B, floating* C) noexcept nogil:
    """Row-major ``C (n, m) = A (n, k) @ B.T`` with ``B`` (m, k)."""
    gemm(c'T', c'N', m, n, k, 1, B, k, A, k, 0, C, m)


cdef inline void matmul_at(Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, const floating* A,
                           const floating* B, floating* C, floating alpha=1,
                           floating beta=0) noexcept nogil:
    """Row-major ``C (k, m) = alpha A.T @ B + beta C`` with ``A`` (n, k), ``B`` (n, m)."""
    gemm(c'N', c'T', m, k, n, alpha, B, m, A, k, beta, C, m)


cdef inline bint use_blas(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil:
    """Whether a layer's product of a batch of ``n`` is large enough to pay for a BLAS call."""
    return n > 1 and n * n_in * n_out >= BLAS_MIN_FLOPS
