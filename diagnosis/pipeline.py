"""The diagnosis pipeline: loaded data and parameters in, one typed :class:`Diagnosis` out.

This is *the* place where a diagnosis is wired. The app (``app_pages/_cached.py``) and
the command line (``python -m diagnosis``) call these functions; the maps, the PDF, the
exports and the comparison read a :class:`Diagnosis`. A number on the screen, in the
terminal, in the PDF and in the GeoPackage is therefore one number, computed once.

Steps, each in one function (a page that needs one part computes only that part):

=====================  ====================================================================
:func:`diagnose_overview`   needs and offer of the territory (crow-fly proximity)
:func:`diagnose_access`     travel time to each type, E2SFCA, zones blanches, priority
:func:`diagnose_siting`     siting scenarios, recommended sites
:func:`site_catchments`     catchment (communes within T, isochrone) and peer groups of sites
:func:`studied_site`        the site whose partners and cohorts are reported
:func:`diagnose_partners`   partners within reach of that site, institutions to meet
:func:`run_diagnosis`       all of the above, in order, with progress
=====================  ====================================================================

Nothing here loads data: the composition roots load a territory (anything shaped like
:class:`DiagnosisInputs`, e.g. :class:`data_sources.workspace.Workspace`) and the travel
engine (:func:`data_sources.workspace.load_travel`) and pass them in.

See Also
--------
guides/diagnostic.md : the steps of a diagnosis, in French.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import geopandas as gpd
import pandas as pd
from shapely.geometry import Point

from diagnosis.errors import InputError, check_positive
from diagnosis.inputs import DiagnosisInputs
from diagnosis.overview import Overview, compute_overview, compute_overviews
from diagnosis.schema import FACILITY_TYPES, Territory
from diagnosis.settings import (
    DEFAULT_BIRTH_WINDOW_MONTHS,
    DEFAULT_DEPART,
    DEFAULT_FACILITATORS_PER_MAISON,
    DEFAULT_GROUP_SIZE,
    DEFAULT_GROUPS_PER_FACILITATOR,
    DEFAULT_K,
    DEFAULT_MAX_MINUTES,
    DEFAULT_MODE,
    DEFAULT_OBJECTIVE,
    DEFAULT_THRESHOLD_M,
    DEFAULT_UPTAKE_RATE,
    HOST_TYPES,
    OBJECTIVES,
    TRAVEL_MODES,
    USER_SITE_ID,
    USER_SITE_LABEL,
    USER_SITE_TYPE,
    WGS84,
)

if TYPE_CHECKING:  # each step imports its modules (scipy: 0.2 s; summary: the overview alone)
    from diagnosis.analyses import (
        AccessResult,
        Catchment,
        PartnerTables,
        Site,
        SitingScenarios,
    )
    from diagnosis.cohorts import CohortPlan
    from diagnosis.context import TerritoryContext
    from diagnosis.demand import DemandPoints
    from diagnosis.map_tiles import BaseTiles
    from diagnosis.offer_levels import OfferLevels
    from diagnosis.travel import Travel
    from diagnosis.travel.compare import ModeComparison

#: Parts of a diagnosis, in the order :func:`run_diagnosis` computes them.
PARTS: tuple[str, ...] = ("overview", "access", "siting", "partners", "cohorts")

Progress = Callable[[str], None]
T = TypeVar("T")


def _pairs(value: Mapping[str, float] | Sequence[tuple[str, float]] | None
           ) -> tuple[tuple[str, float], ...] | None:
    if value is None:
        return None
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(k), float(v)) for k, v in items)


@dataclass(frozen=True)
class DiagnosisParams:
    """Every option of a diagnosis, validated once; defaults from :mod:`diagnosis.settings`.

    Hashable, so the app can cache on it.

    Attributes
    ----------
    territory
        The territory as the user typed it (code or name), recorded with the results.
    mode
        ``"drive"``, ``"walk"`` (road graph) or ``"crow"`` (crow-fly estimate).
    max_minutes
        Travel-time standard T (minutes): access, siting, partners, catchments.
    threshold_m
        Crow-fly radius (metres) of the overview's "births within reach".
    weights
        Priority-score weights (``births``, ``poverty``, ``single_parent``, ``access``);
        ``None``: the defaults of :mod:`diagnosis.gaps`.
    need_weights
        Coefficients of poverty and single parents in the siting need weight.
    uptake_rate
        Share of families expected to join a peer group (an assumption); ``None`` leaves
        the cohorts out.
    host_types
        Facility types that may host a Maison.
    k, scenarios, scenario_minutes
        New sites of the main scenario; other numbers of sites and other standards T
        compared.
    objective
        ``"max_covering"`` or ``"p_median"``.
    user_sites
        Points proposed by the user, (longitude, latitude) in degrees.
    site
        The site studied (``facility_id`` or exact name); ``None``: the first recommended.
    types
        Facility types analysed (``None``: all loaded ones, town halls apart).
    group_size, birth_window_months
        Families per peer group, and the months within which its babies are born.
    facilitators, groups_per_facilitator
        One Maison's capacity: trained facilitators, and groups each runs at once (an
        assumption, see :mod:`diagnosis.cohorts`).
    depart, study_date
        Transit mode: departure hour (``"09:30"``) and date (ISO ``"2026-03-03"``;
        ``""``: the next school-term Tuesday, :func:`diagnosis.travel.transit.
        next_school_tuesday`).
    gtfs_files, osm_pbf
        Transit and pushchair modes: the GTFS zips and the OpenStreetMap extract
        (``.osm.pbf``) the user gave (paths).
    travel_reason
        Why ``mode`` and ``max_minutes`` are what they are when the density rule chose
        them (:func:`diagnosis.travel.default_travel_for`), in French; ``""`` when the
        user chose both. Stated in the CLI output and the report.

    Examples
    --------
    >>> DiagnosisParams(territory="200000438").k_values
    (1,)
    >>> DiagnosisParams(max_minutes=0)
    Traceback (most recent call last):
    ...
    diagnosis.errors.InputError: max_minutes must be a positive finite number; got 0
    """

    territory: str = ""
    mode: str = DEFAULT_MODE
    max_minutes: float = DEFAULT_MAX_MINUTES
    threshold_m: float = DEFAULT_THRESHOLD_M
    weights: tuple[tuple[str, float], ...] | None = None
    need_weights: tuple[tuple[str, float], ...] | None = None
    uptake_rate: float | None = DEFAULT_UPTAKE_RATE
    host_types: tuple[str, ...] = HOST_TYPES
    k: int = DEFAULT_K
    scenarios: tuple[int, ...] = ()
    scenario_minutes: tuple[float, ...] = ()
    objective: str = DEFAULT_OBJECTIVE
    user_sites: tuple[tuple[float, float], ...] = ()
    site: str | None = None
    types: tuple[str, ...] | None = None
    group_size: int = DEFAULT_GROUP_SIZE
    birth_window_months: float = DEFAULT_BIRTH_WINDOW_MONTHS
    facilitators: int = DEFAULT_FACILITATORS_PER_MAISON
    groups_per_facilitator: int = DEFAULT_GROUPS_PER_FACILITATOR
    depart: str = DEFAULT_DEPART
    study_date: str = ""
    gtfs_files: tuple[str, ...] = ()
    osm_pbf: str = ""
    travel_reason: str = ""

    def __post_init__(self) -> None:
        """Validate every option once (the messages name the option)."""
        from diagnosis.study_calendar import parse_depart, parse_study_date

        parse_depart(self.depart)
        if self.study_date:
            parse_study_date(self.study_date)
        if self.mode not in TRAVEL_MODES:
            raise InputError(f"mode={self.mode!r} is not a travel mode; use one of "
                             f"{TRAVEL_MODES}", argument="mode", value=self.mode,
                             candidates=TRAVEL_MODES)
        object.__setattr__(self, "max_minutes", check_positive(self.max_minutes,
                                                               "max_minutes"))
        object.__setattr__(self, "threshold_m", check_positive(self.threshold_m,
                                                               "threshold_m"))
        object.__setattr__(self, "scenario_minutes", tuple(
            check_positive(t, "scenario_minutes") for t in self.scenario_minutes))
        object.__setattr__(self, "weights", _pairs(self.weights))
        object.__setattr__(self, "need_weights", _pairs(self.need_weights))
        if self.uptake_rate is not None:
            rate = float(self.uptake_rate)
            if not 0 < rate <= 1:
                raise InputError(f"uptake_rate={self.uptake_rate!r} must be a share in ]0, 1] "
                                 "(e.g. 0.15 for 15 %)", argument="uptake_rate",
                                 value=self.uptake_rate, hint="0.15")
            object.__setattr__(self, "uptake_rate", rate)
        for k in (self.k, *self.scenarios):
            if int(k) != k or k < 1:
                raise InputError(f"k={k!r} must be a whole number of sites >= 1",
                                 argument="k", value=k)
        if self.objective not in OBJECTIVES:
            raise InputError(f"objective={self.objective!r} is not one of {OBJECTIVES}",
                             argument="objective", value=self.objective,
                             candidates=OBJECTIVES)
        known = (*FACILITY_TYPES, USER_SITE_TYPE)
        bad = [t for t in (*self.host_types, *(self.types or ())) if t not in known]
        if bad:
            raise InputError(f"{bad!r} are not facility types; use some of "
                             f"{list(FACILITY_TYPES)}", argument="types", value=bad,
                             candidates=tuple(FACILITY_TYPES))
        for lon, lat in self.user_sites:
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise InputError(f"user site ({lon!r}, {lat!r}) is not a longitude, latitude "
                                 "pair in degrees", argument="user_sites", value=(lon, lat))

    @property
    def k_values(self) -> tuple[int, ...]:
        """Numbers of sites of the scenarios: ``k`` first, then the others."""
        return tuple(dict.fromkeys([int(self.k), *(int(k) for k in self.scenarios)]))

    @property
    def engine_mode(self) -> str:
        """The travel mode of the engine (``"crow"`` estimates car trips)."""
        return "drive" if self.mode == "crow" else self.mode

    @property
    def depart_s(self) -> int:
        """Transit departure, seconds since midnight."""
        from diagnosis.study_calendar import parse_depart

        return parse_depart(self.depart)

    def transit_day(self, today: dt.date | None = None) -> dt.date:
        """Transit study date: :attr:`study_date`, else the next school-term Tuesday."""
        from diagnosis.study_calendar import next_school_tuesday, parse_study_date

        if self.study_date:
            return parse_study_date(self.study_date)
        return next_school_tuesday(today or dt.date.today())


#: The options each cached step reads; :func:`step_params` keeps only these, so that two
#: studies that agree on them share the step (the app's cache key).
STEP_OPTIONS: dict[str, tuple[str, ...]] = {
    "access": ("territory", "mode", "max_minutes", "threshold_m", "weights", "types",
               "depart", "study_date", "gtfs_files", "osm_pbf"),
    "siting": ("territory", "mode", "max_minutes", "threshold_m", "need_weights",
               "host_types", "k", "scenarios", "scenario_minutes", "objective",
               "user_sites", "depart", "study_date", "gtfs_files", "osm_pbf"),
}


def step_params(params: DiagnosisParams, step: str) -> DiagnosisParams:
    """``params`` with only the options ``step`` reads, the others at their defaults.

    Examples
    --------
    >>> a = DiagnosisParams(territory="200000438", k=2, uptake_rate=0.3)
    >>> step_params(a, "siting") == step_params(DiagnosisParams(territory="200000438", k=2),
    ...                                         "siting")
    True
    >>> step_params(a, "access") == step_params(a, "siting")
    False
    """
    if step not in STEP_OPTIONS:
        raise InputError(f"step={step!r} is not a cached step; use one of "
                         f"{tuple(STEP_OPTIONS)}", argument="step", value=step,
                         candidates=tuple(STEP_OPTIONS))
    return DiagnosisParams(**{name: getattr(params, name) for name in STEP_OPTIONS[step]})


@dataclass(frozen=True, eq=False)
class StepResult(Generic[T]):
    """One step's result (``None`` when it could not be computed) and its French notes."""

    value: T | None
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------
# Sites
# --------------------------------------------------------------------------------------


