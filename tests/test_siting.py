"""Tests of diagnosis.siting: covering and p-median cores, need weights, the front.

Every instance is built in the test: small ones checked by hand, random seeded ones
checked against PySAL spopt (MCLP / PMedian with CBC through PuLP) and brute force.
"""

from __future__ import annotations

import itertools
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pulp
import pytest
from scipy import sparse
from shapely.geometry import Point, box
from spopt.locate import MCLP, PMedian

from diagnosis import siting
from diagnosis.errors import InputError
from diagnosis.siting import (
    build_candidates,
    compare_scenarios,
    compute_need_weights,
    find_host_sites,
    solve_max_covering,
    solve_p_median,
)

WGS84 = "EPSG:4326"

# spopt 0.7 builds its models with the PuLP 3 API, which PuLP warns about ahead of
# PuLP 4.0: not ours to fix, ignored only in the tests that call spopt.
PULP_V4 = pytest.mark.filterwarnings("ignore:.*PuLP 4\\.0.*:DeprecationWarning")


def _random_instance(seed: int, n: int = 60, m: int = 15, radius: float = 25.0):
    rng = np.random.default_rng(seed)
    dem = rng.uniform(0, 100, (n, 2))
    cand = rng.uniform(0, 100, (m, 2))
    dist = np.sqrt(((dem[:, None] - cand[None]) ** 2).sum(-1))
    w = rng.integers(1, 20, n).astype(float)
    return dist, w, radius


def _brute_force_covering(cov: np.ndarray, w: np.ndarray, k: int, fixed=()) -> float:
    free = [j for j in range(cov.shape[1]) if j not in set(fixed)]
    best = 0.0
    for combo in itertools.combinations(free, k):
        open_ = list(combo) + list(fixed)
        best = max(best, float(w[cov[:, open_].any(axis=1)].sum()))
    return best


# --------------------------------------------------------------------------------------
# Maximal covering: hand-checkable instances
# --------------------------------------------------------------------------------------
# p0 (3) p1 (3) p2 (2.5) p3 (2.5); candidate 0 covers p0+p1 (6), 1 covers p0+p2 (5.5),
# 2 covers p1+p3 (5.5). Greedy takes 0 (6), then 1 and 2 tie at 2.5 -> 1 (lowest index):
# 8.5. The optimum {1, 2} covers everything: 11. One swap (0 -> 2) finds it.
TRAP = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 0], [0, 0, 1]], dtype=bool)
TRAP_W = np.array([3.0, 3.0, 2.5, 2.5])


def test_lazy_greedy_follows_the_hand_computed_path():
    a = siting._as_coverage(TRAP)
    sel = siting._greedy_covering(a, TRAP_W, 2, np.zeros(0, dtype=np.int64))
    assert sel.tolist() == [0, 1]


def test_swap_pass_repairs_the_greedy_trap():
    r = solve_max_covering(TRAP, TRAP_W, 2, method="greedy", n_starts=1)
    assert r.selected.tolist() == [1, 2]
    assert r.objective == 11.0
    assert r.status == "heuristic" and math.isnan(r.gap) and r.method == "greedy"


def test_exact_on_the_trap_is_optimal():
    r = solve_max_covering(TRAP, TRAP_W, 2, method="exact")
    assert r.selected.tolist() == [1, 2]
    assert r.objective == 11.0
    assert r.status == "optimal" and r.gap == 0.0 and r.bound == pytest.approx(11.0)
    assert r.covered.all()
    assert r.assignment.tolist() == [1, 2, 1, 2]


def test_k_one_picks_the_heaviest_site():
    r = solve_max_covering(TRAP, TRAP_W, 1, method="exact")
    assert r.selected.tolist() == [0] and r.objective == 6.0
    assert r.covered.tolist() == [True, True, False, False]
    assert r.assignment.tolist() == [0, 0, -1, -1]


