r"""Iterative parameter mixing on J threads inside one compiled call (``average_epochs``).

Thread j of J trains its own copy :math:`w_j` of the weights on its shard of each epoch, then
the copies are averaged, :math:`w \leftarrow \frac{1}{J} \sum_j w_j`; the threads meet at a
barrier before and after the average, in compiled code, so an epoch costs no Python and no
sleeping thread. The barrier counts through two atomic instructions, which numba does not
offer on arrays: :func:`_fetch_add` and :func:`_load_acquire` emit them through llvmlite.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from deltaprop.contract import ALPHA, ETA, N_IN, N_OUT, SGD, SPINS, U_OFF, mostly_nonzero

from ._jit import kernel, strict_kernel
from .sgd_decay import sgd_decay
from .sgd_general import sgd_general
from .sgd_plain import sgd_plain
from .sgd_windows import sgd_windows, use_windows


@intrinsic
def _fetch_add(typingctx, sync, row, value):
    """``sync[row, 0] += value`` as one atomic instruction (sequentially consistent); returns the
    value before the addition."""
    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(context, builder, sig.args[0], array, [args[1], zero])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return types.int64(sync, row, value), codegen


@intrinsic
def _load_acquire(typingctx, sync, row):
    """``sync[row, 0]`` read with acquire ordering: every write made before the matching release
    (a :func:`_fetch_add`) by another thread is visible after it."""
    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(context, builder, sig.args[0], array, [args[1], zero])
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(sync, row), codegen


@intrinsic
def _sched_yield(typingctx):
    """``sched_yield()`` (libc): let another runnable thread have this core."""
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []),
                                            "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


ARRIVED, GENERATION, ABORT = 0, 1, 2


@strict_kernel
def mean_slice(copies, offset, J, lo, hi, out):
    """``out[p] = (copies[0, offset + p] + copies[1, offset + p] + ...) / J`` for p in [lo, hi),
    summed in thread order and divided (not multiplied by 1/J) as NumPy does."""
    inv = out.dtype.type(J)
    for p in range(lo, hi):
        acc = copies[0, offset + p]
        for k in range(1, J):
            acc += copies[k, offset + p]
        out[p] = acc / inv if J > 1 else acc


@kernel
def barrier(sync, J):
    """Wait until all J threads have arrived (``sync`` rows: arrivals, generation, abort, each in
    a cache line of its own). False if the call was aborted: a thread spinning here leaves as
    soon as ``sync[2, 0]`` is non-zero, so one that never arrives cannot hang the others. After
    ``SPINS`` rounds (``deltaprop.contract``) a waiting thread yields its core at every round, so
    more threads than cores slow down instead of spinning away the time slices of the threads
    they wait for."""
    generation = _load_acquire(sync, GENERATION)
    spins = 0
    if _fetch_add(sync, ARRIVED, 1) == J - 1:  # the last to arrive opens the barrier
        _fetch_add(sync, ARRIVED, -J)
        _fetch_add(sync, GENERATION, 1)
    else:
        while _load_acquire(sync, GENERATION) == generation:
            if _load_acquire(sync, ABORT) != 0:
                return False
            if spins < SPINS:
                spins += 1
            else:  # more threads than cores: the one awaited may be waiting for this core
                _sched_yield()
    return _load_acquire(sync, ABORT) == 0


def average_epochs(j, w, W, layout, hidden, output, loss, X, T, s, order, bounds, solver, hyper,
                   state, S, step, steps, a, z, delta, losses, sync):
    r"""Thread j's part of parameter-mixing epochs (see ``deltaprop.contract``). This thin Python
    function picks the per-sample kernel, as ``sgd_epoch`` does, and whether zero inputs are
    skipped (``contract.mostly_nonzero`` on the thread's first shard); dense inputs take windows
    of samples where ``sgd_windows.use_windows`` says so."""
    first, last = bounds[j]
    kind = (0 if hyper[ALPHA] == 0 else 1) if solver == SGD else 2
    skip = solver == SGD and not mostly_nonzero(X, order[:1, first:last])
    if kind < 2 and not skip and use_windows(layout[0, N_IN], layout[0, N_OUT], X.itemsize):
        kind = 3  # windows of samples
    _average_run(j, kind, skip, w, W, layout, hidden, output, loss, X, T, s, order, bounds, solver,
                 hyper, state, S, step, steps, a, z, delta, losses, sync)


@strict_kernel  # it calls mean_slice
def _average_run(j, kind, skip, w, W, layout, hidden, output, loss, X, T, s, order, bounds,
                 solver, hyper, state, S, step, steps, a, z, delta, losses, sync):
    """The compiled body of :func:`average_epochs`: per epoch, copy the mean in, train, meet,
    average this thread's 1/J slice of the parameters (and of the optimizer state), meet."""
    J = bounds.shape[0]
    P = w.shape[0]
    lo, hi = P * j // J, P * (j + 1) // J
    first, last = bounds[j, 0], bounds[j, 1]
    wj = W[j, :P]
    sj = S[j, : 2 * P].reshape((2, P))
    tj = steps[j, :1]
    U = layout[-1, U_OFF] + layout[-1, N_OUT]
    aj, zj, dj = a[j, :U], z[j, :U], delta[j, :U]
    for e in range(order.shape[0]):
        wj[:] = w
        if kind == 2:
            sj[:, :] = state
        tj[0] = step[0]
        mine = order[e, first:last].reshape((1, last - first))
        out = losses[j, e : e + 1]
        if kind == 0:
            sgd_plain(wj, layout, hidden, output, loss, X, T, s, mine, hyper[ETA], aj, zj, dj, out, skip)
        elif kind == 3:
            sgd_windows(wj, layout, hidden, output, loss, X, T, s, mine, hyper[ETA], hyper[ALPHA], aj, zj, dj, out)
        elif kind == 1:
            sgd_decay(wj, layout, hidden, output, loss, X, T, s, mine, hyper[ETA], hyper[ALPHA], aj, zj,
                      dj, out, skip)
        else:
            sgd_general(wj, layout, hidden, output, loss, X, T, s, mine, solver, hyper, sj, tj, aj, zj, dj,
                        out)
        if not barrier(sync, J):
            return
        # w <- (w_0 + w_1 + ... + w_{J-1}) / J, summed in thread order (as the reference's mean_slice)
        mean_slice(W, 0, J, lo, hi, w)
        if kind == 2:
            for r in range(2):
                mean_slice(S, r * P, J, lo, hi, state[r])
        if j == 0:
            most = steps[0, 0]
            for k in range(1, J):
                most = max(most, steps[k, 0])
            step[0] = most
        if not barrier(sync, J):
            return
