"""The benchmark dashboard in one command: publish, vendor, serve on 127.0.0.1.

    python tools/dashboard.py                # publish .asv/results, serve http://127.0.0.1:8765/
    python tools/dashboard.py --port 9000    # another port (0: any free one)
    python tools/dashboard.py --no-serve     # publish and vendor only: a static site in .asv/html

Three steps, each repeatable (running the script again gives the same site) and offline:

1. ``asv publish --no-pull`` with the project's ``asv.conf.json``, where ``project_url`` and
   ``show_commit_url`` are filled in for this clone: the web view of ``git remote get-url origin``
   (credentials stripped) when there is one, empty otherwise. asv.conf.json itself stays static.
2. The scripts and styles asv's pages load from CDNs are served from copies vendored in
   ``tools/vendor/`` (their licences are there): each CDN ``src``/``href`` in the published
   HTML is rewritten to ``vendor/<file>`` and its ``integrity``/``crossorigin`` attributes are
   dropped (the vendored flot is the unminified build of the same version). A CDN URL without a
   vendored copy is an error, never left behind. A small script, ``deltaprop_dashboard.js``, is
   added: throughput tracks (units ``.../s``) open on a log y axis, and commit links are plain
   text when the repository has no web view.
3. ``http.server`` serves ``.asv/html`` bound to 127.0.0.1 only (``asv preview`` listens on every
   interface). Ctrl-C stops it.

Not a benchmark module: asv imports it at discovery and finds nothing. Standard library only;
the publish step needs asv (``pip install -e '.[bench]'``).
"""

import argparse
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENDOR_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
DEFAULT_PORT = 8765

#: Every CDN URL asv's pages load (asv 0.6.4 to 0.6.6: the same list) -> its vendored copy.
ASSETS = {
    "https://code.jquery.com/jquery-3.3.1.min.js": "jquery-3.3.1.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": "jquery.flot-0.8.3.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": "jquery.flot.time-0.8.3.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js":
        "jquery.flot.selection-0.8.3.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js":
        "jquery.flot.categories-0.8.3.js",
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": "jquery.flot.orderBars-1.0.0.js",
    # stupidtable 1.0.1 is not on npm; 1.1.3 keeps its API
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js": "stupidtable-1.1.3.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": "md5-2.19.0.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": "bootstrap-3.1.1.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": "bootstrap-3.1.1.min.css",
}

#: The headline graph: per-sample SGD throughput of the 784-128-10 net, every backend and dtype,
#: on a log axis (asv's own URL parameters: p-<param name>=<repr of the value>, y-axis-scale).
HEADLINE = "bench_sgd.PerSampleSGD.track_samples_per_second"
HEADLINE_QUERY = "p-shape='784-128-10'&y-axis-scale=log"
#: Benchmarks whose unit matches open on a log y axis (samples/s, evaluations/s: rates that span
#: orders of magnitude across backends and shapes).
LOG_SCALE_UNIT = re.compile(r"/s$")