@pytest.mark.parametrize("method", ["greedy", "exact", "auto"])
def test_ties_go_to_the_lowest_index(method):
    # candidates 1 and 3 are identical and the best; 0 and 2 cover nothing
    cov = np.array([[0, 1, 0, 1], [0, 1, 0, 1], [0, 0, 0, 0]], dtype=bool)
    w = np.array([2.0, 2.0, 1.0])
    results = [solve_max_covering(cov, w, 1, method=method) for _ in range(3)]
    assert all(r.selected.tolist() == [1] for r in results)
    assert all(r.objective == 4.0 for r in results)


def test_fixed_sites_count_but_are_not_selected():
    # fixed 0 covers p0 and p1: the best new site is then 2 (p3, 2.5) over 1 (p2, 2.5):
    # tie -> lowest index 1
    r = solve_max_covering(TRAP, TRAP_W, 1, fixed=[0], method="exact")
    assert r.fixed.tolist() == [0]
    assert r.selected.tolist() in ([1], [2])
    assert r.objective == 8.5
    g = solve_max_covering(TRAP, TRAP_W, 1, fixed=[0], method="greedy")
    assert g.selected.tolist() == [1] and g.objective == 8.5
    assert sorted([*g.fixed.tolist(), *g.selected.tolist()]) == [0, 1]


def test_zero_weights_give_a_zero_optimum_without_crash():
    r = solve_max_covering(TRAP, np.zeros(4), 2, method="exact")
    assert r.objective == 0.0 and r.status == "optimal" and len(r.selected) == 2


def test_results_are_frozen():
    r = solve_max_covering(TRAP, TRAP_W, 1)
    with pytest.raises(AttributeError):
        r.objective = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        r.selected[0] = 2


@pytest.mark.parametrize(
    ("k", "fixed", "match"),
    [(0, (), "at least 1"), (-1, (), "at least 1"), (4, (), "larger than the number"),
     (3, (0,), "larger than the number"), (1.5, (), "whole number"), (1, (7,), "outside"),
     (1, (0, 0), "repeats")],
)
def test_bad_k_and_fixed_raise(k, fixed, match):
    with pytest.raises(InputError, match=match):
        solve_max_covering(TRAP, TRAP_W, k, fixed=fixed)


@pytest.mark.parametrize(
    ("weights", "match"),
    [([1.0, 2.0], "4 demand rows"), ([1.0, np.nan, 1.0, 1.0], "finite"),
     ([1.0, -1.0, 1.0, 1.0], ">= 0")],
)
def test_bad_weights_raise(weights, match):
    with pytest.raises(InputError, match=match):
        solve_max_covering(TRAP, weights, 1)


def test_bad_method_raises():
    with pytest.raises(InputError, match="method='best'"):
        solve_max_covering(TRAP, TRAP_W, 1, method="best")


# --------------------------------------------------------------------------------------
# Maximal covering: against brute force and spopt
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_exact_matches_brute_force(seed, k):
    dist, w, radius = _random_instance(seed, n=40, m=10)
    cov = dist <= radius
    r = solve_max_covering(sparse.csr_matrix(cov), w, k, method="exact")
    assert r.status == "optimal"
    assert r.objective == pytest.approx(_brute_force_covering(cov, w, k), abs=1e-9)
    # the reported objective is what the selected sites really cover
    assert r.objective == pytest.approx(float(w[cov[:, r.selected].any(axis=1)].sum()))


@pytest.mark.parametrize(("seed", "k", "radius"),
                         [(3, 5, 22.0), (9, 3, 22.0), (13, 5, 18.0), (24, 3, 25.0),
                          (27, 5, 25.0)])
def test_exact_with_a_fractional_relaxation_matches_brute_force(seed, k, radius):
    # instances whose LP relaxation is fractional: the path through the MIP restricted to
    # the LP's sites, reduced-cost fixing and the branch-and-bound must stay exact
    dist, w, _ = _random_instance(seed, n=80, m=16, radius=radius)
    cov = dist <= radius
    r = solve_max_covering(cov, w, k, method="exact")
    assert "integral LP" not in r.solver_status  # the path under test was taken
    assert r.status == "optimal" and r.gap == 0.0
    assert r.objective == pytest.approx(_brute_force_covering(cov, w, k), abs=1e-9)
    assert r.bound == pytest.approx(r.objective, abs=1e-6)


