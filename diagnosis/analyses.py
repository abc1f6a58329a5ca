"""The analyses of a diagnosis wired together: access, gaps, siting, partners, cohorts.

The command line (``python -m diagnosis access|site|partners|report|export``) and the
app compute the same things from the same inputs; this module is that shared wiring, so
that a number on the screen, in the PDF and in the terminal is always the same number.

Inputs are an :class:`~diagnosis.overview.Overview` (the territory's communes and
facilities), every loaded facility (also across the border: a family in a border
commune uses the services next door) and a :class:`Travel` (a road graph, or none for
the labelled crow-fly estimate). Nothing here loads data: the composition roots load
the road graph (:mod:`data_sources.osm`) and pass it in.

See Also
--------
guides/accessibilite.md, guides/implantation.md : the methods, in French.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis import siting as sit
from diagnosis.accessibility import (
    AccessIndicators,
    aggregate_to_communes,
    commune_points_xy,
    compute_access_indicators,
    compute_travel_times_by_type,
    facility_points_xy,
)
from diagnosis.cohorts import CohortPlan, compute_cohorts
from diagnosis.demand import DemandPoints
from diagnosis.errors import InputError, check_positive
from diagnosis.formatting import fr_decimal
from diagnosis.gaps import GapsResult, compute_gaps
from diagnosis.needs import year_of
from diagnosis.overview import Overview, origin_points
from diagnosis.partners import find_partners, institutional_partners, with_directory_contacts
from diagnosis.schema import ENGINE_CROW_FLY, FACILITY_TYPES, facility_label
from diagnosis.settings import (
    DEFAULT_MAX_MINUTES,
    DEFAULT_UPTAKE_RATE,
    FAR_CUTOFF_FACTOR,
    METRIC_CRS,
    ROUTING_CUTOFF_FACTOR,
    WGS84,
)
from diagnosis.territory import normalize_name
from diagnosis.travel import Travel, TravelTimes


class TravelTimesEngine(Protocol):
    """Matrices of travel times per facility type (origins × facilities of the type)."""

    def __call__(self, origins: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, *,
                 max_minutes: float, facility_types: Sequence[str]
                 ) -> Mapping[str, TravelTimes]:
        """Return one matrix per type, routed up to ``max_minutes``."""


#: Types whose time from a recommended site is reported (the Maison's first partners).
SITE_NEIGHBOUR_TYPES: tuple[str, ...] = ("pmi", "maternite")


# --------------------------------------------------------------------------------------
# How travel times are obtained
# --------------------------------------------------------------------------------------


def demand_points(overview: Overview) -> gpd.GeoDataFrame:
    """The territory's communes as points (town halls), with their needs, in EPSG:4326.

    Families are counted where their commune's town hall is: the commune-level
    approximation the needs data allows (see guides/limites.md).
    """
    com = overview.layers["communes"]
    return gpd.GeoDataFrame(pd.DataFrame(com.drop(columns=com.geometry.name)),
                            geometry=origin_points(com).to_numpy(), crs=WGS84)


def _fine_demand(overview: Overview, demand: DemandPoints) -> gpd.GeoDataFrame:
    """Sub-commune demand points with their commune's needs (births spread), EPSG:4326."""
    com = pd.DataFrame(overview.layers["communes"].drop(columns="geometry"))
    pts = demand.points.to_crs(WGS84)
    base = pd.DataFrame({"origin_id": pts["origin_id"].astype(str).to_numpy(),
                         "code_insee": pts["code_insee"].astype(str).to_numpy(),
                         "_births": pd.to_numeric(pts["births"], errors="coerce").to_numpy(),
                         "_share": pd.to_numeric(pts["share_population"],
                                                 errors="coerce").to_numpy()})
    out = base.merge(com, on="code_insee", how="left", validate="many_to_one")
    out["births_2024"] = out["_births"]
    for col in ("births_mean_2016_2021", "single_parent_families_2022", "families_2022"):
        if col in out:  # counts are spread like the population; rates stay the commune's
            out[col] = pd.to_numeric(out[col], errors="coerce") * out["_share"].fillna(1.0)
    out = out.drop(columns=["_births", "_share"])
    return gpd.GeoDataFrame(out, geometry=pts.geometry.to_numpy(), crs=WGS84)


