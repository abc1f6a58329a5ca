"""Fetch every live source for a territory and keep the result in the local store.

:func:`fetch_territory` runs, in this order, the loaders of :data:`LIVE_SOURCES`:
commune contours (geo.api.gouv.fr), INSEE Melodi needs, FINESS, BPE, OpenStreetMap
facilities, CNAF coverage rates, data·inclusion, then the BAN geocoder for the rows
that came with an address but no position. Each source runs in its own ``try``: one
failing never blocks the others, and its French reason (naming the source and the URL)
goes to the result and to the ledger.

Then the communes (contours + needs) are composed, the facilities of every source merged
(:func:`data_sources.merge.merge_facilities`) and validated, and a new snapshot is written
atomically (:func:`data_sources.store.write_store`). A source that fails keeps what an
earlier fetch stored for it; when nothing at all could be fetched nothing is written, so
a failed fetch never loses stored data. When the needs or contours cannot be fetched for
a territory the embedded demo covers, no communes layer is written and the demo's
communes stay in use.

See Also
--------
data_sources.store : the store layout and the ledger.
data_sources.__main__ : ``python -m data_sources fetch`` (the command line).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from data_sources import (
    _http,
    annuaire,
    ban,
    boundaries,
    bpe,
    caf,
    demo,
    finess,
    inclusion,
    insee_melodi,
    osm,
)
from data_sources.cog import load_cog, resolve
from data_sources.merge import merge_facilities
from data_sources.registry import SOURCES, get_source
from data_sources.store import (
    LOCK_TIMEOUT_S,
    LedgerEntry,
    StoredTerritory,
    read_store,
    store_lock,
    utc_now,
    write_store,
)
from diagnosis.errors import SourceError
from diagnosis.needs import under3_children
from diagnosis.schema import FACILITY_DTYPES, NEEDS_COLUMNS, Territory, validate_facilities
from diagnosis.settings import METRIC_CRS, WGS84

logger = logging.getLogger(__name__)

#: Registry keys of the live sources, in the order they run (BAN last: it places the
#: address-only rows of the others).
LIVE_SOURCES: tuple[str, ...] = (
    boundaries.GEO_API.key,
    insee_melodi.MELODI.key,
    finess.FINESS.key,
    bpe.BPE.key,
    osm.OSM.key,
    caf.CAF.key,
    inclusion.INCLUSION.key,
    annuaire.ANNUAIRE.key,
    ban.BAN.key,
)
#: Live sources that give facilities.
FACILITY_SOURCES: tuple[str, ...] = (
    finess.FINESS.key, bpe.BPE.key, osm.OSM.key, inclusion.INCLUSION.key,
    annuaire.ANNUAIRE.key,
)
assert all(k in SOURCES for k in LIVE_SOURCES)
#: A refresh giving fewer rows than this share of the rows held is "suspect": the held
#: rows are kept unless the user accepts the new answer (``accept_suspect``).
SUSPECT_MIN_SHARE = 0.5
#: Overall deadline of one source, in seconds (every retry and pause included).
SOURCE_DEADLINE_S: dict[str, float] = {
    finess.FINESS.key: 900.0, bpe.BPE.key: 900.0, osm.OSM.key: 900.0, ban.BAN.key: 900.0,
}
DEFAULT_SOURCE_DEADLINE_S = 600.0

#: Hosts probed to tell, in seconds and once for a whole fetch, whether the machine is online.
PROBE_URLS: tuple[str, ...] = (
    "https://geo.api.gouv.fr", "https://data.geopf.fr", "https://www.data.gouv.fr",
)
PROBE_TIMEOUT_S = 4.0

_URL_RE = re.compile(r"https?://[^\s;'\"]+")
_OFFLINE_RE = re.compile(
    r"offline mode and no (?:cached|downloaded) copy|Maillage is offline|offline mode "
    r"forbids|and Maillage is offline|Maillage est hors ligne|mode hors ligne",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SourceOutcome:
    """What happened to one source during a fetch.

    Attributes
    ----------
    key, title, url
        Registry key, French title and URL of the source.
    status
        ``"ok"``, ``"failed"``, ``"missing-offline"``, ``"skipped"`` (nothing to do) or
        ``"suspect"`` (far fewer rows than held: the held rows were kept).
    message
        French reason of a failure or a skip; a remark when ``ok`` (partial data).
    rows_kept, rows_rejected
        Rows kept in the store, rows dropped (no usable position).
    vintage
        Vintage of the data fetched.
    kept_previous
        The source failed or was suspect, and data of an earlier fetch stays in the store.
    rows_received
        Rows the refused answer gave (``"suspect"`` only).
    """

    key: str
    title: str
    url: str
    status: str
    message: str = ""
    rows_kept: int = 0
    rows_rejected: int = 0
    vintage: str = ""
    kept_previous: bool = False
    rows_received: int = 0

    @property
    def ok(self) -> bool:
        """Whether the source gave data this time."""
        return self.status == "ok"

    @property
    def failed(self) -> bool:
        """Whether the source failed (online error or missing offline copy)."""
        return self.status in {"failed", "missing-offline"}


@dataclass(frozen=True)
class FetchProgress:
    """A progress event: a source starts (``outcome is None``) or ends."""

    key: str
    title: str
    index: int
    total: int
    outcome: SourceOutcome | None = None


ProgressCallback = Callable[[FetchProgress], None]


@dataclass(frozen=True)
class FetchResult:
    """The result of :func:`fetch_territory`.

    Attributes
    ----------
    territory
        The territory fetched.
    outcomes
        One :class:`SourceOutcome` per selected source, in run order.
    snapshot
        The snapshot written, or ``None`` when nothing was written (nothing fetched and
        nothing stored before).
    communes_stored, facilities_stored
        Whether the store now holds communes / facilities for the territory.
    demo_covers
        Whether the embedded demo covers every commune of the territory.
    merge_report
        The structures seen by several sources and merged into one row
        (:data:`data_sources.merge.MERGE_REPORT_COLUMNS`: ids, sources, names, distance),
        or ``None`` when no facility was stored.
    """

    territory: Territory
    outcomes: tuple[SourceOutcome, ...]
    snapshot: Path | None
    communes_stored: bool
    facilities_stored: bool
    demo_covers: bool
    merge_report: pd.DataFrame | None = None

    @property
    def failed(self) -> tuple[SourceOutcome, ...]:
        """The sources that failed."""
        return tuple(o for o in self.outcomes if o.failed)

    @property
    def suspect(self) -> tuple[SourceOutcome, ...]:
        """The sources whose answer was refused as suspect (held rows kept)."""
        return tuple(o for o in self.outcomes if o.status == "suspect")

    @property
    def usable(self) -> bool:
        """Whether a diagnosis can run: stored communes, or the demo covers the territory."""
        return self.communes_stored or self.demo_covers


@dataclass
class _Loaded:
    """What a source runner returns."""

    layer: pd.DataFrame
    vintage: str = ""
    unplaced: pd.DataFrame | None = None
    note: str = ""
    data_date: str = ""  # oldest date of the data served (cache entry, file), for the ledger


@dataclass
class _Run:
    """State shared by the runners of one fetch."""

    area: Territory
    offline: bool | None  # None: the HTTP layer's setting (MAILLAGE_OFFLINE)
    previous: StoredTerritory | None
    fresh: dict[str, _Loaded] = field(default_factory=dict)

    def layer(self, key: str) -> pd.DataFrame | None:
        """Return this run's table of ``key``, else the stored one, else ``None``."""
        if key in self.fresh:
            return self.fresh[key].layer
        if self.previous is not None:
            return self.previous.source_layers.get(key)
        return None


