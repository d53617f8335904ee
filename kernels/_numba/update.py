r"""Parameter updates of gradient descent: plain, momentum, Nesterov and Adam, mirroring
``_numpy/update.py``.

``update`` applies a whole gradient vector (the reference's rule); the mini-batch epochs use
``batch_step``, the same rules with the batch's 1/S and the L2 term in the same pass.
``update_rows`` applies the gradient of one sample to one layer without ever storing it,
:math:`g_{ji} = (z_i \delta_j + \alpha w_{ji}) / S`, which is how the per-sample epoch updates in place.
The branch on the solver sits outside the element loops.
"""

import math

import numpy as np

from deltaprop.contract import (
    ADAM,
    ALPHA,
    B_OFF,
    BETA_1,
    BETA_2,
    EPSILON,
    ETA,
    MOMENTUM,
    MU,
    N_OUT,
    NESTEROV,
    SGD,
    W_OFF,
)

from ._jit import helper, kernel
from .rows import sum_squares


@helper
def adam_rate(hyper, step):
    r"""Increment Adam's step count τ (``step[0]``) and return
    :math:`\eta_\tau = \eta \sqrt{1 - \beta_2^\tau} / (1 - \beta_1^\tau)`.

    The powers are taken in float64 (as the reference does), the rate returned in the dtype of
    ``hyper``.
    """
    step[0] += 1
    b1t = math.pow(float(hyper[BETA_1]), float(step[0]))  # libm pow, as NumPy's scalar power
    b2t = math.pow(float(hyper[BETA_2]), float(step[0]))
    return hyper.dtype.type(float(hyper[ETA]) * math.sqrt(1.0 - b2t) / (1.0 - b1t))


@kernel
def update(w, g, solver, hyper, state, step):
    r"""Apply one update with gradient ``g`` to ``w`` in place (``_numpy.update.update``).

    - sgd: :math:`w \leftarrow w - \eta g`
    - momentum: :math:`v \leftarrow \mu v - \eta g`, :math:`w \leftarrow w + v`
    - nesterov: :math:`v \leftarrow \mu v - \eta g`, :math:`w \leftarrow w + \mu v - \eta g`
    - adam: :math:`\tau \leftarrow \tau + 1`, :math:`m \leftarrow \beta_1 m + (1 - \beta_1) g`,
      :math:`v \leftarrow \beta_2 v + (1 - \beta_2) g^2`,
      :math:`w \leftarrow w - \eta_\tau\, m / (\sqrt{v} + \epsilon)`

    The epochs use :func:`batch_step` instead, which folds the batch's 1/S and the L2 term
    into the same pass over the parameters.
    """
    eta = hyper[ETA]
    P = w.shape[0]
    if solver == SGD:
        for p in range(P):
            w[p] -= eta * g[p]
    elif solver == MOMENTUM or solver == NESTEROV:
        mu = hyper[MU]
        v = state[0]
        if solver == MOMENTUM:
            for p in range(P):
                v[p] = mu * v[p] - eta * g[p]
                w[p] += v[p]
        else:
            for p in range(P):
                v[p] = mu * v[p] - eta * g[p]
                w[p] += mu * v[p] - eta * g[p]
    elif solver == ADAM:
        eta_t = adam_rate(hyper, step)
        one = w.dtype.type(1)
        b1, b2, eps = hyper[BETA_1], hyper[BETA_2], hyper[EPSILON]
        m, v = state[0], state[1]
        for p in range(P):
            m[p] = b1 * m[p] + (one - b1) * g[p]
            v[p] = b2 * v[p] + (one - b2) * (g[p] * g[p])
            w[p] -= eta_t * m[p] / (np.sqrt(v[p]) + eps)