@PULP_V4
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [2, 4])
def test_exact_equals_spopt_mclp(seed, k):
    dist, w, radius = _random_instance(seed)
    model = MCLP.from_cost_matrix(dist, w, service_radius=radius, p_facilities=k)
    model = model.solve(pulp.PULP_CBC_CMD(msg=False), results=False)
    expected = pulp.value(model.problem.objective)
    r = solve_max_covering(sparse.csc_matrix(dist <= radius), w, k, method="exact")
    assert r.status == "optimal"
    assert r.objective == pytest.approx(expected, rel=1e-12)


@PULP_V4
def test_exact_with_fixed_equals_spopt_with_predefined_facilities():
    dist, w, radius = _random_instance(7)
    fixed = [2, 9]
    predefined = np.zeros(dist.shape[1], dtype=int)
    predefined[fixed] = 1
    model = MCLP.from_cost_matrix(dist, w, service_radius=radius, p_facilities=3 + len(fixed),
                                  predefined_facilities_arr=predefined)
    model = model.solve(pulp.PULP_CBC_CMD(msg=False), results=False)
    r = solve_max_covering(dist <= radius, w, 3, fixed=fixed, method="exact")
    assert r.objective == pytest.approx(pulp.value(model.problem.objective), rel=1e-12)
    assert not set(r.selected.tolist()) & set(fixed)


@pytest.mark.parametrize("seed", range(4))
def test_greedy_is_close_to_the_optimum(seed):
    dist, w, radius = _random_instance(seed, n=300, m=60, radius=18.0)
    cov = sparse.csc_matrix(dist <= radius)
    exact = solve_max_covering(cov, w, 6, method="exact")
    greedy = solve_max_covering(cov, w, 6, method="greedy")
    assert greedy.objective <= exact.objective + 1e-9
    assert greedy.objective >= 0.95 * exact.objective


def test_reduction_merges_demand_and_drops_dominated_candidates():
    # candidate 0 covers {0}, 1 covers {0, 1}, 2 = 1 (duplicate), 3 covers {2}
    cov = np.array([[1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1]], dtype=bool)
    red = siting._reduce_covering(siting._as_coverage(cov), np.array([1.0, 2.0, 3.0, 4.0]),
                                  1, np.zeros(0, dtype=np.int64))
    assert red.candidates.tolist() == [1, 3]  # 0 dominated by 1, 2 duplicates 1
    assert red.representative.tolist() == [0, 0, 0, 1]
    assert sorted(red.weights.tolist()) == [3.0, 7.0]  # rows 2 and 3 merged
    assert red.trivial is None


def test_time_limit_is_reported_not_called_optimal():
    # a large instance whose LP relaxation is fractional and whose branch-and-bound takes
    # tens of seconds; with a 0.5 s limit HiGHS stops and the result must say so
    rng = np.random.default_rng(1)
    dem = rng.uniform(0, 40_000, (2_000, 2))
    cand = rng.uniform(0, 40_000, (300, 2))
    w = rng.gamma(1.0, 7.0, 2_000).round(0)
    cov = sparse.csc_matrix(np.sqrt(((dem[:, None] - cand[None]) ** 2).sum(-1)) <= 5_000)
    r = solve_max_covering(cov, w, 20, method="exact", time_limit_s=0.5)
    assert r.status == "time_limit"
    assert "time limit" in r.solver_status.lower()
    # a loaded machine may stop even before the LP bound is proved: then no bound is
    # claimed (NaN), never a zero gap
    assert (r.gap > 0 and r.bound > r.objective) or (math.isnan(r.gap) and math.isnan(r.bound))
    assert len(r.selected) == 20
    assert r.objective == pytest.approx(float(w[r.covered].sum()))


