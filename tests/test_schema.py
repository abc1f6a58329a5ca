from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point

from diagnosis.errors import InputError
from diagnosis.schema import (
    FACILITY_COLUMNS,
    FACILITY_TYPES,
    empty_facilities,
    facility_label,
    validate_facilities,
)


def _row(**over):
    r = {"facility_id": "x:1", "type": "eaje", "subtype": "micro_creche", "name": " Les Loupiots ",
         "address": None, "postcode": 44160.0, "code_insee": "44129", "capacity": "12",
         "operator": np.nan, "phone": "", "email": "", "website": "", "source": "x",
         "source_id": 1, "source_date": "2024", "position_precision": "address",
         "geometry": Point(-2.1, 47.4)}
    r.update(over)
    return r


def _gdf(*rows, crs="EPSG:4326"):
    return gpd.GeoDataFrame(list(rows), geometry="geometry", crs=crs)


def test_schema_lists_the_issue_types_and_columns():
    assert set(FACILITY_TYPES) == {"pmi", "eaje", "mam", "laep", "rpe", "centre_social", "evs",
                                   "maternite", "sage_femme", "mairie", "maison_1000_jours"}
    assert FACILITY_COLUMNS[-1] == "geometry" and "position_precision" in FACILITY_COLUMNS
    assert list(empty_facilities().columns) == list(FACILITY_COLUMNS)


def test_validate_normalises_text_numbers_and_codes():
    out = validate_facilities(_gdf(_row()), source="t")
    r = out.iloc[0]
    assert (r["name"], r["address"], r["postcode"], r["operator"], r["source_id"]) == (
        "Les Loupiots", "", "44160", "", "1")
    assert r["capacity"] == 12.0 and out["capacity"].dtype == "float64"


def test_validate_reprojects_to_wgs84():
    g = _gdf(_row(geometry=Point(330_000, 6_720_000)), crs="EPSG:2154")
    out = validate_facilities(g, source="t")
    assert out.crs.to_epsg() == 4326 and -3 < out.geometry.x.iloc[0] < 0


@pytest.mark.parametrize("over, field", [
    ({"type": "creche"}, "type"),
    ({"subtype": "garderie"}, "subtype"),
    ({"code_insee": "4412"}, "code_insee"),
    ({"code_insee": 44129}, None),  # an int code becomes the text '44129': accepted
    ({"position_precision": "gps"}, "position_precision"),
    ({"capacity": -3}, "capacity"),
])
def test_validate_rejects_bad_values_naming_the_column(over, field):
    if field is None:
        assert validate_facilities(_gdf(_row(**over)), source="t")["code_insee"][0] == "44129"
        return
    with pytest.raises(InputError, match=f"t: column '{field}'"):
        validate_facilities(_gdf(_row(**over)), source="t")


def test_validate_rejects_duplicates_missing_columns_and_geometry():
    with pytest.raises(InputError, match="unique ids"):
        validate_facilities(_gdf(_row(), _row()), source="t")
    with pytest.raises(InputError, match=r"lacks columns \['capacity'\]"):
        validate_facilities(_gdf(_row()).drop(columns="capacity"), source="t")
    with pytest.raises(InputError, match="no point geometry"):
        validate_facilities(_gdf(_row(geometry=None)), source="t")


def test_labels_are_french_and_unknown_type_is_named():
    assert facility_label("rpe") == "Relais petite enfance (RPE)"
    with pytest.raises(InputError, match="'crèche'"):
        facility_label("crèche")


def test_isin_codes_equals_pandas_isin():
    """The fast membership test answers as pandas' own, missing values included."""
    import pandas as pd

    from diagnosis.schema import isin_codes

    for dtype in ("str", object, "string"):
        col = pd.Series(["44129", None, "2A004", "44001", "44129"], dtype=dtype,
                        index=[5, 1, 7, 3, 9])
        for codes in ({"44129", "2A004"}, ["44001"], (), {"44129", None}, pd.Series(["2A004"])):
            got, want = isin_codes(col, codes), col.isin(codes)
            assert got.tolist() == want.tolist() and got.index.equals(want.index)


def test_text_columns_are_normalised_cell_by_cell_whatever_the_path():
    """The bulk paths of the schema's text normalisation give ``_as_text`` of each cell
    (text only, text with missing cells as in a merged table, mixed values)."""
    import pandas as pd

    from diagnosis.schema import _as_text, _texts

    rng = np.random.default_rng(1)
    pool = [" a", "b ", "", "  ", None, np.nan, pd.NA, "\u3000x\u00a0", "é", pd.NaT, 44.0, 3,
            "44129"]
    for _ in range(2000):
        cells = [pool[i] for i in rng.integers(0, len(pool), int(rng.integers(1, 8)))]
        assert _texts(pd.Series(cells, dtype=object)).tolist() == [_as_text(v) for v in cells]
    text = pd.Series([" a", "b", None], dtype="str")  # arrow text with a missing cell
    assert _texts(text).tolist() == ["a", "b", ""]
