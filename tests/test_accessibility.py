"""Tests of diagnosis.accessibility: hand-checked E2SFCA, PySAL ``access`` as an oracle,
per-origin indicators and the GeoDataFrame front on a tiny territory.

The sparse path (scipy.sparse pairs within reach, ``TravelTimes.within``) is checked
against the dense path and ``access`` on the same pairs; ``access`` itself takes the pairs
as a long cost table (pysal/access ``access/access.py``, ``Access(cost_df=...)``), the
same layout as a COO matrix.

pandas 3.1 compat for ``access`` (test-only): ``access`` calls
``set_index(..., inplace=True)`` when given index *column names*, which pandas 3.1
deprecates (a warning, an error under our ``filterwarnings = error``); we give it frames
already indexed (``demand_index=True, supply_index=True``), which skips that call.
"""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from shapely.geometry import Point

from diagnosis.accessibility import (
    DEFAULT_MAX_MINUTES,
    births_within_share,
    compute_access_indicators,
    compute_e2sfca,
    compute_travel_times_by_type,
    count_reachable,
    gaussian_decay,
    minutes_to_nearest,
    step_decay,
)
from diagnosis.errors import InputError
from diagnosis.schema import FACILITY_DTYPES
from diagnosis.travel import crow_fly_travel_times, road_graph_from_arrays


def access_e2sfca(minutes, demand, supply, max_minutes, weight_fn):
    """PySAL access's enhanced_two_stage_fca on the same data (finite pairs only)."""
    from access import Access

    n, m = minutes.shape
    dem = pd.DataFrame({"d": demand}, index=pd.Index(np.arange(n), name="geoid"))
    sup = pd.DataFrame({"s": supply}, index=pd.Index(np.arange(m), name="geoid"))
    i, j = np.nonzero(np.isfinite(minutes))
    cost = pd.DataFrame({"o": i, "f": j, "c": minutes[i, j]})
    acc = Access(demand_df=dem, demand_index=True, demand_value="d", supply_df=sup,
                 supply_index=True, supply_value="s", cost_df=cost, cost_origin="o",
                 cost_dest="f", cost_name="c")
    res = acc.enhanced_two_stage_fca(name="e", max_cost=max_minutes, weight_fn=weight_fn)
    return res["e_s"].reindex(np.arange(n)).to_numpy()


def random_instance(seed: int, n: int = 400, m: int = 35):
    rng = np.random.default_rng(seed)
    minutes = rng.uniform(0, 50, (n, m))
    minutes[rng.random((n, m)) < 0.3] = np.inf
    return minutes, rng.integers(1, 200, n).astype(float), rng.integers(5, 60, m).astype(float)


# --- decays ------------------------------------------------------------------------------


def test_default_step_decay_is_access_default_for_30_minutes():
    from access import weights

    ref = weights.step_fn({10: 1, 20: 0.68, 30: 0.22})
    t = np.array([0, 5, 10, 10.01, 19.9, 20, 25, 30, 30.01, 60, np.inf])
    np.testing.assert_array_equal(step_decay(30)(t), [ref(v) for v in t])


@pytest.mark.parametrize("block", [1, 7, 64])
def test_step_weights_by_blocks_equal_access_step_function(block, monkeypatch):
    # step weights are looked up by blocks of _STEP_BLOCK times: blocks of 1, 7 and 64
    # (and a last partial block) give access's weight for every time, bounds included
    from access import weights

    import diagnosis.e2sfca as acc

    monkeypatch.setattr(acc, "_STEP_BLOCK", block)
    steps = {4.0: 1.0, 9.5: 0.5, 15.0: 0.25, 20.0: 0.1}
    ref = weights.step_fn(steps)
    rng = np.random.default_rng(block)
    t = np.concatenate([rng.uniform(0, 25, 149), list(steps), [0.0, np.inf, 20.000001]])
    got = step_decay(20, steps=steps)(t.reshape(3, -1) if block == 7 else t)
    np.testing.assert_array_equal(got.ravel(), [ref(v) for v in t])
    assert float(step_decay(20, steps=steps)(np.float64(np.nan))) == 0.0  # NaN: no weight


