"""IRIS: contours (IGN Géoplateforme WFS) and census population by age (INSEE).

Two sources, joined on the 9-character IRIS code:

- **Contours**: WFS layer ``STATISTICALUNITS.IRIS:contours_iris`` of
  ``https://data.geopf.fr/wfs/ows`` (GeoServer, GeoJSON output, paged with
  ``COUNT``/``STARTINDEX``), attributes ``code_iris``, ``code_insee``, ``nom_iris``,
  ``type_iris`` (``H`` habitat, ``A`` activité, ``D`` divers, ``Z`` commune not split),
  also ``iris`` (4 digits), ``nom_commune``, ``cleabs``.
- **Population**: INSEE's infra-communal census base *Population en 2021*
  (``base-ic-evol-struct-pop-2021_csv.zip``, one CSV, ``;``-separated): ``IRIS``,
  ``COM``, ``LIBIRIS``, ``TYP_IRIS``, ``P21_POP``, ``P21_POP0002`` (persons aged 0 to 2),
  … The year prefix (``P21_``, ``P22_``) is read from the header, so a newer edition
  parses too. Census counts are weighted estimates (decimals).

Each source is fetch -> parse (pure) -> validate; :func:`load_iris_population` joins
them, and either part may come from a user's file (a path). The census uses the IRIS of
its geography year: IRIS of the contours missing from the census keep an unknown (NaN)
population, never 0, and the table's ``attrs["notes"]`` says how many.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import shape

from data_sources import _http
from data_sources._budget import not_a_file_fr
from data_sources.boundaries import WFS_IRIS, WFS_URL, fetch_wfs
from data_sources.registry import SourceInfo, register
from diagnosis.errors import InputError, SourceError
from diagnosis.schema import Territory
from diagnosis.settings import WGS84

logger = logging.getLogger(__name__)

#: Attribute of the WFS IRIS layer holding the commune code (filter by département).
WFS_COMMUNE_FIELD = "code_insee"

#: INSEE infra-communal census base, population by age, RP 2022 (geography 2024; page
#: insee.fr/fr/statistiques/8647014; one ``;`` CSV ``base-ic-evol-struct-pop-2022.CSV``
#: with ``IRIS``, ``COM``, ``TYP_IRIS``, ``LAB_IRIS``, ``P22_POP``, ``P22_POP0002``…, as
#: read by public R and Python code that downloads it).
CENSUS_URL = (
    "https://www.insee.fr/fr/statistiques/fichier/8647014/base-ic-evol-struct-pop-2022_csv.zip"
)
#: The 2021 edition (geography 2023), for files of that year.
CENSUS_2021_URL = (
    "https://www.insee.fr/fr/statistiques/fichier/8268806/base-ic-evol-struct-pop-2021_csv.zip"
)

#: Columns of :func:`parse_iris_contours`.
CONTOUR_COLUMNS: tuple[str, ...] = ("code_iris", "code_insee", "nom_iris", "type_iris",
                                    "geometry")
#: Columns of :func:`parse_iris_census`.
CENSUS_COLUMNS: tuple[str, ...] = ("code_iris", "code_insee", "nom_iris", "type_iris",
                                   "population", "pop_0_2", "census_year")
#: Columns of :func:`load_iris_population` (the IRIS table read by diagnosis.demand).
IRIS_COLUMNS: tuple[str, ...] = ("code_iris", "code_insee", "nom_iris", "type_iris",
                                 "population", "pop_0_2", "census_year", "geometry")

#: IRIS types and their French meaning.
IRIS_TYPES: dict[str, str] = {
    "H": "IRIS d'habitat", "A": "IRIS d'activité", "D": "IRIS divers",
    "Z": "commune non découpée en IRIS",
}

_IRIS_RE = re.compile(r"^(?:\d{5}|2[AB]\d{3})\d{4}$")
_POP_RE = re.compile(r"^P(\d{2})_POP$")

IRIS_CONTOURS = register(SourceInfo(
    key="ign_contours_iris",
    title="Contours des IRIS (IGN Géoplateforme, WFS)",
    url=f"{WFS_URL}?TYPENAMES={WFS_IRIS}",
    licence="Licence Ouverte 2.0",
    attribution="IGN, INSEE — Contours…IRIS®",
    vintage="dernière édition (LATEST)",
    crs=WGS84,
    columns=("code_iris", "code_insee", "nom_iris", "type_iris"),
))
IRIS_CENSUS = register(SourceInfo(
    key="insee_rp_iris_population",
    title="Population par âge à l'IRIS (Insee, recensement, base infracommunale)",
    url=CENSUS_URL,
    licence="Licence Ouverte 2.0",
    attribution="Insee, recensement de la population 2022, base infracommunale",
    vintage="2022 (géographie 2024) ; l'année est lue dans l'en-tête (P22_POP)",
    columns=("IRIS", "COM", "LAB_IRIS", "TYP_IRIS", "P22_POP", "P22_POP0002"),
    notes="Effectifs pondérés (estimations) ; la géographie des IRIS peut différer de "
          "celle des contours les plus récents.",
))


# --- contours --------------------------------------------------------------------------


def fetch_iris_contours(dep_code: str, *, offline: bool | None = None, refresh: bool = False,
                        page_size: int = 1000) -> dict[str, Any]:
    """Fetch the IRIS contours of a département (all WFS pages, one FeatureCollection)."""
    if not re.fullmatch(r"\d{2,3}|2[AB]", str(dep_code)):
        raise InputError(f"dep_code={dep_code!r} is not a département code (e.g. '44', '2A')")
    return fetch_wfs(WFS_IRIS, cql_filter=f"{WFS_COMMUNE_FIELD} LIKE '{dep_code}%'",
                     page_size=page_size, offline=offline, refresh=refresh)


def parse_iris_contours(doc: Mapping[str, Any]) -> gpd.GeoDataFrame:
    """IRIS FeatureCollection (WFS GeoJSON) -> ``CONTOUR_COLUMNS`` in WGS84.

    Pure. Codes are kept as text; a missing attribute becomes an empty string (named by
    :func:`validate_iris_contours`).

    Examples
    --------
    >>> doc = {"features": [{"properties": {"code_iris": "441090101", "code_insee": "44109",
    ...        "nom_iris": "Centre", "type_iris": "H"},
    ...        "geometry": {"type": "Point", "coordinates": [-1.55, 47.21]}}]}
    >>> parse_iris_contours(doc)[["code_iris", "code_insee", "type_iris"]].values.tolist()
    [['441090101', '44109', 'H']]
    """
    rows = []
    for feat in doc.get("features", []) or []:
        props = feat.get("properties") or {}
        geom = feat.get("geometry")
        rows.append({
            "code_iris": _text(props.get("code_iris")),
            "code_insee": _text(props.get("code_insee")),
            "nom_iris": _text(props.get("nom_iris")),
            "type_iris": _text(props.get("type_iris")),
            "geometry": shape(geom) if geom else None,
        })
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=list(CONTOUR_COLUMNS)),
                            geometry="geometry", crs=WGS84)


def read_iris_contours_file(path: str | Path) -> gpd.GeoDataFrame:
    """Read IRIS contours from a user's file (GeoJSON, GeoPackage, shapefile).

    Attribute names are matched without regard to case (``CODE_IRIS``, ``INSEE_COM`` of
    the IGN's shapefiles are accepted).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"path={str(p)!r} is not a file; give the IRIS contours file",
                         argument="--iris", value=str(p),
                         fr=not_a_file_fr(p, what="contours IRIS"))
    try:
        raw = gpd.read_file(p)
    except Exception as exc:  # driver errors are of many kinds
        raise SourceError(f"{p.name}: cannot read it as a GIS file ({exc})",
                          fr=f"« {p.name} » : illisible comme fichier géographique "
                             "(GeoPackage, GeoJSON, Shapefile) ; vérifiez le fichier") from exc
    lower = {c.lower(): c for c in raw.columns}
    aliases = {"code_iris": ("code_iris",), "code_insee": ("code_insee", "insee_com"),
               "nom_iris": ("nom_iris",), "type_iris": ("type_iris", "typ_iris")}
    out: dict[str, Any] = {}
    for col, names in aliases.items():
        found = next((lower[n] for n in names if n in lower), None)
        out[col] = raw[found].map(_text) if found else ""
    if raw.crs is None:
        raise SourceError(f"{p.name}: the file declares no CRS; save it with its projection")
    gdf = gpd.GeoDataFrame(pd.DataFrame(out, index=raw.index), geometry=raw.geometry,
                           crs=raw.crs).to_crs(WGS84)
    return gdf.loc[:, list(CONTOUR_COLUMNS)].reset_index(drop=True)


