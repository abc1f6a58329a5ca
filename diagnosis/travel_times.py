"""Travel times from communes to facilities, on a road graph or as the crow flies.

Why one module of about 1,000 lines: the road graph, the snapping, the sparse pair
container (:class:`TravelTimes`) and both engines share one data format and its
invariants (cutoffs, explicit zeros, flagged points); splitting them would scatter it.

One core path on matrices: a road network is a :class:`RoadGraph` (a CSR matrix of
edge travel times in seconds, nodes renumbered along a Hilbert curve so that
neighbouring nodes sit close in memory), points are snapped to its nodes with a
k-d tree, and :func:`scipy.sparse.csgraph.dijkstra` computes the times with a cutoff,
from whichever side has fewer points. When no road graph is available,
:func:`crow_fly_travel_times` gives an estimate from straight-line distances, and every
result carries its ``engine`` so outputs can say which one was used.

Coordinates are metres in EPSG:2154 (Lambert-93). Times are minutes; ``np.inf`` means
"not reachable within the cutoff" (or not reachable at all, or a point too far from
any road: see :class:`TravelTimes` for the counts).

See Also
--------
guides/accessibilite.md : the method guide (in French).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from diagnosis.errors import InputError, check_positive
from diagnosis.settings import METRIC_CRS

logger = logging.getLogger(__name__)

#: Travel modes a road graph can be built for.
MODES: tuple[str, ...] = ("drive", "walk")

#: Walking speed (km/h) used for walk graphs and the crow-fly walk estimate. A common
#: planning value for adults (pedestrian speeds are usually quoted between 4 and 5 km/h);
#: with a pram or a toddler it is lower: change it if your public walks slowly.
WALK_SPEED_KMH = 4.5

#: Average door-to-door driving speed (km/h) for the crow-fly estimate. An assumption for
#: rural and peri-urban France (mix of departmental roads, village crossings and
#: parking), not a measured value: use a road graph when you can.
DRIVE_SPEED_KMH = 40.0

#: Road distance / straight-line distance. About 1.3 ± 0.1 on large road networks
#: (Wang, Bette, Schreckenberg & Guhr, "How much longer do you have to drive than the
#: crow has to fly?", npj Complexity 1, 22, 2024); shorter trips are often more winding.
DETOUR_FACTOR = 1.3

#: Points farther than this (metres) from the nearest graph node are flagged, not snapped.
DEFAULT_MAX_SNAP_M = 1_000.0

#: Engine labels carried by :class:`TravelTimes`.
ENGINE_ROAD = "road_network"
ENGINE_CROW_FLY = "crow_fly"

#: French labels of the engines and modes, for legends and reports.
ENGINE_LABELS: dict[str, str] = {
    ENGINE_ROAD: "temps de trajet sur le réseau routier OpenStreetMap",
    ENGINE_CROW_FLY: "estimation à vol d'oiseau (distance × facteur de détour, vitesse moyenne)",
}
MODE_LABELS: dict[str, str] = {"drive": "en voiture", "walk": "à pied"}

# Largest (sources x nodes) block a single Dijkstra call may return (float64 cells):
# 2 M cells = 16 MB, small enough to stay near the CPU caches. Sources are processed in
# chunks below this size and only the needed columns are kept.
_CHUNK_CELLS = 2_000_000
_HILBERT_ORDER = 16


# --------------------------------------------------------------------------------------
# Road graph
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RoadGraph:
    """A directed road network ready for shortest paths.

    Build it with :func:`road_graph_from_networkx` (osmnx graphs) or
    :func:`road_graph_from_arrays` (synthetic graphs); both renumber the nodes along a
    space-filling curve and keep the fastest of parallel edges.

    Attributes
    ----------
    travel_time_s
        ``(n, n)`` CSR matrix: ``travel_time_s[u, v]`` is the time in seconds of the
        edge from node ``u`` to node ``v``. Stored zeros are zero-time edges.
    x, y
        Node coordinates in metres, EPSG:2154.
    osm_ids
        Original node ids (OSM node ids for osmnx graphs), int64.
    mode
        ``"drive"`` or ``"walk"``.
    """

    travel_time_s: sp.csr_array
    x: np.ndarray
    y: np.ndarray
    osm_ids: np.ndarray
    mode: str
    crs: str = field(default=METRIC_CRS)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode={self.mode!r} is not a travel mode; use one of {MODES}")
        n = self.travel_time_s.shape[0]
        if self.travel_time_s.shape != (n, n):
            raise InputError(
                f"travel_time_s must be square; got shape {self.travel_time_s.shape!r}"
            )
        for name in ("x", "y", "osm_ids"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise InputError(
                    f"{name} must have one value per node ({n}); got shape {arr.shape!r}"
                )

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.travel_time_s.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of directed edges (parallel edges merged)."""
        return int(self.travel_time_s.nnz)

    @cached_property
    def reversed_travel_time_s(self) -> sp.csr_array:
        """Transposed matrix: edge ``v -> u`` of this matrix is edge ``u -> v`` of the graph."""
        return sp.csr_array(self.travel_time_s.T.tocsr())

    @cached_property
    def node_tree(self) -> cKDTree:
        """k-d tree over node coordinates, for snapping."""
        return cKDTree(np.column_stack([self.x, self.y]))

    @cached_property
    def main_component(self) -> np.ndarray:
        """Positions of the nodes of the largest strongly connected component.

        From any of these nodes every other one can be reached and vice versa; points
        are snapped to them in preference (see :func:`snap_points`), which avoids
        one-way dead ends at the edge of an extract.
        """
        _, labels = connected_components(self.travel_time_s, directed=True,
                                         connection="strong")
        labels = np.asarray(labels)
        biggest = np.bincount(labels).argmax() if labels.size else 0
        return np.flatnonzero(labels == biggest)

    @cached_property
    def main_tree(self) -> cKDTree:
        """k-d tree over the nodes of :attr:`main_component`."""
        nodes = self.main_component
        return cKDTree(np.column_stack([self.x[nodes], self.y[nodes]]))

    @cached_property
    def weak_components(self) -> np.ndarray:
        """Weakly connected component label of every node."""
        _, labels = connected_components(self.travel_time_s, directed=True, connection="weak")
        return np.asarray(labels)


