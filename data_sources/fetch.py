"""Fetch every live source for a territory and keep the result in the local store.

:func:`fetch_territory` runs, in this order, the loaders of :data:`LIVE_SOURCES`:
commune contours (geo.api.gouv.fr), INSEE Melodi needs, FINESS, BPE, OpenStreetMap
facilities, CNAF coverage rates, data·inclusion, the annuaire, the IRIS contours and
their census figures (RP 2022), the Filosofi 2021 200 m cells, the QPV 2024, then the
BAN geocoder for the rows that came with an address but no position. Each source runs
in its own ``try``: one failing never blocks the others, and its French reason (naming
the source and the URL) goes to the result and to the ledger.

Each source's answer is judged as a whole before it replaces anything (:func:`_judge`):
an update that fell back to a copy held in the cache is « suspect » and says « copie du
JJ/MM/AAAA gardée : la mise à jour a échoué (motif) »; an answer that loses rows, empties
a series or has fewer communes than the snapshot held is « suspect » and kept apart for
``--accept-suspect``; a first answer that contradicts its own metadata (``total_count``,
a page cap, the territory's communes, the catalogue's file size) is « partiel ». Only an
answer « à jour » reaches the HTTP cache (:func:`data_sources._http.deferred_cache`). The
whole fetch has a deadline (``deadline_s``): sources stopped or not started by it are
« non terminée ».

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
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from data_sources import (
    _http,
    annuaire,
    ban,
    boundaries,
    bpe,
    caf,
    filosofi,
    finess,
    inclusion,
    insee_melodi,
    iris,
    osm,
    qpv,
)
from data_sources.cog import resolve
from data_sources.fetch_runners import (  # noqa: F401 (compose_communes: API, tests)
    _RUNNERS,
    _demo_communes,
    _Loaded,
    _Run,
    _run_ban,
    compose_communes,
    demo_covers,
)
from data_sources.merge import merge_facilities
from data_sources.registry import SOURCES, get_source
from data_sources.store import (
    LOCK_TIMEOUT_S,
    LedgerEntry,
    drop_suspect,
    read_store,
    read_suspect,
    store_lock,
    utc_now,
    write_store,
    write_suspect,
)
from diagnosis.errors import SourceError
from diagnosis.schema import Territory, validate_facilities
from diagnosis.settings import WGS84

logger = logging.getLogger(__name__)

#: Registry keys of the live sources, in the order they run (BAN last: it places the
#: address-only rows of the others).
LIVE_SOURCES: tuple[str, ...] = (
    boundaries.GEO_API.key,
    insee_melodi.MELODI.key,
    finess.FINESS.key,
    bpe.BPE.key,
    osm.OSM.key,
    inclusion.INCLUSION.key,
    annuaire.ANNUAIRE.key,
    iris.IRIS_CONTOURS.key,
    iris.IRIS_CENSUS.key,
    caf.CAF.key,  # after the census by IRIS: its children weigh the arrondissements' rates
    filosofi.FILOSOFI_2021.key,
    qpv.QPV.key,
    ban.BAN.key,
)
#: Live sources that give context below or beside the commune (IRIS, cells, QPV).
CONTEXT_SOURCES: tuple[str, ...] = (
    iris.IRIS_CONTOURS.key, iris.IRIS_CENSUS.key, filosofi.FILOSOFI_2021.key, qpv.QPV.key,
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
    filosofi.FILOSOFI_2021.key: 1800.0,  # a national zip of about 294 MB, once
}
DEFAULT_SOURCE_DEADLINE_S = 600.0
#: Overall deadline of a whole fetch, in seconds (``python -m data_sources fetch
#: --deadline-min``): sources not finished then are stopped and marked ``"timeout"``.
DEFAULT_FETCH_DEADLINE_S = 45 * 60.0
#: A facility type held with at least this many rows that comes back empty is suspect.
SUSPECT_MIN_TYPE_ROWS = 4

#: Hosts probed to tell, in seconds and once for a whole fetch, whether the machine is online.
PROBE_URLS: tuple[str, ...] = (
    "https://geo.api.gouv.fr", "https://data.geopf.fr", "https://www.data.gouv.fr",
)
PROBE_TIMEOUT_S = 4.0



@dataclass(frozen=True)
class SourceOutcome:
    """What happened to one source during a fetch.

    Attributes
    ----------
    key, title, url
        Registry key, French title and URL of the source.
    status
        ``"ok"``, ``"failed"``, ``"missing-offline"``, ``"skipped"`` (nothing to do),
        ``"suspect"`` (far fewer rows than held, an empty series, fewer communes, or an
        update that failed and fell back to a copy: the held rows were kept),
        ``"partial"`` (the answer contradicts its own metadata: ``total_count`` not
        reached, a page cap, communes missing; stored, never cached) or ``"timeout"``
        (stopped, or never started, by the overall deadline of the fetch).
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
    suspect_kept_apart
        The refused answer is kept apart: ``--accept-suspect KEY`` takes it.
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
    suspect_kept_apart: bool = False

    @property
    def ok(self) -> bool:
        """Whether the source gave data this time."""
        return self.status == "ok"

    @property
    def failed(self) -> bool:
        """Whether the source failed (online error, missing offline copy, deadline)."""
        return self.status in {"failed", "missing-offline", "timeout"}


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
    cache_note
        French note when the HTTP cache could not be written (full disk…), else empty.
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
    cache_note: str = ""
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
    def partial(self) -> tuple[SourceOutcome, ...]:
        """The sources whose answer was stored but is partial."""
        return tuple(o for o in self.outcomes if o.status == "partial")

    @property
    def usable(self) -> bool:
        """Whether a diagnosis can run: stored communes, or the demo covers the territory."""
        return self.communes_stored or self.demo_covers






