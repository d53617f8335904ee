"""tools/dashboard.py: the published asv site loads no script or stylesheet from the
network, opens rates on a log axis, links commits only to a real web view, and is served on
127.0.0.1 only.

The vendoring step is tested on a hand-made site (CI installs the test extra, without asv); the
whole publish-and-vendor step runs on a tiny results directory when asv is installed."""

import importlib.util
import json
import os
import re
import subprocess
import threading
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("dashboard", os.path.join(ROOT, "tools", "dashboard.py"))
dashboard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dashboard)

# Any tag that makes the browser fetch a script or a stylesheet from the network (independent
# of the module's own regular expressions).
REMOTE = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def remote_loads(html_dir):
    found = {}
    for page in os.listdir(html_dir):
        if page.endswith(".html"):
            with open(os.path.join(html_dir, page), encoding="utf-8") as fh:
                hits = REMOTE.findall(fh.read())
            if hits:
                found[page] = hits
    return found


def hand_made_site(path, extra=""):
    """What ``asv publish`` writes, reduced to the parts the vendoring step reads: asv's CDN tags
    (with their subresource-integrity attributes), its own scripts, a credit link."""
    tags = []
    for url in dashboard.ASSETS:
        if url.endswith(".css"):
            tags.append(f'<link rel="stylesheet" href="{url}" integrity="sha256-x" crossorigin="anonymous">')
        else:
            tags.append(f'<script src="{url}" integrity="sha512-y" crossorigin="anonymous" '
                        'referrerpolicy="no-referrer" onerror="js_load_failure()"></script>')
    index = ("<!doctype html>\n<html>\n  <head>\n    " + "\n    ".join(tags) + extra + "\n"
             '    <script language="javascript" type="text/javascript"\n            src="asv.js">\n    </script>\n'
             '    <link href="asv.css" rel="stylesheet" type="text/css"/>\n  </head>\n  <body>\n'
             '    <a href="https://github.com/airspeed-velocity/asv/" class="navbar-link">airspeed velocity</a>\n'
             "  </body>\n</html>\n")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "index.html"), "w", encoding="utf-8") as fh:
        fh.write(index)
    with open(os.path.join(path, "error.html"), "w", encoding="utf-8") as fh:
        fh.write("<html><body>Can not determine continental origin of swallow.</body></html>\n")
    with open(os.path.join(path, "index.json"), "w", encoding="utf-8") as fh:
        json.dump({"project_url": "", "show_commit_url": "", "benchmarks": {
            "bench_sgd.PerSampleSGD.track_samples_per_second": {"unit": "samples/s"},
            "bench_sgd.PerSampleSGD.time_sgd_epoch": {"unit": "seconds"},
            "bench_compile.NumbaCompile.track_compile_seconds": {"unit": "seconds"}}}, fh)
    return path


def test_vendoring_leaves_no_remote_script_or_stylesheet(tmp_path):
    html = hand_made_site(str(tmp_path / "html"))
    assert len(REMOTE.findall(open(os.path.join(html, "index.html")).read())) == len(dashboard.ASSETS)

    assert dashboard.vendor(html) == ["index.html"]

    assert remote_loads(html) == {}
    with open(os.path.join(html, "index.html"), encoding="utf-8") as fh:
        index = fh.read()
    assert "integrity=" not in index and "crossorigin=" not in index
    assert "https://github.com/airspeed-velocity/asv/" in index  # a link, not a load: kept
    for name in dashboard.ASSETS.values():
        assert f'"vendor/{name}"' in index
        assert os.path.getsize(os.path.join(html, "vendor", name)) > 1000
    # deltaprop's defaults load before asv's own scripts
    assert index.index(dashboard.SCRIPT_NAME) < index.index('src="asv.js"')


def test_vendoring_twice_changes_nothing(tmp_path):
    html = hand_made_site(str(tmp_path / "html"))
    dashboard.vendor(html)
    before = {p: open(os.path.join(html, p), encoding="utf-8").read() for p in ("index.html", dashboard.SCRIPT_NAME)}
    assert dashboard.vendor(html) == []
    after = {p: open(os.path.join(html, p), encoding="utf-8").read() for p in before}
    assert after == before
    assert after["index.html"].count(dashboard.SCRIPT_NAME) == 1


