r"""Forward propagation (Bishop 5.48, 5.49) over a batch, in matrix form :math:`Y = XW + B`."""

from deltaprop.layout import layer_params, layer_units

from .activations import activate


def forward(w, layout, hidden, output, X, A, Z):
    r"""Forward-propagate a batch through every layer, filling ``A`` and ``Z``.

    .. math:: a_j = \sum_i w_{ji} z_i + w_{j0}, \quad z_j = h(a_j), \quad y_k = f(a_k)

    with :math:`z_i = x_i` for the first layer; in matrix form :math:`A = Z_{prev} W + b`.
    """
    n = X.shape[0]
    L = layout.shape[0]
    z_prev = X
    for layer in range(L):
        W, b = layer_params(w, layout, layer)
        a = layer_units(A, layout, layer, n)
        z = layer_units(Z, layout, layer, n)
        a[...] = z_prev @ W + b
        z[...] = activate(output if layer == L - 1 else hidden, a)
        z_prev = z
