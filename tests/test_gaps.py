"""Tests of diagnosis.gaps on a hand-made four-commune territory.

The accessibility result is built by hand (an AccessIndicators with chosen minutes), so
every white zone, factor and contribution can be checked on paper.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from diagnosis.accessibility import AccessIndicators
from diagnosis.errors import InputError
from diagnosis.gaps import (
    DEFAULT_PRIORITY_WEIGHTS,
    INCOME_COL,
    POVERTY_COL,
    PRIORITY_FACTORS,
    SINGLE_PARENT_COL,
    compute_gaps,
    compute_priority,
    find_white_zones,
    priority_weights,
)
from diagnosis.schema import NEEDS_COLUMNS

CODES = ["44001", "44002", "44003", "44004"]


@pytest.fixture
def access():
    table = pd.DataFrame({
        "code_insee": CODES,
        "name": ["A", "B", "C", "D"],
        "births": [200.0, 50.0, 100.0, np.nan],
        "minutes_nearest_pmi": [5.0, 25.0, np.inf, 10.0],
        "minutes_nearest_laep": [np.inf, np.inf, 40.0, 20.0],
    })
    return AccessIndicators(table=table, summary=pd.DataFrame(),
                            params={"max_minutes": 20.0, "facility_types": ("pmi", "laep"),
                                    "births_col": "births_2024"})


@pytest.fixture
def communes():
    return pd.DataFrame({
        "code_insee": CODES,
        POVERTY_COL: [10.0, np.nan, 20.0, np.nan],   # B and D under statistical secret
        INCOME_COL: [22_000.0, 18_000.0, 20_000.0, np.nan],
        SINGLE_PARENT_COL: [15.0, 25.0, 20.0, 10.0],
    })


def test_need_columns_come_from_the_schema():
    for col in (POVERTY_COL, INCOME_COL, SINGLE_PARENT_COL, "births_2024"):
        assert col in NEEDS_COLUMNS


def test_white_zones_by_hand(access):
    white, summary = find_white_zones(access)
    pmi = white[white["type"] == "pmi"]
    assert pmi["code_insee"].tolist() == ["44002", "44003"]  # 25 min and unreachable
    laep = white[white["type"] == "laep"]
    assert laep["code_insee"].tolist() == ["44001", "44002", "44003"]  # D at 20 is within
    s = summary.set_index("type")
    assert s.loc["pmi", "births_white"] == 150.0
    assert s.loc["pmi", "births_total"] == 350.0
    assert s.loc["pmi", "share_births_white"] == pytest.approx(150 / 350)
    assert s.loc["laep", "births_white"] == 350.0
    assert s.loc["laep", "n_communes_white"] == 3
    assert s.loc["pmi", "n_white_births_missing"] == 0
    # A stricter threshold moves D (10 min to a PMI) in for PMI at 5 min.
    white5, _ = find_white_zones(access, max_minutes=5, facility_types=["pmi"])
    assert white5["code_insee"].tolist() == ["44002", "44003", "44004"]


def test_priority_factors_contributions_and_fallbacks_by_hand(access, communes):
    out, missing = compute_priority(communes, access)
    assert missing == []
    row = out.set_index("code_insee")
    # births: every birth counts 1; D's births are unknown.
    assert row.loc["44001", "factor_births"] == 1.0 == row.loc["44002", "factor_births"]
    assert np.isnan(row.loc["44004", "factor_births"])
    # poverty: the rate imputed as for siting (diagnosis.needs.impute_poverty_rate): two
    # communes publish both rate and income, too few for a fit, so B and D (secret) get
    # the mean of the published rates (15); each rate over the births-weighted mean of
    # A, B, C: (10 x 200 + 15 x 50 + 20 x 100) / 350 = 4750 / 350.
    mean_p = 4750 / 350
    assert row.loc["44001", "factor_poverty"] == pytest.approx(10 / mean_p)
    assert row.loc["44003", "factor_poverty"] == pytest.approx(20 / mean_p)
    assert row.loc["44002", "poverty_rate_used"] == 15.0
    assert row.loc["44002", "poverty_basis"] == "territory_mean"
    assert row.loc["44001", "poverty_basis"] == "poverty_rate"
    # the estimate is labelled on the commune's own row, not only in a footnote
    assert "estimée" in row.loc["44002", "estimated_factors"]
    assert row.loc["44001", "estimated_factors"] == ""
    assert row.loc["44004", "missing_factors"] == "births"
    # single parents: (15 x 200 + 25 x 50 + 20 x 100) / 350 = 6250 / 350
    mean_s = 6250 / 350
    assert row.loc["44002", "factor_single_parent"] == pytest.approx(25 / mean_s)
    # access: mean over PMI and LAEP of min(minutes / 20, 1): A .625, B 1, C 1, D .75;
    # mean (.625 x 200 + 50 + 100) / 350 = 275 / 350.
    assert row.loc["44001", "access_deficit"] == pytest.approx((5 / 20 + 1) / 2)
    assert row.loc["44001", "factor_access"] == pytest.approx(0.625 / (275 / 350))
    assert row.loc["44001", "deficit_pmi"] == 0.25
    # score in births weighted by needs: births x sum of w_k m_k; contributions add up.
    contrib = row[[f"contrib_{k}" for k in PRIORITY_FACTORS]]
    np.testing.assert_allclose(contrib.sum(axis=1, skipna=True).iloc[:3],
                               row["score"].iloc[:3])
    w = DEFAULT_PRIORITY_WEIGHTS
    expected_a = 200 * (w["births"] + w["poverty"] * 10 / mean_p
                        + w["single_parent"] * 15 / mean_s + w["access"] * 0.625 / (275 / 350))
    assert row.loc["44001", "score"] == pytest.approx(expected_a)
    expected_b = 50 * (w["births"] + w["poverty"] * 15 / mean_p
                       + w["single_parent"] * 25 / mean_s + w["access"] * 1 / (275 / 350))
    assert row.loc["44002", "score"] == pytest.approx(expected_b)
    # D: births unknown, no score (never 0), ranked last
    assert np.isnan(row.loc["44004", "score"]) and pd.isna(row.loc["44004", "rank"])
    assert out["code_insee"].tolist() == ["44001", "44003", "44002", "44004"]
    assert out["rank"].tolist()[:3] == [1, 2, 3]


def test_a_hamlet_without_births_is_not_a_priority(access, communes):
    """A 22-inhabitant commune with 0 births, poor and far from everything, ranks last."""
    tab = access.table.copy()
    tab.loc[len(tab)] = {"code_insee": "44005", "name": "Hameau", "births": 0.0,
                         "minutes_nearest_pmi": np.inf, "minutes_nearest_laep": np.inf}
    acc = AccessIndicators(table=tab, summary=access.summary, params=access.params)
    com = pd.concat([communes, pd.DataFrame({
        "code_insee": ["44005"], POVERTY_COL: [35.0], INCOME_COL: [15_000.0],
        SINGLE_PARENT_COL: [40.0]})], ignore_index=True)
    out, _ = compute_priority(com, acc)
    scored = out.loc[out["score"].notna()]
    assert scored["code_insee"].iloc[-1] == "44005"
    assert scored["score"].iloc[-1] == 0.0
    # a commune with births ranks above it whatever its rates
    assert out.set_index("code_insee").loc["44002", "rank"] == 3


def test_weights_change_the_ranking(access, communes):
    births_only, _ = compute_priority(communes, access, weights={
        "births": 1, "poverty": 0, "single_parent": 0, "access": 0})
    assert births_only["code_insee"].tolist()[:3] == ["44001", "44003", "44002"]
    assert births_only["score"].tolist()[:3] == [200.0, 100.0, 50.0]
    poverty_only, _ = compute_priority(communes, access, weights={
        "births": 0, "poverty": 1, "single_parent": 0, "access": 0})
    # C has twice A's poverty rate: 100 births x 20 outweigh 200 births x 10? no: equal
    # needs in families (2000 = 2000); B's 50 x 15 comes last.
    p = poverty_only.set_index("code_insee")["score"]
    assert p["44003"] == pytest.approx(p["44001"])
    assert p["44002"] < p["44001"]
    # D has no known births: it cannot be scored.
    assert births_only["code_insee"].iloc[-1] == "44004"
    assert np.isnan(births_only["score"].iloc[-1]) and pd.isna(births_only["rank"].iloc[-1])


def test_missing_need_columns_are_reported_not_zero(access):
    only_codes = pd.DataFrame({"code_insee": CODES})
    out, missing = compute_priority(only_codes, access)
    assert missing == [POVERTY_COL, INCOME_COL, SINGLE_PARENT_COL]
    assert out["factor_poverty"].isna().all() and out["factor_single_parent"].isna().all()
    assert (out["poverty_basis"] == "missing").all()


def test_compute_gaps_carries_geometry_and_params(access, communes):
    geo = gpd.GeoDataFrame(communes, geometry=[box(i, 0, i + 1, 1) for i in range(4)],
                           crs="EPSG:2154")
    res = compute_gaps(geo, access, weights={"births": 2})
    assert isinstance(res.layers["priority"], gpd.GeoDataFrame)
    assert isinstance(res.layers["white_zones"], gpd.GeoDataFrame)
    assert res.layers["priority"].crs == geo.crs
    assert res.params["weights"] == priority_weights({"births": 2})
    assert sum(res.params["weights"].values()) == pytest.approx(1.0)
    assert res.params["facility_types"] == ("pmi", "laep")
    assert set(res.summary["type"]) == {"pmi", "laep"}


def test_bad_arguments(access, communes):
    with pytest.raises(InputError, match="unknown factors"):
        priority_weights({"distance": 1})
    with pytest.raises(InputError, match="sum to 0"):
        priority_weights({k: 0 for k in PRIORITY_FACTORS})
    with pytest.raises(InputError, match=">= 0"):
        priority_weights({"births": -1})
    with pytest.raises(InputError, match="not in the accessibility table"):
        find_white_zones(access, facility_types=["rpe"])
    with pytest.raises(InputError, match="max_minutes"):
        find_white_zones(access, max_minutes=-3)
    dup = pd.concat([communes, communes.iloc[[0]]])
    with pytest.raises(InputError, match="duplicate code_insee"):
        compute_priority(dup, access)


# --- national scale on the shipped communes ----------------------------------------------


def _national_communes():
    """Every current commune of France at its town hall (shipped national geography,
    ``ship/national/communes.csv.lzma``, read as its README says), with synthetic births
    and needs: a synthetic national INSEE file built from the shipped communes."""
    import lzma

    import shapely

    from tests.conftest import require_shared

    path = require_shared("ship/national/communes.csv.lzma")
    df = pd.read_csv(lzma.open(path, "rt"), dtype=str, keep_default_na=False,
                     na_values=[r"\N"], usecols=["code", "type", "mairie_localisation"])
    df = df[(df["type"] == "COM") & df["mairie_localisation"].fillna("").ne("")]
    pts = shapely.from_wkb([bytes.fromhex(h) for h in df["mairie_localisation"]])
    df = df[~shapely.is_empty(pts)]
    pts = pts[~shapely.is_empty(pts)]
    rng = np.random.default_rng(44)
    n = len(df)
    births = rng.poisson(12.0, n).astype(float)
    births[rng.random(n) < 0.02] = np.nan  # unknown stays unknown
    return gpd.GeoDataFrame({
        "code_insee": df["code"].to_numpy(), "name": df["code"].to_numpy(),
        "births_2024": births,
        POVERTY_COL: np.where(rng.random(n) < 0.3, np.nan, rng.uniform(3, 35, n)),
        INCOME_COL: rng.uniform(17_000, 32_000, n),
        SINGLE_PARENT_COL: rng.uniform(0.05, 0.35, n),
    }, geometry=pts, crs="EPSG:4326").to_crs("EPSG:2154")


def test_national_crow_fly_run_is_sparse_and_matches_a_departement_run():
    import time
    import tracemalloc

    from diagnosis.accessibility import (
        compute_access_indicators,
        compute_travel_times_by_type,
    )

    communes = _national_communes()
    assert len(communes) > 34_000
    rng = np.random.default_rng(15)
    n_fac = 12_000
    where = rng.choice(len(communes), n_fac)
    xy = np.column_stack([communes.geometry.x, communes.geometry.y])[where]
    xy += rng.uniform(-2_000, 2_000, xy.shape)
    types = rng.choice(["eaje", "pmi", "rpe"], n_fac)
    facilities = gpd.GeoDataFrame(
        {"type": types, "capacity": np.where(types == "eaje", 20.0, np.nan)},
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs="EPSG:2154")

    tracemalloc.start()
    t0 = time.perf_counter()
    tt = compute_travel_times_by_type(communes, facilities, max_minutes=40)
    access = compute_access_indicators(communes, facilities, tt, max_minutes=20)
    gaps = compute_gaps(communes, access)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dense_bytes = 8 * len(communes) * n_fac
    assert peak < dense_bytes / 4, f"peak {peak / 1e6:.0f} MB"  # a dense run needs 3.3 GB
    print(f"national-like run: {seconds:.1f} s (timed by bench/national_access.py, not here)")
    assert sum(t.n_pairs_within for t in tt.values()) < 0.02 * len(communes) * n_fac

    # The same functions on one département's communes give the same nearest times,
    # counts and zones blanches (E2SFCA differs at the border by design: the national
    # run also counts the neighbours' families in a facility's catchment).
    dep = communes[communes["code_insee"].str.startswith("44")].reset_index(drop=True)
    dep_tt = compute_travel_times_by_type(dep, facilities, max_minutes=40)
    dep_access = compute_access_indicators(dep, facilities, dep_tt, max_minutes=20)
    national = access.table.set_index("code_insee").loc[dep["code_insee"]].reset_index()
    for ftype in ("eaje", "pmi", "rpe"):
        for col in (f"minutes_nearest_{ftype}", f"reachable_{ftype}"):
            np.testing.assert_array_equal(national[col].to_numpy(),
                                          dep_access.table[col].to_numpy())
    white = gaps.layers["white_zones"]
    dep_white, _ = find_white_zones(dep_access)
    assert sorted(zip(dep_white["code_insee"], dep_white["type"], strict=True)) == sorted(
        (c, t) for c, t in zip(white["code_insee"], white["type"], strict=True)
        if c.startswith("44"))
