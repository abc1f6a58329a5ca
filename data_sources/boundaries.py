"""Commune boundaries from geo.api.gouv.fr; the paged reader of the IGN Géoplateforme WFS.

Output of :func:`load_communes`: a GeoDataFrame with ``code_insee`` (str), ``name``,
``epci_code`` (SIREN, str, may be empty), ``dep_code`` (str) and polygon ``geometry``
in EPSG:4326, one row per commune, sorted by code. :func:`fetch_wfs` pages a WFS layer
(the IRIS contours of :mod:`data_sources.iris`).

Verified shapes (stored public code, 2025-2026):

- geo.api.gouv.fr ``/communes?codeDepartement=44&format=geojson&geometry=contour`` and
  ``/epcis/{siren}/communes`` answer a GeoJSON FeatureCollection whose properties are
  the requested ``fields`` (``nom``, ``code``, ``codeEpci``, ``codeDepartement``…), as
  documented on geo.api.gouv.fr/decoupage-administratif and used by third-party code.
- The Géoplateforme WFS is a GeoServer (``SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature``
  with ``TYPENAMES``, ``COUNT``, ``STARTINDEX``, ``CQL_FILTER``, ``OUTPUTFORMAT=application/json``).
  The attribute names of ``ADMINEXPRESS-COG-CARTO.LATEST:commune`` differ between Admin
  Express editions (``insee_com``/``nom``/``insee_dep``/``siren_epci`` in 2.x,
  ``code_insee``/``nom_officiel``/``code_insee_du_departement``/``codes_siren_des_epci`` in
  3.x): :func:`parse_boundaries` accepts both, and answers given latitude first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry import shape

from data_sources import _http
from data_sources.registry import SourceInfo, register
from diagnosis.errors import InputError, SourceError
from diagnosis.settings import FRANCE_METRO_BBOX, FRANCE_OVERSEAS_BBOXES, WGS84

logger = logging.getLogger(__name__)

GEO_API_URL = "https://geo.api.gouv.fr"
WFS_URL = "https://data.geopf.fr/wfs/ows"
WFS_IRIS = "STATISTICALUNITS.IRIS:contours_iris"
GEO_API_FIELDS = "nom,code,codeEpci,codeDepartement"

BOUNDARY_COLUMNS = ("code_insee", "name", "epci_code", "dep_code", "geometry")

#: Accepted property names for each output column, first match wins.
_ALIASES: dict[str, tuple[str, ...]] = {
    "code_insee": ("code", "insee_com", "code_insee", "INSEE_COM"),
    "name": ("nom", "nom_officiel", "nom_m", "NOM"),
    "epci_code": ("codeEpci", "siren_epci", "codes_siren_des_epci", "SIREN_EPCI"),
    "dep_code": ("codeDepartement", "insee_dep", "code_insee_du_departement", "INSEE_DEP"),
}

GEO_API = register(SourceInfo(
    key="geo_api_communes",
    title="Contours des communes (API Découpage administratif, geo.api.gouv.fr)",
    url=f"{GEO_API_URL}/communes",
    licence="Licence Ouverte 2.0",
    attribution="IGN, INSEE — API Découpage administratif (geo.api.gouv.fr)",
    vintage="COG de l'année en cours",
    crs=WGS84,
    columns=("nom", "code", "codeEpci", "codeDepartement"),
))
IGN_WFS = register(SourceInfo(
    key="ign_wfs_admin_express",
    title="Contours des communes et des IRIS (IGN Géoplateforme, WFS)",
    url=WFS_URL,
    licence="Licence Ouverte 2.0",
    attribution="IGN — Admin Express COG carto ; IGN, INSEE — Contours IRIS",
    vintage="dernière édition (LATEST)",
    crs=WGS84,
    columns=("insee_com | code_insee", "nom | nom_officiel",
             "code_insee_du_departement | insee_dep", "codes_siren_des_epci | siren_epci"),
    notes="Noms d'attributs variables selon l'édition : à vérifier par un test en ligne.",
))


# --- fetch -----------------------------------------------------------------------------


def _check_feature_collection(doc: Any) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise ValueError("not a GeoJSON FeatureCollection (no 'features' list)")


def fetch_geo_api_communes(
    *,
    dep_code: str | None = None,
    epci_siren: str | None = None,
    offline: bool | None = None,
    refresh: bool = False,
) -> dict[str, Any]:
    """Fetch commune contours of a département or of an EPCI from geo.api.gouv.fr.

    Parameters
    ----------
    dep_code
        Département code (``"44"``, ``"2A"``, ``"971"``).
    epci_siren
        EPCI SIREN (``"200000438"``); exactly one of the two is required.
    offline, refresh
        See :func:`data_sources._http.fetch_json`.

    Returns
    -------
    dict
        The GeoJSON FeatureCollection as parsed JSON.
    """
    if (dep_code is None) == (epci_siren is None):
        raise InputError(
            f"give exactly one of dep_code={dep_code!r} or epci_siren={epci_siren!r}"
        )
    params = {"format": "geojson", "geometry": "contour", "fields": GEO_API_FIELDS}
    if dep_code is not None:
        url = f"{GEO_API_URL}/communes"
        params = {"codeDepartement": str(dep_code), **params}
    else:
        url = f"{GEO_API_URL}/epcis/{epci_siren}/communes"
    doc: dict[str, Any] = _http.fetch_json(
        url, source=GEO_API.key, params=params, offline=offline, refresh=refresh,
        check=_check_feature_collection,
    )
    return doc


def fetch_wfs(
    typename: str,
    *,
    cql_filter: str | None = None,
    page_size: int = 1000,
    max_pages: int = 100,
    offline: bool | None = None,
    refresh: bool = False,
) -> dict[str, Any]:
    """Fetch every feature of a WFS layer, paging with ``COUNT``/``STARTINDEX``.

    Returns
    -------
    dict
        One FeatureCollection holding the features of all pages.
    """
    features: list[dict[str, Any]] = []
    for page in range(max_pages):
        params: dict[str, Any] = {
            "SERVICE": "WFS",
            "VERSION": "2.0.0",
            "REQUEST": "GetFeature",
            "TYPENAMES": typename,
            "OUTPUTFORMAT": "application/json",
            "SRSNAME": "EPSG:4326",
            "COUNT": page_size,
            "STARTINDEX": page * page_size,
        }
        if cql_filter:
            params["CQL_FILTER"] = cql_filter
        doc = _http.fetch_json(
            WFS_URL, source=IGN_WFS.key, params=params, offline=offline, refresh=refresh,
            check=_check_feature_collection,
        )
        batch = doc["features"]
        features.extend(batch)
        matched = doc.get("numberMatched")
        if len(batch) < page_size or (isinstance(matched, int) and len(features) >= matched):
            break
    else:
        raise SourceError(
            f"{IGN_WFS.key}: more than {max_pages} pages of {page_size} features for "
            f"{typename!r} (filter {cql_filter!r}); narrow the filter."
        )
    return {"type": "FeatureCollection", "features": features}


# --- parse -----------------------------------------------------------------------------


def _pick(props: Mapping[str, Any], names: Iterable[str]) -> Any:
    for n in names:
        if n in props and props[n] is not None:
            return props[n]
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):  # codes_siren_des_epci may be a list
        return "/".join(str(v) for v in value)
    return str(value).strip()


def parse_boundaries(doc: Mapping[str, Any], *, source: str = GEO_API.key) -> gpd.GeoDataFrame:
    """Turn a commune FeatureCollection (geo.api.gouv.fr or WFS) into the boundary table.

    Pure function. Property names of both services are accepted (see ``_ALIASES``).
    Missing properties become empty strings; the validator names what is missing.
    """
    rows: list[dict[str, Any]] = []
    missing: set[str] = set()
    for feat in doc.get("features", []):
        props = feat.get("properties") or {}
        row: dict[str, Any] = {}
        for col, names in _ALIASES.items():
            value = _pick(props, names)
            if value is None and col != "epci_code":
                missing.add(f"{col} (one of {list(names)})")
            row[col] = _text(value)
        # Admin Express 3.x lists several EPCI separated by '/': keep the first.
        row["epci_code"] = row["epci_code"].split("/")[0]
        geom = feat.get("geometry")
        row["geometry"] = shape(geom) if geom else None
        rows.append(row)
    if missing:
        raise SourceError(
            f"{source}: commune features lack properties {sorted(missing)}; "
            "the service changed its format, update data_sources/boundaries.py."
        )
    gdf = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=list(BOUNDARY_COLUMNS)), geometry="geometry", crs=WGS84
    )
    gdf = _fix_axis_order(gdf)
    return gdf.sort_values("code_insee").reset_index(drop=True)


def _inside_france(bounds: tuple[float, float, float, float]) -> bool:
    minx, miny, maxx, maxy = bounds
    boxes = [FRANCE_METRO_BBOX, *FRANCE_OVERSEAS_BBOXES.values()]
    return any(
        minx >= b[0] - 0.5 and maxx <= b[2] + 0.5 and miny >= b[1] - 0.5 and maxy <= b[3] + 0.5
        for b in boxes
    )


def _fix_axis_order(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Swap x/y when a WFS answered latitude first (EPSG:4326 axis order)."""
    if gdf.empty or gdf.geometry.isna().all():
        return gdf
    b = [float(v) for v in gdf.total_bounds]
    bounds = (b[0], b[1], b[2], b[3])
    swapped = (b[1], b[0], b[3], b[2])
    if not _inside_france(bounds) and _inside_france(swapped):
        logger.warning("boundaries: coordinates came latitude first; swapping axes")
        gdf = gdf.copy()
        gdf["geometry"] = shapely.transform(gdf.geometry.to_numpy(), lambda xy: xy[:, ::-1])
    return gdf


