r"""Activation functions h, f and their derivatives over one sample's units (mirrors
``_numpy/activations.py``).

Every function works in the dtype of its arrays: constants are made with
``a.dtype.type(...)`` so that float32 stays float32 (a bare ``1.0`` is a float64 in numba and
would silently upcast the whole expression).
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import config
from numba.extending import intrinsic

from deltaprop.contract import EXP, GUDERMANNIAN, IDENTITY, LOGISTIC, RELU, SOFTMAX, SOFTPLUS, TANH

from ._jit import exact_helper, helper, inline


def _pow2_python(k):
    """:math:`2^k` in the dtype of ``k``: the pure-Python twin that runs under NUMBA_DISABLE_JIT=1
    (coverage runs), where an ``@intrinsic`` cannot."""
    return np.ldexp(np.ones_like(k), np.int64(k))


@intrinsic
def pow2(typingctx, k):
    """:math:`2^k` for an integer-valued float ``k`` of the normal range, built from its bits
    (``(k + bias) << mantissa bits``, reinterpreted): unlike ``ldexp`` it vectorises."""
    if k not in (types.float32, types.float64):
        return None
    bits, mantissa, bias = (32, 23, 127) if k == types.float32 else (64, 52, 1023)

    def codegen(context, builder, signature, args):
        int_type = ir.IntType(bits)
        i = builder.add(builder.fptosi(args[0], int_type), int_type(bias))
        return builder.bitcast(builder.shl(i, int_type(mantissa)), context.get_value_type(k))

    return k(k), codegen


if config.DISABLE_JIT:
    pow2 = _pow2_python  # noqa: F811


@inline
def exp_parts(a, t):
    r""":math:`e^t = 2^k\, q_+ / q_-` in the dtype of ``a``; returns :math:`(2^k, q_+, q_-)`.

    Cephes' exp: :math:`t = k \ln 2 + r` with :math:`k = \lfloor t \log_2 e + \frac12 \rfloor`
    (Cody-Waite reduction, :math:`\ln 2 = c_1 + c_2` with :math:`k c_1` exact), Cephes' Padé
    form :math:`e^r = (Q(r^2) + r P(r^2)) / (Q(r^2) - r P(r^2))` and :math:`2^k` from its bits
    (:func:`pow2`; ``t`` must keep :math:`2^k` in the normal range). NaN gives NaN. Inlined, so it
    takes its caller's options: a caller that needs the reduction exact is compiled without
    reassociation.
    """
    f = a.dtype.type
    e0, e1, e2 = f(1.26177193074810590878e-4), f(3.02994407707441961300e-2), f(9.99999999999999999910e-1)
    d0, d1, d2, d3 = (f(3.00198505138664455042e-6), f(2.52448340349684104192e-3),
                      f(2.27265548208155028766e-1), f(2.00000000000000000009e0))
    log2e, c1, c2 = f(1.4426950408889634073599), f(6.93145751953125e-1), f(1.42860682030941723212e-6)
    kf = np.floor(t * log2e + f(0.5))
    k = kf if kf == kf else f(0)  # NaN: any k, the result stays NaN
    r = t - k * c1 - k * c2
    rr = r * r
    pr = r * ((e0 * rr + e1) * rr + e2)
    dq = ((d0 * rr + d1) * rr + d2) * rr + d3
    return pow2(k), dq + pr, dq - pr


@helper
def tanh_units(a, z, u, n):
    r"""``z[u:u+n] = tanh(a[u:u+n])`` by a formula LLVM vectorises (libm's ``tanh`` is a call).

    Cephes' method, in the dtype of ``a``: for :math:`|x| < 0.625` the rational form
    :math:`x + x^3 P(x^2) / Q(x^2)`; above, :math:`\pm(1 - 2 / (e^{2|x|} + 1))` with
    :math:`e^{t} = 2^k e^{r}`, :math:`k = \lfloor t \log_2 e + \frac12 \rfloor` (Cody-Waite
    reduction), Cephes' Padé form for :math:`e^{r}` and :math:`2^k` from its bits;
    :math:`|x| > 22` gives ±1. Both branches are computed and selected (no branch in the loop,
    one division). Error below 2 units in the last place of :math:`\max(|\tanh x|, \frac12)`;
    NaN stays NaN.
    """
    f = a.dtype.type
    one, two = f(1), f(2)
    p0, p1, p2 = f(-9.64399179425052238628e-1), f(-9.92877231001918586564e1), f(-1.61468768441708447952e3)
    q0, q1, q2 = f(1.12811678491632931402e2), f(2.23548839060100448583e3), f(4.84406305325125486048e3)
    small_max, clamp = f(0.625), f(22)
    for j in range(u, u + n):
        x = a[j]
        ax = abs(x)
        s = x * x
        p2k, q_plus, q_minus = exp_parts(a, two * min(ax, clamp))
        # e^t = 2^k q+ / q-, so 2 / (e^t + 1) = 2 q- / (2^k q+ + q-): each branch is one ratio,
        # and one division serves both
        is_small = ax < small_max
        num_small = x * s * ((p0 * s + p1) * s + p2)
        den_small = ((s + q0) * s + q1) * s + q2
        num_large = two * q_minus
        den_large = p2k * q_plus + q_minus
        ratio = (num_small if is_small else num_large) / (den_small if is_small else den_large)
        z[j] = x + ratio if is_small else np.copysign(one - ratio, x)


@inline
def exp_nonpos(a, x):
    r""":math:`e^x` for :math:`x \le 0` in the dtype of ``a`` by :func:`exp_parts`: 0 below
    :math:`-87` (float32) or :math:`-708` (float64), where :math:`2^k` would leave the normal
    range. NaN stays NaN. Inlined: its callers compile it without reassociation."""
    lo = a.dtype.type(-87.0) if a.itemsize == 4 else a.dtype.type(-708.0)
    p2k, q_plus, q_minus = exp_parts(a, lo if x < lo else x)
    return a.dtype.type(0) if x < lo else p2k * (q_plus / q_minus)


@exact_helper
def exp_units(a, z, u, n, shift):
    r"""``z[u:u+n] = exp(a[u:u+n] - shift)`` for :math:`a \le \mathrm{shift}` (softmax's shift by
    :math:`\max a`); returns the sum. A formula LLVM vectorises (``math.exp`` is a call).

    Cephes' exp (:func:`exp_nonpos`), in the dtype of ``a``. Compiled without reassociation:
    the reduction :math:`x - k c_1 - k c_2` must keep its order (its point is that
    :math:`k c_1` is exact).
    """
    total = a.dtype.type(0)
    for j in range(u, u + n):
        y = exp_nonpos(a, a[j] - shift)
        z[j] = y
        total += y
    return total


@exact_helper
def softmax_rows(a, z, base, n, K):
    r"""Softmax of ``n`` rows of ``K`` units from ``base``: row by row
    :math:`z_k = e^{a_k - \max a} / \sum_j e^{a_j - \max a}`, the same operations as
    :func:`activate`'s softmax of each row, with the exponentials of all ``n K`` units in one
    loop (a row of ten outputs is too short a loop for vectors). ``base``, ``n`` and ``K``
    unsigned (np.uint64); compiled without reassociation, as :func:`exp_units`."""
    zero = a.dtype.type(0)
    for r in range(n):
        u = base + r * K
        amax = a[u]
        for j in range(u, u + K):
            if a[j] > amax:
                amax = a[j]
        for j in range(u, u + K):
            z[j] = a[j] - amax
    for j in range(base, base + n * K):
        z[j] = exp_nonpos(a, z[j])
    for r in range(n):
        u = base + r * K
        total = zero
        for j in range(u, u + K):
            total += z[j]
        for j in range(u, u + K):
            z[j] = z[j] / total


@helper
def logistic(a, one):
    r"""Logistic sigmoid :math:`\sigma(a) = 1 / (1 + e^{-a})` without overflow.

    For :math:`a < 0` it is :math:`e^{a} / (1 + e^{a})`: no exponential of a large positive
    number is ever taken. ``one`` is 1 in the dtype of ``a``.
    """
    e = math.exp(-abs(a))
    if a >= 0:
        return one / (one + e)
    return e / (one + e)


@helper
def log1pexp(a, zero):
    r""":math:`\ln(1 + e^{a})` (softplus) as :math:`\max(a, 0) + \ln(1 + e^{-|a|})`: no overflow
    for large :math:`a`, no loss of the small value :math:`e^{a}` for large negative :math:`a`.
    ``zero`` is 0 in the dtype of ``a``."""
    return max(a, zero) + math.log1p(math.exp(-abs(a)))


@helper
def activate(code, a, z, u, n):
    r"""``z[u:u+n] = h(a[u:u+n])``: the ``n`` units of one sample starting at offset ``u``.

    identity :math:`a`; logistic :math:`\sigma(a)`; tanh; relu :math:`\max(0, a)` (NaN stays
    NaN, as ``np.maximum``); Gudermannian :math:`2 \arctan(\tanh(a/2))`; softmax
    :math:`e^{a_k - \max a} / \sum_j e^{a_j - \max a}`; exp :math:`e^{a}`; softplus
    :math:`\ln(1 + e^{a})`. ``u`` and ``n`` are unsigned (np.uint64), so indexing needs no
    negative-index fix-up and the loops vectorise. The branch on ``code`` sits outside the loops.
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
        tanh_units(a, z, u, n)
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
        total = exp_units(a, z, u, n, amax)
        for j in range(u, u + n):
            z[j] = z[j] / total
    elif code == EXP:
        for j in range(u, u + n):
            z[j] = math.exp(a[j])
    elif code == SOFTPLUS:
        for j in range(u, u + n):
            z[j] = log1pexp(a[j], zero)


@helper
def derivative(code, a, z, one):
    r"""Scalar :math:`h'(a)` of an element-wise activation, given ``a`` and ``z = h(a)``.

    identity 1; logistic :math:`z(1 - z)`; tanh :math:`1 - z^2`; relu :math:`[a > 0]`;
    Gudermannian :math:`\operatorname{sech} a = \cos z`; softplus :math:`\sigma(a)`, from ``a``
    (from ``z``, :math:`1 - e^{-z}` cancels for small z). ``one`` is 1 in the dtype of ``a``.
    """
    if code == LOGISTIC:
        return z * (one - z)
    if code == TANH:
        return one - z * z
    if code == RELU:
        return one if a > one - one else one - one
    if code == GUDERMANNIAN:
        return math.cos(z)
    if code == SOFTPLUS:
        return logistic(a, one)
    return one


@helper
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
    elif code == SOFTPLUS:
        for j in range(u, u + n):
            delta[j] *= logistic(a[j], one)
