"""Tests of data_sources.bpe.

Payloads (tests/data/bpe/), hand-written to the documented BPE geolocated format:

- ``bpe24_sample.csv``: recent-vintage header (``NOMRS``, ``CAPACITE``, ``QUALITE_XY``,
  ``EPSG``, ``LAMBERT_X/Y``, ``LONGITUDE/LATITUDE``), UTF-8; invented equipments; Lambert-93
  and UTM 40S coordinates computed with pyproj from Pontchâteau (-2.0586, 47.4386),
  Saint-Gildas-des-Bois (-2.0385, 47.5236), Nantes (-1.5536, 47.2184) and Saint-Denis de
  La Réunion (55.4504, -20.8789).
- ``bpe21_old_cp1252.csv``: old-vintage header (no name, no EPSG column), Windows-1252.

The zip served by the mocked INSEE URL is built in the tests from ``bpe24_sample.csv``.
"""

from __future__ import annotations

import doctest
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests
import responses

from data_sources import _http, bpe
from diagnosis.errors import SourceError
from diagnosis.schema import FACILITY_COLUMNS, Territory

DATA = Path(__file__).parent / "data" / "bpe"
SAMPLE = (DATA / "bpe24_sample.csv").read_text(encoding="utf-8")
URL = bpe.bpe_url(2024)
EPCI = Territory("epci", "200000438", "CC du Pays de Pontchâteau St-Gildas-des-Bois",
                 ("44050", "44053", "44068", "44098", "44129", "44152", "44161", "44189",
                  "44196"), ("44",))


@pytest.fixture(autouse=True)
def http_sandbox(tmp_path):
    _http.configure(cache_dir=tmp_path / "cache", offline=False, backoff_factor=0,
                    max_retries=1, rate_limits={}, timeout_s=(1.0, 2.0))
    yield
    _http.reset()


def zipped(text: str, encoding: str = "utf-8") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("BPE24.csv", text.encode(encoding))
    return buf.getvalue()


def test_doctests():
    assert doctest.testmod(bpe).failed == 0


def test_url_pattern():
    assert URL == "https://www.insee.fr/fr/statistiques/fichier/8217525/BPE24.zip"


def test_mapping_is_vintage_aware_and_label_based():
    m = bpe.bpe_type_mapping(2025, {"D265": "Médecin généraliste", "D2X9": "Sage-femme"})
    assert m["D2X9"] == ("sage_femme", "")
    assert "D265" not in m
    assert "D231" not in m  # the vintage's own nomenclature replaces the shipped one
    assert bpe.bpe_type_mapping(2023).get("D509") is None


def test_parse_all_rows():
    placed, unplaced = bpe.parse_bpe(SAMPLE.splitlines(), vintage=2024)
    by_type = placed.groupby("type").size().to_dict()
    assert by_type == {"centre_social": 1, "eaje": 3, "laep": 1, "mairie": 1, "sage_femme": 1}
    assert unplaced["type"].tolist() == ["rpe"]
    multi = placed[placed["name"] == "MULTI-ACCUEIL LES P'TITS MOUSSES"].iloc[0]
    assert multi["capacity"] == 24.0 and multi["code_insee"] == "44129"
    assert multi.geometry.x == pytest.approx(-2.0586, abs=1e-5)
    assert multi.geometry.y == pytest.approx(47.4386, abs=1e-5)
    assert multi["address"] == "12 RUE DES ECOLES" and multi["postcode"] == "44160"
    micro = placed[placed["subtype"] == "micro_creche"].iloc[0]
    assert micro["name"] == "MICRO-CRÈCHE LES LUCIOLES"
    assert micro["position_precision"] == "street"
    assert placed.loc[placed["type"] == "laep", "position_precision"].item() == "commune"
    laep_cap = placed.loc[placed["type"] == "laep", "capacity"].item()
    assert np.isnan(laep_cap)  # unknown capacity is NaN, not 0
    mairie = placed[placed["type"] == "mairie"].iloc[0]
    assert (mairie.geometry.x, mairie.geometry.y) == (-2.0586, 47.4386)
    reunion = placed[placed["code_insee"] == "97411"].iloc[0]
    assert reunion.geometry.x == pytest.approx(55.4504, abs=1e-5)
    assert reunion.geometry.y == pytest.approx(-20.8789, abs=1e-5)


