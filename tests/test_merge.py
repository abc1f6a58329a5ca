"""Tests of data_sources.merge (hand-made facility tables; distances checkable by hand:
0.0001° of latitude is 11.1 m)."""

from __future__ import annotations

import doctest

import pytest

from data_sources import merge
from diagnosis.errors import InputError
from diagnosis.schema import FACILITY_COLUMNS

LON, LAT = -2.0586, 47.4386


def table(source, rows):
    return merge.facility_frame([
        {"type": t, "name": n, "code_insee": "44129", "source": source, "source_id": i,
         "source_date": d, "position_precision": p, "lon": LON + dx, "lat": LAT + dy,
         "capacity": cap, "phone": ph}
        for t, n, i, d, p, dx, dy, cap, ph in rows
    ])


def test_doctests():
    assert doctest.testmod(merge).failed == 0


def test_merge_same_facility_across_sources():
    finess = table("finess", [
        ("pmi", "PMI DE PONTCHÂTEAU", "440000011", "2024-03-15", "address", 0, 0, None, "02"),
        ("pmi", "PMI DE PONTCHÂTEAU annexe", "440000099", "2024", "address", 0, 0.0002, None, ""),
    ])
    osm = table("osm", [
        ("pmi", "P.M.I. de Pontchâteau", "node/4", "2025-01-01", "street", 0, 0.0002, None, ""),
        ("eaje", "Crèche Les Lutins", "way/7", "2025", "address", 0.001, 0, None, ""),
        ("pmi", "PMI de Pontchâteau", "node/9", "2025", "address", 0.05, 0, None, ""),
    ])
    bpe = table("bpe", [
        ("eaje", "CRECHE LES LUTINS", "2024-D502-L2", "2024", "street", 0.001, 0.0001, 24, ""),
        ("laep", "Crèche Les Lutins", "2024-D503-L3", "2024", "street", 0.001, 0, None, ""),
    ])
    merged, report = merge.merge_facilities([finess, osm, bpe], max_distance_m=50,
                                            name_similarity=0.6)
    assert list(merged.columns) == list(FACILITY_COLUMNS)
    pmi = merged[merged["source_id"].str.contains("node/4")]
    assert len(pmi) == 1
    row = pmi.iloc[0]
    # 22 m apart, same type, same normalised name -> one row, best precision kept
    assert row["source"] == "finess+osm"
    assert row["source_id"] == "finess:440000011|osm:node/4"
    assert row["source_date"] == "finess:2024-03-15|osm:2025-01-01"
    assert row["position_precision"] == "address" and row.geometry.y == pytest.approx(LAT)
    assert row["phone"] == "02"
    creche = merged[merged["source"] == "osm+bpe"].iloc[0]
    assert creche["capacity"] == 24  # taken from the BPE member
    assert creche["position_precision"] == "address"
    # the annex (finess, same source) and the far one (3.8 km) stay separate; so does the LAEP
    assert len(merged) == 7 - 2
    assert set(report["sources"]) == {"finess+osm", "osm+bpe"}
    rep = report.set_index("sources")
    assert rep.loc["finess+osm", "max_distance_m"] == pytest.approx(22.2, abs=0.3)
    assert rep.loc["osm+bpe", "min_name_similarity"] == 1.0


def test_dissimilar_names_are_not_merged():
    a = table("finess", [("pmi", "PMI Pontchâteau", "1", "", "address", 0, 0, None, "")])
    b = table("osm", [("pmi", "Maison des solidarités Brière", "n1", "", "address", 0, 0,
                       None, "")])
    merged, report = merge.merge_facilities([a, b])
    assert len(merged) == 2 and report.empty


def test_distance_threshold():
    a = table("finess", [("pmi", "PMI Pontchâteau", "1", "", "address", 0, 0, None, "")])
    b = table("osm", [("pmi", "PMI Pontchâteau", "n1", "", "address", 0, 0.0005, None, "")])
    assert len(merge.merge_facilities([a, b], max_distance_m=50)[0]) == 2  # 55.6 m
    assert len(merge.merge_facilities([a, b], max_distance_m=60)[0]) == 1


def test_empty_and_bad_options():
    merged, report = merge.merge_facilities([merge.facility_frame([])])
    assert merged.empty and report.empty
    with pytest.raises(InputError, match="max_distance_m=-1"):
        merge.merge_facilities([], max_distance_m=-1)
    with pytest.raises(InputError, match="name_similarity=2"):
        merge.merge_facilities([], name_similarity=2)


