r"""Gradient-descent epochs, on-line and mini-batch, each ONE compiled call (mirrors
``_numpy/epoch.py``).

.. math:: w^{(\tau+1)} = w^{(\tau)} - \eta \nabla E_n(w^{(\tau)})

The per-sample epoch (:func:`sgd_epoch`) fuses, for each sample: the forward pass, the output
δ, and one pass per layer over the rows of ``W_l`` that both propagates δ (the dot product of
row ``i`` with :math:`\delta_l`, using the old weights) and updates the row in place. Nothing is
allocated in the loop and no gradient vector is ever stored.

Plain SGD without L2 (:func:`sgd_plain`, the common case) goes further, and stays exact:

- a zero input :math:`x_i = 0` skips row ``i`` of ``W_0`` in the forward sum (it would add
  :math:`0 \cdot w`) and in the update (it would subtract :math:`\eta \cdot 0 \cdot \delta`), so
  sparse inputs such as images touch only their non-zero rows;
- the update of ``W_0`` for sample n is fused with the forward sum of sample n+1: row ``i`` is
  updated and then, still in registers, added to the next sample's pre-activations. The
  additions happen in the same order as in an unfused forward pass, so the results are
  identical, and ``W_0`` (by far the largest layer) is streamed once per sample instead of twice.

Momentum, Nesterov, Adam and L2 change every weight at every step, so they cannot skip rows;
they run :func:`sgd_general`.
"""

import numpy as np

from ._jit import kernel
from .activations import activate, derivative
from .backprop import backprop, gradient, output_delta, sample_delta
from .forward import forward, layer_forward, units, weights
from .update import ADAM, ALPHA, ETA, SGD, adam_rate, update, update_row


@kernel
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


@kernel
def hidden_layers_forward(w, layout, hidden, output, z, a):
    """Activations of layer 0 (its pre-activations are ready in ``a``) and the forward pass of
    layers 1..L-1, for one sample."""
    L = layout.shape[0]
    for l in range(L):
        n_out, u_off = layout[l, 1], layout[l, 4]
        a_l, z_l = a[u_off : u_off + n_out], z[u_off : u_off + n_out]
        if l > 0:
            W, b = weights(w, layout, l)
            u_prev = layout[l - 1, 4]
            layer_forward(W, b, z[u_prev : u_prev + layout[l, 0]], a_l)
        activate(output if l == L - 1 else hidden, a_l, z_l)


@kernel
def sgd_plain(w, layout, hidden, output, loss, X, T, s, order, eta, a, z, delta, losses, skip_zeros):
    r"""Per-sample SGD, :math:`w \leftarrow w - \eta \nabla E_n(w)`, no L2: zero inputs skip
    their rows, and the update of ``W_0`` is fused with the next sample's forward sum.

    ``skip_zeros=False`` processes zero rows too (identical results; kept for the tests).
    """
    L = layout.shape[0]
    n_epochs = order.shape[0]
    one = w.dtype.type(1)
    W0, b0 = weights(w, layout, 0)
    n_in0, n_out0 = W0.shape
    a0, d0 = a[:n_out0], delta[:n_out0]
    u_out = layout[L - 1, 4]
    K = layout[L - 1, 1]
    losses[:, :] = 0.0
    e, p = next_sample(order, s, 0, 0)
    if e < n_epochs:  # the first forward sum of layer 0; later ones are fused with the update
        x = X[order[e, p]]
        for j in range(n_out0):
            a0[j] = b0[j]
        for i in range(n_in0):
            xi = x[i]
            if xi != 0 or not skip_zeros:
                row = W0[i]
                for j in range(n_out0):
                    a0[j] += xi * row[j]
    while e < n_epochs:
        n = order[e, p]
        x = X[n]
        hidden_layers_forward(w, layout, hidden, output, z, a)
        losses[e, 0] += sample_delta(output, loss, a[u_out : u_out + K], z[u_out : u_out + K],
                                     T[n], delta[u_out : u_out + K])
        # layers L-1..1: one pass over the rows propagates δ (old weights) and updates the row
        for l in range(L - 1, 0, -1):
            W, b = weights(w, layout, l)
            n_in, n_out = W.shape
            u, u_prev = layout[l, 4], layout[l - 1, 4]
            d = delta[u : u + n_out]
            for i in range(n_in):
                zi = z[u_prev + i]
                c = eta * zi
                row = W[i]
                acc = zi - zi
                for j in range(n_out):
                    wij = row[j]
                    acc += wij * d[j]
                    row[j] = wij - c * d[j]
                delta[u_prev + i] = derivative(hidden, a[u_prev + i], zi, one) * acc
            for j in range(n_out):
                b[j] -= eta * d[j]
        # layer 0: update row i for this sample, then add it to the next sample's forward sum
        for j in range(n_out0):
            b0[j] -= eta * d0[j]
        e2, p2 = next_sample(order, s, e, p + 1)
        if e2 < n_epochs:
            x2 = X[order[e2, p2]]
            for j in range(n_out0):
                a0[j] = b0[j]
            for i in range(n_in0):
                xi, x2i = x[i], x2[i]
                row = W0[i]
                upd = xi != 0 or not skip_zeros
                fwd = x2i != 0 or not skip_zeros
                if upd and fwd:
                    c = eta * xi
                    for j in range(n_out0):
                        wij = row[j] - c * d0[j]
                        row[j] = wij
                        a0[j] += x2i * wij
                elif upd:
                    c = eta * xi
                    for j in range(n_out0):
                        row[j] = row[j] - c * d0[j]
                elif fwd:
                    for j in range(n_out0):
                        a0[j] += x2i * row[j]
        else:
            for i in range(n_in0):
                xi = x[i]
                if xi != 0 or not skip_zeros:
                    c = eta * xi
                    row = W0[i]
                    for j in range(n_out0):
                        row[j] = row[j] - c * d0[j]
        e, p = e2, p2