def test_gaussian_decay_is_access_formula_cut_at_max():
    from access import weights

    ref = weights.gaussian(12.0)
    t = np.array([0.0, 3.0, 12.0, 29.9, 30.0])
    np.testing.assert_allclose(gaussian_decay(30, sigma_minutes=12)(t), [ref(v) for v in t],
                               rtol=0, atol=0)
    assert gaussian_decay(30, sigma_minutes=12)(np.array([30.5]))[0] == 0.0
    assert gaussian_decay(20).sigma_minutes == 10.0


def test_decay_arguments_are_checked():
    with pytest.raises(InputError, match="max_minutes"):
        step_decay(-1)
    with pytest.raises(InputError, match="steps bound"):
        step_decay(20, steps={30: 1.0})
    with pytest.raises(InputError, match="steps weight"):
        step_decay(20, steps={10: 1.5})
    with pytest.raises(InputError, match="sigma_minutes"):
        gaussian_decay(20, sigma_minutes=0)


# --- E2SFCA core --------------------------------------------------------------------------


def test_e2sfca_by_hand():
    # Village A (100 births) is 5 min from crèche X (30 places) and 15 min from crèche Y
    # (20 places); village B (50 births) is 25 min from X and out of reach of Y.
    # Weights (30-min Luo & Qi bands): 5 -> 1, 15 -> 0.68, 25 -> 0.22.
    minutes = np.array([[5.0, 15.0], [25.0, np.inf]])
    r = compute_e2sfca(minutes, [100, 50], [30, 20], max_minutes=30)
    rx = 30 / (100 * 1 + 50 * 0.22)
    ry = 20 / (100 * 0.68)
    np.testing.assert_allclose(r.facility_ratio, [rx, ry])
    np.testing.assert_allclose(r.access, [rx * 1 + ry * 0.68, rx * 0.22])
    np.testing.assert_allclose(r.catchment_demand, [111.0, 68.0])
    assert r.n_facilities_without_capacity == 0 and r.n_origins_without_access == 0


@pytest.mark.parametrize("kind", ["step", "gaussian"])
@pytest.mark.parametrize("seed", [0, 1])
def test_e2sfca_matches_pysal_access(kind, seed):
    from access import weights

    minutes, demand, supply = random_instance(seed)
    if kind == "step":
        ours_decay, ref_fn = step_decay(30), weights.step_fn({10: 1, 20: 0.68, 30: 0.22})
    else:
        ours_decay, ref_fn = gaussian_decay(30, sigma_minutes=15), weights.gaussian(15)

        def cut(t, f=ref_fn):  # access applies max_cost separately; the weight is the same
            return f(t)

        ref_fn = cut
    ours = compute_e2sfca(minutes, demand, supply, max_minutes=30, decay=ours_decay)
    ref = access_e2sfca(minutes, demand, supply, 30, ref_fn)
    assert np.isfinite(ref).all()
    np.testing.assert_allclose(ours.access, ref, rtol=0, atol=1e-9)
    assert np.max(np.abs(ours.access - ref)) <= 1e-9


def _as_sparse(minutes):
    """Finite cells of a dense matrix as stored entries (zeros kept)."""
    i, j = np.nonzero(np.isfinite(minutes))
    return sp.csr_array((minutes[i, j], (i, j)), shape=minutes.shape)


@pytest.mark.parametrize("seed", [0, 4])
def test_e2sfca_on_sparse_pairs_equals_dense_and_access(seed):
    from access import weights

    minutes, demand, supply = random_instance(seed)
    minutes[0, :3] = 0.0  # zero-minute pairs must count as within reach
    supply[5] = np.nan
    pairs = _as_sparse(minutes)
    assert pairs.nnz == int(np.isfinite(minutes).sum())
    dense = compute_e2sfca(minutes, demand, supply, max_minutes=30)
    ours = compute_e2sfca(pairs, demand, supply, max_minutes=30)
    np.testing.assert_array_equal(ours.access, dense.access)
    np.testing.assert_array_equal(ours.catchment_demand, dense.catchment_demand)
    assert ours.n_facilities_without_capacity == 1
    keep = ~np.isnan(supply)
    ref = access_e2sfca(minutes[:, keep], demand, supply[keep], 30,
                        weights.step_fn({10: 1, 20: 0.68, 30: 0.22}))
    found = ~np.isnan(ref)
    np.testing.assert_allclose(ours.access[found], ref[found], rtol=0, atol=1e-9)
    assert minutes_to_nearest(pairs).tolist() == minutes_to_nearest(minutes).tolist()
    assert count_reachable(pairs, max_minutes=20).tolist() == \
        count_reachable(minutes, max_minutes=20).tolist()


