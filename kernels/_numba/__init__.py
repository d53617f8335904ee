"""The numba backend (not written yet: importing it fails, so the registry lists it as unavailable)."""

raise ImportError("the numba backend is not implemented yet")
