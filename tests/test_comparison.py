"""Comparing territories: hand-checkable grid, then the 17 EPCIs of the demo département.

The grid: three 10 km square communes in a row (A, B, C) near Nantes, town halls at their
centres; one crèche at A's town hall. Territory T1 = {A}, T2 = {B, C}.
"""

from __future__ import annotations

import io
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from diagnosis.__main__ import main
from diagnosis.comparison import (
    build_comparison_chart,
    compare_territories,
    comparison_row,
    metric_label,
    render_comparison_chart,
    split_territory,
)
from diagnosis.errors import InputError
from diagnosis.overview import ANALYSED_TYPES, compute_overview
from diagnosis.schema import Territory, validate_facilities
from diagnosis.settings import METRIC_CRS, WGS84

X0, Y0 = 300_000.0, 6_700_000.0


def _grid():
    polys = [box(X0 + i * 10_000, Y0, X0 + (i + 1) * 10_000, Y0 + 10_000) for i in range(3)]
    halls = gpd.GeoSeries([Point(X0 + i * 10_000 + 5_000, Y0 + 5_000) for i in range(3)],
                          crs=METRIC_CRS).to_crs(WGS84)
    com = gpd.GeoDataFrame({
        "code_insee": ["44001", "44002", "44003"], "name": ["A", "B", "C"],
        "births_2024": [100.0, 50.0, 10.0], "population_2022": [5000.0, 2000.0, 500.0],
        "under3_estimate": [300.0, 150.0, 30.0],
        "townhall_lon": halls.x.to_numpy(), "townhall_lat": halls.y.to_numpy(),
    }, geometry=polys, crs=METRIC_CRS).to_crs(WGS84)
    fac = gpd.GeoDataFrame([{
        "facility_id": "t:0", "type": "eaje", "subtype": "", "name": "Crèche", "address": "",
        "postcode": "", "code_insee": "44001", "capacity": 20.0, "operator": "", "phone": "",
        "email": "", "website": "", "source": "t", "source_id": "0", "source_date": "2024",
        "position_precision": "address", "geometry": Point(X0 + 5_000, Y0 + 5_000)}],
        geometry="geometry", crs=METRIC_CRS).to_crs(WGS84)
    return com, validate_facilities(fac, source="test")


T1 = Territory("epci", "200000001", "T1", ("44001",), ("44",))
T2 = Territory("epci", "200000002", "T2", ("44002", "44003"), ("44",))
T3 = Territory("epci", "200000003", "T3", ("44003", "49001"), ("44", "49"))


#: A loaded source that lists every crèche: a count or share of 0 is then a fact.
EAJE_SOURCE = {"key": "bpe", "title": "BPE", "covers": "eaje"}


def _overviews(threshold_m=5_000.0):
    com, fac = _grid()
    return [compute_overview(t, com, fac, threshold_m=threshold_m, sources=[EAJE_SOURCE])
            for t in (T1, T2)]


def test_rows_and_ranks_by_hand():
    df = compare_territories(_overviews(), extras={"200000001": {"priority_score": 10.0},
                                                   "200000002": {"priority_score": 30.0}})
    t1, t2 = df.iloc[0], df.iloc[1]
    assert list(df["code"]) == ["200000001", "200000002"]
    assert (t1["births_2024"], t2["births_2024"]) == (100.0, 60.0)
    assert (t1["under3_estimate"], t2["under3_estimate"]) == (300.0, 180.0)
    # the crèche is at A's town hall: A within 5 km; B's hall is 10 km away, C's 20 km
    assert (t1["n_eaje"], t2["n_eaje"]) == (1, 0)
    assert (t1["places_eaje"], np.isnan(t2["places_eaje"])) == (20.0, True)
    assert (t1["share_within_eaje"], t2["share_within_eaje"]) == (1.0, 0.0)
    assert (t1["communes_without_eaje"], t2["communes_without_eaje"]) == (0, 2)
    assert (t1["rank_births_2024"], t2["rank_births_2024"]) == (1, 2)
    assert (t1["rank_share_within_eaje"], t2["rank_share_within_eaje"]) == (2, 1)
    assert (t1["rank_priority_score"], t2["rank_priority_score"]) == (2, 1)
    assert np.isnan(t1["cohort_capacity"])
    assert not df["coverage_partial"].any()


def test_partial_coverage_is_flagged():
    com, fac = _grid()
    ov = compute_overview(T3, com, fac)
    row = comparison_row(ov)
    assert row["coverage_partial"] is True
    assert (row["n_communes"], row["n_communes_total"], row["n_communes_missing"]) == (1, 2, 1)
    assert "49" in row["coverage_note"] and "partiels" in row["coverage_note"]


def test_bad_inputs():
    with pytest.raises(InputError, match="empty"):
        compare_territories([])
    ovs = _overviews()
    with pytest.raises(InputError, match="twice"):
        compare_territories([ovs[0], ovs[0]])
    com, fac = _grid()
    other = compute_overview(T2, com, fac, threshold_m=3_000.0)
    with pytest.raises(InputError, match="different thresholds"):
        compare_territories([ovs[0], other])