def test_auto_falls_back_to_greedy_beyond_the_size_limit(monkeypatch):
    monkeypatch.setattr("diagnosis.siting.covering.AUTO_EXACT_MAX_NONZEROS", 0)
    r = solve_max_covering(TRAP, TRAP_W, 2, method="auto")
    assert r.method == "greedy" and r.status == "heuristic"


# --------------------------------------------------------------------------------------
# p-median
# --------------------------------------------------------------------------------------
def test_p_median_by_hand():
    d = np.array([[0.0, 10.0], [10.0, 0.0], [4.0, 6.0]])
    # site 0: 0 + 30 + 4 = 34; site 1: 10 + 0 + 6 = 16
    for method in ("exact", "greedy"):
        r = solve_p_median(d, [1.0, 3.0, 1.0], 1, method=method)
        assert r.selected.tolist() == [1] and r.objective == 16.0
        assert r.assignment.tolist() == [1, 1, 1]


def test_p_median_unreachable_demand_is_penalised_not_ignored():
    d = np.array([[1.0, np.inf], [np.inf, 2.0]])
    r = solve_p_median(d, [1.0, 5.0], 1, unreachable_minutes=100.0)
    # site 0: 1 + 5 x 100 = 501; site 1: 100 + 10 = 110
    assert r.selected.tolist() == [1] and r.objective == 110.0
    assert r.covered.tolist() == [False, True]
    assert r.assignment.tolist() == [-1, 1]


def test_p_median_fixed():
    d = np.array([[0.0, 5.0, 9.0], [9.0, 5.0, 0.0], [9.0, 5.0, 1.0]])
    r = solve_p_median(d, [1.0, 1.0, 1.0], 1, fixed=[0])
    assert r.selected.tolist() == [2] and r.objective == 1.0


@PULP_V4
@pytest.mark.parametrize("seed", range(3))
def test_p_median_exact_equals_spopt(seed):
    dist, w, _ = _random_instance(seed, n=30, m=8)
    model = PMedian.from_cost_matrix(dist, w, p_facilities=3)
    model = model.solve(pulp.PULP_CBC_CMD(msg=False), results=False)
    r = solve_p_median(dist, w, 3, method="exact")
    assert r.status == "optimal"
    assert r.objective == pytest.approx(pulp.value(model.problem.objective), rel=1e-9)
    greedy = solve_p_median(dist, w, 3, method="greedy")
    assert r.objective <= greedy.objective + 1e-9 <= 1.05 * r.objective + 1e-9


def test_p_median_exact_refuses_large_instances(monkeypatch):
    monkeypatch.setattr("diagnosis.siting.p_median.P_MEDIAN_EXACT_MAX_PAIRS", 3)
    d = np.ones((3, 3))
    with pytest.raises(InputError, match="method='greedy'"):
        solve_p_median(d, [1.0, 1.0, 1.0], 1, method="exact")
    assert solve_p_median(d, [1.0, 1.0, 1.0], 1, method="auto").method == "greedy"


# --------------------------------------------------------------------------------------
# Need weights
# --------------------------------------------------------------------------------------
def _communes() -> pd.DataFrame:
    # six communes publish rate and income on the line rate = 50 - income / 1000; the
    # seventh is secret with an income of 30,000 -> 20 %; the eighth has neither -> mean
    return pd.DataFrame({
        "code_insee": [f"440{i:02d}" for i in range(1, 9)],
        "births_2024": [10.0, 20.0, 10.0, 10.0, 10.0, 10.0, 10.0, np.nan],
        "births_mean_2016_2021": [9.0] * 7 + [4.0],
        "poverty_rate_2021": [30.0, 25.0, 20.0, 15.0, 10.0, 5.0, np.nan, np.nan],
        "median_income_2021": [20e3, 25e3, 30e3, 35e3, 40e3, 45e3, 30e3, np.nan],
        "population_2022": [1000.0, 2000.0, 1000.0, 1000.0, 1000.0, 1000.0, 500.0, 300.0],
        "single_parent_families_2022": [10.0, 20.0, 10.0, 10.0, 10.0, 10.0, 10.0, np.nan],
        "families_2022": [100.0] * 7 + [np.nan],
    })


