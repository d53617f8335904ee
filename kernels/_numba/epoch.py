r"""Gradient-descent epochs, on-line and mini-batch, each ONE compiled call (mirrors
``_numpy/epoch.py``).

.. math:: w^{(\tau+1)} = w^{(\tau)} - \eta \nabla E_n(w^{(\tau)})

:func:`sgd_epoch` picks one of three per-sample kernels by solver family: ``sgd_plain.sgd_plain``
(sgd, α = 0: zero inputs skip their rows, the first layer's update fused with the next forward
sum), ``sgd_decay.sgd_decay`` (sgd with L2: the same, with the first layer kept as a scale times
a matrix) and ``sgd_general.sgd_general`` (momentum, Nesterov, Adam). Their shared per-sample
pieces are in ``rows``. :func:`batch_epoch` composes the batch kernels (BLAS) with the update:
plain sgd and momentum in the gradient's products (``backprop.gradient_step``), Nesterov and
Adam by ``update.batch_step`` on a gradient buffer. Where ``indexed.use_indexed`` accepts the
first layer and the batch, its two products read the batch's rows of X where they are
(``indexed``) and only the targets and sample weights are gathered.
"""

import numpy as np

from deltaprop.contract import ALPHA, ETA, MOMENTUM, N_IN, N_OUT, SGD, mostly_nonzero

from ._jit import kernel
from .backprop import backprop, batch_gradient, gradient_step, output_delta
from .forward import forward_from, forward_indexed, weights
from .indexed import use_indexed
from .sgd_decay import sgd_decay
from .sgd_general import sgd_general
from .sgd_plain import sgd_plain
from .sgd_windows import sgd_windows, use_windows
from .update import batch_step


def sgd_epoch(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, step, a, z, delta, losses):
    r"""On-line gradient descent, :math:`w \leftarrow w - \eta \nabla E_n(w)`, one sample at a
    time, for every epoch of ``order`` (n_epochs, m), in one compiled call.

    Equals ``batch_epoch`` with ``batch_size=1`` (see ``deltaprop.contract``). This thin Python
    function only picks the compiled kernel, ``sgd_plain`` (solver sgd, α = 0), ``sgd_decay``
    (solver sgd, α > 0) or ``sgd_general``, so that each compiles on its own first use: a user
    of one never waits for the others' compilation. Zero inputs skip their rows unless the
    inputs are dense (``contract.mostly_nonzero``); dense inputs take windows of samples
    (``sgd_windows.sgd_windows``, with or without L2) where ``sgd_windows.use_windows`` says so.
    """
    skip = solver == SGD and not mostly_nonzero(X, order)
    windows = solver == SGD and not skip and use_windows(layout[0, N_IN], layout[0, N_OUT], X.itemsize)
    if windows:
        sgd_windows(w, layout, hidden, output, loss, X, T, s, order, hyper[ETA], hyper[ALPHA], a, z, delta, losses)
    elif solver == SGD and hyper[ALPHA] == 0:
        sgd_plain(w, layout, hidden, output, loss, X, T, s, order, hyper[ETA], a, z, delta, losses, skip)
    elif solver == SGD:
        sgd_decay(w, layout, hidden, output, loss, X, T, s, order, hyper[ETA], hyper[ALPHA], a, z, delta,
                  losses, skip)
    else:
        sgd_general(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, step,
                    a, z, delta, losses)


@kernel
def batch_epoch(w, layout, hidden, output, loss, X, T, s, order, batch_size, solver, hyper, state, step,
                Xb, Tb, sb, A, Z, D, g, losses):
    r"""Mini-batch gradient descent over consecutive batches B of ``order`` (n_epochs, m).

    For each batch: gather the samples into ``Xb``, ``Tb``, ``sb`` (not the inputs where the
    first layer's products read them in place); forward, output δ weighted by :math:`s_n`,
    δ-backprop and the gradient in matrix form (BLAS for large layers); then
    :math:`g = (\sum_{n \in B} s_n \nabla E_n + \alpha W) / S_B` and the solver's update.
    """
    U = A.shape[0] // batch_size
    alpha = hyper[ALPHA]
    one = w.dtype.type(1)
    n_epochs, m = order.shape
    # the gather copies rows through flat views with unsigned offsets: plain loops that
    # vectorise (a row slice assignment goes through numba's general strided copy)
    Xf, Tf, Xbf, Tbf = X.ravel(), T.ravel(), Xb.ravel(), Tb.ravel()
    n_in, n_t = np.uint64(X.shape[1]), np.uint64(T.shape[1])
    W0, _ = weights(w, layout, 0)
    no_rows = order[0, :0]
    for e in range(n_epochs):
        data = 0.0
        penalty = 0.0
        for start in range(0, m, batch_size):
            nb = min(batch_size, m - start)
            S = w.dtype.type(0)
            direct = use_indexed(nb, W0.shape[0], W0.shape[1], w.itemsize)
            for r in range(nb):
                idx = order[e, start + r]
                if not direct:
                    src, dst = np.uint64(idx) * n_in, np.uint64(r) * n_in
                    for j in range(n_in):
                        Xbf[dst + j] = Xf[src + j]
                src, dst = np.uint64(idx) * n_t, np.uint64(r) * n_t
                for j in range(n_t):
                    Tbf[dst + j] = Tf[src + j]
                sb[r] = s[idx]
                S += sb[r]
            if S == 0:
                continue
            xb, tb, s_b = Xb[:nb], Tb[:nb], sb[:nb]
            a, z, d = A[: nb * U], Z[: nb * U], D[: nb * U]
            rows = order[e, start : start + nb] if direct else no_rows
            if direct:
                forward_indexed(w, layout, hidden, output, X, rows, a, z)
                xb = X
            else:
                forward_from(w, layout, hidden, output, xb, nb, 0, a, z)
            E = output_delta(layout, output, loss, a, z, tb, s_b, d)
            backprop(w, layout, hidden, a, z, d)
            if solver == SGD or solver == MOMENTUM:  # the step in the gradient's products
                sq = gradient_step(layout, solver, xb, rows, z, d, w, state[0], hyper, one / S)
            else:  # g / S, the L2 term and the solver's rule in one pass over w
                batch_gradient(layout, xb, rows, z, d, g)
                sq = batch_step(layout, solver, w, g, hyper, state, step, one / S)
            data += nb * E / S
            if alpha != 0:
                penalty += nb * 0.5 * alpha * sq / S
        losses[e, 0] = data
        losses[e, 1] = penalty
