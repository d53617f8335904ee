r"""Activation functions h, f and their derivatives over one sample's units (mirrors
``_numpy/activations.py``).

Every function works in the dtype of its arrays: constants are made with
``a.dtype.type(...)`` so that float32 stays float32 (a bare ``1.0`` is a float64 in numba and
would silently upcast the whole expression).
"""

import math

from ._jit import kernel

IDENTITY, LOGISTIC, TANH, RELU, GUDERMANNIAN, SOFTMAX, EXP = range(7)


@kernel
def logistic(a, one):
    r"""Logistic sigmoid :math:`\sigma(a) = 1 / (1 + e^{-a})` without overflow.

    For :math:`a < 0` it is :math:`e^{a} / (1 + e^{a})`: no exponential of a large positive
    number is ever taken. ``one`` is 1 in the dtype of ``a``.
    """
    e = math.exp(-abs(a))
    if a >= 0:
        return one / (one + e)
    return e / (one + e)


@kernel
def activate(code, a, z, u, n):
    r"""``z[u:u+n] = h(a[u:u+n])``: the ``n`` units of one sample starting at offset ``u``.

    identity :math:`a`; logistic :math:`\sigma(a)`; tanh; relu :math:`\max(0, a)` (NaN stays
    NaN, as ``np.maximum``); Gudermannian :math:`2 \arctan(\tanh(a/2))`; softmax
    :math:`e^{a_k - \max a} / \sum_j e^{a_j - \max a}`; exp :math:`e^{a}`.
    ``u`` and ``n`` are unsigned (np.uint64), so indexing needs no negative-index fix-up and the
    loops vectorise. The branch on ``code`` sits outside the loops.
    """
    one = a.dtype.type(1)
    zero = a.dtype.type(0)
    if code == IDENTITY:
        for j in range(u, u + n):
            z[j] = a[j]
    elif code == LOGISTIC:
        for j in range(u, u + n):
            z[j] = logistic(a[j], one)
    elif code == TANH:
        for j in range(u, u + n):
            z[j] = math.tanh(a[j])
    elif code == RELU:
        for j in range(u, u + n):
            z[j] = zero if a[j] <= zero else a[j]
    elif code == GUDERMANNIAN:
        two = a.dtype.type(2)
        half = a.dtype.type(0.5)
        for j in range(u, u + n):
            z[j] = two * math.atan(math.tanh(a[j] * half))
    elif code == SOFTMAX:
        amax = a[u]
        for j in range(u, u + n):
            if a[j] > amax:
                amax = a[j]
        total = zero
        for j in range(u, u + n):
            e = math.exp(a[j] - amax)
            z[j] = e
            total += e
        for j in range(u, u + n):
            z[j] = z[j] / total
    elif code == EXP:
        for j in range(u, u + n):
            z[j] = math.exp(a[j])


@kernel
def derivative(code, a, z, one):
    r"""Scalar :math:`h'(a)` of an element-wise activation, given ``a`` and ``z = h(a)``.

    identity 1; logistic :math:`z(1 - z)`; tanh :math:`1 - z^2`; relu :math:`[a > 0]`;
    Gudermannian :math:`\operatorname{sech} a = \cos z`. ``one`` is 1 in the dtype of ``a``.
    """
    if code == LOGISTIC:
        return z * (one - z)
    if code == TANH:
        return one - z * z
    if code == RELU:
        return one if a > one - one else one - one
    if code == GUDERMANNIAN:
        return math.cos(z)
    return one


@kernel
def scale_by_derivative(code, a, z, delta, u, n):
    r"""``delta[u:u+n] *= h'(a[u:u+n])`` (the factor of Bishop 5.56); unsigned ``u``, ``n``."""
    one = a.dtype.type(1)
    zero = a.dtype.type(0)
    if code == LOGISTIC:
        for j in range(u, u + n):
            delta[j] *= z[j] * (one - z[j])
    elif code == TANH:
        for j in range(u, u + n):
            delta[j] *= one - z[j] * z[j]
    elif code == RELU:
        for j in range(u, u + n):
            delta[j] *= one if a[j] > zero else zero
    elif code == GUDERMANNIAN:
        for j in range(u, u + n):
            delta[j] *= math.cos(z[j])