def test_sparse_e2sfca_with_pairs_past_the_catchment_equals_dense():
    # stored pairs beyond max_minutes (a 60-minute routing cutoff for a 30-minute
    # catchment), leading rows without pairs, a non-canonical matrix (unsorted indices,
    # int minutes): the weights-once products must give the dense answer
    minutes, demand, supply = random_instance(6, n=300, m=20)
    minutes[:10] = np.inf
    dense = compute_e2sfca(minutes, demand, supply, max_minutes=30)
    finite = np.where(np.isfinite(minutes), minutes, 0)
    rows, cols = np.nonzero(np.isfinite(minutes))
    order = np.random.default_rng(1).permutation(len(rows))
    coo = sp.coo_array((finite[rows, cols][order], (rows[order], cols[order])),
                       shape=minutes.shape)
    assert (coo.data > 30).any()
    for pairs in (coo, sp.csr_array(coo), sp.csr_array(coo).astype(np.float32)):
        got = compute_e2sfca(pairs, demand, supply, max_minutes=30)
        np.testing.assert_allclose(got.access, dense.access, rtol=1e-6 if
                                   pairs.dtype == np.float32 else 1e-12, atol=0)
        np.testing.assert_allclose(got.catchment_demand, dense.catchment_demand, rtol=1e-6)
        assert (got.access[:10] == 0).all() and got.n_origins_without_access >= 10


def test_small_and_large_instances_take_the_same_answer(monkeypatch):
    # below _SMALL_PAIRS the sums are bincounts, above sparse products: same numbers
    import diagnosis.e2sfca as acc

    minutes, demand, supply = random_instance(9, n=500, m=40)
    supply[3] = np.nan
    monkeypatch.setattr(acc, "_SMALL_PAIRS", minutes.size)
    small = compute_e2sfca(minutes, demand, supply, max_minutes=30)
    monkeypatch.setattr(acc, "_SMALL_PAIRS", 0)
    large = compute_e2sfca(minutes, demand, supply, max_minutes=30)
    np.testing.assert_allclose(large.access, small.access, rtol=1e-12, atol=0)
    np.testing.assert_allclose(large.catchment_demand, small.catchment_demand, rtol=1e-12)
    np.testing.assert_array_equal(np.isnan(large.facility_ratio), np.isnan(small.facility_ratio))


