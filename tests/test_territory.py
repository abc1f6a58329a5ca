from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest

from data_sources.cog import load_cog, resolve
from diagnosis.errors import InputError
from diagnosis.territory import (
    CogTables,
    current_commune,
    normalize_name,
    normalize_names,
    resolve_territory,
)


@pytest.fixture()
def tiny_cog() -> CogTables:
    communes = pd.DataFrame({
        "code": ["44129", "44161", "44184", "30288", "44999", "44180"],
        "name": ["Pontchâteau", "Saint-Gildas-des-Bois", "Saint-Nazaire", "Saint-Nazaire",
                 "Ancienne", "Saint-Michel"],
        "kind": ["commune", "commune", "commune", "commune", "deleguee", "commune"],
        "dep_code": ["44", "44", "44", "30", "44", "44"],
        "region_code": ["52"] * 6,
        "epci_code": ["200000438", "200000438", "244400644", "", "", ""],
        "parent_code": ["", "", "", "", "44129", ""],
        "former_codes": ["", "", "", "", "", "44111"],
        "postcodes": [""] * 6,
        "population": [1.0] * 6,
    })
    epci = pd.DataFrame({"code": ["200000438", "244400644"],
                         "name": ["CC du Pays de Pontchâteau St-Gildas-des-Bois", "CARENE"],
                         "kind": ["CC", "CA"], "population": [1.0, 2.0]})
    deps = pd.DataFrame({"code": ["44", "30"], "name": ["Loire-Atlantique", "Gard"],
                         "region_code": ["52", "76"]})
    return CogTables(communes, epci, deps)


def test_normalize_name_folds_accents_case_and_saint():
    assert normalize_name("SAINT-GILDAS-DES-BOIS") == normalize_name("st gildas des bois")
    assert normalize_name("Pontchâteau") == "pontchateau"


def test_resolve_by_codes(tiny_cog):
    assert resolve_territory("44", tiny_cog).communes == ("44129", "44161", "44180", "44184")
    epci = resolve_territory("200000438", tiny_cog)
    assert (epci.kind, epci.communes, epci.departements) == ("epci", ("44129", "44161"), ("44",))
    com = resolve_territory("44129", tiny_cog)
    assert (com.kind, com.name, com.communes) == ("commune", "Pontchâteau", ("44129",))


def test_resolve_by_name_accent_and_case_blind(tiny_cog):
    assert resolve_territory("PONTCHATEAU", tiny_cog).code == "44129"
    assert resolve_territory("loire atlantique", tiny_cog).kind == "departement"
    assert resolve_territory("Pays de Pontchâteau", tiny_cog).code == "200000438"
    assert resolve_territory("Saint-Nazaire (44)", tiny_cog).code == "44184"


def test_deleguee_and_former_codes_resolve_to_current_commune(tiny_cog):
    t = resolve_territory("44999", tiny_cog)
    assert t.code == "44129" and "déléguée" in t.note
    t = resolve_territory("44111", tiny_cog)
    assert t.code == "44180" and "ancien code" in t.note


def test_ambiguous_name_lists_candidates(tiny_cog):
    with pytest.raises(InputError, match=r"ambigu : .*30288.*44184.*Donnez le code"):
        resolve_territory("Saint-Nazaire", tiny_cog)


def test_unknown_name_suggests_closest(tiny_cog):
    with pytest.raises(InputError, match=r"noms les plus proches : .*Pontchâteau \(44\)"):
        resolve_territory("Pontchatau", tiny_cog)


@pytest.mark.parametrize("bad", ["", "99", "99999", "123456789", "1234"])
def test_bad_codes_raise_input_error(tiny_cog, bad):
    with pytest.raises(InputError, match="^territoire ") as err:
        resolve_territory(bad, tiny_cog)
    # the message is French: no English word of the old messages
    assert not any(w in str(err.value) for w in ("no ", "give", "check", "is not"))


