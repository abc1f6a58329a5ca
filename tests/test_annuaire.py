"""Tests of data_sources.annuaire (annuaire de l'administration, service-public.fr).

``tests/data/annuaire/export_44.json`` is hand-made in the shape of an Opendatasoft v2.1
JSON export of the dataset ``api-lannuaire-administration`` as public code that calls it
reads it (fields ``id``, ``nom``, ``pivot`` with ``type_service_local``,
``code_insee_commune``, ``adresse`` with ``type_adresse``/``numero_voie``/``code_postal``/
``latitude``/``longitude`` as strings, ``telephone``/``site_internet`` lists of
``{"valeur": …}``, ``plage_ouverture`` with ``nom_jour_debut``/``valeur_heure_debut_1``…,
``date_modification`` "dd/mm/yyyy hh:mm:ss"); nested fields are given both as JSON inside
strings and as lists, since both forms are read by that code. Service-type codes
(``pmi``, ``caf``, ``mairie``, ``cg``…) are those listed by okfnfr/dada-france-authorities
``README.md``; today's code of France services is ``france_services`` (the record
``e51b-…``), as queried by recent client code (``pivot like "france_services"`` on
``/exports/json``), not ``msap``. Hosts: recent client code calls
``https://api-lannuaire.service-public.gouv.fr/api/explore/v2.1`` (``ANNUAIRE_BASE`` of a
public MCP server's ``rechercherServiceLocal``), older code the ``.fr`` host: both are
tried. Services and places are invented.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from data_sources import _http, annuaire
from data_sources.registry import SOURCES
from diagnosis.errors import SourceError
from diagnosis.schema import FACILITY_COLUMNS, Territory

DATA = Path(__file__).parent / "data" / "annuaire"
EPCI = Territory("epci", "200000438", "CC du Pays de Pontchâteau St-Gildas-des-Bois",
                 ("44129", "44161"), ("44",))
URL = ("https://api-lannuaire.service-public.gouv.fr/api/explore/v2.1/catalog/datasets/"
       "api-lannuaire-administration/exports/json")
OLD_URL = ("https://api-lannuaire.service-public.fr/api/explore/v2.1/catalog/datasets/"
           "api-lannuaire-administration/exports/json")


def export():
    return json.loads((DATA / "export_44.json").read_text(encoding="utf-8"))


pytestmark = pytest.mark.usefixtures("http_sandbox")


@pytest.fixture(autouse=True)
def _fresh_hosts():
    annuaire._answered.clear()
    yield
    annuaire._answered.clear()


def test_doctests():
    assert doctest.testmod(annuaire).failed == 0


def test_registered():
    assert SOURCES["annuaire"].url == URL
    assert "service-public.fr" in SOURCES["annuaire"].attribution


@responses.activate
def test_load_pmi_and_mairies_with_contacts():
    responses.get(URL, json=export(), match=[matchers.query_param_matcher(
        {"where": 'startswith(code_insee_commune,"44")'}, strict_match=False)])
    gdf = annuaire.load_annuaire(EPCI)
    assert list(gdf.columns) == list(FACILITY_COLUMNS)
    got = gdf.set_index("source_id")
    assert sorted(got.index) == ["a1f2-pmi-pontchateau-pmi", "c9d4-mairie-stgildas-mairie"]
    pmi = got.loc["a1f2-pmi-pontchateau-pmi"]
    assert pmi["type"] == "pmi" and pmi["code_insee"] == "44129"
    assert pmi["address"] == "12 rue des Écoles, Espace Jules Verne"
    assert pmi["phone"] == "02 40 00 00 11"
    assert pmi["email"] == "pmi.pontchateau@loire-atlantique.fr"
    assert pmi["website"] == "https://www.loire-atlantique.fr"
    assert pmi["position_precision"] == "address" and pmi["source_date"] == "2026-03-18"
    assert (pmi.geometry.x, pmi.geometry.y) == (-2.0586, 47.4386)
    mairie = got.loc["c9d4-mairie-stgildas-mairie"]
    # the physical address with a position, not the postal box
    assert mairie["address"] == "1 place de l'Église" and mairie.geometry.y == 47.5236
    assert mairie["email"] == "mairie@saint-gildas-des-bois.fr"
    # a PMI without a position is not placed anywhere
    assert gdf.attrs["unplaced"]["source_id"].tolist() == ["f3a7-pmi-stgildas-pmi"]
    assert gdf.attrs["vintage"] == "mise à jour jusqu'au 2026-03-18"


@responses.activate
def test_partners_hold_caf_offices_and_hours():
    responses.get(URL, json=export())
    partners = annuaire.load_annuaire_partners(EPCI)
    assert set(partners["service_type"]) == {"pmi", "caf", "mairie", "cg", "france_services"}
    assert "44109" not in set(partners["code_insee"])  # outside the territory
    assert "gendarmerie" not in set(partners["service_type"])
    caf = partners[partners["service_type"] == "caf"].iloc[0]
    assert caf["phone"] == "3230" and caf["email"] == ""
    assert caf["hours"] == "Mardi : 09h00-12h00"
    pmi = partners[partners["source_id"] == "a1f2-pmi-pontchateau"].iloc[0]
    assert pmi["hours"] == ("Lundi au Vendredi : 09h00-12h30, 13h30-17h00 "
                            "(Consultations sur rendez-vous)")
    both = partners[partners["source_id"] == "f3a7-pmi-stgildas"]
    assert sorted(both["service_type"]) == ["cg", "pmi"]


@responses.activate
def test_france_services_of_today_are_kept():
    responses.get(URL, json=export())
    partners = annuaire.load_annuaire_partners(EPCI)
    fs = partners[partners["service_type"] == "france_services"]
    assert fs["name"].tolist() == ["France services de Pontchâteau"]
    assert fs["service_label"].tolist() == ["France services"]
    assert fs["email"].tolist() == ["france-services@pontchateau.example"]


@responses.activate
def test_host_falls_back_then_is_remembered():
    responses.get(URL, body=requests.exceptions.ConnectionError("no such host"))
    responses.get(OLD_URL, json=export())
    gdf = annuaire.load_annuaire(EPCI)
    assert len(gdf) == 2
    assert [c.request.url.split("?")[0] for c in responses.calls][-1] == OLD_URL
    n = len(responses.calls)
    annuaire.fetch_annuaire("44", refresh=True)
    # the host that answered is asked first next time
    assert responses.calls[n].request.url.split("?")[0] == OLD_URL


@responses.activate
def test_maintenance_page_on_one_host_falls_back_to_the_other():
    responses.get(URL, body="<html>Maintenance</html>", content_type="text/html")
    responses.get(OLD_URL, json=export())
    assert len(annuaire.fetch_annuaire("44")) == len(export())


@responses.activate
def test_both_hosts_failing_names_both():
    responses.get(URL, status=503)
    responses.get(OLD_URL, status=503)
    with pytest.raises(SourceError) as err:
        annuaire.fetch_annuaire("44")
    assert "service-public.gouv.fr" in str(err.value) and "service-public.fr/" in str(
        err.value)


def test_record_without_name_is_named():
    bad = [{"id": "x", "pivot": [{"type_service_local": "pmi"}], "code_insee_commune": "44129"}]
    with pytest.raises(SourceError, match=r"lacks \['nom'\]"):
        annuaire.parse_partners(bad)


@responses.activate
def test_faults_and_html():
    responses.get(URL, body=requests.exceptions.ConnectTimeout("t"))
    with pytest.raises(SourceError, match=r"annuaire: no answer from .*api-lannuaire"):
        annuaire.load_annuaire(EPCI)
    responses.replace(responses.GET, URL, body="<html>maintenance</html>",
                      content_type="text/html")
    with pytest.raises(SourceError, match="HTML"):
        annuaire.load_annuaire(EPCI)
    responses.replace(responses.GET, URL, json={"error_code": "ODSQLError"})
    with pytest.raises(SourceError, match="JSON export"):
        annuaire.load_annuaire(EPCI)


def test_offline_without_cache():
    _http.configure(offline=True)
    with pytest.raises(SourceError, match=r"annuaire: offline mode"):
        annuaire.load_annuaire(EPCI)


@pytest.mark.network
def test_live_annuaire():
    _http.reset()
    gdf = annuaire.load_annuaire(EPCI)
    assert (gdf["type"] == "mairie").sum() >= 8
    partners = gdf.attrs["partners"]
    assert {"mairie"} <= set(partners["service_type"])