def user_site_points(points: Sequence[tuple[float, float]]) -> gpd.GeoDataFrame | None:
    """The user's proposed sites as points named « Site proposé n°i » (EPSG:4326)."""
    if not points:
        return None
    return gpd.GeoDataFrame(
        {"name": [USER_SITE_LABEL.format(n=i) for i in range(1, len(points) + 1)]},
        geometry=[Point(lon, lat) for lon, lat in points], crs=WGS84)


def resolve_site(facilities: gpd.GeoDataFrame, query: str, *,
                 user_sites: Sequence[tuple[float, float]] = (),
                 option: str = "--site") -> Site:
    """The one site resolver: a site is a loaded facility or a user's proposed point.

    A loaded facility is looked for first (its ``facility_id`` or exact name, see
    :func:`diagnosis.analyses.find_site`), so a facility imported from the user's file
    (``user:<file>:<id>``) is that facility, never a bare point. Otherwise ``user:<n>``
    names the n-th proposed point of ``user_sites`` (longitude, latitude).

    Raises
    ------
    InputError
        Neither a loaded facility nor a proposed point.
    """
    from diagnosis.analyses import Site, find_site

    query = str(query)
    try:
        return find_site(facilities, query, option=option)
    except InputError:
        for n, (lon, lat) in enumerate(user_sites, start=1):
            if query == USER_SITE_ID.format(n=n):
                return Site(site_id=query, name=USER_SITE_LABEL.format(n=n),
                            facility_type=USER_SITE_TYPE, code_insee="",
                            geometry=Point(lon, lat))
        raise


