"""Our GeoParquet reader (data_sources._geoparquet): the frame geopandas reads, the same
columns, values, index and coordinate system, on every GeoParquet file the package ships
and on files written by geopandas (an index kept, a filter, a CRS without EPSG code, two
geometry columns), which the reader hands back to geopandas when it cannot take them.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import Point

from data_sources._geoparquet import read_geoparquet

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
