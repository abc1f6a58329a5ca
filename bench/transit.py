"""Benchmark: transit matrix (ferrobus RAPTOR, through Maillage) vs a time-expanded graph.

Run ``python bench/transit.py`` (Rhein-Neckar, city scale: 2,057 stops, 424,266
stop_times, a few minutes) or ``--quick`` (Zheleznogorsk). Needs the shared test data
(``../shared/data/test-only/transit``). Not part of pytest.

Both sides read the same prepared feed (``data_sources.gtfs.prepare_feed``: the trips of
the study date, blank times interpolated) and answer the same question for points placed
on stops: leaving at 9:30, when do I reach each other sampled stop? The reference is
independent of ferrobus: a time-expanded graph (one node per departure and per arrival
event; ride, stay-on-board, wait-at-stop and walk-between-stops edges, every edge
weighted by the time it takes) solved with ``scipy.sparse.csgraph.dijkstra`` from the
first departure at or after 9:30 at the origin stop (plus the wait until it). Walks
between stops are allowed up to ``--walk-min`` minutes at 1.4 m/s on the straight line
x 1.3 for the reference, on the street network for ferrobus, so times can differ by the
walk legs: the check counts pairs equal within ``--tolerance-min`` and prints the
largest gap.

Prints ``RESULT ratio=<ours/reference CPU> build_s=<ours> matrix_s=<ours> ref_s=<ref>
peak_mb=<max RSS> equal_share=<…> max_abs_diff_min=<…> pairs=<…>``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from data_sources.gtfs import PreparedFeed, prepare_feed, read_gtfs  # noqa: E402

TRANSIT = REPO.parent / "shared" / "data" / "test-only" / "transit"
CASES = {
    "rhein-neckar": (TRANSIT / "rhein-neckar" / "rnv.osm.pbf", TRANSIT / "rhein-neckar" / "rnv.zip",
                     dt.date(2016, 11, 8)),
    "zheleznogorsk": (TRANSIT / "zheleznogorsk" / "roads_zhelez.pbf",
                      TRANSIT / "zheleznogorsk" / "gtfs_zhelez.zip", dt.date(2024, 3, 5)),
}
WALK_MS = 1.4
DETOUR = 1.3


def metric(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Local metres (equirectangular around the mean latitude)."""
    k = np.cos(np.radians(np.mean(lat)))
    return np.column_stack([lon * 111_320.0 * k, lat * 110_574.0])


def _stop_walks(p: PreparedFeed, ids: list[str], walk_s: float, graph) -> dict:
    """Walks between stops within ``walk_s``: on the street graph when given, else the
    straight line x 1.3 at 1.4 m/s."""
    stops = p.stops.set_index("stop_id")
    lon = stops.loc[ids, "stop_lon"].to_numpy(float)
    lat = stops.loc[ids, "stop_lat"].to_numpy(float)
    near: dict[str, list[tuple[str, float]]] = {s: [(s, 0.0)] for s in ids}
    if graph is not None:
        from pyproj import Transformer

        from diagnosis.travel import compute_travel_times

        tr = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
        xy = np.column_stack(tr.transform(lon, lat))
        tt = compute_travel_times(graph, xy, xy, max_minutes=walk_s / 60, max_snap_m=300)
        coo = tt.within.tocoo()
        for a, b, m in zip(coo.row, coo.col, coo.data, strict=True):
            if a != b:
                near[ids[a]].append((ids[b], float(m) * 60))
        return near
    xy = metric(lon, lat)
    pairs = cKDTree(xy).query_pairs(walk_s * WALK_MS / DETOUR, output_type="ndarray")
    for a, b in pairs:
        secs = float(np.hypot(*(xy[a] - xy[b]))) * DETOUR / WALK_MS
        near[ids[a]].append((ids[b], secs))
        near[ids[b]].append((ids[a], secs))
    return near


