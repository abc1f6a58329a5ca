"""Every ``st.cache_data`` / ``st.cache_resource`` wrapper of the app, in one place.

Workspaces and overviews are keyed by the territory code and the uploaded files'
hashes (the bytes themselves are passed as ``_files``, which Streamlit does not hash).
They are cached as shared resources (not copied on each read): pages must not mutate
them.

The computations (the pipeline's steps, tables, maps) run on long-lived compute threads
(:func:`on_worker`), never on the script run's own thread: Streamlit runs each rerun on a
new thread, and pyproj keeps each CRS's PROJ object per thread, so every reprojection on
a fresh thread parses its CRS definitions again (0.1-0.3 s of each rerun on the demo
département, measured with ``bench/app_interactions.py``).
"""

from __future__ import annotations

import datetime as dt
import gc
import io
import tempfile
import threading
import zipfile
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import folium
import geopandas as gpd
import pandas as pd
import streamlit as st
import streamlit_folium

from app_pages import FileList, FilesKey
from data_sources import demo
from data_sources.cog import load_cog, resolve
from data_sources.fetch import FetchProgress, FetchResult, fetch_territory
from data_sources.store import ledger_table, read_store
from data_sources.workspace import (
    Workspace,
    load_travel,
    load_workspace,
    peer_territories,
)
from diagnosis.analyses import (
    AccessResult,
    Site,
    SitingScenarios,
)
from diagnosis.comparison import split_territory
from diagnosis.context import TerritoryContext
from diagnosis.csvfile import french_csv_bytes
from diagnosis.errors import MaillageError
from diagnosis.exports import diagnosis_export_layers, export_csv_tables, export_geopackage
from diagnosis.maps import split_layers
from diagnosis.offer_levels import OfferLevels
from diagnosis.overview import Overview, commune_table, offer_table
from diagnosis.partners import export_partners_csv
from diagnosis.pipeline import (
    Diagnosis,
    DiagnosisParams,
    StepResult,
    access_part,
    diagnose_context,
    diagnose_demand,
    diagnose_offer_levels,
    diagnose_overview,
    peer_comparison,
    resolve_site,
    run_diagnosis,
    site_area,
    siting_part,
    step_params,
    territory_comparison,
)
from diagnosis.presentation import (
    access_summary_table,
    comparison_metrics,
    comparison_table,
    facility_options,
    french_partners_table,
    host_options,
    institutions_table,
    partner_groups,
    partners_export_frame,
    priority_table,
    siting_input_problems,
    white_zone_table,
)
from diagnosis.schema import Territory
from diagnosis.settings import DEFAULT_MAX_MINUTES, DEFAULT_THRESHOLD_M
from diagnosis.study_calendar import parse_depart
from diagnosis.travel import Travel

#: Name prefix of the compute threads (two: the cores of a small server; sessions that
#: compute at the same time share them).
WORKER_PREFIX = "maillage-compute"
_WORKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix=WORKER_PREFIX)
_T = TypeVar("_T")


