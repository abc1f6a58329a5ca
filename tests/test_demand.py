"""Tests of diagnosis.demand: demand points at IRIS / 200 m cell level, commune fallback.

Fixtures are small hand-made tables in the shapes of the loaders' outputs
(``data_sources.iris`` and ``data_sources.filosofi``), in EPSG:2154, with values that can
be checked by hand.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from diagnosis.demand import DEMAND_COLUMNS, DemandPoints, compute_demand_points
from diagnosis.errors import InputError
from diagnosis.travel import crow_fly_minutes_within, default_crow_fly_model

X0, Y0 = 350_000.0, 6_690_000.0


@pytest.fixture()
def communes():
    # a city of 4 x 2 km (44109) and a village beside it (44200), one with unknown births
    return gpd.GeoDataFrame(
        {"code_insee": ["44109", "44200", "44300"],
         "births_2024": [400.0, 12.0, np.nan],
         "population_2022": [40_000.0, 1_500.0, 800.0]},
        geometry=[box(X0, Y0, X0 + 4000, Y0 + 2000),
                  box(X0 + 4000, Y0, X0 + 6000, Y0 + 2000),
                  box(X0 + 6000, Y0, X0 + 7000, Y0 + 2000)],
        crs="EPSG:2154",
    ).to_crs("EPSG:4326")  # any CRS in; metric out


@pytest.fixture()
def iris():
    cells = [box(X0 + i * 1000, Y0, X0 + (i + 1) * 1000, Y0 + 2000) for i in range(4)]
    return gpd.GeoDataFrame(
        {"code_iris": [f"44109010{i}" for i in range(1, 5)] + ["442000000"],
         "code_insee": ["44109"] * 4 + ["44200"],
         "pop_0_2": [600.0, 300.0, 200.0, 100.0, 40.0],
         "population": [16_000.0, 12_000.0, 8_000.0, 4_000.0, 1_500.0]},
        geometry=[*cells, box(X0 + 4000, Y0, X0 + 6000, Y0 + 2000)], crs="EPSG:2154",
    )


def _grid_cells(code, n, x_start, young):
    geoms = [box(x_start + i * 200, Y0 + 800, x_start + (i + 1) * 200, Y0 + 1000)
             for i in range(n)]
    ids = [f"CRS3035RES200mN{2_000_000 + i}E{3_000_000 + int(x_start) // 200 + i}"
           for i in range(n)]
    return gpd.GeoDataFrame({"idcar_200m": ids, "code_insee": [code] * n,
                             "ind": [100.0] * n, "ind_0_3": young},
                            geometry=geoms, crs="EPSG:2154")


def test_iris_level_spreads_births_by_young_children(communes, iris):
    d = compute_demand_points(communes, iris=iris)
    assert isinstance(d, DemandPoints)
    assert list(d.points.columns) == list(DEMAND_COLUMNS)
    assert d.points.crs == "EPSG:2154"
    assert d.level == "iris" and d.level_label == "IRIS"
    city = d.points[d.points["code_insee"] == "44109"]
    assert city["level"].eq("iris").all() and len(city) == 4
    # 400 births x 600/1200, 300/1200, ...
    assert city["births"].tolist() == pytest.approx([200.0, 100.0, 200 / 3, 100 / 3])
    assert city["under3"].tolist() == pytest.approx([600.0, 300.0, 200.0, 100.0])
    assert city["population"].tolist() == [16_000.0, 12_000.0, 8_000.0, 4_000.0]
    assert city["births_estimated"].all() and city["share_basis"].eq("enfants").all()
    # the village has a single IRIS: it stays at commune level
    village = d.points[d.points["code_insee"] == "44200"]
    assert village["level"].tolist() == ["commune"]
    assert not village["births_estimated"].any()
    assert d.communes_by_level == {"commune": 2, "iris": 1, "carreau": 0}
    assert any("estimation" in n and "IRIS" in n for n in d.notes)


def test_sums_per_commune_equal_the_commune_totals(communes, iris):
    grid = _grid_cells("44109", 5, X0, [3.0, 0.0, 1.0, 4.0, 2.0])
    for kwargs in ({}, {"iris": iris}, {"grid": grid}, {"iris": iris, "grid": grid}):
        d = compute_demand_points(communes, **kwargs)
        sums = d.by_commune()
        np.testing.assert_allclose(sums.loc[["44109", "44200"], "births"], [400.0, 12.0])
        np.testing.assert_allclose(sums.loc[["44109", "44200"], "population"],
                                   [40_000.0, 1_500.0])
        np.testing.assert_allclose(sums.loc["44109", "under3"], 1200.0)
        # unknown births stay unknown, never 0
        assert np.isnan(sums.loc["44300", "births"])
        assert sums.loc["44300", "population"] == 800.0


def test_grid_is_finer_than_iris_and_keeps_other_communes(communes, iris):
    grid = _grid_cells("44109", 5, X0, [3.0, 0.0, 1.0, 4.0, 2.0])
    d = compute_demand_points(communes, iris=iris, grid=grid)
    assert d.level == "carreau" and d.level_label == "carreaux de 200 m"
    city = d.points[d.points["code_insee"] == "44109"]
    assert city["level"].eq("carreau").all()
    assert city["births"].tolist() == pytest.approx([120.0, 0.0, 40.0, 160.0, 80.0])
    # population is spread by the cells' population (100 each), not by the young
    assert city["population"].tolist() == [8_000.0] * 5
    # points are the cell centres
    assert city.geometry.iloc[0].equals(Point(X0 + 100, Y0 + 900))
    assert d.communes_by_level == {"commune": 2, "iris": 0, "carreau": 1}
    assert any("carreaux de 200 m" in n and "Filosofi" in n for n in d.notes)
    assert any("non couverte" in n for n in d.notes)


def test_straddling_cell_goes_to_the_commune_holding_its_centre(communes):
    grid = _grid_cells("44109", 2, X0 + 3800, [1.0, 3.0])  # second cell in 44200
    grid["code_insee"] = ["44109", ""]
    d = compute_demand_points(communes, grid=grid)
    assert d.points.loc[d.points["level"] == "carreau", "code_insee"].tolist() == [
        "44109", "44200"]
    # 44109's single cell takes all its births
    assert d.points.loc[d.points["origin_id"].str.startswith("carreau")
                        & d.points["code_insee"].eq("44109"), "births"].tolist() == [400.0]


def test_missing_young_children_falls_back_to_population_then_commune(communes, iris):
    iris = iris.copy()
    iris.loc[0, "pop_0_2"] = np.nan  # one unknown value: young shares unusable
    d = compute_demand_points(communes, iris=iris)
    city = d.points[d.points["code_insee"] == "44109"]
    assert city["share_basis"].eq("population").all()
    assert city["births"].tolist() == [160.0, 120.0, 80.0, 40.0]
    iris.loc[:, "population"] = np.nan
    iris.loc[:, "pop_0_2"] = np.nan
    d2 = compute_demand_points(communes, iris=iris)
    assert d2.points.loc[d2.points["code_insee"] == "44109", "level"].tolist() == ["commune"]
    assert any("sans effectif connu" in n for n in d2.notes)


def test_commune_only_uses_points_and_explicit_under3(communes):
    c = communes.copy()
    c["under3_estimate"] = [1100.0, 30.0, np.nan]
    d = compute_demand_points(c, under3_col="under3_estimate")
    assert d.level == "commune" and d.level_label == "communes"
    assert d.points["origin_id"].tolist() == ["commune:44109", "commune:44200",
                                              "commune:44300"]
    assert d.points["under3"].tolist()[:2] == [1100.0, 30.0]
    assert d.xy.shape == (3, 2)
    # representative point of the polygon, in EPSG:2154
    assert box(X0, Y0, X0 + 4000, Y0 + 2000).contains(d.points.geometry.iloc[0])


def test_access_differs_inside_one_commune(communes, iris):
    # one facility at the west end of the city, a 15-minute walk
    facility = np.array([[X0 + 200, Y0 + 1000]])
    fine = compute_demand_points(communes, iris=iris)
    coarse = compute_demand_points(communes)
    model = default_crow_fly_model("walk")
    t_fine = crow_fly_minutes_within(fine.xy, facility, max_minutes=15.0, model=model)
    t_coarse = crow_fly_minutes_within(coarse.xy, facility, max_minutes=15.0, model=model)
    reached = np.asarray(t_fine.sum(axis=1)).ravel() > 0
    city = (fine.points["code_insee"] == "44109").to_numpy()
    # some IRIS of the city are within 15 minutes, others are not
    assert reached[city].any() and not reached[city].all()
    births_reached = fine.points.loc[reached & city, "births"].sum()
    assert 0 < births_reached < 400
    # at commune level the whole city is in or out
    assert t_coarse[[0], :].nnz in (0, 1)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"births_col": "naissances"}, "naissances"),
    ({"under3_col": "u3"}, "u3"),
])
def test_missing_columns_are_named(communes, kwargs, match):
    with pytest.raises(InputError, match=match):
        compute_demand_points(communes, **kwargs)


def test_bad_layers_raise(communes, iris):
    with pytest.raises(InputError, match="iris lacks columns"):
        compute_demand_points(communes, iris=iris.drop(columns="pop_0_2"))
    with pytest.raises(InputError, match="no CRS"):
        compute_demand_points(communes, iris=iris.set_crs(None, allow_override=True))
    dup = pd.concat([iris, iris.iloc[[0]]])
    with pytest.raises(InputError, match="duplicate code_iris"):
        compute_demand_points(communes, iris=dup)
    with pytest.raises(InputError, match="duplicate code_insee"):
        compute_demand_points(pd.concat([communes, communes.iloc[[0]]]))
