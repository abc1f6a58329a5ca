"""Tests of data_sources.insee_melodi.

Payloads (tests/data/melodi/*.json) are hand-made, with invented numbers, in the Melodi JSON
shape documented by the answers INSEE recorded for its own R package ``melodi``
(``tests/testthat/_vcr/get_data_popref_nantes.yml``: ``observations[].dimensions`` with
``GEO`` like ``2025-COM-44109``, ``TIME_PERIOD``, a ``*_MEASURE`` dimension, and
``measures.OBS_VALUE_NIVEAU.value``; ``paging.first``/``next``). Variants exercised: GEO
without vintage (``COM-44129``, population.json), secret values as an empty measure
(births 44161 in 2024, ages of 44161, poverty rate of 44161 with ``CONF_STATUS`` C), and a
second page through ``paging.next`` (births_page2.json). The dimension codes (LVB, MED_SL,
PR_MD60, Y0…, TFN) come from stored third-party code; the live checks verify them.

Today's answers (``*_2023.json``), hand-made in the shape of the real recorded answers of
cbobinec/melodi ``tests/fixtures/get_local_data_by_com_popref.yml`` (``GEO`` like
``2024-COM-44120``, several ``TIME_PERIOD`` in one answer, ``measures.OBS_VALUE_NIVEAU``):
census ``TIME_PERIOD`` 2012, 2017 and 2023,
Filosofi 2023, and ``CONF_STATUS`` ``C`` on a value that is present (it must not be used).
Numbers are invented.

The census count of children under 3 is the sum of the single ages ``Y0``, ``Y1``, ``Y2`` of
``DS_RP_TD_POPULATION_AGESEX_PRINC`` (agesex_2023.json, SEX ``_T`` and ``M``, ages Y0-Y4,
2017 and 2023): the age code list ``CL_AGE`` recorded by INSEE's R package
(InseeFrLab/melodi ``tests/testthat/_vcr/get_code_list_age_fr.yml``) has ``Y0``, ``Y1``,
``Y2`` and ``Y_LT3``, while ``DS_RP_POPULATION_PRINC`` answers ``AGE=Y0T2`` with no
observation. An empty but valid answer (empty_y0t2.json) has the shape recorded in
``tests/testthat/_vcr/get_data_popref_empty.yml`` (``"observations": []``,
``paging.count`` 0).
"""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from data_sources import _http
from data_sources import insee_melodi as im
from diagnosis.errors import SourceError
from diagnosis.schema import NEEDS_COLUMNS, Territory

DATA = Path(__file__).parent / "data" / "melodi"
URL = "https://api.insee.fr/melodi/data/"
EPCI = Territory("epci", "200000438", "CC du Pays de Pontchâteau St-Gildas-des-Bois",
                 ("44129", "44161"), ("44",))


def load(name):
    return json.loads((DATA / name).read_text(encoding="utf-8"))


pytestmark = pytest.mark.usefixtures("http_sandbox")


def mock_all():
    births = URL + "DS_ETAT_CIVIL_NAIS_COMMUNES"
    responses.get(births, json=load("births_page2.json"),
                  match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)])
    responses.get(births, json=load("births_page1.json"),
                  match=[matchers.query_param_matcher(
                      {"GEO": "EPCI-200000438*COM", "EC_MEASURE": "LVB"}, strict_match=False)])
    responses.get(URL + "DS_RP_POPULATION_PRINC", json=load("empty_y0t2.json"),
                  match=[matchers.query_param_matcher({"AGE": "Y0T2"}, strict_match=False)])
    responses.get(URL + "DS_RP_POPULATION_PRINC", json=load("population.json"))
    responses.get(URL + "DS_RP_TD_POPULATION_AGESEX_PRINC", json=load("agesex.json"))
    responses.get(URL + "DS_FILOSOFI_CC", json=load("filosofi.json"))
    responses.get(URL + "DS_RP_FAMILLE_COMP", json=load("famille.json"))


def test_doctests():
    assert doctest.testmod(im).failed == 0


