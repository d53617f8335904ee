r"""Gradient-descent epochs: on-line (one sample at a time) and mini-batch.

Mirrors ``kernels/_numpy/epoch.py``; split by solver family as the numba backend is. This
module holds the public :func:`sgd_epoch` and :func:`batch_epoch` and textually includes one
``.pxi`` per family, as numba has one module per family (one extension module here, so every
helper is inlined; no call crosses a module):

``sgd_plain.pxi``
    plain sgd without L2, the common case;
``sgd_decay.pxi``
    plain sgd with L2 (scikit-learn's default ``alpha=1e-4``);
``sgd_general.pxi``
    momentum, Nesterov and Adam, with or without L2;
``sgd_windows.pxi``
    plain sgd, with or without L2, on dense inputs: a window of samples at a time.

The pieces the families share are in ``rows.pxd``. :func:`sgd_epoch` is one compiled call
for all epochs of ``order``: per sample, forward → δ → the update of every weight, fused, with
no gradient buffer and no allocation. :func:`batch_epoch` composes the batch kernels of
``forward`` and ``backprop`` (BLAS where it pays) with ``update``. This module is also built as
``epoch_avx2`` (-mavx2 -mfma), which ``deltaprop.kernels._cython`` picks on CPUs that have AVX2
and FMA.

Design of the per-sample loop
-----------------------------
With ``batch_size = 1`` the contract's gradient is
:math:`g = (s_n \nabla E_n + \alpha W) / s_n = \nabla E_n + (\alpha / s_n) W`, so δ is
computed unweighted and a sample with :math:`s_n = 0` is skipped. Going down the layers, row
i of :math:`W_l` is read once for :math:`\delta_{l-1,i} = h'(a_i)\, W_{i,:} \cdot \delta_l`
and then updated in place, :math:`W_{i,:} \mathrel{-}= \eta z_i \delta_l`, while it is still in
cache (``backprop_update_rows``). Plain sgd has a faster first layer: zero inputs skip
their rows (the update is then exactly zero), and the first layer's update for sample n is
fused with the forward sum of the next sample n' (row i is updated, then immediately used for
:math:`a' \mathrel{+}= x'_i W_{i,:}`): one pass over the largest matrix per sample instead of
two, with the same results. Rows go four at a time, and the first layer visits only the rows
listed as non-zero in x or x' (listed without branches). On dense inputs the SIMD builds go
further (``sgd_windows.pxi``, with or without L2): one pass over the first layer for the
forward sums of a window of six samples, one for their updates.

The mini-batch path with plain sgd or momentum needs no gradient buffer either: the gradient's
gemm accumulates straight into W (``beta = 1 - ηα / S_B``, ``alpha = -η / S_B``) or into the
velocity (``beta = μ``), ``gradient_step`` in ``backprop.pxd``. The batch bodies are inline
there and in ``forward.pxd``, so this module and ``epoch_avx2`` compile them with their flags.
"""

import threading

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython cimport floating
from libc.stdint cimport int64_t, uintptr_t
from libc.string cimport memcpy, memset

from ._blas cimport (DELTAPROP_INDEXED, DELTAPROP_PANEL_BYTES, deltaprop_prefetch,
                    deltaprop_prefetch_rows, deltaprop_prefetch_some, indexed_matmul, init_gemm,
                    use_indexed)
from ._core cimport (ADAM, ALPHA, B_OFF, BETA_1, BETA_2, EPSILON, ETA, LINE, MOMENTUM, MU, N_IN, N_OUT, SGD,
                     SPINS, U_OFF, W_OFF, axpy, axpy_axpy, col)
from .activations cimport derivative
from .backprop cimport (backprop_batch, gradient_batch, gradient_step, output_delta_batch,
                        sample_delta)
from .forward cimport forward_batch
from .rows cimport (backprop_rows, dot_decay1, dot_decay4, dot_update1, dot_update4, dots,
                    forward_rows, next_sample, nonzero_rows, rows4, scale_norm, sum_squares,
                    upper_forward, window_update)
from .update cimport adam_rate, adam_rate_inline, batch_step, step_range, update, update_rows
from deltaprop.contract import mostly_nonzero

from ._checks import check_average, check_epoch, check_split

init_gemm()

# How the per-sample epochs treat zero inputs; set by set_skip_zeros (tests only).
cdef int skip_zeros = 1


def set_skip_zeros(int mode):
    """Test hook: how :func:`sgd_epoch` runs plain sgd. 1 (the default): zero inputs skip their
    rows of W_0 unless the inputs are dense (``contract.mostly_nonzero``), and dense inputs
    take windows of samples where :func:`use_windows` says so; 0: every row is
    visited, sample by sample (the same results as skipping, bit for bit); 2: windows
    (``sgd_windows``) whenever the build has them, dense or not;
    -1: the general path (``sgd_general``) instead of the fast ones. Returns the previous
    mode."""
    global skip_zeros
    if mode not in (-1, 0, 1, 2):
        raise ValueError(f"skip_zeros mode must be -1, 0, 1 or 2; got {mode}")
    previous = skip_zeros
    skip_zeros = mode
    return previous