def test_need_weights_by_hand():
    out = compute_need_weights(_communes())
    assert out["births_used"].tolist()[-1] == 4.0  # fallback to the 2016-2021 mean
    assert out["poverty_rate_source"].tolist() == ["published"] * 6 + ["median_income",
                                                                        "territory_mean"]
    assert out["poverty_rate_used"].iloc[6] == pytest.approx(20.0)
    # population-weighted mean of published rates: (30+50+20+15+10+5) x 1000 / 7000
    assert out["poverty_rate_used"].iloc[7] == pytest.approx(130_000 / 7000)
    # single-parent share: 10 % everywhere except 20 % in 44002; 44008 gets 80/700
    assert out["single_parent_share_used"].iloc[1] == pytest.approx(20.0)
    assert out["single_parent_share_used"].iloc[7] == pytest.approx(100 * 80 / 700)
    assert out["single_parent_share_source"].iloc[7] == "territory_mean"
    # 44001: 10 x (1 + 0.30 + 0.10) = 14
    assert out["need_weight"].iloc[0] == pytest.approx(14.0)
    only_births = compute_need_weights(_communes(), weights={"poverty": 0, "single_parent": 0})
    assert only_births["need_weight"].tolist() == only_births["births_used"].tolist()


def test_need_weights_never_read_secret_as_zero():
    c = _communes()
    c.loc[6, "median_income_2021"] = np.nan
    out = compute_need_weights(c)
    assert out["poverty_rate_used"].iloc[6] > 0
    assert out["poverty_rate_source"].iloc[6] == "territory_mean"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"weights": {"povrety": 1.0}}, "unknown keys"), ({"weights": {"poverty": -1.0}}, ">= 0"),
     ({"births_col": "births"}, "lacks column 'births'")],
)
def test_need_weights_bad_input(kwargs, match):
    with pytest.raises(InputError, match=match):
        compute_need_weights(_communes(), **kwargs)


def test_need_weights_without_a_factor_leave_it_out_and_say_so():
    """Siting never fails on a missing factor (issue 13.5): it is dropped, with a notice."""
    c = _communes().assign(poverty_rate_2021=np.nan, median_income_2021=np.nan)
    out = compute_need_weights(c)
    assert out.attrs["need_coefficients"]["poverty"] == 0.0
    (notice,) = out.attrs["need_notices"]
    assert notice.startswith("Taux de pauvreté : aucune donnée chargée")
    # the need weight then counts births and single parents only
    np.testing.assert_allclose(out["need_weight"], out["births_used"] * (
        1 + out["single_parent_share_used"] / 100))
    both = compute_need_weights(c.drop(columns=["single_parent_share_2022"], errors="ignore")
                                .assign(single_parent_families_2022=np.nan))
    assert len(both.attrs["need_notices"]) == 2
    np.testing.assert_allclose(both["need_weight"], both["births_used"])


# --------------------------------------------------------------------------------------
# Candidates and the front
# --------------------------------------------------------------------------------------
def _facilities() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"facility_id": ["pmi:1", "mat:1", "rpe:1", "m1000:1", "mairie:1"],
         "type": ["pmi", "maternite", "rpe", "maison_1000_jours", "mairie"],
         "name": ["PMI Nord", "Maternité", "RPE Sud", "Maison existante", "Mairie Est"]},
        geometry=[Point(-2.00, 47.40), Point(-2.05, 47.40), Point(-2.10, 47.30),
                  Point(-2.20, 47.40), Point(-1.90, 47.35)], crs=WGS84)


