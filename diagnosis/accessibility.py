"""Accessibility of facilities from communes: nearest time, counts within reach, E2SFCA.

A matrix core (numpy) and a thin GeoDataFrame front, after PySAL ``access``:

- :func:`compute_e2sfca` (:mod:`diagnosis.e2sfca`, with its decays) gives the enhanced
  two-step floating catchment area score of every origin.
- :func:`minutes_to_nearest`, :func:`count_reachable` and :func:`births_within_share`
  are the simple per-origin indicators.
- :func:`compute_access_indicators` puts it all in one tidy table keyed by
  ``code_insee``, with a per-type summary.
- :func:`compute_travel_times_by_type` builds the sparse travel times it needs with a
  travel engine (:mod:`diagnosis.travel`): a road graph, or as the crow flies.

See Also
--------
guides/accessibilite.md : the method guide (in French).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from diagnosis._pairs import (
    _as_minutes,
    _as_vector,
    _pairs_csr,
    _per_row,
)
from diagnosis.e2sfca import Decay as Decay  # re-exported: the access step's API
from diagnosis.e2sfca import E2SFCAResult as E2SFCAResult
from diagnosis.e2sfca import compute_e2sfca as compute_e2sfca
from diagnosis.e2sfca import gaussian_decay as gaussian_decay
from diagnosis.e2sfca import step_decay as step_decay
from diagnosis.errors import InputError, check_positive
from diagnosis.schema import FACILITY_TYPES, facility_label
from diagnosis.settings import DEFAULT_MAX_MINUTES, METRIC_CRS
from diagnosis.travel import (
    DEFAULT_MAX_SNAP_M,
    DETOUR_FACTOR,
    RoadGraph,
    TravelEngine,
    TravelTimes,
    compute_travel_times,
    crow_fly_travel_times,
)


def minutes_to_nearest(travel_minutes: Any) -> np.ndarray:
    """Minutes from each origin to its nearest facility (``np.inf`` if none in reach).

    A :class:`~diagnosis.travel.TravelTimes` gives its ``nearest_minutes`` (k-d
    tree or multi-source Dijkstra); a sparse matrix the smallest stored entry of each
    row; a dense array the row minimum.

    Examples
    --------
    >>> minutes_to_nearest(np.array([[12.0, 7.0], [np.inf, np.inf]])).tolist()
    [7.0, inf]
    >>> import scipy.sparse as sp
    >>> minutes_to_nearest(sp.csr_array((np.array([0.0]), ([1], [0])), shape=(2, 2))).tolist()
    [inf, 0.0]
    """
    if isinstance(travel_minutes, TravelTimes):
        return np.asarray(travel_minutes.nearest_minutes, dtype=float).copy()
    if sp.issparse(travel_minutes):
        csr = _pairs_csr(travel_minutes, np.inf, allow_empty_columns=True)
        return _per_row(np.minimum, csr.data, csr.indptr, empty=np.inf)
    minutes = _as_minutes(travel_minutes, allow_empty_columns=True)
    if minutes.shape[1] == 0:
        return np.full(minutes.shape[0], np.inf)
    return cast("np.ndarray", minutes.min(axis=1))


def count_reachable(travel_minutes: Any, *, max_minutes: float) -> np.ndarray:
    """Number of facilities within ``max_minutes`` of each origin.

    Counted on the pairs within reach for sparse inputs and
    :class:`~diagnosis.travel.TravelTimes`.

    Examples
    --------
    >>> count_reachable(np.array([[12.0, 7.0, 30.0], [np.inf, 20.0, 25.0]]),
    ...                 max_minutes=20).tolist()
    [2, 1]
    """
    top = check_positive(max_minutes, "max_minutes")
    if isinstance(travel_minutes, TravelTimes) or sp.issparse(travel_minutes):
        # on the stored pairs in place: no row index, no copy of the pairs
        csr = _pairs_csr(travel_minutes, top, allow_empty_columns=True)
        within = np.less_equal(csr.data, top).view(np.uint8)
        return _per_row(np.add, within, csr.indptr, empty=0, dtype=np.int64)
    minutes = _as_minutes(travel_minutes, allow_empty_columns=True)
    return cast("np.ndarray", (minutes <= top).sum(axis=1).astype(np.int64))


def births_within_share(nearest_minutes: Any, births: Any, *, max_minutes: float) -> float:
    """Share of births in origins whose nearest facility is within ``max_minutes``.

    Origins with unknown births (NaN) are left out of both sums. Returns NaN when no
    births are known.

    Examples
    --------
    >>> births_within_share([5.0, 25.0, np.inf], [30, 10, 60], max_minutes=20)
    0.3
    """
    near = np.asarray(nearest_minutes, dtype=float)
    b = _as_vector(births, "births", near.shape[0])
    top = check_positive(max_minutes, "max_minutes")
    known = ~np.isnan(b)
    total = float(b[known].sum())
    if total <= 0:
        return float("nan")
    return float(b[known & (near <= top)].sum()) / total


# --------------------------------------------------------------------------------------
# GeoDataFrame front
# --------------------------------------------------------------------------------------


def commune_points_xy(communes_gdf: gpd.GeoDataFrame) -> np.ndarray:
    """One point per commune in EPSG:2154 (its point, or a point inside its polygon).

    Polygons are represented by ``representative_point()`` (always inside the commune,
    not necessarily where people live): pass town-hall points when you have them.
    """
    if not isinstance(communes_gdf, gpd.GeoDataFrame) or communes_gdf.crs is None:
        raise InputError("communes_gdf must be a GeoDataFrame with a CRS (EPSG:4326 or 2154)")
    if len(communes_gdf) == 0:
        raise InputError("communes_gdf is empty; select at least one commune")
    geom = communes_gdf.geometry.to_crs(METRIC_CRS)
    if geom.isna().any() or geom.is_empty.any():
        rows = communes_gdf.index[(geom.isna() | geom.is_empty).to_numpy()][:5].tolist()
        raise InputError(f"communes_gdf rows {rows} have no geometry; add their outline or point")
    pts = geom.where(geom.geom_type == "Point", geom.representative_point())
    return np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])


def facility_points_xy(facilities_gdf: gpd.GeoDataFrame) -> np.ndarray:
    """Facility points in EPSG:2154, shape ``(n, 2)`` (may be empty)."""
    if len(facilities_gdf) == 0:
        return np.empty((0, 2))
    if facilities_gdf.crs is None:
        raise InputError("facilities_gdf has no CRS; set one (EPSG:4326 expected)")
    pts = facilities_gdf.geometry.to_crs(METRIC_CRS)
    return np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])


def compute_travel_times_by_type(
    communes_gdf: gpd.GeoDataFrame,
    facilities_gdf: gpd.GeoDataFrame,
    *,
    max_minutes: float,
    graph: RoadGraph | None = None,
    facility_types: Sequence[str] | None = None,
    mode: str | None = None,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    speed_kmh: float | None = None,
    detour_factor: float = DETOUR_FACTOR,
    access_min: float = 0.0,
    engine: TravelEngine | None = None,
) -> dict[str, TravelTimes]:
    """Travel-time matrices from communes to the facilities of each type.

    Parameters
    ----------
    communes_gdf
        Communes (polygons or points), the rows of every matrix.
    facilities_gdf
        Facilities in the schema; the columns of type ``t`` are
        ``facilities_gdf[facilities_gdf["type"] == t]`` in table order.
    max_minutes
        Routing cutoff; use at least the accessibility threshold (a larger cutoff
        tells how far beyond the threshold the nearest facility is).
    graph
        Road graph; None gives crow-fly estimates (labelled ``engine="crow_fly"``).
    facility_types
        Types to compute; default: the types present in ``facilities_gdf``. Types with
        no facility are skipped (see :func:`compute_access_indicators`).
    mode
        Crow-fly mode (``"drive"``/``"walk"``); with a graph, the graph's mode is used.
    max_snap_m, speed_kmh, detour_factor, access_min
        Passed to :func:`~diagnosis.travel.compute_travel_times` or
        :func:`~diagnosis.travel.crow_fly_travel_times`.
    engine
        Any travel engine (:class:`~diagnosis.travel.TravelEngine`, e.g. a
        :class:`~diagnosis.travel.Travel`); when given, it computes every matrix and
        ``graph``, ``mode``, ``max_snap_m``, ``speed_kmh``, ``detour_factor`` and
        ``access_min`` are not used.

    Returns
    -------
    dict of str to TravelTimes
    """
    origins = commune_points_xy(communes_gdf)
    if "type" not in facilities_gdf.columns:
        raise InputError("facilities_gdf lacks the 'type' column; validate it with the schema")
    types = _types(facilities_gdf, facility_types)
    out: dict[str, TravelTimes] = {}
    for ftype in types:
        sub = facilities_gdf[facilities_gdf["type"] == ftype]
        if len(sub) == 0:
            continue
        dest = facility_points_xy(sub)
        if engine is not None:
            out[ftype] = engine.times(origins, dest, max_minutes=max_minutes)
        elif graph is None:
            out[ftype] = crow_fly_travel_times(origins, dest, detour_factor=detour_factor,
                                               speed_kmh=speed_kmh, mode=mode or "drive",
                                               max_minutes=max_minutes, access_min=access_min)
        else:
            out[ftype] = compute_travel_times(graph, origins, dest, max_minutes=max_minutes,
                                              max_snap_m=max_snap_m)
    return out


@dataclass(frozen=True, eq=False)
class AccessIndicators:
    """Accessibility of every commune to every facility type.

    Attributes
    ----------
    table
        One row per commune, keyed by ``code_insee`` (same order as the input), with
        ``births`` (the births column used), ``origin_snap_m``, ``origin_flagged`` and
        for each type ``t``: ``minutes_nearest_<t>`` (``inf`` beyond the routing cutoff
        or unreachable), ``reachable_<t>`` (facilities within ``max_minutes``) and
        ``e2sfca_<t>`` (places per weighted annual birth; NaN when no facility of the
        type has a known capacity).
    summary
        One row per type: engine, counts of facilities, of facilities without capacity
        or too far from the road network, births within reach and their share, pairs
        beyond the cutoff / disconnected / flagged.
    params
        ``max_minutes``, ``births_col``, decay, types (and ``demand_level``).
    origins
        With demand below the commune (IRIS, 200 m cells): the same indicators per origin
        (``origin_id``, ``code_insee``, ``level``…), from which ``table`` aggregates each
        commune; ``None`` when the communes are the origins.
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    params: Mapping[str, Any] = field(default_factory=dict)
    origins: pd.DataFrame | None = None


