"""Benchmark: road travel times of many départements, serially vs on Dask (2 workers).

Run ``python bench/distributed.py`` (8 départements, about 3 minutes on 2 free cores) or
``--quick`` (4 smaller départements). What a user runs: ``python -m diagnosis access
--territory "région 52" --mode drive --distributed [--workers 2]``; without
``--distributed`` the same travel times come from one process.

Input (synthetic, seeded): 8 départements side by side, squares of 33 to 108 km (1,100 to
11,700 km²), each with its own road-like graph (``bench/_roads.py``: a node about every
200 m, local streets at 30-50 km/h, arterials at 80 km/h, one-way streets, gaps) over the
département widened by the 15 km border buffer: 100,000 to 480,000 nodes per
département, 2.3 million in all. The graphs are written once to a temporary folder as
the ``.npz`` files of the OSM cache (``data_sources.osm.save_road_graph``), not timed;
every task then reads its own département's graph from disk
(``data_sources.osm.read_road_graph``): no graph is ever sent to a worker. Communes (one
per 16 km², each with its mairie) and the facilities of nine other types at about their
national densities (crèches one per 32 km², sages-femmes one per 70 km², MAM one per
120 km², ..., maternités one per 1,200 km²) are spread over each département; routing
cutoff 30 minutes.

Both sides do the same tasks and give the same sparse travel-time pairs:

* serial: one process reads each département's graph in turn and routes its communes to
  the facilities within the border buffer (:func:`diagnosis.travel.compute_travel_times`),
  then assembles one sparse matrix per type;
* Dask: :func:`diagnosis.distributed.compute_travel_times_by_departement` on the
  ``LocalCluster`` of :func:`diagnosis.distributed.dask_client` (what ``access
  --distributed`` gets): 2 worker processes of one thread, forked from a fork server that
  imports the task's modules once, one task per worker at a time, largest département
  first, Dask's housekeeping sampled sparsely. ``start_s`` is the cluster start plus the
  workers' imports (the fork server's: ``access --distributed`` starts it before loading
  its data, this bench does not); ``dask_s`` is the whole (start, tasks, shutdown);
  ``tasks_s`` the tasks alone.

``ratio = serial_s / dask_s`` (the whole, start included); ``equal=True`` when every
pair, every time to the nearest facility and every snap flag are identical. The
one-minute load average is printed: on a shared 2-core machine the speed-up is bounded by
the free cores, so the CPU seconds are printed too: ``ratio_cpu = serial_cpu_s /
worker_cpu_max_s`` is the task ratio a free core per worker would give (Dask's own
work in the workers included), ``parent_cpu_s`` this process's CPU during the tasks
(their preparation and merge, the scheduler, client and nannies).

Prints ``RESULT serial_s=… dask_s=… start_s=… tasks_s=… ratio=… ratio_tasks=… equal=…
departements=… workers=… nodes=… serial_cpu_s=… worker_cpu_max_s=… load1=…
worker_cpu_sum_s=… parent_cpu_s=… ratio_cpu=…``.

Measured
--------
6 Dec 2026, 2-core AMD EPYC VM shared with three other agents' jobs: every run below
was loaded (load1 2.7-5.2), so its wall ratio says how busy the machine was, not what
Dask gives; the CPU seconds and the start and shutdown compare. "Before" is the code
before the fork server, one-task-at-a-time queueing and sparse housekeeping, run right
after "now" in the same minutes (full runs, 8 départements, 2.3 M nodes, equal=True):

* now, load1 1.9-2.7: serial 76.05 s (72.31 s CPU); Dask 58.59 s = start 1.78 + tasks
  56.77 + shutdown 0.04; workers' CPU 39.21 + 38.04 s: ratio_cpu 1.84;
  before, load1 2.7-3.4: serial 99.48 s (74.05 s CPU); Dask 74.49 s = start 3.03 + tasks
  70.94 + shutdown 0.52; workers' CPU 41.40 + 40.27 s: ratio_cpu 1.79.
* now, load1 3.4-5.1: serial 98.95 s (78.73 s CPU); Dask 103.94 s = start 1.39 + tasks
  102.49 + shutdown 0.06; workers' CPU 41.86 + 40.60 s: ratio_cpu 1.88;
  before, load1 2.8-5.2: serial 75.75 s (73.68 s CPU); Dask 107.19 s = start 2.12 +
  tasks 104.44 + shutdown 0.63; workers' CPU 42.85 + 41.91 s: ratio_cpu 1.72.
* now, load1 2.4-3.6: serial 112.70 s (76.69 s CPU); Dask 93.69 s = start 1.15 + tasks 92.50 +
  shutdown 0.04; workers' CPU 41.80 + 40.65 s: ratio_cpu 1.83.

The workers spent 5-8 % more CPU than the serial run now, 10-15 % before. Cluster start
and shutdown alone, 4 alternations at load1 2.4-2.5: now 1.19-1.71 s (shutdown
0.03-0.05 s), before 1.34-3.69 s (shutdown 0.23-0.54 s). Dask's housekeeping, idle
cluster: 0.08 s of CPU per 5 s in the workers and this process now, 0.48-0.49 s before
(10 % of a core). The last quiet run, before: ``RESULT serial_s=72.08 dask_s=43.63
start_s=1.36 ratio=1.65 ratio_tasks=1.72 nodes=2304013 equal=True load1=1.59``; at
ratio_cpu 1.83-1.88 a quiet run now should give about 72 / (1 + 39 + 0.05) = 1.8, not
measured quiet here.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# This script is named like the ``distributed`` package: drop its folder from the path so
# that ``import distributed`` finds dask's, here and in the spawned workers.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(REPO))

from data_sources.osm import read_road_graph, save_road_graph  # noqa: E402
from diagnosis.distributed import compute_travel_times_by_departement, dask_client  # noqa: E402
from diagnosis.travel import (  # noqa: E402
    compute_travel_times,
    pairs_to_csr,
    road_graph_from_arrays,
    snap_points,
)

sys.path.insert(0, str(BENCH))
from _roads import road_like_arrays  # noqa: E402

sys.path.remove(str(BENCH))

SPACING_M = 200.0
BUFFER_M = 15_000.0
CUTOFF_MIN = 30.0
X0, Y0 = 200_000.0, 6_400_000.0
#: Département square sides (km): Territoire-de-Belfort-like to Gironde-like.
CORE_KM = (108, 42, 93, 64, 101, 33, 80, 72)
QUICK_CORE_KM = (40, 25, 35, 30)
#: One commune, or one facility of a type, per so many km² (about the national counts
#: over metropolitan France: 34,900 communes, 17,000 crèches, 4,500 MAM, ...); the
#: mairies are the communes' own points.
KM2_PER = {"commune": 16.0, "eaje": 32.0, "mam": 120.0, "pmi": 150.0, "rpe": 175.0,
           "laep": 340.0, "centre_social": 240.0, "sage_femme": 70.0, "maternite": 1200.0}


def layout(core_km: tuple[int, ...]) -> dict[str, tuple[float, float, float]]:
    """Département code -> (x, y of its lower-left corner, side), in metres, in a row."""
    out, x = {}, X0
    for i, side_km in enumerate(core_km):
        out[f"{10 + i:02d}"] = (x, Y0, side_km * 1000.0)
        x += side_km * 1000.0
    return out


def write_graphs(deps: dict[str, tuple[float, float, float]], folder: Path) -> int:
    """Each département's graph (square + buffer) as an OSM-cache ``.npz``; total nodes."""
    total = 0
    for i, (dep, (x0, y0, side)) in enumerate(deps.items()):
        n_side = int(round((side + 2 * BUFFER_M) / SPACING_M)) + 1
        a = road_like_arrays(n_side, seed=100 + i, spacing_m=SPACING_M,
                             x0_m=x0 - BUFFER_M, y0_m=y0 - BUFFER_M)
        g = road_graph_from_arrays(a.tail, a.head, a.travel_time_s, a.x, a.y, mode="drive")
        save_road_graph(g, folder / f"drive-{dep}.npz")
        total += g.n_nodes
    return total


