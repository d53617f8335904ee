# cython: language_level=3
"""Matrix products through the BLAS ``?gemm`` that ``deltaprop.kernels.blas`` finds (NumPy's
OpenBLAS, else SciPy's), for the fused floating type; the call is in ``_gemm.h``. In the AVX2
build, also the first layer's two products of a mini-batch that read the batch's rows of X
through the visiting order (``_indexed.h``), so that the batch needs no gathered copy.

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

cdef extern from "_indexed.h":
    const bint DELTAPROP_INDEXED
    const Py_ssize_t DELTAPROP_PANEL_BYTES
    const Py_ssize_t DELTAPROP_INDEXED_MAX_ROWS
    const Py_ssize_t DELTAPROP_INDEXED_MAX_W_BYTES
    const Py_ssize_t DELTAPROP_INDEXED_SHORT
    const Py_ssize_t DELTAPROP_INDEXED_MIN_INPUTS
    const Py_ssize_t DELTAPROP_NARROW_MAX_OUT
    const Py_ssize_t DELTAPROP_NARROW_MIN_ROWS
    const int DELTAPROP_DERIV_ONE
    const int DELTAPROP_DERIV_RELU
    const int DELTAPROP_DERIV_TANH
    const int DELTAPROP_DERIV_LOGISTIC
    void deltaprop_narrow_btf(Py_ssize_t m, Py_ssize_t K, Py_ssize_t N, const float* D,
                              const float* W, int deriv, const float* Ah, const float* Zh,
                              float* C, float* Bp, int packed) noexcept nogil
    void deltaprop_narrow_bt(Py_ssize_t m, Py_ssize_t K, Py_ssize_t N, const double* D,
                             const double* W, int deriv, const double* Ah, const double* Zh,
                             double* C, double* Bp, int packed) noexcept nogil
    int deltaprop_packed_delta(Py_ssize_t m, Py_ssize_t N, Py_ssize_t K,
                               Py_ssize_t itemsize) noexcept nogil
    void deltaprop_prefetch_rows(const void* base, const Py_ssize_t* idx, Py_ssize_t n,
                                 Py_ssize_t row_bytes) noexcept nogil
    ctypedef struct deltaprop_prefetch:
        const void* base
        const Py_ssize_t* idx
        Py_ssize_t n
        Py_ssize_t row_bytes
    void deltaprop_prefetch_some(deltaprop_prefetch* p, Py_ssize_t rows) noexcept nogil
    void deltaprop_indexed_xwf(Py_ssize_t m, Py_ssize_t K, Py_ssize_t N, const float* X,
                               const Py_ssize_t* idx, const float* W, const float* b, float* C,
                               float* Bp, int relu, deltaprop_prefetch* pf) noexcept nogil
    void deltaprop_indexed_xw(Py_ssize_t m, Py_ssize_t K, Py_ssize_t N, const double* X,
                              const Py_ssize_t* idx, const double* W, const double* b, double* C,
                              double* Bp, int relu, deltaprop_prefetch* pf) noexcept nogil
    void deltaprop_indexed_xtdf(Py_ssize_t m, Py_ssize_t K, Py_ssize_t N, const float* X,
                                const Py_ssize_t* idx, const float* D, float* W, float c,
                                float beta, float* Dp, float* bias, float bbeta,
                                int packed) noexcept nogil
    void deltaprop_indexed_xtd(Py_ssize_t m, Py_ssize_t K, Py_ssize_t N, const double* X,
                               const Py_ssize_t* idx, const double* D, double* W, double c,
                               double beta, double* Dp, double* bias, double bbeta,
                               int packed) noexcept nogil


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


cdef inline bint use_indexed(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                             Py_ssize_t itemsize) noexcept nogil:
    """Whether a first layer's products of a batch of ``n`` rows read them through the visiting
    order (``indexed_matmul``, ``indexed_matmul_at``) rather than from a gathered copy through
    BLAS: in the AVX2 build, for a layer large enough for BLAS whose weights fit the L2 cache,
    and a batch of at most ``DELTAPROP_INDEXED_MAX_ROWS``; a short batch only with many inputs
    (the bounds and why: ``_indexed.h``)."""
    return (DELTAPROP_INDEXED and n <= DELTAPROP_INDEXED_MAX_ROWS and use_blas(n, n_in, n_out)
            and n_in * n_out * itemsize <= DELTAPROP_INDEXED_MAX_W_BYTES
            and (n >= DELTAPROP_INDEXED_SHORT or n_in >= DELTAPROP_INDEXED_MIN_INPUTS))


cdef inline bint use_narrow(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                            Py_ssize_t itemsize) noexcept nogil:
    """Whether a layer's δ-backprop of a batch of ``n`` takes :func:`narrow_backprop` (AVX2
    build): at most ``DELTAPROP_NARROW_MAX_OUT`` outputs, a batch of at least
    ``DELTAPROP_NARROW_MIN_ROWS`` (that pays for packing the transpose), and the packed
    transpose fits the panel buffer."""
    return (DELTAPROP_INDEXED and n_out <= DELTAPROP_NARROW_MAX_OUT
            and n >= DELTAPROP_NARROW_MIN_ROWS
            and n_out * ((n_in + 31) // 32 * 32) * itemsize <= DELTAPROP_PANEL_BYTES)


cdef inline void narrow_backprop(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                                 const floating* d, const floating* W, int deriv,
                                 const floating* a, const floating* z, floating* delta,
                                 floating* panel, bint packed) noexcept nogil:
    r"""Row-major ``delta (n, n_in) = h'(a) * (d @ W.T)``, ``d`` (n, n_out), ``W``
    (n_in, n_out): Bishop 5.56 for a layer of few outputs, in register tiles with the derivative
    (``deriv``: a ``DELTAPROP_DERIV_*`` of ``_indexed.h``, from ``a`` or ``z``) applied as they
    are stored; ``panel`` as in :func:`indexed_matmul`. With ``packed`` (:func:`use_packed_delta`),
    ``delta`` is not written: the result is left in ``panel`` as the first layer's gradient
    product packs it, with its column sums (:func:`indexed_matmul_at` with ``packed``). AVX2
    build only (:func:`use_narrow`)."""
    if floating is float:
        deltaprop_narrow_btf(n, n_out, n_in, d, W, deriv, a, z, delta, panel, packed)
    else:
        deltaprop_narrow_bt(n, n_out, n_in, d, W, deriv, a, z, delta, panel, packed)


cdef inline bint use_packed_delta(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                                  Py_ssize_t itemsize) noexcept nogil:
    """Whether :func:`narrow_backprop` through a layer (``n_in``, ``n_out``) can leave the
    deltas of the layer below packed in the panel buffer for :func:`indexed_matmul_at` (the
    first layer's gradient, which then packs nothing and sums nothing): ``n`` rows of ``n_in``
    units, their sums and the layer's packed transpose fit the buffer."""
    return DELTAPROP_INDEXED and deltaprop_packed_delta(n, n_in, n_out, itemsize)


cdef inline const floating* batch_row(const floating* X, const Py_ssize_t* idx, Py_ssize_t r,
                                      Py_ssize_t n_in) noexcept nogil:
    """Row ``r`` of a batch: ``X[idx[r]]`` when the batch is read through the visiting order
    ``idx``, else ``X[r]`` (a gathered batch, ``idx`` NULL)."""
    return X + (idx[r] if idx != NULL else r) * n_in


cdef inline void indexed_matmul(Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, const floating* X,
                                const Py_ssize_t* idx, const floating* W, const floating* b,
                                floating* C, floating* panel, bint relu,
                                deltaprop_prefetch* pf) noexcept nogil:
    """Row-major ``C (n, m) = b + X[idx] @ W``, ``W`` (k, m), the rows of ``X`` (k columns) read
    through ``idx``; with ``relu``, ``max(that, 0)``; ``panel``: DELTAPROP_PANEL_BYTES of
    scratch, 64-byte aligned; ``pf`` (or NULL): rows to ask the caches for as the product runs.
    AVX2 build only (``DELTAPROP_INDEXED``)."""
    if floating is float:
        deltaprop_indexed_xwf(n, k, m, X, idx, W, b, C, panel, relu, pf)
    else:
        deltaprop_indexed_xw(n, k, m, X, idx, W, b, C, panel, relu, pf)


cdef inline void indexed_matmul_at(Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, const floating* X,
                                   const Py_ssize_t* idx, const floating* D, floating* C,
                                   floating alpha, floating beta, floating* panel,
                                   floating* bias, floating bias_beta,
                                   bint packed) noexcept nogil:
    """Row-major ``C (k, m) = alpha X[idx].T @ D + beta C``, ``D`` (n, m), the rows of ``X``
    (k columns) read through ``idx`` (``beta = 0``: ``C`` is not read); ``panel`` as in
    :func:`indexed_matmul`. With ``bias`` (m values), also
    ``bias = alpha D.sum(0) + bias_beta bias`` (``bias_beta = 0``: not read), the sums taken
    as the product packs ``D``. With ``packed``, ``D`` is not read: :func:`narrow_backprop`
    left it packed in ``panel``, with its sums. AVX2 build only."""
    if floating is float:
        deltaprop_indexed_xtdf(n, k, m, X, idx, D, C, alpha, beta, panel, bias, bias_beta,
                               packed)
    else:
        deltaprop_indexed_xtd(n, k, m, X, idx, D, C, alpha, beta, panel, bias, bias_beta,
                              packed)