include "sgd_plain.pxi"
include "sgd_decay.pxi"
include "sgd_general.pxi"
include "sgd_windows.pxi"
include "mixing.pxi"
include "split.pxi"


def sgd_epoch(floating[::1] w, const Py_ssize_t[:, ::1] layout, int hidden, int output, int loss,
              const floating[:, ::1] X, const floating[:, ::1] T, const floating[::1] s,
              const Py_ssize_t[:, ::1] order, int solver, const floating[::1] hyper,
              floating[:, ::1] state, int64_t[::1] step, floating[::1] a, floating[::1] z,
              floating[::1] delta, double[:, ::1] losses):
    r"""On-line gradient descent, :math:`w \leftarrow w - \eta \nabla E_n(w)`, one sample at a
    time, for every epoch (row) of ``order``, in one compiled call (see ``deltaprop.contract``).

    Plain sgd runs :func:`sgd_plain` (α = 0) or :func:`sgd_decay` (α > 0), the other solvers
    :func:`sgd_general`."""
    cdef Py_ssize_t n_epochs = order.shape[0], m = order.shape[1], e
    cdef int mode = skip_zeros
    check_epoch(w, layout, X, T, s, order, 1, solver, hyper, state, step, a, z, delta, losses)
    for e in range(n_epochs):
        losses[e, 0] = 0
        losses[e, 1] = 0
    if n_epochs == 0 or m == 0:
        return
    cdef Py_ssize_t H = layout[0, N_OUT]
    cdef bint windows
    cdef unsigned char[::1] scratch
    cdef floating* panel = NULL
    mode, windows = plain_path(mode, solver, X, order, H, sizeof(floating))
    if windows:
        scratch = panel_scratch()
        panel = <floating*>((<uintptr_t>&scratch[0] + 63) & ~(<uintptr_t>63))
    cdef Py_ssize_t* active = <Py_ssize_t*>PyMem_Malloc(X.shape[1] * sizeof(Py_ssize_t))
    cdef floating* raw = <floating*>PyMem_Malloc(
        (window_buffer(X.shape[1], H) if windows else H) * sizeof(floating) + 1)
    if active == NULL or raw == NULL:
        PyMem_Free(active)
        PyMem_Free(raw)
        raise MemoryError()
    with nogil:
        if windows:
            sgd_windows(&w[0], &layout[0, 0], layout.shape[0], hidden, output, loss, &X[0, 0],
                        &T[0, 0], &s[0], &order[0, 0], n_epochs, m, hyper[ETA], hyper[ALPHA],
                        &a[0], &z[0], &delta[0], &losses[0, 0], raw, panel)
        elif solver == SGD and mode >= 0 and hyper[ALPHA] == 0:
            sgd_plain(&w[0], &layout[0, 0], layout.shape[0], hidden, output, loss, &X[0, 0],
                      &T[0, 0], &s[0], &order[0, 0], n_epochs, m, hyper[ETA], &a[0], &z[0],
                      &delta[0], &losses[0, 0], mode > 0, active)
        elif solver == SGD and mode >= 0:
            sgd_decay(&w[0], &layout[0, 0], layout.shape[0], hidden, output, loss, &X[0, 0],
                      &T[0, 0], &s[0], &order[0, 0], n_epochs, m, hyper[ETA], hyper[ALPHA],
                      &a[0], &z[0], &delta[0], &losses[0, 0], mode > 0, active, raw)
        else:
            sgd_general(&w[0], &layout[0, 0], layout.shape[0], hidden, output, loss, &X[0, 0],
                        &T[0, 0], &s[0], &order[0, 0], n_epochs, m, solver, &hyper[0],
                        &state[0, 0], w.shape[0], &step[0], &a[0], &z[0], &delta[0], &losses[0, 0])
    PyMem_Free(active)
    PyMem_Free(raw)


