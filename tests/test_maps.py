"""Tests of diagnosis.maps: render the folium map to HTML and check what a person sees.

Fixtures are hand-made: three 2 km × 2 km square communes side by side (EPSG:2154,
near Nantes); the territory holds the first two. Facilities carry HTML-looking values
in every text field to check that popups and tooltips escape them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import tomllib
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from diagnosis import maps
from diagnosis.errors import InputError
from diagnosis.maps import (
    FACILITY_STYLES,
    LOCAL_ASSETS,
    _common,
    build_overview_map,
    class_breaks,
    default_attribution,
    find_external_assets,
    set_asset_base_url,
)
from diagnosis.maps._layers import _spread_coincident
from diagnosis.overview import compute_overview
from diagnosis.schema import FACILITY_DTYPES, FACILITY_TYPES, Territory, validate_facilities
from diagnosis.settings import METRIC_CRS, WGS84

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / "static" / "vendor"
X0, Y0 = 355_000.0, 6_690_000.0  # Lambert-93, near Nantes
SOURCES = (
    {"key": "demo_directory", "title": "Annuaire <i>partiel</i>", "vintage": "2025",
     "licence": "Licence Ouverte 2.0", "attribution": "IGN, INSEE — Admin Express"},
    {"key": "insee", "title": "INSEE", "vintage": "2025", "licence": "Licence Ouverte 2.0",
     "attribution": "Source : Insee"},
)
TERRITORY = Territory("epci", "200000001", "CC de Test", ("44001", "44002"), ("44",))


def _communes() -> gpd.GeoDataFrame:
    squares = [box(X0 + 2000 * i, Y0, X0 + 2000 * (i + 1), Y0 + 2000) for i in range(3)]
    gdf = gpd.GeoDataFrame({
        "code_insee": ["44001", "44002", "44003"],
        "name": ["Alpha", "Béta", "Gamma"],
        "births_2024": [10.0, np.nan, 40.0],
        "population_2022": [1000.0, 2000.0, 3000.0],
        "under3_estimate": [30.0, np.nan, 120.0],
    }, geometry=squares, crs=METRIC_CRS)
    halls = gpd.GeoSeries([Point(X0 + 1000 + 2000 * i, Y0 + 1000) for i in range(3)],
                          crs=METRIC_CRS).to_crs(WGS84)
    gdf["townhall_lon"] = halls.x.to_numpy()
    gdf["townhall_lat"] = halls.y.to_numpy()
    return gdf.to_crs(WGS84)


def _facility(fid: str, ftype: str, code: str, x: float, y: float, **extra: object) -> dict:
    row: dict[str, object] = {c: "" for c in FACILITY_DTYPES}
    row.update(facility_id=fid, type=ftype, code_insee=code, capacity=np.nan,
               source="demo_directory", source_id=fid, position_precision="address",
               geometry=Point(x, y))
    row.update(extra)
    return row


def _facilities() -> gpd.GeoDataFrame:
    rows = [
        _facility("f1", "pmi", "44001", X0 + 500, Y0 + 500,
                  name="<script>alert(1)</script>", address="<b>1 rue</b>",
                  operator="<i>op</i>", phone="<u>02</u>", email="<em>a@b.fr</em>",
                  website="javascript:alert('site')", notes="<img src=x onerror=alert(2)>",
                  source_date="<2024>", capacity=12.0),
        _facility("f2", "eaje", "44002", X0 + 3000, Y0 + 1000, name="Crèche Béta",
                  website="https://example.org/creche?a=1&b=2", subtype="micro_creche"),
        _facility("f3", "eaje", "44002", X0 + 3000, Y0 + 1000, name="Crèche jumelle"),
        _facility("f4", "pmi", "44003", X0 + 5000, Y0 + 1000, name="PMI de Gamma",
                  position_precision="commune"),
        _facility("h1", "mairie", "44001", X0 + 1000, Y0 + 1000, name="Mairie d'Alpha"),
        _facility("h2", "mairie", "44002", X0 + 3000, Y0 + 1000, name="Mairie de Béta"),
    ]
    gdf = gpd.GeoDataFrame(pd.DataFrame(rows), geometry="geometry", crs=METRIC_CRS)
    return validate_facilities(gdf.to_crs(WGS84), source="test")


@pytest.fixture(scope="module", autouse=True)
def _cdn_assets():
    """Maps as outside the app: app.py (run by test_app's AppTest) turns local assets on."""
    saved = _common._asset_base_url
    set_asset_base_url(None)
    yield
    set_asset_base_url(saved)


@pytest.fixture(scope="module")
def overview():
    return compute_overview(TERRITORY, _communes(), _facilities(), threshold_m=3000,
                            sources=SOURCES)


@pytest.fixture(scope="module")
def rendered(overview) -> tuple[folium.Map, str]:
    m = build_overview_map(overview)
    return m, m.get_root().render()


def _groups(m: folium.Map) -> dict[str, folium.FeatureGroup]:
    return {c.layer_name: c for c in m._children.values() if isinstance(c, folium.FeatureGroup)}


def _js(text: str) -> str:
    """How Jinja's ``tojson`` writes a string inside the page (HTML-safe JSON)."""
    return (json.dumps(text).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026").replace("'", "\\u0027"))


def _geojson_strings(m: folium.Map) -> list[str]:
    """Every tooltip and popup string of every GeoJSON layer of the map."""
    out = []
    for group in _groups(m).values():
        for child in group._children.values():
            if isinstance(child, folium.GeoJson):
                for feat in child.data.get("features", []):
                    out += [str(v) for v in feat.get("properties", {}).values()]
    return out


def test_legend_in_french_with_types_and_classes(rendered):
    html = rendered[1].replace("<\\/", "</")  # the legend sits in a JS string
    assert "Légende" in html
    assert "Naissances 2024 (domiciliées)</b> par commune" in html
    # the fixture's sources list PMI and crèches partially: counts are lower bounds
    assert "Centres de PMI : ≥\u00a01 (+1 hors territoire)" in html
    assert "Crèches (EAJE) : ≥\u00a02" in html
    assert "non connu ou non diffusé (secret statistique)" in html  # Béta's births are NaN
    assert "Mairies (2) : masquées" in html
    assert "symbole pâle : hors du territoire" in html


def test_one_layer_per_type_with_fixed_colours(rendered):
    m, html = rendered
    names = set(_groups(m))
    assert "Centres de PMI (1 + 1 hors territoire)" in names
    assert "Crèches (EAJE) (2)" in names
    assert "Mairies (2)" in names
    assert not any(n.startswith("MAM") for n in names)  # no MAM in the data: no layer
    for name in ("Centres de PMI (1 + 1 hors territoire)", "Crèches (EAJE) (2)",
                 "Mairies (2)", "Contour du territoire"):
        assert _js(name) in html, name  # listed in the layer control
    assert FACILITY_STYLES["pmi"]["color"] in html and FACILITY_STYLES["eaje"]["color"] in html
    assert len({s["color"] for s in FACILITY_STYLES.values()}) == len(FACILITY_STYLES)
    assert set(FACILITY_STYLES) == set(FACILITY_TYPES)
    assert '"preferCanvas": true' in html


def test_popups_escape_every_data_value(rendered):
    m, html = rendered
    raw = ["<script>alert(1)</script>", "<b>1 rue</b>", "<i>op</i>", "<u>02</u>",
           "<em>a@b.fr</em>", "<img src=x onerror=alert(2)>", "<2024>", "Annuaire <i>"]
    for bad in raw:
        assert bad not in html, bad
        assert _js(bad)[1:-1] not in html, bad  # nor as JSON, which innerHTML would parse
    strings = " ".join(_geojson_strings(m))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in strings
    assert "&lt;img src=x onerror=alert(2)&gt;" in strings
    assert "Annuaire &lt;i&gt;partiel&lt;/i&gt;" in strings  # source title
    assert "(&lt;2024&gt;)" in strings  # source date
    assert "à l&#x27;adresse" in strings or "à l'adresse" in strings  # precision label
    # A javascript: URL is shown as text, never as a link; an https link is kept, escaped.
    assert 'href="javascript' not in strings
    assert 'href="https://example.org/creche?a=1&amp;b=2"' in strings
    assert "Micro-crèche" in strings


def test_nearby_facilities_drawn_lighter(rendered):
    m, _ = rendered
    pmi = _groups(m)["Centres de PMI (1 + 1 hors territoire)"]
    layers = [c for c in pmi._children.values() if isinstance(c, folium.GeoJson)]
    opacity = {}
    for layer in layers:
        popups = [f["properties"]["popup"] for f in layer.data["features"]]
        outside = all("Hors du territoire" in p for p in popups)
        opacity[outside] = layer.marker.options["fillOpacity"]
    assert set(opacity) == {True, False}
    assert opacity[True] < opacity[False]


def test_town_halls_hidden_by_default_and_toggleable(overview, rendered):
    m, html = rendered
    halls = _groups(m)["Mairies (2)"]
    assert halls.show is False
    map_name = m.get_name()
    assert f"{halls.get_name()}.addTo({map_name})" not in html
    pmi = _groups(m)["Centres de PMI (1 + 1 hors territoire)"]
    assert f"{pmi.get_name()}.addTo({map_name})" in html

    shown = build_overview_map(overview, show_town_halls=True)
    shown_html = shown.get_root().render()
    halls = _groups(shown)["Mairies (2)"]
    assert f"{halls.get_name()}.addTo({shown.get_name()})" in shown_html
    assert "Mairies (2) : affichées" in shown_html.replace("<\\/", "</")


def test_attribution_in_control_and_legend(rendered):
    _, html = rendered
    expected = "IGN, INSEE — Admin Express | Source : Insee"
    assert default_attribution(SOURCES) == expected
    assert f"attributionControl.addAttribution({json.dumps(expected, ensure_ascii=False)})" in html
    assert f"Sources : {expected}" in html
    assert "OpenStreetMap" in html


def test_custom_attribution_and_type_filter(overview):
    m = build_overview_map(overview, facility_types=["eaje"], attribution="Mon <b>atlas</b>")
    html = m.get_root().render()
    names = set(_groups(m))
    assert "Crèches (EAJE) (2)" in names
    assert not any(n.startswith("Centres de PMI") for n in names)
    assert "Mon &lt;b&gt;atlas&lt;/b&gt;" in html and "Mon <b>atlas" not in html


def test_only_leaflet_assets_no_jquery(rendered):
    _, html = rendered
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert scripts and all("leaflet" in s for s in scripts), scripts
    assert "$(`" not in html  # folium popups built with jQuery would need it


def _asset_links(html: str) -> list[str]:
    """Addresses of the page's script and stylesheet tags."""
    return (re.findall(r'<script\b[^>]*\bsrc="([^"]+)"', html)
            + re.findall(r'<link\b[^>]*\bhref="([^"]+)"', html))


def test_local_assets_leave_no_external_script_or_stylesheet(overview, monkeypatch):
    monkeypatch.setattr(_common, "_asset_base_url", None)
    set_asset_base_url("/base/app/static/vendor/")
    m = build_overview_map(overview)
    html = m.get_root().render()
    links = _asset_links(html)
    assert sorted(links) == ["/base/app/static/vendor/leaflet-1.9.3/leaflet.css",
                             "/base/app/static/vendor/leaflet-1.9.3/leaflet.js"]
    assert not [u for u in links if re.match(r"(https?:)?//", u, flags=re.IGNORECASE)]
    assert find_external_assets(m) == []
    # what streamlit-folium reads: the default_js / default_css of every element
    assert dict(m.default_js)["leaflet"] == "/base/app/static/vendor/leaflet-1.9.3/leaflet.js"
    # folium's class defaults untouched: a plain folium map still uses the CDN
    assert dict(folium.Map.default_js)["leaflet"].startswith("https://cdn.jsdelivr.net/")


def test_cdn_assets_outside_the_app(rendered):
    _, html = rendered
    leaflet = {u for u in LOCAL_ASSETS if "leaflet@" in u}
    assert sorted(_asset_links(html)) == sorted(leaflet)


def test_unvendored_plugin_asset_is_reported(caplog):
    from folium.plugins import MarkerCluster

    m = _common._leaflet_map()
    MarkerCluster().add_to(m)
    maps.use_local_assets(m, "/app/static/vendor")
    assert any("leaflet.markercluster" in u for u in find_external_assets(m))
    assert "leaflet.markercluster.js from the internet" in caplog.text
    assert not any("leaflet@" in u for u in find_external_assets(m))


def test_every_map_builder_gets_local_assets():
    builders = {n: f for n, f in vars(maps).items() if re.fullmatch(r"build_\w+_map", n)}
    assert "build_overview_map" in builders
    undecorated = [n for n, f in builders.items() if not hasattr(f, "__wrapped__")]
    assert not undecorated, f"decorate {undecorated} with @_map_builder (offline assets)"


def test_empty_asset_base_url_is_refused(monkeypatch):
    monkeypatch.setattr(_common, "_asset_base_url", None)
    with pytest.raises(InputError, match="base_url=' '"):
        set_asset_base_url(" ")


def test_vendored_assets_are_complete_and_unchanged():
    # folium asks for the vendored Leaflet and Leaflet.draw (a folium upgrade changes the
    # addresses)
    from folium.plugins import Draw

    asked = dict(folium.Map.default_js + folium.Map.default_css + Draw.default_js
                 + Draw.default_css).values()
    assert set(asked) >= set(LOCAL_ASSETS)
    sums = dict(line.split()[::-1] for line in (VENDOR / "SHA256SUMS").read_text().splitlines())
    for path, digest in sums.items():
        assert hashlib.sha256((VENDOR / path).read_bytes()).hexdigest() == digest, path
    assert set(LOCAL_ASSETS.values()) <= set(sums)
    for css in (p for p in LOCAL_ASSETS.values() if p.endswith(".css")):
        for url in re.findall(r"url\(([^)]+)\)", (VENDOR / css).read_text()):
            if not url.startswith(("data:", "#")):  # "#default#VML": old IE behaviour
                assert (VENDOR / css).parent.joinpath(url.strip("'\"")).is_file(), url
    assert (VENDOR / "leaflet-1.9.3" / "LICENSE").is_file()
    assert sum(f.stat().st_size for f in VENDOR.rglob("*") if f.is_file()) < 2_000_000
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableStaticServing"] is True  # serves static/ at app/static/


def test_bad_arguments(overview):
    with pytest.raises(InputError, match="value_col='nope'"):
        build_overview_map(overview, value_col="nope")
    with pytest.raises(InputError, match="creche"):
        build_overview_map(overview, facility_types=["creche"])


def test_coincident_points_are_spread():
    pts = gpd.GeoDataFrame({"n": [1, 2, 3]},
                           geometry=[Point(X0, Y0), Point(X0, Y0), Point(X0 + 500, Y0)],
                           crs=METRIC_CRS).to_crs(WGS84)
    moved = _spread_coincident(pts, radius_m=100).to_crs(METRIC_CRS)
    d01 = moved.geometry.iloc[0].distance(moved.geometry.iloc[1])
    assert d01 == pytest.approx(200.0, abs=0.5)  # opposite ends of a 100 m circle
    assert moved.geometry.iloc[2].distance(Point(X0 + 500, Y0)) < 1e-6


def test_class_breaks_split_values():
    values = [1, 2, 3, 10, 20, 30, 100, 200, 300, 400]
    breaks = class_breaks(values, n_classes=5)
    assert breaks == sorted(breaks) and len(breaks) == 4
    counts = np.bincount(np.searchsorted(breaks, values, side="right"), minlength=5)
    assert counts.tolist() == [2, 2, 2, 2, 2]


def test_whole_demo_departement_is_fast():
    from data_sources.workspace import load_workspace

    ws = load_workspace("44")
    ov = compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)
    start = time.perf_counter()
    m = build_overview_map(ov)
    html = m.get_root().render()
    elapsed = time.perf_counter() - start
    drawn = sum(len(c.data["features"]) for g in _groups(m).values()
                for c in g._children.values()
                if isinstance(c, folium.GeoJson) and c.marker is not None)
    assert drawn == len(ov.layers["facilities"]) + len(ov.layers["facilities_nearby"])
    assert len(ov.layers["communes"]) == 207
    print(f"building and rendering the 44 map: {elapsed:.1f} s")  # timed by benches
    assert len(html) < 3_000_000


def test_commune_table_french_labels_and_km(overview):
    from diagnosis.overview import commune_table

    table = commune_table(overview)
    assert table["Code INSEE"].tolist() == ["44001", "44002"]
    assert "EPCI" not in table  # constant within an EPCI
    # Alpha's town hall (X0+1000, Y0+1000) -> PMI f1 (X0+500, Y0+500): 707 m;
    # Béta's -> PMI f4 in Gamma (X0+5000, Y0+1000): 2000 m (nearer than f1: 2550 m).
    assert table["Distance (km) : Centres de PMI"].tolist() == [0.7, 2.0]
    assert table["Distance (km) : Crèches (EAJE)"].tolist() == [2.0, 0.0]
    assert not any("MAM" in c for c in table.columns)  # no MAM loaded anywhere
    assert table["Naissances 2024 (domiciliées)"].isna().tolist() == [False, True]


def test_offer_table_counts_and_shares(overview):
    from diagnosis.overview import offer_table

    table = offer_table(overview).set_index("Type")
    pmi, eaje = table.loc["Centres de PMI"], table.loc["Crèches (EAJE)"]
    assert pmi["Structures dans le territoire"] == 1 and eaje["Structures dans le territoire"] == 2
    assert pmi["Places connues"] == 12.0 and np.isnan(eaje["Places connues"])
    # threshold 3 km: Alpha (10 births) reaches both types; Béta's births are unknown.
    assert pmi["Naissances à portée"] == 10.0 and pmi["Part des naissances (%)"] == 100.0
    assert pmi["Communes sans structure"] == 1 and eaje["Communes sans structure"] == 1
    assert table.loc["MAM", "Structures dans le territoire"] == 0


# --------------------------------------------------------------------------------------
# Maps of the analyses (priority, access, siting, partner network)
# --------------------------------------------------------------------------------------

SCRIPT = "<script>x</script>"


def _analysis_facilities() -> gpd.GeoDataFrame:
    """The fixture's facilities plus a relais named like a script, the only host of its type."""
    extra = _facility("r1", "rpe", "44002", X0 + 3300, Y0 + 1400, name=SCRIPT,
                      phone="<b>02</b>")
    rows = pd.concat([_facilities().to_crs(METRIC_CRS),
                      gpd.GeoDataFrame(pd.DataFrame([extra]), geometry="geometry",
                                       crs=METRIC_CRS)], ignore_index=True)
    return validate_facilities(gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC_CRS)
                               .to_crs(WGS84), source="test")


