"""Static maps: scale bar in metres, true north, classes, images (hand-made grids)."""

from __future__ import annotations

import io
import math

import geopandas as gpd
import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from shapely.geometry import Point, Polygon, box

from diagnosis import map_furniture as mf
from diagnosis import static_maps as sm
from diagnosis.errors import InputError
from diagnosis.schema import validate_facilities
from diagnosis.settings import METRIC_CRS, WGS84

X0, Y0 = 300_000.0, 6_700_000.0  # Lambert-93, near Nantes


def _communes(poverty=(12.0, float("nan"), 8.0)) -> gpd.GeoDataFrame:
    polys = [box(X0 + i * 10_000, Y0, X0 + (i + 1) * 10_000, Y0 + 10_000) for i in range(3)]
    return gpd.GeoDataFrame({
        "code_insee": ["44001", "44002", "44003"], "name": ["A", "B", "C"],
        "births_2024": [100.0, 50.0, 10.0], "poverty_rate_2021": list(poverty),
        "within_eaje": [True, False, False],
    }, geometry=polys, crs=METRIC_CRS).to_crs(WGS84)


def _facilities() -> gpd.GeoDataFrame:
    rows = [("eaje", "44001", X0 + 5_000, Y0 + 5_000, "address"),
            ("eaje", "44001", X0 + 6_000, Y0 + 5_000, "commune"),
            ("pmi", "44002", X0 + 15_000, Y0 + 5_000, "address")]
    recs = [{"facility_id": f"t:{i}", "type": t, "subtype": "", "name": f"F{i}", "address": "",
             "postcode": "", "code_insee": c, "capacity": np.nan, "operator": "", "phone": "",
             "email": "", "website": "", "source": "t", "source_id": str(i),
             "source_date": "2024", "position_precision": p, "geometry": Point(x, y)}
            for i, (t, c, x, y, p) in enumerate(rows)]
    return validate_facilities(gpd.GeoDataFrame(recs, crs=METRIC_CRS).to_crs(WGS84),
                               source="test")


@pytest.mark.parametrize("span, expected", [(40_000, 10_000), (7_300, 1_000),
                                            (130_000, 20_000), (1_000, 200), (60, 10)])
def test_nice_scale_length_is_round_and_at_most_a_quarter(span, expected):
    length = mf.nice_scale_length(span)
    assert length == expected and length <= span / 4


def test_nice_scale_length_rejects_bad_span():
    with pytest.raises(InputError, match="span_m"):
        mf.nice_scale_length(0)