def _loaded_types(overview: Overview, facilities: pd.DataFrame,
                  types: Sequence[str] | None) -> list[str]:
    wanted = list(overview.params.get("types", ())) if types is None else list(types)
    bad = [t for t in wanted if t not in FACILITY_TYPES]
    if bad:
        raise InputError(f"types holds unknown facility types {bad!r}; use some of "
                         f"{list(FACILITY_TYPES)}")
    present = set(facilities["type"].astype(str))
    return [t for t in wanted if t in present and t != "mairie"]


# --------------------------------------------------------------------------------------
# Accessibility and gaps
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AccessResult:
    """Accessibility and gaps of a territory.

    Attributes
    ----------
    access
        Per commune and type: minutes to the nearest, reachable count, E2SFCA.
    gaps
        Zones blanches and the priority ranking (with each factor's contribution).
    travel
        How the times were obtained.
    notes
        French notes (travel-time method, types without any facility...).
    """

    access: AccessIndicators
    gaps: GapsResult
    travel: Travel
    notes: tuple[str, ...] = ()

    @property
    def params(self) -> dict[str, Any]:
        """Parameters: threshold, engine, mode, weights, types."""
        return {"max_minutes": self.access.params["max_minutes"],
                "engine": self.travel.engine, "mode": self.travel.mode,
                "travel_label": self.travel.label,
                "weights": dict(self.gaps.params["weights"]),
                "facility_types": list(self.access.params["facility_types"])}


def compute_access(
    overview: Overview,
    facilities: gpd.GeoDataFrame,
    *,
    travel: Travel | None = None,
    max_minutes: float = DEFAULT_MAX_MINUTES,
    weights: Mapping[str, float] | None = None,
    types: Sequence[str] | None = None,
    demand: DemandPoints | None = None,
    travel_times: TravelTimesEngine | None = None,
) -> AccessResult:
    """Time to each type of service, E2SFCA, zones blanches and priority score per commune.

    Parameters
    ----------
    overview
        The diagnosis of the territory (its communes are the origins, from their town
        halls).
    facilities
        Every loaded facility (those outside the territory count: border communes).
    travel
        Road graph or crow-fly (default: crow-fly by car, labelled).
    max_minutes
        Accessibility threshold T (minutes).
    weights
        Priority-score weights (see :func:`diagnosis.gaps.priority_weights`).
    types
        Facility types (default: the overview's, minus ``mairie``, among those loaded).
    demand
        Demand points below the commune (:func:`diagnosis.demand.compute_demand_points`):
        times are computed from each IRIS or 200 m cell, the commune table aggregates
        them (:func:`~diagnosis.accessibility.aggregate_to_communes`) and
        ``access.origins`` keeps them; default: one point per commune (its town hall).
    travel_times
        How the matrices are computed, as
        :func:`~diagnosis.accessibility.compute_travel_times_by_type` is called (the
        default, with ``travel``): e.g. one Dask task per département
        (:func:`diagnosis.pipeline.diagnose_access_distributed`). The same origins, the
        same indicators: only the routing differs.

    Returns
    -------
    AccessResult

    Raises
    ------
    InputError
        No facility of any requested type is loaded; bad threshold or weights.
    """
    travel = travel or Travel()
    max_minutes = check_positive(max_minutes, "max_minutes")
    kinds = _loaded_types(overview, facilities, types)
    if not kinds:
        raise InputError(
            f"no facility of the types {list(types or overview.params.get('types', ()))!r} "
            "is loaded; import a facility file (--facilities) or choose other types"
        )
    fine = demand is not None and demand.level != "commune"
    if fine:
        assert demand is not None
        pts = demand.points.to_crs(WGS84)
        names = overview.layers["communes"].set_index("code_insee")["name"] \
            if "name" in overview.layers["communes"] else None
        origins = gpd.GeoDataFrame(
            {"code_insee": pts["origin_id"].astype(str).to_numpy(),
             "commune": pts["code_insee"].astype(str).to_numpy(),
             "births_2024": pd.to_numeric(pts["births"], errors="coerce").to_numpy()},
            geometry=pts.geometry.to_numpy(), crs=WGS84)
        if names is not None:
            origins["name"] = origins["commune"].map(names).to_numpy()
    else:
        origins = demand_points(overview)
    fac = facilities.loc[facilities["type"].isin(kinds)].reset_index(drop=True)
    # route beyond T so that "minutes to the nearest" also says how far a gap is
    if travel_times is None:
        tt = compute_travel_times_by_type(origins, fac,
                                          max_minutes=ROUTING_CUTOFF_FACTOR * max_minutes,
                                          engine=travel, facility_types=kinds)
    else:
        tt = dict(travel_times(origins, fac, max_minutes=ROUTING_CUTOFF_FACTOR * max_minutes,
                               facility_types=kinds))
    access = compute_access_indicators(origins, fac, tt, max_minutes=max_minutes,
                                       facility_types=kinds)
    if fine:
        assert demand is not None
        per_origin = access.table.rename(columns={"code_insee": "origin_id"}).assign(
            code_insee=origins["commune"].to_numpy(),
            level=demand.points["level"].to_numpy())
        table = aggregate_to_communes(per_origin, kinds, max_minutes=max_minutes)
        access = replace(access, table=table, origins=per_origin,
                         params={**access.params, "demand_level": demand.level_label})
    gaps = compute_gaps(overview.layers["communes"], access, weights=weights)
    notes = [f"Temps de trajet : {travel.label}."]
    if fine:
        assert demand is not None
        notes.append(f"Demande : {demand.level_label} (naissances de chaque commune "
                     "réparties selon la part de ses jeunes enfants : une estimation) ; le "
                     "tableau par commune agrège ces points.")
        notes.extend(demand.notes)
    if travel.engine == ENGINE_CROW_FLY:
        notes.append("Sans réseau routier chargé, les temps sont estimés à vol d'oiseau "
                     "(distance × facteur de détour, à vitesse moyenne constante).")
    if travel.note:
        notes.append(travel.note)
    notes.extend(stop_reach_notes(overview, travel))
    missing = [t for t in (types or ()) if t not in kinds]
    if missing:
        notes.append("Aucune structure chargée pour : "
                     + ", ".join(facility_label(t, plural=True) for t in missing) + ".")
    return AccessResult(access=access, gaps=gaps, travel=travel, notes=tuple(notes))


