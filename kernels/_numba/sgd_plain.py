r"""Per-sample SGD without L2 (solver sgd, α = 0), the common case:
:math:`w \leftarrow w - \eta \nabla E_n(w)`, one sample at a time.

For each sample: the forward pass, the output δ, and one pass per layer l ≥ 1 over the rows of
``W_l`` that both propagates δ (the dot product of row ``i`` with :math:`\delta_l`, using the
old weights) and updates the row in place (:func:`backprop_update_rows`). Nothing is allocated
in the loop and no gradient vector is ever stored. The first layer goes further, and stays
exact (:func:`first_layer`):

- a zero input :math:`x_i = 0` skips row ``i`` of ``W_0`` in the forward sum (it would add
  :math:`0 \cdot w`) and in the update (it would subtract :math:`\eta \cdot 0 \cdot \delta`), so
  sparse inputs such as images touch only their non-zero rows;
- the update of ``W_0`` for sample n is fused with the forward sum of sample n+1: row ``i`` is
  updated and then, still in registers, added to the next sample's pre-activations. The
  additions happen in the same order as in an unfused forward pass (compiled without
  ``reassoc``), so the results are identical, and ``W_0`` (by far the largest layer) is
  streamed once per sample instead of twice.

Dense inputs go further where the indexed products of ``indexed`` run
(:func:`sgd_plain_windows`): the first layer's forward sums and updates of a window of samples,
each in one pass over ``W_0``.
"""

import numpy as np

from deltaprop.contract import B_OFF, N_IN, N_OUT, U_OFF, W_OFF

from ._jit import exact_helper, helper, kernel
from .backprop import sample_delta
from .indexed import indexed_matmul, use_indexed, window_update
from .rows import U64, backprop_update, first_rows, list_rows, next_sample, upper_forward
from .vectors import prefetch


@helper
def backprop_update_rows(w, wo, bo, n_in, n_out, hidden, a, z, delta, up, u, eta):
    r"""Layer l ≥ 1 of one sample, one pass over the rows of ``W_l``: with the old row i,
    :math:`\delta_i = h'(a_i) \sum_k w_{ki} \delta_k` (5.56); then
    :math:`w_{ki} \leftarrow w_{ki} - \eta z_i \delta_k` and :math:`w_{k0} \leftarrow w_{k0} - \eta \delta_k`
    (``rows.backprop_update``).
    """
    backprop_update(w, wo, bo, n_in, n_out, hidden, a, z, delta, up, u, eta, w.dtype.type(1), False)


@exact_helper
def first_layer(w, layout, a, delta, x, xo, x2o, eta, active, upd, fwd, skip_zeros):
    r"""Layer 0, fused: update ``W_0``, ``b_0`` with the sample at ``x[xo:]``'s δ (if ``upd``), and
    compute the pre-activations ``a_0`` of the next sample, at ``x[x2o:]`` (if ``fwd``), in one
    sweep over the rows (``x`` is the flat X, offsets unsigned: no views per sample).

    .. math:: w_{ji} \leftarrow w_{ji} - \eta x_i \delta_j, \qquad
              a'_j \leftarrow w_{j0} + \sum_i w_{ji} x'_i

    With ``skip_zeros`` only the rows with :math:`x_i \ne 0` or :math:`x'_i \ne 0` are visited
    (``active`` (n_in,) intp receives their indices, ``rows.list_rows``); the others would
    change nothing (exact for finite weights). Compiled without ``reassoc``: the sum runs over i
    in order, in blocks of four rows or not, with zero inputs or without, so every variant gives
    the same bits.
    """
    n_in, n_out = U64(layout[0, N_IN]), U64(layout[0, N_OUT])
    wo, bo = U64(layout[0, W_OFF]), U64(layout[0, B_OFF])
    for j in range(n_out):
        if upd:
            w[bo + j] -= eta * delta[j]
        if fwd:
            a[j] = w[bo + j]
    na = list_rows(x, xo, x2o, n_in, active, upd, fwd, skip_zeros)
    if upd and fwd:
        first_rows(w, wo, n_out, active, na, x, xo, x2o, eta, delta, a, a, True, True, False)
    elif upd:
        first_rows(w, wo, n_out, active, na, x, xo, x2o, eta, delta, a, a, True, False, False)
    elif fwd:
        first_rows(w, wo, n_out, active, na, x, xo, x2o, eta, delta, a, a, False, True, False)


@kernel
def sgd_plain(w, layout, hidden, output, loss, X, T, s, order, eta, a, z, delta, losses, skip_zeros):
    r"""Per-sample SGD, :math:`w \leftarrow w - \eta \nabla E_n(w)`, without L2: zero inputs skip
    their rows, and the update of ``W_0`` is fused with the next sample's forward sum.

    ``skip_zeros=False`` visits zero rows too (identical results; kept for the tests).
    """
    L = layout.shape[0]
    n_epochs = order.shape[0]
    uo, K = U64(layout[L - 1, U_OFF]), U64(layout[L - 1, N_OUT])
    active = np.empty(layout[0, N_IN], dtype=np.intp)
    x, tf, Dx = X.ravel(), T.ravel(), U64(X.shape[1])  # flat views: no array is made per sample
    losses[:, :] = 0.0
    e, p = next_sample(order, s, 0, 0)
    if e < n_epochs:  # the first forward sum of layer 0; later ones are fused with the update
        xo = U64(order[e, p]) * Dx
        first_layer(w, layout, a, delta, x, xo, xo, eta, active, False, True, skip_zeros)
    m = order.shape[1]
    row_bytes = U64(X.shape[1] * X.itemsize)
    far = row_bytes >= 1024  # long rows (for short ones the prefetch costs more than it saves)
    while e < n_epochs:
        n = order[e, p]
        xo = U64(n) * Dx
        if far:  # the row after the next one: in L2 when the sweep reads it
            ef, pf = (e, p + 2) if p + 2 < m else (e + 1, p + 2 - m)
            if ef < n_epochs and pf < m:
                prefetch(x, U64(order[ef, pf]) * Dx, row_bytes)
        upper_forward(w, layout, hidden, output, z, a)
        losses[e, 0] += sample_delta(output, loss, a, z, tf, U64(n) * K, delta, uo, K)
        for layer in range(L - 1, 0, -1):
            backprop_update_rows(w, U64(layout[layer, W_OFF]), U64(layout[layer, B_OFF]), U64(layout[layer, N_IN]),
                                 U64(layout[layer, N_OUT]), hidden, a, z, delta, U64(layout[layer - 1, U_OFF]),
                                 U64(layout[layer, U_OFF]), eta)
        e2, p2 = next_sample(order, s, e, p + 1)
        if e2 < n_epochs:
            first_layer(w, layout, a, delta, x, xo, U64(order[e2, p2]) * Dx, eta, active, True, True,
                        skip_zeros)
        else:
            first_layer(w, layout, a, delta, x, xo, xo, eta, active, True, False, skip_zeros)
        e, p = e2, p2


