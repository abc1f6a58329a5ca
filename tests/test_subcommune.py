"""Demand below the commune (issue 13.2): IRIS change access inside one commune and siting.

Hand-made urban fixture (Lambert-93, near Nantes): three 10 km communes side by side
(tests/test_overview.py); commune A is cut into four IRIS of 2.5 km from west to east,
with most young children in the east. A PMI stands at A's western edge; two relais are
candidate hosts inside A, one in the west IRIS and one in the east. With one point per
commune (its town hall, in the middle) the east is invisible; with IRIS, access differs
inside A and the siting picks the relais near the children.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from diagnosis.analyses import compute_access, compute_siting
from diagnosis.demand import compute_demand_points
from diagnosis.overview import compute_overview
from diagnosis.schema import Territory
from diagnosis.settings import METRIC_CRS
from diagnosis.travel import Travel
from tests.test_overview import X0, Y0, _communes, _facilities

TERRITORY = Territory("epci", "200000000", "T", ("44001", "44002", "44003"), ("44",))


def _iris() -> gpd.GeoDataFrame:
    cuts = [box(X0 + i * 2_500, Y0, X0 + (i + 1) * 2_500, Y0 + 10_000) for i in range(4)]
    return gpd.GeoDataFrame({
        "code_iris": [f"44001010{i}" for i in range(1, 5)],
        "code_insee": ["44001"] * 4,
        "nom_iris": ["Ouest", "Centre-ouest", "Centre-est", "Est"],
        "type_iris": ["H"] * 4,
        "pop_0_2": [5.0, 10.0, 25.0, 160.0],
        "population": [800.0, 900.0, 1_500.0, 6_800.0],
    }, geometry=cuts, crs=METRIC_CRS).to_crs("EPSG:4326")


@pytest.fixture(scope="module")
def urban():
    com = _communes()
    com["births_2024"] = [200.0, 50.0, 50.0]
    com["poverty_rate_2021"] = [15.0, 12.0, 10.0]
    com["single_parent_share_2022"] = [20.0, 10.0, 10.0]
    fac = _facilities([
        ("pmi", "44001", X0 + 500, Y0 + 5_000, np.nan),        # A's western edge
        ("rpe", "44001", X0 + 1_000, Y0 + 5_000, np.nan),      # west IRIS
        ("rpe", "44001", X0 + 9_000, Y0 + 5_000, np.nan),      # east IRIS
        ("mairie", "44001", X0 + 5_000, Y0 + 5_000, np.nan),
        ("mairie", "44002", X0 + 15_000, Y0 + 5_000, np.nan),
        ("mairie", "44003", X0 + 25_000, Y0 + 5_000, np.nan),
    ])
    ov = compute_overview(TERRITORY, com, fac)
    demand = compute_demand_points(ov.layers["communes"].to_crs(METRIC_CRS), iris=_iris())
    return ov, fac, demand


def test_births_are_spread_over_the_iris_and_add_up(urban):
    ov, _, demand = urban
    assert demand.level == "iris"
    a = demand.points.loc[demand.points["code_insee"] == "44001"]
    assert len(a) == 4 and a["births"].sum() == pytest.approx(200.0)
    assert a["births"].max() == pytest.approx(200.0 * 160 / 200)  # the east IRIS


def test_access_differs_inside_one_commune(urban):
    ov, fac, demand = urban
    res = compute_access(ov, fac, travel=Travel(mode="walk"), max_minutes=60, types=["pmi"],
                         demand=demand)
    origins = res.access.origins
    a = origins.loc[origins["code_insee"] == "44001"].sort_values("origin_id")
    minutes = a["minutes_nearest_pmi"].to_numpy()
    assert np.all(np.diff(minutes) > 0)  # farther from the PMI going east
    assert res.access.params["demand_level"] == "IRIS"
    row = res.access.table.set_index("code_insee").loc["44001"]
    # the commune row is the births-weighted view of its IRIS, not its town hall alone
    assert 0 < row["share_within_pmi"] < 1
    town_hall = compute_access(ov, fac, travel=Travel(mode="walk"), max_minutes=60,
                               types=["pmi"]).access.table.set_index("code_insee")
    assert row["minutes_nearest_pmi"] != pytest.approx(town_hall.loc["44001",
                                                                     "minutes_nearest_pmi"])
    assert any("IRIS" in n for n in res.notes)


def test_siting_inside_a_city_follows_the_children(urban):
    ov, fac, demand = urban
    walk = Travel(mode="walk")
    fine = compute_siting(ov, fac, k_values=[1], travel=walk, max_minutes=30,
                          host_types=["rpe"], demand=demand)
    rec = fine.main.sites.loc[fine.main.sites["status"] == "recommandé"]
    assert rec["facility_id"].tolist() == ["t:2"]  # the east relais, near the children
    coarse = compute_siting(ov, fac, k_values=[1], travel=walk, max_minutes=30,
                            host_types=["rpe"])
    # one point per commune (its central town hall, 4 km from each relais) sees no birth
    # within 30 min of either: the answer depends on the sub-commune demand
    sites = coarse.main.sites
    coarse_rec = sites.loc[sites["status"] == "recommandé", "facility_id"].tolist() \
        if "status" in sites else []
    assert coarse_rec != ["t:2"]
    assert coarse.main.summary.get("births_covered_after", 0) == 0


def test_the_report_says_which_demand_level_was_used(urban):
    from diagnosis.report import render_report_html

    ov, fac, demand = urban
    fine = compute_access(ov, fac, travel=Travel(mode="walk"), max_minutes=60, types=["pmi"],
                          demand=demand)
    html = render_report_html(ov, access=fine.access, gaps=fine.gaps)
    assert "Points de départ des familles : IRIS" in html
    coarse = compute_access(ov, fac, travel=Travel(mode="walk"), max_minutes=60, types=["pmi"])
    html = render_report_html(ov, access=coarse.access, gaps=coarse.gaps)
    assert "la mairie de chaque commune" in html
