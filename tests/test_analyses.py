"""The shared wiring of the analyses (diagnosis/analyses.py).

A hand-checkable grid (three 10 km square communes in a row, Lambert-93), the demo EPCI,
and the real OSM extract of Toulouse (road-network path, skipped without ../shared).
"""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import Point

from data_sources.osm import road_graph_for, road_graph_from_osm_file
from data_sources.workspace import load_workspace
from diagnosis.analyses import (
    Site,
    compute_access,
    compute_catchment,
    compute_partners,
    compute_site_catchment,
    compute_site_catchments,
    compute_site_cohorts,
    compute_siting,
    find_site,
)
from diagnosis.errors import InputError
from diagnosis.overview import compute_overview
from diagnosis.schema import Territory
from diagnosis.settings import CROWFLY_DRIVE_ACCESS_MIN, METRIC_CRS
from diagnosis.travel import DETOUR_FACTOR, DRIVE_SPEED_KMH, Travel
from tests.conftest import require_shared
from tests.test_overview import X0, Y0, _communes, _facilities

TERRITORY = Territory("epci", "200000000", "T", ("44001", "44002", "44003"), ("44",))


def _grid(rows):
    com = _communes()
    com["poverty_rate_2021"] = [10.0, 20.0, np.nan]
    com["single_parent_share_2022"] = [12.0, 8.0, 5.0]
    fac = _facilities(rows)
    return com, fac, compute_overview(TERRITORY, com, fac)


@pytest.fixture(scope="module")
def grid():
    return _grid([
        ("pmi", "44001", X0 + 5_000, Y0 + 5_000, np.nan),     # at A's town hall
        ("eaje", "44003", X0 + 25_000, Y0 + 5_000, 20.0),     # at C's town hall
        ("mairie", "44001", X0 + 5_000, Y0 + 5_000, np.nan),
        ("mairie", "44002", X0 + 15_000, Y0 + 5_000, np.nan),
        ("mairie", "44003", X0 + 25_000, Y0 + 5_000, np.nan),
    ])


def _minutes(km: float) -> float:
    """The crow-fly model by hand: access term + distance x detour at the car speed."""
    trip = km * 1000 * DETOUR_FACTOR / (DRIVE_SPEED_KMH * 1000 / 60)
    return CROWFLY_DRIVE_ACCESS_MIN + trip if km > 0 else 0.0


def test_crow_fly_access_matches_hand_computation(grid):
    com, fac, ov = grid
    res = compute_access(ov, fac, max_minutes=21)
    t = res.access.table.set_index("code_insee")
    # A -> PMI at its hall: 0; B -> 10 km (20.5 min); C -> 20 km (40 min, beyond 21 min;
    # routed up to 2 x 21 = 42 min, so its distance is still known)
    assert t.loc["44001", "minutes_nearest_pmi"] == pytest.approx(0)
    assert t.loc["44002", "minutes_nearest_pmi"] == pytest.approx(_minutes(10))
    assert t.loc["44003", "minutes_nearest_pmi"] == pytest.approx(_minutes(20))
    assert res.travel.engine == "crow_fly"
    assert any("vol d'oiseau" in n for n in res.notes)  # every output says it is estimated
    white = res.gaps.layers["white_zones"]
    assert set(white.loc[white["type"] == "pmi", "code_insee"]) == {"44003"}
    prio = res.gaps.layers["priority"]
    assert prio["rank"].tolist() == sorted(prio["rank"].tolist())
    contrib = prio[[c for c in prio.columns if c.startswith("contrib_")]].sum(axis=1)
    assert np.allclose(contrib, prio["score"])  # each factor's share adds up to the score


def test_access_with_no_facility_of_the_types_is_a_clear_error(grid):
    _, fac, ov = grid
    with pytest.raises(InputError, match="no facility of the types"):
        compute_access(ov, fac, types=["laep"])
    with pytest.raises(InputError, match="max_minutes .* got -5"):  # as typed, not doubled
        compute_access(ov, fac, max_minutes=-5)


def test_crow_fly_catchment_is_a_disc_of_the_reach():
    c = compute_catchment(Point(-1.55, 47.22), max_minutes=15)
    radius_m = (15 - CROWFLY_DRIVE_ACCESS_MIN) * DRIVE_SPEED_KMH * 1000 / 60 / DETOUR_FACTOR
    assert c.to_crs(METRIC_CRS).area.iloc[0] == pytest.approx(np.pi * radius_m**2, rel=2e-3)
    assert c["engine"].iloc[0] == "crow_fly"


