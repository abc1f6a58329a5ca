"""Reading our (Geo)Parquet files without rebuilding their coordinate system each time.

A GeoParquet file states its CRS as PROJJSON; ``geopandas.read_parquet`` hands it to
pyproj, which takes 20-40 ms to build a CRS from it, at every read (pyproj caches the CRS
of a code such as ``"EPSG:4326"``, not of a PROJJSON). The embedded demo and the national
geography are read by every command: for a file whose one geometry column is WKB and
whose CRS carries an EPSG identifier, :func:`read_geoparquet` builds the CRS from that
code and the frame as geopandas does; any other file is read by geopandas itself.

A whole file (no row filter) is read through ``pyarrow.parquet.ParquetFile``:
``pandas.read_parquet`` and ``pyarrow.parquet.read_table`` go through ``pyarrow.dataset``,
whose import (file systems, Acero, Substrait: 10-15 ms) every command paid for reading a
few small tables (:func:`read_parquet_frame`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


#: Files larger than this are decoded by Arrow's thread pool (the national geography).
_THREADS_FROM_BYTES = 2_000_000


def _read_table(path: str | Path, *, filters: Any = None,
                columns: list[str] | None = None) -> pa.Table:
    """The file's table (with the pandas index columns its metadata names), as pandas reads it."""
    import pyarrow.parquet as pq

    if filters is not None:
        return pq.read_table(path, filters=filters, columns=columns)
    # Arrow's thread pool pays off on large files only: its start at a process's first
    # read costs more than decoding one of the demo's tables on one thread
    threads = Path(path).stat().st_size > _THREADS_FROM_BYTES
    return pq.ParquetFile(path).read(columns=columns, use_pandas_metadata=True,
                                     use_threads=threads)


def read_parquet_frame(path: str | Path, *, columns: list[str] | None = None) -> pd.DataFrame:
    """``pandas.read_parquet(path, columns=columns)``: the same frame, without ``pyarrow.dataset``.

    Tested equal on every Parquet file the package ships (``tests/test_geoparquet.py``).
    """
    frame: pd.DataFrame = _read_table(path, columns=columns).to_pandas()
    return frame


def read_geoparquet(path: str | Path, *, filters: Any = None) -> gpd.GeoDataFrame:
    """``geopandas.read_parquet(path, filters=filters)``, the same frame, faster.

    The CRS is built from the EPSG code the file's PROJJSON names (equal to the one
    geopandas builds, see ``tests/test_geoparquet.py``).
    """
    table = _read_table(path, filters=filters)
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
