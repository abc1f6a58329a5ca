"""Tests of data_sources.qpv (QPV 2024 of the ANCT).

The answer is hand-made in the shape public client code reads from the ANCT's
data.gouv.fr dataset « Quartiers prioritaires de la politique de la ville (QPV) »
(``QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson``: ``code_qp``, ``lib_qp``,
``insee_com`` holding one code or several separated by ``, ``; a client's test fixture
``CONTOURS`` with ``{code_qp, lib_qp, insee_com}`` and a polygon in lon/lat); the codes
and communes are those of the shipped 2024 list (Saint-Nazaire, Nantes/Saint-Herblain),
the outlines invented.
"""

from __future__ import annotations

import doctest

import pytest
import responses

from data_sources import _http, qpv
from diagnosis.errors import SourceError
from diagnosis.schema import Territory

NANTES = Territory("commune", "44109", "Nantes", ("44109",), ("44",))
EPCI = Territory("epci", "200000438", "CC Pontchâteau", ("44129", "44161"), ("44",))

pytestmark = pytest.mark.usefixtures("http_sandbox")


def square(lon, lat, d=0.004):
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + d, lat], [lon + d, lat + d],
                                                [lon, lat + d], [lon, lat]]]}


def doc():
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": square(-2.22, 47.28),
         "properties": {"code_qp": "QN04401M", "lib_qp": "Quartier A", "insee_com": "44184"}},
        {"type": "Feature", "geometry": square(-1.62, 47.22),
         "properties": {"code_qp": "QN04405M", "lib_qp": "Quartier B",
                        "insee_com": "44109, 44162"}},
    ]}


def test_doctests():
    assert doctest.testmod(qpv).failed == 0


def test_parse_validate_and_cut_to_the_territory():
    gdf = qpv.validate_qpv(qpv.parse_qpv(doc()))
    assert list(gdf.columns) == list(qpv.QPV_COLUMNS) and gdf.crs.to_epsg() == 4326
    assert gdf.set_index("code_qp").loc["QN04405M", "communes"] == "44109,44162"
    assert qpv.clip_qpv(gdf, ["44162"])["code_qp"].tolist() == ["QN04405M"]
    assert qpv.clip_qpv(gdf, EPCI.communes).empty


def test_format_errors_are_named():
    with pytest.raises(SourceError, match="FeatureCollection"):
        qpv.parse_qpv({"type": "Feature"})
    bad = doc()
    del bad["features"][0]["properties"]["code_qp"]
    with pytest.raises(SourceError, match="lacks 'code_qp'"):
        qpv.parse_qpv(bad)
    dup = doc()
    dup["features"][1]["properties"]["code_qp"] = "QN04401M"
    with pytest.raises(SourceError, match="duplicate QPV codes"):
        qpv.validate_qpv(qpv.parse_qpv(dup))


@responses.activate
def test_load_reads_the_outlines():
    responses.get(qpv.QPV_URL, json=doc())
    got = qpv.load_qpv(NANTES)
    assert got.attrs["basis"] == "contours" and got["code_qp"].tolist() == ["QN04405M"]
    assert got.attrs["notes"] == []


@responses.activate
def test_maintenance_page_falls_back_to_the_shipped_list_or_fails():
    responses.get(qpv.QPV_URL, body="<html><body>Maintenance</body></html>",
                  content_type="text/html")
    got = qpv.load_qpv(NANTES)
    assert got.attrs["basis"] == "liste communale" and got.geometry.isna().all()
    assert "QN04405M" in set(got["code_qp"]) and len(got) == 12  # Nantes' 12 QPV
    assert "liste des QPV par commune" in got.attrs["notes"][0]
    with pytest.raises(SourceError):
        qpv.load_qpv(NANTES, fallback=False, refresh=True)


def test_offline_without_copy_uses_the_list():
    _http.configure(offline=True)
    got = qpv.load_qpv(EPCI)
    assert got.empty and got.attrs["basis"] == "liste communale"


def test_the_commune_list_reads_one_qpv_per_row_and_names_a_short_line(tmp_path):
    from data_sources.qpv import qpv_from_list

    listed = tmp_path / "qpv.csv"
    listed.write_text("insee_com;lib_com;code_qp;lib_qp\n44109;Nantes;QN04401M;Bellevue\n"
                      "44162;Saint-Herblain;QN04401M;Bellevue bis\n1053;Bourg;QN00101A;Croix\n",
                      encoding="utf-8")
    got = qpv_from_list(["44109", "44162", "01053"], path=listed)
    assert got["code_qp"].tolist() == ["QN00101A", "QN04401M"]
    assert got["communes"].tolist() == ["01053", "44109,44162"]  # the zero a sheet dropped
    assert got["lib_qp"].tolist() == ["Croix", "Bellevue"]  # the first name listed
    assert qpv_from_list(["35238"], path=listed).empty
    listed.write_text("insee_com;lib_com;code_qp;lib_qp\n44109;Nantes\n", encoding="utf-8")
    with pytest.raises(SourceError, match="line 2 has 2 fields"):
        qpv_from_list(["44109"], path=listed)
