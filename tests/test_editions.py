"""INSEE files of another edition: the years printed are those of the data, everywhere.

A 2024-edition comparateur de territoires (census 2021: ``P21_POP``; births 2022:
``NAISD22``; Filosofi 2020: ``MED20``, ``TP6020``), made here in the published layout
(``;``, decimal comma, ``s`` for the statistical secret; columns as in
../shared/data/ship/loire-atlantique/insee_comparateur_44.csv, two years earlier). The
CLI, the PDF, the sources and the export dictionary must say 2022 / 2021 / édition
2024, never the demo's 2024 / 2022 / édition 2025; and no folder of the user's machine
appears in any output.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from pypdf import PdfReader

from data_sources import _http
from diagnosis.__main__ import main

TERRITORY = "Diois=26086,26001,26113"


@pytest.fixture
def edition_2024(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILLAGE_OFFLINE", "1")
    monkeypatch.setenv("MAILLAGE_CACHE_DIR", str(tmp_path / "cache"))
    _http.reset()
    folder = tmp_path / "Mes documents" / "dossier_privé"
    folder.mkdir(parents=True)
    path = folder / "comparateur_26_2024.csv"
    path.write_text("CODGEO;LIBGEO;P21_POP;SUPERF;NAIS1520;NAISD22;MED20;TP6020\n"
                    "26086;Châtillon-en-Diois;755;36,5;31;6;19800;s\n"
                    "26001;Aix-en-Diois;198;12,1;9;2;s;s\n"
                    "26113;Die;4400;58,2;210;38;18900;17,5\n", encoding="cp1252")
    (folder / "structures.csv").write_text(
        "nom;type;code_insee;latitude;longitude\nCrèche de Die;crèche;26113;44.7536;5.3705\n",
        encoding="utf-8")
    yield path, folder
    _http.reset()


def test_cli_summary_prints_the_years_of_the_file(capsys, edition_2024):
    path, folder = edition_2024
    assert main(["summary", "--territory", TERRITORY, "--insee", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Naissances 2022 : 46" in out
    assert "Naissances 2024" not in out and "naissances 2024" not in out
    assert main(["summary", "--territory", TERRITORY, "--insee", str(path),
                 "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["data_years"]["births_2024"] == 2022 and d["data_years"]["population_2022"] == 2021
    src = next(s for s in d["sources"] if s["key"] == "insee_comparateur")
    assert "édition 2024" in src["title"] and "édition 2025" not in src["title"]
    assert "naissances 2022" in src["vintage"] and "population 2021" in src["vintage"]
    assert str(folder) not in json.dumps(d, ensure_ascii=False)


def test_export_dictionary_and_columns_say_2022(tmp_path, edition_2024):
    path, folder = edition_2024
    out = tmp_path / "csv"
    assert main(["export", "--territory", TERRITORY, "--insee", str(path),
                 "--facilities", str(folder / "structures.csv"),
                 "--out", str(tmp_path / "d.gpkg"), "--csv-dir", str(out)]) == 0
    text = (out / "dictionnaire.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    births = next(r for r in rows if r["couche"] == "communes_indicateurs"
                  and r["code"] == "births_2024")
    assert births["colonne"] == "Naissances 2022" and births["annee"] == "2022"
    assert "NAISD22" in births["description"] and "NAISD24" not in text
    pop = next(r for r in rows if r["couche"] == "communes_indicateurs"
               and r["code"] == "population_2022")
    assert pop["colonne"] == "Population 2021" and "P21_POP" in pop["description"]
    header = (out / "communes_indicateurs.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert "Naissances 2022" in header and "Naissances 2024" not in header
    for f in out.iterdir():
        assert str(folder) not in f.read_text(encoding="utf-8-sig"), f.name


def test_pdf_says_habitants_en_2021_and_edition_2024(tmp_path, edition_2024):
    path, folder = edition_2024
    pdf = tmp_path / "r.pdf"
    assert main(["report", "--territory", TERRITORY, "--insee", str(path),
                 "--facilities", str(folder / "structures.csv"),
                 "--out", str(pdf), "--no-comparison"]) == 0
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    flat = " ".join(text.split())
    assert "habitants en 2021" in flat and "habitants en 2022" not in flat
    assert "naissances domiciliées en 2022" in flat
    assert "naissances domiciliées en 2024" not in flat
    assert "édition 2024" in flat and "édition 2025" not in flat
    assert "NAISD22" in flat and "NAISD24" not in flat
    assert "naissances 2024" not in flat.lower() and "2016-2021" not in flat
    assert "les naissances 2022 de la commune" in flat  # the priority ranking
    # the user's files are named, never their folders
    assert "structures.csv" in flat and "comparateur_26_2024.csv" in flat
    assert "Mes documents" not in flat and str(tmp_path) not in flat
    # a custom territory's internal code (a hash) is never printed (issue 24)
    assert "Territoire sur mesure" in flat and "custom" not in flat.lower()
    assert not re.search(r"\bc[0-9a-f]{12}\b", flat)


def test_commune_table_of_the_app_labels_the_years_of_the_file(edition_2024):
    from data_sources.cog import resolve
    from data_sources.workspace import load_workspace
    from diagnosis.overview import commune_table
    from diagnosis.pipeline import DiagnosisParams, diagnose_overview

    path, _folder = edition_2024
    ws = load_workspace(resolve(TERRITORY), insee_files=[str(path)], use_store=False)
    ov = diagnose_overview(ws, DiagnosisParams())
    cols = list(commune_table(ov).columns)
    assert any(c.startswith("Naissances 2022") for c in cols)
    assert any(c.startswith("Population 2021") for c in cols)
    assert not any("2024" in c for c in cols)
    assert ov.summary["under3_estimate_label"].endswith("naissances 2022 (pas un comptage)")
    # the comparison of territories says the same years
    import pandas as pd

    from diagnosis.comparison import comparison_row
    from diagnosis.presentation import comparison_metrics

    df = pd.DataFrame([comparison_row(ov)])
    assert (df["births_year"].iloc[0], df["population_year"].iloc[0]) == (2022, 2021)
    labels = comparison_metrics(df)
    assert labels["births_2024"] == "Naissances 2022"
    assert labels["population_2022"] == "Population 2021"
    # and the map of the territory
    from diagnosis.maps import build_overview_map

    html = build_overview_map(ov, tiles=None).get_root().render()
    assert "Naissances 2022" in html and "Population 2021" in html
    assert "Naissances 2024" not in html and "Population 2022" not in html


def test_a_merged_commune_missing_a_part_is_said_in_the_cli_and_json(tmp_path, capsys,
                                                                      monkeypatch):
    # a 2024-edition extract (before Saint-Denis absorbed Pierrefitte-sur-Seine on
    # 1 January 2025) whose Pierrefitte row has no births
    monkeypatch.setenv("MAILLAGE_OFFLINE", "1")
    f = tmp_path / "comparateur_93_2024.csv"
    f.write_text("CODGEO;P21_POP;NAISD22\n93001;87000;1450\n93066;113000;2000\n"
                 "93059;30500;\n", encoding="utf-8")
    args = ["summary", "--territory", "Plaine=93066,93001", "--insee", str(f)]
    assert main(args) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Naissances 2022 : 3 450" in out  # 1,450 + 2,000: Saint-Denis is not blanked
    assert "Commune 93066 : somme des seules parties connues" in out
    assert "Pierrefitte-sur-Seine (93059)" in out
    assert main([*args, "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["births_2024"] == 3450
    assert list(d["communes_partial"]) == ["93066"]
