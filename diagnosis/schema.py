"""The one schema of Maillage: facility types, facility columns, commune needs, territories.

Every loader in :mod:`data_sources` returns facilities with exactly
:data:`FACILITY_COLUMNS` (validated by :func:`validate_facilities`) and communes
with :data:`NEEDS_COLUMNS`; every analysis in :mod:`diagnosis` reads them.

Facilities
----------
============== ======== ==========================================================
column         dtype    meaning
============== ======== ==========================================================
facility_id    str      unique id within a table: ``"<source>:<source_id>"``
type           str      one of :data:`FACILITY_TYPES`
subtype        str      for ``eaje`` one of :data:`EAJE_SUBTYPES`; else empty or free
name           str      name as published
address        str      street address (may be empty)
postcode       str      5-character postcode (may be empty)
code_insee     str      INSEE commune code, 5 characters (``"44129"``, ``"2A004"``)
capacity       float    places (EAJE, MAM) or beds; NaN when unknown, never 0 for unknown
operator       str      gestionnaire
phone          str
email          str
website        str
source         str      source key in the registry (``demo_directory``, ``user:file.csv``…)
source_id      str      the facility's id in its source (or the row number)
source_date    str      date or vintage of the source row (ISO, may be partial: ``2024``)
position_precision str  ``address`` | ``street`` | ``commune`` (see :data:`PRECISIONS`)
geometry       Point    WGS84 (EPSG:4326)
============== ======== ==========================================================

Communes (needs)
----------------
See :data:`NEEDS_COLUMNS`: one row per commune, keyed by ``code_insee`` (str).
Missing values (statistical secret, not published) are NaN, never 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from diagnosis.errors import InputError
from diagnosis.settings import WGS84


@dataclass(frozen=True)
class FacilityType:
    """French wording of a facility type: labels and the grammatical gender of the noun.

    ``gender`` is ``"m"`` or ``"f"``: adjectives agree with it (« Centres sociaux
    voisins », « Maternités voisines »), see :func:`facility_agree`.
    """

    label: str
    plural: str
    gender: str


#: The facility type table: label (singular), plural and gender of each type.
FACILITY_TYPE_TABLE: dict[str, FacilityType] = {
    "pmi": FacilityType("Centre de PMI", "Centres de PMI", "m"),
    "eaje": FacilityType("Crèche (EAJE)", "Crèches (EAJE)", "f"),
    "mam": FacilityType("Maison d'assistants maternels (MAM)", "MAM", "f"),
    "laep": FacilityType("Lieu d'accueil enfants-parents (LAEP)", "LAEP", "m"),
    "rpe": FacilityType("Relais petite enfance (RPE)", "Relais petite enfance", "m"),
    "centre_social": FacilityType("Centre social", "Centres sociaux", "m"),
    "evs": FacilityType("Espace de vie sociale (EVS)", "Espaces de vie sociale", "m"),
    "maternite": FacilityType("Maternité", "Maternités", "f"),
    "sage_femme": FacilityType("Sage-femme", "Sages-femmes", "f"),
    "mairie": FacilityType("Mairie", "Mairies", "f"),
    "maison_1000_jours": FacilityType("Maison des 1000 premiers jours",
                                      "Maisons des 1000 premiers jours", "f"),
}
#: Facility types with their French label (singular, plural), from the table above.
FACILITY_TYPES: dict[str, tuple[str, str]] = {
    k: (v.label, v.plural) for k, v in FACILITY_TYPE_TABLE.items()}

#: EAJE subtypes with their French label.
EAJE_SUBTYPES: dict[str, str] = {
    "multi_accueil": "Multi-accueil",
    "creche_collective": "Crèche collective",
    "micro_creche": "Micro-crèche",
    "halte_garderie": "Halte-garderie",
    "creche_familiale": "Crèche familiale",
    "creche_parentale": "Crèche parentale",
}

#: How precisely a facility is placed, best first, with its French label.
PRECISIONS: dict[str, str] = {
    "address": "à l'adresse",
    "street": "à la rue",
    "commune": "à la mairie de la commune (position approximative)",
}

#: Facility columns, in order, with their pandas dtype (geometry last).
FACILITY_DTYPES: dict[str, str] = {
    "facility_id": "str",
    "type": "str",
    "subtype": "str",
    "name": "str",
    "address": "str",
    "postcode": "str",
    "code_insee": "str",
    "capacity": "float64",
    "operator": "str",
    "phone": "str",
    "email": "str",
    "website": "str",
    "source": "str",
    "source_id": "str",
    "source_date": "str",
    "position_precision": "str",
}
FACILITY_COLUMNS: tuple[str, ...] = (*FACILITY_DTYPES, "geometry")
#: Optional text columns kept after the schema columns when a source provides them.
FACILITY_OPTIONAL_COLUMNS: tuple[str, ...] = ("notes", "source_url")

#: Commune need columns (one row per commune) with their French label.
NEEDS_COLUMNS: dict[str, str] = {
    "code_insee": "Code INSEE",
    "name": "Commune",
    "epci_code": "EPCI (SIREN)",
    "epci_name": "EPCI",
    "dep_code": "Département",
    "births_2024": "Naissances 2024 (domiciliées)",
    "births_mean_2016_2021": "Naissances par an, moyenne 2016-2021",
    "population_2022": "Population 2022",
    "area_km2": "Superficie (km²)",
    "density_per_km2": "Densité (hab./km²)",
    "median_income_2021": "Revenu disponible médian 2021 (€/UC)",
    "poverty_rate_2021": "Taux de pauvreté 2021 (%)",
    "families_2022": "Familles avec enfant(s) 2022",
    "single_parent_families_2022": "Familles monoparentales 2022",
    "single_parent_share_2022": "Familles monoparentales parmi les familles avec enfant(s) (%)",
    "under3_estimate": "Enfants de moins de 3 ans (recensement, sinon estimation 3 × naissances)",
}
#: Optional commune columns, present when their source is loaded (the CNAF publishes its
#: coverage rate only for communes of more than 10,000 inhabitants: the EPCI's rate is
#: given to every commune of the EPCI beside it).
OPTIONAL_COMMUNE_COLUMNS: dict[str, str] = {
    "caf_coverage_rate": "Taux de couverture d'accueil du jeune enfant de la commune "
                         "(CAF, places pour 100 enfants de moins de 3 ans)",
    "caf_coverage_rate_epci": "Taux de couverture d'accueil du jeune enfant de l'EPCI "
                              "(CAF, places pour 100 enfants de moins de 3 ans)",
    "caf_coverage_rate_dep": "Taux de couverture d'accueil du jeune enfant du département "
                             "(CAF, places pour 100 enfants de moins de 3 ans)",
    "caf_coverage_rate_france": "Taux de couverture d'accueil du jeune enfant de la France "
                                "(CAF, hors Mayotte, places pour 100 enfants de moins de 3 ans)",
    "caf_coverage_year": "Année du taux de couverture CAF",
}
#: Need columns that are numeric (float64, NaN when missing or secret).
_NEEDS_TEXT = {"code_insee", "name", "epci_code", "epci_name", "dep_code"}
NEEDS_NUMERIC: tuple[str, ...] = tuple(c for c in NEEDS_COLUMNS if c not in _NEEDS_TEXT)

#: French label of a site the user proposes (as a type; its name is settings.USER_SITE_LABEL).
USER_SITE_TYPE_LABEL = "Site proposé"

#: Travel-time engines: a road graph (OpenStreetMap) or the crow-fly estimate.
ENGINE_ROAD = "road_network"
ENGINE_CROW_FLY = "crow_fly"
#: Public transport (GTFS timetables, diagnosis.travel.transit).
ENGINE_TRANSIT = "transit"
#: Short French labels of the engines (tables, report parameters).
ENGINE_SHORT_LABELS: dict[str, str] = {ENGINE_ROAD: "réseau routier",
                                       ENGINE_CROW_FLY: "vol d'oiseau",
                                       ENGINE_TRANSIT: "transports en commun (GTFS)"}
#: French labels of the travel modes a user chooses.
TRAVEL_MODE_LABELS: dict[str, str] = {"drive": "en voiture", "walk": "à pied",
                                      "poussette": "à pied avec une poussette",
                                      "transit": "en transports en commun",
                                      "crow": "à vol d'oiseau (estimation)"}
#: French labels of the travel modes offered in a choice list (the app's pages).
TRAVEL_MODE_CHOICES: dict[str, str] = {
    "crow": "À vol d'oiseau (estimation)",
    "drive": "Réseau routier en voiture (OpenStreetMap)",
    "walk": "Réseau routier à pied (OpenStreetMap)",
    "poussette": "À pied avec une poussette (sans escaliers)",
    "transit": "Transports en commun, à l'heure des groupes",
}

_INSEE_RE = r"^(?:\d{5}|2[AB]\d{3})$"


def facility_label(facility_type: str, *, plural: bool = False) -> str:
    """Return the French label of a facility type.

    Examples
    --------
    >>> facility_label("laep")
    "Lieu d'accueil enfants-parents (LAEP)"
    >>> facility_label("pmi", plural=True)
    'Centres de PMI'
    """
    try:
        singular, many = FACILITY_TYPES[facility_type]
    except KeyError:
        raise InputError(
            f"facility_type={facility_type!r} is not a facility type; "
            f"use one of {sorted(FACILITY_TYPES)}"
        ) from None
    return many if plural else singular


def facility_agree(facility_type: str, masculine: str, *, feminine: str | None = None,
                   plural: bool = False) -> str:
    """An adjective agreeing with the gender (and number) of a facility type's noun.

    ``feminine`` defaults to ``masculine + "e"``; the plural adds an ``s`` (give
    irregular forms already in the plural with ``plural=False``).

    Examples
    --------
    >>> facility_agree("centre_social", "voisin", plural=True)
    'voisins'
    >>> facility_agree("maternite", "voisin", plural=True)
    'voisines'
    >>> facility_agree("laep", "le plus proche", feminine="la plus proche")
    'le plus proche'
    """
    try:
        gender = FACILITY_TYPE_TABLE[facility_type].gender
    except KeyError:
        raise InputError(
            f"facility_type={facility_type!r} is not a facility type; "
            f"use one of {sorted(FACILITY_TYPES)}"
        ) from None
    word = masculine if gender == "m" else (feminine if feminine is not None
                                            else masculine + "e")
    return word + "s" if plural and not word.endswith(("s", "x")) else word


def empty_facilities() -> gpd.GeoDataFrame:
    """Return an empty facility table with the schema's columns, dtypes and CRS."""
    data = {c: pd.Series([], dtype="float64" if d == "float64" else object)
            for c, d in FACILITY_DTYPES.items()}
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)