def test_build_candidates_filters_types_and_adds_user_points():
    territory = gpd.GeoSeries([box(-2.5, 47.0, -1.5, 47.8)], crs=WGS84)
    pts = gpd.GeoDataFrame({"name": ["Salle des fêtes"]}, geometry=[Point(-2.0, 47.5)], crs=WGS84)
    out = build_candidates(_facilities(), user_points=pts, territory=territory)
    assert out["facility_id"].tolist() == ["pmi:1", "rpe:1", "m1000:1", "mairie:1", "user:1"]
    assert out["candidate_kind"].tolist() == ["host", "host", "existing", "host", "user"]
    assert out.crs.to_epsg() == 4326
    only_pmi = build_candidates(_facilities(), host_types=["pmi"])
    assert only_pmi["facility_id"].tolist() == ["pmi:1", "m1000:1"]


def test_user_point_outside_the_territory_raises():
    territory = gpd.GeoSeries([box(-2.5, 47.0, -1.5, 47.8)], crs=WGS84)
    pts = gpd.GeoDataFrame({"name": ["Ailleurs"]}, geometry=[Point(2.35, 48.85)], crs=WGS84)
    with pytest.raises(InputError, match="outside the territory polygon.*Ailleurs"):
        build_candidates(_facilities(), user_points=pts, territory=territory)
    with pytest.raises(InputError, match="needs territory="):
        build_candidates(_facilities(), user_points=pts)


def test_no_candidate_of_the_chosen_types_raises():
    with pytest.raises(InputError, match="no candidate site.*laep"):
        build_candidates(_facilities(), host_types=["laep"])
    with pytest.raises(InputError, match="unknown facility types"):
        build_candidates(_facilities(), host_types=["ecole"])


def _demand() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code_insee": ["44001", "44002", "44003", "44004"],
         "births_used": [40.0, 30.0, 20.0, 10.0],
         "need_weight": [50.0, 30.0, 30.0, 10.0],
         "single_parent_families_2022": [12.0, 5.0, 8.0, 1.0],
         "poverty_rate_used": [10.0, 20.0, 50.0, 0.0]},
        geometry=[Point(-2.0, 47.4), Point(-2.1, 47.3), Point(-1.9, 47.35), Point(-2.2, 47.4)],
        crs=WGS84)


# rows: 44001..44004; columns: pmi:1, mat:1, rpe:1, m1000:1, mairie:1
MINUTES = np.array([
    [5.0, 8.0, 30.0, 25.0, 12.0],
    [25.0, 20.0, 4.0, 30.0, 40.0],
    [12.0, 30.0, 40.0, 45.0, 3.0],
    [30.0, 20.0, 35.0, 2.0, np.inf],
])


def test_find_host_sites_explains_the_choice():
    cand = build_candidates(_facilities())
    minutes = MINUTES[:, [0, 2, 3, 4]]  # the maternité is not a candidate
    r = find_host_sites(_demand(), cand, minutes, k=1, max_minutes=15, method="exact")
    # existing Maison (fixed by default) covers 44004; PMI covers 44001 + 44003 (80),
    # RPE 44002 (30), mairie 44001 + 44003 (80): tie -> PMI (lower index)
    sites = r.sites
    assert sites["status"].tolist() == ["recommandé", "existant"]
    best = sites.iloc[0]
    assert best["facility_id"] == "pmi:1"
    assert best["births_covered"] == 60.0 and best["births_new"] == 60.0
    assert best["need_covered"] == 80.0 and best["need_exclusive"] == 80.0
    assert best["single_parent_families"] == 20.0
    assert best["births_poverty"] == pytest.approx(40 * 0.1 + 20 * 0.5)
    assert best["runner_up_id"] == "mairie:1" and best["advantage"] == 0.0
    assert "Couvre 60 naissances" in best["explanation"]
    assert "Mairie Est" in best["explanation"]
    s = r.summary
    assert s["status"] == "optimal" and s["births_total"] == 100.0
    assert s["births_covered_before"] == 10.0 and s["births_covered_after"] == 70.0
    assert s["births_newly_covered"] == 60.0 and s["share_covered_after"] == 70.0
    dem = r.demand
    assert dem["site_id"].tolist() == ["pmi:1", "pmi:1", "pmi:1", "m1000:1"]
    assert dem["covered_after"].tolist() == [True, False, True, True]
    assert r.params["fixed_ids"] == ["m1000:1"] and r.params["k"] == 1