@pytest.fixture(scope="module")
def analysis_overview():
    com = _communes()
    com.loc[0, "name"] = "<b>Alpha</b>"
    com.loc[1, "births_2024"] = 20.0  # siting needs every commune's births
    return compute_overview(TERRITORY, com, _analysis_facilities(), threshold_m=3000,
                            sources=SOURCES)


@pytest.fixture(scope="module")
def access_result(analysis_overview):
    from diagnosis.analyses import compute_access

    return compute_access(analysis_overview, _analysis_facilities(), max_minutes=10)


def _text(m: folium.Map) -> str:
    """What the map says (HTML entities decoded: for text checks, not escaping checks)."""
    import html as html_lib

    return html_lib.unescape(m.get_root().render().replace("<\\/", "</"))


def _assert_escaped(m: folium.Map, raw: str, escaped: str) -> None:
    html = m.get_root().render()
    assert raw not in html and _js(raw)[1:-1] not in html
    assert escaped in " ".join(_geojson_strings(m)) + html


def test_priority_map_legend_tooltips_and_catchment(access_result):
    from diagnosis.analyses import compute_catchment
    from diagnosis.maps import PRIORITY_COLORS, build_priority_map

    area = compute_catchment(Point(-1.55, 47.2), max_minutes=5)
    m = build_priority_map(access_result.gaps, catchment=area, catchment_label="Crèche <i>",
                           attribution="IGN <b>")
    html = _text(m)
    assert "Score de priorité par commune (naissances pondérées)" in html
    assert "0 à 100" not in html  # the score is in weighted births, not 0-100
    prio = access_result.gaps.layers["priority"]
    top_score = float(prio["score"].max())
    from diagnosis.formatting import fr_number
    assert f"à {fr_number(top_score)}" in html  # the last class ends at the top score
    assert "Zone desservie (isochrone) de « Crèche <i> »" in html
    _assert_escaped(m, "Crèche <i>", "Crèche &lt;i&gt;")
    _assert_escaped(m, "IGN <b>", "IGN &lt;b&gt;")
    tips = " ".join(_geojson_strings(m))
    assert "Rang 1 — score" in tips and "Éloignement des services" in tips
    _assert_escaped(m, "<b>Alpha</b>", "&lt;b&gt;Alpha&lt;/b&gt;")
    top = access_result.gaps.layers["priority"].iloc[0]
    assert PRIORITY_COLORS[-1] in html  # the top commune is in the darkest class
    assert top["score"] == top_score
    bare = access_result.gaps.layers["priority"].drop(columns="geometry")
    with pytest.raises(InputError, match="no geometry"):
        build_priority_map(type("G", (), {"layers": {"priority": pd.DataFrame(bare)}})())


