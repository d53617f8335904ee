"""Figures: learning curves, benchmark bars and Fig. 5.3 of Bishop's Pattern Recognition and Machine Learning.

matplotlib is optional (``pip install 'deltaprop[plot]'``): without it every function here
raises ImportError with that hint. Figures are written atomically (a temporary file, renamed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from .engine.npzfile import atomic_write

__all__ = ["PLOT_HINT", "pyplot", "check_path", "learning_curve", "bench_bars", "fig53_figure", "fig53"]

PLOT_HINT = "matplotlib is needed for plots; install it with: pip install 'deltaprop[plot]'"


def pyplot() -> ModuleType:
    """matplotlib.pyplot with a file-only backend (Agg).

    Returns
    -------
    module
        ``matplotlib.pyplot``.

    Raises
    ------
    ImportError
        Without matplotlib, saying how to install it.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(PLOT_HINT) from None
    return plt


def check_path(path: str | os.PathLike | None) -> None:
    """Fail before the work, not after, when a figure cannot be written to ``path``.

    Parameters
    ----------
    path : str, path-like or None
        Where a figure will go; None: no figure, nothing is checked.

    Raises
    ------
    ImportError
        Without matplotlib.
    ValueError
        If the directory does not exist.
    """
    if path is not None:
        pyplot()
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise ValueError(f"{path}: directory does not exist")


def _save(fig: Any, path: str) -> None:
    ext = os.path.splitext(path)[1].lower().lstrip(".") or "png"
    plt = pyplot()
    try:
        if ext not in fig.canvas.get_supported_filetypes():
            raise ValueError(f"{path}: unsupported image type '.{ext}' (use .png, .pdf or .svg)")
        with atomic_write(path) as fh:
            fig.savefig(fh, format=ext, dpi=120)
    finally:
        plt.close(fig)


def learning_curve(path: str, train: Sequence[float], validation: Sequence[float], ylabel: str, title: str) -> None:
    """Training (and validation) loss per epoch; a log scale when every value is > 0.

    Parameters
    ----------
    path : str
        The image file (.png, .pdf or .svg).
    train : sequence of float
        The training loss of each epoch.
    validation : sequence of float
        The validation loss of each epoch (empty: none drawn).
    ylabel, title : str
        The axis label and the title.
    """
    fig, ax = pyplot().subplots(figsize=(6, 4))
    epochs = np.arange(1, len(train) + 1)
    ax.plot(epochs, train, label="training")
    if validation:
        ax.plot(epochs, validation, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if min(list(train) + list(validation)) > 0:
        ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    _save(fig, path)


def bench_bars(rows: Sequence[dict[str, Any]], shapes: Sequence[str], dtypes: Sequence[str], path: str) -> None:
    """Samples/s of each backend and peer (rows of :func:`deltaprop.bench.run`), one panel per dtype.

    Parameters
    ----------
    rows : sequence of dict
        :func:`deltaprop.bench.run`'s rows.
    shapes, dtypes : sequence of str
        The bars of each panel, and the panels.
    path : str
        The image file.
    """
    names = list(dict.fromkeys(r["backend"] for r in rows))
    fig, axes = pyplot().subplots(1, len(dtypes), figsize=(5 + 2 * len(shapes), 4.5), squeeze=False)
    width = 0.8 / len(names)
    for ax, dtype in zip(axes[0], dtypes, strict=True):
        for i, name in enumerate(names):
            values = [next((r["samples_per_second"] for r in rows if r["backend"] == name
                            and r["shape"] == s and r["dtype"] == dtype), 0.0) for s in shapes]
            ax.bar(np.arange(len(shapes)) + (i - (len(names) - 1) / 2) * width, values, width, label=name)
        ax.set_xticks(np.arange(len(shapes)), shapes, rotation=15)
        ax.set_yscale("log")
        ax.set_ylabel("samples/s (per-sample SGD)")
        ax.set_title(dtype)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("deltaprop bench: per-sample SGD throughput, one thread")
    fig.tight_layout()
    _save(fig, path)


def fig53_figure(results: Sequence[dict[str, Any]]) -> Any:
    r"""Fig. 5.3 as a matplotlib Figure: data, network function and the hidden units' outputs (dashed).

    The hidden units are :math:`z_j = \tanh(a_j)` of the fitted first layer on a grid over
    (-1, 1), unit :math:`j` drawn in the same colour in every panel, with its own legend entry.

    Parameters
    ----------
    results : sequence of dict
        :func:`deltaprop.demo.fit_fig53`'s.

    Returns
    -------
    matplotlib.figure.Figure
        The four panels.
    """
    fig, axes = pyplot().subplots(2, 2, figsize=(8, 6.5))
    grid = np.linspace(-1, 1, 201)
    colours = ["tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]
    for ax, res in zip(axes.ravel(), results, strict=False):
        est = res["est"]
        hidden = np.tanh(grid[:, None] @ est.coefs_[0] + est.intercepts_[0])
        ax.plot(res["x"], res["t"], "o", color="tab:blue", ms=4, label="data")
        for j in range(hidden.shape[1]):
            ax.plot(grid, hidden[:, j], "--", lw=1, color=colours[j % len(colours)], label=f"hidden unit {j + 1}")
        ax.plot(grid, est.predict(grid[:, None]), "-", color="tab:red", lw=2, label="network")
        ax.set_title(f"{res['label']}   (RMS error {res['rms']:.3g})", fontsize=10)
        ax.set_xlim(-1, 1)
        ax.set_ylim(-1.1, 1.6)
    axes[0, 0].legend(fontsize=8, loc="upper center", ncol=2)
    fig.suptitle(f"Fig. 5.3: 1-3-1 network, tanh hidden units, linear output, N = {len(results[0]['x'])}")
    fig.tight_layout()
    return fig


def fig53(results: Sequence[dict[str, Any]], path: str) -> None:
    """Draw :func:`fig53_figure` to ``path`` (atomically).

    Parameters
    ----------
    results : sequence of dict
        :func:`deltaprop.demo.fit_fig53`'s.
    path : str
        The image file.
    """
    _save(fig53_figure(results), path)
