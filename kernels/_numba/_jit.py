r"""The one place the numba options of the ``_numba`` kernels live.

``kernel`` is ``numba.njit`` with

- ``cache=True``: compiled machine code is written next to the sources (or to
  ``NUMBA_CACHE_DIR``), so a second process loads it instead of compiling again;
- ``nogil=True``: kernels release the GIL, so threads can train several models at once;
- ``error_model="numpy"``: a float division by zero gives inf or NaN, as in NumPy (the reference),
  instead of raising ZeroDivisionError. The Python model's check is an early exit from every
  loop that divides, and LLVM does not vectorise such loops (softmax, logistic, tanh);
- no signatures: a kernel compiles lazily, once per dtype, on its first call, which keeps
  ``import deltaprop.kernels._numba`` quick;
- ``fastmath=FASTMATH``, chosen so that NaN and inf stay meaningful (the engine relies on them to
  detect divergence): ``nnan`` and ``ninf`` are left out, because with them LLVM may assume that
  no NaN or inf ever occurs and fold ``isfinite`` checks, comparisons and ``max`` into wrong
  answers. The flags kept change results by rounding only:

  ``reassoc``
      reassociation of sums lets LLVM vectorise the dot products of the δ-recursion (a
      reduction): the summands are the same, only the order of the additions differs;
  ``contract``
      ``x * y + z`` may become one fused multiply-add (one rounding instead of two);
  ``arcp``
      ``x / y`` may become ``x * (1 / y)`` (one extra rounding);
  ``nsz``
      the sign of a zero result is not significant (``-0.0`` and ``0.0`` compare equal
      anyway).

  ``afn`` (approximate library functions) is left out: it would license cheaper ``exp`` /
  ``tanh`` substitutes whose error is not bounded by a rounding.

``exact_kernel`` drops ``reassoc`` as well. It compiles the loops whose order of additions is
part of a promise: the first layer's forward sum, fused with its update and skipping zero
inputs, must give exactly the sum an unfused, dense pass gives, so LLVM may not regroup it.
"""

import functools

import numba

FASTMATH = frozenset({"reassoc", "contract", "arcp", "nsz"})

#: ``@kernel`` compiles a function with the project's numba options.
kernel = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy", fastmath=set(FASTMATH))

#: ``@exact_kernel``: the same without ``reassoc`` (sums keep their order).
exact_kernel = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy",
                                 fastmath=set(FASTMATH - {"reassoc"}))

#: ``@strict_kernel``: no fastmath at all, for arithmetic that must equal NumPy's bit for bit (the
#: parameter mixing's mean, divided by J as NumPy divides). Its callers must be strict too: a
#: fast-math caller into which LLVM inlines it may turn ``x / J`` into ``x * (1 / J)``.
strict_kernel = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy")

#: ``@helper`` and ``@exact_helper``: ``kernel`` and ``exact_kernel`` without numba's reference
#: counting (``_nrt=False``), for the helpers a per-sample epoch calls for every sample. Such a
#: helper borrows the arrays it receives and may not allocate one. With reference counting, every
#: call of a helper that itself calls a function on its arrays pays an atomic increment and
#: decrement per array argument (numba's pruning removes them only in leaf functions), which
#: dominates the time of small networks.
helper = functools.partial(kernel, _nrt=False)
exact_helper = functools.partial(exact_kernel, _nrt=False)

#: ``@inline``: numba copies the function's IR into every caller (``inline="always"``), so it is
#: compiled with the caller's options (an ``exact_helper`` caller keeps its sums in order) and
#: a flag passed as a literal ``True`` / ``False`` folds away its branches. The row sweeps of
#: ``rows`` are written once this way, and each per-sample kernel gets its own copy.
inline = functools.partial(helper, inline="always")

__all__ = ["kernel", "exact_kernel", "strict_kernel", "helper", "exact_helper", "inline", "FASTMATH"]
