"""PyTorch CPU per-sample SGD throughput on deltaprop's standard shapes (a peer, not a dependency).

Standalone: never imports deltaprop; run it in its own environment::

    python3 -m venv /work/peers && /work/peers/bin/pip install torch==2.13.0 numpy scikit-learn
    /work/peers/bin/python benchmarks/peer_torch.py [--repeats 5] [--min-time 0.2]

The data generators copy ``deltaprop.bench.make_data`` (same seeds, same arrays). The loop is
the idiomatic one: for each sample, ``model(x)``, the loss, ``backward()``, ``optimizer.step()``
(plain SGD, lr 0.01) and ``zero_grad``; one thread. Prints JSON: samples/s (median of
interleaved repeats) per ``"<shape> <dtype> torch"``.
"""

import argparse
import json
import os
import statistics
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

torch = None  # imported by main(): asv imports every module of benchmarks/, torch or not

SHAPES = {
    "1-3-1": ([1, 3, 1], "tanh", "identity", "squared_error"),
    "64-32-10": ([64, 32, 10], "tanh", "softmax", "cross_entropy"),
    "784-128-10": ([784, 128, 10], "tanh", "softmax", "cross_entropy"),
    "784-128-10-sparse": ([784, 128, 10], "tanh", "softmax", "cross_entropy"),
    "784-256-128-10": ([784, 256, 128, 10], "tanh", "softmax", "cross_entropy"),
}
N_RANDOM = 2000
LR = 0.01


def make_data(shape, dtype="float32", seed=0):
    """A copy of ``deltaprop.bench.make_data``."""
    rng = np.random.RandomState(seed)
    if shape == "1-3-1":
        X = rng.uniform(-1, 1, (50, 1))
        T = X**2
    elif shape == "64-32-10":
        from sklearn.datasets import load_digits

        digits = load_digits()
        X = digits.data / 16.0
        T = np.eye(10)[digits.target]
    else:
        X = rng.uniform(0, 1, (N_RANDOM, 784))
        if shape.endswith("-sparse"):
            X[rng.uniform(0, 1, X.shape) < 0.8] = 0.0
        T = np.eye(10)[rng.randint(0, 10, N_RANDOM)]
    return np.ascontiguousarray(X, dtype=dtype), np.ascontiguousarray(T, dtype=dtype)


class Task:
    def __init__(self, shape, dtype):
        sizes, hidden, output, loss = SHAPES[shape]
        self.name = f"{shape} {dtype} torch"
        torch.manual_seed(0)
        tdt = getattr(torch, dtype)
        layers = []
        for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(n_in, n_out, dtype=tdt))
            if l < len(sizes) - 2:
                layers.append(torch.nn.Tanh())
        self.model = torch.nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        X, T = make_data(shape, dtype)
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


def main():
    global torch
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.2)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--dtypes", default="float32,float64")
    args = parser.parse_args()
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
