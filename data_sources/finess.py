"""PMI centres from FINESS (extraction of the establishment file, geolocated stock).

Source: data.gouv.fr dataset ``finess-extraction-du-fichier-des-etablissements``. Its
API record (``/api/1/datasets/<slug>/``) lists ``resources`` with ``url``, ``title``,
``format`` and ``last_modified`` (verified in stored third-party code that resolves the
same file); the geolocated stock is the resource named ``etalab-cs1100507-stock-
<YYYYMMDD>-<hhmm>.csv`` (``cs1100502`` is the same stock without coordinates). The newest
stamp wins, so a republication needs no code change.

File format (``;``-separated, no header, UTF-8 in recent files, Windows-1252 in older ones):

- line 1: ``finess;etalab;<n>;<YYYY-MM-DD>`` (extraction date);
- ``structureet`` lines, 32 fields: 1 ``nofinesset``, 3 ``rs``, 4 ``rslongue``,
  7-11 ``numvoie/typvoie/voie/compvoie/lieuditbp``, 12 ``commune`` (3 FINESS digits),
  13 ``departement`` (``01``…``95``, ``2A``/``2B``, ``9A``…``9F`` for 971…976),
  15 ``ligneacheminement`` (``"44600 SAINT NAZAIRE"``), 16 ``telephone``, 18 ``categetab``,
  30 ``datemaj`` (0-based field numbers);
- ``geolocalisation;<nofinesset>;<x>;<y>;<source>;<date>`` lines: projected coordinates
  whose CRS is named in the source string (``"1,ATLASANTE,96,BAN,EPSG:2154 RGF93 /
  Lambert-93 (Métropole)"``; older files say ``LAMBERT_93`` / ``UTM_N20``…).

Categories kept (see ``data_sources/nomenclatures/finess_categories_diagnostic_1000j.csv``):
223 *Protection Maternelle et Infantile* → ``pmi``; 230 *Établissement Consultation
Protection Infantile* → ``pmi`` (subtype ``consultation``; third-party mapping, verify).
**228 *Centre de planification ou d'éducation familiale* is left out of the facility table**
(the schema has no type for it and it is not a PMI for families with babies) but counted:
the loader logs the count and stores it in ``gdf.attrs["excluded_counts"]``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import Transformer

from data_sources import _http
from data_sources.merge import facility_frame
from data_sources.registry import SourceInfo, register
from diagnosis.errors import SourceError
from diagnosis.schema import Territory, validate_facilities
from diagnosis.settings import WGS84

logger = logging.getLogger(__name__)

DATASET_API_URL = (
    "https://www.data.gouv.fr/api/1/datasets/finess-extraction-du-fichier-des-etablissements/"
)
RESOURCE_RE = re.compile(r"etalab-cs1100507-stock-(\d{8})-(\d{4})\.csv$")

#: FINESS category -> (facility type, subtype).
CATEGORIES: dict[str, tuple[str, str]] = {
    "223": ("pmi", ""),
    "230": ("pmi", "consultation"),  # third-party mapping: verify with a live check
}
#: Categories counted but not turned into facilities (documented choice).
COUNTED_ONLY: dict[str, str] = {"228": "centre de planification ou d'éducation familiale"}

#: FINESS département codes of the overseas départements -> INSEE codes.
OVERSEAS_DEP = {"9A": "971", "9B": "972", "9C": "973", "9D": "974", "9E": "975", "9F": "976"}
#: FINESS still uses the pre-2007 codes of Saint-Barthélemy and Saint-Martin.
COM_RENAMED = {"97123": "97701", "97127": "97801"}
#: CRS used when the source string names none, by FINESS département code.
DEFAULT_EPSG_BY_DEP = {"9A": 5490, "9B": 5490, "9C": 2972, "9D": 2975, "9E": 4467, "9F": 4471}
#: Legacy CRS tokens of older geolocalisation source strings.
LEGACY_CRS = {
    "LAMBERT_93": 2154, "LAMBERT93": 2154, "UTM_N20": 5490, "UTM_N21": 4467,
    "UTM_N22": 2972, "UTM_S40": 2975, "UTM_S38": 4471,
}
#: Overseas UTM zones named without EPSG code (RGAF09, RGSPM06, RGFG95, RGR92, RGM04).
UTM_ZONES = {"20N": 5490, "21N": 4467, "22N": 2972, "40S": 2975, "38S": 4471}

STRUCTURE_FIELDS = 32
EXPECTED_FIELDS = ("structureet", "nofinesset", "departement", "commune", "categetab")

FINESS = register(SourceInfo(
    key="finess",
    title="FINESS — établissements (extraction géolocalisée) : centres de PMI",
    url=DATASET_API_URL,
    licence="Licence Ouverte 2.0",
    attribution="Ministère de la Santé, FINESS (data.gouv.fr)",
    vintage="extraction la plus récente (date dans la 1re ligne du fichier)",
    crs="EPSG:2154 (métropole) ; UTM des DROM nommé par ligne",
    columns=EXPECTED_FIELDS + ("geolocalisation: x, y, source, date",),
    notes=(
        "Catégories 223 (PMI) et 230 (consultation de protection infantile) ; les centres "
        "de planification (228) sont comptés mais exclus de la carte."
    ),
))


@dataclass
class FinessRaw:
    """What :func:`parse_finess` extracts from the stream (before building the table)."""

    extraction_date: str = ""
    structures: dict[str, list[str]] = field(default_factory=dict)
    geoloc: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    lines: int = 0


# --- fetch -----------------------------------------------------------------------------


def resolve_finess_url(
    dataset: dict[str, Any] | None = None, *, offline: bool | None = None, refresh: bool = False
) -> tuple[str, str]:
    """Return the URL and the ``YYYYMMDD`` stamp of the newest geolocated stock resource."""
    if dataset is None:
        dataset = _http.fetch_json(
            DATASET_API_URL, source=FINESS.key, offline=offline, refresh=refresh,
            check=lambda d: d["resources"],
        )
    best: tuple[str, str] | None = None
    for res in dataset.get("resources", []):
        url = str(res.get("url") or "")
        m = RESOURCE_RE.search(url)
        if m and (best is None or m.group(1) + m.group(2) > best[1]):
            best = (url, m.group(1) + m.group(2))
    if best is None:
        titles = [r.get("title") for r in dataset.get("resources", [])][:10]
        raise SourceError(
            f"{FINESS.key}: no resource named etalab-cs1100507-stock-*.csv in {DATASET_API_URL} "
            f"(titles: {titles!r}); the dataset changed, update data_sources/finess.py."
        )
    return best[0], best[1][:8]


def fetch_finess(
    *, offline: bool | None = None, refresh: bool = False
) -> tuple[str, Iterator[str]]:
    """Resolve the newest stock file and return its URL and a line iterator (streamed).

    The file is checked against the size data.gouv.fr records for the resource
    (``filesize``): a smaller file is « partiel » (:func:`data_sources._http.note_partial`).
    """
    dataset = _http.fetch_json(DATASET_API_URL, source=FINESS.key, offline=offline,
                               refresh=refresh, check=lambda d: d["resources"])
    url, _ = resolve_finess_url(dataset)
    size = next((r.get("filesize") for r in dataset.get("resources", [])
                 if str(r.get("url") or "") == url), None)
    announced = size if isinstance(size, int) and not isinstance(size, bool) else None
    return url, _http.stream_lines(url, source=FINESS.key, offline=offline, refresh=refresh,
                                   announced_bytes=announced)


# --- parse -----------------------------------------------------------------------------


def parse_finess(
    lines: Iterable[str], *, categories: Iterable[str] = (*CATEGORIES, *COUNTED_ONLY)
) -> FinessRaw:
    """Read FINESS lines one by one, keeping the wanted categories and their coordinates.

    Pure function over an iterable of decoded lines (no file is loaded whole).

    Raises
    ------
    ValueError
        When the first line is not ``finess;etalab;…`` or a ``structureet`` line has too
        few fields (truncated or changed file): the caller refetches once.
    """
    wanted = set(categories)
    raw = FinessRaw()
    for n, line in enumerate(lines):
        raw.lines = n + 1
        if not line:
            continue
        parts = line.split(";")
        kind = parts[0]
        if n == 0:
            if kind != "finess":
                raise ValueError(f"line 1 should start with 'finess;etalab;', got {line[:60]!r}")
            raw.extraction_date = parts[3].strip() if len(parts) > 3 else ""
            continue
        if kind == "structureet":
            if len(parts) < 31:
                raise ValueError(
                    f"line {n + 1}: structureet line with {len(parts)} fields, expected "
                    f"{STRUCTURE_FIELDS} (fields {list(EXPECTED_FIELDS)}…)"
                )
            cat = parts[18].strip()
            if cat in wanted:
                raw.structures[parts[1].strip()] = parts
                raw.counts[cat] = raw.counts.get(cat, 0) + 1
        elif kind == "geolocalisation":
            if len(parts) < 5:
                raise ValueError(f"line {n + 1}: geolocalisation line with {len(parts)} fields")
            nof = parts[1].strip()
            raw.geoloc[nof] = (parts[2].strip(), parts[3].strip(), parts[4].strip(),
                               parts[5].strip() if len(parts) > 5 else "")
    if raw.lines == 0:
        raise ValueError("empty file")
    return raw


def insee_code(dep: str, commune: str) -> str:
    """Build the INSEE commune code from FINESS département and commune fields.

    Examples
    --------
    >>> insee_code("01", "451"), insee_code("2A", "004"), insee_code("9A", "105")
    ('01451', '2A004', '97105')
    >>> insee_code("9A", "123")  # Saint-Barthélemy, old code in FINESS
    '97701'
    """
    dep = dep.strip().upper()
    commune = commune.strip().zfill(3)
    code = "97" + commune if dep in OVERSEAS_DEP else dep.zfill(2) + commune
    return COM_RENAMED.get(code, code)


def crs_of(source: str, dep: str) -> int:
    """Return the EPSG code named in a geolocalisation source string (else by département).

    Examples
    --------
    >>> crs_of("1,ATLASANTE,96,BAN,EPSG:2154 RGF93 / Lambert-93 (Métropole)", "44")
    2154
    >>> crs_of("1,ATLASANTE,100,IGN,BD_ADRESSE,V2.2,UTM_N20", "9A")
    5490
    >>> crs_of("", "9D")
    2975
    """
    m = re.search(r"EPSG:(\d{4,5})", source)
    if m:
        return int(m.group(1))
    m = re.search(r"UTM zone (\d{1,2})([NS])", source, flags=re.IGNORECASE)
    if m:
        zone = f"{int(m.group(1))}{m.group(2).upper()}"
        if "WGS84" in source.upper() or zone not in UTM_ZONES:
            return (32600 if zone.endswith("N") else 32700) + int(zone[:-1])
        return UTM_ZONES[zone]
    for token, epsg in LEGACY_CRS.items():
        if token in source.upper():
            return epsg
    return DEFAULT_EPSG_BY_DEP.get(dep.strip().upper(), 2154)


def precision_of(source: str) -> str:
    """Map a geolocalisation source string to a position precision.

    The fields are rank, provider, score, geocoder, CRS. The score (third field, 0-100):
    80 or more → ``address``, 50-79 → ``street``, below 50 → ``commune``. A position
    geocoded against the IGN commune database (geocoder ``ADMIN-EXPRESS-<year>``, score
    ``.``) is the commune's centroid → ``commune`` (measured over the whole file by
    mml-studio/surplomb ``src/data/amenitiesFeed.js``: the rows without a numeric score are
    exactly the ADMIN-EXPRESS and MAPS ones, and ADMIN-EXPRESS rows of one commune share
    one coordinate). Any other row without a score → ``commune`` too; a source string
    without a score field at all (old files) → ``address``.

    Examples
    --------
    >>> precision_of("1,ATLASANTE,96,BAN,EPSG:2154"), precision_of("1,ATLASANTE,62,BAN")
    ('address', 'street')
    >>> precision_of("1,ATLASANTE,.,ADMIN-EXPRESS-2023,EPSG:2154 RGF93 / Lambert-93")
    'commune'
    """
    fields = [f.strip() for f in source.split(",")]
    if len(fields) > 3 and fields[3].upper().startswith("ADMIN-EXPRESS"):
        return "commune"
    if len(fields) > 2 and not re.fullmatch(r"\d+(?:\.\d+)?", fields[2]):
        return "commune"
    if len(fields) > 2 and fields[2].isdigit():
        score = int(fields[2])
        if score >= 80:
            return "address"
        return "street" if score >= 50 else "commune"
    return "address"


_TRANSFORMERS: dict[int, Transformer] = {}


def _to_wgs84(x: float, y: float, epsg: int) -> tuple[float, float]:
    if epsg not in _TRANSFORMERS:
        _TRANSFORMERS[epsg] = Transformer.from_crs(epsg, 4326, always_xy=True)
    lon, lat = _TRANSFORMERS[epsg].transform(x, y)
    return float(lon), float(lat)


def _address(p: list[str]) -> str:
    street = " ".join(s for s in (p[7], p[8], p[9], p[10]) if s.strip())
    return ", ".join(s for s in (street.strip(), p[11].strip()) if s)


def build_finess_facilities(raw: FinessRaw) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Turn parsed FINESS lines into a facility table and a table of unplaced rows.

    Returns
    -------
    placed : geopandas.GeoDataFrame
        Facilities of :data:`CATEGORIES` with coordinates (EPSG:4326).
    unplaced : pandas.DataFrame
        Same columns without geometry, for rows without usable coordinates (to geocode
        with :func:`data_sources.ban.place_facilities`).
    """
    placed: list[dict[str, Any]] = []
    unplaced: list[dict[str, Any]] = []
    for nof, p in raw.structures.items():
        cat = p[18].strip()
        if cat not in CATEGORIES:
            continue
        ftype, subtype = CATEGORIES[cat]
        dep = p[13].strip()
        line = p[15].strip()
        postcode = line[:5] if line[:5].isdigit() else ""
        rec: dict[str, Any] = {
            "type": ftype,
            "subtype": subtype,
            "name": (p[4].strip() or p[3].strip()),
            "address": _address(p),
            "postcode": postcode,
            "code_insee": insee_code(dep, p[12]),
            "phone": p[16].strip(),
            "source": FINESS.key,
            "source_id": nof,
            "source_date": (p[30].strip() if len(p) > 30 and p[30].strip()
                            else raw.extraction_date),
            "position_precision": "address",
        }
        geo = raw.geoloc.get(nof)
        xy: tuple[float, float] | None = None
        if geo is not None:
            try:
                x, y = float(geo[0].replace(",", ".")), float(geo[1].replace(",", "."))
                xy = (x, y) if np.isfinite([x, y]).all() and (x, y) != (0.0, 0.0) else None
            except ValueError:
                xy = None
        if xy is None:
            rec["position_precision"] = ""
            unplaced.append(rec)
            continue
        assert geo is not None
        lon, lat = _to_wgs84(xy[0], xy[1], crs_of(geo[2], dep))
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            rec["position_precision"] = ""
            unplaced.append(rec)
            continue
        rec.update(lon=lon, lat=lat, position_precision=precision_of(geo[2]))
        placed.append(rec)
    return facility_frame(placed), pd.DataFrame(unplaced)