def compute_access_indicators(
    communes_gdf: pd.DataFrame,
    facilities_gdf: gpd.GeoDataFrame,
    travel_times_by_type: Mapping[str, TravelTimes],
    *,
    births_col: str = "births_2024",
    max_minutes: float = DEFAULT_MAX_MINUTES,
    decay: Decay | None = None,
    facility_types: Sequence[str] | None = None,
) -> AccessIndicators:
    """Nearest time, facilities within reach and E2SFCA per commune and facility type.

    Parameters
    ----------
    communes_gdf
        Communes with ``code_insee`` and ``births_col`` (rows in the order of the
        travel-time matrices).
    facilities_gdf
        Facilities in the schema (``type``, ``capacity``); the columns of the matrix of
        type ``t`` are its rows of that type, in order.
    travel_times_by_type
        Type -> :class:`~diagnosis.travel.TravelTimes`, e.g. from
        :func:`compute_travel_times_by_type`, computed with a cutoff >= ``max_minutes``.
    births_col
        Demand column (annual births). Communes with unknown births get indicators but
        add no demand to the E2SFCA; they are counted in the summary.
    max_minutes
        Accessibility threshold.
    decay
        E2SFCA decay; default :func:`step_decay` ``(max_minutes)``.
    facility_types
        Types to report; default the keys of ``travel_times_by_type``. A listed type
        with no facility at all gets ``inf`` / 0 / NaN (a gap, not an error).

    Returns
    -------
    AccessIndicators

    Raises
    ------
    InputError
        Missing columns, a matrix whose shape does not match the communes and the
        facilities of its type, a matrix computed with a cutoff below ``max_minutes``.
    """
    for col in ("code_insee", births_col):
        if col not in communes_gdf.columns:
            raise InputError(
                f"communes_gdf lacks column {col!r}; found {list(communes_gdf.columns)}"
            )
    if len(communes_gdf) == 0:
        raise InputError("communes_gdf is empty; select at least one commune")
    for col in ("type", "capacity"):
        if col not in facilities_gdf.columns:
            raise InputError(f"facilities_gdf lacks column {col!r}; validate it with the schema")
    top = check_positive(max_minutes, "max_minutes")
    weight = step_decay(top) if decay is None else decay
    types = list(travel_times_by_type) if facility_types is None else list(facility_types)
    if not types:
        raise InputError("no facility type to report: travel_times_by_type is empty and "
                         "facility_types is not given")
    births = pd.to_numeric(communes_gdf[births_col], errors="coerce").to_numpy(dtype=float)
    n = births.shape[0]
    _check_matrices(types, facilities_gdf, travel_times_by_type, n_communes=n, max_minutes=top)
    births_known = ~np.isnan(births)
    demand = np.where(births_known, births, 0.0)

    table = pd.DataFrame({
        "code_insee": communes_gdf["code_insee"].astype(str).to_numpy(),
    })
    if "name" in communes_gdf.columns:
        table["name"] = communes_gdf["name"].to_numpy()
    table["births"] = births
    first = next((travel_times_by_type[t] for t in types if t in travel_times_by_type), None)
    table["origin_snap_m"] = first.origin_snap_m if first is not None else np.nan
    table["origin_flagged"] = first.origin_flagged if first is not None else False

    summary_rows = []
    for ftype in types:
        sub = facilities_gdf[facilities_gdf["type"] == ftype]
        capacity = pd.to_numeric(sub["capacity"], errors="coerce").to_numpy(dtype=float)
        got = _type_indicators(travel_times_by_type.get(ftype), capacity, demand,
                               n_communes=n, max_minutes=top, decay=weight)
        nearest = got.nearest
        table[f"minutes_nearest_{ftype}"] = nearest
        table[f"reachable_{ftype}"] = got.reachable
        table[f"e2sfca_{ftype}"] = got.e2sfca
        within = births_known & (nearest <= top)
        summary_rows.append({
            "type": ftype,
            "label": facility_label(ftype, plural=True),
            **got.counts,
            "n_facilities": int(len(sub)),
            "n_facilities_without_capacity": got.without_capacity,
            "n_facilities_without_demand": got.without_demand,
            "births_total": float(births[births_known].sum()),
            "births_within": float(births[within].sum()),
            "share_births_within": births_within_share(nearest, births, max_minutes=top),
            "n_communes_beyond": int((nearest > top).sum()),
            "n_communes_births_missing": int((~births_known).sum()),
        })
    return AccessIndicators(
        table=table,
        summary=pd.DataFrame(summary_rows),
        params={"max_minutes": top, "births_col": births_col, "decay": weight.label,
                "facility_types": tuple(types)},
    )


