"""Public transport timetables (GTFS): fetch -> cache -> parse -> validate.

Where the feeds come from:

- the national access point (transport.data.gouv.fr, ``/api/datasets``): the datasets
  whose covered area meets the territory (:func:`fetch_catalogue`,
  :func:`parse_catalogue`, :func:`feeds_for_territory`), each with its licence and
  validity dates; the GTFS zip is then downloaded through :mod:`data_sources._http`;
- the user's own GTFS zips (:func:`read_gtfs`).

Validation (:func:`prepare_feed`) makes a feed usable by the transit engine
(:mod:`diagnosis.travel.transit`, on ferrobus) for one study date:

- times ``H:MM:SS`` normalised to seconds, times past 24:00 kept (a trip leaving at
  23:50 and arriving at 00:20 the next morning reads ``24:20:00``);
- blank times of non-timepoint stops interpolated (by ``shape_dist_traveled`` when the
  trip has it, else evenly by stop order), as the GTFS reference asks consumers to do;
- ``frequencies.txt`` expanded into trips (ferrobus ignores it);
- the services running on the study date resolved from ``calendar.txt`` (weekday and
  ``start_date``/``end_date``, which ferrobus ignores) and ``calendar_dates.txt`` (added
  and removed days; a feed with only ``calendar_dates.txt`` is accepted): only their
  trips are kept, and the engine gets a ``calendar.txt`` that says so plainly;
- a feed with no trip on the study date is refused with a French message naming the
  network, the date and the feed's validity (« le réseau X n'a pas d'horaires pour le
  mardi 3 mars 2026 »).

Nothing is lost silently: rows rejected (unreadable times, trips whose first or last
time is blank) are counted in the feed's notices, in French, with the file and a row.

See Also
--------
guides/transports.md : what to download for a French territory (in French).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_sources import _http
from data_sources.registry import SourceInfo, register
from diagnosis.errors import InputError, SourceError
from diagnosis.study_calendar import french_date

logger = logging.getLogger(__name__)

API_URL = "https://transport.data.gouv.fr/api"

GTFS = register(SourceInfo(
    key="gtfs",
    title="Horaires de transport en commun (GTFS)",
    url=f"{API_URL}/datasets (point d'accès national transport.data.gouv.fr) ou fichier fourni",
    licence="selon chaque jeu de données (souvent ODbL 1.0 ou Licence Ouverte 2.0)",
    attribution="transport.data.gouv.fr et les autorités organisatrices de la mobilité",
    vintage="période de validité de chaque réseau (voir le registre)",
    crs="EPSG:4326",
    columns=("stops.txt", "routes.txt", "trips.txt", "stop_times.txt"),
    notes="Horaires théoriques : retards et perturbations non pris en compte.",
))

#: Files a feed must hold (plus calendar.txt and/or calendar_dates.txt).
REQUIRED_FILES: tuple[str, ...] = ("stops.txt", "routes.txt", "trips.txt", "stop_times.txt")

_TIME_RE = r"^\s*(\d{1,3}):([0-5]\d):([0-5]\d)\s*$"
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: Largest zip accepted for a feed (bytes, uncompressed total): Île-de-France is ~1 GB.
MAX_UNCOMPRESSED_BYTES = 2_000_000_000


@dataclass(frozen=True, eq=False)
class GtfsFeed:
    """A GTFS feed as text tables (every value a string, as in the files).

    Attributes
    ----------
    name
        Network name for messages (agency name, dataset title or file name).
    source
        File path or URL it came from.
    tables
        ``"stops.txt"`` -> DataFrame of strings (missing optional files absent).
    licence
        Licence when known (from the national access point), else ``""``.
    """

    name: str
    source: str
    tables: Mapping[str, pd.DataFrame]
    licence: str = ""

    def table(self, file: str) -> pd.DataFrame | None:
        """The table of ``file`` or None."""
        return self.tables.get(file)

    @property
    def validity(self) -> tuple[dt.date | None, dt.date | None]:
        """First and last day any service runs (calendar and calendar_dates)."""
        days: list[dt.date] = []
        cal = self.table("calendar.txt")
        if cal is not None and len(cal):
            for col in ("start_date", "end_date"):
                d = pd.to_datetime(cal[col], format="%Y%m%d", errors="coerce").dropna()
                days.extend(x.date() for x in (d.min(), d.max()))
        cd = self.table("calendar_dates.txt")
        if cd is not None and len(cd):
            added = cd.loc[cd["exception_type"].str.strip() == "1", "date"]
            d = pd.to_datetime(added, format="%Y%m%d", errors="coerce").dropna()
            if len(d):
                days.extend(x.date() for x in (d.min(), d.max()))
        if not days:
            return None, None
        return min(days), max(days)


@dataclass(frozen=True, eq=False)
class PreparedFeed:
    """A feed validated for one study date, ready for the transit engine.

    Attributes
    ----------
    feed
        The original feed (name, source, licence).
    day
        Study date.
    stops, trips, stop_times
        Tables kept: stops (``stop_id``, ``stop_name``, ``stop_lat``, ``stop_lon``),
        the trips running on ``day``, and their stop times with ``arrival_s`` /
        ``departure_s`` (seconds since midnight, past 86,400 kept).
    routes, agency
        Tables as read (routes of the kept trips).
    n_interpolated
        Blank times filled by interpolation.
    n_frequency_trips
        Trips generated from ``frequencies.txt``.
    notices
        French notes: rows rejected (file, row, reason), interpolations.
    """

    feed: GtfsFeed
    day: dt.date
    stops: pd.DataFrame
    routes: pd.DataFrame
    agency: pd.DataFrame
    trips: pd.DataFrame
    stop_times: pd.DataFrame
    n_interpolated: int = 0
    n_frequency_trips: int = 0
    notices: tuple[str, ...] = field(default=())

    def record(self) -> dict[str, str]:
        """What the registry of sources says about this feed (French values)."""
        start, end = self.feed.validity
        return {
            "source": "gtfs",
            "title": f"Horaires GTFS : {self.feed.name}",
            "url": self.feed.source,
            "licence": self.feed.licence or "non indiquée (voir le fichier)",
            "vintage": _validity_fr(start, end),
            "date_etude": french_date(self.day),
            "trips": str(len(self.trips)),
        }


# --------------------------------------------------------------------------------------
# Parse
# --------------------------------------------------------------------------------------


def read_gtfs(path: str | Path, *, name: str | None = None, licence: str = "") -> GtfsFeed:
    """Read a GTFS zip (or an unzipped folder) the user gives.

    The network is named ``name``, else by its agencies (``agency.txt``), else by the
    file.

    Raises
    ------
    InputError
        Missing file, not a zip, a required GTFS file absent (message in French naming
        the file).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"fichier GTFS introuvable : {str(p)!r}", argument="--gtfs",
                         value=str(p))
    if p.is_dir():
        files = {f.name: f.read_bytes() for f in p.iterdir() if f.suffix == ".txt"}
        return parse_gtfs(files, name=name or "", source=str(p), licence=licence)
    return parse_gtfs_zip(p.read_bytes(), name=name or "", source=str(p), licence=licence)


