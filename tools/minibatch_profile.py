"""Where a mini-batch epoch's time goes: µs per batch for each piece of ``batch_epoch``.

Each piece of one batch is timed on its own, through the backend's raw kernels (the contract's
``forward``, ``output_delta``, ``backprop``, ``gradient``) on the same arrays ``batch_epoch``
uses, beside the matrix products that piece contains, timed alone through NumPy's BLAS on the
same shapes. What a piece costs beyond its products is work that is not a product: the gather
of the batch's rows, bias additions, activations and their derivatives, the output δ, the
update pass. ``batch_epoch`` itself, over a whole epoch of shuffled batches, gives the total;
the remainder (total less the pieces) is the update and the loop. Run it pinned::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 1 python tools/minibatch_profile.py
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from typing import Callable

import numpy as np

from deltaprop import MLP
from deltaprop.backends import get_backend
from deltaprop.contract import ACTIVATIONS, LOSSES, SOLVERS, make_hyper
from deltaprop.layout import layer_units, n_units

CASES = {  # name: (layer sizes, hidden, dtype, batch, solver)
    "784-128-10 f32 b32 sgd": ([784, 128, 10], "tanh", np.float32, 32, "sgd"),
    "784-128-10 f32 b200 sgd": ([784, 128, 10], "tanh", np.float32, 200, "sgd"),
    "64-100-10 f64 b200 adam (scikit-learn's default)": ([64, 100, 10], "relu", np.float64, 200, "adam"),
}


def median_us(call: Callable[[], object], number: int, repeats: int = 7) -> float:
    """Median over ``repeats`` of the mean µs of ``number`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            call()
        times.append((time.perf_counter() - t0) / number * 1e6)
    return statistics.median(times)


def profile(backend: str, sizes: list[int], hidden: str, dtype: type, B: int, solver: str,
            n: int = 2000) -> list[tuple[str, float, float]]:
    """(piece, µs per batch, µs of its products alone) for one case."""
    rng = np.random.RandomState(0)
    D, K = sizes[0], sizes[-1]
    X = rng.randn(n, D).astype(dtype)
    T = np.eye(K, dtype=dtype)[rng.randint(K, size=n)]
    s = np.ones(n, dtype=dtype)
    net = MLP(sizes, hidden=hidden, output="softmax", loss="cross_entropy", dtype=np.dtype(dtype).name,
              backend=backend, random_state=0)
    k = get_backend(backend)
    w, layout = net.w, net.layout
    h, f, loss = ACTIVATIONS[hidden], ACTIVATIONS["softmax"], LOSSES["cross_entropy"]
    U, P = n_units(layout), w.shape[0]
    Xb, Tb, sb = np.empty((B, D), dtype), np.empty((B, K), dtype), np.ones(B, dtype)
    A, Z, Dl, g = np.zeros(B * U, dtype), np.zeros(B * U, dtype), np.zeros(B * U, dtype), np.zeros(P, dtype)
    idx = rng.permutation(n)[:B].astype(np.intp)
    np.take(X, idx, axis=0, out=Xb)
    np.take(T, idx, axis=0, out=Tb)
    number = max(20, 200_000 // (B * D))
    W = net.coefs_
    Zs = [layer_units(Z, layout, j, B) for j in range(len(W))]
    Ds = [layer_units(Dl, layout, j, B) for j in range(len(W))]
    inputs = [Xb] + Zs[:-1]
    rows: list[tuple[str, float, float]] = []
    # a new batch of rows each call, copied without a buffer (mode="clip"; the default "raise"
    # takes into a temporary first), as the kernels copy each row into Xb
    batches = itertools.cycle([rng.permutation(n)[:B].astype(np.intp) for _ in range(8)])

    def gather() -> None:
        rows_ = next(batches)
        np.take(X, rows_, axis=0, out=Xb, mode="clip")
        np.take(T, rows_, axis=0, out=Tb, mode="clip")
    rows.append(("gather the batch's rows", median_us(gather, number), 0.0))
    fwd_products = median_us(lambda: [a @ Wl for a, Wl in zip(inputs, W)], number)
    rows.append(("forward (a = zW + b, z = h(a), y = f(a))", median_us(
        lambda: k.forward(w, layout, h, f, Xb, A, Z), number), fwd_products))
    rows.append(("output δ and E", median_us(lambda: k.output_delta(layout, f, loss, A, Z, Tb, sb, Dl), number), 0.0))
    back_products = median_us(lambda: [d @ Wl.T for d, Wl in zip(Ds[1:], W[1:])], number)
    rows.append(("δ-backprop (δ_j = h'(a_j) Σ_k w_kj δ_k)", median_us(
        lambda: k.backprop(w, layout, h, A, Z, Dl), number), back_products))
    grad_products = median_us(lambda: [a.T @ d for a, d in zip(inputs, Ds)], number)
    rows.append(("gradient (zᵀδ, Σ δ)", median_us(lambda: k.gradient(layout, Xb, Z, Dl, g), number), grad_products))
    # the whole epoch: batch_epoch over n rows in batches of B, per batch
    order = rng.permutation(n).astype(np.intp)[None, :]
    hyper = make_hyper(dtype, eta=1e-4)
    state, step = np.zeros((2, P), dtype), np.zeros(1, np.int64)
    losses = np.zeros((1, 2))
    w0 = w.copy()

    def epoch() -> None:
        k.batch_epoch(w, layout, h, f, loss, X, T, s, order, B, SOLVERS[solver], hyper, state, step,
                      Xb, Tb, sb, A, Z, Dl, g, losses)
        w[...] = w0
    total = median_us(epoch, 3, repeats=5) / (n // B)
    pieces = sum(r[1] for r in rows)
    rows.append(("update and loop (total less the pieces)", total - pieces, 0.0))
    rows.append(("batch_epoch, per batch", total, fwd_products + back_products + grad_products))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the table of every case and backend."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default="numba,cython")
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated names of CASES")
    args = p.parse_args(argv)
    for case in args.cases.split(","):
        sizes, hidden, dtype, B, solver = CASES[case]
        for backend in args.backends.split(","):
            print(f"\n{case}, {backend} (µs per batch: the piece, its products alone, the rest)")
            for name, us, prod in profile(backend, sizes, hidden, dtype, B, solver):
                print(f"  {name:44} {us:8.1f} {prod:8.1f} {us - prod:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
