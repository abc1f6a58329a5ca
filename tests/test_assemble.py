"""Assembling a territory from the store's département snapshots (data_sources.assemble).

Stores are written in a temporary folder with :func:`data_sources.store.write_store`
(the real write path); communes come from the shipped national geography and an INSEE
comparateur-format file made here for the Drôme (26) and the Ardèche (07), with the
real column names of the INSEE comparateur de territoires (see test_insee_files.py).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from data_sources.assemble import assemble_territory, communes_from_insee, fetch_command
from data_sources.cog import resolve
from data_sources.insee_files import read_insee_files
from data_sources.store import LedgerEntry, write_store
from diagnosis.errors import InputError
from diagnosis.schema import FACILITY_DTYPES, Territory, validate_facilities

ARCHE = "200073096"  # CA Arche Agglo: communes in the Ardèche (07) and the Drôme (26)


def _comparateur(codes) -> bytes:
    rows = ["CODGEO;P22_POP;SUPERF;NAIS1621;NAISD24;MED21;TP6021"]
    for i, c in enumerate(sorted(codes)):
        rows.append(f"{c};{1000 + 10 * i};{10 + i},5;{60 + i};{10 + (i % 7)};{20000 + i};s")
    return ("\n".join(rows) + "\n").encode()


def _facilities(codes, *, source: str) -> gpd.GeoDataFrame:
    com = communes_from_insee(resolve(codes[0]), read_insee_files(
        [("c.csv", _comparateur([codes[0]]))], territory_codes=[codes[0]]))
    rows = []
    for c in codes:
        row = {k: "" for k, d in FACILITY_DTYPES.items() if d == "str"}
        row.update(facility_id=f"{source}:{c}", type="mairie", name=f"Mairie {c}",
                   code_insee=c, capacity=np.nan, source=source, source_id=c,
                   position_precision="commune")
        rows.append(row)
    pt = shapely.Point(com["point_lon"].iloc[0], com["point_lat"].iloc[0])
    gdf = gpd.GeoDataFrame(rows, geometry=[pt] * len(rows), crs=4326)
    return validate_facilities(gdf, source="test")


def _store_departement(dep: str, root, *, facilities: bool = True) -> None:
    t = resolve(dep)
    com = communes_from_insee(t, read_insee_files([("c.csv", _comparateur(t.communes))],
                                                   territory_codes=t.communes))
    fac = _facilities(list(t.communes[:3]), source="user_test") if facilities else None
    write_store(t, ledger=[LedgerEntry("user_test", "Test", "file://test")],
                communes=com, facilities=fac, root=root)


def test_communes_from_insee_fill_the_schema_without_network():
    t = resolve("26")
    imp = read_insee_files([("c.csv", _comparateur(t.communes))], territory_codes=t.communes)
    com = communes_from_insee(t, imp)
    assert len(com) == 362 and com.crs.to_epsg() == 4326
    assert com["births_2024"].notna().all() and com["poverty_rate_2021"].isna().all()
    assert com.loc[0, "area_km2"] == 10.5  # SUPERF from the file, not the polygon
    assert set(com["point_kind"]) <= {"mairie", "centre de la commune"}
    assert (com["births_2024_year"] == 2024).all()
    assert com["single_parent_share_2022"].isna().all()  # no dossier complet: unknown


def test_epci_across_two_departements_is_assembled_from_both(tmp_path):
    _store_departement("26", tmp_path)
    _store_departement("07", tmp_path)
    arche = resolve(ARCHE)
    assert arche.departements == ("07", "26")
    got = assemble_territory(arche, root=tmp_path)
    assert got.missing == () and got.communes_missing == () and got.complete
    inside = got.communes.loc[got.communes["in_territory"]]
    assert sorted(inside["code_insee"]) == list(arche.communes)
    assert set(got.communes["dep_code"]) == {"07", "26"}  # neighbours kept
    assert len(got.communes) == len(resolve("26").communes) + len(resolve("07").communes)
    assert set(got.ledgers) == {"departement-07", "departement-26"}
    assert len(got.facilities) == 6


def test_a_missing_departement_is_named_with_its_command(tmp_path):
    _store_departement("26", tmp_path)
    got = assemble_territory(resolve(ARCHE), root=tmp_path)
    assert got.departements_loaded == ("26",)
    n07 = sum(c.startswith("07") for c in resolve(ARCHE).communes)
    assert len(got.communes_missing) == n07 and not got.complete
    assert len(got.missing) == 1
    assert "Département 07 (Ardèche)" in got.missing[0]
    assert fetch_command("07") in got.missing[0]


def test_commune_and_custom_territories_are_served_by_the_departement(tmp_path):
    _store_departement("26", tmp_path, facilities=False)
    valence = assemble_territory(resolve("26362"), root=tmp_path)
    assert valence.communes_missing == ()
    assert valence.communes["in_territory"].sum() == 1
    custom = assemble_territory(resolve("Valence et Romans=26362,26281"), root=tmp_path)
    assert custom.communes.loc[custom.communes["in_territory"], "code_insee"].tolist() == [
        "26281", "26362"]
    assert custom.facilities is None
    assert any("aucun équipement chargé" in m and fetch_command("26") in m
               for m in custom.missing)


def test_the_most_recent_snapshot_wins_and_a_broken_one_is_reported(tmp_path):
    _store_departement("26", tmp_path)
    # an EPCI folder written later with other figures for its communes
    vr = resolve("200068781")
    com = communes_from_insee(vr, read_insee_files([("c.csv", _comparateur(vr.communes))],
                                                    territory_codes=vr.communes))
    com["births_2024"] = 99.0
    write_store(vr, ledger=[LedgerEntry("user_test", "Test", "file://t")], communes=com,
                root=tmp_path)
    got = assemble_territory(vr, root=tmp_path)
    assert (got.communes.loc[got.communes["in_territory"], "births_2024"] == 99.0).all()
    assert got.snapshots[0].parent.name == "epci-200068781"
    # a broken département folder: reported, the EPCI folder still serves
    (tmp_path / "departement-26" / "CURRENT").write_text("garbage\n", encoding="utf-8")
    again = assemble_territory(vr, root=tmp_path)
    assert again.communes_missing == ()
    assert any(m.startswith("departement-26 :") for m in again.missing)


def test_nothing_stored_names_every_departement(tmp_path):
    got = assemble_territory(resolve(ARCHE), root=tmp_path)
    assert got.communes is None and got.facilities is None
    assert [m.split(" :")[0] for m in got.missing] == ["Département 07 (Ardèche)",
                                                         "Département 26 (Drôme)"]
    with pytest.raises(InputError, match="aucune commune"):
        assemble_territory(Territory("custom", "c0", "vide", ()), root=tmp_path)


def test_a_fetched_departement_serves_its_communes_in_the_workspace(tmp_path, monkeypatch):
    """Issue 12.4: ``fetch --territory 44`` once; a commune inside is diagnosed from it."""
    from data_sources import _http
    from data_sources import store as store_mod
    from data_sources.__main__ import main as fetch_main
    from data_sources.workspace import load_workspace
    from tests.test_fetch_cli import _fake_loaders

    monkeypatch.setenv(store_mod.STORE_ENV, str(tmp_path / "store"))
    monkeypatch.setenv("MAILLAGE_CACHE_DIR", str(tmp_path / "cache"))
    _http.reset()
    try:
        _fake_loaders(monkeypatch)
        assert fetch_main(["fetch", "--territory", "44"]) == 0
    finally:
        _http.reset()
    assert (tmp_path / "store" / "departement-44").is_dir()
    ws = load_workspace("44129")
    assert ws.origin == "store"
    assert any("assemblées depuis le stock local des départements 44" in n for n in ws.notices)
    assert set(ws.territory.communes) <= set(ws.communes["code_insee"])
