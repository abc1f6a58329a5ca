"""Benchmark: importing a 100,000-row facility file, whole command, against a plain read.

Run from the repository root::

    python bench/importer.py [--runs 3] [--rows 100000]

Input (synthetic): a CSV of ``--rows`` facilities in Loire-Atlantique (the embedded demo
territory, so the command runs offline): name, type (eight labels, one unknown), INSEE
code, latitude, longitude, places. One row in 20 has no coordinates (placed at its town
hall), one in 50 repeats the previous row a metre away (a probable duplicate); positions
are drawn around the communes' reference points of the shipped national geography.

What a user runs, timed as a whole process::

    python -m diagnosis summary --territory 44 --facilities fac.csv

against the yardstick on the same file in the same run: a plain read (``pandas.read_csv``
then ``geopandas.points_from_xy``, in its own process, imports included), which checks
nothing. The two alternate; the medians and the ratio are printed. The check: the
command's import line says every row was read and ``read = accepted + rejected`` (nothing
lost), with the plain read's row count.

Prints ``RESULT ours_s=… plain_s=… ratio=… rows=… accepted=… rejected=… duplicates=…
equal=… runs=… load=… import_s=… import_cpu_s=…``: ``import_s``/``import_cpu_s`` are the
best wall and CPU seconds of the import alone (``load_facility_file`` with the town halls
the command uses, in its own process after a warm-up), and ``equal`` also requires its
counts to be the command's.

Measured (2 cores shared with other jobs; whole command, medians of 3 runs, the
1-minute load average given):

- before (commit 1c34b09) against now, alternating: 9.45 s -> 5.34 s wall, 9.24 s ->
  5.41 s CPU (load 1.1-1.5; earlier 8.71 s -> 4.96 s at load 1.4-1.7); the import
  report (counts, rejected rows and reasons, duplicates, notes, warnings) and the
  facilities are equal field by field;
- this bench, 6 Dec 2026::

    RESULT ours_s=4.99 plain_s=0.51 ratio=9.71 rows=100000 accepted=97908
    rejected=2092 duplicates=985 equal=True runs=3 load=1.39   (one line)

- the importer in bulk (issue 23 item 7: CSV without quotes read in one pass, each column
  once, declared communes by point-in-polygon, duplicates by one lexicographic sort and a
  k-d tree, plain numbers by arrow's parser, the garbage collector held during the
  import), commit 53d11d3 against now, alternating, 3 rounds at load 8.6-12.4 (so CPU
  seconds; wall figures were 2-4 times these): the import alone 2.72-3.00 s -> 1.25-1.41
  s CPU, the whole command 5.15-5.36 s -> 3.36-3.84 s CPU (user + sys); the import report
  (counts, rejected rows and reasons, duplicates, notes, warnings, duplicate ids) and the
  facilities, imported and in the workspace, equal field by field. This bench then, at
  load 7.1 (wall figures not comparable with the quiet ones above)::

    RESULT ours_s=14.39 plain_s=2.58 ratio=5.59 rows=100000 accepted=97908
    rejected=2092 duplicates=985 equal=True runs=2 load=7.10 import_s=3.82
    import_cpu_s=1.31   (one line; 53d11d3 in the same minutes: ratio=7.04, load 6.70)

- the whole command to the goal (issue 23: < 2 s), commit 8b9c98b against bdc3421 (the
  lead's lighter start-up included), alternating A B A B, 5 runs each, medians, load
  3.9-5.0: 3.40 -> 2.02 s CPU (user + sys; ratio 0.58, pair by pair), 4.25 -> 2.14 s
  wall (ratio 0.51; fastest 1.90 s); the import alone (``import_cpu_s``), 3 rounds at
  load 7.2-9.6: 1.23-1.29 -> 0.63-0.64 s CPU. What went: the second validation of the
  100,000 rows (the workspace concatenates the tables the loaders validated, checks ids
  across them and still validates a table handed in from outside), scipy's 0.2-0.3 s of
  imports (duplicates compared group by group with numpy, the overview's nearest
  facilities pair by pair up to 60 M pairs), the usual CSV split by arrow's reader into
  arrow text (no Python object per cell), the town-hall points of France computed once
  per geography into the cache folder (Cantal's polygons were read and reprojected on
  every import for four communes), the facilities' metric coordinates transformed as
  numbers with one shared transformer, masks compared as numpy arrays, each distinct
  code and label looked up once. The command's output (table, import lines on stderr,
  ``--format json``) is byte for byte the same; the import report and the facilities,
  imported and in the workspace, equal field by field. This bench then::

    RESULT ours_s=3.27 plain_s=1.11 ratio=2.95 rows=100000 accepted=97908
    rejected=2092 duplicates=985 equal=True runs=3 load=4.35 import_s=1.22
    import_cpu_s=0.65   (one line; the plain read 1.11 s against 0.51 s quiet: a
    loaded machine, the wall figures are not the quiet ones)

The whole command also pays start-up (Python, pandas, geopandas, pyarrow: ~0.6 s), the
territory and the demo diagnosis (~1.1 s for ``summary --territory 44`` alone, quiet).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from _whole import run_timed  # bench/ is the script's folder

REPO = Path(__file__).resolve().parents[1]

#: The import alone (``load_facility_file`` with the town halls the command uses), timed
#: in its own process after one warm-up import: best wall and CPU seconds, and the counts.
_IMPORT_ONLY = """
import sys, time
from data_sources.user_file import load_facility_file
from data_sources.workspace import import_town_halls, load_workspace
halls = import_town_halls(load_workspace("44").communes)
load_facility_file(sys.argv[1], town_halls=halls)
wall, cpu = [], []
for _ in range(int(sys.argv[2])):
    w, c = time.perf_counter(), time.process_time()
    rep = load_facility_file(sys.argv[1], town_halls=halls).report
    wall.append(time.perf_counter() - w)
    cpu.append(time.process_time() - c)
