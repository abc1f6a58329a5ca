"""Which file column holds the name, the type, the position… (accent- and case-blind)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from diagnosis.errors import InputError

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


_YEAR_RE = re.compile(r"(?:19|20)\d{2}")


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


def _fold_all(values: Sequence[object], sep: str = "_") -> list[str]:
    """:func:`_fold` of many values at once (same result, a few passes over one string).

    The values are joined with NUL, which none of the steps changes, and split again;
    a value holding a NUL is folded alone.

    Examples
    --------
    >>> _fold_all(["Nom de l'Établissement", "  Micro-crèche ", "Œuvre", None], " ")
    ['nom de l etablissement', 'micro creche', 'oeuvre', 'none']
    """
    items = [str(v) for v in values]
    if not items or any("\x00" in t for t in items):
        return [_fold(t, sep) for t in items]
    joined = unicodedata.normalize("NFKD", "\x00".join(items))
    marks = {ord(ch): None for ch in set(joined) if unicodedata.combining(ch)}
    joined = joined.translate(marks).casefold().replace("œ", "oe").replace("æ", "ae")
    joined = re.sub(r"[^0-9a-z\x00]+", sep, joined)
    return [part.strip(sep) for part in joined.split("\x00")]


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
            f"{list(COLUMN_ALIASES['name'][:10])}… or pass mapping={{'name': '<column>'}}",
            argument="fichier de structures", value=file_name,
            fr=f"« {file_name} » : aucune colonne de nom trouvée parmi les colonnes "
               f"{_listing(columns)} ; nommez-la « nom » (ou nom_structure, raison_sociale, "
               "libelle…). Sans ligne d'en-tête, le fichier doit être importé avec la "
               "correspondance des colonnes"
        )
    located = (has_geometry or {"lat", "lon"} <= found.keys() or {"x", "y"} <= found.keys()
               or bool(found.keys() & {"code_insee", "postcode", "address"}))
    if not located:
        raise InputError(
            f"{file_name}: no usable location column; columns found: {columns}; expected "
            "lat + lon (WGS84), x + y / lambert_x + lambert_y (Lambert-93), a commune code "
            "(code_insee, depcom, codgeo…), a postcode or an address; or pass mapping="
            "{'lat': ..., 'lon': ...}",
            argument="fichier de structures", value=file_name,
            fr=f"« {file_name} » : aucune colonne de position parmi {_listing(columns)} ; il "
               "faut latitude + longitude (WGS84), x + y (Lambert-93), un code commune "
               "(code_insee, depcom, codgeo…), un code postal ou une adresse"
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
                     f"columns found: {list(columns)}", argument="fichier de structures",
                     value=file_name,
                     fr=f"« {file_name} » : la colonne « {col} » indiquée pour {key} n'existe "
                        f"pas ; colonnes du fichier : {_listing(columns)}")


def _listing(columns: Sequence[str], limit: int = 12) -> str:
    """Column names for a French message: quoted, the first ``limit`` ones.

    Examples
    --------
    >>> _listing(["nom", "type"])
    '« nom », « type »'
    """
    shown = ", ".join(f"« {c} »" for c in list(columns)[:limit])
    return shown + (f" (+{len(columns) - limit})" if len(columns) > limit else "")


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


def _map_unique(values: pd.Series, func: Callable[[str], str]) -> pd.Series:
    """Apply ``func`` once per distinct value (files repeat codes and labels a lot)."""
    # each row points to its distinct value by number: no dictionary lookup per row
    of_row, distinct = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=False)
    mapped = np.empty(len(distinct), dtype=object)
    mapped[:] = [func(v) for v in distinct]
    return pd.Series(mapped[of_row], index=values.index, dtype=object)