def test_access_map_classes_relative_to_threshold(access_result, analysis_overview):
    from diagnosis.maps import ACCESS_COLORS, access_classes, build_access_map

    assert [lab for _, lab in access_classes(10)] == [
        "moins de 3 min", "3 à 7 min", "7 à 10 min", "plus de 10 min (hors de portée)"]
    m = build_access_map(access_result.access, analysis_overview.layers["communes"], "pmi",
                         facilities=_analysis_facilities(),
                         travel_label=access_result.travel.label)
    html = _text(m)
    assert "Temps jusqu'à : Centre de PMI (la plus proche)" in html
    assert "Temps de trajet : estimation à vol d'oiseau" in html
    assert "Centre de PMI (2)" in html  # both PMIs drawn as markers
    # Alpha holds a PMI (1.4 min): first class; Béta 3.9 min: second class.
    fills = [f["properties"]["fill"] for f in _geojson_features(m) if "fill" in f["properties"]]
    assert fills.count(ACCESS_COLORS[0]) == 1 and fills.count(ACCESS_COLORS[1]) == 1
    _assert_escaped(m, "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;")
    with pytest.raises(InputError, match="was not analysed"):
        build_access_map(access_result.access, analysis_overview.layers["communes"], "laep")


def test_siting_map_sites_catchments_and_user_points(analysis_overview):
    from diagnosis.analyses import compute_catchment, compute_siting
    from diagnosis.maps import build_siting_map

    sc = compute_siting(analysis_overview, _analysis_facilities(), k_values=[1],
                        max_minutes=10, host_types=["rpe"],
                        need_weights={"poverty": 0, "single_parent": 0})
    assert sc.main.sites["name"].tolist() == [SCRIPT]
    site = sc.main.sites.geometry.iloc[0]
    area = compute_catchment(site, max_minutes=10).assign(name=SCRIPT)
    m = build_siting_map(sc.main, communes=analysis_overview.layers["communes"],
                         catchments=area, user_points=[(-1.55, 47.2)])
    html = _text(m)
    for text in ("Implantation de la Maison", "Site recommandé (1)", "Site proposé (1)",
                 "Zone desservie par un site recommandé", "commune avec un site à portée"):
        assert text in html, text
    _assert_escaped(m, SCRIPT, "&lt;script&gt;x&lt;/script&gt;")
    empty = _text(build_siting_map(None, communes=analysis_overview.layers["communes"]))
    assert "commune du territoire" in empty and "Site recommandé" not in empty