def isin_codes(column: pd.Series, codes: Iterable[object]) -> pd.Series:
    """``column.isin(codes)`` for text codes, without pandas' per-code cost on arrow text.

    On an arrow-backed text column pandas turns every code into an arrow scalar (0.05 s
    for the 35,000 communes of France); the same test on Python objects is a hash lookup.
    Codes that are not all text take pandas' own path (missing values match there).

    Examples
    --------
    >>> isin_codes(pd.Series(["44129", "44001", None], dtype="str"), {"44001"}).tolist()
    [False, True, False]
    """
    values = codes if isinstance(codes, set | frozenset) else set(codes)
    if not all(isinstance(v, str) for v in values):
        return column.isin(values)
    return column.astype(object).isin(values)


def validate_facilities(gdf: gpd.GeoDataFrame, *, source: str) -> gpd.GeoDataFrame:
    """Check a facility table against the schema and return it normalised.

    Parameters
    ----------
    gdf
        Facilities with at least :data:`FACILITY_COLUMNS`.
    source
        Where the table comes from, named in error messages.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns in schema order (then :data:`FACILITY_OPTIONAL_COLUMNS` when present),
        text columns as ``str`` (empty string for missing),
        ``capacity`` as float, CRS EPSG:4326.

    Raises
    ------
    InputError
        Missing columns, unknown types or subtypes, bad INSEE codes, bad precisions,
        missing geometries or duplicate ``facility_id`` (the message names the
        source, the column and the first offending rows).
    """
    missing = [c for c in FACILITY_COLUMNS if c not in gdf.columns]
    if missing:
        raise InputError(
            f"{source}: facility table lacks columns {missing}; found {list(gdf.columns)}. "
            "Build it with the loaders of data_sources or add these columns."
        )
    if gdf.crs is None:
        raise InputError(f"{source}: facility table has no CRS; set one (EPSG:4326 expected).")
    extra = [c for c in FACILITY_OPTIONAL_COLUMNS if c in gdf.columns]
    out = gdf.loc[:, [*FACILITY_COLUMNS, *extra]].copy()
    if out.crs is not None and not out.crs.equals(WGS84):
        out = out.to_crs(WGS84)
    for col, dtype in {**FACILITY_DTYPES, **dict.fromkeys(extra, "str")}.items():
        if dtype == "float64":
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
        else:
            out[col] = _texts(out[col])

    def _bad(mask: pd.Series | np.ndarray, what: str, allowed: object) -> None:
        if mask.any():
            mask = np.asarray(mask, dtype=bool)
            rows = out.index[mask][:5].tolist()
            vals = out.loc[mask, what].head(5).tolist() if what in out else []
            raise InputError(
                f"{source}: column {what!r} has invalid values {vals!r} at rows {rows}; "
                f"allowed: {allowed}"
            )

    _bad(~out["type"].isin(FACILITY_TYPES), "type", sorted(FACILITY_TYPES))
    # (text compared as numpy arrays: a tenth of a Series comparison's cost)
    eaje = ((out["type"].to_numpy(dtype=object) == "eaje")
            & (out["subtype"].to_numpy(dtype=object) != ""))
    _bad(eaje & ~out["subtype"].isin(EAJE_SUBTYPES).to_numpy(), "subtype",
         sorted(EAJE_SUBTYPES))
    _bad(~_matches(out["code_insee"], _INSEE_RE), "code_insee",
         "a 5-character INSEE code as text, e.g. '44129' or '2A004'")
    _bad(~out["position_precision"].isin(PRECISIONS), "position_precision", list(PRECISIONS))
    _bad(out["facility_id"].to_numpy(dtype=object) == "", "facility_id", "a non-empty id")
    _bad(out["facility_id"].duplicated(keep=False), "facility_id", "unique ids")
    shapes = out.geometry.to_numpy()  # a point is type 0; a missing geometry -1
    geom_bad = shapely.is_empty(shapes) | (shapely.get_type_id(shapes) != 0)
    if geom_bad.any():
        rows = out.index[geom_bad][:5].tolist()
        raise InputError(
            f"{source}: rows {rows} have no point geometry; place them (geocode or town hall) "
            "or report them as rejected before validation."
        )
    cap = out["capacity"]
    _bad(cap.lt(0) | ~np.isfinite(cap.fillna(0)), "capacity", "a number of places >= 0 or empty")
    return out.reset_index(drop=True)


