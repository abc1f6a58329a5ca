"""Importer robustness: odd encodings, stray quotes, huge fields, bad rows, budgets.

Split from ``tests/test_user_file.py`` (the importer's main tests); the shared fixtures
(town halls, COG table, data folder) come from there.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pyproj
import pytest

from data_sources.user_file import find_duplicates, load_facility_file, read_table
from diagnosis.errors import InputError
from tests.test_user_file import COG, DATA, HALLS, PONTCHATEAU_HALL, rejected_reason

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
