"""The quick run's selection: a regular expression for ``asv run --bench`` naming each
benchmark's representative parameter combinations.

    asv run --python=same --quick --set-commit-hash $(git rev-parse HEAD) -b "$(python -m benchmarks.quick)"

A benchmark class may declare ``quick_params`` beside ``params``: one subset of each parameter's
values (same order, same strings). The expression selects the product of those subsets for each
of the class's benchmarks, and every combination of a class without ``quick_params``. asv still
discovers and records each benchmark with all of its ``params``: the combinations left out are
stored as not run (NaN), so a quick run's results sit in the same series as a full run's, and
``benchmarks.json`` (what ``asv publish`` and the dashboard read) keeps the full parameters.

Not a benchmark module: asv imports it at discovery and finds no benchmark in it (the classes
it inspects are only ever held in local variables).
"""

import importlib
import inspect
import os
import pkgutil
import re

#: Name prefixes asv treats as benchmarks.
PREFIXES = ("time_", "track_", "peakmem_", "mem_", "timeraw_")


def _as_lists(params):
    """A class's ``params`` as a list of value lists (asv accepts one bare list for one parameter)."""
    params = list(params or [])
    if params and not isinstance(params[0], (list, tuple)):
        params = [params]
    return [list(values) for values in params]


def quick_selection():
    """``{"module.Class": [values of each parameter] or None}`` for every benchmark class.

    ``None``: the class has no parameters. A class without ``quick_params`` selects all its values.

    Raises
    ------
    ValueError
        When ``quick_params`` does not match ``params`` in length, names a value that is not in
        ``params``, or leaves a parameter with no value.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    package = __package__ or "benchmarks"
    selection = {}
    for info in sorted(pkgutil.iter_modules([here]), key=lambda i: i.name):
        if not info.name.startswith("bench_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or name.startswith("_"):
                continue
            if not any(attr.startswith(PREFIXES) for attr in dir(cls)):
                continue
            params = _as_lists(getattr(cls, "params", None))
            quick = _as_lists(getattr(cls, "quick_params", None)) or params
            key = f"{info.name}.{name}"
            if len(quick) != len(params):
                raise ValueError(f"{key}: quick_params has {len(quick)} parameters, params {len(params)}")
            for values, subset in zip(params, quick, strict=True):
                if not subset or not set(subset) <= set(values):
                    raise ValueError(f"{key}: quick_params {subset} is not a non-empty subset of {values}")
            selection[key] = quick or None
    return selection


def quick_regex():
    """The ``asv run --bench`` expression of :func:`quick_selection`.

    asv matches a parametrised benchmark's combinations as ``module.Class.method('a', 'b')``
    (each value's ``repr``), and a benchmark without parameters by its name.
    """
    parts = []
    for key, quick in quick_selection().items():
        if quick is None:
            parts.append(rf"^{re.escape(key)}\.")
            continue
        values = ", ".join("(" + "|".join(re.escape(repr(v)) for v in subset) + ")" for subset in quick)
        parts.append(rf"^{re.escape(key)}\.\w+\({values}\)$")
    return "|".join(parts)


def main():
    """Print :func:`quick_regex`."""
    print(quick_regex())


if __name__ == "__main__":
    main()