# --- runners ------------------------------------------------------------------------------








































# --- composition --------------------------------------------------------------------------




# --- messages -----------------------------------------------------------------------------


def _reason_fr(key: str, exc: BaseException) -> tuple[str, str]:
    """Status and French message for a source that raised ``exc``.

    Decided on the error's kind (:attr:`~diagnosis.errors.SourceError.kind`), never on
    its text; the text is only shown as the detail.
    """
    info = get_source(key)
    who = f"{info.title} [{key}]"
    kind = getattr(exc, "kind", None) if isinstance(exc, SourceError) else None
    url = (exc.url if isinstance(exc, SourceError) else None) or info.url
    text = str(exc)
    if kind == "offline":
        return "missing-offline", (
            f"{who} : mode hors ligne et aucune copie locale de {url} ; connectez-vous à "
            "internet une fois pour la télécharger."
        )
    if kind == "truncated":
        return "failed", (
            f"{who} : réponse tronquée depuis {url} (transfert interrompu, deux fois) ; la "
            "connexion ou le service est instable, réessayez plus tard. Ce n'est pas une "
            f"absence d'internet. Détail : {text}"
        )
    if kind == "deadline":
        return "failed", (
            f"{who} : délai global dépassé pour {url} ; le service est trop lent, réessayez "
            f"plus tard. Détail : {text}"
        )
    if kind == "token" or (kind == "http" and isinstance(exc, SourceError)
                           and exc.status == 401):
        return "failed", (
            f"{who} : {url} demande un jeton d'accès ; demandez-le sur data.gouv.fr "
            f"(« API data·inclusion ») puis définissez la variable {inclusion.TOKEN_ENV}."
        )
    if isinstance(exc, SourceError) and kind is not None:
        return "failed", f"{who} : échec de la récupération depuis {url} ({exc.fr}). " \
                         f"Détail : {text}"
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
    accept_suspect: bool | Iterable[str] = False,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
    deadline_s: float | None = DEFAULT_FETCH_DEADLINE_S,
) -> FetchResult:
    """Fetch the live sources of a territory into the local store.

    Each source's answer is judged as a whole before it replaces anything (rows and
    non-null counts per series against the stored snapshot, the territory's communes,
    ``total_count`` of paged answers) and its HTTP answers reach the cache only when it
    is « à jour » (:func:`data_sources._http.deferred_cache`).

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
        Registry keys (or ``True`` for every source) whose answer refused as
        ``"suspect"`` by an earlier fetch, and kept apart, now replaces the held rows.
        That very answer is taken, never one fetched or read from a cache again; a
        source without such an answer runs as usual.
    lock_timeout_s
        Seconds to wait when another process fetches the same territory.
    deadline_s
        Overall deadline of the fetch, in seconds (``None``: none). A source still
        running then is stopped, the sources not started are not run; both are
        ``"timeout"`` in the ledger and keep their earlier data.

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
        ``sources`` or ``accept_suspect`` names a source that is not live, or
        ``deadline_s`` is not positive.
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
    if accept_suspect is True:
        accepted = frozenset(selected)
    elif accept_suspect is False:
        accepted = frozenset()
    else:
        accepted = frozenset(_check_sources(accept_suspect))
    if deadline_s is not None and not deadline_s > 0:
        raise ValueError(f"deadline_s={deadline_s!r} must be > 0 seconds (or None)")
    _http.get_session()  # opens the cache: a full disk is found (write test) before any source
    with store_lock(area, root=root, timeout_s=lock_timeout_s), \
            _http.refreshing(refresh):
        return _fetch_locked(area, selected, offline=offline, progress=progress, root=root,
                             accepted=accepted, deadline_s=deadline_s)


def _fr_date(iso: str) -> str:
    """``2026-12-03T…`` -> ``03/12/2026``."""
    m = re.match(r"(\d{4})-(\d{2})-(\d{2})", iso)
    return f"{m.group(3)}/{m.group(2)}/{m.group(1)}" if m else iso


def _series_counts(key: str, layer: pd.DataFrame) -> dict[str, int]:
    """Rows with a value per series of a source's table (what a refresh must not lose)."""
    if len(layer) == 0:
        return {}
    if key == insee_melodi.MELODI.key:
        cols = [c for c in layer.columns if c != "code_insee"
                and pd.api.types.is_numeric_dtype(layer[c])]
        return {c: int(layer[c].notna().sum()) for c in cols}
    if key == boundaries.GEO_API.key:
        return {"communes": int(layer["code_insee"].nunique())}
    if key == caf.CAF.key and {"level", "year", "rate"} <= set(layer.columns):
        rated = layer.loc[layer["rate"].notna()]
        pairs = rated["level"].astype(str) + " " + rated["year"].astype(str)
        return {str(k): int(n) for k, n in pairs.value_counts().items()}
    if key in FACILITY_SOURCES and "type" in layer.columns:
        return {f"type {t}": int(n) for t, n in layer["type"].value_counts().items()}
    return {}


