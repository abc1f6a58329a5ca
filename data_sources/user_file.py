"""Import a user's own facility file (CSV, GeoJSON, GeoPackage) into the facility schema.

A project holder or a consultant brings their own list: a hand-made table, a CAF or
département export, a FINESS or INSEE BPE extract. The import is shaped like the other
loaders, in small pure steps:

1. :func:`read_table` — bytes -> raw text table (encoding, separator, geometry, CRS);
2. :func:`detect_columns` — which file column holds the name, the type, the position…
   (accent- and case-blind; an explicit ``mapping`` wins);
3. :func:`parse_facilities` — rows -> facilities + a per-row :class:`ImportReport`
   (types mapped, coordinates checked and converted, rows without coordinates placed at
   their town hall, rejected rows kept with their reason, duplicates flagged);
4. :func:`diagnosis.schema.validate_facilities`.

:func:`load_facility_file` runs the four steps. Nothing is dropped silently: every row is
either accepted or listed in ``report.rejected`` with a French reason, and every
correction (swapped coordinates, approximate position, interpreted type…) is counted in
``report.warnings`` and listed row by row in ``report.notes``.

Row numbers are the numbers a user sees: for a CSV, the line in the file (the header is
line 1, so the first data row is line 2); for GeoJSON and GeoPackage, the feature's rank
(1 = first feature).
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from diagnosis.errors import InputError
from diagnosis.schema import (
    EAJE_SUBTYPES,
    FACILITY_TYPES,
    empty_facilities,
    facility_label,
    validate_facilities,
)
from diagnosis.settings import (
    DUPLICATE_DISTANCE_M,
    FRANCE_METRO_BBOX,
    FRANCE_OVERSEAS_BBOXES,
    WGS84,
)

__all__ = [
    "COLUMN_ALIASES",
    "ImportReport",
    "ImportResult",
    "RawTable",
    "detect_columns",
    "find_duplicates",
    "insee_fallback_columns",
    "load_facility_file",
    "locate_points",
    "map_type",
    "parse_facilities",
    "read_table",
]

#: File extensions read as CSV text and as vector files (pyogrio).
CSV_EXTENSIONS = (".csv", ".txt", ".tsv")
GEO_EXTENSIONS = (".geojson", ".json", ".gpkg")

#: Separators tried on CSV files, in order of preference when equally plausible.
CSV_SEPARATORS = (";", ",", "\t")

#: Columns auto-detected, with the folded names (no accents, lower case, ``_`` for any
#: punctuation) recognised for each, best first. Keys are the schema columns plus the
#: position helpers ``lat``, ``lon``, ``x``, ``y``, ``epsg``, ``precision`` (geocoding
#: quality) and ``commune`` (commune name, to disambiguate a postcode).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "name": (
        "nom", "name", "nom_structure", "nom_de_la_structure", "nom_etablissement",
        "nom_de_l_etablissement", "nom_equipement", "raison_sociale", "nomrs", "rs", "rslongue",
        "libelle", "libelle_structure", "denomination", "enseigne", "intitule", "structure",
        "etablissement", "nom_officiel", "titre", "title",
    ),
    "address": (
        "adresse", "address", "adresse_complete", "adresse_postale", "adresse_1", "adresse1",
        "adresse_structure", "adresse_etablissement", "voie", "numero_et_voie", "rue", "adr",
        "lib_voie", "ligne_adresse",
    ),
    "postcode": ("code_postal", "cp", "codepostal", "postcode", "postal_code", "code_post"),
    "code_insee": (
        "code_insee_pip", "code_insee", "insee", "codeinsee", "code_commune_insee", "depcom",
        "codgeo", "code_geo", "code_commune", "codecommune", "com", "citycode", "result_citycode",
        "insee_com", "code_insee_commune",
    ),
    "commune": (
        "commune", "ville", "nom_commune", "libelle_commune", "localite", "city", "libcom",
        "nomcom",
    ),
    "lat": (
        "lat", "latitude", "y_wgs84", "lat_wgs84", "wgs84_lat", "latitude_wgs84", "coord_lat",
        "geo_lat", "result_latitude",
    ),
    "lon": (
        "lon", "lng", "long", "longitude", "x_wgs84", "lon_wgs84", "wgs84_lon", "longitude_wgs84",
        "coord_lon", "geo_lon", "result_longitude",
    ),
    "x": (
        "x", "lambert_x", "coord_x", "coordx", "x_lambert", "x_lambert93", "x_l93", "xl93",
        "coordonnee_x", "x_coord", "xcoord", "coordxet",
    ),
    "y": (
        "y", "lambert_y", "coord_y", "coordy", "y_lambert", "y_lambert93", "y_l93", "yl93",
        "coordonnee_y", "y_coord", "ycoord", "coordyet",
    ),
    "epsg": ("epsg", "code_epsg", "srid", "crs", "srs"),
    "type": (
        "type", "categorie", "typequ", "type_structure", "type_etablissement", "type_equipement",
        "categorie_structure", "categorie_etablissement", "categetab", "type_de_structure",
        "nature", "category",
    ),
    "subtype": ("sous_type", "subtype", "sous_categorie", "soustype", "type_accueil"),
    "capacity": (
        "capacite", "places", "nb_places", "nombre_places", "nombre_de_places", "nbplaces",
        "nb_place", "capacite_accueil", "capacite_d_accueil", "capacity", "places_agreees",
    ),
    "operator": (
        "gestionnaire", "type_gestion", "operateur", "operator", "organisme_gestionnaire",
        "gestion", "mode_de_gestion", "porteur",
    ),
    "phone": (
        "telephone", "tel", "phone", "num_tel", "numero_telephone", "telephone_1", "telephone1",
    ),
    "email": (
        "email", "e_mail", "mail", "courriel", "adresse_mail", "adresse_email",
        "adresse_electronique", "mel",
    ),
    "website": ("site_web", "site", "website", "site_internet", "url", "web"),
    "id": (
        "id", "identifiant", "finess", "nofinesset", "siret", "code_finess", "num_finess",
        "numero_finess", "id_structure", "code_structure", "reference", "ref", "uid",
    ),
    "precision": (
        "geocode_type", "result_type", "type_geocodage", "position_precision", "precision",
        "qualite_xy", "precision_geocodage", "precision_localisation",
    ),
}
#: Aliases accepted as keys of ``mapping`` for the keys of :data:`COLUMN_ALIASES`.
_MAPPING_KEY_ALIASES = {"source_id": "id", "position_precision": "precision",
                        "latitude": "lat", "longitude": "lon"}

#: When no column name matches exactly, a column whose folded name holds one of these
#: words (and none of the excluded ones) is used.
_FUZZY_WORDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "email": (frozenset({"mail", "email", "courriel", "mel"}), frozenset()),
    "website": (frozenset({"site", "web", "url", "internet"}), frozenset({"mail"})),
    "phone": (frozenset({"tel", "telephone", "phone", "portable", "mobile"}), frozenset()),
    "name": (
        frozenset({"nom", "name", "libelle", "denomination", "raison"}),
        frozenset({"commune", "ville", "gestionnaire", "operateur", "responsable", "directeur",
                   "directrice", "contact", "quartier", "prenom", "rue", "voie", "pip",
                   "referent", "departement", "region", "epci", "src"}),
    ),
    "address": (frozenset({"adresse", "address", "voie"}), frozenset({"mail", "web", "ip"})),
    "capacity": (frozenset({"places", "capacite", "place"}), frozenset()),
    "operator": (frozenset({"gestionnaire", "gestion", "operateur"}), frozenset()),
    "postcode": (frozenset({"postal", "cp"}), frozenset()),
}

_INSEE_RE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
_POSTCODE_RE = re.compile(r"^\d{5}$")
_POSTCODE_IN_TEXT_RE = re.compile(r"(?<!\d)(\d{5})(?!\d)")
_YEAR_RE = re.compile(r"(?:19|20)\d{2}")

#: Exact type values (folded) -> (type, subtype). Labels of the schema are added below.
_TYPE_EXACT: dict[str, tuple[str, str]] = {
    # INSEE BPE codes (see ship/nomenclatures/bpe_typequ_diagnostic_1000j.csv)
    "d502": ("eaje", ""), "d509": ("eaje", "micro_creche"), "d503": ("laep", ""),
    "d504": ("rpe", ""), "d506": ("centre_social", ""), "d107": ("maternite", ""),
    "d231": ("sage_femme", ""), "a129": ("mairie", ""),
    # FINESS categories (223 PMI; 230 consultation de protection infantile)
    "223": ("pmi", ""), "230": ("pmi", ""),
    # EAJE labels and abbreviations
    "creche": ("eaje", "creche_collective"), "creches": ("eaje", "creche_collective"),
    "ma": ("eaje", "multi_accueil"), "multiaccueil": ("eaje", "multi_accueil"),
    "multi_accueils": ("eaje", "multi_accueil"), "microcreche": ("eaje", "micro_creche"),
    "micro_creches": ("eaje", "micro_creche"), "hg": ("eaje", "halte_garderie"),
    "haltegarderie": ("eaje", "halte_garderie"), "halte_garderies": ("eaje", "halte_garderie"),
    "crechefami": ("eaje", "creche_familiale"), "creche_fami": ("eaje", "creche_familiale"),
    "service_d_accueil_familial": ("eaje", "creche_familiale"),
    "eaje_collectif": ("eaje", ""), "accueil_collectif": ("eaje", ""),
    "etablissement_d_accueil_du_jeune_enfant": ("eaje", ""),
    "etablissement_d_accueil_du_jeune_enfant_eaje": ("eaje", ""),
    # other types
    "maison_d_assistants_maternels": ("mam", ""), "maison_d_assistantes_maternelles": ("mam", ""),
    "maison_d_assistant_e_s_maternel_le_s": ("mam", ""),
    "relais": ("rpe", ""), "ram": ("rpe", ""), "relais_petite_enfance": ("rpe", ""),
    "relais_assistantes_maternelles": ("rpe", ""), "relais_assistants_maternels": ("rpe", ""),
    "relais_d_assistants_maternels": ("rpe", ""), "relais_d_assistantes_maternelles": ("rpe", ""),
    "relais_petite_enfance_rpe_ex_ram": ("rpe", ""),
    "centres_sociaux": ("centre_social", ""), "csc": ("centre_social", ""),
    "centre_socioculturel": ("centre_social", ""), "centre_socio_culturel": ("centre_social", ""),
    "espace_de_vie_sociale": ("evs", ""), "espaces_de_vie_sociale": ("evs", ""),
    "centre_de_pmi": ("pmi", ""), "centre_pmi": ("pmi", ""), "consultation_pmi": ("pmi", ""),
    "protection_maternelle_et_infantile": ("pmi", ""),
    "protection_maternelle_et_infantile_p_m_i": ("pmi", ""),
    "etablissement_consultation_protection_infantile": ("pmi", ""),
    "maternites": ("maternite", ""), "sages_femmes": ("sage_femme", ""),
    "lieu_d_accueil_enfants_parents": ("laep", ""), "lieu_d_accueil_enfant_parent": ("laep", ""),
    "lieux_d_accueil_enfants_parents": ("laep", ""),
    "hotel_de_ville": ("mairie", ""),
    "maison_des_1000_premiers_jours": ("maison_1000_jours", ""),
    "maison_1000_premiers_jours": ("maison_1000_jours", ""),
    "maison_des_1000_jours": ("maison_1000_jours", ""), "m1000j": ("maison_1000_jours", ""),
}

#: How a geocoder's result type or a quality column maps to ``position_precision``.
_PRECISION_VALUES: dict[str, str] = {
    "address": "address", "adresse": "address", "housenumber": "address", "numero": "address",
    "bonne": "address", "rooftop": "address",
    "street": "street", "rue": "street", "voie": "street", "locality": "street",
    "lieu_dit": "street", "acceptable": "street",
    "commune": "commune", "municipality": "commune", "mairie": "commune", "city": "commune",
    "mauvaise": "commune",
}

_CRS_LABELS = {"EPSG:4326": "WGS84 (EPSG:4326)", "EPSG:2154": "Lambert-93 (EPSG:2154)",
               "EPSG:27572": "Lambert II étendu (EPSG:27572)"}


# --------------------------------------------------------------------------- results


def _empty_table(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})


@dataclass(frozen=True)
class ImportReport:
    """What happened to each row of an imported file.

    Attributes
    ----------
    file
        File name as given (``"creches.csv"``).
    rows_read
        Data rows read (blank lines excluded); ``rows_read == accepted + len(rejected)``.
    accepted
        Rows kept as facilities.
    rejected
        Columns ``row`` (as the user sees it, see the module notes), ``name`` (raw name),
        ``reason`` (French).
    duplicates
        Probable duplicates, flagged and kept: ``row``, ``name``, ``duplicate_of_row``,
        ``reason`` (French).
    warnings
        French sentences counting every correction or approximation.
    column_mapping
        Column key (schema column or ``lat``/``lon``/``x``/``y``/``epsg``/``precision``/
        ``commune``) -> file column actually used.
    crs_detected
        CRS the coordinates were read in (``"EPSG:4326"``, ``"EPSG:2154"``, several joined
        by ``" + "``), empty when no row had coordinates.
    encoding
        Text encoding (``"UTF-8"``, ``"UTF-8 (BOM)"``, ``"cp1252"``…).
    notes
        Accepted rows that were corrected or approximated: ``row``, ``name``, ``note``.
    """

    file: str
    rows_read: int
    accepted: int
    rejected: pd.DataFrame
    duplicates: pd.DataFrame
    warnings: tuple[str, ...]
    column_mapping: dict[str, str]
    crs_detected: str
    encoding: str
    notes: pd.DataFrame = field(default_factory=lambda: _empty_table(["row", "name", "note"]))

    def to_frame(self) -> pd.DataFrame:
        """Return one table for display or export, with French column labels.

        Returns
        -------
        pandas.DataFrame
            Columns ``ligne``, ``nom``, ``statut`` (``rejetée``, ``doublon signalé``,
            ``acceptée``), ``motif``; sorted by row.
        """
        parts = [
            pd.DataFrame({"ligne": self.rejected["row"], "nom": self.rejected["name"],
                          "statut": "rejetée", "motif": self.rejected["reason"]}),
            pd.DataFrame({"ligne": self.duplicates["row"], "nom": self.duplicates["name"],
                          "statut": "doublon signalé",
                          "motif": [f"doublon probable de la ligne {d} : {r}" for d, r in zip(
                              self.duplicates["duplicate_of_row"], self.duplicates["reason"],
                              strict=True)]}),
            pd.DataFrame({"ligne": self.notes["row"], "nom": self.notes["name"],
                          "statut": "acceptée", "motif": self.notes["note"]}),
        ]
        parts = [p for p in parts if len(p)]
        if not parts:
            return _empty_table(["ligne", "nom", "statut", "motif"])
        out = pd.concat(parts, ignore_index=True)
        out["ligne"] = out["ligne"].astype("int64")
        return out.sort_values("ligne", kind="stable").reset_index(drop=True)

    def summary_fr(self) -> str:
        """Return one French sentence, e.g. ``"286 lignes lues, 280 acceptées, …"``."""
        n_rej, n_dup = len(self.rejected), len(self.duplicates)
        return (f"{_plural(self.rows_read, 'ligne lue', 'lignes lues')}, "
                f"{_plural(self.accepted, 'acceptée', 'acceptées')}, "
                f"{_plural(n_rej, 'rejetée', 'rejetées')}, "
                f"{_plural(n_dup, 'doublon signalé', 'doublons signalés')}")


@dataclass(frozen=True)
class ImportResult:
    """Facilities imported from a user's file and the report of the import.

    Attributes
    ----------
    facilities
        Schema columns (:data:`diagnosis.schema.FACILITY_COLUMNS`), validated, EPSG:4326.
    report
        What happened to each row.
    """

    facilities: gpd.GeoDataFrame
    report: ImportReport


@dataclass(frozen=True)
class RawTable:
    """A file read as a table of text cells, before any interpretation.

    Attributes
    ----------
    frame
        One column per file column, cells as ``str`` (``""`` when empty); the index is
        the row number as the user sees it (CSV line, or feature rank for vector files).
    encoding
        Text encoding detected.
    separator
        CSV separator (``""`` for vector files).
    geometry
        Geometries of a vector file (same index as ``frame``), else ``None``.
    crs
        CRS of ``geometry`` as text (``"EPSG:4326"``), ``""`` when none.
    malformed
        Rows that could not be split into the header's columns -> French reason.
    warnings
        French notes about the reading itself (blank lines, renamed columns, layers).
    """

    frame: pd.DataFrame
    encoding: str
    separator: str = ""
    geometry: gpd.GeoSeries | None = None
    crs: str = ""
    malformed: Mapping[int, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


# --------------------------------------------------------------------------- entry point


def load_facility_file(
    source: str | Path | bytes | bytearray | memoryview | Any,
    *,
    name: str | None = None,
    mapping: Mapping[str, str] | None = None,
    default_type: str | None = None,
    town_halls: gpd.GeoDataFrame | None = None,
    communes: gpd.GeoDataFrame | None = None,
    cog: pd.DataFrame | None = None,
    source_date: str = "",
) -> ImportResult:
    """Import a user's facility file (CSV, GeoJSON or GeoPackage).

    Parameters
    ----------
    source
        A path, the file's bytes (then ``name`` is required), or a binary file-like
        object such as a Streamlit ``UploadedFile`` (its ``name`` is used).
    name
        File name shown in the report and used in ``facility_id``/``source``; its
        extension chooses the reader (``.csv``/``.txt``/``.tsv``, ``.geojson``/``.json``,
        ``.gpkg``). Defaults to the path's name.
    mapping
        Column key -> file column, overriding detection (keys: the schema columns
        ``name``, ``type``, ``subtype``, ``address``, ``postcode``, ``code_insee``,
        ``capacity``, ``operator``, ``phone``, ``email``, ``website``, ``id``, and
        ``lat``, ``lon``, ``x``, ``y``, ``epsg``, ``precision``, ``commune``).
    default_type
        Type given to rows whose type is empty or unknown (a schema type such as
        ``"eaje"`` or any recognised label such as ``"micro-crèche"``); without it those
        rows are rejected.
    town_halls
        Town-hall points (columns ``code_insee`` and a point geometry, any CRS) where rows
        without coordinates are placed, with ``position_precision = "commune"``.
    communes
        Commune polygons (``code_insee`` + geometry): rows with coordinates but no
        commune code get the code of the commune containing them.
    cog
        COG commune table (columns ``code``, ``name``, ``kind``, ``parent_code``,
        ``former_codes``, ``postcodes``, as :func:`data_sources.cog.load_cog` gives),
        used to find a missing commune code from the postcode and to replace codes of
        former (merged) communes. Defaults to the shipped COG 2026.
    source_date
        Date or vintage of the file (ISO, may be partial: ``"2024"``).

    Returns
    -------
    ImportResult
        ``facilities`` (validated schema table) and ``report``.

    Raises
    ------
    InputError
        Unreadable, empty or unsupported file; no name column; no usable location
        column; a ``mapping`` naming an absent column; an unknown ``default_type``.
        The message names the file and lists the columns found.

    """
    data, file_name = _read_source(source, name=name)
    raw = read_table(data, file_name=file_name)
    columns = detect_columns(list(raw.frame.columns), mapping, file_name=file_name,
                             has_geometry=raw.geometry is not None)
    fallbacks = () if mapping and "code_insee" in mapping else insee_fallback_columns(
        list(raw.frame.columns), columns)
    if cog is None and _needs_cog(columns):
        cog = _shipped_cog()
    facilities, report = parse_facilities(
        raw, columns, file_name=file_name, default_type=default_type, town_halls=town_halls,
        communes=communes, cog=cog, source_date=source_date, insee_fallbacks=fallbacks)
    return ImportResult(facilities=facilities, report=report)


def _read_source(source: Any, *, name: str | None) -> tuple[bytes, str]:
    """Return the bytes and the file name of a path, bytes or file-like ``source``."""
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read the facility file {str(path)!r}: {exc}; "
                             "check the path") from exc
        return data, name or path.name
    if isinstance(source, bytes | bytearray | memoryview):
        if not name:
            raise InputError("load_facility_file got bytes without name=; pass the file "
                             "name too (e.g. name='creches.csv'), its extension picks the reader")
        return bytes(source), name
    if hasattr(source, "getvalue") or hasattr(source, "read"):
        data = source.getvalue() if hasattr(source, "getvalue") else source.read()
        file_name = name or Path(str(getattr(source, "name", "") or "")).name
        if not file_name:
            raise InputError("load_facility_file got a file object without a name; "
                             "pass name='<file name with extension>'")
        if isinstance(data, str):
            data = data.encode("utf-8")
        return bytes(data), file_name
    raise InputError(f"source={source!r} is not a path, bytes or a file object; "
                     "pass the path of a CSV, GeoJSON or GeoPackage file")


# --------------------------------------------------------------------------- read


def read_table(data: bytes, *, file_name: str) -> RawTable:
    """Read a CSV, GeoJSON or GeoPackage file's bytes as a table of text cells.

    Parameters
    ----------
    data
        The file's bytes.
    file_name
        Its name; the extension chooses the reader and the name appears in errors.

    Returns
    -------
    RawTable
        Cells as text, indexed by the row number a user sees.

    Raises
    ------
    InputError
        Unsupported extension, empty file, undecodable bytes, a single column (wrong
        separator) or an unreadable vector file.
    """
    ext = Path(file_name).suffix.lower()
    if ext in CSV_EXTENSIONS:
        return _read_csv(data, file_name=file_name)
    if ext in GEO_EXTENSIONS:
        return _read_vector(data, file_name=file_name)
    hint = " (export the sheet as CSV from your spreadsheet)" if ext in {
        ".xls", ".xlsx", ".ods"} else ""
    raise InputError(
        f"{file_name!r}: unsupported extension {ext!r}{hint}; use a CSV "
        f"({', '.join(CSV_EXTENSIONS)}), a GeoJSON ({', '.join(GEO_EXTENSIONS[:2])}) "
        "or a GeoPackage (.gpkg) file"
    )


def _decode(data: bytes, *, file_name: str) -> tuple[str, str]:
    """Decode CSV bytes: UTF-16 with BOM, UTF-8 (with or without BOM), then cp1252."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError as exc:
            raise InputError(f"{file_name!r}: starts like UTF-16 but cannot be decoded ({exc}); "
                             "re-save it as CSV UTF-8") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "UTF-8 (BOM)"
        except UnicodeDecodeError as exc:
            raise InputError(f"{file_name!r}: has a UTF-8 mark but invalid UTF-8 bytes ({exc}); "
                             "re-save it as CSV UTF-8") from exc
    if data.startswith(b"PK\x03\x04"):
        raise InputError(f"{file_name!r} is a zip archive (an Excel .xlsx or .ods file?), not a "
                         "CSV text file; export the sheet as CSV (UTF-8, ';' separator)")
    if b"\x00" in data[:4096]:
        raise InputError(f"{file_name!r} holds binary data (NUL bytes), not CSV text; "
                         "export it as CSV (UTF-8, ';' separator)")
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{file_name!r}: cannot decode the text as UTF-8 or cp1252 (byte "
            f"{data[exc.start:exc.start + 1]!r} at offset {exc.start}); re-save the file as "
            "CSV UTF-8"
        ) from exc


