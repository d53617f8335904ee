"""Only what pyproject.toml cannot say: the compiled Cython kernels of ``deltaprop.kernels._cython``.

Compiler directives are set here, once, for every module. Environment variables:

``DELTAPROP_MARCH_NATIVE=1``
    add ``-march=native`` (AVX2/AVX-512 on machines that have it). Off by default: a wheel built
    with it runs only on CPUs like the build machine. Use it when you build for your own machine.
``DELTAPROP_DEBUG_CYTHON=1``
    compile with bounds checks on (slow; for debugging a kernel).
``DELTAPROP_ANNOTATE=1``
    write ``cython -a`` HTML annotations next to the sources.
"""

import glob
import os
import shutil
import sys

from setuptools import Extension, setup

MODULES = ("forward", "backprop", "update", "epoch")


def pxd_tree():
    """A copy of the .pxd files under their package path, ``build/pxd/deltaprop/kernels/_cython``.

    The sources live in ``kernels/_cython`` but compile as ``deltaprop.kernels._cython.*``;
    Cython resolves the relative cimports (``from .forward cimport ...``) by that package path.
    """
    root = os.path.join("build", "pxd")
    dest = os.path.join(root, "deltaprop", "kernels", "_cython")
    os.makedirs(dest, exist_ok=True)
    for pkg in (os.path.join(root, "deltaprop"), os.path.join(root, "deltaprop", "kernels"), dest):
        open(os.path.join(pkg, "__init__.pxd"), "a").close()
    for pxd in glob.glob(os.path.join("kernels", "_cython", "*.pxd")):
        shutil.copy2(pxd, dest)
    return root


def extensions():
    from Cython.Build import cythonize

    debug = os.environ.get("DELTAPROP_DEBUG_CYTHON") == "1"
    args = [] if sys.platform == "win32" else ["-O0" if debug else "-O3"]
    if os.environ.get("DELTAPROP_MARCH_NATIVE") == "1":
        args.append("-march=native")
    exts = [
        Extension(f"deltaprop.kernels._cython.{name}", [f"kernels/_cython/{name}.pyx"],
                  extra_compile_args=args)
        for name in MODULES
    ]
    return cythonize(
        exts,
        include_path=[pxd_tree()],
        annotate=os.environ.get("DELTAPROP_ANNOTATE") == "1",
        compiler_directives={
            "language_level": 3,
            "boundscheck": debug,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": debug,
            "embedsignature": True,
        },
    )


setup(ext_modules=extensions())