def test_scale_bar_is_drawn_in_metres():
    fig = Figure(figsize=(4, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(X0, X0 + 40_000)
    ax.set_ylim(Y0, Y0 + 40_000)
    length = mf.add_scale_bar(ax)
    segments = [p for p in ax.patches if isinstance(p, Rectangle)
                and tuple(p.get_edgecolor()) == (0.0, 0.0, 0.0, 1.0)]
    # two segments, black and white, each half of 10 km, side by side
    assert length == 10_000
    assert len(segments) == 2
    assert [s.get_width() for s in segments] == [5_000, 5_000]
    assert segments[1].get_x() - segments[0].get_x() == 5_000
    labels = {t.get_text() for t in ax.texts}
    assert {"0", "10 km"} <= labels


def test_true_north_matches_the_lambert_93_convergence():
    # Lambert-93 is a conic projection with n = sin(46.5°)... exactly n = 0.7256077650;
    # the convergence of meridians is gamma = n × (lon − 3°), clockwise west of 3° E.
    lon, lat = -1.5536, 47.2184  # Nantes
    x, y = gpd.GeoSeries([Point(lon, lat)], crs=WGS84).to_crs(METRIC_CRS).iloc[0].coords[0]
    expected = 0.7256077650 * (lon - 3.0)
    assert mf.grid_convergence_deg(x, y) == pytest.approx(expected, abs=0.02)


def test_polygon_paths_keep_holes_and_empty_rows():
    outer = [(0, 0), (10, 0), (10, 10), (0, 10)]
    hole = [(4, 4), (6, 4), (6, 6), (4, 6)]
    geoms = gpd.GeoSeries([Polygon(outer, [hole]), None, box(20, 0, 30, 10)])
    paths = mf.polygon_paths(geoms)
    assert len(paths) == 3
    assert len(paths[0].vertices) == 10  # 5 closed vertices per ring, two rings
    assert len(paths[1].vertices) == 0
    # drawn filled, the hole stays empty (both rings given counter-clockwise here)
    fig = Figure(figsize=(1, 1), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.set_axis_off()
    ax.add_collection(PathCollection([paths[0]], facecolors="black", edgecolors="none"))
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())
    assert tuple(pixels[50, 50, :3]) == (255, 255, 255)  # centre: the hole
    assert tuple(pixels[90, 10, :3]) == (0, 0, 0)  # lower left: the polygon


def test_class_breaks_ignore_missing_values():
    breaks = sm.class_breaks(np.array([1.0, np.nan, 3.0, 5.0, np.inf]), n_classes=2)
    assert breaks.tolist() == [1.0, 3.0, 5.0]
    assert sm.class_breaks(np.array([np.nan])).tolist() == [0.0, 0.0]


def test_attribution_text_deduplicates_and_filters():
    src = [{"key": "a", "attribution": "IGN"}, {"key": "b", "attribution": "Insee"},
           {"key": "c", "attribution": "IGN"}]
    assert sm.attribution_text(src) == "Sources : IGN · Insee"
    assert sm.attribution_text(src, keys=["b"]) == "Sources : Insee"
    assert sm.attribution_text([]) == ""


def _image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def _pixels(data: bytes) -> np.ndarray:
    """The image as an (height, width, 3) array of 0-255 integers."""
    return np.asarray(_image(data).convert("RGB")).astype(int)


def _near(pixels: np.ndarray, color, *, tol: int) -> np.ndarray:
    """Mask of the pixels within ``tol`` (per channel, 0-255) of ``color``."""
    rgb = np.round(np.asarray(to_rgb(color)) * 255)
    return np.abs(pixels - rgb).max(axis=2) <= tol


def _region(mask: np.ndarray, *, min_run: int = 30) -> tuple[int, int, int, int]:
    """Box (x0, x1, y0, y1) of the rows and columns holding ``min_run`` masked pixels.

    A commune filled with a colour spans many pixels of a column; the same colour in a
    legend patch spans a few, so the legend is left out.
    """
    cols = np.flatnonzero(mask.sum(axis=0) >= min_run)
    rows = np.flatnonzero(mask.sum(axis=1) >= min_run)
    assert cols.size and rows.size, "the colour fills no area of the map"
    return int(cols.min()), int(cols.max()), int(rows.min()), int(rows.max())


def test_choropleth_with_missing_values_is_a_png_of_the_map_size():
    """The PNG is drawn: each commune in its class colour, the missing one in grey, west to east.

    Communes A (12 %), B (missing) and C (8 %) sit side by side from west to east; the
    highest class takes the dark end of the palette, the lowest its light end.
    """
    png = sm.render_choropleth_map(_communes(), "poverty_rate_2021", title="Pauvreté",
                                   legend_title="Taux (%)", attribution="Source : Insee")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = _image(png)
    w_in, h_in = sm.MAP_SIZE_IN
    assert img.size == (round(w_in * sm.MAP_DPI), round(h_in * sm.MAP_DPI))
    pixels = _pixels(png)
    assert (pixels < 250).any(axis=2).mean() > 0.05  # not a blank page
    blues = colormaps["Blues"]
    high = _region(_near(pixels, blues(0.9), tol=4))  # A, 12 %
    missing = _region(_near(pixels, sm._MISSING_COLOR, tol=4))  # B, not published
    low = _region(_near(pixels, blues(0.2), tol=4))  # C, 8 %
    assert high[1] < missing[0] + 5 and missing[1] < low[0] + 5  # A, then B, then C
    for box_ in (high, missing, low):  # each a commune-sized square, on one row
        width, height = box_[1] - box_[0], box_[3] - box_[2]
        assert width > 0.1 * img.size[0] and abs(width - height) <= 0.1 * width
        assert abs(box_[2] - high[2]) <= 3


def test_renderers_can_return_jpeg_and_refuse_other_formats():
    jpg = sm.render_territory_map(_communes(), title="T", attribution="IGN", fmt="jpeg")
    assert jpg[:3] == b"\xff\xd8\xff"
    assert mf.image_data_uri(jpg, fmt="jpeg").startswith("data:image/jpeg;base64,/9j/")
    with pytest.raises(InputError, match="fmt='gif'"):
        sm.render_territory_map(_communes(), title="T", attribution="IGN", fmt="gif")


def test_facility_map_draws_the_type_and_its_nearby_facilities():
    com = _communes()
    fac = _facilities()
    nearby = fac.iloc[[2]].assign(type="eaje")

    def draw(near):
        png = sm.render_facility_map(com, fac, facility_type="eaje", threshold_m=5_000,
                                     title="Crèches", attribution="IGN", nearby=near,
                                     context=com,
                                     town_halls=com.geometry.representative_point())
        assert _image(png).format == "PNG"
        return _pixels(png)

    with_nearby, without = draw(nearby), draw(None)
    for pixels in (with_nearby, without):
        assert not _near(pixels, sm.TYPE_COLORS["pmi"], tol=40).any()  # only the type drawn
    # A is within 5 km of a crèche (green), B and C beyond (orange)
    a0, a1, ay0, ay1 = _region(_near(with_nearby, sm._WITHIN_COLOR, tol=3))
    b0, b1, by0, by1 = _region(_near(with_nearby, sm._BEYOND_COLOR, tol=3))
    assert a1 < b0 + 5
    eaje = sm.TYPE_COLORS["eaje"]
    for pixels in (with_nearby, without):  # the territory's two crèches, in A
        assert _near(pixels, eaje, tol=40)[ay0:ay1 + 1, a0:a1 + 1].sum() > 20
    # the nearby crèche (in B) is drawn only when given
    assert _near(with_nearby, eaje, tol=40)[by0:by1 + 1, b0:b1 + 1].sum() > 5
    assert _near(without, eaje, tol=40)[by0:by1 + 1, b0:b1 + 1].sum() == 0


def test_facility_map_rejects_unknown_type_and_missing_crs():
    com = _communes()
    with pytest.raises(InputError, match="facility_type='creche'"):
        sm.render_facility_map(com, _facilities(), facility_type="creche", threshold_m=5_000,
                               title="x", attribution="")
    with pytest.raises(InputError, match="no CRS"):
        sm.render_territory_map(com.set_crs(None, allow_override=True), title="x",
                                attribution="")


def test_choropleth_rejects_unknown_column():
    with pytest.raises(InputError, match="column='nope'"):
        sm.render_choropleth_map(_communes(), "nope", title="", legend_title="",
                                 attribution="")


def test_format_length_fr():
    assert mf.format_length_fr(500) == "500 m"
    assert mf.format_length_fr(2_500) == "2,5 km"
    assert not math.isnan(mf.nice_scale_length(123_456.0))


def test_long_legend_labels_wrap_and_nearby_labels_agree_in_gender(monkeypatch):
    """Bug: « …voisines les plus p » was cut, and « Centres sociaux voisines » was wrong."""
    import geopandas as gpd
    from shapely.geometry import Point, box

    captured = {}
    real = sm._finish

    def spy(fig, ax, handles, **kw):
        out = real(fig, ax, handles, **kw)
        captured["labels"] = [h.get_label() for h in handles]
        return out

    monkeypatch.setattr(sm, "_finish", spy)
    communes = gpd.GeoDataFrame({"code_insee": ["44001"], "name": ["Alpha"],
                                 "within_centre_social": [True]},
                                geometry=[box(-2.0, 47.0, -1.9, 47.1)], crs="EPSG:4326")
    fac = gpd.GeoDataFrame({"type": ["centre_social"], "position_precision": ["address"]},
                           geometry=[Point(-1.95, 47.05)], crs="EPSG:4326")
    near = gpd.GeoDataFrame({"type": ["centre_social"]}, geometry=[Point(-1.8, 47.05)],
                            crs="EPSG:4326")
    sm.render_facility_map(communes, fac, facility_type="centre_social", threshold_m=5000,
                           title="t", attribution="IGN", nearby=near)
    labels = captured["labels"]
    joined = " ".join(x.replace("\n", " ") for x in labels)
    assert "Centres sociaux voisins les plus proches (1)" in joined
    assert "voisines" not in joined
    assert all(len(line) <= sm.LEGEND_WRAP for x in labels for line in x.split("\n"))