def validate_iris_contours(gdf: gpd.GeoDataFrame, *, source: str) -> gpd.GeoDataFrame:
    """Check codes, polygons and duplicates of the contours; messages name the rows."""
    if gdf.empty:
        raise SourceError(f"{source}: no IRIS contour; check the département or the file")
    bad = ~gdf["code_iris"].str.match(_IRIS_RE)
    if bad.any():
        raise SourceError(
            f"{source}: invalid IRIS codes {gdf.loc[bad, 'code_iris'].head(5).tolist()!r} "
            f"(rows {list(gdf.index[bad][:5])}); an IRIS code has 9 characters "
            "(commune code + 4 digits)"
        )
    wrong = gdf["code_iris"].str[:5] != gdf["code_insee"]
    if wrong.any():
        raise SourceError(
            f"{source}: code_insee does not start the IRIS code for "
            f"{gdf.loc[wrong, ['code_iris', 'code_insee']].head(5).values.tolist()!r}"
        )
    dup = gdf["code_iris"].duplicated()
    if dup.any():
        raise SourceError(
            f"{source}: duplicate IRIS {gdf.loc[dup, 'code_iris'].head(5).tolist()!r}")
    poly = gdf.geom_type.isin(["Polygon", "MultiPolygon"]) & ~gdf.geometry.is_empty
    if not poly.all():
        raise SourceError(
            f"{source}: IRIS {gdf.loc[~poly, 'code_iris'].head(5).tolist()!r} have no polygon"
        )
    return gdf.sort_values("code_iris").reset_index(drop=True)