# --- runners ------------------------------------------------------------------------------


def _demo_communes(area: Territory) -> gpd.GeoDataFrame:
    com = demo.load_demo_communes()
    return com.loc[com["code_insee"].isin(area.communes)].reset_index(drop=True)


def demo_covers(area: Territory) -> bool:
    """Whether the embedded demo holds every commune of ``area``."""
    codes = set(demo.load_demo_communes()["code_insee"])
    return bool(area.communes) and all(c in codes for c in area.communes)


def _run_boundaries(run: _Run) -> _Loaded:
    a = run.area
    if a.kind == "epci":
        gdf = boundaries.load_communes(epci_siren=a.code, offline=run.offline)
    else:
        parts = [boundaries.load_communes(dep_code=d, offline=run.offline)
                 for d in a.departements]
        gdf = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry",
                               crs=WGS84)
    gdf = gdf.loc[gdf["code_insee"].isin(a.communes)].reset_index(drop=True)
    if gdf.empty:
        raise SourceError(
            f"{boundaries.GEO_API.key}: none of the {len(a.communes)} communes of {a.label} "
            "came back from geo.api.gouv.fr."
        )
    missing = sorted(set(a.communes) - set(gdf["code_insee"]))
    note = f"{len(missing)} commune(s) sans contour : {', '.join(missing[:10])}" if missing else ""
    return _Loaded(gdf, vintage=f"COG en vigueur le {dt.date.today().isoformat()}", note=note)