def parse_gtfs_zip(data: bytes, *, name: str, source: str, licence: str = "") -> GtfsFeed:
    """Parse the bytes of a GTFS zip (pure)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError(f"{source!r} n'est pas une archive zip GTFS lisible",
                         argument="--gtfs", value=source) from None
    with zf:
        total = sum(i.file_size for i in zf.infolist())
        if total > MAX_UNCOMPRESSED_BYTES:
            raise InputError(f"l'archive GTFS {source!r} décompressée ferait {total} octets, "
                             f"au-delà de la limite de {MAX_UNCOMPRESSED_BYTES}",
                             argument="--gtfs", value=source)
        files = {}
        for info in zf.infolist():
            base = info.filename.rsplit("/", 1)[-1]
            if base.endswith(".txt") and not info.is_dir():
                files[base] = zf.read(info)
    return parse_gtfs(files, name=name, source=source, licence=licence)


def parse_gtfs(files: Mapping[str, bytes], *, name: str, source: str,
               licence: str = "") -> GtfsFeed:
    """Parse GTFS text files (name -> bytes) into a :class:`GtfsFeed` (pure)."""
    missing = [f for f in REQUIRED_FILES if f not in files]
    if "calendar.txt" not in files and "calendar_dates.txt" not in files:
        missing.append("calendar.txt ou calendar_dates.txt")
    if missing:
        raise InputError(f"le GTFS {name!r} ({source}) n'a pas {', '.join(missing)}",
                         argument="--gtfs", value=source)
    tables: dict[str, pd.DataFrame] = {}
    for fname, raw in files.items():
        text = _http.decode_text(raw)
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                            skipinitialspace=True)
        frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
        tables[fname] = frame
    if not name:  # the agencies' names, else the file's
        agency = tables.get("agency.txt")
        names = [] if agency is None or "agency_name" not in agency else list(
            dict.fromkeys(a.strip() for a in agency["agency_name"] if a.strip()))
        name = " / ".join(names[:3]) or Path(source).stem
    return GtfsFeed(name=name, source=source, tables=tables, licence=licence)


# --------------------------------------------------------------------------------------
# Validate for a date
# --------------------------------------------------------------------------------------


def services_on(feed: GtfsFeed, day: dt.date) -> set[str]:
    """Service ids running on ``day`` (calendar weekday within its dates, +/- exceptions).

    Examples
    --------
    >>> cal = pd.DataFrame({"service_id": ["wk"], "monday": ["1"], "tuesday": ["1"],
    ...     "wednesday": ["1"], "thursday": ["1"], "friday": ["1"], "saturday": ["0"],
    ...     "sunday": ["0"], "start_date": ["20260101"], "end_date": ["20260630"]})
    >>> cd = pd.DataFrame({"service_id": ["wk", "extra"], "date": ["20260303", "20260303"],
    ...                    "exception_type": ["2", "1"]})
    >>> f = GtfsFeed("x", "x", {"calendar.txt": cal, "calendar_dates.txt": cd})
    >>> sorted(services_on(f, dt.date(2026, 3, 3))), sorted(services_on(f, dt.date(2026, 3, 4)))
    (['extra'], ['wk'])
    >>> sorted(services_on(f, dt.date(2026, 7, 1)))
    []
    """
    key = day.strftime("%Y%m%d")
    active: set[str] = set()
    cal = feed.table("calendar.txt")
    if cal is not None and len(cal):
        wd = _WEEKDAYS[day.weekday()]
        on = (cal[wd].str.strip() == "1") & (cal["start_date"].str.strip() <= key) \
            & (cal["end_date"].str.strip() >= key)
        active |= set(cal.loc[on, "service_id"].str.strip())
    cd = feed.table("calendar_dates.txt")
    if cd is not None and len(cd):
        today = cd.loc[cd["date"].str.strip() == key]
        kind = today["exception_type"].str.strip()
        active |= set(today.loc[kind == "1", "service_id"].str.strip())
        active -= set(today.loc[kind == "2", "service_id"].str.strip())
    return active


def prepare_feed(feed: GtfsFeed, day: dt.date) -> PreparedFeed:
    """Validate ``feed`` for ``day``: trips of that day, times in seconds, blanks filled.

    Raises
    ------
    SourceError
        No trip runs on ``day`` (« le réseau X n'a pas d'horaires pour le mardi 3 mars
        2026 », with the feed's validity).
    """
    services = services_on(feed, day)
    trips = feed.tables["trips.txt"].copy()
    trips["service_id"] = trips["service_id"].str.strip()
    trips["trip_id"] = trips["trip_id"].str.strip()
    trips = trips.loc[trips["service_id"].isin(services)]
    if trips.empty:
        start, end = feed.validity
        raise SourceError(
            f"le réseau {feed.name} n'a pas d'horaires pour le {french_date(day)} "
            f"({_validity_fr(start, end)}) : choisissez une date couverte (--date) ou "
            "chargez un fichier GTFS à jour")
    notices: list[str] = []
    st = feed.tables["stop_times.txt"]
    st = st.loc[st["trip_id"].str.strip().isin(set(trips["trip_id"]))].copy()
    st["trip_id"] = st["trip_id"].str.strip()
    st["stop_id"] = st["stop_id"].str.strip()
    st, n_interp, more = normalise_times(st)
    notices.extend(more)
    n_freq = 0
    freq = feed.table("frequencies.txt")
    if freq is not None and len(freq):
        st, trips, n_freq = expand_frequencies(st, trips, freq)
        notices.append(f"{n_freq} départ(s) créés à partir de frequencies.txt.")
    trips = trips.loc[trips["trip_id"].isin(set(st["trip_id"]))]
    stops = _stops(feed, set(st["stop_id"]), notices)
    st = st.loc[st["stop_id"].isin(set(stops["stop_id"]))]
    routes = feed.tables["routes.txt"]
    routes = routes.loc[routes["route_id"].str.strip().isin(set(trips["route_id"].str.strip()))]
    agency = feed.tables.get("agency.txt", pd.DataFrame(
        {"agency_id": ["1"], "agency_name": [feed.name], "agency_url": ["http://localhost"],
         "agency_timezone": ["Europe/Paris"]}))
    if n_interp:
        notices.append(f"{n_interp} horaire(s) vide(s) d'arrêts intermédiaires interpolé(s).")
    return PreparedFeed(feed=feed, day=day, stops=stops, routes=routes, agency=agency,
                        trips=trips, stop_times=st, n_interpolated=n_interp,
                        n_frequency_trips=n_freq, notices=tuple(notices))


def parse_times(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since midnight of GTFS times (NaN where blank) and a mask of unreadable ones.

    Examples
    --------
    >>> s, bad = parse_times(pd.Series(["8:05:00", "25:10:30", "", "8h05"]))
    >>> s.tolist(), bad.tolist()
    ([29100.0, 90630.0, nan, nan], [False, False, False, True])
    """
    parts = values.astype(str).str.extract(_TIME_RE)
    secs = (pd.to_numeric(parts[0]) * 3600 + pd.to_numeric(parts[1]) * 60
            + pd.to_numeric(parts[2])).to_numpy(dtype=float)
    blank = values.astype(str).str.strip().eq("").to_numpy()
    bad = np.isnan(secs) & ~blank
    return secs, bad


def normalise_times(st: pd.DataFrame) -> tuple[pd.DataFrame, int, list[str]]:
    """Stop times in seconds, blanks interpolated; rows kept, filled, rejected in notes.

    Within each trip (ordered by ``stop_sequence``) a blank time is interpolated between
    the times before and after it, by ``shape_dist_traveled`` when every stop of the trip
    has one, else evenly by position. A trip whose first or last time is blank, or
    holding an unreadable time, is rejected and counted.

    Examples
    --------
    >>> st = pd.DataFrame({"trip_id": ["t"] * 3, "stop_id": ["a", "b", "c"],
    ...     "stop_sequence": ["1", "2", "3"], "arrival_time": ["8:00:00", "", "08:10:00"],
    ...     "departure_time": ["8:00:00", "", "08:10:00"]})
    >>> out, n, notes = normalise_times(st)
    >>> out["arrival_s"].tolist(), n
    ([28800.0, 29100.0, 29400.0], 1)
    """
    notices: list[str] = []
    st = st.copy()
    st["_row"] = np.arange(len(st)) + 2  # file row (header is row 1), for messages
    st["_seq"] = pd.to_numeric(st["stop_sequence"], errors="coerce")
    st = st.sort_values(["trip_id", "_seq"], kind="stable").reset_index(drop=True)
    arr, bad_a = parse_times(st["arrival_time"])
    dep, bad_d = parse_times(st["departure_time"])
    # one of the two given: use it for both
    arr = np.where(np.isnan(arr), dep, arr)
    dep = np.where(np.isnan(dep), arr, dep)
    bad = bad_a | bad_d
    if bad.any():
        row = st.loc[bad, ["_row", "trip_id"]].iloc[0]
        bad_trips = set(st.loc[bad, "trip_id"])
        notices.append(
            f"stop_times.txt : {int(bad.sum())} horaire(s) illisible(s) (ex. ligne "
            f"{int(row['_row'])}, course {row['trip_id']!r}) : {len(bad_trips)} course(s) "
            "écartée(s).")
    else:
        bad_trips = set()
    trip = st["trip_id"].to_numpy()
    first = np.r_[True, trip[1:] != trip[:-1]]
    last = np.r_[trip[1:] != trip[:-1], True]
    blank = np.isnan(arr)
    ends_blank = set(trip[(first | last) & blank])
    if ends_blank:
        notices.append(f"stop_times.txt : {len(ends_blank)} course(s) sans horaire au "
                       "premier ou au dernier arrêt écartée(s).")
    drop = np.isin(trip, list(bad_trips | ends_blank))
    # position along the trip: shape_dist_traveled when complete for the trip, else index
    pos = np.arange(len(st), dtype=float)
    if "shape_dist_traveled" in st:
        dist = pd.to_numeric(st["shape_dist_traveled"], errors="coerce")
        complete = dist.notna().groupby(st["trip_id"]).transform("all").to_numpy()
        # only differences within one trip are used, so each trip keeps its own scale
        pos = np.where(complete, dist.fillna(0).to_numpy(dtype=float), pos)
    n_interp = int((blank & ~drop).sum())
    if n_interp:
        known = ~blank
        idx = np.arange(len(st))
        prev = np.maximum.accumulate(np.where(known, idx, -1))
        nxt = np.minimum.accumulate(np.where(known, idx, len(st))[::-1])[::-1]
        fill = blank & ~drop & (prev >= 0) & (nxt < len(st))
        p, q = prev[fill], nxt[fill]
        span = pos[q] - pos[p]
        frac = np.where(span > 0, (pos[fill] - pos[p]) / np.where(span > 0, span, 1), 0.0)
        arr[fill] = dep[p] + frac * (arr[q] - dep[p])
        dep[fill] = arr[fill]
    st["arrival_s"] = np.round(arr)
    st["departure_s"] = np.round(dep)
    st = st.loc[~drop].drop(columns=["_row", "_seq"]).reset_index(drop=True)
    return st, n_interp, notices


def expand_frequencies(st: pd.DataFrame, trips: pd.DataFrame, freq: pd.DataFrame
                       ) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Replace each frequency-based trip by one trip per departure (pure).

    The template trip's times give the offsets from its first departure; departures run
    from ``start_time`` every ``headway_secs`` while before ``end_time``.
    """
    f = freq.copy()
    f["trip_id"] = f["trip_id"].str.strip()
    f = f.loc[f["trip_id"].isin(set(trips["trip_id"]))]
    start, _ = parse_times(f["start_time"])
    end, _ = parse_times(f["end_time"])
    head = pd.to_numeric(f["headway_secs"], errors="coerce").to_numpy(dtype=float)
    new_st, new_trips = [], []
    n = 0
    templates = set()
    for tid, s, e, h in zip(f["trip_id"], start, end, head, strict=True):
        if not (np.isfinite(s) and np.isfinite(e) and np.isfinite(h) and h > 0):
            continue
        tmpl = st.loc[st["trip_id"] == tid]
        if tmpl.empty:
            continue
        templates.add(tid)
        t0 = float(tmpl["departure_s"].iloc[0])
        base_trip = trips.loc[trips["trip_id"] == tid].iloc[0]
        for k, dep0 in enumerate(np.arange(s, e, h)):
            new_id = f"{tid}#{k}"
            part = tmpl.copy()
            part["trip_id"] = new_id
            part["arrival_s"] = part["arrival_s"] - t0 + dep0
            part["departure_s"] = part["departure_s"] - t0 + dep0
            new_st.append(part)
            row = base_trip.copy()
            row["trip_id"] = new_id
            new_trips.append(row)
            n += 1
    if not n:
        return st, trips, 0
    st = pd.concat([st.loc[~st["trip_id"].isin(templates)], *new_st], ignore_index=True)
    trips = pd.concat([trips.loc[~trips["trip_id"].isin(templates)],
                       pd.DataFrame(new_trips)], ignore_index=True)
    return st, trips, n


def _stops(feed: GtfsFeed, used: set[str], notices: list[str]) -> pd.DataFrame:
    stops = feed.tables["stops.txt"].copy()
    stops["stop_id"] = stops["stop_id"].str.strip()
    stops = stops.loc[stops["stop_id"].isin(used)]
    lat = pd.to_numeric(stops["stop_lat"], errors="coerce")
    lon = pd.to_numeric(stops["stop_lon"], errors="coerce")
    ok = lat.between(-90, 90) & lon.between(-180, 180) & ~((lat == 0) & (lon == 0))
    if (~ok).any():
        notices.append(f"stops.txt : {int((~ok).sum())} arrêt(s) sans position utilisable "
                       f"écarté(s) (ex. {stops.loc[~ok, 'stop_id'].iloc[0]!r}).")
    out = pd.DataFrame({"stop_id": stops["stop_id"],
                        "stop_name": stops.get("stop_name", stops["stop_id"]),
                        "stop_lat": lat, "stop_lon": lon}).loc[ok]
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Write for the engine
# --------------------------------------------------------------------------------------


def write_engine_feed(prepared: PreparedFeed, folder: str | Path, *,
                      transform: Any = None) -> Path:
    """Write a prepared feed as a GTFS folder the transit engine reads.

    Only the study date's trips are written, times as ``HH:MM:SS`` (hours past 24
    kept), and a ``calendar.txt`` with one service running every day of the study
    date's week (ferrobus needs ``calendar.txt`` and ignores its dates). ``transform``
    (``lon, lat -> lon, lat`` on arrays) moves the stops the way the street network is
    moved (see :class:`diagnosis.travel.transit.WalkScale`).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    p = prepared
    stops = p.stops.copy()
    if transform is not None:
        lon, lat = transform(stops["stop_lon"].to_numpy(float), stops["stop_lat"].to_numpy(float))
        stops["stop_lon"], stops["stop_lat"] = lon, lat
    stops.to_csv(out / "stops.txt", index=False, float_format="%.7f")
    p.agency.to_csv(out / "agency.txt", index=False)
    routes = p.routes.copy()
    routes.to_csv(out / "routes.txt", index=False)
    trips = p.trips[["route_id", "trip_id"]].copy()
    trips["service_id"] = "study_day"
    trips.to_csv(out / "trips.txt", index=False)
    st = pd.DataFrame({"trip_id": p.stop_times["trip_id"],
                       "arrival_time": _hhmmss(p.stop_times["arrival_s"].to_numpy()),
                       "departure_time": _hhmmss(p.stop_times["departure_s"].to_numpy()),
                       "stop_id": p.stop_times["stop_id"],
                       "stop_sequence": p.stop_times.groupby("trip_id").cumcount() + 1})
    st.to_csv(out / "stop_times.txt", index=False)
    day = p.day.strftime("%Y%m%d")
    pd.DataFrame({"service_id": ["study_day"], **{d: ["1"] for d in _WEEKDAYS},
                  "start_date": [day], "end_date": [day]}).to_csv(out / "calendar.txt",
                                                                   index=False)
    # optional files present and empty, so that the engine does not warn they are missing
    (out / "calendar_dates.txt").write_text("service_id,date,exception_type\n",
                                            encoding="utf-8")
    (out / "transfers.txt").write_text("from_stop_id,to_stop_id,transfer_type\n",
                                       encoding="utf-8")
    pd.DataFrame({"feed_publisher_name": [" ".join(str(p.feed.name).split())],
                  "feed_publisher_url": ["http://localhost"], "feed_lang": ["fr"],
                  "feed_start_date": [day], "feed_end_date": [day]}).to_csv(
        out / "feed_info.txt", index=False)
    return out


