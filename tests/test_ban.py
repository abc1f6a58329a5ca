"""Tests of data_sources.ban (the Géoplateforme geocoder).

The endpoints follow the retirement of api-adresse.data.gouv.fr (datagouv/
explore.data.gouv.fr PR #213; BaseAdresseNationale/adresse.data.gouv.fr issues #2342,
#2344): ``https://data.geopf.fr/geocodage/search`` and ``/search/csv``, same fields.
Payloads (tests/data/ban/) are hand-made in the documented API Adresse shapes:
``search_csv_answer.csv`` (the input CSV
plus ``latitude``, ``longitude``, ``result_label``, ``result_score``, ``result_type``,
``result_citycode``… and ``result_status``), as listed in adresse.data.gouv.fr/api-doc.
Scores and points are invented (Pontchâteau, Saint-Gildas-des-Bois, Herbignac).
``search_csv_paris_lyon.csv`` is the same CSV answer shape for addresses in Paris and
Lyon, where ``result_citycode`` is the arrondissement code (75115, 69383).
"""

from __future__ import annotations

import doctest
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import requests
import responses
from shapely.geometry import Point

from data_sources import _http, ban
from diagnosis.errors import SourceError
from diagnosis.schema import FACILITY_COLUMNS

DATA = Path(__file__).parent / "data" / "ban"
CSV_URL = "https://data.geopf.fr/geocodage/search/csv"
SEARCH_URL = "https://data.geopf.fr/geocodage/search"
CSV_ANSWER = (DATA / "search_csv_answer.csv").read_text(encoding="utf-8")


pytestmark = pytest.mark.usefixtures("http_sandbox")


def rows() -> pd.DataFrame:
    base = {"subtype": "", "capacity": float("nan"), "operator": "", "phone": "", "email": "",
            "website": "", "source": "finess", "source_date": "2024", "position_precision": ""}
    data = [
        ("pmi", "PMI Pontchâteau", "12 R DES ÉCOLES", "44160", "44129", "1"),
        ("pmi", "PMI Saint-Gildas", "PL DE L EGLISE", "44530", "44161", "2"),
        ("pmi", "PMI Herbignac", "LIEU INCONNU", "44410", "44072", "3"),
        ("pmi", "PMI fantôme", "NULLE PART", "44530", "44161", "4"),
    ]
    return pd.DataFrame([{**base, "type": t, "name": n, "address": a, "postcode": p,
                          "code_insee": c, "source_id": i} for t, n, a, p, c, i in data])


def test_doctests():
    assert doctest.testmod(ban).failed == 0


def test_parse_batch():
    res = ban.parse_batch_csv(CSV_ANSWER).set_index("rid")
    assert res["precision"].tolist() == ["address", "street", "commune", ""]


@responses.activate
def test_place_facilities_with_town_hall_fallback():
    responses.post(CSV_URL, body=CSV_ANSWER, content_type="text/csv")
    halls = gpd.GeoDataFrame({"code_insee": ["44161"]}, geometry=[Point(-2.0400, 47.5200)],
                             crs="EPSG:4326")
    gdf = ban.place_facilities(rows(), town_halls=halls)
    assert list(gdf.columns) == list(FACILITY_COLUMNS)
    got = gdf.set_index("source_id")
    assert got.loc["1", "position_precision"] == "address"
    assert got.loc["2", "position_precision"] == "street"
    assert got.loc["3", "position_precision"] == "commune"  # low score: commune only
    assert got.loc["4", "position_precision"] == "commune"  # not found: town hall
    assert (got.loc["4"].geometry.x, got.loc["4"].geometry.y) == (-2.04, 47.52)
    assert len(gdf.attrs["warnings"]) == 2
    body = responses.calls[0].request.body
    assert b'name="columns"\r\n\r\naddress' in body and b'name="citycode"' in body