def road_graph_from_arrays(
    tail: np.ndarray,
    head: np.ndarray,
    travel_time_s: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    mode: str,
    osm_ids: np.ndarray | None = None,
) -> RoadGraph:
    """Build a :class:`RoadGraph` from edge arrays.

    Parameters
    ----------
    tail, head
        Node positions (0 … n-1) of each directed edge's start and end.
    travel_time_s
        Travel time of each edge in seconds (finite, >= 0).
    x, y
        Node coordinates in metres, EPSG:2154.
    mode
        ``"drive"`` or ``"walk"``.
    osm_ids
        Original node ids; defaults to ``0 … n-1``.

    Returns
    -------
    RoadGraph
        Nodes renumbered along a Hilbert curve (``osm_ids`` keeps the original ids),
        parallel edges reduced to the fastest one, self-loops dropped.

    Raises
    ------
    InputError
        Mismatched lengths, node positions out of range, negative or non-finite times.

    Examples
    --------
    >>> g = road_graph_from_arrays([0, 1], [1, 2], [60.0, 30.0], [0.0, 100.0, 200.0],
    ...                            [0.0, 0.0, 0.0], mode="drive")
    >>> g.n_nodes, g.n_edges
    (3, 2)
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = x.shape[0]
    if x.ndim != 1 or y.shape != x.shape:
        raise InputError(f"x and y must be 1-D of the same length; got {x.shape!r} and {y.shape!r}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InputError("x and y must be finite coordinates in EPSG:2154")
    tail = np.asarray(tail, dtype=np.int64)
    head = np.asarray(head, dtype=np.int64)
    secs = np.asarray(travel_time_s, dtype=float)
    if not (tail.shape == head.shape == secs.shape) or tail.ndim != 1:
        raise InputError(
            f"tail, head and travel_time_s must be 1-D of the same length; got "
            f"{tail.shape!r}, {head.shape!r}, {secs.shape!r}"
        )
    if tail.size and (min(tail.min(), head.min()) < 0 or max(tail.max(), head.max()) >= n):
        raise InputError(f"tail/head hold node positions outside 0..{n - 1}")
    bad = ~np.isfinite(secs) | (secs < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"travel_time_s must be finite and >= 0; edge {i} ({int(tail[i])}->{int(head[i])}) "
            f"has {float(secs[i])!r}"
        )
    ids = np.arange(n, dtype=np.int64) if osm_ids is None else np.asarray(osm_ids, dtype=np.int64)
    if ids.shape != (n,):
        raise InputError(f"osm_ids must have one id per node ({n}); got shape {ids.shape!r}")

    # Spatial renumbering: nodes close on the ground become close in memory.
    order = np.argsort(_hilbert_keys(x, y), kind="stable")
    new_pos = np.empty(n, dtype=np.int64)
    new_pos[order] = np.arange(n, dtype=np.int64)
    t, h = new_pos[tail], new_pos[head]

    keep = t != h
    t, h, secs = t[keep], h[keep], secs[keep]
    # Fastest of parallel edges: sort by (tail, head, time), keep the first of each pair.
    srt = np.lexsort((secs, h, t))
    t, h, secs = t[srt], h[srt], secs[srt]
    first = np.ones(t.size, dtype=bool)
    first[1:] = (t[1:] != t[:-1]) | (h[1:] != h[:-1])
    t, h, secs = t[first], h[first], secs[first]
    # Rows already sorted: build CSR directly so stored zeros (zero-time edges) survive.
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(t, minlength=n), out=indptr[1:])
    matrix = sp.csr_array((secs, h.astype(np.int32), indptr.astype(np.int32)), shape=(n, n))
    return RoadGraph(
        travel_time_s=matrix,
        x=x[order].copy(),
        y=y[order].copy(),
        osm_ids=ids[order].copy(),
        mode=mode,
    )


def road_graph_from_networkx(graph: Any, *, mode: str) -> RoadGraph:
    """Convert an osmnx ``MultiDiGraph`` with ``travel_time`` edge attributes.

    Parameters
    ----------
    graph
        A networkx (Multi)DiGraph as osmnx returns it, after
        ``ox.add_edge_travel_times`` (seconds). Node attributes ``x``/``y`` are read in
        the CRS named by ``graph.graph["crs"]`` (WGS84 if absent) and projected to
        EPSG:2154.
    mode
        ``"drive"`` or ``"walk"``.

    Returns
    -------
    RoadGraph

    Raises
    ------
    InputError
        Empty graph, an edge without ``travel_time``, node ids that are not integers.
    """
    if mode not in MODES:
        raise InputError(f"mode={mode!r} is not a travel mode; use one of {MODES}")
    nodes = list(graph.nodes)
    if not nodes:
        raise InputError("graph has no nodes; load a larger area or check the OSM query")
    try:
        ids = np.asarray(nodes, dtype=np.int64)
    except (TypeError, ValueError):
        raise InputError(
            f"graph node ids must be integers (OSM ids); got e.g. {nodes[0]!r}. "
            "Relabel the nodes with integers first."
        ) from None
    xs = np.fromiter((d["x"] for _, d in graph.nodes(data=True)), dtype=float, count=len(nodes))
    ys = np.fromiter((d["y"] for _, d in graph.nodes(data=True)), dtype=float, count=len(nodes))
    crs = graph.graph.get("crs", "EPSG:4326")
    xs, ys = _to_metric(xs, ys, crs)

    pos = {node: i for i, node in enumerate(nodes)}
    edges = list(graph.edges(data="travel_time"))
    tails = np.fromiter((pos[u] for u, _, _ in edges), dtype=np.int64, count=len(edges))
    heads = np.fromiter((pos[v] for _, v, _ in edges), dtype=np.int64, count=len(edges))
    secs = np.array([np.nan if t is None else t for _, _, t in edges], dtype=float)
    if np.isnan(secs).any():
        i = int(np.flatnonzero(np.isnan(secs))[0])
        raise InputError(
            f"graph edge {edges[i][0]!r}->{edges[i][1]!r} has no 'travel_time' attribute; "
            "call ox.add_edge_speeds and ox.add_edge_travel_times first"
        )
    return road_graph_from_arrays(tails, heads, secs, xs, ys, mode=mode, osm_ids=ids)


def _to_metric(xs: np.ndarray, ys: np.ndarray, crs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Project coordinates from ``crs`` to EPSG:2154 (no-op if already there)."""
    from pyproj import CRS, Transformer

    src = CRS.from_user_input(crs)
    dst = CRS.from_user_input(METRIC_CRS)
    if src.equals(dst):
        return xs, ys
    tr = Transformer.from_crs(src, dst, always_xy=True)
    px, py = tr.transform(xs, ys)
    return np.asarray(px, dtype=float), np.asarray(py, dtype=float)


