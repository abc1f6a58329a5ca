"""Facilities from the INSEE *Base permanente des équipements* (BPE), geolocated file.

Edition discovery (no edition is hard-coded): INSEE's own data.gouv.fr entry
(dataset ``548acaf2c751df1eac4120e7``) points to the current edition's landing page on
insee.fr; that page, or one of the sub-pages it lists (``/fr/statistiques/NNN?sommaire=``),
links the zip ``/fr/statistiques/fichier/NNN/BPE<yy>.zip``: the newest ``yy`` wins
(:func:`discover_edition`). The edition's own TYPEQU list is
``https://www.insee.fr/fr/metadonnees/source/fichier/TYPEQU_<year>.csv``. Evidence:
mml-studio/surplomb ``src/data/amenitiesFeed.js`` (BPE25, measured 2026-09).

The current file (BPE 2024 and 2025 editions): ``;``-separated, **every field quoted**;
missing values are the strings ``_Z`` (sans objet) and ``_U`` (indéterminé), never blanks:
they are read as missing and never reach a name or an address. Columns used: ``TYPEQU``,
``DEPCOM``, ``DEP``, ``LAMBERT_X``, ``LAMBERT_Y``, ``EPSG``, ``LONGITUDE``/``LATITUDE``,
``QUALITE_XY`` (letter codes ``B`` bonne, ``A`` acceptable, ``M`` mauvaise; old vintages
spell the words), ``QUALITE_GEOLOC`` (``11`` street sure + number found → ``address``;
``12``, ``21``, ``22`` → ``street``; ``33`` a random point in the commune → ``commune``),
``NOMRS``, ``CNOMRS``, ``NUMVOIE``, ``TYPVOIE``, ``LIBVOIE``, ``CODPOS``, ``CAPACITE``.
Rows without coordinates (all of Mayotte's in BPE25) are returned as unplaced.

TYPEQU mapping: stable codes D502 → ``eaje``, D503 → ``laep``, D504 → ``rpe``, D506 →
``centre_social``, A129 → ``mairie``; D509 → ``eaje``/``micro_creche`` from 2024 on. Each
is checked against the TYPEQU list of the edition downloaded (:func:`check_mapping`): a
code missing or renamed there is reported in ``attrs["notes"]`` and not used. The
health codes were renumbered in 2024: midwives (``sage-femme``) and maternities
(``maternité``) are mapped **by label** from the edition's own TYPEQU list; without that
list an edition from 2024 on has no midwife or maternity type (said in ``attrs["notes"]``),
never the pre-2024 codes. PMI centres have no BPE code (use FINESS).
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
#: INSEE's data.gouv.fr entry for the BPE: its resource is the current landing page.
BPE_DATASET_API = "https://www.data.gouv.fr/api/1/datasets/548acaf2c751df1eac4120e7/"
#: Landing page of the 2025 edition, where discovery starts when data.gouv.fr fails.
BPE_LANDING_URL = "https://www.insee.fr/fr/statistiques/8217537"
TYPEQU_URL_TEMPLATE = "https://www.insee.fr/fr/metadonnees/source/fichier/TYPEQU_{year}.csv"
#: Edition used when discovery finds nothing (newest edition known to this code).
KNOWN_EDITION = 2025
#: Kept for callers: the default is now the discovered edition (``vintage=None``).
DEFAULT_VINTAGE = KNOWN_EDITION
#: First edition with the renumbered health codes.
RENUMBERED_FROM = 2024
#: BPE's missing-value sentinels.
MISSING_VALUES = frozenset({"_Z", "_U"})

#: Codes whose meaning is stable across vintages (not health codes).
FIXED_CODES: dict[str, tuple[str, str]] = {
    "D502": ("eaje", ""),
    "D503": ("laep", ""),
    "D504": ("rpe", ""),
    "D506": ("centre_social", ""),
    "A129": ("mairie", ""),
}
#: Pre-2024 health codes (shipped nomenclature); never applied to later editions.
OLD_HEALTH_CODES: dict[str, tuple[str, str]] = {"D107": ("maternite", "")}
#: Codes that exist from a vintage on (verify with a live check against the vintage used).
VINTAGE_CODES: dict[str, tuple[int, tuple[str, str]]] = {
    "D509": (2024, ("eaje", "micro_creche")),
}
#: What each stable code is called in an edition's TYPEQU list (patterns, accent- and
#: case-blind). A code absent from the list downloaded, or called something else there,
#: is not used; a code carrying the expected label is used instead when there is one.
CODE_LABELS: dict[str, tuple[str, str]] = {
    "D502": (r"accueil du jeune enfant|\beaje\b|\bcreches?\b", "accueil du jeune enfant"),
    "D503": (r"enfants?[- ]parents?|\blaep\b", "lieu d'accueil enfants-parents"),
    "D504": (r"\brelais\b|\brpe\b|\bram\b", "relais petite enfance"),
    "D506": (r"centres? sociaux|centre social", "centre social"),
    "D509": (r"micro[- ]?creches?", "micro-crèche"),
    "A129": (r"\bmairies?\b", "mairie"),
}
#: Label patterns (accent/case-blind) mapped to a type, for renumbered codes.
LABEL_TYPES: tuple[tuple[str, tuple[str, str]], ...] = (
    (r"\bsages?[- ]?femmes?\b", ("sage_femme", "")),
    (r"\bmaternites?\b", ("maternite", "")),
)
#: Types that only the edition's label list can give from 2024 on.
LABEL_ONLY_TYPES = ("sage_femme", "maternite")
REQUIRED_COLUMNS = ("TYPEQU", "DEPCOM")
#: ``QUALITE_XY``: letter codes (2024+) and the words of older vintages.
QUALITY = {
    "b": "address", "a": "street", "m": "commune",
    "bonne": "address", "acceptable": "street", "mauvaise": "commune",
}
#: ``QUALITE_GEOLOC`` modalities (BPE25_anonymisee_varmod.csv, as quoted by surplomb).
GEOLOC_QUALITY = {"11": "address", "12": "street", "21": "street", "22": "street",
                  "33": "commune"}
DEFAULT_EPSG_BY_DEP = {"971": 5490, "972": 5490, "973": 2972, "974": 2975, "976": 4471}

BPE = register(SourceInfo(
    key="bpe",
    title="INSEE — Base permanente des équipements (fichier géolocalisé)",
    url="https://www.insee.fr/fr/statistiques/8217525",
    licence="Licence Ouverte 2.0",
    attribution="Source : Insee, Base permanente des équipements",
    vintage="édition la plus récente publiée (découverte à chaque mise à jour)",
    crs="EPSG:2154 (métropole) ; UTM des DROM (colonne EPSG)",
    columns=(*REQUIRED_COLUMNS, "LAMBERT_X", "LAMBERT_Y", "LONGITUDE", "LATITUDE",
             "QUALITE_XY", "QUALITE_GEOLOC", "EPSG", "NOMRS", "CAPACITE"),
    notes="Les PMI n'ont pas de code BPE ; les crèches de la BPE n'ont pas toujours de nom.",
))


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


_CODE_COLUMNS = ("typequ", "cod_mod", "code")
_LABEL_COLUMNS = ("libelle", "lib_mod", "libelle_typequ", "lib_typequ", "libequip")


def parse_nomenclature(text: str, *, name: str = "TYPEQU") -> dict[str, str]:
    r"""Parse a TYPEQU list (``;`` or ``,``, quoted or not) into code → label.

    Accepts the column names ``TYPEQU``/``COD_MOD``/``CODE`` and
    ``LIBELLE``/``LIB_MOD``/``LIBELLE_TYPEQU`` (any case).

    Examples
    --------
    >>> parse_nomenclature('"TYPEQU";"LIBELLE"\n"D502";"Crèche"\n')
    {'D502': 'Crèche'}
    """
    lines = text.lstrip("\ufeff").splitlines()
    if not lines:
        raise ValueError(f"{name}: empty TYPEQU list")
    sep = ";" if lines[0].count(";") >= lines[0].count(",") else ","
    df = pd.read_csv(io.StringIO("\n".join(lines)), sep=sep, dtype=str, keep_default_na=False)
    cols = {c.strip().lower(): c for c in df.columns}
    code = next((cols[c] for c in _CODE_COLUMNS if c in cols), None)
    label = next((cols[c] for c in _LABEL_COLUMNS if c in cols), None)
    if code is None or label is None:
        raise ValueError(
            f"{name} lacks a code column {list(_CODE_COLUMNS)} and a label column "
            f"{list(_LABEL_COLUMNS)}; found {list(df.columns)}"
        )
    return dict(zip(df[code].str.strip().str.upper(), df[label].str.strip(), strict=True))


def read_nomenclature(path: str | Path = NOMENCLATURE_PATH) -> dict[str, str]:
    """Read a TYPEQU nomenclature file (see :func:`parse_nomenclature`)."""
    try:
        return parse_nomenclature(Path(path).read_text(encoding="utf-8"), name=str(path))
    except ValueError as exc:
        raise InputError(f"nomenclature {str(path)!r}: {exc}") from exc


def bpe_type_mapping(
    vintage: int, nomenclature: Mapping[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """Return TYPEQU → (facility type, subtype) for a BPE vintage.

    Parameters
    ----------
    vintage
        Edition year.
    nomenclature
        The edition's own TYPEQU list (code → label). Without it, editions before 2024
        use the shipped (pre-renumbering) list and later editions get no midwife or
        maternity code at all.

    Examples
    --------
    >>> m = bpe_type_mapping(2021)
    >>> m["D502"], m["D107"], m["D231"]
    (('eaje', ''), ('maternite', ''), ('sage_femme', ''))
    >>> "D509" in m
    False
    >>> m = bpe_type_mapping(2025, {"D2A1": "Sage-femme", "D1B2": "Maternité"})
    >>> m["D509"], m["D2A1"], m["D1B2"], "D231" in m, "D107" in m
    (('eaje', 'micro_creche'), ('sage_femme', ''), ('maternite', ''), False, False)
    >>> "D231" in bpe_type_mapping(2025)
    False
    """
    mapping = dict(FIXED_CODES)
    for code, (since, target) in VINTAGE_CODES.items():
        if vintage >= since:
            mapping[code] = target
    if nomenclature is not None:
        labels = dict(nomenclature)
    elif vintage < RENUMBERED_FROM:
        labels = read_nomenclature()
        mapping.update(OLD_HEALTH_CODES)
    else:
        labels = {}
    for code, label in labels.items():
        for pattern, target in LABEL_TYPES:
            if re.search(pattern, _plain(label)):
                mapping[code.strip().upper()] = target
    return mapping


def check_mapping(
    mapping: Mapping[str, tuple[str, str]], nomenclature: Mapping[str, str], *, vintage: int
) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """Check the stable codes of ``mapping`` against an edition's own TYPEQU list.

    Parameters
    ----------
    mapping
        TYPEQU → (type, subtype), from :func:`bpe_type_mapping`.
    nomenclature
        The edition's TYPEQU list (code → label) actually downloaded.
    vintage
        Edition year (named in the notes).

    Returns
    -------
    mapping : dict
        The codes of :data:`CODE_LABELS` whose label in the list says what they are
        mapped to; a code missing or renamed is dropped, and replaced by the one code of
        the list carrying the expected label, if any.
    notes : list of str
        One French note per code missing, renamed or replaced.

    Examples
    --------
    >>> m, notes = check_mapping({"D503": ("laep", ""), "D504": ("rpe", "")},
    ...                          {"D504": "Relais petite enfance", "D5L3": "LAEP"},
    ...                          vintage=2026)
    >>> sorted(m), notes[0].startswith("code D503 (lieu d'accueil enfants-parents) absent")
    (['D504', 'D5L3'], True)
    """
    out = dict(mapping)
    notes: list[str] = []
    labels = {str(k).strip().upper(): str(v) for k, v in nomenclature.items()}
    for code, (pattern, what) in CODE_LABELS.items():
        if code not in out:
            continue
        target = out[code]
        label = labels.get(code)
        if label is not None and re.search(pattern, _plain(label)):
            continue
        del out[code]
        state = (f"absent de la liste TYPEQU {vintage}" if label is None else
                 f"appelé « {label} » dans la liste TYPEQU {vintage}")
        moved = [c for c, lab in labels.items() if c != code and c not in out
                 and re.search(pattern, _plain(lab))]
        if len(moved) == 1:
            out[moved[0]] = target
            notes.append(f"code {code} ({what}) {state} : code {moved[0]} "
                         f"« {labels[moved[0]]} » utilisé à sa place")
        else:
            notes.append(f"code {code} ({what}) {state} : ces structures de la BPE ne sont "
                         "pas chargées (non connues, pas absentes)")
    return out, notes


def uncovered_types(note: str) -> set[str]:
    """Facility types a BPE load could not read, from its French notes (ledger ``note``).

    A stable code missing or renamed in the edition's TYPEQU list, and not replaced by
    another code (:func:`check_mapping`), leaves its type unknown: the BPE no longer
    lists it exhaustively, so a diagnosis must not say « aucune ».

    Examples
    --------
    >>> uncovered_types("code D506 (centre social) absent de la liste TYPEQU 2026 : ces "
    ...                 "structures de la BPE ne sont pas chargées (non connues, pas absentes)")
    {'centre_social'}
    >>> uncovered_types("code D503 (lieu d'accueil enfants-parents) absent de la liste TYPEQU "
    ...                 "2026 : code D5L3 « LAEP » utilisé à sa place")
    set()
    """
    out: set[str] = set()
    for part in re.split(r"\s;\s|\|", note or ""):
        m = re.search(r"code ([A-Z]\d[\dA-Z]{2}) \(", part)
        if m and "utilisé à sa place" not in part and m.group(1) in {**FIXED_CODES,
                                                                     **dict.fromkeys(
                                                                         VINTAGE_CODES)}:
            code = m.group(1)
            out.add(FIXED_CODES[code][0] if code in FIXED_CODES else
                    VINTAGE_CODES[code][1][0])
    if re.search(r"sages-femmes et maternités de la BPE non chargées", note or ""):
        out |= set(LABEL_ONLY_TYPES)
    m = re.search(r"aucun code de la liste TYPEQU \d{4} pour : ([a-z_, ]+)", note or "")
    if m:
        out |= {t.strip() for t in m.group(1).split(",") if t.strip()}
    return out


# --- fetch -----------------------------------------------------------------------------


def bpe_url(vintage: int) -> str:
    """Return the usual URL of the geolocated BPE zip of a vintage (prefer discovery)."""
    return BPE_URL_TEMPLATE.format(yy=vintage % 100)


_ZIP_RE = re.compile(r"/fr/statistiques/fichier/(\d+)/BPE(\d{2})\.zip")
_SUBPAGE_RE = re.compile(r'href="(?:https://www\.insee\.fr)?/fr/statistiques/(\d+)\?sommaire=\d+"')


def editions_in_html(html: str) -> list[tuple[int, str]]:
    """Return the ``(year, url)`` of every ``BPE<yy>.zip`` linked in an insee.fr page.

    Examples
    --------
    >>> editions_in_html('<a href="/fr/statistiques/fichier/8217525/BPE25.zip">zip</a>')
    [(2025, 'https://www.insee.fr/fr/statistiques/fichier/8217525/BPE25.zip')]
    """
    found = {(2000 + int(m.group(2)),
              f"https://www.insee.fr/fr/statistiques/fichier/{m.group(1)}/BPE{m.group(2)}.zip")
             for m in _ZIP_RE.finditer(html)}
    return sorted(found)


def subpages_in_html(html: str) -> list[str]:
    """Return the URLs of the sub-pages listed by an edition's landing page."""
    ids = dict.fromkeys(m.group(1) for m in _SUBPAGE_RE.finditer(html))
    return [f"https://www.insee.fr/fr/statistiques/{i}" for i in ids]


