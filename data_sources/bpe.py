"""Facilities from the INSEE *Base permanente des équipements* (BPE), geolocated file.

Source: the yearly national zip ``https://www.insee.fr/fr/statistiques/fichier/8217525/
BPE<yy>.zip`` (one ``;``-separated CSV; URL pattern seen in stored third-party code for
BPE23, BPE24 and BPE25). Columns used: ``TYPEQU``, ``DEPCOM``, ``DEP``, ``LAMBERT_X``,
``LAMBERT_Y``, ``EPSG`` (overseas UTM; absent in old vintages: then by département),
``LONGITUDE``/``LATITUDE`` when present, ``QUALITE_XY`` (``Bonne`` | ``Acceptable`` |
``Mauvaise`` | ``Non géolocalisé``), and in recent vintages ``NOMRS``, ``CNOMRS``,
``NUMVOIE``, ``TYPVOIE``, ``LIBVOIE``, ``CODPOS``, ``SIRET``, ``CAPACITE``.

TYPEQU mapping (``data_sources/nomenclatures/bpe_typequ_diagnostic_1000j.csv``):
D502 → ``eaje``; D509 → ``eaje``/``micro_creche`` from the 2024 vintage on (code seen in a
third-party 2025 mapping only: verify); D503 → ``laep``; D504 → ``rpe``; D506 →
``centre_social``; D107 → ``maternite``; A129 → ``mairie``. Midwives are mapped **by label**
(``sage-femme``) because the D2xx codes were renumbered in recent vintages: pass the
vintage's own nomenclature (``typequ``, ``libelle``) to :func:`bpe_type_mapping`.
PMI centres have no BPE code (use FINESS).
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import Transformer

from data_sources import _http
from data_sources.merge import facility_frame
from data_sources.registry import SourceInfo, register
from diagnosis.errors import InputError, SourceError
from diagnosis.schema import Territory, validate_facilities
from diagnosis.settings import WGS84

logger = logging.getLogger(__name__)

NOMENCLATURE_PATH = Path(__file__).with_name("nomenclatures") / "bpe_typequ_diagnostic_1000j.csv"
BPE_URL_TEMPLATE = "https://www.insee.fr/fr/statistiques/fichier/8217525/BPE{yy:02d}.zip"
DEFAULT_VINTAGE = 2024

#: Codes whose meaning is stable across vintages.
FIXED_CODES: dict[str, tuple[str, str]] = {
    "D502": ("eaje", ""),
    "D503": ("laep", ""),
    "D504": ("rpe", ""),
    "D506": ("centre_social", ""),
    "D107": ("maternite", ""),
    "A129": ("mairie", ""),
}
#: Codes that exist from a vintage on (verify with a live check against the vintage used).
VINTAGE_CODES: dict[str, tuple[int, tuple[str, str]]] = {
    "D509": (2024, ("eaje", "micro_creche")),
}
#: Label patterns (accent/case-blind) mapped to a type, for renumbered codes.
LABEL_TYPES: tuple[tuple[str, tuple[str, str]], ...] = (
    (r"\bsage[- ]?femme", ("sage_femme", "")),
)
REQUIRED_COLUMNS = ("TYPEQU", "DEPCOM")
QUALITY = {
    "bonne": "address", "acceptable": "street", "mauvaise": "commune",
    "1": "address", "2": "street", "3": "commune",  # numeric variant: verify
}
DEFAULT_EPSG_BY_DEP = {"971": 5490, "972": 5490, "973": 2972, "974": 2975, "976": 4471}

BPE = register(SourceInfo(
    key="bpe",
    title="INSEE — Base permanente des équipements (fichier géolocalisé)",
    url="https://www.insee.fr/fr/statistiques/8217525",
    licence="Licence Ouverte 2.0",
    attribution="Source : Insee, Base permanente des équipements",
    vintage=str(DEFAULT_VINTAGE),
    crs="EPSG:2154 (métropole) ; UTM des DROM (colonne EPSG)",
    columns=(*REQUIRED_COLUMNS, "LAMBERT_X", "LAMBERT_Y", "QUALITE_XY", "EPSG", "NOMRS",
             "CAPACITE"),
    notes="Les PMI n'ont pas de code BPE ; les crèches de la BPE n'ont pas toujours de nom.",
))


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def read_nomenclature(path: str | Path = NOMENCLATURE_PATH) -> dict[str, str]:
    """Read a TYPEQU nomenclature (columns ``typequ`` and ``libelle``, ``;``)."""
    df = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    cols = {c.lower(): c for c in df.columns}
    if "typequ" not in cols or "libelle" not in cols:
        raise InputError(
            f"nomenclature {str(path)!r} lacks columns 'typequ' and 'libelle'; "
            f"found {list(df.columns)}"
        )
    return dict(zip(df[cols["typequ"]].str.strip().str.upper(), df[cols["libelle"]], strict=True))


def bpe_type_mapping(
    vintage: int, nomenclature: Mapping[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """Return TYPEQU → (facility type, subtype) for a BPE vintage.

    Examples
    --------
    >>> m = bpe_type_mapping(2024)
    >>> m["D502"], m["D509"], m["D231"]
    (('eaje', ''), ('eaje', 'micro_creche'), ('sage_femme', ''))
    >>> "D509" in bpe_type_mapping(2021)
    False
    """
    mapping = dict(FIXED_CODES)
    for code, (since, target) in VINTAGE_CODES.items():
        if vintage >= since:
            mapping[code] = target
    labels = read_nomenclature() if nomenclature is None else dict(nomenclature)
    for code, label in labels.items():
        for pattern, target in LABEL_TYPES:
            if re.search(pattern, _plain(label)):
                mapping[code.strip().upper()] = target
    return mapping


# --- fetch -----------------------------------------------------------------------------


def bpe_url(vintage: int) -> str:
    """Return the URL of the geolocated BPE zip of a vintage (pattern: verify when new)."""
    return BPE_URL_TEMPLATE.format(yy=vintage % 100)


def fetch_bpe(
    vintage: int = DEFAULT_VINTAGE, *, url: str | None = None, offline: bool | None = None,
    refresh: bool = False,
) -> Path:
    """Download (once, atomically) the BPE file of ``vintage`` and return its path."""
    return _http.download_file(url or bpe_url(vintage), source=BPE.key, offline=offline,
                               refresh=refresh)


def iter_bpe_lines(path: str | Path) -> Iterator[str]:
    """Yield the lines of a BPE CSV, or of the first CSV inside a zip, decoded per line."""
    path = Path(path)
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"PK\x03\x04" and not zipfile.is_zipfile(path):
        raise ValueError(f"{path.name} is a truncated or corrupt zip file")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            members = [n for n in zf.namelist() if n.lower().endswith(".csv")]
            if not members:
                raise ValueError(f"no CSV inside {path.name}: {zf.namelist()[:5]}")
            with zf.open(members[0]) as fh:
                for i, raw in enumerate(fh):
                    if i == 0 and raw.startswith(b"\xef\xbb\xbf"):
                        raw = raw[3:]
                    try:
                        yield raw.decode("utf-8").rstrip("\r\n")
                    except UnicodeDecodeError:
                        yield raw.decode("cp1252", errors="replace").rstrip("\r\n")
    else:
        yield from _http.iter_file_lines(path)


# --- parse -----------------------------------------------------------------------------


_TRANSFORMERS: dict[int, Transformer] = {}


def _to_wgs84(x: float, y: float, epsg: int) -> tuple[float, float]:
    if epsg not in _TRANSFORMERS:
        _TRANSFORMERS[epsg] = Transformer.from_crs(epsg, 4326, always_xy=True)
    lon, lat = _TRANSFORMERS[epsg].transform(x, y)
    return float(lon), float(lat)


def _num(value: str) -> float:
    try:
        return float(value.replace(",", ".")) if value.strip() else np.nan
    except ValueError:
        return np.nan


def parse_bpe(
    lines: Iterable[str],
    *,
    vintage: int = DEFAULT_VINTAGE,
    mapping: Mapping[str, tuple[str, str]] | None = None,
    communes: Iterable[str] | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Parse BPE CSV lines (header first), keeping mapped TYPEQU rows of ``communes``.

    Pure and streaming: only the kept rows are held in memory.

    Returns
    -------
    placed : geopandas.GeoDataFrame
        Facility table (not yet validated) of rows with coordinates.
    unplaced : pandas.DataFrame
        Kept rows without usable coordinates (``QUALITE_XY`` *Non géolocalisé*).

    Raises
    ------
    SourceError
        When required columns are missing (the message names them).
    ValueError
        When the file is empty (the caller refetches).
    """
    maps = dict(mapping) if mapping is not None else bpe_type_mapping(vintage)
    keep_communes = set(communes) if communes is not None else None
    it = iter(lines)
    header_line = next(it, None)
    if header_line is None or not header_line.strip():
        raise ValueError("empty BPE file")
    sep = ";" if header_line.count(";") >= header_line.count(",") else ","
    header = [h.strip().strip('"').upper() for h in next(csv.reader([header_line], delimiter=sep))]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    has_lambert = "LAMBERT_X" in header and "LAMBERT_Y" in header
    has_lonlat = "LONGITUDE" in header and "LATITUDE" in header
    if not (has_lambert or has_lonlat):
        missing.append("LAMBERT_X/LAMBERT_Y (or LONGITUDE/LATITUDE)")
    if missing:
        raise SourceError(
            f"{BPE.key}: the BPE file lacks columns {missing}; found {header[:30]}. "
            "The format changed: update data_sources/bpe.py."
        )
    pos = {name: i for i, name in enumerate(header)}

    def get(row: list[str], name: str) -> str:
        i = pos.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    placed: list[dict[str, Any]] = []
    unplaced: list[dict[str, Any]] = []
    for line_no, row in enumerate(csv.reader(it, delimiter=sep), start=2):
        if not row:
            continue
        typequ = get(row, "TYPEQU").upper()
        if typequ not in maps:
            continue
        depcom = get(row, "DEPCOM")
        if keep_communes is not None and depcom not in keep_communes:
            continue
        ftype, subtype = maps[typequ]
        name = " ".join(s for s in (get(row, "NOMRS"), get(row, "CNOMRS")) if s)
        street = " ".join(s for s in (get(row, "NUMVOIE"), get(row, "INDREP"),
                                      get(row, "TYPVOIE"), get(row, "LIBVOIE")) if s)
        cap = _num(get(row, "CAPACITE"))
        rec: dict[str, Any] = {
            "type": ftype, "subtype": subtype,
            "name": name or "",
            "address": ", ".join(s for s in (street, get(row, "CADR")) if s),
            "postcode": get(row, "CODPOS"),
            "code_insee": depcom,
            "capacity": cap if np.isfinite(cap) and cap > 0 else np.nan,
            "source": BPE.key,
            "source_id": f"{get(row, 'AN') or vintage}-{typequ}-L{line_no}",
            "source_date": get(row, "AN") or str(vintage),
        }
        quality = _plain(get(row, "QUALITE_XY"))
        precision = QUALITY.get(quality, "")
        lon = lat = np.nan
        if has_lonlat:
            lon, lat = _num(get(row, "LONGITUDE")), _num(get(row, "LATITUDE"))
        if not np.isfinite([lon, lat]).all() and has_lambert:
            x, y = _num(get(row, "LAMBERT_X")), _num(get(row, "LAMBERT_Y"))
            if np.isfinite([x, y]).all():
                epsg_txt = get(row, "EPSG")
                dep = get(row, "DEP") or (depcom[:3] if depcom.startswith("97") else depcom[:2])
                epsg = int(float(epsg_txt)) if epsg_txt.replace(".", "").isdigit() else (
                    DEFAULT_EPSG_BY_DEP.get(dep, 2154))
                lon, lat = _to_wgs84(x, y, epsg)
        if not np.isfinite([lon, lat]).all() or not precision or "non" in quality:
            if np.isfinite([lon, lat]).all() and not quality:
                precision = "address"  # no quality column: trust the coordinates
            else:
                unplaced.append(rec)
                continue
        rec.update(lon=lon, lat=lat, position_precision=precision)
        placed.append(rec)
    return facility_frame(placed), pd.DataFrame(unplaced)


