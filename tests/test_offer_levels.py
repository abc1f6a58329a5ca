"""Offer by type against the département and France (diagnosis.offer_levels, report.offer).

Hand-made data (figures checked by hand): département 44 loaded with three communes, the
territory holds two of them. Crèches (EAJE) are listed by a source covering the type:
territory 30 + 10 places for 2 × 3 × 20 = 120 children -> 33.3 per 100; département adds
a crèche of 20 places and 3 × 40 children -> 60 / 240 = 25.0. MAM are listed completely
but one capacity is missing: a minimum. LAEP come from a partial directory: unknown,
never a rate from the few loaded. Sages-femmes are not loaded at all. The demo
(EPCI 200000438, 207 communes of Loire-Atlantique loaded) has a partial directory only.
"""

from __future__ import annotations

import math

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point

from diagnosis.context import CafCoverage
from diagnosis.offer_levels import LevelRate, compute_offer_levels, places_rate
from diagnosis.report.offer import fr_rate, offer_levels_part
from diagnosis.schema import Territory

TERRITORY = Territory("epci", "200000438", "CC Test", ("44001", "44002"), ("44",))


def _communes(births=(20.0, 20.0, 40.0)) -> pd.DataFrame:
    return pd.DataFrame({"code_insee": ["44001", "44002", "44003"],
                         "name": ["A", "B", "C"], "dep_code": ["44", "44", "44"],
                         "births_2024": list(births)})


def _facilities() -> gpd.GeoDataFrame:
    rows = [("eaje", "44001", 30.0), ("eaje", "44002", 10.0), ("eaje", "44003", 20.0),
            ("mam", "44001", 12.0), ("mam", "44002", float("nan")),
            ("laep", "44001", 8.0)]
    return gpd.GeoDataFrame({"type": [r[0] for r in rows], "code_insee": [r[1] for r in rows],
                             "capacity": [r[2] for r in rows]},
                            geometry=[Point(-2.0, 47.4)] * len(rows), crs="EPSG:4326")


COVERAGE = {"eaje": {"status": "complete"}, "mam": {"status": "complete"},
            "laep": {"status": "partial"}, "sage_femme": {"status": "unknown"}}
TYPES = ("eaje", "mam", "laep", "sage_femme")


@pytest.fixture
def levels():
    caf = CafCoverage(year=2022, by_commune=pd.DataFrame(
        {"code_insee": ["44001", "44002"], "name": ["A", "B"],
         "rate": [float("nan"), float("nan")]}), epci_rate=58.25)
    return compute_offer_levels(TERRITORY, _communes(), _facilities(), types=TYPES,
                                coverage=COVERAGE, caf=caf,
                                departement_name="Loire-Atlantique")


def test_exact_rates_of_a_completely_listed_type(levels):
    assert levels.rate("eaje", "territoire") == LevelRate(pytest.approx(100 * 40 / 120),
                                                          "exact")
    assert levels.rate("eaje", "departement").value == pytest.approx(25.0)
    assert levels.children["territoire"] == 120.0 and levels.children["departement"] == 240.0
    assert levels.departement_communes == 3
    assert levels.level_labels["departement"] == "Loire-Atlantique (44)"


def test_missing_capacity_is_a_minimum_partial_offer_and_france_unknown(levels):
    mam = levels.rate("mam", "territoire")
    assert mam.kind == "minimum" and mam.value == pytest.approx(10.0)  # 12 / 120
    laep = levels.rate("laep", "territoire")
    assert laep.value is None and "offre connue en partie" in laep.reason
    midwife = levels.rate("sage_femme", "departement")
    assert midwife.value is None and "offre non chargée" in midwife.reason
    france = levels.rate("eaje", "france")
    assert france.value is None and "toute la France" in france.reason
    assert levels.children["france"] is None


def test_caf_rate_of_the_epci_and_unknown_levels_name_their_source(levels):
    assert levels.caf["territoire"] == LevelRate(58.25, "exact") and levels.caf_year == 2022
    assert levels.caf["departement"].value is None
    assert "txcouv_pe_dep" in levels.caf["departement"].reason
    assert "data.caf.fr" in levels.caf["france"].reason


def test_a_commune_without_births_leaves_the_territory_unknown():
    out = compute_offer_levels(TERRITORY, _communes((20.0, float("nan"), 40.0)),
                               _facilities(), types=TYPES, coverage=COVERAGE)
    t = out.rate("eaje", "territoire")
    assert t.value is None and "enfants de moins de 3 ans non connus" in t.reason
    assert out.children["territoire"] is None
    assert out.caf["territoire"].value is None  # no CAF loaded: not a zero rate
    assert "data.caf.fr" in out.caf["territoire"].reason


def test_national_study_gives_france_from_its_own_communes():
    fr = Territory("pays", "FR", "France", ("44001", "44002", "44003"), ("44",))
    out = compute_offer_levels(fr, _communes(), _facilities(), types=TYPES, coverage=COVERAGE)
    assert out.rate("eaje", "france").value == pytest.approx(25.0)
    assert out.rate("eaje", "departement").value is None


