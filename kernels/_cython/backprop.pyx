r"""Error backpropagation: output errors, the δ-recursion (Bishop 5.56) and the gradient.

Mirrors ``kernels/_numpy/backprop.py``. Matrix form through BLAS gemm where a layer is large
enough (:math:`\Delta_{l-1} = h'(A_{l-1}) \odot \Delta_l W_l^T`,
:math:`\partial L / \partial W = Z_{prev}^T \Delta`), per-sample row loops for tiny layers.
``sample_delta`` (one sample's output errors, shared with the per-sample epoch) is inlined from
``backprop.pxd``, as are the batch bodies (``output_delta_batch``, ``backprop_batch``,
``gradient_batch``, ``gradient_step``): each module that runs them (this one, ``epoch`` and
``epoch_avx2``) compiles them with its own flags.
"""

from cython cimport floating

from ._blas cimport init_gemm
from .backprop cimport backprop_batch, gradient_batch, output_delta_batch
from .forward cimport forward_batch
from ._checks import check_gradient, check_loss_gradient, check_output_delta, check_units

init_gemm()

def output_delta(const Py_ssize_t[:, ::1] layout, int output, int loss, const floating[::1] A,
                 const floating[::1] Z, const floating[:, ::1] T, const floating[::1] s,
                 floating[::1] D):
    r"""Output errors :math:`s_n \delta_k = \partial (s_n E_n) / \partial a_k` into D; return
    :math:`E = \sum_n s_n E_n` (see ``deltaprop.contract``)."""
    cdef Py_ssize_t n = T.shape[0]
    cdef double E
    check_output_delta(layout, A, Z, T, s, D)
    if n == 0:
        return 0.0
    with nogil:
        E = output_delta_batch(&layout[0, 0], layout.shape[0], output, loss, n, &A[0], &Z[0],
                               &T[0, 0], &s[0], &D[0])
    return E


def backprop(const floating[::1] w, const Py_ssize_t[:, ::1] layout, int hidden,
             const floating[::1] A, const floating[::1] Z, floating[::1] D):
    r"""Propagate δ from the output layer back to the first hidden layer (Bishop 5.56).

    .. math:: \delta_j = h'(a_j) \sum_k w_{kj} \delta_k
    """
    cdef Py_ssize_t n = check_units(w, layout, A, Z, D)
    if n == 0:
        return
    with nogil:
        backprop_batch(&w[0], &layout[0, 0], layout.shape[0], hidden, n, &A[0], &Z[0], &D[0],
                       NULL, False)


def gradient(const Py_ssize_t[:, ::1] layout, const floating[:, ::1] X, const floating[::1] Z,
             const floating[::1] D, floating[::1] g):
    r"""Gradient of E summed over the batch into ``g`` (same layout as ``w``).

    .. math:: \frac{\partial E}{\partial w_{ji}} = \sum_n \delta_j z_i, \qquad
              \frac{\partial E}{\partial w_{j0}} = \sum_n \delta_j
    """
    cdef Py_ssize_t n = X.shape[0]
    check_gradient(layout, X, Z, D, g)
    with nogil:
        gradient_batch(&layout[0, 0], layout.shape[0], n, &X[0, 0] if n > 0 else NULL,
                       &Z[0] if n > 0 else NULL, &D[0] if n > 0 else NULL, &g[0], NULL,
                       NULL, False)


def loss_gradient(const floating[::1] w, const Py_ssize_t[:, ::1] layout, int hidden, int output,
                  int loss, const floating[:, ::1] X, const floating[:, ::1] T,
                  const floating[::1] s, floating[::1] A, floating[::1] Z, floating[::1] D,
                  floating[::1] g, double[::1] grad):
    r"""``forward``, ``output_delta``, ``backprop`` and ``gradient`` over all rows of X in one
    call, in chunks of :math:`|A| / U` rows: E returned, :math:`\sum_n s_n \nabla E_n` added
    into ``grad`` (P,) float64 (see ``deltaprop.contract``). The whole sweep runs without the
    GIL, so threads calling it on their own rows never wait for each other."""
    cdef Py_ssize_t n = X.shape[0], P = w.shape[0], L = layout.shape[0]
    cdef Py_ssize_t rows = check_loss_gradient(w, layout, X, T, s, A, Z, D, g, grad)
    cdef Py_ssize_t start, m, p
    cdef double E = 0
    if n == 0:
        return 0.0
    start = 0
    with nogil:
        while start < n:
            m = min(rows, n - start)
            forward_batch(&w[0], &layout[0, 0], L, hidden, output, &X[start, 0], m, &A[0], &Z[0],
                          NULL, NULL, NULL)
            E += output_delta_batch(&layout[0, 0], L, output, loss, m, &A[0], &Z[0], &T[start, 0],
                                    &s[start], &D[0])
            backprop_batch(&w[0], &layout[0, 0], L, hidden, m, &A[0], &Z[0], &D[0], NULL, False)
            gradient_batch(&layout[0, 0], L, m, &X[start, 0], &Z[0], &D[0], &g[0], NULL, NULL, False)
            for p in range(P):
                grad[p] += g[p]
            start += m
    return E
