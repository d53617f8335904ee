"""The numba backend: every function of the kernel contract as ``@njit`` kernels.

Each module of ``_numpy`` has its namesake here (activations, forward, backprop, update,
epoch); the per-sample epochs are split by solver family into ``sgd_plain`` (sgd, α = 0),
``sgd_decay`` (sgd with L2) and ``sgd_general`` (momentum, Nesterov, Adam), with their shared
per-sample pieces in ``rows``, and ``sgd_windows`` (sgd on dense inputs, a window of samples at
a time); ``blas`` runs the batch products (``gemm`` with α and β, through
the library ``deltaprop.kernels.blas`` finds). ``_jit`` holds the numba options. Kernels compile lazily, once per
dtype, on first use, and are cached on disk (``cache=True``), so importing this package is quick.
"""

import glob as _glob
import hashlib as _hashlib
import os as _os


def _drop_stale_cache(here=None, extra=None):
    """Clear numba's in-tree cache when any source the kernels are built from has changed.

    numba keys a cached kernel on its own file only, so a change in a file it calls into
    (``rows.py``, ``update.py``, ``activations.py``) or takes codes from (``contract.py``) would
    leave it running the old machine code. A fingerprint of all of them is kept beside the
    cache (``__pycache__/deltaprop-sources.sha256``); when it differs, the cache is dropped.
    Only the in-tree cache is handled (``NUMBA_CACHE_DIR`` elsewhere is the user's to clear);
    an unwritable install is left alone, since its files cannot change. ``here`` (this package's
    folder) and ``extra`` (``[contract.__file__]``) are parameters for the tests.
    """
    if extra is None:
        from deltaprop import contract

        extra = [contract.__file__]
    here = here or _os.path.dirname(_os.path.abspath(__file__))
    digest = _hashlib.sha256()
    for path in sorted(_glob.glob(_os.path.join(here, "*.py"))) + list(extra):
        with open(path, "rb") as fh:
            digest.update(fh.read())
    cache = _os.path.join(here, "__pycache__")
    stamp = _os.path.join(cache, "deltaprop-sources.sha256")
    try:
        with open(stamp) as fh:
            if fh.read() == digest.hexdigest():
                return
    except OSError:
        pass
    try:
        for path in _glob.glob(_os.path.join(cache, "*.nb[ic]")):
            _os.remove(path)
        _os.makedirs(cache, exist_ok=True)
        with open(stamp, "w") as fh:
            fh.write(digest.hexdigest())
    except OSError:
        pass


_drop_stale_cache()

from . import activations, rows, update  # noqa: E402
from . import backprop as _backprop  # noqa: E402
from . import epoch as _epoch  # noqa: E402
from . import forward as _forward  # noqa: E402
from . import mixing as _mixing  # noqa: E402
from . import sgd_decay as _sgd_decay  # noqa: E402
from . import sgd_general as _sgd_general  # noqa: E402
from . import sgd_plain as _sgd_plain  # noqa: E402
from . import sgd_windows as _sgd_windows  # noqa: E402
from . import split as _split  # noqa: E402
from .backprop import backprop, gradient, loss_gradient, output_delta  # noqa: E402
from .epoch import batch_epoch, sgd_epoch  # noqa: E402
from .forward import forward  # noqa: E402
from .mixing import average_epochs  # noqa: E402
from .split import split_epochs  # noqa: E402

__all__ = ["forward", "output_delta", "backprop", "gradient", "loss_gradient", "sgd_epoch", "batch_epoch",
           "average_epochs", "split_epochs", "codes"]

#: every module whose functions read a code
MODULES = (activations, _forward, _backprop, update, rows, _sgd_plain, _sgd_decay, _sgd_general, _sgd_windows,
           _epoch, _mixing, _split)


def codes():
    """The code tables as the compiled kernels see them: each module's global of every contract
    constant, the value numba freezes into the machine code (see
    ``deltaprop.kernels.codes_read_by``)."""
    from deltaprop.kernels import codes_read_by

    return codes_read_by(*MODULES)