# --- validate / load -------------------------------------------------------------------


def validate_finess(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Validate against the facility schema (CRS, types, codes, unique ids)."""
    return validate_facilities(gdf, source=FINESS.key)


def load_finess(
    area: Territory | None = None,
    *,
    offline: bool | None = None,
    refresh: bool = False,
    geocode_missing: bool = False,
) -> gpd.GeoDataFrame:
    """Load the PMI centres of FINESS, clipped to ``area`` (all of France if ``None``).

    Parameters
    ----------
    area
        Territory whose communes are kept.
    offline, refresh
        See :mod:`data_sources._http`.
    geocode_missing
        Place rows without coordinates with the BAN geocoder (else they are dropped and
        listed in ``gdf.attrs["unplaced"]``).

    Returns
    -------
    geopandas.GeoDataFrame
        Facility table; ``attrs["excluded_counts"]`` counts category 228 rows of the
        area, ``attrs["extraction_date"]`` is the FINESS extraction date.
    """
    url, lines = fetch_finess(offline=offline, refresh=refresh)
    try:
        raw = parse_finess(lines)
    except ValueError as exc:
        _http.forget_download(url)
        if offline or _http.get_config().offline:
            raise SourceError(f"{FINESS.key}: stored copy of {url} is unusable ({exc}).") from exc
        logger.warning("finess: %s unusable (%s); downloading it again", url, exc)
        try:
            raw = parse_finess(_http.stream_lines(url, source=FINESS.key, refresh=True))
        except ValueError as exc2:
            raise SourceError(
                f"{FINESS.key}: {url} is unusable twice ({exc2}); the format may have "
                "changed, update data_sources/finess.py."
            ) from exc2
    placed, unplaced = build_finess_facilities(raw)
    if area is not None:
        keep = set(area.communes)
        placed = placed[placed["code_insee"].isin(keep)]
        if not unplaced.empty:
            unplaced = unplaced[unplaced["code_insee"].isin(keep)]
        excluded = {
            cat: sum(1 for p in raw.structures.values()
                     if p[18].strip() == cat and insee_code(p[13], p[12]) in keep)
            for cat in COUNTED_ONLY
        }
    else:
        excluded = {cat: raw.counts.get(cat, 0) for cat in COUNTED_ONLY}
    if geocode_missing and not unplaced.empty:
        from data_sources import ban

        extra = ban.place_facilities(unplaced, offline=offline)
        placed = pd.concat([placed, extra], ignore_index=True)
        unplaced = unplaced.iloc[0:0]
    out = validate_finess(gpd.GeoDataFrame(placed, geometry="geometry", crs=WGS84))
    for cat, n in excluded.items():
        if n:
            logger.info("finess: %d établissements de catégorie %s (%s) non cartographiés",
                        n, cat, COUNTED_ONLY[cat])
    out.attrs["excluded_counts"] = excluded
    out.attrs["unplaced"] = unplaced
    out.attrs["extraction_date"] = raw.extraction_date
    return out
