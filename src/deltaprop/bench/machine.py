"""Where a benchmark table came from: the machine, its thread pools, and the pinning, in words.

:func:`machine_info` is the dict the command line adds to its JSON (with ``pinned_cpu``);
:func:`machine_line` and :func:`pinning_words` are the lines the text tables print from it.
"""

from __future__ import annotations

import contextlib
import os
import platform
from typing import Any

import numpy as np

__all__ = ["machine_info", "blas_info", "machine_line", "pinning_words"]


def blas_info() -> list[dict[str, Any]]:
    """threadpoolctl's view of the BLAS and OpenMP libraries loaded now.

    The batch kernels' matrix products run on SciPy's BLAS with as many threads as it has, except
    inside ``n_jobs`` > 1; this says how many that is.

    Returns
    -------
    list of dict
        ``{"library", "api", "version", "threads"}`` per loaded library, with its current
        thread count.
    """
    from threadpoolctl import threadpool_info  # a dependency of scikit-learn

    return [{"library": os.path.basename(d.get("filepath", "")), "api": d.get("internal_api"),
             "version": d.get("version"), "threads": d.get("num_threads")}
            for d in threadpool_info()]


def machine_info() -> dict[str, Any]:
    """CPU, cores, system, Python, NumPy and deltaprop versions, and the loaded thread pools.

    Returns
    -------
    dict
        Keys ``cpu``, ``cores``, ``system``, ``python``, ``numpy``, ``deltaprop`` and ``blas``
        (:func:`blas_info`).
    """
    from deltaprop import __version__

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    return {"cpu": cpu, "cores": os.cpu_count(), "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "numpy": np.__version__, "deltaprop": __version__,
            "blas": blas_info()}


def machine_line(info: dict[str, Any]) -> str:
    """The machine and its thread pools, as the tables print them.

    Parameters
    ----------
    info : dict
        :func:`machine_info`'s.

    Returns
    -------
    str
        One line, and a second with the thread pools when ``info["blas"]`` has any.
    """
    line = (f"machine: {info['cpu']}, {info['cores']} cores, {info['system']}, Python {info['python']}, "
            f"NumPy {info['numpy']}, deltaprop {info['deltaprop']}")
    if info.get("blas"):
        line += "\nthread pools: " + ", ".join(
            " ".join(filter(None, (b["api"], b["version"])))
            + f" ({b['threads']} thread{'s' if b['threads'] != 1 else ''})" for b in info["blas"])
    return line


def pinning_words(info: dict[str, Any]) -> str:
    """``info["pinned_cpu"]`` (set by ``deltaprop bench``) in words.

    Parameters
    ----------
    info : dict
        :func:`machine_info`'s with ``pinned_cpu`` added (None or absent: not pinned).

    Returns
    -------
    str
        ``"pinned to CPU K"`` or ``"not pinned to a CPU"``.
    """
    cpu = info.get("pinned_cpu")
    return "not pinned to a CPU" if cpu is None else f"pinned to CPU {cpu}"