def test_find_host_sites_with_dataframe_matrix_and_already_covered():
    cand = build_candidates(_facilities())
    df = pd.DataFrame(MINUTES[:, [0, 2, 3, 4]], index=_demand()["code_insee"],
                      columns=cand["facility_id"]).iloc[::-1, ::-1]  # any order
    r = find_host_sites(_demand(), cand, df, k=2, max_minutes=15, fixed_ids=(),
                        already_covered=[True, False, False, False], method="greedy")
    assert sorted(r.sites["facility_id"]) == ["pmi:1", "rpe:1"] or \
        sorted(r.sites["facility_id"]) == ["mairie:1", "rpe:1"]
    row = r.sites.set_index("facility_id").loc["rpe:1"]
    assert row["births_new"] == 30.0
    assert r.summary["births_covered_before"] == 40.0


def test_find_host_sites_p_median():
    cand = build_candidates(_facilities())
    r = find_host_sites(_demand(), cand, MINUTES[:, [0, 2, 3, 4]], k=1, max_minutes=15,
                        objective="p_median")
    # with the Maison fixed (2 min from 44004, 30 from 44002): PMI costs
    # 50x5 + 30x25 + 30x12 + 10x2 = 1380, RPE 50x25 + 30x4 + 30x40 + 20 = 2590,
    # mairie 50x12 + 30x30 + 30x3 + 20 = 1610 (best replacement: +230)
    assert r.sites.iloc[0]["facility_id"] == "pmi:1"
    assert r.solution is not None and r.solution.objective == pytest.approx(1360 + 10 * 2)
    assert r.sites.iloc[0]["runner_up_id"] == "mairie:1"
    assert r.sites.iloc[0]["advantage"] == pytest.approx(230.0)
    assert "allongerait" in r.sites.iloc[0]["explanation"]


def test_zero_births_in_the_catchment_is_a_result_not_a_crash():
    cand = build_candidates(_facilities())
    dem = _demand().assign(need_weight=[0.0, 0.0, 0.0, 10.0], births_used=[0, 0, 0, 10.0])
    r = find_host_sites(dem, cand, MINUTES[:, [0, 2, 3, 4]], k=1, max_minutes=15)
    assert r.summary["status"] == "no_demand"
    assert (r.sites["status"] == "recommandé").sum() == 0
    assert "Aucune naissance" in r.summary["message"]
    assert r.solution is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"k": 0}, "at least 1"), ({"k": 4}, "larger than the number"),
     ({"k": 1, "host_types": ["laep"]}, "no candidate site of the chosen types"),
     ({"k": 1, "max_minutes": 0}, "max_minutes=0"),
     ({"k": 1, "fixed_ids": ["nope"]}, "fixed_ids"),
     ({"k": 1, "weight_col": "need"}, "lacks column 'need'")],
)
def test_find_host_sites_bad_input(kwargs, match):
    cand = build_candidates(_facilities())
    kwargs = {"max_minutes": 15, **kwargs}
    with pytest.raises(InputError, match=match):
        find_host_sites(_demand(), cand, MINUTES[:, [0, 2, 3, 4]], **kwargs)


def test_misaligned_matrix_raises():
    cand = build_candidates(_facilities())
    with pytest.raises(InputError, match="shape"):
        find_host_sites(_demand(), cand, MINUTES, k=1, max_minutes=15)


def test_compare_scenarios_side_by_side():
    cand = build_candidates(_facilities())
    m = MINUTES[:, [0, 2, 3, 4]]
    results = [find_host_sites(_demand(), cand, m, k=k, max_minutes=15) for k in (1, 2)]
    results.append(find_host_sites(_demand(), cand, m, k=1, max_minutes=15))
    t = compare_scenarios(results)
    assert list(t.columns) == ["1 site, 15 min", "2 sites, 15 min", "1 site, 15 min (2)"]
    assert t.loc["Naissances couvertes après"].tolist() == [70.0, 100.0, 70.0]
    assert t.loc["Statut", "1 site, 15 min"] == "optimum prouvé"
    with pytest.raises(InputError):
        compare_scenarios([])