def on_worker(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """``fn(*args, **kwargs)`` computed on a long-lived compute thread; its result or error.

    ``fn`` is pure computation (no ``st.*`` call, no cached wrapper): the script thread
    gathers the inputs through the cached wrappers, the compute thread does the work.
    Called from a compute thread, ``fn`` runs in place (a thread never waits for itself).
    """
    if threading.current_thread().name.startswith(WORKER_PREFIX):
        return fn(*args, **kwargs)
    return _WORKERS.submit(fn, *args, **kwargs).result()


@st.cache_data(show_spinner=False)
def departement_options() -> dict[str, str]:
    """Département code -> label ``"44 — Loire-Atlantique"``, in code order."""
    dep = load_cog().departements.sort_values("code")
    return {str(c): f"{c} — {n}" for c, n in zip(dep["code"], dep["name"], strict=True)}


@st.cache_data(show_spinner=False)
def epci_options(dep_code: str) -> dict[str, str]:
    """EPCIs with at least one current commune in the département: SIREN -> name."""
    cog = load_cog()
    com = cog.communes
    here = com.loc[(com["kind"] == "commune") & (com["dep_code"] == dep_code)]
    sirens = set(here["epci_code"].dropna()) - {""}
    if "ept_code" in here:  # the EPT of the Grand Paris are listed with the EPCIs
        sirens |= set(here["ept_code"].dropna()) - {""}
    epci = cog.epci.loc[cog.epci["code"].isin(sirens)].sort_values("name")
    return {str(c): str(n) for c, n in zip(epci["code"], epci["name"], strict=True)}


@st.cache_data(show_spinner=False)
def commune_options(dep_code: str, epci_code: str) -> dict[str, str]:
    """Current communes of an EPCI (or of the département): INSEE code -> ``"Name (code)"``."""
    com = load_cog().communes
    sel = com.loc[(com["kind"] == "commune") & (com["dep_code"] == dep_code)]
    if epci_code:
        member = sel["epci_code"] == epci_code
        if "ept_code" in sel:
            member |= sel["ept_code"] == epci_code
        sel = sel.loc[member]
    sel = sel.sort_values("name")
    return {str(c): f"{n} ({c})" for c, n in zip(sel["code"], sel["name"], strict=True)}


@st.cache_data(show_spinner=False)
def commune_epci(code: str) -> str:
    """SIREN of a current commune's EPCI (``""`` when it has none)."""
    com = load_cog().communes
    row = com.loc[(com["code"] == code) & (com["kind"] == "commune"), "epci_code"]
    value = row.iloc[0] if len(row) else ""
    return str(value) if isinstance(value, str) else ""


@st.cache_data(show_spinner=False, max_entries=256)
def territory(query: str) -> Territory:
    """Resolve a code or a name (raises :class:`diagnosis.errors.InputError`)."""
    return resolve(query)


@st.cache_resource(show_spinner="Chargement des données du territoire…", max_entries=8)
def workspace(code: str, files_key: FilesKey, _files: FileList) -> Workspace:
    """The territory's loaded data with the user's files (see :func:`load_workspace`).

    INSEE files (recognised by their header) give the communes' needs; the others are
    facility files.
    """
    insee, facilities = split_insee_files(_files)
    loaded = load_workspace(code, facility_files=facilities, insee_files=insee)
    settle_heap()
    return loaded


def settle_heap() -> None:
    """Collect the garbage, then exempt what is left from Python's full collections.

    With a département loaded, the heap holds ~170,000 objects that live as long as the
    caches, and each full collection walks them all: 0.3-0.4 s, on whichever interaction
    it happens to fall. Frozen after loading (:func:`gc.freeze`), they are skipped; they
    are still freed when the cache lets them go (reference counting), only a reference
    cycle among them would stay. Called where a territory is loaded, already a slow step.
    """
    gc.collect()
    gc.freeze()


_SETTLED_PAGES: set[str] = set()
_SETTLED_LOCK = threading.Lock()


def settle_after_first_visit(page: str) -> None:
    """:func:`settle_heap` once per page and process, after the page's first run.

    A page's first visit imports its modules (maps, analyses, solver…) and fills its
    caches: ~50,000 objects that live as long as the process, which every later full
    collection walked again (20-40 ms, on whichever interaction it fell). Frozen after
    that first run, which is already the slow one.
    """
    with _SETTLED_LOCK:
        if page in _SETTLED_PAGES:
            return
        _SETTLED_PAGES.add(page)
    settle_heap()


def split_insee_files(files: FileList) -> tuple[list[tuple[str, bytes]],
                                                list[tuple[str, bytes]]]:
    """(INSEE files, facility files) among uploaded files, by the first line's columns."""
    from data_sources.insee_files import looks_like_insee_file

    insee: list[Any] = []
    facilities: list[Any] = []
    for name, data in files:
        head = data[:4096].decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()
        sep = ";" if head and head[0].count(";") >= head[0].count(",") else ","
        columns = [c.strip().strip('"') for c in head[0].split(sep)] if head else []
        (insee if name.lower().endswith(".csv") and looks_like_insee_file(columns)
         else facilities).append((name, data))
    return insee, facilities


@st.cache_resource(show_spinner="Calcul du diagnostic…", max_entries=16)
def overview(code: str, files_key: FilesKey, threshold_m: float, _files: FileList) -> Overview:
    """The diagnosis overview of the territory (the pipeline's :func:`diagnose_overview`)."""
    ws = workspace(code, files_key, _files)
    return on_worker(diagnose_overview, ws,
                     DiagnosisParams(territory=code, threshold_m=threshold_m))


@dataclass(frozen=True, eq=False)
class OverviewTables:
    """The Territoire page's tables and the CSV file of the commune table."""

    offer: pd.DataFrame
    communes: pd.DataFrame
    communes_csv: bytes


@st.cache_resource(show_spinner=False, max_entries=16)
def overview_tables(code: str, files_key: FilesKey, threshold_m: float,
                    _files: FileList) -> OverviewTables:
    """Offer and commune tables of :func:`overview` (built once, not on each rerun)."""
    ov = overview(code, files_key, threshold_m, _files)
    return on_worker(_overview_tables, ov)


def _overview_tables(ov: Overview) -> OverviewTables:
    table = commune_table(ov)
    return OverviewTables(offer=offer_table(ov), communes=table,
                          communes_csv=french_csv_bytes(table))


# --------------------------------------------------------------------------------------
# The study's diagnosis (pages Besoins et lacunes, Implantation, Partenaires, Rapport).
# A study is one DiagnosisParams (app_pages/_study.py); its steps are cached on the options
# each reads (diagnosis.pipeline.step_params), and the one Diagnosis of the study holds the
# very step results the pages showed. Travel times come from ``travel(code, files_key,
# mode)``, never passed as an argument (a road graph is not hashable cheaply).
# --------------------------------------------------------------------------------------


def _loaded(code: str, files_key: FilesKey, files: FileList) -> tuple[Workspace, Overview]:
    """Workspace and overview at the default threshold (as the command line computes)."""
    return (workspace(code, files_key, files),
            overview(code, files_key, DEFAULT_THRESHOLD_M, files))


#: What the transit and pushchair engines are built from: GTFS zips, street extract,
#: study date (ISO) and departure hour (:func:`transit_key`).
TransitKey = tuple[tuple[str, ...], str, str, str]


def transit_key(params: DiagnosisParams) -> TransitKey:
    """The options of a study the transit and pushchair engines read (a cache key)."""
    if params.mode not in ("transit", "poussette"):
        return ((), "", "", "")
    day = params.transit_day().isoformat() if params.mode == "transit" else ""
    return (tuple(params.gtfs_files), params.osm_pbf, day, params.depart)


@st.cache_resource(show_spinner=False, ttl=3600, max_entries=8)
def travel(code: str, files_key: FilesKey, mode: str, _files: FileList,
           transit: TransitKey = ((), "", "", "")) -> Travel:
    """How travel times are computed: ``"crow"``, or the ``"drive"``/``"walk"`` road graph.

    ``poussette`` and ``transit`` are built from ``transit`` (:func:`transit_key`).

    Without a road graph (offline, Overpass down) the crow-fly estimate is used and
    ``Travel.note`` says why; kept an hour, so a later try can succeed.
    """
    gtfs, pbf, day, depart = transit
    if mode in ("transit", "poussette"):
        return load_travel(workspace(code, files_key, _files), mode, gtfs_files=gtfs,
                           osm_pbf=pbf or None,
                           day=dt.date.fromisoformat(day) if day else None,
                           depart_s=parse_depart(depart))
    return load_travel(workspace(code, files_key, _files), mode)


@st.cache_data(show_spinner=False, max_entries=32)
def analysed_types(code: str, files_key: FilesKey, _files: FileList) -> list[str]:
    """Facility types with at least one loaded facility (town halls apart), schema order."""
    ws, ov = _loaded(code, files_key, _files)
    present = set(ws.facilities["type"].astype(str))
    return [t for t in ov.params.get("types", ()) if t in present and t != "mairie"]


@st.cache_data(show_spinner=False, max_entries=32)
def facility_choices(code: str, files_key: FilesKey, host_only: bool,
                     _files: FileList) -> dict[str, str]:
    """The territory's facilities (or host facilities only): facility_id -> label."""
    _, ov = _loaded(code, files_key, _files)
    return host_options(ov) if host_only else facility_options(ov)


def study_site(code: str, files_key: FilesKey, study: DiagnosisParams, site_id: str,
               files: FileList) -> Site:
    """The site ``site_id`` of the study (:func:`diagnosis.pipeline.resolve_site`)."""
    return resolve_site(workspace(code, files_key, files).facilities, site_id,
                        user_sites=study.user_sites)


_R = TypeVar("_R")


def _run_step(part: Callable[..., StepResult[_R]], code: str, files_key: FilesKey,
              params: DiagnosisParams, files: FileList) -> StepResult[_R]:
    """Run one step of the pipeline on the loaded territory, its travel engine and demand."""
    ws, ov = _loaded(code, files_key, files)
    how = travel(code, files_key, params.mode, files, transit_key(params))
    return on_worker(lambda: part(ws, params, overview=ov, travel=how,
                                  demand=diagnose_demand(ws, ov)))


@st.cache_resource(show_spinner="Calcul des temps d'accès et des manques…", max_entries=32)
def _access_step(code: str, files_key: FilesKey, params: DiagnosisParams,
                 _files: FileList) -> StepResult[AccessResult]:
    return _run_step(access_part, code, files_key, params, _files)


def access(code: str, files_key: FilesKey, study: DiagnosisParams,
           files: FileList) -> StepResult[AccessResult]:
    """Accessibility, zones blanches and priority of the study (:func:`access_part`)."""
    return _access_step(code, files_key, step_params(study, "access"), files)


@st.cache_resource(show_spinner="Recherche des meilleurs sites…", max_entries=32)
def _siting_step(code: str, files_key: FilesKey, params: DiagnosisParams,
                 _files: FileList) -> StepResult[SitingScenarios]:
    return _run_step(siting_part, code, files_key, params, _files)


@dataclass(frozen=True, eq=False)
class AccessTables:
    """The Besoins et lacunes page's tables."""

    priority: pd.DataFrame
    access: pd.DataFrame
    white_zones: pd.DataFrame


@st.cache_resource(show_spinner=False, max_entries=32)
def access_tables(code: str, files_key: FilesKey, params: DiagnosisParams,
                  _files: FileList) -> AccessTables:
    """Priority, access and zones blanches tables of :func:`access` (computed)."""
    res = access(code, files_key, params, _files).value
    assert res is not None  # the page shows the note instead
    from diagnosis.needs import data_years, year_of

    births_year = year_of(data_years(workspace(code, files_key, _files).communes),
                          "births_2024")
    return on_worker(lambda: AccessTables(
        priority=priority_table(res.gaps, births_year=births_year),
        access=access_summary_table(res.access), white_zones=white_zone_table(res.gaps)))


@st.cache_resource(show_spinner="Calcul de la zone desservie…", max_entries=64)
def _catchment(code: str, files_key: FilesKey, params: DiagnosisParams, site_id: str,
               _files: FileList) -> gpd.GeoDataFrame:
    facilities = workspace(code, files_key, _files).facilities
    how = travel(code, files_key, params.mode, _files, transit_key(params))
    return on_worker(lambda: site_area(resolve_site(facilities, site_id,
                                                    user_sites=params.user_sites),
                                       params, how))


def catchment(code: str, files_key: FilesKey, study: DiagnosisParams, site_id: str,
              files: FileList) -> gpd.GeoDataFrame:
    """Isochrone of a site of the study (:func:`site_area`), with its ``site_id``, ``name``."""
    return _catchment(code, files_key, step_params(study, "siting"), site_id, files)


@st.cache_data(show_spinner=False, max_entries=64)
def siting_problems(code: str, files_key: FilesKey, k_values: tuple[int, ...],
                    host_types: tuple[str, ...], points: tuple[tuple[float, float], ...],
                    _files: FileList) -> list[str]:
    """French messages for siting inputs that cannot work (see :func:`siting_input_problems`)."""
    _, ov = _loaded(code, files_key, _files)
    return on_worker(siting_input_problems, ov, k_values=k_values, host_types=host_types,
                     user_points=points)


@st.cache_resource(show_spinner=False, max_entries=8)
def territory_context(code: str, files_key: FilesKey,
                      _files: FileList) -> tuple[TerritoryContext, OfferLevels]:
    """The territory's context and offer levels: no study option changes them."""
    ws, ov = _loaded(code, files_key, _files)

    def compute() -> tuple[TerritoryContext, OfferLevels]:
        context = diagnose_context(ws)
        return context, diagnose_offer_levels(ws, ov, context)
    return on_worker(compute)


@st.cache_resource(show_spinner="Calcul du diagnostic de l'étude…", max_entries=16)
def diagnosis(code: str, files_key: FilesKey, study: DiagnosisParams,
              _files: FileList) -> Diagnosis:
    """The one diagnosis of the study: what the pages, the PDF and the exports show.

    Its access and siting are the cached steps the pages Besoins and Implantation showed
    (the very objects); the rest is computed by :func:`run_diagnosis`.
    """
    ws, ov = _loaded(code, files_key, _files)
    context, offer_levels = territory_context(code, files_key, _files)
    compare = None
    if study.mode == "transit":  # who loses access without a car, for the same sites
        pushchair = replace(study, mode="poussette")
        compare = {"voiture": travel(code, files_key, "crow", _files),
                   "poussette": travel(code, files_key, "poussette", _files,
                                       transit_key(pushchair)),
                   "transports en commun": travel(code, files_key, "transit", _files,
                                                  transit_key(study))}
    return on_worker(
        run_diagnosis, ws, study,
        travel=travel(code, files_key, study.mode, _files, transit_key(study)),
        overview=ov, compare=compare, access_step=access(code, files_key, study, _files),
        siting_step=_siting_step(code, files_key, step_params(study, "siting"), _files),
        context=context, offer_levels=offer_levels)


@dataclass(frozen=True, eq=False)
class PartnerView:
    """What the Partenaires page shows of a site's partners, prepared once per study."""

    site: Site
    near: gpd.GeoDataFrame
    groups: dict[str, pd.DataFrame]
    institutions: pd.DataFrame
    csv: bytes


def partner_key(study: DiagnosisParams) -> tuple[DiagnosisParams, str | None]:
    """What a study's partners depend on: its siting options (travel, T, proposed points,
    the recommended sites) and its studied site; not its peer-group assumptions."""
    return step_params(study, "siting"), study.site


def partner_view(code: str, files_key: FilesKey, study: DiagnosisParams,
                 files: FileList) -> PartnerView | None:
    """The tables and the CSV file of the study's partners (``None`` without a site)."""
    return _partner_view_of(code, files_key, partner_key(study), study, files)


@st.cache_resource(show_spinner="Recherche des partenaires…", max_entries=32)
def _partner_view_of(code: str, files_key: FilesKey,
                     key: tuple[DiagnosisParams, str | None], _study: DiagnosisParams,
                     _files: FileList) -> PartnerView | None:
    return on_worker(_partner_view, diagnosis(code, files_key, _study, _files))


def _partner_view(diag: Diagnosis) -> PartnerView | None:
    if diag.partners is None or diag.site is None:
        return None
    near = diag.partners.layers["near_site"]
    return PartnerView(site=diag.site, near=near, groups=partner_groups(near),
                       institutions=institutions_table(diag.partners.layers.get(
                           "institutions")),
                       csv=export_partners_csv(french_partners_table(
                           partners_export_frame(diag.partners.layers),
                           {str(r.get("key", "")): str(r.get("title", ""))
                            for r in diag.inputs.sources})))


@dataclass(frozen=True, eq=False)
class ComparisonView:
    """The territory's parts compared, and what the page shows of them (built once)."""

    table: pd.DataFrame | None
    skipped: tuple[str, ...]
    metrics: dict[str, str]
    shown: pd.DataFrame


@st.cache_resource(show_spinner="Comparaison des territoires…", max_entries=16)
def comparison(code: str, files_key: FilesKey, by: str, _files: FileList) -> ComparisonView:
    """The territory's EPCIs or communes compared (as ``python -m diagnosis compare --by``)."""
    ws = workspace(code, files_key, _files)
    children = split_territory(ws.territory, load_cog(), by=by)

    def compute() -> ComparisonView:
        table, skipped = territory_comparison(children, ws, threshold_m=DEFAULT_THRESHOLD_M)
        if table is None:
            return ComparisonView(None, tuple(skipped), {}, pd.DataFrame())
        return ComparisonView(table, tuple(skipped), comparison_metrics(table),
                              comparison_table(table))
    return on_worker(compute)


@st.cache_resource(show_spinner=False, max_entries=8)
def neighbour_comparison(code: str, files_key: FilesKey, _files: FileList) -> pd.DataFrame | None:
    """The territory among its peers, for the report (as ``python -m diagnosis report``).

    An EPCI among the EPCIs of its département(s), a commune among the communes of its
    EPCI, a département through its EPCIs; None when there is no peer with data.
    """
    ws, ov = _loaded(code, files_key, _files)
    return on_worker(peer_comparison, ws, ov, peer_territories(ws.territory),
                     threshold_m=DEFAULT_THRESHOLD_M)


def report_pdf(code: str, files_key: FilesKey, files: FileList, study: DiagnosisParams, *,
               author: str, progress: Callable[[str], None] | None = None,
               osm_tiles: bool = False) -> bytes:
    """The PDF report of the study's diagnosis (as ``python -m diagnosis report``).

    Not cached itself: it reports its steps to ``progress`` (a page's progress bar).
    ``osm_tiles``: draw an OpenStreetMap tile base under the maps (online, cached tiles).
    """
    from data_sources.osm_base import with_map_bases
    from diagnosis.report import build_diagnosis_pdf  # heavy (WeasyPrint): on demand

    step = progress or (lambda _name: None)
    step("accessibilité, manques, implantation")
    diag = diagnosis(code, files_key, study, files)
    step("comparaison avec les territoires voisins")
    diag = with_map_bases(replace(diag, comparison=neighbour_comparison(code, files_key, files)),
                          osm_tiles=osm_tiles)
    return build_diagnosis_pdf(diag, author=author, progress=step)


@st.cache_data(show_spinner="Préparation du GeoPackage…", max_entries=8)
def geopackage(code: str, files_key: FilesKey, study: DiagnosisParams,
               _files: FileList) -> bytes:
    """The study's export layers as GeoPackage bytes (written in a temporary folder)."""
    diag = diagnosis(code, files_key, study, _files)

    def write() -> bytes:
        layers = diagnosis_export_layers(diag)
        with tempfile.TemporaryDirectory(prefix="maillage_") as tmp:
            return export_geopackage(layers, Path(tmp) / "diagnostic.gpkg").read_bytes()
    return on_worker(write)


@st.cache_data(show_spinner="Préparation des tableaux CSV…", max_entries=8)
def csv_zip(code: str, files_key: FilesKey, study: DiagnosisParams, _files: FileList) -> bytes:
    """The study's export layers as one CSV per layer (French Excel), zipped in memory."""
    layers = on_worker(diagnosis_export_layers, diagnosis(code, files_key, study, _files))
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="maillage_") as tmp, \
            zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in export_csv_tables(layers, tmp):
            archive.write(path, arcname=path.name)
    return buffer.getvalue()