# --- census ----------------------------------------------------------------------------


def fetch_iris_census(*, url: str = CENSUS_URL, offline: bool | None = None,
                      refresh: bool = False) -> Path:
    """Download the census base (a zip of about 20 MB) to the cache; return its path."""
    return _http.download_file(url, source=IRIS_CENSUS.key, offline=offline, refresh=refresh)


def read_census_bytes(data: bytes, *, file: str) -> str:
    """Text of the census CSV from a ``.zip`` (its single CSV member) or a CSV's bytes."""
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                members = [n for n in zf.namelist() if n.lower().endswith(".csv")]
                if not members:
                    raise SourceError(f"{file}: the zip holds no CSV ({zf.namelist()!r})")
                from data_sources._budget import read_zip_member

                data = read_zip_member(zf, members[0], archive=file)
        except zipfile.BadZipFile as exc:
            raise SourceError(f"{file}: damaged zip file ({exc})") from exc
    return _http.decode_text(data)


def parse_iris_census(text: str, *, file: str = "recensement IRIS",
                      dep_code: str | None = None) -> pd.DataFrame:
    r"""Census CSV text -> ``CENSUS_COLUMNS`` (one row per IRIS).

    Pure. ``;`` or ``,`` separators; decimal points or commas; codes kept as text;
    empty cells and statistical secret stay NaN. With ``dep_code``, only the IRIS of
    that département are kept.

    Raises
    ------
    SourceError
        No ``Pyy_POP`` / ``Pyy_POP0002`` / ``IRIS`` column (the message names what was
        found), or a value that is not a number (named by row and column).

    Examples
    --------
    >>> t = "IRIS;COM;TYP_IRIS;P21_POP;P21_POP0002\n441090101;44109;H;2000.5;61.2\n"
    >>> r = parse_iris_census(t).iloc[0]
    >>> r["code_iris"], float(r["population"]), float(r["pop_0_2"]), int(r["census_year"])
    ('441090101', 2000.5, 61.2, 2021)
    """
    first = text.splitlines()[0] if text else ""
    sep = ";" if first.count(";") >= first.count(",") else ","
    try:
        raw = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SourceError(f"{file}: not a readable CSV ({exc})") from exc
    raw.columns = [c.strip().upper() for c in raw.columns]
    years = [m.group(1) for c in raw.columns if (m := _POP_RE.match(c))]
    if "IRIS" not in raw.columns or not years:
        raise SourceError(
            f"{file}: expected the columns IRIS and Pyy_POP, Pyy_POP0002 of INSEE's census "
            f"base by IRIS; found {list(raw.columns)[:12]!r}"
        )
    yy = max(years)
    pop_col, young_col = f"P{yy}_POP", f"P{yy}_POP0002"
    if young_col not in raw.columns:
        raise SourceError(f"{file}: column {young_col!r} (persons aged 0 to 2) is missing")
    codes = raw["IRIS"].str.strip()
    if dep_code is not None:
        raw = raw[codes.str.startswith(str(dep_code))]
        codes = codes[raw.index]
    out = pd.DataFrame({
        "code_iris": codes,
        "code_insee": raw["COM"].str.strip() if "COM" in raw else codes.str[:5],
        "nom_iris": raw["LIBIRIS"].str.strip() if "LIBIRIS" in raw else "",
        "type_iris": raw["TYP_IRIS"].str.strip() if "TYP_IRIS" in raw else "",
        "population": _numbers(raw[pop_col], file=file, column=pop_col),
        "pop_0_2": _numbers(raw[young_col], file=file, column=young_col),
        "census_year": 2000 + int(yy),
    })
    return out.loc[:, list(CENSUS_COLUMNS)].reset_index(drop=True)