def site_of(row: Mapping[str, Any], facilities: gpd.GeoDataFrame,
            user_sites: Sequence[tuple[float, float]] = ()) -> Site:
    """The :class:`Site` of a sites-layer row (see :func:`resolve_site`)."""
    from diagnosis.analyses import Site

    if str(row.get("type")) == USER_SITE_TYPE:
        geom = row["geometry"]
        return Site(site_id=str(row["facility_id"]), name=str(row["name"]),
                    facility_type=USER_SITE_TYPE, code_insee=str(row.get("code_insee", "")
                                                                    or ""),
                    geometry=geom)
    return resolve_site(facilities, str(row["facility_id"]), user_sites=user_sites)


def recommended(siting: SitingScenarios | None, facilities: gpd.GeoDataFrame,
                user_sites: Sequence[tuple[float, float]] = ()) -> tuple[Site, ...]:
    """The recommended sites of the main scenario, in rank order."""
    if siting is None:
        return ()
    sites = siting.main.sites
    rec = sites.loc[sites["status"] == "recommandé"]
    if "rank" in rec:
        rec = rec.sort_values("rank", kind="stable")
    rec = rec.to_crs(WGS84) if isinstance(rec, gpd.GeoDataFrame) and rec.crs else rec
    return tuple(site_of(r, facilities, user_sites) for r in rec.to_dict("records"))


