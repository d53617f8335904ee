r"""Gradient-descent epochs: on-line (one sample at a time) and mini-batch.

Mirrors ``kernels/_numpy/epoch.py``. :func:`sgd_epoch` is one compiled call for all epochs of
``order``: per sample, forward → δ → the update of every weight, fused, with no gradient
buffer and no allocation. :func:`batch_epoch` composes the batch kernels of ``forward`` and
``backprop`` (BLAS where it pays) with ``update``.

Design of the per-sample loop
-----------------------------
With ``batch_size = 1`` the contract's gradient is
:math:`g = (s_n \nabla E_n + \alpha W) / s_n = \nabla E_n + (\alpha / s_n) W`, so δ is
computed unweighted and a sample with :math:`s_n = 0` is skipped. Going down the layers, row
i of :math:`W_l` is read once for :math:`\delta_{l-1,i} = h'(a_i)\, W_{i,:} \cdot \delta_l`
and then updated in place, :math:`W_{i,:} \mathrel{-}= \eta z_i \delta_l`, while it is still in
cache. Plain sgd without L2 (the common case) has a faster loop: zero inputs skip their rows
(the update is then exactly zero), and the first layer's update for sample n is fused with
the forward sum of the next sample n' (row i is updated, then immediately used for
:math:`a' \mathrel{+}= x'_i W_{i,:}`): one pass over the largest matrix per sample instead of
two, with the same results. Rows go four at a time (the δ dot products and the updates of four
rows in one loop; ``a'`` loaded and stored once per four rows), and the first layer visits
only the rows listed as non-zero in x or x' (listed without branches). The innermost loops are
small C kernels in ``_core.pxd`` (``restrict`` pointers, ``omp simd`` reductions) so that the C
compiler vectorises them; this module is also built as ``epoch_avx2`` (-mavx2 -mfma), which
``deltaprop.kernels._cython`` picks on CPUs that have AVX2 and FMA.

Plain sgd with L2 (:func:`sgd_decay`, scikit-learn's default ``alpha=1e-4``) keeps both tricks,
as the numba backend's ``sgd_decay`` does: the decay :math:`W_0 \leftarrow (1 - \eta\alpha/s_n) W_0`
would touch every weight of the first layer, so :math:`W_0 = c V_0` is stored as a scalar times
a matrix; the decay multiplies ``c``, the step on V is divided by ``c``, and ``c`` is folded back
into V when it leaves [2^-10, 2^10] and at the end of the call. Equal to the reference to
rounding, not bit for bit. Momentum, Nesterov and Adam change every weight at every step:
they run :func:`sgd_general`.

The mini-batch path with plain sgd and no L2 needs no gradient buffer either: the gradient's
gemm accumulates straight into W (``beta = 1``, ``alpha = -η / S_B``).
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython cimport floating
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

from ._core cimport (ADAM, ALPHA, BETA_1, BETA_2, EPSILON, ETA, MOMENTUM, MU, NESTEROV, SGD,
                     activate, axpy, axpy_axpy, dense, derivative, dot, dot_decay1, dot_decay4,
                     dot_update1, dot_update4, f_sqrt, nonzero_rows, output_error, rows4,
                     scale_norm)
from .backprop cimport backprop_batch, gradient_batch, gradient_step, output_delta_batch
from .forward cimport forward_batch
from .update cimport adam_rate, update
from ._checks import check_epoch


# --------------------------------------------------------------------------- per-sample pieces
cdef inline Py_ssize_t next_step(const Py_ssize_t* order, const floating* s, Py_ssize_t p,
                                 Py_ssize_t n_steps) noexcept nogil:
    """The first position after ``p`` in the flattened order whose sample weight is non-zero."""
    p += 1
    while p < n_steps and s[order[p]] == 0:
        p += 1
    return p


cdef inline void forward_one(const floating* w, const Py_ssize_t* layout, Py_ssize_t L,
                             int hidden, int output, const floating* x, floating* a, floating* z,
                             bint first_summed) noexcept nogil:
    """Forward pass of one sample; with ``first_summed`` layer 0's sum is already in ``a``."""
    cdef Py_ssize_t l, uo
    cdef const floating* z_in = x
    for l in range(L):
        uo = layout[5 * l + 4]
        if l > 0 or not first_summed:
            dense(layout[5 * l], layout[5 * l + 1], w + layout[5 * l + 2], w + layout[5 * l + 3],
                  z_in, a + uo)
        activate(output if l == L - 1 else hidden, layout[5 * l + 1], a + uo, z + uo)
        z_in = z + uo


