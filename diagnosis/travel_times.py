"""Travel times from communes to facilities, on a road graph or as the crow flies.

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
# Travel-time matrices
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TravelTimes:
    """Travel times from origins (rows) to destinations (columns), in minutes.

    Attributes
    ----------
    minutes
        ``(n_origins, n_destinations)`` float array; ``np.inf`` beyond the cutoff, when
        unreachable, or when either point is flagged as too far from the network.
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

    minutes: np.ndarray
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

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_origins, n_destinations)``."""
        return (int(self.minutes.shape[0]), int(self.minutes.shape[1]))

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
            text += f" ({_fr_number(speed)} km/h, détour × {_fr_number(detour)})"
        return text

    def summary(self) -> dict[str, Any]:
        """Counts and parameters as a flat dict (for tables, logs and reports)."""
        return {
            "engine": self.engine,
            "mode": self.mode,
            "max_minutes": self.max_minutes,
            "n_origins": self.shape[0],
            "n_destinations": self.shape[1],
            "n_origins_flagged": int(self.origin_flagged.sum()),
            "n_destinations_flagged": int(self.destination_flagged.sum()),
            "n_pairs_beyond_cutoff": self.n_beyond_cutoff,
            "n_pairs_disconnected": self.n_disconnected,
            "n_pairs_flagged": self.n_flagged_pairs,
            **dict(self.params),
        }


def compute_travel_times(
    graph: RoadGraph,
    origins_xy: np.ndarray,
    destinations_xy: np.ndarray,
    *,
    max_minutes: float,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> TravelTimes:
    """Travel times on the road graph from every origin to every destination.

    Dijkstra runs with a cutoff from the smaller side: from the destinations on the
    reversed graph when there are fewer destination nodes (giving the time *from* each
    origin *to* each destination on a directed graph), otherwise from the origins.
    Only the columns of the other side's nodes are kept, chunk by chunk.

    Parameters
    ----------
    graph
        The road graph.
    origins_xy, destinations_xy
        ``(n, 2)`` arrays of x/y in metres, EPSG:2154.
    max_minutes
        Cutoff; times above it are ``np.inf``.
    max_snap_m
        Points farther than this from every node are flagged and get ``np.inf``.

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
    >>> tt.minutes.tolist()
    [[2.0], [0.0]]
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
    limit_s = cutoff * 60.0

    n_o, n_d = o_xy.shape[0], d_xy.shape[0]
    n_beyond = n_disconnected = 0
    if o_nodes.size and d_nodes.size:
        if d_nodes.size < o_nodes.size:
            block = _dijkstra_columns(graph.reversed_travel_time_s, d_nodes, o_nodes, limit_s).T
            direction = "destinations_to_origins_on_reversed_graph"
        else:
            block = _dijkstra_columns(graph.travel_time_s, o_nodes, d_nodes, limit_s)
            direction = "origins_to_destinations"
        block = block / 60.0
        # Counts on the block of distinct nodes, weighted by how many points share each.
        weight_o = np.bincount(o_inv.ravel(), minlength=o_nodes.size).astype(float)
        weight_d = np.bincount(d_inv.ravel(), minlength=d_nodes.size).astype(float)
        comp = graph.weak_components
        unreached = np.isinf(block)
        apart = unreached & (comp[o_nodes][:, None] != comp[d_nodes][None, :])
        n_unreached = int(round(weight_o @ unreached @ weight_d))
        n_disconnected = int(round(weight_o @ apart @ weight_d))
        n_beyond = n_unreached - n_disconnected
        valid = np.take(np.take(block, o_inv.ravel(), axis=0), d_inv.ravel(), axis=1)
        if ok_o.all() and ok_d.all():
            minutes = valid
        else:
            minutes = np.full((n_o, n_d), np.inf)
            minutes[np.ix_(np.flatnonzero(ok_o), np.flatnonzero(ok_d))] = valid
    else:
        direction = "none"
        minutes = np.full((n_o, n_d), np.inf)
    n_flagged_pairs = n_o * n_d - int(ok_o.sum()) * int(ok_d.sum())
    logger.debug(
        "travel times %s x %s (%s): %d beyond cutoff, %d disconnected, %d flagged",
        n_o, n_d, direction, n_beyond, n_disconnected, n_flagged_pairs,
    )
    return TravelTimes(
        minutes=minutes,
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


def _dijkstra_columns(
    matrix: sp.csr_array, sources: np.ndarray, targets: np.ndarray, limit_s: float
) -> np.ndarray:
    """Shortest times from ``sources`` to ``targets`` (``len(sources) x len(targets)``).

    Runs Dijkstra in chunks of sources so that no more than ``_CHUNK_CELLS`` node-wide
    cells exist at once, and keeps only the target columns.
    """
    n = matrix.shape[0]
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    out = np.empty((sources.size, targets.size))
    for start in range(0, sources.size, chunk):
        part = sources[start:start + chunk]
        dist = dijkstra(matrix, directed=True, indices=part, limit=limit_s)
        out[start:start + part.size] = dist[:, targets]
    return out


@dataclass(frozen=True, eq=False)
class NearestMinutes:
    """Time from each origin to the nearest destination of each type.

    Attributes
    ----------
    minutes
        Facility type -> ``(n_origins,)`` minutes to the nearest one (``np.inf`` beyond
        the cutoff, unreachable, flagged origin, or no usable facility of that type).
    origin_snap_m, origin_flagged
        Snap distances and flags of the origins (zeros / False for crow-fly).
    destinations_flagged
        Facility type -> number of its facilities too far from the network (ignored).
    engine, mode, max_minutes, params
        As in :class:`TravelTimes`.
    """

    minutes: Mapping[str, np.ndarray]
    origin_snap_m: np.ndarray
    origin_flagged: np.ndarray
    destinations_flagged: Mapping[str, int]
    engine: str
    mode: str
    max_minutes: float | None
    params: Mapping[str, Any] = field(default_factory=dict)


def compute_nearest_minutes(
    graph: RoadGraph,
    origins_xy: np.ndarray,
    destinations_xy_by_type: Mapping[str, np.ndarray],
    *,
    max_minutes: float,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> NearestMinutes:
    """Time from every origin to the nearest facility of each type, on the road graph.

    One multi-source Dijkstra per type (``min_only=True`` on the reversed graph), so the
    cost does not grow with the number of facilities. A type with no facility (an empty
    array) gives ``np.inf`` everywhere.

    Parameters
    ----------
    graph
        The road graph.
    origins_xy
        ``(n, 2)`` x/y in metres, EPSG:2154.
    destinations_xy_by_type
        Facility type -> ``(m, 2)`` x/y in metres (``m`` may be 0).
    max_minutes
        Cutoff.
    max_snap_m
        Snap limit for origins and facilities.

    Returns
    -------
    NearestMinutes

    Examples
    --------
    >>> g = road_graph_from_arrays([0, 1, 1, 2], [1, 0, 2, 1], [60.0, 60.0, 120.0, 120.0],
    ...                            [0.0, 1000.0, 2000.0], [0.0, 0.0, 0.0], mode="drive")
    >>> r = compute_nearest_minutes(g, np.array([[0.0, 0.0]]),
    ...                             {"pmi": np.array([[1000.0, 0.0], [2000.0, 0.0]]),
    ...                              "laep": np.empty((0, 2))}, max_minutes=30)
    >>> float(r.minutes["pmi"][0]), float(r.minutes["laep"][0])
    (1.0, inf)
    """
    o_xy = _as_xy(origins_xy, "origins_xy")
    cutoff = check_positive(max_minutes, "max_minutes")
    if not destinations_xy_by_type:
        raise InputError("destinations_xy_by_type is empty; give at least one facility type")
    so = snap_points(graph, o_xy, max_snap_m=max_snap_m)
    out: dict[str, np.ndarray] = {}
    flagged: dict[str, int] = {}
    for ftype, pts in destinations_xy_by_type.items():
        d_xy = _as_xy(pts, f"destinations_xy_by_type[{ftype!r}]", allow_empty=True)
        minutes = np.full(o_xy.shape[0], np.inf)
        flagged[ftype] = 0
        if d_xy.shape[0]:
            sd = snap_points(graph, d_xy, max_snap_m=max_snap_m)
            flagged[ftype] = int(sd.flagged.sum())
            nodes = np.unique(sd.node[~sd.flagged])
            if nodes.size:
                dist = dijkstra(graph.reversed_travel_time_s, directed=True, indices=nodes,
                                limit=cutoff * 60.0, min_only=True)
                minutes = np.asarray(dist)[so.node] / 60.0
                minutes[so.flagged] = np.inf
        out[ftype] = minutes
    return NearestMinutes(
        minutes=out,
        origin_snap_m=so.distance_m,
        origin_flagged=so.flagged,
        destinations_flagged=flagged,
        engine=ENGINE_ROAD,
        mode=graph.mode,
        max_minutes=cutoff,
        params={"max_snap_m": so.max_snap_m},
    )


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
) -> TravelTimes:
    """Estimate travel times from straight-line distances.

    ``minutes = distance_m × detour_factor / (speed_kmh × 1000 / 60)``.

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
        Optional cutoff; times above it become ``np.inf`` (counted in
        ``n_beyond_cutoff``).

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
    dist = np.hypot(o_xy[:, 0, None] - d_xy[None, :, 0], o_xy[:, 1, None] - d_xy[None, :, 1])
    minutes = dist * detour / (speed * 1000.0 / 60.0)
    n_beyond = 0
    if cutoff is not None:
        beyond = minutes > cutoff
        n_beyond = int(beyond.sum())
        minutes[beyond] = np.inf
    return TravelTimes(
        minutes=minutes,
        origin_snap_m=np.zeros(o_xy.shape[0]),
        destination_snap_m=np.zeros(d_xy.shape[0]),
        origin_flagged=np.zeros(o_xy.shape[0], dtype=bool),
        destination_flagged=np.zeros(d_xy.shape[0], dtype=bool),
        n_beyond_cutoff=n_beyond,
        n_disconnected=0,
        n_flagged_pairs=0,
        engine=ENGINE_CROW_FLY,
        mode=mode,
        max_minutes=cutoff,
        params={"speed_kmh": speed, "detour_factor": detour},
    )


def crow_fly_nearest_minutes(
    origins_xy: np.ndarray,
    destinations_xy_by_type: Mapping[str, np.ndarray],
    *,
    detour_factor: float = DETOUR_FACTOR,
    speed_kmh: float | None = None,
    mode: str = "drive",
    max_minutes: float | None = None,
) -> NearestMinutes:
    """Crow-fly estimate of the time to the nearest facility of each type (k-d tree).

    Same formula and defaults as :func:`crow_fly_travel_times`.

    Examples
    --------
    >>> r = crow_fly_nearest_minutes(np.array([[0.0, 0.0]]),
    ...                              {"pmi": np.array([[3000.0, 0.0], [1000.0, 0.0]])},
    ...                              speed_kmh=39.0)
    >>> round(float(r.minutes["pmi"][0]), 9)
    2.0
    """
    o_xy = _as_xy(origins_xy, "origins_xy")
    if not destinations_xy_by_type:
        raise InputError("destinations_xy_by_type is empty; give at least one facility type")
    speed = default_speed_kmh(mode) if speed_kmh is None else check_positive(speed_kmh, "speed_kmh")
    detour = check_positive(detour_factor, "detour_factor")
    cutoff = None if max_minutes is None else check_positive(max_minutes, "max_minutes")
    out: dict[str, np.ndarray] = {}
    for ftype, pts in destinations_xy_by_type.items():
        d_xy = _as_xy(pts, f"destinations_xy_by_type[{ftype!r}]", allow_empty=True)
        if d_xy.shape[0] == 0:
            out[ftype] = np.full(o_xy.shape[0], np.inf)
            continue
        dist, _ = cKDTree(d_xy).query(o_xy, k=1)
        minutes = np.asarray(dist, dtype=float) * detour / (speed * 1000.0 / 60.0)
        if cutoff is not None:
            minutes[minutes > cutoff] = np.inf
        out[ftype] = minutes
    return NearestMinutes(
        minutes=out,
        origin_snap_m=np.zeros(o_xy.shape[0]),
        origin_flagged=np.zeros(o_xy.shape[0], dtype=bool),
        destinations_flagged={t: 0 for t in out},
        engine=ENGINE_CROW_FLY,
        mode=mode,
        max_minutes=cutoff,
        params={"speed_kmh": speed, "detour_factor": detour},
    )


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
