r"""Gradient checking by central differences, for users and for tests.

.. math:: \frac{\partial E}{\partial w} \approx
          \frac{8 [E(w + \epsilon) - E(w - \epsilon)] - [E(w + 2\epsilon) - E(w - 2\epsilon)]}{12 \epsilon}

(the five-point stencil: the central difference with its :math:`O(\epsilon^2)` error removed by
Richardson extrapolation, so the error is :math:`O(\epsilon^4)` plus rounding
:math:`O(u E / \epsilon)`; the default :math:`\epsilon = 10^{-3}` balances the two in float64).

The differences are taken in float64 on a copy of the network, so a float32 network's backprop
gradient is checked against a float64 truth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from .engine import MLP

__all__ = ["gradcheck", "numerical_gradient"]


def numerical_gradient(net: MLP, X: ArrayLike, T: ArrayLike, eps: float = 1e-3) -> np.ndarray:
    r"""The gradient of ``net.loss`` by the five-point central difference, in float64.

    Parameters
    ----------
    net : MLP
        The network (not changed: the differences are taken on a float64 copy).
    X : array_like (n, D)
        Inputs.
    T : array_like
        Targets, as ``net.loss`` takes them.
    eps : float
        The step :math:`\epsilon`.

    Returns
    -------
    ndarray (P,) of float64
        :math:`\partial E / \partial w` for every parameter, laid out like ``net.w``.
    """
    from .engine import MLP

    twin = MLP(net.layer_sizes, hidden=net.hidden, output=net.output, loss=net.loss_function,
               backend=net.backend, dtype="float64", random_state=0)
    twin.w[...] = net.w
    X = np.asarray(X, dtype=np.float64)
    g = np.empty(twin.w.shape[0])
    for p in range(g.shape[0]):
        w_p = twin.w[p]
        e = []
        for step in (eps, -eps, 2 * eps, -2 * eps):
            twin.w[p] = w_p + step
            e.append(twin.loss(X, T))
        twin.w[p] = w_p
        g[p] = (8 * (e[0] - e[1]) - (e[2] - e[3])) / (12 * eps)
    return g


def gradcheck(net: MLP, X: ArrayLike, T: ArrayLike, eps: float = 1e-3) -> float:
    r"""Largest relative difference between backprop and central differences over all weights.

    For each parameter, :math:`|g - \hat g| / \max(|g|, |\hat g|, s)` with the floor
    :math:`s = 10^{-6} \max |\hat g|`, so weights whose gradient is negligible next to the
    largest one do not turn rounding noise into a large ratio.

    Parameters
    ----------
    net : MLP
        The network whose backprop gradient (``net.loss_and_gradient``) is checked.
    X : array_like (n, D)
        Inputs.
    T : array_like
        Targets, as ``net.loss`` takes them.
    eps : float
        The step of :func:`numerical_gradient`.

    Returns
    -------
    float
        The largest relative difference (about 1e-9 or less for a correct float64 gradient).
    """
    _, g = net.loss_and_gradient(X, T)
    g = g.astype(np.float64)
    g_num = numerical_gradient(net, X, T, eps)
    floor = max(1e-6 * np.abs(g_num).max(), np.finfo(np.float64).tiny)
    denom = np.maximum(np.maximum(np.abs(g), np.abs(g_num)), floor)
    return float(np.max(np.abs(g - g_num) / denom))