def _hhmmss(secs: np.ndarray) -> list[str]:
    s = np.asarray(secs, dtype=np.int64)
    return [f"{h:02d}:{m:02d}:{x:02d}" for h, m, x in zip(s // 3600, s // 60 % 60, s % 60,
                                                         strict=True)]


def _validity_fr(start: dt.date | None, end: dt.date | None) -> str:
    if start is None or end is None:
        return "aucune date de validité lisible dans le fichier"
    return f"horaires du {start:%d/%m/%Y} au {end:%d/%m/%Y}"


# --------------------------------------------------------------------------------------
# National access point (transport.data.gouv.fr)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueFeed:
    """One GTFS resource of the national access point.

    Attributes
    ----------
    dataset_id, title, url, licence, covered_type, covered_name
        Dataset identifier and title, download URL of the GTFS resource, licence (when
        the API gives it), type and name of the covered area (``aom``, ``region``,
        ``cities``, ``country``).
    cities
        INSEE codes of the covered communes (``cities`` coverage), as strings.
    aom_siren
        SIREN of the covering AOM (``aom`` coverage).
    start, end
        Calendar validity (``start_calendar_validity`` / ``end_calendar_validity``).
    """

    dataset_id: str
    title: str
    url: str
    licence: str
    covered_type: str
    covered_name: str
    cities: tuple[str, ...]
    aom_siren: str
    start: dt.date | None
    end: dt.date | None