# --------------------------------------------------------------------------------------
# Parts
# --------------------------------------------------------------------------------------


def diagnose_overview(inputs: DiagnosisInputs, params: DiagnosisParams) -> Overview:
    """Needs and offer of the territory (:func:`diagnosis.overview.compute_overview`)."""
    return compute_overview(inputs.territory, inputs.communes, inputs.facilities,
                            threshold_m=params.threshold_m, sources=list(inputs.sources))


def diagnose_context(inputs: DiagnosisInputs) -> TerritoryContext:
    """Births trend, CAF coverage and QPV (:func:`diagnosis.context.compute_context`).

    Reads the optional ``qpv``, ``grid`` and ``iris`` layers of the inputs when loaded.
    """
    from diagnosis.context import compute_context
    return compute_context(inputs.territory, inputs.communes,
                           qpv=getattr(inputs, "qpv", None), grid=getattr(inputs, "grid", None),
                           iris=getattr(inputs, "iris", None))


def diagnose_offer_levels(inputs: DiagnosisInputs, overview: Overview,
                          context: TerritoryContext | None) -> OfferLevels:
    """The offer by type against the département and France, from every loaded commune.

    See :func:`diagnosis.offer_levels.compute_offer_levels`.
    """
    from diagnosis.offer_levels import compute_offer_levels
    types = [t for t in overview.summary["facilities"] if t != "mairie"]
    return compute_offer_levels(inputs.territory, inputs.communes, inputs.facilities,
                                types=types, coverage=overview.summary.get("coverage", {}),
                                caf=context.caf_coverage if context is not None else None,
                                departement_name=getattr(inputs, "dep_name", None))


def diagnose_demand(inputs: DiagnosisInputs, overview: Overview) -> DemandPoints | None:
    """Demand below the commune when IRIS or 200 m cells are loaded, else ``None``.

    The finest level loaded wins (cells, then IRIS); communes the finer layer does not
    cover keep their commune point (:func:`diagnosis.demand.compute_demand_points`).
    """
    iris, grid = getattr(inputs, "iris", None), getattr(inputs, "grid", None)
    if iris is None and grid is None:
        return None
    from diagnosis.demand import compute_demand_points
    return compute_demand_points(overview.layers["communes"], iris=iris, grid=grid)


def diagnose_access(inputs: DiagnosisInputs, params: DiagnosisParams, *, overview: Overview,
                    travel: Travel, demand: DemandPoints | None = None) -> AccessResult:
    """Travel times, E2SFCA, zones blanches and priority (:func:`compute_access`)."""
    from diagnosis.analyses import compute_access

    types = list(params.types) if params.types else [t for t in FACILITY_TYPES
                                                     if t != "mairie"]
    return compute_access(overview, inputs.facilities, travel=travel,
                          max_minutes=params.max_minutes,
                          weights=dict(params.weights) if params.weights else None,
                          types=types, demand=demand)


def diagnose_access_distributed(inputs: DiagnosisInputs, params: DiagnosisParams, *,
                                overview: Overview, graph_loader: Callable[[str], Any],
                                scheduler_address: str | None = None,
                                n_workers: int | None = None,
                                progress: Callable[[str, int, int], None] | None = None
                                ) -> AccessResult:
    """The access step routed on road graphs, one Dask task per département.

    One engine of :func:`diagnose_access`: the same demand points (communes, IRIS or 200 m
    cells: :func:`diagnose_demand`), the same indicators, gaps and priority; only the
    travel-time matrices are computed by département (:mod:`diagnosis.distributed`), on
    a ``LocalCluster`` or the cluster at ``scheduler_address`` (``tcp://HOST:PORT``).
    """
    from diagnosis.analyses import compute_access
    from diagnosis.distributed import compute_travel_times_by_departement
    from diagnosis.travel import ENGINE_LABELS, MODE_LABELS, Travel

    def by_departement(origins: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, *,
                       max_minutes: float, facility_types: Sequence[str]
                       ) -> Mapping[str, Any]:
        # an IRIS or a cell lies in the département of its commune
        dep_col = "commune" if "commune" in origins else None
        return compute_travel_times_by_departement(
            origins, facilities, graph_loader, max_minutes=max_minutes,
            departement_col=dep_col, facility_types=facility_types,
            scheduler_address=scheduler_address, n_workers=n_workers, progress=progress)

    label = f"{ENGINE_LABELS['road_network']}, {MODE_LABELS.get(params.engine_mode, '')}"
    travel = Travel(mode=params.engine_mode, note="calcul réparti (Dask)")
    result = compute_access(overview, inputs.facilities, travel=travel,
                            max_minutes=params.max_minutes,
                            weights=dict(params.weights) if params.weights else None,
                            types=list(params.types) if params.types else None,
                            demand=diagnose_demand(inputs, overview),
                            travel_times=by_departement)
    return replace(result, notes=(f"Temps de trajet : {label}, un calcul par département "
                                  "(Dask).", *result.notes[1:]))


