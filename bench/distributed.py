"""Benchmark: road accessibility of many départements on Dask, 1 worker vs 2 workers.

Run ``python bench/distributed.py`` (8 départements) or ``--quick`` (4 départements).

Input (synthetic): départements of 40 km × 40 km side by side on a 4 × 2 layout, one
grid road network over all of them (a node every 250 m, 18 s per edge, i.e. 50 km/h,
two-way). Each task loads its département's part of the grid plus a border buffer on
the worker (``road_graph_from_arrays``, as a real loader would read a buffered OSM
graph), with 300 communes per département and 60 facilities of each of three types
(crèches with capacities, PMI, RPE). Routing cutoff 20 minutes, E2SFCA at 20 minutes.

The same run goes through :func:`diagnosis.distributed.compute_access_by_departement`
on a ``LocalCluster`` of 1 worker, then of 2 worker processes (one thread each); the
cluster start and the workers' imports are timed apart. The two tables are checked to be identical.

Each cluster size runs ``--repeat`` times (default 2) and keeps its best time: the
machine is shared, so the one-minute load average is printed with the result; on a
2-core machine with other work running, the speedup is bounded by the free cores.

Prints ``RESULT workers1_s=… workers2_s=… speedup=… departements=… start_s=… load1=…``.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# This script is named like the ``distributed`` package: drop its folder from the path so
# that ``import distributed`` finds dask's, here and in the spawned workers.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from diagnosis.distributed import compute_access_by_departement, dask_client  # noqa: E402
from diagnosis.travel import road_graph_from_arrays  # noqa: E402

SIDE_M = 40_000.0
STEP_M = 250.0
EDGE_S = 18.0
CUTOFF_MIN = 20.0
BUFFER_M = CUTOFF_MIN * 60.0 / EDGE_S * STEP_M + STEP_M  # farthest a 20-min trip goes
X0, Y0 = 200_000.0, 6_500_000.0


def layout(n_departements: int) -> dict[str, tuple[float, float]]:
    """Département code -> lower-left corner (metres)."""
    cols = max(1, n_departements // 2)
    return {f"{10 + i:02d}": (X0 + (i % cols) * SIDE_M, Y0 + (i // cols) * SIDE_M)
            for i in range(n_departements)}


def grid_loader(departement: str, *, corners: dict[str, tuple[float, float]],
                buffer_m: float):
    """The grid over the département's square plus ``buffer_m``, clipped to the layout."""
    x0, y0 = corners[departement]
    xs_all = [c[0] for c in corners.values()]
    ys_all = [c[1] for c in corners.values()]
    lo_x, hi_x = max(min(xs_all), x0 - buffer_m), min(max(xs_all) + SIDE_M, x0 + SIDE_M + buffer_m)
    lo_y, hi_y = max(min(ys_all), y0 - buffer_m), min(max(ys_all) + SIDE_M, y0 + SIDE_M + buffer_m)
    gx = np.arange(np.ceil((lo_x - X0) / STEP_M), np.floor((hi_x - X0) / STEP_M) + 1)
    gy = np.arange(np.ceil((lo_y - Y0) / STEP_M), np.floor((hi_y - Y0) / STEP_M) + 1)
    nx, ny = gx.size, gy.size
    node = np.arange(nx * ny).reshape(nx, ny)
    tails = [node[:-1, :].ravel(), node[1:, :].ravel(), node[:, :-1].ravel(),
             node[:, 1:].ravel()]
    heads = [node[1:, :].ravel(), node[:-1, :].ravel(), node[:, 1:].ravel(),
             node[:, :-1].ravel()]
    t, h = np.concatenate(tails), np.concatenate(heads)
    ix, iy = np.meshgrid(gx, gy, indexing="ij")
    return road_graph_from_arrays(t, h, np.full(t.size, EDGE_S), X0 + ix.ravel() * STEP_M,
                                  Y0 + iy.ravel() * STEP_M, mode="drive")


def make_inputs(corners: dict[str, tuple[float, float]], *, seed: int = 15):
    import geopandas as gpd
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows, facs = [], []
    for dep, (x0, y0) in corners.items():
        for i in range(300):
            rows.append((f"{dep}{i + 1:03d}", x0 + rng.uniform(0, SIDE_M),
                         y0 + rng.uniform(0, SIDE_M), float(rng.integers(0, 80))))
        for ftype in ("eaje", "pmi", "rpe"):
            for _ in range(60):
                cap = float(rng.integers(10, 60)) if ftype == "eaje" else np.nan
                facs.append((ftype, cap, x0 + rng.uniform(0, SIDE_M),
                             y0 + rng.uniform(0, SIDE_M)))
    c = pd.DataFrame(rows, columns=["code_insee", "x", "y", "births_2024"])
    communes = gpd.GeoDataFrame(c[["code_insee", "births_2024"]],
                                geometry=gpd.points_from_xy(c["x"], c["y"]), crs="EPSG:2154")
    f = pd.DataFrame(facs, columns=["type", "capacity", "x", "y"])
    facilities = gpd.GeoDataFrame(f[["type", "capacity"]],
                                  geometry=gpd.points_from_xy(f["x"], f["y"]), crs="EPSG:2154")
    return communes, facilities


def run(n_workers: int, communes, facilities, loader, n_deps: int, repeat: int):
    t0 = time.perf_counter()
    with dask_client(n_workers=n_workers, processes=True) as client:
        # Warm the workers (imports of numpy, scipy, geopandas, diagnosis) before timing.
        client.run(importlib.import_module, "diagnosis.distributed")
        start_s = time.perf_counter() - t0
        best = np.inf
        for _ in range(repeat):
            done: list[str] = []
            t1 = time.perf_counter()
            res = compute_access_by_departement(
                communes, facilities, loader, max_minutes=CUTOFF_MIN,
                border_buffer_m=BUFFER_M, client=client,
                progress=lambda dep, i, n, done=done: done.append(dep))
            best = min(best, time.perf_counter() - t1)
            assert len(done) == n_deps
    return res, best, start_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 départements instead of 8")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs per cluster size; the best is kept (the machine is shared)")
    args = parser.parse_args()
    n_deps = 4 if args.quick else 8
    corners = layout(n_deps)
    communes, facilities = make_inputs(corners)
    loader = functools.partial(grid_loader, corners=corners, buffer_m=BUFFER_M)
    g = loader(next(iter(corners)))
    print(f"{n_deps} départements, {len(communes)} communes, {len(facilities)} facilities; "
          f"a task's graph: {g.n_nodes:,} nodes, {g.n_edges:,} edges")
    res1, s1, start1 = run(1, communes, facilities, loader, n_deps, args.repeat)
    print(f"1 worker : {s1:.2f} s (cluster start {start1:.2f} s)")
    res2, s2, start2 = run(2, communes, facilities, loader, n_deps, args.repeat)
    print(f"2 workers: {s2:.2f} s (cluster start {start2:.2f} s)")
    import pandas as pd

    pd.testing.assert_frame_equal(res1.table, res2.table)
    print("tables identical with 1 and 2 workers")
    print(f"RESULT workers1_s={s1:.2f} workers2_s={s2:.2f} speedup={s1 / s2:.2f} "
          f"departements={n_deps} start_s={max(start1, start2):.2f} "
          f"load1={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
