r"""Gradient-descent epochs: on-line (one sample at a time) and mini-batch.

.. math:: w^{(\tau+1)} = w^{(\tau)} - \eta \nabla E_n(w^{(\tau)})

See ``deltaprop.contract`` for the arguments; the reference composes the other kernels.
"""

import numpy as np

from deltaprop.contract import ALPHA
from deltaprop.layout import layer_params

from .backprop import backprop, gradient, output_delta
from .forward import forward
from .update import update


def batch_epoch(w, layout, hidden, output, loss, X, T, s, order, batch_size, solver, hyper, state, step,
                Xb, Tb, sb, A, Z, D, g, losses):
    r"""Mini-batch gradient descent over consecutive batches B of ``order`` (n_epochs, m).

    For each batch: forward, output δ weighted by :math:`s_n`, δ-backprop, the gradient
    :math:`g = (\sum_{n \in B} s_n \nabla E_n + \alpha W) / S_B`, then the solver's update.
    """
    U = A.shape[0] // batch_size
    alpha = hyper[ALPHA]
    n_layers = layout.shape[0]
    for e in range(order.shape[0]):
        data, penalty = 0.0, 0.0
        m = order.shape[1]
        for start in range(0, m, batch_size):
            idx = order[e, start : start + batch_size]
            nb = idx.shape[0]
            xb, tb, s_b = Xb[:nb], Tb[:nb], sb[:nb]
            xb[...] = X[idx]
            tb[...] = T[idx]
            s_b[...] = s[idx]
            S = s_b.sum()
            if S == 0:
                continue
            a, z, d = A[: nb * U], Z[: nb * U], D[: nb * U]
            forward(w, layout, hidden, output, xb, a, z)
            E = output_delta(layout, output, loss, a, z, tb, s_b, d)
            backprop(w, layout, hidden, a, z, d)
            gradient(layout, xb, z, d, g)
            sq = 0.0
            if alpha != 0:  # L2 term on the weights, never on the biases
                for layer in range(n_layers):
                    W, _ = layer_params(w, layout, layer)
                    gW, _ = layer_params(g, layout, layer)
                    gW += alpha * W
                    sq += np.sum(W * W)
            g /= S
            data += nb * E / S
            penalty += nb * 0.5 * alpha * sq / S
            update(w, g, solver, hyper, state, step)
        losses[e, 0] = data
        losses[e, 1] = penalty


def sgd_epoch(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, step, a, z, delta, losses):
    r"""On-line gradient descent, :math:`w \leftarrow w - \eta \nabla E_n(w)`, one sample at a time.

    The reference is ``batch_epoch`` with batches of one sample; compiled backends fuse the
    forward pass, δ and the update of each weight.
    """
    Xb = np.empty((1, X.shape[1]), dtype=X.dtype)
    Tb = np.empty((1, T.shape[1]), dtype=T.dtype)
    sb = np.empty(1, dtype=s.dtype)
    g = np.empty_like(w)
    batch_epoch(w, layout, hidden, output, loss, X, T, s, order, 1, solver, hyper, state, step,
                Xb, Tb, sb, a, z, delta, g, losses)
