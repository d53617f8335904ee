"""``deltaprop export``: a model file, its preprocessing included, as an ONNX graph."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from ..engine.npzfile import atomic_write
from . import pipeline
from .options import check_out

if TYPE_CHECKING:
    from onnx import ModelProto

__all__ = ["run", "export_model_file"]


def run(args: argparse.Namespace) -> int:
    """Run ``deltaprop export`` with its parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        The options of :func:`deltaprop.cli.build_parser`'s ``export``.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    ValueError
        A bad model file, a model or an opset that cannot be exported.
    ImportError
        Without the onnx package.
    """
    check_out(args.out)
    _require_onnx()
    from ..onnx_export import resolve_opset

    proto = export_model_file(args.model, args.out, target_opset=resolve_opset(args.opset, name="--opset"))
    names = ", ".join(o.name for o in proto.graph.output)
    print(f"{args.out}: ONNX opset {proto.opset_import[0].version}, input X, outputs {names}",
          file=sys.stderr)
    return 0


def export_model_file(path_in: str | os.PathLike, path_out: str | os.PathLike,
                      target_opset: int | None = None) -> ModelProto:
    """Export a model file (``deltaprop train --out``, or a plain ``MLP.save`` file) to ONNX.

    The file is read by :func:`deltaprop.cli.pipeline.load` (untrusted input: every member is
    checked). A classifier's graph is ``(X - x_mean) / x_scale`` -> network -> ``label``,
    ``probabilities``; a regressor's ends in ``variable`` = ``y * y_scale + y_mean`` (N, 1)
    (:func:`deltaprop.onnx_export.to_onnx_standardised`); a plain network file gives ``y`` as
    :func:`deltaprop.to_onnx` does.

    Parameters
    ----------
    path_in : str or path-like
        The model file.
    path_out : str or path-like
        The ``.onnx`` file, written atomically.
    target_opset : int, optional
        The ONNX opset (:func:`deltaprop.onnx_export.resolve_opset`).

    Returns
    -------
    onnx.ModelProto
        The graph written to ``path_out``.

    Raises
    ------
    ValueError
        A bad model file (naming it), a model or an opset that cannot be exported.
    ImportError
        Without the onnx package.
    """
    _require_onnx()
    from ..onnx_export import resolve_opset, to_onnx, to_onnx_standardised

    opset = resolve_opset(target_opset)
    saved = pipeline.load(path_in)
    if saved.task == "outputs":
        proto = to_onnx(saved.model, target_opset=opset)
    else:
        scaler, final = saved.model.named_steps["scale"], saved.model.named_steps["mlp"]
        regression = saved.task == "regression"
        y_mean = y_scale = None
        if regression:
            y_mean, y_scale = final.transformer_.mean_, final.transformer_.scale_
        proto = to_onnx_standardised(final.regressor_ if regression else final, scaler.mean_, scaler.scale_,
                                     y_mean, y_scale, target_opset=opset,
                                     source=f"{os.path.basename(path_in)}: {saved.task}")
    with atomic_write(path_out) as fh:
        fh.write(proto.SerializeToString())
    return proto


def _require_onnx() -> None:
    """ImportError saying how to install onnx, unless it is installed."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError("exporting to ONNX needs the onnx package: pip install 'deltaprop[onnx]'") from None
