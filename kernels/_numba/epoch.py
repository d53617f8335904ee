r"""Gradient-descent epochs, on-line and mini-batch, each ONE compiled call (mirrors
``_numpy/epoch.py``).

.. math:: w^{(\tau+1)} = w^{(\tau)} - \eta \nabla E_n(w^{(\tau)})

:func:`sgd_epoch` picks one of three per-sample kernels by solver family: ``sgd_plain.sgd_plain``
(sgd, α = 0: zero inputs skip their rows, the first layer's update fused with the next forward
sum), ``sgd_decay.sgd_decay`` (sgd with L2: the same, with the first layer kept as a scale times
a matrix) and ``sgd_general.sgd_general`` (momentum, Nesterov, Adam). Their shared per-sample
pieces are in ``rows``. :func:`batch_epoch` composes the batch kernels (BLAS) with the update:
plain sgd and momentum in the gradient's products (``backprop.gradient_step``), Nesterov and
Adam by ``update.batch_step`` on a gradient buffer.
"""

import numpy as np

from deltaprop.contract import ALPHA, ETA, MOMENTUM, SGD, mostly_nonzero

from ._jit import inline, kernel
from .backprop import backprop, gradient, gradient_step, output_delta
from .forward import forward
from .sgd_decay import sgd_decay
from .sgd_general import sgd_general
from .sgd_plain import sgd_plain
from .update import batch_step


def sgd_epoch(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, step, a, z, delta, losses):
    r"""On-line gradient descent, :math:`w \leftarrow w - \eta \nabla E_n(w)`, one sample at a
    time, for every epoch of ``order`` (n_epochs, m), in one compiled call.

    Equals ``batch_epoch`` with ``batch_size=1`` (see ``deltaprop.contract``). This thin Python
    function only picks the compiled kernel, ``sgd_plain`` (solver sgd, α = 0), ``sgd_decay``
    (solver sgd, α > 0) or ``sgd_general``, so that each compiles on its own first use: a user
    of one never waits for the others' compilation. Zero inputs skip their rows unless the
    inputs are dense (``contract.mostly_nonzero``).
    """
    skip = solver == SGD and not mostly_nonzero(X, order)
    if solver == SGD and hyper[ALPHA] == 0:
        sgd_plain(w, layout, hidden, output, loss, X, T, s, order, hyper[ETA], a, z, delta, losses, skip)
    elif solver == SGD:
        sgd_decay(w, layout, hidden, output, loss, X, T, s, order, hyper[ETA], hyper[ALPHA], a, z, delta,
                  losses, skip)
    else:
        sgd_general(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, step,
                    a, z, delta, losses)


@inline
def gather_row(src, i, dst, r):
    """``dst[r] = src[i]`` for C-contiguous 2-D arrays, as one loop over unsigned offsets of the
    flat arrays (it vectorises; a slice assignment goes through numba's general strided copy)."""
    flat_src, flat_dst = src.ravel(), dst.ravel()
    D = np.uint64(src.shape[1])
    s0, d0 = np.uint64(i) * D, np.uint64(r) * D
    for j in range(D):
        flat_dst[d0 + j] = flat_src[s0 + j]


@kernel
def batch_epoch(w, layout, hidden, output, loss, X, T, s, order, batch_size, solver, hyper, state, step,
                Xb, Tb, sb, A, Z, D, g, losses):
    r"""Mini-batch gradient descent over consecutive batches B of ``order`` (n_epochs, m).

    For each batch: gather the samples into ``Xb``, ``Tb``, ``sb``; forward, output δ weighted
    by :math:`s_n`, δ-backprop and the gradient in matrix form (BLAS for large layers); then
    :math:`g = (\sum_{n \in B} s_n \nabla E_n + \alpha W) / S_B` and the solver's update.
    """
    U = A.shape[0] // batch_size
    alpha = hyper[ALPHA]
    one = w.dtype.type(1)
    n_epochs, m = order.shape
    for e in range(n_epochs):
        data = 0.0
        penalty = 0.0
        for start in range(0, m, batch_size):
            nb = min(batch_size, m - start)
            S = w.dtype.type(0)
            for r in range(nb):
                idx = order[e, start + r]
                gather_row(X, idx, Xb, r)
                gather_row(T, idx, Tb, r)
                sb[r] = s[idx]
                S += sb[r]
            if S == 0:
                continue
            xb, tb, s_b = Xb[:nb], Tb[:nb], sb[:nb]
            a, z, d = A[: nb * U], Z[: nb * U], D[: nb * U]
            forward(w, layout, hidden, output, xb, a, z)
            E = output_delta(layout, output, loss, a, z, tb, s_b, d)
            backprop(w, layout, hidden, a, z, d)
            if solver == SGD or solver == MOMENTUM:  # the step in the gradient's products
                sq = gradient_step(layout, solver, xb, z, d, w, state[0], hyper, one / S)
            else:  # g / S, the L2 term and the solver's rule in one pass over w
                gradient(layout, xb, z, d, g)
                sq = batch_step(layout, solver, w, g, hyper, state, step, one / S)
            data += nb * E / S
            if alpha != 0:
                penalty += nb * 0.5 * alpha * sq / S
        losses[e, 0] = data
        losses[e, 1] = penalty
