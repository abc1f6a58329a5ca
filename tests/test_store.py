"""Tests of data_sources.store, data_sources.fetch and the store side of the workspace.

No network: the loaders are replaced by functions returning small hand-made tables (the
contours are the demo's polygons of the CC du Pays de Pontchâteau Saint-Gildas-des-Bois,
200000438), or run for real offline against an empty HTTP cache, or (one test) read the
hand-written payloads of tests/data through ``responses``. The store and the HTTP cache
live in ``tmp_path``.
"""

from __future__ import annotations

import doctest
import json
import math
import os
import re
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import responses
from geopandas.testing import assert_geodataframe_equal
from responses import matchers

from data_sources import (
    _http,
    annuaire,
    ban,
    boundaries,
    bpe,
    caf,
    demo,
    fetch,
    filosofi,
    finess,
    inclusion,
    insee_melodi,
    iris,
    osm,
    qpv,
    store,
)
from data_sources.cog import resolve
from data_sources.merge import facility_frame
from data_sources.workspace import load_workspace
from diagnosis.errors import InputError, SourceError
from diagnosis.schema import NEEDS_COLUMNS, validate_facilities

EPCI = "200000438"
DATA = Path(__file__).parent / "data"
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture
def area():
    return resolve(EPCI)


@pytest.fixture(autouse=True)
def sandbox(tmp_path, monkeypatch):
    monkeypatch.setenv(store.STORE_ENV, str(tmp_path / "store"))
    _http.configure(cache_dir=tmp_path / "cache", offline=False, backoff_factor=0,
                    max_retries=0, rate_limits={}, timeout_s=(1.0, 2.0),
                    allow_hosts=("127.0.0.1",))  # the local test server
    yield tmp_path / "store"
    _http.reset()


def contours(area):
    com = demo.load_demo_communes()
    com = com.loc[com["code_insee"].isin(area.communes),
                  ["code_insee", "name", "epci_code", "dep_code", "geometry"]]
    return gpd.GeoDataFrame(com.reset_index(drop=True), geometry="geometry", crs="EPSG:4326")


def needs(area):
    """Births 2024 = 10 per commune, population 1000, families 100 of which 25 single."""
    n = len(area.communes)
    df = pd.DataFrame({"code_insee": list(area.communes), "births_2024": [10.0] * n,
                       "population_2022": [1000.0] * n, "families_2022": [100.0] * n,
                       "single_parent_families_2022": [25.0] * n,
                       "median_income_2021": [21000.0] * n,
                       "poverty_rate_2021": [float("nan")] * n})
    df.attrs["failures"] = {}
    return df


def facilities(source, rows, *, unplaced=()):
    """A validated facility table from (id, type, name, code_insee, lon, lat) rows."""
    recs = [{"type": t, "name": name, "code_insee": code, "source": source, "source_id": sid,
             "source_date": "2025-06-01", "position_precision": "address", "lon": lon,
             "lat": lat} for sid, t, name, code, lon, lat in rows]
    gdf = validate_facilities(facility_frame(recs), source=source)
    gdf.attrs["unplaced"] = pd.DataFrame([
        {"type": t, "subtype": "", "name": name, "address": "1 rue de la Mairie",
         "postcode": "44160", "code_insee": code, "source": source, "source_id": sid,
         "source_date": "2025-06-01", "position_precision": ""}
        for sid, t, name, code in unplaced])
    return gdf


PONT = ("44129", -2.0877, 47.4376)  # Pontchâteau, near the town hall


