"""Any French territory, offline: the Drôme (26) from an INSEE file and a facility list.

The consultant of the issue: no internet, the INSEE *comparateur de territoires* file of
the département and a list of facilities. The comparateur file is made here for every
commune of Valence Romans Agglo (SIREN 200068781) with the real column names of the 2025
edition (header of ship/loire-atlantique/insee_comparateur_44.csv: CODGEO, P22_POP,
SUPERF, NAIS1621, NAISD24, MED21, TP6021…, ``;``, decimal comma, ``s`` for the secret)
and plausible numbers (births ≈ 1.1 % of the population); the facility CSV places a few
structures at the communes' shipped reference points. Every CLI command then runs in a
fresh process with no network and an empty store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from data_sources.cog import resolve
from data_sources.national import load_national_communes
from tests.conftest import REPO

EPCI = "200068781"  # Valence Romans Agglo


def _comparateur(codes: list[str]) -> str:
    rng = np.random.default_rng(26)
    lines = ["CODGEO;LIBGEO;P22_POP;SUPERF;NAIS1621;NAISD24;MED21;TP6021"]
    for i, code in enumerate(codes):
        pop = int(rng.integers(300, 60_000)) if i % 5 == 0 else int(rng.integers(300, 6_000))
        births = max(1, round(pop * 0.011))
        secret = pop < 1_000
        med = "s" if secret and i % 2 else str(int(rng.integers(18_000, 25_000)))
        rate = "s" if secret else f"{rng.uniform(8, 24):.1f}".replace(".", ",")
        area = f"{rng.uniform(5, 60):.2f}".replace(".", ",")
        lines.append(f"{code};Commune {code};{pop};{area};{births * 6};{births};{med};{rate}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def drome(tmp_path_factory):
    root = tmp_path_factory.mktemp("drome")
    epci = resolve(EPCI)
    codes = list(epci.communes)
    (root / "comparateur_26.csv").write_text(_comparateur(codes), encoding="cp1252")
    pts = load_national_communes(departements=["26"]).set_index("code_insee")
    rows = ["nom;type;code_insee;latitude;longitude"]
    kinds = ["pmi", "crèche", "relais petite enfance", "centre social", "LAEP", "crèche"]
    for i, code in enumerate(codes[:12]):
        p = pts.loc[code]
        rows.append(f"Structure {i} de {code};{kinds[i % len(kinds)]};{code};"
                    f"{float(p['point_lat']) + 0.002:.6f};{float(p['point_lon']):.6f}")
    (root / "structures_26.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "communes.txt").write_text("\n".join(codes[:4]) + "\n", encoding="utf-8")
    env = dict(os.environ, MAILLAGE_STORE_DIR=str(root / "store"),
               MAILLAGE_CACHE_DIR=str(root / "cache"), MAILLAGE_OFFLINE="1")
    return root, env, codes


def _cli(args, env):
    return subprocess.run([sys.executable, "-m", "diagnosis", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=600)


def test_without_insee_file_the_message_says_what_to_load(drome):
    root, env, _ = drome
    proc = _cli(["summary", "--territory", EPCI], env)
    assert proc.returncode == 2
    assert "--insee" in proc.stderr and "comparateur de territoires" in proc.stderr


def test_every_command_on_a_non_44_territory_offline(drome):
    root, env, codes = drome
    data = ["--insee", str(root / "comparateur_26.csv"),
            "--facilities", str(root / "structures_26.csv")]
    summary = _cli(["summary", "--territory", EPCI, "--format", "json", *data], env)
    assert summary.returncode == 0, summary.stderr[-2000:]
    s = json.loads(summary.stdout)
    assert s["n_communes"] == len(codes)
    expected = sum(int(line.split(";")[5]) for line in
                   (root / "comparateur_26.csv").read_text(encoding="cp1252").splitlines()[1:])
    assert s["births_2024"] == pytest.approx(expected)
    assert s["facilities"]["pmi"]["count"] >= 1
    first_id = None
    for args in (["access", "--mode", "crow", "--format", "json"],
                 ["site", "--mode", "crow", "--format", "json"],
                 ["export", "--out", str(root / "d.gpkg"), "--csv-dir", str(root / "csv")],
                 ["report", "--out", str(root / "r.pdf"), "--no-comparison"]):
        proc = _cli([args[0], "--territory", EPCI, *data, *args[1:]], env)
        assert proc.returncode == 0, (args[0], proc.stderr[-2000:])
        if args[0] == "site":
            first_id = json.loads(proc.stdout)["sites"][0]["facility_id"]
    assert (root / "r.pdf").read_bytes().startswith(b"%PDF")
    proc = _cli(["partners", "--territory", EPCI, *data, "--mode", "crow", "--format", "json",
                 "--site", first_id], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = _cli(["compare", "--territories", EPCI, "--format", "json", *data], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)[0]["births_2024"] == pytest.approx(expected)


def test_custom_territory_list_file_and_drawn_area_give_the_same_figures(drome):
    from shapely.geometry import box

    from data_sources.workspace import load_workspace
    from diagnosis.pipeline import DiagnosisParams, diagnose_overview
    from diagnosis.territory import territory_from_polygon

    root, env, codes = drome
    insee = [str(root / "comparateur_26.csv")]
    listed = resolve("Ma zone=" + ",".join(codes[:4]))
    from data_sources.cog import territory_from_communes_file

    filed = territory_from_communes_file(root / "communes.txt", name="Ma zone")
    assert set(filed.communes) == set(listed.communes)
    nat = load_national_communes(departements=["26"])
    one = nat.loc[nat["code_insee"].eq(codes[0])]
    west, south, east, north = one.total_bounds
    drawn = territory_from_polygon(box(west, south, east, north).buffer(-1e-3), nat)
    sums = []
    for t in (listed, filed):
        ws = load_workspace(t, insee_files=insee, use_store=False)
        sums.append(diagnose_overview(ws, DiagnosisParams()).summary["births_2024"])
    assert sums[0] == pytest.approx(sums[1])
    # a drawn area gives the communes it intersects, diagnosed like their list
    as_list = resolve("Zone=" + ",".join(drawn.communes))
    a = diagnose_overview(load_workspace(drawn, insee_files=insee, use_store=False),
                          DiagnosisParams()).summary["births_2024"]
    b = diagnose_overview(load_workspace(as_list, insee_files=insee, use_store=False),
                          DiagnosisParams()).summary["births_2024"]
    assert codes[0] in drawn.communes and a == pytest.approx(b)


def test_communes_file_and_old_code_notice_on_the_cli(drome):
    root, env, codes = drome
    proc = _cli(["summary", "--communes-file", str(root / "communes.txt"), "--territory",
                 "Ma zone", "--insee", str(root / "comparateur_26.csv"), "--format", "json"],
                env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["n_communes"] == 4
