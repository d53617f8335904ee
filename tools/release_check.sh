#!/usr/bin/env bash
# The release installs from its own artifacts: build the sdist, build the wheel from that sdist,
# install the wheel into a new virtual environment and smoke-check it there.
#
#   PYTHON=.venv/bin/python bash tools/release_check.sh     # from any directory
#
# PYTHON (default: python3) is an environment that already has deltaprop's dependencies and
# `build` (the test extra has it; `pip install -e '.[test]'`). The new virtual environment
# reuses them through a .pth file naming the directories PYTHON imports from, so nothing is
# resolved or downloaded again; the wheel goes in with --no-deps. A directory added by a .pth
# file has its own .pth files ignored, so an editable deltaprop there is invisible: `import
# deltaprop` finds the wheel's copy (checked). The checks run from an empty temporary directory
# without PYTHONPATH, so the source tree is never on sys.path.
#
# Fails when:
#   - a package of src/deltaprop or kernels/ is missing from pyproject.toml's `packages`
#     (setuptools would still ship its files as data, with a warning only), or does not import
#     from the installed wheel;
#   - the sdist lacks a file the build needs (the wheel is built from the sdist, not the tree),
#     or ships generated files (*.c, *.so, *.o, *.html, *.pyc, numba caches, build/);
#   - the installed distribution lacks py.typed or LICENSE, reports another version than
#     pyproject.toml's, misses a backend (cython, numba, numpy), a module of it does not import,
#     or `deltaprop --version` (when the command line has it) or a short `deltaprop train` fails.
set -euo pipefail

