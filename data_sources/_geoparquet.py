"""Reading our GeoParquet files without rebuilding their coordinate system each time.

A GeoParquet file states its CRS as PROJJSON; ``geopandas.read_parquet`` hands it to
pyproj, which takes 20-40 ms to build a CRS from it, at every read (pyproj caches the CRS
of a code such as ``"EPSG:4326"``, not of a PROJJSON). The embedded demo and the national
geography are read by every command: for a file whose one geometry column is WKB and
whose CRS carries an EPSG identifier, :func:`read_geoparquet` builds the CRS from that
code and the frame as geopandas does; any other file is read by geopandas itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np


def read_geoparquet(path: str | Path, *, filters: Any = None) -> gpd.GeoDataFrame:
    """``geopandas.read_parquet(path, filters=filters)``, the same frame, faster.

    The CRS is built from the EPSG code the file's PROJJSON names (equal to the one
    geopandas builds, see ``tests/test_geoparquet.py``).
    """
    import pyarrow.parquet as pq

    table = pq.read_table(path, filters=filters)
    meta = json.loads((table.schema.metadata or {}).get(b"geo", b"{}"))
    columns = meta.get("columns") or {}
    name = meta.get("primary_column")
    info = columns.get(name) or {}
    crs = info.get("crs")
    ident = crs.get("id") if isinstance(crs, dict) else None
    if (len(columns) != 1 or name not in table.column_names or info.get("encoding") != "WKB"
            or not isinstance(ident, dict) or ident.get("authority") != "EPSG"):
        return gpd.read_parquet(path, filters=filters)
    # as geopandas: the other columns through pandas (its index metadata included), the
    # geometry inserted back at its place
    order = list(table.slice(0, 0).to_pandas().columns)
    frame = table.drop([name]).to_pandas()
    frame.insert(order.index(name), name,
                 gpd.array.from_wkb(np.array(table[name]), crs=f"EPSG:{int(ident['code'])}"))
    return gpd.GeoDataFrame(frame, geometry=name)