def stop_reach_notes(overview: Overview, travel: Travel) -> list[str]:
    """French note naming the communes with no stop within walking reach (transit only).

    Checked from each commune's town hall; an empty list for engines without stops.
    """
    if not travel.has_stops:
        return []
    pts = demand_points(overview)
    reach = travel.stop_access(commune_points_xy(pts))
    if reach is None:
        return []
    walk = getattr(travel.engine_impl, "max_walk_min", None)
    within = f"à moins de {fr_decimal(walk)} min à pied avec une poussette" if walk else \
        "à portée de marche"
    label = pts["name"] if "name" in pts else pts["code_insee"]
    names = [str(n) for n in label[~reach]]
    if not names:
        return [f"Toutes les communes ont un arrêt de transport en commun {within} de la "
                "mairie."]
    return [f"{len(names)} commune(s) sans arrêt de transport en commun {within} de la "
            f"mairie : {', '.join(names)}."]


def compute_catchment(
    site: Any,
    *,
    travel: Travel | None = None,
    max_minutes: float = DEFAULT_MAX_MINUTES,
    resolution_m: float = 250.0,
) -> gpd.GeoDataFrame:
    """The area reachable from a site within ``max_minutes`` (its isochrone), EPSG:4326.

    On a road graph: the network nodes reached within the time, each widened by
    ``resolution_m`` and merged (the area around the streets one can reach). Crow-fly:
    the disc reached by the crow-fly model: ``(max_minutes - access) × speed / detour``.

    Parameters
    ----------
    site
        A point (shapely, EPSG:4326) or a one-row GeoDataFrame/GeoSeries with a CRS.
    travel, max_minutes
        As in :func:`compute_access`.
    resolution_m
        Width added around reached nodes (road graph only).

    Returns
    -------
    geopandas.GeoDataFrame
        One row: ``max_minutes``, ``engine``, ``label`` and the polygon.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> c = compute_catchment(Point(-2.15, 47.43), max_minutes=6)
    >>> round(float(c.to_crs(METRIC_CRS).area.iloc[0]) / 1e6)  # (6 - 1) min: disc of 2.56 km
    21
    """
    travel = travel or Travel()
    max_minutes = check_positive(max_minutes, "max_minutes")
    pt = _metric_point(site)
    geom = travel.isochrone((pt.x, pt.y), max_minutes=max_minutes, resolution_m=resolution_m)
    out = gpd.GeoDataFrame({"max_minutes": [float(max_minutes)], "engine": [travel.engine],
                            "label": [travel.label]}, geometry=[geom], crs=METRIC_CRS)
    return out.to_crs(WGS84)