def discover_edition(*, offline: bool | None = None, max_pages: int = 8) -> tuple[int, str]:
    """Find the newest BPE edition: ``(year, zip URL)``.

    data.gouv.fr dataset → landing page → its sub-pages, stopping at the first page
    that links a ``BPE<yy>.zip``.

    Raises
    ------
    SourceError
        When no page links a BPE zip (the message names the pages read).
    """
    landing = BPE_LANDING_URL
    try:
        doc = _http.fetch_json(BPE_DATASET_API, source=BPE.key, offline=offline)
        urls = [str(r.get("url", "")) for r in doc.get("resources") or []]
        landing = next((u for u in urls if re.match(r"https://www\.insee\.fr/fr/statistiques/"
                                                    r"\d+", u)), BPE_LANDING_URL)
    except SourceError as exc:
        logger.warning("bpe: %s; starting from %s", exc, BPE_LANDING_URL)
    read: list[str] = []
    pending = [landing]
    found: list[tuple[int, str]] = []
    while pending and len(read) < max_pages:
        page = pending.pop(0)
        read.append(page)
        html = _http.fetch_text(page, source=BPE.key, offline=offline, expect="text")
        found = editions_in_html(html)
        if found:
            break
        if page == landing:
            pending.extend(p for p in subpages_in_html(html) if p not in read)
    if not found:
        raise SourceError(
            f"{BPE.key}: no BPE<yy>.zip linked from {read}; the INSEE pages changed: "
            "update data_sources/bpe.py or pass url=."
        )
    return found[-1]


