"""The importer's bulk paths give what the row-by-row ones give (issue 23, item 7).

A 100,000-row facility file is read, checked and placed in bulk: a CSV without quotes in
one pass of the csv reader, each file column once, the declared communes by
point-in-polygon with a distance only for the points outside, the town halls of France
from the point columns of the shipped geography. Each test compares a bulk path with the
general one (or with an independent computation) on inputs written to make them differ:
padded cells, non-breaking spaces, blank rows, titles, ragged rows, other separators.
Payloads are written inline; real places: the town halls of Paris 18e, Saint-Ouen-sur-
Seine and Pantin (as in tests/test_positions.py), polygons of the shipped national
geography.
"""

from __future__ import annotations

import gc

import geopandas as gpd
import pytest
from shapely.geometry import Point

from data_sources.national import load_national_communes
from data_sources.user_file import load_facility_file
from data_sources.user_file.read import (
    _SPACES,
    _padded_cell,
    _read_any_records,
    _read_plain_records,
    _read_records,
)
from data_sources.workspace import _national_town_halls, town_halls
from diagnosis.errors import InputError
from diagnosis.settings import METRIC_CRS
from tests.test_user_file import HALLS


def test_spaces_are_the_ones_str_strip_removes():
    every = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    assert set(_SPACES) == every - {"\r", "\n"}


#: CSV texts without quotes, each exercising one way the bulk reader could differ.
_PLAIN_TEXTS = {
    "tidy": "nom;type;code_insee\nA;crèche;44109\nB;pmi;44129\n",
    "padded cells": "nom ; type;code_insee\n A ;crèche ;44109\t\nB;\u3000pmi\u2003;44129 \n",
    "non-breaking spaces": "nom;type\n\u00a0A\u00a0;crèche\u00a0\nB\u00a0C;pmi\n",
    "inner spaces kept": "nom;type\nCrèche  des\u000bBois;crèche\nB\x1cC;pmi\n",
    "blank rows": "nom;type\n\nA;crèche\n;;\n   ;\nB;pmi\n\n",
    "blank rows above the header": ";\n \n\nnom;type\nA;crèche\n;\n",
    "titles above the header": "Liste des crèches;;\nMise à jour : mars;;\n\nnom;type;cp\n"
                               "A;crèche;44000\n",
    "ragged rows": "nom;type;cp\nA;crèche\nB;pmi;44000;;\nC;laep;44000;extra\n",
    "windows line ends": "nom;type\r\nA;crèche\r\n\r\nB;pmi\r\n",
    "old mac line ends": "nom;type\rA;crèche\rB;pmi\r",
    "tab separator": "nom\ttype\n A \t crèche\n\t\nB\tpmi\n",
    "pipe separator": "nom|type\nA | crèche\nB|pmi|\n",
    "comma separator": "nom,type\nA,crèche\n,\nB , pmi\n",
    "no final line break": "nom;type\nA;crèche\nB;pmi",
    "one title only": "Liste;\n",
}


@pytest.mark.parametrize("name", sorted(_PLAIN_TEXTS))
@pytest.mark.parametrize("header", [True, False])
def test_plain_reader_equals_the_general_reader(name, header):
    text = _PLAIN_TEXTS[name]
    lines = text.splitlines(keepends=True)
    sep = next(s for s in ("\t", "|", ",", ";") if s in text)
    width = len(lines[0].split(sep))
    args = {"sep": sep, "width": width, "skip_first": 0, "file_name": "f.csv",
            "max_rows": 1000, "header": header}
    plain = _read_plain_records(lines, **args)
    assert plain is not None  # the bulk path was taken
    assert _as_lists(plain) == _read_any_records(lines, **args)


def test_plain_reader_counts_lines_after_a_separator_hint():
    lines = "sep=;\nnom;type\n\nA ; crèche\nB;pmi\n".splitlines(keepends=True)
    args = {"sep": ";", "width": 2, "skip_first": 1, "file_name": "f.csv", "max_rows": 10,
            "header": True}
    plain = _read_plain_records(lines, **args)
    assert _as_lists(plain) == _read_any_records(lines, **args)
    assert plain is not None and plain.row_numbers == [4, 5]


