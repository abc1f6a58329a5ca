"""Import of a user's own facility file (data_sources.user_file).

Payloads: the hand-made files in tests/data/user_file/ (see its README.md for how each
was written and what each line exercises), small CSV bytes written inline below, and a
GeoPackage written at test time from a hand-made GeoDataFrame. The COG table and the
town halls are small hand-made tables so every expected value can be checked by hand.
Real files (../shared/data/test-only/loire-atlantique) are only read, never copied.
"""

from __future__ import annotations

import doctest
import io
import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
from shapely.geometry import Point, box

from data_sources import user_file
from data_sources.user_file import (
    ImportReport,
    detect_columns,
    find_duplicates,
    insee_fallback_columns,
    load_facility_file,
    locate_points,
    map_type,
    read_table,
)
from diagnosis.errors import InputError
from diagnosis.schema import FACILITY_COLUMNS, validate_facilities
from tests.conftest import REPO, require_shared

DATA = REPO / "tests" / "data" / "user_file"
TEST_ONLY = "test-only/loire-atlantique"

#: Hand-made COG extract: 44040 (Chéméré) merged into 44005 (Chaumes-en-Retz).
COG = pd.DataFrame({
    "code": ["44129", "44109", "44005", "44040"],
    "name": ["Pontchâteau", "Nantes", "Chaumes-en-Retz", "Chéméré"],
    "kind": ["commune", "commune", "commune", "deleguee"],
    "parent_code": ["", "", "", "44005"],
    "former_codes": ["", "", "44040", ""],
    "postcodes": ["44160", "44000 44100 44200 44300", "44320 44680", ""],
})
PONTCHATEAU_HALL = (-2.0873, 47.4380)
NANTES_HALL = (-1.5534, 47.2186)
HALLS = gpd.GeoDataFrame({"code_insee": ["44129", "44109"]},
                         geometry=[Point(PONTCHATEAU_HALL), Point(NANTES_HALL)], crs="EPSG:4326")


def load(name: str, **kwargs):
    kwargs.setdefault("cog", COG)
    kwargs.setdefault("town_halls", HALLS)
    return load_facility_file(DATA / name, **kwargs)


def rejected_reason(report: ImportReport, row: int) -> str:
    hits = report.rejected.loc[report.rejected["row"] == row, "reason"]
    assert len(hits) == 1, f"row {row} is not rejected: {report.rejected}"
    return str(hits.iloc[0])


def xy(facilities: gpd.GeoDataFrame, name: str) -> tuple[float, float]:
    point = facilities.loc[facilities["name"] == name].geometry.iloc[0]
    return point.x, point.y


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(pyproj.Geod(ellps="WGS84").inv(a[0], a[1], b[0], b[1])[2])


# --------------------------------------------------------------------------- one row per behaviour


def test_mixed_file_every_row_is_accounted_for():
    res = load("mixed.csv", source_date="2025-01")
    rep, fac = res.report, res.facilities
    assert (rep.rows_read, rep.accepted, len(rep.rejected)) == (11, 7, 4)
    assert rep.rows_read == rep.accepted + len(rep.rejected)
    assert rep.summary_fr() == "11 lignes lues, 7 acceptées, 4 rejetées, 1 doublon signalé"
    assert rep.encoding == "UTF-8" and rep.crs_detected == "EPSG:4326"
    assert list(fac.columns) == list(FACILITY_COLUMNS)
    assert_geodataframe_valid(fac)
    # rejected rows, with their line numbers as seen in a text editor (header = line 1)
    assert rep.rejected["row"].tolist() == [4, 6, 7, 12]
    assert "hors de France" in rejected_reason(rep, 4) and "40.4168" in rejected_reason(rep, 4)
    assert rejected_reason(rep, 6).startswith("ni coordonnées ni code commune")
    assert "'garage'" in rejected_reason(rep, 7)
    assert "44999" in rejected_reason(rep, 12)
    assert rep.rejected.loc[rep.rejected["row"] == 7, "name"].item() == "Garage Martin"


def test_mixed_file_types_ids_and_sources():
    fac = load("mixed.csv", source_date="2025-01").facilities
    by_name = fac.set_index("name")
    assert by_name.loc["Multi-accueil Les Lutins", ["type", "subtype"]].tolist() == [
        "eaje", "multi_accueil"]
    assert by_name.loc["Micro-crèche Pirouette", "subtype"] == "micro_creche"
    assert by_name.loc["RPE du Pays", "type"] == "rpe"
    assert by_name.loc["PMI de Pontchâteau", "type"] == "pmi"
    assert by_name.loc["Centre social Le Lien", "type"] == "centre_social"
    assert by_name.loc["Maison des 1000 premiers jours", "type"] == "maison_1000_jours"
    assert by_name.loc["Multi-accueil Les Lutins", "facility_id"] == "user:mixed:A1"
    # the same file id on another row gets a distinct facility_id
    assert by_name.loc["PMI de Pontchâteau", "facility_id"] == "user:mixed:A1:ligne9"
    # no id: the row number is the id
    assert by_name.loc["Centre social Le Lien", "facility_id"] == "user:mixed:10"
    assert by_name.loc["Centre social Le Lien", "source_id"] == "10"
    assert set(fac["source"]) == {"user:mixed.csv"} and set(fac["source_date"]) == {"2025-01"}
    assert by_name.loc["Multi-accueil Les Lutins", "capacity"] == 20.0
    assert math.isnan(by_name.loc["RPE du Pays", "capacity"])


def test_swapped_lat_lon_is_fixed_and_reported():
    res = load("mixed.csv")
    assert xy(res.facilities, "Micro-crèche Pirouette") == (-2.0950, 47.4150)
    assert "lat/lon inversées détectées ligne 3 : corrigées" in res.report.warnings
    notes = res.report.notes.set_index("row")["note"]
    assert "inversées" in notes[3]


def test_rows_without_coordinates_go_to_their_town_hall():
    res = load("mixed.csv")
    fac, rep = res.facilities, res.report
    assert xy(fac, "RPE du Pays") == PONTCHATEAU_HALL
    # line 10: no code, postcode 44000 read in the address "12 rue Crébillon, 44000 Nantes"
    assert xy(fac, "Centre social Le Lien") == NANTES_HALL
    assert fac.set_index("name").loc["Centre social Le Lien", ["postcode", "code_insee"]].tolist() \
        == ["44000", "44109"]
    at_hall = fac.loc[fac["position_precision"] == "commune", "name"].tolist()
    assert at_hall == ["RPE du Pays", "Centre social Le Lien"]
    assert set(fac.loc[~fac["name"].isin(at_hall), "position_precision"]) == {"address"}
    assert "2 lignes placées à la mairie de leur commune (position approximative)" in rep.warnings


def test_commune_codes_from_postcode_and_former_commune():
    res = load("mixed.csv")
    by_name = res.facilities.set_index("name")
    assert by_name.loc["PMI de Pontchâteau", "code_insee"] == "44129"  # postcode 44160
    assert by_name.loc["Maison des 1000 premiers jours", "code_insee"] == "44005"  # was 44040
    assert any("44040 → 44005" in w for w in res.report.warnings)