def _metric_point(site: Any) -> Any:
    if isinstance(site, gpd.GeoDataFrame | gpd.GeoSeries):
        if site.crs is None or len(site) != 1:
            raise InputError("site must be one row with a CRS")
        geo = site.geometry if isinstance(site, gpd.GeoDataFrame) else site
        return geo.to_crs(METRIC_CRS).iloc[0]
    if isinstance(site, Site):
        site = site.geometry
    if getattr(site, "geom_type", None) != "Point":
        raise InputError(f"site must be a point (EPSG:4326); got {type(site).__name__}")
    return gpd.GeoSeries([site], crs=WGS84).to_crs(METRIC_CRS).iloc[0]


# --------------------------------------------------------------------------------------
# Sites studied and recommended
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """A site studied for the Maison: a loaded facility or a point.

    Attributes
    ----------
    site_id
        Identifier (``facility_id``).
    name, facility_type, code_insee
        What the site is and where.
    geometry
        Point, EPSG:4326.
    details
        Other fields to print (address, operator...).
    """

    site_id: str
    name: str
    facility_type: str
    code_insee: str
    geometry: Any
    details: Mapping[str, str] = field(default_factory=dict)


def find_site(facilities: gpd.GeoDataFrame, query: str, *, option: str = "--site") -> Site:
    """The facility named by ``query``: its ``facility_id``, or its exact name (accent-blind).

    Raises
    ------
    InputError
        No such facility (with the closest ids and names), or a name shared by several.
    """
    fac = facilities
    hit = fac.loc[fac["facility_id"].astype(str).eq(str(query))]
    if hit.empty:
        hit = fac.loc[fac["name"].astype(str).map(normalize_name).eq(normalize_name(query))]
    if len(hit) > 1:
        ids = ", ".join(f"{r.facility_id} ({r.name})" for r in hit.head(5).itertuples())
        raise InputError(f"{option} {query!r} names {len(hit)} facilities: {ids}; give the "
                         "facility_id", argument=option, value=query,
                         fr=f"{option} « {query} » désigne {len(hit)} structures : {ids} ; "
                            "donnez l'identifiant (facility_id) de l'une d'elles")
    if hit.empty:
        pool = [str(v) for v in fac["facility_id"]] + [str(v) for v in fac["name"]]
        close = difflib.get_close_matches(str(query), pool, n=5, cutoff=0.5)
        raise InputError(f"{option} {query!r} is not a loaded facility (facility_id or exact "
                         f"name); closest: {close or 'none'}. List candidate sites with "
                         "`python -m diagnosis site --territory CODE`.", argument=option,
                         value=query, candidates=close,
                         fr=f"{option} « {query} » : aucune structure chargée ne porte cet "
                            "identifiant ou ce nom exact"
                            + (f" ; noms proches : {', '.join(close)}" if close else "")
                            + ". La liste des lieux possibles : python -m diagnosis site "
                              "--territory CODE.")
    r = hit.iloc[0]
    details = {k: str(r[k]) for k in ("address", "postcode", "operator", "phone", "email")
               if k in r.index and isinstance(r[k], str) and r[k]}
    geom = gpd.GeoSeries([r.geometry], crs=fac.crs).to_crs(WGS84).iloc[0]
    return Site(site_id=str(r["facility_id"]), name=str(r["name"]),
                facility_type=str(r["type"]), code_insee=str(r["code_insee"]),
                geometry=geom, details=details)


