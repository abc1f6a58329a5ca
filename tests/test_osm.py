"""Tests of data_sources.osm, without network.

Payloads:
- ``tests/data/osm/tiny_roads.osm``: hand-written OSM XML (see the comment at its top):
  a two-way street, a one-way loop, two dead ends, a footway and a building.
- The real extract ``../shared/data/test-only/osm/toulouse_compans_caffarelli.osm``
  (ODbL, skipped when absent, failing on CI): road graphs and features.
- osmnx feature tables are built by hand here with the shape osmnx 2 returns (an
  ``(element, id)`` MultiIndex, one column per tag, EPSG:4326 geometries).
Overpass calls (``graph_from_polygon``, ``features_from_polygon``) are replaced with
monkeypatch; nothing reaches the network.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd
import pytest
from pyproj import Transformer
from shapely.geometry import Point, Polygon, box

from data_sources import _http, osm
from data_sources.registry import get_source
from diagnosis.errors import InputError, SourceError
from diagnosis.schema import FACILITY_COLUMNS
from diagnosis.travel import WALK_SPEED_KMH, compute_travel_times

TINY = Path(__file__).parent / "data" / "osm" / "tiny_roads.osm"
TEST_ONLY = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "test-only"
TOULOUSE = "osm/toulouse_compans_caffarelli.osm"
NODES = {1: (0.000, 47.000), 2: (0.001, 47.000), 3: (0.002, 47.000), 4: (0.002, 47.001),
         5: (0.000, 47.001), 9: (0.003, 47.001), 10: (0.002, 46.999)}


def require_shared(relative: str) -> Path:
    """A test-only file beside the repository: skip when absent, fail on CI."""
    path = TEST_ONLY / relative
    if not path.exists():
        msg = f"{path} is absent: this test needs ../shared/data/test-only beside the repo"
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI is set: the shared data must be present)")
        pytest.skip(msg)
    return path


def gc(a: int, b: int) -> float:
    """Great-circle length in metres between two tiny-file nodes (osmnx's formula)."""
    (lon1, lat1), (lon2, lat2) = NODES[a], NODES[b]
    return float(ox.distance.great_circle(lat1, lon1, lat2, lon2))


def node_xy(*ids: int) -> np.ndarray:
    tr = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
    x, y = tr.transform([NODES[i][0] for i in ids], [NODES[i][1] for i in ids])
    return np.column_stack([x, y])


REAL_PROBE = _http.probe


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(osm, "cache_dir", lambda: tmp_path / "osm")
    # osm._ox() sets these osmnx globals: restore them after each test.
    for name in ("cache_folder", "use_cache", "http_user_agent", "log_console",
                 "requests_timeout", "requests_kwargs"):
        monkeypatch.setattr(ox.settings, name, getattr(ox.settings, name))
    # Overpass calls are replaced below; the reachability probe is tested on its own.
    monkeypatch.setattr(_http, "probe", lambda url, **kwargs: None)


# --- road graphs from an OSM file --------------------------------------------------------


def test_tiny_file_drive_graph_times_by_hand():
    g = osm.road_graph_from_osm_file(TINY, mode="drive")
    # n2 merged by simplification, n5 (footway) and the building left out.
    assert sorted(g.osm_ids.tolist()) == [1, 3, 4, 9, 10]
    s30, s50 = 30 / 3.6, 50 / 3.6
    t13 = (gc(1, 2) + gc(2, 3)) / s30
    t34, t41 = gc(3, 4) / s50, gc(4, 1) / s50
    tt = compute_travel_times(g, node_xy(1, 3, 4), node_xy(1, 3, 4), max_minutes=60)
    expected = np.array([[0, t13, t13 + t34],
                         [t13, 0, t34],          # 3 -> 1 back along the two-way street
                         [t41, t41 + t13, 0]]) / 60.0
    np.testing.assert_allclose(tt.minutes, expected, rtol=1e-9)
    np.testing.assert_allclose(tt.origin_snap_m, 0, atol=1e-6)
    assert g.mode == "drive"


def test_tiny_file_walk_graph_is_two_way_at_walking_speed():
    g = osm.road_graph_from_osm_file(TINY, mode="walk")
    assert sorted(g.osm_ids.tolist()) == [1, 3, 4, 5, 9, 10]
    m = g.travel_time_s
    assert abs(m - m.T).max() < 1e-9  # every way usable both ways on foot
    speed = WALK_SPEED_KMH / 3.6
    tt = compute_travel_times(g, node_xy(5), node_xy(4, 3), max_minutes=60)
    # 5 -> 1 by the footway, then 1 -> 4 directly (one-way for cars only).
    np.testing.assert_allclose(
        tt.minutes[0], [(gc(5, 1) + gc(1, 4)) / speed / 60,
                        (gc(5, 1) + gc(1, 2) + gc(2, 3)) / speed / 60], rtol=1e-9)


def test_osm_file_errors():
    with pytest.raises(InputError, match="mode"):
        osm.road_graph_from_osm_file(TINY, mode="bike")
    with pytest.raises(InputError, match="not a file"):
        osm.road_graph_from_osm_file(TINY.with_name("absent.osm"))


def test_real_extract_graphs_match_networkx():
    path = require_shared(TOULOUSE)
    ids_in_file = {int(i) for i in re.findall(r'<node id="(\d+)"', path.read_text("utf-8"))}
    for mode in ("drive", "walk"):
        g = osm.road_graph_from_osm_file(path, mode=mode)
        assert g.n_nodes > 10 and set(g.osm_ids.tolist()) <= ids_in_file
        m = g.travel_time_s.tocoo()
        assert (m.data > 0).all() and np.isfinite(m.data).all()
        # An edge cannot be faster than its straight line at the top speed of the mode.
        chord = np.hypot(g.x[m.row] - g.x[m.col], g.y[m.row] - g.y[m.col])
        top = (WALK_SPEED_KMH if mode == "walk" else 130.0) / 3.6
        assert (m.data * top >= chord * 0.99).all()
        if mode == "walk":  # same edges both ways (lengths summed in either order)
            assert abs(g.travel_time_s - g.travel_time_s.T).max() < 1e-9
        # Our matrix vs networkx Dijkstra on the same edges, node to node.
        nxg = nx.DiGraph()
        nxg.add_weighted_edges_from(zip(m.row.tolist(), m.col.tolist(), m.data.tolist(),
                                        strict=True))
        main = g.main_component
        rng = np.random.default_rng(0)
        src = rng.choice(main, min(15, main.size), replace=False)
        dst = rng.choice(main, min(5, main.size), replace=False)
        xy = np.column_stack([g.x, g.y])
        tt = compute_travel_times(g, xy[src], xy[dst], max_minutes=30)
        for i, s in enumerate(src):
            lengths = nx.single_source_dijkstra_path_length(nxg, int(s), cutoff=1800.0)
            ref = [lengths.get(int(d), np.inf) / 60.0 for d in dst]
            np.testing.assert_allclose(tt.minutes[i], ref, rtol=1e-12)


# --- load_road_graph (Overpass replaced) ---------------------------------------------------


def tiny_polygon() -> Polygon:
    return box(-0.001, 46.998, 0.004, 47.002)


def test_load_road_graph_caches_the_converted_graph(monkeypatch, tmp_path):
    calls = []

    def fake_graph_from_polygon(polygon, **kwargs):
        calls.append(kwargs)
        g = ox.graph_from_xml(TINY, simplify=False, retain_all=True)
        g.remove_edges_from([(u, v, k) for u, v, k, d in g.edges(keys=True, data=True)
                             if d.get("highway") not in {"residential", "primary", "tertiary"}])
        g.remove_nodes_from(list(nx.isolates(g)))
        return ox.simplify_graph(g)

    monkeypatch.setattr(ox, "graph_from_polygon", fake_graph_from_polygon)
    g1 = osm.load_road_graph(tiny_polygon(), mode="drive")
    assert calls == [{"network_type": "drive", "retain_all": False, "simplify": True}]
    cached = list((tmp_path / "osm" / "road_graphs").glob("drive-*.npz"))
    assert len(cached) == 1
    g2 = osm.load_road_graph(tiny_polygon(), mode="drive")
    assert len(calls) == 1  # served from the cache
    assert np.array_equal(g1.osm_ids, g2.osm_ids)
    assert (g1.travel_time_s != g2.travel_time_s).nnz == 0
    osm.load_road_graph(tiny_polygon(), mode="drive", refresh=True)
    assert len(calls) == 2
    # osmnx is configured by Maillage: cache under our folder, our user agent.
    assert Path(ox.settings.cache_folder) == tmp_path / "osm" / "osmnx"
    assert ox.settings.use_cache is True
    assert "Maillage" in ox.settings.http_user_agent


def test_cached_road_graph_reads_the_cache_and_skips_the_outline_without_one(monkeypatch):
    """A crow-fly run asks for the territory's cached graph: found when there is one; with
    no graph of the mode cached, no outline of the communes is even computed (10,000
    communes' union cost seconds)."""
    def fake_graph_from_polygon(polygon, **kwargs):
        return ox.simplify_graph(ox.graph_from_xml(TINY, simplify=False, retain_all=True))

    communes = gpd.GeoDataFrame({"code_insee": ["00001"]}, geometry=[tiny_polygon()],
                                crs="EPSG:4326")
    assert osm.cached_road_graph(communes, mode="drive") is None  # empty cache
    monkeypatch.setattr(ox, "graph_from_polygon", fake_graph_from_polygon)
    stored = osm.load_road_graph(tiny_polygon(), mode="drive", buffer_m=5_000.0)
    found = osm.cached_road_graph(communes, mode="drive")
    assert found is not None and np.array_equal(found.osm_ids, stored.osm_ids)
    outlines = []
    monkeypatch.setattr(gpd.GeoDataFrame, "union_all",
                        lambda self, *a, **k: outlines.append(1) or tiny_polygon())
    assert osm.cached_road_graph(communes, mode="walk") is None
    assert outlines == []  # no walk graph cached: the outline was not computed
    assert osm.cached_road_graph(communes, mode="drive") is not None and outlines == [1]


def test_load_road_graph_failures(monkeypatch):
    def boom(polygon, **kwargs):
        raise ConnectionError("Overpass unreachable")

    monkeypatch.setattr(ox, "graph_from_polygon", boom)
    with pytest.raises(SourceError, match="Overpass"):
        osm.load_road_graph(tiny_polygon(), mode="walk")
    monkeypatch.setattr(_http, "get_config",
                        lambda: _http.HttpConfig(cache_dir=Path("/nonexistent"), offline=True))
    with pytest.raises(SourceError, match="hors ligne"):
        osm.load_road_graph(tiny_polygon(), mode="walk")
    with pytest.raises(InputError, match="polygon_wgs84"):
        osm.load_road_graph(Point(0, 47), mode="walk")
    with pytest.raises(InputError, match="EPSG:4326"):
        osm.load_road_graph(box(300_000, 6_700_000, 301_000, 6_701_000))


def test_corrupt_cached_graph_says_what_to_do(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SourceError, match="refresh=True"):
        osm.read_road_graph(bad)


# --- facilities -----------------------------------------------------------------------------

SQUARE = Polygon([(-1.6010, 47.2000), (-1.5990, 47.2000), (-1.5990, 47.2010),
                  (-1.6010, 47.2010)])


def osmnx_like_features() -> gpd.GeoDataFrame:
    """Features shaped like osmnx 2 output: (element, id) index, tag columns, WGS84."""
    rows = [
        (("node", 1), {"amenity": "kindergarten", "kindergarten:FR": "microcrèche",
                       "name": "Les Petits Loups", "capacity": "10",
                       "addr:housenumber": "3", "addr:street": "Rue de la Gare",
                       "addr:postcode": "44260", "contact:phone": "+33 2 40 00 00 00"},
         Point(-1.60, 47.20)),
        (("way", 2), {"amenity": "childcare", "name": "Micro-crèche Les Lucioles"}, SQUARE),
        (("node", 3), {"amenity": "kindergarten", "name": "École maternelle Jules Ferry"},
         Point(-1.61, 47.21)),
        (("node", 4), {"amenity": "social_facility", "name": "Centre médico-social (PMI)"},
         Point(-1.62, 47.22)),
        (("node", 5), {"healthcare": "midwife", "name": "Cabinet de sages-femmes"},
         Point(-1.63, 47.23)),
        (("node", 6), {"amenity": "community_centre", "name": "Centre social Mosaïque"},
         Point(-1.64, 47.24)),
        (("node", 7), {"amenity": "community_centre", "name": "Espace de vie sociale L'Escale"},
         Point(-1.65, 47.25)),
        (("way", 8), {"amenity": "hospital", "name": "Hôpital de Savenay",
                      "healthcare:speciality": "gynaecology;obstetrics"},
         Point(-1.66, 47.26)),
        (("node", 9), {"amenity": "childcare", "name": "Accueil périscolaire du bourg"},
         Point(-1.67, 47.27)),
        (("node", 10), {"amenity": "childcare", "name": "MAM Les Câlins"}, Point(-1.68, 47.28)),
        (("node", 11), {"amenity": "community_centre",
                        "name": "Lieu d'accueil enfants-parents La Parenthèse"},
         Point(-1.69, 47.29)),
        (("node", 12), {"office": "government", "name": "Relais Petite Enfance du Sillon"},
         Point(-1.70, 47.30)),
        (("node", 13), {"amenity": "community_centre", "name": "Salle des fêtes"},
         Point(-1.71, 47.31)),
        (("relation", 14), {"amenity": "hospital", "name": "Clinique du Parc"},
         Point(-1.72, 47.32)),
        (("node", 15), {"amenity": "kindergarten", "kindergarten:FR": "multiaccueil",
                        "name": "Multi-accueil hors territoire"}, Point(2.35, 48.85)),
    ]
    index = pd.MultiIndex.from_tuples([r[0] for r in rows], names=["element", "id"])
    tags = pd.DataFrame([r[1] for r in rows], index=index)
    return gpd.GeoDataFrame(tags, geometry=[r[2] for r in rows], crs="EPSG:4326")


EXPECTED = {  # source_id -> (type, subtype), by hand from the tags above
    "node/1": ("eaje", "micro_creche"), "way/2": ("eaje", "micro_creche"),
    "node/4": ("pmi", ""), "node/5": ("sage_femme", ""), "node/6": ("centre_social", ""),
    "node/7": ("evs", ""), "way/8": ("maternite", ""), "node/10": ("mam", ""),
    "node/11": ("laep", ""), "node/12": ("rpe", ""), "node/15": ("eaje", "multi_accueil"),
}


def communes_44() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code_insee": ["44195", "44999"]},
                            geometry=[box(-1.605, 47.195, -1.595, 47.205),
                                      box(-1.75, 47.205, -1.605, 47.35)], crs="EPSG:4326")


