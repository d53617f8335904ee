"""Epochs of two builds of the Cython epoch kernels, in one process, on the same arrays.

Loads ``epoch_avx2`` (or ``--module epoch``) from two source trees' built ``kernels/_cython``
folders into one process and calls their ``sgd_epoch`` (``batch_epoch`` with
``--batch-size``) in turn, on the same weights and optimizer state (reset before every call),
data and unit buffers, so that where the buffers lie in memory and how fast
the machine runs at that moment fall on both builds alike. Per case it prints each build's
median samples/s, the ratio of the medians and the quartiles of the ratios of paired calls.
:file:`tools/ab_throughput.py` compares whole processes instead (both backends, any commit);
this one sees smaller differences of one kernel. Run it pinned::

    git worktree add --detach ../before <commit>        # and build its Cython kernels there
    (cd ../before && ln -s ../../kernels src/deltaprop/kernels && python setup.py build_ext --inplace)
    OMP_NUM_THREADS=1 taskset -c 1 python tools/ab_kernels.py ../before .
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 1 \
        python tools/ab_kernels.py ../before . --batch-size 200 --solver adam --hidden relu
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from types import ModuleType
from typing import Any

import numpy as np

import deltaprop.kernels._cython  # noqa: F401  (the package the loaded modules import from)
from deltaprop.contract import ACTIVATIONS, LOSSES, SOLVERS
from deltaprop.layout import make_layout, n_params, n_units


def load(tree: str, module: str) -> ModuleType:
    """The compiled ``module`` of the tree's ``kernels/_cython``, loaded under its package name."""
    folder = os.path.join(tree, "kernels", "_cython")
    names = [f for f in os.listdir(folder) if f.startswith(module + ".") and f.endswith(".so")]
    if not names:
        raise SystemExit(f"{folder}: no built {module} module (python setup.py build_ext --inplace)")
    spec = importlib.util.spec_from_file_location(f"deltaprop.kernels._cython.{module}",
                                                  os.path.join(folder, names[0]))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def epoch_args(sizes: list[int], dtype: np.dtype[Any], alpha: float, n: int, batch: int,
               solver: str, hidden: str, zeros: float = 0.0) -> tuple[Any, ...]:
    """The arguments of ``sgd_epoch`` (``batch`` 1) or ``batch_epoch``: softmax + cross-entropy,
    one epoch of n random samples (the fraction ``zeros`` of the inputs 0), ``w`` on a 64-byte
    boundary."""
    rng = np.random.RandomState(0)
    layout = make_layout(sizes)
    U, P = n_units(layout), n_params(layout)
    X = rng.rand(n, sizes[0]).astype(dtype)
    if zeros:
        X[rng.rand(*X.shape) < zeros] = 0
    T = np.eye(sizes[-1], dtype=dtype)[rng.randint(0, sizes[-1], n)]
    s = np.ones(n, dtype=dtype)
    order = rng.permutation(n).astype(np.intp)[None, :]
    hyper = np.array([0.01, alpha, 0.9, 0.9, 0.999, 1e-8], dtype=dtype)
    block = np.zeros(P + 64, dtype=dtype)
    off = (-block.ctypes.data % 64) // block.itemsize
    w = block[off:off + P]
    w[:] = rng.randn(P) * 0.05
    head = (w, layout, ACTIVATIONS[hidden], ACTIVATIONS["softmax"], LOSSES["cross_entropy"], X, T, s, order)
    state = (hyper, np.zeros((2, P), dtype=dtype), np.zeros(1, dtype=np.int64))
    if batch == 1:
        return (*head, SOLVERS[solver], *state, *[np.zeros(U, dtype=dtype) for _ in range(3)],
                np.zeros((1, 2)))
    return (*head, batch, SOLVERS[solver], *state, np.zeros((batch, sizes[0]), dtype=dtype),
            np.zeros((batch, sizes[-1]), dtype=dtype), np.zeros(batch, dtype=dtype),
            *[np.zeros(batch * U, dtype=dtype) for _ in range(3)], np.zeros(P, dtype=dtype),
            np.zeros((1, 2)))


def main(argv: list[str] | None = None) -> int:
    """Time both builds on every case and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", help="the first source tree (its kernels/_cython built in place)")
    p.add_argument("after", help="the second source tree")
    p.add_argument("--module", default="epoch_avx2", help="epoch_avx2 (default), epoch_avx512 or epoch")
    p.add_argument("--module-after", default=None,
                   help="the second build's module, if not --module (two builds of one tree: "
                        "python tools/ab_kernels.py . . --module-after epoch_avx512)")
    p.add_argument("--shapes", default="64-32-10,784-128-10,784-256-128-10")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--alphas", default="0,0.0001", help="L2 penalties (0: the plain sgd kernel)")
    p.add_argument("--calls", type=int, default=41, help="calls of each build per case")
    p.add_argument("--batch-size", type=int, default=1, help="1: sgd_epoch, else batch_epoch")
    p.add_argument("--solver", default="sgd", choices=sorted(SOLVERS))
    p.add_argument("--hidden", default="tanh", choices=sorted(ACTIVATIONS))
    p.add_argument("--rows", type=int, default=0, help="samples per epoch (default 1000 for 784 inputs, else 5000)")
    p.add_argument("--zeros", type=float, default=0.0,
                   help="the fraction of the inputs set to 0 (0.8: image-like, zero skipping)")
    args = p.parse_args(argv)
    after = args.module_after or args.module
    builds = [load(args.before, args.module), load(args.after, after)]
    if builds[0] is builds[1] or builds[0].__file__ == builds[1].__file__:
        raise SystemExit("before and after are the same module")
    what = "sgd_epoch" if args.batch_size == 1 else f"batch_epoch, batch {args.batch_size}"
    print(f"{args.module} -> {after} {what}, {args.solver}, {args.hidden}: samples/s, medians of {args.calls} calls "
          "each, alternating")
    print(f"{'case':36} {'before':>11} {'after':>11} {'after/before':>12}   paired q25-q75")
    for shape in args.shapes.split(","):
        sizes = [int(v) for v in shape.split("-")]
        n = args.rows or (1000 if sizes[0] > 100 else 5000)
        for dtype in args.dtypes.split(","):
            for alpha in (float(a) for a in args.alphas.split(",")):
                call = epoch_args(sizes, np.dtype(dtype), alpha, n, args.batch_size, args.solver,
                                  args.hidden, args.zeros)
                # w, the optimizer state and the step count, put back before every call
                first = 11 if args.batch_size == 1 else 12  # batch_epoch takes the batch size first
                kept = [call[0], call[first], call[first + 1]]
                start = [a.copy() for a in kept]
                times: list[list[float]] = [[], []]
                for r in range(args.calls + 1):
                    for b in ((0, 1) if r % 2 else (1, 0)):
                        for a, a0 in zip(kept, start):
                            a[...] = a0
                        epoch = builds[b].sgd_epoch if args.batch_size == 1 else builds[b].batch_epoch
                        t0 = time.perf_counter()
                        epoch(*call)
                        if r:  # the first round warms the caches
                            times[b].append(time.perf_counter() - t0)
                ratios = sorted(t0 / t1 for t0, t1 in zip(*times))
                q = len(ratios) // 4
                before, after = (statistics.median(t) for t in times)
                print(f"{shape + ' ' + dtype + f' alpha={alpha:g}':36} {n / before:11,.0f} {n / after:11,.0f} "
                      f"{before / after:12.3f}   {ratios[q]:.3f}-{ratios[-q - 1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
