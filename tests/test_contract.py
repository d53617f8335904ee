"""Each backend provides the whole contract; the layout table is what the contract says."""

import os

import numpy as np
import pytest

import deltaprop
from deltaprop.backends import get_backend
from deltaprop.contract import FUNCTIONS, make_layout, n_params, n_units


def test_every_backend_provides_every_contract_function(backend):
    kernels = get_backend(backend)
    for name in FUNCTIONS:
        assert callable(getattr(kernels, name)), name
    assert kernels.name == backend


def test_numpy_backend_is_always_available():
    assert "numpy" in deltaprop.available_backends()


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