def test_parse_births_keeps_secret_as_nan():
    obs = load("births_page1.json")["observations"] + load("births_page2.json")["observations"]
    wide = im.parse_series(obs, im.SERIES["births"]).set_index("code_insee")
    assert wide.loc["44129", "births_2024"] == 117
    assert wide.loc["44161", "births_2021"] == 40
    assert math.isnan(wide.loc["44161", "births_2024"])  # secret, not 0


def test_under3_is_a_sum_of_single_years_and_nan_when_a_part_is_secret():
    wide = im.parse_series(load("agesex.json")["observations"], im.SERIES["under3"])
    wide = wide.set_index("code_insee")
    assert wide.loc["44129", "under3_count_2022"] == 120 + 126 + 131
    assert math.isnan(wide.loc["44161", "under3_count_2022"])


def test_under3_accepts_the_y0t2_variant():
    obs = [{"dimensions": {"GEO": "COM-44129", "TIME_PERIOD": "2022", "SEX": "_T",
                           "AGE": "Y0T2"}, "measures": {"OBS_VALUE_NIVEAU": {"value": 377}}}]
    wide = im.parse_series(obs, im.SERIES["under3"])
    assert wide["under3_count_2022"].tolist() == [377]


def test_flat_records_variant():
    obs = [{"GEO": "44129", "GEO_OBJECT": "COM", "TIME_PERIOD": "2021",
            "FILOSOFI_MEASURE": "MED_SL", "OBS_VALUE": "22870", "OBS_STATUS": "A"}]
    wide = im.parse_series(obs, im.SERIES["median_income"])
    assert wide["median_income_2021"].tolist() == [22870.0]


@responses.activate
def test_load_needs_wide_table():
    mock_all()
    df = im.load_insee_needs(EPCI, series=[*im.DEFAULT_SERIES, "under3"]).set_index(
        "code_insee")
    for col in ("births_2024", "births_mean_2016_2021", "population_2022",
                "median_income_2021", "poverty_rate_2021", "families_2022",
                "single_parent_families_2022"):
        assert col in NEEDS_COLUMNS and col in df.columns
    assert df.loc["44129", "births_mean_2016_2021"] == pytest.approx(
        (150 + 148 + 140 + 139 + 131 + 128) / 6)
    assert math.isnan(df.loc["44161", "births_mean_2016_2021"])  # years missing
    assert df.loc["44129", "population_2022"] == 11249
    assert df.loc["44129", "population_2016"] == 10530
    assert df.loc["44129", "under3_count"] == 377 and df.loc["44129", "under3_year"] == 2022
    assert df.loc["44129", "median_income_2021"] == 22870
    assert df.loc["44129", "poverty_rate_2021"] == pytest.approx(9.4)
    assert math.isnan(df.loc["44161", "poverty_rate_2021"])
    assert df.loc["44129", "single_parent_families_2022"] == 61 + 402
    assert df.loc["44129", "families_2022"] == 61 + 402 + 1290
    assert df.index.tolist() == ["44129", "44161"]
    assert df.loc["44129", "population_year"] == 2022 and df.loc["44129", "births_year"] == 2024
    # the census count comes from the single ages too
    assert df.loc["44129", "under3_census"] == 377
    # births on two pages, population, ages once (census count and under3 share one
    # query), Filosofi twice (one query per measure), families once
    assert len(responses.calls) == 2 + 1 + 1 + 2 + 1
    assert not any("AGE=Y0T2" in c.request.url for c in responses.calls)


def mock_today():
    births = URL + "DS_ETAT_CIVIL_NAIS_COMMUNES"
    responses.get(births, json=load("births_page2.json"),
                  match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)])
    responses.get(births, json=load("births_page1.json"))
    responses.get(URL + "DS_RP_POPULATION_PRINC", json=load("empty_y0t2.json"),
                  match=[matchers.query_param_matcher({"AGE": "Y0T2"}, strict_match=False)])
    responses.get(URL + "DS_RP_POPULATION_PRINC", json=load("population_2023.json"))
    responses.get(URL + "DS_RP_TD_POPULATION_AGESEX_PRINC", json=load("agesex_2023.json"),
                  match=[matchers.query_param_matcher({"SEX": "_T"}, strict_match=False)])
    responses.get(URL + "DS_FILOSOFI_CC", json=load("filosofi_2023_med.json"),
                  match=[matchers.query_param_matcher({"FILOSOFI_MEASURE": "MED_SL"},
                                                      strict_match=False)])
    responses.get(URL + "DS_FILOSOFI_CC", json=load("filosofi_2023_pov.json"))
    responses.get(URL + "DS_RP_FAMILLE_COMP", json=load("famille_2023.json"))


