r"""Forward propagation (Bishop 5.48, 5.49) over a batch, mirroring ``_numpy/forward.py``.

A batch goes through BLAS in matrix form, :math:`A = Z_{prev} W + b` (``blas.gemm`` inside the
kernel), at every batch size, except the first layer of a mini-batch epoch's batch where
``indexed.use_indexed`` accepts it: there :func:`forward_indexed` computes :math:`X_B W` from
the rows where they are (``indexed``; a relu layer's bias and activation as the tiles are stored)
and :func:`forward_from` does the rest. Row loops serve the per-sample epochs
(``rows.forward_rows``), where no batch exists.
"""

import numpy as np

from deltaprop.contract import B_OFF, N_IN, N_OUT, RELU, SOFTMAX, U_OFF, W_OFF

from ._jit import kernel
from .activations import activate, softmax_rows
from .blas import gemm
from .indexed import indexed_matmul, indexed_relu_layer


@kernel
def weights(w, layout, layer):
    """Views ``(W_l, b_l)`` of layer ``l`` in the flat parameter vector ``w``."""
    n_in, n_out, w_off, b_off = layout[layer, N_IN], layout[layer, N_OUT], layout[layer, W_OFF], layout[layer, B_OFF]
    return w[w_off : w_off + n_in * n_out].reshape((n_in, n_out)), w[b_off : b_off + n_out]


@kernel
def units(buf, layout, layer, n):
    """View ``(n, n_out)`` of layer ``l``'s block in a unit buffer of a batch of ``n``."""
    n_out, u_off = layout[layer, N_OUT], layout[layer, U_OFF]
    return buf[n * u_off : n * (u_off + n_out)].reshape((n, n_out))


@kernel
def forward(w, layout, hidden, output, X, A, Z):
    r"""Forward-propagate a batch through every layer, filling ``A`` and ``Z``.

    .. math:: a_j = \sum_i w_{ji} z_i + w_{j0}, \quad z_j = h(a_j), \quad y_k = f(a_k)
    """
    forward_from(w, layout, hidden, output, X, X.shape[0], 0, A, Z)


@kernel
def forward_from(w, layout, hidden, output, X, n, first_done, A, Z):
    """:func:`forward` of a batch of ``n`` rows. ``first_done`` 0: from ``X``; 1: the first
    layer's block of ``A`` already holds the product :math:`X W_0` (``indexed.indexed_matmul``
    of the batch's rows, read where they are); 2: the first layer's ``A`` and ``Z`` are done
    (``indexed.indexed_relu_layer``). With 1 or 2, ``X`` is not read."""
    L = layout.shape[0]
    one, zero = w.dtype.type(1), w.dtype.type(0)
    z_prev = X[:n]
    for layer in range(L):
        W, b = weights(w, layout, layer)
        a = units(A, layout, layer, n)
        z = units(Z, layout, layer, n)
        if layer == 0 and first_done == 2:
            z_prev = z
            continue
        if layer > 0 or first_done == 0:
            gemm(z_prev, W, a, one, zero, False, False)
        code = output if layer == L - 1 else hidden
        n_out = np.uint64(layout[layer, N_OUT])
        base = np.uint64(n * layout[layer, U_OFF])
        bo = np.uint64(layout[layer, B_OFF])
        for r in range(n):  # the bias and h(a), row by row, while the row is in cache
            u = base + np.uint64(r) * n_out
            for j in range(n_out):
                A[u + j] += w[bo + j]
            if code != SOFTMAX:
                activate(code, A, Z, u, n_out)
        if code == SOFTMAX:  # the rows' softmax after their biases, in three passes
            softmax_rows(A, Z, base, np.uint64(n), n_out)
        z_prev = z


@kernel
def forward_indexed(w, layout, hidden, output, X, idx, A, Z):
    """:func:`forward` of the batch of rows ``X[idx]``, its first layer's product reading them
    where they are (``indexed``); a relu first layer with a layer above it also takes its bias
    and activation as the product's tiles are stored (``indexed.indexed_relu_layer``)."""
    n = idx.shape[0]
    W0, b0 = weights(w, layout, 0)
    if hidden == RELU and layout.shape[0] > 1:
        indexed_relu_layer(X, idx, W0, b0, units(A, layout, 0, n), units(Z, layout, 0, n))
        forward_from(w, layout, hidden, output, X, n, 2, A, Z)
    else:
        indexed_matmul(X, idx, W0, units(A, layout, 0, n))
        forward_from(w, layout, hidden, output, X, n, 1, A, Z)
