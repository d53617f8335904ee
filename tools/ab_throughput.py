"""Per-sample (or mini-batch) SGD throughput of two source trees, measured side by side.

Each round starts one process per tree, pinned to one CPU with ``taskset``, with every thread
pool held to one thread; the processes alternate (and swap order every round), so a drift of
the machine's speed falls on both trees alike. Round 0 only warms the numba caches. The table
gives each tree's median samples/s and the ratio of the medians, with the per-round ratios.

    git worktree add --detach ../before <commit>        # and build its Cython kernels there
    (cd ../before && ln -s ../../kernels src/deltaprop/kernels && python setup.py build_ext --inplace)
    python tools/ab_throughput.py ../before/src src --rounds 5 --batch-size 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CODE = r"""
import json, sys
from deltaprop import bench
shapes, backends, dtype, batch = sys.argv[1].split(","), sys.argv[2].split(","), sys.argv[3], int(sys.argv[4])
print(json.dumps({f"{b} {s}": bench.measure(b, dtype, s, batch_size=batch, repeats=3, min_time=0.2)
                  for s in shapes for b in backends}))
"""
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                     "NUMBA_NUM_THREADS")}


def measure(src: str, args: argparse.Namespace) -> dict[str, float]:
    """One process of one tree: samples/s of every (backend, shape)."""
    env = dict(os.environ, **ONE_THREAD, PYTHONPATH=os.path.abspath(src))
    cmd = ["taskset", "-c", str(args.cpu), sys.executable, "-c", CODE, args.shapes, args.backends, args.dtype,
           str(args.batch_size)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=os.path.expanduser("~"), check=False)
    if done.returncode:
        raise SystemExit(f"{src}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Measure both trees and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", help="the src/ folder of the first tree")
    p.add_argument("after", help="the src/ folder of the second tree")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--shapes", default="1-3-1,64-32-10,784-128-10,784-256-128-10")
    p.add_argument("--backends", default="numba,cython")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--cpu", type=int, default=1, help="the CPU both trees are pinned to")
    args = p.parse_args(argv)
    trees = [("before", args.before), ("after", args.after)]
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for r in range(args.rounds + 1):
        for name, src in trees if r % 2 == 0 else trees[::-1]:
            figures = measure(src, args)
            if r:
                results[name].append(figures)
    print(f"{args.dtype}, batch {args.batch_size}, samples/s, medians of {args.rounds} rounds")
    print(f"{'case':28} {'before':>12} {'after':>12} {'after/before':>12}   per round")
    for key in results["before"][0]:
        b = statistics.median(x[key] for x in results["before"])
        a = statistics.median(x[key] for x in results["after"])
        ratios = [round(y[key] / x[key], 3) for x, y in zip(results["before"], results["after"])]
        print(f"{key:28} {b:12,.0f} {a:12,.0f} {a / b:12.3f}   {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