def _melodi_vintage(needs: pd.DataFrame) -> str:
    labels = {"births": "naissances", "population": "population", "median_income": "Filosofi",
              "families": "familles", "under3_count": "moins de 3 ans (recensement)"}
    parts = []
    for prefix, label in labels.items():
        years = sorted(int(c[-4:]) for c in needs.columns
                       if re.fullmatch(rf"{prefix}_\d{{4}}", c) and needs[c].notna().any())
        if years:
            parts.append(f"{label} {years[-1]}")
    return ", ".join(parts)


def _run_melodi(run: _Run) -> _Loaded:
    needs = insee_melodi.load_insee_needs(run.area, errors="collect", offline=run.offline)
    failures: dict[str, str] = dict(needs.attrs.get("failures", {}))
    values = needs.drop(columns=["code_insee"])
    if len(failures) == len(insee_melodi.DEFAULT_SERIES) or not values.notna().any().any():
        first = next(iter(failures.values()), "no value for any commune")
        raise SourceError(f"{first} ({len(failures)} series out of "
                          f"{len(insee_melodi.DEFAULT_SERIES)} failed)")
    note = ("séries en échec : " + " ; ".join(f"{k} ({v})" for k, v in sorted(failures.items()))
            if failures else "")
    return _Loaded(needs, vintage=_melodi_vintage(needs), note=note)


def _unplaced(gdf: pd.DataFrame) -> pd.DataFrame | None:
    rows = gdf.attrs.get("unplaced")
    return rows if isinstance(rows, pd.DataFrame) and len(rows) else None


def _run_finess(run: _Run) -> _Loaded:
    gdf = finess.load_finess(run.area, offline=run.offline)
    return _Loaded(gdf, vintage=str(gdf.attrs.get("extraction_date", "")),
                   unplaced=_unplaced(gdf))


def _run_bpe(run: _Run) -> _Loaded:
    gdf = bpe.load_bpe(run.area, offline=run.offline)
    return _Loaded(gdf, vintage=str(gdf.attrs.get("vintage", bpe.DEFAULT_VINTAGE)),
                   unplaced=_unplaced(gdf), note=" ; ".join(gdf.attrs.get("notes", [])))


def _outline(run: _Run) -> gpd.GeoDataFrame:
    com = run.layer(boundaries.GEO_API.key)
    if com is None or len(com) == 0:
        com = _demo_communes(run.area)
    if len(com) == 0:
        raise SourceError(
            f"{osm.OSM.key}: the commune contours of {run.area.label} are needed to query "
            "OpenStreetMap and could not be fetched."
        )
    return gpd.GeoDataFrame(com[["code_insee", "geometry"]], geometry="geometry", crs=com.crs)


def _run_osm(run: _Run) -> _Loaded:
    com = _outline(run)
    polygon = com.to_crs(WGS84).union_all()
    gdf = osm.load_osm_facilities(polygon, communes=com)
    dates = sorted({d for d in gdf["source_date"] if d}) if len(gdf) else []
    return _Loaded(gdf, vintage=dates[-1] if dates else dt.date.today().isoformat())