def test_parse_osm_features_types_and_columns():
    out = osm.parse_osm_features(osmnx_like_features(), source_date="2026-11-22")
    assert list(out.columns) == list(FACILITY_COLUMNS)
    got = dict(zip(out["source_id"], zip(out["type"], out["subtype"], strict=True),
                   strict=True))
    assert got == EXPECTED
    row = out.set_index("source_id").loc["node/1"]
    assert row["facility_id"] == "osm:node/1" and row["source"] == "osm"
    assert row["capacity"] == 10.0 and row["address"] == "3 Rue de la Gare"
    assert row["postcode"] == "44260" and row["phone"] == "+33 2 40 00 00 00"
    assert row["position_precision"] == "address" and row["source_date"] == "2026-11-22"
    assert np.isnan(out.set_index("source_id").loc["node/4", "capacity"])  # unknown, not 0
    poly_pt = out.set_index("source_id").loc["way/2", "geometry"]
    assert poly_pt.geom_type == "Point" and SQUARE.contains(poly_pt)
    assert out.crs.to_epsg() == 4326


def test_parse_with_communes_assigns_codes_drops_outside_and_validates():
    out = osm.parse_osm_features(osmnx_like_features(), communes=communes_44())
    codes = dict(zip(out["source_id"], out["code_insee"], strict=True))
    assert codes["node/1"] == "44195" and codes["way/2"] == "44195"
    assert codes["node/12"] == "44999"
    assert "node/15" not in codes  # Paris: outside every commune
    assert len(out) == len(EXPECTED) - 1


