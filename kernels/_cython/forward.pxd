# cython: language_level=3
from cython cimport floating

from ._blas cimport batch_row, deltaprop_prefetch, indexed_matmul, matmul, use_blas
from ._core cimport B_OFF, N_IN, N_OUT, RELU, SOFTMAX, U_OFF, W_OFF, col
from .activations cimport activate, softmax_rows
from .rows cimport forward_rows


cdef inline void forward_batch(const floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden,
                        int output, const floating* X, Py_ssize_t n, floating* A,
                        floating* Z, const Py_ssize_t* idx,
                        floating* panel, deltaprop_prefetch* pf) noexcept nogil:
    """The body of :func:`forward`: fill the unit buffers A and Z of a batch of ``n`` samples,
    layer by layer. The batch is ``X``'s first ``n`` rows, or with ``idx`` its rows ``idx[r]``,
    read where they are (``_blas.batch_row``); then a first layer large enough for BLAS takes
    the indexed product (AVX2 build only, with its ``panel`` buffer), which for a relu hidden
    layer stores :math:`z = \max(a, 0)` alone: that layer's A is left as it was (relu's
    derivative is read from z). ``pf`` (or NULL): rows the indexed product asks the caches for
    as it runs (``_indexed.h``)."""
    cdef Py_ssize_t l, r, j, n_in, n_out
    cdef const floating* z_prev = X
    cdef const floating* W
    cdef const floating* b
    cdef floating* a
    cdef floating* z
    cdef int code
    cdef bint stored
    for l in range(L):
        n_in, n_out = col(layout, l, N_IN), col(layout, l, N_OUT)
        W = w + col(layout, l, W_OFF)
        b = w + col(layout, l, B_OFF)
        a = A + n * col(layout, l, U_OFF)
        z = Z + n * col(layout, l, U_OFF)
        code = output if l == L - 1 else hidden
        stored = False  # z = h(a) stored by the product, a not kept
        if l == 0 and idx != NULL and use_blas(n, n_in, n_out):
            stored = code == RELU and l < L - 1
            indexed_matmul(n, n_in, n_out, X, idx, W, b, z if stored else a, panel, stored, pf)
        elif use_blas(n, n_in, n_out):
            for r in range(n):
                for j in range(n_out):
                    a[r * n_out + j] = b[j]
            matmul(n, n_in, n_out, z_prev, W, 1, a)
        else:
            for r in range(n):
                forward_rows(W, b, n_in, n_out, batch_row(z_prev, idx if l == 0 else NULL, r, n_in),
                             a + r * n_out)
        if code == SOFTMAX:
            softmax_rows(a, z, n, n_out)
        elif not stored:
            activate(code, a, z, n * n_out)
        z_prev = z