def _sniff_separator(lines: Sequence[str]) -> tuple[str, int]:
    """Return the separator whose split is widest and most consistent, and its width."""
    best: tuple[tuple[bool, bool, int, float], str, int] | None = None
    for sep in CSV_SEPARATORS:
        rows = [r for r in csv.reader(lines, delimiter=sep) if any(c.strip() for c in r)]
        if not rows:
            continue
        width = len(rows[0])
        consistent = sum(len(r) == width for r in rows) / len(rows)
        score = (width >= 2, consistent >= 0.9, width, consistent)
        if best is None or score > best[0]:
            best = (score, sep, width)
    if best is None:
        return CSV_SEPARATORS[0], 0
    return best[1], best[2]


def _read_csv(data: bytes, *, file_name: str) -> RawTable:
    text, encoding = _decode(data, file_name=file_name)
    if not text.strip():
        raise InputError(f"{file_name!r} is empty; export the facility list again with a "
                         "header line (nom, type, adresse, code_insee or lat/lon…) and its rows")
    lines = text.splitlines(keepends=True)
    skip_first = 0
    forced = re.fullmatch(r"\s*sep=(.)\s*", lines[0]) if lines else None
    if forced:  # Excel's "sep=;" hint line
        sep, skip_first = forced.group(1), 1
        width = len(next(csv.reader([lines[1]], delimiter=sep))) if len(lines) > 1 else 0
    else:
        sample = [ln for ln in lines[:60] if ln.strip()]
        sep, width = _sniff_separator(sample)
    if width < 2:
        first = next((ln.strip() for ln in lines[skip_first:] if ln.strip()), "")
        raise InputError(
            f"{file_name!r}: only one column found in the header {first[:120]!r}: the "
            "separator is probably not ';', ',' or a tab; save the file as CSV with one of "
            "these separators (and at least a name column and a location column)"
        )
    reader = csv.reader(io.StringIO("".join(lines[skip_first:]), newline=""), delimiter=sep)
    header: list[str] | None = None
    records: list[list[str]] = []
    row_numbers: list[int] = []
    malformed: dict[int, str] = {}
    blank_rows = 0
    titles: list[int] = []
    prev_line = skip_first
    try:
        for record in reader:
            start_line, prev_line = prev_line + 1, reader.line_num + skip_first
            cells = [c.replace("\u00a0", " ").strip() for c in record]
            if not any(cells):
                if record and header is not None:
                    blank_rows += 1  # a row of separators only (spreadsheet leftovers)
                continue
            if header is None:
                if sum(bool(c) for c in cells) < 2 and len(titles) < 5:
                    titles.append(start_line)  # a title above the header ("Liste des…;;;")
                    continue
                header = cells
                continue
            records.append(cells)
            row_numbers.append(start_line)
    except csv.Error as exc:
        raise InputError(f"{file_name!r}: CSV syntax error near line {reader.line_num}: {exc}; "
                         "check the quotes around values") from exc
    if header is None:
        raise InputError(f"{file_name!r}: no header line with at least two column names; "
                         "the first line must name the columns (nom, type, adresse…)")
    warnings: list[str] = []
    if titles:
        warnings.append(f"{_rows_text(titles)} avant l'en-tête ignorée(s) (titre)")
    names = _unique_headers(header, warnings)
    width = len(names)
    rows: list[list[str]] = []
    for number, cells in zip(row_numbers, records, strict=True):
        if len(cells) > width and any(cells[width:]):
            malformed[number] = (
                f"{len(cells)} valeurs pour {width} colonnes : un séparateur « {_sep_label(sep)} » "
                "dans une valeur sans guillemets ?")
        cells = (cells + [""] * width)[:width]
        rows.append(cells)
    if not rows:
        raise InputError(f"{file_name!r} has a header ({', '.join(names[:8])}) but no data rows; "
                         "add one row per facility")
    frame = pd.DataFrame(rows, columns=names, index=pd.Index(row_numbers, name="row"), dtype=object)
    # drop unnamed trailing columns that hold nothing (spreadsheet leftovers)
    empty_unnamed = [c for c, h in zip(names, header, strict=True)
                     if not h and not frame[c].astype(bool).any()]
    frame = frame.drop(columns=empty_unnamed)
    if blank_rows:
        warnings.append(f"{_plural(blank_rows, 'ligne vide ignorée', 'lignes vides ignorées')}")
    return RawTable(frame=frame, encoding=encoding, separator=sep, malformed=malformed,
                    warnings=tuple(warnings))