cdef inline void step_row(int solver, Py_ssize_t n, floating zi, const floating* d, floating c,
                          floating* w, floating* s0, floating* s1, const floating* hyper,
                          double eta_t) noexcept nogil:
    r"""Update ``w[:n]`` with :math:`g_j = z_i \delta_j + c\, w_j` by ``solver`` (state rows
    ``s0``, ``s1``). No reduction in these loops, so they vectorise (the L2 term's
    :math:`\sum w^2` is taken before, by :func:`dot`)."""
    cdef Py_ssize_t j
    cdef floating g, wj, et
    cdef floating eta = hyper[ETA], mu = hyper[MU], b1 = hyper[BETA_1], b2 = hyper[BETA_2]
    cdef floating eps = hyper[EPSILON]
    if solver == SGD:
        for j in range(n):
            wj = w[j]
            w[j] = wj - eta * (zi * d[j] + c * wj)
    elif solver == MOMENTUM:
        for j in range(n):
            wj = w[j]
            s0[j] = mu * s0[j] - eta * (zi * d[j] + c * wj)
            w[j] = wj + s0[j]
    elif solver == NESTEROV:
        for j in range(n):
            wj = w[j]
            g = zi * d[j] + c * wj
            s0[j] = mu * s0[j] - eta * g
            w[j] = wj + (mu * s0[j] - eta * g)
    elif solver == ADAM:
        et = <floating>eta_t  # in the arrays' dtype: float32 stays float32 (vectorised)
        for j in range(n):
            wj = w[j]
            g = zi * d[j] + c * wj
            s0[j] = b1 * s0[j] + (1 - b1) * g
            s1[j] = b2 * s1[j] + (1 - b2) * (g * g)
            w[j] = wj - et * s0[j] / (f_sqrt(s1[j]) + eps)


cdef inline void first_layer(Py_ssize_t n_in, Py_ssize_t n_out, floating* W, floating* b,
                             const floating* delta, const floating* x, floating eta,
                             const floating* x2, floating* a, Py_ssize_t* active) noexcept nogil:
    r"""Layer 0, fused: :math:`w_{ji} \leftarrow w_{ji} - \eta x_i \delta_j` for this sample,
    and (if ``x2`` is not NULL) the next sample's sum :math:`a'_j = \sum_i w_{ji} x'_i + w_{j0}`
    with the updated rows, in one sweep. Only rows with :math:`x_i \ne 0` or :math:`x'_i \ne 0`
    are visited; their indices are listed first without branches (zeros are unpredictable),
    then taken four at a time so that ``a'`` is loaded and stored once per four rows."""
    cdef Py_ssize_t i, j, k = 0, na = 0
    cdef floating c0, c1, c2, c3, y0, y1, y2, y3
    cdef floating* r0
    cdef floating* r1
    cdef floating* r2
    cdef floating* r3
    axpy(n_out, -eta, delta, b)
    na = nonzero_rows(n_in, x, x2, active)
    if x2 == NULL:
        for k in range(na):
            i = active[k]
            axpy(n_out, -eta * x[i], delta, W + i * n_out)
        return
    memset(a, 0, n_out * sizeof(floating))
    while k + 4 <= na:
        r0, r1 = W + active[k] * n_out, W + active[k + 1] * n_out
        r2, r3 = W + active[k + 2] * n_out, W + active[k + 3] * n_out
        c0, c1 = eta * x[active[k]], eta * x[active[k + 1]]
        c2, c3 = eta * x[active[k + 2]], eta * x[active[k + 3]]
        y0, y1 = x2[active[k]], x2[active[k + 1]]
        y2, y3 = x2[active[k + 2]], x2[active[k + 3]]
        rows4(n_out, delta, r0, r1, r2, r3, c0, c1, c2, c3, y0, y1, y2, y3, a)
        k += 4
    while k < na:
        i = active[k]
        axpy_axpy(n_out, -eta * x[i], delta, W + i * n_out, x2[i], a)
        k += 1
    axpy(n_out, 1, b, a)