def diagnose_siting(inputs: DiagnosisInputs, params: DiagnosisParams, *, overview: Overview,
                    travel: Travel, demand: DemandPoints | None = None) -> SitingScenarios:
    """Siting scenarios of the territory (:func:`compute_siting`), the main one first."""
    from diagnosis.analyses import compute_siting

    return compute_siting(overview, inputs.facilities, k_values=params.k_values, travel=travel,
                          max_minutes=params.max_minutes,
                          other_minutes=params.scenario_minutes,
                          host_types=params.host_types,
                          user_points=user_site_points(params.user_sites),
                          objective=params.objective,
                          need_weights=dict(params.need_weights) if params.need_weights
                          else None, demand=demand)


def access_part(inputs: DiagnosisInputs, params: DiagnosisParams, *, overview: Overview,
                travel: Travel, demand: DemandPoints | None = None
                ) -> StepResult[AccessResult]:
    """The access step with its notes; ``None`` and a French note when it cannot run."""
    try:
        access = diagnose_access(inputs, params, overview=overview, travel=travel,
                                 demand=demand)
    except InputError as exc:
        return StepResult(None, (f"Accessibilité non calculée : {exc.fr}",))
    return StepResult(access, tuple(access.notes))


def siting_part(inputs: DiagnosisInputs, params: DiagnosisParams, *, overview: Overview,
                travel: Travel, demand: DemandPoints | None = None
                ) -> StepResult[SitingScenarios]:
    """The siting step with its notes; ``None`` and a French note when it cannot run.

    Scenarios with more sites than candidate places (host facilities and proposed
    points) are left out.
    """
    n_free = int(overview.layers["facilities"]["type"].isin(params.host_types).sum()) + len(
        params.user_sites)
    ks = [k for k in params.k_values if k <= n_free]
    if not ks:
        return StepResult(None, ("Aucun lieu d'accueil possible chargé : sites recommandés "
                                 "non calculés.",))
    try:
        siting = diagnose_siting(inputs, replace(params, k=ks[0], scenarios=tuple(ks[1:])),
                                 overview=overview, travel=travel, demand=demand)
    except InputError as exc:
        return StepResult(None, (f"Implantation non calculée : {exc.fr}",))
    return StepResult(siting, (f"Implantation : {len(siting.results)} scénario(s) "
                               f"({travel.label}).",))


@dataclass(frozen=True, eq=False)
class SiteCatchment:
    """One site's catchment and the peer groups it allows (one computation, every output).

    Attributes
    ----------
    site
        The site.
    catchment
        Communes whose town hall is within T of the site (also across the border), their
        births and the isochrone.
    cohorts
        Peer groups the catchment fills (``None`` when no uptake rate is set).
    """

    site: Site
    catchment: Catchment
    cohorts: CohortPlan | None


def site_catchments(inputs: DiagnosisInputs, params: DiagnosisParams, *, overview: Overview,
                    travel: Travel, sites: Sequence[Site]) -> tuple[SiteCatchment, ...]:
    """Catchment and cohorts of each site (the one loop over sites of the code base).

    The catchments come from one matrix, every commune to every site
    (:func:`~diagnosis.analyses.compute_site_catchments`).
    """
    from diagnosis.analyses import compute_site_catchments, compute_site_cohorts

    out = []
    catchments = compute_site_catchments(overview, inputs.communes, sites, travel=travel,
                                         max_minutes=params.max_minutes)
    for site, catch in zip(sites, catchments, strict=True):
        plan = (compute_site_cohorts(catch, uptake_rate=params.uptake_rate,
                                     **_cohort_options(params))
                if params.uptake_rate is not None else None)
        out.append(SiteCatchment(site=site, catchment=catch, cohorts=plan))
    return tuple(out)