def _sep_label(sep: str) -> str:
    return "tabulation" if sep == "\t" else sep


def _unique_headers(header: Sequence[str], warnings: list[str]) -> list[str]:
    names: list[str] = []
    for i, h in enumerate(header):
        name = h or f"colonne_{i + 1}"
        if name in names:
            k = 2
            while f"{name}.{k}" in names:
                k += 1
            warnings.append(f"colonne « {name} » en double : la suivante est lue comme "
                            f"« {name}.{k} »")
            name = f"{name}.{k}"
        names.append(name)
    return names


def _read_vector(data: bytes, *, file_name: str) -> RawTable:
    import pyogrio  # local: the CSV path does not need GDAL

    if not data.strip():
        raise InputError(f"{file_name!r} is empty; export the layer again")
    warnings: list[str] = []
    # GDAL wants a real file name with the right extension (a GeoPackage read from memory
    # warns about its "non conformant file extension"): go through a temporary file.
    with tempfile.TemporaryDirectory(prefix="maillage_import_") as tmp:
        path = Path(tmp) / f"upload{Path(file_name).suffix.lower()}"
        path.write_bytes(data)
        try:
            layers = pyogrio.list_layers(path)
            layer = None
            if len(layers) > 1:
                spatial = [str(n) for n, kind in layers if kind]
                layer = spatial[0] if spatial else str(layers[0][0])
                warnings.append(f"{len(layers)} couches dans le fichier : seule « {layer} » "
                                "est lue")
            gdf = pyogrio.read_dataframe(path, layer=layer)
        except Exception as exc:  # pyogrio raises DataSourceError and friends
            raise InputError(f"{file_name!r}: cannot read it as GeoJSON/GeoPackage ({exc}); "
                             "check the file or export it again") from exc
    if len(gdf) == 0:
        raise InputError(f"{file_name!r} holds no feature; export the layer with its objects")
    index = pd.Index(range(1, len(gdf) + 1), name="row")
    geometry: gpd.GeoSeries | None = None
    crs = ""
    if isinstance(gdf, gpd.GeoDataFrame) and gdf.geometry.name in gdf.columns:
        geometry = gpd.GeoSeries(gdf.geometry.to_numpy(), index=index, crs=gdf.crs)
        crs = gdf.crs.to_string() if gdf.crs is not None else ""
        attrs = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    else:
        attrs = pd.DataFrame(gdf)
    frame = pd.DataFrame({c: [_cell_text(v) for v in attrs[c]] for c in attrs.columns},
                         index=index, dtype=object)
    frame.columns = [str(c) for c in frame.columns]
    return RawTable(frame=frame, encoding="UTF-8", geometry=geometry, crs=crs,
                    warnings=tuple(warnings))


