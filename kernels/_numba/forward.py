r"""Forward propagation (Bishop 5.48, 5.49), mirroring ``_numpy/forward.py``.

Memory layout and loop order: ``W_l`` is (n_in, n_out) row-major, so row ``i`` holds the
weights leaving unit ``i``. The forward sum is written row by row,

.. math:: a \leftarrow b, \qquad a \leftarrow a + z_i W_{i,:} \quad (i = 1 \dots n_{in})

an axpy over a contiguous row that LLVM vectorises, and a zero input :math:`z_i = 0` skips its
whole row: it would only add :math:`0 \cdot w = 0` (exact for finite weights). Large batches go
through BLAS instead (``np.dot``, :math:`A = Z_{prev} W + b`), see :data:`BLAS_MIN_FLOPS`.
"""

import numpy as np

from ._jit import kernel
from .activations import activate

#: A batch layer goes through BLAS when n * n_in * n_out reaches this many multiply-adds;
#: below it the call overhead of BLAS costs more than the row loops (measured, see bench.py).
BLAS_MIN_FLOPS = 32768


@kernel
def weights(w, layout, l):
    """Views ``(W_l, b_l)`` of layer ``l`` in the flat parameter vector ``w``."""
    n_in, n_out, w_off, b_off = layout[l, 0], layout[l, 1], layout[l, 2], layout[l, 3]
    return w[w_off : w_off + n_in * n_out].reshape((n_in, n_out)), w[b_off : b_off + n_out]


@kernel
def units(buf, layout, l, n):
    """View ``(n, n_out)`` of layer ``l``'s block in a unit buffer of a batch of ``n``."""
    n_out, u_off = layout[l, 1], layout[l, 4]
    return buf[n * u_off : n * (u_off + n_out)].reshape((n, n_out))


@kernel
def layer_forward(W, b, z_prev, a):
    r"""One sample through one layer: :math:`a_j = w_{j0} + \sum_i w_{ji} z_i`, row by row.

    Rows of zero inputs are skipped (exact: they add :math:`0 \cdot w_{ji}`).
    """
    n_in, n_out = W.shape
    for j in range(n_out):
        a[j] = b[j]
    for i in range(n_in):
        zi = z_prev[i]
        if zi != 0:
            row = W[i]
            for j in range(n_out):
                a[j] += zi * row[j]


@kernel
def affine(Z_prev, W, b, A):
    r""":math:`A = Z_{prev} W + b` for a batch: BLAS for large products, row loops otherwise."""
    n, n_in = Z_prev.shape
    n_out = W.shape[1]
    if n * n_in * n_out >= BLAS_MIN_FLOPS:
        np.dot(Z_prev, W, A)
        for r in range(n):
            for j in range(n_out):
                A[r, j] += b[j]
    else:
        for r in range(n):
            layer_forward(W, b, Z_prev[r], A[r])


@kernel
def forward(w, layout, hidden, output, X, A, Z):
    r"""Forward-propagate a batch through every layer, filling ``A`` and ``Z``.

    .. math:: a_j = \sum_i w_{ji} z_i + w_{j0}, \quad z_j = h(a_j), \quad y_k = f(a_k)
    """
    n = X.shape[0]
    L = layout.shape[0]
    z_prev = X
    for l in range(L):
        W, b = weights(w, layout, l)
        a = units(A, layout, l, n)
        z = units(Z, layout, l, n)
        affine(z_prev, W, b, a)
        code = output if l == L - 1 else hidden
        n_out = np.uint64(layout[l, 1])
        base = np.uint64(n * layout[l, 4])
        for r in range(n):
            activate(code, A, Z, base + np.uint64(r) * n_out, n_out)
        z_prev = z
