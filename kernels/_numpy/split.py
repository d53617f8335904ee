r"""Mini-batch gradient descent on J threads, each batch's rows split between them
(``split_epochs``).

For every batch B, thread j computes the summed gradient of its share of the rows,

.. math:: g_j = \sum_{n \in B_j} s_n \nabla E_n ,

the threads meet at a barrier, and thread j sums its slice of the parameters,
:math:`g = g_0 + g_1 + \dots + g_{J-1}`, and applies ``batch_epoch``'s update,
:math:`w \leftarrow \mathrm{rule}(w, (g + \alpha W) / S_B)`, to that slice of ``w`` and of the
optimizer state (every rule is elementwise). A second barrier, and the next batch: the
algorithm is ``batch_epoch``'s, only the batch's gradient is summed in another order.
"""

import numpy as np

from deltaprop.contract import ALPHA, B_OFF, LINE, W_OFF
from deltaprop.layout import n_units

from .backprop import backprop, gradient, output_delta
from .forward import forward
from .mixing import barrier
from .update import update


def param_slice(P, j, J):
    """Thread j's slice ``[lo, hi)`` of the P parameters, cut at multiples of ``LINE`` (see
    ``deltaprop.contract``: no two threads write one cache line)."""
    def cut(k):
        return 0 if k == 0 else P if k == J else (P * k // J) // LINE * LINE

    return cut(j), cut(j + 1)


def split_epochs(j, w, layout, hidden, output, loss, X, T, s, order, batch_size, solver, hyper, state, step,
                 steps, Xb, Tb, sb, A, Z, D, G, g, losses, sync):
    r"""Thread j's part of mini-batch epochs on J = len(G) threads (see ``deltaprop.contract``)."""
    J, P, U = G.shape[0], w.shape[0], n_units(layout)
    lo, hi = param_slice(P, j, J)
    alpha = hyper[ALPHA]
    weights = np.zeros(P, dtype=bool)  # the L2 term's mask: weights, not biases
    for layer in range(layout.shape[0]):
        first, stop = layout[layer, W_OFF], layout[layer, B_OFF]
        weights[first:stop] = True
    mask = weights[lo:hi]
    tj = steps[j, :1]
    tj[0] = step[0]
    losses[j] = 0.0
    for e in range(order.shape[0]):
        for start in range(0, order.shape[1], batch_size):
            idx = order[e, start : start + batch_size]
            nb = idx.shape[0]
            S = s[idx].sum()
            if S == 0:
                continue
            mine = idx[nb * j // J : nb * (j + 1) // J]
            k = mine.shape[0]
            E = 0.0
            if k:
                xb, tb, s_b = Xb[j, :k], Tb[j, :k], sb[j, :k]
                xb[...] = X[mine]
                tb[...] = T[mine]
                s_b[...] = s[mine]
                a, z, d = A[j, : k * U], Z[j, : k * U], D[j, : k * U]
                forward(w, layout, hidden, output, xb, a, z)
                E = output_delta(layout, output, loss, a, z, tb, s_b, d)
                backprop(w, layout, hidden, a, z, d)
                gradient(layout, xb, z, d, G[j, :P])
            else:
                G[j, :P] = 0
            if not barrier(sync, J):
                return
            total = G[0, lo:hi].copy()
            for i in range(1, J):
                total += G[i, lo:hi]
            sq = 0.0
            if alpha != 0:  # L2 term on the weights, never on the biases
                total += alpha * np.where(mask, w[lo:hi], 0)
                sq = np.sum(np.where(mask, w[lo:hi] * w[lo:hi], 0))
            g[lo:hi] = total / S
            update(w[lo:hi], g[lo:hi], solver, hyper, state[:, lo:hi], tj)
            losses[j, e, 0] += nb * E / S
            losses[j, e, 1] += nb * 0.5 * alpha * sq / S
            if not barrier(sync, J):
                return
    if j == 0:
        step[0] = tj[0]