def validate_iris_census(df: pd.DataFrame, *, file: str) -> pd.DataFrame:
    """Check codes, duplicates and signs of the census table."""
    if df.empty:
        raise SourceError(f"{file}: no IRIS row (check the département or the file)")
    bad = ~df["code_iris"].str.match(_IRIS_RE)
    if bad.any():
        rows = [int(i) + 2 for i in df.index[bad][:5]]
        raise SourceError(
            f"{file}: invalid IRIS codes {df.loc[bad, 'code_iris'].head(5).tolist()!r} "
            f"(lines {rows})"
        )
    dup = df["code_iris"].duplicated()
    if dup.any():
        raise SourceError(f"{file}: duplicate IRIS {df.loc[dup, 'code_iris'].head(5).tolist()!r}")
    for col in ("population", "pop_0_2"):
        neg = df[col] < 0
        if neg.any():
            raise SourceError(
                f"{file}: negative {col} for IRIS {df.loc[neg, 'code_iris'].head(5).tolist()!r}"
            )
    over = df["pop_0_2"] > df["population"] + 1e-6
    if over.any():
        raise SourceError(
            f"{file}: more children aged 0-2 than inhabitants for IRIS "
            f"{df.loc[over, 'code_iris'].head(5).tolist()!r}"
        )
    return df


# --- join and load ---------------------------------------------------------------------


def join_iris(contours: gpd.GeoDataFrame, census: pd.DataFrame) -> gpd.GeoDataFrame:
    """Contours with their census figures (``IRIS_COLUMNS``); unmatched IRIS stay NaN.

    ``attrs["notes"]`` holds French sentences on IRIS found on one side only.
    """
    cen = census.set_index("code_iris")
    out = contours.copy()
    for col in ("population", "pop_0_2", "census_year"):
        out[col] = out["code_iris"].map(cen[col])
    for col in ("nom_iris", "type_iris"):
        fill = out["code_iris"].map(cen[col])
        out[col] = out[col].where(out[col] != "", fill.fillna(""))
    notes = []
    missing = out["population"].isna() | out["pop_0_2"].isna()
    if missing.any():
        notes.append(
            f"{int(missing.sum())} IRIS des contours sans population connue au recensement "
            f"(géographie différente, ex. {out.loc[missing, 'code_iris'].head(3).tolist()}) : "
            "leur population reste inconnue et leur commune garde son point."
        )
    extra = sorted(set(cen.index[cen.index.str[:5].isin(set(out["code_insee"]))])
                   - set(out["code_iris"]))
    if extra:
        notes.append(f"{len(extra)} IRIS du recensement absents des contours "
                     f"(ex. {extra[:3]}).")
    gdf = gpd.GeoDataFrame(out.loc[:, list(IRIS_COLUMNS)], geometry="geometry",
                           crs=contours.crs)
    gdf.attrs["notes"] = notes
    return gdf


def load_iris_population(
    dep_code: str,
    *,
    contours_path: str | Path | None = None,
    census_path: str | Path | None = None,
    offline: bool | None = None,
    refresh: bool = False,
) -> gpd.GeoDataFrame:
    """IRIS of a département with their population and children aged 0-2.

    Parameters
    ----------
    dep_code
        Département code (``"44"``, ``"2A"``, ``"974"``).
    contours_path
        A user's contours file; ``None``: the IGN WFS.
    census_path
        A user's census file (the INSEE zip or its CSV); ``None``: download INSEE's base.
    offline, refresh
        Cache behaviour (see :mod:`data_sources._http`).

    Returns
    -------
    geopandas.GeoDataFrame
        ``IRIS_COLUMNS`` in WGS84; ``attrs["notes"]`` for the user.
    """
    if contours_path is None:
        contours = parse_iris_contours(
            fetch_iris_contours(dep_code, offline=offline, refresh=refresh))
        src = IRIS_CONTOURS.key
    else:
        contours = read_iris_contours_file(contours_path)
        contours = contours[contours["code_insee"].str.startswith(str(dep_code))]
        src = Path(contours_path).name
    contours = validate_iris_contours(contours, source=src)
    path = Path(census_path) if census_path is not None else fetch_iris_census(
        offline=offline, refresh=refresh)
    if not path.is_file():
        raise InputError(f"census_path={str(path)!r} is not a file", argument="--iris",
                         value=str(path), fr=not_a_file_fr(path, what="recensement IRIS"))
    from data_sources._budget import read_file_capped

    text = read_census_bytes(read_file_capped(path, what="fichier du recensement IRIS"),
                             file=path.name)
    census = validate_iris_census(parse_iris_census(text, file=path.name, dep_code=dep_code),
                                  file=path.name)
    return join_iris(contours, census)


