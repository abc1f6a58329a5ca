"""INSEE file parsing. Payloads are hand-written in the published format
(';'-separated, decimal comma, 's' for statistical secret); the real shipped files
are read from ../shared/data/ship."""

from __future__ import annotations

import math

import pytest

from data_sources.insee_files import (
    decode_text,
    parse_comparateur,
    parse_dossier_complet,
)
from diagnosis.errors import InputError
from tests.conftest import require_shared

COMP = (
    "CODGEO;P22_POP;SUPERF;NAISD24;NAIS1621;MED21;TP6021;OTHER\n"
    "44001;2052;61.76;23;130;20750;13,0;x\n"
    "44002;4121;14.58;29;315;24830;s;y\n"
)
DOSS = "CODGEO;C22_FAMMONO;C22_COUPAENF;C22_MENFAM;P22_POP0014\n44001;97.5;272.9;587.2;456.1\n"


def test_secret_stays_missing_and_decimal_comma_is_read():
    df = parse_comparateur(COMP)
    assert df["code_insee"].tolist() == ["44001", "44002"]
    assert df["poverty_rate_2021"].iloc[0] == 13.0
    assert math.isnan(df["poverty_rate_2021"].iloc[1])
    assert df["births_2024"].sum() == 52


def test_missing_columns_are_named():
    with pytest.raises(InputError, match=r"\['MED21', 'TP6021'\]"):
        parse_comparateur("CODGEO;P22_POP;SUPERF;NAISD24;NAIS1621\n44001;1;1;1;1\n", file="f.csv")


def test_not_an_insee_file_and_empty_file():
    with pytest.raises(InputError, match="no CODGEO"):
        parse_dossier_complet("a;b\n1;2\n", file="x.csv")
    with pytest.raises(InputError, match="empty"):
        parse_dossier_complet("  \n", file="x.csv")


def test_non_numeric_cell_names_row_and_column():
    bad = COMP.replace("20750", "vingt")
    with pytest.raises(InputError, match=r"row 2, column 'MED21' holds 'vingt'"):
        parse_comparateur(bad, file="c.csv")


def test_cp1252_file_is_decoded():
    raw = "CODGEO;NOM\n44001;Abbaretz é\n".encode("cp1252")
    assert "é" in decode_text(raw, file="f.csv")


def test_real_loire_atlantique_files():
    la = require_shared("ship/loire-atlantique")
    comp = parse_comparateur(decode_text((la / "insee_comparateur_44.csv").read_bytes(),
                                         file="comparateur"))
    doss = parse_dossier_complet(decode_text(
        (la / "insee_dossier_complet_44.csv").read_bytes(), file="dossier"))
    assert set(comp["code_insee"]) == set(doss["code_insee"])  # as the demo build joins them
    df = comp.merge(doss, on="code_insee", validate="one_to_one")
    assert len(df) == 207
    assert df["births_2024"].sum() == 14582
    assert df["population_2022"].sum() == 1473156
    assert df["poverty_rate_2021"].isna().sum() == 97  # secret for 97 small communes
    assert df["median_income_2021"].notna().all()


# --- read_insee_files: files from the user, any edition, a non-44 territory -------------
# Files are made here for the Drôme (26) with the real column names of the INSEE
# comparateur de territoires (header of ship/loire-atlantique/insee_comparateur_44.csv,
# 2025 edition) and of the dossier complet; numbers are plausible, not INSEE's.
# P22_POP0002 (population aged 0-2) is a column of the census population bases
# (seen in public code reading them, e.g. IRIS bases "P21_POP0002").

import pandas as pd  # noqa: E402

from data_sources.cog import resolve  # noqa: E402
from data_sources.insee_files import looks_like_insee_file, read_insee_files  # noqa: E402
from diagnosis.needs import compute_needs  # noqa: E402

VALENCE_ROMANS = "200068781"  # Valence Romans Agglo (26)
COMP_26 = (
    "CODGEO;P22_POP;P16_POP;SUPERF;NAIS1621;DECE1621;P22_MEN;NAISD24;DECESD24;"
    "NBMENFISC21;PIMP21;MED21;TP6021\n"
    "26362;64726;62477;36,69;5210;3380;31850,2;702;610;30012;52,0;19960;24,0\n"
    "26281;33467;33160;33,1;2504;2050;15400,5;330;350;15201;48,0;19480;21,0\n"
    "26058;20138;19939;20,58;1285;1200;9002,1;190;215;9133;56,0;22910;11,0\n"
    "26198;40142;39404;46,44;2740;2500;18700,1;365;400;18500;45,0;19010;22,0\n"
    "26310;158;150;7,09;12;10;100,3;2;3;102;s;s;s\n"
)
DOSS_26 = (
    "CODGEO;P22_POP;P22_POP0014;P22_POP0002;C22_MENFAM;C22_COUPAENF;C22_FAMMONO\n"
    "26362;64800;11200,5;2010,2;15020,1;5120,3;3150,7\n"
    "26281;33467;6100,2;1010,4;8650,9;3020,2;1510,1\n"
    "26058;20138;3500,1;590,9;5610,4;2105,6;780,2\n"
)