#: streamlit-folium's own component (its ``st_folium`` ends by calling it).
FOLIUM_COMPONENT = streamlit_folium._component_func
_CAPTURE_LOCK = threading.Lock()


@st.cache_resource(show_spinner=False, max_entries=48)
def map_component_args(cache_key: Hashable, key: str, height: int,
                        returned_objects: tuple[str, ...],
                        _build: Callable[[], folium.Map]) -> dict[str, Any]:
    """Build the map and the arguments ``st_folium`` gives its component, once per inputs.

    Building a département's map and turning it into Leaflet script costs ~0.7 s; the
    component's arguments are a pure function of the map, so they are kept. They are
    obtained from ``st_folium`` itself (its component is swapped for a recorder under a
    lock; only :func:`show_map` calls ``st_folium``), not re-implemented. ``_build`` runs
    on a compute thread (:func:`on_worker`): it must not call the cached wrappers.
    """
    return on_worker(lambda: component_args(_build(), key=key, height=height,
                                            returned_objects=returned_objects))


def component_args(fmap: folium.Map, *, key: str, height: int,
                   returned_objects: tuple[str, ...]) -> dict[str, Any]:
    """What ``st_folium`` gives its component for ``fmap`` (the app's map arguments).

    The map goes as its frame and its layers (:func:`diagnosis.maps.split_layers`,
    ``st_folium``'s ``feature_group_to_add`` and ``layer_control``): the component's key
    is a hash of the frame alone (the same for every territory and option), so new
    values swap the layers in the map already drawn instead of loading a new one. The
    layers' script first empties streamlit-folium's list of added groups
    (``window.feature_group``), which otherwise keeps every replaced group alive.

    ``render=False``: streamlit-folium renders the map itself once more in any case
    (``Map.render``), so the whole page's render it also does by default is skipped; the
    arguments are the same (``tests/test_app.py``), for 40 % less time.
    """
    recorded: dict[str, Any] = {}

    def record(**kwargs: Any) -> None:
        recorded.update(kwargs)

    groups, control = split_layers(fmap)
    with _CAPTURE_LOCK:
        streamlit_folium._component_func = record
        try:
            streamlit_folium.st_folium(fmap, key=key, height=height, use_container_width=True,
                                       returned_objects=list(returned_objects), render=False,
                                       feature_group_to_add=groups or None,
                                       layer_control=control)
        finally:
            streamlit_folium._component_func = FOLIUM_COMPONENT
    recorded.pop("on_change", None)
    if recorded.get("feature_group"):
        recorded["feature_group"] = f"{FRESH_GROUPS_JS}\n{recorded['feature_group']}"
    return recorded


