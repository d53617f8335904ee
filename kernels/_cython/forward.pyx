r"""Forward propagation (Bishop 5.48, 5.49); mirrors ``kernels/_numpy/forward.py``.

.. math:: a_j = \sum_i w_{ji} z_i + w_{j0}, \quad z_j = h(a_j), \quad y_k = f(a_k)

In matrix form :math:`A = Z_{prev} W + b` through BLAS gemm when the layer is large enough to
pay for the call; per-sample row loops (:func:`rows.forward_rows`, zero inputs skipped) for
tiny layers. The body, ``forward_batch``, is inline in ``forward.pxd``: each module that runs
it (this one, ``epoch`` and ``epoch_avx2``) compiles it with its own flags.
"""

from cython cimport floating

from ._blas cimport init_gemm
from .forward cimport forward_batch
from ._checks import check_forward

init_gemm()

def forward(const floating[::1] w, const Py_ssize_t[:, ::1] layout, int hidden, int output,
            const floating[:, ::1] X, floating[::1] A, floating[::1] Z):
    r"""Forward-propagate a batch through every layer, filling ``A`` and ``Z`` (5.48, 5.49)."""
    cdef Py_ssize_t n = X.shape[0]
    check_forward(w, layout, hidden, output, X, A, Z)
    if n == 0:
        return
    with nogil:
        forward_batch(&w[0], &layout[0, 0], layout.shape[0], hidden, output, &X[0, 0], n,
                      &A[0], &Z[0], NULL, NULL, NULL)
