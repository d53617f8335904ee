"""Kernel backends of deltaprop, installed as ``deltaprop.kernels``.

Each subpackage implements the kernel contract (``deltaprop.contract``) under the same function
names: ``_numpy`` is the readable reference, ``_numba`` and ``_cython`` are compiled drop-ins.
"""
