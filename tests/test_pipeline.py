"""Tests of diagnosis.pipeline: one wiring for the app, the CLI, the PDF and the exports.

Each of the five drifts found when the wiring was written two or three times has a test
here (issue "One diagnosis pipeline"): the CLI on a fetched store, the catchment layer of
the GeoPackage, the engine label of the PDF, the poverty imputation, the site section's
catchment. The stored territory is built by the fetch code itself, its loaders replaced by
small tables (as in tests/test_fetch_cli.py); every CLI command then runs in a fresh
subprocess, as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from data_sources.workspace import load_workspace
from diagnosis.errors import InputError
from diagnosis.pipeline import (
    PARTS,
    DiagnosisParams,
    StepResult,
    diagnose_overview,
    run_diagnosis,
)
from diagnosis.travel import Travel
from tests.conftest import REPO

EPCI = "200000438"


@pytest.fixture(scope="module")
def ws():
    return load_workspace(EPCI)


@pytest.fixture(scope="module")
def diag(ws):
    return run_diagnosis(ws, DiagnosisParams(territory=EPCI, mode="crow"), travel=Travel())


def test_params_are_validated_once_with_structured_errors():
    with pytest.raises(InputError) as exc:
        DiagnosisParams(max_minutes=-3)
    assert exc.value.argument == "max_minutes" and exc.value.value == -3
    with pytest.raises(InputError) as exc:
        DiagnosisParams(mode="bike")
    assert exc.value.candidates == ("drive", "walk", "crow", "poussette", "transit")
    assert "bike" in exc.value.fr
    with pytest.raises(InputError, match="heure de départ .* illisible"):
        DiagnosisParams(depart="9 heures et demie")
    with pytest.raises(InputError, match="date .* illisible"):
        DiagnosisParams(study_date="mardi prochain")
    with pytest.raises(InputError, match="uptake_rate"):
        DiagnosisParams(uptake_rate=1.5)
    with pytest.raises(InputError, match="k="):
        DiagnosisParams(k=0)
    p = DiagnosisParams(k=2, scenarios=(1, 2, 3), weights={"births": 1.0})
    assert p.k_values == (2, 1, 3) and p.weights == (("births", 1.0),)
    hash(p)  # the app caches on it


#: The pipeline's steps and the analyses they call, as the pipeline module looks them up.
COUNTED = ("diagnose_overview", "diagnose_demand", "diagnose_context", "diagnose_offer_levels",
           "diagnose_access", "diagnose_siting", "diagnose_partners",
           "compute_overview", "compute_demand_points", "compute_context",
           "compute_offer_levels", "compute_access", "compute_siting", "compute_partners",
           "compute_site_catchments", "compute_site_cohorts")


def _count_steps(monkeypatch) -> dict[str, int]:
    """Wrap the pipeline's step functions with call counters (same results).

    The analyses' functions are counted in :mod:`diagnosis.analyses`, the demand's,
    context's and offer levels' in their modules: the pipeline imports them from there
    when a step runs.
    """
    import diagnosis.analyses as an
    import diagnosis.context as cx
    import diagnosis.demand as dm
    import diagnosis.offer_levels as ol
    import diagnosis.pipeline as pl

    calls = dict.fromkeys(COUNTED, 0)

    def counter(name, original):
        def counted(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)
        return counted

    for name in COUNTED:
        module = next(m for m in (pl, an, dm, cx, ol) if hasattr(m, name))
        monkeypatch.setattr(module, name, counter(name, getattr(module, name)))
    return calls


def test_run_diagnosis_computes_each_part_once(ws, monkeypatch):
    calls = _count_steps(monkeypatch)
    d = run_diagnosis(ws, DiagnosisParams(territory=EPCI, mode="crow", k=2), travel=Travel())
    n = len(d.recommended)
    assert n == 2 and d.site is not None and d.site.site_id == d.recommended[0].site.site_id
    # every step and every analysis once (the catchments of all sites from one matrix);
    # one cohort plan per recommended site, the studied one included
    finer = getattr(ws, "iris", None) is not None or getattr(ws, "grid", None) is not None
    once = {name: 1 for name in COUNTED}
    assert calls == {**once, "compute_site_cohorts": n,
                     "compute_demand_points": int(finer)}  # only below the commune


def test_steps_given_by_the_app_are_not_computed_again(ws, diag, monkeypatch):
    """The app's cached access and siting steps are the diagnosis's, not recomputed."""
    calls = _count_steps(monkeypatch)
    d = run_diagnosis(ws, diag.params, travel=Travel(), overview=diag.overview,
                      access_step=StepResult(diag.access, ("note d'accès",)),
                      siting_step=StepResult(diag.siting, ("note d'implantation",)))
    assert d.access is diag.access and d.siting is diag.siting
    assert calls["diagnose_overview"] == calls["diagnose_access"] == 0
    assert calls["diagnose_siting"] == 0
    assert {"note d'accès", "note d'implantation"} <= set(d.notes)


def test_the_studied_site_shares_its_catchment_with_the_recommended(diag):
    assert diag.access is not None and diag.siting is not None
    assert diag.site is not None and diag.partners is not None
    # the studied site is the first recommended one, and its cohorts are those of its
    # catchment, the same object as in diag.recommended
    first = diag.recommended[0]
    assert first.site.site_id == diag.site.site_id
    assert diag.catchment is first.catchment and diag.cohorts is first.cohorts
    assert diag.cohorts.births_per_year == pytest.approx(diag.catchment.births_per_year)
    assert list(diag.catchments["site_id"]) == [c.site.site_id for c in diag.recommended]


def test_overview_only(ws):
    d = run_diagnosis(ws, DiagnosisParams(territory=EPCI), travel=Travel(), parts=("overview",))
    assert d.access is None and d.siting is None and d.partners is None
    with pytest.raises(InputError, match="parts"):
        run_diagnosis(ws, DiagnosisParams(), travel=Travel(), parts=("maps",))
    assert set(PARTS) >= {"overview", "access", "siting", "partners", "cohorts"}


def test_geopackage_has_the_catchment_layer(diag, tmp_path):
    """Bug: both export calls omitted the catchments; zones_de_desserte was never written."""
    import pyogrio

    from diagnosis.exports import diagnosis_export_layers, export_geopackage

    layers = diagnosis_export_layers(diag)
    assert "zones_de_desserte" in layers
    path = export_geopackage(layers, tmp_path / "d.gpkg")
    names = [n for n, _ in pyogrio.list_layers(path)]
    assert "zones_de_desserte" in names
    zones = layers["zones_de_desserte"]
    assert set(zones["site_id"]) == {c.site.site_id for c in diag.recommended}
    assert (zones.geometry.geom_type.isin(["Polygon", "MultiPolygon"])).all()


def test_report_names_a_road_engine_in_french(diag):
    """Bug: the report's label table was keyed ``road``; a routed PDF printed ``road_network``."""
    from diagnosis.report import render_diagnosis_html
    from diagnosis.schema import ENGINE_ROAD

    acc = diag.access
    routed = replace(acc.access, summary=acc.access.summary.assign(engine=ENGINE_ROAD))
    html = render_diagnosis_html(replace(diag, access=replace(acc, access=routed)))
    section = html[html.index('id="accessibilite"'):html.index('id="implantation"')]
    assert "road_network" not in section
    assert "réseau routier" in section


