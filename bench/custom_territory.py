"""Benchmark: a custom territory of 30 départements, crow-fly access, whole command.

Run from the repository root::

    python bench/custom_territory.py [--runs 3]

What a user runs (a territory given as a list of commune codes, here every current
commune of the first 30 départements of the shipped geography, 10,863 communes)::

    python -m diagnosis access --communes-file communes.txt --territory "Trente départements" \\
        --mode crow --max-minutes 20 --insee insee_fr.csv --facilities fac_fr.csv

against the same command for all of France (``--territory FR``, 34,871 communes) on the
same inputs (those of ``bench/compare.py``: an INSEE file of every commune and 30,000
facilities), alternating, timed as whole processes. A territory's cost should follow its
size: before the territory builder used code indexes, the 30 départements took 25-26 s,
twice France's 12 s (the commune table was scanned twice per code). The goal is < 4 s.

The timed runs print the tables a user reads; the answers are compared once, from the
same commands with ``--format json``. Equality: every commune of the custom territory has
the same minutes to the nearest facility of each type and the same number of facilities
within reach as in the France run (same facilities, same crow-fly model).

Prints ``RESULT custom_s=… france_s=… custom_communes=… france_communes=…
per_commune_ratio=… equal=… runs=… load=…`` (``per_commune_ratio``: the custom run's
seconds per commune over France's; about 1 when the cost is linear in the communes, above
when fixed costs dominate).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from _whole import REPO, run_timed  # bench/ is the script's folder
from compare import build_inputs

N_DEPARTEMENTS = 30


def write_communes_file(path: Path) -> int:
    """Codes of every commune of the first 30 départements; returns their number."""
    sys.path.insert(0, str(REPO))
    from data_sources.national import load_national_communes

    nat = load_national_communes()
    deps = sorted(nat["dep_code"].astype(str).unique())[:N_DEPARTEMENTS]
    codes = nat.loc[nat["dep_code"].astype(str).isin(deps), "code_insee"].astype(str)
    path.write_text("\n".join(codes) + "\n", encoding="utf-8")
    return len(codes)


def _by_commune(out: bytes) -> dict[str, tuple[object, object]]:
    rec = json.loads(out)
    return {c["code_insee"]: (c["minutes_nearest"], c["reachable"]) for c in rec["communes"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_custom_"))
    build_inputs(root)
    n_codes = write_communes_file(root / "communes.txt")
    env = dict(os.environ, PYTHONPATH=str(REPO), MAILLAGE_STORE_DIR=str(root / "store"),
               MAILLAGE_CACHE_DIR=str(root / "cache"), MAILLAGE_OFFLINE="1")
    common = ["--mode", "crow", "--max-minutes", "20", "--insee", str(root / "insee_fr.csv"),
              "--facilities", str(root / "fac_fr.csv")]
    custom_cmd = [sys.executable, "-m", "diagnosis", "access", "--communes-file",
                  str(root / "communes.txt"), "--territory", "Trente départements", *common]
    france_cmd = [sys.executable, "-m", "diagnosis", "access", "--territory", "FR", *common]
    # the answers, once, as JSON (the timed runs print the tables a user reads)
    mine = _by_commune(run_timed([*custom_cmd, "--format", "json"], env)[1])
    whole = _by_commune(run_timed([*france_cmd, "--format", "json"], env)[1])
    n_custom, n_france = len(mine), len(whole)
    equal = bool(mine) and all(whole.get(c) == v for c, v in mine.items())
    custom, france = [], []
    for _ in range(args.runs):
        custom.append(run_timed(custom_cmd, env)[0])
        france.append(run_timed(france_cmd, env)[0])
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() \
        else "?"
    a, b = statistics.median(custom), statistics.median(france)
    print(f"{n_codes} communes listed, {n_custom} diagnosed; France: {n_france}")
    print(f"custom: {', '.join(f'{s:.2f}' for s in custom)} s; France: "
          f"{', '.join(f'{s:.2f}' for s in france)} s")
    ratio = (a / max(n_custom, 1)) / (b / max(n_france, 1))
    print(f"RESULT custom_s={a:.2f} france_s={b:.2f} custom_communes={n_custom} "
          f"france_communes={n_france} per_commune_ratio={ratio:.2f} equal={equal} "
          f"runs={args.runs} load={load}")


if __name__ == "__main__":
    main()
