r"""The Cython backend: the kernel contract as compiled ``.pyx`` kernels (built by setup.py).

Every function takes float32 or float64 arrays (fused types; one dtype across the floating
arguments) and runs its loops without the GIL. If the extension modules were not built,
importing this package raises ImportError and the backend registry lists ``cython`` as
unavailable. :func:`codes` returns the enums the kernels were compiled with.

The same algorithm has the same name as in ``kernels/_numba`` (numba's names win). Where numba
passes an array and an offset, ``(w, wo)``, Cython passes a pointer, ``w + wo``; the other
arguments keep numba's order (sizes numba reads from an array's shape come after it).

Modules
-------
==========================  ===============================================================
numba                       Cython
==========================  ===============================================================
``activations.py``          ``activations.pxd`` (cdef inline; the C tanh in ``_tanh.h``)
``forward.py``              ``forward.pyx``
``backprop.py``             ``backprop.pyx``; ``sample_delta`` inline in ``backprop.pxd``
``update.py``               ``update.pyx``; ``update_rows`` inline in ``update.pxd``
``epoch.py``                ``epoch.pyx`` (``sgd_epoch``, ``batch_epoch``), which includes
                            the ``.pxi`` below (textually: one extension module, built
                            three times, as ``epoch``, ``epoch_avx2`` and
                            ``epoch_avx512``)
``sgd_plain.py``            ``sgd_plain.pxi``
``sgd_decay.py``            ``sgd_decay.pxi``
``mixing.py``               ``mixing.pxi`` (included by ``epoch.pyx``; atomics in ``_sync.h``)
``sgd_windows.py``          ``sgd_windows.pxi``
``sgd_general.py``          ``sgd_general.pxi`` (its ``backprop_rows`` is in ``rows.pxd``:
                            the batch kernels' small-layer loop uses it too)
``rows.py``                 ``rows.pxd`` (cdef inline; the C row loops in ``_rows.h``)
``_jit.py`` (options)       the compiler directives and flags in ``setup.py``
``codes()``                 :func:`codes` (``_codes.pyx``), from the enums of ``_core.pxd``
(numba's typing)            ``_checks.py``: argument checks of the ``def`` wrappers
==========================  ===============================================================

Functions
---------
The same name in both backends, except where the last column says otherwise. Arguments are
numba's, in numba's order, with a pointer for each (array, offset) pair.

===================  =============================  ============================================
numba module         numba function                 Cython
===================  =============================  ============================================
activations          tanh_units, logistic,          ``activations.pxd``
                     log1pexp, activate,
                     derivative,
                     scale_by_derivative
backprop             sample_delta                   ``backprop.pxd``
forward, backprop    forward, output_delta,         the same ``def`` functions; their ``nogil``
                     backprop, gradient,            bodies are ``forward_batch``,
                     loss_gradient                  ``output_delta_batch``, ``backprop_batch``,
                                                    ``gradient_batch``, inline in ``forward.pxd``
                                                    and ``backprop.pxd`` (``loss_gradient``
                                                    loops over the four)
backprop             gradient_step                  ``backprop.pxd``: batch sgd and momentum
                                                    without a gradient buffer
blas                 gemm                           ``_blas.pxd`` (``_gemm.h``): the same
                                                    library, found by ``kernels/blas.py``
indexed              indexed_matmul,                ``_blas.pxd``'s ``indexed_matmul`` (its
                     indexed_relu_layer,            ``relu`` flag is ``indexed_relu_layer``),
                     indexed_matmul_at,             ``indexed_matmul_at`` (``_indexed.h``, SIMD
                     use_indexed                    builds only), ``use_indexed``: the first
                                                    layer's products of a mini-batch read
                                                    through the visiting order, no gather
indexed              window_update                  ``rows.pxd`` (``_rows.h``); it takes the
                                                    inputs' rows and η, numba the products
                                                    :math:`\eta x_r`
sgd_windows          use_windows, next_window,      ``sgd_windows.pxi`` (the Gram rows are
                     prefetch_window, dots,         ``rows.pxd``'s ``dots``; the prefetch is
                     window_norm, sgd_windows       written inline); ``plain_path`` picks the
                                                    kernel (numba: ``epoch.sgd_epoch`` and
                                                    ``mixing.average_epochs``)
update               update, adam_rate              ``update.pyx``
update               update_rows                    ``update.pxd``, row by row through
                                                    ``update_row``; takes the unweighted δ and
                                                    :math:`c = \alpha / s_n` (numba: δ times
                                                    :math:`s_n`, and :math:`1 / s_n`)
rows                 next_sample                    ``rows.pxd``; a position in the flattened
                                                    order instead of numba's (e, p)
rows                 forward_rows, upper_forward    ``rows.pxd``; ``forward_rows`` skips zero
                                                    inputs and adds the bias last
sgd_general          backprop_rows                  ``rows.pxd``
sgd_plain            backprop_update_rows,          ``sgd_plain.pxi``; ``first_layer`` with
                     first_layer, sgd_plain         ``x2 = NULL`` is numba's ``fwd=False``
sgd_decay            backprop_decay_rows,           ``sgd_decay.pxi``; ``first_layer_scaled``
                     first_layer_scaled,            keeps the forward sum ρ in ``raw`` where
                     scale_first_layer, sgd_decay   numba accumulates ``pv``
sgd_general          sgd_general                    ``sgd_general.pxi``
epoch                sgd_epoch, batch_epoch         ``epoch.pyx``; the body of ``batch_epoch`` is
                                                    ``batch_run``
mixing               average_epochs, barrier,       ``mixing.pxi``, the same names; numba's
                     mean_slice, _average_run       ``_average_run`` is ``average_run``; the
                                                    atomics are ``_sync.h``'s
split                split_epochs, param_slice,     ``split.pxi``; ``sum_rows`` is written
                     sum_rows, sum_squares          inline (a loop); ``sum_squares`` is
                                                    ``rows.pxd``'s (four accumulators)
sgd_plain,           the ``skip_zeros`` argument    ``epoch.set_skip_zeros(mode)``, a test hook
sgd_decay                                           (not in the public signature)
rows                 sweep4, sweep1 (inline)        the C loops of ``_rows.h`` behind
                                                    ``rows.pxd``: ``sum4`` (``fwd``), ``rows4``
                                                    (``upd`` and ``fwd``), ``axpy``,
                                                    ``axpy_axpy``
rows                 dot_update4, dot_update1       ``dot_update4``, ``dot_update1``; with
                     (inline)                       ``decay``: ``dot_decay4``, ``dot_decay1``
rows                 backprop_update, list_rows,    written in ``sgd_plain.pxi`` and
                     first_rows (inline)            ``sgd_decay.pxi``; ``list_rows`` is
                                                    ``nonzero_rows``
(written inline)     (none)                         ``dot``, ``scale_norm``
===================  =============================  ============================================

CPU dispatch: the kernels of ``forward``, ``backprop`` and ``epoch`` come from
``forward_avx2``, ``backprop_avx2`` and ``epoch_avx2`` (the same sources compiled with
``-mavx2 -mfma``) on CPUs that have AVX2 and FMA, else from the portable modules, and
:func:`batch_epoch` from ``epoch_avx512`` (compiled with AVX-512 as well: its first-layer
products in 512-bit register tiles) on CPUs that have AVX-512 F, VL, BW and DQ; see
:func:`_simd_module`. The per-sample kernels stay the AVX2 build's: their loops gain nothing
from AVX-512 (the figures are in the mini-batch performance page).
"""

