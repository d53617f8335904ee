r"""Mini-batch gradient descent on J threads, each batch's rows split between them
(``split_epochs``, mirrors ``_numpy/split.py``).

Thread j of J takes its share of the rows of every batch B, computes
:math:`g_j = \sum_{n \in B_j} s_n \nabla E_n` into its row of ``G``, and meets the others at a
barrier (``mixing.barrier``); then each thread sums its slice of the parameters,
:math:`g = g_0 + g_1 + \dots + g_{J-1}` in thread order, and applies ``batch_epoch``'s update
to that slice (every rule is elementwise); a second barrier, and the next batch. The algorithm
is ``batch_epoch``'s; only the order in which the batch's gradient is summed differs. As there,
a thread's rows of X are read in place by the first layer's products where
``indexed.use_indexed`` accepts its share of the batch, else gathered.
"""

import numpy as np

from deltaprop.contract import ADAM, ALPHA, B_OFF, BETA_1, BETA_2, EPSILON, ETA, LINE, MU, N_OUT, U_OFF, W_OFF

from ._jit import helper, kernel
from .backprop import backprop, batch_gradient, output_delta
from .forward import forward_from, forward_indexed, weights
from .indexed import use_indexed
from .mixing import barrier
from .rows import sum_squares
from .update import adam_rate, step_range


@kernel
def param_slice(P, j, J):
    """Thread j's slice ``[lo, hi)`` of the P parameters: J near-equal parts, cut at multiples of
    ``LINE`` (see ``deltaprop.contract``: no two threads write one cache line of ``w`` or of the
    optimizer state)."""
    lo = 0 if j == 0 else (P * j // J) // LINE * LINE
    hi = P if j == J - 1 else (P * (j + 1) // J) // LINE * LINE
    return lo, hi


@helper
def sum_rows(G, J, lo, n, g):
    """``g[p] = G[0, p] + G[1, p] + ... + G[J - 1, p]`` for p in ``[lo, lo + n)``, in row order
    (unsigned bounds: the loops vectorise)."""
    for i in range(n):
        g[lo + i] = G[0, lo + i]
    for k in range(1, J):
        for i in range(n):
            g[lo + i] += G[k, lo + i]


@kernel
def split_epochs(j, w, layout, hidden, output, loss, X, T, s, order, batch_size, solver, hyper, state, step,
                 steps, Xb, Tb, sb, A, Z, D, G, g, losses, sync):
    r"""Thread j's part of mini-batch epochs on J threads (see ``deltaprop.contract``)."""
    J = G.shape[0]
    P = w.shape[0]
    U = layout[-1, U_OFF] + layout[-1, N_OUT]
    lo, hi = param_slice(P, j, J)
    alpha = hyper[ALPHA]
    one = w.dtype.type(1)
    zero = w.dtype.type(0)
    eta, mu, b1, b2, eps = hyper[ETA], hyper[MU], hyper[BETA_1], hyper[BETA_2], hyper[EPSILON]
    m, v = state[0], state[1]
    tj = steps[j, :1]
    tj[0] = step[0]
    losses[j] = 0.0
    gj = G[j, :P]
    n_epochs, n = order.shape
    W0, _ = weights(w, layout, 0)
    no_rows = order[0, :0]
    for e in range(n_epochs):
        for start in range(0, n, batch_size):
            nb = min(batch_size, n - start)
            S = w.dtype.type(0)
            for r in range(nb):
                S += s[order[e, start + r]]
            if S == 0:
                continue
            first, last = start + nb * j // J, start + nb * (j + 1) // J
            k = last - first
            E = 0.0
            if k > 0:
                direct = use_indexed(k, W0.shape[0], W0.shape[1], w.itemsize)
                for r in range(k):
                    idx = order[e, first + r]
                    if not direct:
                        Xb[j, r, :] = X[idx]
                    Tb[j, r, :] = T[idx]
                    sb[j, r] = s[idx]
                xb, tb, s_b = Xb[j, :k], Tb[j, :k], sb[j, :k]
                a, z, d = A[j, : k * U], Z[j, : k * U], D[j, : k * U]
                rows = order[e, first:last] if direct else no_rows
                if direct:
                    forward_indexed(w, layout, hidden, output, X, rows, a, z)
                    xb = X
                else:
                    forward_from(w, layout, hidden, output, xb, k, 0, a, z)
                E = output_delta(layout, output, loss, a, z, tb, s_b, d)
                backprop(w, layout, hidden, a, z, d)
                batch_gradient(layout, xb, rows, z, d, gj)
            else:
                gj[:] = zero
            if not barrier(sync, J):
                return
            sum_rows(G, J, np.uint64(lo), np.uint64(hi - lo), g)
            eta_t = adam_rate(hyper, tj) if solver == ADAM else zero
            inv_S = one / S
            sq = 0.0
            for layer in range(layout.shape[0]):
                wo, bo, nout = layout[layer, W_OFF], layout[layer, B_OFF], layout[layer, N_OUT]
                a0, a1 = max(wo, lo), min(bo, hi)  # this slice's weights of layer l
                if a1 > a0:
                    if alpha != 0:
                        sq += sum_squares(w, np.uint64(a0), np.uint64(a1 - a0))
                    step_range(solver, w, g, m, v, np.uint64(a0), np.uint64(a1 - a0), alpha, inv_S,
                               eta, mu, b1, b2, eps, eta_t)
                c0, c1 = max(bo, lo), min(bo + nout, hi)  # and its biases
                if c1 > c0:
                    step_range(solver, w, g, m, v, np.uint64(c0), np.uint64(c1 - c0), zero, inv_S,
                               eta, mu, b1, b2, eps, eta_t)
            losses[j, e, 0] += nb * E / S
            if alpha != 0:
                losses[j, e, 1] += nb * 0.5 * alpha * sq / S
            if not barrier(sync, J):
                return
    if j == 0:
        step[0] = tj[0]
