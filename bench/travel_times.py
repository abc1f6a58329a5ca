"""Benchmark: travel times with a 30-minute cutoff, Maillage (scipy csgraph) vs networkx.

Run ``python bench/travel_times.py`` (about 3 minutes on a free core) or ``--quick``.
What a user runs instead: ``python -m diagnosis access --mode drive`` routes on the
territory's OSM graph with this code; an osmnx user would loop networkx's Dijkstra over
the facilities as done here.

The peer is what an osmnx user writes on the ``MultiDiGraph`` osmnx returns: points
snapped with ``ox.distance.nearest_nodes``, then networkx's Dijkstra with
``weight="travel_time"`` and ``cutoff`` on the reversed graph (``G.reverse(copy=False)``:
the time *from* each origin *to* a facility on a directed graph): one
``single_source_dijkstra_path_length`` per facility node for the origin x facility
matrix, and one ``multi_source_dijkstra_path_length`` from all facility nodes for the
time to the nearest facility. Ours is one :func:`diagnosis.travel.compute_travel_times`
call (snapping, matrix and nearest time) on a :class:`~diagnosis.travel.RoadGraph`
converted from the same MultiDiGraph (:func:`~diagnosis.travel.road_graph_from_networkx`);
that conversion is timed apart (``csr_*_s``) and not in the ratio. Our call is timed
cold, on the freshly converted graph (its k-d tree, components and reversed matrix are
built inside the timing); the best warm call is printed too.

Parts:

1. the shared real OSM extract (``../shared/data/test-only/osm/toulouse_compans_caffarelli.osm``,
   read in place, skipped with a message when absent), drive and walk, 15 minutes;
2. seeded synthetic road-like networks (``bench/_roads.py``) of about 100,000 and 500,000
   nodes, 100 facilities and 2,000 / 5,000 origins, 30 minutes;
3. a département-size matrix: 400 communes x 1,000 facilities, 30 minutes, on the
   100,000-node graph (ours only).

Every MultiDiGraph is built as osmnx builds it (projected to EPSG:2154 as
``ox.project_graph`` leaves it, without edge geometries): OSM-like node ids in random
order, ``x``/``y``/``street_count`` on nodes; ``osmid``, ``highway``, ``oneway``,
``reversed``, ``length``, ``speed_kph`` and ``travel_time`` (seconds, osmnx's formula) on
edges, a few parallel edges (key 1), reduced to its largest strongly connected part (what
``ox.truncate.largest_component(G, strongly=True)`` keeps), so that both sides snap every
point to the same node. The ratio uses CPU time (the machine is shared); wall times are
printed. Answers are compared in minutes over every cell (``inf == inf`` counts as 0) and
for the nearest facility; ``equal=True`` when the snapped nodes match and no difference
exceeds 1e-9 minutes.

Prints ``RESULT ratio=… max_abs_diff=… ratio_100k=… ratio_500k=… csr_100k_s=…
csr_500k_s=… equal=… load1=…`` (``ratio``: the worst synthetic ratio).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from _roads import road_like_arrays  # noqa: E402  (bench/ is the script's folder)

from diagnosis.travel import (  # noqa: E402
    RoadGraph,
    compute_travel_times,
    road_graph_from_networkx,
    snap_points,
)

TEST_ONLY = REPO.parent / "shared" / "data" / "test-only"
OSM_EXTRACT = TEST_ONLY / "osm" / "toulouse_compans_caffarelli.osm"
TOLERANCE_MIN = 1e-9


@dataclass
class Edges:
    """Directed edges of a road network (node positions) and node coordinates (EPSG:2154)."""

    tail: np.ndarray
    head: np.ndarray
    length_m: np.ndarray
    speed_kph: np.ndarray
    arterial: np.ndarray
    oneway: np.ndarray
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Part:
    """One part's figures: networkx CPU / ours CPU, largest difference, conversion time."""

    ratio: float
    diff: float
    csr_s: float
    equal: bool
    graph: RoadGraph