def test_an_unvendored_cdn_asset_is_an_error_not_left_behind(tmp_path):
    url = "https://cdn.example.org/npm/newlib@9.9.9/newlib.min.js"
    html = hand_made_site(str(tmp_path / "html"), extra=f'\n    <script src="{url}"></script>')
    with pytest.raises(dashboard.DashboardError, match=re.escape(url)):
        dashboard.vendor(html)


def test_rates_open_on_a_log_axis_and_commit_links_follow_the_remote(tmp_path):
    html = hand_made_site(str(tmp_path / "html"))
    assert dashboard.log_scale_benchmarks(html) == ["bench_sgd.PerSampleSGD.track_samples_per_second"]
    dashboard.vendor(html)
    script = open(os.path.join(html, dashboard.SCRIPT_NAME), encoding="utf-8").read()
    assert 'var LOG_SCALE = {"bench_sgd.PerSampleSGD.track_samples_per_second": true};' in script
    assert "var COMMIT_LINKS = false;" in script  # index.json: no show_commit_url
    dashboard.vendor(html, commit_links=True)
    assert "var COMMIT_LINKS = true;" in open(os.path.join(html, dashboard.SCRIPT_NAME)).read()
    assert dashboard.headline_url(9000) == (
        "http://127.0.0.1:9000/#bench_sgd.PerSampleSGD.track_samples_per_second?"
        "p-shape='784-128-10'&y-axis-scale=log")


def test_vendored_files_carry_their_licences():
    vendor_dir = os.path.join(ROOT, "tools", "vendor")
    assert os.path.isfile(os.path.join(vendor_dir, "README.md"))
    licences = open(os.path.join(vendor_dir, "LICENSES.txt"), encoding="utf-8").read()
    assert licences.count("Permission is hereby granted, free of charge") >= 5
    for name in set(dashboard.ASSETS.values()):
        with open(os.path.join(vendor_dir, name), encoding="utf-8") as fh:
            head = fh.read(400)
        assert head.startswith("/*") and ("MIT" in head or "jquery.org/license" in head), name
        assert "sourceMappingURL" not in open(os.path.join(vendor_dir, name), encoding="utf-8").read()


@pytest.mark.parametrize("remote, expected", [
    ("git@github.com:deltaprop/deltaprop.git", ("https://github.com/deltaprop/deltaprop",
                                                 "https://github.com/deltaprop/deltaprop/commit/")),
    ("https://github.com/deltaprop/deltaprop", ("https://github.com/deltaprop/deltaprop",
                                                "https://github.com/deltaprop/deltaprop/commit/")),
    ("https://user:s3cret@github.com/deltaprop/deltaprop.git\n", ("https://github.com/deltaprop/deltaprop",
                                                                    "https://github.com/deltaprop/deltaprop/commit/")),
    ("ssh://git@gitlab.example.org:2222/ml/deltaprop.git", ("https://gitlab.example.org/ml/deltaprop",
                                                             "https://gitlab.example.org/ml/deltaprop/-/commit/")),
    ("http://forge.local:3000/ml/deltaprop.git", ("http://forge.local:3000/ml/deltaprop",
                                                   "http://forge.local:3000/ml/deltaprop/commit/")),
    ("/srv/git/deltaprop.git", ("", "")),
    ("file:///srv/git/deltaprop.git", ("", "")),
    ("../deltaprop", ("", "")),
    ("", ("", "")),
])
def test_commit_links_point_at_the_remote_web_view_or_nowhere(remote, expected):
    assert dashboard.web_urls(remote) == expected


