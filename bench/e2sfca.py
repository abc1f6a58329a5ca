"""Benchmark: E2SFCA, Maillage (numpy) vs PySAL ``access`` (enhanced_two_stage_fca).

Run ``python bench/e2sfca.py`` (10,000 origins x 1,000 facilities, seeded) or ``--quick``.

Input: random origins and facilities in a 100 km square; travel minutes = crow-fly
estimate (x 1.3 at 40 km/h) computed with a 60-minute routing cutoff (``inf`` beyond);
births 0-300 per origin, 10-60 places per facility. Both sides get the same times:
ours the dense matrix, ``access`` the long table of the finite pairs (what a routed
cost table holds). E2SFCA with a 30-minute catchment and the Luo & Qi step decay
(1 / 0.68 / 0.22 on thirds), which is also ``access``'s default.

pandas 3.1 compat (inside this bench only): ``access`` calls
``DataFrame.set_index(..., inplace=True)`` on ``demand_index``/``supply_index`` columns,
which pandas 3.1 deprecates with a ``Pandas4Warning``; we pass frames already indexed
(``demand_index=True, supply_index=True``), which skips that call. Nothing else is needed.
The ratio uses CPU time (``time.process_time``: the machine is shared); wall times are
printed too. Origins that reach no facility are absent from ``access``'s result (NaN after reindex);
ours gives them 0: they are compared as 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from diagnosis.accessibility import compute_e2sfca, step_decay  # noqa: E402
from diagnosis.travel_times import crow_fly_travel_times  # noqa: E402


def make_instance(n_origins: int, n_facilities: int, *, seed: int):
    rng = np.random.default_rng(seed)
    origins = rng.uniform(0, 100_000, (n_origins, 2))
    facilities = rng.uniform(0, 100_000, (n_facilities, 2))
    tt = crow_fly_travel_times(origins, facilities, max_minutes=60.0)
    births = rng.integers(0, 300, n_origins).astype(float)
    places = rng.integers(10, 60, n_facilities).astype(float)
    return tt.minutes, births, places


def run_access(minutes: np.ndarray, births: np.ndarray, places: np.ndarray, decay, max_minutes):
    from access import Access, weights

    # access's own step function with the same bands (faster than calling ours per cell).
    weight_fn = weights.step_fn(dict(zip(decay.bounds, decay.weights, strict=True)))

    n, m = minutes.shape
    demand_df = pd.DataFrame({"births": births}, index=pd.Index(np.arange(n), name="geoid"))
    supply_df = pd.DataFrame({"places": places}, index=pd.Index(np.arange(m), name="geoid"))
    i, j = np.nonzero(np.isfinite(minutes))
    cost_df = pd.DataFrame({"origin": i, "dest": j, "minutes": minutes[i, j]})
    c0, t0 = time.process_time(), time.perf_counter()
    acc = Access(demand_df=demand_df, demand_index=True, demand_value="births",
                 supply_df=supply_df, supply_index=True, supply_value="places",
                 cost_df=cost_df, cost_origin="origin", cost_dest="dest", cost_name="minutes")
    res = acc.enhanced_two_stage_fca(name="e2sfca", max_cost=max_minutes,
                                     weight_fn=weight_fn)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    values = res["e2sfca_places"].reindex(np.arange(n)).fillna(0.0).to_numpy()
    return values, cpu, wall, len(cost_df)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 x 200 instead")
    args = parser.parse_args()
    n, m = (1_000, 200) if args.quick else (10_000, 1_000)
    max_minutes = 30.0
    minutes, births, places = make_instance(n, m, seed=2024)
    decay = step_decay(max_minutes)

    best = best_wall = np.inf
    for _ in range(5):
        c0, w0 = time.process_time(), time.perf_counter()
        ours = compute_e2sfca(minutes, births, places, max_minutes=max_minutes, decay=decay)
        best = min(best, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    ref, peer_t, peer_wall, n_pairs = run_access(minutes, births, places, decay, max_minutes)
    d = float(np.max(np.abs(ours.access - ref)))
    rel = d / float(np.max(np.abs(ref)))
    print(f"[e2sfca] {n:,} origins x {m:,} facilities, {n_pairs:,} finite pairs, "
          f"catchment {max_minutes:g} min, decay {decay.label}")
    print(f"[e2sfca]   CPU: ours {best:.3f} s (best of 5) | access {peer_t:.3f} s | "
          f"ratio {peer_t / best:.1f} | max_abs_diff {d:.3g} (relative {rel:.2g}) | "
          f"origins without access {ours.n_origins_without_access}")
    print(f"[e2sfca]   wall: ours {best_wall:.3f} s | access {peer_wall:.3f} s")
    print(f"RESULT ratio={peer_t / best:.2f} max_abs_diff={d:.3g}")


if __name__ == "__main__":
    main()