def test_parse_rejects_tables_not_from_osmnx():
    plain = gpd.GeoDataFrame({"amenity": ["childcare"]}, geometry=[Point(0, 47)],
                             crs="EPSG:4326")
    with pytest.raises(InputError, match="element, id"):
        osm.parse_osm_features(plain)


def test_real_extract_features():
    path = require_shared(TOULOUSE)
    raw = ox.features_from_xml(path, tags=osm.OSM_FACILITY_TAGS)
    commune = gpd.GeoDataFrame({"code_insee": ["31555"]},
                               geometry=[box(1.40, 43.60, 1.45, 43.63)], crs="EPSG:4326")
    out = osm.parse_osm_features(raw, communes=commune)
    # The file has one amenity=kindergarten (way 61894994, description "Crèche
    # collective", no kindergarten:FR) and an MDPH (social_facility, not ours).
    assert out["source_id"].tolist() == ["way/61894994"]
    row = out.iloc[0]
    assert (row["type"], row["subtype"]) == ("eaje", "creche_collective")
    assert row["name"] == "Compans Caffarelli" and row["code_insee"] == "31555"


def test_load_osm_facilities_with_cache(monkeypatch):
    calls = []

    def fake_features(polygon, tags):
        calls.append(tags)
        return osmnx_like_features()

    monkeypatch.setattr(ox, "features_from_polygon", fake_features)
    out = osm.load_osm_facilities(box(-1.8, 47.1, -1.5, 47.4), communes=communes_44())
    assert calls == [osm.OSM_FACILITY_TAGS]
    assert set(out["type"]) == {t for t, _ in EXPECTED.values()}
    again = osm.load_osm_facilities(box(-1.8, 47.1, -1.5, 47.4), communes=communes_44())
    assert len(calls) == 1
    pd.testing.assert_frame_equal(pd.DataFrame(out.drop(columns="geometry")),
                                  pd.DataFrame(again.drop(columns="geometry")))
    assert out["source_date"].str.match(r"^\d{4}-\d{2}-\d{2}$").all()


