# cython: language_level=3
r"""The codes and the small maths every ``.pyx`` module of the Cython backend shares.

Design
------
Everything here is ``cdef inline ... noexcept nogil`` on raw pointers of ONE fused floating
type (float32 or float64), so the C compiler inlines it into each caller's loop: no function
call, no Python object and no allocation per sample. The enums mirror ``deltaprop.contract``
(``ACTIVATIONS``, ``LOSSES``, ``SOLVERS``, ``HYPER``, ``LAYOUT_COLUMNS``, ``KERNEL_CONSTANTS``);
``codes()`` of ``deltaprop.kernels._cython`` returns them, and test_contract.py and
test_cython.py compare them with the contract.

The activation functions live in ``activations.pxd``, the per-sample row helpers in
``rows.pxd`` (their innermost loops are C, in ``_rows.h`` and ``_tanh.h``).
"""

from cython cimport floating
from libc.math cimport (atan, atanf, cos, cosf, exp, expf, fabs, fabsf, log, log1p, log1pf,
                        logf, sqrt, sqrtf, tanh, tanhf)

# --------------------------------------------------------------------------- codes
cdef enum Activation:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3
    GUDERMANNIAN = 4
    SOFTMAX = 5
    EXP = 6
    SOFTPLUS = 7

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

# Slots of `hyper` (contract.HYPER: eta, alpha, momentum, beta_1, beta_2, epsilon). Anonymous
# enums, so that the constants are plain ints that can index an array.
cdef enum:
    ETA = 0
    ALPHA = 1
    MU = 2
    BETA_1 = 3
    BETA_2 = 4
    EPSILON = 5

# Columns of the layout table (contract.LAYOUT_COLUMNS); row l of the flat (L, 5) table starts
# at N_COLUMNS * l.
cdef enum:
    N_IN = 0
    N_OUT = 1
    W_OFF = 2
    B_OFF = 3
    U_OFF = 4
    N_COLUMNS = 5

# Numbers of the kernels' loops (contract.KERNEL_CONSTANTS, declared here once): LINE, the
# granule of the threads' parameter slices in split_epochs; SPINS, the rounds a thread spins at
# the barrier before it yields its core; BLAS_MIN_FLOPS, the n * n_in * n_out from which a
# batch layer goes through BLAS gemm.
cdef enum:
    LINE = 16
    SPINS = 2000
    BLAS_MIN_FLOPS = 4096


cdef inline Py_ssize_t col(const Py_ssize_t* layout, Py_ssize_t l, int column) noexcept nogil:
    """Entry ``column`` (N_IN, N_OUT, W_OFF, B_OFF, U_OFF) of layer ``l`` in the flat layout table."""
    return layout[N_COLUMNS * l + column]


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