# --- validate / load -------------------------------------------------------------------


def validate_bpe(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Validate a BPE facility table against the schema."""
    return validate_facilities(gdf, source=BPE.key)


def load_bpe(
    area: Territory,
    *,
    vintage: int = DEFAULT_VINTAGE,
    url: str | None = None,
    nomenclature: Mapping[str, str] | None = None,
    offline: bool | None = None,
    refresh: bool = False,
) -> gpd.GeoDataFrame:
    """Load the BPE facilities of ``area`` (types of :func:`bpe_type_mapping`).

    The unplaced rows are in ``attrs["unplaced"]`` (geocode them with
    :func:`data_sources.ban.place_facilities` if needed).
    """
    the_url = url or bpe_url(vintage)
    path = fetch_bpe(vintage, url=url, offline=offline, refresh=refresh)
    _http.check_not_html(path, url=the_url, source=BPE.key)
    mapping = bpe_type_mapping(vintage, nomenclature)
    try:
        placed, unplaced = parse_bpe(iter_bpe_lines(path), vintage=vintage, mapping=mapping,
                                     communes=area.communes)
    except (ValueError, zipfile.BadZipFile, EOFError) as exc:
        _http.forget_download(the_url)
        if offline or _http.get_config().offline:
            raise SourceError(f"{BPE.key}: stored copy of {the_url} is unusable ({exc}).") from exc
        path = fetch_bpe(vintage, url=url, refresh=True)
        try:
            placed, unplaced = parse_bpe(iter_bpe_lines(path), vintage=vintage,
                                         mapping=mapping, communes=area.communes)
        except (ValueError, zipfile.BadZipFile, EOFError) as exc2:
            raise SourceError(f"{BPE.key}: {the_url} is unusable twice ({exc2}).") from exc2
    out = validate_bpe(gpd.GeoDataFrame(placed, geometry="geometry", crs=WGS84))
    out.attrs["unplaced"] = unplaced
    return out


def parse_bpe_bytes(data: bytes, **kwargs: Any) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Parse BPE CSV bytes (UTF-8 or Windows-1252), a convenience for small extracts."""
    text = _http.decode_text(data)
    return parse_bpe(io.StringIO(text).read().splitlines(), **kwargs)
