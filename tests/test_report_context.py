"""Report part « Évolutions, couverture CAF et quartiers prioritaires» (diagnosis.report.context).

Births over ten years computed by diagnosis.context from a hand-made table (two communes,
2015-2024, one commune's 2019 births secret), a CAF coverage finding and no QPV loaded:
what is known is stated with its year, what is not says « non connu » and what to load.
"""

from __future__ import annotations

import pandas as pd
import pytest

from diagnosis.context import CafCoverage, TerritoryContext, compute_births_trend
from diagnosis.report.context import context_section


@pytest.fixture
def context():
    data = {"code_insee": ["44129", "44154"], "name": ["Pontchâteau", "<b>Sainte</b>"]}
    for i, year in enumerate(range(2015, 2025)):
        data[f"births_{year}"] = [100.0 + 3 * i, 50.0]
    data["births_2019"] = [112.0, float("nan")]
    trend = compute_births_trend(pd.DataFrame(data))
    caf = CafCoverage(year=2022, by_commune=pd.DataFrame(
        {"code_insee": ["44129", "44154"], "name": ["Pontchâteau", "<b>Sainte</b>"],
         "rate": [61.5, float("nan")]}), epci_rate=58.25)
    return TerritoryContext(births_trend=trend, caf_coverage=caf, qpv=None)


def test_known_findings_with_their_year_unknown_ones_say_non_connu(context):
    s = context_section(context)
    text = " ".join(s["paragraphs"])
    assert "2015-2024, tendance hausse (évolution 13,7 %" in text  # 153 -> 174 a year
    assert "Taux de couverture CAF (2022) : intercommunalité 58,2 places" in text
    assert "département non connu ; France non connu" in text
    assert "Quartiers prioritaires (QPV) : non connus" in text
    years = s["tables"][0]
    cells = [row for row in years["rows"]]
    assert cells[4][1] in ("—", "non connu")  # 2019: one commune secret, no partial total
    assert cells[0] == ["2015", "150", "2 sur 2"]
    caf_rows = s["tables"][1]["rows"]
    assert caf_rows[1][1] == "non publié"


def test_report_html_holds_the_part_and_escapes_names(context):
    from data_sources.workspace import load_workspace
    from diagnosis.overview import compute_overview
    from diagnosis.report import render_report_html

    ws = load_workspace("200000438")
    ov = compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)
    html = render_report_html(ov, territory_context=context)
    assert "Évolutions, couverture CAF et quartiers prioritaires" in html
    assert "&lt;b&gt;Sainte&lt;/b&gt;" in html and "<b>Sainte</b>" not in html
    bare = render_report_html(ov)
    assert "Naissances sur dix ans : non connues" in bare


def test_one_year_of_births_is_not_a_trend():
    trend = compute_births_trend(pd.DataFrame({"code_insee": ["44129"], "name": ["P"],
                                               "births_2024": [100.0]}))
    s = context_section(TerritoryContext(births_trend=trend, caf_coverage=None, qpv=None))
    assert "une seule année chargée (2024), tendance non connue" in s["paragraphs"][0]


def test_annex_names_neighbour_communes_and_sources_by_title():
    from data_sources.workspace import load_workspace
    from diagnosis.overview import compute_overview
    from diagnosis.report import ReportMeta, render_report_html

    ws = load_workspace("200000438")
    ov = compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)
    html = render_report_html(ov, context=ws.communes, meta=ReportMeta(sources=ws.sources))
    annex = html.split('id="annexe-annuaire"', 1)[1]
    assert "demo_directory" not in annex and "annuaire_mairies" not in annex
    assert "Annuaire partiel des structures de Loire-Atlantique" in annex
    assert "<td>44109</td>" not in annex and "Nantes" in annex


def test_action_plan_names_unknown_data_and_the_recommended_site(context):
    from types import SimpleNamespace

    import geopandas as gpd

    from data_sources.workspace import load_workspace
    from diagnosis.overview import compute_overview
    from diagnosis.report.action import action_section

    ws = load_workspace("200000438")
    ov = compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)
    sites = gpd.GeoDataFrame({"name": ["Mairie de <i>X</i>"], "status": ["recommandé"]},
                             geometry=gpd.points_from_xy([-2.1], [47.4]), crs="EPSG:4326")
    rows = action_section(ov, siting=SimpleNamespace(layers={"sites": sites}),
                          territory_context=context)["tables"][0]["rows"]
    text = " ".join(" ".join(r) for r in rows)
    assert "Visiter le site recommandé n° 1 : Mairie de <i>X</i>" in text  # escaped later
    assert "quartiers prioritaires" in text  # QPV not loaded in this context
    assert "naissances sur dix ans" not in text  # the trend is known here
    bare = " ".join(" ".join(r) for r in action_section(ov)["tables"][0]["rows"])
    assert "naissances sur dix ans" in bare and "taux de couverture CAF" in bare