def test_without_town_halls_rows_without_coordinates_are_rejected_with_reason():
    rep = load_facility_file(DATA / "mixed.csv", cog=COG).report
    assert rep.rejected["row"].tolist() == [4, 5, 6, 7, 10, 12]
    assert "aucune liste de mairies" in rejected_reason(rep, 5)


def test_duplicates_are_flagged_not_removed():
    res = load("mixed.csv")
    dup = res.report.duplicates
    assert dup[["row", "duplicate_of_row"]].values.tolist() == [[8, 2]]
    # 0.0001° of latitude ≈ 11 m
    assert "même nom" in dup["reason"].item() and "11 m" in dup["reason"].item()
    assert "Multi-accueil les lutins" in res.facilities["name"].tolist()
    frame = res.report.to_frame()
    assert list(frame.columns) == ["ligne", "nom", "statut", "motif"]
    assert frame.loc[frame["ligne"] == 8, "statut"].item() == "doublon signalé"
    assert frame["ligne"].is_monotonic_increasing
    assert set(frame["statut"]) == {"rejetée", "doublon signalé", "acceptée"}


def test_duplicates_by_source_id_and_distance_threshold():
    fac = gpd.GeoDataFrame(
        {"type": ["eaje", "eaje", "eaje", "pmi"], "name": ["Les Lutins", "LES LUTINS !", "B", "C"]},
        geometry=[Point(-1.5, 47.2), Point(-1.5, 47.2009), Point(0, 47), Point(1, 47)],
        crs="EPSG:4326")
    # 0.0009° of latitude ≈ 100 m: a duplicate at 150 m, not at 50 m
    assert find_duplicates(fac, distance_m=50).empty
    assert find_duplicates(fac, distance_m=150)["row"].tolist() == [2]
    by_id = find_duplicates(fac, rows=[2, 3, 4, 5], file_ids=["x", "", "x", "x"], distance_m=50)
    assert by_id[["row", "duplicate_of_row"]].values.tolist() == [[4, 2]]  # pmi 'x' differs
    assert "'x'" in by_id["reason"].item()


# --------------------------------------------------------------------------- encodings, separators


def test_cp1252_semicolon_decimal_comma():
    res = load("structures_cp1252.csv")
    rep, fac = res.report, res.facilities
    assert rep.encoding == "cp1252"
    assert rep.column_mapping["name"] == "Dénomination"
    assert rep.column_mapping["capacity"] == "Capacité"
    assert fac["name"].tolist()[0] == "Crèche Les Écureuils"
    assert fac["operator"].tolist()[1] == "Association Les Pâquerettes"
    assert fac["capacity"].tolist() == [12.5, 15.0, 8.0]
    assert xy(fac, "Crèche Les Écureuils") == (-2.0906, 47.4127)
    assert fac[["type", "subtype"]].values.tolist() == [
        ["eaje", "creche_familiale"], ["eaje", "halte_garderie"], ["mam", ""]]


def test_utf8_bom_and_tab_separator():
    raw = read_table((DATA / "bom_tab.tsv").read_bytes(), file_name="bom_tab.tsv")
    assert raw.encoding == "UTF-8 (BOM)" and raw.separator == "\t"
    assert list(raw.frame.columns) == ["nom", "type", "code_insee", "latitude", "longitude"]
    fac = load("bom_tab.tsv").facilities
    assert fac[["type", "name"]].values.tolist() == [["laep", "LAEP Les Mouettes"]]


def test_bytes_and_uploaded_file_objects():
    data = (DATA / "structures_cp1252.csv").read_bytes()
    from_bytes = load_facility_file(data, name="upload.csv", cog=COG)
    assert from_bytes.report.file == "upload.csv"
    assert from_bytes.facilities["facility_id"].tolist()[0] == "user:upload:2"
    upload = io.BytesIO(data)
    upload.name = "streamlit.csv"  # like streamlit's UploadedFile: .name and .getvalue()
    assert load_facility_file(upload, cog=COG).report.accepted == 3
    with pytest.raises(InputError, match="name="):
        load_facility_file(data)


def test_malformed_row_is_rejected_with_its_line():
    text = ("nom,type,code_insee,lat,lon\nA,crèche,44190,47.2,-1.5\n"
            "B, la suite,crèche,44209,47.3,-1.6\n")
    rep = load_facility_file(text.encode(), name="f.csv", cog=COG).report
    assert rep.accepted == 1
    assert "6 valeurs pour 5 colonnes" in rejected_reason(rep, 3)


def test_blank_lines_keep_line_numbers():
    text = ("nom;type;code_insee;lat;lon\n\nA;crèche;44190;47.2;-1.5\n;;;;\n"
            "B;garage;44209;47.3;-1.6\n")
    rep = load_facility_file(text.encode(), name="f.csv", cog=COG).report
    assert rep.rows_read == 2
    assert rep.rejected["row"].tolist() == [5]
    assert "1 ligne vide ignorée" in rep.warnings


def test_excel_sep_hint_and_utf16():
    text = "sep=,\nnom,type,code_insee,lat,lon\nA;B,crèche,44129,47.2,-1.5\n"
    raw = read_table(text.encode(), file_name="f.csv")
    assert raw.separator == "," and raw.frame.index.tolist() == [3]
    assert raw.frame["nom"].tolist() == ["A;B"]
    utf16 = "nom\ttype\tcode_insee\nÉcureuils\tcrèche\t44129\n".encode("utf-16")
    raw = read_table(utf16, file_name="export.txt")
    assert raw.encoding == "UTF-16" and raw.frame["nom"].tolist() == ["Écureuils"]


def test_title_line_above_the_header_is_skipped():
    text = "Liste des crèches 2024;;;\nnom;type;code_insee;places\nA;crèche;44129;20 places\n"
    raw = read_table(text.encode(), file_name="f.csv")
    assert list(raw.frame.columns) == ["nom", "type", "code_insee", "places"]
    assert raw.frame.index.tolist() == [3]
    assert raw.warnings == ("ligne 1 avant l'en-tête ignorée(s) (titre)",)


def test_capacity_text_zero_and_unreadable():
    text = ("nom;type;code_insee;lat;lon;places\nA;crèche;44129;47.41;-2.09;20 places\n"
            "B;crèche;44129;47.42;-2.09;0\nC;crèche;44129;47.43;-2.09;non communiqué\n"
            "D;crèche;44129;47.44;-2.09;1 200,5\n")
    res = load_facility_file(text.encode(), name="f.csv", cog=COG)
    cap = res.facilities["capacity"].tolist()
    assert cap[0] == 20.0 and math.isnan(cap[1]) and math.isnan(cap[2]) and cap[3] == 1200.5
    notes = res.report.notes.set_index("row")["note"]
    assert "considérée comme inconnue" in notes[3] and "illisible" in notes[4]