cdef inline double first_layer_scaled(Py_ssize_t n_in, Py_ssize_t n_out, floating* V, floating* b,
                                      const floating* delta, const floating* x, floating eta,
                                      floating c, const floating* x2, floating* a,
                                      floating* raw, Py_ssize_t* active,
                                      bint skip_zeros) noexcept nogil:
    r""":func:`first_layer` for :math:`W_0 = c V_0` (``V`` is stored in W_0's place): with
    :math:`k_i = \eta x_i / c` (``c`` after this step's decay),
    :math:`v_{ji} \leftarrow v_{ji} - k_i \delta_j`, :math:`w_{j0} \leftarrow w_{j0} - \eta \delta_j`,
    then (if ``x2`` is not NULL) the next sample's sum :math:`\rho_j = \sum_i v_{ji} x'_i` into
    ``raw`` and :math:`a'_j = w_{j0} + c \rho_j`. Zero rows are skipped as there (all rows are
    visited when ``skip_zeros`` is false: same results). Returns :math:`\sum_i k_i^2`.
    """
    cdef Py_ssize_t i, j, k = 0, na
    cdef floating kscale = eta / c, c0, c1, c2, c3
    cdef double kk = 0
    axpy(n_out, -eta, delta, b)
    if skip_zeros:
        na = nonzero_rows(n_in, x, x2, active)
    else:
        for i in range(n_in):
            active[i] = i
        na = n_in
    if x2 == NULL:
        for k in range(na):
            i = active[k]
            c0 = kscale * x[i]
            kk += c0 * c0
            axpy(n_out, -c0, delta, V + i * n_out)
        return kk
    memset(raw, 0, n_out * sizeof(floating))
    while k + 4 <= na:
        c0, c1 = kscale * x[active[k]], kscale * x[active[k + 1]]
        c2, c3 = kscale * x[active[k + 2]], kscale * x[active[k + 3]]
        kk = kk + c0 * c0 + c1 * c1 + c2 * c2 + c3 * c3  # in order: zero rows add exactly 0
        rows4(n_out, delta, V + active[k] * n_out, V + active[k + 1] * n_out,
              V + active[k + 2] * n_out, V + active[k + 3] * n_out, c0, c1, c2, c3,
              x2[active[k]], x2[active[k + 1]], x2[active[k + 2]], x2[active[k + 3]], raw)
        k += 4
    while k < na:
        i = active[k]
        c0 = kscale * x[i]
        kk += c0 * c0
        axpy_axpy(n_out, -c0, delta, V + i * n_out, x2[i], raw)
        k += 1
    for j in range(n_out):
        a[j] = b[j] + c * raw[j]
    return kk


