"""The order of the example gallery: from the mathematics to deployment (sphinx-gallery sort key)."""

from __future__ import annotations

import os

ORDER = ("plot_xor.py", "plot_fig53.py", "plot_cross_entropy.py", "plot_sgd_vs_minibatch.py",
         "plot_jacobian_saliency.py", "plot_pipeline_gridsearch.py", "plot_n_jobs.py", "plot_dask.py",
         "plot_onnx.py", "plot_numpy_kernels.py")


class ExampleOrder:
    """Sort key for ``within_subsection_order``: the place in :data:`ORDER`, then the file name.

    Parameters
    ----------
    src_dir : str
        The gallery's source directory (sphinx-gallery passes it; unused).
    """

    def __init__(self, src_dir: str) -> None:
        self.src_dir = src_dir

    def __call__(self, filename: str) -> tuple[int, str]:
        name = os.path.basename(filename)
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)

    def __repr__(self) -> str:
        return "ExampleOrder()"