def test_all_rows_rejected_gives_an_empty_schema_table():
    text = "nom;type;code_insee\nA;garage;44129\nB;bowling;44129\n"
    res = load_facility_file(text.encode(), name="f.csv", cog=COG, town_halls=HALLS)
    assert res.facilities.empty and list(res.facilities.columns) == list(FACILITY_COLUMNS)
    assert res.report.summary_fr() == "2 lignes lues, 0 acceptée, 2 rejetées, 0 doublon signalé"


def test_ambiguous_postcode_uses_the_commune_name_or_is_rejected():
    cog = pd.concat([COG, pd.DataFrame({
        "code": ["44130"], "name": ["Prinquiau"], "kind": ["commune"], "parent_code": [""],
        "former_codes": [""], "postcodes": ["44160"]})], ignore_index=True)
    text = ("nom;type;adresse;ville\nA;rpe;1 rue X, 44160 Prinquiau;\nB;rpe;2 rue Y;Pontchâteau\n"
            "C;rpe;3 rue Z, 44160;\n")
    res = load_facility_file(text.encode(), name="f.csv", cog=cog, town_halls=HALLS.assign(
        code_insee=["44129", "44130"]))
    assert res.facilities["code_insee"].tolist() == ["44130"]  # B has no postcode at all
    assert "ni coordonnées ni code commune" in rejected_reason(res.report, 3)
    assert "code postal 44160 ne désigne pas une seule commune" in rejected_reason(
        res.report, 4)


def test_geopackage_with_several_layers(tmp_path):
    path = tmp_path / "two.gpkg"
    for layer, name in (("creches", "Crèche A"), ("autres", "Relais B")):
        gpd.GeoDataFrame({"nom": [name], "type": ["crèche"], "code_insee": ["44109"]},
                         geometry=[Point(-1.55, 47.21)], crs="EPSG:4326").to_file(
            path, layer=layer, driver="GPKG")
    res = load_facility_file(path, cog=COG)
    # every layer is read (issue 11: the second one was silently dropped), and said so
    assert sorted(res.facilities["name"]) == ["Crèche A", "Relais B"]
    assert res.report.rows_read == 2 and res.report.accepted == 2
    assert any("2 couche(s) lue(s) sur 2" in w and "« creches » (1)" in w
               and "« autres » (1)" in w for w in res.report.warnings)


# --------------------------------------------------------------------------- coordinates


def test_lambert93_bpe_extract():
    res = load("bpe_lambert93.csv")
    rep, fac = res.report, res.facilities
    assert rep.crs_detected == "EPSG:2154"
    assert rep.column_mapping == {
        "name": "NOMRS", "code_insee": "DEPCOM", "x": "LAMBERT_X", "y": "LAMBERT_Y",
        "epsg": "EPSG", "type": "TYPEQU", "capacity": "CAPACITE", "id": "SIRET",
        "precision": "QUALITE_XY"}
    lon, lat = xy(fac, "CRECHE ORIGINE")  # Lambert-93 origin: 3°E, 46.5°N
    assert lon == pytest.approx(3.0, abs=1e-9) and lat == pytest.approx(46.5, abs=1e-9)
    assert metres(xy(fac, "CRECHE ORIGINE"), xy(fac, "RELAIS PETITE ENFANCE")) == pytest.approx(
        100, abs=0.1)
    # line 4 has x and y swapped: 200 m east of the origin once fixed
    assert metres(xy(fac, "CRECHE ORIGINE"), xy(fac, "MICRO CRECHE INVERSEE")) == pytest.approx(
        200, abs=0.2)
    assert "lat/lon inversées détectées ligne 4 : corrigées" in rep.warnings
    by_name = fac.set_index("name")
    assert by_name.loc["CRECHE ORIGINE", ["type", "subtype"]].tolist() == ["eaje", ""]
    assert by_name.loc["MICRO CRECHE INVERSEE", "subtype"] == "micro_creche"  # D509
    assert by_name.loc["MAIRIE", "type"] == "mairie"
    # QUALITE_XY: Bonne -> address, Acceptable -> street; no coordinates -> town hall
    assert by_name["position_precision"].to_dict() == {
        "CRECHE ORIGINE": "address", "RELAIS PETITE ENFANCE": "street",
        "MICRO CRECHE INVERSEE": "address", "MAIRIE": "commune"}
    assert by_name.loc["CRECHE ORIGINE", "source_id"] == "11111111111111"
    assert "'A101'" in rejected_reason(rep, 6)


def test_x_y_columns_detect_crs_per_row():
    res = load("x_y_mixed_crs.csv")
    assert res.report.crs_detected in {"EPSG:2154 + EPSG:4326", "EPSG:4326 + EPSG:2154"}
    assert xy(res.facilities, "Crèche B") == (-1.5536, 47.2184)
    lon, lat = xy(res.facilities, "Crèche A")
    assert (round(lon, 9), round(lat, 9)) == (3.0, 46.5)


def test_locate_points_lambert2_and_overseas():
    l2 = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:27572", always_xy=True)
    x, y = l2.transform(-1.5536, 47.2184)
    utm40s = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:2975", always_xy=True)
    ux, uy = utm40s.transform(55.45, -20.88)  # Saint-Denis (La Réunion)
    c1 = np.array([x, 55.45, -20.88, ux, ux, 0.5, np.nan])
    c2 = np.array([y, -20.88, 55.45, uy, uy, 0.5, 47.0])
    lon, lat, crs, swapped = locate_points(c1, c2, ["", "", "", "EPSG:2975", "", "", ""])
    assert (lon[0], lat[0]) == pytest.approx((-1.5536, 47.2184), abs=1e-7)
    assert crs.tolist() == ["EPSG:27572", "EPSG:4326", "EPSG:4326", "EPSG:2975", "", "", ""]
    assert swapped.tolist() == [False, False, True, False, False, False, False]
    assert (lon[3], lat[3]) == pytest.approx((55.45, -20.88), abs=1e-7)
    assert np.isnan(lon[4:]).all()  # undeclared UTM, Gulf of Guinea, missing value


def test_outside_france_zero_and_unreadable_coordinates():
    text = ("nom;type;code_insee;lat;lon\n"
            "Berlin;crèche;44109;52.52;13.40\n"
            "Zéro;crèche;44109;0;0\n"
            "Illisible;crèche;44109;47°12'N;1°33'W\n")
    res = load_facility_file(text.encode(), name="f.csv", cog=COG, town_halls=HALLS)
    rep = res.report
    assert "hors de France" in rejected_reason(rep, 2)
    # (0, 0) and unreadable coordinates count as missing: placed at the town hall, reported
    assert res.facilities["name"].tolist() == ["Zéro", "Illisible"]
    assert set(res.facilities["position_precision"]) == {"commune"}
    assert any("(0, 0)" in w and "ligne 3" in w for w in rep.warnings)
    assert any("illisibles" in w and "ligne 4" in w for w in rep.warnings)