def test_load_osm_facilities_when_nothing_is_mapped(monkeypatch):
    def nothing(polygon, tags):
        raise ox._errors.InsufficientResponseError("No matching features")

    monkeypatch.setattr(ox, "features_from_polygon", nothing)
    empty = osm.load_osm_facilities(box(-1.8, 47.1, -1.5, 47.4))
    assert len(empty) == 0 and list(empty.columns) == list(FACILITY_COLUMNS)


def test_cached_features_expire_refresh_and_date_the_ledger(monkeypatch, tmp_path):
    import os
    import time

    calls, use_cache = [], []

    def fake_features(polygon, tags):
        calls.append(tags)
        use_cache.append(ox.settings.use_cache)
        if fail:
            raise RuntimeError("Overpass down")
        return osmnx_like_features()

    fail = False
    monkeypatch.setattr(ox, "features_from_polygon", fake_features)
    area = box(-1.8, 47.1, -1.5, 47.4)
    with _http.data_dates() as dates:
        osm.load_osm_facilities(area)
    assert len(calls) == 1 and dates == [time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())]
    cached = next((tmp_path / "osm" / "features").glob("*.parquet"))
    old = time.time() - 40 * 24 * 3600
    os.utime(cached, (old, old))
    osm.load_osm_facilities(area)
    assert len(calls) == 2  # expired after 30 days: asked again
    os.utime(cached, (old, old))
    fail = True
    assert len(osm.load_osm_facilities(area)) > 0  # Overpass down: the expired copy
    fail = False
    with _http.refreshing():
        osm.load_osm_facilities(area)
        osm.load_osm_facilities(area)
    assert len(calls) == 4 and use_cache[-1] is False  # once, past osmnx's own cache too
    assert ox.settings.use_cache is True