def _check_matrices(types: Sequence[str], facilities_gdf: gpd.GeoDataFrame,
                    travel_times_by_type: Mapping[str, TravelTimes], *, n_communes: int,
                    max_minutes: float) -> None:
    """Raise unless each type is known and its matrix fits the communes and facilities."""
    n, top = n_communes, max_minutes
    for ftype in types:
        if ftype not in FACILITY_TYPES:
            raise InputError(f"facility type {ftype!r} is unknown; use one of "
                             f"{sorted(FACILITY_TYPES)}")
        n_fac = int((facilities_gdf["type"] == ftype).sum())
        tt = travel_times_by_type.get(ftype)
        if tt is None and n_fac:
            raise InputError(
                f"travel_times_by_type has no matrix for type {ftype!r} although "
                f"facilities_gdf holds {n_fac} such facilities; compute it first"
            )
        if tt is not None and tt.shape != (n, n_fac):
            raise InputError(
                f"travel_times_by_type[{ftype!r}] has shape {tt.shape!r}; expected "
                f"({n} communes, {n_fac} facilities of type {ftype!r}). Compute it "
                "from the same communes and facilities, in the same order."
            )
        if tt is not None and tt.max_minutes is not None and tt.max_minutes < top:
            raise InputError(
                f"travel_times_by_type[{ftype!r}] was computed with a cutoff of "
                f"{tt.max_minutes!r} min, below max_minutes={top!r}; recompute it with "
                "a cutoff >= max_minutes"
            )