def test_vector_file_polygons_and_missing_geometry():
    res = load("polygons.geojson")
    rep, fac = res.report, res.facilities
    assert rep.crs_detected == "EPSG:4326"
    assert (rep.rows_read, rep.accepted) == (3, 3)
    square = box(-1.56, 47.21, -1.55, 47.22)
    assert square.contains(Point(xy(fac, "Crèche carrée")))
    assert any("point intérieur (Polygon)" in w for w in rep.warnings)
    assert xy(fac, "PMI ponctuelle") == (-1.5536, 47.2184)
    assert xy(fac, "Relais sans géométrie") == PONTCHATEAU_HALL
    assert fac["facility_id"].tolist() == ["user:polygons:1", "user:polygons:2", "user:polygons:3"]


def test_geopackage_in_lambert93(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"nom_structure": ["Crèche origine"], "typequ": ["D502"], "depcom": ["03238"]},
        geometry=[Point(700000, 6600000)], crs="EPSG:2154")
    path = tmp_path / "export.gpkg"
    gdf.to_file(path, driver="GPKG")
    res = load_facility_file(path.read_bytes(), name="export.gpkg", cog=COG)
    assert res.report.crs_detected == "EPSG:2154"
    lon, lat = xy(res.facilities, "Crèche origine")
    assert (round(lon, 9), round(lat, 9)) == (3.0, 46.5)
    assert res.facilities.crs.to_string() == "EPSG:4326"


def test_communes_polygons_give_the_missing_code():
    communes = gpd.GeoDataFrame({"code_insee": ["44109", "44129"]},
                                geometry=[box(-1.7, 47.1, -1.4, 47.3), box(-2.2, 47.3, -2.0, 47.5)],
                                crs="EPSG:4326")
    text = "nom,type,lat,lon\nA,crèche,47.2,-1.55\nB,crèche,47.4,-2.1\nC,crèche,46.0,0.5\n"
    res = load_facility_file(text.encode(), name="f.csv", cog=COG, communes=communes)
    assert res.facilities["code_insee"].tolist() == ["44109", "44129"]
    assert "code commune absent" in rejected_reason(res.report, 4)


# --------------------------------------------------------------------------- columns and types


@pytest.mark.parametrize(("value", "expected"), [
    ("crèche", ("eaje", "creche_collective")),
    ("Multi-accueil", ("eaje", "multi_accueil")),
    ("micro-crèche", ("eaje", "micro_creche")),
    ("Halte-garderie", ("eaje", "halte_garderie")),
    ("eaje_collectif", ("eaje", "")),
    ("MA", ("eaje", "multi_accueil")),
    ("HG", ("eaje", "halte_garderie")),
    ("Crèche familiale", ("eaje", "creche_familiale")),
    ("crèche parentale", ("eaje", "creche_parentale")),
    ("mam", ("mam", "")),
    ("Maison d'assistants maternels", ("mam", "")),
    ("D502", ("eaje", "")),
    ("D509", ("eaje", "micro_creche")),
    ("D503", ("laep", "")),
    ("D504", ("rpe", "")),
    ("D506", ("centre_social", "")),
    ("D107", ("maternite", "")),
    ("D231", ("sage_femme", "")),
    ("A129", ("mairie", "")),
    ("223", ("pmi", "")),
    ("230", ("pmi", "")),
    ("223.0", ("pmi", "")),
    ("relais", ("rpe", "")),
    ("RAM", ("rpe", "")),
    ("rpe", ("rpe", "")),
    ("Relais Petite Enfance (RPE)", ("rpe", "")),
    ("centre social", ("centre_social", "")),
    ("EVS", ("evs", "")),
    ("espace de vie sociale", ("evs", "")),
    ("PMI", ("pmi", "")),
    ("Centre de PMI", ("pmi", "")),
    ("maternité", ("maternite", "")),
    ("sage-femme", ("sage_femme", "")),
    ("LAEP", ("laep", "")),
    ("lieu d'accueil enfants parents", ("laep", "")),
    ("Maison des 1000 premiers jours", ("maison_1000_jours", "")),
    ("mairie", ("mairie", "")),
])
def test_type_labels_and_codes(value, expected):
    mapped = map_type(value)
    assert mapped is not None and mapped[:2] == expected and mapped[2] is False


@pytest.mark.parametrize(("value", "expected"), [
    ("creche_personnel", ("eaje", "creche_collective")),
    ("multi_accueil_collectif_familial", ("eaje", "multi_accueil")),
    ("Jardin d'enfants", ("eaje", "")),
    ("Crèche d'entreprise", ("eaje", "creche_collective")),
    ("Relais petite enfance intercommunal", ("rpe", "")),
])
def test_free_labels_are_interpreted_and_flagged(value, expected):
    assert map_type(value) == (*expected, True)


@pytest.mark.parametrize(
    "value", ["garage", "A101", "École maternelle", "assistante maternelle", ""])
def test_unknown_types(value):
    assert map_type(value) is None


def test_detect_columns_accent_and_case_blind():
    cols = ["NOM_STRUCTURE", "Type de structure", "Adresse complète", "CP", "DEPCOM", "Lat",
            "Lng", "Nb places", "Opérateur", "Tél.", "Courriel", "Site internet", "N° FINESS"]
    found = detect_columns(cols)
    assert found == {
        "name": "NOM_STRUCTURE", "address": "Adresse complète", "postcode": "CP",
        "code_insee": "DEPCOM", "lat": "Lat", "lon": "Lng", "type": "Type de structure",
        "capacity": "Nb places", "operator": "Opérateur", "phone": "Tél.", "email": "Courriel",
        "website": "Site internet"}
    assert detect_columns(["libelle", "typequ", "codgeo", "y_wgs84", "x_wgs84", "finess"]) == {
        "name": "libelle", "code_insee": "codgeo", "lat": "y_wgs84", "lon": "x_wgs84",
        "type": "typequ", "id": "finess"}
    # "nom_commune" is a commune name, never the facility name
    with pytest.raises(InputError, match="no name column"):
        detect_columns(["nom_commune", "code_insee"])


def test_mapping_overrides_detection_and_errors_name_the_columns():
    text = "nom;nom_court;genre;code_insee\nMulti-accueil Les Lutins;Lutins;MA;44129\n"
    data = text.encode()
    halls = dict(cog=COG, town_halls=HALLS)
    res = load_facility_file(data, name="f.csv", mapping={"name": "nom_court", "type": "genre"},
                             **halls)
    assert res.facilities["name"].tolist() == ["Lutins"]
    assert res.report.column_mapping["name"] == "nom_court"
    found = r"\['nom', 'nom_court', 'genre', 'code_insee'\]"
    with pytest.raises(InputError, match=r"'absente'.*" + found):
        load_facility_file(data, name="f.csv", mapping={"name": "absente"}, **halls)
    with pytest.raises(InputError, match="mapping key 'colour'"):
        load_facility_file(data, name="f.csv", mapping={"colour": "genre"}, **halls)