def _territory():
    return resolve(VALENCE_ROMANS).communes


def test_comparateur_alone_for_a_drome_epci():
    imp = read_insee_files([("comparateur_26.csv", COMP_26.encode())],
                           territory_codes=_territory())
    df = imp.communes.set_index("code_insee")
    assert len(df) == len(_territory()) == 54
    assert df.loc["26362", "births_2024"] == 702 and df.loc["26362", "births_2024_year"] == 2024
    assert df.loc["26362", "area_km2"] == 36.69  # decimal comma
    assert df.loc["26281", "poverty_rate_2021"] == 21.0
    assert df.loc["26310", ["median_income_2021", "poverty_rate_2021"]].isna().all()  # 's'
    assert df.loc["26310", "births_2024"] == 2
    assert imp.years["population_2022"] == 2022 and imp.years["median_income_2021"] == 2021
    assert imp.rows_outside == 1  # Montélimar is not in the EPCI
    assert any("1 ligne(s) de communes hors du territoire" in n for n in imp.notices)
    # a comparateur has no families: missing, listed, never 0
    assert "familles monoparentales" in imp.missing_indicators
    assert df["single_parent_families_2022"].isna().all()
    assert df["under3_census"].isna().all()
    # communes not in the file stay unknown (NaN), and are named
    assert len(imp.communes_missing) == 54 - 4 and math.isnan(df.loc["26057", "births_2024"])
    # the needs run on it; single-parent share stays unknown
    needs = compute_needs(imp.communes)
    assert needs["single_parent_share_2022"].isna().all()
    assert needs.set_index("code_insee").loc["26362", "under3_estimate"] == 3 * 702


def test_both_files_fill_families_and_say_which_value_wins():
    comp = ("comparateur_26.csv", COMP_26.encode())
    doss = ("dossier_complet_26.csv", DOSS_26.encode())
    imp = read_insee_files([comp, doss], territory_codes=_territory())
    df = imp.communes.set_index("code_insee")
    assert df.loc["26362", "single_parent_families_2022"] == 3150.7
    assert df.loc["26362", "single_parent_families_2022_year"] == 2022
    assert df.loc["26362", "population_2022"] == 64726  # same year: the first file wins
    note = next(n for n in imp.notices if n.startswith("population municipale"))
    assert "1 commune(s)" in note and "Valence : 64726 contre 64800" in note
    assert "comparateur_26.csv l'emporte" in note and "premier fichier" in note
    assert df.loc["26362", "under3_census"] == 2010.2
    assert df.loc["26362", "under3_census_year"] == 2022
    assert "familles monoparentales" not in imp.missing_indicators
    kinds = " ".join(imp.files)
    assert "comparateur de territoires" in kinds and "dossier complet" in kinds
    # the other order: the dossier complet wins
    rev = read_insee_files([doss, comp], territory_codes=_territory()).communes
    assert rev.set_index("code_insee").loc["26362", "population_2022"] == 64800


def test_a_newer_edition_wins_and_carries_its_year():
    newer = ("CODGEO,P23_POP,NAISD25,MED22,TP6022\n"
             '26362,65010,690,"20 410","23,5"\n'
             "26281,33600,,20010,20.9\n").encode("cp1252")
    comp = ("comparateur_26.csv", COMP_26.encode())
    imp = read_insee_files([comp, ("comparateur_2026.csv", newer)],
                           territory_codes=_territory())
    df = imp.communes.set_index("code_insee")
    assert df.loc["26362", "population_2022"] == 65010
    assert df.loc["26362", "population_2022_year"] == 2023
    assert df.loc["26362", "median_income_2021"] == 20410  # thousands with a space
    assert df.loc["26362", "poverty_rate_2021"] == 23.5
    assert imp.years["births_2024"] == 2025
    # 26281 has no births in the newer file: it keeps the older one, with its year
    assert df.loc["26281", "births_2024"] == 330 and df.loc["26281", "births_2024_year"] == 2024
    assert df.loc["26362", "births_2024_year"] == 2025
    note = next(n for n in imp.notices if n.startswith("population municipale"))
    assert "plus récent (2023 contre 2022)" in note


