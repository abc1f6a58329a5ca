"""INSEE file parsing. Payloads are hand-written in the published format
(';'-separated, decimal comma, 's' for statistical secret); the real shipped files
are read from ../shared/data/ship."""

from __future__ import annotations

import math

import pytest

from data_sources.insee_files import (
    decode_text,
    load_insee_files,
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


def test_load_files_checks_same_communes(tmp_path):
    (tmp_path / "c.csv").write_text(COMP, encoding="utf-8")
    (tmp_path / "d.csv").write_text(DOSS, encoding="utf-8")
    with pytest.raises(InputError, match="different communes"):
        load_insee_files(tmp_path / "c.csv", tmp_path / "d.csv")
    with pytest.raises(InputError, match="file not found"):
        load_insee_files(tmp_path / "nope.csv", tmp_path / "d.csv")


def test_real_loire_atlantique_files():
    la = require_shared("ship/loire-atlantique")
    df = load_insee_files(la / "insee_comparateur_44.csv", la / "insee_dossier_complet_44.csv")
    assert len(df) == 207
    assert df["births_2024"].sum() == 14582
    assert df["population_2022"].sum() == 1473156
    assert df["poverty_rate_2021"].isna().sum() == 97  # secret for 97 small communes
    assert df["median_income_2021"].notna().all()
