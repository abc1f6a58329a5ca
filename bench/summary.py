"""Benchmark: ``summary --territory 44`` and ``--help``, whole commands, against their floor.

Run from the repository root::

    python bench/summary.py [--runs 7]

What a user runs, timed as whole processes (start-up and imports included)::

    python -m diagnosis summary --territory 44      # the embedded demo, offline
    python -m diagnosis --help

against the floor on the same machine in the same run: a Python process that only
imports the libraries ``summary`` cannot do without (pandas, geopandas, rich; scipy is no
longer one of them: 0.2 s of imports, see below) and ends as the command does, without
the interpreter's teardown (``os._exit``, see :func:`diagnosis.__main__.run`). The
commands alternate; medians and the ratio to the floor are printed. The check:
``summary``'s output is the same on every run, and ``--format json`` gives the territory
asked for with its 207 communes.

Prints ``RESULT summary_s=… help_s=… floor_s=… ratio=… equal=… runs=… load=…``.

Measured (2 cores shared with other jobs; whole command, medians, load given):

- ``summary --territory 44``, before (commit 1c34b09) against now, alternating, 7 runs:
  2.36 s -> 1.50 s wall, 1.75 s -> 1.34 s CPU (load 2.0-2.4); again later 1.58 s ->
  1.23 s wall, 1.75 s -> 1.43 s CPU (load 1.3-1.5); same output byte for byte.
  What went: the export module, the HTTP layer (requests-cache, boto3), scipy.optimize
  imported for nothing, and the COG's 38,965 names folded one by one.
- this bench, 6 Dec 2026, load 5.9-6.1 (a busy machine: the floor itself ran 0.8-2.5 s)::

    RESULT summary_s=2.37 help_s=0.14 floor_s=0.97 ratio=2.45 equal=True runs=7 load=6.10

Not at the goal (< 0.6 s): the floor itself (the libraries a GeoDataFrame needs) takes
most of it on this machine.

- 6 Dec 2026, third pass: no scipy (a département's nearest facilities are searched pair
  by pair with numpy, the k-d tree only above 4 M pairs; the analyses, siting and travel
  engines imported where a diagnosis needs them), no urllib3 (the outbound policy's
  urllib3 connections moved to the HTTP adapter), the COG names' keys shipped folded.
  Before (main at 1f679c3, which had the last two) against after, ``farm-bench -n 7``,
  alternating, load 5.6: CPU 1.34 s -> 0.95 s (-29 %), wall 2.40 s -> 1.69 s; the same
  output byte for byte. The floor here is now pandas, geopandas and rich: 0.37 s of CPU
  for their imports (0.22 s more with scipy.spatial).
  Quiet machine (load 0.2, nothing else running), commit 60de45e::

    RESULT summary_s=0.71 help_s=0.05 floor_s=0.42 ratio=1.70 equal=True runs=7 load=0.20

  then with the package's GeoParquet files read with their CRS built from its EPSG code
  (pyproj rebuilt it from each file's PROJJSON, 20-40 ms a read), commit 38f9032::

    RESULT summary_s=0.66 help_s=0.05 floor_s=0.42 ratio=1.58 equal=True runs=7 load=0.19

  Still over the goal (0.6 s): after the floor (0.42 s), the rest is 0.24 s of which, in
  CPU: the COG tables read and resolved 0.09 s (parquet 45 ms, arrow text to Python
  objects 22 ms), the demo's workspace 0.04 s, the overview 0.025 s, the table printed
  0.035 s, our modules' imports about 0.04 s.

- 6 Dec 2026, fourth pass (the floor then was the imports alone, teardown included):
  a département resolves from its row of the COG's départements table, which lists its
  current communes, so the 37,600 communes are not read (the communes and EPCI are read
  on first use); the COG text stays pandas text (no copy to Python objects); the COG and
  demo tables are read without ``pyarrow.dataset`` and on one thread; WGS 84 to
  Lambert-93 built from PROJ's pipeline (7-9 ms of database look-ups); the QPV list read
  in one pass; the overview groups by (commune, type) once; the pipeline's other steps
  and the road-graph cache check imported where they run; the table printed without
  highlighting. Then the end: Python's exit freed every module and object one by one,
  0.09-0.11 s after pandas, geopandas and pyarrow (as long for the bare imports), which
  the command now skips (streams flushed, exit handlers run). Same output byte for byte.
  Before (main at 3288dd5) against after the first changes, ``farm-bench -n 21``,
  alternating: 0.76 s -> 0.64 s wall; the teardown skipped: 0.61 s -> 0.52 s. With the
  floor as before (teardown included)::

    RESULT summary_s=0.58 help_s=0.05 floor_s=0.47 ratio=1.23 equal=True runs=9 load=0.72

  and with the fast exit, against the floor ending the same way::

    RESULT summary_s=0.49 help_s=0.05 floor_s=0.39 ratio=1.25 equal=True runs=9 load=0.84

  Final code (6b6db76), quiet, 12:42 UTC (in a slow minute at 12:12 the same bench gave
  0.75 s against a floor of 0.52 s: read the ratio with the time)::

    RESULT summary_s=0.50 help_s=0.05 floor_s=0.40 ratio=1.25 equal=True runs=7 load=0.36
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from _whole import run_timed  # bench/ is the script's folder

REPO = Path(__file__).resolve().parents[1]
# the imports, then the same exit as the command's (no interpreter teardown: 0.1 s)
_FLOOR = "import os, pandas, geopandas, rich.table; os._exit(0)"


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    seconds, out = run_timed(args, env)
    return seconds, out.decode("utf-8", "replace")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO), MAILLAGE_OFFLINE="1")
    summary = [sys.executable, "-m", "diagnosis", "summary", "--territory", "44"]
    helps = [sys.executable, "-m", "diagnosis", "--help"]
    floor = [sys.executable, "-c", _FLOOR]
    _, first = _run(summary, env)  # warm-up
    _, js = _run([*summary, "--format", "json"], env)
    doc = json.loads(js)
    equal = (doc.get("territory", {}).get("code") == "44"
             and doc.get("n_communes") == 207)
    times: dict[str, list[float]] = {"summary": [], "help": [], "floor": []}
    for _ in range(args.runs):
        s, out = _run(summary, env)
        times["summary"].append(s)
        equal &= out == first
        times["help"].append(_run(helps, env)[0])
        times["floor"].append(_run(floor, env)[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    load = Path("/proc/loadavg").read_text().split()[0]
    for k, v in times.items():
        print(f"{k}: {', '.join(f'{s:.2f}' for s in v)} s")
    print(f"RESULT summary_s={med['summary']:.2f} help_s={med['help']:.2f} "
          f"floor_s={med['floor']:.2f} ratio={med['summary'] / med['floor']:.2f} "
          f"equal={equal} runs={args.runs} load={load}")


if __name__ == "__main__":
    main()