def test_partner_network_map_lines_by_type(analysis_overview):
    from diagnosis.analyses import compute_partners, find_site
    from diagnosis.maps import build_partner_network_map

    fac = _analysis_facilities()
    site = find_site(fac, "f2")
    near = compute_partners(analysis_overview, fac, site, max_minutes=10).layers["near_site"]
    assert SCRIPT in near["name"].tolist()
    m = build_partner_network_map(site, near, fac, attribution="IGN")
    html = _text(m)
    assert "Réseau de partenaires du site" in html
    assert "Relais petite enfance : 1" in html
    assert f"Site étudié : {site.name}" in html
    lines = [f for f in _geojson_features(m) if f["geometry"]["type"] == "LineString"]
    assert len(lines) == len(near)
    rpe = next(f for f in lines if "x&lt;/script&gt;" in f["properties"]["tooltip"])
    assert rpe["properties"]["color"] == FACILITY_STYLES["rpe"]["color"]
    assert rpe["geometry"]["coordinates"][0] == [round(site.geometry.x, 6),
                                                 round(site.geometry.y, 6)]
    _assert_escaped(m, SCRIPT, "&lt;script&gt;x&lt;/script&gt;")
    assert "&lt;b&gt;02&lt;/b&gt;" in " ".join(_geojson_strings(m))  # popup of the marker


