"""The federation's national plan (diagnosis.plan, data_sources.maisons, ``plan`` command).

Small synthetic grids whose covering can be checked by hand, the shipped list of known
Maisons on the shipped national geography, exports (CSV for French Excel, GeoPackage,
PDF) and one national run on a synthetic INSEE file of every commune of France (built
like tests/test_national_run.py: populations drawn log-normally, births 1.1 %).
"""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point

from diagnosis.errors import InputError
from diagnosis.plan import compute_national_plan, dep_of, town_hall_candidates
from diagnosis.plan_exports import (
    export_plan_geopackage,
    plan_csv_bytes,
    plan_html,
    plan_tables,
    render_plan_pdf,
)
from tests.conftest import REPO

# Lambert-93 around Nantes; 1 km = about 2.5 min by the crow-fly driving model
X0, Y0 = 355_000.0, 6_690_000.0


def _wgs(xy):
    pts = gpd.GeoSeries([Point(x, y) for x, y in xy], crs="EPSG:2154").to_crs("EPSG:4326")
    return list(pts)


def _communes(xy, births, codes=None, names=None):
    codes = codes or [f"44{i:03d}" for i in range(len(xy))]
    pts = _wgs(xy)
    return gpd.GeoDataFrame({
        "code_insee": codes, "name": names or [f"C{i}" for i in range(len(xy))],
        "dep_code": [dep_of(c) for c in codes], "births_2024": births,
        "townhall_lon": [p.x for p in pts], "townhall_lat": [p.y for p in pts],
    }, geometry=pts, crs="EPSG:4326")


def _fac(xy, ids, codes, typ="maison_1000_jours", names=None):
    return gpd.GeoDataFrame({"facility_id": ids, "type": typ, "name": names or ids,
                             "code_insee": codes}, geometry=_wgs(xy), crs="EPSG:4326")


@pytest.fixture
def grid():
    """Three clusters 40 km apart: west (served by an existing Maison), centre, east.

    Centre: 100 + 50 births; east: 30 births; a commune with unknown births in the east.
    """
    xy = [(X0, Y0), (X0 + 1000, Y0), (X0 + 40_000, Y0), (X0 + 41_000, Y0),
          (X0 + 80_000, Y0), (X0 + 81_000, Y0)]
    com = _communes(xy, [200.0, 20.0, 100.0, 50.0, 30.0, np.nan])
    maisons = _fac([(X0, Y0)], ["m1"], ["44000"])
    return com, maisons


def test_existing_fixed_and_gains_in_opening_order(grid):
    com, maisons = grid
    cand = town_hall_candidates(com)
    plan = compute_national_plan(com, cand, maisons, new=2, max_minutes=10)
    sites = plan.sites
    # the west cluster is served by the existing Maison: no new site there
    assert sites["code_insee"].tolist() == ["44002", "44004"]
    assert sites["marginal_families"].tolist() == [150.0, 30.0]
    assert sites["cumulative_families"].tolist() == [150.0, 180.0]
    s = plan.summary
    assert s["births_served_before"] == 220.0 and s["births_served_after"] == 400.0
    assert s["n_existing"] == 1 and s["n_communes_unknown"] == 1
    assert "inconnues, pas zéro" in " ".join(s["notes"])
    assert plan.layers["existing"]["facility_id"].tolist() == ["m1"]
    assert plan.layers["existing"]["families_within"].tolist() == [220.0]
    # the curve goes on beyond the plan: nothing left to reach
    curve = plan.layers["curve"]
    assert curve["part"].tolist()[:2] == ["plan", "plan"]
    assert (curve["marginal_families"].diff().dropna() <= 0).all()
    # 30 families a year is less than a peer group's 67: the 2nd Maison stops paying
    assert s["stop_paying_at"] == 2
    assert "C2 (100 naissances)" in sites["explanation"].iat[0]
    assert "m1 (C0)" in sites["explanation"].iat[0] and "40 km" in sites["explanation"].iat[0]


def test_without_existing_maison_everything_counts(grid):
    com, _ = grid
    empty = _fac([], [], [])
    plan = compute_national_plan(com, town_hall_candidates(com), empty, new=1, max_minutes=10)
    assert plan.sites["code_insee"].tolist() in (["44000"], ["44001"])
    assert plan.sites["marginal_families"].tolist() == [220.0]
    assert "Aucune Maison existante" in " ".join(plan.summary["notes"])


