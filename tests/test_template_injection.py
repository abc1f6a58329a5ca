"""Text from a source or a user file never runs as template code (security, issue 11.1).

branca renders each map element's script and then feeds that output to Jinja again as
template source when the page is built (``Figure.render``, and ``st_folium`` in the app).
A facility or commune name such as ``{{ lipsum.__globals__.os.popen('id').read() }}``
used to run on the server, and ``{% endfor %}`` crashed the pages with a
TemplateSyntaxError. Each test below feeds hostile strings through one way data comes in
(a user's CSV through the importer, an OSM features table shaped as osmnx returns it,
commune names, a site name, the app's upload) and renders every map as folium and as
streamlit-folium do. The sentinel ``{{ 'MAILLAGE' ~ 'PWNED' }}`` would print
``MAILLAGEPWNED`` if Jinja evaluated it.

Fixtures are hand-made: three 2 km squares near Nantes (Lambert-93).
"""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from diagnosis import maps
from diagnosis.overview import compute_overview
from diagnosis.schema import FACILITY_DTYPES, Territory, validate_facilities
from diagnosis.settings import METRIC_CRS, WGS84

SENTINEL = "{{ 'MAILLAGE' ~ 'PWNED' }}"
EXECUTED = "MAILLAGEPWNED"
HOSTILE = (
    "Crèche {{ lipsum.__globals__.os.popen('id').read() }}",
    f"Relais {SENTINEL}",
    "LAEP {% endfor %}",
    "Centre {{ ouvert",
    "PMI {# commentaire",
    "Maison }} {%- raw %}",
    "{{ config.items() }}<script>alert(1)</script>",
)
X0, Y0 = 355_000.0, 6_690_000.0
TERRITORY = Territory("epci", "200000001", "CC de Test", ("44001", "44002"), ("44",))
SOURCES = ({"key": "test", "title": "Test {{ 7*7 }}", "vintage": "2025",
            "licence": "Licence Ouverte 2.0", "attribution": f"Source {SENTINEL}"},)


def _communes(name: str) -> gpd.GeoDataFrame:
    squares = [box(X0 + 2000 * i, Y0, X0 + 2000 * (i + 1), Y0 + 2000) for i in range(3)]
    gdf = gpd.GeoDataFrame({
        "code_insee": ["44001", "44002", "44003"],
        "name": [name, "Béta", "Gamma"],
        "births_2024": [10.0, 20.0, 40.0],
        "population_2022": [1000.0, 2000.0, 3000.0],
        "under3_estimate": [30.0, 60.0, 120.0],
    }, geometry=squares, crs=METRIC_CRS)
    halls = gpd.GeoSeries([Point(X0 + 1000 + 2000 * i, Y0 + 1000) for i in range(3)],
                          crs=METRIC_CRS).to_crs(WGS84)
    gdf["townhall_lon"] = halls.x.to_numpy()
    gdf["townhall_lat"] = halls.y.to_numpy()
    return gdf.to_crs(WGS84)


def _facilities(names: tuple[str, ...]) -> gpd.GeoDataFrame:
    kinds = ("pmi", "eaje", "rpe", "laep", "centre_social", "mairie", "eaje")
    rows = []
    for i, name in enumerate(names):
        row: dict[str, object] = {c: "" for c in FACILITY_DTYPES}
        row.update(facility_id=f"f{i}", type=kinds[i % len(kinds)], code_insee="44001",
                   capacity=np.nan, source="test", source_id=f"f{i}", name=name,
                   address=name, operator=name, phone=name, email=name, notes=name,
                   website="https://example.org/{{x}}", position_precision="address",
                   geometry=Point(X0 + 300 + 250 * i, Y0 + 500 + 150 * i))
        rows.append(row)
    gdf = gpd.GeoDataFrame(pd.DataFrame(rows), geometry="geometry", crs=METRIC_CRS)
    return validate_facilities(gdf.to_crs(WGS84), source="test")


def _render_everywhere(m: folium.Map) -> list[str]:
    """The page as folium renders it, and as streamlit-folium builds it for the app."""
    from streamlit_folium import generate_leaflet_string

    pages = [m.get_root().render()]
    m.render()
    pages.append(generate_leaflet_string(m))
    return pages


def _assert_inert(m: folium.Map) -> None:
    for page in _render_everywhere(m):
        assert EXECUTED not in page
        assert "uid=" not in page
        assert "{{" not in page and "{%" not in page and "{#" not in page


def _every_map(communes: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame,
               site_name: str) -> list[folium.Map]:
    from diagnosis.analyses import (
        compute_access,
        compute_catchment,
        compute_partners,
        compute_siting,
        find_site,
    )

    ov = compute_overview(TERRITORY, communes, facilities, threshold_m=3000, sources=SOURCES)
    res = compute_access(ov, facilities, max_minutes=10)
    sc = compute_siting(ov, facilities, k_values=[1], max_minutes=10, host_types=["rpe", "pmi"],
                        need_weights={"poverty": 0, "single_parent": 0})
    site = find_site(facilities, str(facilities["facility_id"].iloc[1]))
    area = compute_catchment(site.geometry, max_minutes=10).assign(name=site_name)
    near = compute_partners(ov, facilities, site, max_minutes=10).layers["near_site"]
    return [
        maps.build_overview_map(ov, attribution=f"IGN {SENTINEL}"),
        maps.build_priority_map(res.gaps, catchment=area, catchment_label=site_name),
        maps.build_access_map(res.access, ov.layers["communes"], "pmi", facilities=facilities,
                              catchment=area, catchment_label=site_name),
        maps.build_siting_map(sc.main, communes=ov.layers["communes"], catchments=area,
                              user_points=[(-1.55, 47.2)]),
        maps.build_partner_network_map(site, near, facilities, catchment=area,
                                       attribution=SENTINEL),
    ]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_names_in_every_map_stay_text(hostile):
    names = tuple(f"{hostile} {i}" for i in range(7))
    for m in _every_map(_communes(hostile), _facilities(names), hostile):
        _assert_inert(m)


