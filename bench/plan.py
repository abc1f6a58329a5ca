"""Benchmark: the federation's national plan at the scale of France.

Run from the repository root::

    python bench/plan.py [--new 50] [--max-minutes 30] [--pool 1000]

Builds a synthetic national INSEE file (every current commune of the shipped geography,
populations drawn log-normally, births 1.1 % of the population, as
tests/test_national_run.py), then times, in one process: loading (workspace, known
Maisons, candidates = every town hall), the sparse crow-fly pairs, the covering
(greedy + swap on every candidate, HiGHS on the pool of the best candidates) and the
101 département answers. Prints wall-clock and CPU seconds of each step (the machine is
shared: CPU seconds are the stable figure), the peak memory, the families reached, and
the greedy answer against the exact answer on the pool (how much HiGHS adds). Not part
of pytest.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _insee_file(path: Path) -> None:
    from data_sources.national import load_national_communes

    nat = load_national_communes()
    rng = np.random.default_rng(0)
    pop = rng.lognormal(6.5, 1.3, len(nat)).round().astype(int) + 50
    lines = ["CODGEO;P22_POP;SUPERF;NAIS1621;NAISD24;MED21;TP6021"]
    for code, p in zip(nat["code_insee"], pop, strict=True):
        lines.append(f"{code};{p};10,5;;{max(0, round(p * 0.011))};20000;s")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class _Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        print(f"{name:<28} wall {wall - self.wall:6.1f} s   cpu {cpu - self.cpu:6.1f} s")
        self.wall, self.cpu = wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new", type=int, default=50)
    ap.add_argument("--max-minutes", type=float, default=30.0)
    ap.add_argument("--pool", type=int, default=1000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_plan_"))
    os.environ.setdefault("MAILLAGE_STORE_DIR", str(tmp / "store"))
    os.environ.setdefault("MAILLAGE_OFFLINE", "1")
    _insee_file(tmp / "insee_fr.csv")

    import diagnosis.plan as P
    from data_sources.national_plan import load_plan_inputs
    from diagnosis.siting import solve_max_covering

    start_wall, start_cpu = time.perf_counter(), time.process_time()
    clock = _Clock()
    inputs = load_plan_inputs("FR", insee_files=[tmp / "insee_fr.csv"])
    clock.lap("chargement")
    com = P._demand(inputs.workspace.own_communes, "births_2024")
    sites = P._sites(inputs.maisons, inputs.candidates)
    a = P._coverage(com, sites, inputs.travel, args.max_minutes)
    clock.lap(f"paires ({a.nnz:,} à portée)")
    w = np.nan_to_num(com["births"].to_numpy(dtype=float))
    fixed = np.flatnonzero(sites["kind"].to_numpy() == P.KIND_EXISTING)
    greedy = solve_max_covering(a, w, args.new, fixed=fixed, method="greedy", n_starts=1)
    clock.lap("glouton + échanges")
    sel, _, _, how = P._solve(a, w, args.new, fixed, method="auto", time_limit_s=40.0,
                              pool_size=args.pool)
    clock.lap("HiGHS sur le vivier")
    clock = _Clock()
    plan = P.compute_national_plan(inputs.workspace.own_communes, inputs.candidates,
                                   inputs.maisons, new=args.new, max_minutes=args.max_minutes,
                                   travel=inputs.travel, dep_names=inputs.dep_names,
                                   pool_size=args.pool)
    clock.lap("plan complet (France + 101 dép.)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"communes {len(com):,}  lieux candidats {plan.summary['n_candidates']:,}  "
          f"Maisons existantes {plan.summary['n_existing']}")
    print(f"familles en plus : glouton {greedy.objective:,.0f} (couvertes au total), "
          f"plan {plan.summary['births_served_after']:,.0f} — {how}")
    print(f"RESULT wall_s={time.perf_counter() - start_wall:.1f} "
          f"cpu_s={time.process_time() - start_cpu:.1f} peak_mb={peak_mb:.0f} "
          f"families_new={plan.summary['families_new']:.0f}")


if __name__ == "__main__":
    main()