_SERIES_LABELS_FR = {"births": "naissances", "population": "population",
                     "median_income": "revenu médian", "poverty_rate": "taux de pauvreté",
                     "families": "familles", "single_parent_families": "familles "
                     "monoparentales", "under3_count": "moins de 3 ans",
                     "under3_census": "moins de 3 ans"}


def _series_fr(name: str) -> str:
    m = re.fullmatch(r"(.+)_(\d{4})", name)
    if m and m.group(1) in _SERIES_LABELS_FR:
        return f"{_SERIES_LABELS_FR[m.group(1)]} {m.group(2)}"
    m = re.fullmatch(r"births_mean_(\d{4})_(\d{4})", name)
    if m:
        return f"naissances, moyenne {m.group(1)}-{m.group(2)}"
    m = re.fullmatch(r"(.+)_year", name)
    if m:
        label = _SERIES_LABELS_FR.get(m.group(1), _SERIES_LABELS_FR.get(
            {"income": "median_income", "poverty": "poverty_rate"}.get(m.group(1), ""), ""))
        return f"année des données ({label or m.group(1)})"
    return name


def _suspect(run: _Run, key: str, loaded: _Loaded) -> tuple[str, str] | None:
    """Status of a new answer that loses data against the snapshot held, else ``None``.

    Suspect: fewer than :data:`SUSPECT_MIN_SHARE` of the rows held; a series held with
    values that comes back empty or missing; for the commune tables (Melodi, contours) a
    series with fewer communes than held; a facility type held with at least
    :data:`SUSPECT_MIN_TYPE_ROWS` rows that comes back empty. (A first answer is judged
    by :func:`_partial` instead: births and population are published for every commune,
    income and family figures may be secret for small ones, so they are not counted.)
    """
    prev = run.previous.source_layers.get(key) if run.previous is not None else None
    if prev is None or len(prev) == 0:
        return None
    new, held = len(loaded.layer), len(prev)
    if new < SUSPECT_MIN_SHARE * held:
        return "suspect", (
            f"réponse suspecte : {new} ligne(s) reçue(s) contre {held} enregistrée(s) ; "
            "réponse vide, tronquée ou page de maintenance ? Les données enregistrées sont "
            f"gardées. Si la baisse est réelle, relancez avec --accept-suspect {key}."
        )
    before, after = _series_counts(key, prev), _series_counts(key, loaded.layer)
    strict = key in {insee_melodi.MELODI.key, boundaries.GEO_API.key}
    lost = []
    for name, n_held in before.items():
        n_new = after.get(name, 0)
        floor = 1 if strict or key == caf.CAF.key else SUSPECT_MIN_TYPE_ROWS
        if n_held >= floor and (n_new == 0 or (strict and n_new < n_held)):
            lost.append(f"{_series_fr(name)} : {n_new} contre {n_held}")
    if not lost:
        return None
    unit = "communes avec une valeur" if strict else "lignes"
    shown = " ; ".join(lost[:6]) + (f" ; et {len(lost) - 6} autre(s)" if len(lost) > 6 else "")
    return "suspect", (
        f"réponse suspecte : série(s) vidée(s) ou réduite(s) ({unit}, reçues contre "
        f"enregistrées) — {shown}. Les données enregistrées sont gardées. Si la baisse "
        f"est réelle, relancez avec --accept-suspect {key}."
    )


