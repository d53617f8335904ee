"""Each backend provides the whole contract under the same parameter names and uses the
contract's codes; the contract's own tables, constants and docstring agree; the layout table is
what the contract says."""

import ast
import importlib
import inspect
import os
import pathlib
import re

import numpy as np
import pytest

import deltaprop
from deltaprop import contract
from deltaprop.backends import BACKENDS, get_backend
from deltaprop.contract import FUNCTIONS, SIGNATURES
from deltaprop.layout import make_layout, n_params, n_units

KERNELS_DIR = pathlib.Path(deltaprop.kernels.__file__).parent


def parameter_names(func):
    """Parameter names of a kernel: a Python function, a numba dispatcher (its ``py_func``) or a
    Cython ``def`` function (``inspect.signature`` with ``binding=True``, else its text signature
    or code object)."""
    func = getattr(func, "py_func", func)
    try:
        return tuple(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        pass
    text = getattr(func, "__text_signature__", None)
    if text:
        return tuple(re.sub(r"[:=].*", "", p).strip(" */") for p in text.strip("()").split(",")
                     if p.strip() not in ("$self", "$module", "/", "*"))
    code = func.__code__
    return tuple(code.co_varnames[: code.co_argcount])


def test_every_backend_function_has_the_contract_signature(backend):
    kernels = get_backend(backend)
    assert kernels.name == backend
    for name in FUNCTIONS:
        assert parameter_names(getattr(kernels, name)) == SIGNATURES[name], name


#: the kernel constants each backend's kernels use (the contract's table says which and why)
USES = {"numpy": {"LINE"}, "numba": {"LINE", "SPINS"}, "cython": {"LINE", "SPINS", "BLAS_MIN_FLOPS"}}


def test_every_backend_uses_the_contract_codes(backend):
    """Each backend's ``codes()`` (the constants its kernels read; Cython's enums) equals the
    contract's tables, and the kernel constants it uses have the contract's values."""
    module = importlib.import_module(BACKENDS[backend][0])
    assert hasattr(module, "codes"), f"backend {backend!r} has no codes()"
    got, want = module.codes(), contract.codes()
    for table in want:
        if table != "kernel":
            assert got[table] == want[table], table
    assert got.keys() == want.keys()
    assert got["kernel"] == {name: want["kernel"][name] for name in USES[backend]}


def test_kernel_constants_see_a_value_a_module_changes(monkeypatch):
    """The kernel-constant check can fail: the Python backends' ``codes()`` read the value each
    module holds, not the contract's."""
    from deltaprop.kernels import _numpy

    monkeypatch.setattr(importlib.import_module("deltaprop.kernels._numpy.split"), "LINE", 8)
    assert _numpy.codes()["kernel"]["LINE"] == 8


def test_codes_see_a_constant_a_numba_module_changes(monkeypatch):
    """The code-table test can fail: ``codes()`` reads the constants from the modules the
    kernels run in, not the contract."""
    numba_backend = pytest.importorskip("deltaprop.kernels._numba")
    monkeypatch.setattr(numba_backend.activations, "GUDERMANNIAN", 9)  # the one module that reads it
    assert numba_backend.codes()["activations"]["gudermannian"] == 9
    monkeypatch.setattr(numba_backend.update, "MU", 3)  # backprop and sgd_general read MU too
    with pytest.raises(ValueError, match=r"MU is 2 in deltaprop\.kernels\._numba\.backprop but 3 in "
                                         r"deltaprop\.kernels\._numba\.update"):
        numba_backend.codes()


@pytest.mark.parametrize("package", ["_numpy", "_numba"])
def test_no_python_backend_defines_its_own_codes(package):
    """The Python backends import every code from the contract: no module assigns a name of a
    contract constant (``IDENTITY, ... = range(7)``)."""
    constants = {c for table in contract.CONSTANTS.values() for c in table.values()}
    for path in sorted((KERNELS_DIR / package).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
                assert not names & constants, f"{path.name}:{node.lineno} assigns {names & constants}"


def test_contract_constants_match_its_tables():
    tables = contract.codes()
    for table, names in contract.CONSTANTS.items():
        for name, constant in names.items():
            code = tables[table][name] if isinstance(tables[table], dict) else tables[table].index(name)
            assert getattr(contract, constant) == code, constant
    assert contract.OUTPUT_ACTIVATIONS == tuple(contract.OUTPUT_LOSS)
    assert set(contract.HIDDEN_ACTIVATIONS) | set(contract.OUTPUT_ACTIVATIONS) == set(contract.ACTIVATIONS)
    assert contract.CANONICAL_PAIRS == contract.PAIRS[: len(contract.OUTPUT_LOSS)]


def test_contract_docstring_lists_the_signatures():
    lines = re.findall(r"^``(\w+)\(([^)]*)\)(?: -> \w+)?``$", contract.__doc__, flags=re.M)
    listed = {name: tuple(p.strip() for p in params.split(",")) for name, params in lines}
    assert listed == SIGNATURES
    assert set(SIGNATURES) == set(FUNCTIONS)


def test_auto_falls_back_to_numpy_when_no_compiled_backend_imports(monkeypatch):
    """The reference needs nothing but NumPy: with both compiled backends unimportable, ``auto``
    is numpy and ``import deltaprop`` still works."""
    from deltaprop import backends

    monkeypatch.setattr(backends, "BACKENDS", dict(backends.BACKENDS))
    monkeypatch.setattr(backends, "_loaded", {})
    monkeypatch.setattr(backends, "_errors", {})
    for name in ("cython", "numba"):
        backends.register(name, f"deltaprop.kernels._{name}_is_not_installed", f"{name} (missing here)")
    assert deltaprop.available_backends() == ["numpy"]
    assert get_backend("auto").name == "numpy"
    assert get_backend("auto").forward is importlib.import_module("deltaprop.kernels._numpy").forward


def test_auto_picks_the_first_available_backend():
    assert get_backend("auto").name == deltaprop.available_backends()[0]


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backend 'cuda'.*numpy"):
        get_backend("cuda")


def test_layout_places_weights_then_biases_layer_by_layer():
    layout = make_layout([3, 4, 2])
    # layer 0: W (3, 4) at 0..11, b (4,) at 12..15; layer 1: W (4, 2) at 16..23, b at 24..25
    np.testing.assert_array_equal(layout, [[3, 4, 0, 12, 0], [4, 2, 16, 24, 4]])
    assert layout.dtype == np.intp
    assert n_params(layout) == 26
    assert n_units(layout) == 6


def test_unavailable_backend_names_what_is_missing():
    from deltaprop import backends

    backends.register("broken", "deltaprop.kernels._does_not_exist", "a package that is not installed")
    try:
        assert "broken" not in deltaprop.available_backends()
        with pytest.raises(ValueError, match="'broken' is not available.*a package that is not installed"):
            get_backend("broken")
    finally:
        del backends.BACKENDS["broken"]
        backends._errors.pop("broken", None)


@pytest.mark.skipif(os.environ.get("DELTAPROP_REQUIRE_COMPILED") != "1",
                    reason="set DELTAPROP_REQUIRE_COMPILED=1 (CI does) to require both compiled backends")
def test_compiled_backends_are_built_and_importable():
    """In CI a missing build step must fail here, not hide behind the NumPy fallback."""
    from deltaprop import backends

    available = deltaprop.available_backends()
    for name in ("numba", "cython"):
        assert name in available, f"backend {name!r} is unavailable: {backends._errors.get(name)}"