def load_departement_graph(departement: str, *, folder: str):
    """The loader a task calls on its worker: its département's graph, read from disk."""
    return read_road_graph(Path(folder) / f"drive-{departement}.npz")


def make_inputs(deps: dict[str, tuple[float, float, float]], *, seed: int = 15):
    import geopandas as gpd
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows, facs = [], []
    for dep, (x0, y0, side) in deps.items():
        km2 = (side / 1000.0) ** 2
        for i in range(int(km2 / KM2_PER["commune"])):
            x, y = x0 + rng.uniform(0, side), y0 + rng.uniform(0, side)
            rows.append((f"{dep}{i + 1:03d}", x, y, float(rng.integers(0, 80))))
            facs.append(("mairie", np.nan, x, y))
        for ftype, per in KM2_PER.items():
            for _ in range(int(km2 / per) if ftype != "commune" else 0):
                cap = float(rng.integers(10, 60)) if ftype in ("eaje", "mam") else np.nan
                facs.append((ftype, cap, x0 + rng.uniform(0, side), y0 + rng.uniform(0, side)))
    c = pd.DataFrame(rows, columns=["code_insee", "x", "y", "births_2024"])
    communes = gpd.GeoDataFrame(c[["code_insee", "births_2024"]],
                                geometry=gpd.points_from_xy(c["x"], c["y"]), crs="EPSG:2154")
    f = pd.DataFrame(facs, columns=["type", "capacity", "x", "y"])
    facilities = gpd.GeoDataFrame(f[["type", "capacity"]],
                                  geometry=gpd.points_from_xy(f["x"], f["y"]), crs="EPSG:2154")
    return communes, facilities


