"""Make the published asv dashboard work offline: serve its scripts and styles locally.

asv's pages load jQuery, Bootstrap, flot, md5 and stupidtable from CDNs; without internet access
the page only says "Can not determine continental origin of swallow". Run this after
``asv publish``:

    python benchmarks/vendor_assets.py            # .asv/html, packages from npm into .asv/vendor

It installs the same versions from the npm registry (``npm install --prefix .asv/vendor``, once;
needs node/npm), copies them into ``.asv/html/vendor/`` (Bootstrap's fonts into
``.asv/html/fonts/``), rewrites every CDN ``src``/``href`` in ``.asv/html/*.html`` to the local
copy and strips the ``integrity``/``crossorigin`` attributes (the local files are not
byte-identical to the CDN's minified builds, so the subresource-integrity check would fail).
Running it twice is harmless. Not a benchmark module: asv imports it and finds nothing.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

NPM_PACKAGES = ["jquery@3.3.1", "bootstrap@3.1.1", "flot@0.8.3", "flot-orderbars@1.0.0",
                "blueimp-md5@2.19.0", "stupid-table-plugin@1.1.3"]
#: basename of the CDN URL -> file in node_modules (npm's flot has no minified builds;
#: stupidtable 1.0.1 is not on npm, 1.1.3 keeps its API)
ASSETS = {
    "jquery-3.3.1.min.js": "jquery/dist/jquery.min.js",
    "bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    "jquery.flot.min.js": "flot/jquery.flot.js",
    "jquery.flot.time.min.js": "flot/jquery.flot.time.js",
    "jquery.flot.selection.min.js": "flot/jquery.flot.selection.js",
    "jquery.flot.categories.min.js": "flot/jquery.flot.categories.js",
    "jquery.flot.orderBars.js": "flot-orderbars/js/jquery.flot.orderBars.js",
    "md5.min.js": "blueimp-md5/js/md5.min.js",
    "stupidtable.min.js": "stupid-table-plugin/stupidtable.min.js",
}
FONTS = "bootstrap/dist/fonts"
_URL = re.compile(r'(\b(?:src|href))="(https?://[^"]+?/([^/"]+\.(?:js|css)))"')
_SRI = re.compile(r'\s+(?:integrity|crossorigin)="[^"]*"')


def ensure_packages(prefix):
    modules = os.path.join(prefix, "node_modules")
    if all(os.path.exists(os.path.join(modules, path)) for path in ASSETS.values()):
        return modules
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("vendor_assets: npm is needed once to fetch the dashboard's scripts "
                 f"({', '.join(NPM_PACKAGES)}); install node/npm")
    os.makedirs(prefix, exist_ok=True)
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", prefix, *NPM_PACKAGES], check=True)
    return modules


def vendor(html_dir, modules):
    """Copy the assets into ``html_dir`` and rewrite the pages; returns the pages changed."""
    vendor_dir = os.path.join(html_dir, "vendor")
    os.makedirs(vendor_dir, exist_ok=True)
    for name, path in ASSETS.items():
        shutil.copyfile(os.path.join(modules, path), os.path.join(vendor_dir, name))
    shutil.copytree(os.path.join(modules, FONTS), os.path.join(html_dir, "fonts"), dirs_exist_ok=True)
    changed = []
    for page in sorted(os.listdir(html_dir)):
        if not page.endswith(".html"):
            continue
        path = os.path.join(html_dir, page)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        unknown = [m.group(2) for m in _URL.finditer(text) if m.group(3) not in ASSETS]
        if unknown:
            sys.exit(f"vendor_assets: {page} loads assets this script does not know: {', '.join(unknown)}")
        new = _URL.sub(lambda m: f'{m.group(1)}="vendor/{m.group(3)}"', text)
        new = _SRI.sub("", new)
        if new != text:
            with open(path + ".tmp", "w", encoding="utf-8") as fh:
                fh.write(new)
            os.replace(path + ".tmp", path)
            changed.append(page)
    return changed


def main(argv=None):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", default=os.path.join(root, ".asv", "html"), help="asv's html_dir")
    parser.add_argument("--prefix", default=os.path.join(root, ".asv", "vendor"), help="where npm installs")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.html, "index.html")):
        sys.exit(f"vendor_assets: {args.html}/index.html not found; run 'asv publish' first")
    changed = vendor(args.html, ensure_packages(args.prefix))
    print(f"vendored {len(ASSETS)} assets into {args.html}/vendor; rewrote {', '.join(changed) or 'nothing (already done)'}")


if __name__ == "__main__":
    main()