@dataclass(frozen=True, eq=False)
class SitingScenarios:
    """Siting scenarios of a territory.

    Attributes
    ----------
    results
        One :class:`~diagnosis.siting.SitingResult` per scenario (the first is the main
        one); the sites layer also holds ``minutes_nearest_pmi``,
        ``minutes_nearest_maternite`` and ``partners_within``.
    table
        Scenarios side by side (:func:`diagnosis.siting.compare_scenarios`).
    travel
        How the times were obtained.
    notes
        French notes.
    """

    results: tuple[sit.SitingResult, ...]
    table: pd.DataFrame
    travel: Travel
    notes: tuple[str, ...] = ()

    @property
    def main(self) -> sit.SitingResult:
        """The first scenario."""
        return self.results[0]


def compute_siting(
    overview: Overview,
    facilities: gpd.GeoDataFrame,
    *,
    k_values: Sequence[int] = (1,),
    travel: Travel | None = None,
    max_minutes: float = DEFAULT_MAX_MINUTES,
    other_minutes: Sequence[float] = (),
    host_types: Sequence[str] = sit.HOST_TYPES,
    user_points: gpd.GeoDataFrame | None = None,
    objective: str = "max_covering",
    need_weights: Mapping[str, float] | None = None,
    demand: DemandPoints | None = None,
) -> SitingScenarios:
    """Recommend host sites for ``k`` new Maisons, one scenario per ``k``, explained.

    Candidates are the territory's facilities of ``host_types`` (existing Maisons are
    kept open) and the user's points; demand is the territory's communes weighted by
    need (:func:`diagnosis.siting.compute_need_weights`).

    Parameters
    ----------
    overview, facilities
        The diagnosis and every loaded facility (partners and services across the
        border count for the explanations).
    k_values
        Number of new sites of each scenario.
    travel, max_minutes
        Travel times and the service standard T (of the first, main scenarios).
    other_minutes
        Other service standards to compare: one scenario per (T, k), the main T first.
    host_types
        Facility types that may host a Maison.
    user_points
        Points proposed by the user (EPSG:4326, optional ``name``), inside the territory.
    objective
        ``"max_covering"`` or ``"p_median"``.
    need_weights
        Coefficients of poverty and single parents in the need weight.
    demand
        Demand points below the commune (IRIS, 200 m cells): each one is a demand point
        with its share of the commune's births and the commune's need rates, so that a
        site inside a city is chosen for the blocks it reaches; default: the communes.

    Returns
    -------
    SitingScenarios

    Raises
    ------
    InputError
        No candidate, ``k`` larger than the candidates, a user point outside the
        territory, bad parameters (the message says which).
    """
    travel = travel or Travel()
    ks = [int(k) for k in k_values]
    if not ks:
        raise InputError("k_values is empty; give at least one number of sites")
    com = overview.layers["communes"]
    hosts = overview.layers["facilities"]
    territory = gpd.GeoDataFrame(geometry=[com.to_crs(WGS84).union_all()], crs=WGS84)
    cand = sit.build_candidates(hosts.reset_index(drop=True), host_types=host_types,
                                user_points=user_points,
                                territory=territory if user_points is not None else None)
    n_free = int((cand["candidate_kind"] != "existing").sum())
    too_big = [k for k in ks if k > n_free]
    if too_big:
        raise InputError(f"k={too_big[0]} is larger than the {n_free} candidate sites of "
                         f"types {list(host_types)}; choose k <= {n_free} or widen the "
                         "host types")
    tops = list(dict.fromkeys([float(max_minutes), *[float(t) for t in other_minutes]]))
    for t in tops:
        check_positive(t, "max_minutes")
    points = demand_points(overview) if demand is None or demand.level == "commune" else \
        _fine_demand(overview, demand)
    known = pd.Series(False, index=points.index)
    for col in ("births_2024", "births_mean_2016_2021"):
        if col in points:
            known |= pd.to_numeric(points[col], errors="coerce").notna()
    unknown_births = sorted(set(points.loc[~known, "code_insee"].astype(str)))
    if not known.any():
        raise InputError("no commune of the territory has known births; load the needs "
                         "(INSEE files or the fetch) before siting", argument="births_2024",
                         fr="aucune commune du territoire n'a de naissances connues : "
                            "chargez les données INSEE avant l'implantation")
    points = points.loc[known]
    need = sit.compute_need_weights(points, weights=need_weights)
    cutoff = max(tops) if objective == "max_covering" else FAR_CUTOFF_FACTOR * max(tops)
    tt = travel.times(commune_points_xy(need), facility_points_xy(cand), max_minutes=cutoff)
    results = []
    for top in tops:
        found = [sit.find_host_sites(need, cand, tt, k=k, max_minutes=top,
                                     objective=objective, host_types=host_types,
                                     label=f"{k} site{'s' if k > 1 else ''}, {top:g} min")
                 for k in ks]
        results.extend(_with_neighbours(found, facilities, travel, top))
    notes = [f"Temps de trajet : {travel.label}.", *need.attrs.get("need_notices", ())]
    if unknown_births:
        notes.append(f"{len(unknown_births)} commune(s) sans naissances connues "
                     f"({', '.join(unknown_births[:10])}) : laissées hors du calcul "
                     "d'implantation (inconnu, pas zéro).")
    if demand is not None and demand.level != "commune":
        notes.append(f"Demande : {demand.level_label} (naissances réparties, estimation).")
    if travel.note:
        notes.append(travel.note)
    return SitingScenarios(results=tuple(results), table=sit.compare_scenarios(results),
                           travel=travel, notes=tuple(notes))