@responses.activate
def test_today_latest_years_fill_the_needs_columns_with_their_year():
    mock_today()
    df = im.load_insee_needs(EPCI).set_index("code_insee")
    # historical names, filled from the latest year served (today's code left them empty)
    assert df.loc["44129", "population_2022"] == 11402
    assert df.loc["44129", "population_year"] == 2023
    assert df.loc["44129", "median_income_2021"] == 24310
    assert df.loc["44129", "income_year"] == 2023
    assert df.loc["44129", "poverty_rate_2021"] == pytest.approx(10.1)
    assert df.loc["44129", "poverty_year"] == 2023
    assert df.loc["44129", "families_2022"] == 64 + 410 + 1301
    assert df.loc["44129", "single_parent_families_2022"] == 64 + 410
    assert df.loc["44129", "families_year"] == 2023
    assert df.loc["44129", "births_2024"] == 117 and df.loc["44129", "births_year"] == 2024
    # the census count of children under 3, with its year; secret stays missing
    assert df.loc["44129", "under3_census"] == 356
    assert df.loc["44129", "under3_census_year"] == 2023
    assert math.isnan(df.loc["44161", "under3_census"])
    # CONF_STATUS C: the value sent is not used
    assert math.isnan(df.loc["44161", "poverty_rate_2021"])
    # the history stays available by year
    assert df.loc["44129", "population_2012"] == 10123
    for col in ("births_2024", "population_2022", "median_income_2021", "poverty_rate_2021",
                "families_2022", "single_parent_families_2022"):
        assert df[col].notna().any(), col


def test_latest_year_skips_years_without_any_value():
    obs = load("agesex_2023.json")["observations"]
    for o in obs:
        if o["dimensions"]["TIME_PERIOD"] == "2023":
            o["measures"] = {}
    wide = im.finish_needs(im.parse_series(obs, im.SERIES["under3_census"]))
    assert wide["under3_census_year"].tolist() == [2017.0, 2017.0]
    assert wide["under3_census"].tolist() == [391.0, 118.0]


@responses.activate
def test_geo_filter_is_sent():
    mock_all()
    im.load_insee_needs(EPCI, series=["births"])
    first = responses.calls[0].request.url
    assert "GEO=EPCI-200000438%2ACOM" in first and "EC_MEASURE=LVB" in first


@responses.activate
def test_changed_codes_name_the_dimension():
    doc = load("filosofi.json")
    for o in doc["observations"]:
        o["dimensions"]["FILOSOFI_MEASURE"] = "MEDIAN_LIVING_STD"
    responses.get(URL + "DS_FILOSOFI_CC", json=doc)
    with pytest.raises(SourceError, match=r"FILOSOFI_MEASURE.*MED_SL.*MEDIAN_LIVING_STD"):
        im.load_insee_needs(EPCI, series=["median_income"])


@responses.activate
def test_missing_dimension_is_named():
    doc = load("agesex.json")
    for o in doc["observations"]:
        del o["dimensions"]["AGE"]
    responses.get(URL + "DS_RP_TD_POPULATION_AGESEX_PRINC", json=doc)
    with pytest.raises(SourceError, match=r"dimensions \['AGE'\] absent"):
        im.load_insee_needs(EPCI, series=["under3"])


@responses.activate
def test_empty_result_keeps_communes_and_is_a_failure_in_french():
    responses.get(URL + "DS_FILOSOFI_CC", json={"observations": [], "paging": {}})
    df = im.load_insee_needs(EPCI, series=["median_income"], errors="collect")
    assert df["code_insee"].tolist() == ["44129", "44161"]
    assert [c for c in df.columns if c.startswith("median")] == []
    msg = df.attrs["failures"]["median_income"]
    assert "aucune observation pour les 2 commune(s)" in msg and "DS_FILOSOFI_CC" in msg
    with pytest.raises(SourceError, match="aucune observation"):
        im.load_insee_needs(EPCI, series=["median_income"])


