"""Benchmark: ``compare --territory FR --by departement`` with 30,000 facilities, whole command.

Run from the repository root::

    python bench/compare.py [--runs 3] [--format table|csv|json]

Input (synthetic, as ``tests/test_national_run.py``): a national INSEE file (every current
commune of the shipped geography, populations drawn log-normally, births 1.1 % of the
population) and 30,000 facilities of six types spread by population around the communes'
reference points. Needs the shipped national geography (``data_sources/national``).

What a user runs, timed as a whole process (start-up, loading, import of the facility
file, output)::

    python -m diagnosis compare --territory FR --by departement \\
        --insee insee_fr.csv --facilities fac_fr.csv

against the previous way on the same input in the same run: the same command with the 101
départements diagnosed one by one (:func:`diagnosis.overview.compute_overview` per
territory, each reprojecting and indexing every facility again), which is what
``compare_overviews`` did before :func:`diagnosis.overview.compute_overviews`. The two
commands alternate; the medians and their ratio are printed, and the two outputs are
compared byte for byte.

Prints ``RESULT ours_s=… peer_s=… ratio=… equal=… runs=… load=…`` (``load``: the
1-minute load average of the machine at the end, from ``/proc/loadavg``).

Measured (2 cores shared with other jobs; whole command, medians of 3 runs, the
1-minute load average given):

- before this work (commit 1c34b09: every commune code of the imported file resolved
  by a scan of the COG table, one overview per département, each reprojecting all the
  facilities) against now, alternating, 3 runs: 47.1 s -> 5.44 s wall, 47.4 s -> 5.68 s
  CPU (load 0.9-1.1), 8.7x (earlier the same day: 44.9 s -> 6.0 s, 53.0 s -> 8.9 s on
  the way); the three outputs (table, CSV, JSON) and the warnings are byte for byte
  those of 1c34b09;
- this bench, 6 Dec 2026 (ours against the same command with one overview per
  territory)::

    RESULT ours_s=5.49 peer_s=18.98 ratio=3.45 equal=True runs=3 load=2.48
    RESULT ours_s=8.22 peer_s=22.93 ratio=2.79 equal=True runs=3 load=4.43  (earlier)

- then (loop-invariants hoisted, vectorised look-ups), ``farm-bench -n 5`` against the
  previous commit, load 0.7-0.9: 5.63 s -> 5.16 s wall median (min 4.70 s), ratio 0.88,
  outputs byte for byte the same.

Not yet at the goal (< 5 s) on a loaded machine: what is left is spread over loading
France (INSEE file, national geography, the facility file's checks: ~55 %), imports
(~1 s) and the 101 territories' sums (~0.8 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from _whole import run_timed  # bench/ is the script's folder

REPO = Path(__file__).resolve().parents[1]
N_FACILITIES = 30_000


def build_inputs(root: Path) -> None:
    """Write ``insee_fr.csv`` and ``fac_fr.csv`` (same draw as tests/test_national_run.py)."""
    sys.path.insert(0, str(REPO))
    from data_sources.national import load_national_communes

    nat = load_national_communes()
    rng = np.random.default_rng(0)
    pop = rng.lognormal(6.5, 1.3, len(nat)).round().astype(int) + 50
    lines = ["CODGEO;P22_POP;SUPERF;NAIS1621;NAISD24;MED21;TP6021"]
    for code, p in zip(nat["code_insee"], pop, strict=True):
        b = max(0, round(p * 0.011))
        rate = "s" if p < 1000 else f"{rng.uniform(6, 30):.1f}".replace(".", ",")
        lines.append(f"{code};{p};10,5;{b * 6};{b};{int(rng.integers(17_000, 26_000))};{rate}")
    (root / "insee_fr.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    idx = rng.choice(len(nat), N_FACILITIES, p=pop / pop.sum())
    idx = idx[nat["point_lat"].notna().to_numpy()[idx]]
    lat = nat["point_lat"].to_numpy()[idx] + rng.normal(0, 0.01, idx.size)
    lon = nat["point_lon"].to_numpy()[idx] + rng.normal(0, 0.01, idx.size)
    kinds = np.array(["crèche", "pmi", "relais petite enfance", "LAEP", "centre social",
                      "maternité"])
    k = kinds[rng.choice(len(kinds), idx.size, p=[.55, .12, .12, .08, .1, .03])]
    codes = nat["code_insee"].to_numpy()[idx]
    rows = ["nom;type;code_insee;latitude;longitude"] + [
        f"S{i};{k[i]};{codes[i]};{lat[i]:.6f};{lon[i]:.6f}" for i in range(idx.size)]
    (root / "fac_fr.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def peer_main() -> None:
    """The command with the territories diagnosed one by one (the previous way)."""
    import diagnosis.pipeline as pipeline
    from diagnosis.errors import MissingDataError
    from diagnosis.overview import compute_overview

    def one_by_one(territories, inputs, *, threshold_m):
        overviews, skipped = [], []
        for t in territories:
            try:
                ov = compute_overview(t, inputs.communes, inputs.facilities,
                                      threshold_m=threshold_m, sources=list(inputs.sources))
            except MissingDataError:
                skipped.append(f"{t.label} : aucune donnée chargée, territoire écarté")
                continue
            if ov.summary.get("n_communes_births_known", 1) == 0:
                skipped.append(f"{t.label} : aucune naissance connue (les fichiers INSEE "
                               "chargés ne couvrent aucune de ses communes), territoire écarté")
                continue
            overviews.append(ov)
        return overviews, skipped

    pipeline.compare_overviews = one_by_one
    from diagnosis.__main__ import run

    sys.argv = [sys.argv[0], *sys.argv[2:]]
    run()  # as python -m diagnosis ends (fast exit included): only the overviews differ


_run = run_timed


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        peer_main()
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--format", choices=("table", "csv", "json"), default="csv")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_compare_"))
    build_inputs(root)
    env = dict(os.environ, PYTHONPATH=str(REPO), MAILLAGE_STORE_DIR=str(root / "store"),
               MAILLAGE_CACHE_DIR=str(root / "cache"), MAILLAGE_OFFLINE="1")
    cmd = ["compare", "--territory", "FR", "--by", "departement", "--insee",
           str(root / "insee_fr.csv"), "--facilities", str(root / "fac_fr.csv"),
           "--format", args.format]
    ours_cmd = [sys.executable, "-m", "diagnosis", *cmd]
    peer_cmd = [sys.executable, __file__, "--peer", *cmd]
    _run(ours_cmd, env)  # warm-up: disk caches, the store
    ours, peer, equal = [], [], True
    for _ in range(args.runs):
        s, out_a = _run(ours_cmd, env)
        ours.append(s)
        s, out_b = _run(peer_cmd, env)
        peer.append(s)
        equal &= out_a == out_b
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() \
        else "?"
    a, b = statistics.median(ours), statistics.median(peer)
    print(f"ours: {', '.join(f'{s:.2f}' for s in ours)} s; one by one: "
          f"{', '.join(f'{s:.2f}' for s in peer)} s")
    print(f"RESULT ours_s={a:.2f} peer_s={b:.2f} ratio={b / a:.2f} equal={equal} "
          f"runs={args.runs} load={load}")


if __name__ == "__main__":
    main()