def test_server_listens_on_loopback_only(tmp_path):
    html = hand_made_site(str(tmp_path / "html"))
    dashboard.vendor(html)
    server = dashboard.make_server(html, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert b"vendor/jquery-3.3.1.min.js" in response.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/vendor/jquery-3.3.1.min.js", timeout=10) as response:
            assert response.read().startswith(b"/*! jQuery v3.3.1")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# --- the whole publish-and-vendor step, with asv ---------------------------------------------

CONF = """{
    // a tiny asv project: comments as in the real asv.conf.json
    "version": 1, "project": "tiny", "repo": ".", "branches": ["main"], "dvcs": "git",
    "environment_type": "virtualenv", "benchmark_dir": "benchmarks",
    "env_dir": ".asv/env", "results_dir": ".asv/results", "html_dir": ".asv/html"
}
"""
BENCHMARKS = {
    "bench_sgd.PerSampleSGD.track_samples_per_second": {"unit": "samples/s", "type": "track"},
    "bench_sgd.PerSampleSGD.time_sgd_epoch": {"unit": "seconds", "type": "time"},
}
MACHINE = {"arch": "x86_64", "cpu": "cpu", "machine": "tiny", "num_cpu": "2", "os": "Linux", "ram": "1"}


def _git(root, *args):
    return subprocess.run(["git", "-C", root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def tiny_results(root):
    """A git repository of two commits and asv results for both: one rate, one time, each over
    two shapes."""
    os.makedirs(os.path.join(root, "benchmarks"))
    with open(os.path.join(root, "asv.conf.json"), "w") as fh:
        fh.write(CONF)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "asv.conf.json")
    _git(root, "commit", "-q", "-m", "one")
    _git(root, "commit", "-q", "--allow-empty", "-m", "two")
    commits = _git(root, "rev-list", "--reverse", "HEAD").split()
    results = os.path.join(root, ".asv", "results")
    os.makedirs(os.path.join(results, "tiny"))
    params = [["'64-32-10'", "'784-128-10'"]]
    suite = {"version": 2}
    for name, info in BENCHMARKS.items():
        suite[name] = dict(info, name=name, code="", params=params, param_names=["shape"], version="1", timeout=60)
    with open(os.path.join(results, "benchmarks.json"), "w") as fh:
        json.dump(suite, fh)
    with open(os.path.join(results, "tiny", "machine.json"), "w") as fh:
        json.dump(dict(MACHINE, version=1), fh)
    for i, commit in enumerate(commits):
        values = {"bench_sgd.PerSampleSGD.track_samples_per_second": [2.0e6 + i, 1.0e5 + i],
                  "bench_sgd.PerSampleSGD.time_sgd_epoch": [1e-3, 5e-3]}
        with open(os.path.join(results, "tiny", f"{commit[:8]}-existing.json"), "w") as fh:
            json.dump({"commit_hash": commit, "env_name": "existing", "date": 1_700_000_000_000 + i * 60_000,
                       "params": dict(MACHINE, python="3.11"), "python": "3.11", "requirements": {},
                       "env_vars": {}, "result_columns": ["result", "params", "version", "started_at", "duration"],
                       "results": {name: [v, params, "1", 1_700_000_000_000, 1.0] for name, v in values.items()},
                       "durations": {}, "version": 2}, fh)
    return commits


def test_publish_and_vendor_on_a_tiny_results_directory(tmp_path):
    pytest.importorskip("asv")
    root = str(tmp_path / "tiny")
    os.makedirs(root)
    tiny_results(root)

    html = dashboard.publish(root)
    dashboard.vendor(html)

    assert html == os.path.join(root, ".asv", "html")
    assert remote_loads(html) == {}
    index = json.load(open(os.path.join(html, "index.json"), encoding="utf-8"))
    assert set(index["benchmarks"]) == set(BENCHMARKS)
    assert (index["project_url"], index["show_commit_url"]) == ("", "")  # no remote: nothing to link
    script = open(os.path.join(html, dashboard.SCRIPT_NAME), encoding="utf-8").read()
    assert 'var LOG_SCALE = {"bench_sgd.PerSampleSGD.track_samples_per_second": true};' in script
    assert "var COMMIT_LINKS = false;" in script
    assert not os.path.exists(os.path.join(root, "asv.conf.json.tmp"))
    assert _git(root, "status", "--porcelain", "--untracked-files=no") == ""  # asv.conf.json untouched

    _git(root, "remote", "add", "origin", "https://someone:token@github.com/example/tiny.git")
    html = dashboard.publish(root)  # again, over the published site
    dashboard.vendor(html)
    assert remote_loads(html) == {}
    index = json.load(open(os.path.join(html, "index.json"), encoding="utf-8"))
    assert index["project_url"] == "https://github.com/example/tiny"
    assert index["show_commit_url"] == "https://github.com/example/tiny/commit/"
    assert "var COMMIT_LINKS = true;" in open(os.path.join(html, dashboard.SCRIPT_NAME)).read()
    for page in os.listdir(html):
        if page.endswith((".html", ".json", ".xml")):
            assert "token" not in open(os.path.join(html, page), encoding="utf-8").read()


def test_publish_without_results_says_what_to_run(tmp_path):
    pytest.importorskip("asv")
    root = str(tmp_path / "empty")
    os.makedirs(root)
    with open(os.path.join(root, "asv.conf.json"), "w") as fh:
        fh.write(CONF)
    with pytest.raises(dashboard.DashboardError, match="asv run"):
        dashboard.publish(root)