def strongly_connected(e: Edges) -> Edges:
    """Keep the largest strongly connected part, nodes renumbered 0..n-1."""
    n = e.x.size
    m = sp.csr_array((np.ones(e.tail.size), (e.tail, e.head)), shape=(n, n))
    _, labels = connected_components(m, directed=True, connection="strong")
    keep = labels == np.bincount(labels).argmax()
    new = np.full(n, -1)
    new[keep] = np.arange(int(keep.sum()))
    ok = keep[e.tail] & keep[e.head]
    return Edges(new[e.tail[ok]], new[e.head[ok]], e.length_m[ok], e.speed_kph[ok],
                 e.arterial[ok], e.oneway[ok], e.x[keep], e.y[keep])


def osmnx_style_graph(e: Edges, *, seed: int) -> nx.MultiDiGraph:
    """A MultiDiGraph laid out as osmnx builds it (projected to EPSG:2154)."""
    import osmnx as ox

    rng = np.random.default_rng(seed)
    n = e.x.size
    ids = rng.choice(np.arange(20_000_000, 20_000_000 + 40 * n), n, replace=False)
    # A slower parallel road for 1 % of the edges (osmnx keeps them as key 1).
    dup = rng.random(e.tail.size) < 0.01
    tail = np.concatenate([e.tail, e.tail[dup]])
    head = np.concatenate([e.head, e.head[dup]])
    key = np.concatenate([np.zeros(e.tail.size, int), np.ones(int(dup.sum()), int)])
    length = np.concatenate([e.length_m, e.length_m[dup] * 1.3])
    speed = np.concatenate([e.speed_kph, e.speed_kph[dup]])
    arterial = np.concatenate([e.arterial, e.arterial[dup]])
    oneway = np.concatenate([e.oneway, e.oneway[dup]])
    travel_time = (length / 1000) / (speed / (60 * 60))  # ox.add_edge_travel_times
    # Of a two-way street's two directed edges, osmnx marks the second as reversed.
    pair = np.minimum(tail, head) * n + np.maximum(tail, head)
    reverse = ~oneway & (tail > head)
    way = (np.unique(pair, return_inverse=True)[1].ravel() + 1_000_000).tolist()
    deg = np.bincount(np.concatenate([e.tail, e.head]), minlength=n) // 2
    g = nx.MultiDiGraph(crs="EPSG:2154", created_by=f"OSMnx {ox.__version__}",
                        simplified=True)
    order = rng.permutation(n)  # OSM data order: ids look random
    g.add_nodes_from((int(ids[i]), {"y": float(e.y[i]), "x": float(e.x[i]),
                                    "street_count": int(deg[i])}) for i in order)
    hwy = np.where(arterial, "primary", "residential").tolist()
    g.add_edges_from(
        (u, v, k, {"osmid": w, "highway": h, "oneway": bool(o), "reversed": bool(r),
                   "length": float(ln), "speed_kph": float(s), "travel_time": float(t)})
        for u, v, k, w, h, o, r, ln, s, t in zip(
            ids[tail].tolist(), ids[head].tolist(), key.tolist(), way, hwy,
            oneway.tolist(), reverse.tolist(), length.tolist(), speed.tolist(),
            travel_time.tolist(), strict=True))
    return g