def test_shipped_cog_resolves_any_french_territory():
    cog = load_cog()
    assert (cog.communes["kind"] == "commune").sum() == 34969
    assert len(cog.epci) == 1255 + 11  # EPCI of the COG + the 11 EPT of the Grand Paris
    t = resolve("200000438")
    assert len(t.communes) == 9 and t.departements == ("44",)
    assert len(resolve("44").communes) == 207
    assert resolve("2A004").name == "Ajaccio"
    assert resolve("Sainte-Marie (974)").code == "97418"
    assert resolve("13201").code == "13055"  # arrondissement -> Marseille
    assert resolve("Nantes Métropole").kind == "epci"


# --- régions, custom territories, drawn areas -------------------------------------------

def test_region_resolves_by_prefixed_code_and_by_name():
    t = resolve("région 52")
    assert (t.kind, t.name) == ("region", "Pays de la Loire")
    assert set(t.departements) == {"44", "49", "53", "72", "85"}
    assert resolve("REG52") == t and resolve("region:52") == t
    assert resolve("pays de la loire") == t
    assert resolve("44").kind == "departement"  # a bare 2-digit code stays a département
    assert resolve("Guadeloupe").kind == "departement"  # same communes, département first
    assert t.label == "Région Pays de la Loire (52)"
    with pytest.raises(InputError, match="aucune région"):
        resolve("région 99")


def test_custom_territory_from_a_named_list():
    t = resolve("Plaine Commune=93066,93001, 93027;93030")
    assert (t.kind, t.name) == ("custom", "Plaine Commune")
    assert t.communes == ("93001", "93027", "93030", "93066")
    assert t.departements == ("93",) and t.notices == ()
    assert t.label == "Territoire Plaine Commune (4 communes)"
    # same communes, any order or name: same code (same store folder, same figures)
    assert resolve("Autre nom=93030,93027,93066,93001").code == t.code


def test_custom_territory_names_every_unknown_code():
    with pytest.raises(InputError, match=r"2 code\(s\) inconnu\(s\).*93999, 12345"):
        resolve("X=93066,93999,12345")
    with pytest.raises(InputError, match="nom est vide"):
        resolve("=93066")
    with pytest.raises(InputError, match="aucune commune"):
        resolve("Vide=")


def test_custom_territory_resolves_old_codes_with_notices(tiny_cog):
    from diagnosis.territory import custom_territory

    t = custom_territory("T", ["44111", "44999", "44129", "44161"], tiny_cog)
    assert t.communes == ("44129", "44161", "44180")
    assert len(t.notices) == 3
    assert "ancien code" in t.notices[0] and "Saint-Michel" in t.notices[0]
    assert "déléguée" in t.notices[1]
    assert "plusieurs fois" in t.notices[2]  # 44999 -> 44129, then 44129 again


def test_custom_territory_across_two_departements():
    t = resolve("Vallée du Rhône=26362,07010")
    assert t.departements == ("07", "26")


def test_drawn_area_gives_the_communes_it_covers_like_the_list():
    import shapely

    from data_sources.national import load_national_communes
    from diagnosis.territory import territory_from_polygon

    com = load_national_communes(departements=["93"])
    four = com.loc[com["code_insee"].isin(["93066", "93001", "93027", "93030"])]
    # the union shrunk by 50 m: no neighbour touched, every member covered
    area = four.to_crs(2154).geometry.union_all().buffer(-50)
    drawn = gpd.GeoSeries([area], crs=2154).to_crs(4326).iloc[0]
    t = territory_from_polygon(drawn, com, name="Ma zone")
    listed = resolve("Plaine Commune=93066,93001,93027,93030")
    assert (t.communes, t.code, t.departements) == (listed.communes, listed.code, ("93",))
    # a polygon that only touches a commune's border does not take it
    sq = gpd.GeoDataFrame({"code_insee": ["01001", "01002"], "dep_code": ["01", "01"]},
                          geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)],
                          crs=4326)
    assert territory_from_polygon(shapely.box(0.2, 0.2, 1, 0.8), sq).communes == ("01001",)
    with pytest.raises(InputError, match="aucune commune"):
        territory_from_polygon(shapely.box(5, 5, 6, 6), sq)
    with pytest.raises(InputError, match="polygone"):
        territory_from_polygon(shapely.Point(0, 0), sq)