def studied_site(inputs: DiagnosisInputs, params: DiagnosisParams,
                 siting: SitingScenarios | None) -> Site | None:
    """The site whose partners and cohorts are reported.

    ``params.site`` when given (:func:`resolve_site`: a loaded facility, imported ones
    included, or a proposed point), else the first recommended site of the main scenario,
    else none.
    """
    if params.site:
        return resolve_site(inputs.facilities, params.site, user_sites=params.user_sites)
    first = recommended(siting, inputs.facilities, params.user_sites)
    return first[0] if first else None


def diagnose_partners(inputs: DiagnosisInputs, params: DiagnosisParams, *, overview: Overview,
                      travel: Travel, site: Site | None) -> PartnerTables:
    """Partners within T of the site and the institutions to meet."""
    from diagnosis.analyses import compute_partners

    return compute_partners(overview, inputs.facilities, site, travel=travel,
                            max_minutes=params.max_minutes, dep_name=inputs.dep_name)


def _cohort_options(params: DiagnosisParams) -> dict[str, Any]:
    return {"group_size": params.group_size, "birth_window_months": params.birth_window_months,
            "facilitators": params.facilitators,
            "groups_per_facilitator": params.groups_per_facilitator}


def territory_cohorts(overview: Overview, params: DiagnosisParams) -> CohortPlan | None:
    """Peer groups of the whole territory (when no site is studied)."""
    births = overview.summary.get("births_2024")
    if params.uptake_rate is None or births is None:
        return None
    from diagnosis.cohorts import compute_cohorts
    plan = compute_cohorts(float(births), uptake_rate=params.uptake_rate,
                           **_cohort_options(params))
    year = (overview.summary.get("data_years") or {}).get("births_2024", 2024)
    return replace(plan, params={**plan.params,
                                 "scope": f"naissances {year} de tout le territoire"})


def catchments_layer(catchments: Sequence[SiteCatchment]) -> gpd.GeoDataFrame:
    """Isochrones of sites as one layer (``site_id``, ``name``, ``max_minutes``…)."""
    areas = [c.catchment.area.assign(site_id=c.site.site_id, name=c.site.name)
             for c in catchments]
    if not areas:
        return gpd.GeoDataFrame({"site_id": [], "name": []}, geometry=[], crs=WGS84)
    return gpd.GeoDataFrame(pd.concat(areas, ignore_index=True), crs=WGS84)


def site_area(site: Site, params: DiagnosisParams, travel: Travel) -> gpd.GeoDataFrame:
    """The isochrone of one site (for a map), with its ``site_id`` and ``name``."""
    from diagnosis.analyses import compute_catchment

    return compute_catchment(site.geometry, travel=travel, max_minutes=params.max_minutes
                             ).assign(site_id=site.site_id, name=site.name)


# --------------------------------------------------------------------------------------
# Comparisons: the territory's parts, or the territory among its peers
# --------------------------------------------------------------------------------------


def compare_overviews(territories: Sequence[Territory], inputs: DiagnosisInputs, *,
                      threshold_m: float) -> tuple[list[Overview], list[str]]:
    """Overviews of ``territories`` on the loaded data; skipped ones with a French reason.

    Every territory is diagnosed exactly as on its own (same data, same threshold), so
    a comparison row equals that territory's own diagnosis. A territory none of whose
    communes has known births (e.g. outside a user's INSEE file) is skipped, not shown
    with made-up or empty figures; a partly covered one is kept and says so.
    """
    overviews, skipped = [], []
    # the facilities and each commune's offer are prepared once for all territories
    found = compute_overviews(territories, inputs.communes, inputs.facilities,
                              threshold_m=threshold_m, sources=list(inputs.sources))
    for t, ov in zip(territories, found, strict=True):
        if ov is None:
            skipped.append(f"{t.label} : aucune donnée chargée, territoire écarté")
            continue
        if ov.summary.get("n_communes_births_known", 1) == 0:  # only what is known is shown
            skipped.append(f"{t.label} : aucune naissance connue (les fichiers INSEE chargés "
                           "ne couvrent aucune de ses communes), territoire écarté")
            continue
        overviews.append(ov)
    return overviews, skipped


def territory_comparison(territories: Sequence[Territory], inputs: DiagnosisInputs, *,
                         threshold_m: float) -> tuple[pd.DataFrame | None, list[str]]:
    """Territories side by side, and those skipped for lack of data.

    One row per territory (see :func:`compare_overviews`); the table is None when no
    territory has data.
    """
    from diagnosis.comparison import compare_territories
    overviews, skipped = compare_overviews(territories, inputs, threshold_m=threshold_m)
    return (compare_territories(overviews) if overviews else None), skipped