def networkx_peer(g: nx.MultiDiGraph, origins: np.ndarray, facilities: np.ndarray,
                  max_minutes: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What an osmnx user writes: snap, then Dijkstra per facility and multi-source.

    Returns the matrix and the nearest time (minutes), and the snapped node ids.
    """
    import osmnx as ox

    o_nodes = ox.distance.nearest_nodes(g, X=origins[:, 0], Y=origins[:, 1])
    f_nodes = ox.distance.nearest_nodes(g, X=facilities[:, 0], Y=facilities[:, 1])
    rev = g.reverse(copy=False)
    limit = max_minutes * 60.0
    out = np.full((origins.shape[0], facilities.shape[0]), np.inf)
    o_list = o_nodes.tolist()
    done: dict[int, np.ndarray] = {}
    for j, node in enumerate(f_nodes.tolist()):
        if node not in done:
            dist = nx.single_source_dijkstra_path_length(rev, node, cutoff=limit,
                                                         weight="travel_time")
            done[node] = np.array([dist.get(o, np.inf) for o in o_list]) / 60.0
        out[:, j] = done[node]
    near = nx.multi_source_dijkstra_path_length(rev, set(f_nodes.tolist()), cutoff=limit,
                                                weight="travel_time")
    nearest = np.array([near.get(o, np.inf) for o in o_list]) / 60.0
    return out, nearest, o_nodes, f_nodes


def diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference, ``inf`` where one side reaches and the other does not."""
    if (np.isinf(a) != np.isinf(b)).any():
        return float("inf")
    both = np.isfinite(a)
    return float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0


def run_part(name: str, e: Edges, origins: np.ndarray, facilities: np.ndarray,
             max_minutes: float, *, mode: str = "drive", seed: int = 3) -> Part:
    """Build the MultiDiGraph, convert it, time ours and networkx on it, compare."""
    t0 = time.perf_counter()
    g = osmnx_style_graph(strongly_connected(e), seed=seed)
    build_s = time.perf_counter() - t0
    c0, t0 = time.process_time(), time.perf_counter()
    graph = road_graph_from_networkx(g, mode=mode)
    csr_cpu, csr_s = time.process_time() - c0, time.perf_counter() - t0
    c0, t0 = time.process_time(), time.perf_counter()
    tt = compute_travel_times(graph, origins, facilities, max_minutes=max_minutes)
    ours_cpu, ours_s = time.process_time() - c0, time.perf_counter() - t0
    warm_cpu = np.inf
    for _ in range(2):
        c0 = time.process_time()
        compute_travel_times(graph, origins, facilities, max_minutes=max_minutes)
        warm_cpu = min(warm_cpu, time.process_time() - c0)
    c0, t0 = time.process_time(), time.perf_counter()
    ref, ref_nearest, o_nodes, f_nodes = networkx_peer(g, origins, facilities, max_minutes)
    peer_cpu, peer_s = time.process_time() - c0, time.perf_counter() - t0
    snap_same = bool(
        np.array_equal(graph.osm_ids[snap_points(graph, origins).node], o_nodes)
        and np.array_equal(graph.osm_ids[snap_points(graph, facilities).node], f_nodes))
    d = max(diff(tt.minutes, ref), diff(tt.nearest_minutes, ref_nearest))
    print(f"[{name}] {graph.n_nodes:,} nodes, {g.number_of_edges():,} MultiDiGraph edges "
          f"({graph.n_edges:,} after merging parallel ones), {origins.shape[0]:,} origins x "
          f"{facilities.shape[0]:,} facilities, cutoff {max_minutes:g} min "
          f"({tt.params['direction']}); {np.isfinite(tt.minutes).mean():.1%} pairs in reach")
    print(f"[{name}]   MultiDiGraph built in {build_s:.2f} s (not timed); CSR conversion "
          f"{csr_s:.2f} s wall, {csr_cpu:.2f} s CPU (apart)")
    print(f"[{name}]   CPU: ours {ours_cpu:.3f} s cold ({warm_cpu:.3f} s warm) | networkx "
          f"{peer_cpu:.2f} s | ratio {peer_cpu / ours_cpu:.1f} ({peer_cpu / warm_cpu:.1f} warm, "
          f"{peer_cpu / (ours_cpu + csr_cpu):.1f} with the conversion)")
    print(f"[{name}]   wall: ours {ours_s:.3f} s | networkx {peer_s:.2f} s; same snapped "
          f"nodes: {snap_same}; max_abs_diff {d:g} min (load1 {os.getloadavg()[0]:.2f})",
          flush=True)
    return Part(ratio=peer_cpu / ours_cpu, diff=d, csr_s=csr_s,
                equal=snap_same and d <= TOLERANCE_MIN, graph=graph)


def synthetic(side: int, *, seed: int) -> Edges:
    a = road_like_arrays(side, seed=seed)
    return Edges(a.tail, a.head, a.length_m, a.speed_kph, a.arterial, a.oneway, a.x, a.y)


def osm_edges(mode: str) -> Edges:
    """The real extract's road graph (read by osmnx in ``data_sources.osm``) as edges."""
    from data_sources.osm import road_graph_from_osm_file

    g = road_graph_from_osm_file(OSM_EXTRACT, mode=mode)
    coo = g.travel_time_s.tocoo()
    length = np.hypot(g.x[coo.row] - g.x[coo.col], g.y[coo.row] - g.y[coo.col])
    length = np.maximum(length, 1.0)
    speed = length / np.maximum(coo.data, 1e-3) * 3.6
    oneway = g.travel_time_s.T.tocsr()[coo.row, coo.col] == 0
    return Edges(coo.row.astype(np.int64), coo.col.astype(np.int64), length, speed,
                 np.zeros(coo.nnz, bool), np.asarray(oneway).ravel(), g.x, g.y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small version (seconds)")
    args = parser.parse_args()
    diffs: list[float] = []
    equal = True

    # 1. Real OSM extract, read in place.
    if OSM_EXTRACT.exists():
        for mode in ("drive", "walk"):
            e = osm_edges(mode)
            rng = np.random.default_rng(1)
            nodes_xy = np.column_stack([e.x, e.y])
            origins = nodes_xy + rng.normal(0, 15, nodes_xy.shape)
            facilities = nodes_xy[rng.choice(e.x.size, min(20, e.x.size), replace=False)]
            r = run_part(f"osm {mode}", e, origins, facilities, 15.0, mode=mode)
            diffs.append(r.diff)
            equal &= r.equal
    else:
        print(f"[osm] skipped: {OSM_EXTRACT} is absent (needs ../shared/data beside the repo)")

    # 2. Synthetic road-like networks, 30 minutes.
    sizes = {"20k": (142, 40, 500)} if args.quick else {"100k": (317, 100, 2000),
                                                        "500k": (708, 100, 5000)}
    ratios: dict[str, float] = {}
    csr: dict[str, float] = {}
    g100 = None
    for label, (side, n_fac, n_orig) in sizes.items():
        e = synthetic(side, seed=42)
        rng = np.random.default_rng(7)
        lo = np.array([e.x.min(), e.y.min()])
        hi = np.array([e.x.max(), e.y.max()])
        facilities = rng.uniform(lo, hi, (n_fac, 2))
        origins = rng.uniform(lo, hi, (n_orig, 2))
        r = run_part(f"synthetic {label}", e, origins, facilities, 30.0)
        ratios[label], csr[label] = r.ratio, r.csr_s
        diffs.append(r.diff)
        equal &= r.equal
        if g100 is None:
            g100 = r.graph

    # 3. Département-size matrix (ours only).
    assert g100 is not None
    rng = np.random.default_rng(11)
    lo = np.array([g100.x.min(), g100.y.min()])
    hi = np.array([g100.x.max(), g100.y.max()])
    communes, facilities = rng.uniform(lo, hi, (400, 2)), rng.uniform(lo, hi, (1000, 2))
    c0, t0 = time.process_time(), time.perf_counter()
    tt = compute_travel_times(g100, communes, facilities, max_minutes=30.0)
    print(f"[departement] 400 communes x 1,000 facilities, cutoff 30 min on "
          f"{g100.n_nodes:,} nodes: {time.perf_counter() - t0:.3f} s wall, "
          f"{time.process_time() - c0:.3f} s CPU "
          f"({tt.params['direction']}, {np.isfinite(tt.minutes).mean():.1%} pairs in reach)")

    fields = " ".join(f"ratio_{k}={v:.2f}" for k, v in ratios.items())
    fields += " " + " ".join(f"csr_{k}_s={v:.2f}" for k, v in csr.items())
    print(f"RESULT ratio={min(ratios.values()):.2f} max_abs_diff={max(diffs):g} {fields} "
          f"equal={equal} load1={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