def test_siting_explains_and_adds_neighbours(grid):
    com, fac, ov = grid
    sc = compute_siting(ov, fac, k_values=(1, 2), max_minutes=21)
    assert len(sc.results) == 2 and list(sc.table.columns) == ["1 site, 21 min",
                                                               "2 sites, 21 min"]
    sites = sc.main.sites
    rec = sites.loc[sites["status"] == "recommandé"].iloc[0]
    # the middle town hall reaches all three halls within 21 min (10 km = 1 + 19.5 min)
    assert rec["name"] == "F3" and rec["births_covered"] == pytest.approx(160)
    assert rec["minutes_nearest_pmi"] == pytest.approx(_minutes(10))
    assert np.isnan(rec["minutes_nearest_maternite"])  # none loaded: unknown, not 0
    assert rec["partners_within"] == 2  # the PMI and the EAJE, not the town halls
    assert "-0" not in rec["explanation"]


def test_neighbours_of_sites_shared_by_scenarios(grid):
    # each distinct site is timed once per service standard and its row keeps its own
    # values in every scenario, whatever its rank: F3 (B's hall) has the PMI and the EAJE
    # 10 km away (20.5 min: partners at 21 min, not at 15), F0 is the PMI at A's hall
    # (not its own partner), F1 the EAJE 20 km from the PMI
    _, fac, ov = grid
    sc = compute_siting(ov, fac, k_values=(1, 2, 3), max_minutes=21, other_minutes=(15,))
    expected = {21.0: {"t:3": (_minutes(10), 2), "t:0": (0.0, 0), "t:1": (_minutes(20), 0)},
                15.0: {"t:3": (_minutes(10), 0), "t:0": (0.0, 0), "t:1": (_minutes(20), 0)}}
    seen = set()
    for res in sc.results:
        want = expected[res.params["max_minutes"]]
        for row in res.sites.itertuples():
            assert row.minutes_nearest_pmi == pytest.approx(want[row.facility_id][0])
            assert row.partners_within == want[row.facility_id][1]
            assert np.isnan(row.minutes_nearest_maternite)  # none loaded: unknown
            seen.add((res.params["max_minutes"], row.facility_id))
    assert len(seen) == 6 and len(sc.results) == 6


def test_siting_bad_input(grid):
    _, fac, ov = grid
    with pytest.raises(InputError, match="larger than the 5 candidate"):
        compute_siting(ov, fac, k_values=(6,))
    import geopandas as gpd

    outside = gpd.GeoDataFrame(geometry=[Point(2.35, 48.85)], crs="EPSG:4326")
    with pytest.raises(InputError, match="inside"):
        compute_siting(ov, fac, user_points=outside)


def test_catchments_of_several_sites_from_one_matrix(grid):
    # town halls 10 km apart in a row: 0 min at its own hall, 20.5 min to the next one,
    # 40 min to the far one (beyond 21 min); ties keep the communes' order
    com, fac, ov = grid
    assert _minutes(10) < 21 < _minutes(20)
    sites = [find_site(fac, name) for name in ("F2", "F4", "F3")]  # halls of A, C, B
    got = compute_site_catchments(ov, com, sites, max_minutes=21)
    assert [c.communes["code_insee"].tolist() for c in got] == [
        ["44001", "44002"], ["44003", "44002"], ["44002", "44001", "44003"]]
    assert [c.births_per_year for c in got] == [150.0, 60.0, 160.0]
    assert got[2].communes["minutes"].tolist() == pytest.approx([0, _minutes(10),
                                                                 _minutes(10)])
    assert [c.site_name for c in got] == ["F2", "F4", "F3"]
    for site, batch in zip(sites, got, strict=True):  # one site alone: the same catchment
        one = compute_site_catchment(ov, com, site, max_minutes=21)
        assert one.communes.equals(batch.communes) and one.years == batch.years
    assert compute_site_catchments(ov, com, [], max_minutes=21) == ()