def test_sparse_travel_times_give_the_dense_answer():
    """Issue 15.1: maximal covering reads the sparse pairs within reach, never a dense
    demand x candidates matrix, and recommends exactly what the dense matrix does."""
    from diagnosis.siting.scenario import _SparseMinutes
    from diagnosis.travel import crow_fly_travel_times

    rng = np.random.default_rng(3)
    dem_xy = rng.uniform(0, 30_000, (60, 2))
    cand_xy = rng.uniform(0, 30_000, (25, 2))
    dem = gpd.GeoDataFrame({"code_insee": [f"44{i:03d}" for i in range(60)],
                            "births_2024": rng.integers(1, 40, 60).astype(float),
                            "need_weight": rng.uniform(1, 50, 60)},
                           geometry=gpd.points_from_xy(dem_xy[:, 0], dem_xy[:, 1]),
                           crs="EPSG:2154").to_crs(WGS84)
    cand = gpd.GeoDataFrame({"facility_id": [f"c{i}" for i in range(25)],
                             "type": ["pmi"] * 25, "name": [f"C{i}" for i in range(25)]},
                            geometry=gpd.points_from_xy(cand_xy[:, 0], cand_xy[:, 1]),
                            crs="EPSG:2154").to_crs(WGS84)
    tt = crow_fly_travel_times(dem_xy, cand_xy, max_minutes=15)
    assert tt.within.nnz < 60 * 25  # only the pairs within reach are held
    a = find_host_sites(dem, cand, tt, k=3, max_minutes=12)
    b = find_host_sites(dem, cand, tt.minutes, k=3, max_minutes=12)
    assert a.sites["facility_id"].tolist() == b.sites["facility_id"].tolist()
    assert a.summary["births_covered_after"] == b.summary["births_covered_after"]
    m = _SparseMinutes(tt.within.tocsc())
    np.testing.assert_array_equal(m[:, [0, 3]], tt.minutes[:, [0, 3]])


def test_greedy_with_kicks_stays_within_half_a_percent_of_the_optimum():
    # the bench's instance shape (towns of Pareto size, half the demand in towns), small:
    # plain greedy + swap fell 1.9 % short at p = 9 here; the seeded iterated local search
    # must stay within 0.5 % of HiGHS's optimum at every p, and give the same answer twice
    rng = np.random.default_rng(44)
    side = 30_000.0
    towns = rng.uniform(0.1 * side, 0.9 * side, (12, 2))
    size = rng.pareto(1.5, 12) + 1.0

    def points(count, share_town):
        n_town = int(count * share_town)
        which = rng.choice(12, n_town, p=size / size.sum())
        near = towns[which] + rng.normal(0.0, 1_500.0, (n_town, 2))
        return np.clip(np.vstack([near, rng.uniform(0.0, side, (count - n_town, 2))]), 0, side)

    demand, cand = points(1_000, 0.5), points(200, 0.6)
    w = rng.gamma(1.2, 6.0, 1_000).round(0)
    minutes = np.sqrt(((demand[:, None] - cand[None]) ** 2).sum(-1)) / 1_000 * 1.3 / 40 * 60
    cov = sparse.csc_matrix(minutes <= 10.0)
    for p in range(6, 11):
        exact = solve_max_covering(cov, w, p, method="exact")
        greedy = solve_max_covering(cov, w, p, method="greedy")
        assert exact.status == "optimal"
        assert greedy.objective >= 0.995 * exact.objective, (p, greedy.objective / exact.objective)
        again = solve_max_covering(cov, w, p, method="greedy")
        assert again.selected.tolist() == greedy.selected.tolist()