#: Run before the layers' script: the groups just removed are forgotten.
FRESH_GROUPS_JS = "window.feature_group = [];"


@st.cache_data(show_spinner=False)
def demo_manifest() -> dict[str, Any]:
    """The embedded demo's build manifest (rows not placed, inputs, totals)."""
    return demo.demo_manifest()


@st.cache_data(show_spinner=False, max_entries=32)
def store_ledger(code: str) -> pd.DataFrame | None:
    """The freshness ledger of the territory's local store (French headers), or ``None``."""
    stored = read_store(resolve(code))
    return ledger_table(stored.ledger) if stored is not None else None


#: Wrappers over static data (COG, demo manifest): kept when the local store changes.
_STATIC_WRAPPERS = frozenset({"departement_options", "epci_options", "commune_options",
                              "commune_epci", "territory", "demo_manifest"})


def clear_territory_data() -> None:
    """Clear every cache wrapper of this module that depends on the territory's data.

    Every ``st.cache_*`` wrapper here except :data:`_STATIC_WRAPPERS` (so wrappers added
    later are cleared too): workspaces, overviews, analyses, the ledger.
    """
    for name, obj in list(globals().items()):
        if name in _STATIC_WRAPPERS or getattr(obj, "__module__", "") != __name__:
            continue
        clear = getattr(obj, "clear", None)
        if callable(clear):
            clear()


