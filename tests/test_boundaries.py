"""Tests of data_sources.boundaries.

Payloads (tests/data/boundaries/), hand-made: commune squares of 0.02° placed near the real
communes, with the property names of each service —

- ``geoapi_epci_200000438.geojson``: geo.api.gouv.fr shape (``nom``, ``code``, ``codeEpci``,
  ``codeDepartement``), as documented on geo.api.gouv.fr/decoupage-administratif;
- ``wfs_communes_page1.json`` / ``page2``: GeoServer WFS GeoJSON pages (``numberMatched``,
  ``numberReturned``) with Admin Express 3.x names (``code_insee``, ``nom_officiel``,
  ``code_insee_du_departement``, ``codes_siren_des_epci``) and **latitude-first**
  coordinates, to test the paging of :func:`fetch_wfs` and the axis-order guard.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from data_sources import _http, boundaries
from diagnosis.errors import InputError, SourceError

DATA = Path(__file__).parent / "data" / "boundaries"
EPCI_URL = f"{boundaries.GEO_API_URL}/epcis/200000438/communes"


def load(name):
    return json.loads((DATA / name).read_text(encoding="utf-8"))


pytestmark = pytest.mark.usefixtures("http_sandbox")


def test_doctests():
    assert doctest.testmod(boundaries).failed == 0


@responses.activate
def test_load_communes_of_an_epci():
    responses.get(EPCI_URL, json=load("geoapi_epci_200000438.geojson"))
    gdf = boundaries.load_communes(epci_siren="200000438")
    assert list(gdf.columns) == list(boundaries.BOUNDARY_COLUMNS)
    assert gdf["code_insee"].tolist() == ["44129", "44161"]
    assert gdf["name"].tolist() == ["Pontchâteau", "Saint-Gildas-des-Bois"]
    assert set(gdf["epci_code"]) == {"200000438"} and set(gdf["dep_code"]) == {"44"}
    assert gdf.crs.to_epsg() == 4326
    assert gdf.geometry.iloc[0].bounds == pytest.approx((-2.07, 47.43, -2.05, 47.45))
    sent = responses.calls[0].request.url
    assert "geometry=contour" in sent and "format=geojson" in sent


@responses.activate
def test_load_communes_of_a_departement_sends_the_code():
    responses.get(f"{boundaries.GEO_API_URL}/communes",
                  json=load("geoapi_epci_200000438.geojson"),
                  match=[matchers.query_param_matcher({"codeDepartement": "44"},
                                                      strict_match=False)])
    assert len(boundaries.load_communes(dep_code="44")) == 2


def test_exactly_one_selector():
    with pytest.raises(InputError, match="exactly one"):
        boundaries.load_communes(dep_code="44", epci_siren="200000438")


@responses.activate
def test_wfs_paging_and_axis_order():
    dep = {"CQL_FILTER": "code_insee_du_departement='44'"}
    p1 = matchers.query_param_matcher({"STARTINDEX": "0", **dep}, strict_match=False)
    p2 = matchers.query_param_matcher({"STARTINDEX": "2", **dep}, strict_match=False)
    responses.get(boundaries.WFS_URL, json=load("wfs_communes_page1.json"), match=[p1])
    responses.get(boundaries.WFS_URL, json=load("wfs_communes_page2.json"), match=[p2])
    doc = boundaries.fetch_wfs("ADMINEXPRESS-COG-CARTO.LATEST:commune",
                               cql_filter="code_insee_du_departement='44'", page_size=2)
    gdf = boundaries.validate_boundaries(
        boundaries.parse_boundaries(doc, source=boundaries.IGN_WFS.key),
        source=boundaries.IGN_WFS.key, what="44")
    assert gdf["code_insee"].tolist() == ["44098", "44129", "44161"]
    assert set(gdf["epci_code"]) == {"200000438"}
    # latitude-first answer was swapped back to lon/lat
    assert gdf.geometry.iloc[1].bounds == pytest.approx((-2.07, 47.43, -2.05, 47.45))
    assert "CQL_FILTER=code_insee_du_departement%3D%2744%27" in responses.calls[0].request.url
    assert len(responses.calls) == 2


@responses.activate
def test_changed_properties_are_named():
    doc = load("geoapi_epci_200000438.geojson")
    for f in doc["features"]:
        f["properties"] = {"libelle": f["properties"]["nom"], "insee": f["properties"]["code"]}
    responses.get(EPCI_URL, json=doc)
    with pytest.raises(SourceError, match=r"lack properties .*code_insee.*name"):
        boundaries.load_communes(epci_siren="200000438")


@responses.activate
def test_empty_result():
    responses.get(EPCI_URL, json={"type": "FeatureCollection", "features": []})
    with pytest.raises(SourceError, match=r"no commune returned for epci_siren='200000438'"):
        boundaries.load_communes(epci_siren="200000438")


@responses.activate
def test_faults():
    responses.get(EPCI_URL, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(SourceError, match=r"geo_api_communes: no answer from .*200000438"):
        boundaries.load_communes(epci_siren="200000438")
    responses.replace(responses.GET, EPCI_URL, status=503)
    with pytest.raises(SourceError, match="HTTP 503"):
        boundaries.load_communes(epci_siren="200000438")
    responses.replace(responses.GET, EPCI_URL, body="<html>Bad gateway</html>",
                      content_type="text/html")
    with pytest.raises(SourceError, match="HTML"):
        boundaries.load_communes(epci_siren="200000438")


@responses.activate
def test_truncated_then_good_and_offline_after():
    text = json.dumps(load("geoapi_epci_200000438.geojson"))
    responses.get(EPCI_URL, body=text[:200], content_type="application/json")
    responses.get(EPCI_URL, body=text, content_type="application/json")
    assert len(boundaries.load_communes(epci_siren="200000438")) == 2
    _http.configure(offline=True)
    assert len(boundaries.load_communes(epci_siren="200000438")) == 2
    assert len(responses.calls) == 2


@responses.activate
def test_429_then_ok():
    responses.get(EPCI_URL, status=429, headers={"Retry-After": "0"})
    responses.get(EPCI_URL, json=load("geoapi_epci_200000438.geojson"))
    assert len(boundaries.load_communes(epci_siren="200000438")) == 2


@pytest.mark.network
def test_live_boundaries():
    _http.reset()
    gdf = boundaries.load_communes(epci_siren="200000438")
    assert len(gdf) == 9
