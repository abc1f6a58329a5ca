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

_PROBE = """
import json, runpy, sys
sys.argv = ["diagnosis", *json.loads(sys.argv[1])]
try:
    runpy.run_module("diagnosis", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
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
#: model fitting, road networks, plotting, PDF, distributed computing, the app.
NOT_FOR_SUMMARY = {"requests", "requests_cache", "boto3", "osmnx", "networkx", "matplotlib",
                   "weasyprint", "dask", "distributed", "streamlit", "folium", "branca",
                   "highspy", "sklearn", "scipy.optimize", "data_sources._http",
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


def test_crow_fly_access_imports_no_road_network_library(monkeypatch):
    """A crow-fly run names its road-graph cache file without importing osmnx/networkx."""
    monkeypatch.setenv("MAILLAGE_OFFLINE", "1")
    out = subprocess.run([sys.executable, "-c", _PROBE_FULL,
                          json.dumps(["access", "--territory", "200000438", "--mode", "crow",
                                      "--format", "json"])], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    modules = set(json.loads(out.stderr.strip().splitlines()[-1]))
    assert "diagnosis.accessibility" in modules  # the command ran
    assert not {"osmnx", "networkx"} & modules, sorted({"osmnx", "networkx"} & modules)