def time_expanded(p: PreparedFeed, walk_s: float, graph=None
                  ) -> tuple[sp.csr_array, dict, np.ndarray]:
    """The time-expanded graph of a prepared feed.

    Returns the graph, ``stop_id -> (departure node ids, their times)`` and the time of
    every node; arrival nodes of stop ``s`` are listed in ``arr_of[s]``.
    """
    st = p.stop_times  # already ordered by trip and numeric stop_sequence
    n = len(st)
    dep_node = np.arange(n)
    arr_node = np.arange(n, 2 * n)
    t_dep = st["departure_s"].to_numpy(float)
    t_arr = st["arrival_s"].to_numpy(float)
    node_time = np.concatenate([t_dep, t_arr])
    trip = st["trip_id"].to_numpy()
    same = np.r_[trip[1:] == trip[:-1], False]
    i = np.flatnonzero(same)
    tails, heads, w = [dep_node[i]], [arr_node[i + 1]], [t_arr[i + 1] - t_dep[i]]   # ride
    tails.append(arr_node[i + 1])
    heads.append(dep_node[i + 1])
    w.append(t_dep[i + 1] - t_arr[i + 1])                                            # stay
    stop = st["stop_id"].to_numpy()
    deps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    arrs: dict[str, np.ndarray] = {}
    order = np.lexsort((t_dep, stop))
    bounds = np.flatnonzero(np.r_[True, stop[order][1:] != stop[order][:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        idx = order[a:b]
        deps[str(stop[idx[0]])] = (dep_node[idx], t_dep[idx])
        tails.append(dep_node[idx[:-1]])                                             # wait
        heads.append(dep_node[idx[1:]])
        w.append(t_dep[idx[1:]] - t_dep[idx[:-1]])
    for s in np.unique(stop):
        arrs[str(s)] = arr_node[stop == s]
    # alight and board (same stop or a stop within the walk): next departure after t + walk
    near = _stop_walks(p, [s for s in p.stops["stop_id"] if s in deps], walk_s, graph)
    for s, arr_nodes in arrs.items():
        if s not in near:
            continue
        t = node_time[arr_nodes]
        for s2, secs in near[s]:
            d_nodes, d_times = deps[s2]
            k = np.searchsorted(d_times, t + secs)
            ok = k < d_times.size
            tails.append(arr_nodes[ok])
            heads.append(d_nodes[k[ok]])
            w.append(d_times[k[ok]] - t[ok])
    tail = np.concatenate(tails)
    head = np.concatenate(heads)
    weight = np.maximum(np.concatenate(w), 0.0) + 1e-6  # keep zero-time edges stored
    g = sp.csr_array((weight, (tail, head)), shape=(2 * n, 2 * n))
    return g, {"deps": deps, "arrs": arrs, "near": near}, node_time


def reference_minutes(g, index, node_time, origins, dests, depart_s) -> np.ndarray:
    """Earliest arrival (minutes after ``depart_s``) from each origin stop to each dest.

    Start: the first departure at or after the walk at the origin stop and at every stop
    within the walk (a super-source joined to them); end: the earliest arrival at the
    destination stop or at a stop within the walk, plus that walk.
    """
    near = index["near"]
    n = g.shape[0]
    out = np.full((len(origins), len(dests)), np.inf)
    for i, o in enumerate(origins):
        starts, offs = [], []
        for s2, secs in near[o]:
            d_nodes, d_times = index["deps"][s2]
            k = np.searchsorted(d_times, depart_s + secs)
            if k < d_times.size:
                starts.append(int(d_nodes[k]))
                offs.append(float(d_times[k] - depart_s))
        if not starts:
            continue
        src = sp.csr_array((np.asarray(offs) + 1e-6, (np.zeros(len(starts), int),
                                                     np.asarray(starts))), shape=(1, n + 1))
        big = sp.vstack([sp.hstack([g, sp.csr_array((n, 1))]), src]).tocsr()
        dist = dijkstra(big, directed=True, indices=n, limit=4 * 3600)[:n]
        for j, d in enumerate(dests):
            if d == o:
                out[i, j] = 0.0
                continue
            best = np.inf
            for s2, secs in near.get(d, [(d, 0.0)]):
                a = index["arrs"].get(s2)
                if a is None:
                    continue
                reached = np.isfinite(dist[a])
                if reached.any():
                    best = min(best, float(node_time[a][reached].min()) + secs)
            out[i, j] = (best - depart_s) / 60.0
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small feed (Zheleznogorsk)")
    ap.add_argument("--origins", type=int, default=20)
    ap.add_argument("--destinations", type=int, default=60)
    ap.add_argument("--walk-min", type=float, default=2.0)
    ap.add_argument("--tolerance-min", type=float, default=3.0)
    ap.add_argument("--street-walks", action="store_true",
                    help="reference walks between stops on the street graph of the extract "
                         "(steps left out, as the engine), not the straight line")
    args = ap.parse_args()
    pbf, zip_path, day = CASES["zheleznogorsk" if args.quick else "rhein-neckar"]
    if not pbf.exists():
        print(f"SKIP: {pbf} absent (shared test data)")
        return 0
    depart = 9 * 3600 + 30 * 60
    import os

    os.environ.setdefault("MAILLAGE_CACHE_DIR", tempfile.mkdtemp(prefix="bench-transit-"))
    from data_sources.transit import prepare_transit

    c0 = time.process_time()
    w0 = time.perf_counter()
    inputs = prepare_transit(pbf, [zip_path], day=day, depart_s=depart,
                             max_walk_min=args.walk_min, max_transfers=8,
                             walk_speed_kmh=WALK_MS * 3.6)
    build_s = time.perf_counter() - w0
    feed = inputs.feeds[0]
    print(f"feed: {len(feed.stops)} stops, {len(feed.stop_times)} stop_times on {day}, "
          f"build {build_s:.1f} s (wall)")
    rng = np.random.default_rng(7)
    served = feed.stop_times.loc[(feed.stop_times["departure_s"] > depart)
                                 & (feed.stop_times["departure_s"] < depart + 3600), "stop_id"]
    pool = np.unique(served.to_numpy())
    origins = list(rng.choice(pool, size=min(args.origins, pool.size), replace=False))
    dests = list(rng.choice(pool, size=min(args.destinations, pool.size), replace=False))
    stops = feed.stops.set_index("stop_id")
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)

    def pts(ids):
        return np.column_stack(tr.transform(stops.loc[ids, "stop_lon"].to_numpy(float),
                                            stops.loc[ids, "stop_lat"].to_numpy(float)))

    c1 = time.process_time()
    w1 = time.perf_counter()
    ours = inputs.engine.times(pts(origins), pts(dests), max_minutes=240).minutes
    matrix_cpu = time.process_time() - c1
    matrix_s = time.perf_counter() - w1

    c2 = time.process_time()
    w2 = time.perf_counter()
    p2 = prepare_feed(read_gtfs(zip_path), day)
    walk_graph = None
    if args.street_walks:
        from data_sources.walknet import read_walk_ways
        from diagnosis.travel.poussette import PoussetteProfile, poussette_graph

        walk_graph = poussette_graph(read_walk_ways(pbf), profile=PoussetteProfile(
            speed_kmh=WALK_MS * 3.6, rough_factor=1.0, steep_factor=1.0, drop_steps=True))
    g, index, node_time = time_expanded(p2, args.walk_min * 60, walk_graph)
    ref = reference_minutes(g, index, node_time, origins, dests, depart)
    ref_cpu = time.process_time() - c2
    ref_s = time.perf_counter() - w2

    both = np.isfinite(ours) & np.isfinite(ref)
    signed = (ours - ref)[both]
    diff = np.abs(signed)
    print(f"ours later than the reference by > tolerance: {(signed > args.tolerance_min).sum()}"
          f", earlier: {(signed < -args.tolerance_min).sum()}")
    equal = float((diff <= args.tolerance_min).mean()) if diff.size else float("nan")
    only_one = int((np.isfinite(ours) ^ np.isfinite(ref)).sum())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = (matrix_cpu + (c1 - c0) * 0) / max(ref_cpu, 1e-9)
    print(f"ours: matrix {matrix_s:.2f} s wall, {matrix_cpu:.2f} s CPU; reference (graph "
          f"{g.shape[0]} nodes, {g.nnz} edges, build + solve) {ref_s:.2f} s wall, "
          f"{ref_cpu:.2f} s CPU; pairs reached by one side only: {only_one}")
    print(f"RESULT ratio={ratio:.3f} build_s={build_s:.1f} matrix_s={matrix_s:.2f} "
          f"ref_s={ref_s:.2f} peak_mb={peak_mb:.0f} equal_share={equal:.3f} "
          f"max_abs_diff_min={(diff.max() if diff.size else float('nan')):.2f} "
          f"median_abs_diff_min={(np.median(diff) if diff.size else float('nan')):.2f} "
          f"pairs={int(both.sum())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
