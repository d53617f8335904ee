r"""Parameter updates of gradient descent: plain, momentum, Nesterov and Adam.

Mirrors ``kernels/_numpy/update.py``: ``hyper`` holds (η, α, μ, β₁, β₂, ε); ``state`` (2, P)
the velocity v, or Adam's moments m, v; ``step`` (1,) Adam's step count τ. :func:`update` applies
a whole gradient vector (mini-batch epochs); ``update_rows`` (``update.pxd``, inlined into the
per-sample epoch) applies one sample's gradient to one layer without storing it.
"""

from cython cimport floating
from libc.math cimport pow, sqrt
from libc.stdint cimport int64_t


cdef double adam_rate(const floating* hyper, int64_t* step) noexcept nogil:
    r"""Increment Adam's step count τ (``step[0]``) and return
    :math:`\eta_\tau = \eta \sqrt{1 - \beta_2^\tau} / (1 - \beta_1^\tau)`, in double as the
    reference."""
    step[0] += 1
    return (<double>hyper[ETA] * sqrt(1 - pow(<double>hyper[BETA_2], <double>step[0]))
            / (1 - pow(<double>hyper[BETA_1], <double>step[0])))


cdef void update(floating* w, const floating* g, Py_ssize_t P, int solver, const floating* hyper,
                 floating* state, int64_t* step) noexcept nogil:
    r"""Apply one update with gradient ``g`` to ``w`` (P,) in place.

    sgd :math:`w \leftarrow w - \eta g`; momentum :math:`v \leftarrow \mu v - \eta g,\ w \leftarrow w + v`;
    nesterov :math:`v \leftarrow \mu v - \eta g,\ w \leftarrow w + \mu v - \eta g`;
    adam :math:`m \leftarrow \beta_1 m + (1 - \beta_1) g`, :math:`v \leftarrow \beta_2 v + (1 - \beta_2) g^2`,
    :math:`w \leftarrow w - \eta_t m / (\sqrt{v} + \epsilon)`.
    """
    cdef Py_ssize_t p
    cdef floating eta = hyper[ETA], mu = hyper[MU], b1 = hyper[BETA_1], b2 = hyper[BETA_2]
    cdef floating eps = hyper[EPSILON]
    cdef floating* s0 = state      # v (momentum, nesterov) or Adam's m
    cdef floating* s1 = state + P  # Adam's v
    cdef floating et, c1, c2
    if solver == SGD:
        for p in range(P):
            w[p] -= eta * g[p]
    elif solver == MOMENTUM:
        for p in range(P):
            s0[p] = mu * s0[p] - eta * g[p]
            w[p] += s0[p]
    elif solver == NESTEROV:
        for p in range(P):
            s0[p] = mu * s0[p] - eta * g[p]
            w[p] += mu * s0[p] - eta * g[p]
    elif solver == ADAM:
        et = <floating>adam_rate(hyper, step)  # in the arrays' dtype (vectorised in float32)
        c1, c2 = 1 - b1, 1 - b2  # floating: a literal 1 in the loop would make it double
        for p in range(P):
            s0[p] = b1 * s0[p] + c1 * g[p]
            s1[p] = b2 * s1[p] + c2 * (g[p] * g[p])
            w[p] = w[p] - et * s0[p] / (f_sqrt(s1[p]) + eps)
