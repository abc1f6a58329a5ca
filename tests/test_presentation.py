"""Tests of diagnosis.presentation: the French tables the app shows, on the demo EPCI.

Expected values come from the analysis results themselves (diagnosis.analyses), so the
tables are checked to show the same numbers as the command line, only relabelled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_sources.workspace import load_workspace
from diagnosis.analyses import compute_access, compute_partners, compute_siting, find_site
from diagnosis.cohorts import compute_cohorts
from diagnosis.comparison import compare_territories
from diagnosis.gaps import PRIORITY_FACTORS
from diagnosis.overview import compute_overview
from diagnosis.presentation import (
    access_summary_table,
    cohort_table,
    comparison_metrics,
    comparison_table,
    facility_options,
    fr_value,
    host_options,
    institutions_table,
    partner_groups,
    partners_export_frame,
    priority_table,
    recommended_sites,
    scenario_table,
    sites_table,
    siting_input_problems,
    white_zone_table,
)

EPCI = "200000438"


@pytest.fixture(scope="module")
def loaded():
    ws = load_workspace(EPCI)
    ov = compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)
    return ws, ov


@pytest.fixture(scope="module")
def access(loaded):
    ws, ov = loaded
    return compute_access(ov, ws.facilities, max_minutes=20)


def test_priority_table_explains_the_score(access):
    t = priority_table(access.gaps)
    prio = access.gaps.layers["priority"]
    assert len(t) == len(prio) == 9
    assert t["Rang"].tolist() == list(range(1, 10))
    # every column says what it holds: births, multipliers, a score in weighted births
    assert "Naissances 2024" in t.columns and not any("(poids" in c for c in t.columns)
    score = "Score (naissances pondérées par les besoins)"
    mult = [c for c in t.columns if "moyenne" in c]
    assert len(mult) == len(PRIORITY_FACTORS) - 1
    # score = births x weighted mean of the multipliers (1 for births)
    w = access.gaps.params["weights"]
    expected = t["Naissances 2024"] * (w["births"] + sum(
        w[k] * t[c] for k, c in zip(PRIORITY_FACTORS[1:], mult, strict=True)))
    assert np.allclose(expected, t[score], rtol=0.02)
    top = prio.loc[prio["rank"] == 1].iloc[0]
    assert t.loc[0, "Commune"] == top["name"]
    assert t.loc[0, score] == round(float(top["score"]), 1)


def test_access_and_white_zone_tables(access):
    s = access.access.summary
    t = access_summary_table(access.access)
    assert t["Type"].tolist() == s["label"].tolist()
    mam = t.loc[t["Type"] == "MAM"].iloc[0]
    row = s.loc[s["type"] == "mam"].iloc[0]
    assert mam["Naissances à portée"] == row["births_within"]
    assert mam["Part des naissances à portée (%)"] == round(100 * row["share_births_within"], 1)
    w = white_zone_table(access.gaps)
    assert len(w) == len(access.gaps.summary)
    assert w["Communes en zone blanche"].max() <= 9


def test_siting_tables_and_recommended_sites(loaded):
    ws, ov = loaded
    sc = compute_siting(ov, ws.facilities, k_values=[1, 2], max_minutes=20)
    sites = recommended_sites(sc.main)
    rec = sc.main.sites.loc[sc.main.sites["status"] == "recommandé"]
    assert [s.site_id for s in sites] == rec["facility_id"].tolist()
    assert sites[0].explanation and sites[0].key[0] == sites[0].site_id
    assert -3 < sites[0].lon < 0 and 47 < sites[0].lat < 48
    t = sites_table(sc.main)
    assert t.loc[0, "Site"] == sites[0].name
    assert t.loc[0, "Naissances à portée"] == round(float(rec["births_covered"].iloc[0]))
    st = scenario_table(sc.table)
    assert list(st.columns) == ["Indicateur", *sc.table.columns]
    assert st.drop(columns="Indicateur").map(lambda v: isinstance(v, str)).all().all()
    share = st.loc[st["Indicateur"] == "Part des naissances couvertes après (%)"].iloc[0, 1]
    assert share == fr_value(sc.table.loc["Part des naissances couvertes après (%)"].iloc[0])


def test_siting_input_problems_in_french(loaded):
    _, ov = loaded
    assert siting_input_problems(ov, k_values=[1], host_types=["evs", "mairie"]) == []
    too_many = siting_input_problems(ov, k_values=[1, 3], host_types=["evs"])
    assert len(too_many) == 1 and "n'a que 1 lieu candidat" in too_many[0]
    assert siting_input_problems(ov, k_values=[2], host_types=["evs"],
                                 user_points=[(-2.15, 47.43)]) == []
    outside = siting_input_problems(ov, k_values=[1], host_types=["evs"],
                                    user_points=[(-1.55, 47.21)])
    assert len(outside) == 1 and "en dehors du territoire" in outside[0]
    assert "Aucun lieu candidat" in siting_input_problems(ov, k_values=[1],
                                                          host_types=["pmi"])[0]
    assert "Aucun type" in siting_input_problems(ov, k_values=[1], host_types=[])[0]


def test_partner_tables_and_csv_frame(loaded):
    ws, ov = loaded
    site = find_site(ws.facilities, "demo_directory:parentalite:24")
    res = compute_partners(ov, ws.facilities, site, max_minutes=20,
                           dep_name="Loire-Atlantique")
    near = res.layers["near_site"]
    groups = partner_groups(near)
    assert sum(len(g) for g in groups.values()) == len(near)
    assert list(groups) == list(dict.fromkeys(near["type_label"]))
    mairies = groups["Mairie"]
    assert mairies["Temps (min)"].is_monotonic_increasing
    inst = institutions_table(res.layers["institutions"])
    assert "Organisation" in inst and len(inst) == len(res.layers["institutions"])
    both = partners_export_frame(res.layers)
    assert both.columns[0] == "group"
    assert (both["group"] == "structure à portée").sum() == len(near)
    assert (both["group"] == "institution").sum() == len(res.layers["institutions"])


def test_options_cohorts_and_comparison(loaded):
    ws, ov = loaded
    hosts = host_options(ov)
    assert "demo_directory:parentalite:24" in hosts and len(hosts) == 10  # EVS + 9 mairies
    assert not any("Mairie" in v for v in facility_options(ov).values())
    plan = compute_cohorts(0.0, uptake_rate=0.15)
    t = cohort_table(plan)
    assert t.loc[t["Indicateur"] == "Mois pour réunir un groupe", "Valeur"].item() == "—"
    df = compare_territories([ov])
    metrics = comparison_metrics(df)
    assert next(iter(metrics)) == "births_2024"
    assert not any(c.startswith("rank_") for c in metrics)
    table = comparison_table(df)
    assert table.loc[0, "Naissances 2024"] == 353
    assert table.loc[0, "Couverture des données"] == "complète"
    assert isinstance(table, pd.DataFrame)
