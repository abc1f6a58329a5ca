"""Tests of data_sources.filosofi: INSEE Filosofi 2019 cells on the 200 m grid.

Payload ``tests/data/filosofi/carreaux_200m_extract.csv``: six hand-made cells near Nantes
(values invented) with the real header of the 2019 CSV edition (``idcar_200m,idcar_1km,
idcar_nat,i_est_200,i_est_1km,lcog_geo,ind,men,men_pauv,…,ind_0_3,…,ind_inc``, as
loaded by public projects with ``COPY … DELIMITER ',' CSV HEADER ENCODING 'LATIN1'``), ids
``CRS3035RES200mN{y}E{x}`` (EPSG:3035, south-west corner) and one cell whose
``lcog_geo`` names two communes. The archive layout (a zip holding one ``.7z`` with
``carreaux_200m_met.gpkg`` …) is the one public loaders of
``Filosofi2019_carreaux_200m_gpkg.zip`` extract with ``py7zr`` (public code found by
exact-string search on ``Filosofi2019_carreaux_200m`` and ``idcar_1km,idcar_nat,i_est_200``;
the index named no repository).
"""

from __future__ import annotations

import doctest
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import responses
from shapely.geometry import box

from data_sources import _http, filosofi
from diagnosis.demand import compute_demand_points
from diagnosis.errors import InputError, SourceError

CSV = Path(__file__).parent / "data" / "filosofi" / "carreaux_200m_extract.csv"


pytestmark = pytest.mark.usefixtures("http_sandbox")


@pytest.fixture()
def area():
    # two communes splitting the six cells: 44109 west (x < 3449400), 44143 east
    west = box(3449000 - 1000, 2746000 - 1000, 3449400, 2746400 + 1000)
    east = box(3449400, 2746000 - 1000, 3449400 + 1000, 2746400 + 1000)
    return gpd.GeoDataFrame({"code_insee": ["44109", "44143"],
                             "births_2024": [50.0, 10.0], "population_2022": [1500.0, 200.0]},
                            geometry=[west, east], crs="EPSG:3035").to_crs("EPSG:4326")


def test_doctests():
    assert doctest.testmod(filosofi).failed == 0


def test_parse_the_csv_edition():
    raw = filosofi._read_csv_bytes(CSV.read_bytes(), file=CSV.name)
    cells = filosofi.validate_filosofi(filosofi.parse_filosofi(raw), file=CSV.name)
    assert list(cells.columns) == list(filosofi.FILOSOFI_COLUMNS)
    assert len(cells) == 6 and cells.crs.to_epsg() == 4326
    assert cells["code_insee"].tolist() == ["44109"] * 4 + ["", "44143"]
    assert cells["lcog_geo"].iloc[4] == "4410944143"
    assert cells["ind_0_3"].tolist() == [30.0, 25.5, 2.0, 41.0, 6.0, 7.5]
    # squares rebuilt from the ids: 200 m sides in EPSG:3035
    back = cells.geometry.to_crs("EPSG:3035").iloc[0].bounds
    assert back == pytest.approx((3449000, 2746000, 3449200, 2746200), abs=0.01)


def test_cell_ids_are_checked():
    with pytest.raises(SourceError, match="not of the form"):
        filosofi.cell_squares(["N2746000E3449000"])
    with pytest.raises(SourceError, match="mix several CRS"):
        filosofi.cell_squares(["CRS3035RES200mN1E1", "CRS5490RES200mN1E1"])


