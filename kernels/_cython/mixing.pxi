# Included by epoch.pyx (numba: mixing.py). Iterative parameter mixing on J threads inside one
# compiled call: per epoch each thread copies the mean weights in, trains its copy on its shard,
# the threads meet, each averages its 1/J slice of the parameters, and they meet again. The
# barrier spins on atomic counters (_sync.h) without the GIL.

cdef extern from "_sync.h" nogil:
    int64_t sync_fetch_add(int64_t* p, int64_t v)
    int64_t sync_load(const int64_t* p)
    void sync_pause()
    void sync_yield()


cdef bint barrier(int64_t* arrived, int64_t* generation, const int64_t* abort,
                  Py_ssize_t J) noexcept nogil:
    """Wait until all J threads have arrived; False if the call was aborted (``*abort`` != 0).
    A waiting thread spins, and after ``SPINS`` rounds (``_core.pxd``, the contract's value)
    yields its core at every round: with
    more threads than cores, the thread it waits for may be waiting for that core."""
    cdef int64_t seen = sync_load(generation)
    cdef Py_ssize_t spins = 0
    if sync_fetch_add(arrived, 1) == J - 1:  # the last to arrive opens the barrier
        sync_fetch_add(arrived, -J)
        sync_fetch_add(generation, 1)
    else:
        while sync_load(generation) == seen:
            if sync_load(abort) != 0:
                return False
            if spins < SPINS:
                spins += 1
                sync_pause()
            else:
                sync_yield()
    return sync_load(abort) == 0


cdef void mean_slice(const floating* copies, Py_ssize_t stride, Py_ssize_t J, Py_ssize_t lo,
                     Py_ssize_t hi, floating* out) noexcept nogil:
    """``out[p] = (copies[0][p] + copies[1][p] + ...) / J`` for p in [lo, hi), in thread order
    (row k of ``copies`` starts at ``k * stride``)."""
    cdef Py_ssize_t p, k
    cdef floating acc, inv = <floating>J
    for p in range(lo, hi):
        acc = copies[p]
        for k in range(1, J):
            acc = acc + copies[k * stride + p]
        out[p] = acc / inv if J > 1 else acc


cdef void average_run(Py_ssize_t j, int mode, floating* w, floating* W, Py_ssize_t ldW,
                      const Py_ssize_t* layout, Py_ssize_t L, int hidden, int output, int loss,
                      const floating* X, const floating* T, const floating* s,
                      const Py_ssize_t* order, Py_ssize_t n_epochs, Py_ssize_t m,
                      const Py_ssize_t* bounds, Py_ssize_t J, int solver, const floating* hyper,
                      floating* state, floating* S, Py_ssize_t ldS, Py_ssize_t P, int64_t* step,
                      int64_t* steps, Py_ssize_t ldt, floating* a, floating* z, floating* delta,
                      Py_ssize_t ldU, double* losses, int64_t* sync, Py_ssize_t ldsync,
                      Py_ssize_t* active, floating* raw, floating* panel) noexcept nogil:
    """The body of :func:`average_epochs` (numba's ``_average_run``); with ``panel`` (not
    NULL), plain sgd takes windows of samples (:func:`sgd_windows`, ``raw`` its buffer)."""
    cdef Py_ssize_t e, k, r, lo = P * j // J, hi = P * (j + 1) // J
    cdef Py_ssize_t first = bounds[2 * j], mine = bounds[2 * j + 1] - bounds[2 * j]
    cdef floating* wj = W + j * ldW
    cdef floating* sj = S + j * ldS
    cdef int64_t* tj = steps + j * ldt
    cdef double* out
    cdef bint fast = solver == SGD and mode >= 0, stateful = solver != SGD
    cdef int64_t most
    for e in range(n_epochs):
        memcpy(wj, w, P * sizeof(floating))
        if stateful:
            memcpy(sj, state, 2 * P * sizeof(floating))
        tj[0] = step[0]
        out = losses + 2 * (j * n_epochs + e)
        out[0] = 0
        out[1] = 0
        if mine > 0 and panel != NULL:
            sgd_windows(wj, layout, L, hidden, output, loss, X, T, s, order + e * m + first, 1,
                        mine, hyper[ETA], hyper[ALPHA], a + j * ldU, z + j * ldU,
                        delta + j * ldU, out, raw, panel)
        elif mine > 0 and fast and hyper[ALPHA] == 0:
            sgd_plain(wj, layout, L, hidden, output, loss, X, T, s, order + e * m + first, 1, mine,
                      hyper[ETA], a + j * ldU, z + j * ldU, delta + j * ldU, out, mode > 0, active)
        elif mine > 0 and fast:
            sgd_decay(wj, layout, L, hidden, output, loss, X, T, s, order + e * m + first, 1, mine,
                      hyper[ETA], hyper[ALPHA], a + j * ldU, z + j * ldU, delta + j * ldU, out,
                      mode > 0, active, raw)
        elif mine > 0:
            sgd_general(wj, layout, L, hidden, output, loss, X, T, s, order + e * m + first, 1,
                        mine, solver, hyper, sj, P, tj, a + j * ldU, z + j * ldU, delta + j * ldU,
                        out)
        if not barrier(sync, sync + ldsync, sync + 2 * ldsync, J):
            return
        mean_slice(W, ldW, J, lo, hi, w)
        if stateful:
            for r in range(2):
                mean_slice(S + r * P, ldS, J, lo, hi, state + r * P)
        if j == 0:
            most = steps[0]
            for k in range(1, J):
                if steps[k * ldt] > most:
                    most = steps[k * ldt]
            step[0] = most
        if not barrier(sync, sync + ldsync, sync + 2 * ldsync, J):
            return