def fetch_typequ(vintage: int, *, offline: bool | None = None) -> dict[str, str]:
    """Download and parse the TYPEQU list of an edition (code → label)."""
    url = TYPEQU_URL_TEMPLATE.format(year=vintage)
    text = _http.fetch_text(url, source=BPE.key, offline=offline,
                            check=lambda t: parse_nomenclature(t, name=url))
    return parse_nomenclature(text, name=url)


def fetch_bpe(
    vintage: int = KNOWN_EDITION, *, url: str | None = None, offline: bool | None = None,
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
        value = row[i].strip() if i is not None and i < len(row) else ""
        return "" if value in MISSING_VALUES else value

    has_quality = "QUALITE_XY" in header or "QUALITE_GEOLOC" in header

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
        precision = GEOLOC_QUALITY.get(get(row, "QUALITE_GEOLOC"), "") or QUALITY.get(quality, "")
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
        if not np.isfinite([lon, lat]).all() or quality.startswith("non"):
            unplaced.append(rec)
            continue
        if not precision:
            # No quality column at all (old extracts): trust the coordinates; a quality
            # the file leaves undetermined (_U, _Z) is not trusted beyond the commune.
            precision = "commune" if has_quality else "address"
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
    vintage: int | None = None,
    url: str | None = None,
    nomenclature: Mapping[str, str] | None = None,
    offline: bool | None = None,
    refresh: bool = False,
) -> gpd.GeoDataFrame:
    """Load the BPE facilities of ``area`` (types of :func:`bpe_type_mapping`).

    Parameters
    ----------
    vintage
        Edition year; ``None`` discovers the newest one (:func:`discover_edition`).
    url
        Zip URL (default: the discovered one, or the usual pattern for ``vintage``).
    nomenclature
        The edition's TYPEQU list; default: :func:`fetch_typequ` for the edition.

    Returns
    -------
    geopandas.GeoDataFrame
        Validated facility table. ``attrs["vintage"]`` is the edition read,
        ``attrs["url"]`` the file, ``attrs["notes"]`` French remarks (types that could
        not be mapped), ``attrs["unplaced"]`` the rows without coordinates (geocode
        them with :func:`data_sources.ban.place_facilities` if needed).
    """
    notes: list[str] = []
    if vintage is None and url is None:
        try:
            vintage, url = discover_edition(offline=offline)
        except SourceError as exc:
            vintage = KNOWN_EDITION
            logger.warning("bpe: %s; using the %d edition", exc, vintage)
            notes.append(f"édition la plus récente introuvable, BPE {vintage} utilisée")
    if vintage is None:
        match = re.search(r"BPE(\d{2})\.zip", url or "")
        vintage = 2000 + int(match.group(1)) if match else KNOWN_EDITION
    the_url = url or bpe_url(vintage)
    if nomenclature is None:
        try:
            nomenclature = fetch_typequ(vintage, offline=offline)
        except SourceError as exc:
            logger.warning("bpe: TYPEQU list of %d unavailable (%s)", vintage, exc)
            if vintage >= RENUMBERED_FROM:
                notes.append(
                    f"liste TYPEQU {vintage} indisponible : sages-femmes et maternités de la "
                    "BPE non chargées (non connues, pas absentes)"
                )
    mapping = bpe_type_mapping(vintage, nomenclature)
    if nomenclature is not None:
        mapping, code_notes = check_mapping(mapping, nomenclature, vintage=vintage)
        notes.extend(code_notes)
    missing_types = [t for t in LABEL_ONLY_TYPES
                     if t not in {v[0] for v in mapping.values()}]
    if nomenclature is not None and missing_types:
        notes.append(f"aucun code de la liste TYPEQU {vintage} pour : {', '.join(missing_types)}")
    path = fetch_bpe(vintage, url=the_url, offline=offline, refresh=refresh)
    _http.check_not_html(path, url=the_url, source=BPE.key)
    try:
        placed, unplaced = parse_bpe(iter_bpe_lines(path), vintage=vintage, mapping=mapping,
                                     communes=area.communes)
    except (ValueError, zipfile.BadZipFile, EOFError) as exc:
        _http.forget_download(the_url)
        if offline or _http.get_config().offline:
            raise SourceError(f"{BPE.key}: stored copy of {the_url} is unusable ({exc}).") from exc
        path = fetch_bpe(vintage, url=the_url, refresh=True)
        try:
            placed, unplaced = parse_bpe(iter_bpe_lines(path), vintage=vintage,
                                         mapping=mapping, communes=area.communes)
        except (ValueError, zipfile.BadZipFile, EOFError) as exc2:
            raise SourceError(f"{BPE.key}: {the_url} is unusable twice ({exc2}).") from exc2
    out = validate_bpe(gpd.GeoDataFrame(placed, geometry="geometry", crs=WGS84))
    out.attrs["unplaced"] = unplaced
    out.attrs["vintage"] = vintage
    out.attrs["url"] = the_url
    out.attrs["notes"] = notes
    return out
