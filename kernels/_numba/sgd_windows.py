r"""Per-sample SGD (solver sgd), with or without L2, on dense inputs: the first layer a window of
:data:`WINDOW` samples at a time, its forward sums and its updates one pass over ``W_0`` each.

Sample k of a window decays the weights by :math:`r_k = 1 - \eta\alpha/s_k` (1 without L2)
before its step, so the first layer it sees is
:math:`W_k = P_k W_0 - \eta \sum_{m<k} Q_{mk}\, x_m \delta_m^T` with
:math:`P_k = \prod_{l<k} r_l` and :math:`Q_{mk} = \prod_{m<l<k} r_l` (:math:`W_0` as the window
began), and its pre-activations are exactly

.. math:: a_k = b_k + P_k\, x_k W_0 - \eta \sum_{m<k} Q_{mk} (x_k \cdot x_m)\, \delta_m :

the products :math:`x_k W_0` of the whole window are one pass over ``W_0`` (``indexed``'s
register tiles), and its updates one more, :math:`W_0 \leftarrow P_K W_0 - \eta \sum_k Q_{kK}\,
x_k \delta_k^T` (``indexed.window_update``; without L2 each weight is updated sample after
sample, rounded as the sweep rounds it), where ``sgd_plain.sgd_plain`` and
``sgd_decay.sgd_decay`` make one pass per sample. The bias and the layers above step (and decay)
sample by sample as there. With L2 the penalty's :math:`\lVert W_k \rVert^2` follows without a
pass (:func:`window_norm`), :math:`\lVert W_0 \rVert^2` summed exactly at the first window of
each epoch. The same steps as the sample-by-sample kernels in exact arithmetic; the
pre-activations of layer 0 are summed in another order, so the rounding differs.
"""

import numpy as np

from deltaprop.contract import B_OFF, N_IN, N_OUT, U_OFF, W_OFF

from ._jit import helper, kernel
from .backprop import sample_delta
from .indexed import indexed_matmul, use_indexed, window_update
from .rows import U64, next_sample, upper_forward
from .sgd_decay import backprop_decay_rows
from .sgd_plain import backprop_update_rows
from .vectors import prefetch

#: the samples of one window (the rows of one register tile of ``indexed``)
WINDOW = 6


@helper
def use_windows(n_in, n_out, itemsize):
    """Whether plain sgd on dense inputs takes :func:`sgd_windows`: where the indexed products
    take a batch of :data:`WINDOW` rows (``indexed.use_indexed``)."""
    return use_indexed(WINDOW, n_in, n_out, itemsize)


@helper
def next_window(order, s, e, p, idx, at):
    """The next window of samples from position ``(e, p)`` of ``order`` (``next_sample``'s: weight
    0 skipped): their rows of X into ``idx`` and their epochs into ``at``, at most
    :data:`WINDOW`; returns the position after them and how many there are."""
    n_epochs = order.shape[0]
    nw = 0
    while e < n_epochs and nw < WINDOW:
        idx[nw] = order[e, p]
        at[nw] = e
        nw += 1
        e, p = next_sample(order, s, e, p + 1)
    return e, p, nw


@helper
def prefetch_window(xf, n_in, row_bytes, order, e, p):
    """Ask the caches (into L2) for the rows (``n_in`` values, ``row_bytes`` bytes) of the flat
    X ``xf`` at the :data:`WINDOW` positions of ``order`` from ``(e, p)`` on: the next window's,
    read by its products after this window's samples."""
    n_epochs, m = order.shape
    for _ in range(WINDOW):
        if e >= n_epochs:
            break
        prefetch(xf, U64(order[e, p]) * n_in, row_bytes)
        p += 1
        if p == m:
            e, p = e + 1, 0


@helper
def dots(x, Y, rows, k, out):
    """``out[r] = x . Y[rows[r]]`` for r < k."""
    for r in range(k):
        y = Y[rows[r]]
        g = 0.0 * x[0]
        for i in range(x.shape[0]):
            g += x[i] * y[i]
        out[r] = g


@helper
def window_norm(P, sq0, eta, q, DA, G, DD, k):
    r""":math:`\lVert W_k \rVert^2` for :math:`W_k = P W_0 - \eta \sum_{m<k} q_m x_m \delta_m^T`:
    :math:`P^2 \lVert W_0 \rVert^2 - 2 \eta P \sum_m q_m\, \delta_m \cdot (x_m W_0)
    + \eta^2 \sum_{m, m'} q_m q_{m'} (x_m \cdot x_{m'}) (\delta_m \cdot \delta_{m'})`, from
    ``sq0`` (:math:`\lVert W_0 \rVert^2`), ``DA`` (:math:`\delta_m \cdot x_m W_0`), ``G`` (the
    Gram matrix of the x) and ``DD`` (of the δ), in float64."""
    cross = 0.0
    quad = 0.0
    for r in range(k):
        cross += q[r] * DA[r]
        for r2 in range(k):
            quad += q[r] * q[r2] * G[r, r2] * DD[r, r2]
    return P * P * sq0 - 2.0 * eta * P * cross + eta * eta * quad