# --------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def _numbers(values: pd.Series, *, file: str, column: str) -> pd.Series:
    clean = values.str.strip().str.replace("\u00a0", "", regex=False).str.replace(
        ",", ".", regex=False)
    blank = clean.isin(["", "s", "nd", "NA"])
    num = pd.to_numeric(clean.where(~blank), errors="coerce")
    bad = num.isna() & ~blank
    if bad.any():
        pos = int(np.argmax(bad.to_numpy()))
        raise SourceError(
            f"{file}: line {pos + 2}, column {column!r}: {values.iloc[pos]!r} is not a number"
        )
    return num.astype("float64")


def load_iris_contours(area: Territory, *, offline: bool | None = None,
                       refresh: bool = False) -> gpd.GeoDataFrame:
    """IRIS contours of the communes of ``area`` (one WFS query per département).

    Raises
    ------
    SourceError
        When none of the territory's communes has an IRIS in the answer.
    """
    parts = [validate_iris_contours(parse_iris_contours(
        fetch_iris_contours(dep, offline=offline, refresh=refresh)), source=IRIS_CONTOURS.key)
        for dep in _departements(area)]
    gdf = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=WGS84)
    gdf = to_communes(gdf)
    gdf = gdf[gdf["code_insee"].isin(set(area.communes))].reset_index(drop=True)
    if gdf.empty:
        raise SourceError(f"{IRIS_CONTOURS.key}: no IRIS for the {len(area.communes)} "
                          f"communes of {area.label} in the WFS answer.")
    return gdf


def load_iris_census(area: Territory, *, url: str = CENSUS_URL, offline: bool | None = None,
                     refresh: bool = False) -> pd.DataFrame:
    """Census figures (``CENSUS_COLUMNS``) of the IRIS of the communes of ``area``.

    Raises
    ------
    SourceError
        When the base holds no IRIS of the territory (wrong file, changed format).
    """
    from data_sources._budget import read_file_capped

    path = fetch_iris_census(url=url, offline=offline, refresh=refresh)
    _http.check_not_html(path, url=url, source=IRIS_CENSUS.key)
    text = read_census_bytes(read_file_capped(path, what="fichier du recensement IRIS"),
                             file=path.name)
    census = validate_iris_census(parse_iris_census(text, file=path.name), file=path.name)
    census = to_communes(census)
    census = census[census["code_insee"].isin(set(area.communes))].reset_index(drop=True)
    if census.empty:
        raise SourceError(f"{IRIS_CENSUS.key}: {url} holds no IRIS of the "
                          f"{len(area.communes)} communes of {area.label}.")
    return census


def to_communes(table: pd.DataFrame) -> pd.DataFrame:
    """Give the IRIS of Paris, Lyon and Marseille their commune, keeping the arrondissement.

    Their ``code_insee`` is the arrondissement (``75112``): it becomes the commune
    (``75056``) and the arrondissement moves to ``code_arm`` (``""`` elsewhere), so they
    match the territory's communes.

    Examples
    --------
    >>> to_communes(pd.DataFrame({"code_insee": ["75112", "44129"]})).values.tolist()
    [['75056', '75112'], ['44129', '']]
    """
    from data_sources.caf import COMMUNE_OF_ARRONDISSEMENT

    out = table.copy()
    commune = out["code_insee"].map(COMMUNE_OF_ARRONDISSEMENT)
    out["code_arm"] = out["code_insee"].where(commune.notna(), "")
    out["code_insee"] = commune.fillna(out["code_insee"])
    return out


def children_by_arrondissement(census: pd.DataFrame) -> dict[str, float]:
    """Children aged 0-2 per arrondissement (from ``code_arm``), the CAF rates' weights."""
    if "code_arm" not in census.columns:
        return {}
    arm = census[census["code_arm"].astype(str) != ""]
    sums = pd.to_numeric(arm["pop_0_2"], errors="coerce").groupby(arm["code_arm"]).sum(
        min_count=1)
    return {str(k): float(v) for k, v in sums.dropna().items()}


def _departements(area: Territory) -> tuple[str, ...]:
    return area.departements or tuple(sorted({c[:3] if c.startswith("97") else c[:2]
                                              for c in area.communes}))