@pytest.mark.parametrize("text", [
    'nom;type\n"A";crèche\n',                     # a quote: the general reader decides
    "nom;type\nA\x00;crèche\n",                   # a NUL byte
    "nom;type\nA;" + "x" * 200_000 + "\n",        # a value over the csv field limit
])
def test_plain_reader_leaves_other_files_to_the_general_reader(text):
    lines = text.splitlines(keepends=True)
    assert _read_plain_records(lines, sep=";", width=2, skip_first=0, file_name="f.csv",
                               max_rows=10, header=True) is None
    assert _read_records(lines, sep=";", width=2, skip_first=0, file_name="f.csv",
                         max_rows=10, header=True).records  # still read


def test_plain_reader_refuses_too_many_rows_like_the_general_one():
    lines = ("nom;type\n" + "A;crèche\n" * 4).splitlines(keepends=True)
    args = {"sep": ";", "width": 2, "skip_first": 0, "file_name": "f.csv", "max_rows": 3,
            "header": True}
    with pytest.raises(InputError) as plain:
        _read_plain_records(lines, **args)
    with pytest.raises(InputError) as general:
        _read_any_records(lines, **args)
    assert str(plain.value) == str(general.value)
    assert _read_plain_records(lines, **{**args, "max_rows": 4}) is not None


def test_formula_guard_is_dropped_only_before_a_formula(tmp_path):
    f = tmp_path / "structures.csv"
    f.write_text("nom;type;code_insee;latitude;longitude;telephone\n"
                 "'=1+1;crèche;44129;47.4376;-2.0876;'+33 2 40\n"
                 "'Les P'tits;crèche;44129;47.4377;-2.0875;02 40\n"
                 "  '@x ;crèche;44129;47.4378;-2.0874;'-3\n", encoding="utf-8")
    fac = load_facility_file(f, town_halls=HALLS).facilities
    assert fac["name"].tolist() == ["=1+1", "'Les P'tits", "@x"]
    assert fac["phone"].tolist() == ["+33 2 40", "02 40", "-3"]


def test_distance_to_the_declared_commune_is_the_polygon_distance(tmp_path):
    """The « N m hors de la commune » of a note is the Lambert-93 distance to the polygon."""
    points = {"Saint-Ouen": (48.9118, 2.3340), "Pantin": (48.8946, 2.4092)}
    f = tmp_path / "structures.csv"
    f.write_text("nom;type;code_insee;latitude;longitude\n"
                 + "".join(f"{n};crèche;75056;{la};{lo}\n" for n, (la, lo) in points.items())
                 + "Paris 18e;crèche;75118;48.8925;2.3444\n", encoding="utf-8")
    notes = load_facility_file(f, town_halls=HALLS).report.notes.set_index("name")["note"]
    paris = load_national_communes(departements=["75"]).set_index("code_insee")
    polygon = gpd.GeoSeries([paris.geometry["75056"]], crs="EPSG:4326").to_crs(METRIC_CRS)
    for name, (la, lo) in points.items():
        pt = gpd.GeoSeries([Point(lo, la)], crs="EPSG:4326").to_crs(METRIC_CRS)
        expected = float(pt.distance(polygon.iloc[0]).iloc[0])
        assert expected > 500  # flagged (kept), with its distance
        assert f"position à {expected:.0f} m hors de la commune déclarée 75056" in notes[name]
    assert "Paris 18e" not in notes.index


def test_national_town_halls_equal_the_points_of_the_full_geography():
    from geopandas.testing import assert_geodataframe_equal

    _national_town_halls.cache_clear()
    fast = _national_town_halls()
    assert_geodataframe_equal(fast, town_halls(load_national_communes()))
    assert fast.geometry.isna().sum() < 10  # the few communes without polygon nor point


