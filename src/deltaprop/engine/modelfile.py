r"""The MLP model file: its members and their checks, and :class:`~deltaprop.engine.MLP`'s save and load.

A model file is an ``.npz`` archive (never a pickle: loading runs no code) of the members
:data:`MODEL_MEMBERS` names, read by the safe reader :func:`deltaprop.engine.npzfile.read_npz`:
every member's header and size is checked against the format (the stored ``layer_sizes``) and
the file's own size before its data is read. A file may hold more members beside the network's
(the command line's preprocessing), which the caller names (:func:`read_model`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt
from sklearn.utils import check_random_state

from ..validation import check_config
from .npzfile import Member, atomic_write, read_npz

if TYPE_CHECKING:
    from .mlp import MLP

__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_LAYERS", "MAX_PARAMS", "MODEL_MEMBERS", "read_model", "as_text",
           "ModelFileMixin"]

FORMAT = "deltaprop.MLP"
FORMAT_VERSION = 1
#: Sanity limits of a model file, checked in Python ints before anything is allocated (a file is
#: also bounded by its own size: its weight vector cannot be larger than the bytes holding it).
MAX_LAYERS = 1024
MAX_PARAMS = 2**28


def as_text(value: npt.ArrayLike) -> str:
    """The string a scalar member holds.

    Parameters
    ----------
    value : str, numpy string scalar or 0-d array
        A member as :func:`read_npz` reads it or :meth:`ModelFileMixin.to_fields` writes it.

    Returns
    -------
    str
    """
    return str(np.asarray(value)[()])


def _stored_sizes(fields: Mapping[str, npt.ArrayLike]) -> list[int]:
    return [int(s) for s in np.asarray(fields["layer_sizes"]).tolist()]


def _param_count(sizes: Sequence[int]) -> int:
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False))


def _check_format(value: np.ndarray, fields: Mapping[str, np.ndarray]) -> None:
    if as_text(value) != FORMAT:
        raise ValueError(f"not a deltaprop model file (format marker {as_text(value)!r}, expected {FORMAT!r})")


def _check_version(value: np.ndarray, fields: Mapping[str, np.ndarray]) -> None:
    if int(value[()]) != FORMAT_VERSION:
        raise ValueError(f"model file version {int(value[()])} is not supported "
                         f"(this deltaprop reads version {FORMAT_VERSION})")


def _check_layer_sizes(value: np.ndarray, fields: Mapping[str, np.ndarray]) -> None:
    sizes = [int(s) for s in value.tolist()]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"layer_sizes must be at least 2 positive integers; got {sizes}")
    if _param_count(sizes) > MAX_PARAMS:
        raise ValueError(f"layer_sizes {sizes} describe {_param_count(sizes)} parameters; "
                         f"at most {MAX_PARAMS} are loaded")


def _check_stored_config(value: np.ndarray, fields: Mapping[str, np.ndarray]) -> None:
    """On ``dtype``, the last member before ``w``: the whole configuration, before ``w`` is read."""
    check_config(_stored_sizes(fields), as_text(fields["hidden"]), as_text(fields["output"]),
                 as_text(fields["loss"]), as_text(value))


def _check_weights(value: np.ndarray, fields: Mapping[str, np.ndarray]) -> None:
    expected = np.dtype(as_text(fields["dtype"]))
    if value.dtype.itemsize != expected.itemsize:
        raise ValueError(f"member 'w' has dtype {value.dtype}, but the file's dtype is {expected}")
    if not np.isfinite(value).all():
        raise ValueError("member 'w' (the weights) contains NaN or infinity")


#: The members of an MLP model file, in the order they are read and checked.
MODEL_MEMBERS = {
    "format": Member("U", 0, max_chars=64, check=_check_format),
    "version": Member("iu", 0, check=_check_version),
    "layer_sizes": Member("iu", 1, max_size=MAX_LAYERS, check=_check_layer_sizes),
    "hidden": Member("U", 0, max_chars=64),
    "output": Member("U", 0, max_chars=64),
    "loss": Member("U", 0, max_chars=64),
    "dtype": Member("U", 0, max_chars=64, check=_check_stored_config),
    "w": Member("f", 1, shape=lambda fields: (_param_count(_stored_sizes(fields)),), check=_check_weights),
}


def read_model(path: str | os.PathLike, extra: Mapping[str, Member] | None = None) -> dict[str, np.ndarray]:
    """Read an MLP model file's members (:data:`MODEL_MEMBERS`), and the further ones ``extra`` names.

    Parameters
    ----------
    path : str or path-like
        The model file (untrusted).
    extra : mapping of str to Member, optional
        Further members, read after the network's own (their shapes may depend on them).

    Returns
    -------
    dict of str to ndarray
        Every member read; :meth:`ModelFileMixin.from_fields` builds the network from them.

    Raises
    ------
    ValueError
        For a malformed file, naming the path and the problem.
    FileNotFoundError
        If ``path`` does not exist.
    """
    return read_npz(path, {**MODEL_MEMBERS, **(extra or {})})


class ModelFileMixin:
    """The model-file methods of :class:`~deltaprop.engine.MLP`, which inherits them."""

    # what the network that inherits these methods provides
    layer_sizes: tuple[int, ...]
    hidden: str
    output: str
    loss_function: str
    dtype: np.dtype
    w: np.ndarray

    def to_fields(self) -> dict[str, np.ndarray]:
        """The members of the model file, as :meth:`save` writes them.

        Returns
        -------
        dict of str to ndarray
            ``format``, ``version``, ``layer_sizes``, ``hidden``, ``output``, ``loss``, ``dtype``
            and ``w`` (``w`` itself, not a copy); :meth:`from_fields` reads them back.
        """
        return dict(format=np.str_(FORMAT), version=np.int64(FORMAT_VERSION),
                    layer_sizes=np.asarray(self.layer_sizes, dtype=np.int64),
                    hidden=np.str_(self.hidden), output=np.str_(self.output),
                    loss=np.str_(self.loss_function), dtype=np.str_(self.dtype.name), w=self.w)

    @classmethod
    def from_fields(cls, fields: Mapping[str, npt.ArrayLike], backend: str = "auto") -> MLP:
        """A network from the members of a model file (:meth:`to_fields`,
        :func:`deltaprop.engine.modelfile.read_model`).

        Only ``layer_sizes``, ``hidden``, ``output``, ``loss``, ``dtype`` and ``w`` are read. The
        network's ``random_state`` is None, so later fits shuffle as those of ``MLP(...)`` do;
        building it draws nothing from NumPy's global random state.

        Parameters
        ----------
        fields : mapping of str to array-like
            The members.
        backend : str
            As for :class:`MLP`.

        Returns
        -------
        MLP

        Raises
        ------
        ValueError
            For a bad configuration, or a ``w`` of the wrong size or with NaN or infinity.
        KeyError
            If a member is missing.
        """
        # random_state=0: the initial draw is overwritten; never consume the global RNG's draws
        make = cast("type[MLP]", cls)  # the class this mixin is part of
        net = make(_stored_sizes(fields), hidden=as_text(fields["hidden"]), output=as_text(fields["output"]),
                   loss=as_text(fields["loss"]), backend=backend, dtype=as_text(fields["dtype"]), random_state=0)
        net.random_state, net._rng = None, check_random_state(None)  # later fits: as MLP(...)
        w = np.asarray(fields["w"])
        if w.shape != net.w.shape or w.dtype.kind not in "biuf" or not np.isfinite(w).all():
            raise ValueError(f"w must be {net.w.shape[0]} finite numbers for layer_sizes {list(net.layer_sizes)}; "
                             f"got an array of shape {w.shape} and dtype {w.dtype}")
        net.w[...] = w
        return net

    def save(self, path: str | os.PathLike) -> None:
        """Write weights and configuration to a ``.npz`` file, atomically (temporary file, rename).

        Parameters
        ----------
        path : str or path-like
            The file; an interrupted save leaves it as it was.

        Raises
        ------
        FileNotFoundError
            If the directory does not exist.
        """
        with atomic_write(path) as fh:
            np.savez(fh, allow_pickle=False, **self.to_fields())  # never a pickle (nor can the members be)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str = "auto") -> MLP:
        """Read a model written by :meth:`save` (never unpickles: loading runs no code).

        The file is untrusted input: only its members are read, each checked (dtype, shape,
        sizes against ``layer_sizes`` and the file's size) before its data is read
        (:func:`deltaprop.engine.modelfile.read_model`).

        Parameters
        ----------
        path : str or path-like
            The model file.
        backend : str
            As for :class:`MLP`.

        Returns
        -------
        MLP

        Raises
        ------
        ValueError
            For a malformed file, naming the path and the problem.
        FileNotFoundError
            If there is no such file.
        """
        return cls.from_fields(read_model(path), backend=backend)
