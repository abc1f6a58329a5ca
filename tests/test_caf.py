"""Tests of data_sources.caf.

Payloads (tests/data/caf/) are hand-made in the Opendatasoft Explore v2.1 ``records`` shape
(``total_count`` + ``results``) with the field names of the CNAF datasets (``annee``,
``numcom``/``nomcom``/``txcouv_com``, ``numepci``/``nomepci``/``txcouv_epci``, ``numdep``) as
read by stored third-party code; rates are invented, the ``XX`` placeholder row mirrors the
one that code documents. The commune dataset is split on two pages (page size forced to 2
in the test) to exercise ``limit``/``offset`` paging. ``*_hist.json`` are the ``_hist`` twin
datasets of earlier years (the ``txcouv_pe_dep`` / ``txcouv_pe_dep_hist`` pair appears in
stored third-party R code), with ``annee`` as a string, an integer and a float; one
history row repeats a current year with another value (the current one must win).
``txcouv_pe_com_75_partial.json``: Paris as the commune dataset lists it, by municipal
arrondissement (``numcom`` 75101…, four of the twenty, invented rates), with no row for
the commune 75056 (the CNAF publishes communes of 10,000+ inhabitants; the arrondissements
are the units of Paris, Lyon and Marseille in INSEE's geography).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import requests
import responses
from responses import matchers

from data_sources import _http, caf
from diagnosis.errors import SourceError
from diagnosis.schema import Territory

DATA = Path(__file__).parent / "data" / "caf"
COM_URL = f"{caf.BASE_URL}/txcouv_pe_com/records"
EPCI_URL = f"{caf.BASE_URL}/txcouv_pe_epci/records"
EPCI = Territory("epci", "200000438", "CC du Pays de Pontchâteau St-Gildas-des-Bois",
                 ("44129", "44161"), ("44",))


def load(name):
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _small_pages(http_sandbox, monkeypatch):
    monkeypatch.setattr(caf, "PAGE_LIMIT", 2)


def mock_ok():
    responses.get(COM_URL, json=load("txcouv_pe_com_page1.json"),
                  match=[matchers.query_param_matcher({"offset": "0"}, strict_match=False)])
    responses.get(COM_URL, json=load("txcouv_pe_com_page2.json"),
                  match=[matchers.query_param_matcher({"offset": "2"}, strict_match=False)])
    responses.get(EPCI_URL, json=load("txcouv_pe_epci.json"))


@responses.activate
def test_history_datasets_bring_earlier_years():
    mock_ok()
    responses.get(f"{caf.BASE_URL}/txcouv_pe_com_hist/records",
                  json=load("txcouv_pe_com_hist.json"))
    responses.get(f"{caf.BASE_URL}/txcouv_pe_epci_hist/records",
                  json=load("txcouv_pe_epci_hist.json"))
    df = caf.load_coverage(EPCI)
    com = df[(df["level"] == "commune") & (df["code"] == "44129")]
    assert com["year"].tolist() == [2020, 2021, 2022, 2023]
    rates = com.set_index("year")["rate"].to_dict()
    assert (rates[2020], rates[2021], rates[2022]) == (53.0, 55.1, 58.3)
    epci = df[df["level"] == "epci"]
    assert {2019, 2020} <= set(epci["year"])
    assert df.attrs["notes"] == []


@responses.activate
def test_history_failure_keeps_current_years():
    mock_ok()
    responses.get(f"{caf.BASE_URL}/txcouv_pe_com_hist/records", status=404)
    responses.get(f"{caf.BASE_URL}/txcouv_pe_epci_hist/records", status=404)
    df = caf.load_coverage(EPCI)
    assert 2022 in set(df["year"]) and len(df.attrs["notes"]) == 2


def test_year_as_number_or_string():
    recs = [{"annee": v, "numcom": 44129, "nomcom": "P", "txcouv_com": 1.0}
            for v in (2019, "2020", 2021.0)]
    df = caf.parse_coverage(recs, level="commune")
    assert df["year"].tolist() == [2019, 2020, 2021] and set(df["code"]) == {"44129"}


@responses.activate
def test_load_coverage_tidy_table():
    mock_ok()
    df = caf.load_coverage(EPCI)
    assert list(df.columns) == list(caf.COVERAGE_COLUMNS)
    com = df[df["level"] == "commune"]
    assert com[["code", "year", "rate"]].values.tolist() == [["44129", 2022, 58.3],
                                                             ["44129", 2023, 60.1]]
    epci = df[df["level"] == "epci"].set_index("year")
    assert epci.loc[2023, "rate"] == 63.4 and epci.loc[2023, "code"] == "200000438"
    assert math.isnan(epci.loc[2022, "rate"])  # not published: NaN, not 0
    first = responses.calls[0].request.url
    assert "refine=numdep%3A%2244%22" in first and "limit=2" in first


def test_placeholder_rows_are_dropped():
    df = caf.parse_coverage(load("txcouv_pe_epci.json")["results"], level="epci")
    assert "XX" not in set(df["code"]) and len(df) == 3


def test_changed_fields_are_named():
    recs = [{"annee": 2023, "code_commune": "44129", "taux": 60.1}]
    with pytest.raises(SourceError, match=r"lacks fields \['numcom', 'txcouv_com'\]"):
        caf.parse_coverage(recs, level="commune")


@responses.activate
def test_empty_result():
    responses.get(COM_URL, json={"total_count": 0, "results": []})
    df = caf.load_coverage(EPCI, levels=["commune"])
    assert df.empty and list(df.columns) == list(caf.COVERAGE_COLUMNS)


@responses.activate
def test_faults():
    responses.get(COM_URL, body=requests.exceptions.ConnectTimeout("t"))
    with pytest.raises(SourceError, match=r"caf_txcouv: no answer from https://data.caf.fr"):
        caf.load_coverage(EPCI, levels=["commune"])
    responses.replace(responses.GET, COM_URL, status=500)
    with pytest.raises(SourceError, match="HTTP 500"):
        caf.load_coverage(EPCI, levels=["commune"])
    responses.replace(responses.GET, COM_URL, body="<html>Maintenance</html>",
                      content_type="text/html")
    with pytest.raises(SourceError, match=r"caf_txcouv: .*txcouv_pe_com.*HTML"):
        caf.load_coverage(EPCI, levels=["commune"])


@responses.activate
def test_429_and_truncated_then_ok():
    responses.get(EPCI_URL, status=429, headers={"Retry-After": "0"})
    responses.get(EPCI_URL, body=json.dumps(load("txcouv_pe_epci.json"))[:90],
                  content_type="application/json")
    responses.get(EPCI_URL, json=load("txcouv_pe_epci.json"))
    df = caf.load_coverage(EPCI, levels=["epci"])
    assert len(df) == 2


def test_offline_without_cache():
    _http.configure(offline=True)
    with pytest.raises(SourceError, match=r"caf_txcouv: offline mode"):
        caf.load_coverage(EPCI)


@pytest.mark.network
def test_live_caf():
    _http.reset()
    df = caf.load_coverage(EPCI)
    assert (df["level"] == "epci").any()
    assert df.attrs["notes"] == []  # the _hist twins answered
    assert df.loc[df["level"] == "epci", "year"].nunique() >= 3


PARIS = Territory("commune", "75056", "Paris", ("75056",), ("75",))


@responses.activate
def test_arrondissements_of_paris_are_kept_and_say_why_no_commune_rate():
    responses.get(COM_URL, json=load("txcouv_pe_com_75_partial.json"))
    df = caf.load_coverage(PARIS, levels=["commune"], with_history=False)
    arms = df[df["level"] == "arrondissement"]
    assert sorted(arms["code"]) == ["75101", "75102", "75103", "75104"]
    assert df[df["level"] == "commune"].empty  # no weights: unknown, not a plain mean
    note = df.attrs["notes"][0]
    assert note.startswith("Paris : taux de couverture CAF 2023 publié par arrondissement")
    assert "de 58.4 à 70.2" in note


def test_arrondissements_weighted_by_children_give_the_commune_rate():
    cov = caf.parse_coverage(load("txcouv_pe_com_75_partial.json")["results"],
                             level="commune")
    cov["level"] = "arrondissement"
    weights = {"75101": 100.0, "75102": 100.0, "75103": 200.0, "75104": 600.0}
    out, notes = caf.aggregate_arrondissements(cov, children_under3=weights)
    paris = out[(out["level"] == "commune") & (out["code"] == "75056")]
    expected = (70.2 * 100 + 65.0 * 100 + 58.4 * 200 + 61.3 * 600) / 1000
    assert paris["rate"].tolist() == [pytest.approx(expected)] and notes == []
    # one weight missing: no rate rather than a wrong one
    out, notes = caf.aggregate_arrondissements(cov, children_under3={"75101": 100.0})
    assert out[out["level"] == "commune"].empty and len(notes) == 1


@responses.activate
def test_paris_gets_a_rate_weighted_by_the_census_children_of_its_arrondissements():
    """The weights come from the census by IRIS, whose Paris IRIS carry the arrondissement
    (``COM`` 75101…): :func:`data_sources.iris.to_communes` keeps it in ``code_arm``."""
    from data_sources import iris

    census = iris.to_communes(pd.DataFrame({
        "code_iris": ["751010101", "751010102", "751020101", "751030101", "751040101"],
        "code_insee": ["75101", "75101", "75102", "75103", "75104"],
        "pop_0_2": [60.0, 40.0, 100.0, 200.0, 600.0]}))
    assert set(census["code_insee"]) == {"75056"}
    weights = iris.children_by_arrondissement(census)
    assert weights == {"75101": 100.0, "75102": 100.0, "75103": 200.0, "75104": 600.0}
    responses.get(COM_URL, json=load("txcouv_pe_com_75_partial.json"))
    df = caf.load_coverage(PARIS, levels=["commune"], with_history=False,
                           children_under3=weights)
    paris = df[(df["level"] == "commune") & (df["code"] == "75056")]
    assert paris["rate"].tolist() == [pytest.approx(
        (70.2 * 100 + 65.0 * 100 + 58.4 * 200 + 61.3 * 600) / 1000)]
    assert df.attrs["notes"] == []


def test_workspace_names_the_caf_source_by_its_key():
    """The workspace writes the CAF key out (it does not import the HTTP layer): same key."""
    from data_sources.caf import CAF
    from data_sources.workspace import CAF_KEY

    assert CAF_KEY == CAF.key


# --------------------------------------------------------------------------------------
# Reference levels: département and France (txcouv_pe_dep, txcouv_pe_nat)
# txcouv_pe_dep.json and txcouv_pe_nat.json are hand-made in the fields documented by
# stored third-party code reading the seven data.caf.fr datasets (numdep / nomdep /
# txcouv_dep; national / txcouv_nat, ``annee`` a date on the national one); the
# national 60,9 of 2023 is the figure that code cross-checks with the ONAPE report, the
# départements' rates are invented.
# --------------------------------------------------------------------------------------
DEP_URL = f"{caf.BASE_URL}/txcouv_pe_dep/records"
NAT_URL = f"{caf.BASE_URL}/txcouv_pe_nat/records"


def test_national_year_is_a_date_and_its_code_is_fr():
    df = caf.parse_coverage(load("txcouv_pe_nat.json")["results"], level="france")
    assert df[["code", "year", "rate"]].values.tolist() == [["FR", 2022, 59.5],
                                                           ["FR", 2023, 60.9]]
    assert set(df["name"]) == {"FRANCE ENTIERE HORS MAYOTTE"}
    dep = caf.parse_coverage([{"annee": 2023, "numdep": 1, "nomdep": "AIN",
                               "txcouv_dep": 45.2}], level="departement")
    assert dep["code"].tolist() == ["01"]


@responses.activate
def test_reference_levels_give_the_departement_and_france():
    mock_ok()
    responses.get(DEP_URL, json=load("txcouv_pe_dep.json"))
    responses.get(NAT_URL, json=load("txcouv_pe_nat.json"))
    df = caf.load_coverage(EPCI, levels=caf.ALL_LEVELS, with_history=False)
    dep = df[df["level"] == "departement"]
    assert dep[["code", "rate"]].values.tolist() == [["44", 66.2]]  # the Vendée left out
    assert df.loc[df["level"] == "france", "rate"].tolist() == [59.5, 60.9]
    nat_call = next(c for c in responses.calls if "txcouv_pe_nat" in c.request.url)
    assert "refine" not in nat_call.request.url  # two rows, read whole
    import geopandas as gpd
    from shapely.geometry import Point

    from data_sources.workspace import with_caf_coverage

    com = gpd.GeoDataFrame({"code_insee": ["44129", "44161"], "epci_code": ["200000438"] * 2,
                            "dep_code": ["44", "44"]}, geometry=[Point(0, 0)] * 2,
                           crs="EPSG:4326")
    out = with_caf_coverage(com, df)
    assert out["caf_coverage_rate_dep"].tolist() == [66.2, 66.2]
    assert out["caf_coverage_rate_france"].tolist() == [60.9, 60.9]
    assert out["caf_coverage_year"].tolist() == [2023.0, 2023.0]


@responses.activate
def test_a_failing_reference_level_is_a_note_not_a_failure():
    mock_ok()
    responses.get(DEP_URL, json=load("txcouv_pe_dep.json"))
    responses.get(NAT_URL, status=500)
    responses.get(NAT_URL, status=500)
    responses.get(NAT_URL, status=500)
    responses.get(NAT_URL, status=500)
    df = caf.load_coverage(EPCI, levels=caf.ALL_LEVELS, with_history=False)
    assert set(df["level"]) == {"commune", "epci", "departement"}
    assert any("txcouv_pe_nat" in n and "non chargé" in n for n in df.attrs["notes"])


@responses.activate
def test_a_failing_commune_level_still_fails():
    responses.get(COM_URL, status=500)
    with pytest.raises(SourceError):
        caf.load_coverage(EPCI, levels=caf.ALL_LEVELS, with_history=False)
