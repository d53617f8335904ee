r"""Forward propagation (Bishop 5.48, 5.49); mirrors ``kernels/_numpy/forward.py``.

.. math:: a_j = \sum_i w_{ji} z_i + w_{j0}, \quad z_j = h(a_j), \quad y_k = f(a_k)

In matrix form :math:`A = Z_{prev} W + b` through BLAS gemm when the layer is large enough to
pay for the call; per-sample row loops (:func:`rows.forward_rows`, zero inputs skipped) for
tiny layers.
"""

from cython cimport floating

from ._blas cimport matmul
from ._core cimport BLAS_MIN_FLOPS, B_OFF, N_IN, N_OUT, SOFTMAX, U_OFF, W_OFF, col
from .activations cimport activate
from .rows cimport forward_rows
from ._checks import check_forward

cdef inline bint use_blas(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil:
    return n > 1 and n * n_in * n_out >= BLAS_MIN_FLOPS


cdef void forward_batch(const floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden,
                        int output, const floating* X, Py_ssize_t n, floating* A,
                        floating* Z) noexcept nogil:
    """The body of :func:`forward`: fill the unit buffers A and Z of a batch of ``n`` samples,
    layer by layer."""
    cdef Py_ssize_t l, r, j, n_in, n_out
    cdef const floating* z_prev = X
    cdef const floating* W
    cdef const floating* b
    cdef floating* a
    cdef floating* z
    cdef int code
    for l in range(L):
        n_in, n_out = col(layout, l, N_IN), col(layout, l, N_OUT)
        W = w + col(layout, l, W_OFF)
        b = w + col(layout, l, B_OFF)
        a = A + n * col(layout, l, U_OFF)
        z = Z + n * col(layout, l, U_OFF)
        if use_blas(n, n_in, n_out):
            for r in range(n):
                for j in range(n_out):
                    a[r * n_out + j] = b[j]
            matmul(<int>n, <int>n_in, <int>n_out, z_prev, W, 1, a)
        else:
            for r in range(n):
                forward_rows(W, b, n_in, n_out, z_prev + r * n_in, a + r * n_out)
        code = output if l == L - 1 else hidden
        if code == SOFTMAX:
            for r in range(n):
                activate(code, a + r * n_out, z + r * n_out, n_out)
        else:
            activate(code, a, z, n * n_out)
        z_prev = z


def forward(const floating[::1] w, const Py_ssize_t[:, ::1] layout, int hidden, int output,
            const floating[:, ::1] X, floating[::1] A, floating[::1] Z):
    r"""Forward-propagate a batch through every layer, filling ``A`` and ``Z`` (5.48, 5.49)."""
    cdef Py_ssize_t n = X.shape[0]
    check_forward(w, layout, hidden, output, X, A, Z)
    if n == 0:
        return
    with nogil:
        forward_batch(&w[0], &layout[0, 0], layout.shape[0], hidden, output, &X[0, 0], n,
                      &A[0], &Z[0])