@responses.activate
def test_unplaceable_rows_are_rejected_not_guessed():
    responses.post(CSV_URL, body=CSV_ANSWER, content_type="text/csv")
    gdf = ban.place_facilities(rows())
    assert "4" not in set(gdf["source_id"])
    assert gdf.attrs["rejected"]["source_id"].tolist() == ["4"]


@responses.activate
def test_changed_columns_are_named():
    responses.post(CSV_URL, body=CSV_ANSWER.replace("result_score", "score"),
                   content_type="text/csv")
    with pytest.raises(SourceError, match=r"lacks columns \['result_score'\]"):
        ban.place_facilities(rows())


@responses.activate
def test_faults():
    responses.post(CSV_URL, body=requests.exceptions.ReadTimeout("t"))
    with pytest.raises(SourceError, match=r"ban: no answer from .*search/csv"):
        ban.place_facilities(rows())
    responses.replace(responses.POST, CSV_URL, status=503)
    with pytest.raises(SourceError, match="HTTP 503"):
        ban.place_facilities(rows())
    responses.replace(responses.POST, CSV_URL, body="<html>down</html>",
                      content_type="text/html")
    with pytest.raises(SourceError, match="HTML"):
        ban.place_facilities(rows())


@responses.activate
def test_429_truncated_then_ok_and_cp1252():
    responses.post(CSV_URL, status=429, headers={"Retry-After": "0"})
    responses.post(CSV_URL, body=CSV_ANSWER[:120], content_type="text/csv")
    responses.post(CSV_URL, body=CSV_ANSWER.encode("cp1252"), content_type="text/csv")
    gdf = ban.place_facilities(rows())
    assert len(gdf) == 3


def test_empty_input():
    gdf = ban.place_facilities(rows().iloc[0:0])
    assert gdf.empty and list(gdf.columns) == list(FACILITY_COLUMNS)


def test_endpoints_are_the_geoplateforme():
    assert ban.SEARCH_URL == SEARCH_URL and ban.CSV_URL == CSV_URL
    assert "api-adresse" not in ban.BAN.url
    assert ban.BAN.key == "ban" and "Géoplateforme" in ban.BAN.title


@responses.activate
def test_arrondissement_codes_count_as_the_commune():
    responses.post(CSV_URL, body=(DATA / "search_csv_paris_lyon.csv").read_text("utf-8"),
                   content_type="text/csv")
    base = rows().iloc[0].to_dict()
    frame = pd.DataFrame([
        {**base, "name": "PMI Paris 15", "address": "95 RUE DE LA CROIX NIVERT",
         "postcode": "75015", "code_insee": "75056", "source_id": "p"},
        {**base, "name": "PMI Lyon 3", "address": "18 RUE PAUL BERT", "postcode": "69003",
         "code_insee": "69123", "source_id": "l"},
    ])
    gdf = ban.place_facilities(frame)
    got = gdf.set_index("source_id")["position_precision"].to_dict()
    assert got == {"p": "address", "l": "address"}
    sent = responses.calls[0].request.body.decode("utf-8")
    assert ";75015;\n" in sent and "75056" not in sent  # filtered by postcode only
    assert gdf.attrs["warnings"] == [] and gdf.attrs["rejected"].empty


def test_batches_run_one_at_a_time(monkeypatch):
    active, peak = [0], [0]

    def post(*args, **kwargs):
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        import time
        time.sleep(0.05)
        active[0] -= 1
        return CSV_ANSWER

    monkeypatch.setattr(_http, "post_multipart_text", post)
    import threading
    query = pd.DataFrame({"address": ["a"] * 4, "postcode": [""] * 4, "citycode": [""] * 4})
    threads = [threading.Thread(target=ban.geocode_batch, args=(query,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1


@pytest.mark.network
def test_live_ban():
    _http.reset()
    r = ban.geocode_batch(pd.DataFrame({"address": ["Place de l'Hôtel de Ville"],
                                        "citycode": ["44129"]}))
    assert r["citycode"].tolist() == ["44129"]
