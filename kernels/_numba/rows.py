r"""The per-sample pieces every per-sample epoch shares: the next sample to visit, and one
sample's forward pass over the rows of the flat weights.

The per-sample epochs (``sgd_plain``, ``sgd_decay``, ``sgd_general``) index flat buffers: ``w``,
the unit buffers ``a``, ``z``, ``delta`` (U,) and flat views of X and T (``ravel``), with offsets
instead of a view per sample. Offsets are unsigned (:data:`U64`): with signed offsets numba's
negative-index fix-up turns the contiguous loops into gathers. A weight matrix ``W`` (n_in,
n_out) is row-major, so row ``i`` (the weights leaving input ``i``) is contiguous. Rows go four at
a time (the accumulators of the four rows, or of the forward sum, stay in registers across
them), in the same order as one at a time.

Every function here and in the epoch modules that runs once per sample is a ``_jit.helper``
(compiled without numba's reference counting).
"""

import numpy as np

from deltaprop.contract import B_OFF, N_IN, N_OUT, U_OFF, W_OFF

from ._jit import helper
from .activations import activate

#: Offsets into the flat buffers are unsigned.
U64 = np.uint64


@helper
def next_sample(order, s, e, p):
    """Position ``(e, p)`` of the next sample of ``order`` with a non-zero weight, from ``(e, p)``
    on (``(n_epochs, 0)`` when there is none): batches of one sample with :math:`S_B = 0` are
    skipped."""
    n_epochs, m = order.shape
    while e < n_epochs:
        while p < m:
            if s[order[e, p]] != 0:
                return e, p
            p += 1
        e += 1
        p = 0
    return e, p


@helper
def forward_rows(w, wo, bo, n_in, n_out, z, up, a, u):
    r"""One sample through one layer, :math:`a_j = w_{j0} + \sum_i w_{ji} z_i`, on flat buffers.

    ``W`` starts at ``w[wo]`` (n_in, n_out), ``b`` at ``w[bo]``, the inputs at ``z[up]``, the
    outputs at ``a[u]``. Four rows per sweep; the sum still runs over i in order.
    """
    for j in range(n_out):
        a[u + j] = w[bo + j]
    i = U64(0)
    while i + U64(4) <= n_in:
        r0 = wo + i * n_out
        r1, r2, r3 = r0 + n_out, r0 + U64(2) * n_out, r0 + U64(3) * n_out
        z0, z1, z2, z3 = z[up + i], z[up + i + U64(1)], z[up + i + U64(2)], z[up + i + U64(3)]
        for j in range(n_out):
            acc = a[u + j]
            acc = acc + z0 * w[r0 + j]
            acc = acc + z1 * w[r1 + j]
            acc = acc + z2 * w[r2 + j]
            acc = acc + z3 * w[r3 + j]
            a[u + j] = acc
        i += U64(4)
    while i < n_in:
        zi = z[up + i]
        r0 = wo + i * n_out
        for j in range(n_out):
            a[u + j] += zi * w[r0 + j]
        i += U64(1)


@helper
def upper_forward(w, layout, hidden, output, z, a):
    """Activations of layer 0 (its pre-activations are ready in ``a``) and the forward pass of
    layers 1..L-1, for one sample, on the flat unit buffers."""
    L = layout.shape[0]
    for l in range(L):
        n_out, u = U64(layout[l, N_OUT]), U64(layout[l, U_OFF])
        if l > 0:
            forward_rows(w, U64(layout[l, W_OFF]), U64(layout[l, B_OFF]), U64(layout[l, N_IN]), n_out,
                         z, U64(layout[l - 1, U_OFF]), a, u)
        activate(output if l == L - 1 else hidden, a, z, u, n_out)
