from __future__ import annotations

import json
import subprocess
import sys

import pytest

from diagnosis.__main__ import main
from tests.conftest import REPO


def _json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_summary_demo_epci(capsys):
    d = _json(capsys, "summary", "--territory", "200000438", "--format", "json")
    assert d["territory"]["code"] == "200000438"
    assert d["territory"]["name"].startswith("CC du Pays de Pontchâteau")
    assert d["n_communes"] == 9 and d["births_2024"] == 353
    assert d["facilities"]["mam"]["count"] == 1
    assert 0 <= d["births_within_threshold"]["mam"]["share"] <= 1
    assert {s["key"] for s in d["sources"]} >= {"insee_comparateur", "cog2026"}
    assert all(s["vintage"] for s in d["sources"])


def test_summary_departement_by_name(capsys):
    d = _json(capsys, "summary", "--territory", "loire-atlantique", "--format", "json")
    assert d["n_communes"] == 207 and d["births_2024"] == 14582
    assert d["facilities"]["maternite"]["count"] == 6


def test_summary_table_is_french(capsys):
    assert main(["summary", "--territory", "200000438"]) == 0
    out = capsys.readouterr().out
    assert "Naissances 2024 : 353" in out and "Sources" in out and "estimation" in out


@pytest.mark.parametrize("query, expected", [
    ("Pontchatau", "Pontchâteau (44)"),
    ("13055", "données ne sont pas"),
])
def test_summary_bad_territory_exits_2_with_message(capsys, query, expected):
    assert main(["summary", "--territory", query]) == 2
    assert expected in capsys.readouterr().err


def test_python_m_diagnosis_runs():
    out = subprocess.run([sys.executable, "-m", "diagnosis", "summary", "--territory", "44129",
                          "--format", "json"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out)["n_communes"] == 1