def test_departement_answers_use_their_own_sites_and_families():
    # two départements side by side: 44 and 49; the best site for 49 alone is in 49
    xy = [(X0, Y0), (X0 + 3000, Y0), (X0 + 6000, Y0), (X0 + 9000, Y0)]
    com = _communes(xy, [10.0, 90.0, 80.0, 5.0], codes=["44001", "44002", "49001", "49002"])
    plan = compute_national_plan(com, town_hall_candidates(com), _fac([], [], []), new=1,
                                 max_minutes=12, per_departement=1)
    dep = plan.layers["departements"].set_index("dep_code")
    assert dep.loc["49", "own_sites"] == "Mairie de C2"
    assert dep.loc["49", "own_families"] == 85.0
    assert dep.loc["44", "own_families"] == 100.0
    assert dep["n_new_national"].sum() == 1
    own = plan.layers["departement_sites"]
    assert set(own["dep_code"]) == {"44", "49"}


def test_overseas_pairs_stay_in_their_own_projection():
    # Saint-Denis (974) and a commune at the same lon/lat offset in mainland: no pair
    # crosses a sea; La Réunion's distances are computed in UTM 40S
    pts = [(55.45, -20.88), (55.46, -20.88)]
    com = gpd.GeoDataFrame({"code_insee": ["97411", "97415"], "name": ["SD", "SP"],
                            "dep_code": ["974", "974"], "births_2024": [100.0, 40.0],
                            "townhall_lon": [p[0] for p in pts],
                            "townhall_lat": [p[1] for p in pts]},
                           geometry=[Point(p) for p in pts], crs="EPSG:4326")
    plan = compute_national_plan(com, town_hall_candidates(com), _fac([], [], []), new=1,
                                 max_minutes=10)
    assert plan.sites["marginal_families"].tolist() == [140.0]  # 1 km apart: both reached


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_new_must_be_a_whole_number(grid, bad):
    com, maisons = grid
    with pytest.raises(InputError) as exc:
        compute_national_plan(com, town_hall_candidates(com), maisons, new=bad, max_minutes=10)
    assert "--new" in exc.value.fr and "entier" in exc.value.fr


def test_more_new_maisons_than_candidates_is_refused_in_french(grid):
    com, maisons = grid
    with pytest.raises(InputError) as exc:
        compute_national_plan(com, town_hall_candidates(com).head(2), maisons, new=5,
                              max_minutes=10)
    assert "seulement 2 lieux candidats" in exc.value.fr


def test_known_maisons_are_placed_with_their_provenance():
    from data_sources.maisons import load_known_maisons, parse_known_maisons, read_known_maisons
    from data_sources.national import load_national_communes

    rows = parse_known_maisons(read_known_maisons())
    loaded = load_known_maisons(load_national_communes(departements=sorted(
        set(rows["departement"]))))
    assert loaded.rows_read == len(loaded.maisons) + len(loaded.rejected) == len(rows)
    m = loaded.maisons.set_index("code_insee")
    assert m.loc["44129", "name"].startswith("Maison des 1000 premiers jours")  # Pontchâteau
    assert (loaded.maisons["position_precision"] == "commune").all()
    assert loaded.maisons["source_url"].str.len().gt(0).all()
    assert m.loc["06069", "notes"].startswith("en projet")  # Grasse: « envisagée »
    assert m.loc["06088", "notes"].startswith("ouverte")


def test_federation_file_rows_not_found_are_reported_not_dropped():
    from data_sources.maisons import load_federation_maisons
    from data_sources.national import load_national_communes

    text = ("nom,commune,departement,adresse,statut_date,porteur,source_url\n"
            "Maison A,Pontchâteau,44,,ouverte en 2024,Asso,\n"
            "=HYPERLINK(\"x\"),Ville-qui-n-existe-pas,44,,ouverte,Asso,\n"
            "Maison C,,44,,ouverte,Asso,\n")
    com = load_national_communes(departements=["44"])
    res = load_federation_maisons(("federation.csv", text.encode("cp1252", "replace")), com)
    assert res.rows_read == 3
    assert res.maisons["code_insee"].tolist() == ["44129"]
    assert res.rejected["row"].tolist() == [2, 3]
    assert "introuvable" in res.rejected["reason"].iat[0]
    assert res.maisons["source"].iat[0] == "user:federation.csv"


