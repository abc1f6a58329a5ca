"""Exports: GeoPackage layers read back, CSV round trip, safe writing, diagnosis file.

Data: the embedded demo (EPCI 200000438, 9 communes) and, for the import ledger, a
three-line CSV written by the test itself (`_user_csv`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest

from diagnosis import exports as ex
from diagnosis.__main__ import main
from diagnosis.errors import InputError
from diagnosis.overview import compute_overview


@pytest.fixture(scope="module")
def overview():
    from data_sources.workspace import load_workspace

    ws = load_workspace("200000438")
    return compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)


@pytest.fixture(scope="module")
def layers(overview):
    return ex.build_export_layers(overview)


def test_layer_names_are_french_and_complete(layers):
    names = list(layers)
    assert names[0] == "communes_indicateurs"
    assert {"structures_pmi", "structures_creches", "structures_mam", "structures_mairies",
            "structures_voisines"} <= set(names)
    assert names[-3:] == ["dictionnaire", "sources", "metadonnees"]
    assert all(n.isascii() and n == n.lower() for n in names)
    assert len(layers["communes_indicateurs"]) == 9
    assert len(layers["structures_mairies"]) == 9 and len(layers["structures_mam"]) == 1
    assert len(layers["structures_pmi"]) == 0  # none known in the demo: still a layer


def test_dictionary_documents_every_column_with_unit_source_and_year(layers):
    d = layers["dictionnaire"]
    assert list(d.columns) == ["couche", "colonne", "code", "description", "unite", "source",
                               "annee"]
    documented = set(zip(d["couche"], d["code"], strict=True))
    for name, df in layers.items():
        for col in df.columns:
            assert (name, col) in documented, (name, col)
    row = d.set_index(["couche", "code"])
    dist = row.loc[("communes_indicateurs", "dist_m_pmi")]
    assert dist["unite"] == "m" and "vol d'oiseau" in dist["description"]
    assert dist["colonne"] == "Centres de PMI : distance à la plus proche (m)"
    births = row.loc[("communes_indicateurs", "births_2024")]
    assert (births["colonne"], births["unite"], births["annee"]) == \
        ("Naissances 2024", "naissances", "2024")
    assert "état civil" in births["source"]
    assert "Filosofi" in row.loc[("communes_indicateurs", "poverty_rate_2021"), "source"]
    est = row.loc[("communes_indicateurs", "under3_estimate")]
    assert "ESTIMATION" in est["description"]
    # every data column of the communes has a source; computed ones the diagnosis' year
    com = d.loc[d["couche"].eq("communes_indicateurs") & d["code"].ne("geometry")]
    assert com["source"].ne("").all()
    assert row.loc[("communes_indicateurs", "n_mam"), "annee"] == str(dt.date.today().year)
    # labels are unique within a layer (a spreadsheet column is found by its name)
    assert not d.duplicated(["couche", "colonne"]).any()
    com_codes = d.loc[d["couche"].eq("communes_indicateurs")]
    assert (com_codes["colonne"] == com_codes["code"]).sum() == 1  # only « geometry »


def test_geopackage_layers_read_back_in_french(layers, tmp_path):
    path = ex.export_geopackage(layers, tmp_path / "diag.gpkg")
    listed = {name: gtype for name, gtype in pyogrio.list_layers(path)}
    assert list(listed) == list(layers)
    assert listed["communes_indicateurs"] == "MultiPolygon"
    assert listed["structures_pmi"] == "Point" and listed["structures_mam"] == "Point"
    assert listed["dictionnaire"] is None and listed["metadonnees"] is None
    com = pyogrio.read_dataframe(path, layer="communes_indicateurs")
    assert com.crs.to_epsg() == 4326
    src = layers["communes_indicateurs"]
    assert com["Code INSEE"].tolist() == src["code_insee"].tolist()
    assert com["Naissances 2024"].tolist() == src["births_2024"].tolist()

    def nullable(values):
        return [None if pd.isna(v) else bool(v) for v in values]

    # the demo's directory is partial: « non » is unknown (empty), « oui » a fact
    assert nullable(com["MAM : à portée"]) == nullable(src["within_mam"])
    assert None in nullable(src["within_mam"]) and True in nullable(src["within_mam"])
    # no facility of the type loaded: the distance is empty, never infinite nor 0
    assert com["Sages-femmes : distance à la plus proche (m)"].isna().all()
    assert com["Sages-femmes : à portée"].isna().all()  # unknown, not « non »
    np.testing.assert_array_equal(com["MAM : distance à la plus proche (m)"],
                                  src["dist_m_mam"].round(0))
    dictionary = pyogrio.read_dataframe(path, layer="dictionnaire")
    written = set(dictionary.loc[dictionary["couche"].eq("communes_indicateurs"),
                                 "colonne"]) - {"geometry"}
    assert set(com.columns) - {"geometry"} == written
    mam = pyogrio.read_dataframe(path, layer="structures_mam")
    assert mam["Nom"].tolist() == layers["structures_mam"]["name"].tolist()
    assert mam["Précision de la position"].tolist() == ["commune"]
    meta = pyogrio.read_dataframe(path, layer="metadonnees")
    assert dict(zip(meta["Paramètre"], meta["Valeur"], strict=True))[
        "système de coordonnées"] == "EPSG:4326"


def test_csv_round_trip_for_french_excel(layers, tmp_path):
    from diagnosis.export_columns import french_layer

    files = ex.export_csv_tables(layers, tmp_path / "csv")
    assert [f.name for f in files] == [f"{n}.csv" for n in layers]
    raw = (tmp_path / "csv" / "communes_indicateurs.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    header = raw[3:].split(b"\r\n")[0].decode()
    assert header.split(";")[:3] == ["Code INSEE", "Commune", "Mairie : longitude"]
    assert "Drefféac" in raw.decode("utf-8-sig")
    for name, df in layers.items():
        back = ex.read_csv_table(tmp_path / "csv" / f"{name}.csv")
        expected = ex.csv_frame(df)
        if name != "dictionnaire":
            expected = french_layer(name, expected)
        assert list(back.columns) == list(expected.columns), name
        assert len(back) == len(expected)
        for col in expected.columns:
            a, b = expected[col], back[col]
            if pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a):
                np.testing.assert_allclose(b.to_numpy(dtype=float), a.to_numpy(dtype=float),
                                           rtol=1e-9, err_msg=f"{name}.{col}")
            elif set(a.dropna().unique()) <= {"oui", "non"} and len(a.dropna()):
                assert b.tolist() == a.map({"oui": True, "non": False}).tolist()
            else:
                assert _text(b) == _text(a), f"{name}.{col}"
    mam = ex.read_csv_table(tmp_path / "csv" / "structures_mam.csv")
    assert {"Longitude", "Latitude"} <= set(mam.columns) and mam["Latitude"].between(47, 48).all()


def _text(values: pd.Series) -> list[str]:
    return ["" if pd.isna(v) else str(v) for v in values]


def _csv_rows(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    head = lines[0].split(";")
    return [dict(zip(head, line.split(";"), strict=True)) for line in lines[1:]]


def test_values_are_rounded_to_their_meaning_with_a_decimal_comma(layers, tmp_path):
    ex.export_csv_tables({"communes_indicateurs": layers["communes_indicateurs"]}, tmp_path)
    first = _csv_rows(tmp_path / "communes_indicateurs.csv")[0]
    density = first["Densité 2022 (hab./km²)"]
    assert re.fullmatch(r"\d+,\d", density)  # decimal comma, one decimal
    assert re.fullmatch(r"\d+", first["Naissances 2024"])  # births in units, no « ,0 »
    assert re.fullmatch(r"\d+", first["Familles monoparentales 2022"])
    assert re.fullmatch(r"\d+", first["MAM : distance à la plus proche (m)"])
    assert first["Sages-femmes : distance à la plus proche (m)"] == ""  # unknown stays empty
    # the demo's MAM list is partial: « oui » is a fact, « non » is not known (empty)
    assert first["MAM : à portée"] in {"oui", ""}
    # no sage-femme loaded at all: « à portée » is unknown (empty), never « non »
    assert first["Sages-femmes : à portée"] == ""


def test_analysis_layers_round_minutes_shares_and_families(tmp_path):
    from diagnosis.export_columns import french_layer

    table = pd.DataFrame({"code_insee": ["44129", "44013"], "name": ["=HYPERLINK(1)", "B"],
                          "births": [84.0739007018663, np.nan],
                          "minutes_nearest_pmi": [18.849380290153643, np.inf],
                          "share_births_within": [0.87535411, 0.0],
                          "score": [65.23456, 12.0]})
    out = french_layer("accessibilite_communes", table)
    assert list(out.columns) == ["Code INSEE", "Commune", "Naissances",
                                 "Centres de PMI : temps à la plus proche (min)",
                                 "Part des naissances à portée (%)",
                                 "Score de priorité (naissances pondérées par les besoins)"]
    assert out["Naissances"].tolist()[0] == 84 and pd.isna(out["Naissances"].tolist()[1])
    assert out["Centres de PMI : temps à la plus proche (min)"].tolist()[0] == 18.8
    assert pd.isna(out["Centres de PMI : temps à la plus proche (min)"].iloc[1])
    assert out["Part des naissances à portée (%)"].tolist() == [87.5, 0.0]
    ex.export_csv_tables({"accessibilite_communes": table}, tmp_path)
    rows = _csv_rows(tmp_path / "accessibilite_communes.csv")
    assert rows[0]["Naissances"] == "84" and rows[1]["Naissances"] == ""
    assert rows[0]["Centres de PMI : temps à la plus proche (min)"] == "18,8"
    assert rows[0]["Part des naissances à portée (%)"] == "87,5"
    assert rows[0]["Commune"] == "'=HYPERLINK(1)"  # a formula is neutralised


def test_readme_lists_every_export_layer():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Couches exportées"):]
    section = section[:section.index("\n\n", section.index("`dictionnaire`"))]
    listed = set(re.findall(r"`([a-z0-9_*]+)`", section))
    expected = {"communes_indicateurs", "structures_voisines", *ex.TYPE_LAYERS.values(),
                *ex.OPTIONAL_LAYERS.values(), "dictionnaire", "sources", "metadonnees"}
    assert expected <= listed, expected - listed
    extra = {n for n in listed - expected
             if n != "structures_*" and not n.startswith(tuple(ex.OPTIONAL_LAYERS.values()))}
    assert extra == set(), extra


def test_gpkg_needs_the_extension(layers, tmp_path):
    with pytest.raises(InputError, match=r"\.gpkg"):
        ex.export_geopackage(layers, tmp_path / "diag.shp")


def test_nothing_half_written_when_writing_fails(layers, tmp_path, monkeypatch):
    real = pyogrio.write_dataframe
    calls = []

    def failing(df, path, **kw):
        calls.append(kw["layer"])
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(df, path, **kw)

    monkeypatch.setattr(pyogrio, "write_dataframe", failing)
    target = tmp_path / "diag.gpkg"
    with pytest.raises(InputError, match="writing failed"):
        ex.export_geopackage(layers, target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone too


def test_existing_file_is_replaced_only_when_complete(layers, tmp_path, monkeypatch):
    target = tmp_path / "diag.gpkg"
    target.write_bytes(b"previous version")

    def failing(*a, **kw):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(pyogrio, "write_dataframe", failing)
    with pytest.raises(InputError):
        ex.export_geopackage(layers, target)
    assert target.read_bytes() == b"previous version"


def test_check_writable_messages(tmp_path):
    with pytest.raises(InputError, match=r"--out .*does not exist"):
        ex.check_writable(tmp_path / "missing" / "x.gpkg")
    with pytest.raises(InputError, match="is a folder"):
        ex.check_writable(tmp_path)
    assert ex.check_writable(tmp_path / "ok.gpkg") == tmp_path / "ok.gpkg"
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind


def test_summary_comparison_and_ledger_comparison():
    assert ex.compare_summaries({"a": 1.0, "b": {"c": 2}}, {"a": 1.0, "b": {"c": 2}}) == []
    assert ex.compare_summaries({"a": 1.0}, {"a": 1.5}) == ["a : 1.0 → 1.5"]
    old = {"origin": "demo", "data_files": {"f": "1"}, "sources": [{"key": "k", "vintage": "1"}],
           "imports": [{"file": "/x.csv", "sha256": "a"}]}
    new = json.loads(json.dumps(old))
    assert ex.compare_ledgers(old, new) == []
    new["imports"][0]["sha256"] = "b"
    new["sources"][0]["vintage"] = "2"
    msgs = ex.compare_ledgers(old, new)
    assert any("/x.csv" in m and "modifié" in m for m in msgs)
    assert any("millésime" in m for m in msgs)


# --- Command line -----------------------------------------------------------------------


def _user_csv(path: Path, places: int = 12) -> Path:
    path.write_text(
        "nom;type;code_insee;lat;lon;places\n"
        f"Micro-crèche Les Lutins;micro-crèche;44129;47.4381;-2.0893;{places}\n"
        "LAEP La Passerelle;laep;44129;47.4352;-2.0921;\n", encoding="utf-8")
    return path


def test_cli_export_all_outputs_then_rerun(tmp_path, capsys):
    csv = _user_csv(tmp_path / "mes_structures.csv")
    gpkg, diag = tmp_path / "d.gpkg", tmp_path / "d.json"
    assert main(["export", "--territory", "200000438", "--facilities", str(csv),
                 "--out", str(gpkg), "--csv-dir", str(tmp_path / "csv"),
                 "--diagnosis-file", str(diag)]) == 0
    out = capsys.readouterr().out
    assert "GeoPackage écrit" in out and "Fichier de diagnostic écrit" in out
    names = [n for n, _ in pyogrio.list_layers(gpkg)]
    assert "structures_laep" in names
    assert len(pyogrio.read_dataframe(gpkg, layer="structures_laep")) == 1  # the import
    assert (tmp_path / "csv" / "structures_creches.csv").is_file()

    rec = json.loads(diag.read_text(encoding="utf-8"))
    assert rec["format"] == "maillage-diagnostic" and rec["territory"]["code"] == "200000438"
    assert rec["params"]["threshold_m"] == 5000.0
    imp = rec["ledger"]["imports"][0]
    assert imp["name"] == "mes_structures.csv" and imp["accepted"] == 2
    assert imp["sha256"] == ex.file_sha256(csv)
    assert any(k.endswith("communes_44.parquet") for k in rec["ledger"]["data_files"])
    keys = [s["key"] for s in rec["ledger"]["sources"]]
    assert "user:mes_structures.csv" in keys and "insee_comparateur" in keys
    assert all(s["vintage"] for s in rec["ledger"]["sources"] if not s["key"].startswith("user"))
    assert rec["summary"]["births_2024"] == 353.0

    assert main(["rerun", str(diag), "--strict"]) == 0
    out = capsys.readouterr().out
    assert "Données : identiques" in out and "Résultats : identiques" in out

    _user_csv(csv, places=40)  # the imported file changes after the diagnosis
    assert main(["rerun", str(diag)]) == 0
    captured = capsys.readouterr()
    assert "mes_structures.csv modifié" in captured.err
    assert "places_known" in captured.out  # 12 → 40 places of crèches
    assert main(["rerun", str(diag), "--strict"]) == 1


def test_cli_export_with_analyses_adds_their_layers(tmp_path, capsys):
    gpkg = tmp_path / "d.gpkg"
    assert main(["export", "--territory", "200000438", "--out", str(gpkg),
                 "--uptake-rate", "0.2"]) == 0
    names = [n for n, _ in pyogrio.list_layers(gpkg)]
    for layer in ("accessibilite_communes", "manques_priorites", "sites_recommandes",
                  "partenaires_institutions", "groupes_de_pairs"):
        assert layer in names, layer
    sites = pyogrio.read_dataframe(gpkg, layer="sites_recommandes")
    assert sites.crs.to_epsg() == 4326 and len(sites) >= 1
    prio = pyogrio.read_dataframe(gpkg, layer="manques_priorites")
    assert sorted(prio["Code INSEE"]) == sorted(
        pyogrio.read_dataframe(gpkg, layer="communes_indicateurs")["Code INSEE"])
    d = pyogrio.read_dataframe(gpkg, layer="dictionnaire")
    assert set(names) - {"dictionnaire"} <= set(d["couche"])


def test_cli_rerun_bad_files(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert main(["rerun", str(bad)]) == 2
    assert "illisible (pas du JSON UTF-8)" in capsys.readouterr().err
    bad.write_text(json.dumps({"format": "other"}), encoding="utf-8")
    assert main(["rerun", str(bad)]) == 2
    assert "n'est pas un fichier de diagnostic Maillage" in capsys.readouterr().err
    assert main(["rerun", str(tmp_path / "absent.json")]) == 2


def test_cli_rerun_missing_imported_file(tmp_path, capsys):
    csv = _user_csv(tmp_path / "s.csv")
    diag = tmp_path / "d.json"
    assert main(["export", "--territory", "200000438", "--facilities", str(csv),
                 "--diagnosis-file", str(diag), "--no-analyses"]) == 0
    os.remove(csv)
    assert main(["rerun", str(diag)]) == 2
    assert "introuvable" in capsys.readouterr().err


def test_cli_export_errors_exit_2_and_write_nothing(tmp_path, capsys):
    assert main(["export", "--territory", "200000438"]) == 2
    assert "--out FICHIER.gpkg" in capsys.readouterr().err
    target = tmp_path / "nope" / "d.gpkg"
    assert main(["export", "--territory", "200000438", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and str(target) in err
    assert main(["export", "--territory", "200000438", "--out", str(tmp_path / "d.txt")]) == 2
    assert ".gpkg" in capsys.readouterr().err
    assert main(["export", "--territory", "Pontchatau", "--out",
                 str(tmp_path / "d.gpkg")]) == 2
    assert "Pontchâteau (44)" in capsys.readouterr().err
    assert main(["export", "--territory", "13055", "--out", str(tmp_path / "d.gpkg")]) == 2
    assert "données ne sont pas" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_summary_tables_in_french_with_french_numbers(tmp_path):
    summary = pd.DataFrame({"indicateur": ["births_total", "share_covered_after",
                                           "status_label", "engine_x"],
                            "valeur": [353.0, 87.535411, "optimum prouvé", 2.26]})
    ex.export_csv_tables({"sites_recommandes_synthese": summary}, tmp_path)
    rows = _csv_rows(tmp_path / "sites_recommandes_synthese.csv")
    assert [r["Indicateur"] for r in rows] == ["Naissances du territoire",
                                               "Part des naissances à portée après (%)",
                                               "Statut", "engine_x"]
    # numbers among text are written the French way, not « 353.0 »
    assert [r["Valeur"] for r in rows] == ["353", "87,5", "optimum prouvé", "2,3"]
