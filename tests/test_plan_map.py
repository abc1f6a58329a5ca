"""The national plan's interactive map (diagnosis.maps.plan.build_plan_map).

The small plan of tests/test_plan.py (three clusters near Nantes, one existing Maison,
two new ones) with hostile commune names: the map holds the same sites and ranks as the
plan, escapes every name, and loads no script from the internet once local assets are
set (as the app sets them).
"""

from __future__ import annotations

import re

import folium
import pytest

from diagnosis.maps import _common
from diagnosis.maps._common import find_external_assets, set_asset_base_url
from diagnosis.maps.plan import build_plan_map
from diagnosis.plan import compute_national_plan, town_hall_candidates
from tests.test_plan import X0, Y0, _communes, _fac

HOSTILE = "<script>alert(1)</script>{{ 7*7 }}"


@pytest.fixture(autouse=True)
def _cdn_assets(monkeypatch):
    monkeypatch.setattr(_common, "_asset_base_url", None)


@pytest.fixture(scope="module")
def plan():
    xy = [(X0, Y0), (X0 + 1000, Y0), (X0 + 40_000, Y0), (X0 + 41_000, Y0),
          (X0 + 80_000, Y0), (X0 + 81_000, Y0)]
    com = _communes(xy, [200.0, 20.0, 100.0, 50.0, 30.0, float("nan")],
                    names=[HOSTILE, "=SOMME(A1)", "Clisson", "Vallet", "Ancenis", "Oudon"])
    maisons = _fac([(X0, Y0)], ["m1"], ["44000"], names=[f"Maison {HOSTILE}"])
    return compute_national_plan(com, town_hall_candidates(com), maisons, new=2,
                                 max_minutes=10)


def _groups(m: folium.Map) -> dict[str, folium.FeatureGroup]:
    return {c.layer_name: c for c in m._children.values() if isinstance(c, folium.FeatureGroup)}


def _features(group: folium.FeatureGroup) -> list[dict]:
    geo = next(c for c in group._children.values() if isinstance(c, folium.GeoJson))
    return geo.data["features"]


def test_map_holds_the_plan_sites_in_rank_order_and_the_existing_maison(plan):
    m = build_plan_map(plan, tiles=None)
    groups = _groups(m)
    new = _features(groups["Nouvelles Maisons du plan"])
    assert len(new) == len(plan.sites) == 2
    assert [f["properties"]["tooltip"].split("</b>")[0] for f in new] == \
        ["<b>Nouvelle Maison n°1", "<b>Nouvelle Maison n°2"]
    for f, g in zip(new, plan.sites.geometry, strict=True):
        assert f["geometry"]["coordinates"] == pytest.approx([g.x, g.y], abs=1e-6)
    existing = _features(groups["Maisons existantes connues"])
    assert len(existing) == 1 and "Naissances à portée : 220" in existing[0]["properties"][
        "tooltip"].replace("\u202f", " ")
    html = m.get_root().render()
    ranks = re.findall(r"\\u003e(\d+)\\u003c/div", html)  # the divIcons' html, as JSON
    assert ranks[:2] == ["1", "2"]
    assert groups["Réponse propre à chaque département"].show is False
    assert '"interactive": false' in html  # the numbers leave the tooltips to the markers
    # the markers' pane exists (without it Leaflet fails: « reading 'appendChild' »)
    assert re.search(r"createPane\(\s*\"maillage_structures\"", html)


def test_every_name_is_escaped(plan):
    html = build_plan_map(plan, tiles=None).get_root().render()
    assert "<script>alert(1)</script>" not in html
    # tooltips travel as GeoJSON: HTML-escaped by us, then JSON-encoded by folium
    assert "{{ 7*7 }}" not in html and "\\u0026#123;\\u0026#123; 7*7" in html
    assert "\\u0026lt;script\\u0026gt;alert(1)" in html
    assert "Légende" in html and "Plan national" in html


def test_offline_assets_and_no_tiles(plan, monkeypatch):
    set_asset_base_url("/base/app/static/vendor/")
    try:
        m = build_plan_map(plan, tiles=None)
    finally:
        set_asset_base_url(None)
    assert find_external_assets(m) == []
    assert "tile.openstreetmap" not in m.get_root().render()


def test_an_empty_plan_still_opens_on_france():
    import geopandas as gpd

    from diagnosis.plan import NationalPlan

    empty = NationalPlan(layers={"sites": gpd.GeoDataFrame(geometry=[], crs="EPSG:4326"),
                                 "existing": gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")},
                         summary={})
    html = build_plan_map(empty, tiles=None).get_root().render()
    assert re.search(r"fitBounds\(\s*\[\[41\.2, -5\.5\], \[51\.2, 10\.0\]\]", html)
    assert "Nouvelle Maison, numérotée par rang d&#x27;ouverture (0)" in html
