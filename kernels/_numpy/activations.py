r"""Activation functions h, f and their derivatives, each forward rule beside its derivative.

Codes are those of ``deltaprop.contract.ACTIVATIONS``. Derivatives receive both ``a`` and
``z = h(a)`` and use whichever is cheaper or more stable.
"""

import numpy as np

from deltaprop.contract import EXP, GUDERMANNIAN, IDENTITY, LOGISTIC, RELU, SOFTMAX, SOFTPLUS, TANH


def logistic(a):
    r"""Logistic sigmoid :math:`\sigma(a) = 1 / (1 + e^{-a})`, without overflow.

    For :math:`a < 0` it is evaluated as :math:`e^{a} / (1 + e^{a})`, so no exponential of a
    large positive number is ever taken.
    """
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)


def log1pexp(a):
    r""":math:`\ln(1 + e^{a})` (softplus) as :math:`\max(a, 0) + \ln(1 + e^{-|a|})`: no overflow
    for large :math:`a`, no loss of the small value :math:`e^{a}` for large negative :math:`a`."""
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


def softmax(a):
    r"""Softmax over the last axis, :math:`y_k = e^{a_k} / \sum_j e^{a_j}` (log-sum-exp shift)."""
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def activate(code, a):
    r"""Return :math:`z = h(a)` for activation ``code`` (softmax acts on the rows of ``a``).

    identity :math:`a`; logistic :math:`\sigma(a)`; tanh; relu :math:`\max(0, a)`;
    Gudermannian :math:`\mathrm{gd}(a) = 2 \arctan(\tanh(a/2))`; softmax; exp :math:`e^{a}`
    (the Poisson log link); softplus :math:`\ln(1 + e^{a})`.
    """
    if code == IDENTITY:
        return a.copy()
    if code == LOGISTIC:
        return logistic(a)
    if code == TANH:
        return np.tanh(a)
    if code == RELU:
        return np.maximum(a, 0)
    if code == GUDERMANNIAN:
        return 2 * np.arctan(np.tanh(a / 2))
    if code == SOFTMAX:
        return softmax(a)
    if code == EXP:
        return np.exp(a)
    if code == SOFTPLUS:
        return log1pexp(a)
    raise ValueError(f"unknown activation code {code}")


def derivative(code, a, z):
    r"""Return :math:`h'(a)` for an element-wise activation, given ``a`` and ``z = h(a)``.

    identity 1; logistic :math:`z(1 - z)`; tanh :math:`1 - z^2`; relu :math:`[a > 0]`;
    Gudermannian :math:`\mathrm{gd}'(a) = \operatorname{sech} a = \cos(\mathrm{gd}(a)) = \cos z`
    (no overflow of :math:`\cosh a`); softplus :math:`\sigma(a)`, from ``a`` (from ``z`` it
    would be :math:`1 - e^{-z}`, which cancels for small z).
    """
    if code == IDENTITY:
        return np.ones_like(a)
    if code == LOGISTIC:
        return z * (1 - z)
    if code == TANH:
        return 1 - z * z
    if code == RELU:
        return (a > 0).astype(a.dtype)
    if code == GUDERMANNIAN:
        return np.cos(z)
    if code == SOFTPLUS:
        return logistic(a)
    raise ValueError(f"activation code {code} has no element-wise derivative")