@pytest.fixture
def loaders(monkeypatch, area):
    """Replace every loader by a small table; returns a dict to make sources fail."""
    fail: dict[str, BaseException] = {}

    def maybe(key, value):
        if key in fail:
            raise fail[key]
        return value

    monkeypatch.setattr(boundaries, "load_communes",
                        lambda **kw: maybe("geo_api_communes", contours(area)))
    monkeypatch.setattr(insee_melodi, "load_insee_needs",
                        lambda a, **kw: maybe("insee_melodi", needs(a)))

    def load_finess(a, **kw):
        gdf = facilities("finess", [("440001", "pmi", "Centre médico-social PMI", *PONT)],
                         unplaced=[("440002", "pmi", "PMI de Saint-Gildas", "44161")])
        gdf.attrs["extraction_date"] = "2025-11-20"
        return maybe("finess", gdf)

    monkeypatch.setattr(finess, "load_finess", load_finess)
    # The same PMI seen by the BPE 30 m away: merged with the FINESS row.
    monkeypatch.setattr(bpe, "load_bpe", lambda a, **kw: maybe("bpe", facilities(
        "bpe", [("2024-D233-L2", "pmi", "PMI Centre médico-social", "44129",
                 PONT[1] + 0.0003, PONT[2])])))
    monkeypatch.setattr(osm, "load_osm_facilities", lambda poly, **kw: maybe("osm", facilities(
        "osm", [("node/1", "eaje", "Multi-accueil Les Lutins", "44129", -2.09, 47.44)])))
    monkeypatch.setattr(caf, "load_coverage", lambda a, **kw: maybe("caf_txcouv", pd.DataFrame(
        {"level": ["epci"], "code": [EPCI], "name": ["CC"], "year": [2022], "rate": [55.5]})))
    monkeypatch.setattr(inclusion, "load_inclusion", lambda a, **kw: maybe(
        "data_inclusion", facilities("data_inclusion", [])))
    monkeypatch.setattr(annuaire, "load_annuaire", lambda a, **kw: maybe(
        "annuaire", facilities("annuaire", [])))

    # the context sources (IRIS, census by IRIS, 200 m cells, QPV): one row each, no QPV
    iris_rows = contours(area).assign(code_iris=lambda d: d["code_insee"] + "0000",
                                      nom_iris=lambda d: d["name"], type_iris="Z")
    monkeypatch.setattr(iris, "load_iris_contours", lambda a, **kw: maybe(
        "ign_contours_iris", iris_rows[list(iris.CONTOUR_COLUMNS)]))
    monkeypatch.setattr(iris, "load_iris_census", lambda a, **kw: maybe(
        "insee_rp_iris_population", pd.DataFrame(iris_rows.drop(columns="geometry")).assign(
            population=1000.0, pop_0_2=30.0, census_year=2022)[list(iris.CENSUS_COLUMNS)]))
    monkeypatch.setattr(filosofi, "load_filosofi", lambda a, **kw: maybe(
        "insee_filosofi_2021_200m", filosofi.parse_filosofi(pd.DataFrame({
            "idcar_200m": ["CRS3035RES200mN2700000E3470000"], "lcog_geo": ["44129"],
            "ind": [100.0], "ind_0_3": [5.0], "men": [40.0], "men_pauv": [4.0],
            "men_fmp": [3.0], "ind_snv": [1e6], "i_est_200": [0]}))))
    monkeypatch.setattr(qpv, "load_qpv", lambda a, **kw: maybe(
        "anct_qpv_2024", qpv.qpv_from_list(a.communes)))

    def place(rows, *, town_halls=None, offline=None, **kw):
        if "ban" in fail:
            raise fail["ban"]
        recs = [dict(r, lon=-2.04, lat=47.52, position_precision="street")
                for r in rows.to_dict("records")]
        return validate_facilities(facility_frame(recs), source="ban")

    monkeypatch.setattr(ban, "place_facilities", place)
    return fail


def by_key(result):
    return {o.key: o for o in result.outcomes}


# --- store ----------------------------------------------------------------------------------


def test_doctests():
    assert doctest.testmod(store).failed == 0


def test_store_dir_from_env_or_user_data_dir(monkeypatch, sandbox, area):
    assert store.default_store_dir() == sandbox
    assert store.store_path(area) == sandbox / "epci-200000438"
    assert store.store_path("Pontchâteau").name == "commune-44129"
    monkeypatch.delenv(store.STORE_ENV)
    default = store.default_store_dir()
    assert default.parts[-2:] == ("maillage", "store")
    package = Path(store.__file__).resolve().parents[1]
    assert package not in default.resolve().parents


def test_nothing_stored_reads_none(area):
    assert store.read_store(area) is None


def _ledger():
    return [store.LedgerEntry("finess", "FINESS", "https://example.test/finess",
                              vintage="2025-11-20", fetched_at="2026-01-02T03:04:05Z",
                              attempted_at="2026-01-02T03:04:05Z", rows_kept=2,
                              rows_rejected=1),
            store.LedgerEntry("bpe", "BPE", "https://example.test/bpe",
                              attempted_at="2026-01-02T03:04:05Z", status="failed",
                              error="BPE [bpe] : échec")]


def test_round_trip(area):
    com = fetch.compose_communes(area, contours(area), needs(area))
    fac = facilities("finess", [("1", "pmi", "PMI", *PONT)])
    cov = pd.DataFrame({"level": ["epci"], "code": [EPCI], "year": [2022], "rate": [55.5]})
    snap = store.write_store(area, ledger=_ledger(), communes=com, facilities=fac,
                             source_layers={"finess": fac, "caf_txcouv": cov})
    assert snap.parent == store.store_path(area)
    got = store.read_store(area, with_source_layers=True)
    assert got is not None and got.path == snap and got.has_data
    assert_geodataframe_equal(got.facilities, fac)
    assert_geodataframe_equal(got.communes, com, check_dtype=False)
    assert got.communes["code_insee"].map(type).eq(str).all()
    assert got.ledger == tuple(_ledger())
    assert got.entry("bpe").status == "failed" and got.entry("osm") is None
    assert_geodataframe_equal(validate_facilities(got.source_layers["finess"], source="t"), fac)
    pd.testing.assert_frame_equal(got.source_layers["caf_txcouv"], cov)
    meta = json.loads((snap / "ledger.json").read_text(encoding="utf-8"))
    assert meta["territory"] == {"kind": "epci", "code": EPCI, "name": area.name}
    assert [r["source"] for r in meta["sources"]] == ["finess", "bpe"]
    assert gpd.read_parquet(snap / "facilities.parquet").crs.to_epsg() == 4326  # GeoParquet


