"""The cython backend (not written yet: importing it fails, so the registry lists it as unavailable)."""

raise ImportError("the cython backend is not implemented yet")