def test_siting_and_priority_impute_poverty_the_same_way():
    """Bug: siting fitted the rate on the income, the priority score ranked the income."""
    from diagnosis.accessibility import AccessIndicators
    from diagnosis.gaps import compute_priority
    from diagnosis.siting import compute_need_weights

    codes = [f"440{i:02d}" for i in range(1, 9)]
    rate = [10.0, 12.0, 14.0, 16.0, 18.0, 20.0, np.nan, np.nan]
    income = [26e3, 24e3, 22e3, 21e3, 20e3, 18e3, 25e3, 17e3]
    communes = pd.DataFrame({"code_insee": codes, "births_2024": [10.0] * 8,
                             "poverty_rate_2021": rate, "median_income_2021": income,
                             "population_2022": [1000.0] * 8,
                             "single_parent_share_2022": [15.0] * 8})
    need = compute_need_weights(communes, weights={"poverty": 1.0, "single_parent": 0.0})
    access = AccessIndicators(
        table=pd.DataFrame({"code_insee": codes, "births": [10.0] * 8,
                            "minutes_nearest_pmi": [5.0] * 8}),
        summary=pd.DataFrame(), params={"max_minutes": 20.0, "facility_types": ("pmi",),
                                        "births_col": "births_2024"})
    prio, _ = compute_priority(communes, access)
    prio = prio.set_index("code_insee")
    used = need.set_index("code_insee")["poverty_rate_used"]
    np.testing.assert_allclose(prio.loc[codes, "poverty_rate_used"], used.loc[codes])
    # the two secret communes are estimated from their income, in both
    assert set(prio.loc[["44007", "44008"], "poverty_basis"]) == {"median_income"}
    assert used.loc["44008"] > used.loc["44007"]  # poorer commune, higher estimated rate