#: the samples of one window of :func:`sgd_plain_windows` (the rows of one register tile of ``indexed``)
WINDOW = 6


@helper
def use_windows(n_in, n_out, itemsize):
    """Whether plain sgd on dense inputs takes :func:`sgd_plain_windows`: where the indexed
    products take a batch of :data:`WINDOW` rows (``indexed.use_indexed``)."""
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
def prefetch_window(X, order, e, p):
    """Ask the caches (into L2) for the rows of X of the :data:`WINDOW` positions of ``order``
    from ``(e, p)`` on: the next window's, read by its products after this window's samples."""
    n_epochs, m = order.shape
    xf = X.ravel()
    row_bytes = U64(X.shape[1] * X.itemsize)
    for _ in range(WINDOW):
        if e >= n_epochs:
            break
        prefetch(xf, U64(order[e, p]) * U64(X.shape[1]), row_bytes)
        p += 1
        if p == m:
            e, p = e + 1, 0


@helper
def window_corrections(x, X, idx, k, D, a, u0, n_out, eta):
    r"""Add the updates of the window's samples 0..k-1 to sample k's pre-activations at ``a[u0:]``:
    :math:`a \mathrel{-}= \eta \sum_{r<k} (x_k \cdot x_r + 1)\, \delta_r` (``x`` is X's row of sample
    k; ``D`` holds the window's δ of layer 0)."""
    for r in range(k):
        xr = X[idx[r]]
        g = 0.0 * x[0]
        for i in range(x.shape[0]):
            g += x[i] * xr[i]
        c = -eta * (g + 1)
        for j in range(n_out):
            a[u0 + j] += c * D[r, j]


@kernel
def sgd_plain_windows(w, layout, hidden, output, loss, X, T, s, order, eta, a, z, delta, losses):
    r"""Plain on-line sgd without L2 on dense inputs, the first layer a window of :data:`WINDOW`
    samples at a time.

    Within a window that begins at weights :math:`W_0, b_0`, sample n sees the weights that the
    window's earlier samples m < n left, :math:`W_0 - \eta \sum_{m<n} x_m \delta_m^T` (and
    :math:`b_0 - \eta \sum_{m<n} \delta_m`), so its pre-activations are exactly

    .. math:: a_n = b_0 + x_n W_0 - \eta \sum_{m<n} (x_n \cdot x_m + 1)\, \delta_m :

    the products :math:`x_n W_0` of the whole window are one pass over ``W_0`` (``indexed``'s
    register tiles), and its updates one more, :math:`W_0 \leftarrow W_0 - \eta \sum_n x_n
    \delta_n^T` (``indexed.window_update``, each weight updated sample after sample as
    :func:`sgd_plain` would), where :func:`sgd_plain` makes one pass per sample. The layers above are updated
    sample by sample as there. The same steps as :func:`sgd_plain` in exact arithmetic; the sums
    are grouped otherwise, so the rounding differs.
    """
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
    tf = T.ravel()
    losses[:, :] = 0.0
    e, p = next_sample(order, s, 0, 0)
    while e < n_epochs:
        e, p, nw = next_window(order, s, e, p, idx, at)
        rows = idx[:nw]
        indexed_matmul(X, rows, W0, A[:nw])
        prefetch_window(X, order, e, p)
        for k in range(nw):
            n = idx[k]
            for j in range(n_out):
                a[u0 + j] = A[k, j] + w[bo + j]
            window_corrections(X[n], X, idx, k, D, a, u0, n_out, eta)
            upper_forward(w, layout, hidden, output, z, a)
            losses[at[k], 0] += sample_delta(output, loss, a, z, tf, U64(n) * K, delta, uo, K)
            for layer in range(L - 1, 0, -1):
                backprop_update_rows(w, U64(layout[layer, W_OFF]), U64(layout[layer, B_OFF]),
                                     U64(layout[layer, N_IN]), U64(layout[layer, N_OUT]), hidden, a, z, delta,
                                     U64(layout[layer - 1, U_OFF]), U64(layout[layer, U_OFF]), eta)
            for j in range(n_out):
                D[k, j] = delta[u0 + j]
        for k in range(nw):
            x = X[idx[k]]
            for i in range(n_in):
                C[k, i] = eta * x[i]
        window_update(W0, C[:nw], D[:nw], w.dtype.type(1))
        for k in range(nw):
            for j in range(n_out):
                w[bo + j] -= eta * D[k, j]
