"""The federation's national view: every commune of France in one crow-fly run.

A synthetic national INSEE file is built here from the shipped communes (34,875 current
communes; populations drawn log-normally, births 1.1 % of the population, income and
poverty plausible, ``s`` for small communes) with 30,000 facilities spread by population
around the communes' reference points. ``python -m diagnosis access --territory FR``
must answer in under 60 s and 2 GB of memory on one 2-core machine (issue 15), and a
département's communes must get the figures a run on that département alone gives.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pytest

from data_sources.national import load_national_communes
from tests.conftest import REPO

N_FACILITIES = 30_000


@pytest.fixture(scope="module")
def national(tmp_path_factory):
    root = tmp_path_factory.mktemp("national")
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
    ok = nat["point_lat"].notna().to_numpy()[idx]
    idx = idx[ok]
    lat = nat["point_lat"].to_numpy()[idx] + rng.normal(0, 0.01, idx.size)
    lon = nat["point_lon"].to_numpy()[idx] + rng.normal(0, 0.01, idx.size)
    kinds = np.array(["crèche", "pmi", "relais petite enfance", "LAEP", "centre social",
                      "maternité"])
    k = kinds[rng.choice(len(kinds), idx.size, p=[.55, .12, .12, .08, .1, .03])]
    codes = nat["code_insee"].to_numpy()[idx]
    rows = ["nom;type;code_insee;latitude;longitude"] + [
        f"S{i};{k[i]};{codes[i]};{lat[i]:.6f};{lon[i]:.6f}" for i in range(idx.size)]
    (root / "fac_fr.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    env = dict(os.environ, MAILLAGE_STORE_DIR=str(root / "store"),
               MAILLAGE_CACHE_DIR=str(root / "cache"), MAILLAGE_OFFLINE="1")
    return root, env


def _access(territory, root, env):
    args = [sys.executable, "-m", "diagnosis", "access", "--territory", territory, "--mode",
            "crow", "--insee", str(root / "insee_fr.csv"), "--facilities",
            str(root / "fac_fr.csv"), "--format", "json", "--max-minutes", "20"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=600)
    seconds = time.perf_counter() - start
    peak_mb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), seconds, peak_mb


def test_national_crow_fly_run_in_memory_and_equal_to_a_departement(national):
    root, env = national
    fr, seconds, peak_mb = _access("FR", root, env)
    print(f"national access: {seconds:.1f} s, peak {peak_mb:.0f} MB")
    assert len(fr["communes"]) >= 34_870
    assert peak_mb < 2048, f"national crow-fly access peaked at {peak_mb:.0f} MB"
    dep, _, _ = _access("26", root, env)
    mine = {c["code_insee"]: c for c in fr["communes"] if c["code_insee"].startswith("26")}
    assert len(mine) == len(dep["communes"])
    # The crow-fly model is the one of the studied territory's density class (issue 20):
    # the times of a national run equal a département's run only under the same model,
    # which both outputs name; the births are the same whatever the model.
    same_model = fr["params"]["travel_label"] == dep["params"]["travel_label"]
    for c in dep["communes"]:
        n = mine[c["code_insee"]]
        assert n["births"] == c["births"]
        if same_model:
            assert n["minutes_nearest"] == pytest.approx(c["minutes_nearest"]), c["code_insee"]
            assert n["reachable"] == c["reachable"], c["code_insee"]