# --------------------------------------------------------------------------- mini-batch epochs
cdef void batch_run(floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden, int output,
                    int loss, const floating* X, const floating* T, const floating* s,
                    const Py_ssize_t* order, Py_ssize_t n_epochs, Py_ssize_t m, Py_ssize_t B,
                    int solver, const floating* hyper, floating* state, Py_ssize_t P,
                    int64_t* step, floating* Xb, floating* Tb, floating* sb, floating* A,
                    floating* Z, floating* D, floating* g, double* losses,
                    floating* panel) noexcept nogil:
    r"""The body of :func:`batch_epoch` (numba's ``batch_epoch`` kernel): gather each batch,
    forward, δ, backprop, gradient :math:`g = (\sum_{n \in B} s_n \nabla E_n + \alpha W) / S_B`,
    update.

    With ``panel`` (the AVX2 build), a first layer that ``_blas.use_indexed`` accepts reads the
    batch's inputs through the visiting order in both of its products (``_indexed.h``), and only
    the targets and weights are gathered; else the inputs are gathered into ``Xb`` too. The
    buffer also serves the δ-backprop through layers of few outputs (``narrow_backprop``)."""
    cdef Py_ssize_t Din = col(layout, 0, N_IN), K = col(layout, L - 1, N_OUT)
    cdef Py_ssize_t H = col(layout, 0, N_OUT)
    cdef Py_ssize_t e, start, nb, nn, r, idx
    cdef const Py_ssize_t* rows
    cdef const floating* inputs
    cdef bint direct, packed
    cdef deltaprop_prefetch pf
    cdef floating alpha = hyper[ALPHA], S
    cdef double E, sq, data, penalty
    pf.base, pf.idx, pf.n, pf.row_bytes = X, order, 0, Din * sizeof(floating)
    for e in range(n_epochs):
        data = 0
        penalty = 0
        start = 0
        while start < m:
            nb = B if start + B <= m else m - start
            direct = panel != NULL and use_indexed(nb, Din, H, sizeof(floating))
            rows = order + e * m + start if direct else NULL
            inputs = X if direct else Xb
            S = 0
            for r in range(nb):
                idx = order[e * m + start + r]
                if not direct:
                    memcpy(Xb + r * Din, X + idx * Din, Din * sizeof(floating))
                memcpy(Tb + r * K, T + idx * K, K * sizeof(floating))
                sb[r] = s[idx]
                S += sb[r]
            start += nb
            # the next batch's targets and, if short (the hardware prefetcher follows long rows
            # on its own), its inputs: into L2 while this batch computes; the inputs a few rows
            # at a time as the first layer's indexed product runs, the rest after the forward
            pf.n = 0
            if start < m:
                nn = B if start + B <= m else m - start
                deltaprop_prefetch_rows(T, order + e * m + start, nn, K * sizeof(floating))
                if Din * sizeof(floating) <= 1024:
                    pf.idx, pf.n = order + e * m + start, nn
            if S == 0:
                deltaprop_prefetch_some(&pf, pf.n)
                continue
            forward_batch(w, layout, L, hidden, output, inputs, nb, A, Z, rows, panel, &pf)
            deltaprop_prefetch_some(&pf, pf.n)
            E = output_delta_batch(layout, L, output, loss, nb, A, Z, Tb, sb, D)
            packed = backprop_batch(w, layout, L, hidden, nb, A, Z, D, panel, direct)
            if solver == SGD or solver == MOMENTUM:  # the step in the gradient's products
                sq = gradient_step(layout, L, solver, nb, inputs, Z, D, w, state, hyper, 1 / S,
                                   rows, panel, packed)
            else:  # g / S, the L2 term and the solver's rule in one pass over w
                gradient_batch(layout, L, nb, inputs, Z, D, g, rows, panel, packed)
                sq = batch_step(layout, L, solver, w, g, P, hyper, state, step, 1 / S)
            data += nb * E / S
            penalty += nb * 0.5 * alpha * sq / S
        losses[2 * e] = data
        losses[2 * e + 1] = penalty


_thread_scratch = threading.local()


cdef object panel_scratch():
    """This thread's buffer for the indexed products' packed panels (``_indexed.h``), made on
    first use and kept while the thread lives: an epoch call on another thread has its own, and
    no call pays for a fresh allocation of DELTAPROP_PANEL_BYTES."""
    buf = getattr(_thread_scratch, "panel", None)
    if buf is None:
        buf = _thread_scratch.panel = bytearray(DELTAPROP_PANEL_BYTES + 64)
    return buf


def batch_epoch(floating[::1] w, const Py_ssize_t[:, ::1] layout, int hidden, int output,
                int loss, const floating[:, ::1] X, const floating[:, ::1] T,
                const floating[::1] s, const Py_ssize_t[:, ::1] order, Py_ssize_t batch_size,
                int solver, const floating[::1] hyper, floating[:, ::1] state, int64_t[::1] step,
                floating[:, ::1] Xb, floating[:, ::1] Tb, floating[::1] sb, floating[::1] A,
                floating[::1] Z, floating[::1] D, floating[::1] g, double[:, ::1] losses):
    r"""Mini-batch gradient descent over consecutive batches of ``order`` (n_epochs, m)
    (see ``deltaprop.contract``)."""
    cdef Py_ssize_t n_epochs = order.shape[0], m = order.shape[1], e
    cdef unsigned char[::1] scratch
    cdef floating* panel = NULL
    check_epoch(w, layout, X, T, s, order, batch_size, solver, hyper, state, step, A, Z, D, losses,
                Xb, Tb, sb, g)
    for e in range(n_epochs):
        losses[e, 0] = 0
        losses[e, 1] = 0
    if n_epochs == 0 or m == 0:
        return
    if DELTAPROP_INDEXED:  # the buffer of the indexed products and narrow_backprop
        scratch = panel_scratch()
        panel = <floating*>((<uintptr_t>&scratch[0] + 63) & ~(<uintptr_t>63))
    with nogil:
        batch_run(&w[0], &layout[0, 0], layout.shape[0], hidden, output, loss, &X[0, 0],
                  &T[0, 0], &s[0], &order[0, 0], n_epochs, m, batch_size, solver, &hyper[0],
                  &state[0, 0], w.shape[0], &step[0], &Xb[0, 0], &Tb[0, 0], &sb[0], &A[0], &Z[0],
                  &D[0], &g[0], &losses[0, 0], panel)
