r"""Parameter updates of gradient descent: plain, momentum, Nesterov and Adam, mirroring
``_numpy/update.py``.

``update`` applies a whole gradient vector (mini-batch epochs). ``update_row`` applies the
gradient of one sample to one contiguous row of weights without ever storing it,
:math:`g_j = (z \, \delta_j + \alpha w_j) / S`, which is how the per-sample epoch updates in place.
The branch on the solver sits outside the element loops.
"""

import math

import numpy as np

from ._jit import kernel

SGD, MOMENTUM, NESTEROV, ADAM = range(4)
ETA, ALPHA, MU, BETA_1, BETA_2, EPSILON = range(6)


@kernel
def adam_rate(hyper, t):
    r"""Increment Adam's count and return :math:`\eta_t = \eta \sqrt{1 - \beta_2^t} / (1 - \beta_1^t)`.

    The powers are taken in float64 (as the reference does), the rate returned in the dtype of
    ``hyper``.
    """
    t[0] += 1
    b1t = math.pow(float(hyper[BETA_1]), float(t[0]))  # libm pow, as NumPy's scalar power
    b2t = math.pow(float(hyper[BETA_2]), float(t[0]))
    return hyper.dtype.type(float(hyper[ETA]) * math.sqrt(1.0 - b2t) / (1.0 - b1t))


@kernel
def update(w, g, solver, hyper, state, t, scale):
    r"""Apply one update with gradient ``scale * g`` to ``w`` in place (``scale`` = 1/S: the
    batch's normalisation is folded into the update's one pass over the parameters).

    - sgd: :math:`w \leftarrow w - \eta g`
    - momentum: :math:`v \leftarrow \mu v - \eta g`, :math:`w \leftarrow w + v`
    - nesterov: :math:`v \leftarrow \mu v - \eta g`, :math:`w \leftarrow w + \mu v - \eta g`
    - adam: :math:`t \leftarrow t + 1`, :math:`m \leftarrow \beta_1 m + (1 - \beta_1) g`,
      :math:`v \leftarrow \beta_2 v + (1 - \beta_2) g^2`,
      :math:`w \leftarrow w - \eta_t\, m / (\sqrt{v} + \epsilon)`
    """
    eta = hyper[ETA]
    P = w.shape[0]
    if solver == SGD:
        for p in range(P):
            w[p] -= eta * (g[p] * scale)
    elif solver == MOMENTUM or solver == NESTEROV:
        mu = hyper[MU]
        v = state[0]
        if solver == MOMENTUM:
            for p in range(P):
                v[p] = mu * v[p] - eta * (g[p] * scale)
                w[p] += v[p]
        else:
            for p in range(P):
                gp = g[p] * scale
                v[p] = mu * v[p] - eta * gp
                w[p] += mu * v[p] - eta * gp
    elif solver == ADAM:
        eta_t = adam_rate(hyper, t)
        one = w.dtype.type(1)
        b1, b2, eps = hyper[BETA_1], hyper[BETA_2], hyper[EPSILON]
        m, v = state[0], state[1]
        for p in range(P):
            gp = g[p] * scale
            m[p] = b1 * m[p] + (one - b1) * gp
            v[p] = b2 * v[p] + (one - b2) * (gp * gp)
            w[p] -= eta_t * m[p] / (np.sqrt(v[p]) + eps)


@kernel
def update_row(solver, hyper, eta_t, wr, m, v, z, delta, alpha, inv_S):
    r"""Update one contiguous row ``wr`` with :math:`g_j = (z \delta_j + \alpha w_j) / S` in place.

    ``m``, ``v`` are the matching rows of ``state`` (Adam's moments, or v in row ``m`` for
    momentum and Nesterov), ``eta_t`` Adam's rate of this step, ``inv_S`` = 1/S. Returns
    :math:`\sum_j w_j^2` of the row before the update (the L2 penalty), 0 when α = 0.
    """
    n = wr.shape[0]
    eta = hyper[ETA]
    sq = wr.dtype.type(0)
    if alpha != 0:
        for j in range(n):
            sq += wr[j] * wr[j]
    if solver == SGD:
        for j in range(n):
            wr[j] -= eta * ((z * delta[j] + alpha * wr[j]) * inv_S)
    elif solver == MOMENTUM:
        mu = hyper[MU]
        for j in range(n):
            m[j] = mu * m[j] - eta * ((z * delta[j] + alpha * wr[j]) * inv_S)
            wr[j] += m[j]
    elif solver == NESTEROV:
        mu = hyper[MU]
        for j in range(n):
            gj = (z * delta[j] + alpha * wr[j]) * inv_S
            m[j] = mu * m[j] - eta * gj
            wr[j] += mu * m[j] - eta * gj
    else:
        one = wr.dtype.type(1)
        b1, b2, eps = hyper[BETA_1], hyper[BETA_2], hyper[EPSILON]
        for j in range(n):
            gj = (z * delta[j] + alpha * wr[j]) * inv_S
            m[j] = b1 * m[j] + (one - b1) * gj
            v[j] = b2 * v[j] + (one - b2) * (gj * gj)
            wr[j] -= eta_t * m[j] / (np.sqrt(v[j]) + eps)
    return sq