def _geojson_features(m: folium.Map) -> list[dict]:
    out = []

    def walk(elem):
        if isinstance(elem, folium.GeoJson):
            out.extend(elem.data.get("features", []))
        for child in elem._children.values():
            walk(child)

    walk(m)
    return out


def test_draw_map_loads_the_vendored_drawing_tool():
    from tests.test_template_injection import _communes as hostile_communes

    m = maps.build_draw_map(hostile_communes("{{ 'MAIL' ~ 'LAGE' }}"), tiles=None)
    maps.use_local_assets(m, "/app/static/vendor")
    assert not find_external_assets(m)
    html = m.get_root().render()
    assert "leaflet-draw-1.0.4/leaflet.draw.js" in html and "MAILLAGE" not in html


def test_scale_bar_is_metric_only(rendered, overview):
    """folium's ``control_scale`` writes ``L.control.scale()`` (metric and imperial): our maps
    add Leaflet's scale with ``imperial: false`` instead (Leaflet 1.9 Control.Scale options)."""
    from diagnosis.maps import build_siting_map

    _, html = rendered
    assert html.count("L.control.scale(") == 1
    assert re.search(r"L\.control\.scale\(\{metric: true, imperial: false", html)
    assert "L.control.scale()" not in html
    siting = build_siting_map(None, communes=overview.layers["communes"]).get_root().render()
    assert "imperial: false" in siting and "L.control.scale()" not in siting


