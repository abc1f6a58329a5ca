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
                 "--out", str(pdf), "--no-comparison"]) == 0
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    flat = " ".join(text.split())
    assert "habitants en 2021" in flat and "habitants en 2022" not in flat
    assert "naissances domiciliées en 2022" in flat
    assert "naissances domiciliées en 2024" not in flat
    assert "édition 2024" in flat and "édition 2025" not in flat
    assert "NAISD22" in flat and "NAISD24" not in flat
    assert "Mes documents" not in flat and str(tmp_path) not in flat