def test_custom_territory_looks_current_codes_up_once(monkeypatch):
    # a custom territory of thousands of communes must not scan the COG table per code
    # (it was quadratic: 88 s for 30 départements); only codes that are not current
    # communes (former codes, déléguées, arrondissements) go through the slow search
    import diagnosis.territory as territory

    cog = load_cog()
    com = cog.communes
    current = com.loc[(com["kind"] == "commune") & com["dep_code"].isin(["44", "85"]),
                      "code"].tolist()
    calls: list[str] = []
    real = territory.current_commune
    monkeypatch.setattr(territory, "current_commune",
                        lambda code, c: calls.append(code) or real(code, c))
    # 44004 is a commune déléguée of 44163 (already in the list): counted once, noticed
    t = territory.custom_territory("Deux départements", [*current, "44004"], cog)
    assert set(t.communes) == set(current) and len(t.communes) == len(current)
    assert t.departements == ("44", "85")
    assert calls == ["44004"]
    assert "déléguée" in t.note


# --- établissements publics territoriaux (Grand Paris) and Métropole de Lyon -----------

@pytest.mark.parametrize("query", ["Plaine Commune", "plaine commune", "200057867"])
def test_an_ept_resolves_by_name_and_siren(query):
    t = resolve(query)
    assert t.kind == "epci" and t.code == "200057867" and t.name == "Plaine Commune"
    # Saint-Denis holds Pierrefitte-sur-Seine since 2025: 8 communes, all of the 93
    assert len(t.communes) == 8 and "93066" in t.communes and "93059" not in t.communes
    assert t.departements == ("93",)


def test_the_eleven_ept_cover_the_grand_paris_but_paris():
    cog = load_cog()
    ept = cog.epci.loc[cog.epci["kind"] == "EPT"]
    assert len(ept) == 11 and ept["code"].is_unique
    members = [set(resolve(s).communes) for s in ept["code"]]
    union = set().union(*members)
    assert sum(len(m) for m in members) == len(union)  # no commune in two EPT
    mgp = set(resolve("200054781").communes)
    assert union == mgp - {"75056"}
    assert resolve("Est Ensemble").code == "200057875"
    # Boucle Nord de Seine reaches into the Val-d'Oise (Argenteuil)
    assert resolve("200057990").departements == ("92", "95")
    # population: the sum of its communes' legal populations
    pc = ept.set_index("code").loc["200057867", "population"]
    com = cog.communes.set_index("code")
    assert pc == com.loc[list(resolve("200057867").communes), "population"].sum() > 400_000


def test_metropole_de_lyon_resolves_by_name_and_siren():
    for q in ("Métropole de Lyon", "metropole de lyon", "200046977"):
        t = resolve(q)
        assert t.code == "200046977" and len(t.communes) == 58 and "69123" in t.communes


def test_unknown_siren_error_is_french():
    with pytest.raises(InputError, match=r"aucune intercommunalité .*SIREN.*COG 2026"):
        resolve("200099999")


@pytest.mark.parametrize(("query", "partner"), [
    ("93066", "Plaine Commune"),  # a commune of an EPT
    ("Montreuil (93)", "Est Ensemble"),
    ("Plaine Commune", "Plaine Commune"),  # the EPT itself
    ("69123", "Métropole de Lyon"),
])
def test_the_intercommunalite_to_meet_is_the_ept_not_the_grand_paris(tmp_path, query, partner):
    from data_sources.workspace import load_workspace
    from diagnosis.analyses import compute_partners
    from diagnosis.pipeline import DiagnosisParams, diagnose_overview

    t = resolve(query)
    rows = ["CODGEO;LIBGEO;P22_POP;NAISD24"]
    rows += [f"{c};Commune {c};20000;300" for c in t.communes]
    csv = tmp_path / "comparateur.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    ws = load_workspace(t, insee_files=[str(csv)], use_store=False)
    assert "ept_name" in ws.communes  # the shipped geography knows the EPT
    ov = diagnose_overview(ws, DiagnosisParams())
    inst = compute_partners(ov, ws.facilities).layers["institutions"]
    interco = inst.loc[inst["role"] == "Intercommunalité", "organisation"].tolist()
    assert interco == [partner]


# --- custom territories across seas or too wide ----------------------------------------