def test_empty_overpass_answer_is_not_cached(monkeypatch):
    calls = []

    def nothing(polygon, tags):
        calls.append(1)
        raise ox._errors.InsufficientResponseError("No matching features")

    monkeypatch.setattr(ox, "features_from_polygon", nothing)
    osm.load_osm_facilities(box(-1.8, 47.1, -1.5, 47.4))
    osm.load_osm_facilities(box(-1.8, 47.1, -1.5, 47.4))
    assert len(calls) == 2  # a maintenance or empty answer is not kept for 30 days


def test_osmnx_retries_are_bounded_through_its_settings():
    osm._ox()
    hooks = ox.settings.requests_kwargs["hooks"]["response"]
    assert hooks == [osm._overpass_guard]

    class Busy:
        status_code = 429
        url = "https://overpass/interpreter"

    with osm._overpass_budget():
        for _ in range(osm.OVERPASS_MAX_RETRIES):
            osm._overpass_guard(Busy())
        with pytest.raises(SourceError, match="HTTP 429"):
            osm._overpass_guard(Busy())


def test_osm_source_is_registered_with_odbl_attribution():
    info = get_source("osm")
    assert info.licence == "ODbL 1.0"
    assert info.attribution == "© les contributeurs d'OpenStreetMap"


def test_unreachable_overpass_fails_fast_without_osmnx_pauses(monkeypatch):
    """No internet: a SourceError at once (osmnx alone would wait 60 s before failing)."""
    import time

    import requests
    import responses

    from tests.test_analyses import _communes

    monkeypatch.setattr(_http, "probe", REAL_PROBE)
    called = []
    monkeypatch.setattr(ox, "graph_from_polygon", lambda *a, **k: called.append(1))
    monkeypatch.setattr(osm, "cache_dir", lambda: Path("/nonexistent-maillage-cache"))
    with responses.RequestsMock() as rsps:
        rsps.add(responses.HEAD, f"{ox.settings.overpass_url}/status",
                 body=requests.ConnectionError("Name or service not known"))
        start = time.perf_counter()
        with pytest.raises(SourceError, match="does not answer"):
            osm.load_road_graph(tiny_polygon(), mode="drive")
        graph, note = osm.road_graph_for(_communes(), mode="walk")
        assert time.perf_counter() - start < 5
    assert called == [] and graph is None and "vol d'oiseau" in note