def update_territory(code: str, *, on_progress: Callable[[FetchProgress], None]) -> FetchResult:
    """Fetch the territory's live sources into the local store, then clear the data caches.

    Not a cache itself: a failed source keeps the previous data (see
    :func:`data_sources.fetch.fetch_territory`).
    """
    from data_sources.fetch import detect_offline

    offline = detect_offline()  # a few seconds at most, instead of minutes of timeouts
    result = fetch_territory(resolve(code), progress=on_progress, offline=offline)
    clear_territory_data()
    return result


# --------------------------------------------------------------------------------------
# The federation's national view (page « Vue nationale »)
# --------------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Diagnostic de toutes les communes de France…", max_entries=2)
def national_overview(files_key: FilesKey, _files: FileList) -> Overview:
    """The overview of every commune of France (needs from the user's national INSEE file)."""
    ws = workspace("FR", files_key, _files)
    return diagnose_overview(ws, DiagnosisParams(territory="FR"))


@st.cache_data(show_spinner="Comparaison des territoires de France…", max_entries=8)
def national_comparison(files_key: FilesKey, by: str,
                        _files: FileList) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Départements, régions or EPCIs of France side by side (:func:`national_table`)."""
    from diagnosis.federation import groups_of, national_table

    ov = national_overview(files_key, _files)
    com = ov.layers["communes"]
    groups = groups_of(com, by)
    cog = load_cog()
    names = {"departement": dict(zip(cog.departements["code"], cog.departements["name"],
                                     strict=True)),
             "region": dict(zip(cog.regions["code"], cog.regions["name"], strict=True))
             if cog.regions is not None else {},
             "epci": dict(zip(cog.epci["code"], cog.epci["name"], strict=True))}[by]
    table = national_table(ov, groups, names)
    # communes absent from the geography, and communes whose births no file gave
    return table, tuple(ov.summary.get("communes_missing", ())) + tuple(
        ov.summary.get("communes_births_unknown", ()))


@st.cache_resource(show_spinner="Contours des territoires…", max_entries=3)
def national_outlines(by: str) -> gpd.GeoDataFrame:
    """Outlines of France's départements, régions or EPCIs (shipped geography)."""
    from data_sources.national import load_national_communes
    from diagnosis.federation import groups_of, territory_outlines

    com = load_national_communes()
    return territory_outlines(com, groups_of(com, by))