def peer_comparison(inputs: DiagnosisInputs, overview: Overview, peers: Sequence[Territory],
                    *, threshold_m: float) -> pd.DataFrame | None:
    """The territory among its ``peers`` (its report's comparison); None without data.

    ``peers`` come from the composition root (e.g.
    :func:`data_sources.workspace.peer_territories`); a département is compared through
    its parts only, the others with themselves first.
    """
    from diagnosis.comparison import compare_territories
    overviews, _ = compare_overviews(peers, inputs, threshold_m=threshold_m)
    if not overviews:
        return None
    t = inputs.territory
    return compare_territories(overviews if t.kind == "departement" else [overview, *overviews])


# --------------------------------------------------------------------------------------
# The whole diagnosis
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """A territory's diagnosis: every result, computed once, with how it was computed.

    A part left ``None`` was not asked for or could not be computed; ``notes`` says why
    in French.

    Attributes
    ----------
    params
        The parameters.
    inputs
        The loaded data (territory, communes, facilities, sources, notices, imports).
    travel
        How travel times were obtained (road graph or labelled crow-fly estimate).
    overview
        Needs and offer.
    access
        Accessibility and gaps.
    siting
        Siting scenarios (the main one first).
    recommended
        Catchment and cohorts of each recommended site of the main scenario.
    site
        The site studied (partners and cohorts), if any.
    partners
        Partners of the site studied and institutions.
    catchment
        Catchment of the site studied: the same one in every section of the report.
    cohorts
        Peer groups of the site studied (or of the whole territory without a site).
    comparison
        The territory among its peers (set by the composition root, which loads them).
    context
        Births over ten years with their trend, CAF coverage rates with their year, and
        the quartiers prioritaires with the families living in them
        (:class:`diagnosis.context.TerritoryContext`; :func:`diagnose_context`).
    offer_levels
        The offer by type with its places per 100 children under 3 and the CAF coverage
        rate, for the territory, its département and France (:func:`diagnose_offer_levels`).
    base_layers
        Roads and water of the study's OpenStreetMap extract, drawn on the report's maps
        (set by the composition root, which reads them:
        :func:`data_sources.osm_base.load_base_layers`); ``None``: commune outlines only.
    base_tiles
        OpenStreetMap tiles drawn pale under the report's maps, or why they are missing
        (:func:`data_sources.osm_tiles.load_base_tiles`); ``None``: not asked for.
    demand
        Demand points below the commune (IRIS, 200 m cells) when loaded, else ``None``
        (one point per commune).
    modes
        Access to the studied and recommended sites by car, with a pushchair and by
        transit (:func:`diagnosis.travel.compare.compare_modes`), when several travel
        modes were given to :func:`run_diagnosis`.
    notes
        French notes: how each part was computed, or why not.
    """

    params: DiagnosisParams
    inputs: DiagnosisInputs
    travel: Travel
    overview: Overview
    access: AccessResult | None = None
    siting: SitingScenarios | None = None
    recommended: tuple[SiteCatchment, ...] = ()
    site: Site | None = None
    partners: PartnerTables | None = None
    catchment: Catchment | None = None
    cohorts: CohortPlan | None = None
    comparison: pd.DataFrame | None = None
    notes: tuple[str, ...] = field(default=())
    demand: DemandPoints | None = None
    context: TerritoryContext | None = None
    modes: ModeComparison | None = None
    offer_levels: OfferLevels | None = None
    base_layers: gpd.GeoDataFrame | None = None
    base_tiles: BaseTiles | None = None

    @property
    def territory(self) -> Territory:
        """The territory diagnosed."""
        return self.inputs.territory

    @property
    def catchments(self) -> gpd.GeoDataFrame:
        """Isochrones of the recommended sites (the ``zones_de_desserte`` layer)."""
        return catchments_layer(self.recommended)