def test_places_rate_never_divides_by_zero_children():
    r = places_rate(10.0, 0.0, complete_offer=True, all_capacities=True)
    assert r.value is None and r.kind == "unknown"
    assert places_rate(0.0, 50.0, complete_offer=True, all_capacities=True).value == 0.0


def test_report_table_prints_non_connu_and_minimum_never_zero(levels):
    part = offer_levels_part(levels)
    table, caf = part["tables"]
    rows = {r[0]: r for r in table["rows"]}
    assert rows["Crèches (EAJE)"][3:] == ["33,3", "25,0", "non connu"]
    assert rows["MAM"][2] == "12 (1 structure(s) sur 2)"
    assert rows["MAM"][3] == fr_rate(LevelRate(10.0, "minimum")) == "≥\u00a010,0"
    assert rows["LAEP"][3:] == ["non connu"] * 3
    assert table["columns"][4] == "Loire-Atlantique (44)"
    assert "toute la France" in table["note"] and "offre connue en partie" in table["note"]
    assert [r[1] for r in caf["rows"]] == ["58,2", "non connu", "non connu"]
    assert "txcouv_pe_dep" in caf["rows"][1][2]
    assert "240 (3 communes chargées)" in table["note"].replace("\u202f", " ")


def test_hostile_names_are_escaped_in_the_report():
    from data_sources.workspace import load_workspace
    from diagnosis.overview import compute_overview
    from diagnosis.report import render_report_html

    ws = load_workspace("200000438")
    ov = compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)
    lv = compute_offer_levels(TERRITORY, _communes(), _facilities(), types=TYPES,
                              coverage=COVERAGE, departement_name="<script>x</script>")
    html = render_report_html(ov, offer_levels=lv)
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt; (44)" in html


def test_demo_diagnosis_carries_the_table_and_the_pdf_prints_it():
    from data_sources.workspace import load_workspace
    from diagnosis.pipeline import DiagnosisParams, run_diagnosis
    from diagnosis.report import render_diagnosis_html
    from diagnosis.travel import Travel

    ws = load_workspace("200000438")
    d = run_diagnosis(ws, DiagnosisParams(territory="200000438", mode="crow"),
                      travel=Travel(), parts=("overview",))
    lv = d.offer_levels
    assert lv is not None and lv.departement_communes == 207
    assert lv.level_labels["departement"] == "Loire-Atlantique (44)"
    # the demo's directory is partial: no rate is invented from its few capacities
    assert lv.table[[c for c in lv.table if c.startswith("rate_")]].isna().all().all()
    assert lv.children["territoire"] == pytest.approx(3 * 353)
    assert math.isfinite(lv.children["departement"] or math.nan)
    html = render_diagnosis_html(d)
    section = html.split('id="offre"', 1)[1].split("</section>", 1)[0]
    # nothing is known: one sentence each, not two tables of « non connu »
    assert ("Places pour 100 enfants de moins de 3 ans, par type de structure : non "
            "connues pour chaque type") in section
    assert "Taux de couverture CAF du territoire, du département et de la France : non " \
        "connus (voir la partie 2)" in section
    assert "offre connue en partie" in section and "toute la France" in section
    # which types are not loaded at all is said, not merged with the partial ones
    assert "offre non chargée (Sages-femmes, Maisons des 1000 premiers jours)" in section
    assert "Places pour 100 enfants de moins de 3 ans, par type de structure</p>" \
        not in section
    assert "0,0" not in section


def test_loaded_departement_and_france_caf_rates_are_printed():
    caf = CafCoverage(year=2023, by_commune=pd.DataFrame(
        {"code_insee": ["44001"], "name": ["A"], "rate": [float("nan")]}), epci_rate=58.25,
        departement_rate=66.2, france_rate=60.9)
    out = compute_offer_levels(TERRITORY, _communes(), _facilities(), types=TYPES,
                               coverage=COVERAGE, caf=caf, departement_name="Loire-Atlantique")
    assert [out.caf[lv].value for lv in ("territoire", "departement", "france")] == \
        [58.25, 66.2, 60.9]
    caf_table = offer_levels_part(out)["tables"][-1]
    assert [r[1] for r in caf_table["rows"]] == ["58,2", "66,2", "60,9"]
    assert caf_table["rows"][2][2] == "Cnaf, data.caf.fr (2023)"


def test_context_reads_the_departement_and_france_columns():
    from diagnosis.context import compute_caf_coverage

    com = _communes().assign(caf_coverage_rate=float("nan"), caf_coverage_rate_epci=58.25,
                             caf_coverage_rate_dep=66.2, caf_coverage_rate_france=60.9,
                             caf_coverage_year=2023.0)
    caf = compute_caf_coverage(com)
    assert (caf.departement_rate, caf.france_rate, caf.year) == (66.2, 60.9, 2023)
    assert compute_caf_coverage(_communes().assign(caf_coverage_rate=1.0)).france_rate is None
