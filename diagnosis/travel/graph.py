"""Road graph: a CSR matrix of edge times, and the snapping of points to its nodes.

A road network is a :class:`RoadGraph` (a CSR matrix of edge travel times in seconds,
nodes renumbered along a Hilbert curve so that neighbouring nodes sit close in memory);
points are snapped to its nodes with a k-d tree (:func:`snap_points`). Coordinates are
metres in EPSG:2154 (Lambert-93).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from diagnosis.errors import InputError, check_positive
from diagnosis.settings import METRIC_CRS
from diagnosis.travel._common import as_xy
from diagnosis.travel.modes import MODES

#: Points farther than this (metres) from the nearest graph node are flagged, not snapped.
DEFAULT_MAX_SNAP_M = 1_000.0

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
    # The adjacency dicts walked directly: twice as fast as graph.edges(data=...) views.
    tail_l: list[int] = []
    head_l: list[int] = []
    secs_l: list[Any] = []
    multi = graph.is_multigraph()
    for u, nbrs in graph.adjacency():
        iu = pos[u]
        for v, data in nbrs.items():
            iv = pos[v]
            for d in data.values() if multi else (data,):
                tail_l.append(iu)
                head_l.append(iv)
                secs_l.append(d.get("travel_time"))
    tails = np.array(tail_l, dtype=np.int64)
    heads = np.array(head_l, dtype=np.int64)
    secs = np.array(secs_l, dtype=float)  # None -> NaN
    if np.isnan(secs).any():
        i = int(np.flatnonzero(np.isnan(secs))[0])
        raise InputError(
            f"graph edge {nodes[tails[i]]!r}->{nodes[heads[i]]!r} has no 'travel_time' "
            "attribute; call ox.add_edge_speeds and ox.add_edge_travel_times first"
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
    xy = as_xy(xy_2154, "xy_2154")
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