def run_serial(communes, facilities, loader) -> dict[str, dict[str, np.ndarray]]:
    """What one would write without Dask: a loop over départements in this process.

    Each département's communes are routed, on its own graph, to the facilities within
    the border buffer of one of its communes; the pairs are assembled into one sparse
    matrix per type, rows in table order.
    """
    from scipy.spatial import cKDTree

    origins = np.column_stack([communes.geometry.x, communes.geometry.y])
    deps = communes["code_insee"].str[:2].to_numpy()
    types = sorted(facilities["type"].unique())
    fac_xy = {t: np.column_stack([facilities.geometry.x[facilities["type"] == t],
                                  facilities.geometry.y[facilities["type"] == t]])
              for t in types}
    parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {t: [] for t in types}
    nearest = {t: np.full(len(communes), np.inf) for t in types}
    flagged = np.zeros(len(communes), bool)
    for dep in sorted(set(deps.tolist())):
        rows = np.flatnonzero(deps == dep)
        graph = loader(dep)
        tree = cKDTree(origins[rows])
        for t in types:
            dist, _ = tree.query(fac_xy[t], k=1, distance_upper_bound=BUFFER_M)
            cols = np.flatnonzero(np.isfinite(dist))
            if cols.size == 0:  # no facility of this type within reach of the département
                flagged[rows] = snap_points(graph, origins[rows]).flagged
                continue
            tt = compute_travel_times(graph, origins[rows], fac_xy[t][cols],
                                      max_minutes=CUTOFF_MIN)
            coo = tt.within.tocoo()
            parts[t].append((rows[coo.row], cols[coo.col], coo.data))
            nearest[t][rows] = tt.nearest_minutes
            flagged[rows] = tt.origin_flagged
    out = {}
    for t in types:
        r, c, m = ((np.concatenate(x) for x in zip(*parts[t], strict=True)) if parts[t]
                   else (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)))
        out[t] = {"within": pairs_to_csr(r, c, m, (len(communes), fac_xy[t].shape[0])),
                  "nearest": nearest[t], "flagged": flagged}
    return out