def french_csv(df: pd.DataFrame) -> bytes:
    """A table as CSV for French Excel (formulas neutralised)."""
    from diagnosis.csvfile import french_csv_bytes

    return french_csv_bytes(df)


@st.cache_resource(show_spinner=False, max_entries=4)
def departement_geometry(dep_code: str) -> gpd.GeoDataFrame:
    """The shipped commune polygons of a département (for the drawing map)."""
    from data_sources.national import load_national_communes

    return load_national_communes(departements=[dep_code])


@st.cache_data(show_spinner=False, max_entries=32)
def drawn_territory(name: str, polygon_wkt: str, dep_code: str) -> Territory:
    """The communes a drawn polygon covers (:func:`territory_from_polygon`)."""
    import shapely

    from diagnosis.territory import territory_from_polygon

    return territory_from_polygon(shapely.from_wkt(polygon_wkt),
                                  departement_geometry(dep_code), name=name)


@st.cache_data(show_spinner=False, max_entries=64)
def default_travel(code: str, files_key: FilesKey, _files: FileList) -> tuple[str, int, str]:
    """The mode and threshold proposed for the territory, from its density, with why.

    Dense territories (most of the population in communes of 1,500 inhabitants per km²
    or more) walk, 15 minutes; the others drive, 20 minutes, as the crow-fly estimate
    until a road network is chosen: the one rule of the app, the CLI and the report
    (:func:`diagnosis.travel.default_travel_for`).
    """
    from diagnosis.travel import default_travel_for

    try:
        ws = workspace(code, files_key, _files)
    except MaillageError:
        return "crow", int(DEFAULT_MAX_MINUTES), "faute de données, voiture et 20 minutes."
    mode, minutes, reason = on_worker(default_travel_for, ws.own_communes, car_mode="crow")
    return mode, int(minutes), reason