def test_garbage_collection_resumes_after_an_import(tmp_path):
    good = tmp_path / "structures.csv"
    good.write_text("nom;type;code_insee;latitude;longitude\n"
                    "A;crèche;44129;47.4376;-2.0876\n", encoding="utf-8")
    bad = tmp_path / "vide.csv"
    bad.write_text("", encoding="utf-8")
    assert gc.isenabled()
    assert load_facility_file(good, town_halls=HALLS).report.accepted == 1
    assert gc.isenabled()
    with pytest.raises(InputError):
        load_facility_file(bad)
    assert gc.isenabled()
    gc.disable()
    try:  # a caller that holds the collector keeps it held
        load_facility_file(good, town_halls=HALLS)
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("sep", [";", "\t"])
def test_padded_cell_finds_exactly_the_cells_strip_would_change(sep):
    import io
    import random

    rng = random.Random(7)
    alphabet = ["a", "b", " ", "\u3000", "\x1c", "\x0b", "\t", ";", "\n", "\r", "\r\n"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        cells = [c for line in io.StringIO(text, newline="").readlines()
                 for c in line.rstrip("\r\n").split(sep)]
        assert _padded_cell(text, sep) == any(c != c.strip() for c in cells), repr(text)


def test_distinct_rows_are_numpy_unique_rows():
    import numpy as np

    from data_sources.user_file.duplicates import _distinct_rows

    rng = np.random.default_rng(3)
    for _ in range(300):
        values = rng.integers(0, 3, (int(rng.integers(1, 40)), 4)) * rng.choice([1.0, 0.25])
        uniq, inverse = np.unique(values, axis=0, return_inverse=True)
        mine, mine_inverse = _distinct_rows(values)
        assert mine.tolist() == uniq.tolist()
        assert mine_inverse.tolist() == inverse.ravel().tolist()


def test_capacity_unit_is_dropped_only_where_written(tmp_path):
    import math

    f = tmp_path / "structures.csv"
    values = ["12 places", "1 PLACE", "20", " 8 Places ", "places", "0", "15,5", "environ 12"]
    f.write_text("nom;type;code_insee;latitude;longitude;capacite\n" + "".join(
        f"S{i};crèche;44129;47.43{i};-2.087;{v}\n" for i, v in enumerate(values)),
        encoding="utf-8")
    res = load_facility_file(f, town_halls=HALLS)
    cap = res.facilities.set_index("name")["capacity"]
    assert [cap[f"S{i}"] for i in (0, 1, 2, 3, 6)] == [12.0, 1.0, 20.0, 8.0, 15.5]
    assert all(math.isnan(cap[f"S{i}"]) for i in (4, 5, 7))  # no number, zero: unknown
    notes = res.report.notes.set_index("name")["note"]
    assert "S4" not in notes.index  # the unit alone: an empty cell
    assert "capacité illisible ('environ 12')" in notes["S7"]
    assert "capacité '0' considérée comme inconnue" in notes["S5"]


def test_a_commune_without_polygon_is_not_checked_beside_one_with(tmp_path):
    """15031 has neither polygon nor point in the shipped geography: its row is kept as
    placed, while a Paris row of the same file is still measured against Paris."""
    cantal = load_national_communes(departements=["15"]).set_index("code_insee")
    assert cantal.geometry["15031"] is None
    f = tmp_path / "structures.csv"
    f.write_text("nom;type;code_insee;latitude;longitude\n"
                 "Cantal;crèche;15031;45.03;2.44\n"
                 "Pantin;crèche;75056;48.8946;2.4092\n", encoding="utf-8")
    res = load_facility_file(f, town_halls=HALLS)
    notes = res.report.notes.set_index("name")["note"]
    assert res.report.accepted == 2
    assert "Cantal" not in notes.index
    assert "hors de la commune déclarée 75056" in notes["Pantin"]


def test_plain_numbers_are_read_as_pandas_reads_them():
    import numpy as np
    import pandas as pd

    from data_sources.user_file.positions import _plain_numbers

    rng = np.random.default_rng(11)
    cells = [f"{v:.{d}f}" for d in range(0, 20) for v in rng.uniform(-1e6, 1e6, 500)]
    cells += ["", "-0", "007", "123456789012345", "0.1000000000000000055511151231257827"]
    for dtype in ("str", object):
        values = pd.Series(cells, dtype=dtype)
        expected = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
        got = _plain_numbers(values)
        assert got is not None
        assert np.array_equal(got, expected, equal_nan=True)
        assert np.array_equal(np.signbit(got), np.signbit(expected))  # -0 stays -0


@pytest.mark.parametrize("cell", ["+1", "1e5", ".5", "5.", "1,5", "inf", "nan", "1_000",
                                  "1234567890123456", " 1", "٣"])
def test_other_numbers_go_to_the_general_reader(cell):
    import pandas as pd

    from data_sources.user_file.positions import _plain_numbers, _to_float

    values = pd.Series(["1.5", cell], dtype="str")
    assert _plain_numbers(values) is None
    number, unreadable = _to_float(values)  # still read, by pandas
    assert number[0] == 1.5 and len(unreadable) == 2


def test_duplicates_equal_a_search_of_every_pair():
    """Only the groups (type, folded name) of two rows or more are searched: the flagged
    rows equal a search of every pair of rows, singletons and repeated places included."""
    import math

    import numpy as np

    from data_sources.user_file.columns import _fold
    from data_sources.user_file.duplicates import find_duplicates
    from diagnosis.schema import empty_facilities

    rng = np.random.default_rng(11)
    n = 400
    names = [f"Crèche {k}" for k in rng.integers(0, 150, n)]
    names[5] = "CRECHE  0"  # folds as « Crèche 0 »
    types = rng.choice(["eaje", "pmi"], n).tolist()
    lon = -1.55 + rng.normal(0, 0.0004, n).round(5)
    lat = 47.21 + rng.normal(0, 0.0004, n).round(5)
    lon[10:20], lat[10:20] = lon[9], lat[9]  # a shared place (a town hall)
    fac = empty_facilities().reindex(range(n))
    fac["name"], fac["type"] = names, types
    fac = fac.set_geometry(gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    got = find_duplicates(fac, rows=np.arange(2, n + 2), distance_m=50.0)

    def metres(i, j):
        p1, p2, dl = math.radians(lat[i]), math.radians(lat[j]), math.radians(lon[j] - lon[i])
        a = (math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2)
             * math.sin(dl / 2) ** 2)
        return 2 * 6_371_008.8 * math.asin(math.sqrt(min(1.0, a)))

    key = [(t, " ".join(_fold(nm).split())) for t, nm in zip(types, names, strict=True)]
    expected = {}
    for i in range(n):
        near = [j for j in range(n) if key[j] == key[i] and metres(i, j) <= 50.0]
        if min(near) < i:
            expected[i + 2] = min(near) + 2
    assert dict(zip(got["row"], got["duplicate_of_row"], strict=True)) == expected
    assert len(expected) > 20 and len({k for k in key if key.count(k) == 1}) > 20


def test_a_code_of_no_departement_is_flagged_like_an_unknown_commune(tmp_path):
    """« 99999 » (no département) with coordinates stopped the whole import (the
    geography of département « 99 » was asked for); it is now what « 44999 » (an
    unknown commune of a real département) is: kept, the code flagged to check."""
    f = tmp_path / "structures.csv"
    rows = {"99999": "Crèche A", "44999": "Crèche B"}
    f.write_text("nom;type;code_insee;latitude;longitude\n"
                 + "".join(f"{name};crèche;{code};47.4376;-2.0876\n"
                           for code, name in rows.items())
                 + "Crèche C;crèche;44129;47.4376;-2.0876\n", encoding="utf-8")
    report = load_facility_file(f, town_halls=HALLS).report
    assert (report.rows_read, report.accepted, len(report.rejected)) == (3, 3, 0)
    (flag,) = [w for w in report.warnings if w.startswith("code commune inconnu")]
    assert "99999" in flag and "44999" in flag and "lignes 2, 3 " in flag


_ARROW_TEXTS = {  # every line as wide as the header, nothing to strip
    "tidy": "nom;type;code_insee\nA;crèche;44109\nB;pmi;44129\n",
    "inner spaces and breaks kept": "nom;type\nCrèche  des\u000bBois;crèche\nB\x1cC;p\u2028mi\n",
    "empty cells": "nom;type;cp\nA;;\n;pmi;44000\n",
    "tab separator": "nom\ttype\nA\tcrèche\nB\tpmi\n",
    "no final line break": "nom;type\nA;crèche\nB;pmi",
    "an unnamed column": "nom;type;\nA;crèche;x\nB;pmi;\n",
    "windows line ends": "nom;type\r\nA;crèche\r\nB;pmi\r\n",
    "old mac line ends": "nom;type\rA;crèche\rB;pmi\r",
    "mixed line ends": "nom;type\r\nA;crèche\nB;pmi\rC;laep",
}


def _as_lists(read):
    """A reader's records with arrow's table written out as lists (to compare readers)."""
    from dataclasses import replace

    return None if read is None else replace(read, records=read.rows(), table=None)


@pytest.mark.parametrize("name", sorted(_ARROW_TEXTS))
def test_arrow_reader_equals_the_general_reader(name):
    """The usual CSV is split by arrow's reader: the same records, numbers and lines."""
    from data_sources.user_file.read import _arrow_records

    text = _ARROW_TEXTS[name]
    lines = text.splitlines(keepends=True)
    sep = "\t" if "\t" in text else ";"
    args = {"sep": sep, "width": len(lines[0].split(sep)), "skip_first": 0,
            "file_name": "f.csv", "max_rows": 1000, "header": True}
    read = _arrow_records(text, sep=sep, first=1, file_name="f.csv", max_rows=1000)
    assert read is not None and read.table is not None  # arrow's path was taken
    plain = _read_plain_records(lines, **args)
    assert plain is not None and plain.table is not None
    assert _as_lists(read) == _as_lists(plain) == _read_any_records(lines, **args)


@pytest.mark.parametrize("text", [
    "nom ;type\nA;crèche\nB;pmi\n",          # a name to strip, cells clean
    "nom;type\nA;crèche\u3000\nB;pmi\n",      # a cell to strip
    "nom;type\nA;crèche\n;\nB;pmi\n",         # a blank row
    "Liste;\nnom;type\nA;crèche\n",           # a title above the header
    "nom;type\n\ufeffA;crèche\n",              # a byte-order mark opening a row
])
def test_arrow_reader_leaves_names_and_cells_to_strip_to_the_line_reader(text):
    from data_sources.user_file.read import _arrow_records

    lines = text.splitlines(keepends=True)
    args = {"sep": ";", "width": 2, "skip_first": 0, "file_name": "f.csv", "max_rows": 10,
            "header": True}
    assert _arrow_records(text, sep=";", first=1, file_name="f.csv", max_rows=10) is None
    assert _as_lists(_read_plain_records(lines, **args)) == _read_any_records(lines, **args)


def test_arrow_reader_leaves_every_other_csv_to_the_line_reader():
    """Random texts (separators, blank and ragged lines, spaces, other line breaks, long
    lines): whichever path reads them, the records equal the general reader's."""
    import csv
    import random

    rng = random.Random(23)
    alphabet = ["a", "b", "é", ";", ";", "\n", "\n", " ", "\x0b", "\u2028", "\x1c",
                "\u3000", "\r\n", "\r"]
    taken = 0
    for k in range(3000):
        head = rng.choice(["a;b\n", "a ;b\n", "a;\u3000b\r\n", "a;b\r"])
        text = head + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        if k % 500 == 0:  # a line as long as the csv reader's field limit
            text += "x;" + "y" * (csv.field_size_limit() - 3) + "\n"
        lines = text.splitlines(keepends=True)
        for header in (True, False):
            args = {"sep": ";", "width": 2, "skip_first": 0, "file_name": "f.csv",
                    "max_rows": 1000, "header": header}
            plain = _read_plain_records(lines, **args)
            if plain is None:  # a line too long: the general reader flags it
                assert k % 500 == 0, repr(text[:200])
                continue
            taken += plain.table is not None
            assert _as_lists(plain) == _read_any_records(lines, **args), repr(text[:200])
    assert taken > 3  # (most random texts have a blank or ragged line, or a padded name)


def test_a_table_read_by_arrow_equals_one_read_line_by_line(tmp_path):
    import pandas.testing as pdt

    from data_sources.user_file.read import read_table

    text = ("nom;type;code_insee;\n"
            + "".join(f"S{i};crèche;44{i:03d};\n" for i in range(50)))  # an empty column
    arrow = read_table(text.encode(), file_name="a.csv")
    by_line = read_table(text.replace("S0;", '"S0";').encode(), file_name="a.csv")  # quoted
    pdt.assert_frame_equal(arrow.frame.astype(object), by_line.frame)
    assert by_line.frame.dtypes.eq("object").all()  # the line reader's table
    assert not arrow.frame.dtypes.eq("object").any()  # arrow's text
    assert list(arrow.frame.columns) == ["nom", "type", "code_insee"]  # the empty one dropped
    assert list(arrow.frame.index[:2]) == [2, 3] and arrow.warnings == by_line.warnings


def test_national_town_halls_are_computed_once_then_read_back_equal(tmp_path, monkeypatch):
    """The points kept in the cache folder read back as the computed ones, to the bit; a
    damaged file is computed again, and the points of an older geography are removed."""
    from geopandas.testing import assert_geodataframe_equal

    from data_sources import _halls_cache
    from data_sources.national import COMMUNES_FILE

    monkeypatch.setattr(_halls_cache, "cache_root", lambda: tmp_path)  # the cache folder
    folder = tmp_path / "geography"
    folder.mkdir()
    (folder / "town_halls-v1-0123.npz").write_bytes(b"an older geography")
    computed = []
    real = _halls_cache.read_points

    def counting_read(source):
        found = real(source)
        computed.append(found is None)
        return found

    monkeypatch.setattr(_halls_cache, "read_points", counting_read)
    expected = town_halls(load_national_communes())
    _national_town_halls.cache_clear()
    try:
        first = _national_town_halls()
        (stored,) = folder.glob("town_halls-*.npz")  # written; the older one removed
        assert stored.name != "town_halls-v1-0123.npz"
        _national_town_halls.cache_clear()
        second = _national_town_halls()
        stored.write_bytes(b"damaged")
        _national_town_halls.cache_clear()
        third = _national_town_halls()
    finally:
        _national_town_halls.cache_clear()
    assert computed == [True, False, True]
    for found in (first, second, third):
        assert_geodataframe_equal(found, expected)
    assert _halls_cache.read_points(COMMUNES_FILE) is not None  # rewritten after the damage


def test_pairs_within_reach_equal_a_k_d_tree():
    """The pairs of positions within reach, searched group by group with numpy (a large
    group by a k-d tree), are a k-d tree's over all the points (scipy as the oracle)."""
    import numpy as np
    from scipy.spatial import cKDTree

    from data_sources.user_file import duplicates
    from data_sources.user_file.duplicates import _pairs_within

    rng = np.random.default_rng(17)
    for trial in range(40):
        n = int(rng.integers(1, 400))
        groups = rng.integers(0, int(rng.integers(1, 60)), n) * 8.0
        if trial % 4 == 0:
            groups[: n // 2] = 8.0  # one large group: the k-d tree path
        xyz = rng.normal(0, 1, (n, 3)) * 1e-5
        xyz[rng.random(n) < 0.2] = 0.0  # a shared place
        points = np.column_stack([xyz, groups])
        radius = float(rng.choice([5e-6, 1e-5, 3e-5]))
        mine = _pairs_within(points, radius)
        oracle = cKDTree(points).query_pairs(r=radius, output_type="ndarray")
        assert sorted(map(tuple, mine.tolist())) == sorted(map(tuple, oracle.tolist()))
        assert (mine[:, 0] < mine[:, 1]).all() if len(mine) else True
    assert duplicates._PAIRWISE_MAX < 200  # (the large groups above took the other path)


def test_an_import_read_by_arrow_equals_one_read_by_the_csv_reader():
    """A whole import (facilities, rejected rows, notes, warnings, duplicates) is the same
    whether arrow's reader splits the file or the csv reader does (one quoted cell sends
    the same file to the line reader)."""
    import numpy as np
    import pandas.testing as pdt

    rng = np.random.default_rng(4)
    kinds = ["crèche", "pmi", "RPE", "truc", "micro-crèche", ""]
    rows = ["nom;type;code_insee;latitude;longitude;places"]
    for i in range(3000):
        lat, lon = 47.2 + rng.normal(0, 0.2), -1.6 + rng.normal(0, 0.3)
        if i % 13 == 0:
            lat, lon = lon, lat  # swapped
        code = str(rng.choice(["44109", "44129", "44999", "", "44184"]))
        la, lo = ("", "") if i % 11 == 0 else (f"{lat:.5f}", f"{lon:.5f}")
        rows.append(f"Structure {i % 900};{rng.choice(kinds)};{code};{la};{lo};"
                    f"{rng.choice(['12', '', '0', '3 places', 'x'])}")
    text = "\n".join(rows) + "\n"
    arrow = load_facility_file(text.encode(), name="s.csv", town_halls=HALLS)
    by_line = load_facility_file(text.replace("Structure 5;", '"Structure 5";', 1).encode(),
                                 name="s.csv", town_halls=HALLS)
    pdt.assert_frame_equal(arrow.facilities.to_wkt(), by_line.facilities.to_wkt())
    for table in ("rejected", "notes", "duplicates"):
        pdt.assert_frame_equal(getattr(arrow.report, table), getattr(by_line.report, table))
    assert arrow.report.warnings == by_line.report.warnings
    assert arrow.report.rows_read == 3000 == arrow.report.accepted + len(arrow.report.rejected)
    assert len(arrow.report.rejected) > 100 and len(arrow.report.notes) > 100
    from data_sources.user_file.read import read_table

    assert not read_table(text.encode(), file_name="s.csv").frame.dtypes.eq("object").any()