@responses.activate
def test_observations_for_other_communes_only_are_a_failure():
    doc = load("agesex_2023.json")
    for o in doc["observations"]:
        o["dimensions"]["GEO"] = o["dimensions"]["GEO"].replace("44129", "44003").replace(
            "44161", "44004")
    responses.get(URL + "DS_RP_TD_POPULATION_AGESEX_PRINC", json=doc)
    df = im.load_insee_needs(EPCI, series=["under3_census"], errors="collect")
    assert "under3_census" in df.attrs["failures"]
    assert "under3_census" not in df.columns


@responses.activate
def test_under3_census_is_read_from_single_ages_never_from_y0t2():
    responses.get(URL + "DS_RP_POPULATION_PRINC", json=load("empty_y0t2.json"))
    responses.get(URL + "DS_RP_TD_POPULATION_AGESEX_PRINC", json=load("agesex_2023.json"))
    df = im.load_insee_needs(EPCI, series=["under3_census"]).set_index("code_insee")
    assert df.loc["44129", "under3_census"] == 115 + 118 + 123  # SEX=M rows not added
    assert df.loc["44129", "under3_census_year"] == 2023
    assert math.isnan(df.loc["44161", "under3_census"])  # Y2 secret: never undercounted
    assert df.loc["44161", "under3_census_2017"] == 38 + 39 + 41
    assert [c.request.url.split("?")[0].rsplit("/", 1)[1] for c in responses.calls] == [
        "DS_RP_TD_POPULATION_AGESEX_PRINC"]


@responses.activate
def test_collect_mode_keeps_other_series():
    responses.get(URL + "DS_FILOSOFI_CC", status=500)
    responses.get(URL + "DS_RP_POPULATION_PRINC", json=load("population.json"))
    df = im.load_insee_needs(EPCI, series=["median_income", "population"], errors="collect")
    assert "population_2022" in df.columns
    assert "HTTP 500" in df.attrs["failures"]["median_income"]


@responses.activate
def test_faults():
    url = URL + "DS_RP_POPULATION_PRINC"
    responses.get(url, body=requests.exceptions.ConnectTimeout("t"))
    with pytest.raises(SourceError, match=r"insee_melodi: no answer from https://api.insee.fr"):
        im.load_insee_needs(EPCI, series=["population"])
    responses.replace(responses.GET, url, body="<html><body>Quota</body></html>",
                      content_type="text/html")
    with pytest.raises(SourceError, match=r"insee_melodi: .*DS_RP_POPULATION_PRINC.*HTML"):
        im.load_insee_needs(EPCI, series=["population"])


@responses.activate
def test_429_then_ok_and_truncated_then_ok():
    url = URL + "DS_RP_POPULATION_PRINC"
    responses.get(url, status=429, headers={"Retry-After": "0"})
    responses.get(url, body=json.dumps(load("population.json"))[:150],
                  content_type="application/json")
    responses.get(url, json=load("population.json"))
    df = im.load_insee_needs(EPCI, series=["population"])
    assert df.set_index("code_insee").loc["44161", "population_2022"] == 3790
    assert len(responses.calls) == 3


def test_offline_without_cache():
    _http.configure(offline=True)
    with pytest.raises(SourceError, match=r"insee_melodi: offline mode .*api.insee.fr"):
        im.load_insee_needs(EPCI, series=["births"])


@pytest.mark.network
def test_live_melodi_codes():
    """Verify the dimension codes marked 'verify with a live check'."""
    _http.reset()
    df = im.load_insee_needs(EPCI, errors="collect")
    assert df.attrs["failures"] == {}
    assert df["births_2024"].notna().any() and df["births_year"].min() >= 2024
    assert df["population_year"].min() >= 2023 and df["population_2022"].notna().all()
    assert df["under3_census"].gt(0).all() and df["under3_census_year"].min() >= 2023
