"""Only what pyproject.toml cannot say: the compiled Cython kernels of ``deltaprop.kernels._cython``.

Compiler directives are set here, once, for every module. Environment variables:

``DELTAPROP_MARCH_NATIVE=1``
    add ``-march=native`` (AVX2/AVX-512 on machines that have it). Off by default: a wheel built
    with it runs only on CPUs like the build machine. Use it when you build for your own machine.
``DELTAPROP_NO_SIMD_VARIANT=1``
    do not build ``epoch_avx2``, ``forward_avx2`` and ``backprop_avx2``, the copies of the
    kernels compiled with ``-mavx2 -mfma`` that ``deltaprop.kernels._cython`` picks at import
    time on CPUs that have AVX2 and FMA, nor ``epoch_avx512`` (``-mavx512f -mavx512vl
    -mavx512bw -mavx512dq`` as well), picked on CPUs that have those (x86-64 with gcc or clang
    only; the baseline modules are always built).
``DELTAPROP_DEBUG_CYTHON=1``
    compile with bounds checks on (slow; for debugging a kernel).
``DELTAPROP_ANNOTATE=1``
    write ``cython -a`` HTML annotations next to the sources.
"""

import glob
import os
import platform
import shutil
import sys

from setuptools import Extension, setup

MODULES = ("_codes", "forward", "backprop", "update", "epoch")
#: the modules compiled once more per SIMD variant (their loops are the kernels' vector loops)
SIMD_MODULES = ("forward", "backprop", "epoch")
#: ... and those of the AVX-512 variant: the mini-batch epochs' first-layer products
#: (``_indexed.h``) are the loops that gain from 512-bit registers
AVX512_MODULES = ("epoch",)
SRC = os.path.join("kernels", "_cython")
#: C headers the kernels include (``cdef extern from "_rows.h"``): found through include_dirs,
#: and a change to one rebuilds every module
HEADERS = sorted(glob.glob(os.path.join(SRC, "*.h")))


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
    for pxd in glob.glob(os.path.join(SRC, "*.pxd")):
        shutil.copy2(pxd, dest)
    return root


def simd_variants():
    """(module suffix, extra flags, module names) of the per-CPU copies of the kernels.

    A distributable build must run on every x86-64 CPU, so the baseline modules use no
    ``-march``; the per-sample loops are vector loops, which AVX2 + FMA run faster on the large
    shapes, and the batch kernels' activations (tanh, exp) are vector loops too. The same
    sources are compiled once more as ``epoch_avx2``, ``forward_avx2`` and ``backprop_avx2`` and
    chosen at import time by the CPU's features (runtime dispatch, as NumPy does). The epochs
    are compiled a third time with AVX-512 (``epoch_avx512``): its mini-batch products use
    512-bit register tiles; ``-mprefer-vector-width=256`` keeps the compiler's own vector loops
    (the per-sample kernels) at the AVX2 build's width.
    """
    if (os.environ.get("DELTAPROP_NO_SIMD_VARIANT") == "1" or sys.platform == "win32"
            or platform.machine().lower() not in ("x86_64", "amd64")):
        return []
    avx512 = ["-mavx2", "-mfma", "-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq",
              "-mprefer-vector-width=256"]
    return [("_avx2", ["-mavx2", "-mfma"], SIMD_MODULES), ("_avx512", avx512, AVX512_MODULES)]


def variant_source(name, suffix):
    """A copy of ``kernels/_cython/{name}.pyx`` named ``{name}{suffix}.pyx`` (Cython names the
    module after its file), in ``build/pyx``, with the ``.pxi`` files it includes beside it."""
    dest = os.path.join("build", "pyx")
    os.makedirs(dest, exist_ok=True)
    copies = [(os.path.join(SRC, f"{name}.pyx"), os.path.join(dest, f"{name}{suffix}.pyx"))]
    copies += [(pxi, os.path.join(dest, os.path.basename(pxi)))
               for pxi in glob.glob(os.path.join(SRC, "*.pxi"))]
    for src, out in copies:
        with open(src, encoding="utf-8") as fh:
            text = fh.read()
        if not os.path.exists(out) or open(out, encoding="utf-8").read() != text:
            with open(out, "w", encoding="utf-8") as fh:
                fh.write(text)
    return copies[0][1]


def extensions():
    from Cython.Build import cythonize

    debug = os.environ.get("DELTAPROP_DEBUG_CYTHON") == "1"
    # -g0: no debug info in release builds (Python's CFLAGS carry -g)
    # -fopenmp-simd: honour "omp simd" loop pragmas (vectorised dot products); no OpenMP runtime
    args = [] if sys.platform == "win32" else (["-O0", "-g"] if debug else ["-O3", "-g0"])
    # -fno-math-errno: sqrt becomes one instruction, so Adam's loops vectorise (errno is never read)
    if sys.platform != "win32":
        args += ["-fopenmp-simd", "-fno-math-errno"]
    if os.environ.get("DELTAPROP_MARCH_NATIVE") == "1":
        args.append("-march=native")
    exts = [
        Extension(f"deltaprop.kernels._cython.{name}", [os.path.join(SRC, f"{name}.pyx")],
                  include_dirs=[SRC], depends=HEADERS, extra_compile_args=args)
        for name in MODULES
    ]
    exts += [
        Extension(f"deltaprop.kernels._cython.{name}{suffix}", [variant_source(name, suffix)],
                  include_dirs=[SRC], depends=HEADERS, extra_compile_args=args + flags)
        for suffix, flags, names in simd_variants() for name in names
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


# the extension modules compile in parallel, one per CPU (``build_ext -j N`` overrides)
setup(ext_modules=extensions(), options={"build_ext": {"parallel": os.cpu_count() or 1}})