print(min(wall), min(cpu), rep.rows_read, rep.accepted, len(rep.rejected), len(rep.duplicates))
"""

_PLAIN = """
import sys
import geopandas as gpd
import pandas as pd
df = pd.read_csv(sys.argv[1], sep=";", dtype={"code_insee": str})
pts = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["longitude"], df["latitude"]),
                       crs="EPSG:4326")
print(len(pts))
"""


def build_file(path: Path, rows: int) -> None:
    """Write the synthetic facility file (seeded: the same file every run)."""
    sys.path.insert(0, str(REPO))
    from data_sources.national import load_national_communes

    nat = load_national_communes(departements=["44"])
    nat = nat.loc[nat["point_lat"].notna()].reset_index(drop=True)
    rng = np.random.default_rng(1)
    idx = rng.integers(0, len(nat), rows)
    lat = nat["point_lat"].to_numpy()[idx] + rng.normal(0, 0.01, rows)
    lon = nat["point_lon"].to_numpy()[idx] + rng.normal(0, 0.01, rows)
    kinds = np.array(["crèche", "pmi", "relais petite enfance", "LAEP", "centre social",
                      "micro-crèche", "MAM", "truc inconnu"])
    k = kinds[rng.choice(len(kinds), rows, p=[.4, .1, .1, .08, .1, .1, .1, .02])]
    codes = nat["code_insee"].to_numpy()[idx]
    names = [f"Structure {i % 60000}" for i in range(rows)]
    for i in range(1, rows, 50):  # a duplicate every 50 rows: same name and type, 1 m away
        names[i], k[i], codes[i] = names[i - 1], k[i - 1], codes[i - 1]
        lat[i], lon[i] = lat[i - 1] + 1e-5, lon[i - 1]
    out = ["nom;type;code_insee;latitude;longitude;places"]
    for i in range(rows):
        la = "" if i % 20 == 0 else f"{lat[i]:.6f}"
        lo = "" if i % 20 == 0 else f"{lon[i]:.6f}"
        out.append(f"{names[i]};{k[i]};{codes[i]};{la};{lo};{int(rng.integers(5, 60))}")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    seconds, out = run_timed(args, env)
    return seconds, out.decode("utf-8", "replace")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_importer_"))
    path = root / "fac.csv"
    build_file(path, args.rows)
    env = dict(os.environ, PYTHONPATH=str(REPO), MAILLAGE_STORE_DIR=str(root / "store"),
               MAILLAGE_CACHE_DIR=str(root / "cache"), MAILLAGE_OFFLINE="1")
    ours_cmd = [sys.executable, "-m", "diagnosis", "summary", "--territory", "44",
                "--facilities", str(path)]
    plain_cmd = [sys.executable, "-c", _PLAIN, str(path)]
    _run(ours_cmd, env)  # warm-up
    ours, plain, text, n_plain = [], [], "", 0
    for _ in range(args.runs):
        s, text = _run(ours_cmd, env)
        ours.append(s)
        s, out = _run(plain_cmd, env)
        plain.append(s)
        n_plain = int(out.split()[-1])
    m = re.search(r"Import \S+ : (\d+) lignes lues, (\d+) acceptées, (\d+) rejetées, "
                  r"(\d+) doublons", text)
    if m is None:
        raise SystemExit("the command printed no import line")
    read, accepted, rejected, dups = (int(g) for g in m.groups())
    _, out = _run([sys.executable, "-c", _IMPORT_ONLY, str(path), str(args.runs)], env)
    import_s, import_cpu_s, *alone = out.split()
    equal = (read == n_plain == args.rows and read == accepted + rejected
             and [int(v) for v in alone] == [read, accepted, rejected, dups])
    load = Path("/proc/loadavg").read_text().split()[0]
    a, b = statistics.median(ours), statistics.median(plain)
    print(f"ours: {', '.join(f'{s:.2f}' for s in ours)} s; plain read: "
          f"{', '.join(f'{s:.2f}' for s in plain)} s")
    print(f"RESULT ours_s={a:.2f} plain_s={b:.2f} ratio={a / b:.2f} rows={read} "
          f"accepted={accepted} rejected={rejected} duplicates={dups} equal={equal} "
          f"runs={args.runs} load={load} import_s={float(import_s):.2f} "
          f"import_cpu_s={float(import_cpu_s):.2f}")


if __name__ == "__main__":
    main()
