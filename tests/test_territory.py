from __future__ import annotations

import pandas as pd
import pytest

from data_sources.cog import load_cog, resolve
from diagnosis.errors import InputError
from diagnosis.territory import CogTables, normalize_name, resolve_territory


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
    with pytest.raises(InputError, match=r"ambiguous.*30288.*44184"):
        resolve_territory("Saint-Nazaire", tiny_cog)


def test_unknown_name_suggests_closest(tiny_cog):
    with pytest.raises(InputError, match=r"closest names: .*Pontchâteau \(44\)"):
        resolve_territory("Pontchatau", tiny_cog)


@pytest.mark.parametrize("bad", ["", "99", "99999", "123456789", "1234"])
def test_bad_codes_raise_input_error(tiny_cog, bad):
    with pytest.raises(InputError, match="territory="):
        resolve_territory(bad, tiny_cog)


def test_shipped_cog_resolves_any_french_territory():
    cog = load_cog()
    assert (cog.communes["kind"] == "commune").sum() == 34969
    assert len(cog.epci) == 1255
    t = resolve("200000438")
    assert len(t.communes) == 9 and t.departements == ("44",)
    assert len(resolve("44").communes) == 207
    assert resolve("2A004").name == "Ajaccio"
    assert resolve("Sainte-Marie (974)").code == "97418"
    assert resolve("13201").code == "13055"  # arrondissement -> Marseille
    assert resolve("Nantes Métropole").kind == "epci"