@kernel
def sgd_general(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, t,
                a, z, delta, losses):
    r"""Per-sample gradient descent with any solver and L2: for each sample, forward, δ weighted
    by :math:`s_n`, then one pass per layer over the rows that propagates δ (old weights) and
    applies :math:`g = (s_n \delta_j z_i + \alpha w_{ji}) / s_n` with the solver's rule."""
    L = layout.shape[0]
    one = w.dtype.type(1)
    zero = w.dtype.type(0)
    alpha = hyper[ALPHA]
    u_out = layout[L - 1, 4]
    K = layout[L - 1, 1]
    eta_t = hyper[ETA]
    losses[:, :] = 0.0
    for e in range(order.shape[0]):
        for p in range(order.shape[1]):
            n = order[e, p]
            S = s[n]
            if S == 0:
                continue
            inv_S = one / S
            x = X[n]
            W0, b0 = weights(w, layout, 0)
            layer_forward(W0, b0, x, a[: layout[0, 1]])
            hidden_layers_forward(w, layout, hidden, output, z, a)
            d_out = delta[u_out : u_out + K]
            E = sample_delta(output, loss, a[u_out : u_out + K], z[u_out : u_out + K], T[n], d_out)
            for k in range(K):
                d_out[k] *= S
            losses[e, 0] += S * E * inv_S
            if solver == ADAM:
                eta_t = adam_rate(hyper, t)
            sq = zero
            for l in range(L - 1, -1, -1):
                W, b = weights(w, layout, l)
                V0, c0 = weights(state[0], layout, l)
                V1, c1 = weights(state[1], layout, l)
                n_in, n_out = W.shape
                u = layout[l, 4]
                d = delta[u : u + n_out]
                u_prev = layout[l - 1, 4] if l > 0 else 0
                for i in range(n_in):
                    row = W[i]
                    if l > 0:
                        zi = z[u_prev + i]
                        acc = zero
                        for j in range(n_out):
                            acc += row[j] * d[j]
                        delta[u_prev + i] = derivative(hidden, a[u_prev + i], zi, one) * acc
                    else:
                        zi = x[i]
                    sq += update_row(solver, hyper, eta_t, row, V0[i], V1[i], zi, d, alpha, inv_S)
                update_row(solver, hyper, eta_t, b, c0, c1, one, d, zero, inv_S)
            if alpha != 0:  # (never 0 * inf: the penalty of a diverged run with α = 0 stays 0)
                losses[e, 1] += 0.5 * alpha * sq * inv_S


@kernel
def sgd_epoch(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, t, a, z, delta, losses):
    r"""On-line gradient descent, :math:`w \leftarrow w - \eta \nabla E_n(w)`, one sample at a
    time, for every epoch of ``order`` (n_epochs, m), in one compiled call.

    Equals ``batch_epoch`` with ``batch_size=1`` (see ``deltaprop.contract``).
    """
    if solver == SGD and hyper[ALPHA] == 0:
        sgd_plain(w, layout, hidden, output, loss, X, T, s, order, hyper[ETA], a, z, delta, losses, True)
    else:
        sgd_general(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, t,
                    a, z, delta, losses)


@kernel
def batch_epoch(w, layout, hidden, output, loss, X, T, s, order, batch_size, solver, hyper, state, t,
                Xb, Tb, sb, A, Z, D, g, losses):
    r"""Mini-batch gradient descent over consecutive batches B of ``order`` (n_epochs, m).

    For each batch: gather the samples into ``Xb``, ``Tb``, ``sb``; forward, output δ weighted
    by :math:`s_n`, δ-backprop and the gradient in matrix form (BLAS for large layers); then
    :math:`g = (\sum_{n \in B} s_n \nabla E_n + \alpha W) / S_B` and the solver's update.
    """
    U = A.shape[0] // batch_size
    alpha = hyper[ALPHA]
    L = layout.shape[0]
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
                Xb[r, :] = X[idx]
                Tb[r, :] = T[idx]
                sb[r] = s[idx]
                S += sb[r]
            if S == 0:
                continue
            xb, tb, s_b = Xb[:nb], Tb[:nb], sb[:nb]
            a, z, d = A[: nb * U], Z[: nb * U], D[: nb * U]
            forward(w, layout, hidden, output, xb, a, z)
            E = output_delta(layout, output, loss, a, z, tb, s_b, d)
            backprop(w, layout, hidden, a, z, d)
            gradient(layout, xb, z, d, g)
            sq = 0.0
            if alpha != 0:
                for l in range(L):
                    W, _ = weights(w, layout, l)
                    gW, _ = weights(g, layout, l)
                    n_in, n_out = W.shape
                    for i in range(n_in):
                        for j in range(n_out):
                            gW[i, j] += alpha * W[i, j]
                            sq += W[i, j] * W[i, j]
            inv_S = one / S
            for q in range(g.shape[0]):
                g[q] *= inv_S
            data += nb * E / S
            if alpha != 0:
                penalty += nb * 0.5 * alpha * sq / S
            update(w, g, solver, hyper, state, t)
        losses[e, 0] = data
        losses[e, 1] = penalty
