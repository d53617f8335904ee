r"""Fig. 5.3 of Bishop's Pattern Recognition and Machine Learning: a 1-3-1 tanh network fitted to four functions.

``deltaprop approx`` runs :func:`fit_fig53` and draws the result
(:func:`deltaprop.plots.fig53`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .estimators import MLPRegressor

__all__ = ["APPROX_FUNCTIONS", "fit_fig53"]

#: Bishop's Fig. 5.3: (name, plot label, f, the RMS error each fit must reach (tested)).
APPROX_FUNCTIONS: tuple[tuple[str, str, Callable[[np.ndarray], np.ndarray], float], ...] = (
    ("x^2", "$f(x) = x^2$", lambda x: x ** 2, 0.01),
    ("sin(x)", r"$f(x) = \sin(x)$", np.sin, 0.01),
    ("|x|", "$f(x) = |x|$", np.abs, 0.03),
    ("H(x)", "$f(x) = H(x)$", lambda x: (x > 0).astype(np.float64), 0.1),
)


def fit_fig53(seed: int = 0, n: int = 50, restarts: int = 4, maxiter: int = 3000) -> list[dict[str, Any]]:
    r"""Fit the four functions of Fig. 5.3 with 1-3-1 tanh networks.

    N points uniform on (-1, 1); each network (:class:`deltaprop.MLPRegressor`, 3 tanh hidden
    units, identity output, no L2 penalty) minimises the sum-of-squares error by L-BFGS on
    deltaprop's backprop gradient, and the best of ``restarts`` seeded initialisations is kept
    (the minima :math:`w_A`, :math:`w_B` of Bishop's Fig. 5.5).

    Parameters
    ----------
    seed : int
        Seeds the points and the initialisations.
    n : int
        N, points per function.
    restarts : int
        Initialisations per function.
    maxiter : int
        L-BFGS iterations per fit, at most.

    Returns
    -------
    list of dict
        One per function of :data:`APPROX_FUNCTIONS`: ``name``, ``label``, ``x``, ``t``, ``est``
        (the best fit), ``E`` (:math:`\frac12 \sum_n (y_n - t_n)^2`), ``rms`` and ``bound``.
    """
    results = []
    rng = np.random.RandomState(seed)
    for k, (name, label, f, bound) in enumerate(APPROX_FUNCTIONS):
        x = np.sort(rng.uniform(-1, 1, n))
        t = f(x)
        best: tuple[float, MLPRegressor] | None = None
        for r in range(restarts):
            est = MLPRegressor(hidden_layer_sizes=(3,), activation="tanh", solver="lbfgs", alpha=0.0,
                               tol=1e-12, max_iter=maxiter, max_fun=10 * maxiter,
                               random_state=1000 * seed + 10 * k + r)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
                est.fit(x.reshape(-1, 1), t)
            E = 0.5 * float(np.sum((est.predict(x.reshape(-1, 1)) - t) ** 2))
            if best is None or E < best[0]:
                best = (E, est)
        assert best is not None, "restarts must be at least 1"
        E, est = best
        results.append(dict(name=name, label=label, x=x, t=t, est=est, E=E,
                            rms=float(np.sqrt(2 * E / n)), bound=bound))
    return results
