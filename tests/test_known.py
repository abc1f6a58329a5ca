"""Known, partial, unknown: one rule for every output (issue 20, item 3).

A count or share is printed as a number only when a source listing the facility type
completely was loaded; a partial source gives a bound (« ≥ 3 », « ≤ 8 »), and nothing
loaded gives « non connu(e) », never 0: CLI tables, JSON (``null``), comparison,
exports. Totals of needs say « sur N communes connues sur M » when a commune's births
are not known.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point, box

from diagnosis.__main__ import main
from diagnosis.comparison import compare_territories, comparison_row
from diagnosis.exports import build_export_layers
from diagnosis.formatting import fr_known
from diagnosis.overview import compute_overview
from diagnosis.schema import Territory, validate_facilities
from diagnosis.settings import METRIC_CRS

X0, Y0 = 300_000.0, 6_700_000.0
FINESS = {"key": "finess", "title": "FINESS", "covers": "pmi", "vintage": "2025",
          "licence": "Licence Ouverte 2.0", "attribution": "DREES, FINESS"}
TERR = Territory("epci", "200000000", "T", ("44001", "44002", "44003"), ("44",))


def _communes(births=(100.0, 50.0, np.nan)) -> gpd.GeoDataFrame:
    """Three 10 km communes; the third is missing from the INSEE file (births NaN)."""
    polys = [box(X0 + i * 10_000, Y0, X0 + (i + 1) * 10_000, Y0 + 10_000) for i in range(3)]
    return gpd.GeoDataFrame({"code_insee": ["44001", "44002", "44003"],
                             "name": ["A", "B", "C"], "births_2024": list(births)},
                            geometry=polys, crs=METRIC_CRS).to_crs("EPSG:4326")


def _facilities(rows) -> gpd.GeoDataFrame:
    recs = [{"facility_id": f"t:{i}", "type": typ, "subtype": "", "name": f"F{i}",
             "address": "", "postcode": "", "code_insee": code, "capacity": np.nan,
             "operator": "", "phone": "", "email": "", "website": "", "source": "t",
             "source_id": str(i), "source_date": "2024", "position_precision": "address",
             "geometry": Point(x, y)} for i, (typ, code, x, y) in enumerate(rows)]
    gdf = gpd.GeoDataFrame(recs, geometry="geometry", crs=METRIC_CRS).to_crs("EPSG:4326")
    return validate_facilities(gdf, source="test")


def _overview():
    # one EAJE (partial source: a user's file), no PMI but FINESS lists every PMI, no LAEP
    fac = _facilities([("eaje", "44001", X0 + 5_000, Y0 + 5_000)])
    return compute_overview(TERR, _communes(), fac, threshold_m=6_000,
                            types=("pmi", "eaje", "laep"), sources=[FINESS])


def test_overview_says_unknown_not_zero():
    s = _overview().summary
    w = s["births_within_threshold"]
    assert w["pmi"] == {"births": 0.0, "share": 0.0, "status": "complete",
                        "lower_bound": False}
    assert w["eaje"]["births"] == 100.0 and w["eaje"]["lower_bound"] is True
    assert w["laep"]["births"] is None and w["laep"]["share"] is None
    assert (s["n_communes_total"], s["n_communes_births_known"]) == (3, 2)
    assert s["communes_births_unknown"] == ["44003"]
    assert s["births_2024"] == 150.0


def test_fr_known_rule():
    assert fr_known(0, status="complete") == "0"
    assert fr_known(0, status="partial") == "non connu"
    assert fr_known(None, status="complete") == "non connu"
    assert fr_known(2, status="partial") == "≥\u00a02"
    assert fr_known(3, status="partial", bound="upper", total=3) == "non connu"


def test_comparison_coverage_is_computed_and_unknown_offer_is_empty():
    ov = _overview()
    row = comparison_row(ov)
    # no commune is missing from the geography, but one has no births: partial
    assert row["coverage_partial"] is True
    assert "44003" in row["coverage_note"]
    assert row["n_pmi"] == 0 and row["n_laep"] is None and row["n_eaje"] == 1
    assert np.isnan(row["share_within_laep"]) and row["share_within_pmi"] == 0.0
    df = compare_territories([ov])
    assert pd.isna(df.loc[0, "n_laep"]) and df.loc[0, "n_pmi"] == 0


def test_export_leaves_unknown_empty():
    layers = build_export_layers(_overview())
    com = layers["communes_indicateurs"].set_index("code_insee")
    assert com["n_pmi"].tolist() == [0, 0, 0]  # FINESS lists every PMI: 0 is a fact
    assert com["n_eaje"].isna().tolist() == [False, True, True]
    assert com["n_laep"].isna().all() and com["within_laep"].isna().all()


def test_cli_summary_of_demo_epci_prints_no_zero_for_unknown_types(capsys):
    # the demo's partial directory lists no PMI in this EPCI and no source covers PMI
    assert main(["summary", "--territory", "200000438"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "Centres de PMI" in line)
    assert "non connu" in row
    cells = [c.strip() for c in row.split("│")[2:-1]]
    assert "0" not in cells and "0 %" not in cells and "9" not in cells
    mam = next(line for line in out.splitlines() if "MAM" in line)
    assert "≥\u00a085" in mam and "≥\u00a024\u00a0%" in mam
    assert main(["summary", "--territory", "200000438", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["births_within_threshold"]["pmi"]["births"] is None
    assert data["births_within_threshold"]["pmi"]["share"] is None
    assert data["births_within_threshold"]["mam"]["lower_bound"] is True


def test_pdf_comparison_prints_no_zero_percent_for_unknown():
    from diagnosis.report.site import _comparison_part

    ov = _overview()
    other = compute_overview(Territory("epci", "200000009", "U", ("44002",), ("44",)),
                             _communes(), _facilities([("eaje", "44001", X0 + 5_000,
                                                        Y0 + 5_000)]),
                             threshold_m=6_000, types=("pmi", "eaje", "laep"),
                             sources=[FINESS])
    part = _comparison_part(compare_territories([ov, other]), ov, attribution="test")
    table = part["tables"][0]
    col = table["columns"].index("À portée : LAEP")
    cells = [r[col] for r in table["rows"]]
    assert cells == ["non connue", "non connue"]  # no LAEP known anywhere: not « 0 % »
    pmi = [r[table["columns"].index("À portée : Centres de PMI")] for r in table["rows"]]
    assert pmi == ["0\u00a0%", "0\u00a0%"]  # FINESS lists every PMI: 0 % is a fact
    cover = [r[-1] for r in table["rows"]]
    assert "partielle (sur 2 communes connues sur 3)" in cover  # C's births unknown


def test_peer_group_zone_says_communes_without_known_births():
    from shapely.geometry import Point as P

    from diagnosis.analyses import Site, compute_site_catchment, compute_site_cohorts
    from diagnosis.travel import Travel

    ov = _overview()
    com = _communes()
    # a site between A, B and C: every town hall within 60 min by car (crow-fly)
    site_pt = gpd.GeoSeries([P(X0 + 15_000, Y0 + 5_000)], crs=METRIC_CRS).to_crs("EPSG:4326")
    site = Site(site_id="s", name="Site", geometry=site_pt.iloc[0], facility_type="pmi",
                code_insee="44002")
    catch = compute_site_catchment(ov, com, site, travel=Travel(), max_minutes=60)
    assert len(catch.communes) == 3 and catch.births_per_year == 150.0
    plan = compute_site_cohorts(catch, uptake_rate=0.2)
    assert "dont 1 sans naissances connues" in plan.params["scope"]
    assert any("C" in w and "minimum" in w for w in plan.warnings)


def test_cli_summary_total_says_how_many_communes_it_covers(capsys):
    from diagnosis.__main__ import _clean, _print_table

    data = _clean(dict(_overview().summary))
    data["notices"], data["territory"]["note"] = [], ""
    _print_table(data)
    out = capsys.readouterr().out
    assert "Naissances 2024 : 150 (sur 2 communes connues sur 3)" in " ".join(out.split())
    pmi = next(line for line in out.splitlines() if "Centres de PMI" in line)
    assert [c.strip() for c in pmi.split("│")[2:-1]][0] == "0"  # FINESS: 0 is a fact
    laep = next(line for line in out.splitlines() if "LAEP" in line)
    assert "non connu" in laep and " 0 " not in laep
