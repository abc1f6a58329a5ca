"""Tests of data_sources.finess.

Payloads (tests/data/finess/):

- ``etalab-cs1100507-stock-sample.csv``: hand-written to the documented FINESS format (first
  line ``finess;etalab;…``, 32-field ``structureet`` lines, ``geolocalisation`` lines), after
  reading the format sample in ../shared/data/test-only/formats (not copied). Establishments
  and numbers are invented; the Lambert-93 / UTM 20N coordinates were computed with pyproj
  from the WGS84 points named in the tests (Pontchâteau town hall -2.0586, 47.4386;
  Saint-Gildas-des-Bois -2.0385, 47.5236; Basse-Terre -61.7261, 15.9958; Ajaccio 8.7369,
  41.9192).
- The commune-centroid variant (``test_admin_express_centroid_is_commune``) rewrites one
  geolocalisation source of the sample as ``1,ATLASANTE,.,ADMIN-EXPRESS-2023,EPSG:2154 …``,
  the form measured in the live file by mml-studio/surplomb ``src/data/amenitiesFeed.js``
  (score ``.``, geocoder ``ADMIN-EXPRESS-2023``).
- ``dataset.json``: hand-written data.gouv.fr dataset record (``resources`` with ``url``,
  ``title``, ``format``, ``last_modified``), shaped as the API answer.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest
import requests
import responses

from data_sources import _http, finess
from diagnosis.errors import SourceError
from diagnosis.schema import FACILITY_COLUMNS, Territory

DATA = Path(__file__).parent / "data" / "finess"
SAMPLE = (DATA / "etalab-cs1100507-stock-sample.csv").read_text(encoding="utf-8")
DATASET = json.loads((DATA / "dataset.json").read_text(encoding="utf-8"))
FILE_URL = DATASET["resources"][2]["url"]
EPCI = Territory("epci", "200000438", "CC du Pays de Pontchâteau St-Gildas-des-Bois",
                 ("44050", "44053", "44068", "44098", "44129", "44152", "44161", "44189",
                  "44196"), ("44",))


pytestmark = pytest.mark.usefixtures("http_sandbox")


def mock_ok(body: bytes | None = None):
    responses.get(finess.DATASET_API_URL, json=DATASET)
    responses.get(FILE_URL, body=body if body is not None else SAMPLE.encode("utf-8"),
                  content_type="text/csv")


def test_doctests():
    assert doctest.testmod(finess).failed == 0


def test_resolve_newest_geolocated_resource():
    url, stamp = finess.resolve_finess_url(DATASET)
    assert url.endswith("etalab-cs1100507-stock-20260512-0337.csv") and stamp == "20260512"


def test_resolve_fails_clearly_without_resource():
    with pytest.raises(SourceError, match="etalab-cs1100507"):
        finess.resolve_finess_url({"resources": [{"title": "x", "url": "https://a/b.zip"}]})


def test_parse_keeps_categories_and_counts_228():
    raw = finess.parse_finess(SAMPLE.splitlines())
    assert raw.extraction_date == "2026-05-12"
    assert raw.counts == {"223": 4, "228": 1, "230": 1}
    assert "440000045" not in raw.structures  # hospital (355) not kept


def test_build_facilities_places_and_converts():
    placed, unplaced = finess.build_finess_facilities(finess.parse_finess(SAMPLE.splitlines()))
    by_id = placed.set_index("source_id")
    assert set(by_id.index) == {"440000011", "440000029", "970000011", "2A0000011"}
    assert "440000037" not in by_id.index  # 228 not mapped
    pont = by_id.loc["440000011"]
    assert pont["code_insee"] == "44129" and pont["type"] == "pmi"
    assert pont.geometry.x == pytest.approx(-2.0586, abs=1e-5)
    assert pont.geometry.y == pytest.approx(47.4386, abs=1e-5)
    assert pont["position_precision"] == "address"
    assert pont["name"] == "PMI DE PONTCHÂTEAU - CENTRE MÉDICO-SOCIAL"
    assert pont["address"] == "12 R DES ÉCOLES" and pont["postcode"] == "44160"
    assert pont["source_date"] == "2024-03-15" and pont["phone"] == "0240000001"
    # score 62 -> street; legacy LAMBERT_93 token
    assert by_id.loc["440000029", "position_precision"] == "street"
    assert by_id.loc["440000029"].geometry.y == pytest.approx(47.5236, abs=1e-5)
    # overseas: 9A -> 971, UTM 20N
    bt = by_id.loc["970000011"]
    assert bt["code_insee"] == "97105"
    assert (bt.geometry.x, bt.geometry.y) == (pytest.approx(-61.7261, abs=1e-5),
                                              pytest.approx(15.9958, abs=1e-5))
    # Corsica, category 230, low score -> commune
    aj = by_id.loc["2A0000011"]
    assert aj["code_insee"] == "2A004" and aj["subtype"] == "consultation"
    assert aj["position_precision"] == "commune"
    # Herbignac has no geolocalisation line
    assert unplaced["source_id"].tolist() == ["440000052"]
    assert unplaced["code_insee"].tolist() == ["44072"]


def test_admin_express_centroid_is_commune():
    text = SAMPLE.replace(
        "440000011;318996.5;6716458.1;1,ATLASANTE,96,BAN,",
        "440000011;318996.5;6716458.1;1,ATLASANTE,.,ADMIN-EXPRESS-2023,")
    assert text != SAMPLE
    placed, _ = finess.build_finess_facilities(finess.parse_finess(text.splitlines()))
    row = placed.set_index("source_id").loc["440000011"]
    assert row["position_precision"] == "commune"
    assert row.geometry.x == pytest.approx(-2.0586, abs=1e-5)  # the point stays, labelled


@responses.activate
def test_load_finess_for_an_epci():
    mock_ok()
    gdf = finess.load_finess(EPCI)
    assert list(gdf.columns) == list(FACILITY_COLUMNS)
    assert sorted(gdf["source_id"]) == ["440000011", "440000029"]
    assert gdf.crs.to_epsg() == 4326
    assert gdf.attrs["excluded_counts"] == {"228": 1}
    assert gdf.attrs["extraction_date"] == "2026-05-12"
    assert (gdf["facility_id"] == "finess:" + gdf["source_id"]).all()


@responses.activate
def test_cp1252_file():
    mock_ok(SAMPLE.encode("cp1252"))
    gdf = finess.load_finess(EPCI)
    names = set(gdf["name"])
    assert "PMI DE PONTCHÂTEAU - CENTRE MÉDICO-SOCIAL" in names


@responses.activate
def test_offline_after_one_load():
    mock_ok()
    first = finess.load_finess(EPCI)
    _http.configure(offline=True)
    n_calls = len(responses.calls)
    again = finess.load_finess(EPCI)
    assert len(responses.calls) == n_calls
    assert sorted(again["source_id"]) == sorted(first["source_id"])


def test_offline_without_cache():
    _http.configure(offline=True)
    with pytest.raises(SourceError, match=r"finess: offline mode .*data.gouv.fr"):
        finess.load_finess(EPCI)


@responses.activate
def test_timeout():
    responses.get(finess.DATASET_API_URL, body=requests.exceptions.ConnectTimeout("t"))
    with pytest.raises(SourceError, match=r"finess: no answer from https://www.data.gouv.fr"):
        finess.load_finess(EPCI)


@responses.activate
def test_429_with_retry_after_then_ok():
    responses.get(finess.DATASET_API_URL, status=429, headers={"Retry-After": "0"})
    mock_ok()
    assert len(finess.load_finess(EPCI)) == 2


@responses.activate
def test_500():
    responses.get(finess.DATASET_API_URL, status=500)
    with pytest.raises(SourceError, match="finess: HTTP 500"):
        finess.load_finess(EPCI)


@responses.activate
def test_html_page_instead_of_dataset_json():
    responses.get(finess.DATASET_API_URL, body="<html><body>Erreur</body></html>",
                  content_type="text/html")
    with pytest.raises(SourceError, match=r"finess: .*data.gouv.fr.*HTML"):
        finess.load_finess(EPCI)


@responses.activate
def test_html_page_instead_of_file():
    responses.get(finess.DATASET_API_URL, json=DATASET)
    responses.get(FILE_URL, body="<!DOCTYPE html><html>502</html>", content_type="text/html")
    with pytest.raises(SourceError, match=r"finess: an HTML page .*etalab-cs1100507"):
        finess.load_finess(EPCI)


@responses.activate
def test_truncated_file_is_downloaded_again():
    cut = SAMPLE.encode("utf-8")[: SAMPLE.encode("utf-8").index(b"structureet;440000029") + 60]
    responses.get(finess.DATASET_API_URL, json=DATASET)
    responses.get(FILE_URL, body=cut, content_type="text/csv")
    responses.get(FILE_URL, body=SAMPLE.encode("utf-8"), content_type="text/csv")
    gdf = finess.load_finess(EPCI)
    assert len(gdf) == 2
    assert sum(c.request.url == FILE_URL for c in responses.calls) == 2


@responses.activate
def test_changed_format_names_expected_fields():
    changed = "\n".join(
        ";".join(line.split(";")[:20]) if line.startswith("structureet") else line
        for line in SAMPLE.splitlines()
    )
    mock_ok(changed.encode())
    responses.get(FILE_URL, body=changed.encode(), content_type="text/csv")
    with pytest.raises(SourceError, match=r"structureet line with 20 fields.*categetab"):
        finess.load_finess(EPCI)


@responses.activate
def test_empty_result():
    mock_ok(b"finess;etalab;111;2026-05-12\n")
    gdf = finess.load_finess(EPCI)
    assert gdf.empty and list(gdf.columns) == list(FACILITY_COLUMNS)
    assert gdf.attrs["excluded_counts"] == {"228": 0}


@pytest.mark.network
def test_live_finess_resolves_and_parses():
    _http.reset()
    url, stamp = finess.resolve_finess_url()
    assert "cs1100507" in url and len(stamp) == 8
    gdf = finess.load_finess(EPCI)
    assert (gdf["type"] == "pmi").all()
    assert set(gdf["position_precision"]) <= {"address", "street", "commune"}