def test_default_type():
    text = "nom;code_insee;lat;lon\nA;44109;47.2;-1.55\n"
    with pytest.raises(InputError, match="no type column.*default_type"):
        load_facility_file(text.encode(), name="f.csv", cog=COG)
    res = load_facility_file(text.encode(), name="f.csv", cog=COG, default_type="micro-crèche")
    assert res.facilities[["type", "subtype"]].values.tolist() == [["eaje", "micro_creche"]]
    with_types = "nom;type;code_insee;lat;lon\nA;garage;44109;47.2;-1.55\nB;;44109;47.2;-1.56\n"
    res = load_facility_file(with_types.encode(), name="f.csv", cog=COG, default_type="rpe")
    assert res.facilities["type"].tolist() == ["rpe", "rpe"]
    assert any("« garage »" in w and "par défaut" in w for w in res.report.warnings)
    rep = load_facility_file(with_types.encode(), name="f.csv", cog=COG).report
    assert rejected_reason(rep, 3) == "type manquant"
    with pytest.raises(InputError, match="default_type='bowling'"):
        load_facility_file(text.encode(), name="f.csv", cog=COG, default_type="bowling")


def test_insee_fallback_prefers_newest_vintage():
    cols = ["code_insee_src_2018", "code_insee_pip", "code_insee_2025_from_src", "nom"]
    found = detect_columns(cols)
    assert found["code_insee"] == "code_insee_pip"
    assert insee_fallback_columns(cols, found) == ("code_insee_2025_from_src",
                                                   "code_insee_src_2018")


def test_precision_from_geocoder_type():
    text = ("nom,type,code_insee,lat,lon,geocode_type\n"
            "A,crèche,44109,47.21,-1.55,housenumber\nB,crèche,44109,47.22,-1.55,street\n"
            "C,crèche,44109,47.23,-1.55,municipality\nD,crèche,44109,47.24,-1.55,\n")
    fac = load_facility_file(text.encode(), name="f.csv", cog=COG).facilities
    assert fac["position_precision"].tolist() == ["address", "street", "commune", "address"]


# --------------------------------------------------------------------------- clear errors


@pytest.mark.parametrize(("name", "pattern"), [
    ("empty.csv", r"'empty\.csv' is empty"),
    ("header_only.csv", r"'header_only\.csv' has a header .* but no data rows"),
    ("missing_location.csv",
     r"missing_location\.csv: no usable location column; columns found: \['nom', 'type', "
     r"'telephone'\]; expected lat \+ lon"),
    ("missing_name.csv", r"missing_name\.csv: no name column found; columns found: \['type'"),
])
def test_clear_errors_on_bad_files(name, pattern):
    with pytest.raises(InputError, match=pattern):
        load(name)


def test_undecodable_and_unsupported_files():
    with pytest.raises(InputError, match=r"'bad\.csv': cannot decode .*UTF-8 or cp1252"):
        load_facility_file(b"nom;type\n\x81\x81;x\n", name="bad.csv")
    with pytest.raises(InputError, match=r"'list\.xlsx': unsupported extension '\.xlsx' .*CSV"):
        load_facility_file(b"PK\x03\x04", name="list.xlsx")
    with pytest.raises(InputError, match=r"'broken\.geojson': cannot read"):
        load_facility_file(b'{"type": "FeatureCollection", "features": [', name="broken.geojson")
    with pytest.raises(InputError, match="nowhere.csv"):
        load_facility_file(DATA / "nowhere.csv")


def test_report_to_frame_when_all_is_well():
    rep = load("bom_tab.tsv").report
    assert rep.to_frame().empty
    assert list(rep.to_frame().columns) == ["ligne", "nom", "statut", "motif"]
    assert rep.summary_fr() == "1 ligne lue, 1 acceptée, 0 rejetée, 0 doublon signalé"


def test_docstring_examples():
    import importlib
    import pkgutil

    tried = failures = 0
    for info in pkgutil.iter_modules(user_file.__path__):
        module = importlib.import_module(f"data_sources.user_file.{info.name}")
        f, t = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        tried, failures = tried + t, failures + f
    assert tried > 0 and failures == 0


def assert_geodataframe_valid(fac: gpd.GeoDataFrame) -> None:
    again = validate_facilities(fac, source="test")
    assert again["facility_id"].tolist() == fac["facility_id"].tolist()
    assert fac.crs.to_string() == "EPSG:4326"


# --------------------------------------------------------------------------- real files (test-only)


def test_real_eaje_44_2018():
    path = require_shared(f"{TEST_ONLY}/eaje_44_2018.geojson")
    halls = gpd.read_file(require_shared("ship/loire-atlantique/mairies_44.geojson"))
    res = load_facility_file(path, town_halls=halls, source_date="2018")
    rep, fac = res.report, res.facilities
    assert (rep.rows_read, rep.accepted, len(rep.rejected)) == (286, 286, 0)
    assert rep.column_mapping["code_insee"] == "code_insee_pip"
    assert rep.column_mapping["type"] == "categorie"
    assert rep.crs_detected == "EPSG:4326"
    # 7 source categories -> 5 schema subtypes: 'multi_accueil_collectif_familial' (3) counts
    # as multi_accueil (143 + 3), 'creche_personnel' (3) as creche_collective (47 + 3)
    assert fac["type"].eq("eaje").all()
    assert fac["subtype"].value_counts().to_dict() == {
        "multi_accueil": 146, "creche_collective": 50, "micro_creche": 42, "halte_garderie": 40,
        "creche_familiale": 8}
    assert sum("interprété" in w for w in rep.warnings) == 2
    # geocode_type: 202 housenumber -> address; 83 street + 1 locality -> street; but 3
    # "street" points lie 77 to 11,593 km from their declared commune (issue 13.6): they
    # are placed at that commune's town hall (precision commune) and flagged, not lost
    assert fac["position_precision"].value_counts().to_dict() == {"address": 202, "street": 81,
                                                                  "commune": 3}
    far = rep.notes.loc[rep.notes["note"].str.contains("km de la commune déclarée"), "row"]
    assert sorted(far) == [27, 49, 126]
    assert fac["code_insee"].str.fullmatch(r"\d{5}").all()
    # 3 points fall outside the département's polygons (no code_insee_pip): the newest
    # source code is used, e.g. Chéméré's 2018 code 44040 is replaced by 44005 (2025)
    assert fac.set_index("source_id").loc["h18_eaje_026", "code_insee"] == "44005"
    assert any("code_insee_2025_from_src" in w and "3 lignes" in w for w in rep.warnings)
    assert fac["postcode"].iloc[0] == "44140"  # float 44140.0 in the file
    assert fac["facility_id"].iloc[0] == "user:eaje_44_2018:h18_eaje_000"
    assert fac["capacity"].isna().all()  # no capacity in this file, never 0
    # the feature 16 has an empty name: kept, named by its type, and reported
    assert fac["name"].iloc[15] == "Crèche (EAJE) sans nom"
    # two "Le Petit Prince" at the same address (features 241 and 247)
    assert rep.duplicates[["row", "duplicate_of_row"]].values.tolist() == [[247, 241]]