def _run_caf(run: _Run) -> _Loaded:
    cov = caf.load_coverage(run.area, offline=run.offline)
    years = sorted(set(cov["year"].tolist()))
    return _Loaded(cov, vintage=str(years[-1]) if years else "",
                   note=" ; ".join(cov.attrs.get("notes", [])))


def _run_inclusion(run: _Run) -> _Loaded:
    gdf = inclusion.load_inclusion(run.area, offline=run.offline)
    dates = sorted({str(d)[:10] for d in gdf["source_date"] if d}) if len(gdf) else []
    return _Loaded(gdf, vintage=f"mise à jour jusqu'au {dates[-1]}" if dates else "",
                   unplaced=_unplaced(gdf))


def _run_annuaire(run: _Run) -> _Loaded:
    gdf = annuaire.load_annuaire(run.area, offline=run.offline)
    return _Loaded(gdf, vintage=str(gdf.attrs.get("vintage", "")), unplaced=_unplaced(gdf))


_RUNNERS: dict[str, Callable[[_Run], _Loaded]] = {
    boundaries.GEO_API.key: _run_boundaries,
    insee_melodi.MELODI.key: _run_melodi,
    finess.FINESS.key: _run_finess,
    bpe.BPE.key: _run_bpe,
    osm.OSM.key: _run_osm,
    caf.CAF.key: _run_caf,
    inclusion.INCLUSION.key: _run_inclusion,
    annuaire.ANNUAIRE.key: _run_annuaire,
}