class _TypeAccess(NamedTuple):
    """Access to one facility type, per commune (arrays) and counted."""

    nearest: np.ndarray
    reachable: np.ndarray
    e2sfca: np.ndarray
    counts: dict[str, Any]  # engine, mode, flagged facilities and pairs
    without_capacity: int
    without_demand: int


def _type_indicators(
    tt: TravelTimes | None, capacity: np.ndarray, demand: np.ndarray, *, n_communes: int,
    max_minutes: float, decay: Decay,
) -> _TypeAccess:
    """Nearest minutes, facilities within reach and E2SFCA for one type.

    No matrix (no facility of the type): ``inf`` / 0 / NaN, a gap.
    """
    n, top = n_communes, max_minutes
    if tt is None:
        return _TypeAccess(np.full(n, np.inf), np.zeros(n, dtype=np.int64), np.full(n, np.nan), {
            "engine": "", "mode": "", "n_facilities_flagged": 0, "n_pairs_beyond_cutoff": 0,
            "n_pairs_disconnected": 0, "n_pairs_flagged": 0}, 0, 0)
    if len(capacity) and (~np.isnan(capacity)).any():
        res = compute_e2sfca(tt, demand, capacity, max_minutes=top, decay=decay)
        e2 = res.access
        n_no_cap, n_no_dem = res.n_facilities_without_capacity, res.n_facilities_without_demand
    else:
        e2 = np.full(n, np.nan)
        n_no_cap, n_no_dem = int(np.isnan(capacity).sum()), 0
    return _TypeAccess(minutes_to_nearest(tt), count_reachable(tt, max_minutes=top), e2, {
        "engine": tt.engine, "mode": tt.mode,
        "n_facilities_flagged": int(tt.destination_flagged.sum()),
        "n_pairs_beyond_cutoff": tt.n_beyond_cutoff,
        "n_pairs_disconnected": tt.n_disconnected,
        "n_pairs_flagged": tt.n_flagged_pairs}, n_no_cap, n_no_dem)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _types(facilities_gdf: pd.DataFrame, facility_types: Sequence[str] | None) -> list[str]:
    if facility_types is None:
        present = set(facilities_gdf["type"].astype(str))
        return [t for t in FACILITY_TYPES if t in present]
    unknown = [t for t in facility_types if t not in FACILITY_TYPES]
    if unknown:
        raise InputError(f"facility_types={unknown!r} are unknown; use some of "
                         f"{sorted(FACILITY_TYPES)}")
    return list(facility_types)