def test_real_nantes_eaje_mam_2025():
    path = require_shared(f"{TEST_ONLY}/nantes_eaje_mam_2025.geojson")
    halls = gpd.read_file(require_shared("ship/loire-atlantique/mairies_44.geojson"))
    res = load_facility_file(path, town_halls=halls, source_date="2025")
    rep, fac = res.report, res.facilities
    assert (rep.rows_read, rep.accepted) == (112, 112)
    assert fac["type"].value_counts().to_dict() == {"eaje": 96, "mam": 16}
    assert fac.loc[fac["type"] == "eaje", "subtype"].value_counts().to_dict() == {
        "": 78, "micro_creche": 18}
    assert fac["capacity"].sum() == 3612
    assert fac["capacity"].notna().all()
    assert rep.column_mapping["operator"] == "type_gestion"
    # features 72 and 106 have no coordinates: commune from the postcode in the address
    # ("…, 44000 Nantes, France"), placed at Nantes town hall
    at_hall = fac.loc[fac["position_precision"] == "commune"]
    assert at_hall["source_id"].tolist() == ["mgn_071", "mgn_105"]
    assert set(at_hall["code_insee"]) == {"44109"}
    nantes_hall = halls.loc[halls["code_insee"] == "44109"].geometry.iloc[0]
    assert all(p.equals(nantes_hall) for p in at_hall.geometry)
    assert rep.notes["row"].tolist() == [72, 106]
    assert rep.duplicates.empty  # the 4 "Nos Petits Pouces" are at 4 different addresses


# --------------------------------------------------------------------------- faults (issue 11)
# Python's csv module limits a field to 131,072 characters (csv.field_size_limit()) and
# joins lines inside an unclosed quote (CPython Modules/_csv.c); GDAL's GeoJSON driver warns
# "Non closed ring detected" and GEOS then refuses the whole layer (pyogrio raw.read).

HEAD = "nom;type;code_insee;lat;lon\n"


def _rows(names):
    # positions inside Nantes (44109): a point away from its declared commune is flagged
    return "".join(f"{n};crèche;44109;47.21{i};-1.55{i}\n" for i, n in enumerate(names))


def _invariant(rep):
    assert rep.rows_read == rep.accepted + len(rep.rejected)
    assert rep.flagged <= rep.accepted


def test_stray_quote_is_read_line_by_line_and_flagged():
    body = (HEAD + "Crèche A;crèche;44109;47.20;-1.55\n"
            '"Crèche B;crèche;44109;47.21;-1.55\n'  # opens a quote, never closed here
            "Crèche C;crèche;44109;47.22;-1.52\n"
            'Crèche "D";crèche;44109;47.23;-1.53\n'  # the csv reader closes it here
            "Crèche E;crèche;44109;47.24;-1.54\n")
    res = load_facility_file(body.encode(), name="quote.csv")
    rep = res.report
    assert rep.rows_read == 5 and rep.accepted == 5  # not 3 rows, one of them 3 lines long
    assert res.facilities["name"].tolist() == ["Crèche A", '"Crèche B', "Crèche C",
                                               'Crèche "D"', "Crèche E"]
    notes = rep.notes.set_index("row")["note"]
    assert sorted(notes.index) == [3, 5]  # the two lines with a quote, to check by hand
    assert "guillemet isolé : les lignes 3 à 5 se lisaient comme une seule" in notes[3]
    assert any("guillemet isolé" in w for w in rep.warnings)
    assert rep.flagged == 2
    _invariant(rep)


def test_real_multiline_value_stays_one_row_with_a_note():
    body = HEAD.replace("\n", ";adresse\n") + \
        'Crèche A;crèche;44109;47.21;-1.55;"12 rue X\nBP 5"\nCrèche B;crèche;44209;47.3;-1.6;y\n'
    rep = load_facility_file(body.encode(), name="multi.csv").report
    assert rep.rows_read == 2 and rep.accepted == 2
    assert "valeur sur plusieurs lignes (lignes 2 à 3)" in rep.notes["note"].iloc[0]


def test_field_over_the_csv_limit_rejects_that_row_only():
    big = "B" * 140_000
    body = HEAD + _rows(["Crèche A"]) + f"{big};crèche;44109;47.22;-1.52\n" + \
        _rows(["Crèche C"]).replace("47.2", "47.23")
    rep = load_facility_file(body.encode(), name="long.csv").report
    assert rep.rows_read == 3 and rep.accepted == 2 and rep.rejected["row"].tolist() == [3]
    assert "dépasse 131\u202f072 caractères" in rep.rejected["reason"].iloc[0]
    _invariant(rep)


def test_one_windows_1252_line_in_a_utf8_file_is_decoded_alone_and_flagged():
    names = [f"Crèche Éveil {i}" for i in range(9)]
    lines = [f"{n};crèche;44109;47.21{i};-1.55{i}\n" for i, n in enumerate(names)]
    data = HEAD.encode() + b"".join(
        ln.encode("cp1252") if i == 4 else ln.encode("utf-8") for i, ln in enumerate(lines))
    res = load_facility_file(data, name="mixed.csv")
    rep = res.report
    assert rep.accepted == 9 and rep.rejected.empty  # not 8 of 9 rejected
    assert res.facilities["name"].tolist() == names  # the accents of every row are right
    assert rep.encoding == "UTF-8 (1 ligne en Windows-1252)"
    assert rep.notes.set_index("row").loc[6, "note"].startswith("ligne en Windows-1252")
    assert any("Windows-1252" in w for w in rep.warnings)


def test_whole_windows_1252_file_is_still_read_as_such():
    data = (HEAD + _rows(["Crèche Éveil"])).encode("cp1252")
    rep = load_facility_file(data, name="cp.csv").report
    assert rep.encoding == "cp1252" and rep.accepted == 1 and rep.notes.empty


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_text_not_binary(codec):
    data = (HEAD + _rows(["Crèche Éveil", "Relais"])).encode(codec)
    res = load_facility_file(data, name="u16.csv")
    assert res.report.encoding == "UTF-16 (sans BOM)"
    assert res.facilities["name"].tolist() == ["Crèche Éveil", "Relais"]


def test_real_binary_is_still_refused():
    with pytest.raises(InputError, match="binary data"):
        load_facility_file(bytes(range(256)) * 4, name="bin.csv")


def test_unclosed_ring_rejects_that_feature_only():
    feats = [
        {"type": "Feature", "properties": {"nom": "Crèche A", "type": "crèche",
                                           "code_insee": "44109"},
         "geometry": {"type": "Point", "coordinates": [-1.55, 47.21]}},
        {"type": "Feature", "properties": {"nom": "Crèche B", "type": "crèche",
                                           "code_insee": "44109"},
         "geometry": {"type": "Polygon",
                      "coordinates": [[[-1.55, 47.21], [-1.54, 47.21], [-1.54, 47.22]]]}},
        {"type": "Feature", "properties": {"nom": "Crèche C", "type": "crèche",
                                           "code_insee": "44109"},
         "geometry": {"type": "Point", "coordinates": [-1.56, 47.23]}},
    ]
    data = json.dumps({"type": "FeatureCollection", "features": feats}).encode()
    res = load_facility_file(data, name="ring.geojson")
    rep = res.report
    assert res.facilities["name"].tolist() == ["Crèche A", "Crèche C"]
    assert rep.rows_read == 3 and rep.rejected["row"].tolist() == [2]
    assert rep.rejected["name"].tolist() == ["Crèche B"]
    assert "l'anneau n'est pas fermé" in rep.rejected["reason"].iloc[0]
    _invariant(rep)