@helper
def update_rows(solver, w, m, v, wo, bo, n_in, n_out, z, zo, delta, u, eta, eta_t, mu, b1, b2, eps,
                alpha, inv_S):
    r"""Apply one sample's gradient to a whole layer in place, without storing it:
    :math:`g_{ji} = (z_i \delta_j + \alpha w_{ji}) / S` for the weights ``W`` at ``w[wo]``
    (n_in, n_out), :math:`g_{j0} = \delta_j / S` for the biases at ``w[bo]``, with the solver's
    rule. The inputs are ``z[zo : zo + n_in]``, the layer's δ ``delta[u : u + n_out]`` (already
    multiplied by S); ``m``, ``v`` are ``state``'s rows (v of momentum and Nesterov in ``m``).
    Offsets and sizes are unsigned (np.uint64). The hyper-parameters come as scalars, not as the
    ``hyper`` array, which keeps these loops vectorised. Returns :math:`\sum w_{ji}^2` of the
    weights before the update (the L2 penalty).
    """
    one = w.dtype.type(1)
    sq = w.dtype.type(0)
    if solver == SGD:
        for i in range(n_in):
            ro = wo + i * n_out
            zi = z[zo + i]
            for j in range(n_out):
                wj = w[ro + j]
                sq += wj * wj
                w[ro + j] = wj - eta * ((zi * delta[u + j] + alpha * wj) * inv_S)
        for j in range(n_out):
            w[bo + j] -= eta * (delta[u + j] * inv_S)
    elif solver == MOMENTUM:
        for i in range(n_in):
            ro = wo + i * n_out
            zi = z[zo + i]
            for j in range(n_out):
                wj = w[ro + j]
                sq += wj * wj
                mj = mu * m[ro + j] - eta * ((zi * delta[u + j] + alpha * wj) * inv_S)
                m[ro + j] = mj
                w[ro + j] = wj + mj
        for j in range(n_out):
            mj = mu * m[bo + j] - eta * (delta[u + j] * inv_S)
            m[bo + j] = mj
            w[bo + j] += mj
    elif solver == NESTEROV:
        for i in range(n_in):
            ro = wo + i * n_out
            zi = z[zo + i]
            for j in range(n_out):
                wj = w[ro + j]
                sq += wj * wj
                gj = (zi * delta[u + j] + alpha * wj) * inv_S
                mj = mu * m[ro + j] - eta * gj
                m[ro + j] = mj
                w[ro + j] = wj + (mu * mj - eta * gj)
        for j in range(n_out):
            gj = delta[u + j] * inv_S
            mj = mu * m[bo + j] - eta * gj
            m[bo + j] = mj
            w[bo + j] += mu * mj - eta * gj
    else:
        for i in range(n_in):
            ro = wo + i * n_out
            zi = z[zo + i]
            for j in range(n_out):
                wj = w[ro + j]
                sq += wj * wj
                gj = (zi * delta[u + j] + alpha * wj) * inv_S
                mj = b1 * m[ro + j] + (one - b1) * gj
                vj = b2 * v[ro + j] + (one - b2) * (gj * gj)
                m[ro + j] = mj
                v[ro + j] = vj
                w[ro + j] = wj - eta_t * mj / (np.sqrt(vj) + eps)
        for j in range(n_out):
            gj = delta[u + j] * inv_S
            mj = b1 * m[bo + j] + (one - b1) * gj
            vj = b2 * v[bo + j] + (one - b2) * (gj * gj)
            m[bo + j] = mj
            v[bo + j] = vj
            w[bo + j] -= eta_t * mj / (np.sqrt(vj) + eps)
    return sq


@helper
def step_range(solver, w, g, m, v, lo, n, c, inv_S, eta, mu, b1, b2, eps, eta_t):
    r"""One mini-batch update of the n entries of ``w`` from offset ``lo`` (a layer's weights or
    biases) with :math:`g'_p = (g_p + c\, w_p) / S` (``c`` = α on weights, 0 on biases;
    ``inv_S`` = 1/S), the solver's rule in the same pass: scaling, L2 term and update cost one
    sweep over w, g and the state (no reduction in the loop). ``lo`` and ``n`` are unsigned, so
    the loops index a C-contiguous array without wrap-around checks and vectorise (a slice
    would be typed non-contiguous, and signed bounds keep the loop scalar)."""
    one = w.dtype.type(1)
    if solver == SGD:
        for i in range(n):
            p = lo + i
            w[p] -= eta * ((g[p] + c * w[p]) * inv_S)
    elif solver == MOMENTUM:
        for i in range(n):
            p = lo + i
            m[p] = mu * m[p] - eta * ((g[p] + c * w[p]) * inv_S)
            w[p] += m[p]
    elif solver == NESTEROV:
        for i in range(n):
            p = lo + i
            gp = (g[p] + c * w[p]) * inv_S
            m[p] = mu * m[p] - eta * gp
            w[p] += mu * m[p] - eta * gp
    elif solver == ADAM:
        for i in range(n):
            p = lo + i
            gp = (g[p] + c * w[p]) * inv_S
            m[p] = b1 * m[p] + (one - b1) * gp
            v[p] = b2 * v[p] + (one - b2) * (gp * gp)
            w[p] -= eta_t * m[p] / (np.sqrt(v[p]) + eps)


@helper
def batch_step(layout, solver, w, g, hyper, state, step, inv_S):
    r"""The mini-batch update :math:`w \leftarrow \mathrm{rule}(w, (g + \alpha W) / S)` (α on the
    weights only), one pass over the parameters, layer by layer; returns
    :math:`\lVert W \rVert^2` before the update (float64) when α is not 0, else 0. Replaces the
    three sweeps g += αW, g / S and ``update``."""
    alpha = hyper[ALPHA]
    zero = w.dtype.type(0)
    eta_t = adam_rate(hyper, step) if solver == ADAM else zero
    m, v = state[0], state[1]
    eta, mu, b1, b2, eps = hyper[ETA], hyper[MU], hyper[BETA_1], hyper[BETA_2], hyper[EPSILON]
    sq = 0.0
    for layer in range(layout.shape[0]):
        wo = np.uint64(layout[layer, W_OFF])
        bo = np.uint64(layout[layer, B_OFF])
        nw = bo - wo
        nb = np.uint64(layout[layer, N_OUT])
        if alpha != 0:
            sq += sum_squares(w, wo, nw)
        step_range(solver, w, g, m, v, wo, nw, alpha, inv_S, eta, mu, b1, b2, eps, eta_t)
        step_range(solver, w, g, m, v, bo, nb, zero, inv_S, eta, mu, b1, b2, eps, eta_t)
    return sq
