r"""Forward propagation (Bishop 5.48, 5.49) over a batch, in matrix form :math:`Y = XW + B`."""

from .activations import activate


def weights(w, layout, l):
    """Views ``(W_l, b_l)`` of layer ``l`` in the flat parameter vector ``w``."""
    n_in, n_out, w_off, b_off, _ = layout[l]
    return w[w_off : w_off + n_in * n_out].reshape(n_in, n_out), w[b_off : b_off + n_out]


def units(buf, layout, l, n):
    """View ``(n, n_out)`` of layer ``l``'s block in a unit buffer of a batch of ``n``."""
    n_out, u_off = layout[l, 1], layout[l, 4]
    return buf[n * u_off : n * (u_off + n_out)].reshape(n, n_out)


def forward(w, layout, hidden, output, X, A, Z):
    r"""Forward-propagate a batch through every layer, filling ``A`` and ``Z``.

    .. math:: a_j = \sum_i w_{ji} z_i + w_{j0}, \quad z_j = h(a_j), \quad y_k = f(a_k)

    with :math:`z_i = x_i` for the first layer; in matrix form :math:`A = Z_{prev} W + b`.
    """
    n = X.shape[0]
    L = layout.shape[0]
    z_prev = X
    for l in range(L):
        W, b = weights(w, layout, l)
        a = units(A, layout, l, n)
        z = units(Z, layout, l, n)
        a[...] = z_prev @ W + b
        z[...] = activate(output if l == L - 1 else hidden, a)
        z_prev = z
