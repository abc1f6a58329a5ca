"""Benchmark: travel-time matrix with a cutoff, Maillage (scipy csgraph) vs networkx.

Run ``python bench/travel_times.py`` (about a minute and a half) or ``--quick``.

Parts:

1. the shared real OSM extract (``../shared/data/test-only/osm/toulouse_compans_caffarelli.osm``,
   skipped with a message when absent), drive and walk graphs;
2. a seeded synthetic road-like graph (perturbed grid with one-way streets, removed
   edges, diagonals and fast arterials) of >= 100,000 nodes, 1,000 facilities and
   5,000 origin points;
3. a "département-size" matrix: 200 commune points x 1,000 facilities, 30-minute
   cutoff, on the same graph (ours only).

The peer is what osmnx users do: networkx ``single_source_dijkstra_path_length`` with
``cutoff`` from every facility node, on the reversed graph (time from each origin *to*
the facility on a directed graph), reading the origin nodes. Both sides get the same
snapped nodes and the same edge times; graph construction is timed separately and not
in the ratio. The ratio uses CPU time (the machine is shared); wall times are printed.
Times are compared in minutes; ``max_abs_diff`` is over finite and
infinite cells alike (inf == inf counts as 0).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from diagnosis.travel import (  # noqa: E402
    RoadGraph,
    compute_travel_times,
    road_graph_from_arrays,
    snap_points,
)

TEST_ONLY = REPO.parent / "shared" / "data" / "test-only"
OSM_EXTRACT = TEST_ONLY / "osm" / "toulouse_compans_caffarelli.osm"


def synthetic_road_graph(side: int, *, seed: int, spacing_m: float = 200.0) -> RoadGraph:
    """A perturbed ``side x side`` grid that looks like a rural/peri-urban road network.

    Local streets at 30-50 km/h (5 % one-way, 4 % removed), an arterial every 10 rows and
    columns at 80 km/h, and a diagonal in 5 % of the cells.
    """
    rng = np.random.default_rng(seed)
    n = side * side
    gx, gy = np.meshgrid(np.arange(side), np.arange(side))
    x = gx.ravel() * spacing_m + rng.uniform(-0.3, 0.3, n) * spacing_m + 300_000.0
    y = gy.ravel() * spacing_m + rng.uniform(-0.3, 0.3, n) * spacing_m + 6_700_000.0
    idx = np.arange(n).reshape(side, side)
    tails, heads, speeds = [], [], []

    def add(a: np.ndarray, b: np.ndarray, arterial: np.ndarray) -> None:
        keep = rng.random(a.size) > 0.04
        a, b, arterial = a[keep], b[keep], arterial[keep]
        speed = np.where(arterial, 80.0, rng.uniform(30.0, 50.0, a.size))
        oneway = (rng.random(a.size) < 0.05) & ~arterial
        tails.extend([a, b[~oneway]])
        heads.extend([b, a[~oneway]])
        speeds.extend([speed, speed[~oneway]])

    add(idx[:, :-1].ravel(), idx[:, 1:].ravel(), (gy[:, :-1] % 10 == 0).ravel())
    add(idx[:-1, :].ravel(), idx[1:, :].ravel(), (gx[:-1, :] % 10 == 0).ravel())
    diag = rng.random((side - 1) * (side - 1)) < 0.05
    add(idx[:-1, :-1].ravel()[diag], idx[1:, 1:].ravel()[diag], np.zeros(diag.sum(), bool))
    t = np.concatenate(tails)
    h = np.concatenate(heads)
    v = np.concatenate(speeds)
    length = np.hypot(x[t] - x[h], y[t] - y[h])
    return road_graph_from_arrays(t, h, length / (v / 3.6), x, y, mode="drive")


def to_networkx_reversed(graph: RoadGraph) -> nx.DiGraph:
    """networkx copy of the *reversed* graph, with the same edge times."""
    coo = graph.reversed_travel_time_s.tocoo()
    g = nx.DiGraph()
    g.add_nodes_from(range(graph.n_nodes))
    g.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(),
                                  strict=True))
    return g


def to_networkx(graph: RoadGraph) -> nx.DiGraph:
    """networkx copy of the graph, with the same edge times."""
    coo = graph.travel_time_s.tocoo()
    g = nx.DiGraph()
    g.add_nodes_from(range(graph.n_nodes))
    g.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(),
                                  strict=True))
    return g


def peer_matrix(graph: RoadGraph, origins: np.ndarray, facilities: np.ndarray,
                max_minutes: float, nx_graph: nx.DiGraph, *, reverse: bool) -> np.ndarray:
    """networkx matrix (minutes) with the same snapping rules as ours."""
    so = snap_points(graph, origins)
    sd = snap_points(graph, facilities)
    out = np.full((origins.shape[0], facilities.shape[0]), np.inf)
    limit = max_minutes * 60.0
    if reverse:
        for j, node in enumerate(sd.node):
            if sd.flagged[j]:
                continue
            dist = nx.single_source_dijkstra_path_length(nx_graph, int(node), cutoff=limit)
            out[:, j] = [dist.get(int(o), np.inf) / 60.0 for o in so.node]
    else:
        for i, node in enumerate(so.node):
            if so.flagged[i]:
                continue
            dist = nx.single_source_dijkstra_path_length(nx_graph, int(node), cutoff=limit)
            out[i, :] = [dist.get(int(d), np.inf) / 60.0 for d in sd.node]
    out[so.flagged, :] = np.inf
    return out


def diff(a: np.ndarray, b: np.ndarray) -> float:
    both_inf = np.isinf(a) & np.isinf(b)
    if (np.isinf(a) != np.isinf(b)).any():
        return float("inf")
    d = np.abs(np.where(both_inf, 0.0, a) - np.where(both_inf, 0.0, b))
    return float(d.max()) if d.size else 0.0


def run_part(name: str, graph: RoadGraph, origins: np.ndarray, facilities: np.ndarray,
             max_minutes: float, repeat: int = 3) -> tuple[float, float, float]:
    """Time ours (best of ``repeat``) and networkx (once) on one input.

    Returns CPU seconds of ours and of networkx, and the max abs difference. CPU time
    (``time.process_time``) is the ratio's measure because the benchmark machine is
    shared; wall-clock times are printed too.
    """
    ours_cpu = ours_wall = np.inf
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        tt = compute_travel_times(graph, origins, facilities, max_minutes=max_minutes)
        ours_cpu = min(ours_cpu, time.process_time() - c0)
        ours_wall = min(ours_wall, time.perf_counter() - w0)
    reverse = tt.params["direction"].startswith("destinations")
    t0 = time.perf_counter()
    nx_graph = to_networkx_reversed(graph) if reverse else to_networkx(graph)
    build_t = time.perf_counter() - t0
    c0, w0 = time.process_time(), time.perf_counter()
    ref = peer_matrix(graph, origins, facilities, max_minutes, nx_graph, reverse=reverse)
    peer_cpu, peer_wall = time.process_time() - c0, time.perf_counter() - w0
    d = diff(tt.minutes, ref)
    finite = np.isfinite(tt.minutes).mean()
    print(f"[{name}] {graph.n_nodes:,} nodes, {graph.n_edges:,} edges, "
          f"{origins.shape[0]:,} origins x {facilities.shape[0]:,} facilities, "
          f"cutoff {max_minutes:g} min ({tt.params['direction']}); {finite:.1%} pairs in reach")
    print(f"[{name}]   CPU: ours {ours_cpu:.3f} s (best of {repeat}) | networkx {peer_cpu:.3f} s "
          f"| ratio {peer_cpu / ours_cpu:.1f} | max_abs_diff {d:g}")
    print(f"[{name}]   wall: ours {ours_wall:.3f} s | networkx {peer_wall:.3f} s "
          f"(+ {build_t:.2f} s to build its graph)")
    return ours_cpu, peer_cpu, d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small version (seconds)")
    args = parser.parse_args()
    diffs: list[float] = []

    # 1. Real OSM extract.
    if OSM_EXTRACT.exists():
        from data_sources.osm import road_graph_from_osm_file

        for mode in ("drive", "walk"):
            t0 = time.perf_counter()
            g = road_graph_from_osm_file(OSM_EXTRACT, mode=mode)
            print(f"[osm {mode}] osmnx read + conversion: {time.perf_counter() - t0:.2f} s")
            rng = np.random.default_rng(1)
            nodes_xy = np.column_stack([g.x, g.y])
            origins = nodes_xy + rng.normal(0, 15, nodes_xy.shape)
            facilities = nodes_xy[rng.choice(g.n_nodes, min(20, g.n_nodes), replace=False)]
            _, _, d = run_part(f"osm {mode}", g, origins, facilities, 15.0)
            diffs.append(d)
    else:
        print(f"[osm] skipped: {OSM_EXTRACT} is absent (needs ../shared/data beside the repo)")

    # 2. Synthetic road-like graph.
    side, n_fac, n_orig, cutoff = (120, 200, 1000, 10.0) if args.quick else (320, 1000, 5000, 12.0)
    t0 = time.perf_counter()
    g = synthetic_road_graph(side, seed=42)
    print(f"[synthetic] graph built and renumbered in {time.perf_counter() - t0:.2f} s")
    rng = np.random.default_rng(7)
    lo = np.array([g.x.min(), g.y.min()])
    hi = np.array([g.x.max(), g.y.max()])
    facilities = rng.uniform(lo, hi, (n_fac, 2))
    origins = rng.uniform(lo, hi, (n_orig, 2))
    ours_t, peer_t, d = run_part("synthetic", g, origins, facilities, cutoff)
    diffs.append(d)
    ratio = peer_t / ours_t

    # 3. Département-size matrix (ours only).
    communes = rng.uniform(lo, hi, (200, 2))
    c0, t0 = time.process_time(), time.perf_counter()
    tt = compute_travel_times(g, communes, facilities, max_minutes=30.0)
    print(f"[departement] 200 communes x {n_fac:,} facilities, cutoff 30 min on "
          f"{g.n_nodes:,} nodes: {time.perf_counter() - t0:.3f} s wall, "
          f"{time.process_time() - c0:.3f} s CPU "
          f"({tt.params['direction']}, {np.isfinite(tt.minutes).mean():.1%} pairs in reach)")

    print(f"RESULT ratio={ratio:.2f} max_abs_diff={max(diffs):g}")


if __name__ == "__main__":
    main()