def concat_validated(tables: Sequence[gpd.GeoDataFrame], *, source: str) -> gpd.GeoDataFrame:
    """Concatenate facility tables that each came out of :func:`validate_facilities`.

    The result equals ``validate_facilities(pd.concat(tables))``: each row was checked
    with its table, so only what spans the tables is checked here (ids unique across
    them), and the optional columns one table lacks are filled with ``""`` as the
    validation would. A table a caller built or edited must go through
    :func:`validate_facilities` first: this function trusts its rows.

    Parameters
    ----------
    tables
        Validated facility tables (empty ones are skipped).
    source
        Where the tables come from, named in error messages.

    Raises
    ------
    InputError
        A ``facility_id`` found in two tables (or no table at all is given a CRS of
        EPSG:4326).

    Examples
    --------
    >>> a = validate_facilities(empty_facilities(), source="a")
    >>> list(concat_validated([a, a], source="a").columns) == list(FACILITY_COLUMNS)
    True
    """
    parts = [t for t in tables if len(t)]
    for t in parts:
        if t.crs is None or not t.crs.equals(WGS84):
            raise InputError(f"{source}: a validated facility table is in EPSG:4326, got "
                             f"{t.crs!r}; pass it through validate_facilities first")
    if not parts:
        return validate_facilities(tables[0] if tables else empty_facilities(), source=source)
    extra = [c for c in FACILITY_OPTIONAL_COLUMNS if any(c in t.columns for t in parts)]
    merged = pd.concat([t.loc[:, [*FACILITY_COLUMNS, *(c for c in extra if c in t.columns)]]
                        for t in parts], ignore_index=True)
    out = gpd.GeoDataFrame(merged, geometry="geometry", crs=WGS84)
    out = out.loc[:, [*FACILITY_COLUMNS, *extra]]
    for col in extra:  # absent from some tables: "" there, as validate_facilities makes it
        if out[col].isna().any():
            out[col] = out[col].fillna("").astype(object)
    ids = out["facility_id"]
    twice = ids.duplicated(keep=False).to_numpy()
    if twice.any():
        rows = out.index[twice][:5].tolist()
        raise InputError(
            f"{source}: column 'facility_id' has invalid values {ids[twice].head(5).tolist()!r} "
            f"at rows {rows}; allowed: unique ids"
        )
    return out