def test_normalize_and_score():
    assert merge.normalize_name("Crèche « Les P'tits Loups »") == "p tits loups"
    assert merge.name_score("Multi-accueil Les Lutins", "CRECHE LES LUTINS") == 1.0
    assert merge.name_score("Les Lutins", "Les Farfadets") < 0.6


def test_the_demo_town_halls_and_the_sources_ones_are_one_per_commune():
    """Issue 21.3: « MAIRIE » (BPE A129, name only the word) and « Mairie - Drefféac »
    (annuaire de l'administration, name + commune) 0.6 m from the demo's « Mairie de
    Drefféac »: 16 town-hall rows for 9 communes became 16 rows in the store; one each."""
    from data_sources.cog import resolve
    from data_sources.demo import load_demo_facilities
    from data_sources.workspace import load_workspace

    epci = resolve("200000438")
    demo = load_demo_facilities()
    halls = demo[demo["type"].eq("mairie") & demo["code_insee"].isin(epci.communes)]
    names = load_workspace(epci).communes.set_index("code_insee")["name"]
    assert len(halls) == 9
    annuaire, bpe = [], []
    for k, (_, h) in enumerate(halls.iterrows()):
        lon, lat = h.geometry.x, h.geometry.y
        if k < 7:  # 0.6 m north: 0.0000054° of latitude
            annuaire.append({"type": "mairie", "name": f"Mairie - {names[h['code_insee']]}",
                             "code_insee": h["code_insee"], "source": "annuaire",
                             "source_id": f"a{k}-mairie", "position_precision": "address",
                             "lon": lon, "lat": lat + 0.0000054})
        bpe.append({"type": "mairie", "name": "MAIRIE", "code_insee": h["code_insee"],
                    "source": "bpe", "source_id": f"2025-A129-L{k}",
                    "position_precision": "street", "lon": lon + 0.0002, "lat": lat})
    tables = [halls, merge.facility_frame(annuaire), merge.facility_frame(bpe)]
    assert sum(len(t) for t in tables) == 9 + 7 + 9
    merged, report = merge.merge_facilities(tables)
    assert len(merged) == 9 and sorted(merged["code_insee"]) == sorted(epci.communes)
    dreffeac = merged[merged["code_insee"] == "44053"].iloc[0]
    assert dreffeac["source"] == "annuaire_mairies+annuaire+bpe"
    assert "annuaire:a" in dreffeac["source_id"] and "annuaire_mairies:44053" in dreffeac[
        "source_id"]
    assert "bpe:2025-A129-L" in dreffeac["source_id"]
    assert dreffeac["position_precision"] == "address"
    # the report names what was merged
    assert len(report) == 9
    assert report["names"].str.contains("bpe : MAIRIE").all()


def test_a_pmi_placed_to_its_commune_merges_with_the_addressed_one():
    finess = table("finess", [("pmi", "CENTRE MEDICO-SOCIAL DE PONTCHATEAU", "440000029",
                                "2025-06-30", "commune", 0.02, 0.01, None, "")])  # ~1.9 km
    annuaire = table("annuaire", [
        ("pmi", "Centre médico-social - PMI de Pontchâteau", "a1f2-pmi", "2026-03-18",
         "address", 0, 0, None, "02 40 00 00 11"),
        ("pmi", "Permanence PMI de Saint-Gildas-des-Bois", "f3a7-pmi", "2026-03-18",
         "address", 0.0, 0.085, None, ""),
    ])
    osm = table("osm", [("pmi", "PMI", "node/5", "2025", "commune", 0.02, 0.01, None, "")])
    merged, report = merge.merge_facilities([finess, annuaire, osm])
    pmi = merged[merged["source"] == "annuaire+finess"]
    assert len(pmi) == 1
    row = pmi.iloc[0]
    assert row["source_id"] == "annuaire:a1f2-pmi|finess:440000029"
    assert row["position_precision"] == "address" and row.geometry.y == pytest.approx(LAT)
    # a generic name placed to the commune is never merged on the name alone
    assert (merged["source"] == "osm").sum() == 1
    assert len(merged) == 3
    assert report.loc[0, "max_distance_m"] > 1000