# --------------------------------------------------------------------------- per-sample epochs
cdef void sgd_plain(floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden, int output,
                    int loss, const floating* X, const floating* T, const floating* s,
                    const Py_ssize_t* order, Py_ssize_t n_epochs, Py_ssize_t m, floating eta,
                    floating* a, floating* z, floating* delta, double* losses,
                    Py_ssize_t* active) noexcept nogil:
    r"""Plain on-line sgd without L2: :math:`w \leftarrow w - \eta \nabla E_n`, fused (see the design)."""
    cdef Py_ssize_t n_steps = n_epochs * m, p, pn, l, i, n_in, n_out
    cdef Py_ssize_t Din = layout[0], M0 = layout[1], u0 = layout[4]
    cdef Py_ssize_t K = layout[5 * (L - 1) + 1], uK = layout[5 * (L - 1) + 4]
    cdef floating* W0 = w + layout[2]
    cdef floating* b0 = w + layout[3]
    cdef floating* a0 = a + u0
    cdef const floating* d0 = delta + u0
    cdef const floating* x
    cdef const floating* xn
    cdef const floating* d
    cdef const floating* ap = NULL
    cdef const floating* zp
    cdef floating* W
    cdef floating* dp = NULL
    cdef floating* row
    cdef floating sums[4]
    cdef Py_ssize_t k
    p = next_step(order, s, -1, n_steps)
    if p < n_steps:
        dense(Din, M0, W0, b0, X + order[p] * Din, a0)
    while p < n_steps:
        x = X + order[p] * Din
        forward_one(w, layout, L, hidden, output, x, a, z, True)
        losses[2 * (p // m)] += output_error(output, loss, K, a + uK, z + uK, T + order[p] * K,
                                             delta + uK)
        for l in range(L - 1, 0, -1):
            n_in, n_out = layout[5 * l], layout[5 * l + 1]
            W = w + layout[5 * l + 2]
            d = delta + layout[5 * l + 4]
            dp = delta + layout[5 * (l - 1) + 4]
            ap = a + layout[5 * (l - 1) + 4]
            zp = z + layout[5 * (l - 1) + 4]
            axpy(n_out, -eta, d, w + layout[5 * l + 3])
            i = 0
            while i + 4 <= n_in:  # rows i..i+3: δ with the old rows, then their update
                row = W + i * n_out
                dot_update4(n_out, d, row, row + n_out, row + 2 * n_out, row + 3 * n_out,
                            eta * zp[i], eta * zp[i + 1], eta * zp[i + 2], eta * zp[i + 3], sums)
                for k in range(4):
                    dp[i + k] = derivative(hidden, ap[i + k], zp[i + k]) * sums[k]
                i += 4
            while i < n_in:
                dp[i] = derivative(hidden, ap[i], zp[i]) * dot_update1(n_out, d, W + i * n_out,
                                                                       eta * zp[i])
                i += 1
        # layer 0: update for this sample, fused with the next sample's forward sum
        pn = next_step(order, s, p, n_steps)
        first_layer(Din, M0, W0, b0, d0, x, eta, X + order[pn] * Din if pn < n_steps else NULL,
                    a0, active)
        p = pn


cdef void sgd_decay(floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden, int output,
                    int loss, const floating* X, const floating* T, const floating* s,
                    const Py_ssize_t* order, Py_ssize_t n_epochs, Py_ssize_t m, floating eta,
                    floating alpha, floating* a, floating* z, floating* delta, double* losses,
                    Py_ssize_t* active, floating* raw, bint skip_zeros) noexcept nogil:
    r"""On-line sgd with L2, :math:`w \leftarrow w - \eta (\nabla E_n + (\alpha / s_n) W)` (biases
    not decayed), as fast as :func:`sgd_plain` (mirrors the numba backend's ``sgd_decay``).

    The decay :math:`W_0 \leftarrow r W_0`, :math:`r = 1 - \eta\alpha/s_n`, would touch every
    weight of the first layer; instead :math:`W_0 = c V_0` is kept as a scalar times the stored
    matrix: the decay multiplies ``c`` and the step on V is divided by ``c``
    (:func:`first_layer_scaled`), so zero inputs still skip their rows and the update stays fused
    with the next sample's forward sum. When ``c`` leaves [2^-10, 2^10] (or would become ≤ 0 or
    NaN) it is folded into V (one dense pass) and restarts at 1; at the end ``w`` holds
    :math:`W_0` again. :math:`\lVert V \rVert^2` for the penalty is recomputed exactly at every
    epoch and in between follows from the step: with :math:`k_i = \eta x_i / c` and
    :math:`\rho_j = \sum_i v_{ji} x_i` (the sample's forward sum before the bias, kept in ``raw``:
    V does not change between that sum and this update),
    :math:`\lVert V' \rVert^2 = \lVert V \rVert^2 - 2 (\eta / c)\, \delta \cdot \rho + \sum_i k_i^2 \lVert \delta \rVert^2`.
    Layers l ≥ 1 decay in place (:func:`dot_decay4`).
    """
    cdef Py_ssize_t n_steps = n_epochs * m, p, pn, l, i, k, n_in, n_out, idx, e
    cdef Py_ssize_t Din = layout[0], M0 = layout[1], u0 = layout[4], size0 = Din * M0
    cdef Py_ssize_t K = layout[5 * (L - 1) + 1], uK = layout[5 * (L - 1) + 4]
    cdef floating* W0 = w + layout[2]
    cdef floating* b0 = w + layout[3]
    cdef floating* a0 = a + u0
    cdef const floating* d0 = delta + u0
    cdef const floating* x
    cdef const floating* d
    cdef const floating* ap
    cdef const floating* zp
    cdef floating* W
    cdef floating* dp
    cdef floating* row
    cdef floating sums[5]
    cdef floating c = 1, c_new, r, S, eta_alpha = eta * alpha
    cdef floating lo = 1.0 / 1024, hi = 1024
    cdef double sq, sq0, kk, dd, dpv
    sq0 = scale_norm(size0, W0, <floating>1)
    p = next_step(order, s, -1, n_steps)
    if p < n_steps:  # the first sum (c = 1); later ones are fused with the update
        memset(a0, 0, M0 * sizeof(floating))
        dense(Din, M0, W0, a0, X + order[p] * Din, raw)
        for k in range(M0):
            a0[k] = b0[k] + raw[k]
    while p < n_steps:
        idx = order[p]
        e = p // m
        S = s[idx]
        x = X + idx * Din
        forward_one(w, layout, L, hidden, output, x, a, z, True)
        losses[2 * e] += output_error(output, loss, K, a + uK, z + uK, T + idx * K, delta + uK)
        r = 1 - eta_alpha / S
        sq = c * c * sq0
        for l in range(L - 1, 0, -1):
            n_in, n_out = layout[5 * l], layout[5 * l + 1]
            W = w + layout[5 * l + 2]
            d = delta + layout[5 * l + 4]
            dp = delta + layout[5 * (l - 1) + 4]
            ap = a + layout[5 * (l - 1) + 4]
            zp = z + layout[5 * (l - 1) + 4]
            axpy(n_out, -eta, d, w + layout[5 * l + 3])
            i = 0
            while i + 4 <= n_in:  # rows i..i+3: δ and Σw² with the old rows, then the decayed update
                row = W + i * n_out
                dot_decay4(n_out, d, row, row + n_out, row + 2 * n_out, row + 3 * n_out,
                           eta * zp[i], eta * zp[i + 1], eta * zp[i + 2], eta * zp[i + 3], r, sums)
                for k in range(4):
                    dp[i + k] = derivative(hidden, ap[i + k], zp[i + k]) * sums[k]
                sq += sums[4]
                i += 4
            while i < n_in:
                dot_decay1(n_out, d, W + i * n_out, eta * zp[i], r, sums)
                dp[i] = derivative(hidden, ap[i], zp[i]) * sums[0]
                sq += sums[1]
                i += 1
        losses[2 * e + 1] += 0.5 * alpha * sq / S
        c_new = c * r
        if not (c_new >= lo and c_new <= hi):  # fold the scale into V (also ≤ 0 or NaN)
            sq0 = scale_norm(size0, W0, c_new)
            for k in range(M0):
                raw[k] = c_new * raw[k]
            c_new = 1
        dd = 0
        dpv = 0
        for k in range(M0):
            dd += d0[k] * d0[k]
            dpv += d0[k] * raw[k]
        dpv *= eta / c_new
        pn = next_step(order, s, p, n_steps)
        kk = first_layer_scaled(Din, M0, W0, b0, d0, x, eta, c_new,
                                X + order[pn] * Din if pn < n_steps else NULL, a0, raw, active,
                                skip_zeros)
        sq0 += kk * dd - (dpv + dpv)
        c = c_new
        if pn < n_steps and pn // m != e:  # keep the running norm from drifting
            sq0 = scale_norm(size0, W0, <floating>1)
        p = pn
    scale_norm(size0, W0, c)


cdef void sgd_general(floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden,
                      int output, int loss, const floating* X, const floating* T,
                      const floating* s, const Py_ssize_t* order, Py_ssize_t n_epochs,
                      Py_ssize_t m, int solver, const floating* hyper, floating* state,
                      Py_ssize_t P, int64_t* t, floating* a, floating* z, floating* delta,
                      double* losses) noexcept nogil:
    r"""On-line gradient descent with any solver and L2 term, one sample at a time, fused."""
    cdef Py_ssize_t n_steps = n_epochs * m, p, e, idx, l, i, n_in, n_out, w_off, b_off
    cdef Py_ssize_t Din = layout[0], K = layout[5 * (L - 1) + 1], uK = layout[5 * (L - 1) + 4]
    cdef floating alpha = hyper[ALPHA], sn, c
    cdef floating* s0 = state
    cdef floating* s1 = state + P
    cdef const floating* x
    cdef const floating* d
    cdef const floating* zp
    cdef const floating* ap = NULL
    cdef floating* dp = NULL
    cdef floating* row
    cdef double sq, eta_t = 0
    for p in range(n_steps):
        idx = order[p]
        sn = s[idx]
        if sn == 0:
            continue
        e = p // m
        x = X + idx * Din
        forward_one(w, layout, L, hidden, output, x, a, z, False)
        losses[2 * e] += output_error(output, loss, K, a + uK, z + uK, T + idx * K, delta + uK)
        c = alpha / sn
        if solver == ADAM:
            t[0] += 1
            eta_t = adam_rate(hyper, t[0])
        sq = 0
        for l in range(L - 1, -1, -1):
            n_in, n_out = layout[5 * l], layout[5 * l + 1]
            w_off, b_off = layout[5 * l + 2], layout[5 * l + 3]
            d = delta + layout[5 * l + 4]
            step_row(solver, n_out, 1, d, 0, w + b_off, s0 + b_off, s1 + b_off, hyper, eta_t)
            if l > 0:
                zp = z + layout[5 * (l - 1) + 4]
                ap = a + layout[5 * (l - 1) + 4]
                dp = delta + layout[5 * (l - 1) + 4]
            else:
                zp = x
            for i in range(n_in):
                row = w + w_off + i * n_out
                if l > 0:
                    dp[i] = derivative(hidden, ap[i], zp[i]) * dot(n_out, row, d)
                if alpha != 0:
                    sq += dot(n_out, row, row)
                step_row(solver, n_out, zp[i], d, c, row, s0 + w_off + i * n_out,
                         s1 + w_off + i * n_out, hyper, eta_t)
        losses[2 * e + 1] += 0.5 * alpha * sq / sn


def sgd_epoch(floating[::1] w, const Py_ssize_t[:, ::1] layout, int hidden, int output, int loss,
              const floating[:, ::1] X, const floating[:, ::1] T, const floating[::1] s,
              const Py_ssize_t[:, ::1] order, int solver, const floating[::1] hyper,
              floating[:, ::1] state, int64_t[::1] t, floating[::1] a, floating[::1] z,
              floating[::1] delta, double[:, ::1] losses, int skip_zeros=1):
    r"""On-line gradient descent, :math:`w \leftarrow w - \eta \nabla E_n(w)`, one sample at a
    time, for every epoch (row) of ``order``, in one compiled call (see ``deltaprop.contract``).

    ``skip_zeros`` is for the tests only: with sgd and L2, 0 visits the zero rows too (same
    results) and -1 takes the general path instead of the scaled fast path."""
    cdef Py_ssize_t n_epochs = order.shape[0], m = order.shape[1], e
    check_epoch(w, layout, X, T, s, order, 1, solver, hyper, state, t, a, z, delta, losses)
    for e in range(n_epochs):
        losses[e, 0] = 0
        losses[e, 1] = 0
    if n_epochs == 0 or m == 0:
        return
    cdef Py_ssize_t* active = <Py_ssize_t*>PyMem_Malloc(X.shape[1] * sizeof(Py_ssize_t))
    cdef floating* raw = <floating*>PyMem_Malloc(layout[0, 1] * sizeof(floating) + 1)
    if active == NULL or raw == NULL:
        PyMem_Free(active)
        PyMem_Free(raw)
        raise MemoryError()
    with nogil:
        if solver == SGD and hyper[ALPHA] == 0:
            sgd_plain(&w[0], &layout[0, 0], layout.shape[0], hidden, output, loss, &X[0, 0],
                      &T[0, 0], &s[0], &order[0, 0], n_epochs, m, hyper[ETA], &a[0], &z[0],
                      &delta[0], &losses[0, 0], active)
        elif solver == SGD and skip_zeros >= 0:
            sgd_decay(&w[0], &layout[0, 0], layout.shape[0], hidden, output, loss, &X[0, 0],
                      &T[0, 0], &s[0], &order[0, 0], n_epochs, m, hyper[ETA], hyper[ALPHA],
                      &a[0], &z[0], &delta[0], &losses[0, 0], active, raw, skip_zeros)
        else:
            sgd_general(&w[0], &layout[0, 0], layout.shape[0], hidden, output, loss, &X[0, 0],
                        &T[0, 0], &s[0], &order[0, 0], n_epochs, m, solver, &hyper[0],
                        &state[0, 0], w.shape[0], &t[0], &a[0], &z[0], &delta[0], &losses[0, 0])
    PyMem_Free(active)
    PyMem_Free(raw)


# --------------------------------------------------------------------------- mini-batch epochs
cdef void batch_run(floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden, int output,
                    int loss, const floating* X, const floating* T, const floating* s,
                    const Py_ssize_t* order, Py_ssize_t n_epochs, Py_ssize_t m, Py_ssize_t B,
                    int solver, const floating* hyper, floating* state, Py_ssize_t P,
                    int64_t* t, floating* Xb, floating* Tb, floating* sb, floating* A,
                    floating* Z, floating* D, floating* g, double* losses) noexcept nogil:
    r"""Mini-batch gradient descent: gather each batch, forward, δ, backprop, gradient
    :math:`g = (\sum_{n \in B} s_n \nabla E_n + \alpha W) / S_B`, update."""
    cdef Py_ssize_t Din = layout[0], K = layout[5 * (L - 1) + 1]
    cdef Py_ssize_t e, start, nb, r, idx, l, q, w_off, size
    cdef floating alpha = hyper[ALPHA], S, eta_S
    cdef double E, sq, data, penalty
    for e in range(n_epochs):
        data = 0
        penalty = 0
        start = 0
        while start < m:
            nb = B if start + B <= m else m - start
            S = 0
            for r in range(nb):
                idx = order[e * m + start + r]
                memcpy(Xb + r * Din, X + idx * Din, Din * sizeof(floating))
                memcpy(Tb + r * K, T + idx * K, K * sizeof(floating))
                sb[r] = s[idx]
                S += sb[r]
            start += nb
            if S == 0:
                continue
            forward_batch(w, layout, L, hidden, output, Xb, nb, A, Z)
            E = output_delta_batch(layout, L, output, loss, nb, A, Z, Tb, sb, D)
            backprop_batch(w, layout, L, hidden, nb, A, Z, D)
            if solver == SGD and alpha == 0:  # no gradient buffer: gemm into W
                gradient_step(layout, L, nb, Xb, Z, D, -hyper[ETA] / S, w)
                data += nb * E / S
                continue
            gradient_batch(layout, L, nb, Xb, Z, D, g)
            sq = 0
            if alpha != 0:
                for l in range(L):
                    w_off = layout[5 * l + 2]
                    size = layout[5 * l] * layout[5 * l + 1]
                    for q in range(w_off, w_off + size):
                        g[q] += alpha * w[q]
                        sq += w[q] * w[q]
            data += nb * E / S
            penalty += nb * 0.5 * alpha * sq / S
            if solver == SGD:  # g / S and the step in one pass over w
                eta_S = hyper[ETA] / S
                for q in range(P):
                    w[q] -= eta_S * g[q]
            else:
                for q in range(P):
                    g[q] = g[q] / S
                update(w, g, P, solver, hyper, state, t)
        losses[2 * e] = data
        losses[2 * e + 1] = penalty


def batch_epoch(floating[::1] w, const Py_ssize_t[:, ::1] layout, int hidden, int output,
                int loss, const floating[:, ::1] X, const floating[:, ::1] T,
                const floating[::1] s, const Py_ssize_t[:, ::1] order, Py_ssize_t batch_size,
                int solver, const floating[::1] hyper, floating[:, ::1] state, int64_t[::1] t,
                floating[:, ::1] Xb, floating[:, ::1] Tb, floating[::1] sb, floating[::1] A,
                floating[::1] Z, floating[::1] D, floating[::1] g, double[:, ::1] losses):
    r"""Mini-batch gradient descent over consecutive batches of ``order`` (n_epochs, m)
    (see ``deltaprop.contract``)."""
    cdef Py_ssize_t n_epochs = order.shape[0], m = order.shape[1], e
    check_epoch(w, layout, X, T, s, order, batch_size, solver, hyper, state, t, A, Z, D, losses,
                Xb, Tb, sb, g)
    for e in range(n_epochs):
        losses[e, 0] = 0
        losses[e, 1] = 0
    if n_epochs == 0 or m == 0:
        return
    with nogil:
        batch_run(&w[0], &layout[0, 0], layout.shape[0], hidden, output, loss, &X[0, 0],
                  &T[0, 0], &s[0], &order[0, 0], n_epochs, m, batch_size, solver, &hyper[0],
                  &state[0, 0], w.shape[0], &t[0], &Xb[0, 0], &Tb[0, 0], &sb[0], &A[0], &Z[0],
                  &D[0], &g[0], &losses[0, 0])
