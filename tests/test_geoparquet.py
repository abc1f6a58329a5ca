"""Our (Geo)Parquet readers (data_sources._geoparquet): the frame geopandas reads, the same
columns, values, index and coordinate system, on every GeoParquet file the package ships
and on files written by geopandas (an index kept, a filter, a CRS without EPSG code, two
geometry columns), which the reader hands back to geopandas when it cannot take them; and
the frame pandas reads from every Parquet file the package ships, whole or by columns.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import Point

from data_sources._geoparquet import read_geoparquet, read_parquet_frame

PACKAGE = Path(__file__).resolve().parents[1] / "data_sources"


def _geo_files() -> list[Path]:
    import pyarrow.parquet as pq

    return [p for p in sorted(PACKAGE.rglob("*.parquet"))
            if b"geo" in (pq.read_schema(p).metadata or {})]


@pytest.mark.parametrize("path", _geo_files(), ids=lambda p: p.name)
def test_shipped_files_read_as_geopandas_reads_them(path):
    ours, theirs = read_geoparquet(path), gpd.read_parquet(path)
    assert_geodataframe_equal(ours, theirs, check_crs=True)
    assert ours.crs == theirs.crs and ours.crs.to_epsg() == theirs.crs.to_epsg()


def test_the_demo_and_france_are_among_them():
    names = {p.name for p in _geo_files()}
    assert {"communes_44.parquet", "facilities_44.parquet"} <= names
    assert any(n.startswith("communes") and n != "communes_44.parquet" for n in names)


def test_filters_index_and_other_crs_as_geopandas(tmp_path):
    gdf = gpd.GeoDataFrame({"code": ["44109", "44001", "35238"], "n": [1, 2, 3]},
                           geometry=[Point(-1.55, 47.2), Point(-1.0, 47.3), Point(-1.7, 48.1)],
                           crs="EPSG:4326", index=[10, 20, 30])
    kept = tmp_path / "kept.parquet"
    gdf.to_parquet(kept)  # the index kept (pandas metadata)
    for filters in (None, [("code", "in", ["44109", "35238"])]):
        assert_geodataframe_equal(read_geoparquet(kept, filters=filters),
                                  gpd.read_parquet(kept, filters=filters))
    metric = tmp_path / "metric.parquet"
    gdf.to_crs("EPSG:2154").to_parquet(metric)
    assert_geodataframe_equal(read_geoparquet(metric), gpd.read_parquet(metric))
    custom = tmp_path / "custom.parquet"  # a CRS without EPSG code: geopandas reads it
    gdf.to_crs("+proj=laea +lat_0=47 +lon_0=-1 +datum=WGS84").to_parquet(custom)
    assert_geodataframe_equal(read_geoparquet(custom), gpd.read_parquet(custom))
    two = tmp_path / "two.parquet"  # two geometry columns: geopandas reads it
    gdf.assign(centre=gdf.geometry).to_parquet(two)
    assert_geodataframe_equal(read_geoparquet(two), gpd.read_parquet(two))


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.parquet")), ids=lambda p: p.name)
def test_shipped_files_read_as_pandas_reads_them(path):
    import pyarrow.parquet as pq

    pd.testing.assert_frame_equal(read_parquet_frame(path), pd.read_parquet(path))
    first = [pq.read_schema(path).names[0]]
    pd.testing.assert_frame_equal(read_parquet_frame(path, columns=first),
                                  pd.read_parquet(path, columns=first))


def test_frame_keeps_the_index_pandas_wrote(tmp_path):
    df = pd.DataFrame({"code": ["44109", "2A004", None], "n": [1.5, None, 3.0]},
                      index=pd.Index(["a", "b", "c"], name="key"))
    path = tmp_path / "indexed.parquet"
    df.to_parquet(path)
    pd.testing.assert_frame_equal(read_parquet_frame(path), pd.read_parquet(path))
    pd.testing.assert_frame_equal(read_parquet_frame(path), df)
    pd.testing.assert_frame_equal(read_parquet_frame(path, columns=["n"]),
                                  pd.read_parquet(path, columns=["n"]))