def test_failed_write_keeps_previous_data(area, monkeypatch):
    fac = facilities("finess", [("1", "pmi", "PMI", *PONT)])
    first = store.write_store(area, ledger=_ledger(), facilities=fac)
    calls = []

    def broken(frame, path):
        calls.append(path.name)
        raise OSError("disk full")

    monkeypatch.setattr(store, "_write_table", broken)
    other = facilities("osm", [("node/9", "eaje", "Crèche", *PONT)])
    with pytest.raises(store.StoreWriteError, match="impossible d'écrire"):
        store.write_store(area, ledger=[], facilities=other)
    assert calls == ["facilities.parquet"]
    got = store.read_store(area)
    assert got.path == first
    assert_geodataframe_equal(got.facilities, fac)
    assert sorted(p.name for p in store.store_path(area).iterdir()) == ["CURRENT", first.name]


def test_new_write_replaces_and_keeps_one_previous_snapshot(area):
    fac = facilities("finess", [("1", "pmi", "PMI", *PONT)])
    snaps = [store.write_store(area, ledger=[], facilities=fac) for _ in range(3)]
    assert store.read_store(area).path == snaps[-1]
    assert {p.name for p in store.store_path(area).glob("snap-*")} == {snaps[1].name,
                                                                       snaps[2].name}


def test_write_refuses_a_bad_layer_and_writes_nothing(area):
    bad = contours(area)  # no needs columns
    with pytest.raises(InputError, match="communes lack columns"):
        store.write_store(area, ledger=[], communes=bad)
    assert store.read_store(area) is None