def aggregate_to_communes(origins: pd.DataFrame, facility_types: Sequence[str], *,
                          max_minutes: float) -> pd.DataFrame:
    """Commune rows of an origin-level access table (demand below the commune).

    Per commune: ``births`` summed; for each type, ``minutes_nearest_<t>`` the
    births-weighted mean over its origins of the time to the nearest (capped at twice
    the routing cutoff, so one unreachable block does not make the commune infinite,
    and infinite only when every origin is), ``reachable_<t>`` the most reachable from
    one of its origins, ``e2sfca_<t>`` births-weighted, and ``share_within_<t>`` the
    share of its births within ``max_minutes`` (what sub-commune demand adds).

    Examples
    --------
    >>> o = pd.DataFrame({"code_insee": ["1", "1"], "births": [30.0, 10.0],
    ...                   "minutes_nearest_pmi": [5.0, 45.0], "reachable_pmi": [2, 0],
    ...                   "e2sfca_pmi": [0.5, 0.1]})
    >>> t = aggregate_to_communes(o, ["pmi"], max_minutes=20)
    >>> float(t["minutes_nearest_pmi"].iloc[0]), float(t["share_within_pmi"].iloc[0])
    (15.0, 0.75)
    """
    w = pd.to_numeric(origins["births"], errors="coerce").fillna(0.0)
    w = w.where(w.groupby(origins["code_insee"]).transform("sum") > 0, 1.0)
    g = origins.assign(_w=w)
    out = g.groupby("code_insee", sort=False).agg(
        births=("births", lambda v: v.sum(min_count=1)))
    if "name" in origins:
        out["name"] = g.groupby("code_insee", sort=False)["name"].first()
    cap = 4.0 * max_minutes
    for t in facility_types:
        m = pd.to_numeric(g[f"minutes_nearest_{t}"], errors="coerce")
        finite = np.isfinite(m)
        capped = m.where(finite, cap)
        mean = (capped * g["_w"]).groupby(g["code_insee"], sort=False).sum() / \
            g["_w"].groupby(g["code_insee"], sort=False).sum()
        any_finite = finite.groupby(g["code_insee"], sort=False).any()
        out[f"minutes_nearest_{t}"] = mean.where(any_finite, np.inf)
        out[f"reachable_{t}"] = g.groupby("code_insee", sort=False)[f"reachable_{t}"].max()
        e2 = pd.to_numeric(g[f"e2sfca_{t}"], errors="coerce")
        has = e2.notna()
        num = (e2.fillna(0) * g["_w"]).groupby(g["code_insee"], sort=False).sum()
        den = (g["_w"] * has).groupby(g["code_insee"], sort=False).sum()
        out[f"e2sfca_{t}"] = (num / den.where(den > 0)).astype(float)
        within = (m <= max_minutes) & finite
        b = pd.to_numeric(g["births"], errors="coerce")
        share = (b * within).groupby(g["code_insee"], sort=False).sum(min_count=1) / \
            b.groupby(g["code_insee"], sort=False).sum(min_count=1)
        out[f"share_within_{t}"] = share
    return out.reset_index()
