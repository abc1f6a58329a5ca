"""The report's maps as a reader sees them: no label over another, legends off the map.

Every renderer of :mod:`diagnosis.static_maps` is run on the demo (the EPCI 200000438
and the whole Loire-Atlantique, 207 communes) and on dense hand-made cases (40 small
communes with long names, ten sites a few hundred metres apart). The figure is caught
just before it is encoded and :func:`diagnosis.static_maps.layout_problems` measures the
rendered extent of every text (matplotlib's Agg renderer): no two labels may intersect,
no label may touch a legend, no legend may cover the map frame.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from matplotlib.legend import Legend
from shapely.geometry import Point, box

from diagnosis import static_maps as sm
from diagnosis.settings import METRIC_CRS, WGS84

X0, Y0 = 300_000.0, 6_700_000.0  # Lambert-93, near Nantes


@pytest.fixture
def figures(monkeypatch):
    """The figures the renderers encode, in order."""
    caught = []
    real = sm.save_figure

    def spy(fig, **kw):
        caught.append(fig)
        return real(fig, **kw)

    monkeypatch.setattr(sm, "save_figure", spy)
    return caught


@pytest.fixture(scope="module")
def demo():
    from data_sources.workspace import load_workspace

    return load_workspace("200000438")


def _dense_communes(n_side: int = 7, size_m: float = 1_500.0) -> gpd.GeoDataFrame:
    polys, names = [], []
    for i in range(n_side):
        for j in range(n_side):
            polys.append(box(X0 + i * size_m, Y0 + j * size_m, X0 + (i + 1) * size_m,
                             Y0 + (j + 1) * size_m))
            names.append(f"Saint-Étienne-de-la-Grande-Forêt-{i}{j}")
    rng = np.random.default_rng(7)
    return gpd.GeoDataFrame({
        "code_insee": [f"44{k:03d}" for k in range(len(polys))], "name": names,
        "population_2022": rng.integers(100, 5000, len(polys)).astype(float),
        "births_2024": rng.integers(1, 60, len(polys)).astype(float)},
        geometry=polys, crs=METRIC_CRS).to_crs(WGS84)


def _assert_clean(figs, min_maps: int = 1):
    assert len(figs) >= min_maps
    for fig in figs:
        problems = sm.layout_problems(fig)
        assert problems == [], problems


def test_the_checker_finds_overlapping_labels_and_a_legend_on_the_map():
    fig, ax = sm._new_map("t")
    sm._set_extent(ax, (X0, Y0, X0 + 10_000, Y0 + 10_000))
    ax.text(X0 + 5_000, Y0 + 5_000, "Pontchâteau", gid=sm.COMMUNE_LABEL_GID)
    ax.text(X0 + 5_100, Y0 + 5_000, "Missillac", gid=sm.COMMUNE_LABEL_GID)
    ax.legend(handles=[], title="Dans la carte", loc="center")
    problems = sm.layout_problems(fig)
    assert any("« Pontchâteau » chevauche « Missillac »" in p for p in problems)
    fig2, ax2 = sm._new_map("t")
    fig2.legends.append(Legend(fig2, [], [], title="Sur la carte", loc="center"))
    assert any("couvre la carte" in p for p in sm.layout_problems(fig2))


def test_declutter_moves_or_hides_overlapping_names_and_says_so(figures):
    png = sm.render_territory_map(_dense_communes(), title="Dense", attribution="IGN",
                                  max_labels=100)
    assert png[:4] == b"\x89PNG"
    fig = figures[-1]
    _assert_clean([fig])
    hidden = [t for t in fig.axes[0].texts if not t.get_visible()]
    assert hidden, "49 long names on 49 small squares cannot all be written"
    notes = " ".join(t.get_text() for t in fig.texts)
    assert f"{len(hidden)} libellé(s) masqué(s)" in notes.replace("\n", " ")


def test_the_largest_commune_keeps_its_name(figures):
    com = _dense_communes()
    com.loc[5, "population_2022"] = 1e6
    sm.render_territory_map(com, title="Dense", attribution="IGN", max_labels=100)
    shown = {t.get_text() for t in figures[-1].axes[0].texts if t.get_visible()}
    assert com.loc[5, "name"] in shown


def test_close_sites_keep_their_names_apart(figures):
    com = _dense_communes(3, 4_000.0)
    pts = gpd.GeoDataFrame({"name": [f"Site n°{i} — centre social" for i in range(10)]},
                           geometry=[Point(X0 + 4_000 + 300 * i, Y0 + 5_000 + 150 * (i % 3))
                                     for i in range(10)], crs=METRIC_CRS).to_crs(WGS84)
    sm.render_points_map(com, pts, title="Sites", attribution="IGN", label_col="name")
    _assert_clean(figures)
    shown = [t for t in figures[-1].axes[0].texts
             if t.get_gid() == sm.POINT_LABEL_GID and t.get_visible()]
    assert len(shown) >= 5


def test_demo_epci_maps_are_clean(demo, figures):
    com = demo.communes.loc[demo.communes["code_insee"].isin(demo.territory.communes)]
    fac = demo.facilities
    sm.render_territory_map(com, title="T", attribution="IGN", context=demo.communes)
    sm.render_choropleth_map(com, "births_2024", title="Naissances", legend_title="N",
                             attribution="Insee", context=demo.communes)
    sm.render_choropleth_map(com, "poverty_rate_2021", title="Pauvreté", legend_title="%",
                             attribution="Insee", context=demo.communes,
                             missing_label="secret statistique")
    types = [t for t in sm.TYPE_COLORS if t != "mairie"]
    sm.render_offer_map(com, fac, types=types, title="Offre", attribution="IGN",
                        context=demo.communes)
    sm.render_points_map(com, fac.loc[fac["type"].eq("evs")
                                      | fac["code_insee"].isin(com["code_insee"])
                                      & fac["type"].ne("mairie")],
                         title="Sites", attribution="IGN", label_col="name",
                         context=demo.communes)
    _assert_clean(figures, min_maps=5)


def test_demo_departement_map_is_clean(demo, figures):
    """Bug: the département map piled commune names around Nantes."""
    sm.render_choropleth_map(demo.communes, "births_2024", title="Naissances 44",
                             legend_title="Naissances", attribution="Insee")
    _assert_clean(figures)
    texts = figures[-1].axes[0].texts
    names = [t for t in texts if t.get_gid() == sm.COMMUNE_LABEL_GID]
    assert len(names) == sm.MAX_NAMES // 2
    assert "Nantes" in {t.get_text() for t in names if t.get_visible()}


def test_demo_pdf_maps_are_clean(demo, figures):
    """Every map of the demo's report, as the report draws them."""
    from diagnosis.pipeline import DiagnosisParams, run_diagnosis
    from diagnosis.report import render_diagnosis_html
    from diagnosis.travel import Travel

    d = run_diagnosis(demo, DiagnosisParams(territory="200000438", mode="crow"),
                      travel=Travel())
    render_diagnosis_html(d)
    _assert_clean(figures, min_maps=4)


def test_a_site_marker_is_never_covered_and_its_commune_keeps_its_name(demo, figures):
    """Bug: the star of the recommended site (Le FIL, Pontchâteau) sat on « Pontchâteau »."""
    com = demo.communes.loc[demo.communes["code_insee"].isin(demo.territory.communes)]
    fac = demo.facilities
    site = fac.loc[fac["name"].str.contains("Le FIL", regex=False)].assign(rank=1)
    assert len(site) == 1
    sm.render_points_map(com, site, title="Sites", attribution="IGN", label_col="rank")
    fig = figures[-1]
    _assert_clean([fig])  # « couvre un site » would be listed
    shown = {t.get_text() for t in fig.axes[0].texts if t.get_visible()}
    assert {"Pontchâteau", "1"} <= shown