def _with_neighbours(results: Sequence[sit.SitingResult], facilities: gpd.GeoDataFrame,
                     travel: Travel, max_minutes: float) -> list[sit.SitingResult]:
    """Add time to the nearest PMI and maternité and partners within reach to the sites.

    The scenarios of one service standard share their sites (the site of 1 site is often
    one of 2 and 3 sites): each distinct site is timed once, in one matrix per type.
    """
    frames = [r.sites for r in results if len(r.sites)]
    if not frames:
        return list(results)
    union = pd.concat(frames, ignore_index=True).drop_duplicates("facility_id")
    union = gpd.GeoDataFrame(union, geometry=union.geometry.name, crs=frames[0].crs)
    xy = facility_points_xy(union)
    ids = union["facility_id"].astype(str).to_numpy()
    cols: dict[str, np.ndarray] = {}
    for typ in SITE_NEIGHBOUR_TYPES:
        sub = facilities.loc[facilities["type"] == typ]
        if len(sub) == 0:
            cols[f"minutes_nearest_{typ}"] = np.full(len(union), np.nan)
            continue
        near = travel.times(xy, facility_points_xy(sub),
                            max_minutes=FAR_CUTOFF_FACTOR * max_minutes).nearest_minutes
        cols[f"minutes_nearest_{typ}"] = np.where(np.isfinite(near), near, np.nan)
    partners = facilities.loc[facilities["type"] != "mairie"]
    t = travel.times(xy, facility_points_xy(partners), max_minutes=max_minutes).minutes
    partner_ids = partners["facility_id"].astype(str).to_numpy()
    cols["partners_within"] = ((t <= max_minutes)
                               & (partner_ids[None, :] != ids[:, None])).sum(axis=1)
    position = pd.Index(ids)
    out = []
    for res in results:
        if len(res.sites) == 0:
            out.append(res)
            continue
        sites = res.sites.copy()
        at = position.get_indexer(sites["facility_id"].astype(str))
        for col, values in cols.items():
            sites[col] = values[at]
        layers = dict(res.layers)
        layers["sites"] = sites
        out.append(replace(res, layers=layers))
    return out


# --------------------------------------------------------------------------------------
# Partners and cohorts of a site
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PartnerTables:
    """The maillage of a site: structures within reach and institutions to meet.

    Attributes
    ----------
    layers
        ``"near_site"`` (facilities within reach of the site, by type, with contacts and
        minutes or distance; only with a site) and ``"institutions"`` (to contact).
    params
        ``max_minutes``, ``engine``, ``travel_label``, ``site_id``, ``site_name``.
    """

    layers: Mapping[str, pd.DataFrame]
    params: Mapping[str, Any] = field(default_factory=dict)


