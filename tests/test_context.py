"""Tests of diagnosis.context (births over ten years, CAF coverage, QPV families).

Small synthetic tables whose figures can be checked by hand: communes with
``births_<year>`` columns (secret values as NaN, as Melodi gives them), the CAF columns
written by data_sources.workspace.with_caf_coverage, 200 m cells in EPSG:3035 and IRIS
squares in EPSG:2154 under a QPV square, in the shapes of the loaders' outputs
(data_sources.filosofi.FILOSOFI_COLUMNS, data_sources.iris.IRIS_COLUMNS,
data_sources.qpv.QPV_COLUMNS).
"""

from __future__ import annotations

import doctest
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from diagnosis import context
from diagnosis.errors import InputError
from diagnosis.schema import Territory

T = Territory("epci", "200000000", "CC test", ("44001", "44002"), ("44",))


def communes(**extra):
    years = range(2013, 2025)  # twelve years: the window keeps the last ten
    data = {"code_insee": ["44001", "44002", "44999"], "name": ["Aval", "Bourg", "Ailleurs"]}
    for y in years:
        data[f"births_{y}"] = [100.0 + 10 * (y - 2013), 50.0, 7.0]
    df = pd.DataFrame(data)
    df.loc[1, "births_2019"] = np.nan  # secret one year
    for k, v in extra.items():
        df[k] = v
    return df


def test_doctests():
    assert doctest.testmod(context).failed == 0


def test_births_trend_over_the_last_ten_years():
    trend = context.compute_births_trend(communes().iloc[:2])
    assert trend.years == tuple(range(2015, 2025)) and trend.period_fr == "2015-2024"
    by = trend.by_commune.set_index("code_insee")
    # Aval: 2015-2017 mean 130, 2022-2024 mean 200 -> +53.8 %
    assert by.loc["44001", "change_pct"] == pytest.approx(100 * (200 - 130) / 130)
    assert by.loc["44001", "trend"] == "hausse"
    assert by.loc["44002", "trend"] == "stable"
    terr = trend.territory.set_index("year")
    assert terr.loc[2024, "births"] == 210.0 + 50.0
    assert math.isnan(terr.loc[2019, "births"])  # a commune secret: no partial total
    assert terr.loc[2019, "communes_known"] == 1 and terr.loc[2019, "communes_total"] == 2
    assert trend.trend == "hausse"


def test_one_year_is_not_a_trend_and_no_births_is_unknown():
    one = communes()[["code_insee", "name", "births_2024"]]
    trend = context.compute_births_trend(one)
    assert trend.years == (2024,) and trend.trend == "non connue"
    assert set(trend.by_commune["trend"]) == {"non connue"}
    assert context.compute_births_trend(one[["code_insee", "name"]]) is None
    with pytest.raises(InputError, match="years=1"):
        context.compute_births_trend(one, years=1)


def test_caf_coverage_keeps_unpublished_rates_unknown():
    com = communes(caf_coverage_rate=[61.5, np.nan, 40.0],
                   caf_coverage_rate_epci=[55.0, 55.0, np.nan],
                   caf_coverage_year=[2023.0, 2023.0, np.nan])
    caf = context.compute_caf_coverage(com)
    assert caf.year == 2023 and caf.epci_rate == 55.0
    rates = caf.by_commune.set_index("code_insee")["rate"]
    assert rates["44001"] == 61.5 and math.isnan(rates["44002"])
    assert context.compute_caf_coverage(communes()) is None  # not loaded: unknown


def qpv_layer():
    # a 400 m square QPV in Lambert-93, given in WGS84 as the loader gives it
    poly = gpd.GeoSeries([box(300_000, 6_700_000, 300_400, 6_700_400)], crs=2154).to_crs(4326)
    gdf = gpd.GeoDataFrame({"code_qp": ["QN04499M"], "lib_qp": ["Les Tilleuls"],
                            "communes": ["44001"], "basis": ["contours"]},
                           geometry=poly.to_numpy(), crs=4326)
    gdf.attrs["basis"] = "contours"
    return gdf


def test_children_in_a_qpv_from_the_cells():
    centres = [(300_100, 6_700_100), (300_300, 6_700_300), (301_100, 6_700_100)]
    cells = gpd.GeoDataFrame(
        {"idcar_200m": ["a", "b", "c"], "code_insee": ["44001"] * 3, "ind": [100.0, 80.0, 50.0],
         "ind_0_3": [6.0, 4.0, 5.0]},
        geometry=[box(x - 100, y - 100, x + 100, y + 100) for x, y in centres], crs=2154
    ).to_crs(4326)
    q = context.compute_qpv(communes().iloc[:2], qpv_layer(), grid=cells)
    by = q.by_commune.set_index("code_insee")
    assert by.loc["44001", "children_in_qpv"] == 10.0  # cells a and b lie inside
    assert by.loc["44001", "children_share"] == pytest.approx(10 / 15)
    assert by.loc["44002", "qpv_count"] == 0 and math.isnan(by.loc["44002", "children_in_qpv"])
    assert q.qpv.set_index("code_qp").loc["QN04499M", "population"] == 180.0
    assert q.statements_fr == ["Aval compte 1 QPV (Les Tilleuls) : environ 10 enfants de 0 à "
                               "3 ans (carreaux Filosofi) y vivent (67 % de ceux de la "
                               "commune)."]


def test_children_in_a_qpv_from_the_iris_by_area():
    # IRIS 1 is half inside the QPV square, IRIS 2 outside
    iris = gpd.GeoDataFrame(
        {"code_iris": ["440010101", "440010102"], "code_insee": ["44001", "44001"],
         "population": [1000.0, 500.0], "pop_0_2": [40.0, 20.0]},
        geometry=[box(300_200, 6_700_000, 300_600, 6_700_400),
                  box(301_000, 6_700_000, 301_400, 6_700_400)], crs=2154).to_crs(4326)
    q = context.compute_qpv(communes().iloc[:2], qpv_layer(), iris=iris)
    by = q.by_commune.set_index("code_insee")
    assert by.loc["44001", "children_in_qpv"] == pytest.approx(20.0, rel=1e-3)
    assert by.loc["44001", "children_share"] == pytest.approx(20 / 60, rel=1e-3)
    assert "IRIS, au prorata de la surface" in q.children_basis


def test_commune_list_says_a_qpv_exists_without_a_count_and_unloaded_is_unknown():
    from data_sources.qpv import qpv_from_list

    listed = qpv_from_list(["44184", "44129"])
    q = context.compute_qpv(pd.DataFrame({"code_insee": ["44184", "44129"],
                                          "name": ["Saint-Nazaire", "Pontchâteau"]}), listed)
    assert q.basis == "liste communale" and q.children_basis == ""
    assert q.statements_fr[0].startswith("Saint-Nazaire compte 3 QPV (")
    assert len(q.statements_fr) == 1  # Pontchâteau has none
    unknown = context.compute_qpv(communes(), None)
    assert unknown.statements_fr == ["Quartiers prioritaires (QPV) non chargés : non connus."]


def test_context_of_the_territory_only():
    ctx = context.compute_context(T, communes(caf_coverage_rate=[1.0, 2.0, 3.0]),
                                  qpv=qpv_layer())
    assert list(ctx.births_trend.by_commune["code_insee"]) == ["44001", "44002"]
    assert ctx.qpv.basis == "contours" and ctx.caf_coverage.year is None