def _hilbert_keys(x: np.ndarray, y: np.ndarray, order: int = _HILBERT_ORDER) -> np.ndarray:
    """Position of each point along a Hilbert curve over the points' bounding box.

    Examples
    --------
    >>> _hilbert_keys(np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.0, 1.0, 1.0, 0.0]), 1)
    array([0, 1, 2, 3])
    """
    side = (1 << order) - 1
    span_x = max(float(np.ptp(x)), 1e-9) if x.size else 1.0
    span_y = max(float(np.ptp(y)), 1e-9) if y.size else 1.0
    xi = np.rint((x - x.min()) / span_x * side).astype(np.int64) if x.size else x.astype(np.int64)
    yi = np.rint((y - y.min()) / span_y * side).astype(np.int64) if y.size else y.astype(np.int64)
    n = 1 << order
    d = np.zeros(x.shape, dtype=np.int64)
    s = n >> 1
    while s > 0:
        rx = (xi & s) > 0
        ry = (yi & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx
        xi = np.where(flip, n - 1 - xi, xi)
        yi = np.where(flip, n - 1 - yi, yi)
        swap = ~ry
        xi, yi = np.where(swap, yi, xi), np.where(swap, xi, yi)
        s >>= 1
    return d


# --------------------------------------------------------------------------------------
# Snapping
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SnappedPoints:
    """Nearest graph node of each point.

    Attributes
    ----------
    node
        Node position in the graph (meaningless where ``flagged``).
    distance_m
        Straight-line distance from the point to that node, metres.
    flagged
        True where the point is farther than ``max_snap_m`` from any node: such points
        get no travel time (``inf``) instead of a time from a node kilometres away.
    max_snap_m
        The limit used.
    """

    node: np.ndarray
    distance_m: np.ndarray
    flagged: np.ndarray
    max_snap_m: float


def snap_points(
    graph: RoadGraph, xy_2154: np.ndarray, *, max_snap_m: float = DEFAULT_MAX_SNAP_M
) -> SnappedPoints:
    """Snap points to a graph node, flagging those too far from any road.

    Each point goes to its nearest node of the graph's largest strongly connected
    component (:attr:`RoadGraph.main_component`) when that node is within
    ``max_snap_m``: this keeps points off one-way dead ends and small broken pieces of
    the network. Otherwise it goes to its nearest node of any component (an island
    network stays an island: its pairs with the mainland count as disconnected), and
    it is flagged when even that node is farther than ``max_snap_m``.

    Parameters
    ----------
    graph
        The road graph.
    xy_2154
        ``(n, 2)`` array of x/y in metres, EPSG:2154.
    max_snap_m
        Points farther than this from every node are flagged.

    Returns
    -------
    SnappedPoints

    Examples
    --------
    >>> g = road_graph_from_arrays([0, 1], [1, 0], [60.0, 60.0], [0.0, 100.0], [0.0, 0.0],
    ...                            mode="walk")
    >>> s = snap_points(g, np.array([[10.0, 0.0], [5000.0, 0.0]]), max_snap_m=500)
    >>> s.distance_m.tolist(), s.flagged.tolist()
    ([10.0, 4900.0], [False, True])
    """
    xy = _as_xy(xy_2154, "xy_2154")
    limit = check_positive(max_snap_m, "max_snap_m")
    dist, node = graph.node_tree.query(xy, k=1)
    dist = np.asarray(dist, dtype=float)
    node = np.asarray(node, dtype=np.int64)
    main = graph.main_component
    outside = ~np.isin(node, main)
    if outside.any() and main.size:
        d_main, i_main = graph.main_tree.query(xy[outside], k=1)
        d_main = np.asarray(d_main, dtype=float)
        use = d_main <= limit
        idx = np.flatnonzero(outside)[use]
        node[idx] = main[np.asarray(i_main)[use]]
        dist[idx] = d_main[use]
    return SnappedPoints(node=node, distance_m=dist, flagged=dist > limit, max_snap_m=limit)


# --------------------------------------------------------------------------------------
# Travel times: sparse pairs within the cutoff, plus the nearest destination
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TravelTimes:
    """Travel times from origins (rows) to destinations (columns), in minutes, sparse.

    Only the pairs within the cutoff are stored, so memory grows with the pairs within
    reach, not with origins × destinations. Without a cutoff (crow-fly with
    ``max_minutes=None``) every pair is stored.

    Attributes
    ----------
    within
        ``(n_origins, n_destinations)`` CSR matrix of minutes. A stored entry is a pair
        within reach, **including stored zeros** (a destination at the origin's own
        point takes 0 minutes); an absent entry is out of reach: beyond the cutoff,
        unreachable, or either point flagged as too far from the network.
    nearest_minutes
        ``(n_origins,)`` minutes to the nearest destination (``np.inf`` when none is
        within reach), from a k-d tree query (crow-fly) or a multi-source Dijkstra
        (road), not from the pairs.
    origin_snap_m, destination_snap_m
        Distance from each point to its network node (0 for crow-fly). This walk to the
        network is *not* added to the times.
    origin_flagged, destination_flagged
        Points farther than ``max_snap_m`` from any road (always False for crow-fly).
    n_beyond_cutoff
        Pairs of unflagged points in the same connected part of the network with no
        path within ``max_minutes`` (or, rarely, no path at all because of one-way
        streets outside the main component).
    n_disconnected
        Pairs of unflagged points in different connected parts of the network.
    n_flagged_pairs
        Pairs where the origin or the destination is flagged.
    engine
        :data:`ENGINE_ROAD` or :data:`ENGINE_CROW_FLY`.
    mode
        ``"drive"`` or ``"walk"``.
    max_minutes
        Cutoff (None: no cutoff).
    params
        Other parameters (snap limit, speed and detour factor for crow-fly…).
    """

    within: sp.csr_array
    nearest_minutes: np.ndarray
    origin_snap_m: np.ndarray
    destination_snap_m: np.ndarray
    origin_flagged: np.ndarray
    destination_flagged: np.ndarray
    n_beyond_cutoff: int
    n_disconnected: int
    n_flagged_pairs: int
    engine: str
    mode: str
    max_minutes: float | None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_o, n_d = self.within.shape
        if self.nearest_minutes.shape != (n_o,):
            raise InputError(
                f"nearest_minutes must have one value per origin ({n_o}); got shape "
                f"{self.nearest_minutes.shape!r}"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_origins, n_destinations)``."""
        return (int(self.within.shape[0]), int(self.within.shape[1]))

    @property
    def n_pairs_within(self) -> int:
        """Number of stored pairs (within reach)."""
        return int(self.within.nnz)

    @property
    def minutes(self) -> np.ndarray:
        """Dense ``(n_origins, n_destinations)`` minutes, ``np.inf`` where out of reach.

        Built on each access from :attr:`within`: costs 8 bytes per origin × destination
        pair, so use it only for small matrices (one site, a few facilities); the
        accessibility core works on :attr:`within`.
        """
        return sparse_to_dense_minutes(self.within)

    @property
    def n_unreachable(self) -> int:
        """Pairs without a time: beyond the cutoff, disconnected or flagged."""
        return self.n_beyond_cutoff + self.n_disconnected + self.n_flagged_pairs

    @property
    def label(self) -> str:
        """French description of how the times were obtained, for legends and reports."""
        base = ENGINE_LABELS.get(self.engine, self.engine)
        text = f"{base}, {MODE_LABELS.get(self.mode, self.mode)}"
        if self.engine == ENGINE_CROW_FLY:
            speed = float(self.params.get("speed_kmh", np.nan))
            detour = float(self.params.get("detour_factor", np.nan))
            access = float(self.params.get("access_min", 0.0))
            text += (f" ({_fr_number(access)} min d'accès + " if access else " (") + (
                f"{_fr_number(speed)} km/h, détour × {_fr_number(detour)})")
        return text

    def summary(self) -> dict[str, Any]:
        """Counts and parameters as a flat dict (for tables, logs and reports)."""
        return {
            "engine": self.engine,
            "mode": self.mode,
            "max_minutes": self.max_minutes,
            "n_origins": self.shape[0],
            "n_destinations": self.shape[1],
            "n_pairs_within": self.n_pairs_within,
            "n_origins_flagged": int(self.origin_flagged.sum()),
            "n_destinations_flagged": int(self.destination_flagged.sum()),
            "n_pairs_beyond_cutoff": self.n_beyond_cutoff,
            "n_pairs_disconnected": self.n_disconnected,
            "n_pairs_flagged": self.n_flagged_pairs,
            **dict(self.params),
        }


def pairs_to_csr(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]
) -> sp.csr_array:
    """CSR matrix of ``values`` at ``(rows, cols)``, keeping stored zeros.

    scipy's constructors may drop or sum entries; this one sorts the pairs and builds
    the CSR arrays directly, so a 0-minute pair stays a stored (reachable) entry.
    Pairs must be unique.

    Examples
    --------
    >>> m = pairs_to_csr(np.array([1, 0]), np.array([0, 1]), np.array([0.0, 2.5]), (2, 2))
    >>> m.nnz, m.toarray().tolist()
    (2, [[0.0, 2.5], [0.0, 0.0]])
    """
    n_rows, n_cols = int(shape[0]), int(shape[1])
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    index_dtype = np.int32 if max(n_cols, rows.size) < 2**31 - 1 else np.int64
    return sp.csr_array(
        (values[order], cols[order].astype(index_dtype), indptr.astype(index_dtype)),
        shape=(n_rows, n_cols),
    )


def _stack_rows(parts: list[sp.csr_array], n_cols: int) -> sp.csr_array:
    """Stack CSR row blocks (stored zeros kept), in order."""
    if len(parts) == 1:
        return parts[0]
    nnz = sum(int(p.nnz) for p in parts)
    n_rows = sum(int(p.shape[0]) for p in parts)
    index_dtype = np.int32 if max(n_cols, nnz) < 2**31 - 1 else np.int64
    indptr = np.zeros(n_rows + 1, dtype=index_dtype)
    row = offset = 0
    for p in parts:
        k = int(p.shape[0])
        indptr[row + 1:row + k + 1] = np.asarray(p.indptr[1:], dtype=np.int64) + offset
        row += k
        offset += int(p.nnz)
    data = np.concatenate([p.data for p in parts])
    indices = np.concatenate([np.asarray(p.indices, dtype=index_dtype) for p in parts])
    return sp.csr_array((data, indices, indptr), shape=(n_rows, n_cols))


def sparse_to_dense_minutes(within: Any) -> np.ndarray:
    """Dense minutes from a sparse matrix of pairs within reach (absent = ``np.inf``).

    Examples
    --------
    >>> m = pairs_to_csr(np.array([0]), np.array([1]), np.array([0.0]), (1, 2))
    >>> sparse_to_dense_minutes(m).tolist()
    [[inf, 0.0]]
    """
    coo = sp.coo_array(within)
    out = np.full(coo.shape, np.inf)
    out[coo.row, coo.col] = coo.data
    return out


def _expand_groups(
    key: np.ndarray, inv: np.ndarray, n_groups: int, *others: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Replace each group index in ``key`` by every member of that group.

    ``inv[p]`` is the group of member ``p``; the arrays in ``others`` are repeated
    alongside. Returns ``(members, *others)``.

    Examples
    --------
    >>> _expand_groups(np.array([1, 0]), np.array([0, 1, 1]), 2, np.array([7.0, 8.0]))
    (array([1, 2, 0]), array([7., 7., 8.]))
    """
    order = np.argsort(inv, kind="stable")
    counts = np.bincount(inv, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rep = counts[key]
    total = int(rep.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(rep) - rep, rep)
    members = order[np.repeat(starts[key], rep) + offsets]
    return (members, *(np.repeat(o, rep) for o in others))


def compute_travel_times(
    graph: RoadGraph,
    origins_xy: np.ndarray,
    destinations_xy: np.ndarray,
    *,
    max_minutes: float,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> TravelTimes:
    """Travel times on the road graph between origins and destinations within a cutoff.

    Dijkstra runs with a cutoff from the smaller side: from the destinations on the
    reversed graph when there are fewer destination nodes (giving the time *from* each
    origin *to* each destination on a directed graph), otherwise from the origins.
    Sources go in chunks; of each chunk only the pairs within the cutoff are kept, so
    memory grows with the pairs within reach. The time to the nearest destination comes
    from one multi-source Dijkstra (``min_only=True``) on the reversed graph.

    Parameters
    ----------
    graph
        The road graph.
    origins_xy, destinations_xy
        ``(n, 2)`` arrays of x/y in metres, EPSG:2154.
    max_minutes
        Cutoff; pairs above it are not stored (``np.inf`` in :attr:`TravelTimes.minutes`).
    max_snap_m
        Points farther than this from every node are flagged and get no time.

    Returns
    -------
    TravelTimes
        With ``engine="road_network"``.

    Raises
    ------
    InputError
        Empty or badly shaped point arrays, non-positive ``max_minutes`` or ``max_snap_m``.

    Examples
    --------
    Three nodes 1 km apart on a line, one minute per edge, one way 0 -> 1 -> 2:

    >>> g = road_graph_from_arrays([0, 1], [1, 2], [60.0, 60.0], [0.0, 1000.0, 2000.0],
    ...                            [0.0, 0.0, 0.0], mode="drive")
    >>> tt = compute_travel_times(g, np.array([[0.0, 0.0], [2000.0, 0.0]]),
    ...                           np.array([[2000.0, 0.0]]), max_minutes=10)
    >>> tt.minutes.tolist(), tt.n_pairs_within, tt.nearest_minutes.tolist()
    ([[2.0], [0.0]], 2, [2.0, 0.0])
    >>> compute_travel_times(g, np.array([[2000.0, 0.0]]), np.array([[0.0, 0.0]]),
    ...                      max_minutes=10).minutes.tolist()
    [[inf]]
    """
    o_xy = _as_xy(origins_xy, "origins_xy")
    d_xy = _as_xy(destinations_xy, "destinations_xy")
    cutoff = check_positive(max_minutes, "max_minutes")
    so = snap_points(graph, o_xy, max_snap_m=max_snap_m)
    sd = snap_points(graph, d_xy, max_snap_m=max_snap_m)
    ok_o = ~so.flagged
    ok_d = ~sd.flagged
    o_nodes, o_inv = np.unique(so.node[ok_o], return_inverse=True)
    d_nodes, d_inv = np.unique(sd.node[ok_d], return_inverse=True)
    o_inv, d_inv = o_inv.ravel(), d_inv.ravel()
    limit_s = cutoff * 60.0

    n_o, n_d = o_xy.shape[0], d_xy.shape[0]
    nearest = np.full(n_o, np.inf)
    n_beyond = n_disconnected = 0
    if o_nodes.size and d_nodes.size:
        if d_nodes.size < o_nodes.size:
            d_pos, o_pos, secs = _dijkstra_pairs(graph.reversed_travel_time_s, d_nodes,
                                                 o_nodes, limit_s)
            direction = "destinations_to_origins_on_reversed_graph"
        else:
            o_pos, d_pos, secs = _dijkstra_pairs(graph.travel_time_s, o_nodes, d_nodes,
                                                 limit_s)
            direction = "origins_to_destinations"
        # Pairs of distinct nodes -> pairs of points (several points may share a node).
        o_pt, d_pos, secs = _expand_groups(o_pos, o_inv, o_nodes.size, d_pos, secs)
        d_pt, o_pt, secs = _expand_groups(d_pos, d_inv, d_nodes.size, o_pt, secs)
        rows = np.flatnonzero(ok_o)[o_pt]
        cols = np.flatnonzero(ok_d)[d_pt]
        within = pairs_to_csr(rows, cols, secs / 60.0, (n_o, n_d))
        # Pairs in different weakly connected parts can never be joined.
        comp = graph.weak_components
        n_comp = int(comp.max()) + 1
        per_o = np.bincount(comp[so.node[ok_o]], minlength=n_comp).astype(np.int64)
        per_d = np.bincount(comp[sd.node[ok_d]], minlength=n_comp).astype(np.int64)
        total = int(ok_o.sum()) * int(ok_d.sum())
        n_disconnected = total - int(per_o @ per_d)
        n_beyond = total - within.nnz - n_disconnected
        dist = dijkstra(graph.reversed_travel_time_s, directed=True, indices=d_nodes,
                        limit=limit_s, min_only=True)
        nearest[ok_o] = np.asarray(dist)[so.node[ok_o]] / 60.0
    else:
        direction = "none"
        within = pairs_to_csr(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0),
                              (n_o, n_d))
    n_flagged_pairs = n_o * n_d - int(ok_o.sum()) * int(ok_d.sum())
    logger.debug(
        "travel times %s x %s (%s): %d within, %d beyond cutoff, %d disconnected, "
        "%d flagged", n_o, n_d, direction, within.nnz, n_beyond, n_disconnected,
        n_flagged_pairs,
    )
    return TravelTimes(
        within=within,
        nearest_minutes=nearest,
        origin_snap_m=so.distance_m,
        destination_snap_m=sd.distance_m,
        origin_flagged=so.flagged,
        destination_flagged=sd.flagged,
        n_beyond_cutoff=n_beyond,
        n_disconnected=n_disconnected,
        n_flagged_pairs=n_flagged_pairs,
        engine=ENGINE_ROAD,
        mode=graph.mode,
        max_minutes=cutoff,
        params={"max_snap_m": so.max_snap_m, "direction": direction},
    )


def _dijkstra_pairs(
    matrix: sp.csr_array, sources: np.ndarray, targets: np.ndarray, limit_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``(source position, target position, seconds)`` within ``limit_s``.

    Runs Dijkstra in chunks of sources so that no more than ``_CHUNK_CELLS`` node-wide
    cells exist at once, and keeps only the finite times to the target nodes.
    """
    n = matrix.shape[0]
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    src_parts, tgt_parts, sec_parts = [], [], []
    for start in range(0, sources.size, chunk):
        part = sources[start:start + chunk]
        dist = dijkstra(matrix, directed=True, indices=part, limit=limit_s)
        block = np.asarray(dist)[:, targets]
        s_idx, t_idx = np.nonzero(np.isfinite(block))
        src_parts.append(s_idx + start)
        tgt_parts.append(t_idx)
        sec_parts.append(block[s_idx, t_idx])
    return (np.concatenate(src_parts), np.concatenate(tgt_parts), np.concatenate(sec_parts))


# --------------------------------------------------------------------------------------
# Crow-fly fallback
# --------------------------------------------------------------------------------------


def default_speed_kmh(mode: str) -> float:
    """Default crow-fly speed of a mode.

    Examples
    --------
    >>> default_speed_kmh("walk"), default_speed_kmh("drive")
    (4.5, 40.0)
    """
    if mode == "walk":
        return WALK_SPEED_KMH
    if mode == "drive":
        return DRIVE_SPEED_KMH
    raise InputError(f"mode={mode!r} is not a travel mode; use one of {MODES}")


def crow_fly_travel_times(
    origins_xy: np.ndarray,
    destinations_xy: np.ndarray,
    *,
    detour_factor: float = DETOUR_FACTOR,
    speed_kmh: float | None = None,
    mode: str = "drive",
    max_minutes: float | None = None,
    access_min: float = 0.0,
) -> TravelTimes:
    """Estimate travel times from straight-line distances.

    ``minutes = access_min + distance_m × detour_factor / (speed_kmh × 1000 / 60)``
    (0 for two points at the same place).

    With a cutoff, the pairs come from a k-d tree radius search
    (``cKDTree.sparse_distance_matrix`` with ``max_distance``), so only the pairs within
    reach are ever held; the nearest destination comes from a k-d tree query.

    Parameters
    ----------
    origins_xy, destinations_xy
        ``(n, 2)`` arrays of x/y in metres, EPSG:2154.
    detour_factor
        Road distance / straight-line distance; default :data:`DETOUR_FACTOR` (1.3,
        the typical ratio measured on large road networks, see the constant).
    speed_kmh
        Average speed; default :data:`DRIVE_SPEED_KMH` (40 km/h, an assumption for
        rural and peri-urban France) for ``mode="drive"``, :data:`WALK_SPEED_KMH`
        (4.5 km/h) for ``mode="walk"``.
    mode
        ``"drive"`` or ``"walk"``; chooses the default speed and labels the result.
    max_minutes
        Optional cutoff; pairs above it are not stored (counted in
        ``n_beyond_cutoff``). Without one, every pair is stored: give a cutoff for
        large inputs.
    access_min
        Fixed access term of every trip (minutes, >= 0): reaching and leaving the
        network (see :mod:`diagnosis.crowfly`, which calibrates it).

    Returns
    -------
    TravelTimes
        With ``engine="crow_fly"``, zero snap distances and no flags.

    Examples
    --------
    1.3 km by road at 39 km/h is 2 minutes:

    >>> tt = crow_fly_travel_times(np.array([[0.0, 0.0]]), np.array([[1000.0, 0.0]]),
    ...                            speed_kmh=39.0)
    >>> round(float(tt.minutes[0, 0]), 9), tt.engine
    (2.0, 'crow_fly')
    >>> tt = crow_fly_travel_times(np.array([[0.0, 0.0]]),
    ...                            np.array([[1000.0, 0.0], [9000.0, 0.0]]),
    ...                            speed_kmh=39.0, max_minutes=5)
    >>> tt.n_pairs_within, tt.n_beyond_cutoff, round(float(tt.nearest_minutes[0]), 9)
    (1, 1, 2.0)
    """
    o_xy = _as_xy(origins_xy, "origins_xy")
    d_xy = _as_xy(destinations_xy, "destinations_xy")
    speed = default_speed_kmh(mode) if speed_kmh is None else check_positive(speed_kmh, "speed_kmh")
    detour = check_positive(detour_factor, "detour_factor")
    if detour < 1:
        raise InputError(
            f"detour_factor={detour_factor!r} is below 1: a road is never shorter than "
            "the straight line; use a value >= 1 (1.3 is typical)"
        )
    cutoff = None if max_minutes is None else check_positive(max_minutes, "max_minutes")
    access = float(access_min)
    if not (np.isfinite(access) and access >= 0):
        raise InputError(f"access_min={access_min!r} must be a number of minutes >= 0",
                         argument="access_min", value=access_min)
    metres_per_minute = speed * 1000.0 / 60.0
    n_o, n_d = o_xy.shape[0], d_xy.shape[0]
    d_tree = cKDTree(d_xy)
    bound = np.inf
    if cutoff is not None:
        # Radius search slightly beyond the cutoff; the cutoff itself is applied below
        # on the exact formula, so a pair on the boundary is decided as before.
        bound = max(cutoff - access, 0.0) * metres_per_minute / detour * (1.0 + 1e-9)
    # Origins in chunks of about _CHUNK_CELLS pairs (the first chunk assumes every pair
    # is within reach, the next ones follow the density seen so far): temporaries stay
    # small and the result is stacked row block by row block (12 bytes per stored pair).
    step = max(1, _CHUNK_CELLS // max(n_d, 1))
    parts = []
    start = seen_pairs = 0
    while start < n_o:
        o_part = o_xy[start:start + step]
        start += o_part.shape[0]
        if cutoff is None:
            rows = np.repeat(np.arange(o_part.shape[0], dtype=np.int64), n_d)
            cols = np.tile(np.arange(n_d, dtype=np.int64), o_part.shape[0])
        else:
            pairs = cKDTree(o_part).sparse_distance_matrix(d_tree, bound,
                                                           output_type="ndarray")
            rows = pairs["i"].astype(np.int64)
            cols = pairs["j"].astype(np.int64)
            del pairs
        minutes = _crow_minutes(o_part[rows], d_xy[cols], detour, metres_per_minute, access)
        if cutoff is not None:
            keep = ~(minutes > cutoff)
            rows, cols, minutes = rows[keep], cols[keep], minutes[keep]
        parts.append(pairs_to_csr(rows, cols, minutes, (o_part.shape[0], n_d)))
        seen_pairs += rows.size
        per_origin = max(seen_pairs / start, 1.0)
        step = max(1, min(int(_CHUNK_CELLS / per_origin), 8 * step))
    within = _stack_rows(parts, n_d)

    _, idx = d_tree.query(o_xy, k=1, distance_upper_bound=bound)
    idx = np.asarray(idx, dtype=np.int64)
    found = idx < n_d
    nearest = np.full(n_o, np.inf)
    nearest[found] = _crow_minutes(o_xy[found], d_xy[idx[found]], detour, metres_per_minute,
                                   access)
    if cutoff is not None:
        nearest[nearest > cutoff] = np.inf
    return TravelTimes(
        within=within,
        nearest_minutes=nearest,
        origin_snap_m=np.zeros(n_o),
        destination_snap_m=np.zeros(n_d),
        origin_flagged=np.zeros(n_o, dtype=bool),
        destination_flagged=np.zeros(n_d, dtype=bool),
        n_beyond_cutoff=n_o * n_d - within.nnz,
        n_disconnected=0,
        n_flagged_pairs=0,
        engine=ENGINE_CROW_FLY,
        mode=mode,
        max_minutes=cutoff,
        params={"speed_kmh": speed, "detour_factor": detour, "access_min": access},
    )


def _crow_minutes(
    a_xy: np.ndarray, b_xy: np.ndarray, detour: float, metres_per_minute: float,
    access_min: float = 0.0,
) -> np.ndarray:
    """Crow-fly minutes between paired rows of ``a_xy`` and ``b_xy`` (the one formula)."""
    dist = np.hypot(a_xy[:, 0] - b_xy[:, 0], a_xy[:, 1] - b_xy[:, 1])
    minutes = dist * detour / metres_per_minute
    if access_min:
        minutes = np.where(dist > 0, minutes + access_min, 0.0)
    return minutes


# --------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------


def _as_xy(values: Any, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """Return ``values`` as a finite ``(n, 2)`` float array or raise naming ``name``."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an (n, 2) array of x/y metres; got {values!r}") from None
    if arr.ndim == 2 and arr.shape[0] == 0:
        arr = arr.reshape(0, 2) if arr.size == 0 else arr
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(
            f"{name} must be an (n, 2) array of x/y metres in EPSG:2154; got shape {arr.shape!r}"
        )
    if arr.shape[0] == 0 and not allow_empty:
        raise InputError(f"{name} is empty; give at least one point")
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise InputError(
            f"{name} has a non-finite coordinate at row {row}: {arr[row].tolist()!r}; "
            "drop or geocode that point"
        )
    return arr




def _fr_number(value: float) -> str:
    """Format a number the French way (decimal comma, no useless zeros).

    Examples
    --------
    >>> _fr_number(1.3), _fr_number(40.0)
    ('1,3', '40')
    """
    return f"{value:g}".replace(".", ",")
