r"""Iterative parameter mixing: thread j's part of J threads' epochs (``average_epochs``).

Each epoch every thread copies the mean weights :math:`w` (and optimizer state) into its own
copy, trains it on its shard of the epoch's order with :func:`sgd_epoch`, and the copies are
averaged, :math:`w \leftarrow \frac{1}{J} \sum_j w_j`, each thread its 1/J slice of the
parameters. The threads meet at a barrier before and after the average.

The barrier here is the readable one: counters in ``sync`` changed under a lock, waited for by
polling (a sleep of zero lets the other Python threads run). The compiled backends use atomic
instructions and spin, without the GIL.
"""

import threading
import time

from deltaprop.contract import SGD
from deltaprop.layout import n_units

from .epoch import sgd_epoch

_LOCK = threading.Lock()
ARRIVED, GENERATION, ABORT = 0, 1, 2


def barrier(sync, J):
    """Wait until all J threads have arrived; False if the call was aborted (``sync[2, 0]``)."""
    with _LOCK:
        generation = sync[GENERATION, 0]
        sync[ARRIVED, 0] += 1
        if sync[ARRIVED, 0] == J:  # the last to arrive opens the barrier
            sync[ARRIVED, 0] = 0
            sync[GENERATION, 0] += 1
    while sync[GENERATION, 0] == generation:
        if sync[ABORT, 0] != 0:
            return False
        time.sleep(0)
    return sync[ABORT, 0] == 0


def average_epochs(j, w, W, layout, hidden, output, loss, X, T, s, order, bounds, solver, hyper,
                   state, S, step, steps, a, z, delta, losses, sync):
    r"""Thread j's part of parameter-mixing epochs over the rows of ``order`` (n_epochs, m); the
    J threads call it at once, each with its own j (see ``deltaprop.contract``)."""
    J, P, U = bounds.shape[0], w.shape[0], n_units(layout)
    first, last = bounds[j]
    lo, hi = P * j // J, P * (j + 1) // J
    wj, sj, tj = W[j, :P], S[j, : 2 * P].reshape(2, P), steps[j, :1]
    for e in range(order.shape[0]):
        wj[...] = w
        if solver != SGD:  # plain sgd keeps no optimizer state
            sj[...] = state
        tj[...] = step
        sgd_epoch(wj, layout, hidden, output, loss, X, T, s, order[e : e + 1, first:last], solver, hyper,
                  sj, tj, a[j, :U], z[j, :U], delta[j, :U], losses[j, e : e + 1])
        if not barrier(sync, J):
            return
        mean_slice(W, 0, J, lo, hi, w)
        if solver != SGD:
            for r in range(2):
                mean_slice(S, r * P, J, lo, hi, state[r])
        if j == 0:
            step[0] = steps[:, 0].max()
        if not barrier(sync, J):
            return


def mean_slice(copies, offset, J, lo, hi, out):
    """``out[p] = (copies[0, offset + p] + copies[1, offset + p] + ...) / J`` for p in [lo, hi),
    summed in thread order."""
    total = copies[0, offset + lo : offset + hi].copy()
    for k in range(1, J):
        total += copies[k, offset + lo : offset + hi]
    out[lo:hi] = total / copies.dtype.type(J) if J > 1 else total
