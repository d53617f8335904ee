"""The backend registry: which kernel implementations exist and which can be imported now.

The kernels it hands out are the backends' own and check none of their arguments (the engine
checks them once, before its calls); ``deltaprop.lowlevel`` is the same functions with their
arguments checked, for a user's own NumPy loop.

A backend is a module that defines every function of the kernel contract
(``deltaprop.contract.FUNCTIONS``, with the parameter names of ``contract.SIGNATURES``) and
``codes()``, the code tables its kernels use (``tests/test_contract.py`` checks both). Backends
are imported lazily, on first use; one that fails to import (numba missing, Cython extension not
built) is simply unavailable, and ``import deltaprop`` still works.
"""

from __future__ import annotations

import importlib

from .contract import FUNCTIONS, Kernels

__all__ = ["register", "get_backend", "available_backends", "BACKENDS"]

#: name -> (module path, what to install when it is missing), in order of preference for "auto".
BACKENDS: dict[str, tuple[str, str]] = {}
_loaded: dict[str, Kernels] = {}
_errors: dict[str, str] = {}


def register(name: str, module: str, requires: str = "") -> None:
    """Register a backend, imported on first use.

    Parameters
    ----------
    name : str
        The backend's name (``backend=`` everywhere).
    module : str
        The module that defines the contract's functions and ``codes()``.
    requires : str
        What a user installs or builds when the import fails (quoted in the error).
    """
    BACKENDS[name] = (module, requires)
    _loaded.pop(name, None)
    _errors.pop(name, None)


register("cython", "deltaprop.kernels._cython",
         "the compiled Cython extension: reinstall deltaprop with a C compiler (pip install .)")
register("numba", "deltaprop.kernels._numba", "numba (pip install numba)")
register("numpy", "deltaprop.kernels._numpy", "numpy")


def _load(name: str) -> Kernels | None:
    if name in _loaded:
        return _loaded[name]
    if name in _errors:
        return None
    module_path, _ = BACKENDS[name]
    try:
        module = importlib.import_module(module_path)
        kernels = Kernels(name, *(getattr(module, f) for f in FUNCTIONS))
    except (ImportError, AttributeError, OSError, RuntimeError) as exc:
        _errors[name] = f"{type(exc).__name__}: {exc}"
        return None
    _loaded[name] = kernels
    return kernels


def available_backends() -> list[str]:
    """The backends that import on this machine.

    Returns
    -------
    list of str
        Their names, fastest first (the order ``"auto"`` tries them in).
    """
    return [name for name in BACKENDS if _load(name) is not None]


def get_backend(name: str = "auto") -> Kernels:
    """The raw kernels of a backend.

    The returned functions do NOT check their arguments: a wrong dtype, shape or memory order
    makes a compiled kernel read or write past the end of an array. From your own NumPy code,
    call ``deltaprop.lowlevel`` instead (the same functions, checked).

    Parameters
    ----------
    name : str
        A registered backend, or ``"auto"``: the first available of cython, numba, numpy.

    Returns
    -------
    Kernels
        The backend's functions (:class:`deltaprop.contract.Kernels`).

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If the backend is unknown or unavailable; the message names what it needs and the
        available backends.
    """
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string, got {type(name).__name__}")
    if name == "auto":
        for candidate in BACKENDS:
            kernels = _load(candidate)
            if kernels is not None:
                return kernels
        raise ValueError("no deltaprop backend could be imported")  # numpy is always there
    if name not in BACKENDS:
        raise ValueError(
            f"unknown backend {name!r}; known backends: {', '.join(['auto', *BACKENDS])}"
        )
    kernels = _load(name)
    if kernels is None:
        raise ValueError(
            f"backend {name!r} is not available ({_errors[name]}); it needs {BACKENDS[name][1]}. "
            f"Available backends: {', '.join(available_backends())}"
        )
    return kernels