def run_dask(communes, facilities, loader, n_workers: int):
    """The same tasks on a new LocalCluster.

    Returns the result, the whole, start and tasks wall seconds, each worker's CPU
    seconds during the tasks (largest first), and this process's CPU seconds during the
    tasks (preparing and merging them, and the scheduler, client and nannies it runs).
    """
    t0 = time.perf_counter()
    with dask_client(n_workers=n_workers, processes=True) as client:
        # The workers' imports (numpy, scipy, geopandas, diagnosis, the loader's module)
        # are part of the start: every new cluster pays them.
        client.run(importlib.import_module, "diagnosis.distributed")
        client.run(importlib.import_module, "data_sources.osm")
        start_s = time.perf_counter() - t0
        cpu0 = client.run(time.process_time)
        t1, parent0 = time.perf_counter(), time.process_time()
        res = compute_travel_times_by_departement(
            communes, facilities, loader, max_minutes=CUTOFF_MIN, border_buffer_m=BUFFER_M,
            client=client)
        tasks_s, parent_s = time.perf_counter() - t1, time.process_time() - parent0
        cpu1 = client.run(time.process_time)
    cpu = sorted((cpu1[w] - cpu0[w] for w in cpu0), reverse=True)
    return res, time.perf_counter() - t0, start_s, tasks_s, cpu, parent_s


def same(serial: dict[str, dict[str, np.ndarray]], dask: dict) -> bool:
    """Identical pairs (sparsity and values), nearest times and snap flags for every type."""
    if set(serial) != set(dask):
        return False
    for t, s in serial.items():
        d = dask[t]
        a, b = s["within"].tocsr(), d.within.tocsr()
        a.sort_indices()
        b.sort_indices()
        if not (np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
                and np.array_equal(a.data, b.data)):
            return False
        if not (np.array_equal(s["nearest"], d.nearest_minutes)
                and np.array_equal(s["flagged"], d.origin_flagged)):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="4 small départements (about 40,000-100,000 nodes each)")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (default 2)")
    args = parser.parse_args()
    deps = layout(QUICK_CORE_KM if args.quick else CORE_KM)
    communes, facilities = make_inputs(deps)
    with tempfile.TemporaryDirectory(prefix="maillage-bench-graphs-") as folder:
        t0 = time.perf_counter()
        n_nodes = write_graphs(deps, Path(folder))
        loader = functools.partial(load_departement_graph, folder=folder)
        counts = facilities["type"].value_counts().to_dict()
        print(f"{len(deps)} départements, {len(communes):,} communes, facilities {counts}; "
              f"graphs {n_nodes:,} nodes in all, written in {time.perf_counter() - t0:.1f} s "
              "(not timed)", flush=True)
        c0, t0 = time.process_time(), time.perf_counter()
        serial = run_serial(communes, facilities, loader)
        serial_s, serial_cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"serial   : {serial_s:.2f} s ({serial_cpu:.2f} s CPU; load1 "
              f"{os.getloadavg()[0]:.2f})", flush=True)
        dask, dask_s, start_s, tasks_s, cpu, parent_cpu = run_dask(
            communes, facilities, loader, args.workers)
        print(f"Dask {args.workers} workers: {dask_s:.2f} s in all = cluster start "
              f"{start_s:.2f} s + tasks {tasks_s:.2f} s + shutdown "
              f"{dask_s - start_s - tasks_s:.2f} s; workers' CPU during the tasks "
              f"{' + '.join(f'{c:.2f}' for c in cpu)} s, this process's {parent_cpu:.2f} s "
              f"(load1 {os.getloadavg()[0]:.2f})", flush=True)
    equal = same(serial, dask)
    pairs = sum(s["within"].nnz for s in serial.values())
    print(f"{pairs:,} pairs within {CUTOFF_MIN:g} min; results identical: {equal}")
    print(f"RESULT serial_s={serial_s:.2f} dask_s={dask_s:.2f} start_s={start_s:.2f} "
          f"tasks_s={tasks_s:.2f} ratio={serial_s / dask_s:.2f} "
          f"ratio_tasks={serial_s / tasks_s:.2f} equal={equal} departements={len(deps)} "
          f"workers={args.workers} nodes={n_nodes} serial_cpu_s={serial_cpu:.2f} "
          f"worker_cpu_max_s={cpu[0]:.2f} load1={os.getloadavg()[0]:.2f} "
          f"worker_cpu_sum_s={sum(cpu):.2f} parent_cpu_s={parent_cpu:.2f} "
          f"ratio_cpu={serial_cpu / cpu[0]:.2f}")
    if not equal:
        raise SystemExit("the serial and Dask results differ")


if __name__ == "__main__":
    main()