def test_priority_map_says_the_year_of_the_births_read(access_result):
    from diagnosis.maps import build_priority_map

    m = build_priority_map(access_result.gaps, births_year=2022)
    tips = " ".join(_geojson_strings(m))
    assert "Naissances 2022 :" in tips and "Naissances 2024" not in tips
    assert "naissances 2022 × besoins" in _text(m)


def test_legend_never_prints_0_for_a_type_none_known(overview):
    """Unknown is not none: a type with no structure known inside the territory reads
    « aucune connue » unless a complete source was loaded; then it is a true 0."""
    from diagnosis.maps._layers import _legend_html

    def legend(status: str) -> str:
        return _legend_html(value_label="Naissances", class_labels=["1 à 2"],
                            colors=["#eee"], has_missing=False, type_counts={"pmi": (0, 1)},
                            show_town_halls=False, n_town_halls=0, attribution="",
                            statuses={"pmi": status})

    assert "Centres de PMI : aucune connue (+1 hors territoire)" in legend("partial")
    assert "Centres de PMI : aucune connue (+1 hors territoire)" in legend("unknown")
    assert "Centres de PMI : 0 (+1 hors territoire)" in legend("complete")


def test_layer_bounds_are_folium_own(overview):
    """Every GeoJSON layer of a map (communes, outline, facilities) reports the bounds
    folium computes itself: read by GEOS instead of a Python loop, the same numbers."""
    from data_sources.workspace import load_workspace
    from diagnosis.maps._common import _GeoJson

    demo = load_workspace("200000438")
    maps_built = [build_overview_map(overview),
                  build_overview_map(compute_overview(demo.territory, demo.communes,
                                                      demo.facilities, sources=demo.sources))]
    layers = [el for m in maps_built for el in m._children.values()
              if isinstance(el, folium.FeatureGroup) for el in el._children.values()
              if isinstance(el, folium.GeoJson)]
    assert len(layers) >= 4 and all(isinstance(el, _GeoJson) for el in layers)
    for el in layers:
        assert el._get_self_bounds() == folium.GeoJson._get_self_bounds(el)
    empty = _GeoJson({"type": "FeatureCollection", "features": []})
    assert empty._get_self_bounds() == [[None, None], [None, None]]


