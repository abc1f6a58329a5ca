"""Travel times: the sparse pairs container of every engine, and road routing.

The container is :class:`TravelTimes`; :func:`compute_travel_times` routes on a road
graph.

Every engine returns a :class:`TravelTimes`: only the pairs within the cutoff are
stored, explicit zeros kept, and the counts of pairs out of reach, disconnected or
flagged. On a road graph, :func:`scipy.sparse.csgraph.dijkstra` computes the times with
a cutoff, from whichever side has fewer points. Coordinates are metres in EPSG:2154;
times are minutes; ``np.inf`` means "not reachable within the cutoff".

See Also
--------
guides/accessibilite.md : the method guide (in French).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from diagnosis.errors import InputError, check_positive
from diagnosis.schema import ENGINE_CROW_FLY, ENGINE_ROAD
from diagnosis.travel._common import CHUNK_CELLS, as_xy, fr_number
from diagnosis.travel.graph import DEFAULT_MAX_SNAP_M, RoadGraph, snap_points
from diagnosis.travel.modes import ENGINE_LABELS, MODE_LABELS

logger = logging.getLogger(__name__)

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
        unreachable, or either point flagged as too far from the network. Checked
        when built (NaN or negative minutes raise :class:`~diagnosis.errors.InputError`),
        so the access computations do not check it again: do not modify it in place.
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
        # The minutes are checked once, here, where the pairs are built: the access
        # computations trust a TravelTimes and check only foreign matrices.
        if not sp.issparse(self.within):
            raise InputError(f"within must be a scipy.sparse matrix of minutes; got "
                             f"{type(self.within).__name__}")
        data = self.within.data
        if data.size and not data.min() >= 0:  # one pass: NaN or negative minutes
            bad = "NaN" if np.isnan(data).any() else f"negative minutes (min {data.min()!r})"
            raise InputError(f"within holds {bad}; stored pairs are times >= 0 within "
                             "reach (leave pairs out of reach unstored)")
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
    def label(self) -> str:
        """French description of how the times were obtained, for legends and reports."""
        base = ENGINE_LABELS.get(self.engine, self.engine)
        text = f"{base}, {MODE_LABELS.get(self.mode, self.mode)}"
        if self.engine == ENGINE_CROW_FLY:
            speed = float(self.params.get("speed_kmh", np.nan))
            detour = float(self.params.get("detour_factor", np.nan))
            access = float(self.params.get("access_min", 0.0))
            text += (f" ({fr_number(access)} min d'accès + " if access else " (") + (
                f"{fr_number(speed)} km/h, détour × {fr_number(detour)})")
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


def stack_rows(parts: list[sp.csr_array], n_cols: int) -> sp.csr_array:
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

    >>> from diagnosis.travel.graph import road_graph_from_arrays
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
    o_xy = as_xy(origins_xy, "origins_xy")
    d_xy = as_xy(destinations_xy, "destinations_xy")
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

    Runs Dijkstra in chunks of sources so that no more than ``CHUNK_CELLS`` node-wide
    cells exist at once, and keeps only the finite times to the target nodes.
    """
    n = matrix.shape[0]
    chunk = max(1, CHUNK_CELLS // max(n, 1))
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
