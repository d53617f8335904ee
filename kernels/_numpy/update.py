r"""Parameter updates of gradient descent: plain, momentum, Nesterov and Adam.

``hyper`` holds (η, α, μ, β₁, β₂, ε); ``state`` (2, P) the velocity v, or Adam's moments m, v;
``step`` (1,) Adam's step count τ. Each rule is the one scikit-learn's SGD and Adam optimisers apply.
"""

import numpy as np

from deltaprop.contract import ADAM, BETA_1, BETA_2, EPSILON, ETA, MOMENTUM, MU, NESTEROV, SGD


def update(w, g, solver, hyper, state, step):
    r"""Apply one update with gradient ``g`` to ``w`` in place.

    - sgd: :math:`w \leftarrow w - \eta g` (5.41 with :math:`\nabla E` replaced by g)
    - momentum: :math:`v \leftarrow \mu v - \eta g`, :math:`w \leftarrow w + v`
    - nesterov: :math:`v \leftarrow \mu v - \eta g`, :math:`w \leftarrow w + \mu v - \eta g`
    - adam: :math:`\tau \leftarrow \tau + 1`, :math:`m \leftarrow \beta_1 m + (1 - \beta_1) g`,
      :math:`v \leftarrow \beta_2 v + (1 - \beta_2) g^2`,
      :math:`w \leftarrow w - \eta_\tau\, m / (\sqrt{v} + \epsilon)` with
      :math:`\eta_\tau = \eta \sqrt{1 - \beta_2^\tau} / (1 - \beta_1^\tau)`
    """
    eta = hyper[ETA]
    if solver == SGD:
        w -= eta * g
    elif solver == MOMENTUM:
        v = state[0]
        v[...] = hyper[MU] * v - eta * g
        w += v
    elif solver == NESTEROV:
        v = state[0]
        v[...] = hyper[MU] * v - eta * g
        w += hyper[MU] * v - eta * g
    elif solver == ADAM:
        step[0] += 1
        m, v = state[0], state[1]
        b1, b2 = hyper[BETA_1], hyper[BETA_2]
        m[...] = b1 * m + (1 - b1) * g
        v[...] = b2 * v + (1 - b2) * (g * g)
        eta_t = eta * np.sqrt(1 - b2 ** step[0]) / (1 - b1 ** step[0])
        w -= eta_t * m / (np.sqrt(v) + hyper[EPSILON])
    else:
        raise ValueError(f"unknown solver code {solver}")