import importlib
import os

from ._codes import codes


def _cpu_features():
    """NumPy's table of the running CPU's features (``{"AVX2": True, ...}``), or ``{}``.

    The table is NumPy's private ``__cpu_features__``; where it is missing (moved or removed
    in another NumPy version) the result is ``{}`` and the portable build is used.
    """
    for name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        features = getattr(module, "__cpu_features__", None)
        return features if isinstance(features, dict) else {}
    return {}


def _cpu_has_avx2_fma():
    features = _cpu_features()
    return bool(features.get("AVX2") and features.get("FMA3"))


def _cpu_has_avx512():
    """AVX-512 F, VL, BW and DQ (what ``epoch_avx512`` is compiled for), with AVX2 and FMA."""
    features = _cpu_features()
    return _cpu_has_avx2_fma() and all(features.get(f) for f in ("AVX512F", "AVX512VL", "AVX512BW",
                                                                  "AVX512DQ"))


def _simd_module(name, avx512=False):
    """The module ``name`` ("forward", "backprop" or "epoch") compiled for this CPU:
    ``{name}_avx512`` when ``avx512`` is asked for (``epoch`` only) and the CPU has AVX-512 F,
    VL, BW and DQ; else ``{name}_avx2`` (built with -mavx2 -mfma) when the CPU has AVX2 and FMA;
    else the portable ``{name}``. ``DELTAPROP_CYTHON_SIMD=avx2`` stops at the AVX2 build,
    ``DELTAPROP_CYTHON_SIMD=baseline`` forces the portable one.

    The portable module is imported either way, first: importing a submodule binds its name in
    this package, and ``forward`` and ``backprop`` are bound to the kernels of the same names
    below, which a later first import of the submodule would overwrite."""
    portable = importlib.import_module(f"{__name__}.{name}")
    limit = os.environ.get("DELTAPROP_CYTHON_SIMD", "auto")
    variants = []
    if avx512 and limit not in ("baseline", "avx2") and _cpu_has_avx512():
        variants.append("avx512")
    if limit != "baseline" and _cpu_has_avx2_fma():
        variants.append("avx2")
    for variant in variants:
        try:
            return importlib.import_module(f"{__name__}.{name}_{variant}")
        except ImportError:  # not built (non-x86 platform, DELTAPROP_NO_SIMD_VARIANT=1)
            pass
    return portable


_forward = _simd_module("forward")
forward = _forward.forward
_backprop = _simd_module("backprop")
output_delta = _backprop.output_delta
backprop = _backprop.backprop
gradient = _backprop.gradient
loss_gradient = _backprop.loss_gradient
_epoch = _simd_module("epoch")
sgd_epoch = _epoch.sgd_epoch
_batch_epoch = _simd_module("epoch", avx512=True)
batch_epoch = _batch_epoch.batch_epoch
average_epochs = _epoch.average_epochs
split_epochs = _epoch.split_epochs
#: the modules the epoch kernels come from ("epoch" or "epoch_avx2"; :func:`batch_epoch`'s may
#: be "epoch_avx512")
EPOCH_MODULE = _epoch.__name__.rsplit(".", 1)[-1]
BATCH_EPOCH_MODULE = _batch_epoch.__name__.rsplit(".", 1)[-1]

__all__ = ["forward", "output_delta", "backprop", "gradient", "loss_gradient", "sgd_epoch", "batch_epoch",
           "average_epochs", "split_epochs", "codes"]