def test_rows_of_merged_former_communes_go_to_the_current_commune():
    # an edition older than the merger of Châtillon-en-Diois (26086) with 26109, 26354
    old = ("CODGEO;P19_POP;NAISD20;MED19;TP6019\n"
           "26086;570;4;20100;s\n26109;75;1;19000;s\n26354;110;0;18800;s\n")
    diois = resolve("26086").communes + resolve("26001").communes
    imp = read_insee_files([("ancien.csv", old.encode())], territory_codes=diois)
    df = imp.communes.set_index("code_insee")
    assert df.loc["26086", "population_2022"] == 570 + 75 + 110
    assert df.loc["26086", "population_2022_year"] == 2019
    assert df.loc["26086", "births_2024"] == 5
    assert math.isnan(df.loc["26086", "median_income_2021"])  # medians do not add up
    note = next(n for n in imp.notices if "regroupé" in n)
    assert "Châtillon-en-Diois (26086)" in note and "26109" in note and "26354" in note


def test_a_file_of_another_departement_is_refused_with_its_departements():
    la = "CODGEO;P22_POP;NAISD24\n44129;10818;120\n44161;3700;40\n"
    with pytest.raises(InputError, match=r"la\.csv : aucune commune du territoire.*44.*26"):
        read_insee_files([("la.csv", la.encode())], territory_codes=_territory())


def test_bad_files_are_named_with_line_and_column():
    t = _territory()
    with pytest.raises(InputError, match="aucune colonne INSEE reconnue"):
        read_insee_files([("f.csv", b"nom;type;adresse\nA;eaje;rue\n")], territory_codes=t)
    with pytest.raises(InputError, match="pas de colonne CODGEO"):
        read_insee_files([("f.csv", b"X;P22_POP\n26362;1\n")], territory_codes=t)
    bad = COMP_26.replace("19480", "19 4B0")
    with pytest.raises(InputError, match=r"c\.csv : ligne 3, colonne 'MED21' : '19 4B0'"):
        read_insee_files([("c.csv", bad.encode())], territory_codes=t)
    dup = COMP_26 + COMP_26.splitlines()[1] + "\n"
    with pytest.raises(InputError, match=r"'26362' apparaît deux fois \(lignes 2 et 7\)"):
        read_insee_files([("c.csv", dup.encode())], territory_codes=t)
    with pytest.raises(InputError, match="vide"):
        read_insee_files([("c.csv", b"  \n")], territory_codes=t)
    with pytest.raises(InputError, match="introuvable"):
        read_insee_files(["/nonexistent/x.csv"], territory_codes=t)


def test_title_lines_above_the_header_and_total_rows_are_skipped():
    text = ("Comparateur de territoires\nSource : Insee\n\n" + COMP_26
            + "26,Drôme,s\n").replace("26,Drôme,s", "26;516762;;;;;;5100;;;;;")
    imp = read_insee_files([("c.csv", text.encode("cp1252"))], territory_codes=_territory())
    assert imp.communes.set_index("code_insee").loc["26362", "births_2024"] == 702
    assert any("ne sont pas des communes" in n for n in imp.notices)


def test_looks_like_insee_file_tells_facility_lists_apart():
    assert looks_like_insee_file(COMP_26.splitlines()[0].split(";"))
    assert looks_like_insee_file(["P22_POP", "NAISD24", "MED21"])
    assert not looks_like_insee_file(["nom", "type", "adresse", "code_insee", "capacite"])
    assert not looks_like_insee_file(["CODGEO", "nom"])


def test_real_loire_atlantique_files_through_read_insee_files():
    la = require_shared("ship/loire-atlantique")
    epci = resolve("200000438")
    imp = read_insee_files([la / "insee_comparateur_44.csv", la / "insee_dossier_complet_44.csv"],
                           territory_codes=epci.communes)
    df = imp.communes
    assert len(df) == 9 and df["births_2024"].sum() == 353
    assert imp.rows_outside == 2 * (207 - 9)
    assert df["single_parent_families_2022"].notna().all()
    whole = read_insee_files([la / "insee_comparateur_44.csv"],
                             territory_codes=resolve("44").communes).communes
    old = parse_comparateur(decode_text((la / "insee_comparateur_44.csv").read_bytes(),
                                        file="comparateur"))
    merged = whole.merge(old, on="code_insee", suffixes=("", "_old"))
    assert len(merged) == 207
    pd.testing.assert_series_equal(merged["births_2024"], merged["births_2024_old"],
                                   check_names=False)
    assert whole["poverty_rate_2021"].isna().sum() == 97


def test_line_numbers_count_blank_lines_and_short_rows_are_missing():
    text = COMP_26.replace("\n26281;", "\n\n26281;").replace("19480", "x")
    with pytest.raises(InputError, match=r"ligne 4, colonne 'MED21' : 'x'"):
        read_insee_files([("c.csv", text.encode())], territory_codes=_territory())
    short = "CODGEO;P22_POP;NAISD24\n26362;64726\n26281;33467;330\n"
    df = read_insee_files([("s.csv", short.encode())], territory_codes=_territory()).communes
    df = df.set_index("code_insee")
    assert math.isnan(df.loc["26362", "births_2024"]) and df.loc["26281", "births_2024"] == 330


