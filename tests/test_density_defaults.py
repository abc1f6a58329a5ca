"""Defaults by density everywhere (issue 20, item 5): the CLI and the PDF use the app's rule
(:func:`diagnosis.travel.default_travel_for`: walking 15 min where most people live in
dense communes, the car 20 min elsewhere), say why, and siting stops adding sites.

The dense fixture is a custom territory made by the test from the demo's two densest
communes, Nantes (about 5,000 inhabitants per km²) and Rezé (about 2,800): with three
sites asked, two add births within 15 minutes' walk and the third adds nothing.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from diagnosis.__main__ import main
from diagnosis.travel import default_travel_for


@pytest.fixture
def offline(monkeypatch):
    """No download: the walk graph is not cached, so times are the labelled crow-fly
    walking estimate (the fallback a user without a network gets)."""
    from data_sources import _http

    monkeypatch.setenv("MAILLAGE_OFFLINE", "1")
    _http.reset()
    yield
    _http.reset()


@pytest.fixture
def dense_file(tmp_path):
    path = tmp_path / "centre.txt"
    path.write_text("44109\n44143\n", encoding="utf-8")
    return str(path)


def test_one_rule_user_choices_kept():
    dense = pd.DataFrame({"population_2022": [300_000.0, 40_000.0],
                          "area_km2": [65.0, 14.0]})
    rural = pd.DataFrame({"population_2022": [2_000.0, 800.0], "area_km2": [30.0, 25.0]})
    mode, minutes, why = default_travel_for(dense, car_mode="crow")
    assert (mode, minutes) == ("walk", 15.0) and "denses" in why
    assert default_travel_for(rural, car_mode="crow")[:2] == ("crow", 20.0)
    assert default_travel_for(rural, car_mode="drive")[:2] == ("drive", 20.0)
    # the user's choices are kept; only what was left out is filled in, and said
    assert default_travel_for(dense, mode="drive", max_minutes=12) == ("drive", 12.0, "")
    mode, minutes, why = default_travel_for(dense, mode="drive")
    assert (mode, minutes) == ("drive", 20.0) and why.startswith("Seuil par défaut")
    assert default_travel_for(dense, max_minutes=10)[:2] == ("walk", 10.0)


def test_cli_site_on_dense_fixture_walks_and_stops_adding_sites(offline, dense_file, capsys):
    assert main(["site", "--communes-file", dense_file, "--territory", "Centre dense",
                 "--k", "3", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    p = data["params"]
    assert p["mode"] == "walk" and p["max_minutes"] == 15.0
    assert "denses" in p["travel_reason"]
    status = [s["status"] for s in data["sites"]]
    assert status == ["recommandé", "recommandé", "sans apport"]
    # Nantes' 4,051 births, then Rezé's 508, then nothing
    assert data["summary"]["marginal_births"] == [4051.0, 508.0, 0.0]
    assert data["summary"]["n_selected"] == 2
    assert "n'ajouteraient aucune naissance" in data["summary"]["message"]
    # the table says the same, with the reason of the default
    assert main(["site", "--communes-file", dense_file, "--territory", "Centre dense",
                 "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert "seuil 15 min" in out and "à pied" in out and "selon la densité" in out
    assert "sans apport" in out and "+508" in out
    # peer groups bound by the Maison's capacity, as in the PDF (not the uncapped potential)
    assert "la Maison anime" in out and "capacité" in out.lower()


def test_pdf_on_dense_fixture_walks_and_says_why(offline, dense_file, tmp_path, capsys):
    from pypdf import PdfReader

    out = tmp_path / "centre.pdf"
    assert main(["report", "--communes-file", dense_file, "--territory", "Centre dense",
                 "--out", str(out), "--no-comparison"]) == 0
    text = " ".join(p.extract_text() for p in PdfReader(out).pages)
    text = " ".join(text.split())
    assert "Mode et seuil par défaut, selon la densité du territoire" in text
    assert "seuil par défaut de 15 minutes à pied" in text
    assert "à pied" in text and "20 min" not in text


def test_rural_demo_epci_keeps_the_car(offline, capsys):
    assert main(["access", "--territory", "200000438", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"]["max_minutes"] == 20.0
    assert any("territoire peu dense" in n for n in data["notes"])