def compute_partners(
    overview: Overview,
    facilities: gpd.GeoDataFrame,
    site: Site | None = None,
    *,
    travel: Travel | None = None,
    max_minutes: float = DEFAULT_MAX_MINUTES,
    dep_name: str | None = None,
    types: Sequence[str] | None = None,
) -> PartnerTables:
    """Partners of a site within ``max_minutes``, plus the territory's institutions.

    Parameters
    ----------
    overview, facilities
        The diagnosis and every loaded facility.
    site
        The site studied (:func:`find_site`); without one, only the institutions.
    travel, max_minutes
        Travel times and the reach T.
    dep_name
        Name of the département, for the institutions' labels.
    types
        Partner types to keep (default: all).

    Returns
    -------
    PartnerTables
    """
    travel = travel or Travel()
    t = overview.territory
    com = overview.layers["communes"]
    own = com.loc[com["code_insee"].isin(t.communes)] if "code_insee" in com else com
    deps = list(t.departements) or sorted(set(com.get("dep_code", pd.Series(dtype=str))))
    epci = t.name if t.kind == "epci" else None
    # The intercommunalité to meet: an EPT of the Grand Paris (``ept_name``), not the
    # Métropole du Grand Paris, for its communes; else the EPCI.
    for col in ("ept_name", "epci_name"):
        names = own[col].fillna("").astype(str) if col in own else pd.Series(dtype=str)
        if epci is None and len(names) and names.nunique() == 1 and names.iloc[0]:
            epci = names.iloc[0]
    layers: dict[str, pd.DataFrame] = {}
    if deps:
        layers["institutions"] = with_directory_contacts(
            institutional_partners(t.name, deps[0], own, epci, dep_name=dep_name),
            facilities)
    params: dict[str, Any] = {"max_minutes": float(max_minutes), "engine": travel.engine,
                              "travel_label": travel.label}
    if site is not None:
        fac = facilities.reset_index(drop=True)
        xy = facility_points_xy(gpd.GeoDataFrame(geometry=[site.geometry], crs=WGS84))
        minutes = travel.times(xy, facility_points_xy(fac), max_minutes=max_minutes)
        point = gpd.GeoDataFrame({"facility_id": [site.site_id]}, geometry=[site.geometry],
                                 crs=WGS84)
        layers["near_site"] = find_partners(point, fac, minutes, max_minutes=max_minutes,
                                            types=types)
        params.update(site_id=site.site_id, site_name=site.name)
    return PartnerTables(layers=layers, params=params)


@dataclass(frozen=True, eq=False)
class Catchment:
    """The communes whose town hall lies within reach of a site, and their births."""

    communes: pd.DataFrame
    births_per_year: float
    years: Mapping[str, float]
    area: gpd.GeoDataFrame
    site_name: str = ""
    #: Year of the births counted (from the INSEE files read, :func:`data_years`).
    births_year: int = 2024


def compute_site_catchment(
    overview: Overview,
    context: gpd.GeoDataFrame,
    site: Site,
    *,
    travel: Travel | None = None,
    max_minutes: float = DEFAULT_MAX_MINUTES,
) -> Catchment:
    """Communes (of the territory or next door) within ``max_minutes`` of the site.

    One site of :func:`compute_site_catchments` (the same computation).

    Parameters
    ----------
    overview
        The diagnosis (its births column).
    context
        Every loaded commune (a catchment may cross the territory's border).
    site, travel, max_minutes
        The site, how times are computed and the reach T.
    """
    return compute_site_catchments(overview, context, [site], travel=travel,
                                   max_minutes=max_minutes)[0]