@pytest.mark.parametrize("seed", range(4))
def test_per_origin_counts_on_sparse_pairs_equal_dense(seed):
    # counted in place on the CSR pairs (one reduceat per row): leading, middle and
    # trailing origins without any pair, 0-minute pairs, no facility at all
    rng = np.random.default_rng(seed)
    for n, m in ((1, 1), (7, 0), (12, 5), (40, 9)):
        dense = np.where(rng.random((n, m)) < 0.4, rng.uniform(0, 60, (n, m)), np.inf)
        if n > 3:
            dense[[0, n // 2, n - 1]] = np.inf
        if m:
            dense[rng.integers(0, n), rng.integers(0, m)] = 0.0
        pairs = _as_sparse(dense)
        for top in (0.0, 20.0, 30.0):
            assert count_reachable(pairs, max_minutes=top or 1e-9).tolist() == \
                count_reachable(dense, max_minutes=top or 1e-9).tolist()
        assert minutes_to_nearest(pairs).tolist() == minutes_to_nearest(dense).tolist()
    late = sp.csr_array((np.array([4.0, 50.0]), ([2, 2], [0, 1])), shape=(4, 2))
    assert count_reachable(late, max_minutes=30).tolist() == [0, 0, 1, 0]
    assert minutes_to_nearest(late).tolist() == [np.inf, np.inf, 4.0, np.inf]


@pytest.mark.parametrize("per_block", [1, 37, 500])
def test_blocked_e2sfca_equals_whole_products(per_block, monkeypatch):
    # above _BLOCKED_PAIRS the two stages run by blocks of rows (weights per block):
    # blocks of one pair, of 37 (rows cut anywhere) and of 500 give the same scores,
    # with origins without any pair first, in the middle and last, and pairs past T
    import diagnosis.e2sfca as acc

    minutes, demand, supply = random_instance(11, n=300, m=25)
    minutes[[0, 1, 150, 299]] = np.inf
    supply[4] = np.nan
    pairs = _as_sparse(minutes)
    assert (pairs.data > 30).any()
    whole = compute_e2sfca(pairs, demand, supply, max_minutes=30)
    monkeypatch.setattr(acc, "_BLOCKED_PAIRS", 0)
    monkeypatch.setattr(acc, "_PAIRS_PER_BLOCK", per_block)
    assert len(acc._row_blocks(pairs.indptr)) > 1
    got = compute_e2sfca(pairs, demand, supply, max_minutes=30)
    np.testing.assert_allclose(got.access, whole.access, rtol=1e-12, atol=0)
    np.testing.assert_allclose(got.catchment_demand, whole.catchment_demand, rtol=1e-12)
    np.testing.assert_array_equal(np.isnan(got.facility_ratio), np.isnan(whole.facility_ratio))
    assert got.access[[0, 1, 150, 299]].tolist() == [0.0] * 4
    assert got.n_origins_without_access == whole.n_origins_without_access


def test_sparse_inputs_are_checked():
    with pytest.raises(InputError, match="NaN"):
        compute_e2sfca(sp.csr_array(np.array([[np.nan, 1.0]])), [1.0], [1.0, 1.0],
                       max_minutes=30)
    with pytest.raises(InputError, match="supply must have 2 values"):
        compute_e2sfca(sp.csr_array(np.array([[2.0, 1.0]])), [1.0], [1.0], max_minutes=30)
    with pytest.raises(InputError, match="negative"):
        count_reachable(sp.csr_array(np.array([[-2.0, 1.0]])), max_minutes=30)


def test_foreign_sparse_minutes_are_still_checked_travel_times_at_construction():
    # the access functions trust a TravelTimes (checked when built) and check the rest
    bad_nan = sp.csr_array((np.array([np.nan, 1.0]), ([0, 0], [0, 1])), shape=(1, 2))
    bad_neg = sp.csr_array((np.array([-0.5, 1.0]), ([0, 0], [0, 1])), shape=(1, 2))
    for bad, match in ((bad_nan, "NaN"), (bad_neg, "negative")):
        with pytest.raises(InputError, match=match):
            compute_e2sfca(bad, [1.0], [1.0, 1.0], max_minutes=30)
        with pytest.raises(InputError, match=match):
            count_reachable(bad, max_minutes=30)
        with pytest.raises(InputError, match=match):
            minutes_to_nearest(bad)
    # a large foreign matrix (the product path) with one NaN among pairs past the reach
    minutes, demand, supply = random_instance(12, n=400, m=35)
    pairs = _as_sparse(minutes)
    pairs.data[np.flatnonzero(pairs.data > 30)[-1]] = np.nan
    with pytest.raises(InputError, match="NaN"):
        compute_e2sfca(pairs, demand, supply, max_minutes=30)
    tt = crow_fly_travel_times(np.array([[0.0, 0.0]]), np.array([[500.0, 0.0], [0.0, 900.0]]),
                               max_minutes=30)
    for value, match in ((np.nan, "NaN"), (-1.0, "negative")):
        data = tt.within.data.copy()
        data[0] = value
        bad = sp.csr_array((data, tt.within.indices, tt.within.indptr), shape=tt.shape)
        with pytest.raises(InputError, match=match):
            dataclasses.replace(tt, within=bad)
    with pytest.raises(InputError, match="scipy.sparse"):
        dataclasses.replace(tt, within=tt.minutes)


@pytest.mark.parametrize("per_block", [1, 37, 1 << 18])
@pytest.mark.parametrize("decay", ["default", "steps_short", "gaussian"])
def test_pairs_past_the_reach_dropped_first_give_the_same_scores(per_block, decay, monkeypatch):
    # stored pairs up to 60 min, catchment 30 (as the pipeline routes to twice it): the
    # pairs past the decay's reach are dropped by blocks of rows before the products;
    # rows without pairs first, in the middle and last, 0-minute pairs, an unknown supply;
    # each block size gives what the products on every pair give, and access's answer
    from access import weights

    import diagnosis.e2sfca as acc

    monkeypatch.setattr(acc, "_SMALL_PAIRS", 0)  # the product path even at this size
    minutes, demand, supply = random_instance(13, n=500, m=40)
    minutes = minutes * 1.5  # up to 75 minutes
    minutes[[0, 1, 250, 499]] = np.inf
    f = {"default": step_decay(30), "steps_short": step_decay(30, steps={8: 1.0, 17: 0.4}),
         "gaussian": gaussian_decay(30, sigma_minutes=12)}[decay]
    minutes[5, :4] = 0.0
    minutes[6, :3] = f.reach_minutes  # on the last bound: within reach, weighed
    supply[7] = np.nan
    pairs = _as_sparse(minutes)
    assert (pairs.data > f.reach_minutes).mean() > 0.5
    monkeypatch.setattr(acc, "_DROP_SHARE", -1.0)  # never drop: products on every pair
    every = compute_e2sfca(pairs, demand, supply, max_minutes=30, decay=f)
    monkeypatch.setattr(acc, "_DROP_SHARE", 1.0)  # always drop
    monkeypatch.setattr(acc, "_DROP_MIN_PAIRS", 0)
    monkeypatch.setattr(acc, "_DROP_BLOCK", per_block)
    kept = acc._weights_within_reach(pairs, f)
    assert kept is not None
    assert kept.nnz == int((pairs.data <= f.reach_minutes).sum()) < pairs.nnz
    assert kept.has_canonical_format
    np.testing.assert_array_equal(kept.toarray(), f(minutes))
    assert kept[[5], :4].nnz == 4 and kept[[6], :3].nnz == 3  # 0 minutes, on the bound
    got = compute_e2sfca(pairs, demand, supply, max_minutes=30, decay=f)
    np.testing.assert_allclose(got.access, every.access, rtol=1e-13, atol=0)
    np.testing.assert_allclose(got.catchment_demand, every.catchment_demand, rtol=1e-13)
    np.testing.assert_array_equal(np.isnan(got.facility_ratio), np.isnan(every.facility_ratio))
    assert got.n_origins_without_access == every.n_origins_without_access >= 4
    keep = ~np.isnan(supply)
    fn = weights.step_fn(dict(zip(f.bounds, f.weights, strict=True))) if f.kind == "step" \
        else weights.gaussian(12.0)
    ref = access_e2sfca(minutes[:, keep], demand, supply[keep], 30, fn)
    found = ~np.isnan(ref)
    np.testing.assert_allclose(got.access[found], ref[found], rtol=0, atol=1e-12)
    assert (got.access[~found] == 0).all()


def test_every_pair_past_the_reach_dropped_leaves_no_access(monkeypatch):
    # a catchment shorter than every stored time: all pairs dropped, no score, no ratio
    import diagnosis.e2sfca as acc

    monkeypatch.setattr(acc, "_DROP_MIN_PAIRS", 0)
    minutes, demand, supply = random_instance(15, n=200, m=30)
    pairs = _as_sparse(minutes + 40.0)
    assert acc._weights_within_reach(pairs, step_decay(30)).nnz == 0
    got = compute_e2sfca(pairs, demand, supply, max_minutes=30)
    assert (got.access == 0).all() and got.n_origins_without_access == 200
    assert np.isnan(got.facility_ratio).all() and (got.catchment_demand == 0).all()
    assert got.n_facilities_without_demand == 30


def test_travel_times_within_the_reach_are_not_compared_again(monkeypatch):
    # a TravelTimes routed to the catchment holds no pair past it: no drop pass at all;
    # routed to twice the catchment, the pairs past it are dropped (same scores)
    import diagnosis.e2sfca as acc

    monkeypatch.setattr(acc, "_DROP_MIN_PAIRS", 0)
    rng = np.random.default_rng(14)
    origins, fac = rng.uniform(0, 60_000, (800, 2)), rng.uniform(0, 60_000, (60, 2))
    demand, supply = rng.integers(0, 50, 800).astype(float), rng.integers(5, 40, 60) * 1.0
    near, far = (crow_fly_travel_times(origins, fac, max_minutes=c) for c in (30, 60))
    calls = []
    real = acc._weights_within_reach

    def spy(pairs, weight):
        got = real(pairs, weight)
        calls.append(got is not None and got.nnz < pairs.nnz)
        return got

    monkeypatch.setattr(acc, "_weights_within_reach", spy)
    a = compute_e2sfca(near, demand, supply, max_minutes=30)
    assert calls == []
    b = compute_e2sfca(far, demand, supply, max_minutes=30)
    assert calls == [True]  # most pairs past 30 min: dropped
    np.testing.assert_allclose(b.access, a.access, rtol=1e-13, atol=0)
    np.testing.assert_allclose(b.catchment_demand, a.catchment_demand, rtol=1e-13)


def test_travel_times_front_uses_the_sparse_pairs_and_the_nearest_vector():
    rng = np.random.default_rng(8)
    origins = rng.uniform(0, 100_000, (600, 2))
    fac = rng.uniform(0, 100_000, (90, 2))
    tt = crow_fly_travel_times(origins, fac, max_minutes=30)
    assert tt.n_pairs_within < 0.5 * 600 * 90  # stored: only the pairs within reach
    dense = tt.minutes
    demand = rng.integers(0, 50, 600).astype(float)
    supply = rng.integers(5, 40, 90).astype(float)
    a = compute_e2sfca(tt, demand, supply, max_minutes=20)
    b = compute_e2sfca(dense, demand, supply, max_minutes=20)
    np.testing.assert_allclose(a.access, b.access, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(minutes_to_nearest(tt), dense.min(axis=1))
    np.testing.assert_array_equal(count_reachable(tt, max_minutes=20),
                                  (dense <= 20).sum(axis=1))


def test_origins_out_of_reach_get_zero_where_access_has_nothing():
    minutes, demand, supply = random_instance(3, n=50, m=5)
    minutes[:4] = np.inf  # four origins reach nothing
    from access import weights

    ref = access_e2sfca(minutes, demand, supply, 30, weights.step_fn({10: 1, 20: .68, 30: .22}))
    ours = compute_e2sfca(minutes, demand, supply, max_minutes=30)
    missing = np.isnan(ref)  # access leaves out origins with no facility within 30 min
    assert missing[:4].all()
    assert (ours.access[missing] == 0).all()
    np.testing.assert_allclose(ours.access[~missing], ref[~missing], rtol=0, atol=1e-9)
    assert ours.n_origins_without_access == int(missing.sum())


def test_nan_capacity_is_excluded_and_counted_never_zero_places():
    minutes, demand, supply = random_instance(4, n=80, m=6)
    with_nan = supply.copy()
    with_nan[2] = np.nan
    r = compute_e2sfca(minutes, demand, with_nan, max_minutes=30)
    without = compute_e2sfca(np.delete(minutes, 2, axis=1), demand, np.delete(supply, 2),
                             max_minutes=30)
    np.testing.assert_allclose(r.access, without.access, rtol=1e-12)
    assert r.n_facilities_without_capacity == 1
    assert np.isnan(r.facility_ratio[2]) and r.catchment_demand[2] == 0
    # Counting it as 0 places would differ: it would not change access either, but the
    # count tells the reader the capacity is unknown. A facility with 0 places is kept.
    zero = compute_e2sfca(minutes, demand, np.where(np.isnan(with_nan), 0, with_nan),
                          max_minutes=30)
    assert zero.n_facilities_without_capacity == 0


def test_facility_without_demand_is_counted():
    minutes = np.array([[5.0, 5.0], [5.0, np.inf]])
    r = compute_e2sfca(minutes, [0, 10], [10, 10], max_minutes=30)
    # Facility 1 is reached only by origin 0, which has no births.
    assert r.n_facilities_without_demand == 1
    assert np.isnan(r.facility_ratio[1])
    np.testing.assert_allclose(r.access, [1.0, 1.0])


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    ((np.ones((2, 3)), [1, 2], [1, 2]), {"max_minutes": 30}, "supply must have 3"),
    ((np.ones((2, 3)), [1], [1, 2, 3]), {"max_minutes": 30}, "demand must have 2"),
    ((np.ones((2, 1)), [1, np.nan], [1]), {"max_minutes": 30}, "demand must be >= 0"),
    ((np.ones((2, 1)), [1, -3], [1]), {"max_minutes": 30}, "demand must be >= 0"),
    ((np.ones((2, 1)), [1, 2], [-1]), {"max_minutes": 30}, "supply must be >= 0"),
    ((np.array([[np.nan]]), [1], [1]), {"max_minutes": 30}, "NaN"),
    ((np.array([[-2.0]]), [1], [1]), {"max_minutes": 30}, "negative"),
    ((np.ones((2, 1)), [1, 2], [1]), {"max_minutes": -10}, "max_minutes"),
    ((np.ones((0, 1)), [], [1]), {"max_minutes": 30}, "travel_minutes is empty"),
    ((np.ones(3), [1], [1]), {"max_minutes": 30}, "travel_minutes must be 2-D"),
])
def test_e2sfca_bad_arguments(args, kwargs, match):
    with pytest.raises(InputError, match=match):
        compute_e2sfca(*args, **kwargs)


# --- per-origin indicators ----------------------------------------------------------------


def test_simple_indicators_by_hand():
    m = np.array([[12.0, 7.0, 30.0], [np.inf, 20.0, 25.0], [np.inf, np.inf, np.inf]])
    assert minutes_to_nearest(m).tolist() == [7.0, 20.0, np.inf]
    assert count_reachable(m, max_minutes=20).tolist() == [2, 1, 0]
    # births 30 / 10 / 60, threshold 15: only the first origin is within reach.
    assert births_within_share(minutes_to_nearest(m), [30, 10, 60], max_minutes=15) == 0.3
    # Unknown births are left out of both sums.
    assert births_within_share([5.0, 50.0, 5.0], [30, 10, np.nan], max_minutes=15) == 0.75
    assert np.isnan(births_within_share([5.0], [np.nan], max_minutes=15))
    with pytest.raises(InputError, match="max_minutes"):
        count_reachable(m, max_minutes=-1)


# --- GeoDataFrame front -------------------------------------------------------------------


def _facilities(rows):
    """Schema facility rows from (id, type, capacity, x_2154, y_2154)."""
    data = {c: [] for c in FACILITY_DTYPES}
    geoms = []
    for fid, ftype, cap, x, y in rows:
        for c in FACILITY_DTYPES:
            data[c].append("")
        data["facility_id"][-1] = fid
        data["type"][-1] = ftype
        data["capacity"][-1] = cap
        data["code_insee"][-1] = "44001"
        data["position_precision"][-1] = "address"
        geoms.append(Point(x, y))
    gdf = gpd.GeoDataFrame(data, geometry=geoms, crs="EPSG:2154")
    gdf["capacity"] = gdf["capacity"].astype(float)
    return gdf.to_crs("EPSG:4326")


@pytest.fixture
def territory():
    # Three commune points on a line, 0, 10 and 30 km from the origin (Lambert-93).
    x0, y0 = 350_000.0, 6_700_000.0
    communes = gpd.GeoDataFrame(
        {"code_insee": ["44001", "44002", "44003"], "name": ["A", "B", "C"],
         "births_2024": [100.0, 50.0, np.nan]},
        geometry=[Point(x0, y0), Point(x0 + 10_000, y0), Point(x0 + 30_000, y0)],
        crs="EPSG:2154",
    ).to_crs("EPSG:4326")
    facilities = _facilities([
        ("x:1", "eaje", 20.0, x0 + 1_000, y0),
        ("x:2", "eaje", np.nan, x0 + 10_000, y0),
        ("x:3", "pmi", np.nan, x0, y0),
    ])
    return communes, facilities, x0, y0


def test_access_indicators_on_a_tiny_territory(territory):
    communes, facilities, x0, y0 = territory
    # Crow-fly at 60 km/h with no detour: minutes = km.
    tt = compute_travel_times_by_type(communes, facilities, max_minutes=60, speed_kmh=60,
                                      detour_factor=1.0)
    assert set(tt) == {"eaje", "pmi"}
    res = compute_access_indicators(communes, facilities, tt, max_minutes=15,
                                    facility_types=["pmi", "eaje", "laep"])
    t = res.table
    assert t["code_insee"].tolist() == ["44001", "44002", "44003"]
    np.testing.assert_allclose(t["minutes_nearest_eaje"], [1.0, 0.0, 20.0], atol=1e-6)
    np.testing.assert_allclose(t["minutes_nearest_pmi"], [0.0, 10.0, 30.0], atol=1e-6)
    assert t["reachable_eaje"].tolist() == [2, 2, 0]
    assert t["reachable_pmi"].tolist() == [1, 1, 0]
    # LAEP: none in the territory -> a gap, not an error.
    assert np.isinf(t["minutes_nearest_laep"]).all() and (t["reachable_laep"] == 0).all()
    assert t["e2sfca_laep"].isna().all() and t["e2sfca_pmi"].isna().all()
    # E2SFCA eaje: only x:1 has a capacity; C has unknown births (no demand).
    # Bands of 15 min: <=5 -> 1, <=10 -> 0.68, <=15 -> 0.22. x:1 is 1 min from A and
    # 9 min from B: R = 20 / (100 * 1 + 50 * 0.68) = 20 / 134.
    r = 20 / 134
    np.testing.assert_allclose(t["e2sfca_eaje"], [r, r * 0.68, 0.0], rtol=1e-9)
    s = res.summary.set_index("type")
    assert s.loc["eaje", "n_facilities_without_capacity"] == 1
    assert s.loc["eaje", "engine"] == "crow_fly"
    assert s.loc["eaje", "births_within"] == 150.0
    assert s.loc["pmi", "share_births_within"] == 1.0  # C is beyond but its births unknown
    assert s.loc["pmi", "n_communes_beyond"] == 1
    assert s.loc["laep", "n_facilities"] == 0
    assert (s["n_communes_births_missing"] == 1).all()
    assert res.params["max_minutes"] == 15 and "paliers" in res.params["decay"]


def test_access_indicators_on_a_road_graph(territory):
    communes, facilities, x0, y0 = territory
    # A two-way road along the commune line, 1 minute per km.
    xs = x0 + np.arange(0, 31) * 1000.0
    tail = np.r_[np.arange(30), np.arange(1, 31)]
    head = np.r_[np.arange(1, 31), np.arange(30)]
    g = road_graph_from_arrays(tail, head, np.full(60, 60.0), xs, np.full(31, y0),
                               mode="drive")
    tt = compute_travel_times_by_type(communes, facilities, max_minutes=40, graph=g)
    assert tt["eaje"].engine == "road_network"
    res = compute_access_indicators(communes, facilities, tt, max_minutes=15)
    np.testing.assert_allclose(res.table["minutes_nearest_pmi"], [0.0, 10.0, 30.0])
    assert res.summary.set_index("type").loc["pmi", "engine"] == "road_network"


def test_access_indicators_errors(territory):
    communes, facilities, *_ = territory
    tt = compute_travel_times_by_type(communes, facilities, max_minutes=10)
    with pytest.raises(InputError, match="cutoff"):
        compute_access_indicators(communes, facilities, tt, max_minutes=20)
    bad = {"eaje": crow_fly_travel_times(np.zeros((2, 2)), np.zeros((2, 2)))}
    with pytest.raises(InputError, match="shape"):
        compute_access_indicators(communes, facilities, bad)
    with pytest.raises(InputError, match="no matrix for type 'pmi'"):
        compute_access_indicators(communes, facilities, {}, facility_types=["pmi"])
    with pytest.raises(InputError, match="births_2024"):
        compute_access_indicators(communes.drop(columns="births_2024"), facilities, tt)
    with pytest.raises(InputError, match="facility_types"):
        compute_travel_times_by_type(communes, facilities, max_minutes=10,
                                     facility_types=["creche"])
    assert DEFAULT_MAX_MINUTES == 20.0