def test_layers_render_as_branca_would_without_compiling_their_script(
        analysis_overview, access_result, monkeypatch):
    """A layer's rendered script goes on the page as text, not compiled again as a Jinja
    template: each analysis map (hostile names, catchments, proposed points, partners)
    renders to the very page branca's own ``MacroElement.render`` gives, and each layer's
    bounds are folium's."""
    from branca.element import Element, MacroElement

    from diagnosis.analyses import compute_catchment, compute_partners, compute_siting, find_site
    from diagnosis.maps import (
        build_access_map,
        build_partner_network_map,
        build_priority_map,
        build_siting_map,
    )
    from diagnosis.maps._common import _GeoJson, _RenderedOnce

    counter = iter(range(10**9))
    monkeypatch.setattr(Element, "_generate_id", lambda self: f"{next(counter):032x}")
    fac = _analysis_facilities()
    sc = compute_siting(analysis_overview, fac, k_values=[1], max_minutes=10,
                        host_types=["rpe"], need_weights={"poverty": 0, "single_parent": 0})
    area = compute_catchment(sc.main.sites.geometry.iloc[0], max_minutes=10).assign(
        name="{{ 7*7 }} " + SCRIPT)
    site = find_site(fac, "f2")
    near = compute_partners(analysis_overview, fac, site, max_minutes=10).layers["near_site"]
    builders = [
        lambda: build_priority_map(access_result.gaps, catchment=area, catchment_label=SCRIPT),
        lambda: build_access_map(access_result.access, access_result.gaps.layers["priority"], "pmi",
                         facilities=fac, catchment=area),
        lambda: build_siting_map(sc.main, communes=analysis_overview.layers["communes"],
                         catchments=area, user_points=[(-1.55, 47.2)]),
        lambda: build_partner_network_map(site, near, fac, catchment=area),
        lambda: build_overview_map(analysis_overview),
    ]
    for build in builders:
        counter = iter(range(10**9))
        m = build()
        layers = [el for el in _walk(m) if isinstance(el, folium.GeoJson)]
        assert layers and all(isinstance(el, _GeoJson) for el in layers)
        for el in layers:
            assert el._get_self_bounds() == folium.GeoJson._get_self_bounds(el)
        ours = m.get_root().render()
        counter = iter(range(10**9))
        with monkeypatch.context() as patch:
            patch.setattr(_RenderedOnce, "render", MacroElement.render)
            theirs = build().get_root().render()
        assert "L.geoJson" in ours and ours == theirs
        if "7*7" in ours:  # the catchment's name: braces as entities, never computed
            assert "{{ 7*7 }}" not in ours and "7*7 \\u0026#125;" in ours


