"""Tests of data_sources.bpe.

Payloads (tests/data/bpe/), hand-written to the documented BPE geolocated format:

- ``bpe24_sample.csv``: recent-vintage header (``NOMRS``, ``CAPACITE``, ``QUALITE_XY``,
  ``EPSG``, ``LAMBERT_X/Y``, ``LONGITUDE/LATITUDE``), UTF-8; invented equipments; Lambert-93
  and UTM 40S coordinates computed with pyproj from Pontchâteau (-2.0586, 47.4386),
  Saint-Gildas-des-Bois (-2.0385, 47.5236), Nantes (-1.5536, 47.2184) and Saint-Denis de
  La Réunion (55.4504, -20.8789).
- ``bpe21_old_cp1252.csv``: old-vintage header (no name, no EPSG column), Windows-1252.
- ``bpe25_quoted_sample.csv``: the current layout as described, from the live BPE25 file,
  by mml-studio/surplomb ``src/data/amenitiesFeed.js`` (every field quoted; ``_Z``/``_U``
  missing values; ``QUALITE_XY`` letters; ``QUALITE_GEOLOC`` 11/12/21/22/33;
  ``LONGITUDE``/``LATITUDE``; a Mayotte row without coordinates but ``EPSG=4471``).
  Written by hand (a script writing quoted rows); equipments invented.
- ``TYPEQU_2025_sample.csv``: an extract of an edition's TYPEQU list, hand-written. The
  renumbered codes of midwives and maternities (``D2S1``, ``D1M7``) are **invented**: the
  real list was not available offline, and the point is that labels, not codes, decide
  (``D231`` is given another meaning on purpose).
  A list of a later edition where ``D503`` is gone, ``D504`` means something else and
  the LAEP moved to an invented code is derived from it in
  ``test_codes_missing_or_renamed_in_the_edition_list_are_reported`` (D503, D504, D506
  are the codes the issue names; their labels are those of the shipped nomenclature).
- ``datagouv_dataset.json``, ``landing_8217537.html``, ``subpage_8217525.html``: the
  discovery chain as surplomb describes it (data.gouv.fr dataset
  ``548acaf2c751df1eac4120e7`` → landing page → sub-pages → ``BPE25.zip``), reduced to
  the parts read.

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
CURRENT = (DATA / "bpe25_quoted_sample.csv").read_text(encoding="utf-8")
TYPEQU25 = (DATA / "TYPEQU_2025_sample.csv").read_text(encoding="utf-8")
URL = bpe.bpe_url(2024)
URL25 = "https://www.insee.fr/fr/statistiques/fichier/8217525/BPE25.zip"
TYPEQU_URL = "https://www.insee.fr/fr/metadonnees/source/fichier/TYPEQU_2025.csv"
#: The codes of the 2024 sample, as its own list would name them.
NOMENCLATURE_24 = {"D502": "EAJE", "D509": "Micro-crèche", "D503": "LAEP", "D504": "RPE",
                   "D506": "Centre social", "D231": "Sage-femme", "A129": "Mairie"}
EPCI = Territory("epci", "200000438", "CC du Pays de Pontchâteau St-Gildas-des-Bois",
                 ("44050", "44053", "44068", "44098", "44129", "44152", "44161", "44189",
                  "44196"), ("44",))


pytestmark = pytest.mark.usefixtures("http_sandbox")


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


def test_renumbered_health_codes_are_not_guessed():
    # Today's code mapped D231 to midwives and D107 to maternities in every edition.
    m = bpe.bpe_type_mapping(2025)
    assert "D231" not in m and "D107" not in m
    m = bpe.bpe_type_mapping(2025, bpe.parse_nomenclature(TYPEQU25))
    assert m["D2S1"] == ("sage_femme", "") and m["D1M7"] == ("maternite", "")
    assert "D231" not in m  # "Infirmier" in this edition


def test_current_layout_quoted_sentinels_and_geoloc():
    mapping = bpe.bpe_type_mapping(2025, bpe.parse_nomenclature(TYPEQU25))
    placed, unplaced = bpe.parse_bpe(CURRENT.splitlines(), vintage=2025, mapping=mapping)
    got = placed.set_index("type")
    assert set(got.index) == {"eaje", "laep", "rpe", "sage_femme", "maternite", "mairie"}
    # _Z / _U never reach a name or an address
    assert not placed["name"].str.contains("_Z|_U").any()
    assert not placed["address"].str.contains("_Z|_U").any()
    assert got.loc["laep", "name"] == "" and got.loc["laep", "address"] == ""
    assert got.loc["rpe", "name"] == ""
    assert placed.loc[placed["subtype"] == "micro_creche", "name"].item() == (
        "MICRO-CRÈCHE LES LUCIOLES")
    eaje = placed[(placed["type"] == "eaje") & (placed["subtype"] == "")].iloc[0]
    assert eaje["address"] == "12 RUE DES ECOLES" and eaje["capacity"] == 24.0
    # precision from QUALITE_GEOLOC, else the QUALITE_XY letter, else commune
    assert eaje["position_precision"] == "address"  # 11
    assert placed.loc[placed["subtype"] == "micro_creche", "position_precision"].item() == (
        "street")  # 12
    assert got.loc["sage_femme", "position_precision"] == "street"  # 21
    assert got.loc["maternite", "position_precision"] == "street"  # 22
    assert got.loc["laep", "position_precision"] == "commune"  # 33: random in the commune
    assert got.loc["mairie", "position_precision"] == "address"  # _Z geoloc, XY "B"
    assert got.loc["rpe", "position_precision"] == "commune"  # _U / _Z: not trusted
    assert np.isnan(got.loc["laep", "capacity"])  # "_Z" capacity is unknown, not 0
    assert got.loc["laep"].geometry.x == pytest.approx(-2.0601)
    # Mayotte: no coordinates at all -> unplaced, never at (0, 0)
    assert unplaced["code_insee"].tolist() == ["97611"]


def test_editions_found_in_pages():
    html = (DATA / "subpage_8217525.html").read_text("utf-8")
    assert bpe.editions_in_html(html)[-1] == (2025, URL25)
    landing = (DATA / "landing_8217537.html").read_text("utf-8")
    assert bpe.editions_in_html(landing) == []
    assert bpe.subpages_in_html(landing)[0] == "https://www.insee.fr/fr/statistiques/8217525"


def _discovery(rsps):
    rsps.get(bpe.BPE_DATASET_API, body=(DATA / "datagouv_dataset.json").read_bytes(),
             content_type="application/json")
    rsps.get("https://www.insee.fr/fr/statistiques/8217537",
             body=(DATA / "landing_8217537.html").read_bytes(), content_type="text/html")
    rsps.get("https://www.insee.fr/fr/statistiques/8217525",
             body=(DATA / "subpage_8217525.html").read_bytes(), content_type="text/html")


@responses.activate
def test_load_discovers_the_newest_edition_and_its_typequ():
    _discovery(responses)
    responses.get(TYPEQU_URL, body=TYPEQU25, content_type="text/csv")
    responses.get(URL25, body=zipped(CURRENT), content_type="application/zip")
    gdf = bpe.load_bpe(EPCI)
    assert gdf.attrs["vintage"] == 2025 and gdf.attrs["url"] == URL25
    assert {"eaje", "laep", "rpe", "sage_femme", "maternite", "mairie"} == set(gdf["type"])
    assert gdf.attrs["notes"] == []
    assert set(gdf["source_date"]) == {"2025"}


@responses.activate
def test_codes_missing_or_renamed_in_the_edition_list_are_reported():
    _discovery(responses)
    edited = (TYPEQU25.replace('"D503";"Lieu d\'accueil enfants-parents (LAEP)"\n', "")
              .replace('"D504";"Relais petite enfance (RPE)"',
                       '"D504";"Structure d\'information jeunesse"')
              .replace('"D506";"Centre social"\n', ""))
    responses.get(TYPEQU_URL, body=edited, content_type="text/csv")
    responses.get(URL25, body=zipped(CURRENT), content_type="application/zip")
    gdf = bpe.load_bpe(EPCI)
    notes = " | ".join(gdf.attrs["notes"])
    assert "code D503 (lieu d'accueil enfants-parents) absent de la liste TYPEQU 2025" in notes
    assert "code D504 (relais petite enfance) appelé « Structure d'information " in notes
    assert "code D506 (centre social) absent" in notes
    # the rows of a code the edition does not confirm get no type (never a wrong one)
    assert not {"laep", "rpe"} & set(gdf["type"])
    assert {"eaje", "mairie"} <= set(gdf["type"])


def test_a_moved_code_is_found_by_its_label():
    mapping = bpe.bpe_type_mapping(2026)
    listed = {"D502": "Établissement d'accueil du jeune enfant (EAJE)", "A129": "Mairie",
              "D5L3": "Lieu d'accueil enfants-parents (LAEP)", "D504": "Relais petite enfance"}
    checked, notes = bpe.check_mapping(mapping, listed, vintage=2026)
    assert checked["D5L3"] == ("laep", "") and "D503" not in checked
    assert checked["D504"] == ("rpe", "")
    assert any("code D5L3 « Lieu d'accueil enfants-parents (LAEP) » utilisé" in n
               for n in notes)


@responses.activate
def test_without_the_edition_list_midwives_are_unknown_not_misread():
    _discovery(responses)
    responses.get(TYPEQU_URL, status=404)
    responses.get(URL25, body=zipped(CURRENT), content_type="application/zip")
    gdf = bpe.load_bpe(EPCI)
    assert "sage_femme" not in set(gdf["type"]) and "maternite" not in set(gdf["type"])
    assert "INFIRMIER LIBERAL" not in set(gdf["name"])
    assert "sages-femmes et maternités" in gdf.attrs["notes"][0]


def test_dead_bytes_parser_is_gone():
    assert not hasattr(bpe, "parse_bpe_bytes")


def test_parse_all_rows():
    mapping = bpe.bpe_type_mapping(2024, NOMENCLATURE_24)
    placed, unplaced = bpe.parse_bpe(SAMPLE.splitlines(), vintage=2024, mapping=mapping)
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
    gdf = bpe.load_bpe(EPCI, vintage=2024, nomenclature=NOMENCLATURE_24)
    assert list(gdf.columns) == list(FACILITY_COLUMNS)
    assert set(gdf["code_insee"]) == {"44129", "44161"}
    assert len(gdf) == 5 and len(gdf.attrs["unplaced"]) == 1
    assert gdf["facility_id"].is_unique


@responses.activate
def test_load_bpe_cp1252_zip():
    responses.get(URL, body=zipped(SAMPLE, "cp1252"), content_type="application/zip")
    gdf = bpe.load_bpe(EPCI, vintage=2024, nomenclature=NOMENCLATURE_24)
    assert "MICRO-CRÈCHE LES LUCIOLES" in set(gdf["name"])


@responses.activate
def test_changed_columns_are_named():
    changed = (SAMPLE.replace("TYPEQU", "TYPE_EQUIPEMENT").replace("LAMBERT_X", "X_L93")
               .replace("LONGITUDE", "LON"))
    responses.get(URL, body=zipped(changed), content_type="application/zip")
    with pytest.raises(SourceError, match=r"lacks columns \['TYPEQU', 'LAMBERT_X/LAMBERT_Y"):
        bpe.load_bpe(EPCI, vintage=2024, nomenclature=NOMENCLATURE_24)


@responses.activate
def test_empty_result():
    header = SAMPLE.splitlines()[0] + "\n"
    responses.get(URL, body=zipped(header), content_type="application/zip")
    gdf = bpe.load_bpe(EPCI, vintage=2024, nomenclature=NOMENCLATURE_24)
    assert gdf.empty and list(gdf.columns) == list(FACILITY_COLUMNS)


@responses.activate
def test_truncated_zip_is_downloaded_again():
    good = zipped(SAMPLE)
    responses.get(URL, body=good[: len(good) // 2], content_type="application/zip")
    responses.get(URL, body=good, content_type="application/zip")
    assert len(bpe.load_bpe(EPCI, vintage=2024, nomenclature=NOMENCLATURE_24)) == 5
    assert len(responses.calls) == 2


@responses.activate
def test_timeout_500_and_html():
    responses.get(URL, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(SourceError, match=r"bpe: no answer from .*BPE24.zip"):
        bpe.load_bpe(EPCI, vintage=2024, nomenclature=NOMENCLATURE_24)
    responses.replace(responses.GET, URL, status=500)
    with pytest.raises(SourceError, match=r"bpe: .*500"):
        bpe.load_bpe(EPCI, vintage=2024, nomenclature=NOMENCLATURE_24)
    responses.replace(responses.GET, URL, body="<html>Indisponible</html>",
                      content_type="text/html")
    with pytest.raises(SourceError, match=r"bpe: an HTML page came back from .*BPE24.zip"):
        bpe.load_bpe(EPCI, vintage=2024, nomenclature=NOMENCLATURE_24)


@responses.activate
def test_429_then_ok():
    responses.get(URL, status=429, headers={"Retry-After": "0"})
    responses.get(URL, body=zipped(SAMPLE), content_type="application/zip")
    assert len(bpe.load_bpe(EPCI, vintage=2024, nomenclature=NOMENCLATURE_24)) == 5


def test_offline_without_copy():
    _http.configure(offline=True)
    with pytest.raises(SourceError, match=r"bpe: offline mode .*BPE24.zip"):
        bpe.load_bpe(EPCI, vintage=2024, nomenclature=NOMENCLATURE_24)


@pytest.mark.network
def test_live_bpe_newest():
    _http.reset()
    year, url = bpe.discover_edition()
    assert year >= 2025 and url.endswith(f"BPE{year % 100:02d}.zip")
    labels = bpe.fetch_typequ(year)
    assert any("sage" in v.lower() for v in labels.values())
    gdf = bpe.load_bpe(EPCI)
    assert {"eaje", "mairie"} <= set(gdf["type"])


def test_a_type_whose_code_is_missing_is_no_longer_covered_by_the_bpe():
    """Unknown is not none: with D506 gone from the edition read, the BPE no longer lists
    the centres sociaux exhaustively, so the source record stops claiming it does."""
    from data_sources.store import LedgerEntry
    from data_sources.workspace import _ledger_record

    _, notes = bpe.check_mapping(bpe.bpe_type_mapping(2025),
                                 bpe.parse_nomenclature(TYPEQU25.replace(
                                     '"D506";"Centre social"\n', "")), vintage=2025)
    note = " ; ".join(notes)
    assert bpe.uncovered_types(note) == {"centre_social"}
    entry = LedgerEntry("bpe", "BPE", bpe.BPE.url, vintage="2025", status="ok", note=note)
    covers = _ledger_record(entry)["covers"].split(",")
    assert "centre_social" not in covers and {"eaje", "laep", "rpe"} <= set(covers)
    full = _ledger_record(LedgerEntry("bpe", "BPE", bpe.BPE.url, vintage="2025", status="ok"))
    assert "centre_social" in full["covers"].split(",")