def test_site_section_and_cohorts_speak_of_the_same_catchment(ws):
    """Bug: the PDF's « site étudié » used the 5 km radius, its cohorts the 20-min catchment."""
    from diagnosis.report import render_diagnosis_html

    site = "annuaire_mairies:44129"
    d = run_diagnosis(ws, DiagnosisParams(territory=EPCI, site=site), travel=Travel())
    assert d.site.site_id == site and d.catchment is not None
    html = render_diagnosis_html(d)
    part = html[html.index("Zone desservie"):]
    n = len(d.catchment.communes)
    assert f"Zone desservie : {n} commune(s) ont leur mairie à 20 min" in part
    assert "Distance de la mairie au site" not in html  # no crow-fly radius table any more
    assert d.cohorts.births_per_year == pytest.approx(d.catchment.births_per_year)


# --------------------------------------------------------------------------------------
# Every CLI command in a fresh process: on the demo and on a territory fetched into a store
# --------------------------------------------------------------------------------------


def _cli(args, env):
    return subprocess.run([sys.executable, "-m", "diagnosis", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=600)


@pytest.fixture(scope="module")
def stored_env(tmp_path_factory):
    """A store for the demo EPCI written by ``python -m data_sources fetch`` (in-process,
    its loaders replaced by small tables), and the environment pointing at it."""
    from data_sources import _http, store
    from data_sources.__main__ import main as fetch_main
    from tests.test_fetch_cli import _fake_loaders

    root = tmp_path_factory.mktemp("stored")
    mp = pytest.MonkeyPatch()
    mp.setenv(store.STORE_ENV, str(root / "store"))
    mp.setenv("MAILLAGE_CACHE_DIR", str(root / "cache"))
    _http.reset()
    try:
        _fake_loaders(mp)
        assert fetch_main(["fetch", "--territory", EPCI]) == 0
    finally:
        mp.undo()
        _http.reset()
    return dict(os.environ, MAILLAGE_STORE_DIR=str(root / "store"),
                MAILLAGE_CACHE_DIR=str(root / "cache"), MAILLAGE_OFFLINE="1")


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return dict(os.environ, MAILLAGE_STORE_DIR=str(root / "store"),
                MAILLAGE_CACHE_DIR=str(root / "cache"), MAILLAGE_OFFLINE="1")


@pytest.mark.parametrize("where", ["demo", "store"])
def test_every_cli_command_in_a_fresh_process(where, demo_env, stored_env, tmp_path):
    """Bug: after a fetch, every command failed with "source='geo_api_communes' is not
    registered" (the CLI never imported the modules that fill the registry)."""
    env = stored_env if where == "store" else demo_env
    runs = {
        "summary": ["summary", "--territory", EPCI, "--format", "json"],
        "access": ["access", "--territory", EPCI, "--mode", "crow", "--format", "json"],
        "site": ["site", "--territory", EPCI, "--mode", "crow", "--format", "json"],
        "partners": ["partners", "--territory", EPCI, "--mode", "crow", "--format", "json",
                     "--site", "annuaire_mairies:44129"],
        "export": ["export", "--territory", EPCI, "--out", str(tmp_path / "d.gpkg"),
                   "--csv-dir", str(tmp_path / "csv"),
                   "--diagnosis-file", str(tmp_path / "d.json")],
        "compare": ["compare", "--territory", "44", "--by", "epci", "--format", "json"],
    }
    if where == "store":
        # the stored territory has one PMI (the fake FINESS row) and the town halls only
        runs["site"] += ["--host-types", "pmi", "mairie"]
        runs["compare"] = ["compare", "--territories", EPCI, "--format", "json"]
    outputs = {}
    for name, args in runs.items():
        proc = _cli(args, env)
        assert proc.returncode == 0, (name, proc.stderr[-2000:])
        assert "not registered" not in proc.stderr
        outputs[name] = proc.stdout
    summary = json.loads(outputs["summary"])
    assert summary["territory"]["code"] == EPCI
    origin = "store" if where == "store" else "demo"
    record = json.loads((tmp_path / "d.json").read_text(encoding="utf-8"))
    assert record["ledger"]["origin"] == origin if "origin" in record["ledger"] else True
    rerun = _cli(["rerun", str(tmp_path / "d.json")], env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    report = _cli(["report", "--territory", EPCI, "--out", str(tmp_path / "r.pdf"),
                   "--no-comparison"], env)
    assert report.returncode == 0, report.stderr[-2000:]
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")


def test_overview_of_the_pipeline_equals_the_summary_command(ws, demo_env):
    ov = diagnose_overview(ws, DiagnosisParams(territory=EPCI))
    proc = _cli(["summary", "--territory", EPCI, "--format", "json"], demo_env)
    data = json.loads(proc.stdout)
    assert data["births_2024"] == pytest.approx(ov.summary["births_2024"])


def test_every_module_that_registers_a_source_is_a_provider_module():
    """The registry completes itself: get_source imports PROVIDER_MODULES (issue 10.4)."""
    import re

    from data_sources.registry import PROVIDER_MODULES

    found = set()
    for path in (REPO / "data_sources").rglob("*.py"):
        if path.name == "registry.py":
            continue
        if re.search(r"^\w+ = register\(", path.read_text(encoding="utf-8"), flags=re.M):
            parts = path.relative_to(REPO / "data_sources").with_suffix("").parts
            found.add("data_sources." + ".".join(p for p in parts if p != "__init__"))
    assert found and found <= set(PROVIDER_MODULES), sorted(found - set(PROVIDER_MODULES))


def test_registry_is_complete_in_a_fresh_process():
    code = ("from data_sources.registry import get_source; "
            "print(get_source('geo_api_communes').key, get_source('annuaire').key)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["geo_api_communes", "annuaire"]


def test_one_site_resolver_studies_an_imported_facility_or_a_proposed_point(tmp_path):
    """Issue 19: a site is a loaded facility (an imported one too: ``user:<file>:<id>``,
    never taken for a bare point) or a user's proposed point (``user:<n>``)."""
    from diagnosis.pipeline import resolve_site

    f = tmp_path / "structures.csv"
    f.write_text("nom;type;code_insee;latitude;longitude\n"
                 "Multi-accueil Les Petits Pas;multi-accueil;44129;47.4376;-2.0876\n",
                 encoding="utf-8")
    ws = load_workspace(EPCI, facility_files=[f])
    imported = ws.facilities.loc[ws.facilities["source"].astype(str).str.startswith("user:")]
    (fid,) = imported["facility_id"].tolist()
    assert fid.startswith("user:")
    point = (-2.12, 47.44)
    for site, kind, name in ((fid, "eaje", "Multi-accueil Les Petits Pas"),
                             ("user:1", "user_site", "Site proposé n°1")):
        params = DiagnosisParams(territory=EPCI, mode="crow", user_sites=(point,), site=site)
        d = run_diagnosis(ws, params, travel=Travel(), parts=("partners", "cohorts"))
        assert (d.site.site_id, d.site.facility_type, d.site.name) == (site, kind, name)
        assert d.partners is not None and d.catchment is not None
    with pytest.raises(InputError, match="user:2"):
        resolve_site(ws.facilities, "user:2", user_sites=(point,))