def test_duplicate_detection_matches_brute_force():
    rng = np.random.default_rng(3)
    n = 400
    lon = -1.55 + rng.normal(0, 0.0008, n)  # a dense cluster: many pairs within 50 m
    lat = 47.21 + rng.normal(0, 0.0005, n)
    lon[::7] = lon[0]  # shared positions (a placeholder position)
    lat[::7] = lat[0]
    fac = gpd.GeoDataFrame({"type": ["eaje"] * n, "name": ["Crèche sans nom"] * n},
                           geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    got = find_duplicates(fac, distance_m=50)
    geod = pyproj.Geod(ellps="sphere")
    expected = {}
    for j in range(n):
        for i in range(j):
            d = geod.inv(lon[j], lat[j], lon[i], lat[i])[2]
            if d <= 50 * 6_371_008.8 / 6_370_997.0 - 1e-6:
                expected[j + 1] = i + 1
                break
    # rows within a micrometre of the threshold are left out of the comparison
    got_map = dict(zip(got["row"], got["duplicate_of_row"], strict=True))
    assert {k: v for k, v in got_map.items() if k in expected} == expected
    assert len(got_map) == len(expected)


def test_many_unnamed_rows_import_with_their_duplicates():
    import time

    n = 30_000
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(-1.60, -1.50, n), rng.uniform(47.19, 47.25, n)  # in Nantes
    body = HEAD + "".join(f";crèche;44109;{b:.6f};{a:.6f}\n" for a, b in zip(lon, lat,
                                                                            strict=True))
    start = time.perf_counter()
    rep = load_facility_file(body.encode(), name="unnamed.csv").report
    elapsed = time.perf_counter() - start
    assert rep.accepted == n and len(rep.duplicates) > 0
    print(f"{n} unnamed rows: {elapsed:.1f} s (was quadratic: ~130 s)")  # no timed assert


def test_cli_lines_give_counts_warnings_and_first_reasons():
    body = HEAD + _rows(["Crèche A"]) + "".join(
        f"Sans position {i};crèche;;;\n" for i in range(12)) + "\n"
    rep = load_facility_file(body.encode(), name="cli.csv").report
    lines = rep.cli_lines(max_rows=3)
    assert lines[0] == ("cli.csv : 13 lignes lues = 1 acceptée (dont 0 à vérifier) + "
                        "12 rejetées.")
    rejected = [ln for ln in lines if ln.startswith("  Rejetée, ligne")]
    assert len(rejected) == 3 and "(Sans position 0)" in rejected[0]
    assert "ni coordonnées ni code commune" in rejected[0]
    assert lines[-1] == "  … et 9 autres lignes rejetées (voir le rapport d'import complet)."
    assert all(len(ln) < 300 for ln in lines)
    warned = load_facility_file(body.encode(), name="cli.csv", default_type=None).report
    assert [ln for ln in warned.cli_lines() if ln.startswith("  Attention")] == [
        f"  Attention : {w}" for w in warned.warnings]


def test_positions_are_checked_against_the_declared_commune(tmp_path):
    """Issue 13.6: a longitude that lost its minus sign (2.0876 for -2.0876, 300 km east of
    Pontchâteau) is caught, fixed and flagged; a swap too; a point far from its commune
    with no fix is rejected; a good point is kept as is."""
    from data_sources.user_file import load_facility_file

    text = ("nom;type;code_insee;latitude;longitude\n"
            "Bonne;crèche;44129;47.4376;-2.0876\n"
            "Signe perdu;crèche;44129;47.4376;2.0876\n"
            "Inversée;crèche;44129;-2.0876;47.4376\n"
            "Ailleurs;crèche;44129;43.6045;1.4440\n")
    f = tmp_path / "positions.csv"
    f.write_text(text, encoding="utf-8")
    rejected = load_facility_file(f).report  # no town halls to fall back on
    assert rejected.rows_read == 4 and rejected.accepted == 3 and len(rejected.rejected) == 1
    res = load_facility_file(f, town_halls=HALLS)
    rep = res.report
    assert rep.rows_read == 4 and rep.accepted == 4 and len(rep.rejected) == 0
    far = res.facilities.set_index("name").loc["Ailleurs"]
    assert far["position_precision"] == "commune"  # at Pontchâteau's town hall, flagged
    assert (far.geometry.x, far.geometry.y) == pytest.approx(PONTCHATEAU_HALL)
    assert "km de la commune déclarée 44129" in " ".join(rep.notes["note"])
    fac = res.facilities.set_index("name")
    for name in ("Bonne", "Signe perdu", "Inversée"):
        assert fac.loc[name].geometry.x == pytest.approx(-2.0876, abs=1e-6)
        assert fac.loc[name].geometry.y == pytest.approx(47.4376, abs=1e-6)
    notes = " ".join(rep.notes["note"])
    assert "signe moins perdu" in notes and "inversées" in notes
    assert any("à vérifier" in w for w in rep.warnings)


# --- encodings and layouts met in real exports (issue 25 item 8) -------------------------

_LAYOUT_HEAD = "nom;type;lat;lon;code_insee\n"
_LAYOUT_ROWS = "Crèche Étoile;crèche;47.21;-1.55;44109\nMaison ç;mam;47.22;-1.56;44109\n"


@pytest.mark.parametrize(("codec", "label"), [
    ("utf-32", "UTF-32"),                       # with its byte-order mark
    ("utf-32-le", "UTF-32 (sans BOM)"),
    ("utf-32-be", "UTF-32 (sans BOM)"),
    ("mac_roman", "Mac Roman"),                 # Excel for Mac « CSV (Macintosh) »
])
def test_wider_encodings_are_read(codec, label):
    data = (_LAYOUT_HEAD + _LAYOUT_ROWS).encode(codec)
    res = load_facility_file(data, name="export.csv", cog=COG)
    assert res.report.encoding == label
    assert res.facilities["name"].tolist() == ["Crèche Étoile", "Maison ç"]


def test_windows_1252_is_not_taken_for_mac_roman():
    res = load_facility_file((_LAYOUT_HEAD + _LAYOUT_ROWS).encode("cp1252"), name="w.csv",
                             cog=COG)
    assert res.report.encoding == "cp1252"
    assert res.facilities["name"].tolist() == ["Crèche Étoile", "Maison ç"]


def test_pipe_separator_file():
    raw = read_table((DATA / "wrong_separator.csv").read_bytes(), file_name="w.csv")
    assert raw.separator == "|" and list(raw.frame.columns) == ["nom", "type", "lat", "lon"]
    assert raw.frame["nom"].tolist() == ["Crèche A", "Crèche B"]
    inline = (_LAYOUT_HEAD + _LAYOUT_ROWS).replace(";", "|").encode()
    assert load_facility_file(inline, name="p.csv", cog=COG).report.accepted == 2


def test_two_title_lines_without_separators_above_the_header():
    text = ("Liste des structures petite enfance du département\n"
            "Mise à jour : mars 2024\n" + _LAYOUT_HEAD + _LAYOUT_ROWS)
    res = load_facility_file(text.encode(), name="t.csv", cog=COG)
    assert res.report.accepted == 2
    assert any("lignes 1, 2 avant l'en-tête" in w for w in res.report.warnings)
    # the rows keep the numbers of the file: header on line 3, data on lines 4 and 5
    assert res.facilities["source_id"].tolist() == ["4", "5"]


def test_headerless_file_with_a_mapping_by_number():
    data = _LAYOUT_ROWS.encode()
    with pytest.raises(InputError, match="no name column"):  # read with a header: refused
        load_facility_file(data, name="sans_entete.csv", cog=COG)
    res = load_facility_file(data, name="sans_entete.csv", cog=COG, header=False,
                             mapping={"name": 1, "type": "2", "lat": 3, "lon": 4,
                                      "code_insee": "colonne_5"})
    assert res.report.rows_read == 2 and res.report.accepted == 2
    assert res.facilities["source_id"].tolist() == ["1", "2"]  # line 1 is a row


def test_nul_bytes_are_dropped_per_row_not_refusing_the_file():
    data = (_LAYOUT_HEAD.encode() + b"Cr\x00eche A;cr\xc3\xa8che;47.21;-1.55;44109\n"
            + b"Relais B;rpe;47.22;-1.56;44109\n" * 3)
    res = load_facility_file(data, name="nul.csv", cog=COG)
    assert res.report.accepted == 4
    assert res.facilities["name"].iloc[0] == "Creche A"
    notes = res.report.notes
    assert notes.loc[notes["row"] == 2, "note"].str.contains("octet nul").all()
    assert (notes["row"] == 2).sum() >= 1 and not (notes["row"] == 3).any()
    assert any("octets nuls supprimés : ligne 2" in w for w in res.report.warnings)


def test_unknown_commune_code_is_flagged():
    text = (_LAYOUT_HEAD + "Crèche A;crèche;47.21;-1.55;44109\n"
            "Crèche B;crèche;47.22;-1.56;44999\n" "PMI C;pmi;;;44999\n")
    res = load_facility_file(text.encode(), name="u.csv", cog=COG, town_halls=HALLS)
    rep = res.report
    assert rep.rows_read == 3 and rep.accepted + len(rep.rejected) == 3
    assert "inconnu du code officiel géographique" in " ".join(
        rep.notes.loc[rep.notes["row"] == 3, "note"])
    assert "code commune 44999 inconnu" in rejected_reason(rep, 4)
    assert any("code commune inconnu (44999) : lignes 3, 4" in w for w in rep.warnings)
    # a former (merged) commune's code is known, replaced, and not flagged as unknown
    old = load_facility_file((_LAYOUT_HEAD + "Crèche D;crèche;47.05;-1.93;44040\n").encode(),
                             name="o.csv", cog=COG).report
    assert not any("inconnu" in w for w in old.warnings)


# --- the bad-file corpus: each file is either accepted (nothing lost) or refused in French ---

_H = _LAYOUT_HEAD
_R = _LAYOUT_ROWS
_GOOD_ROWS = 2

#: Files a project holder may really give, wrongly or oddly saved: name -> bytes.
BAD_FILES_REFUSED = {
    "vide.csv": b"",
    "blancs.csv": b"  \n\n \n",
    "entete_seul.csv": _H.encode(),
    "classeur.csv": b"PK\x03\x04\x14\x00\x06\x00" + bytes(200),
    "ancien_excel.csv": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4,
    "binaire.csv": bytes(range(256)) * 8,
    "une_colonne.csv": b"nom:type:lat:lon\nA:eaje:47.2:-1.5\n",
    "sans_nom.csv": b"type;lat;lon;code_insee\neaje;47.21;-1.55;44109\n",
    "sans_position.csv": b"nom;type;telephone\nA;eaje;0240000000\n",
    "sans_type.csv": b"nom;lat;lon;code_insee\nA;47.21;-1.55;44109\n",
    "rapport.pdf": b"%PDF-1.4\n",
    "liste.xlsx": b"PK\x03\x04",
    "casse.geojson": b'{"type": "FeatureCollection", "features": [',
    "aucun_objet.geojson": b'{"type": "FeatureCollection", "features": []}',
    "faux.gpkg": b"SQLite format 3\x00" + bytes(100),
    "utf16_casse.csv": b"\xff\xfe" + "nom;type\n".encode("utf-16-le") + b"\x00\xd8",
    "bom_casse.csv": b"\xef\xbb\xbf" + b"nom;type\n\xff\xfe\x81;x\n",
    "indecodable.csv": b"nom;type\n\x81\x81;x\n",
    "sans_entete.csv": _R.encode(),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES_REFUSED))