def _partial(run: _Run, key: str, loaded: _Loaded, notes: _http.UpdateNotes) -> str:
    """French reason why an answer is partial (its own metadata says more), else ``""``."""
    reasons = list(dict.fromkeys(notes.partial))
    wanted = set(run.area.communes)
    if key == insee_melodi.MELODI.key and wanted:
        layer = loaded.layer
        short = []
        latest: dict[str, str] = {}  # newest year of each series (old ones: old borders)
        for col in sorted(layer.columns):
            m = re.fullmatch(r"(births|population)_\d{4}", col)
            if m and layer[col].notna().any():
                latest[m.group(1)] = col
        for col in latest.values():
            have = set(layer.loc[layer[col].notna(), "code_insee"].astype(str))
            missing = sorted(wanted - have)
            if missing:
                short.append(f"{_series_fr(col)} : {len(wanted) - len(missing)} "
                             f"commune(s) sur {len(wanted)} (manquent "
                             f"{', '.join(missing[:5])}{'…' if len(missing) > 5 else ''})")
        if short:
            reasons.append(" ; ".join(short))
    if key == boundaries.GEO_API.key and wanted:
        missing = sorted(wanted - set(loaded.layer["code_insee"].astype(str)))
        if missing:
            reasons.append(f"contours : {len(wanted) - len(missing)} commune(s) sur "
                           f"{len(wanted)} (manquent {', '.join(missing[:5])}"
                           f"{'…' if len(missing) > 5 else ''})")
    return " ; ".join(reasons)


def _fallback_message(notes: _http.UpdateNotes) -> str:
    """« copie du JJ/MM/AAAA gardée : la mise à jour a échoué (motif) »."""
    url, when, motive = min(notes.fallbacks, key=lambda f: f[1])
    more = len(notes.fallbacks) - 1
    return (
        f"copie du {_fr_date(when)} gardée : la mise à jour a échoué ({motive})"
        + (f" pour {url} et {more} autre(s) adresse(s)" if more else f" pour {url}")
        + ". Réessayez plus tard."
    )


def _judge(
    run: _Run, key: str, loaded: _Loaded, notes: _http.UpdateNotes, *, root: str | Path | None,
    received_at: str,
) -> tuple[str, str, bool]:
    """(status, French message, whether the answer replaces the held rows)."""
    held = run.previous is not None and len(run.previous.source_layers.get(key, ())) > 0
    if notes.fallbacks:
        message = _fallback_message(notes)
        if held:
            return "suspect", message + " Les données enregistrées sont gardées.", False
        return "suspect", message, True  # nothing held: the copy is the best there is
    odd = _suspect(run, key, loaded)
    if odd is not None:
        write_suspect(run.area, key, loaded.layer, unplaced=loaded.unplaced, root=root, meta={
            "received_at": received_at, "rows_received": len(loaded.layer),
            "rows_held": len(run.previous.source_layers[key]) if run.previous else 0,
            "reason": odd[1], "vintage": loaded.vintage, "data_date": loaded.data_date,
            "note": loaded.note,
        })
        return odd[0], odd[1], False
    why = _partial(run, key, loaded, notes)
    if why:
        return "partial", (f"réponse partielle : {why}. Les données reçues sont enregistrées "
                           "mais pas mises en cache ; relancez la mise à jour plus tard."
                           + (f" {loaded.note}" if loaded.note else "")), True
    return "ok", loaded.note, True


