"""PyTorch CPU per-sample SGD throughput on deltaprop's standard shapes (a peer, not a dependency).

Run it from a checkout of the repository, with a Python that has torch and NumPy (and
scikit-learn, for the digits of 64-32-10); deltaprop need not be installed there::

    python3 -m venv peers && peers/bin/pip install torch numpy scikit-learn
    peers/bin/python tools/peer_torch.py [--repeats 5] [--min-time 0.2] [--shapes 1-3-1,64-32-10]

The shapes, η and data are deltaprop's own (``src/deltaprop/bench/data.py``, loaded by its file
path: same seeds, same arrays). The loop is the idiomatic one: for each sample, ``model(x)``,
the loss, ``backward()``, ``optimizer.step()`` (plain SGD) and ``zero_grad``; one thread.
Prints JSON: samples/s (median of interleaved repeats) per ``"<shape> <dtype> torch"``.
"""

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

#: deltaprop's benchmark data definitions, beside this folder in the repository
DATA_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "src", "deltaprop", "bench", "data.py")

torch = None  # imported by main(), so that this module imports without torch


def load_data_module():
    """``src/deltaprop/bench/data.py`` loaded by its file path (deltaprop need not be installed)."""
    spec = importlib.util.spec_from_file_location("deltaprop_bench_data", DATA_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


data = load_data_module()


class Task:
    """Per-sample SGD of one standard shape and dtype in PyTorch, timed over whole epochs."""

    def __init__(self, shape, dtype):
        sizes, hidden, output, loss = data.SHAPES[shape]
        self.name = f"{shape} {dtype} torch"
        torch.manual_seed(0)
        tdt = getattr(torch, dtype)
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(torch.nn.Linear(n_in, n_out, dtype=tdt))
            if i < len(sizes) - 2:
                layers.append(torch.nn.Tanh())
        self.model = torch.nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=data.ETA)
        X, T = data.make_data(shape, dtype)
        self.X = torch.from_numpy(X)
        if loss == "cross_entropy":  # softmax + cross-entropy on the logits, summed over the sample
            self.T = torch.from_numpy(T.argmax(axis=1))
            self.loss = torch.nn.CrossEntropyLoss(reduction="sum")
        else:  # E_n = ½ ||y - t||²
            self.T = torch.from_numpy(T)
            self.loss = lambda y, t: 0.5 * ((y - t) ** 2).sum()
        self.order = torch.from_numpy(np.random.RandomState(0).permutation(X.shape[0]))
        self.epochs = 1
        self.run()

    @property
    def samples(self):
        return self.epochs * self.X.shape[0]

    def run(self):
        model, opt, loss, X, T = self.model, self.opt, self.loss, self.X, self.T
        t0 = time.perf_counter()
        for _ in range(self.epochs):
            for n in self.order.tolist():
                opt.zero_grad(set_to_none=True)
                loss(model(X[n : n + 1]), T[n : n + 1]).backward()
                opt.step()
        return time.perf_counter() - t0


def main(argv=None):
    global torch
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.2)
    parser.add_argument("--shapes", default=",".join(data.SHAPES))
    parser.add_argument("--dtypes", default="float32,float64")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tasks = [Task(s, d) for s in args.shapes.split(",") for d in args.dtypes.split(",")]
    for task in tasks:
        while task.run() < args.min_time:
            task.epochs *= 2
    rates = {task.name: [] for task in tasks}
    for _ in range(args.repeats):
        for task in tasks:
            rates[task.name].append(task.samples / task.run())
    print(json.dumps({name: statistics.median(r) for name, r in rates.items()}, indent=1))


if __name__ == "__main__":
    main()
