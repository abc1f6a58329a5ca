"""Tests of data_sources.iris: IRIS contours (IGN WFS) and census population by IRIS.

Payloads in tests/data/iris/, hand-made in the real shapes (values invented):

- ``wfs_contours_iris_44.json``: a GeoServer WFS GeoJSON page of the layer
  ``STATISTICALUNITS.IRIS:contours_iris`` with its attributes ``cleabs``, ``code_insee``,
  ``nom_commune``, ``iris``, ``code_iris``, ``nom_iris``, ``type_iris`` (names checked in
  public code calling the Géoplateforme WFS, e.g. IRIS loaders filtering
  ``code_insee`` with CQL and reading ``properties.type_iris``);
- ``base-ic-evol-struct-pop-2021_extract.csv``: the header layout of INSEE's
  ``base-ic-evol-struct-pop-2021.CSV`` (``IRIS;REG;DEP;UU2020;COM;LIBCOM;TRIRIS;GRD_QUART;
  LIBIRIS;TYP_IRIS;MODIF_IRIS;LAB_IRIS;P21_POP;P21_POP0002;…``, as loaded by public
  projects into tables ``insee_iris_2021``; ``;``-separated with decimal points as read by
  gordesch/diag ``source/demographie.R`` with ``read_delim(delim = ";")``), plus one row
  with decimal commas to test the tolerant parser.
"""

from __future__ import annotations

import doctest
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import responses

from data_sources import _http, iris
from diagnosis.demand import compute_demand_points
from diagnosis.errors import InputError, SourceError

DATA = Path(__file__).parent / "data" / "iris"
CSV = DATA / "base-ic-evol-struct-pop-2021_extract.csv"


pytestmark = pytest.mark.usefixtures("http_sandbox")


def wfs_doc():
    return json.loads((DATA / "wfs_contours_iris_44.json").read_text(encoding="utf-8"))


def test_doctests():
    assert doctest.testmod(iris).failed == 0


def test_parse_contours():
    gdf = iris.validate_iris_contours(iris.parse_iris_contours(wfs_doc()), source="t")
    assert list(gdf.columns) == list(iris.CONTOUR_COLUMNS)
    assert gdf["code_iris"].tolist() == ["440010000", "441090101", "441090102", "441090103"]
    assert gdf["type_iris"].tolist() == ["Z", "H", "H", "A"]
    assert gdf.crs.to_epsg() == 4326 and gdf.geom_type.eq("Polygon").all()


def test_contours_validation_names_the_bad_rows():
    doc = wfs_doc()
    doc["features"][1]["properties"]["code_iris"] = "4410901"
    with pytest.raises(SourceError, match="'4410901'"):
        iris.validate_iris_contours(iris.parse_iris_contours(doc), source="wfs")
    doc = wfs_doc()
    doc["features"][1]["properties"]["code_insee"] = "44110"
    with pytest.raises(SourceError, match="does not start"):
        iris.validate_iris_contours(iris.parse_iris_contours(doc), source="wfs")
    doc = wfs_doc()
    doc["features"].append(doc["features"][0])
    with pytest.raises(SourceError, match="duplicate IRIS"):
        iris.validate_iris_contours(iris.parse_iris_contours(doc), source="wfs")


def test_parse_census_reads_both_decimal_marks_and_filters_the_departement():
    df = iris.parse_iris_census(CSV.read_text(encoding="utf-8"), dep_code="44")
    assert list(df.columns) == list(iris.CENSUS_COLUMNS)
    assert len(df) == 5 and not df["code_iris"].str.startswith("35").any()
    row = df.set_index("code_iris").loc["441090102"]
    assert (row["population"], row["pop_0_2"], row["census_year"]) == (3120.5, 90.75, 2021)
    assert df["code_insee"].tolist() == ["44109"] * 4 + ["44001"]
    iris.validate_iris_census(df, file="extract")


def test_census_of_another_year_is_read_from_the_header():
    t = "IRIS;COM;P22_POP;P22_POP0002\n441090101;44109;100;5\n"
    assert iris.parse_iris_census(t).loc[0, "census_year"] == 2022


@pytest.mark.parametrize(("text", "match"), [
    ("CODGEO;P21_POP\n44109;12\n", "expected the columns IRIS"),
    ("IRIS;P21_POP\n441090101;12\n", "P21_POP0002"),
    ("IRIS;COM;P21_POP;P21_POP0002\n441090101;44109;12;abc\n", r"line 2, column 'P21_POP0002'"),
])
def test_census_format_errors_are_named(text, match):
    with pytest.raises(SourceError, match=match):
        iris.parse_iris_census(text, file="pop.csv")


