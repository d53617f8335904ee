r"""Per-sample gradient descent with momentum, Nesterov or Adam (and any L2): these change
every weight at every step, so no row can be skipped. For each sample: the forward pass, δ
weighted by :math:`s_n`, then per layer, from the last, δ of the layer below with the old
weights (:func:`backprop_rows`) and the solver's update of the layer's rows
(``update.update_rows``).
"""

from deltaprop.contract import ADAM, ALPHA, B_OFF, BETA_1, BETA_2, EPSILON, ETA, MU, N_IN, N_OUT, U_OFF, W_OFF

from ._jit import helper, kernel
from .activations import derivative
from .backprop import sample_delta
from .rows import U64, forward_rows, upper_forward
from .update import adam_rate, update_rows
from .vectors import prefetch


@helper
def backprop_rows(w, wo, n_in, n_out, hidden, a, z, delta, up, u):
    r""":math:`\delta_i = h'(a_i) \sum_k w_{ki} \delta_k` (5.56) for the n_in units of layer l-1
    at ``up``, from layer l's δ at ``u`` and its weights at ``w[wo]`` (one sample, unsigned offsets)."""
    one = w.dtype.type(1)
    zero = w.dtype.type(0)
    for i in range(n_in):
        ro = wo + i * n_out
        acc = zero
        for j in range(n_out):
            acc += w[ro + j] * delta[u + j]
        delta[up + i] = derivative(hidden, a[up + i], z[up + i], one) * acc


@kernel
def sgd_general(w, layout, hidden, output, loss, X, T, s, order, solver, hyper, state, step,
                a, z, delta, losses):
    r"""Per-sample gradient descent with any solver and L2: for each sample, forward, δ weighted
    by :math:`s_n`, then one pass per layer over the rows that propagates δ (old weights) and
    applies :math:`g = (s_n \delta_j z_i + \alpha w_{ji}) / s_n` with the solver's rule."""
    L = layout.shape[0]
    one = w.dtype.type(1)
    zero = w.dtype.type(0)
    alpha = hyper[ALPHA]
    uo, K = U64(layout[L - 1, U_OFF]), U64(layout[L - 1, N_OUT])
    eta, mu, b1, b2, eps = hyper[ETA], hyper[MU], hyper[BETA_1], hyper[BETA_2], hyper[EPSILON]
    eta_t = eta
    m, v = state[0], state[1]
    x, tf, Dx = X.ravel(), T.ravel(), U64(X.shape[1])  # flat views: no array is made per sample
    losses[:, :] = 0.0
    n_epochs, n_steps = order.shape
    row_bytes = U64(X.shape[1] * X.itemsize)
    far = row_bytes >= 1024  # long rows (for short ones the prefetch costs more than it saves)
    for e in range(n_epochs):
        for p in range(n_steps):
            n = order[e, p]
            if far:  # the next row: in L2 when the next sample's forward sum reads it
                ef, pf = (e, p + 1) if p + 1 < n_steps else (e + 1, 0)
                if ef < n_epochs:
                    prefetch(x, U64(order[ef, pf]) * Dx, row_bytes)
            S = s[n]
            if S == 0:
                continue
            inv_S = one / S
            xo = U64(n) * Dx
            forward_rows(w, U64(layout[0, W_OFF]), U64(layout[0, B_OFF]), U64(layout[0, N_IN]),
                         U64(layout[0, N_OUT]), x, xo, a, U64(0))
            upper_forward(w, layout, hidden, output, z, a)
            E = sample_delta(output, loss, a, z, tf, U64(n) * K, delta, uo, K)
            for k in range(uo, uo + K):
                delta[k] *= S
            losses[e, 0] += S * E * inv_S
            if solver == ADAM:
                eta_t = adam_rate(hyper, step)
            sq = zero
            for layer in range(L - 1, -1, -1):
                n_in, n_out = U64(layout[layer, N_IN]), U64(layout[layer, N_OUT])
                wo, bo, u = U64(layout[layer, W_OFF]), U64(layout[layer, B_OFF]), U64(layout[layer, U_OFF])
                if layer > 0:  # δ of layer l-1 with the old weights, then the update
                    up = U64(layout[layer - 1, U_OFF])
                    backprop_rows(w, wo, n_in, n_out, hidden, a, z, delta, up, u)
                    sq += update_rows(solver, w, m, v, wo, bo, n_in, n_out, z, up, delta, u,
                                      eta, eta_t, mu, b1, b2, eps, alpha, inv_S)
                else:
                    sq += update_rows(solver, w, m, v, wo, bo, n_in, n_out, x, xo, delta, u,
                                      eta, eta_t, mu, b1, b2, eps, alpha, inv_S)
            if alpha != 0:  # (never 0 * inf: the penalty of a diverged run with α = 0 stays 0)
                losses[e, 1] += 0.5 * alpha * sq * inv_S