# --- validate --------------------------------------------------------------------------


def validate_boundaries(gdf: gpd.GeoDataFrame, *, source: str, what: str) -> gpd.GeoDataFrame:
    """Check the boundary table: columns, codes, polygons, duplicates, non-empty.

    Raises
    ------
    SourceError
        Naming the source, what was asked (``what``) and the offending values.
    """
    missing = [c for c in BOUNDARY_COLUMNS if c not in gdf.columns]
    if missing:
        raise SourceError(f"{source}: boundary table for {what} lacks columns {missing}.")
    if gdf.empty:
        raise SourceError(
            f"{source}: no commune returned for {what}; check the code (COG of the year)."
        )
    bad = ~gdf["code_insee"].astype(str).str.match(r"^(?:\d{5}|2[AB]\d{3})$")
    if bad.any():
        raise SourceError(
            f"{source}: invalid INSEE codes {gdf.loc[bad, 'code_insee'].head(5).tolist()!r} "
            f"for {what}."
        )
    dup = gdf["code_insee"].duplicated()
    if dup.any():
        raise SourceError(
            f"{source}: duplicate communes {gdf.loc[dup, 'code_insee'].head(5).tolist()!r} "
            f"for {what}."
        )
    geom_bad = gdf.geometry.isna() | gdf.geometry.is_empty | ~gdf.geom_type.isin(
        ["Polygon", "MultiPolygon"]
    )
    if geom_bad.any():
        raise SourceError(
            f"{source}: communes {gdf.loc[geom_bad, 'code_insee'].head(5).tolist()!r} have no "
            f"polygon for {what}."
        )
    if gdf.crs is None or not gdf.crs.equals(WGS84):
        raise SourceError(f"{source}: boundary CRS is {gdf.crs!r}, expected {WGS84}.")
    return gdf.loc[:, list(BOUNDARY_COLUMNS)].reset_index(drop=True)


# --- load ------------------------------------------------------------------------------


def load_communes(
    *,
    dep_code: str | None = None,
    epci_siren: str | None = None,
    offline: bool | None = None,
    refresh: bool = False,
) -> gpd.GeoDataFrame:
    """Load the communes of a département or an EPCI from geo.api.gouv.fr.

    Examples
    --------
    ``load_communes(epci_siren="200000438")`` gives the 9 communes of the CC du Pays de
    Pontchâteau Saint-Gildas-des-Bois (needs the internet or a cached copy).
    """
    doc = fetch_geo_api_communes(
        dep_code=dep_code, epci_siren=epci_siren, offline=offline, refresh=refresh
    )
    gdf = parse_boundaries(doc, source=GEO_API.key)
    what = f"dep_code={dep_code!r}" if dep_code is not None else f"epci_siren={epci_siren!r}"
    return validate_boundaries(gdf, source=GEO_API.key, what=what)
