"""The API reference lists every public name: each name in the ``__all__`` of ``deltaprop`` and
of every public module or package directly under it appears in ``docs/api.rst`` (under its own
module, or under another module that exports the same object)."""

import importlib
import pathlib
import pkgutil
import re

import deltaprop

API = pathlib.Path(__file__).resolve().parent.parent / "docs" / "api.rst"


def listed():
    """{module: [names]} as docs/api.rst lists them under each ``.. currentmodule::``."""
    entries, module = {}, None
    for line in API.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\.\. currentmodule:: (\S+)", line)
        if m:
            module = m.group(1)
            entries.setdefault(module, [])
        elif module and re.match(r"   [A-Za-z_][A-Za-z0-9_]*$", line):
            entries[module].append(line.strip())
    return entries


def public_modules():
    names = ["deltaprop"]
    for info in pkgutil.iter_modules(deltaprop.__path__):
        if not info.name.startswith("_") and info.name != "kernels":
            names.append(f"deltaprop.{info.name}")
    return names


def test_every_public_name_has_an_api_entry():
    entries = listed()
    documented = {id(getattr(importlib.import_module(mod), name)) for mod, names in entries.items() for name in names}
    missing = []
    for mod in public_modules():
        module = importlib.import_module(mod)
        for name in getattr(module, "__all__", []):
            if name == "__version__":
                continue
            if name not in entries.get(mod, []) and id(getattr(module, name)) not in documented:
                missing.append(f"{mod}.{name}")
    assert not missing, f"docs/api.rst lacks {missing}"


def test_every_public_module_is_in_the_api_reference():
    assert set(public_modules()) <= set(listed())