@kernel
def sgd_windows(w, layout, hidden, output, loss, X, T, s, order, eta, alpha, a, z, delta, losses):
    r"""Per-sample SGD, :math:`w \leftarrow w - \eta (\nabla E_n + \alpha W / s_n)` (biases not
    decayed; α = 0 is plain sgd), on dense inputs, the first layer a window of :data:`WINDOW`
    samples at a time (see the module's docstring)."""
    L = layout.shape[0]
    n_epochs = order.shape[0]
    n_in, n_out = layout[0, N_IN], layout[0, N_OUT]
    wo, bo, u0 = U64(layout[0, W_OFF]), U64(layout[0, B_OFF]), U64(layout[0, U_OFF])
    uo, K = U64(layout[L - 1, U_OFF]), U64(layout[L - 1, N_OUT])
    W0 = w[wo:wo + U64(n_in * n_out)].reshape((n_in, n_out))
    A = np.empty((WINDOW, n_out), dtype=w.dtype)
    D = np.empty((WINDOW, n_out), dtype=w.dtype)
    C = np.empty((WINDOW, n_in), dtype=w.dtype)
    idx = np.empty(WINDOW, dtype=np.intp)
    at = np.empty(WINDOW, dtype=np.intp)
    seq = np.arange(WINDOW)
    q = np.empty(WINDOW, dtype=w.dtype)
    row = np.empty(WINDOW, dtype=w.dtype)
    G = np.empty((WINDOW, WINDOW))
    DD = np.empty((WINDOW, WINDOW))
    DA = np.empty(WINDOW)
    tf, xf = T.ravel(), X.ravel()
    row_bytes = U64(X.shape[1] * X.itemsize)
    one = w.dtype.type(1)
    eta_alpha = eta * alpha
    decay = alpha != 0
    rk = one
    sq = 0.0
    sq0 = 0.0
    e_first = -1
    losses[:, :] = 0.0
    e, p = next_sample(order, s, 0, 0)
    while e < n_epochs:
        e, p, nw = next_window(order, s, e, p, idx, at)
        if decay and at[0] != e_first:  # the first window of an epoch: the exact norm
            e_first = at[0]
            sq0 = 0.0
            for i in range(n_in):
                for j in range(n_out):
                    sq0 += W0[i, j] * W0[i, j]
        rows = idx[:nw]
        indexed_matmul(X, rows, W0, A[:nw])
        prefetch_window(xf, U64(n_in), row_bytes, order, e, p)
        P = one
        for k in range(nw):
            n = idx[k]
            for j in range(n_out):
                a[u0 + j] = w[bo + j] + P * A[k, j]
            dots(X[n], X, idx, k + 1 if decay else k, row)  # x_k . x_r, r < k (r = k for the penalty)
            for r in range(k):  # the window's earlier steps, seen through x_k
                c = -eta * q[r] * row[r]
                for j in range(n_out):
                    a[u0 + j] += c * D[r, j]
            upper_forward(w, layout, hidden, output, z, a)
            S = s[n]
            losses[at[k], 0] += sample_delta(output, loss, a, z, tf, U64(n) * K, delta, uo, K)
            if decay:
                for r in range(k + 1):
                    G[k, r] = row[r]
                    G[r, k] = row[r]
                rk = one - eta_alpha / S
                sq = window_norm(P, sq0, eta, q, DA, G, DD, k)
            for layer in range(L - 1, 0, -1):
                wl, bl = U64(layout[layer, W_OFF]), U64(layout[layer, B_OFF])
                nil, nol = U64(layout[layer, N_IN]), U64(layout[layer, N_OUT])
                up, u = U64(layout[layer - 1, U_OFF]), U64(layout[layer, U_OFF])
                if decay:
                    sq += backprop_decay_rows(w, wl, bl, nil, nol, hidden, a, z, delta, up, u, eta, rk)
                else:
                    backprop_update_rows(w, wl, bl, nil, nol, hidden, a, z, delta, up, u, eta)
            for j in range(n_out):
                D[k, j] = delta[u0 + j]
                w[bo + j] -= eta * delta[u0 + j]
            if decay:
                losses[at[k], 1] += 0.5 * alpha * sq / S
                dots(D[k], D, seq, k + 1, row)  # delta_k . delta_r, r <= k
                for r in range(k + 1):
                    DD[k, r] = row[r]
                    DD[r, k] = row[r]
                dots(D[k], A[k:], seq, 1, row)
                DA[k] = row[0]
            for r in range(k):
                q[r] *= rk
            q[k] = one
            P *= rk
        for r in range(nw):
            x = X[idx[r]]
            c = eta * q[r]
            for i in range(n_in):
                C[r, i] = c * x[i]
        if decay:
            sq0 = window_norm(P, sq0, eta, q, DA, G, DD, nw)
        window_update(W0, C[:nw], D[:nw], P)