def _accepted_answer(run: _Run, key: str, root: str | Path | None) -> _Loaded | None:
    """The suspect answer of ``key`` kept apart by an earlier fetch, as this run's data."""
    kept = read_suspect(run.area, key, root=root)
    if kept is None:
        return None
    layer, unplaced, meta = kept
    return _Loaded(
        layer, vintage=str(meta.get("vintage", "")), unplaced=unplaced,
        data_date=str(meta.get("data_date", "") or meta.get("received_at", "")),
        note=(f"réponse suspecte du {_fr_date(str(meta.get('received_at', '')))} acceptée "
              f"({meta.get('rows_received', len(layer))} ligne(s) contre "
              f"{meta.get('rows_held', '?')} enregistrée(s)) à la demande (--accept-suspect)."),
    )


def _fetch_locked(
    area: Territory,
    selected: tuple[str, ...],
    *,
    offline: bool,
    progress: ProgressCallback | None,
    root: str | Path | None,
    accepted: frozenset[str],
    deadline_s: float | None,
) -> FetchResult:
    try:
        previous = read_store(area, root=root, with_source_layers=True)
    except SourceError as exc:
        logger.warning("%s; it will be replaced", exc)
        previous = None
    run = _Run(area, True if offline else None, previous)
    attempted_at = utc_now()
    tally = _Tally()
    total = len(selected)
    end = None if deadline_s is None else time.monotonic() + deadline_s

    def report(i: int, key: str, outcome: SourceOutcome | None) -> None:
        if progress is not None:
            progress(FetchProgress(key, get_source(key).title, i, total, outcome))

    def too_late(key: str, text: str) -> tuple[str, str]:
        minutes = (deadline_s or 0) / 60
        return "timeout", (
            f"{get_source(key).title} [{key}] : {text} (délai global de la mise à jour : "
            f"{minutes:g} min, option --deadline-min) ; les données précédentes restent. "
            "Relancez la mise à jour de cette source plus tard (--source "
            f"{key})."
        )

    with _offline_mode(offline):
        for i, key in enumerate(selected):
            report(i, key, None)
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                tally.statuses[key] = too_late(key, "pas lancée, le délai global est dépassé")
                logger.warning("%s", tally.statuses[key][1])
                report(i, key, tally.outcome(key, run, final=False))
                continue
            own = SOURCE_DEADLINE_S.get(key, DEFAULT_SOURCE_DEADLINE_S)
            bounded_by_overall = left is not None and left < own
            try:
                loaded: _Loaded | None = None
                if key in accepted and key != ban.BAN.key:
                    loaded = _accepted_answer(run, key, root)
                if loaded is not None:
                    tally.taken.add(key)
                    loaded.layer = loaded.layer.copy()
                    loaded.layer.attrs = {}
                    tally.keep(run, key, loaded, ("ok", loaded.note))
                else:
                    _fetch_source(run, key, tally, seconds=own if left is None else min(own, left),
                                  root=root, received_at=attempted_at)
            except Exception as exc:  # one source never blocks the others
                status = _reason_fr(key, exc)
                if bounded_by_overall and getattr(exc, "kind", None) == "deadline" or (
                        end is not None and time.monotonic() >= end
                        and status[0] == "failed"):
                    status = too_late(key, f"arrêtée avant la fin ({status[1]})")
                tally.statuses[key] = status
                logger.warning("%s", tally.statuses[key][1])
            report(i, key, tally.outcome(key, run, final=False))
    return _store_run(run, selected, tally, attempted_at=attempted_at, root=root)


@dataclass
class _Tally:
    """What a fetch run gathered so far, source by source (see :func:`_fetch_locked`)."""

    statuses: dict[str, tuple[str, str]] = field(default_factory=dict)
    unplaced_in: dict[str, pd.DataFrame] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    placed_by_ban: dict[str, pd.DataFrame] = field(default_factory=dict)
    ban_counts: tuple[int, int] = (0, 0)
    apart: set[str] = field(default_factory=set)  # suspect answers kept apart this run
    taken: set[str] = field(default_factory=set)  # suspect answers accepted this run

    def keep(self, run: _Run, key: str, loaded: _Loaded, status: tuple[str, str]) -> None:
        """Take ``loaded`` as this run's data for ``key``."""
        run.fresh[key] = loaded
        if loaded.unplaced is not None:
            self.unplaced_in[key] = loaded.unplaced
        self.statuses[key] = status

    def outcome(self, key: str, run: _Run, *, final: bool) -> SourceOutcome:
        """The outcome of ``key`` so far (``final``: once the run is over)."""
        return _outcome(key, run, self.statuses[key], self.unplaced_in, self.placed_by_ban,
                        self.ban_counts, final=final, received=self.received, apart=self.apart)


