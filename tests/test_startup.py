"""Start-up cost of the command line: ``--help`` imports no heavy library.

``python -m diagnosis --help`` (and each command's ``--help``) only builds the argparse
parser: the analysis libraries (numpy, pandas, geopandas, scipy…), the road-network,
plotting, PDF, distributed and app libraries are imported by the commands that use them.
The assertion is on the set of imported modules, not on a time (no timed assertion).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = {"numpy", "pandas", "geopandas", "scipy", "shapely", "pyproj", "pyogrio", "osmnx",
         "networkx", "matplotlib", "weasyprint", "dask", "distributed", "streamlit",
         "folium", "branca", "requests", "requests_cache", "highspy", "rich", "sklearn",
         "data_sources"}

# (the modules are listed by an exit handler: a printing command's process ends right
# after the exit handlers, see diagnosis.__main__.run)
_PROBE = """
import atexit, json, runpy, sys
atexit.register(lambda: print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})),
                              file=sys.stderr, flush=True))
sys.argv = ["diagnosis", *json.loads(sys.argv[1])]
try:
    runpy.run_module("diagnosis", run_name="__main__")
except SystemExit:
    pass
"""


@pytest.mark.parametrize("argv", [["--help"], ["summary", "--help"], ["site", "--help"],
                                  ["compare", "--help"], []])
def test_help_imports_no_heavy_library(argv):
    out = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argv)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    modules = set(json.loads(out.stderr.strip().splitlines()[-1]))
    assert "diagnosis" in modules
    assert not HEAVY & modules, sorted(HEAVY & modules)


#: What ``summary`` on the embedded demo territory needs no part of: the network layer, the
#: model fitting, road networks, plotting, PDF, distributed computing, the app, and scipy
#: (0.2 s: a département's nearest facilities are searched pair by pair).
NOT_FOR_SUMMARY = {"requests", "requests_cache", "urllib3", "boto3", "osmnx", "networkx",
                   "matplotlib", "weasyprint", "dask", "distributed", "streamlit", "folium",
                   "branca", "highspy", "sklearn", "scipy", "data_sources._http",
                   "diagnosis.exports"}

_PROBE_FULL = _PROBE.replace("m.split(\".\")[0] for m in sys.modules", "m for m in sys.modules")


def test_summary_imports_only_what_it_uses(monkeypatch):
    """``summary --territory 44`` (offline, demo) never imports the network or PDF layers."""
    monkeypatch.setenv("MAILLAGE_OFFLINE", "1")
    out = subprocess.run([sys.executable, "-c", _PROBE_FULL,
                          json.dumps(["summary", "--territory", "44"])], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    modules = set(json.loads(out.stderr.strip().splitlines()[-1]))
    assert "diagnosis.overview" in modules  # the command ran
    assert not NOT_FOR_SUMMARY & modules, sorted(NOT_FOR_SUMMARY & modules)


@pytest.mark.parametrize("mode", ["crow", "drive"])
def test_crow_fly_access_imports_no_road_network_library(monkeypatch, tmp_path, mode):
    """A crow-fly run (asked for, or offline with no road graph cached) imports neither
    osmnx/networkx nor the HTTP layer (requests, requests-cache: 0.3-0.4 s) to look for a
    graph, nor the report's plotting modules to print its tables (matplotlib: 0.5 s)."""
    monkeypatch.setenv("MAILLAGE_OFFLINE", "1")
    monkeypatch.setenv("MAILLAGE_CACHE_DIR", str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", _PROBE_FULL,
                          json.dumps(["access", "--territory", "200000438", "--mode", mode])],
                         cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    modules = set(json.loads(out.stderr.strip().splitlines()[-1]))
    assert "diagnosis.accessibility" in modules  # the command ran
    assert not {"osmnx", "networkx"} & modules, sorted({"osmnx", "networkx"} & modules)
    network = {"requests", "requests_cache", "data_sources._http"}
    if mode == "crow":  # nor the OSM layer (a drive run looks for the territory's graph)
        network.add("data_sources.osm")
    assert not network & modules, sorted(network & modules)
    # the printed tables format numbers without the report's plotting and PDF modules
    report = {"matplotlib", "weasyprint", "diagnosis.report", "diagnosis.static_maps"}
    assert not report & modules, sorted(report & modules)


@pytest.mark.usefixtures("http_sandbox")
def test_cache_paths_follow_the_http_layer_setting(tmp_path):
    """The light look-up of cached road graphs uses the folder the HTTP layer is set to."""
    from data_sources import _cache_paths, osm

    graphs = tmp_path / "cache" / "osm" / "road_graphs"
    assert _cache_paths.road_graphs_dir() == graphs
    assert osm.cache_dir() == tmp_path / "cache" / "osm"
    assert not _cache_paths.has_cached_road_graph("drive")
    graphs.mkdir(parents=True)
    (graphs / "walk-0123456789abcdef0123.npz").write_bytes(b"")
    assert not _cache_paths.has_cached_road_graph("drive")
    assert _cache_paths.has_cached_road_graph("walk")
    from data_sources import _http

    assert not _cache_paths.is_offline()  # the sandbox is online, whatever the environment
    _http.configure(offline=True)
    assert _cache_paths.is_offline()