def _walk(element):
    yield element
    for child in element._children.values():
        yield from _walk(child)


def test_split_layers_takes_the_data_out_of_the_frame(overview):
    """The groups, the legend and the fit (in a group of their own) and the layer control
    leave the map, whose frame opens on France; a group hidden at first is taken off
    the map when added (town halls)."""
    from diagnosis.maps import split_layers
    from diagnosis.maps._common import (
        FRAME_CENTER,
        _FitOnce,
        _HiddenAtFirst,
        _Legend,
        _LegendLayer,
        _LegendStyle,
    )

    m = build_overview_map(overview)  # town halls hidden at first
    named = _groups(m)
    groups, control = split_layers(m)
    assert isinstance(control, folium.LayerControl) and len(groups) == len(named) + 1
    assert not any(isinstance(c, folium.FeatureGroup | folium.LayerControl | _Legend
                              | folium.FitBounds) for c in m._children.values())
    assert any(isinstance(c, _LegendStyle) for c in m._children.values())
    assert m.location == list(FRAME_CENTER)
    halls = next(g for name, g in named.items() if name.startswith("Mairies"))
    assert [type(c) for c in halls._children.values()][-1] is _HiddenAtFirst
    assert not any(isinstance(c, _HiddenAtFirst) for g in groups if g is not halls
                   for c in g._children.values())
    frame = groups[-1]
    assert not frame.control and {type(c) for c in frame._children.values()} == {
        _LegendLayer, _FitOnce}
