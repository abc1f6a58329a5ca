"""Benchmark: E2SFCA, Maillage (numpy/scipy.sparse) vs PySAL ``access`` (enhanced_two_stage_fca).

Run ``python bench/e2sfca.py`` (three instances, seeded) or ``--quick`` (small ones).

1. *Sparse* (the first version of this bench, keys ``ratio``, ``max_abs_diff``): 10,000
   origins and 1,000 facilities in a 100 km square; travel minutes = crow-fly estimate
   (x 1.3 at 40 km/h) with a 60-minute routing cutoff: ~1.4 M pairs, of which few within
   the 30-minute catchment.
2. *Rural 30-minute catchment* (keys ``rural_*``): the same counts in a 20 km square,
   the density of a 30-minute catchment in a rural département: ~8.2 M pairs within 30
   minutes, the case where ``access`` takes 10-15 s.
3. *Département* (``dept_*``: 700 communes x 150 facilities in an 80 km square, car
   20 min), *urban all-in-reach* (``urban_*``: 3,000 IRIS x 1,000 facilities in a 4 km
   square, every pair within 30 min) and *200 m grid* (``grid_*``: 25,000 cells x 400
   facilities in a 30 km square, 20 min); ``min_ratio`` is the worst over all five.
4. *90,000 x 1,000* at the rural density (keys ``big_*``): ~74 M pairs. Ours only:
   ``access``'s cost table alone would be 74 M rows (1.8 GB in three columns before its
   merges) and its run is extrapolated from instance 2 (time and memory grow with the
   pairs), not run on this shared 2-core machine.

Births 0-300 per origin, 10-60 places per facility. Both sides get the same times:
ours the sparse pairs of :func:`diagnosis.travel.crow_fly_travel_times` (what
the project computes), ``access`` the long table of the same pairs (what a routed cost
table holds). E2SFCA with a 30-minute catchment and the Luo & Qi step decay
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
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from diagnosis.accessibility import compute_e2sfca, step_decay  # noqa: E402
from diagnosis.travel import crow_fly_travel_times  # noqa: E402


def make_instance(n_origins: int, n_facilities: int, *, seed: int, side_m: float = 100_000.0,
                  cutoff_minutes: float = 60.0):
    rng = np.random.default_rng(seed)
    origins = rng.uniform(0, side_m, (n_origins, 2))
    facilities = rng.uniform(0, side_m, (n_facilities, 2))
    tt = crow_fly_travel_times(origins, facilities, max_minutes=cutoff_minutes)
    births = rng.integers(0, 300, n_origins).astype(float)
    places = rng.integers(10, 60, n_facilities).astype(float)
    return tt, births, places


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_ours(tt, births, places, decay, max_minutes, repeats: int):
    best = best_wall = np.inf
    ours = None
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        ours = compute_e2sfca(tt, births, places, max_minutes=max_minutes, decay=decay)
        best = min(best, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return ours, best, best_wall


def compare(tag: str, tt, births, places, decay, max_minutes, repeats: int):
    """Time ours and access on one instance; return (ratio, diff, ours_s, access_s, pairs)."""
    ours, best, best_wall = time_ours(tt, births, places, decay, max_minutes, repeats)
    before = peak_mb()
    ref, peer_t, peer_wall, n_pairs = run_access(tt.within, births, places, decay, max_minutes)
    peer_mb = peak_mb() - before
    d = float(np.max(np.abs(ours.access - ref)))
    rel = d / float(np.max(np.abs(ref)))
    n, m = tt.shape
    print(f"[{tag}] {n:,} origins x {m:,} facilities, {n_pairs:,} stored pairs, "
          f"catchment {max_minutes:g} min, decay {decay.label}")
    print(f"[{tag}]   CPU: ours {best:.3f} s (best of {repeats}) | access {peer_t:.3f} s | "
          f"ratio {peer_t / best:.1f} | max_abs_diff {d:.3g} (relative {rel:.2g}) | "
          f"origins without access {ours.n_origins_without_access}")
    print(f"[{tag}]   wall: ours {best_wall:.3f} s | access {peer_wall:.3f} s; access raised "
          f"this process's peak RSS by {peer_mb:.0f} MB")
    return peer_t / best, d, best, peer_t, n_pairs, peer_mb


def run_access(pairs, births: np.ndarray, places: np.ndarray, decay, max_minutes):
    from access import Access, weights

    # access's own step function with the same bands (faster than calling ours per cell).
    weight_fn = weights.step_fn(dict(zip(decay.bounds, decay.weights, strict=True)))

    n, m = pairs.shape
    demand_df = pd.DataFrame({"births": births}, index=pd.Index(np.arange(n), name="geoid"))
    supply_df = pd.DataFrame({"places": places}, index=pd.Index(np.arange(m), name="geoid"))
    coo = pairs.tocoo()
    cost_df = pd.DataFrame({"origin": coo.row, "dest": coo.col, "minutes": coo.data})
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
    parser.add_argument("--quick", action="store_true", help="1,000 x 200 instances instead")
    args = parser.parse_args()
    n, m = (1_000, 200) if args.quick else (10_000, 1_000)
    big_n = 9_000 if args.quick else 90_000
    max_minutes = 30.0
    decay = step_decay(max_minutes)

    tt, births, places = make_instance(n, m, seed=2024)
    ratio, d, *_ = compare("e2sfca", tt, births, places, decay, max_minutes, repeats=5)

    tt, births, places = make_instance(n, m, seed=2025, side_m=20_000.0,
                                       cutoff_minutes=max_minutes)
    r_ratio, r_d, r_ours, r_peer, r_pairs, r_mb = compare("rural", tt, births, places, decay,
                                                          max_minutes, repeats=3)
    del tt
    # The three other densities a diagnosis meets (issue: every density, not the best one).
    others = {}
    for tag, (on, om, side, minutes, cutoff, seed) in {
        # a département: communes and one type's facilities, car 20 min, 80 km square
        "dept": ((700, 150) if not args.quick else (300, 60)) + (80_000.0, 20.0, 20.0, 7),
        # a city where every facility is within reach of every IRIS (all pairs stored)
        "urban": ((3_000, 1_000) if not args.quick else (600, 200)) + (4_000.0, 30.0, 30.0, 8),
        # 200 m grid cells of a 30 km square, car 20 min
        "grid": ((25_000, 400) if not args.quick else (5_000, 100)) + (30_000.0, 20.0, 20.0,
                                                                         9),
    }.items():
        tt, births, places = make_instance(on, om, seed=seed, side_m=side,
                                           cutoff_minutes=cutoff)
        others[tag] = compare(tag, tt, births, places, step_decay(minutes), minutes,
                              repeats=3)
        del tt

    w0 = time.perf_counter()
    tt, births, places = make_instance(big_n, m, seed=2026, side_m=20_000.0,
                                       cutoff_minutes=max_minutes)
    build_s = time.perf_counter() - w0
    ours, big_s, big_wall = time_ours(tt, births, places, decay, max_minutes, repeats=1)
    big_pairs = tt.n_pairs_within
    scale = big_pairs / r_pairs
    print(f"[big] {big_n:,} origins x {m:,} facilities, {big_pairs:,} stored pairs: ours "
          f"{big_s:.3f} s CPU ({big_wall:.3f} s wall) for the E2SFCA, {build_s:.1f} s to "
          f"build the crow-fly pairs; peak RSS of this process {peak_mb():.0f} MB")
    print(f"[big]   access not run: its cost table would hold {big_pairs:,} rows; "
          f"extrapolated from the rural instance ({scale:.1f}x the pairs): "
          f"~{r_peer * scale:.0f} s CPU and ~{r_mb * scale:.0f} MB more memory")
    print(f"RESULT ratio={ratio:.2f} max_abs_diff={d:.3g} rural_ratio={r_ratio:.2f} "
          f"rural_max_abs_diff={r_d:.3g} rural_pairs={r_pairs} rural_ours_s={r_ours:.3f} "
          f"rural_access_s={r_peer:.3f} big_pairs={big_pairs} big_ours_s={big_s:.3f} "
          f"big_access=not_run big_access_s_extrapolated={r_peer * scale:.0f} "
          + " ".join(f"{tag}_ratio={o[0]:.2f} {tag}_max_abs_diff={o[1]:.3g} "
                     f"{tag}_pairs={o[4]}" for tag, o in others.items())
          + f" min_ratio={min([ratio, r_ratio] + [o[0] for o in others.values()]):.2f}")


if __name__ == "__main__":
    main()
