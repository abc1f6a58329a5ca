"""Benchmark: maximal covering, our HiGHS path vs PySAL spopt ``MCLP`` (PuLP + CBC).

Run from the repository root::

    python bench/siting.py [--seed 44] [--repeats 3] [--k 5] [--max-minutes 15]

Instance (seeded, built once, outside the timings): 2,000 demand points and 300
candidate sites in a 40 km square, half of the demand and 60 % of the candidates
clustered around 12 towns of Pareto-distributed size, the rest uniform; weights are
births per point (gamma, mean ~7, rounded); travel minutes are crow-fly distance x 1.3
(detour) at 40 km/h, so the 15-minute standard is a radius of ~7.7 km (about 40
candidates within reach of a demand point). ``k = 5`` new sites.

Timed on the same minutes matrix, median of ``--repeats`` runs each:

- ours, exact: ``sparse.csc_matrix(minutes <= T)`` then
  :func:`diagnosis.siting.solve_max_covering` (``method="exact"``);
- spopt: ``MCLP.from_cost_matrix(...)`` (PuLP model building, part of what a user pays)
  then ``.solve(pulp.PULP_CBC_CMD(msg=False))``;
- ours, greedy (lazy greedy + swap, 4 starts), compared with our optimum.

The last line is ``RESULT ratio=<spopt time / our time> objective_gap=<relative
difference to spopt> greedy_ratio=<greedy objective / optimum>``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pulp
from scipy import sparse
from spopt.locate import MCLP

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diagnosis.siting import solve_max_covering  # noqa: E402

N_DEMAND, N_CANDIDATES, SIDE_M = 2_000, 300, 40_000.0
SPEED_KMH, DETOUR = 40.0, 1.3


def make_instance(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (minutes (demand x candidates), births per demand point)."""
    rng = np.random.default_rng(seed)
    towns = rng.uniform(0.1 * SIDE_M, 0.9 * SIDE_M, (12, 2))
    size = rng.pareto(1.5, 12) + 1.0

    def points(count: int, share_town: float) -> np.ndarray:
        n_town = int(count * share_town)
        which = rng.choice(12, n_town, p=size / size.sum())
        near = towns[which] + rng.normal(0.0, 1_500.0, (n_town, 2))
        spread = rng.uniform(0.0, SIDE_M, (count - n_town, 2))
        return np.clip(np.vstack([near, spread]), 0.0, SIDE_M)

    demand = points(N_DEMAND, 0.5)
    candidates = points(N_CANDIDATES, 0.6)
    births = rng.gamma(1.2, 6.0, N_DEMAND).round(0)
    dist_m = np.sqrt(((demand[:, None, :] - candidates[None, :, :]) ** 2).sum(-1))
    minutes = dist_m / 1_000.0 * DETOUR / SPEED_KMH * 60.0
    return minutes, births


def run_ours(minutes: np.ndarray, births: np.ndarray, k: int, t: float, method: str):
    t0 = time.perf_counter()
    coverage = sparse.csc_matrix(minutes <= t)
    res = solve_max_covering(coverage, births, k, method=method)
    return time.perf_counter() - t0, res


def run_spopt(minutes: np.ndarray, births: np.ndarray, k: int, t: float):
    t0 = time.perf_counter()
    model = MCLP.from_cost_matrix(minutes, births, service_radius=t, p_facilities=k)
    t_build = time.perf_counter() - t0
    model = model.solve(pulp.PULP_CBC_CMD(msg=False), results=False)
    elapsed = time.perf_counter() - t0
    chosen = np.array([j for j, v in enumerate(model.fac_vars) if v.value() > 0.5])
    return elapsed, t_build, float(pulp.value(model.problem.objective)), chosen, \
        pulp.LpStatus[model.problem.status]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=44)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-minutes", type=float, default=15.0)
    args = parser.parse_args()
    k, t = args.k, args.max_minutes

    minutes, births = make_instance(args.seed)
    coverage = minutes <= t
    print(f"instance: seed={args.seed}, {N_DEMAND} demand x {N_CANDIDATES} candidates, "
          f"k={k}, T={t:g} min (radius {t / 60 * SPEED_KMH / DETOUR:.2f} km), "
          f"{coverage.sum(axis=1).mean():.1f} candidates within reach per demand point, "
          f"total births {births.sum():.0f}")

    ours_t, ours = [], None
    for _ in range(args.repeats):
        el, ours = run_ours(minutes, births, k, t, "exact")
        ours_t.append(el)
    assert ours is not None
    print(f"ours exact : median {statistics.median(ours_t):.3f} s over {args.repeats} runs "
          f"({', '.join(f'{x:.3f}' for x in ours_t)}); objective {ours.objective:.6f}; "
          f"status {ours.status} ({ours.solver_status}); gap {ours.gap:.2e}; "
          f"reduced instance {ours.reduced_shape}; sites {ours.selected.tolist()}")

    sp_t, sp_build = [], []
    sp_obj, sp_sel, sp_status = float("nan"), np.zeros(0, dtype=int), ""
    for _ in range(args.repeats):
        el, tb, sp_obj, sp_sel, sp_status = run_spopt(minutes, births, k, t)
        sp_t.append(el)
        sp_build.append(tb)
    sp_check = float(births[coverage[:, sp_sel].any(axis=1)].sum())
    print(f"spopt MCLP : median {statistics.median(sp_t):.3f} s over {args.repeats} runs "
          f"({', '.join(f'{x:.3f}' for x in sp_t)}), of which PuLP model building "
          f"{statistics.median(sp_build):.3f} s; objective {sp_obj:.6f} (re-evaluated "
          f"{sp_check:.6f}); PuLP status {sp_status}; sites {sorted(sp_sel.tolist())}")

    gr_t, greedy = [], None
    for _ in range(args.repeats):
        el, greedy = run_ours(minutes, births, k, t, "greedy")
        gr_t.append(el)
    assert greedy is not None
    print(f"ours greedy: median {statistics.median(gr_t) * 1000:.1f} ms; objective "
          f"{greedy.objective:.6f}; sites {greedy.selected.tolist()}")

    ratio = statistics.median(sp_t) / statistics.median(ours_t)
    objective_gap = abs(ours.objective - sp_obj) / abs(sp_obj)
    greedy_ratio = greedy.objective / ours.objective
    print(f"RESULT ratio={ratio:.2f} objective_gap={objective_gap:.3g} "
          f"greedy_ratio={greedy_ratio:.4f}")


if __name__ == "__main__":
    main()
