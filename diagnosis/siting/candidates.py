"""Candidate sites: host facilities, existing Maisons and the user's points.

Part of :mod:`diagnosis.siting` (see its docstring for the models).
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.errors import InputError
from diagnosis.schema import FACILITY_COLUMNS, FACILITY_TYPES
from diagnosis.settings import METRIC_CRS, USER_SITE_ID, USER_SITE_LABEL, WGS84
from diagnosis.siting._common import EXISTING_TYPE, HOST_TYPES, USER_SITE_TYPE


#: Facility types that can host a Maison (the default candidate pool).
# --------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------
def build_candidates(
    facilities: gpd.GeoDataFrame,
    *,
    host_types: Sequence[str] = HOST_TYPES,
    user_points: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    territory: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
) -> gpd.GeoDataFrame:
    """Gather the candidate sites: host facilities, existing Maisons and user points.

    Parameters
    ----------
    facilities
        Facility table (columns of :data:`diagnosis.schema.FACILITY_COLUMNS`; missing
        text columns are filled with ``""``).
    host_types
        Facility types that may host a Maison (default :data:`HOST_TYPES`).
    user_points
        Points proposed by the user (with a CRS; an optional ``name`` column). They get
        ``type = "user_site"`` and ids ``"user:1"``, ``"user:2"``...
    territory
        Territory polygon(s) with a CRS; required with ``user_points``, which must lie
        inside it.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, the facility columns plus ``candidate_kind`` (``"host"``,
        ``"existing"`` for Maisons des 1000 premiers jours, ``"user"``), in this order:
        facilities in input order, then user points.

    Raises
    ------
    InputError
        Unknown host types, no candidate of the chosen types and no user point, user
        points without ``territory`` or outside it.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> f = gpd.GeoDataFrame({"facility_id": ["a", "b", "c"],
    ...     "type": ["pmi", "maternite", "mairie"], "name": ["PMI", "Mat.", "Mairie"]},
    ...     geometry=[Point(-2.1, 47.4), Point(-2.2, 47.4), Point(-2.0, 47.5)], crs=WGS84)
    >>> build_candidates(f)["facility_id"].tolist()
    ['a', 'c']

    See Also
    --------
    find_host_sites
    guides/implantation.md : which structures can host a Maison.
    """
    bad = [t for t in host_types if t not in FACILITY_TYPES]
    if bad:
        raise InputError(
            f"host_types holds unknown facility types {bad!r}; use some of {list(HOST_TYPES)}"
        )
    if facilities.crs is None:
        raise InputError("facilities has no CRS; set one (EPSG:4326 expected)")
    fac = facilities.to_crs(WGS84) if not facilities.crs.equals(WGS84) else facilities.copy()
    for col in FACILITY_COLUMNS:
        if col not in fac.columns:
            fac[col] = np.nan if col == "capacity" else ""
    kind = np.where(fac["type"].isin(host_types), "host",
                    np.where(fac["type"].eq(EXISTING_TYPE), "existing", ""))
    fac = fac.loc[kind != "", list(FACILITY_COLUMNS)].copy()
    fac["candidate_kind"] = kind[kind != ""]
    parts = [fac]
    if user_points is not None and len(user_points):
        parts.append(_user_candidates(user_points, territory))
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else fac.reset_index(drop=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=WGS84)
    if not (out["candidate_kind"] != "existing").any():
        found = sorted(set(facilities["type"].astype(str))) if "type" in facilities else []
        raise InputError(
            f"no candidate site: none of the {len(facilities)} facilities has a type in "
            f"host_types={list(host_types)!r} (types found: {found}) and no user point was "
            "given; widen host_types or add user points"
        )
    return out


def _user_candidates(points: gpd.GeoDataFrame | gpd.GeoSeries,
                     territory: gpd.GeoDataFrame | gpd.GeoSeries | None) -> gpd.GeoDataFrame:
    if points.crs is None:
        raise InputError("user_points has no CRS; set one (EPSG:4326 for longitude/latitude)")
    if territory is None:
        raise InputError("user_points needs territory= (the territory polygon) to check "
                         "that each point lies inside it")
    if territory.crs is None:
        raise InputError("territory has no CRS; set one (EPSG:4326 expected)")
    gdf = points if isinstance(points, gpd.GeoDataFrame) else gpd.GeoDataFrame(geometry=points)
    geoms = gdf.geometry
    not_point = geoms.isna() | geoms.is_empty | (geoms.geom_type != "Point")
    if not_point.any():
        raise InputError(
            f"user_points rows {list(gdf.index[not_point.to_numpy()][:5])} are not points; "
            "give one point per proposed site"
        )
    area = territory.to_crs(METRIC_CRS).geometry.union_all()
    metric = geoms.to_crs(METRIC_CRS)
    outside = ~metric.apply(area.covers).to_numpy(dtype=bool)
    names = (gdf["name"].astype(str) if "name" in gdf.columns
             else pd.Series([USER_SITE_LABEL.format(n=i + 1) for i in range(len(gdf))],
                            index=gdf.index))
    if outside.any():
        rows = [f"row {i} ({names.iloc[i]!r}, {geoms.to_crs(WGS84).iloc[i].wkt})"
                for i in np.flatnonzero(outside)[:5]]
        raise InputError(
            f"user_points lie outside the territory polygon: {rows}; move them inside "
            "the territory or drop them"
        )
    n = len(gdf)
    data = {c: [""] * n for c in FACILITY_COLUMNS if c != "geometry"}
    data["facility_id"] = [USER_SITE_ID.format(n=i + 1) for i in range(n)]
    data["type"] = [USER_SITE_TYPE] * n
    data["name"] = names.tolist()
    data["source"] = ["user"] * n
    data["source_id"] = [str(i + 1) for i in range(n)]
    data["position_precision"] = ["address"] * n
    out = gpd.GeoDataFrame(data, geometry=list(geoms.to_crs(WGS84)), crs=WGS84)
    out["capacity"] = np.nan
    out["candidate_kind"] = "user"
    return out