@pytest.fixture
def small_plan(grid):
    com, maisons = grid
    com = com.assign(name=["<script>alert(1)</script>", "=SOMME(A1)", "Clisson", "Vallet",
                           "Ancenis", "Oudon"])
    return compute_national_plan(com, town_hall_candidates(com), maisons, new=2,
                                 max_minutes=10)


def test_csv_is_french_excel(small_plan):
    data = plan_csv_bytes(small_plan)
    assert data.startswith(codecs.BOM_UTF8)
    text = data.decode("utf-8-sig")
    header = text.splitlines()[0].split(";")
    assert header[:2] == ["Rang d'ouverture", "Lieu d'accueil"]
    assert "False" not in text and "True" not in text
    dep = plan_csv_bytes(small_plan, "plan_departements").decode("utf-8-sig")
    assert "Part à portée d'une Maison existante (%)" in dep
    assert ";55,0;" in dep  # 220 of 400 known births, one decimal, decimal comma
    curve = plan_csv_bytes(small_plan, "plan_courbe").decode("utf-8-sig")
    assert "plan proposé" in curve


def test_geopackage_has_sites_existing_and_tables(small_plan, tmp_path):
    import pyogrio

    path = export_plan_geopackage(small_plan, tmp_path / "plan.gpkg",
                                  sources=[{"title": "Test", "vintage": "2026"}])
    layers = {name for name, _ in pyogrio.list_layers(path)}
    assert {"plan_sites", "maisons_existantes", "plan_departements", "plan_courbe",
            "sources"} <= layers
    sites = gpd.read_file(path, layer="plan_sites")
    assert len(sites) == 2 and sites.crs.to_epsg() == 4326
    assert "Familles en plus par an (naissances)" in sites.columns


def test_pdf_and_html_escape_names(small_plan):
    html = plan_html(small_plan, territory="<b>France</b>", notices=["<i>note</i>"])
    assert "<script>alert(1)" not in html and "&lt;b&gt;France&lt;/b&gt;" in html
    pdf = render_plan_pdf(small_plan, territory="France")
    assert pdf.startswith(b"%PDF")


def test_tables_have_no_internal_keys(small_plan):
    tables = plan_tables(small_plan)
    text = " ".join(tables["plan_sites"].astype(str).to_numpy().ravel())
    assert "maison_1000_jours" not in text and "mairie" not in text.replace("Mairie", "")


# --------------------------------------------------------------------------------------
# National run through the command line
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def national(tmp_path_factory):
    from data_sources.national import load_national_communes

    root = tmp_path_factory.mktemp("plan_national")
    nat = load_national_communes()
    rng = np.random.default_rng(1)
    pop = rng.lognormal(6.5, 1.3, len(nat)).round().astype(int) + 50
    lines = ["CODGEO;P22_POP;SUPERF;NAIS1621;NAISD24;MED21;TP6021"]
    for i, (code, p) in enumerate(zip(nat["code_insee"], pop, strict=True)):
        b = "" if i % 997 == 0 else str(max(0, round(p * 0.011)))  # a few unknown births
        lines.append(f"{code};{p};10,5;;{b};20000;s")
    (root / "insee_fr.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = dict(os.environ, MAILLAGE_STORE_DIR=str(root / "store"),
               MAILLAGE_CACHE_DIR=str(root / "cache"), MAILLAGE_OFFLINE="1", PYTHONPATH=str(REPO))
    args = [sys.executable, "-m", "diagnosis", "plan", "--territory", "FR", "--new", "50",
            "--insee", str(root / "insee_fr.csv"), "--format", "json"]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), proc.stderr


def test_national_plan_returns_50_sites_with_marginal_gains(national):
    data, stderr = national
    sites = data["sites"]
    assert len(sites) == 50
    gains = [s["marginal_families"] for s in sites]
    assert all(g > 0 for g in gains)
    assert gains == sorted(gains, reverse=True)  # opening order: largest gain first
    s = data["summary"]
    assert s["n_existing"] == 15  # the shipped list, fixed
    existing = {e["facility_id"] for e in data["existing"]}
    assert not existing & {x["facility_id"] for x in sites}
    assert abs(s["births_served_after"] - s["births_served_before"] - sum(gains)) < 1e-6
    assert s["n_communes_unknown"] >= 30
    assert len(data["departements"]) >= 100  # one answer per département (outre-mer too)
    assert len(data["curve"]) >= 100
    assert all(x["explanation"] for x in sites)
    assert "non exhaustive" in stderr
