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
(``sgd_windows.sgd_windows``): the first layer's forward sums and updates of a window of
samples, each in one pass over ``W_0``.
"""

import numpy as np

from deltaprop.contract import B_OFF, N_IN, N_OUT, U_OFF, W_OFF

from ._jit import exact_helper, helper, kernel
from .backprop import sample_delta
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