@st.cache_resource(show_spinner="Plan national : couverture des naissances de France…",
                   max_entries=4)
def national_plan(files_key: FilesKey, maisons_key: FilesKey, known_maisons: bool,
                  new: int, mode: str, max_minutes: float, per_departement: int,
                  _files: FileList, _maisons: FileList
                  ) -> tuple[Any, tuple[str, ...], int]:
    """The federation's national plan (:func:`data_sources.national_plan.run_national_plan`).

    Needs of every commune from the user's national INSEE file; existing Maisons from the
    shipped list (``known_maisons``) and the federation's files (``_maisons``). Returns the
    plan, the French notices and the number of communes of France.
    """
    from data_sources.national_plan import load_plan_inputs, run_national_plan

    insee, facilities = split_insee_files(_files)
    inputs = load_plan_inputs("FR", insee_files=insee, facility_files=facilities,
                              maisons_files=list(_maisons), known_maisons=known_maisons,
                              mode=mode)
    plan = run_national_plan(inputs, new=new, max_minutes=max_minutes,
                             per_departement=per_departement)
    return plan, inputs.notices, len(inputs.workspace.territory.communes)


@st.cache_data(show_spinner="Préparation des fichiers du plan…", max_entries=4)
def national_plan_files(files_key: FilesKey, maisons_key: FilesKey, known_maisons: bool,
                        new: int, mode: str, max_minutes: float, per_departement: int,
                        _files: FileList, _maisons: FileList) -> dict[str, bytes]:
    """The plan's downloads: CSV tables, GeoPackage and the short PDF."""
    from diagnosis.plan_exports import export_plan_geopackage, plan_csv_bytes, render_plan_pdf

    plan, notices, _ = national_plan(files_key, maisons_key, known_maisons, new, mode,
                                  max_minutes, per_departement, _files, _maisons)
    out = {f"{k}.csv": plan_csv_bytes(plan, k) for k in
           ("plan_sites", "plan_departements", "plan_sites_departements", "plan_courbe")}
    with tempfile.TemporaryDirectory() as tmp:
        path = export_plan_geopackage(plan, Path(tmp) / "plan_national.gpkg")
        out["plan_national.gpkg"] = path.read_bytes()
    out["plan_national.pdf"] = render_plan_pdf(plan, territory="France", notices=notices)
    return out