def _address_rows(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Address-only rows with every facility column (for the BAN geocoder)."""
    parts = []
    for f in frames:
        f = f.copy()
        for col, dtype in FACILITY_DTYPES.items():
            if col not in f.columns:
                f[col] = np.nan if dtype == "float64" else ""
        if "geometry" in f.columns:
            f = f.drop(columns="geometry")
        parts.append(pd.DataFrame(f[list(FACILITY_DTYPES)]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=list(FACILITY_DTYPES))


# --- composition --------------------------------------------------------------------------


def compose_communes(
    area: Territory,
    contours: gpd.GeoDataFrame,
    needs: pd.DataFrame | None,
) -> gpd.GeoDataFrame:
    """Communes of ``area`` with the needs columns of the schema, from contours and Melodi.

    Parameters
    ----------
    area
        The territory (its communes are kept).
    contours
        Commune contours (``code_insee, name, epci_code, dep_code, geometry``).
    needs
        Melodi table of :func:`data_sources.insee_melodi.load_insee_needs`, or ``None``
        (the needs columns are then missing values).

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`~diagnosis.schema.NEEDS_COLUMNS`, ``townhall_lon``/``townhall_lat`` (the
        demo's town halls where known, else a point inside the commune), the Melodi
        columns by year, ``births_2016_2021`` and ``under3_count`` when published, and the
        polygons (EPSG:4326). Derived columns: ``area_km2`` (EPSG:2154 area),
        ``density_per_km2``, ``single_parent_share_2022`` and ``under3_estimate``
        (3 × births 2024, an estimate). Missing values stay NaN, never 0.
    """
    com = contours.loc[contours["code_insee"].isin(area.communes),
                       ["code_insee", "name", "epci_code", "dep_code", "geometry"]].copy()
    com = gpd.GeoDataFrame(com, geometry="geometry", crs=contours.crs).to_crs(WGS84)
    epci = load_cog().epci
    names = dict(zip(epci["code"].astype(str), epci["name"].astype(str), strict=True))
    com["epci_name"] = com["epci_code"].map(lambda c: names.get(str(c), ""))
    halls = demo.load_demo_communes().set_index("code_insee")[["townhall_lon", "townhall_lat"]]
    inside = com.geometry.to_crs(METRIC_CRS).representative_point().to_crs(WGS84)
    known = com["code_insee"].map(halls["townhall_lon"])
    com["townhall_lon"] = known.where(known.notna(), inside.x).astype("float64")
    com["townhall_lat"] = com["code_insee"].map(halls["townhall_lat"]).where(
        known.notna(), inside.y).astype("float64")
    if needs is not None and len(needs):
        extra = needs.drop(columns=[c for c in ("name", "epci_code", "epci_name", "dep_code")
                                    if c in needs.columns])
        com = com.merge(extra, on="code_insee", how="left")
    com = gpd.GeoDataFrame(com, geometry="geometry", crs=WGS84)
    births = [f"births_{y}" for y in range(2016, 2022)]
    if all(c in com.columns for c in births):
        com["births_2016_2021"] = com[births].sum(axis=1, min_count=6).where(
            com[births].notna().all(axis=1))
    com["area_km2"] = com.geometry.to_crs(METRIC_CRS).area / 1e6
    for col in NEEDS_COLUMNS:
        if col not in com.columns:
            com[col] = np.nan
    pop = pd.to_numeric(com["population_2022"], errors="coerce")
    com["density_per_km2"] = pop / com["area_km2"].where(com["area_km2"] > 0)
    fam = pd.to_numeric(com["families_2022"], errors="coerce")
    single = pd.to_numeric(com["single_parent_families_2022"], errors="coerce")
    com["single_parent_share_2022"] = 100.0 * single / fam.where(fam > 0)
    com["under3_estimate"], com["under3_basis"] = under3_children(com)
    first = [*NEEDS_COLUMNS, "townhall_lon", "townhall_lat"]
    rest = [c for c in com.columns if c not in first and c != "geometry"]
    out = com[[*first, *rest, "geometry"]].sort_values("code_insee").reset_index(drop=True)
    for col in out.columns:
        if col not in {"code_insee", "name", "epci_code", "epci_name", "dep_code", "geometry",
                       "under3_basis"}:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=WGS84)


# --- messages -----------------------------------------------------------------------------


def _reason_fr(key: str, exc: BaseException) -> tuple[str, str]:
    """Status and French message for a source that raised ``exc``."""
    info = get_source(key)
    text = str(exc)
    m = _URL_RE.search(text)
    url = m.group(0).rstrip(".,)") if m else info.url
    who = f"{info.title} [{key}]"
    if _OFFLINE_RE.search(text):
        return "missing-offline", (
            f"{who} : mode hors ligne et aucune copie locale de {url} ; connectez-vous à "
            "internet une fois pour la télécharger."
        )
    if "truncated" in text:
        return "failed", (
            f"{who} : réponse tronquée depuis {url} (transfert interrompu, deux fois) ; la "
            "connexion ou le service est instable, réessayez plus tard. Ce n'est pas une "
            f"absence d'internet. Détail : {text}"
        )
    if "overall deadline" in text:
        return "failed", (
            f"{who} : délai global dépassé pour {url} ; le service est trop lent, réessayez "
            f"plus tard. Détail : {text}"
        )
    if "access token" in text:
        return "failed", (
            f"{who} : {url} demande un jeton d'accès ; demandez-le sur data.gouv.fr "
            f"(« API data·inclusion ») puis définissez la variable {inclusion.TOKEN_ENV}."
        )
    if isinstance(exc, SourceError):
        return "failed", f"{who} : échec de la récupération depuis {url} ({text})."
    return "failed", (
        f"{who} : erreur inattendue en lisant {url} ({type(exc).__name__} : {text}) ; "
        "signalez-la aux mainteneurs de Maillage."
    )


@contextlib.contextmanager
def _offline_mode(offline: bool) -> Iterator[None]:
    """Switch the HTTP layer to offline mode for the duration (OSM reads the global)."""
    before = _http.get_config().offline
    if offline and not before:
        _http.configure(offline=True)
    try:
        yield
    finally:
        if offline and not before:
            _http.configure(offline=False)


def _check_sources(sources: Iterable[str] | None) -> tuple[str, ...]:
    if sources is None:
        return LIVE_SOURCES
    wanted = list(dict.fromkeys(sources))
    unknown = [s for s in wanted if s not in LIVE_SOURCES]
    if unknown:
        raise ValueError(f"sources contains {unknown!r}; live sources: {list(LIVE_SOURCES)}")
    return tuple(k for k in LIVE_SOURCES if k in wanted)


# --- the fetch ----------------------------------------------------------------------------


def detect_offline(
    *, urls: Iterable[str] = PROBE_URLS, timeout_s: float = PROBE_TIMEOUT_S
) -> bool:
    """Whether none of ``urls`` answers (probed in parallel: at most ``timeout_s`` seconds).

    Call it once before a fetch: offline, every source then reads the cache at once
    instead of waiting for its own timeouts and retries. The HTTP layer's offline mode
    (``MAILLAGE_OFFLINE``) counts as offline without probing.
    """
    if _http.get_config().offline:
        return True
    targets = list(urls)
    if not targets:
        return False

    def answers(url: str) -> bool:
        try:
            _http.probe(url, source="reseau", timeout_s=timeout_s)
        except SourceError as exc:
            logger.info("probe: %s", exc)
            return False
        return True

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        return not any(pool.map(answers, targets))



def fetch_territory(
    territory: Territory | str,
    *,
    sources: Iterable[str] | None = None,
    offline: bool = False,
    progress: ProgressCallback | None = None,
    root: str | Path | None = None,
    refresh: bool = False,
    accept_suspect: bool = False,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
) -> FetchResult:
    """Fetch the live sources of a territory into the local store.

    Parameters
    ----------
    territory
        Resolved territory, or a code or name to resolve.
    sources
        Registry keys of :data:`LIVE_SOURCES` to run (default: all). Sources not run
        keep what the store already holds for them.
    offline
        Use the HTTP cache only: a source without a cached copy ends ``missing-offline``.
        ``False`` keeps the HTTP layer's setting (``MAILLAGE_OFFLINE``).
    progress
        Called with a :class:`FetchProgress` when each source starts and ends.
    root
        Store root (default :func:`data_sources.store.default_store_dir`).
    refresh
        Ignore the HTTP cache and the downloaded files of the selected sources: fetch
        them again from the network (:func:`data_sources._http.refreshing`).
    accept_suspect
        Keep a new answer even when it has fewer than :data:`SUSPECT_MIN_SHARE` of the
        rows held (an empty or truncated answer, a maintenance page…). By default such
        an answer is refused: the held rows stay, the source is marked ``"suspect"``
        with both counts.
    lock_timeout_s
        Seconds to wait when another process fetches the same territory.

    Returns
    -------
    FetchResult
        Per-source outcomes, the snapshot written (if any) and whether the territory is
        usable (stored communes or demo).

    Raises
    ------
    diagnosis.errors.InputError
        Unknown territory.
    ValueError
        ``sources`` names a source that is not live.
    data_sources.store.StoreBusyError
        Another process is fetching the same territory (nothing was done).
    data_sources.store.StoreWriteError
        The disk refused the write; the stored data is intact.

    Examples
    --------
    ``fetch_territory("200000438")`` fetches the 9 communes of the CC du Pays de
    Pontchâteau Saint-Gildas-des-Bois (needs the internet or a filled HTTP cache).
    """
    area = territory if isinstance(territory, Territory) else resolve(territory)
    selected = _check_sources(sources)
    with store_lock(area, root=root, timeout_s=lock_timeout_s), \
            _http.refreshing(refresh):
        return _fetch_locked(area, selected, offline=offline, progress=progress, root=root,
                             accept_suspect=accept_suspect)


def _suspect(run: _Run, key: str, loaded: _Loaded) -> tuple[str, str] | None:
    """Status of a new answer that lost most of the rows held, else ``None``."""
    prev = run.previous.source_layers.get(key) if run.previous is not None else None
    if prev is None or len(prev) == 0:
        return None
    new, held = len(loaded.layer), len(prev)
    if new >= SUSPECT_MIN_SHARE * held:
        return None
    return "suspect", (
        f"réponse suspecte : {new} ligne(s) reçue(s) contre {held} enregistrée(s) ; "
        "réponse vide, tronquée ou page de maintenance ? Les données enregistrées sont "
        "gardées. Si la baisse est réelle, relancez avec --accept-suspect."
    )


def _fetch_locked(
    area: Territory,
    selected: tuple[str, ...],
    *,
    offline: bool,
    progress: ProgressCallback | None,
    root: str | Path | None,
    accept_suspect: bool,
) -> FetchResult:
    try:
        previous = read_store(area, root=root, with_source_layers=True)
    except SourceError as exc:
        logger.warning("%s; it will be replaced", exc)
        previous = None
    run = _Run(area, True if offline else None, previous)
    attempted_at = utc_now()
    statuses: dict[str, tuple[str, str]] = {}
    total = len(selected)

    def report(i: int, key: str, outcome: SourceOutcome | None) -> None:
        if progress is not None:
            progress(FetchProgress(key, get_source(key).title, i, total, outcome))

    unplaced_in: dict[str, pd.DataFrame] = {}
    received: dict[str, int] = {}
    placed_by_ban: dict[str, pd.DataFrame] = {}
    ban_counts = (0, 0)
    with _offline_mode(offline):
        for i, key in enumerate(selected):
            report(i, key, None)
            try:
                with _http.source_deadline(SOURCE_DEADLINE_S.get(key, DEFAULT_SOURCE_DEADLINE_S),
                                           source=key), _http.data_dates() as dates:
                    loaded: _Loaded | None = None
                    if key == ban.BAN.key:
                        statuses[key], placed_by_ban, ban_counts = _run_ban(run, unplaced_in)
                    else:
                        loaded = _RUNNERS[key](run)
                if loaded is not None:
                    loaded.data_date = dates[0] if dates else ""
                    loaded.layer = loaded.layer.copy()
                    loaded.layer.attrs = {}  # tables in attrs break pd.concat (merge)
                    odd = None if accept_suspect else _suspect(run, key, loaded)
                    if odd is not None:
                        received[key] = len(loaded.layer)
                        statuses[key] = odd
                        logger.warning("%s: %s", key, odd[1])
                    else:
                        run.fresh[key] = loaded
                        if loaded.unplaced is not None:
                            unplaced_in[key] = loaded.unplaced
                        statuses[key] = ("ok", loaded.note)
            except Exception as exc:  # one source never blocks the others
                statuses[key] = _reason_fr(key, exc)
                logger.warning("%s", statuses[key][1])
            report(i, key, _outcome(key, run, statuses[key], unplaced_in, placed_by_ban,
                                    ban_counts, final=False, received=received))

    # BAN-placed rows join their source's table.
    for key, rows in placed_by_ban.items():
        if key in run.fresh and len(rows):
            both = pd.concat([run.fresh[key].layer, rows], ignore_index=True)
            run.fresh[key].layer = validate_facilities(
                gpd.GeoDataFrame(both, geometry="geometry", crs=WGS84), source=key)
    outcomes = tuple(_outcome(k, run, statuses[k], unplaced_in, placed_by_ban, ban_counts,
                              final=True, received=received) for k in selected)

    covers = demo_covers(area)
    contours = run.layer(boundaries.GEO_API.key)
    needs = run.layer(insee_melodi.MELODI.key)
    communes = None
    if contours is not None and len(contours) and (needs is not None or not covers):
        communes = compose_communes(area, gpd.GeoDataFrame(contours, geometry="geometry"),
                                    needs)
    fac_layers = [run.layer(k) for k in FACILITY_SOURCES]
    fac_present = [f for f in fac_layers if f is not None]
    facilities, merged = merge_facilities(fac_present) if fac_present else (None, None)
    layers = {k: v for k in LIVE_SOURCES if (v := run.layer(k)) is not None}
    ledger = _ledger(run, outcomes, attempted_at)
    snapshot = None
    if communes is not None or facilities is not None or layers:
        snapshot = write_store(area, ledger=ledger, communes=communes, facilities=facilities,
                               source_layers=layers, root=root)
    return FetchResult(area, outcomes, snapshot, communes_stored=communes is not None,
                       facilities_stored=facilities is not None, demo_covers=covers,
                       merge_report=merged)


def _run_ban(
    run: _Run, unplaced_in: Mapping[str, pd.DataFrame]
) -> tuple[tuple[str, str], dict[str, pd.DataFrame], tuple[int, int]]:
    rows = _address_rows(unplaced_in.values())
    if rows.empty:
        return ("skipped", "aucune adresse à géocoder (aucune structure sans position)"), {}, (
            0, 0)
    halls = None
    contours = run.layer(boundaries.GEO_API.key)
    if contours is not None and len(contours):
        com = compose_communes(run.area, gpd.GeoDataFrame(contours, geometry="geometry"), None)
        halls = gpd.GeoDataFrame({"code_insee": com["code_insee"]}, crs=WGS84,
                                 geometry=gpd.points_from_xy(com["townhall_lon"],
                                                             com["townhall_lat"]))
    elif demo_covers(run.area):
        com = _demo_communes(run.area)
        halls = gpd.GeoDataFrame({"code_insee": com["code_insee"]}, crs=WGS84,
                                 geometry=gpd.points_from_xy(com["townhall_lon"],
                                                             com["townhall_lat"]))
    placed = ban.place_facilities(rows, town_halls=halls, offline=run.offline)
    by_source = {str(k): g.reset_index(drop=True) for k, g in placed.groupby("source")}
    rejected = len(rows) - len(placed)
    return ("ok", ""), by_source, (len(placed), rejected)


def _outcome(
    key: str,
    run: _Run,
    status: tuple[str, str],
    unplaced_in: Mapping[str, pd.DataFrame],
    placed_by_ban: Mapping[str, pd.DataFrame],
    ban_counts: tuple[int, int],
    *,
    final: bool,
    received: Mapping[str, int],
) -> SourceOutcome:
    info = get_source(key)
    state, message = status
    kept = rejected = 0
    vintage = ""
    if key == ban.BAN.key:
        kept, rejected = ban_counts
    elif state == "ok":
        loaded = run.fresh[key]
        vintage = loaded.vintage
        n_placed = len(placed_by_ban.get(key, ())) if final else 0
        kept = len(loaded.layer)
        rejected = len(unplaced_in.get(key, ())) - n_placed
    previous = run.previous.entry(key) if run.previous is not None else None
    kept_previous = bool(state in {"failed", "missing-offline", "suspect"}
                         and previous is not None and run.previous is not None
                         and key in run.previous.source_layers)
    if kept_previous and previous is not None:
        if state != "suspect":
            message += f" Données précédentes du {previous.fetched_at[:10]} conservées."
        kept, rejected, vintage = previous.rows_kept, previous.rows_rejected, previous.vintage
    return SourceOutcome(key, info.title, info.url, state, message.strip(), int(kept),
                         int(rejected), vintage, kept_previous, int(received.get(key, 0)))


def _ledger(run: _Run, outcomes: Iterable[SourceOutcome], attempted_at: str) -> list[LedgerEntry]:
    done = {o.key: o for o in outcomes}
    rows = []
    for key in LIVE_SOURCES:
        previous = run.previous.entry(key) if run.previous is not None else None
        if key not in done:
            if previous is not None:
                rows.append(previous)
            continue
        o = done[key]
        dated = run.fresh[key].data_date if o.ok and key in run.fresh else ""
        fetched_at = (min(dated, attempted_at) if dated else attempted_at) if o.ok else (
            previous.fetched_at if o.kept_previous and previous is not None else "")
        rows.append(LedgerEntry(
            source=key, title=o.title, url=o.url, vintage=o.vintage, fetched_at=fetched_at,
            attempted_at=attempted_at, status=o.status, rows_kept=o.rows_kept,
            rows_rejected=o.rows_rejected, error=o.message if o.failed else "",
            note="" if o.failed else o.message, rows_received=o.rows_received,
        ))
    return rows