def test_an_insee_file_given_as_facilities_is_sent_to_insee():
    from data_sources.insee_files import check_not_insee_file

    with pytest.raises(InputError, match=r"comparateur_26\.csv est un fichier INSEE.*--insee"):
        check_not_insee_file(COMP_26.splitlines()[0].split(";"), file_name="comparateur_26.csv")
    check_not_insee_file(["nom", "type", "adresse", "commune"], file_name="lieux.csv")


# --- a commune merged on 1 January 2025: Saint-Denis (93066) absorbed Pierrefitte-sur-
# Seine (93059). INSEE files come in two forms (comparateur de territoires layout, as
# in ship/loire-atlantique/insee_comparateur_44.csv): the edition after the merger holds
# the merged totals on 93066 and an empty or partial row for 93059; an edition before
# it holds each part on its own row. Figures are made up, of the right size.
PLAINE = ("93001", "93066")  # Aubervilliers, Saint-Denis


def test_merged_totals_on_the_new_code_are_used_and_the_empty_former_row_ignored():
    merged = ("CODGEO;LIBGEO;P22_POP;NAISD24;MED21;TP6021\n"
              "93001;Aubervilliers;88000;1500;15000;37\n"
              "93066;Saint-Denis;150000;2400;16500;31,5\n"
              "93059;Pierrefitte-sur-Seine;;;;\n")
    imp = read_insee_files([("comparateur_93.csv", merged.encode())], territory_codes=PLAINE)
    df = imp.communes.set_index("code_insee")
    # the empty part no longer blanks the town of 150,000
    assert df.loc["93066", "births_2024"] == 2400
    assert df.loc["93066", "population_2022"] == 150000
    assert df.loc["93066", "poverty_rate_2021"] == 31.5  # the file gives it: not "secret"
    assert imp.communes_partial == {} and (df["insee_partial"] == "").all()
    assert any("déjà les chiffres" in n and "93059" in n for n in imp.notices)


def test_a_former_row_with_a_few_indicators_is_not_added_to_the_merged_total():
    merged = ("CODGEO;P22_POP;NAISD24;MED21\n93001;88000;1500;15000\n"
              "93066;150000;2400;16500\n93059;;410;\n")
    imp = read_insee_files([("c.csv", merged.encode())], territory_codes=PLAINE)
    assert imp.communes.set_index("code_insee").loc["93066", "births_2024"] == 2400


def test_parts_are_added_and_a_missing_part_is_said_not_blanking_the_whole():
    # a 2024-edition file, before the merger: one row per part, Pierrefitte's births
    # missing (an extract cut short)
    parts = ("CODGEO;P21_POP;NAISD22;MED21\n93001;87000;1450;14800\n"
             "93066;113000;2000;15500\n93059;30500;;17000\n")
    imp = read_insee_files([("comparateur_2024.csv", parts.encode())], territory_codes=PLAINE)
    df = imp.communes.set_index("code_insee")
    assert df.loc["93066", "population_2022"] == 113000 + 30500
    assert df.loc["93066", "births_2024"] == 2000  # the known part, not NaN
    assert df.loc["93066", "births_2024_year"] == 2022
    assert imp.communes_partial == {"93066": {"births_2024": ("93059",)}}
    assert "Pierrefitte-sur-Seine (93059)" in df.loc["93066", "insee_partial"]
    assert math.isnan(df.loc["93066", "median_income_2021"])  # medians do not add up
    assert df.loc["93001", "insee_partial"] == ""
    note = next(n for n in imp.notices if "regroupé" in n)
    assert "somme des seules parties connues" in note and "93059" in note
    assert imp.editions == (2024,)


def test_a_part_missing_in_one_file_but_given_by_another_is_complete():
    parts = "CODGEO;P21_POP;NAISD22\n93001;87000;1450\n93066;113000;2000\n93059;30500;\n"
    other = "CODGEO;NAISD22\n93001;1450\n93066;2000\n93059;420\n"
    imp = read_insee_files([("a.csv", parts.encode()), ("b.csv", other.encode())],
                           territory_codes=PLAINE)
    df = imp.communes.set_index("code_insee")
    # a.csv wins (given first) but its value is partial; b.csv's complete sum is not
    # taken over it: the partial flag stays with the value used
    assert df.loc["93066", "births_2024"] == 2000
    assert imp.communes_partial["93066"] == {"births_2024": ("93059",)}