@pytest.mark.parametrize(("change", "match"), [
    (lambda d: d.drop(columns="ind_0_3"), r"\['ind_0_3'\] are missing"),
    (lambda d: d.assign(ind=d["ind"].where(d.index != 2, "abc")), r"row 2, column 'ind'"),
    (lambda d: d.assign(men_pauv=d["men_pauv"].where(d.index != 1, "-3")), "negative men_pauv"),
    (lambda d: d.assign(ind_0_3=d["ind_0_3"].where(d.index != 0, "999")), "more children"),
    (lambda d: pd.concat([d, d.iloc[[0]]], ignore_index=True), "duplicate cells"),
])
def test_format_errors_name_the_column_or_cell(change, match):
    raw = change(filosofi._read_csv_bytes(CSV.read_bytes(), file="f.csv"))
    with pytest.raises(SourceError, match=match):
        filosofi.validate_filosofi(filosofi.parse_filosofi(raw, file="f.csv"), file="f.csv")


def test_upper_case_columns_are_accepted():
    raw = filosofi._read_csv_bytes(CSV.read_bytes(), file="f.csv")
    raw.columns = [c.upper() for c in raw.columns]
    assert len(filosofi.parse_filosofi(raw)) == 6


def test_load_from_a_csv_clips_to_the_territory(area):
    cells = filosofi.load_filosofi(area.iloc[[0]], path=CSV)
    # the three western cells of each row (the straddling cell's centre is at x=3449300)
    assert len(cells) == 4
    assert set(cells["idcar_200m"].str[-7:]) == {"3449000", "3449200"}


def test_load_from_a_geopackage_with_a_spatial_filter(tmp_path, area):
    raw = filosofi._read_csv_bytes(CSV.read_bytes(), file="f.csv")
    gpkg = tmp_path / "carreaux_200m_met.gpkg"
    g = gpd.GeoDataFrame(raw.astype({c: float for c in filosofi.COUNT_COLUMNS}),
                         geometry=filosofi.cell_squares(raw["idcar_200m"]).to_numpy(),
                         crs="EPSG:3035")
    g.to_file(gpkg, layer="carreaux_200m_met")
    cells = filosofi.load_filosofi(area, path=gpkg)
    assert len(cells) == 6 and cells["ind"].sum() == pytest.approx(1657.5)
    far = gpd.GeoDataFrame(geometry=[box(4_000_000, 3_000_000, 4_001_000, 3_001_000)],
                           crs="EPSG:3035")
    with pytest.raises(SourceError, match="no 200 m cell in the territory"):
        filosofi.load_filosofi(far, path=gpkg)


def test_zip_of_a_csv_and_archive_members(tmp_path, area, monkeypatch):
    z = tmp_path / "user.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("carreaux_200m_met.csv", CSV.read_bytes())
    assert len(filosofi.load_filosofi(area, path=z)) == 6
    # the national archive holds a .7z: without py7zr the error says how to install it
    nat = tmp_path / "Filosofi2019_carreaux_200m_gpkg.zip"
    with zipfile.ZipFile(nat, "w") as zf:
        zf.writestr("Filosofi2019_carreaux_200m_gpkg.7z", b"7z\xbc\xaf\x27\x1c")
    monkeypatch.setitem(sys.modules, "py7zr", None)
    with pytest.raises(ImportError, match="pip install py7zr"):
        filosofi.extract_filosofi_gpkg(nat)
    with pytest.raises(InputError, match="territory='guy'"):
        filosofi.extract_filosofi_gpkg(nat, territory="guy")


def test_cells_feed_demand_and_the_straddling_cell_goes_by_its_centre(area):
    cells = filosofi.load_filosofi(area, path=CSV)
    d = compute_demand_points(area, grid=cells)
    assert d.level == "carreau"
    pts = d.points.set_index("unit_code")
    straddling = cells.loc[cells["code_insee"] == "", "idcar_200m"].iloc[0]
    assert pts.loc[straddling, "code_insee"] == "44109"  # centre x = 3449300 < 3449400
    sums = d.by_commune()
    np.testing.assert_allclose(sums["births"], [50.0, 10.0])
    # lcog_geo names 44109 for the third cell although its centre is east: the file's
    # commune is kept; 44109's 50 births go by ind_0_3 30 : 25.5 : 2 : 41 : 6
    west = d.points[d.points["code_insee"] == "44109"].set_index("unit_code")["births"]
    assert len(west) == 5 and west.sum() == pytest.approx(50.0)
    assert west.max() == pytest.approx(50 * 41 / 104.5)