def test_charts():
    df = compare_territories(_overviews())
    chart = build_comparison_chart(df, metric="share_within_eaje", highlight="200000001")
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["x"]["field"] == "share_within_eaje"
    assert spec["encoding"]["x"]["title"] == metric_label("share_within_eaje")
    # French numbers ("1 000", "50 %"), drawn as SVG (text a browser test can read).
    assert spec["config"]["locale"]["number"]["thousands"] == "\u202f"
    assert spec["config"]["locale"]["number"]["decimal"] == ","
    assert spec["usermeta"]["embedOptions"]["renderer"] == "svg"
    png = render_comparison_chart(df, metric="births_2024", highlight="200000001")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match="metric='nope'"):
        render_comparison_chart(df, metric="nope")


def test_metric_labels_are_french():
    assert metric_label("communes_without_pmi") == "Communes sans : Centres de PMI"
    assert metric_label("under3_estimate").startswith("Moins de 3 ans (estimation")


# --- The demo département --------------------------------------------------------------


@pytest.fixture(scope="module")
def compare_44():
    """`compare --territory 44 --by epci --format json`, run once for the module."""
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["compare", "--territory", "44", "--by", "epci", "--format", "json"]) == 0
    return json.loads(out.getvalue())


def test_compare_44_by_epci_gives_each_epci_its_own_diagnosis(compare_44):
    from data_sources.cog import load_cog
    from data_sources.workspace import load_workspace

    cog = load_cog()
    com = cog.communes.loc[cog.communes["kind"].eq("commune")]
    expected_codes = sorted(set(com.loc[com["dep_code"].eq("44"), "epci_code"]))
    assert len(expected_codes) == 17
    assert [r["code"] for r in compare_44] == expected_codes
    for row in compare_44:
        ws = load_workspace(row["code"])  # the EPCI alone, as `summary` would load it
        s = compute_overview(ws.territory, ws.communes, ws.facilities,
                             sources=ws.sources).summary
        assert row["name"] == s["territory"]["name"]
        assert row["births_2024"] == s["births_2024"]
        assert row["under3_estimate"] == s["under3_estimate"]
        assert row["population_2022"] == s["population_2022"]
        assert row["n_communes"] == s["n_communes"]
        assert row["n_communes_missing"] == s["n_communes_missing"]
        for t in ANALYSED_TYPES:
            f, w = s["facilities"][t], s["births_within_threshold"][t]
            # the demo's directory is partial: a count of 0 is not known (null)
            assert row[f"n_{t}"] == (f["count"] if f["count"] or f["status"] == "complete"
                                     else None)
            assert row[f"places_{t}"] == f["places_known"]
            assert row[f"births_within_{t}"] == w["births"]
            assert row[f"share_within_{t}"] == w["share"]
            assert row[f"offer_status_{t}"] == f["status"]
            assert row[f"communes_without_{t}"] == len(s["communes_without"][t])


def test_compare_44_flags_the_epcis_that_straddle_a_border(compare_44):
    from data_sources.cog import load_cog

    com = load_cog().communes
    com = com.loc[com["kind"].eq("commune")]
    outside = com.loc[~com["dep_code"].eq("44")].groupby("epci_code").size()
    for row in compare_44:
        n_out = int(outside.get(row["code"], 0))
        assert row["coverage_partial"] is (n_out > 0)
        assert row["n_communes_missing"] == n_out
    assert sum(r["coverage_partial"] for r in compare_44) == 3
    # the 17 EPCIs cover the département's 207 communes and its 14,582 births
    assert sum(r["n_communes"] for r in compare_44) == 207
    assert sum(r["births_2024"] for r in compare_44) == 14582


def test_split_territory():
    from data_sources.cog import load_cog, resolve

    cog = load_cog()
    communes = split_territory(resolve("200000438"), cog, by="commune")
    assert [c.kind for c in communes] == ["commune"] * 9
    assert split_territory(resolve("200000438"), cog, by="epci")[0].code == "200000438"
    with pytest.raises(InputError, match="by='iris'"):
        split_territory(resolve("44"), cog, by="iris")


def test_cli_compare_by_commune_csv(capsys):
    assert main(["compare", "--territory", "200000438", "--by", "commune",
                 "--format", "csv"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("\ufeff")  # Excel reads the accents
    df = pd.read_csv(io.StringIO(text.lstrip("\ufeff")), sep=";", decimal=",",
                     dtype={"Code": str})
    assert len(df) == 9 and df["Naissances 2024"].sum() == 353
    assert df["Code"].str.len().eq(5).all()
    assert "False" not in text and "True" not in text
    assert not any(c.startswith(("births_", "share_", "n_")) for c in df.columns)
    assert df["Naissances par an (moyenne 2016-2021)"].dtype.kind == "i"  # rounded


def test_cli_compare_list_skips_territories_without_data(capsys):
    assert main(["compare", "--territories", "200000438", "13055", "--format", "json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [r["code"] for r in rows] == ["200000438"]
    assert "13055" in captured.err or "Marseille" in captured.err


def test_cli_compare_only_missing_data_exits_2(capsys):
    assert main(["compare", "--territories", "13055"]) == 2
    assert "données" in capsys.readouterr().err


def test_cli_compare_table_and_out_file(tmp_path, capsys):
    out = tmp_path / "cmp.csv"
    assert main(["compare", "--territory", "200000438", "--by", "commune", "--format", "csv",
                 "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert main(["compare", "--territory", "200000438", "--by", "epci"]) == 0
    assert "Pontchâteau" in capsys.readouterr().out