def _fetch_source(run: _Run, key: str, tally: _Tally, *, seconds: float,
                  root: str | Path | None, received_at: str) -> None:
    """Fetch one source within ``seconds``, judge its answer, cache it only if sound."""
    with _http.source_deadline(seconds, source=key), _http.data_dates() as dates, \
            _http.update_notes() as notes, _http.deferred_cache() as pending:
        if key == ban.BAN.key:
            tally.statuses[key], tally.placed_by_ban, tally.ban_counts = _run_ban(
                run, tally.unplaced_in)
            pending.commit()
            return
        loaded = _RUNNERS[key](run)
        loaded.data_date = dates[0] if dates else ""
        loaded.layer = loaded.layer.copy()
        loaded.layer.attrs = {}  # tables in attrs break pd.concat (merge)
        state, message, take = _judge(run, key, loaded, notes, root=root,
                                      received_at=received_at)
        if state == "ok":
            pending.commit()  # only a sound answer reaches the cache
            drop_suspect(run.area, key, root=root)
        else:
            pending.discard()
            logger.warning("%s: %s", key, message)
        if state == "suspect" and not take:
            tally.received[key] = len(loaded.layer)
            tally.apart.add(key)
        if take:
            tally.keep(run, key, loaded, (state, message))
        tally.statuses[key] = (state, message)


def _store_run(run: _Run, selected: tuple[str, ...], tally: _Tally, *, attempted_at: str,
               root: str | Path | None) -> FetchResult:
    """Write what the run got (communes, merged facilities, layers, ledger) to the store."""
    area = run.area
    # BAN-placed rows join their source's table.
    for key, rows in tally.placed_by_ban.items():
        if key in run.fresh and len(rows):
            both = pd.concat([run.fresh[key].layer, rows], ignore_index=True)
            run.fresh[key].layer = validate_facilities(
                gpd.GeoDataFrame(both, geometry="geometry", crs=WGS84), source=key)
    outcomes = tuple(tally.outcome(k, run, final=True) for k in selected)

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
    for key in tally.taken:  # accepted and written: the answer kept apart is spent
        drop_suspect(area, key, root=root)
    return FetchResult(area, outcomes, snapshot, communes_stored=communes is not None,
                       facilities_stored=facilities is not None, demo_covers=covers,
                       cache_note=_http.cache_note(), merge_report=merged)


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
    apart: set[str] | frozenset[str] = frozenset(),
) -> SourceOutcome:
    info = get_source(key)
    state, message = status
    kept = rejected = 0
    vintage = ""
    if key == ban.BAN.key:
        kept, rejected = ban_counts
    elif key in run.fresh:  # this run's answer is stored (ok, partial, or the only copy)
        loaded = run.fresh[key]
        vintage = loaded.vintage
        n_placed = len(placed_by_ban.get(key, ())) if final else 0
        kept = len(loaded.layer)
        rejected = len(unplaced_in.get(key, ())) - n_placed
    previous = run.previous.entry(key) if run.previous is not None else None
    kept_previous = bool(state in {"failed", "missing-offline", "suspect", "timeout"}
                         and key not in run.fresh
                         and previous is not None and run.previous is not None
                         and key in run.previous.source_layers)
    if kept_previous and previous is not None:
        if state != "suspect":
            message += f" Données précédentes du {_fr_date(previous.fetched_at)} conservées."
        kept, rejected, vintage = previous.rows_kept, previous.rows_rejected, previous.vintage
    return SourceOutcome(key, info.title, info.url, state, message.strip(), int(kept),
                         int(rejected), vintage, kept_previous, int(received.get(key, 0)),
                         suspect_kept_apart=key in apart)


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
        stored_now = key in run.fresh or (key == ban.BAN.key and o.ok)
        dated = run.fresh[key].data_date if key in run.fresh else ""
        fetched_at = (min(dated, attempted_at) if dated else attempted_at) if stored_now else (
            previous.fetched_at if o.kept_previous and previous is not None else "")
        rows.append(LedgerEntry(
            source=key, title=o.title, url=o.url, vintage=o.vintage, fetched_at=fetched_at,
            attempted_at=attempted_at, status=o.status, rows_kept=o.rows_kept,
            rows_rejected=o.rows_rejected, error=o.message if o.failed else "",
            note="" if o.failed else o.message, rows_received=o.rows_received,
        ))
    return rows