def test_a_custom_territory_across_seas_is_warned_in_french():
    t = resolve("Mer=13055,2A004,97411")  # Marseille, Ajaccio, Saint-Denis (La Réunion)
    assert t.communes == ("13055", "2A004", "97411")
    warn = next(n for n in t.notices if "séparées par la mer" in n)
    assert "la France continentale, la Corse, La Réunion" in warn


def test_a_custom_territory_over_200_km_wide_is_warned(tmp_path):
    t = resolve("Large=29019,67482")  # Brest and Strasbourg
    warn = next(n for n in t.notices if "s'étend sur" in n)
    km = int(warn.split("s'étend sur ")[1].split(" km")[0])
    assert 850 < km < 950  # about 900 km as the crow flies
    from data_sources.cog import territory_from_communes_file

    f = tmp_path / "communes.txt"
    f.write_text("29019\n67482\n", encoding="utf-8")
    assert any("s'étend sur" in n for n in territory_from_communes_file(f).notices)


def test_a_compact_custom_territory_has_no_warning():
    assert resolve("Plaine Commune=93066,93001,93027").notices == ()


def test_a_drawn_area_across_the_whole_mainland_is_warned():
    import shapely

    from data_sources.national import load_national_communes
    from diagnosis.territory import territory_from_polygon

    com = load_national_communes(departements=["29", "56", "22"])
    t = territory_from_polygon(shapely.box(-4.6, 47.6, -2.0, 48.7), com)
    assert any("s'étend sur" in n for n in t.notices)


def test_names_folded_at_once_equal_one_by_one():
    """normalize_names (the COG's keys) folds every name as normalize_name does."""
    cog = load_cog()
    names = [*cog.communes["name"], *cog.epci["name"], *cog.departements["name"]]
    tricky = ["\u0301Abc", "A\u0301", "Ste-Luce", "St-Nazaire", " st-ste ", "", "Œuvre",
              "Straße", "ﬁnal ΣΑΣ", "x\x00y", "Saint\tHerblain\n", None, 44, "L'Haÿ-les-Roses"]
    for batch in (names, tricky, []):
        assert normalize_names(batch) == [normalize_name(n) for n in batch]
    assert cog.communes["key"].tolist() == [normalize_name(n) for n in cog.communes["name"]]


def test_current_commune_through_the_code_index():
    """Current, former, delegated and unknown codes, each found through the index."""
    cog = load_cog()
    com = cog.communes
    assert current_commune("44129", cog) == ("44129", "")
    former = com.loc[com["kind"].eq("commune") & com["former_codes"].ne("")].iloc[0]
    code = former["former_codes"].split(" ")[0]
    if code not in set(com["code"]):
        got, note = current_commune(code, cog)
        assert got == former["code"] and "ancien code" in note
    child = com.loc[com["kind"].eq("deleguee") & ~com["code"].isin(
        com.loc[com["kind"].eq("commune"), "code"])].iloc[0]
    got, note = current_commune(child["code"], cog)
    assert got == child["parent_code"] and "déléguée" in note
    assert current_commune("44000", cog) is None


def test_epci_and_departement_members_through_the_index_equal_a_scan():
    """Members found by the first question's scan, then through the per-column index built
    at the second, are those a scan of the table finds."""
    shipped = load_cog()
    cog = CogTables(communes=shipped.communes, epci=shipped.epci,  # no index, and
                    departements=shipped.departements.drop(columns="communes"),  # no lists
                    regions=shipped.regions)
    com = cog.communes
    current = com.loc[com["kind"].eq("commune")]
    for siren in ("200000438", "200057867", "200046977", "243500139", "200000438"):
        t = resolve_territory(siren, cog)
        scan = current.loc[current["epci_code"].eq(siren) | current["ept_code"].eq(siren)]
        assert t.communes == tuple(sorted(scan["code"])) and t.communes
        assert t.departements == tuple(sorted(scan["dep_code"].unique()))
    for i, dep in enumerate(("44", "2A", "976", "44")):
        assert isinstance(cog._cache.get("members:dep_code"), dict) == (i >= 2)
        t = resolve_territory(dep, cog)
        assert t.communes == tuple(sorted(current.loc[current["dep_code"].eq(dep), "code"]))
        assert len(t.communes) > 10