def test_braces_are_still_shown_to_the_reader():
    m = maps.build_overview_map(
        compute_overview(TERRITORY, _communes("Alpha"), _facilities((f"Crèche {SENTINEL}",)),
                         threshold_m=3000, sources=SOURCES))
    page = m.get_root().render()
    page = re.sub(r"\\u([0-9a-fA-F]{4})", lambda c: chr(int(c.group(1), 16)), page)  # tojson
    shown = html_lib.unescape(page)
    assert f"Crèche {SENTINEL}" in shown  # what the browser displays, braces included


def test_hostile_names_from_a_user_csv_through_the_importer(tmp_path: Path):
    from data_sources.user_file import load_facility_file

    lines = ["nom;type;latitude;longitude;code_insee"]
    lines += [f"{h.replace(';', ',')};crèche;47.2{i};-1.55;44109" for i, h in enumerate(HOSTILE)]
    path = tmp_path / "structures_hostiles.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = load_facility_file(path)
    fac = result.facilities
    assert len(fac) == len(HOSTILE)
    assert set(fac["name"]) == {h.strip() for h in HOSTILE}  # kept as data, unchanged
    communes = _communes("Alpha")
    fac = fac.to_crs(WGS84)
    # Place them inside the fixture's communes (the importer kept positions; move for the map).
    pts = gpd.GeoSeries([Point(X0 + 300 + 200 * i, Y0 + 400) for i in range(len(fac))],
                        crs=METRIC_CRS).to_crs(WGS84)
    fac = fac.set_geometry(pts.to_numpy()).assign(code_insee="44001")
    ov = compute_overview(TERRITORY, communes, fac, threshold_m=3000, sources=SOURCES)
    _assert_inert(maps.build_overview_map(ov))


def test_hostile_names_from_osm_features():
    """OSM features as osmnx's ``features_from_polygon`` returns them (element, id index)."""
    from data_sources.osm import parse_osm_features

    pts = gpd.GeoSeries([Point(X0 + 400 + 300 * i, Y0 + 600) for i in range(3)],
                        crs=METRIC_CRS).to_crs(WGS84)
    raw = gpd.GeoDataFrame({
        "amenity": ["kindergarten", "social_centre", "childcare"],
        "name": [HOSTILE[0], HOSTILE[2], HOSTILE[1]],
        "addr:street": [HOSTILE[3], "", ""],
        "operator": [HOSTILE[4], "", ""],
    }, geometry=pts.to_numpy(), crs=WGS84,
        index=pd.MultiIndex.from_tuples([("node", 1), ("node", 2), ("node", 3)],
                                        names=["element", "id"]))
    fac = parse_osm_features(raw, communes=_communes("Alpha"))
    assert len(fac) >= 2
    assert HOSTILE[0] in set(fac["name"])
    ov = compute_overview(TERRITORY, _communes(SENTINEL), fac, threshold_m=3000,
                          sources=SOURCES)
    _assert_inert(maps.build_overview_map(ov))


def test_report_html_shows_hostile_names_as_text():
    """The PDF's HTML goes through Jinja with autoescape: names are variables, not source."""
    from diagnosis.report import render_report_html

    ov = compute_overview(TERRITORY, _communes(SENTINEL), _facilities(HOSTILE),
                          threshold_m=3000, sources=SOURCES)
    page = render_report_html(ov)
    assert EXECUTED not in page and "uid=" not in page
    assert "&#39;MAILLAGE&#39; ~ &#39;PWNED&#39;" in page or "'MAILLAGE' ~ 'PWNED'" in page


def test_pdf_maps_print_dollar_and_brace_names_as_text():
    """matplotlib would read ``$…$`` in a commune name as TeX (and fail on ``$\\frac$``)."""
    from diagnosis.static_maps import render_territory_map

    communes = _communes("Saint-$\\frac{1}$-sur-{{ Mer }}").to_crs(METRIC_CRS)
    png = render_territory_map(communes, title="Territoire", attribution="IGN $x$")
    assert png.startswith(b"\x89PNG")


def test_a_huge_name_is_cut_in_the_pdf_cells():
    """Issue 11.9: a 20,000-character name made the PDF 50 pages; cells show 300 at most."""
    from diagnosis.report import MAX_CELL_CHARS, render_report_html

    name = "Crèche " + "x" * 20_000
    ov = compute_overview(TERRITORY, _communes("Alpha"), _facilities((name,)),
                          threshold_m=3000, sources=SOURCES)
    page = render_report_html(ov)
    assert "x" * (MAX_CELL_CHARS + 10) not in page
    assert "Crèche xxx" in page


def test_special_files_are_never_replaced(tmp_path):
    """Issue 11.8: --out on a device or a FIFO is refused in French."""
    import os

    from diagnosis.__main__ import main

    fifo = tmp_path / "tube.pdf"
    os.mkfifo(fifo)
    assert main(["report", "--territory", "44129", "--out", str(fifo)]) == 2
    assert fifo.exists() and not fifo.is_file()