def test_bad_file_is_refused_in_french(name):
    with pytest.raises(InputError) as err:
        load_facility_file(BAD_FILES_REFUSED[name], name=name, cog=COG)
    text = err.value.fr
    assert name in text, text
    for english in ("is not", "cannot", "no header", "has a header", "is empty", "unsupported",
                    "holds", "columns found", "expected", "re-save", "check the"):
        assert english not in text, text


BAD_FILES_ACCEPTED = {
    "utf32.csv": (_H + _R).encode("utf-32"),
    "utf32_sans_bom.csv": (_H + _R).encode("utf-32-be"),
    "utf16.csv": (_H + _R).encode("utf-16"),
    "mac.csv": (_H + _R).encode("mac_roman"),
    "windows.csv": (_H + _R).encode("cp1252"),
    "bom.csv": b"\xef\xbb\xbf" + (_H + _R).encode(),
    "excel_sep.csv": ("sep=;\n" + _H + _R).encode(),
    "tabulations.tsv": (_H + _R).replace(";", "\t").encode(),
    "virgules.csv": (_H + _R).replace(";", ",").encode(),
    "barres.csv": (_H + _R).replace(";", "|").encode(),
    "crlf.csv": (_H + _R).replace("\n", "\r\n").encode(),
    "titres.csv": ("Liste des structures\nMise à jour : mars 2024\n" + _H + _R).encode(),
    "colonnes_vides.csv": (_H.replace("\n", ";;\n") + _R.replace("\n", ";;\n")).encode(),
    "octet_nul.csv": (_H + _R).encode().replace(b"Maison", b"Mai\x00son"),
    "code_inconnu.csv": (_H + _R.replace("44109\nMaison", "44999\nMaison")).encode(),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES_ACCEPTED))
def test_odd_but_usable_file_is_accepted_nothing_lost(name):
    rep = load_facility_file(BAD_FILES_ACCEPTED[name], name=name, cog=COG).report
    assert rep.rows_read == _GOOD_ROWS
    assert rep.accepted + len(rep.rejected) == rep.rows_read
    assert rep.accepted == _GOOD_ROWS, rep.rejected