def _matches(texts: pd.Series, pattern: str) -> pd.Series:
    r"""``texts.str.match(pattern)`` tested once per distinct text (codes repeat a lot).

    Examples
    --------
    >>> _matches(pd.Series(["44129", "4412", "44129"], dtype=object), r"^\d{5}$").tolist()
    [True, False, True]
    """
    codes, distinct = pd.factorize(texts.to_numpy(dtype=object))
    found = pd.Series(distinct, dtype=object).str.match(pattern).to_numpy(dtype=bool)
    return pd.Series(found[codes], index=texts.index)


def _texts(values: pd.Series) -> pd.Series:
    """:func:`_as_text` of every cell (object dtype); a column of text only is stripped.

    Examples
    --------
    >>> _texts(pd.Series([" a ", "b"])).tolist(), _texts(pd.Series([44.0, None, "c"])).tolist()
    (['a', 'b'], ['44', '', 'c'])
    >>> _texts(pd.Series([" a", None, np.nan, pd.NA, "b "], dtype=object)).tolist()
    ['a', '', '', '', 'b']
    """
    if values.dtype == object:
        cells = values.to_numpy()
        text_only = pd.api.types.infer_dtype(cells, skipna=False) == "string"  # no None/NaN
    else:  # an arrow text column says "string" by its dtype: its missing cells are counted
        cells = values.to_numpy(dtype=object)  # iterating an arrow column is slow
        text_only = (pd.api.types.infer_dtype(values, skipna=False) == "string"
                     and not values.isna().any())
    if text_only:  # (str.strip mapped over a list: half the cost of a comprehension)
        stripped = np.empty(len(cells), dtype=object)
        stripped[:] = list(map(str.strip, cells.tolist()))
        return pd.Series(stripped, index=values.index, dtype=object, copy=False)
    if values.dtype == object and pd.api.types.infer_dtype(cells, skipna=True) == "string":
        # text with missing cells (an optional column absent from one of the merged
        # tables): the missing cells become "", the others are stripped
        present = np.flatnonzero(~pd.isna(cells))
        filled = np.full(len(cells), "", dtype=object)
        filled[present] = [v.strip() for v in cells[present]]
        return pd.Series(filled, index=values.index, dtype=object, copy=False)
    return values.map(_as_text).astype(object)