@pytest.mark.network
def test_live_overpass_road_graph_and_facilities(monkeypatch):
    """Live: a small piece of Pontchâteau from Overpass (road graph and facilities)."""
    monkeypatch.setattr(_http, "probe", REAL_PROBE)
    _http.reset()
    area = box(-2.095, 47.430, -2.080, 47.442)
    graph = osm.load_road_graph(area, mode="drive")
    assert graph.n_nodes > 20 and graph.mode == "drive"
    fac = osm.load_osm_facilities(area)
    assert {"facility_id", "type", "source"} <= set(fac.columns)
    assert (fac["source"] == "osm").all()


def test_offline_notes_name_no_folder_of_the_machine(tmp_path):
    # issue 20 item 7: no absolute path of the user's machine in any output; the offline
    # notes used to print the cache file's full path (/home/…/.cache/maillage/…)
    from shapely.geometry import box

    from data_sources import _http, osm
    from diagnosis.errors import SourceError

    folder = tmp_path / "Mes documents" / "cache privé"
    _http.configure(cache_dir=folder, offline=True)
    try:
        area = box(-2.2, 47.35, -2.0, 47.45)
        with pytest.raises(SourceError) as err:
            osm.load_road_graph(area, mode="drive")
        text = str(err.value)
        assert "hors ligne" in text
        assert str(tmp_path) not in text and "Mes documents" not in text, text
    finally:
        _http.reset()