SCRIPT_NAME = "deltaprop_dashboard.js"
_TAG = re.compile(r"<(script|link)\b[^>]*>", re.IGNORECASE)
_REMOTE_ATTR = re.compile(r"""\b(src|href)\s*=\s*(["'])(https?://[^"']*)\2""", re.IGNORECASE)
_SRI = re.compile(r"""\s+(?:integrity|crossorigin)\s*=\s*(["'])[^"']*\1""", re.IGNORECASE)
_ASV_JS = re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']asv\.js["']""", re.IGNORECASE)


class DashboardError(Exception):
    """A step failed; the message says what to do."""


# --- where commit links point -------------------------------------------------------------------

def web_urls(remote):
    """``(project_url, show_commit_url)`` of a git remote's web view, or ``("", "")`` when it has
    none (a local path, ``file://``, anything not on an http(s) or ssh host).

    ``git@github.com:o/r.git``, ``ssh://git@host/o/r`` and ``https://user:token@host/o/r.git``
    all give ``https://host/o/r``; user names and tokens never reach the published site.
    """
    remote = (remote or "").strip()
    m = re.fullmatch(r"[\w.+-]+@([\w.-]+):(?!/)(.+)", remote)  # scp-like: git@host:owner/repo
    if m:
        scheme, host, path = "https", m.group(1), m.group(2)
    else:
        parts = urllib.parse.urlsplit(remote)
        if parts.scheme not in ("http", "https", "ssh", "git", "git+ssh", "ssh+git") or not parts.hostname:
            return "", ""
        scheme = parts.scheme if parts.scheme in ("http", "https") else "https"
        host = parts.hostname
        if parts.port and scheme == parts.scheme:  # an ssh port says nothing about the web server
            host = f"{host}:{parts.port}"
        path = parts.path
    path = re.sub(r"\.git$", "", path.strip("/")).strip("/")
    if not path:
        return "", ""
    project = f"{scheme}://{host}/{path}"
    if "gitlab" in host:
        commit = f"{project}/-/commit/"
    elif "bitbucket" in host:
        commit = f"{project}/commits/"
    else:  # GitHub, Gitea, Forgejo, cgit-style forges
        commit = f"{project}/commit/"
    return project, commit


def repository_urls(root=ROOT):
    """``web_urls`` of ``origin``; ``("", "")`` when the clone has no such remote (or no git)."""
    try:
        out = subprocess.run(["git", "-C", root, "remote", "get-url", "origin"],
                             capture_output=True, text=True, check=False)
    except OSError:
        return "", ""
    return web_urls(out.stdout) if out.returncode == 0 else ("", "")


# --- step 1: asv publish --------------------------------------------------------------------------

def load_config(root=ROOT):
    """asv.conf.json (JSON with comments: asv's own reader, json5)."""
    import json5  # an asv dependency

    with open(os.path.join(root, "asv.conf.json"), encoding="utf-8") as fh:
        return json5.load(fh)


def publish(root=ROOT, html_dir=None):
    """Run ``asv publish --no-pull`` in ``root`` with the commit URLs of this clone; returns the
    html directory."""
    try:
        import asv  # noqa: F401
    except ImportError:
        raise DashboardError("asv is not installed: pip install -e '.[bench]'") from None
    conf = load_config(root)
    results = os.path.join(root, conf.get("results_dir", "results"))
    if not os.path.isfile(os.path.join(results, "benchmarks.json")):
        raise DashboardError(f"no results in {results}: run 'asv machine --yes' and 'asv run' first (or the "
                             "quick run: asv run --python=same --quick --launch-method forkserver "
                             "-b \"$(python -m benchmarks.quick)\" --set-commit-hash $(git rev-parse HEAD))")
    conf["project_url"], conf["show_commit_url"] = repository_urls(root)
    html_dir = os.path.abspath(html_dir or os.path.join(root, conf.get("html_dir", "html")))
    for key in ("repo", "benchmark_dir", "env_dir", "results_dir", "html_dir"):
        # asv runs in the directory of the configuration file: the paths are made absolute here
        if key in conf and (key != "repo" or os.path.exists(os.path.join(root, conf[key]))):
            conf[key] = os.path.abspath(os.path.join(root, conf[key]))
    with tempfile.TemporaryDirectory(prefix="deltaprop-dashboard-") as tmp:
        config = os.path.join(tmp, "asv.conf.json")
        with open(config, "w", encoding="utf-8") as fh:
            json.dump(conf, fh, indent=1)
        cmd = [sys.executable, "-m", "asv", "publish", "--no-pull", "--config", config, "--html-dir", html_dir]
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not os.path.isfile(os.path.join(html_dir, "index.html")):
        raise DashboardError(f"asv publish failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return html_dir


# --- step 2: vendored assets, defaults ------------------------------------------------------------

def remote_references(text):
    """Every http(s) URL a ``<script src>`` or ``<link href>`` tag of ``text`` loads."""
    return [m.group(3) for tag in _TAG.finditer(text) for m in _REMOTE_ATTR.finditer(tag.group(0))]


def _localize_tag(match, missing):
    tag = match.group(0)
    remote = _REMOTE_ATTR.search(tag)
    if remote is None:
        return tag
    local = ASSETS.get(remote.group(3))
    if local is None:
        missing.append(remote.group(3))
        return tag
    tag = tag[:remote.start(3)] + "vendor/" + local + tag[remote.end(3):]
    return _SRI.sub("", tag)


def log_scale_benchmarks(html_dir):
    """Names of the published benchmarks whose unit is a rate (``LOG_SCALE_UNIT``)."""
    try:
        with open(os.path.join(html_dir, "index.json"), encoding="utf-8") as fh:
            benchmarks = json.load(fh).get("benchmarks", {})
    except (OSError, ValueError):
        return []
    return sorted(name for name, b in benchmarks.items() if LOG_SCALE_UNIT.search(b.get("unit") or ""))


def dashboard_script(log_scale, commit_links):
    """``deltaprop_dashboard.js``: loaded before asv's scripts, so its hashchange listener runs
    before asv's and its first call edits the address before asv reads it."""
    return f"""/* deltaprop's defaults for asv's dashboard, written by tools/dashboard.py at publish time.
 * 1. Rates (units .../s) open on a log y axis: a graph page reached without asv's y-axis-scale
 *    parameter gets y-axis-scale=log. asv's "log scale" button still turns it off on that page.
 * 2. Without a web view of the repository's history (no git remote), commit links are plain text:
 *    asv would link show_commit_url + hash, a page that does not exist here.
 */
(function () {{
  "use strict";
  var LOG_SCALE = {json.dumps(dict.fromkeys(log_scale, True), indent=None)};
  var COMMIT_LINKS = {json.dumps(bool(commit_links))};
  var shown = null;

  function logScaleByDefault() {{
    var hash = window.location.hash.replace(/^#\\/?/, "");
    var q = hash.indexOf("?");
    var name = decodeURIComponent(q < 0 ? hash : hash.slice(0, q));
    var query = q < 0 ? "" : hash.slice(q + 1);
    if (name !== shown && LOG_SCALE[name] && !/(^|&)y-axis-scale=/.test(query)) {{
      var target = "#" + (q < 0 ? hash : hash.slice(0, q)) + "?" + (query ? query + "&" : "") + "y-axis-scale=log";
      window.history.replaceState(window.history.state, "", target);
    }}
    shown = name;
  }}
  logScaleByDefault();
  window.addEventListener("hashchange", logScaleByDefault);

  if (!COMMIT_LINKS) {{
    var bare = /^(\\.\\.\\/compare\\/)?[0-9a-f]{{6,40}}(\\.\\.\\.[0-9a-f]{{6,40}})?$/;
    var unlink = function (a) {{
      var href = a.getAttribute("href");
      if (href !== null && (bare.test(href) || (a.id === "project-name" && href === ""))) {{
        a.removeAttribute("href");
        a.removeAttribute("target");
      }}
    }};
    new MutationObserver(function (records) {{
      records.forEach(function (r) {{
        if (r.type === "attributes" && r.target.tagName === "A") {{ unlink(r.target); }}
        (r.addedNodes || []).forEach(function (node) {{
          if (node.nodeType !== 1) {{ return; }}
          if (node.tagName === "A") {{ unlink(node); }}
          Array.prototype.forEach.call(node.querySelectorAll("a[href]"), unlink);
        }});
      }});
    }}).observe(document.documentElement, {{subtree: true, childList: true, attributes: true,
                                             attributeFilter: ["href"]}});
    var style = document.createElement("style");  /* and do not look like links */
    style.textContent = "#project-name:not([href]), .change-date a:not([href]), td > a:not([href]) " +
                        "{{ color: inherit; cursor: text; text-decoration: none; }}";
    document.head.appendChild(style);
    var open = window.open;
    window.open = function (url) {{  /* a click on a graph's point opens show_commit_url + hash */
      return bare.test(String(url)) ? null : open.apply(window, arguments);
    }};
  }}
}})();
"""


def vendor(html_dir, commit_links=None):
    """Copy the vendored assets into ``html_dir/vendor``, point every page at them and add
    ``deltaprop_dashboard.js``; returns the pages changed. Harmless to repeat.

    ``commit_links``: whether the published site's commit links lead somewhere (default: read
    ``show_commit_url`` from ``html_dir/index.json``).
    """
    if commit_links is None:
        try:
            with open(os.path.join(html_dir, "index.json"), encoding="utf-8") as fh:
                commit_links = json.load(fh).get("show_commit_url", "") not in ("", "#")
        except (OSError, ValueError):
            commit_links = False
    pages = sorted(p for p in os.listdir(html_dir) if p.endswith(".html"))
    if "index.html" not in pages:
        raise DashboardError(f"{html_dir}/index.html not found: not an asv site")
    new_text = {}
    for page in pages:
        with open(os.path.join(html_dir, page), encoding="utf-8") as fh:
            text = fh.read()
        missing = []
        new = _TAG.sub(lambda m, missing=missing: _localize_tag(m, missing), text)
        if missing:
            raise DashboardError(
                f"{page} loads {', '.join(missing)}, which tools/vendor/ has no copy of "
                "(a newer asv?): add the file there (with its licence) and to ASSETS in tools/dashboard.py")
        if page == "index.html" and SCRIPT_NAME not in new:
            tag = f'<script type="text/javascript" src="{SCRIPT_NAME}"></script>\n    '
            asv_js = _ASV_JS.search(new)
            at = asv_js.start() if asv_js else new.lower().index("</head>")
            new = new[:at] + tag + new[at:]
        left = remote_references(new)
        assert not left, left  # every remote script or stylesheet was rewritten above
        new_text[page] = (text, new)
    vendor_out = os.path.join(html_dir, "vendor")
    os.makedirs(vendor_out, exist_ok=True)
    for name in sorted(set(ASSETS.values())):
        shutil.copyfile(os.path.join(VENDOR_DIR, name), os.path.join(vendor_out, name))
    _write(os.path.join(html_dir, SCRIPT_NAME), dashboard_script(log_scale_benchmarks(html_dir), commit_links))
    changed = []
    for page, (text, new) in new_text.items():
        if new != text:
            _write(os.path.join(html_dir, page), new)
            changed.append(page)
    return changed


def _write(path, text):
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)


# --- step 3: serve ----------------------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Logs failed requests only, one line each (asv's grid asks for the summary of every
    benchmark, and those without results are 404s)."""

    def log_request(self, code="-", size="-"):
        if str(getattr(code, "value", code)).startswith(("4", "5")):
            super().log_request(code, size)

    def log_error(self, format, *args):  # noqa: A002 - the base class's name
        pass  # the request line above says it


def make_server(html_dir, port=DEFAULT_PORT):
    """An ``http.server`` for ``html_dir`` bound to 127.0.0.1 only (port 0: any free port)."""
    handler = functools.partial(_QuietHandler, directory=html_dir)
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def headline_url(port=DEFAULT_PORT):
    return f"http://127.0.0.1:{port}/#{HEADLINE}?{HEADLINE_QUERY}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")
    parser.add_argument("--no-serve", action="store_true", help="publish and vendor only")
    args = parser.parse_args(argv)
    try:
        html_dir = publish()
        changed = vendor(html_dir)
        server = None if args.no_serve else make_server(html_dir, args.port)
    except DashboardError as err:
        print(f"dashboard: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # the port is taken, say
        print(f"dashboard: cannot serve on 127.0.0.1:{args.port}: {err}", file=sys.stderr)
        return 1
    with open(os.path.join(html_dir, "index.json"), encoding="utf-8") as fh:
        project_url = json.load(fh)["project_url"]
    print(f"published {os.path.relpath(html_dir, ROOT)} (assets from tools/vendor; rewrote "
          f"{', '.join(changed) or 'nothing'}; commit links: {project_url or 'none, no git remote'})")
    if server is None:
        return 0
    port = server.server_address[1]
    print(f"serving on http://127.0.0.1:{port}/ (127.0.0.1 only; Ctrl-C stops)\n"
          f"headline, 784-128-10 on a log axis: {headline_url(port)}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