def test_partners_and_cohorts_of_a_site(grid):
    com, fac, ov = grid
    site = find_site(fac, "F3")
    assert isinstance(site, Site) and site.site_id == "t:3"
    p = compute_partners(ov, fac, site, max_minutes=21, dep_name="Loire-Atlantique")
    near = p.layers["near_site"]
    assert "t:3" not in set(near["facility_id"])  # a site is not its own partner
    assert set(near["type"]) == {"pmi", "eaje", "mairie"}
    assert (near["minutes"] <= 21).all()
    assert "Loire-Atlantique" in " ".join(p.layers["institutions"]["organisation"])
    catch = compute_site_catchment(ov, com, site, max_minutes=21)
    assert catch.births_per_year == pytest.approx(160)
    plan = compute_site_cohorts(catch, uptake_rate=0.25)
    assert plan.groups_per_year == pytest.approx(160 * 0.25 / 10)
    assert "3 communes" in plan.params["scope"]
    with pytest.raises(InputError, match="uptake_rate"):
        compute_site_cohorts(catch, uptake_rate=1.5)
    with pytest.raises(InputError, match="closest"):
        find_site(fac, "F33")


def test_run_diagnosis_on_the_demo_epci():
    from diagnosis.pipeline import DiagnosisParams, run_diagnosis

    ws = load_workspace("200000438")
    an = run_diagnosis(ws, DiagnosisParams(territory="200000438"), travel=Travel())
    assert an.access is not None and len(an.access.gaps.layers["priority"]) == 9
    assert an.siting is not None and an.cohorts is not None
    assert an.catchment is not None and an.catchment.births_per_year > 0
    assert "near_site" in an.partners.layers
    assert an.cohorts.params["uptake_rate"] == 0.15


def test_road_graph_for_crow_and_bad_file(tmp_path):
    assert road_graph_for(_communes(), mode="crow") == (None, "")
    with pytest.raises(InputError, match="not a file"):
        road_graph_for(_communes(), mode="drive", road_graph_file=tmp_path / "x.npz")
    with pytest.raises(InputError, match="travel mode"):
        road_graph_for(_communes(), mode="bike")


def test_road_graph_unavailable_offline_falls_back_with_a_note(monkeypatch, tmp_path):
    from data_sources import _http_session

    monkeypatch.setattr(_http_session, "_config", None)  # the settings held by the session
    monkeypatch.setenv("MAILLAGE_OFFLINE", "1")
    monkeypatch.setenv("MAILLAGE_CACHE_DIR", str(tmp_path))
    graph, note = road_graph_for(_communes(), mode="drive")
    assert graph is None and "vol d'oiseau" in note


def test_road_network_analyses_on_the_real_osm_extract():
    """Communes and facilities placed on the Toulouse extract: times come from the roads."""
    path = require_shared("test-only/osm/toulouse_compans_caffarelli.osm")
    graph = road_graph_from_osm_file(path, mode="walk")
    import geopandas as gpd

    nodes = gpd.GeoSeries(gpd.points_from_xy(graph.x, graph.y), crs=METRIC_CRS)
    cx, cy = float(np.median(graph.x)), float(np.median(graph.y))
    order = np.argsort(np.hypot(graph.x - cx, graph.y - cy))
    far = order[-1]
    picked = nodes.iloc[[order[0], order[len(order) // 2], far]]
    halls = picked.to_crs("EPSG:4326")
    com = _communes()
    com["townhall_lon"], com["townhall_lat"] = halls.x.to_numpy(), halls.y.to_numpy()
    com = com.set_geometry(picked.buffer(100).to_crs("EPSG:4326").to_numpy())
    fac = _facilities([("pmi", "44001", cx, cy, np.nan),
                       ("mairie", "44002", graph.x[order[1]], graph.y[order[1]], np.nan)])
    ov = compute_overview(TERRITORY, com, fac)
    travel = Travel(graph=graph)
    res = compute_access(ov, fac, travel=travel, max_minutes=60)
    assert res.travel.engine == "road_network" and travel.mode == "walk"
    crow = compute_access(ov, fac, travel=Travel(mode="walk"), max_minutes=60)
    road = res.access.table["minutes_nearest_pmi"].to_numpy()
    est = crow.access.table["minutes_nearest_pmi"].to_numpy()
    assert np.isfinite(road).all() and road[0] < 1.0
    assert road[2] > 0 and road[2] != pytest.approx(est[2], rel=1e-3)
    iso = compute_catchment(Point(*halls.iloc[0].coords[0]), travel=travel, max_minutes=5)
    assert iso["engine"].iloc[0] == "road_network"
    # 5 min on foot at 4.5 km/h is 375 m along the streets, widened by 250 m around nodes:
    # more than the start node's own disc, less than the 625 m disc
    area = iso.to_crs(METRIC_CRS).area.iloc[0]
    assert np.pi * 250**2 < area < np.pi * (375 + 250) ** 2
