"""Only what pyproject.toml cannot say: the compiled Cython extensions (none yet)."""

from setuptools import setup

setup(ext_modules=[])