def _as_text(value: object) -> str:
    """Normalise a cell to text: missing values become ``""``; floats like 44.0 lose '.0'."""
    if value is None:
        return ""
    if isinstance(value, float):
        if np.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    if value is pd.NA or value is pd.NaT:
        return ""
    return str(value).strip()


@dataclass(frozen=True)
class Territory:
    """A French territory: a commune, an EPCI, a département, a région or a custom list.

    Attributes
    ----------
    kind
        ``"commune"``, ``"epci"``, ``"departement"``, ``"region"`` or ``"custom"``
        (a named list of communes, or the communes of an area drawn on a map).
    code
        INSEE code (commune), SIREN (EPCI), département or région code, as text; for
        a custom territory a code derived from its communes (``"c1a2b…"``).
    name
        Official name (COG 2026), or the name given to a custom territory.
    communes
        INSEE codes of its current communes, sorted.
    departements
        Codes of the départements it touches (an EPCI may straddle two).
    note
        French remarks on how the query was resolved (former code, commune déléguée),
        one per line.
    """

    kind: str
    code: str
    name: str
    communes: tuple[str, ...]
    departements: tuple[str, ...] = field(default=())
    note: str = ""

    @property
    def label(self) -> str:
        """French label, e.g. ``"EPCI CC du Pays de Pontchâteau… (200000438)"``."""
        kinds = {"commune": "Commune", "epci": "EPCI", "departement": "Département",
                 "region": "Région", "pays": "Pays"}
        if self.kind == "custom":
            return f"Territoire {self.name} ({len(self.communes)} communes)"
        return f"{kinds.get(self.kind, self.kind)} {self.name} ({self.code})"

    @property
    def notices(self) -> tuple[str, ...]:
        """The remarks of :attr:`note`, one per item (empty when none)."""
        return tuple(line for line in self.note.splitlines() if line.strip())
