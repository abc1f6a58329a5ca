"""First diagnosis of a territory: needs, offer per facility type, crow-fly proximity.

One core path on arrays (a k-d tree per facility type in EPSG:2154) with a thin
GeoDataFrame front, :func:`compute_overview`, whose result :class:`Overview` holds
everything the map, the tables, the CLI and the reports need.

See Also
--------
guides/indicateurs.md : definition, formula and source of every indicator.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from diagnosis.errors import InputError, MissingDataError
from diagnosis.needs import (
    DEFAULT_YEARS,
    data_years,
    dated_label,
    under3_label,
    year_values,
    years_of,
)
from diagnosis.schema import (
    FACILITY_COLUMNS,
    FACILITY_TYPES,
    NEEDS_COLUMNS,
    NEEDS_NUMERIC,
    OPTIONAL_COMMUNE_COLUMNS,
    Territory,
    facility_label,
    isin_codes,
)
from diagnosis.settings import DEFAULT_THRESHOLD_M, METRIC_CRS, WGS84

#: Facility types analysed for proximity (town halls are hosts and partners, not services).
ANALYSED_TYPES: tuple[str, ...] = tuple(t for t in FACILITY_TYPES if t != "mairie")


@dataclass(frozen=True)
class Overview:
    """Result of :func:`compute_overview` (read-only).

    Attributes
    ----------
    territory
        The territory diagnosed.
    layers
        ``communes``: the territory's communes (EPSG:4326) with needs and, per type ``t``,
        ``n_t`` (facilities in the commune), ``places_t`` (known places, NaN if none
        known), ``dist_m_t`` (crow-fly metres from the town hall to the nearest facility
        of the type, searched across the territory's border), ``within_t`` (bool);
        ``facilities``: facilities located in the territory's communes;
        ``facilities_nearby``: facilities outside it that are the nearest of their type
        for at least one commune.
    summary
        JSON-ready figures (see :func:`compute_overview`).
    params
        The parameters used.
    """

    territory: Territory
    layers: Mapping[str, gpd.GeoDataFrame]
    summary: Mapping[str, Any]
    params: Mapping[str, Any]


def origin_points(communes: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Town hall of each commune (``townhall_lon``/``townhall_lat``), else a point inside it.

    The point inside is ``point_lon``/``point_lat`` when the communes carry it (the shipped
    national geography: a point inside the full-resolution commune, labelled « centre de
    la commune »), else a point inside the polygon. Returned in EPSG:4326, indexed like
    ``communes``.
    """
    pts = np.full(len(communes), None, dtype=object)
    need = np.ones(len(communes), dtype=bool)
    for lon_col, lat_col in (("townhall_lon", "townhall_lat"), ("point_lon", "point_lat")):
        if {lon_col, lat_col} <= set(communes.columns):
            lon = pd.to_numeric(communes[lon_col], errors="coerce").to_numpy(
                dtype=float, na_value=np.nan)
            lat = pd.to_numeric(communes[lat_col], errors="coerce").to_numpy(
                dtype=float, na_value=np.nan)
            ok = need & ~np.isnan(lon) & ~np.isnan(lat)
            pts[ok] = shapely.points(lon[ok], lat[ok])
            need &= ~ok
    if need.any():  # the polygons are reprojected only where no point is given
        inside = communes.geometry[need].to_crs(METRIC_CRS).representative_point()
        pts[need] = inside.to_crs(WGS84).to_numpy()
    return gpd.GeoSeries(pts, index=communes.index, crs=WGS84)


#: The operation PROJ chooses from WGS 84 to Lambert-93, ``Transformer.from_crs("EPSG:4326",
#: "EPSG:2154", always_xy=True).definition`` (RGF93 and WGS 84 coincide: a projection alone;
#: ``tests/test_overview.py`` checks it is still PROJ's choice and gives the same numbers).
#: Built from it in 0.1 ms: PROJ's database look-ups take 7-9 ms at a process's first
#: reprojection, which every command on a territory makes.
WGS84_TO_LAMBERT93 = ("proj=pipeline step proj=unitconvert xy_in=deg xy_out=rad step "
                      "proj=lcc lat_0=46.5 lon_0=3 lat_1=49 lat_2=44 x_0=700000 y_0=6600000 "
                      "ellps=GRS80")


def _metric_transformer(crs: Any) -> Any:
    """The transformer of ``crs`` to :data:`METRIC_CRS` (geopandas' cache, as ``to_crs``)."""
    from geopandas.array import TransformerFromCRS
    from pyproj import CRS

    if METRIC_CRS == "EPSG:2154" and crs == _wgs84_crs():
        return _wgs84_to_lambert93()
    return TransformerFromCRS(crs, CRS.from_user_input(METRIC_CRS), always_xy=True)


@functools.cache
def _wgs84_crs() -> Any:
    from pyproj import CRS

    return CRS.from_user_input(WGS84)


@functools.cache
def _wgs84_to_lambert93() -> Any:
    from pyproj import Transformer

    return Transformer.from_pipeline(WGS84_TO_LAMBERT93)


def metric_xy(points: gpd.GeoSeries) -> np.ndarray:
    """Coordinates (n, 2) of points in :data:`~diagnosis.settings.METRIC_CRS`.

    The numbers of ``points.to_crs(METRIC_CRS)`` (the same transformation of each
    coordinate), without building the reprojected points (0.1 s per 100,000 facilities);
    anything but points in a known CRS takes the reprojection itself.

    Examples
    --------
    >>> xy = metric_xy(gpd.GeoSeries.from_xy([-1.55], [47.22], crs=WGS84))
    >>> xy.round(0).tolist()
    [[355860.0, 6689885.0]]
    """
    values = points.to_numpy()
    if (points.crs is not None and len(values)
            and bool(np.all(shapely.get_type_id(values) == 0))
            and not bool(shapely.has_z(values).any())):
        transformer = _metric_transformer(points.crs)
        x, y = transformer.transform(shapely.get_x(values), shapely.get_y(values))
        return np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    metric = points.to_crs(METRIC_CRS)
    return np.column_stack([metric.x.to_numpy(), metric.y.to_numpy()])


def nearest_distances(origins_xy: np.ndarray, targets_xy: np.ndarray) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Crow-fly distance (same unit as the input) and index of the nearest target.

    Parameters
    ----------
    origins_xy, targets_xy
        Arrays of shape (n, 2) and (m, 2) in a metric CRS.

    Returns
    -------
    distances, indices
        ``inf`` and ``-1`` for every origin when there is no target.

    Examples
    --------
    >>> d, i = nearest_distances(np.array([[0.0, 0.0], [10.0, 0.0]]),
    ...                          np.array([[3.0, 4.0], [10.0, 1.0]]))
    >>> d.tolist(), i.tolist()
    ([5.0, 1.0], [0, 1])
    """
    origins_xy = np.asarray(origins_xy, dtype=float).reshape(-1, 2)
    targets_xy = np.asarray(targets_xy, dtype=float).reshape(-1, 2)
    if len(targets_xy) == 0:
        return np.full(len(origins_xy), np.inf), np.full(len(origins_xy), -1)
    pairs = len(origins_xy) * len(targets_xy)
    # the k-d tree once scipy is imported (by a travel step), pair by pair before
    tree_from = _TREE_FROM_PAIRS if "scipy.spatial" in sys.modules else _ALL_PAIRS_MAX
    if pairs <= tree_from:
        return _nearest_of_all_pairs(origins_xy, targets_xy)
    from scipy.spatial import cKDTree  # 0.2 s of imports: only for large instances

    # targets at one place (a directory's structures at their town hall) count once, as
    # the first of them: the rule of the all-pairs search
    places, first = np.unique(targets_xy, axis=0, return_index=True)
    dist, idx = cKDTree(places).query(origins_xy, k=1)
    return np.asarray(dist, dtype=float), first[np.asarray(idx, dtype=int)].astype(int)


#: Largest origins × targets searched pair by pair (numpy, by blocks of origins); beyond,
#: a k-d tree (scipy). A département's communes against one type: well below; against a
#: 100,000-row facility file, 20 M pairs in 0.03 s, where scipy's import alone costs
#: 0.2-0.3 s (60 M pairs: about 0.1 s).
_ALL_PAIRS_MAX = 60_000_000
#: The same bound when scipy is already imported (a travel step imports it): from 1 M
#: pairs the tree is faster (30 départements' 10,900 communes against 3,000 facilities of
#: a type: 60 ms pair by pair, 5 ms with the tree).
_TREE_FROM_PAIRS = 1_000_000
_PAIRS_PER_BLOCK = 250_000


def _nearest_of_all_pairs(origins_xy: np.ndarray, targets_xy: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_distances` over every pair: the first of equally near targets.

    The distance is computed as the k-d tree computes it (``sqrt(dx² + dy²)``): the two
    searches give the same floats.
    """
    n = len(origins_xy)
    dist, idx = np.empty(n), np.empty(n, dtype=int)
    step = max(1, _PAIRS_PER_BLOCK // len(targets_xy))
    tx, ty = targets_xy[:, 0], targets_xy[:, 1]
    for r0 in range(0, n, step):
        ox, oy = origins_xy[r0:r0 + step, :1], origins_xy[r0:r0 + step, 1:]
        dx, dy = ox - tx, oy - ty
        d2 = dx * dx + dy * dy
        best = np.argmin(d2, axis=1)
        idx[r0:r0 + step] = best
        dist[r0:r0 + step] = np.sqrt(d2[np.arange(len(best)), best])
    return dist, idx


def compute_overview(
    territory: Territory,
    communes: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    threshold_m: float = DEFAULT_THRESHOLD_M,
    types: Iterable[str] = ANALYSED_TYPES,
    sources: Sequence[Mapping[str, str]] = (),
    births_col: str = "births_2024",
) -> Overview:
    """Diagnose a territory: needs, offer per type, distance to the nearest facility.

    Parameters
    ----------
    territory
        The territory (its ``communes`` select rows of ``communes``).
    communes
        Loaded communes (at least the territory's; neighbours are context) with
        ``code_insee``, need columns, polygons and, preferably, the town hall position.
    facilities
        Loaded facilities in the schema; those outside the territory count as
        "nearest" for border communes.
    threshold_m
        Crow-fly distance under which a commune's births count as within reach.
    types
        Facility types to analyse.
    sources
        Source records (``key``, ``title``, ``vintage``, ``licence``, ``attribution``)
        listed in the summary.
    births_col
        Column of births used for the shares.

    Returns
    -------
    Overview
        ``summary`` holds ``territory`` (kind, code, name), ``n_communes``,
        ``n_communes_missing`` (communes of the territory with no loaded data),
        ``births_2024``, ``population_2022``, ``under3_estimate`` (labelled estimate),
        ``n_communes_total`` (communes of the territory), ``n_communes_births_known`` and
        ``communes_births_unknown`` (loaded communes whose births are not known: left
        out of ``births_2024``, which is then a partial total),
        ``facilities`` (per type: ``count`` of known facilities, ``places_known``,
        ``with_capacity``, ``at_commune_precision``, ``status`` of the offer's coverage),
        ``births_within_threshold`` (per type, :func:`births_within`: ``births``,
        ``share`` — ``None`` when unknown —, ``status``, ``lower_bound``),
        ``communes_without`` (per type: INSEE codes with no known facility in the
        commune), ``coverage`` (:func:`facility_coverage`), ``threshold_m`` and
        ``sources``.

    Raises
    ------
    MissingDataError
        No commune of the territory is in ``communes``.
    InputError
        Bad parameters or columns.
    """
    found = compute_overviews([territory], communes, facilities, threshold_m=threshold_m,
                              types=types, sources=sources, births_col=births_col)[0]
    if found is None:
        raise MissingDataError(
            f"{territory.label}: aucune commune du territoire n'a de données chargées "
            f"(contours, INSEE). Données manquantes pour les départements "
            f"{', '.join(territory.departements)}."
        )
    return found


def compute_overviews(
    territories: Sequence[Territory],
    communes: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    threshold_m: float = DEFAULT_THRESHOLD_M,
    types: Iterable[str] = ANALYSED_TYPES,
    sources: Sequence[Mapping[str, str]] = (),
    births_col: str = "births_2024",
) -> list[Overview | None]:
    """:func:`compute_overview` of each territory, the shared work done once.

    The facilities are reprojected, sorted by type and indexed once, and each commune's
    offer (distance to the nearest facility of each type, facilities and places in the
    commune) is computed once for all the territories' communes; each territory then
    only selects its communes and sums them. Every result equals the territory's own
    :func:`compute_overview` (a comparison row equals the territory's diagnosis).

    Parameters
    ----------
    territories
        The territories (e.g. the 101 départements of France).
    communes, facilities, threshold_m, types, sources, births_col
        As in :func:`compute_overview`.

    Returns
    -------
    list of Overview or None
        One per territory, in order; ``None`` for a territory none of whose communes is
        in ``communes`` (:func:`compute_overview` raises :class:`MissingDataError`).

    Raises
    ------
    InputError
        Bad parameters or columns.
    """
    types = _check_inputs(communes, facilities, threshold_m=threshold_m, types=types,
                          births_col=births_col)
    if not territories:
        return []
    union: set[str] = set().union(*(t.communes for t in territories))
    table = _CommuneOffer.build(communes, facilities, union, types=types)
    coverage = facility_coverage(sources, table.fac, list(types))
    return [_territory_overview(t, table, coverage, threshold_m=threshold_m, types=types,
                                sources=sources, births_col=births_col)
            for t in territories]


def _check_inputs(communes: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, *,
                  threshold_m: float, types: Iterable[str], births_col: str) -> tuple[str, ...]:
    """Raise on a bad parameter or a missing column of :func:`compute_overview`."""
    if not np.isfinite(threshold_m) or threshold_m <= 0:
        raise InputError(f"threshold_m={threshold_m!r} must be a positive number of metres")
    types = tuple(types)
    unknown = [t for t in types if t not in FACILITY_TYPES]
    if unknown:
        raise InputError(f"types={unknown!r} are not facility types; use {sorted(FACILITY_TYPES)}")
    for col in ("code_insee", births_col):
        if col not in communes.columns:
            raise InputError(f"communes lacks column {col!r}; found {list(communes.columns)}")
    missing_cols = [c for c in FACILITY_COLUMNS if c not in facilities.columns]
    if missing_cols:
        raise InputError(f"facilities lacks schema columns {missing_cols}")
    return types


def _need_totals(table: _CommuneOffer, rows: np.ndarray, codes: list[str], *,
                 births_col: str) -> dict[str, Any]:
    """The need totals of the communes at ``rows`` (``None``: unknown), years, partials.

    Sums are made as pandas makes them (NaN skipped, the same pairwise sum).
    """

    def _sum(col: str) -> float | None:
        values = table.numeric(col)
        if values is None:
            return None
        v = values[rows]
        known = ~np.isnan(v)
        return float(np.where(known, v, 0.0).sum()) if known.any() else None

    years = years_of({c: v[rows] for c, v in table.year_columns.items()})
    basis = table.text("under3_basis")
    partial = table.text("insee_partial")
    return {
        "births_2024": _sum(births_col),
        "population_2022": _sum("population_2022"),
        "births_mean_2016_2021": _sum("births_mean_2016_2021"),
        "under3_estimate": _sum("under3_estimate"),
        "under3_estimate_label": under3_label(pd.Series(basis[rows], dtype=object),
                                              births_year=years["births_2024"])
        if basis is not None
        else f"estimation : 3 × naissances {years['births_2024']} (pas un comptage)",
        # the year of each INSEE figure, from the files read (labels print these)
        "data_years": years,
        # merged communes whose INSEE figures are the sum of the known parts only
        # (a former commune missing from the file), with what they lack, in French
        "communes_partial": {c: str(p) for c, p in zip(codes, partial[rows], strict=True)
                             if str(p or "")}
        if partial is not None else {},
    }


@dataclass(frozen=True, eq=False)
class _CommuneOffer:
    """Each commune's offer, computed once for the communes of many territories.

    ``communes`` (EPSG:4326, positional index) are the loaded communes of the
    territories; per type ``t``, ``columns`` holds their ``n_t``, ``places_t`` and
    ``dist_m_t`` and ``nearest[t]`` the position in ``fac`` of each commune's nearest
    facility of the type (-1 when there is none); ``masks[t]`` selects the type in
    ``fac`` (the facilities in EPSG:4326, positional index).
    """

    communes: gpd.GeoDataFrame
    columns: dict[str, np.ndarray]
    nearest: dict[str, np.ndarray]
    fac: gpd.GeoDataFrame
    masks: dict[str, np.ndarray]
    #: Row of each commune code (``None`` when a code repeats), positions of each
    #: facility code: a territory's rows without scanning every row.
    positions: dict[str, int] | None = None
    fac_positions: dict[str, np.ndarray] = field(default_factory=dict)

    #: Per-commune columns converted once for all the territories (see :meth:`numeric`).
    converted: dict[str, np.ndarray | None] = field(default_factory=dict)

    def numeric(self, column: str) -> np.ndarray | None:
        """``column`` of every commune as floats (NaN: unknown); None when absent."""
        if column not in self.converted:
            self.converted[column] = (
                np.asarray(pd.to_numeric(self.communes[column], errors="coerce")
                           .to_numpy(dtype="float64", na_value=np.nan))
                if column in self.communes.columns else None)
        return self.converted[column]

    def text(self, column: str) -> np.ndarray | None:
        """``column`` of every commune as objects; None when absent."""
        key = f"text:{column}"
        if key not in self.converted:
            self.converted[key] = (self.communes[column].to_numpy(dtype=object)
                                   if column in self.communes.columns else None)
        return self.converted[key]

    @functools.cached_property
    def codes(self) -> np.ndarray:
        """Every commune's code (objects), in the table's order."""
        return np.asarray(self.communes["code_insee"].to_numpy(dtype=object))

    @functools.cached_property
    def year_columns(self) -> dict[str, np.ndarray]:
        """The year of each INSEE figure of every commune (:func:`~diagnosis.needs.year_values`)."""
        return {c: year_values(self.communes, c) for c in DEFAULT_YEARS
                if f"{c}_year" in self.communes.columns}

    @functools.cached_property
    def capacity(self) -> np.ndarray:
        """Places of every facility (NaN: unknown), once for all the territories."""
        return np.asarray(self.fac["capacity"].to_numpy(dtype="float64", na_value=np.nan))

    @functools.cached_property
    def by_commune(self) -> np.ndarray:
        """Whether each facility is placed at its commune only (town hall)."""
        return np.asarray(self.fac["position_precision"].eq("commune").to_numpy(dtype=bool))

    @classmethod
    def build(cls, communes: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame,
              wanted: set[str], *, types: tuple[str, ...]) -> _CommuneOffer:
        com = communes.loc[isin_codes(communes["code_insee"], wanted)]
        com = com.to_crs(WGS84).reset_index(drop=True)
        fac = facilities.to_crs(WGS84).reset_index(drop=True)
        oxy, fxy = metric_xy(origin_points(com)), metric_xy(fac.geometry)
        columns: dict[str, np.ndarray] = {}
        nearest: dict[str, np.ndarray] = {}
        masks: dict[str, np.ndarray] = {}
        in_communes = isin_codes(fac["code_insee"], wanted).to_numpy()
        fac_codes = fac["code_insee"].to_numpy(dtype=object)
        fac_places = fac["capacity"].to_numpy()
        kinds, uniques = pd.factorize(fac["type"])  # one pass over the types' strings
        names = pd.Index(uniques)
        # the communes' codes as one index: counts and places are looked up by reindexing
        # (a hash lookup per code) rather than mapped element by element
        keys = pd.Index(com["code_insee"].to_numpy(dtype=object))
        # a commune's facilities are those with its code: the same in any territory. One
        # grouping by (commune, type) serves every type (the two columns grouped alone:
        # selecting whole rows copied every column; one grouping a type cost 1.5 ms each)
        groups = pd.Series(fac_places[in_communes]).groupby(
            [fac_codes[in_communes], kinds[in_communes]])
        counts = groups.size().unstack(fill_value=0).reindex(keys)
        places = groups.sum(min_count=1).unstack().reindex(keys)
        for t in types:
            kind = int(names.get_indexer(pd.Index([t]))[0])
            kind = kind if kind >= 0 else -2  # no facility of this type (-1: a missing type)
            mask = masks[t] = kinds == kind
            sel = np.flatnonzero(mask)
            dist, idx = nearest_distances(oxy, fxy[sel])
            nearest[t] = sel[idx] if len(sel) else idx
            if kind in counts.columns:
                columns[f"n_{t}"] = counts[kind].fillna(0).astype(int).to_numpy()
                columns[f"places_{t}"] = places[kind].astype("float64").to_numpy()
            else:
                columns[f"n_{t}"] = np.zeros(len(keys), dtype=int)
                columns[f"places_{t}"] = np.full(len(keys), np.nan)
            columns[f"dist_m_{t}"] = dist
        codes = com["code_insee"].tolist()
        positions = dict(zip(codes, range(len(codes)), strict=True))
        by_code = pd.Series(np.arange(len(fac))).groupby(fac["code_insee"].to_numpy()).indices
        return cls(com, columns, nearest, fac, masks,
                   positions if len(positions) == len(codes) else None,
                   {str(c): np.asarray(i) for c, i in by_code.items()})


def _territory_overview(territory: Territory, table: _CommuneOffer,
                        coverage: Mapping[str, Mapping[str, Any]], *, threshold_m: float,
                        types: tuple[str, ...], sources: Sequence[Mapping[str, str]],
                        births_col: str) -> Overview | None:
    """One territory's :class:`Overview` from the communes' offer (None: no commune).

    The summary is computed on the table's arrays; the layers (GeoDataFrames) are cut
    from the table when first read (:class:`_Layers`), so comparing 101 territories,
    which reads their summaries only, does not build 101 sets of layers.
    """
    wanted = set(territory.communes)
    if table.positions is not None:  # codes are unique: the sorted codes give the rows
        rows = np.array([table.positions[c] for c in sorted(wanted) if c in table.positions],
                        dtype=np.int64)
    else:
        found = table.communes.loc[table.communes["code_insee"].isin(wanted)]
        rows = found.sort_values("code_insee").index.to_numpy()
    if not len(rows):
        return None
    codes = table.codes[rows].tolist()
    missing = sorted(wanted - set(codes))
    fac = table.fac
    in_territory = np.zeros(len(fac), dtype=bool)
    for c in wanted:
        if c in table.fac_positions:
            in_territory[table.fac_positions[c]] = True
    births_raw = table.numeric(births_col)
    assert births_raw is not None  # checked by _check_inputs
    births_raw = births_raw[rows]
    births_unknown = [c for c, b in zip(codes, np.isnan(births_raw), strict=True) if b]
    births = np.where(np.isnan(births_raw), 0.0, births_raw)
    total_births = float(births.sum())
    coverage = {t: {**c, "sources": list(c["sources"])} for t, c in coverage.items()}
    capacity, by_commune = table.capacity, table.by_commune
    code_array = table.codes[rows]

    nearby_idx: set[int] = set()
    per_type: dict[str, Any] = {}
    within: dict[str, Any] = {}
    without: dict[str, list[str]] = {}
    new_cols: dict[str, Any] = {}
    for t in types:
        near = table.nearest[t][rows]
        if len(near) and near[0] >= 0:
            nearby_idx.update(near[~in_territory[near]].tolist())
        local = table.masks[t] & in_territory
        cap = capacity[local]
        known = ~np.isnan(cap)
        n = table.columns[f"n_{t}"][rows]
        new_cols[f"n_{t}"] = n
        new_cols[f"places_{t}"] = table.columns[f"places_{t}"][rows]
        dist = table.columns[f"dist_m_{t}"][rows]
        new_cols[f"dist_m_{t}"] = dist
        ok = dist <= threshold_m
        new_cols[f"within_{t}"] = ok
        per_type[t] = {
            "count": int(local.sum()),
            # as pandas sums: unknown places count 0, the same pairwise sum
            "places_known": float(np.where(known, cap, 0.0).sum()) if known.any() else None,
            "with_capacity": int(known.sum()),
            "at_commune_precision": int(by_commune[local].sum()),
        }
        within[t] = births_within(float(births[ok].sum()), total_births,
                                  status=coverage[t]["status"])
        per_type[t]["status"] = coverage[t]["status"]
        without[t] = code_array[n == 0].tolist()

    summary = {
        "territory": {"kind": territory.kind, "code": territory.code, "name": territory.name},
        "n_communes": len(rows),
        "n_communes_missing": len(missing),
        "communes_missing": missing,
        "n_communes_total": len(wanted),
        "n_communes_births_known": len(rows) - len(births_unknown),
        "communes_births_unknown": births_unknown,
        **_need_totals(table, rows, codes, births_col=births_col),
        "facilities": per_type,
        "births_within_threshold": within,
        "communes_without": without,
        "threshold_m": float(threshold_m),
        "distance_method": "crow_fly",
        "facilities_outside_used": len(nearby_idx),
        "sources": [dict(s) for s in sources],
        "coverage": coverage,
    }
    layers = _Layers(table, rows, new_cols, in_territory, sorted(nearby_idx))
    params = {"threshold_m": float(threshold_m), "types": types, "births_col": births_col,
              "need_columns": [c for c in NEEDS_NUMERIC if c in table.communes.columns]}
    return Overview(territory, layers, MappingProxyType(summary), MappingProxyType(params))


_LAYER_NAMES = ("communes", "facilities", "facilities_nearby")


class _Layers(Mapping[str, gpd.GeoDataFrame]):
    """An overview's layers, cut from the shared communes' offer when first read.

    Read-only like the rest of :class:`Overview`; built once, under a lock (the app
    shares a diagnosis between sessions).
    """

    def __init__(self, table: _CommuneOffer, rows: np.ndarray, new_cols: dict[str, Any],
                 in_territory: np.ndarray, nearby: list[int]) -> None:
        self._args: tuple[Any, ...] | None = (table, rows, new_cols, in_territory, nearby)
        self._built: dict[str, gpd.GeoDataFrame] | None = None
        self._lock = threading.Lock()

    def _layers(self) -> dict[str, gpd.GeoDataFrame]:
        with self._lock:
            if self._built is None:
                assert self._args is not None
                table, rows, new_cols, in_territory, nearby = self._args
                com = table.communes.take(rows).reset_index(drop=True)
                com = pd.concat([com, pd.DataFrame(new_cols, index=com.index)], axis=1)
                fac = table.fac
                self._built = {
                    "communes": gpd.GeoDataFrame(com, geometry="geometry", crs=WGS84),
                    "facilities": fac.loc[in_territory].reset_index(drop=True),
                    "facilities_nearby": fac.loc[nearby].reset_index(drop=True),
                }
                self._args = None  # the shared table is no longer held
            return self._built

    def __getitem__(self, key: str) -> gpd.GeoDataFrame:
        return self._layers()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_LAYER_NAMES)

    def __len__(self) -> int:
        return len(_LAYER_NAMES)

    def __contains__(self, key: object) -> bool:
        return key in _LAYER_NAMES


#: Commune columns left out of :func:`commune_table` (constant within most territories).
_TABLE_SKIP = ("epci_code", "dep_code")


def commune_table(overview: Overview) -> pd.DataFrame:
    """One row per commune with French column labels, for display and export.

    Parameters
    ----------
    overview
        A result of :func:`compute_overview`.

    Returns
    -------
    pandas.DataFrame
        The need columns present (labels of :data:`~diagnosis.schema.NEEDS_COLUMNS`;
        the EPCI name only for a département), then, per analysed type with at least one
        facility loaded, the crow-fly distance in km (1 decimal) from the town hall to the
        nearest facility of the type. Missing values stay NaN.
    """
    com = overview.layers["communes"]
    skip = set(_TABLE_SKIP) | ({"epci_name"} if overview.territory.kind != "departement"
                               else set())
    labels = {**NEEDS_COLUMNS, **OPTIONAL_COMMUNE_COLUMNS}
    years = overview.summary.get("data_years") or data_years(com)
    labels = {c: dated_label(c, label, years) for c, label in labels.items()}
    cols = [c for c in labels if c in com.columns and c not in skip]
    out = pd.DataFrame(com[cols]).copy()
    for c in cols:
        if c in NEEDS_NUMERIC or c in OPTIONAL_COMMUNE_COLUMNS:
            out[c] = pd.to_numeric(out[c], errors="coerce").round(1)
    out = out.rename(columns=labels)
    for t in overview.params["types"]:
        if f"dist_m_{t}" not in com.columns:
            continue
        dist = pd.to_numeric(com[f"dist_m_{t}"], errors="coerce")
        if not np.isfinite(dist).any():
            continue
        km = (dist / 1000.0).where(np.isfinite(dist)).round(1)
        out[f"Distance (km) : {facility_label(t, plural=True)}"] = km.to_numpy()
    return out.reset_index(drop=True)


#: How completely the loaded sources know the offer of a type (French labels).
COVERAGE_LABELS: dict[str, str] = {
    "complete": "complète",
    "partial": "partielle",
    "unknown": "inconnue",
}


def facility_coverage(sources: Sequence[Mapping[str, str]], facilities: pd.DataFrame,
                      types: Sequence[str]) -> dict[str, dict[str, Any]]:
    """What the loaded sources say of each type's offer: complete, partial or unknown.

    A type is ``"complete"`` when a loaded source lists it exhaustively (its record's
    ``covers`` field, e.g. FINESS for PMI): only then may "aucune" be said. Otherwise it
    is ``"partial"`` when some facilities of the type are loaded (a partial directory,
    OpenStreetMap, a user's file), ``"unknown"`` when none is.

    Examples
    --------
    >>> fac = pd.DataFrame({"type": ["eaje"]})
    >>> c = facility_coverage([{"key": "finess", "title": "FINESS", "covers": "pmi"}], fac,
    ...                       ["pmi", "eaje", "laep"])
    >>> {t: v["status"] for t, v in c.items()}
    {'pmi': 'complete', 'eaje': 'partial', 'laep': 'unknown'}
    """
    present = set(facilities["type"].astype(str).unique()) if "type" in facilities else set()
    out: dict[str, dict[str, Any]] = {}
    for t in types:
        titles = [str(s.get("title", s.get("key", ""))) for s in sources
                  if t in str(s.get("covers", "")).split(",")]
        status = "complete" if titles else ("partial" if t in present else "unknown")
        out[t] = {"status": status, "sources": titles, "label": COVERAGE_LABELS[status]}
    return out


def births_within(births: float, total_births: float, *, status: str) -> dict[str, Any]:
    """Births within reach of a type, as far as the loaded sources know them.

    With a source listing the type completely (``status`` ``"complete"``) the figure is
    exact. Otherwise only the facilities that are loaded count: a positive figure is a
    lower bound (``lower_bound``), and a zero is not known (``None``), never 0.

    Examples
    --------
    >>> births_within(0.0, 200.0, status="complete")
    {'births': 0.0, 'share': 0.0, 'status': 'complete', 'lower_bound': False}
    >>> births_within(50.0, 200.0, status="partial")
    {'births': 50.0, 'share': 0.25, 'status': 'partial', 'lower_bound': True}
    >>> births_within(0.0, 200.0, status="unknown")
    {'births': None, 'share': None, 'status': 'unknown', 'lower_bound': False}
    """
    share = births / total_births if total_births > 0 else None
    if status == "complete":
        return {"births": births, "share": share, "status": status, "lower_bound": False}
    if births > 0:
        return {"births": births, "share": share, "status": status, "lower_bound": True}
    return {"births": None, "share": None, "status": status, "lower_bound": False}


def offer_table(overview: Overview) -> pd.DataFrame:
    """Offer and crow-fly proximity per analysed facility type, with French labels.

    Returns
    -------
    pandas.DataFrame
        One row per type: ``Type``, ``Structures dans le territoire``, ``Places connues``
        (NaN when none known), ``Naissances à portée`` (births 2024 of communes whose
        town hall is within the threshold), ``Part des naissances (%)`` and ``Communes
        sans structure``.
    """
    s = overview.summary
    rows = []
    for t in overview.params["types"]:
        fac = s["facilities"][t]
        within = s["births_within_threshold"][t]
        share = within["share"]
        rows.append({
            "Type": facility_label(t, plural=True),
            "Structures dans le territoire": fac["count"],
            "Places connues": np.nan if fac["places_known"] is None else fac["places_known"],
            "Naissances à portée": np.nan if within["births"] is None else within["births"],
            "Part des naissances (%)": np.nan if share is None else round(100 * share, 1),
            "Communes sans structure": len(s["communes_without"][t]),
            "Offre connue": s.get("coverage", {}).get(t, {}).get("label", "inconnue"),
        })
    return pd.DataFrame(rows)