PYTHON=$(command -v "${PYTHON:-python3}")
case "$PYTHON" in /*) ;; *) PYTHON=$PWD/$PYTHON ;; esac  # a relative path: from the caller's directory
cd "$(dirname "$0")/.."
ROOT=$PWD
T=$(mktemp -d "${TMPDIR:-/tmp}/deltaprop-release.XXXXXX")
trap 'rm -rf "$T"' EXIT
start=$SECONDS
step() { printf '== %s (%ss)\n' "$*" "$((SECONDS - start))"; }

step "every package of the source tree is in pyproject.toml's packages"
# src/deltaprop/X/__init__.py -> deltaprop.X; kernels/X/__init__.py -> deltaprop.kernels.X
packages=$(find src/deltaprop kernels -name __init__.py \
  | sed -e 's#/__init__.py$##' -e 's#^src/##' -e 's#^kernels#deltaprop/kernels#' -e 's#/#.#g' | sort -u)
version=$(env -u PYTHONPATH DELTAPROP_PACKAGES="$packages" "$PYTHON" - <<'PY'
import os
import re
import sys

text = open("pyproject.toml", encoding="utf-8").read()
try:
    import tomllib

    config = tomllib.loads(text)
    version, listed = config["project"]["version"], config["tool"]["setuptools"]["packages"]
except ImportError:  # Python 3.10: the two keys, read as text
    version = re.search(r'(?m)^version\s*=\s*"([^"]+)"', text)[1]
    listed = re.findall(r'"([\w.]+)"', re.search(r"(?ms)^packages\s*=\s*\[(.*?)\]", text)[1])
missing = sorted(set(os.environ["DELTAPROP_PACKAGES"].split()) - set(listed))
if missing:
    sys.exit(f"pyproject.toml's [tool.setuptools] packages lacks {', '.join(missing)}")
print(version)
PY
)
echo "deltaprop $version: $(echo "$packages" | wc -l) packages listed"

step "python -m build: the sdist, then the wheel from the sdist"
"$PYTHON" -m build --outdir "$T/dist" "$ROOT" > "$T/build.log" 2>&1 || { tail -n 60 "$T/build.log"; exit 1; }
sdist=$(ls "$T"/dist/deltaprop-*.tar.gz)
wheel=$(ls "$T"/dist/deltaprop-*.whl)
echo "$(basename "$sdist") $(basename "$wheel")"

step "the sdist holds no generated files"
generated=$(tar -tzf "$sdist" | grep -E '\.(c|so|pyd|o|html|pyc|pyo|nbi|nbc)$|/build/|/__pycache__/' || true)
if [ -n "$generated" ]; then
  echo "the sdist ships generated files (MANIFEST.in must exclude them):" >&2
  echo "$generated" >&2
  exit 1
fi

step "a new virtual environment on the installed dependencies, the wheel with --no-deps"
"$PYTHON" -m venv --without-pip "$T/venv"
VPY=$T/venv/bin/python
vsite=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# every directory PYTHON imports from, less its standard library, the cwd and PYTHONPATH
(cd "$T" && env -u PYTHONPATH "$PYTHON" - > "$vsite/_release_check_deps.pth") <<'PY'
import os
import sys
import sysconfig

# the standard library of the base interpreter (a venv's platstdlib holds its site-packages)
base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix, "installed_base": sys.base_prefix}
std = [os.path.realpath(sysconfig.get_paths(vars=base)[k]) for k in ("stdlib", "platstdlib")]
for path in sys.path:
    real = os.path.realpath(path) if path else ""
    if os.path.isdir(real) and not any(real == s or real.startswith(s + os.sep) for s in std):
        print(real)
PY
# pip itself comes through the .pth; --ignore-installed: PYTHON's own deltaprop is never touched
(cd "$T" && env -u PYTHONPATH "$VPY" -m pip install -q --no-deps --ignore-installed \
   --disable-pip-version-check --no-warn-script-location "$wheel")

step "smoke check of the installed wheel, from an empty directory"
mkdir "$T/cwd"
(cd "$T/cwd" && env -u PYTHONPATH DELTAPROP_PACKAGES="$packages" DELTAPROP_VERSION="$version" "$VPY" - <<'PY'
import importlib
import importlib.metadata as md
import os
import pkgutil
import sys
import sysconfig

site = os.path.realpath(sysconfig.get_paths()["purelib"])


def installed(module):
    path = os.path.realpath(getattr(module, "__file__", None) or "")
    assert path.startswith(site + os.sep), f"{module.__name__} is imported from {path}, not the wheel in {site}"


import deltaprop  # noqa: E402

installed(deltaprop)
assert deltaprop.__version__ == os.environ["DELTAPROP_VERSION"], (deltaprop.__version__, os.environ["DELTAPROP_VERSION"])
for name in os.environ["DELTAPROP_PACKAGES"].split():  # every package of the source tree
    try:
        installed(importlib.import_module(name))
    except ModuleNotFoundError as exc:
        sys.exit(f"package {name} is not in the wheel: {exc}")
n = 0
for info in pkgutil.walk_packages(deltaprop.__path__, "deltaprop.", onerror=lambda name: None):
    if info.name.rpartition(".")[2] == "__main__":  # runs the command line when imported
        continue
    try:
        importlib.import_module(info.name)
        n += 1
    except ModuleNotFoundError as exc:  # another library's optional import is fine; our own file is not
        if exc.name is None or exc.name.split(".")[0] == "deltaprop":
            raise
backends = deltaprop.available_backends()
assert {"cython", "numba", "numpy"} <= set(backends), f"backends available: {backends}"
files = md.files("deltaprop")
assert "deltaprop/py.typed" in {str(f) for f in files}, "py.typed is not installed"
licence = [f for f in files if f.name == "LICENSE"]
assert licence and all(f.locate().is_file() for f in licence), "LICENSE is not in the dist-info"
print(f"deltaprop {deltaprop.__version__} from {os.path.dirname(deltaprop.__file__)}: {n} modules "
      f"import, backends {backends}, {len(files)} files, {licence[0]}")
PY
)
dp=$T/venv/bin/deltaprop
if (cd "$T/cwd" && env -u PYTHONPATH "$dp" --help | grep -c -- '--version' > /dev/null); then
  reported=$(cd "$T/cwd" && env -u PYTHONPATH "$dp" --version)
  echo "deltaprop --version: $reported"
  case "$reported" in *"$version"*) ;; *) echo "deltaprop --version does not report $version" >&2; exit 1 ;; esac
else
  echo "deltaprop --version: not in this command line; skipped"
fi
(cd "$T/cwd" && env -u PYTHONPATH "$dp" train --epochs 2 -q)

step "release check passed"
