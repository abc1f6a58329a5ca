"""The report's maps on an offline base: roads and water of the study's OSM extract.

data_sources.osm_base reads a real OpenStreetMap extract (test-only: Toulouse,
Compans-Caffarelli, OSM XML, ODbL: main roads, the Canal du Midi and water bodies); the
static maps draw them under the labels with the ODbL attribution; the demo's report draws
hand-made layers on every map. Nothing is fetched: a map without base layers keeps the
commune outlines only, and no map holds a tile image.
"""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.image import AxesImage
from shapely.geometry import LineString, box

from data_sources.osm_base import BASE_KINDS, load_base_layers, read_base_layers
from diagnosis import static_maps as sm
from diagnosis.errors import InputError
from tests.conftest import require_shared

TOULOUSE = "test-only/osm/toulouse_compans_caffarelli.osm"


@pytest.fixture
def figures(monkeypatch):
    caught = []
    real = sm.save_figure

    def spy(fig, **kw):
        caught.append(fig)
        return real(fig, **kw)

    monkeypatch.setattr(sm, "save_figure", spy)
    from diagnosis.report import render as report_render

    # the report command draws half its maps in a helper process: here, all in this one,
    # where they are seen
    monkeypatch.setattr(report_render, "_HelperFigures",
                        lambda figures, theirs: report_render._FigureSource(figures))
    return caught


def test_extract_gives_main_roads_rivers_and_water():
    base = read_base_layers(require_shared(TOULOUSE))
    counts = base["kind"].value_counts().to_dict()
    assert set(counts) <= set(BASE_KINDS)
    assert counts.get("major_road", 0) > 5 and counts.get("water", 0) >= 1
    assert set(base.loc[base["kind"].eq("water")].geom_type) <= {"Polygon", "MultiPolygon"}
    assert set(base.loc[base["kind"].ne("water")].geom_type) == {"LineString"}
    assert base.crs.to_epsg() == 4326
    west, south, east, north = base.total_bounds
    assert 1.40 < west < east < 1.45 and 43.60 < south < north < 43.62  # Toulouse
    half = read_base_layers(require_shared(TOULOUSE),
                            bounds=(west, south, (west + east) / 2, north))
    assert 0 < len(half) < len(base)


def test_no_extract_no_base_and_a_missing_file_is_named():
    com = gpd.GeoDataFrame(geometry=[box(1.41, 43.60, 1.44, 43.62)], crs="EPSG:4326")
    assert load_base_layers("", com) is None
    with pytest.raises(InputError) as exc:
        load_base_layers("/nonexistent/extrait.osm.pbf", com)
    assert exc.value.argument == "--osm-pbf" and "introuvable" in str(exc.value)


def test_map_draws_the_base_under_the_labels_with_odbl(figures):
    base = read_base_layers(require_shared(TOULOUSE))
    west, south, east, north = base.total_bounds
    mid = (west + east) / 2
    com = gpd.GeoDataFrame({"code_insee": ["31555", "31556"], "name": ["Ouest", "Est"],
                            "births_2024": [100.0, 50.0]},
                           geometry=[box(west, south, mid, north), box(mid, south, east, north)],
                           crs="EPSG:4326")
    sm.render_choropleth_map(com, "births_2024", title="Naissances", legend_title="N",
                             attribution="Insee", base=base)
    fig = figures[-1]
    ax = fig.axes[0]
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert lines and all(c.get_zorder() < 6 for c in lines)  # under the points and labels
    assert not [a for a in ax.get_children() if isinstance(a, AxesImage)]  # no tile
    texts = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert sm.OSM_BASE_ATTRIBUTION in texts and "Insee" in texts
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "route principale" in legend and "plan d'eau" in legend
    assert sm.layout_problems(fig) == []


def test_without_base_the_map_keeps_the_outlines_only(figures):
    com = gpd.GeoDataFrame({"code_insee": ["31555"], "name": ["A"], "births_2024": [1.0]},
                           geometry=[box(1.41, 43.60, 1.44, 43.62)], crs="EPSG:4326")
    sm.render_choropleth_map(com, "births_2024", title="N", legend_title="N",
                             attribution="Insee")
    fig = figures[-1]
    assert not [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert sm.OSM_BASE_ATTRIBUTION not in " ".join(t.get_text() for t in fig.texts)


def test_demo_report_draws_the_study_base_on_every_map(figures):
    from data_sources.workspace import load_workspace
    from diagnosis.pipeline import DiagnosisParams, run_diagnosis
    from diagnosis.report import render_diagnosis_html
    from diagnosis.travel import Travel

    ws = load_workspace("200000438")
    d = run_diagnosis(ws, DiagnosisParams(territory="200000438", mode="crow"),
                      travel=Travel())
    west, south, east, north = d.overview.layers["communes"].total_bounds
    road = LineString([(west, (south + north) / 2), (east, (south + north) / 2)])
    lake = box(west + 0.01, south + 0.01, west + 0.03, south + 0.02)
    base = gpd.GeoDataFrame({"kind": ["major_road", "water"]}, geometry=[road, lake],
                            crs="EPSG:4326")
    render_diagnosis_html(replace(d, base_layers=base))
    assert len(figures) >= 4
    for fig in figures:
        assert [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
        assert sm.OSM_BASE_ATTRIBUTION in " ".join(t.get_text() for t in fig.texts) \
            .replace("\n", " ")
        assert sm.layout_problems(fig) == []


OSM_XML = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="hand-made for tests/test_base_map.py">
  <node id="1" lat="47.43" lon="-2.25" version="1"/>
  <node id="2" lat="47.44" lon="-2.10" version="1"/>
  <node id="3" lat="47.45" lon="-1.98" version="1"/>
  <node id="4" lat="47.40" lon="-2.20" version="1"/>
  <node id="5" lat="47.40" lon="-2.18" version="1"/>
  <node id="6" lat="47.41" lon="-2.18" version="1"/>
  <way id="10" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/>
    <tag k="highway" v="primary"/><tag k="name" v="&lt;b&gt;RN 165&lt;/b&gt;"/></way>
  <way id="11" version="1"><nd ref="4"/><nd ref="5"/><nd ref="6"/><nd ref="4"/>
    <tag k="natural" v="water"/></way>
  <way id="12" version="1"><nd ref="4"/><nd ref="2"/><tag k="highway" v="footway"/></way>
</osm>
"""


def test_report_command_draws_the_extract_given_with_osm_pbf(tmp_path, figures):
    """``report --osm-pbf`` (a hand-made OSM XML over Pontchâteau): every map of the PDF
    draws the road and the pond, the footway is left out."""
    from diagnosis.__main__ import main

    extract = tmp_path / "pontchateau.osm"
    extract.write_text(OSM_XML, encoding="utf-8")
    base = read_base_layers(extract)
    assert sorted(base["kind"]) == ["major_road", "water"]
    out = tmp_path / "rapport.pdf"
    assert main(["report", "--territory", "200000438", "--out", str(out), "--mode", "crow",
                 "--no-comparison", "--osm-pbf", str(extract)]) == 0
    assert out.read_bytes().startswith(b"%PDF")
    assert len(figures) >= 4
    for fig in figures:
        assert [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
        assert sm.layout_problems(fig) == []
