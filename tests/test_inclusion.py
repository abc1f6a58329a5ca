"""Tests of data_sources.inclusion.

Payloads (tests/data/inclusion/) are hand-made pages in the shape of the data·inclusion API
v1 (``items``/``total``/``page``/``size``/``pages``, from ``api/utils/pagination.py``) with
structure fields of schema v1 (``id``, ``source``, ``nom``, ``date_maj``, ``code_insee``,
``adresse``, ``longitude``, ``latitude``, ``reseaux_porteurs``…) as published in the
gip-inclusion repositories; names and places are invented.

``structures_monenfant.json`` and ``services_garde_denfants.json`` follow the monenfant.fr
rows as data·inclusion builds them (gip-inclusion/data-inclusion
``pipeline/dbt/models/intermediate/sources/monenfant/int_monenfant__structures.sql``:
``source`` "monenfant", ``id`` "monenfant--<id>", ``reseaux_porteurs`` ["caf"],
``lien_source`` ``https://monenfant.fr/que-recherchez-vous/<name>/<type>/<id>``; services
``thematiques`` ["famille--garde-denfants"] from ``int_monenfant__services.sql``), hand-made.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from data_sources import _http, inclusion
from diagnosis.errors import InputError, SourceError
from diagnosis.schema import FACILITY_COLUMNS, Territory

DATA = Path(__file__).parent / "data" / "inclusion"
URL = f"{inclusion.BASE_URL}/structures"
SERVICES_URL = f"{inclusion.BASE_URL}/services"
EPCI = Territory("epci", "200000438", "CC du Pays de Pontchâteau St-Gildas-des-Bois",
                 ("44129", "44161"), ("44",))


def load(name):
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _token(http_sandbox, monkeypatch):
    monkeypatch.setenv(inclusion.TOKEN_ENV, "test-token")


def mock_ok():
    responses.get(URL, json=load("structures_page1.json"),
                  match=[matchers.query_param_matcher({"page": "1", "code_departement": "44"},
                                                      strict_match=False),
                         matchers.header_matcher({"Authorization": "Bearer test-token"})])
    responses.get(URL, json=load("structures_page2.json"),
                  match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)])


def test_doctests():
    assert doctest.testmod(inclusion).failed == 0


@responses.activate
def test_load_keeps_parenting_structures_of_the_area():
    mock_ok()
    gdf = inclusion.load_inclusion(EPCI)
    assert list(gdf.columns) == list(FACILITY_COLUMNS)
    got = dict(zip(gdf["source_id"], gdf["type"], strict=True))
    assert got == {"dora--1": "laep", "dora--2": "centre_social", "dora--4": "evs"}
    evs = gdf.set_index("source_id").loc["dora--4"]
    assert evs["position_precision"] == "commune"  # no address given
    assert evs["source_date"] == "2025-11-03" and evs["operator"] == "dora"
    unplaced = gdf.attrs["unplaced"]
    assert unplaced["source_id"].tolist() == ["dora--5"]  # AVIP crèche without coordinates
    assert unplaced["type"].tolist() == ["eaje"]


def test_token_is_required(monkeypatch):
    monkeypatch.delenv(inclusion.TOKEN_ENV)
    with pytest.raises(SourceError, match=r"needs an access token.*MAILLAGE_DATA_INCLUSION_TOKEN"):
        inclusion.load_inclusion(EPCI)


def test_changed_fields_are_named():
    items = [{"id": "x", "name": "LAEP", "lat": 47.0, "lon": -2.0, "code_insee": "44129"}]
    with pytest.raises(SourceError, match=r"lack fields \['nom', 'latitude', 'longitude'\]"):
        inclusion.parse_structures(items)


@responses.activate
def test_empty_result():
    responses.get(URL, json={"items": [], "total": 0, "page": 1, "size": 0, "pages": 0})
    gdf = inclusion.load_inclusion(EPCI)
    assert gdf.empty and list(gdf.columns) == list(FACILITY_COLUMNS)


@responses.activate
def test_faults():
    responses.get(URL, body=requests.exceptions.ReadTimeout("t"))
    with pytest.raises(SourceError, match=r"data_inclusion: no answer from .*structures"):
        inclusion.load_inclusion(EPCI)
    responses.replace(responses.GET, URL, status=401, body='{"detail":"Not authenticated"}')
    with pytest.raises(SourceError, match=r"HTTP 401 .*access token"):
        inclusion.load_inclusion(EPCI)
    responses.replace(responses.GET, URL, status=502)
    with pytest.raises(SourceError, match="HTTP 502"):
        inclusion.load_inclusion(EPCI)
    responses.replace(responses.GET, URL, body="<html>502 Bad Gateway</html>",
                      content_type="text/html")
    with pytest.raises(SourceError, match="HTML"):
        inclusion.load_inclusion(EPCI)


@responses.activate
def test_429_and_truncated_then_ok():
    responses.get(URL, status=429, headers={"Retry-After": "0"})
    responses.get(URL, body=json.dumps(load("structures_page1.json"))[:300],
                  content_type="application/json")
    mock_ok()
    assert len(inclusion.load_inclusion(EPCI)) == 3


@responses.activate
def test_offline_after_one_load(monkeypatch):
    mock_ok()
    inclusion.load_inclusion(EPCI)
    _http.configure(offline=True)
    monkeypatch.delenv(inclusion.TOKEN_ENV)  # offline: the cache needs no token
    assert len(inclusion.load_inclusion(EPCI)) == 3


@responses.activate
def test_monenfant_creches_become_eaje_and_mam():
    responses.get(URL, json=load("structures_monenfant.json"),
                  match=[matchers.query_param_matcher(
                      {"code_departement": "44", "page": "1", "size": "5000"})])
    responses.get(SERVICES_URL, json=load("services_garde_denfants.json"),
                  match=[matchers.query_param_matcher(
                      {"code_departement": "44", "thematiques": "famille--garde-denfants",
                       "page": "1", "size": "5000"}),
                         matchers.header_matcher({"Authorization": "Bearer test-token"})])
    gdf = inclusion.load_inclusion(EPCI).set_index("source_id")
    got = {k: (r["type"], r["subtype"]) for k, r in gdf.iterrows()}
    assert got == {
        "monenfant--120011": ("eaje", "micro_creche"),
        "monenfant--120012": ("mam", ""),
        "monenfant--120013": ("eaje", "multi_accueil"),
        "dora--7": ("eaje", ""),  # known as childcare by its service only
    }
    assert gdf.loc["monenfant--120013", "position_precision"] == "commune"  # no address
    assert gdf.loc["monenfant--120011", "position_precision"] == "address"
    assert gdf.attrs["notes"] == []
    assert "typologie" not in json.dumps(load("structures_monenfant.json"))


@responses.activate
def test_without_services_monenfant_rows_are_still_kept():
    responses.get(URL, json=load("structures_monenfant.json"))
    responses.get(SERVICES_URL, status=503)
    gdf = inclusion.load_inclusion(EPCI)
    assert set(gdf["source_id"]) == {"monenfant--120011", "monenfant--120012",
                                     "monenfant--120013"}
    assert "services de garde" in gdf.attrs["notes"][0]


def test_v0_typologie_is_not_read():
    assert inclusion.classify({"nom": "Association Les Amis", "typologie": "CS"}) is None


def test_page_size_is_bounded():
    with pytest.raises(InputError, match=r"page_size=20000"):
        inclusion.fetch_structures(dep_code="44", page_size=20000)


@pytest.mark.network
def test_live_inclusion():
    _http.reset()
    gdf = inclusion.load_inclusion(EPCI)
    assert gdf["type"].isin(["laep", "centre_social", "evs", "rpe", "pmi", "eaje", "mam",
                             "maison_1000_jours"]).all()
    assert (gdf["operator"] == "monenfant").any()