def average_epochs(Py_ssize_t j, floating[::1] w, floating[:, ::1] W,
                   const Py_ssize_t[:, ::1] layout, int hidden, int output, int loss,
                   const floating[:, ::1] X, const floating[:, ::1] T, const floating[::1] s,
                   const Py_ssize_t[:, ::1] order, const Py_ssize_t[:, ::1] bounds, int solver,
                   const floating[::1] hyper, floating[:, ::1] state, floating[:, ::1] S,
                   int64_t[::1] step, int64_t[:, ::1] steps, floating[:, ::1] a,
                   floating[:, ::1] z, floating[:, ::1] delta, double[:, :, ::1] losses,
                   int64_t[:, ::1] sync):
    r"""Thread j's part of parameter-mixing epochs over the rows of ``order`` (n_epochs, m); the
    J threads call it at once, each with its own j (see ``deltaprop.contract``). Plain sgd runs
    :func:`sgd_plain`, :func:`sgd_decay` or :func:`sgd_windows` on each copy, the other
    solvers :func:`sgd_general`, as :func:`sgd_epoch` does (the inputs told dense or not by the
    thread's first shard)."""
    cdef Py_ssize_t n_epochs = order.shape[0], m = order.shape[1], P = w.shape[0]
    cdef int mode = skip_zeros
    check_average(j, w, W, layout, X, T, s, order, bounds, solver, hyper, state, S, step, steps, a,
                  z, delta, losses, sync)
    if n_epochs == 0:
        return
    cdef Py_ssize_t first = bounds[j, 0], last = bounds[j, 1], H = layout[0, N_OUT]
    cdef bint windows
    cdef unsigned char[::1] scratch
    cdef floating* panel = NULL
    mode, windows = plain_path(mode, solver, X, order[:1, first:last], H, sizeof(floating))
    if windows:  # this thread's own buffer (panel_scratch is per thread)
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
        average_run(j, mode, &w[0], &W[0, 0], W.shape[1], &layout[0, 0], layout.shape[0], hidden,
                    output, loss, &X[0, 0], &T[0, 0], &s[0], &order[0, 0], n_epochs, m,
                    &bounds[0, 0], bounds.shape[0], solver, &hyper[0], &state[0, 0], &S[0, 0],
                    S.shape[1], P, &step[0], &steps[0, 0], steps.shape[1], &a[0, 0], &z[0, 0],
                    &delta[0, 0], a.shape[1], &losses[0, 0, 0], &sync[0, 0], sync.shape[1], active,
                    raw, panel)
    PyMem_Free(active)
    PyMem_Free(raw)