def test_old_vintage_cp1252_without_epsg(tmp_path):
    lines = _http.iter_file_lines(DATA / "bpe21_old_cp1252.csv")
    placed, unplaced = bpe.parse_bpe(lines, vintage=2021)
    assert placed["subtype"].tolist() == [""]  # D509 unknown in 2021
    assert placed["source_date"].tolist() == ["2021"]
    assert len(unplaced) == 1 and unplaced["type"].tolist() == ["rpe"]


@responses.activate
def test_load_bpe_clips_to_area():
    responses.get(URL, body=zipped(SAMPLE), content_type="application/zip")
    gdf = bpe.load_bpe(EPCI, vintage=2024)
    assert list(gdf.columns) == list(FACILITY_COLUMNS)
    assert set(gdf["code_insee"]) == {"44129", "44161"}
    assert len(gdf) == 5 and len(gdf.attrs["unplaced"]) == 1
    assert gdf["facility_id"].is_unique


@responses.activate
def test_load_bpe_cp1252_zip():
    responses.get(URL, body=zipped(SAMPLE, "cp1252"), content_type="application/zip")
    gdf = bpe.load_bpe(EPCI, vintage=2024)
    assert "MICRO-CRÈCHE LES LUCIOLES" in set(gdf["name"])


@responses.activate
def test_changed_columns_are_named():
    changed = (SAMPLE.replace("TYPEQU", "TYPE_EQUIPEMENT").replace("LAMBERT_X", "X_L93")
               .replace("LONGITUDE", "LON"))
    responses.get(URL, body=zipped(changed), content_type="application/zip")
    with pytest.raises(SourceError, match=r"lacks columns \['TYPEQU', 'LAMBERT_X/LAMBERT_Y"):
        bpe.load_bpe(EPCI, vintage=2024)


@responses.activate
def test_empty_result():
    header = SAMPLE.splitlines()[0] + "\n"
    responses.get(URL, body=zipped(header), content_type="application/zip")
    gdf = bpe.load_bpe(EPCI, vintage=2024)
    assert gdf.empty and list(gdf.columns) == list(FACILITY_COLUMNS)


@responses.activate
def test_truncated_zip_is_downloaded_again():
    good = zipped(SAMPLE)
    responses.get(URL, body=good[: len(good) // 2], content_type="application/zip")
    responses.get(URL, body=good, content_type="application/zip")
    assert len(bpe.load_bpe(EPCI, vintage=2024)) == 5
    assert len(responses.calls) == 2


@responses.activate
def test_timeout_500_and_html():
    responses.get(URL, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(SourceError, match=r"bpe: no answer from .*BPE24.zip"):
        bpe.load_bpe(EPCI, vintage=2024)
    responses.replace(responses.GET, URL, status=500)
    with pytest.raises(SourceError, match=r"bpe: .*500"):
        bpe.load_bpe(EPCI, vintage=2024)
    responses.replace(responses.GET, URL, body="<html>Indisponible</html>",
                      content_type="text/html")
    with pytest.raises(SourceError, match=r"bpe: an HTML page came back from .*BPE24.zip"):
        bpe.load_bpe(EPCI, vintage=2024)


@responses.activate
def test_429_then_ok():
    responses.get(URL, status=429, headers={"Retry-After": "0"})
    responses.get(URL, body=zipped(SAMPLE), content_type="application/zip")
    assert len(bpe.load_bpe(EPCI, vintage=2024)) == 5


def test_offline_without_copy():
    _http.configure(offline=True)
    with pytest.raises(SourceError, match=r"bpe: offline mode .*BPE24.zip"):
        bpe.load_bpe(EPCI, vintage=2024)


@pytest.mark.network
def test_live_bpe_2024():
    _http.reset()
    gdf = bpe.load_bpe(EPCI, vintage=2024)
    assert {"eaje", "mairie"} <= set(gdf["type"])