@responses.activate
def test_download_goes_through_the_cache(tmp_path):
    responses.get(filosofi.FILOSOFI_URL, body=b"PK\x03\x04zip-bytes")
    path = filosofi.fetch_filosofi()
    assert path.read_bytes() == b"PK\x03\x04zip-bytes"
    assert filosofi.fetch_filosofi() == path and len(responses.calls) == 1


@responses.activate
def test_download_failure_is_a_source_error():
    responses.get(filosofi.FILOSOFI_URL, status=500)
    with pytest.raises(SourceError, match="insee_filosofi_2019_200m"):
        filosofi.fetch_filosofi()


def test_missing_file_is_named():
    with pytest.raises(InputError, match="is not a file"):
        filosofi.read_filosofi_file("/nonexistent/carreaux.gpkg")


def test_archive_holding_the_geopackage_directly_needs_no_py7zr(tmp_path, area, monkeypatch):
    raw = filosofi._read_csv_bytes(CSV.read_bytes(), file="f.csv")
    gpkg = tmp_path / "carreaux_200m_met.gpkg"
    gpd.GeoDataFrame(raw.astype({c: float for c in filosofi.COUNT_COLUMNS}),
                     geometry=filosofi.cell_squares(raw["idcar_200m"]).to_numpy(),
                     crs="EPSG:3035").to_file(gpkg)
    nat = tmp_path / "national.zip"
    with zipfile.ZipFile(nat, "w") as zf:
        zf.write(gpkg, "carreaux_200m_met.gpkg")
    monkeypatch.setitem(sys.modules, "py7zr", None)
    out = filosofi.extract_filosofi_gpkg(nat)
    assert out.name == "national-carreaux_200m_met.gpkg"
    assert len(filosofi.load_filosofi(area, path=out)) == 6
    # a second call reuses the extracted file
    assert filosofi.extract_filosofi_gpkg(nat) == out


def test_national_archive_layout_zip_holding_a_7z(tmp_path, area):
    py7zr = pytest.importorskip("py7zr", reason="py7zr (optional) reads the .7z inside "
                                                "INSEE's zip")
    raw = filosofi._read_csv_bytes(CSV.read_bytes(), file="f.csv")
    folder = tmp_path / "src"
    folder.mkdir()
    for name in ("carreaux_200m_met.gpkg", "carreaux_200m_reun.gpkg"):
        gpd.GeoDataFrame(raw.astype({c: float for c in filosofi.COUNT_COLUMNS}),
                         geometry=filosofi.cell_squares(raw["idcar_200m"]).to_numpy(),
                         crs="EPSG:3035").to_file(folder / name)
    seven = tmp_path / "Filosofi2019_carreaux_200m_gpkg.7z"
    with py7zr.SevenZipFile(seven, "w") as sz:
        for name in ("carreaux_200m_met.gpkg", "carreaux_200m_reun.gpkg"):
            sz.write(folder / name, name)
    nat = tmp_path / "Filosofi2019_carreaux_200m_gpkg.zip"
    with zipfile.ZipFile(nat, "w") as zf:
        zf.write(seven, seven.name)
    out = filosofi.extract_filosofi_gpkg(nat)
    assert out.is_file() and len(filosofi.load_filosofi(area, path=out)) == 6
    with pytest.raises(SourceError, match="no carreaux_200m_mart.gpkg"):
        filosofi.extract_filosofi_gpkg(nat, territory="mart")


@pytest.mark.network
def test_live_archive_holds_the_expected_geopackage(area):
    pytest.importorskip("py7zr", reason="py7zr (optional) reads the .7z inside INSEE's zip")
    _http.reset()
    cells = filosofi.load_filosofi(area)
    assert len(cells) > 0 and cells["ind_0_3"].notna().all()