def run_diagnosis(inputs: DiagnosisInputs, params: DiagnosisParams, *, travel: Travel,
                  parts: Sequence[str] = PARTS, progress: Progress | None = None,
                  overview: Overview | None = None,
                  access_step: StepResult[AccessResult] | None = None,
                  siting_step: StepResult[SitingScenarios] | None = None,
                  compare: Mapping[str, Travel] | None = None,
                  context: TerritoryContext | None = None,
                  offer_levels: OfferLevels | None = None) -> Diagnosis:
    """Compute the diagnosis of a territory: overview, access, siting, partners, cohorts.

    A part that cannot be computed (no facility of any type, no candidate host, no
    birth) is left ``None`` with a French note saying why; the others go on.

    Parameters
    ----------
    inputs
        The loaded territory (e.g. :class:`data_sources.workspace.Workspace`).
    params
        The options.
    travel
        How travel times are computed (:func:`data_sources.workspace.load_travel`).
    parts
        Parts to compute among :data:`PARTS` (``"overview"`` always is).
    progress
        Called with the French name of each step.
    overview
        An overview already computed with the same inputs and parameters (the app's cache).
    access_step, siting_step
        The access and siting steps already computed with the same inputs and
        parameters (:func:`access_part`, :func:`siting_part`: the app's cache), so the
        diagnosis holds the very results the pages showed.
    context, offer_levels
        :func:`diagnose_context` and :func:`diagnose_offer_levels` of the same inputs and
        overview, already computed (they read no option of ``params``: the app computes
        them once per territory).
    compare
        Mode label -> travel engine (car first): the studied and recommended sites are
        also timed in each mode (:attr:`Diagnosis.modes`, « qui perd l'accès sans
        voiture »).

    Returns
    -------
    Diagnosis
    """
    from diagnosis.formatting import fr_percent
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise InputError(f"parts={unknown!r} are not parts of a diagnosis; use some of "
                         f"{PARTS}", argument="parts", value=unknown, candidates=PARTS)
    step = progress or (lambda _name: None)
    notes: list[str] = []
    step("besoins et offre")
    ov = overview if overview is not None else diagnose_overview(inputs, params)
    demand = diagnose_demand(inputs, ov)
    if context is None:
        context = diagnose_context(inputs)
    if offer_levels is None:
        offer_levels = diagnose_offer_levels(inputs, ov, context)
    access = siting = None
    if "access" in parts:
        step("temps d'accès et manques")
        done_access = access_step if access_step is not None else access_part(
            inputs, params, overview=ov, travel=travel, demand=demand)
        access = done_access.value
        notes += list(done_access.notes)
    if "siting" in parts:
        step("implantation")
        done_siting = siting_step if siting_step is not None else siting_part(
            inputs, params, overview=ov, travel=travel, demand=demand)
        siting = done_siting.value
        notes += list(done_siting.notes)
    rec = recommended(siting, inputs.facilities, params.user_sites)
    site = studied_site(inputs, params, siting) if ("partners" in parts or "cohorts" in parts
                                                    or params.site) else None
    partners = catchment = cohorts = None
    if "partners" in parts:
        step("partenaires")
        partners = diagnose_partners(inputs, params, overview=ov, travel=travel, site=site)
    by_site: tuple[SiteCatchment, ...] = ()
    if "cohorts" in parts or "siting" in parts:
        step("zones desservies et groupes de pairs")
        wanted = list(rec)
        if site is not None and site.site_id not in {s.site_id for s in rec}:
            wanted.append(site)
        computed = site_catchments(inputs, params, overview=ov, travel=travel, sites=wanted)
        by_site = tuple(c for c in computed if c.site.site_id in {s.site_id for s in rec})
        mine = next((c for c in computed if site is not None
                     and c.site.site_id == site.site_id), None)
        if mine is not None:
            catchment, cohorts = mine.catchment, mine.cohorts
            if cohorts is not None and params.uptake_rate is not None:
                notes.append(f"Groupes de pairs : naissances des {len(catchment.communes)} "
                             f"communes à moins de {params.max_minutes:g} min de "
                             f"« {site.name if site else ''} », taux de participation supposé "
                             f"{fr_percent(params.uptake_rate)} (hypothèse).")
        elif "cohorts" in parts:
            cohorts = territory_cohorts(ov, params)
            if params.uptake_rate is None:
                pass
            elif cohorts is None:
                notes.append("Naissances inconnues : groupes de pairs non calculés.")
            else:
                notes.append("Groupes de pairs : naissances de tout le territoire (aucun "
                             "site étudié), participation supposée "
                             f"{fr_percent(params.uptake_rate)} (hypothèse).")
    modes = None
    if compare:
        step("comparaison des modes de déplacement")
        modes = diagnose_modes(ov, [*rec, *([site] if site is not None else [])], compare,
                               params=params, notes=notes)
    return Diagnosis(params=params, inputs=inputs, travel=travel, overview=ov, access=access,
                     siting=siting, recommended=by_site, site=site, partners=partners,
                     catchment=catchment, cohorts=cohorts, notes=tuple(notes), demand=demand,
                     context=context, modes=modes, offer_levels=offer_levels)


def diagnose_modes(overview: Overview, sites: Sequence[Site], travels: Mapping[str, Travel],
                   *, params: DiagnosisParams, notes: list[str]) -> ModeComparison | None:
    """The sites timed in each mode from every commune (:func:`compare_modes`)."""
    from diagnosis.analyses import demand_points
    from diagnosis.travel.compare import compare_modes

    unique = list({s.site_id: s for s in sites}.values())
    if not unique:
        notes.append("Comparaison des modes non calculée : aucun site étudié ni recommandé.")
        return None
    pts = demand_points(overview)
    gdf = gpd.GeoDataFrame({"site_id": [s.site_id for s in unique],
                            "name": [s.name for s in unique]},
                           geometry=[s.geometry for s in unique], crs=WGS84)
    try:
        return compare_modes(pts, gdf, travels, max_minutes=params.max_minutes)
    except InputError as exc:
        notes.append(f"Comparaison des modes non calculée : {exc.fr}")
        return None
