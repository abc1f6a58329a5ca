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


def test_duplicates_of_many_groups_equal_a_pairwise_search():
    """All (type, name) groups searched at once find what a pair-by-pair search finds."""
    from data_sources.user_file.duplicates import _haversine_m

    rng = np.random.default_rng(3)
    n = 400
    # points on a 0.001° grid (≈ 75-110 m steps): every pair is far from the 150 m bound
    lon = -1.5 + 0.001 * rng.integers(0, 6, n)
    lat = 47.2 + 0.001 * rng.integers(0, 6, n)
    fac = gpd.GeoDataFrame({"type": rng.choice(["eaje", "pmi", "mam"], n),
                            "name": rng.choice(["Les Lutins", "les lutins", "Bulle", "Éveil"], n)},
                           geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    got = find_duplicates(fac, distance_m=150)
    key = fac["name"].str.lower().str.replace("é", "e").to_numpy()
    typ = fac["type"].to_numpy()
    lo, la = np.radians(lon), np.radians(lat)
    want = {}
    for j in range(n):
        near = [i for i in range(j) if typ[i] == typ[j] and key[i] == key[j]
                and _haversine_m(lo[i], la[i], lo[j], la[j]) <= 150]
        if near:
            want[j + 1] = min(near) + 1
    assert len(want) > 50  # the instance holds many duplicates in many groups
    assert dict(zip(got["row"], got["duplicate_of_row"], strict=True)) == want


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