def test_census_secret_stays_unknown_and_checks_values():
    t = "IRIS;COM;P21_POP;P21_POP0002\n441090101;44109;s;\n441090102;44109;10;20\n"
    df = iris.parse_iris_census(t)
    assert df["population"].isna().iloc[0] and df["pop_0_2"].isna().iloc[0]
    with pytest.raises(SourceError, match="more children aged 0-2 than inhabitants"):
        iris.validate_iris_census(df, file="pop.csv")


def test_census_from_a_zip(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("base-ic-evol-struct-pop-2021.CSV", CSV.read_bytes())
    text = iris.read_census_bytes(buf.getvalue(), file="x.zip")
    assert text.startswith("IRIS;REG")
    with pytest.raises(SourceError, match="damaged zip"):
        iris.read_census_bytes(b"PK\x03\x04broken", file="x.zip")


@responses.activate
def test_load_joins_contours_and_census_and_feeds_demand(tmp_path):
    responses.get(iris.WFS_URL, json=wfs_doc())
    gdf = iris.load_iris_population("44", census_path=CSV)
    assert list(gdf.columns) == list(iris.IRIS_COLUMNS)
    sent = responses.calls[0].request.url
    assert "STATISTICALUNITS.IRIS%3Acontours_iris" in sent and "code_insee+LIKE" in sent
    by = gdf.set_index("code_iris")
    assert by.loc["441090101", "pop_0_2"] == pytest.approx(61.2543)
    # 441090104 is in the census but not in the contours: said, not invented
    assert any("absents des contours" in n for n in gdf.attrs["notes"])
    # the joined table is what diagnosis.demand reads
    import geopandas as gpd
    communes = gpd.GeoDataFrame(
        {"code_insee": ["44109", "44001"], "births_2024": [100.0, 20.0],
         "population_2022": [9000.0, 2100.0]},
        geometry=gpd.points_from_xy([-1.56, -1.64], [47.21, 47.22]), crs="EPSG:4326")
    d = compute_demand_points(communes, iris=gdf)
    city = d.points[d.points["code_insee"] == "44109"]
    assert city["level"].eq("iris").all() and len(city) == 3
    assert city["births"].sum() == pytest.approx(100.0)


@responses.activate
def test_unmatched_contour_keeps_an_unknown_population(tmp_path):
    doc = wfs_doc()
    doc["features"][2]["properties"]["code_iris"] = "441090199"
    responses.get(iris.WFS_URL, json=doc)
    gdf = iris.load_iris_population("44", census_path=CSV)
    row = gdf.set_index("code_iris").loc["441090199"]
    assert np.isnan(row["population"]) and np.isnan(row["pop_0_2"])
    assert any("sans population connue" in n for n in gdf.attrs["notes"])


def test_user_contours_file(tmp_path):
    import geopandas as gpd

    src = iris.parse_iris_contours(wfs_doc()).rename(
        columns={"code_iris": "CODE_IRIS", "code_insee": "INSEE_COM", "nom_iris": "NOM_IRIS",
                 "type_iris": "TYP_IRIS"}).to_crs("EPSG:2154")
    path = tmp_path / "iris.gpkg"
    gpd.GeoDataFrame(src, geometry="geometry").to_file(path)
    gdf = iris.load_iris_population("44", contours_path=path, census_path=CSV)
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == 4
    assert gdf.set_index("code_iris").loc["440010000", "population"] == 2100.0


def test_bad_arguments():
    with pytest.raises(InputError, match="dep_code='4 OR 1=1'"):
        iris.fetch_iris_contours("4 OR 1=1")
    with pytest.raises(InputError, match="not a file"):
        iris.read_iris_contours_file("/nonexistent/iris.gpkg")


@responses.activate
def test_census_download_failure_is_a_source_error():
    responses.get(iris.CENSUS_URL, status=503)
    with pytest.raises(SourceError, match="insee_rp_iris_population"):
        iris.fetch_iris_census()


@pytest.mark.network
def test_live_iris_layer_has_the_expected_attributes():
    _http.reset()
    doc = iris.fetch_iris_contours("44")
    props = doc["features"][0]["properties"]
    assert {"code_iris", "code_insee", "nom_iris", "type_iris"} <= set(props)
    gdf = iris.validate_iris_contours(iris.parse_iris_contours(doc), source="live")
    assert gdf["code_insee"].eq("44109").sum() > 50  # Nantes is split into many IRIS


@pytest.mark.network
def test_live_census_base_has_the_expected_columns():
    _http.reset()
    text = iris.read_census_bytes(iris.fetch_iris_census().read_bytes(), file="live")
    df = iris.validate_iris_census(iris.parse_iris_census(text, dep_code="44"), file="live")
    assert df["census_year"].iloc[0] == 2021 and df["pop_0_2"].notna().mean() > 0.9
