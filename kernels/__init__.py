"""Kernel backends of deltaprop, installed as ``deltaprop.kernels``.

Each subpackage implements the kernel contract (``deltaprop.contract``) under the same function
names: ``_numpy`` is the readable reference, ``_numba`` and ``_cython`` are compiled drop-ins.
Each also has ``codes()``, the code tables and kernel constants as its kernels see them
(:func:`codes_read_by` for the Python backends), which ``tests/test_contract.py`` compares with
``deltaprop.contract.codes()``.

numba's on-disk cache: the ``_numba`` kernels are compiled with ``cache=True``. numba writes its
cache next to the sources (``_numba/__pycache__``) or else under ``~/.cache/numba``; when neither
is writable (a read-only install and a read-only home) and ``NUMBA_CACHE_DIR`` is unset, merely
defining a cached function raises ``RuntimeError: cannot cache function ...: no locator
available``, and the numba backend would be silently unavailable. :func:`_numba_cache_fallback`
then points numba at a per-user temporary directory. It only calls ``os.access``; numba is not
imported here.
"""

import os
import sys
import tempfile


def codes_read_by(*modules):
    """The code tables as the functions of ``modules`` read them, in the form of
    ``deltaprop.contract.codes()``.

    A kernel reads a code as a global of its own module (numba freezes that global into the
    compiled code), so each module's value of every contract constant (``TANH``, ``ADAM``,
    ``MU``, ``U_OFF``, ...) is collected; the modules must agree, or ValueError names the two
    values. A constant no module has is missing from the result.
    """
    from deltaprop.contract import CONSTANTS

    seen = {}
    for module in modules:
        for constant in {c for table in CONSTANTS.values() for c in table.values()}:
            if constant in vars(module):
                value = vars(module)[constant]
                where = seen.setdefault(constant, (value, module.__name__))
                if where[0] != value:
                    raise ValueError(f"{constant} is {where[0]!r} in {where[1]} but {value!r} in "
                                     f"{module.__name__}")
    value = {c: v for c, (v, _) in seen.items()}
    tables = {table: {name: value[c] for name, c in names.items() if c in value}
              for table, names in CONSTANTS.items()}
    for table in ("hyper", "layout"):  # names in slot order
        tables[table] = tuple(sorted(tables[table], key=tables[table].get))
    return tables


def _writable(path):
    """True if ``path`` is a writable directory, or could be created as one."""
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.access(path, os.W_OK | os.X_OK)


def _numba_cache_fallback():
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_numba")
    user_cache = os.path.join(os.path.expanduser("~"), ".cache", "numba")
    if _writable(os.path.join(here, "__pycache__")) or _writable(user_cache):
        return
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    fallback = os.path.join(tempfile.gettempdir(), f"deltaprop-numba-cache-{uid}")
    os.environ["NUMBA_CACHE_DIR"] = fallback
    config = sys.modules.get("numba.core.config")
    if config is not None:  # numba already imported: it read the environment at import time
        config.CACHE_DIR = fallback


_numba_cache_fallback()
