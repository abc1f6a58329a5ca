"""Tests of diagnosis.pmedian: brute force on small instances, agreement with
``diagnosis.siting.solve_p_median`` (same greedy + vertex substitution), the Lagrangian
bound never above the optimum.

The fast interchange follows Resende & Werneck, "A fast swap-based local search
procedure for location problems" (Annals of OR 150, 2007): gain / loss / extra terms.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from diagnosis.errors import InputError
from diagnosis.pmedian import p_median_lower_bound, solve_p_median_fast
from diagnosis.siting import solve_p_median


def instance(seed: int, n: int = 40, m: int = 10, unreachable: float = 0.15):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 30, (n, 2)), rng.uniform(0, 30, (m, 2))
    d = np.hypot(*(a[:, None, :] - b[None, :, :]).transpose(2, 0, 1))
    d[rng.random((n, m)) < unreachable] = np.inf
    w = rng.integers(0, 20, n).astype(float)
    return d, w


def brute_force(d, w, k, fixed=(), penalty=None):
    pen = 10 * d[np.isfinite(d)].max() if penalty is None else penalty
    free = [j for j in range(d.shape[1]) if j not in fixed]
    best = np.inf
    for combo in itertools.combinations(free, k):
        cols = list(fixed) + list(combo)
        best = min(best, float(w @ np.minimum(d[:, cols].min(axis=1), pen)))
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_within_one_percent_of_brute_force_and_bound_below(seed, k):
    d, w = instance(seed)
    opt = brute_force(d, w, k)
    r = solve_p_median_fast(d, w, k)
    assert r.selected.size == k and r.objective >= opt - 1e-9
    assert r.objective <= 1.01 * opt
    lb = p_median_lower_bound(d, w, k, upper_bound=r.objective)
    assert 0 < lb <= opt * (1 + 1e-9)


def test_siting_uses_the_fast_heuristic_and_restarts_never_do_worse():
    for seed in range(4):
        d, w = instance(seed, n=200, m=40)
        for k in (2, 6):
            plain = solve_p_median_fast(d, w, k, n_restarts=0)
            ours = solve_p_median_fast(d, w, k)
            ref = solve_p_median(d, w, k, method="greedy")
            assert ours.objective <= plain.objective * (1 + 1e-12)
            assert ref.selected.tolist() == ours.selected.tolist()
            assert ref.objective == pytest.approx(ours.objective, rel=1e-12)


def test_fixed_sites_stay_open_and_count():
    d, w = instance(9)
    r = solve_p_median_fast(d, w, 2, fixed=[0, 4])
    assert r.fixed.tolist() == [0, 4] and not set(r.selected.tolist()) & {0, 4}
    assert r.objective == pytest.approx(brute_force(d, w, 2, fixed=(0, 4)), rel=0.01)
    lb = p_median_lower_bound(d, w, 2, upper_bound=r.objective, fixed=[0, 4])
    assert lb <= brute_force(d, w, 2, fixed=(0, 4)) * (1 + 1e-9)


def test_by_hand_and_unreachable():
    d = np.array([[0.0, np.inf], [np.inf, 0.0], [4.0, 6.0]])
    r = solve_p_median_fast(d, [1.0, 3.0, 1.0], 1, unreachable_minutes=100.0)
    # Site 1: row 0 unreached (100), row 2 at 6 -> 106; site 0: row 1 unreached -> 304.
    assert r.selected.tolist() == [1] and r.objective == 106.0
    assert r.assignment.tolist() == [-1, 1, 1]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"k": 0}, "k=0"),
    ({"k": 11}, "k=11"),
    ({"k": 2, "initial": [1]}, "initial"),
    ({"k": 2, "fixed": [12]}, "fixed"),
])
def test_errors_name_the_argument(kwargs, match):
    d, w = instance(1)
    with pytest.raises(InputError, match=match):
        solve_p_median_fast(d, w, **kwargs)
    with pytest.raises(InputError, match="weights"):
        solve_p_median_fast(d, w[:-1], 1)
