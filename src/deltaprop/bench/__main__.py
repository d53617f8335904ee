"""``python -m deltaprop.bench [backend ...]``: samples/s of every standard shape, and its roofline probes, as JSON.

Per-sample ``MLP.fit`` on every shape and dtype for each backend (default numpy and numba), the
two :class:`~deltaprop.bench.timing.StreamProbe` bounds beside each, and ``MLP.batch_epoch`` at
batch 32 on 784-128-10.
"""

import json
import sys

from .data import SHAPES
from .pinning import pin_threads
from .timing import StreamProbe, Task, Timed, compare


def main(argv: list[str]) -> int:
    """Time the tasks named above for ``argv``'s backends and print the JSON table.

    Parameters
    ----------
    argv : list of str
        Backend names; empty: numpy and numba.

    Returns
    -------
    int
        The exit status, 0.
    """
    pin_threads(1)
    backends = argv or ["numpy", "numba"]
    tasks: list[Timed] = []
    for shape in SHAPES:
        for dtype in ("float32", "float64"):
            tasks += [Task(b, dtype, shape) for b in backends]
            tasks += [StreamProbe(shape, dtype, kind) for kind in ("read", "rmw")]
    tasks += [Task(b, d, "784-128-10", "epoch", 32) for b in backends for d in ("float32", "float64")]
    print(json.dumps(compare(tasks), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