def test_unreadable_store_names_the_folder(area):
    fac = facilities("finess", [("1", "pmi", "PMI", *PONT)])
    snap = store.write_store(area, ledger=[], facilities=fac)
    (snap / "ledger.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SourceError, match=r"unreadable .*delete the folder .*epci-200000438"):
        store.read_store(area)
    (store.store_path(area) / "CURRENT").write_text("../../etc", encoding="utf-8")
    with pytest.raises(SourceError, match="not a snapshot"):
        store.read_store(area)


def test_ledger_entry_checks_status():
    with pytest.raises(InputError, match="status='stale'"):
        store.LedgerEntry("bpe", "BPE", "u", status="stale")


# --- composition ----------------------------------------------------------------------------


def test_compose_communes_has_the_needs_columns(area):
    com = fetch.compose_communes(area, contours(area), needs(area))
    assert list(com.columns[:len(NEEDS_COLUMNS)]) == list(NEEDS_COLUMNS)
    assert len(com) == 9 and com.crs.to_epsg() == 4326
    row = com.set_index("code_insee").loc["44129"]
    assert row["under3_estimate"] == 30.0  # 3 x births 2024
    assert row["single_parent_share_2022"] == 25.0
    assert row["density_per_km2"] == pytest.approx(1000.0 / row["area_km2"])
    demo_row = demo.load_demo_communes().set_index("code_insee").loc["44129"]
    assert row["area_km2"] == pytest.approx(demo_row["area_km2"], rel=0.05)
    assert (row["townhall_lon"], row["townhall_lat"]) == (demo_row["townhall_lon"],
                                                          demo_row["townhall_lat"])
    assert row["epci_name"].startswith("CC du Pays de Pontchâteau")
    assert math.isnan(row["poverty_rate_2021"])  # secret stays NaN, never 0
    assert math.isnan(row["births_mean_2016_2021"])  # not published in this table


# --- fetch --------------------------------------------------------------------------------


def test_fetch_writes_store_ledger_and_merges(area, loaders):
    events = []
    result = fetch.fetch_territory(EPCI, progress=events.append)
    out = by_key(result)
    assert [o.key for o in result.outcomes] == list(fetch.LIVE_SOURCES)
    assert all(o.ok for k, o in out.items() if k != "ban") and out["ban"].ok
    assert len(events) == 2 * len(fetch.LIVE_SOURCES)
    assert [e.outcome is None for e in events[:2]] == [True, False]
    assert out["finess"].rows_kept == 2 and out["finess"].rows_rejected == 0  # 1 via BAN
    assert out["ban"].rows_kept == 1 and out["finess"].vintage == "2025-11-20"
    assert result.communes_stored and result.facilities_stored and result.usable
    got = store.read_store(area, with_source_layers=True)
    assert len(got.communes) == 9
    fac = got.facilities
    merged = fac.loc[fac["source"].eq("finess+bpe")]
    assert len(merged) == 1  # FINESS and BPE saw the same PMI
    assert len(fac) == 3  # merged PMI, PMI placed by the BAN, the crèche from OSM
    assert fac.loc[fac["source_id"].eq("440002"), "position_precision"].item() == "street"
    ledger = {e.source: e for e in got.ledger}
    assert set(ledger) == set(fetch.LIVE_SOURCES)
    for e in ledger.values():
        assert ISO_UTC.match(e.fetched_at) and e.status == "ok" and not e.error
    assert ledger["caf_txcouv"].vintage == "2022" and ledger["bpe"].rows_kept == 1
    assert ledger["finess"].url == finess.FINESS.url
    assert set(got.source_layers) == set(fetch.LIVE_SOURCES) - {"ban"}


def test_one_source_failing_does_not_block_the_others(area, loaders):
    loaders["finess"] = RuntimeError("boom")
    loaders["data_inclusion"] = SourceError(  # as data_sources.inclusion raises it
        "data_inclusion: the data·inclusion API needs an access token; ask for one",
        kind="token", source="data_inclusion")
    result = fetch.fetch_territory(area)
    out = by_key(result)
    assert out["finess"].status == "failed"
    assert "FINESS" in out["finess"].message and finess.FINESS.url in out["finess"].message
    assert "erreur inattendue" in out["finess"].message
    assert "jeton" in out["data_inclusion"].message
    assert inclusion.TOKEN_ENV in out["data_inclusion"].message
    assert {k for k, o in out.items() if o.ok} == {"geo_api_communes", "insee_melodi", "bpe",
                                                   "osm", "caf_txcouv", "annuaire",
                                                   *fetch.CONTEXT_SOURCES}
    assert out["ban"].status == "skipped"  # the only address-only row was FINESS's
    got = store.read_store(area)
    assert set(got.facilities["source"]) == {"bpe", "osm"}
    ledger = {e.source: e for e in got.ledger}
    assert ledger["finess"].status == "failed" and ledger["finess"].fetched_at == ""
    assert "FINESS" in ledger["finess"].error and ledger["bpe"].status == "ok"


def test_failed_source_keeps_the_data_of_an_earlier_fetch(area, loaders):
    first = fetch.fetch_territory(area)
    before = store.read_store(area)
    loaders["finess"] = SourceError(f"finess: HTTP 503 from {finess.DATASET_API_URL}: ''",
                                    kind="http", status=503, source="finess",
                                    url=finess.DATASET_API_URL)
    second = fetch.fetch_territory(area)
    out = by_key(second)
    assert out["finess"].status == "failed" and out["finess"].kept_previous
    assert "Données précédentes" in out["finess"].message
    after = store.read_store(area)
    assert after.path != before.path and first.snapshot == before.path
    assert set(after.facilities["source"]) == set(before.facilities["source"])
    e_before, e_after = before.entry("finess"), after.entry("finess")
    assert e_after.status == "failed" and e_after.fetched_at == e_before.fetched_at
    assert e_after.vintage == "2025-11-20" and e_after.rows_kept == e_before.rows_kept
    assert "HTTP 503" in e_after.error and e_after.attempted_at >= e_before.attempted_at


def test_only_selected_sources_run_and_others_keep_their_rows(area, loaders):
    fetch.fetch_territory(area)
    before = store.read_store(area)
    result = fetch.fetch_territory(area, sources=["bpe"])
    assert [o.key for o in result.outcomes] == ["bpe"]
    after = store.read_store(area)
    assert after.entry("finess") == before.entry("finess")
    assert after.entry("bpe").fetched_at >= before.entry("bpe").fetched_at
    assert len(after.facilities) == len(before.facilities)
    with pytest.raises(ValueError, match="live sources"):
        fetch.fetch_territory(area, sources=["cog2026"])


def test_needs_failing_for_a_demo_territory_keeps_the_demo_communes(area, loaders):
    loaders["insee_melodi"] = SourceError("insee_melodi: HTTP 500 from https://api.insee.fr/x",
                                          kind="http", status=500, source="insee_melodi",
                                          url="https://api.insee.fr/x")
    result = fetch.fetch_territory(area)
    assert not result.communes_stored and result.facilities_stored and result.usable
    got = store.read_store(area)
    assert got.communes is None and got.facilities is not None
    ws = load_workspace(EPCI)
    assert ws.origin == "store"
    assert len(ws.communes) == len(demo.load_demo_communes())  # the demo's communes
    assert any("démonstration" in n for n in ws.notices)
    assert any("Mise à jour en échec" in n and "api.insee.fr" in n for n in ws.notices)
    keys = [s["key"] for s in ws.sources]
    assert "insee_comparateur" in keys and "finess" in keys and "insee_melodi" not in keys


def test_offline_with_empty_cache_names_each_source_and_keeps_the_demo(area):
    result = fetch.fetch_territory(area, offline=True)
    assert _http.get_config().offline is False  # restored
    out = by_key(result)
    for key in fetch.LIVE_SOURCES[:-1]:
        assert out[key].status == "missing-offline", (key, out[key].message)
        assert "hors ligne" in out[key].message and "http" in out[key].message
    assert "geo.api.gouv.fr" in out["geo_api_communes"].message
    assert "api.insee.fr" in out["insee_melodi"].message
    assert "BPE25.zip" in out["bpe"].message
    assert out["ban"].status == "skipped"
    assert result.snapshot is None and result.usable and result.demo_covers
    assert not store.store_path(area).exists()
    ws = load_workspace(EPCI)
    assert ws.origin == "demo" and len(ws.communes) == len(demo.load_demo_communes())


def test_offline_after_a_good_fetch_loses_nothing(area, loaders, monkeypatch):
    fetch.fetch_territory(area)
    before = store.read_store(area)
    root = store.default_store_dir()
    monkeypatch.undo()  # the real loaders again, offline against an empty cache
    monkeypatch.setenv(store.STORE_ENV, str(root))
    result = fetch.fetch_territory(area, offline=True)
    assert all(o.status in {"missing-offline", "skipped"} for o in result.outcomes)
    after = store.read_store(area)
    assert_geodataframe_equal(after.facilities, before.facilities)
    assert_geodataframe_equal(after.communes, before.communes)
    for e in after.ledger:
        if e.source != "ban":
            assert e.status == "missing-offline" and e.fetched_at == before.entry(
                e.source).fetched_at


def test_outside_the_demo_nothing_usable_when_everything_fails():
    result = fetch.fetch_territory("13055", offline=True)
    assert not result.usable and not result.demo_covers and result.snapshot is None


# --- workspace ------------------------------------------------------------------------------


def test_workspace_uses_the_store_when_present(area, loaders):
    loaders["data_inclusion"] = SourceError(  # as data_sources._http raises it
        "data_inclusion: offline mode and no cached copy of https://api.data.inclusion.gouv.fr/x;",
        kind="offline", source="data_inclusion", url="https://api.data.inclusion.gouv.fr/x")
    fetch.fetch_territory(area)
    ws = load_workspace(EPCI)
    assert ws.origin == "store"
    assert sorted(ws.communes["code_insee"]) == sorted(area.communes)
    assert int(ws.communes["births_2024"].sum()) == 90
    assert {"finess+bpe", "osm", "annuaire_mairies"} <= set(ws.facilities["source"])
    src = {s["key"]: s for s in ws.sources}
    assert {"cog2026", "geo_api_communes", "insee_melodi", "finess", "bpe", "osm"} <= set(src)
    assert "data_inclusion" not in src
    assert src["finess"]["vintage"].startswith("2025-11-20 (téléchargé le ")
    assert ISO_UTC.match(src["bpe"]["fetched_at"])
    assert any("data·inclusion" in n and "hors ligne" in n for n in ws.notices)
    assert not any("Données de démonstration" in n for n in ws.notices)
    demo_ws = load_workspace(EPCI, use_store=False)
    assert demo_ws.origin == "demo" and len(demo_ws.communes) == 207
    assert "caf_coverage_rate_epci" not in demo_ws.communes  # no CAF data in the demo


def test_workspace_carries_the_caf_coverage_rates(area, loaders):
    from diagnosis.overview import commune_table, compute_overview

    fetch.fetch_territory(area)
    ws = load_workspace(EPCI)
    com = ws.communes
    assert com["caf_coverage_rate_epci"].eq(55.5).all()  # the EPCI's rate, every commune
    assert com["caf_coverage_rate"].isna().all()  # no commune rate published: NaN, not 0
    assert com["caf_coverage_year"].eq(2022).all()
    assert "caf_txcouv" in {s["key"] for s in ws.sources}
    table = commune_table(compute_overview(ws.territory, ws.communes, ws.facilities))
    label = [c for c in table.columns if c.startswith("Taux de couverture") and "EPCI" in c]
    assert len(label) == 1 and table[label[0]].eq(55.5).all()


def test_caf_commune_rates_use_the_latest_year():
    from shapely.geometry import Point

    from data_sources.workspace import with_caf_coverage

    com = gpd.GeoDataFrame({"code_insee": ["44109", "44129"], "epci_code": ["244400404", ""]},
                           geometry=[Point(0, 0), Point(1, 1)], crs="EPSG:4326")
    cov = pd.DataFrame({"level": ["commune", "commune", "epci"],
                        "code": ["44109", "44109", "244400404"],
                        "name": ["Nantes", "Nantes", "Nantes Métropole"],
                        "year": [2021, 2022, 2022], "rate": [60.0, 62.5, 58.0]})
    out = with_caf_coverage(com, cov)
    assert out["caf_coverage_rate"].tolist()[0] == 62.5
    assert out["caf_coverage_rate_epci"].tolist()[0] == 58.0
    assert np.isnan(out["caf_coverage_rate"].tolist()[1])
    assert np.isnan(out["caf_coverage_year"].tolist()[1])


def test_workspace_with_an_unreadable_store_falls_back_to_the_demo(area, loaders):
    result = fetch.fetch_territory(area)
    (result.snapshot / "ledger.json").write_text("[]", encoding="utf-8")
    ws = load_workspace(EPCI)
    assert ws.origin == "demo"
    assert any("illisible" in n for n in ws.notices)


def test_workspace_outside_the_demo_reads_the_store(monkeypatch):
    other = resolve("13055")
    monkeypatch.setattr(boundaries, "load_communes", lambda **kw: _square(other))
    monkeypatch.setattr(insee_melodi, "load_insee_needs", lambda a, **kw: needs(a))
    result = fetch.fetch_territory(other, sources=["geo_api_communes", "insee_melodi"])
    assert result.communes_stored and result.usable and not result.demo_covers
    ws = load_workspace("13055")
    assert ws.origin == "store" and list(ws.communes["code_insee"]) == ["13055"]
    assert len(ws.facilities) == 0
    assert any("Aucune structure" in n for n in ws.notices)


def _square(area):
    from shapely.geometry import box

    return gpd.GeoDataFrame({"code_insee": list(area.communes), "name": [area.name],
                             "epci_code": ["200054807"], "dep_code": ["13"]},
                            geometry=[box(5.3, 43.2, 5.5, 43.4)], crs="EPSG:4326")


# --- real parsers on stored payloads --------------------------------------------------------


@responses.activate
def test_contours_and_melodi_through_the_real_loaders(area):
    def load(name):
        return json.loads((DATA / name).read_text(encoding="utf-8"))

    responses.get(f"{boundaries.GEO_API_URL}/epcis/{EPCI}/communes",
                  json=load("boundaries/geoapi_epci_200000438.geojson"))
    url = "https://api.insee.fr/melodi/data/"
    births = url + "DS_ETAT_CIVIL_NAIS_COMMUNES"
    responses.get(births, json=load("melodi/births_page2.json"),
                  match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)])
    responses.get(births, json=load("melodi/births_page1.json"),
                  match=[matchers.query_param_matcher({"EC_MEASURE": "LVB"},
                                                      strict_match=False)])
    for ds, name in (("DS_RP_POPULATION_PRINC", "population"),
                     ("DS_RP_TD_POPULATION_AGESEX_PRINC", "agesex"),
                     ("DS_FILOSOFI_CC", "filosofi"), ("DS_RP_FAMILLE_COMP", "famille")):
        responses.get(url + ds, json=load(f"melodi/{name}.json"))
    result = fetch.fetch_territory(area, sources=["geo_api_communes", "insee_melodi"])
    out = by_key(result)
    # The recorded payloads cover 2 of the 9 communes: stored, but « partiel », not « à jour »
    # (issue 25 item 4), and never cached.
    geo = out["geo_api_communes"]
    assert geo.status == "partial" and geo.rows_kept == 2
    assert "contours : 2 commune(s) sur 9" in geo.message
    assert "7 commune(s) sans contour" in geo.message
    assert out["insee_melodi"].status == "partial"
    assert "naissances 2024 : 1 commune(s) sur 9" in out["insee_melodi"].message
    assert "naissances" in out["insee_melodi"].vintage
    assert store.read_store(area).entry("insee_melodi").status == "partial"
    assert not _http.get_session().cache.contains(url=f"{boundaries.GEO_API_URL}/epcis/"
                                                      f"{EPCI}/communes")
    com = store.read_store(area).communes
    assert list(com["code_insee"]) == ["44129", "44161"]
    expected = im_births_2024()
    assert com.set_index("code_insee")["births_2024"].to_dict() == pytest.approx(
        expected, nan_ok=True)
    ws = load_workspace(EPCI)
    assert ws.origin == "store" and any("sans données chargées" in n for n in ws.notices)