def _cell_text(value: object) -> str:
    """Cell -> text: missing is ``""``, 44140.0 is ``"44140"``, other floats keep repr."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return ""
        number = float(value)
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return repr(number)
    return str(value).replace("\u00a0", " ").strip()


# --------------------------------------------------------------------------- columns


def _fold(text: object, sep: str = "_") -> str:
    """Fold text for matching: no accents, lower case, any punctuation -> ``sep``.

    Examples
    --------
    >>> _fold("Nom de l'Établissement")
    'nom_de_l_etablissement'
    >>> _fold("  Micro-crèche ", " ")
    'micro creche'
    """
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("œ", "oe").replace("æ", "ae")
    return re.sub(r"[^0-9a-z]+", sep, text).strip(sep)


def detect_columns(
    columns: Sequence[str],
    mapping: Mapping[str, str] | None = None,
    *,
    file_name: str = "the file",
    has_geometry: bool = False,
) -> dict[str, str]:
    """Find which file column holds each schema field.

    Parameters
    ----------
    columns
        The file's column names.
    mapping
        Column key -> file column, overriding detection (see :data:`COLUMN_ALIASES` for
        the keys; ``source_id`` and ``position_precision`` are accepted for ``id`` and
        ``precision``).
    file_name
        Named in error messages.
    has_geometry
        Whether the file carries geometries (a vector file): then no coordinate column
        is required.

    Returns
    -------
    dict
        Column key -> file column, for the keys found.

    Raises
    ------
    InputError
        A mapping key unknown or naming an absent column; no name column; no usable
        location column (geometry, lat/lon, x/y, code_insee, postcode or address).

    Examples
    --------
    >>> detect_columns(["Nom", "Catégorie", "Code INSEE", "Latitude", "Longitude"])
    {'name': 'Nom', 'code_insee': 'Code INSEE', 'lat': 'Latitude', 'lon': 'Longitude', \
'type': 'Catégorie'}
    """
    columns = [str(c) for c in columns]
    found: dict[str, str] = {}
    for given, col in (mapping or {}).items():
        key = _MAPPING_KEY_ALIASES.get(given, given)
        if key not in COLUMN_ALIASES:
            raise InputError(f"mapping key {given!r} is not a column key; use one of "
                             f"{sorted(COLUMN_ALIASES)} (schema column -> file column)")
        found[key] = _match_column(col, columns, key=key, file_name=file_name)
    used = set(found.values())
    folded = {c: _fold(c) for c in columns}
    for key, aliases in COLUMN_ALIASES.items():  # exact names first, in alias order
        if key in found:
            continue
        for alias in aliases:
            hit = next((c for c in columns if folded[c] == alias and c not in used), None)
            if hit is not None:
                found[key] = hit
                used.add(hit)
                break
    for key, (words, excluded) in _FUZZY_WORDS.items():  # then names holding a key word
        if key in found:
            continue
        for c in columns:
            tokens = set(folded[c].split("_"))
            if c not in used and tokens & words and not tokens & excluded:
                found[key] = c
                used.add(c)
                break
    if "name" not in found:
        raise InputError(
            f"{file_name}: no name column found; columns found: {columns}; expected one of "
            f"{list(COLUMN_ALIASES['name'][:10])}… or pass mapping={{'name': '<column>'}}"
        )
    located = (has_geometry or {"lat", "lon"} <= found.keys() or {"x", "y"} <= found.keys()
               or bool(found.keys() & {"code_insee", "postcode", "address"}))
    if not located:
        raise InputError(
            f"{file_name}: no usable location column; columns found: {columns}; expected "
            "lat + lon (WGS84), x + y / lambert_x + lambert_y (Lambert-93), a commune code "
            "(code_insee, depcom, codgeo…), a postcode or an address; or pass mapping="
            "{'lat': ..., 'lon': ...}"
        )
    order = list(COLUMN_ALIASES)
    return dict(sorted(found.items(), key=lambda kv: order.index(kv[0])))


def _match_column(col: str, columns: Sequence[str], *, key: str, file_name: str) -> str:
    if col in columns:
        return col
    matches = [c for c in columns if _fold(c) == _fold(col)]
    if len(matches) == 1:
        return matches[0]
    raise InputError(f"{file_name}: mapping[{key!r}] = {col!r} is not a column of the file; "
                     f"columns found: {list(columns)}")


def insee_fallback_columns(columns: Sequence[str], found: Mapping[str, str]) -> tuple[str, ...]:
    """Other commune-code columns to read when the detected one is empty, best first.

    Known aliases come first (in :data:`COLUMN_ALIASES` order), then other columns whose
    name holds ``insee``/``depcom``/``codgeo``: those without a year, then by year, newest
    first (a ``code_insee_2025`` beats a ``code_insee_src_2018``).

    Examples
    --------
    >>> insee_fallback_columns(["code_insee_src_2018", "code_insee_2025_from_src", "x"],
    ...                        {"code_insee": "code_insee_pip"})
    ('code_insee_2025_from_src', 'code_insee_src_2018')
    """
    primary = found.get("code_insee")
    used = set(found.values())
    aliases = COLUMN_ALIASES["code_insee"]
    known = sorted((c for c in columns if _fold(c) in aliases and c not in used),
                   key=lambda c: aliases.index(_fold(c)))
    others = [c for c in columns if c not in used and c not in known
              and set(_fold(c).split("_")) & {"insee", "depcom", "codgeo"}]

    def newest_first(c: str) -> tuple[int, int]:
        years = [int(y) for y in _YEAR_RE.findall(c)]
        return (0, 0) if not years else (1, -max(years))

    ordered = known + sorted(others, key=newest_first)
    return tuple(c for c in ordered if c != primary)


# --------------------------------------------------------------------------- types


def _build_type_table() -> dict[str, tuple[str, str]]:
    table = dict(_TYPE_EXACT)
    for key, (one, many) in FACILITY_TYPES.items():
        for label in (key, one, many):
            table.setdefault(_fold(label), (key, ""))
    for key, label in EAJE_SUBTYPES.items():
        for text in (key, label):
            table.setdefault(_fold(text), ("eaje", key))
    return table


_TYPE_TABLE = _build_type_table()

#: Words that reveal a type in a free label (first match wins), for values not in the table.
_TYPE_RULES: tuple[tuple[Callable[[str, set[str]], bool], tuple[str, str]], ...] = (
    (lambda s, t: "1000" in t and ("jours" in t or "jour" in t), ("maison_1000_jours", "")),
    (lambda s, t: "micro" in s and "creche" in s, ("eaje", "micro_creche")),
    (lambda s, t: "multi_accueil" in s or "multiaccueil" in s, ("eaje", "multi_accueil")),
    (lambda s, t: "halte" in t, ("eaje", "halte_garderie")),
    (lambda s, t: "creche" in s and "famil" in s, ("eaje", "creche_familiale")),
    (lambda s, t: "creche" in s and "parental" in s, ("eaje", "creche_parentale")),
    (lambda s, t: "creche" in s, ("eaje", "creche_collective")),
    (lambda s, t: "jardin_d_enfant" in s or "eaje" in t or "jeune_enfant" in s, ("eaje", "")),
    (lambda s, t: "mam" in t or ("assistant" in s and "maternel" in s and "maison" in t),
     ("mam", "")),
    (lambda s, t: "relais" in t or bool(t & {"ram", "rpe"}), ("rpe", "")),
    (lambda s, t: "laep" in t or "accueil_enfant" in s, ("laep", "")),
    (lambda s, t: "centre_social" in s or "socioculturel" in s or "socio_culturel" in s,
     ("centre_social", "")),
    (lambda s, t: "evs" in t or "espace_de_vie_sociale" in s, ("evs", "")),
    (lambda s, t: "pmi" in t or "protection_maternelle" in s or "protection_infantile" in s,
     ("pmi", "")),
    (lambda s, t: "maternite" in t, ("maternite", "")),
    (lambda s, t: "sage_femme" in s or "sages_femmes" in s, ("sage_femme", "")),
    (lambda s, t: "mairie" in t or "hotel_de_ville" in s, ("mairie", "")),
)


def map_type(value: str) -> tuple[str, str, bool] | None:
    """Map a type label or code to ``(type, subtype, interpreted)``.

    ``interpreted`` is True when the value was read by its words rather than found in the
    table of known labels and codes (the import reports it).

    Parameters
    ----------
    value
        A label (``"Micro-crèche"``, ``"relais petite enfance"``), a schema key
        (``"eaje"``, ``"multi_accueil"``), an INSEE BPE code (``"D502"``) or a FINESS
        category (``"223"``).

    Returns
    -------
    tuple or None
        None when the value is empty or not recognised.

    Examples
    --------
    >>> map_type("Micro-crèche")
    ('eaje', 'micro_creche', False)
    >>> map_type("D504")
    ('rpe', '', False)
    >>> map_type("creche_personnel")
    ('eaje', 'creche_collective', True)
    >>> map_type("garage") is None
    True
    """
    s = _fold(value)
    if not s:
        return None
    if re.fullmatch(r"\d+_0+", s):  # "223.0" from a spreadsheet
        s = s.split("_")[0]
    if s in _TYPE_TABLE:
        t, sub = _TYPE_TABLE[s]
        return t, sub, False
    tokens = set(s.split("_"))
    for rule, (t, sub) in _TYPE_RULES:
        if rule(s, tokens):
            return t, sub, True
    return None


def _type_text(facility_type: str, subtype: str) -> str:
    label = facility_label(facility_type)
    if facility_type == "eaje" and subtype:
        return f"{label}, sous-type {EAJE_SUBTYPES[subtype]}"
    return label


# --------------------------------------------------------------------------- coordinates


def _in_france(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where (lon, lat) falls in metropolitan France or an overseas département."""
    ok = np.zeros(len(lon), dtype=bool)
    with np.errstate(invalid="ignore"):
        for x0, y0, x1, y1 in (FRANCE_METRO_BBOX, *FRANCE_OVERSEAS_BBOXES.values()):
            ok |= (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
    return ok


def _transform(crs: str, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if crs == WGS84:
        return a.astype(float), b.astype(float)
    transformer = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)
    lon, lat = transformer.transform(a, b, errcheck=False)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def _is_geographic(crs: str) -> bool:
    try:
        return bool(pyproj.CRS.from_user_input(crs).is_geographic)
    except pyproj.exceptions.CRSError:
        return False


def locate_points(
    c1: np.ndarray, c2: np.ndarray, declared: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Turn raw coordinate pairs into WGS84 points in France, detecting CRS and swaps.

    Each row is tried in its declared CRS when it is projected; otherwise in WGS84 when
    both values look like degrees, else in Lambert-93 (EPSG:2154) then Lambert II étendu
    (EPSG:27572). A pair that falls in France only once swapped is swapped.

    Parameters
    ----------
    c1, c2
        Easting/longitude and northing/latitude as floats (NaN when missing).
    declared
        Per row, a CRS as text (``"EPSG:2154"``) or ``""`` when unknown.

    Returns
    -------
    lon, lat, crs, swapped
        WGS84 coordinates (NaN where not located), the CRS used per row (``""`` where not
        located) and whether the pair was swapped.

    Examples
    --------
    >>> lon, lat, crs, swapped = locate_points(np.array([47.2, 700000.0]),
    ...                                        np.array([-1.55, 6600000.0]))
    >>> lon.round(3).tolist(), lat.round(3).tolist(), crs.tolist(), swapped.tolist()
    ([-1.55, 3.0], [47.2, 46.5], ['EPSG:4326', 'EPSG:2154'], [True, False])
    """
    c1 = np.asarray(c1, dtype=float)
    c2 = np.asarray(c2, dtype=float)
    n = len(c1)
    decl = np.asarray(list(declared) if declared is not None else [""] * n, dtype=object)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    used = np.full(n, "", dtype=object)
    swapped = np.zeros(n, dtype=bool)
    todo = np.isfinite(c1) & np.isfinite(c2)
    projected = {d for d in set(decl[todo].tolist()) if d and not _is_geographic(d)}
    with np.errstate(invalid="ignore"):
        degrees = (np.abs(c1) <= 180) & (np.abs(c2) <= 180)
    trials: list[tuple[str, np.ndarray]] = [(d, decl == d) for d in sorted(projected)]
    free = ~np.isin(decl, list(projected)) if projected else np.ones(n, dtype=bool)
    trials += [(WGS84, free & degrees), ("EPSG:2154", free & ~degrees),
               ("EPSG:27572", free & ~degrees)]
    for crs, eligible in trials:
        for swap in (False, True):
            rows = todo & eligible
            if not rows.any():
                continue
            a, b = (c2[rows], c1[rows]) if swap else (c1[rows], c2[rows])
            x, y = _transform(crs, a, b)
            ok = _in_france(x, y)
            idx = np.flatnonzero(rows)[ok]
            lon[idx], lat[idx], used[idx], swapped[idx] = x[ok], y[ok], crs, swap
            todo[idx] = False
    return lon, lat, used, swapped


def _to_float(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse numbers written with a decimal comma or point; also return the unreadable mask.

    ``"47,2184"`` and ``"47.2184"`` read 47.2184; ``"1 234,5"`` and ``"1.234,5"`` read
    1234.5; empty cells are NaN (not unreadable).
    """
    plain = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    if (np.isfinite(plain) | values.eq("").to_numpy()).all():  # common case: nothing to fix
        return plain, np.zeros(len(plain), dtype=bool)
    text = values.astype(str).str.replace(r"[\s\u00a0\u202f]", "", regex=True)
    both = text.str.contains(",") & text.str.contains(r"\.")
    comma_last = text.str.rfind(",") > text.str.rfind(".")
    text = text.mask(both & comma_last, text.str.replace(".", "", regex=False))
    text = text.mask(both & ~comma_last, text.str.replace(",", "", regex=False))
    text = text.str.replace(",", ".", regex=False)
    num = pd.to_numeric(text, errors="coerce").astype(float).to_numpy()
    unreadable = (text.ne("") & np.isnan(num)).to_numpy()
    return num, unreadable


def _declared_crs(values: pd.Series) -> tuple[list[str], list[int]]:
    """Per row, the CRS named by an EPSG column (``""`` when empty or unknown)."""
    out: list[str] = []
    bad: list[int] = []
    cache: dict[str, str] = {}
    for row, value in values.items():
        text = str(value).strip()
        if text not in cache:
            digits = re.search(r"\d{4,6}", text)
            crs = ""
            if digits:
                try:
                    crs = pyproj.CRS.from_epsg(int(digits.group())).to_string()
                except pyproj.exceptions.CRSError:
                    crs = ""
            cache[text] = crs
        if text and not cache[text]:
            bad.append(int(str(row)))
        out.append(cache[text])
    return out, bad


# --------------------------------------------------------------------------- helpers


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n < 2 else many}"


def _rows_text(rows: Iterable[int], limit: int = 10) -> str:
    rows = sorted(int(r) for r in rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f"… (+{len(rows) - limit})" if len(rows) > limit else ""
    return f"{'ligne' if len(rows) == 1 else 'lignes'} {shown}{more}"


def _map_unique(values: pd.Series, func: Callable[[str], str]) -> pd.Series:
    """Apply ``func`` once per distinct value (files repeat codes and labels a lot)."""
    table = {v: func(v) for v in pd.unique(values)}
    return pd.Series([table[v] for v in values], index=values.index, dtype=object)


def _insee(value: str) -> str:
    """Normalise a commune code: ``"44109.0"`` -> ``"44109"``, ``"1001"`` -> ``"01001"``."""
    text = re.sub(r"\s+", "", str(value)).upper()
    text = re.sub(r"\.0+$", "", text)
    if re.fullmatch(r"\d{4}", text):
        text = text.zfill(5)
    return text if _INSEE_RE.match(text) else ""


def _postcode(value: str) -> str:
    text = re.sub(r"\s+", "", str(value))
    text = re.sub(r"\.0+$", "", text)
    if re.fullmatch(r"\d{4}", text):
        text = text.zfill(5)
    return text if _POSTCODE_RE.match(text) else ""


@dataclass(frozen=True)
class _Cog:
    current: dict[str, str]               # code -> name of current communes
    former: dict[str, str]                # former (merged) code -> current code
    by_postcode: dict[str, tuple[str, ...]]


_COG_CACHE: dict[int, tuple[pd.DataFrame, _Cog]] = {}


def _cog_index(cog: pd.DataFrame) -> _Cog:
    """Index a COG commune table (cached for the same table object)."""
    cached = _COG_CACHE.get(id(cog))
    if cached is not None and cached[0] is cog:
        return cached[1]
    index = _build_cog_index(cog)
    _COG_CACHE.clear()  # keep one table: the shipped COG, or the caller's
    _COG_CACHE[id(cog)] = (cog, index)
    return index


def _build_cog_index(cog: pd.DataFrame) -> _Cog:
    need = {"code", "name", "kind", "parent_code", "former_codes", "postcodes"}
    missing = need - set(cog.columns)
    if missing:
        raise InputError(f"cog lacks columns {sorted(missing)}; pass the communes table of "
                         "data_sources.cog.load_cog()")
    table = {c: ["" if pd.isna(v) else str(v) for v in cog[c].tolist()] for c in need}
    records = list(zip(table["code"], table["name"], table["kind"], table["parent_code"],
                       table["former_codes"], table["postcodes"], strict=True))
    current = {code: name for code, name, kind, *_ in records if kind == "commune"}
    former: dict[str, str] = {}
    by_postcode: dict[str, list[str]] = {}
    for code, _name, kind, parent, formers, postcodes in records:
        if kind == "commune":
            for f in formers.split():
                if f not in current:
                    former.setdefault(f, code)
            for pc in postcodes.split():
                by_postcode.setdefault(pc, []).append(code)
        elif kind in ("deleguee", "associee") and parent and code not in current:
            former.setdefault(code, parent)
    return _Cog(current, former, {k: tuple(v) for k, v in by_postcode.items()})


def _shipped_cog() -> pd.DataFrame | None:
    try:
        from data_sources.cog import load_cog
    except ImportError:  # pragma: no cover - the shipped COG module is part of the package
        return None
    return load_cog().communes


def _needs_cog(columns: Mapping[str, str]) -> bool:
    """The COG is needed to map former commune codes or to read postcodes."""
    return bool(columns.keys() & {"code_insee", "postcode", "address"})


def _commune_from_postcode(postcode: str, place: str, cog: _Cog) -> str:
    codes = cog.by_postcode.get(postcode, ())
    if len(codes) == 1:
        return codes[0]
    place = _fold(re.sub(r"\bcedex\b.*$", "", place, flags=re.IGNORECASE), " ")
    if not codes or not place:
        return ""
    named = [(len(_fold(cog.current[c], " ")), c) for c in codes
             if re.search(rf"\b{re.escape(_fold(cog.current[c], ' '))}\b", place)]
    return max(named)[1] if named else ""


def _point_table(gdf: gpd.GeoDataFrame, *, arg: str, points: bool) -> gpd.GeoDataFrame:
    """Check ``town_halls``/``communes``: a code column and geometries; return in WGS84."""
    code_col = "code_insee" if "code_insee" in gdf.columns else "code" if "code" in gdf.columns \
        else None
    if code_col is None or not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(f"{arg} must be a GeoDataFrame with a 'code_insee' column; got columns "
                         f"{list(gdf.columns)}")
    if gdf.crs is None:
        raise InputError(f"{arg} has no CRS; set one (e.g. gdf.set_crs('EPSG:4326'))")
    out = gdf.to_crs(WGS84)
    out = gpd.GeoDataFrame({"code_insee": out[code_col].map(_insee)}, geometry=out.geometry.values,
                           crs=WGS84)
    out = out[out["code_insee"].ne("") & out.geometry.notna() & ~out.geometry.is_empty]
    if points:
        out = out.copy()
        out["geometry"] = out.geometry.representative_point()
        out = out.drop_duplicates("code_insee")
    return out


# --------------------------------------------------------------------------- parse


class _Log:
    """Collects rejections, per-row notes and warnings while parsing."""

    def __init__(self) -> None:
        self.reasons: dict[int, list[str]] = {}
        self.notes: dict[int, list[str]] = {}
        self.warnings: list[str] = []
        self.outside: set[int] = set()  # rows rejected for coordinates outside France

    def reject(self, rows: Iterable[int], reason: str | Callable[[int], str]) -> None:
        for r in rows:
            self.reasons.setdefault(int(r), []).append(reason(r) if callable(reason) else reason)

    def note(self, rows: Iterable[int], note: str | Callable[[int], str]) -> None:
        for r in rows:
            self.notes.setdefault(int(r), []).append(note(r) if callable(note) else note)


def parse_facilities(
    raw: RawTable,
    columns: Mapping[str, str],
    *,
    file_name: str,
    default_type: str | None = None,
    town_halls: gpd.GeoDataFrame | None = None,
    communes: gpd.GeoDataFrame | None = None,
    cog: pd.DataFrame | None = None,
    source_date: str = "",
    insee_fallbacks: Sequence[str] = (),
    distance_m: float = DUPLICATE_DISTANCE_M,
) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """Turn a raw table into schema facilities and an import report.

    Parameters
    ----------
    raw
        The table from :func:`read_table`.
    columns
        Column key -> file column, from :func:`detect_columns`.
    file_name
        Name of the file: ``source = "user:<file_name>"`` and
        ``facility_id = "user:<stem>:<id or row>"``.
    default_type, town_halls, communes, cog, source_date
        See :func:`load_facility_file` (``cog=None`` here means no COG lookups).
    insee_fallbacks
        Other commune-code columns read, in order, where ``columns["code_insee"]`` is
        empty (see :func:`insee_fallback_columns`).
    distance_m
        Two rows of the same type with the same name closer than this are duplicates.

    Returns
    -------
    facilities, report
        Facilities validated by :func:`diagnosis.schema.validate_facilities` (in file
        order) and the :class:`ImportReport`.

    Raises
    ------
    InputError
        No type column and no ``default_type``; an unknown ``default_type``; bad
        ``town_halls``/``communes``/``cog`` tables.
    """
    frame = raw.frame
    rows = np.asarray(frame.index, dtype=np.int64)
    n = len(rows)
    stem = Path(file_name).stem

    def col(key: str) -> pd.Series:
        if key in columns:
            return frame[columns[key]].astype(str).str.strip()
        return pd.Series([""] * n, index=frame.index, dtype=object)

    names = col("name")
    log = _Log()
    log.warnings.extend(raw.warnings)
    log.reject([r for r in raw.malformed], lambda r: raw.malformed[r])

    types, subtypes = _parse_types(col("type"), col("subtype"), log, columns=columns,
                                   default_type=default_type, file_name=file_name,
                                   file_columns=list(frame.columns))
    unnamed = names.eq("") & types.ne("")
    if unnamed.any():  # keep the facility: a missing name does not make it disappear
        names = names.where(~unnamed, types.map(
            lambda t: f"{facility_label(t)} sans nom" if t else ""))
        log.warnings.append(f"nom absent, remplacé par « <type> sans nom » : "
                            f"{_rows_text(names.index[unnamed.to_numpy()])}")
        log.note(names.index[unnamed.to_numpy()], "nom absent dans le fichier")

    # --- coordinates
    lon, lat, precise, crs_used = _parse_positions(raw, columns, col, log)

    # --- commune codes
    cog_index = _cog_index(cog) if cog is not None else None
    postcodes = _parse_postcodes(col("postcode"), col("address"), log)
    codes = _parse_codes(frame, columns, insee_fallbacks, log)
    missing_code = codes.eq("").to_numpy()
    if communes is not None and (missing_code & precise).any():
        codes = _codes_from_polygons(codes, lon, lat, missing_code & precise, communes, log)
        missing_code = codes.eq("").to_numpy()
    if cog_index is not None:
        codes = _codes_from_cog(codes, postcodes, col("commune"), col("address"), cog_index, log)
        missing_code = codes.eq("").to_numpy()

    # --- placement at the town hall for rows without coordinates
    precision = _parse_precision(col("precision")) if "precision" in columns else \
        pd.Series(["address"] * n, index=frame.index, dtype=object)
    at_hall = ~precise
    placed_hall = np.zeros(n, dtype=bool)
    halls = _point_table(town_halls, arg="town_halls", points=True) if town_halls is not None \
        else None
    hall_xy = ({c: (p.x, p.y) for c, p in zip(halls["code_insee"], halls.geometry, strict=True)}
               if halls is not None else {})
    outside = np.isin(rows, list(log.outside))
    for i in np.flatnonzero(at_hall & ~outside):
        row, code, postcode = int(rows[i]), codes.iloc[i], postcodes.iloc[i]
        if not code and postcode:
            log.reject([row], f"ni coordonnées ni code commune, et le code postal {postcode} ne "
                              "désigne pas une seule commune : ajoutez lat/lon ou le code INSEE")
        elif not code:
            log.reject([row], "ni coordonnées ni code commune : ajoutez lat/lon ou un code "
                              "INSEE de commune")
        elif halls is None:
            log.reject([row], f"pas de coordonnées ; commune {code} connue mais aucune liste de "
                              "mairies fournie pour l'y placer")
        elif code not in hall_xy:
            log.reject([row], f"pas de coordonnées et commune {code} absente de la liste des "
                              "mairies")
        else:
            lon[i], lat[i] = hall_xy[code]
            placed_hall[i] = True
    precision = precision.where(~placed_hall, "commune")
    accepted_rows = set(rows.tolist()) - set(log.reasons)
    hall_ok = [int(r) for r, p in zip(rows, placed_hall, strict=True)
               if p and int(r) in accepted_rows]
    if hall_ok:
        log.note(hall_ok, "placée à la mairie de sa commune (position approximative)")
        where = "ligne placée à la mairie de sa", "lignes placées à la mairie de leur"
        log.warnings.append(f"{_plural(len(hall_ok), *where)} commune (position approximative)")
    log.reject(rows[precise & missing_code],
               "code commune absent ou invalide : ajoutez une colonne code_insee (ou code "
               "postal), ou fournissez les contours des communes")

    # --- other fields
    capacity = _parse_capacity(col("capacity"), log)
    ids = col("id")
    source_ids = ids.where(ids.ne(""), pd.Series([str(r) for r in rows], index=frame.index))
    keep = np.asarray([int(r) not in log.reasons for r in rows])
    facility_ids = _unique_ids([f"user:{stem}:{s}" for s in source_ids[keep]],
                               rows[keep].tolist())
    table = pd.DataFrame({
        "facility_id": facility_ids,
        "type": types[keep].to_numpy(),
        "subtype": subtypes[keep].to_numpy(),
        "name": names[keep].to_numpy(),
        "address": col("address")[keep].to_numpy(),
        "postcode": postcodes[keep].to_numpy(),
        "code_insee": codes[keep].to_numpy(),
        "capacity": capacity[keep],
        "operator": col("operator")[keep].to_numpy(),
        "phone": col("phone")[keep].to_numpy(),
        "email": col("email")[keep].to_numpy(),
        "website": col("website")[keep].to_numpy(),
        "source": f"user:{file_name}",
        "source_id": source_ids[keep].to_numpy(),
        "source_date": source_date,
        "position_precision": precision[keep].to_numpy(),
    })
    if keep.any():
        gdf = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(lon[keep], lat[keep]), crs=WGS84)
        facilities = validate_facilities(gdf, source=f"user:{file_name}")
    else:
        facilities = empty_facilities()
    kept_rows = rows[keep]
    duplicates = find_duplicates(facilities, rows=kept_rows,
                                 file_ids=ids[keep].tolist(), distance_m=distance_m)

    rej_rows = sorted(log.reasons)
    rejected = pd.DataFrame({
        "row": pd.Series(rej_rows, dtype="int64"),
        "name": pd.Series(names.reindex(rej_rows).to_numpy(), dtype=object),
        "reason": pd.Series([" ; ".join(log.reasons[r]) for r in rej_rows], dtype=object),
    })
    note_rows = sorted(r for r in log.notes if r not in log.reasons)
    notes = pd.DataFrame({
        "row": pd.Series(note_rows, dtype="int64"),
        "name": pd.Series(names.reindex(note_rows).to_numpy(), dtype=object),
        "note": pd.Series([" ; ".join(log.notes[r]) for r in note_rows], dtype=object),
    })
    crs_text = _crs_summary(crs_used[precise], raw.crs)
    report = ImportReport(
        file=file_name, rows_read=n, accepted=len(facilities), rejected=rejected,
        duplicates=duplicates, warnings=tuple(log.warnings), column_mapping=dict(columns),
        crs_detected=crs_text, encoding=raw.encoding, notes=notes,
    )
    return facilities, report


def _crs_summary(used: np.ndarray, declared: str) -> str:
    counts = pd.Series(used[used != ""], dtype=object).value_counts()
    if counts.empty:
        return declared
    return " + ".join(str(c) for c in counts.index)


def _unique_ids(ids: list[str], rows: list[int]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for fid, row in zip(ids, rows, strict=True):
        if fid in seen:
            fid = f"{fid}:ligne{row}"
        seen.add(fid)
        out.append(fid)
    return out


def _parse_types(
    values: pd.Series, sub_values: pd.Series, log: _Log, *, columns: Mapping[str, str],
    default_type: str | None, file_name: str, file_columns: Sequence[str],
) -> tuple[pd.Series, pd.Series]:
    default: tuple[str, str] | None = None
    if default_type is not None:
        mapped = map_type(default_type)
        if mapped is None:
            raise InputError(f"default_type={default_type!r} is not a facility type; use one of "
                             f"{sorted(FACILITY_TYPES)} or a label such as 'micro-crèche'")
        default = mapped[0], mapped[1]
    if "type" not in columns and default is None:
        raise InputError(
            f"{file_name}: no type column found; columns found: {list(file_columns)}; "
            f"expected one of {list(COLUMN_ALIASES['type'][:6])}…; pass default_type='eaje' "
            f"(or another type among {sorted(FACILITY_TYPES)}) or mapping={{'type': '<column>'}}"
        )
    if "type" not in columns:
        assert default is not None
        log.warnings.append(f"pas de colonne de type : toutes les lignes reçoivent le type "
                            f"« {_type_text(*default)} »")
    uniques = {v: map_type(v) for v in pd.unique(values)}
    type_out = pd.Series("", index=values.index, dtype=object)
    sub_out = pd.Series("", index=values.index, dtype=object)
    for value, mapped in uniques.items():
        mask = values.eq(value)
        rows = values.index[mask.to_numpy()]
        if mapped is not None:
            type_out[mask], sub_out[mask] = mapped[0], mapped[1]
            if mapped[2]:
                log.warnings.append(
                    f"type « {value} » ({_plural(len(rows), 'ligne', 'lignes')}) interprété "
                    f"comme {_type_text(mapped[0], mapped[1])}")
        elif default is not None:
            type_out[mask], sub_out[mask] = default
            if "type" in columns:
                what = f"type « {value} »" if value else "type vide"
                log.warnings.append(
                    f"{what} ({_plural(len(rows), 'ligne', 'lignes')}) remplacé par le type "
                    f"par défaut « {_type_text(*default)} »")
        elif value == "":
            log.reject(rows, "type manquant")
        else:
            log.reject(rows, f"type inconnu : {value!r} (types reconnus : crèche, multi-accueil, "
                             "micro-crèche, MAM, RPE, LAEP, PMI, centre social, EVS, maternité, "
                             "sage-femme, mairie, codes BPE D502…, FINESS 223)")
    # explicit subtypes
    is_eaje = type_out.eq("eaje")
    unknown_sub: list[int] = []
    for value in pd.unique(sub_values[sub_values.ne("")]):
        mask = sub_values.eq(value)
        mapped = map_type(value)
        eaje_mask = mask & is_eaje
        if mapped is not None and mapped[0] == "eaje" and mapped[1]:
            sub_out[eaje_mask] = mapped[1]
        elif eaje_mask.any() and not (mapped is not None and mapped[0] == "eaje"):
            unknown_sub += values.index[eaje_mask.to_numpy()].tolist()
        other = mask & ~is_eaje
        sub_out[other] = value  # free text for other types
    if unknown_sub:
        log.warnings.append(f"sous-type de crèche non reconnu, laissé tel que déduit du type : "
                            f"{_rows_text(unknown_sub)}")
    return type_out, sub_out


def _parse_positions(
    raw: RawTable, columns: Mapping[str, str], col: Callable[[str], pd.Series], log: _Log,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates of every row: lon, lat, located mask, CRS used (rejects outside France)."""
    frame = raw.frame
    rows = np.asarray(frame.index, dtype=np.int64)
    n = len(rows)
    c1, c2 = np.full(n, np.nan), np.full(n, np.nan)
    unreadable = np.zeros(n, dtype=bool)
    origin = np.full(n, "", dtype=object)  # which pair of columns (or geometry) was read
    for kx, ky in (("x", "y"), ("lon", "lat")):  # lat/lon wins over x/y where both are given
        if kx in columns and ky in columns:
            a, bad_a = _to_float(col(kx))
            b, bad_b = _to_float(col(ky))
            has = np.isfinite(a) & np.isfinite(b)
            c1, c2 = np.where(has, a, c1), np.where(has, b, c2)
            unreadable |= (bad_a | bad_b) & ~has
            origin[has] = kx
    declared = [""] * n
    if "epsg" in columns:
        declared, bad = _declared_crs(col("epsg"))
        if bad:
            log.warnings.append(f"code EPSG non reconnu, CRS déduit des valeurs : "
                                f"{_rows_text(bad)}")
    if raw.geometry is not None:
        geom = raw.geometry
        present = (geom.notna() & ~geom.is_empty).to_numpy()
        not_point = present & (geom.geom_type != "Point").to_numpy()
        if not_point.any():
            kinds = sorted(set(geom[not_point].geom_type))
            geom = geom.copy()
            geom[not_point] = geom[not_point].representative_point()
            what = ("géométrie non ponctuelle remplacée",
                    "géométries non ponctuelles remplacées")
            log.warnings.append(
                f"{_plural(int(not_point.sum()), *what)} par un point intérieur "
                f"({', '.join(kinds)}) : {_rows_text(rows[not_point])}")
            log.note(rows[not_point], "géométrie remplacée par un point intérieur")
        gx = np.where(present, geom.x.where(present, np.nan).to_numpy(dtype=float), np.nan) \
            if present.any() else np.full(n, np.nan)
        gy = np.where(present, geom.y.where(present, np.nan).to_numpy(dtype=float), np.nan) \
            if present.any() else np.full(n, np.nan)
        c1, c2 = np.where(present, gx, c1), np.where(present, gy, c2)
        unreadable &= ~present
        origin[present] = "geometry"
        declared = [raw.crs if p else d for p, d in zip(present, declared, strict=True)]
    zero = (c1 == 0) & (c2 == 0)
    if zero.any():
        c1[zero] = c2[zero] = np.nan
        log.warnings.append(f"coordonnées (0, 0) traitées comme absentes : "
                            f"{_rows_text(rows[zero])}")
    if unreadable.any():
        log.warnings.append(f"coordonnées illisibles, traitées comme absentes : "
                            f"{_rows_text(rows[unreadable])}")
        log.note(rows[unreadable], "coordonnées illisibles ignorées")
    lon, lat, crs_used, swapped = locate_points(c1, c2, declared)
    given = np.isfinite(c1) & np.isfinite(c2)
    outside = given & (crs_used == "")
    log.outside = set(rows[outside].tolist())
    for i in np.flatnonzero(outside):
        if origin[i] == "geometry":
            shown = f"x={c1[i]}, y={c2[i]}"
        else:
            kx, ky = ("x", "y") if origin[i] == "x" else ("lon", "lat")
            shown = (f"{columns[kx]}={frame[columns[kx]].iloc[i]}, "
                     f"{columns[ky]}={frame[columns[ky]].iloc[i]}")
        log.reject([int(rows[i])], f"coordonnées hors de France ({shown})")
    if swapped.any():
        log.warnings.append(f"lat/lon inversées détectées {_rows_text(rows[swapped])} : corrigées")
        log.note(rows[swapped], "lat/lon inversées : corrigées")
    for crs in ("EPSG:2154", "EPSG:27572"):
        conv = crs_used == crs
        if conv.any() and raw.crs != crs:
            log.warnings.append(f"coordonnées en {_CRS_LABELS[crs]} converties en WGS84 "
                                f"({_plural(int(conv.sum()), 'ligne', 'lignes')})")
    return lon, lat, crs_used != "", crs_used


def _parse_precision(values: pd.Series) -> pd.Series:
    return _map_unique(values, lambda v: _PRECISION_VALUES.get(_fold(v), "address"))


def _parse_postcodes(values: pd.Series, addresses: pd.Series, log: _Log) -> pd.Series:
    out = _map_unique(values, _postcode)
    bad = values.ne("") & out.eq("")
    if bad.any():
        log.warnings.append(f"code postal illisible ignoré : {_rows_text(values.index[bad])}")
    from_addr = out.eq("") & addresses.ne("")
    if from_addr.any():
        found = addresses[from_addr].map(
            lambda a: (_POSTCODE_IN_TEXT_RE.findall(a) or [""])[-1]).astype(object)
        found = found[found.ne("")]
        if len(found):
            out.loc[found.index] = found
            log.warnings.append(f"code postal lu dans l'adresse pour "
                                f"{_plural(len(found), 'ligne', 'lignes')}")
    return out


def _parse_codes(
    frame: pd.DataFrame, columns: Mapping[str, str], fallbacks: Sequence[str], log: _Log,
) -> pd.Series:
    if "code_insee" not in columns and not fallbacks:
        return pd.Series([""] * len(frame), index=frame.index, dtype=object)
    primary = columns.get("code_insee")
    order = ([primary] if primary else []) + list(fallbacks)
    codes = _map_unique(frame[order[0]], _insee)
    bad = frame[order[0]].astype(str).str.strip().ne("") & codes.eq("")
    for other in order[1:]:
        empty = codes.eq("")
        if not empty.any():
            break
        alt = _map_unique(frame.loc[empty, other], _insee)
        alt = alt[alt.ne("")]
        if len(alt):
            codes.loc[alt.index] = alt
            log.warnings.append(f"code commune lu dans « {other} » pour "
                                f"{_plural(len(alt), 'ligne', 'lignes')} où "
                                f"« {order[0]} » est vide ou invalide")
    still_bad = bad & codes.eq("")
    if still_bad.any():
        log.warnings.append(f"code commune invalide ignoré : {_rows_text(frame.index[still_bad])}")
    return codes


def _codes_from_polygons(
    codes: pd.Series, lon: np.ndarray, lat: np.ndarray, mask: np.ndarray,
    communes: gpd.GeoDataFrame, log: _Log,
) -> pd.Series:
    polys = _point_table(communes, arg="communes", points=False)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon[mask], lat[mask]), crs=WGS84,
                           index=codes.index[mask])
    joined = gpd.sjoin(pts, polys, how="inner", predicate="within")
    joined = joined[~joined.index.duplicated()]
    codes = codes.copy()
    codes.loc[joined.index] = joined["code_insee"].astype(str)
    if len(joined):
        log.warnings.append(f"code commune déduit de la position (contours des communes) pour "
                            f"{_plural(len(joined), 'ligne', 'lignes')}")
        log.note(joined.index, "code commune déduit de la position")
    return codes


def _codes_from_cog(
    codes: pd.Series, postcodes: pd.Series, commune_names: pd.Series, addresses: pd.Series,
    cog: _Cog, log: _Log,
) -> pd.Series:
    old = codes.ne("") & ~codes.isin(list(cog.current)) & codes.isin(list(cog.former))
    replaced = {c: cog.former[c] for c in pd.unique(codes[old])}
    replaced_rows = [int(str(r)) for r in codes.index[old.to_numpy()]]
    before = codes.copy()
    codes = codes.where(~old, codes.map(lambda c: cog.former.get(c, c))).astype(object)
    log.note(replaced_rows, lambda r: (
        f"code commune {before.loc[r]} (ancienne commune) remplacé par {codes.loc[r]} "
        f"({cog.current.get(codes.loc[r], '')})"))
    if replaced_rows:
        pairs = ", ".join(f"{a} → {b}" for a, b in list(replaced.items())[:5])
        log.warnings.append(
            f"code d'une ancienne commune remplacé par celui de la commune actuelle pour "
            f"{_plural(len(replaced_rows), 'ligne', 'lignes')} ({pairs})")
    deduced: list[int] = []
    for row in codes.index[codes.eq("") & postcodes.ne("")]:
        pc = postcodes[row]
        place = commune_names[row] or addresses[row].split(pc, 1)[-1]
        code = _commune_from_postcode(pc, place, cog)
        if code:
            codes.loc[row] = code
            deduced.append(int(str(row)))
            log.note([int(str(row))], f"code commune {code} ({cog.current[code]}) déduit du code "
                                      f"postal {pc}")
    if deduced:
        log.warnings.append(f"code commune déduit du code postal pour "
                            f"{_plural(len(deduced), 'ligne', 'lignes')}")
    return codes


def _parse_capacity(values: pd.Series, log: _Log) -> np.ndarray:
    num, unreadable = _to_float(values.str.replace(r"\s*places?\s*$", "", regex=True,
                                                   case=False))
    rows = values.index
    if unreadable.any():
        log.warnings.append(f"capacité illisible laissée vide : {_rows_text(rows[unreadable])}")
        log.note(rows[unreadable], lambda r: f"capacité illisible ({values[r]!r}) laissée vide")
    with np.errstate(invalid="ignore"):
        zero_or_neg = num <= 0
    if zero_or_neg.any():
        log.warnings.append(f"capacité nulle ou négative considérée comme inconnue : "
                            f"{_rows_text(rows[zero_or_neg])}")
        log.note(rows[zero_or_neg], lambda r: f"capacité {values[r]!r} considérée comme inconnue")
        num = np.where(zero_or_neg, np.nan, num)
    return num


# --------------------------------------------------------------------------- duplicates


def find_duplicates(
    facilities: gpd.GeoDataFrame,
    *,
    rows: Sequence[int] | None = None,
    file_ids: Sequence[str] | None = None,
    distance_m: float = DUPLICATE_DISTANCE_M,
) -> pd.DataFrame:
    """Flag probable duplicates: same type and same name nearby, or same source id.

    Names are compared folded (no accents, case or punctuation); distances are
    great-circle metres between WGS84 points (valid overseas too). Each duplicate points
    to the first row of its group; nothing is removed.

    Parameters
    ----------
    facilities
        Schema facilities (``type``, ``name``, geometry in EPSG:4326).
    rows
        Row number of each facility as the user sees it (default: 1, 2, …).
    file_ids
        The file's own id of each facility (``""`` when none); equal non-empty ids of the
        same type are duplicates whatever the distance.
    distance_m
        Largest distance between two same-named facilities to call them duplicates.

    Returns
    -------
    pandas.DataFrame
        Columns ``row``, ``name``, ``duplicate_of_row``, ``reason`` (French).
    """
    cols = ["row", "name", "duplicate_of_row", "reason"]
    n = len(facilities)
    if n == 0:
        return _empty_table(cols)
    rows_arr = np.asarray(rows if rows is not None else range(1, n + 1), dtype=np.int64)
    ids = list(file_ids) if file_ids is not None else [""] * n
    lon = np.radians(facilities.geometry.x.to_numpy(dtype=float))
    lat = np.radians(facilities.geometry.y.to_numpy(dtype=float))
    types = facilities["type"].astype(str).to_numpy()
    keys = _map_unique(facilities["name"], lambda s: _fold(s, " ")).to_numpy()
    found: dict[int, tuple[int, str]] = {}
    frame = pd.DataFrame({"type": types, "key": keys, "id": ids})
    for _, group in frame.groupby(["type", "key"], sort=False).indices.items():
        idx = np.asarray(group, dtype=np.int64)
        if len(idx) < 2:
            continue
        for start in range(1, len(idx), 1000):  # chunks bound memory for huge groups
            later = idx[start:start + 1000]
            d = _haversine_m(lon[later][:, None], lat[later][:, None],
                             lon[idx][None, :], lat[idx][None, :])
            earlier = np.arange(len(idx))[None, :] < np.arange(start, start + len(later))[:, None]
            near = (d <= distance_m) & earlier
            for k in np.flatnonzero(near.any(axis=1)):
                first = int(near[k].argmax())
                found[int(later[k])] = (int(idx[first]),
                                        f"même type et même nom, à {d[k, first]:.0f} m")
    with_id = frame[frame["id"].ne("")]
    for _, id_group in with_id.groupby(["type", "id"], sort=False).indices.items():
        positions = with_id.index.to_numpy()[np.asarray(id_group)]
        for j in positions[1:].tolist():
            reason = f"même type et même identifiant {ids[j]!r}"
            if j in found:
                reason = f"{reason} ; {found[j][1]}"
            found[j] = (int(positions[0]), reason)
    order = sorted(found)
    all_names = facilities["name"].to_numpy(dtype=object)
    return pd.DataFrame({
        "row": pd.Series(rows_arr[order], dtype="int64"),
        "name": pd.Series(all_names[order], dtype=object),
        "duplicate_of_row": pd.Series(rows_arr[[found[j][0] for j in order]], dtype="int64"),
        "reason": pd.Series([found[j][1] for j in order], dtype=object),
    })


def _haversine_m(
    lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in metres between broadcastable arrays of points (radians in)."""
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
