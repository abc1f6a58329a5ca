"""Tests of ``python -m data_sources fetch`` and of the app's « Mettre à jour les données ».

No network: the command runs offline against an empty HTTP cache (``MAILLAGE_CACHE_DIR``)
and an empty store (``MAILLAGE_STORE_DIR``), both in ``tmp_path``; the in-process tests
replace the loaders by small tables.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import geopandas as gpd
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app_pages import md_escape
from data_sources import _http, demo, fetch, store
from data_sources.__main__ import main
from data_sources.cog import resolve
from data_sources.merge import facility_frame
from diagnosis.errors import SourceError
from diagnosis.schema import validate_facilities
from tests.conftest import REPO

EPCI = "200000438"
APP = str(REPO / "app.py")
TIMEOUT = 90


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    # no network in tests: the online probe of the CLI answers "online" unless a test says
    monkeypatch.setattr("data_sources.__main__.detect_offline", lambda **kw: False)
    monkeypatch.setenv(store.STORE_ENV, str(tmp_path / "store"))
    monkeypatch.setenv("MAILLAGE_CACHE_DIR", str(tmp_path / "cache"))
    _http.reset()
    yield tmp_path
    _http.reset()


def run_cli(*args, env_dirs):
    env = dict(os.environ, MAILLAGE_STORE_DIR=str(env_dirs / "store"),
               MAILLAGE_CACHE_DIR=str(env_dirs / "cache"), MAILLAGE_OFFLINE="")
    return subprocess.run([sys.executable, "-m", "data_sources", "fetch", *args],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def test_offline_with_empty_cache_names_each_source_and_keeps_the_demo(tmp_path):
    proc = run_cli("--territory", EPCI, "--offline", env_dirs=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "12 source(s) en échec" in out
    urls = {
        "geo_api_communes": "https://geo.api.gouv.fr/epcis/200000438/communes",
        "insee_melodi": "https://api.insee.fr/melodi/data/",
        "finess": "https://www.data.gouv.fr/api/1/datasets/finess-extraction",
        "bpe": "https://www.insee.fr/fr/statistiques/fichier/8217525/BPE25.zip",
        "osm": "https://www.openstreetmap.org",
        "caf_txcouv": "https://data.caf.fr/api/explore/v2.1/catalog/datasets/txcouv_pe_com",
        "data_inclusion": "https://api.data.inclusion.gouv.fr/api/v1/structures",
        "annuaire": "https://api-lannuaire.service-public",
        "ign_contours_iris": "https://data.geopf.fr/wfs",
        "insee_rp_iris_population": "https://www.insee.fr/fr/statistiques/fichier/8647014/",
        "insee_filosofi_2021_200m": "https://www.insee.fr/fr/statistiques/fichier/8735162/",
        "anct_qpv_2024": "https://static.data.gouv.fr/resources/quartiers-prioritaires",
    }
    lines = [ln for ln in out.splitlines() if ln.startswith("  - ")]
    assert len(lines) == len(urls)
    for key, url in urls.items():
        line = next(ln for ln in lines if f"[{key}]" in ln)
        assert url in line and "hors ligne" in line, line
    assert "La démo embarquée (Loire-Atlantique) reste utilisable" in out
    assert "Rien n'a été enregistré" in out
    assert not (tmp_path / "store" / "epci-200000438").exists()
    # one progress line per source start and end (stderr is not a terminal here)
    assert proc.stderr.count("[1/13]") == 2
    assert "[13/13] Géocodage de la Géoplateforme" in proc.stderr


def test_outside_the_demo_with_nothing_usable_exits_1(tmp_path):
    proc = run_cli("--territory", "13055", "--offline", "--source", "geo_api_communes",
                   env_dirs=tmp_path)
    assert proc.returncode == 1, proc.stdout
    assert "Aucune donnée utilisable" in proc.stdout
    assert "[geo_api_communes]" in proc.stdout


def test_usage_errors_exit_2(dirs, capsys):
    assert main(["fetch", "--territory", "Pontchatau"]) == 2
    assert "Territoire introuvable" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["fetch", "--territory", EPCI, "--source", "cog2026"])
    assert exc.value.code == 2
    assert "cog2026" in capsys.readouterr().err


def test_help_documents_sources_and_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["fetch", "--help"])
    text = capsys.readouterr().out
    for key in fetch.LIVE_SOURCES:
        assert key in text
    assert "Code de sortie : 0" in text and "--offline" in text


def test_source_option_selects_and_repeats(dirs, capsys):
    assert main(["fetch", "--territory", EPCI, "--offline", "--source", "finess",
                 "--source", "bpe", "caf_txcouv"]) == 0
    out = capsys.readouterr().out
    assert "3 source(s) en échec" in out
    assert "[finess]" in out and "[bpe]" in out and "[caf_txcouv]" in out
    assert "[osm]" not in out


def _fake_loaders(monkeypatch, *, fail=()):
    from data_sources import annuaire, bpe, caf, finess, inclusion, insee_melodi, osm

    area = resolve(EPCI)
    com = demo.load_demo_communes()
    contours = com.loc[com["code_insee"].isin(area.communes),
                       ["code_insee", "name", "epci_code", "dep_code", "geometry"]]

    def boom(*a, **kw):
        raise SourceError("finess: HTTP 503 from https://example.test/finess: ''", kind="http",
                          status=503, source="finess", url="https://example.test/finess")

    def table(source):
        rec = {"type": "pmi", "name": f"PMI {source}", "code_insee": "44129", "source": source,
               "source_id": "1", "position_precision": "address", "lon": -2.08, "lat": 47.43}
        return validate_facilities(facility_frame([rec]), source=source)

    monkeypatch.setattr("data_sources.boundaries.load_communes",
                        lambda **kw: contours.reset_index(drop=True))
    monkeypatch.setattr(insee_melodi, "load_insee_needs", lambda a, **kw: pd.DataFrame(
        {"code_insee": list(a.communes), "births_2024": [7.0] * len(a.communes)}))
    monkeypatch.setattr(finess, "load_finess", boom if "finess" in fail else (
        lambda a, **kw: table("finess")))
    monkeypatch.setattr(bpe, "load_bpe", lambda a, **kw: table("bpe").iloc[0:0])
    monkeypatch.setattr(osm, "load_osm_facilities", lambda p, **kw: table("osm").iloc[0:0])
    monkeypatch.setattr(caf, "load_coverage", lambda a, **kw: pd.DataFrame(
        {"level": [], "code": [], "name": [], "year": [], "rate": []}))
    monkeypatch.setattr(inclusion, "load_inclusion", lambda a, **kw: table("x").iloc[0:0])
    monkeypatch.setattr(annuaire, "load_annuaire", lambda a, **kw: table("annuaire").iloc[0:0])
    # the context sources (IRIS, census by IRIS, 200 m cells, QPV) answer empty-but-valid
    from data_sources import filosofi, iris, qpv

    monkeypatch.setattr(iris, "load_iris_contours", lambda a, **kw: gpd.GeoDataFrame(
        columns=list(iris.CONTOUR_COLUMNS), geometry="geometry", crs="EPSG:4326"))
    monkeypatch.setattr(iris, "load_iris_census", lambda a, **kw: pd.DataFrame(
        columns=list(iris.CENSUS_COLUMNS)))
    monkeypatch.setattr(filosofi, "load_filosofi", lambda a, **kw: gpd.GeoDataFrame(
        columns=list(filosofi.FILOSOFI_COLUMNS), geometry="geometry", crs="EPSG:4326"))
    monkeypatch.setattr(qpv, "load_qpv", lambda a, **kw: qpv.qpv_from_list(a.communes))


def test_summary_table_after_a_partial_fetch(dirs, capsys, monkeypatch):
    _fake_loaders(monkeypatch, fail=("finess",))
    assert main(["fetch", "--territory", EPCI]) == 0
    out = capsys.readouterr().out
    assert "1 source(s) en échec" in out and "HTTP 503" in out
    assert "Données enregistrées dans" in out and "utilisera le stock local" in out
    assert store.read_store(EPCI).entry("finess").status == "failed"


# --- the app's update action -----------------------------------------------------------------


@pytest.fixture
def clean_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def _sources_page(at):
    at.switch_page("app_pages/sources.py").run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_app_update_offline_keeps_the_demo_and_warns_per_source(dirs, clean_caches,
                                                                monkeypatch):
    monkeypatch.setenv("MAILLAGE_OFFLINE", "1")
    _http.reset()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run(timeout=TIMEOUT)
    _sources_page(at)
    at.button(key="fetch_update").click().run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning]
    for key in fetch.LIVE_SOURCES[:-1]:
        assert any(md_escape(f"[{key}]") in w for w in warnings), (key, warnings)
    assert any("déjà chargées sont conservées" in w for w in warnings)
    assert any("démonstration" in i.value for i in at.info)
    assert len(at.dataframe) == 1  # unplaced demo rows only: no ledger without a store


def test_app_update_uses_the_store_and_shows_the_ledger(dirs, clean_caches, monkeypatch):
    _fake_loaders(monkeypatch, fail=("finess",))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run(timeout=TIMEOUT)
    _sources_page(at)
    at.button(key="fetch_update").click().run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning]
    assert len([w for w in warnings if "HTTP 503" in w]) == 1
    assert any("Mises à jour" in s.value for s in at.success)
    ledger = next(df.value for df in at.dataframe if "État" in df.value.columns)
    assert set(ledger["Source"]) >= {"INSEE — API Melodi (état civil, recensement, Filosofi)"}
    assert "échec" in set(ledger["État"])
    text = " ".join(md.value for md in at.markdown)
    assert "téléchargé le" in text  # vintages from the ledger
    assert any("Mise à jour en échec" in i.value for i in at.info)


def test_app_update_shows_a_suspect_answer_and_keeps_the_stored_rows(dirs, clean_caches,
                                                                     monkeypatch):
    from data_sources import finess

    _fake_loaders(monkeypatch)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run(timeout=TIMEOUT)
    _sources_page(at)
    at.button(key="fetch_update").click().run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    monkeypatch.setattr(finess, "load_finess", lambda a, **kw: validate_facilities(
        facility_frame([]), source="finess"))  # an empty answer: suspect, not « à jour »
    at.button(key="fetch_update").click().run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value.replace("\\", "") for w in at.warning]
    assert any("suspect" in w and "0 ligne(s) reçue(s) contre 1" in w for w in warnings), (
        warnings)
    assert len(store.read_store(EPCI, with_source_layers=True).source_layers["finess"]) == 1


def test_full_cache_disk_is_said_and_the_fetch_goes_on(dirs, capsys, monkeypatch):
    import errno

    _fake_loaders(monkeypatch)

    def full(folder):
        raise OSError(errno.ENOSPC, "No space left on device")

    from data_sources import _http_cache

    monkeypatch.setattr(_http_cache, "_probe_disk", full)  # the write test finds the disk full
    _http.reset()
    assert main(["fetch", "--territory", EPCI]) == 0
    out = capsys.readouterr().out
    assert "Cache HTTP non écrit (le disque est plein" in out
    assert "la mise à jour continue sans garder les réponses en cache" in out
    assert store.read_store(EPCI).entry("finess").status == "ok"  # the fetch went on


def test_offline_rerun_after_a_fetch_says_stored_data_is_kept(dirs, capsys, monkeypatch):
    _fake_loaders(monkeypatch)
    assert main(["fetch", "--territory", EPCI]) == 0
    capsys.readouterr()
    monkeypatch.undo()
    monkeypatch.setenv(store.STORE_ENV, str(dirs / "store"))
    monkeypatch.setenv("MAILLAGE_CACHE_DIR", str(dirs / "cache"))
    _http.reset()
    assert main(["fetch", "--territory", EPCI, "--offline"]) == 0
    out = capsys.readouterr().out
    assert "déjà enregistrées" in out and "sont conservées" in out
    assert "utilisera le stock local" in out
    assert store.read_store(EPCI).entry("bpe").status == "missing-offline"


def test_offline_is_detected_once_in_parallel_and_fast(monkeypatch):
    calls = []

    def dead(url, *, source, timeout_s):
        calls.append(url)
        time.sleep(0.3)  # a host that does not answer within its timeout
        raise SourceError(f"{source}: {url} does not answer (ConnectTimeout)",
                          kind="unreachable", source=source, url=url)

    monkeypatch.setattr(_http, "probe", dead)
    start = time.monotonic()
    assert fetch.detect_offline(timeout_s=0.3) is True
    assert time.monotonic() - start < 0.8  # probed in parallel, not one after the other
    assert sorted(calls) == sorted(fetch.PROBE_URLS)
    monkeypatch.setattr(_http, "probe", lambda url, **kw: None)
    assert fetch.detect_offline() is False


def test_offline_mode_counts_as_offline_without_probing(monkeypatch):
    monkeypatch.setattr(_http, "probe", lambda *a, **kw: pytest.fail("probed"))
    _http.configure(offline=True)
    try:
        assert fetch.detect_offline() is True
    finally:
        _http.reset()


def test_cli_without_network_switches_to_offline_at_once(dirs, capsys, monkeypatch):
    monkeypatch.setattr("data_sources.__main__.detect_offline", lambda **kw: True)
    import data_sources.__main__ as cli

    seen = []

    def spy(territory, **kw):
        seen.append(kw["offline"])
        return fetch.fetch_territory(territory, **kw)

    monkeypatch.setattr(cli, "fetch_territory", spy)
    start = time.monotonic()
    assert main(["fetch", "--territory", EPCI]) == 0
    assert time.monotonic() - start < 60
    err = capsys.readouterr().err
    assert "Pas de connexion internet" in err and "(hors ligne)" in err
    assert seen == [True]