def compute_site_catchments(
    overview: Overview,
    context: gpd.GeoDataFrame,
    sites: Sequence[Site],
    *,
    travel: Travel | None = None,
    max_minutes: float = DEFAULT_MAX_MINUTES,
) -> tuple[Catchment, ...]:
    """Catchment of each site: communes within ``max_minutes``, births, isochrone.

    The study's catchment matrix is computed once: one travel-time matrix from every
    commune of ``context`` (its town hall) to every site, within ``max_minutes``; each
    site's catchment is its column (the communes are snapped once, not once per site).

    Parameters
    ----------
    overview
        The diagnosis (its births column).
    context
        Every loaded commune (a catchment may cross the territory's border).
    sites, travel, max_minutes
        The sites, how times are computed and the reach T.

    Returns
    -------
    tuple of Catchment
        In the order of ``sites``.
    """
    travel = travel or Travel()
    max_minutes = check_positive(max_minutes, "max_minutes")
    if not sites:
        return ()
    births_col = str(overview.params.get("births_col", "births_2024"))
    if births_col not in context.columns:
        raise InputError(f"context lacks the births column {births_col!r}; load the needs of "
                         "the communes")
    pts = gpd.GeoDataFrame(pd.DataFrame(context.drop(columns=context.geometry.name)),
                           geometry=origin_points(context).to_numpy(), crs=WGS84)
    xy_sites = facility_points_xy(gpd.GeoDataFrame(geometry=[s.geometry for s in sites],
                                                   crs=WGS84))
    within = travel.times(commune_points_xy(pts), xy_sites,
                          max_minutes=max_minutes).within.tocsc()
    cols = [c for c in ("code_insee", "name", births_col, "births_mean_2016_2021")
            if c in pts.columns]
    table = pd.DataFrame(pts[cols])
    year = year_of(overview.summary.get("data_years"), "births_2024")
    out = []
    for j, site in enumerate(sites):
        # the stored pairs of column j: communes within the routing cutoff, 0 min included
        rows = within.indices[within.indptr[j]:within.indptr[j + 1]]
        minutes = within.data[within.indptr[j]:within.indptr[j + 1]]
        keep = minutes <= max_minutes
        rows, minutes = rows[keep], minutes[keep]
        order = np.argsort(rows, kind="stable")  # the communes' order, then by minutes
        rows, minutes = rows[order], minutes[order]
        sel = table.iloc[rows].assign(minutes=minutes)
        sel = sel.sort_values("minutes", kind="stable").reset_index(drop=True)
        births = pd.to_numeric(sel[births_col], errors="coerce")
        years = {births_col: float(births.sum(min_count=1)) if len(sel) else 0.0}
        if "births_mean_2016_2021" in sel:
            years["births_mean_2016_2021"] = float(
                pd.to_numeric(sel["births_mean_2016_2021"], errors="coerce").sum(min_count=1)
                if len(sel) else 0.0)
        total = years[births_col]
        area = compute_catchment(site.geometry, travel=travel, max_minutes=max_minutes)
        out.append(Catchment(communes=sel, births_per_year=0.0 if np.isnan(total) else total,
                             years=years, area=area, site_name=site.name,
                             births_year=year))
    return tuple(out)


def compute_site_cohorts(catchment: Catchment, *,
                         uptake_rate: float = DEFAULT_UPTAKE_RATE,
                         **options: Any) -> CohortPlan:
    """Peer groups the catchment of a site can fill (see :func:`compute_cohorts`).

    The plan's ``params["scope"]`` says in French which births were counted.
    """
    plan = compute_cohorts(catchment.births_per_year, uptake_rate=uptake_rate, **options)
    scope = (f"naissances {catchment.births_year} des {len(catchment.communes)} communes "
             "dont la mairie est à "
             f"{fr_decimal(float(catchment.area['max_minutes'].iloc[0]))} min ou moins du site"
             + (f" « {catchment.site_name} »" if catchment.site_name else ""))
    # a commune of the zone whose births are not known is said, never counted as 0
    births_col = next(iter(catchment.years), "")
    unknown = (catchment.communes.loc[pd.to_numeric(catchment.communes[births_col],
                                                    errors="coerce").isna()]
               if births_col in catchment.communes else catchment.communes.iloc[:0])
    warnings = plan.warnings
    if len(unknown):
        names = ", ".join(str(v) for v in unknown.get("name", unknown.get("code_insee",
                                                                          pd.Series()))[:5])
        scope += f", dont {len(unknown)} sans naissances connues"
        warnings = (*warnings, f"{len(unknown)} commune(s) de la zone desservie sans "
                               f"naissances connues ({names}) : non comptées, les groupes "
                               "possibles sont un minimum.")
    return replace(plan, params={**plan.params, "scope": scope}, warnings=tuple(warnings))