def im_births_2024():
    """Births 2024 of the stored Melodi payloads, through the real parser."""
    obs = []
    for name in ("births_page1.json", "births_page2.json"):
        obs += json.loads((DATA / "melodi" / name).read_text(encoding="utf-8"))["observations"]
    wide = insee_melodi.parse_series(obs, insee_melodi.SERIES["births"])
    return wide.set_index("code_insee")["births_2024"].to_dict()


# --- one writer at a time, killed writes, disk full, suspect refreshes (issue 11) -------------

_HOLD = """
import sys, time
from data_sources import store
with store.store_lock(sys.argv[1], root=sys.argv[2]):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""

_WRITER = """
import sys
import geopandas as gpd
from data_sources import store
from data_sources.cog import resolve
from data_sources.merge import facility_frame
from diagnosis.schema import validate_facilities
area = resolve(sys.argv[1])
recs = [{"type": "pmi", "name": "PMI " + sys.argv[3], "code_insee": "44129",
         "source": "finess", "source_id": sys.argv[3], "source_date": "2025-06-01",
         "position_precision": "address", "lon": -2.0877, "lat": 47.4376}]
fac = validate_facilities(facility_frame(recs), source="finess")
for _ in range(int(sys.argv[4])):
    store.write_store(area, ledger=[], facilities=fac, root=sys.argv[2], lock_timeout_s=60)