def fetch_catalogue(*, refresh: bool = False) -> Any:
    """The datasets of the national access point (``GET /api/datasets``), cached."""
    return _http.fetch_json(f"{API_URL}/datasets", source="gtfs", refresh=refresh,
                            check=_check_catalogue)


def _check_catalogue(value: Any) -> None:
    if not isinstance(value, list):
        raise ValueError("the datasets answer is not a list")


def fetch_aom_siren(code_insee: str, *, refresh: bool = False) -> str:
    """SIREN of the AOM of a commune (``GET /api/aoms/{insee}``), ``""`` when none."""
    try:
        data = _http.fetch_json(f"{API_URL}/aoms/{code_insee}", source="gtfs",
                                refresh=refresh)
    except SourceError as exc:
        if exc.kind == "http" and exc.status == 404:
            return ""
        raise
    return str(data.get("siren") or "") if isinstance(data, dict) else ""


def parse_catalogue(payload: Any) -> list[CatalogueFeed]:
    """GTFS resources of the datasets answer (pure); other formats are left out."""
    out: list[CatalogueFeed] = []
    for ds in payload if isinstance(payload, list) else []:
        if not isinstance(ds, dict):
            continue
        area = ds.get("covered_area") or {}
        cities = tuple(str(c.get("insee", "")) for c in area.get("cities", []) or []
                       if isinstance(c, dict))
        aom = area.get("aom") or ds.get("aom") or {}
        for res in ds.get("resources", []) or []:
            if not isinstance(res, dict) or str(res.get("format", "")).upper() != "GTFS":
                continue
            out.append(CatalogueFeed(
                dataset_id=str(ds.get("id") or ds.get("datagouv_id") or ""),
                title=str(ds.get("title") or res.get("title") or ""),
                url=str(res.get("url") or res.get("original_url") or ""),
                licence=str(ds.get("licence") or ""),
                covered_type=str(area.get("type", "")),
                covered_name=str(area.get("name", "")),
                cities=cities,
                aom_siren=str(aom.get("siren") or "") if isinstance(aom, dict) else "",
                start=_iso_date(res.get("start_calendar_validity")),
                end=_iso_date(res.get("end_calendar_validity")),
            ))
    return out


def feeds_for_territory(catalogue: Sequence[CatalogueFeed], communes: Iterable[str], *,
                        aom_sirens: Iterable[str] = (), region_names: Iterable[str] = ()
                        ) -> list[CatalogueFeed]:
    """Feeds whose covered area meets the territory (communes, their AOMs, the région)."""
    codes = {str(c) for c in communes}
    sirens = {s for s in aom_sirens if s}
    regions = {r.casefold() for r in region_names}
    keep = []
    for f in catalogue:
        if (f.covered_type == "cities" and codes & set(f.cities)) \
                or (f.covered_type == "aom" and f.aom_siren in sirens) \
                or (f.covered_type == "region" and f.covered_name.casefold() in regions):
            keep.append(f)
    return keep


def _iso_date(value: Any) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def folder_name(feed: GtfsFeed) -> str:
    """A file-system safe folder name for a feed.

    Examples
    --------
    >>> folder_name(GtfsFeed("STAR Rennes / bus", "x", {}))
    'STAR_Rennes_bus'
    """
    return _SAFE.sub("_", feed.name).strip("_") or "gtfs"