print("done", flush=True)
"""

_SLOW_WRITER = """
import sys, time
from data_sources import store
from data_sources.cog import resolve
from data_sources.merge import facility_frame
from diagnosis.schema import validate_facilities
area = resolve(sys.argv[1])
recs = [{"type": "pmi", "name": "PMI", "code_insee": "44129", "source": "finess",
         "source_id": "9", "source_date": "2025-06-01", "position_precision": "address",
         "lon": -2.0877, "lat": 47.4376}]
fac = validate_facilities(facility_frame(recs), source="finess")
real = store._write_table
def slow(frame, path):
    real(frame, path)
    print("writing", flush=True)
    time.sleep(60)
store._write_table = slow
store.write_store(area, ledger=[], facilities=fac, root=sys.argv[2])
"""


def _python(code, *args):
    import subprocess
    import sys

    from tests.conftest import REPO

    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc):
    proc.kill()
    proc.communicate()


def test_second_writer_gets_a_french_message_while_another_process_holds_the_lock(
        area, sandbox, loaders):
    holder = _python(_HOLD, EPCI, sandbox, 30)
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with pytest.raises(store.StoreBusyError) as info:
            fetch.fetch_territory(area, lock_timeout_s=0.5)
        assert time.monotonic() - start < 5
        msg = str(info.value)
        assert "une autre mise à jour de ce territoire est en cours" in msg
        assert f"processus {holder.pid}" in msg and str(store.store_path(area)) in msg
        assert store.read_store(area) is None  # nothing written, nothing deleted
        fac = facilities("finess", [("1", "pmi", "PMI", *PONT)])
        with pytest.raises(store.StoreBusyError):
            store.write_store(area, ledger=[], facilities=fac, lock_timeout_s=0)
    finally:
        _stop(holder)
    # the lock dies with its process: the next fetch runs
    assert fetch.fetch_territory(area, lock_timeout_s=5).snapshot is not None


def test_cli_second_fetch_exits_3_with_a_french_message(area, sandbox):
    import subprocess
    import sys

    from tests.conftest import REPO

    holder = _python(_HOLD, EPCI, sandbox, 60)
    try:
        assert holder.stdout.readline().strip() == "held"
        env = dict(os.environ, MAILLAGE_STORE_DIR=str(sandbox),
                   MAILLAGE_CACHE_DIR=str(sandbox.parent / "cache"), MAILLAGE_OFFLINE="")
        proc = subprocess.run([sys.executable, "-m", "data_sources", "fetch", "--territory",
                               EPCI, "--offline"], capture_output=True, text=True, cwd=REPO,
                              env=env, timeout=120)
    finally:
        _stop(holder)
    assert proc.returncode == 3, proc.stderr
    assert "une autre mise à jour de ce territoire est en cours" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_two_writer_processes_never_corrupt_the_store(area, sandbox):
    procs = [_python(_WRITER, EPCI, sandbox, sid, 4) for sid in ("A", "B")]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0 and out.strip() == "done", err
    got = store.read_store(area)
    assert got.facilities["source_id"].tolist() in (["A"], ["B"])
    snaps = {p.name for p in store.store_path(area).glob("snap-*")}
    assert got.path.name in snaps and len(snaps) <= 2
    assert not list(store.store_path(area).glob("CURRENT.*.tmp"))


def test_killed_write_leaves_a_readable_store_and_is_cleaned(area, sandbox):
    import signal

    fac = facilities("finess", [("1", "pmi", "PMI", *PONT)])
    first = store.write_store(area, ledger=_ledger(), facilities=fac)
    writer = _python(_SLOW_WRITER, EPCI, sandbox)
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.communicate()
    folder = store.store_path(area)
    (folder / "CURRENT.dead.tmp").write_text("snap-x\n")
    leftovers = {p.name for p in folder.glob("snap-*")} - {first.name}
    assert len(leftovers) == 1  # the half snapshot of the killed process
    assert store.read_store(area).path == first  # still readable, unchanged
    second = store.write_store(area, ledger=_ledger(), facilities=fac, lock_timeout_s=5)
    assert {p.name for p in folder.glob("snap-*")} == {first.name, second.name}
    assert not list(folder.glob("CURRENT.*.tmp"))


def test_disk_full_gives_a_french_message_and_keeps_the_previous_files(area, monkeypatch):
    import errno

    fac = facilities("finess", [("1", "pmi", "PMI", *PONT)])
    first = store.write_store(area, ledger=_ledger(), facilities=fac)
    before = sorted(p.name for p in store.store_path(area).rglob("*"))

    def full(frame, path):
        with open(path, "wb") as fh:
            fh.write(b"PAR1")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(store, "_write_table", full)
    with pytest.raises(store.StoreWriteError) as info:
        store.write_store(area, ledger=[], facilities=fac)
    msg = str(info.value)
    assert "le disque est plein" in msg and "données déjà enregistrées sont intactes" in msg
    assert str(store.store_path(area)) in msg
    assert sorted(p.name for p in store.store_path(area).rglob("*")) == before
    assert_geodataframe_equal(store.read_store(area).facilities, fac)
    assert store.read_store(area).path == first


def test_cli_disk_full_exits_3_without_traceback(area, monkeypatch, capsys):
    import errno

    from data_sources import __main__ as cli

    def full(*a, **kw):
        raise store.StoreWriteError(store._write_error_fr(
            store.store_path(area), OSError(errno.ENOSPC, "No space left on device")))

    monkeypatch.setattr(cli, "fetch_territory", full)
    assert cli.main(["fetch", "--territory", EPCI, "--offline"]) == 3
    assert "le disque est plein" in capsys.readouterr().err


def _big_finess(n):
    rows = [(f"44{i:04d}", "pmi", f"PMI {i}", "44129", PONT[1] + i * 1e-4, PONT[2])
            for i in range(n)]
    gdf = facilities("finess", rows)
    gdf.attrs["extraction_date"] = "2025-11-20"
    return gdf


def test_refresh_losing_most_rows_is_suspect_and_keeps_the_held_rows(area, loaders,
                                                                     monkeypatch):
    monkeypatch.setattr(finess, "load_finess", lambda a, **kw: _big_finess(10))
    fetch.fetch_territory(area)
    before = store.read_store(area, with_source_layers=True)
    assert len(before.source_layers["finess"]) == 10
    monkeypatch.setattr(finess, "load_finess", lambda a, **kw: _big_finess(3))  # cut file
    result = fetch.fetch_territory(area)
    out = by_key(result)
    assert out["finess"].status == "suspect" and out["finess"].kept_previous
    assert out["finess"].rows_received == 3 and out["finess"].rows_kept == 10
    assert "3 ligne(s) reçue(s) contre 10 enregistrée(s)" in out["finess"].message
    assert "--accept-suspect" in out["finess"].message
    assert result.suspect == (out["finess"],) and not result.failed
    after = store.read_store(area, with_source_layers=True)
    assert len(after.source_layers["finess"]) == 10
    e = after.entry("finess")
    assert e.status == "suspect" and e.rows_kept == 10 and e.rows_received == 3
    assert e.fetched_at == before.entry("finess").fetched_at
    table = store.ledger_table(after.ledger).set_index("Source")
    assert table.loc[e.title, "État"] == "suspect, données précédentes gardées"
    assert table.loc[e.title, "Lignes reçues (suspect)"] == 3
    # the user confirms: the new answer replaces the held rows
    confirmed = fetch.fetch_territory(area, accept_suspect=True)
    assert by_key(confirmed)["finess"].status == "ok"
    assert len(store.read_store(area, with_source_layers=True).source_layers["finess"]) == 3


def test_empty_answer_does_not_replace_good_rows(area, loaders, monkeypatch):
    fetch.fetch_territory(area)
    monkeypatch.setattr(osm, "load_osm_facilities",
                        lambda poly, **kw: facilities("osm", []))  # Overpass empty result
    result = fetch.fetch_territory(area)
    assert by_key(result)["osm"].status == "suspect"
    got = store.read_store(area)
    assert "osm" in set(got.facilities["source"])


def test_cli_refresh_and_accept_suspect_reach_the_fetch(area, monkeypatch, capsys):
    from data_sources import __main__ as cli

    seen = {}

    def fake(territory, **kw):
        seen.update(kw)
        raise store.StoreBusyError("Stock local : une autre mise à jour de ce territoire "
                                   "est en cours")

    monkeypatch.setattr(cli, "fetch_territory", fake)
    assert cli.main(["fetch", "--territory", EPCI, "--refresh", "--accept-suspect"]) == 3
    assert seen["refresh"] is True and seen["accept_suspect"] is True
    assert cli.main(["fetch", "--territory", EPCI]) == 3
    assert seen["refresh"] is False and seen["accept_suspect"] is False


def test_refresh_ignores_cached_answers(area, loaders, monkeypatch):
    flags = []

    def load_caf(a, **kw):
        flags.append(_http.refresh_requested("caf-url"))
        return pd.DataFrame({"level": ["epci"], "code": [EPCI], "name": ["CC"],
                             "year": [2022], "rate": [55.5]})

    monkeypatch.setattr(caf, "load_coverage", load_caf)
    fetch.fetch_territory(area, sources=["caf_txcouv"])
    fetch.fetch_territory(area, sources=["caf_txcouv"], refresh=True)
    assert flags == [False, True]


def test_ledger_dates_the_data_served_not_the_attempt(area, loaders, monkeypatch):
    def load_caf(a, **kw):
        _http.note_data_date("2026-01-02T03:04:05Z")  # as a cached answer of that day does
        return pd.DataFrame({"level": ["epci"], "code": [EPCI], "name": ["CC"],
                             "year": [2022], "rate": [55.5]})

    monkeypatch.setattr(caf, "load_coverage", load_caf)
    fetch.fetch_territory(area)
    got = store.read_store(area)
    assert got.entry("caf_txcouv").fetched_at == "2026-01-02T03:04:05Z"
    assert got.entry("bpe").fetched_at == got.entry("bpe").attempted_at  # nothing noted


def test_each_source_has_an_overall_deadline(area, loaders, monkeypatch):
    def slow_caf(a, **kw):
        time.sleep(0.3)
        return _http.fetch_json("http://127.0.0.1:9/never", source="caf_txcouv")

    monkeypatch.setattr(caf, "load_coverage", slow_caf)
    monkeypatch.setitem(fetch.SOURCE_DEADLINE_S, "caf_txcouv", 0.2)
    start = time.monotonic()
    out = by_key(fetch.fetch_territory(area))
    assert time.monotonic() - start < 20
    assert out["caf_txcouv"].status == "failed"
    assert "délai global dépassé" in out["caf_txcouv"].message
    assert out["bpe"].ok  # the others run


def test_partial_source_is_stored_and_the_workspace_says_so(area, loaders, monkeypatch):
    def load_caf(a, **kw):  # as caf.fetch_records does on a short page
        _http.note_partial("CAF txcouv_pe_com : 100 ligne(s) reçue(s) sur 250 annoncée(s)")
        return pd.DataFrame({"level": ["epci"], "code": [EPCI], "name": ["CC"],
                             "year": [2022], "rate": [55.5]})

    monkeypatch.setattr(caf, "load_coverage", load_caf)
    out = by_key(fetch.fetch_territory(area))
    assert out["caf_txcouv"].status == "partial" and out["caf_txcouv"].rows_kept == 1
    assert out["bpe"].ok
    entry = store.read_store(area).entry("caf_txcouv")
    assert entry.status == "partial" and "250 annoncée(s)" in entry.note
    ws = load_workspace(EPCI)
    assert any(n.startswith("Données partielles — CNAF") and "250 annoncée(s)" in n
               for n in ws.notices), ws.notices
