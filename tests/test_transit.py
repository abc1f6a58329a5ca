"""Pushchair and public-transport engines (diagnosis.travel.poussette / .transit).

Real data (``../shared/data/test-only/transit``): Zheleznogorsk, a small OSM extract and
GTFS feed from r5py's test data (the CI pair). The fixture territory of the CLI test is
the demo EPCI (Pontchâteau) with a street grid and a bus line written by the test itself
(pyosmium and a GTFS zip), so that a commune is « à portée » by car and not by bus.

The ferrobus calls follow its published stub (ferrobus 0.2.1, ``__init__.pyi``):
``create_transit_model(osm_path, gtfs_dirs, date, max_transfer_time)``,
``create_transit_point(lat, lon, model, max_walking_time, max_nearest_stops)``,
``find_routes_one_to_many(model, start, ends, departure_time, max_transfers)`` returning
dicts with ``travel_time_seconds`` (or None).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from data_sources import _http
from data_sources.gtfs import prepare_feed, read_gtfs
from data_sources.transit import load_poussette_graph, prepare_transit
from data_sources.walknet import read_walk_ways, write_walk_pbf
from diagnosis.travel import compute_travel_times
from diagnosis.travel.poussette import OsmWays, PoussetteProfile, count_steps, poussette_graph
from diagnosis.travel.transit import FERROBUS_WALK_MS, WalkScale
from tests.conftest import require_shared

ZH = "test-only/transit/zheleznogorsk"
DAY = dt.date(2024, 3, 5)  # a Tuesday inside the feed's calendar (2024)
TO_2154 = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)


def xy(lon, lat) -> np.ndarray:
    return np.column_stack(TO_2154.transform(np.asarray(lon, float), np.asarray(lat, float)))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MAILLAGE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("MAILLAGE_OFFLINE", "1")
        _http.reset()
        yield
        _http.reset()


@pytest.fixture(scope="module")
def zh(cache):
    pbf = require_shared(f"{ZH}/roads_zhelez.pbf")
    gtfs = require_shared(f"{ZH}/gtfs_zhelez.zip")
    return pbf, gtfs


# --- pushchair network ---------------------------------------------------------------


def _ways(specs):
    """Ways from (node ids, tags); node i sits at (i * 0.001°, 0) near lon 0, lat 45."""
    ids, lon, lat, starts, tags = [], [], [], [0], []
    for nodes, t in specs:
        for n in nodes:
            ids.append(n)
            lon.append(2.0 + n * 0.001)
            lat.append(45.0 + (0.001 if n >= 10 else 0.0))
        starts.append(len(ids))
        tags.append(t)
    return OsmWays(np.array(ids), np.array(lon), np.array(lat), np.array(starts), tuple(tags))


def test_steps_left_out_and_rough_ways_slower_by_hand():
    # 1 -> 2 by steps (short), or 1 -> 11 -> 12 -> 2 by a footway (a detour)
    ways = _ways([([1, 2], {"highway": "steps"}),
                  ([1, 11, 12, 2], {"highway": "footway"}),
                  ([2, 3], {"highway": "path", "surface": "gravel"}),
                  ([3, 4], {"highway": "motorway"})])
    walker = PoussetteProfile(drop_steps=False)
    g_walk = poussette_graph(ways, profile=walker)
    g = poussette_graph(ways)
    a, b, c = xy([2.001, 2.002, 2.003], [45.0, 45.0, 45.0])
    t_steps = compute_travel_times(g_walk, a[None], b[None], max_minutes=60).minutes[0, 0]
    t_push = compute_travel_times(g, a[None], b[None], max_minutes=60).minutes[0, 0]
    step_m = float(np.hypot(*(b - a)))
    assert t_steps == pytest.approx(step_m / 1000 / 3.6 * 60, rel=1e-6)  # 3.6 km/h
    assert t_push > t_steps * 2  # the pushchair goes round (~3 times the length)
    # gravel: 0.7 x the speed
    t_gravel = compute_travel_times(g, b[None], c[None], max_minutes=60).minutes[0, 0]
    assert t_gravel == pytest.approx(float(np.hypot(*(c - b))) / 1000 / (3.6 * 0.7) * 60,
                                     rel=1e-6)
    # footway (3 segments) and gravel path (1), both ways; no steps, no motorway
    assert g.mode == "poussette" and g.n_edges == 8 and g_walk.n_edges == 10


def test_steps_removed_from_the_ci_extract(zh):
    pbf, _ = zh
    ways = read_walk_ways(pbf)
    n_steps = count_steps(ways.tags)
    assert n_steps > 10  # the extract has stairs to leave out
    with_steps = poussette_graph(ways, profile=PoussetteProfile(drop_steps=False))
    without = load_poussette_graph(pbf)
    assert without.n_edges < with_steps.n_edges


def test_walk_pbf_has_no_steps_and_is_scaled(zh, tmp_path):
    pbf, _ = zh
    scale = WalkScale(93.53, 56.24, 1.4)
    counts = write_walk_pbf(pbf, tmp_path / "walk.osm.pbf", scale=scale)
    src = read_walk_ways(pbf)
    out = read_walk_ways(tmp_path / "walk.osm.pbf")
    assert counts["steps_dropped"] == count_steps(src.tags) > 0
    assert count_steps(out.tags) == 0
    # the same two nodes are 1.4 times farther apart once scaled
    i, j = 0, 1
    a0, b0 = xy(src.lon[[i, j]], src.lat[[i, j]])
    k = np.flatnonzero(out.node_ids == src.node_ids[i])[0]
    m = np.flatnonzero(out.node_ids == src.node_ids[j])[0]
    a1, b1 = xy(out.lon[[k, m]], out.lat[[k, m]])
    assert np.hypot(*(b1 - a1)) == pytest.approx(1.4 * np.hypot(*(b0 - a0)), rel=1e-3)


# --- transit ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(zh):
    pbf, gtfs = zh
    return prepare_transit(pbf, [gtfs], day=DAY, depart_s=9 * 3600 + 30 * 60).engine


def _stop_pair():
    """Two stops served by one trip of the study day, 6 stops apart (from the GTFS)."""
    p = prepare_feed(read_gtfs(require_shared(f"{ZH}/gtfs_zhelez.zip")), DAY)
    st = p.stop_times  # ordered by trip and numeric stop_sequence by the loader
    trip = st.loc[st["departure_s"] >= 9.5 * 3600, "trip_id"].iloc[0]
    seq = st.loc[st["trip_id"] == trip].reset_index(drop=True)
    x, y = seq.loc[1, "stop_id"], seq.loc[7, "stop_id"]
    stops = p.stops.set_index("stop_id")
    return p, x, y, stops.loc[[x, y], ["stop_lon", "stop_lat"]].to_numpy(float)


def test_hand_checked_journey_between_two_stops_of_one_line(engine):
    p, x, y, lonlat = _stop_pair()
    st = p.stop_times
    depart = 9 * 3600 + 30 * 60
    # direct rides X -> Y by hand: departure at X after 9:30, arrival at Y on the same trip
    at_x = st.loc[st["stop_id"] == x, ["trip_id", "departure_s", "stop_sequence"]]
    at_y = st.loc[st["stop_id"] == y, ["trip_id", "arrival_s", "stop_sequence"]]
    rides = at_x.merge(at_y, on="trip_id")
    rides = rides.loc[(pd.to_numeric(rides["stop_sequence_x"]) < pd.to_numeric(
        rides["stop_sequence_y"])) & (rides["departure_s"] >= depart)]
    best_direct = float((rides["arrival_s"].min() - depart) / 60)
    pts = xy(lonlat[:, 0], lonlat[:, 1])
    tt = engine.times(pts[:1], pts[1:], max_minutes=180)
    minutes = float(tt.minutes[0, 0])
    crow_km = float(np.hypot(*(pts[1] - pts[0]))) / 1000
    # never later than the direct bus (plus a few minutes walking on and off the stops),
    # never faster than 60 km/h as the crow flies, waiting included
    assert minutes <= best_direct + 5
    assert minutes >= crow_km / 60 * 60
    assert tt.engine == "transit" and tt.params["depart"] == "9 h 30"


def test_matrix_on_the_ci_pair_is_plausible_and_buses_help(engine, zh):
    pbf, gtfs = zh
    pts = xy([93.5333, 93.4050, 93.55, 93.4662], [56.2430, 56.1850, 56.25, 56.2261])
    tt = engine.times(pts, pts, max_minutes=240)
    m = tt.minutes
    assert np.allclose(np.diag(m), 0)
    off = m[~np.eye(len(pts), dtype=bool)]
    assert np.isfinite(off).all() and (off > 3).all() and (off < 180).all()
    # leaving at 3 a.m., the parent waits for the first bus (5:40): waiting is counted
    night = prepare_transit(pbf, [gtfs], day=DAY, depart_s=3 * 3600).engine
    mn = night.times(pts, pts, max_minutes=300).minutes
    assert mn[0, 1] >= m[0, 1] + 120


def test_walk_scale_makes_the_router_walk_at_the_pushchair_speed(zh):
    pbf, gtfs = zh
    a = xy([93.5333], [56.2430])
    b = a + np.array([[350.0, 0.0]])
    fast = prepare_transit(pbf, [gtfs], day=DAY, depart_s=3 * 3600,
                           walk_speed_kmh=FERROBUS_WALK_MS * 3.6).engine
    slow = prepare_transit(pbf, [gtfs], day=DAY, depart_s=3 * 3600).engine
    t_fast = float(fast.times(a, b, max_minutes=60).minutes[0, 0])
    t_slow = float(slow.times(a, b, max_minutes=60).minutes[0, 0])
    assert fast.scale.factor == pytest.approx(1.0) and slow.scale.factor == pytest.approx(1.4)
    assert t_slow / t_fast == pytest.approx(1.4, rel=0.05)


def test_points_without_a_stop_within_walk_are_said(engine):
    near = xy([93.5333], [56.2430])
    far = xy([93.80], [56.40])  # countryside, 20 km out
    assert engine.stops_within_walk(np.vstack([near, far])).tolist() == [True, False]
    assert "le mardi 5 mars 2024, départ à 9 h 30" in engine.label


# --- the CLI on a fixture territory ----------------------------------------------------


def _fixture_pbf(path, bbox, step=0.004):
    import osmium

    lon = np.arange(bbox[0], bbox[2], step)
    lat = np.arange(bbox[1], bbox[3], step * 0.75)
    nid = np.arange(lon.size * lat.size).reshape(lat.size, lon.size) + 1
    with osmium.SimpleWriter(str(path)) as w:
        for i, la in enumerate(lat):
            for j, lo in enumerate(lon):
                w.add_node(osmium.osm.mutable.Node(id=int(nid[i, j]),
                                                   location=(float(lo), float(la))))
        wid = 1
        for i in range(lat.size):
            w.add_way(osmium.osm.mutable.Way(id=wid, nodes=[int(n) for n in nid[i]],
                                             tags={"highway": "residential"}))
            wid += 1
        for j in range(lon.size):
            w.add_way(osmium.osm.mutable.Way(id=wid, nodes=[int(n) for n in nid[:, j]],
                                             tags={"highway": "residential"}))
            wid += 1


def _fixture_gtfs(path, a, b):
    """One bus line between two points, every 30 minutes, on Tuesday 3 March 2026."""
    trips, times = ["route_id,service_id,trip_id"], [
        "trip_id,arrival_time,departure_time,stop_id,stop_sequence"]
    for k, h in enumerate(np.arange(7 * 3600, 19 * 3600, 1800)):
        for d, (s1, s2) in enumerate((("A", "B"), ("B", "A"))):
            t = f"t{k}_{d}"
            trips.append(f"L1,S,{t}")
            t0, t1 = int(h), int(h + 12 * 60)
            times.append(f"{t},{t0 // 3600}:{t0 // 60 % 60:02d}:00,{t0 // 3600}:"
                         f"{t0 // 60 % 60:02d}:00,{s1},1")
            times.append(f"{t},{t1 // 3600}:{t1 // 60 % 60:02d}:00,{t1 // 3600}:"
                         f"{t1 // 60 % 60:02d}:00,{s2},2")
    files = {
        "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\n1,Lila Test,"
                      "http://x,Europe/Paris\n",
        "stops.txt": f"stop_id,stop_name,stop_lat,stop_lon\nA,Arrêt A,{a[1]},{a[0]}\n"
                     f"B,Arrêt B,{b[1]},{b[0]}\n",
        "routes.txt": "route_id,agency_id,route_short_name,route_type\nL1,1,1,3\n",
        "trips.txt": "\n".join(trips) + "\n",
        "stop_times.txt": "\n".join(times) + "\n",
        "calendar_dates.txt": "service_id,date,exception_type\nS,20260303,1\n",
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
    path.write_bytes(buf.getvalue())


@pytest.fixture(scope="module")
def territory_files(tmp_path_factory):
    """Street grid and one bus line (Pontchâteau - Saint-Gildas-des-Bois) on the demo EPCI."""
    from data_sources.demo import load_demo_communes
    from diagnosis.overview import origin_points

    folder = tmp_path_factory.mktemp("fixture")
    com = load_demo_communes()
    halls = origin_points(com.loc[com["code_insee"].isin(["44129", "44161"])]
                          .set_index("code_insee"))
    a, b = halls.loc["44129"], halls.loc["44161"]
    pbf = folder / "rues.osm.pbf"
    _fixture_pbf(pbf, (-2.28, 47.36, -1.84, 47.59))
    gtfs = folder / "lila.zip"
    _fixture_gtfs(gtfs, (a.x, a.y), (b.x, b.y))
    return pbf, gtfs


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILLAGE_OFFLINE", "1")
    monkeypatch.setenv("MAILLAGE_CACHE_DIR", str(tmp_path / "cache"))
    _http.reset()
    yield
    _http.reset()


def test_access_transit_shows_a_zone_within_reach_by_car_and_not_by_bus(
        territory_files, offline_cache, capsys):
    from diagnosis.__main__ import main

    pbf, gtfs = territory_files

    def run(*extra):
        assert main(["access", "--territory", "200000438", "--max-minutes", "20",
                     "--format", "json", *extra]) == 0
        return json.loads(capsys.readouterr().out)

    car = run("--mode", "crow")
    bus = run("--mode", "transit", "--gtfs", str(gtfs), "--osm-pbf", str(pbf),
              "--depart", "09:30", "--date", "2026-03-03")
    by_car = {(c["code_insee"], t): n for c in car["communes"] for t, n in c["reachable"].items()}
    by_bus = {(c["code_insee"], t): n for c in bus["communes"] for t, n in c["reachable"].items()}
    lost = [c for c in by_car if by_car[c] > 0 and by_bus[c] == 0]
    assert lost, (by_car, by_bus)  # « à portée » by car, not by bus
    assert bus["params"]["engine"] == "transit"
    notes = " ".join(bus["notes"])
    assert "Lila Test" in notes and "mardi 3 mars 2026" in notes and "9 h 30" in notes
    assert "sans arrêt de transport en commun" in notes and "Crossac" in notes
    assert any(s.get("source") == "gtfs" and s.get("date_etude") == "mardi 3 mars 2026"
               for s in bus["sources"])


def test_transit_without_timetables_says_what_to_download(offline_cache, capsys):
    from diagnosis.__main__ import main

    assert main(["access", "--territory", "200000438", "--mode", "transit"]) == 2
    err = capsys.readouterr().err
    assert "--gtfs" in err and "transport.data.gouv.fr" in err and "--osm-pbf" in err


def test_report_compares_car_pushchair_and_transit_for_the_same_sites(
        territory_files, offline_cache, tmp_path):
    from pypdf import PdfReader

    from diagnosis.__main__ import main

    pbf, gtfs = territory_files
    out = tmp_path / "rapport.pdf"
    assert main(["report", "--territory", "200000438", "--out", str(out), "--no-comparison",
                 "--compare-modes", "--gtfs", str(gtfs), "--osm-pbf", str(pbf),
                 "--date", "2026-03-03", "--depart", "09:30"]) == 0
    text = " ".join(p.extract_text() for p in PdfReader(out).pages)
    text = " ".join(text.split())
    assert "Accès aux mêmes sites selon le mode de déplacement" in text
    assert "Qui perd l'accès sans voiture" in text
    for mode in ("voiture", "poussette", "transports en commun"):
        assert mode in text
    assert "mardi 3 mars 2026" in text


def test_app_besoins_page_in_transit_loses_communes_reached_by_car(territory_files,
                                                                   offline_cache):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    pbf, gtfs = territory_files
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"),
                           default_timeout=120)
    at.run(timeout=120)
    at.switch_page("app_pages/besoins.py").run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]

    def beyond() -> int:
        for d in at.dataframe:
            if "Communes hors de portée" in d.value.columns:
                return int(d.value["Communes hors de portée"].sum())
        raise AssertionError("no access table")

    at.selectbox(key="besoins_mode").set_value("crow").run(timeout=120)
    by_car = beyond()
    at.selectbox(key="besoins_mode").set_value("transit").run(timeout=120)
    at.text_input(key="besoins_osm_pbf").set_value(str(pbf)).run(timeout=120)
    at.text_input(key="besoins_gtfs").set_value(str(gtfs)).run(timeout=120)
    at.text_input(key="besoins_date").set_value("2026-03-03").run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    by_bus = beyond()
    assert by_bus > by_car  # communes « à portée » by car are not by bus
    texts = " ".join([m.value for m in at.markdown] + [i.value for i in at.info]
                     + [c.value for c in at.caption]).replace("\\", "")
    assert "Lila Test" in texts and "mardi 3 mars 2026" in texts
    assert "sans arrêt de transport en commun" in texts
    # the partners page of the same study compares the modes for the studied site
    at.switch_page("app_pages/partenaires.py").run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    assert any("Sans voiture" in h.value for h in at.subheader)
    modes = next(d.value for d in at.dataframe
                 if "Communes à portée en voiture perdues" in d.value.columns)
    assert modes["Mode"].tolist() == ["voiture", "poussette", "transports en commun"]
    car, _, bus = modes["Communes à portée"].tolist()
    assert bus < car


def test_minutes_map_by_mode_escapes_names_and_classes_communes():
    from data_sources.demo import load_demo_communes
    from diagnosis.analyses import Site
    from diagnosis.maps import build_mode_minutes_map
    from diagnosis.overview import origin_points
    from diagnosis.travel import CrowFlyEngine, CrowFlyModel, Travel
    from diagnosis.travel.compare import compare_modes

    com = load_demo_communes()
    com = com.loc[com["epci_code"] == "200000438"].copy()
    com.loc[com["code_insee"] == "44050", "name"] = "<img src=x onerror=alert(1)>{{7*7}}"
    pts = com.copy()
    pts["geometry"] = origin_points(com).to_numpy()
    hall = pts.loc[pts["code_insee"] == "44129"].geometry.iloc[0]
    site = Site("s1", "Maison <b>test</b>", "mairie", "44129", hall)
    import geopandas as gpd

    gpd_sites = gpd.GeoDataFrame({"site_id": ["s1"], "name": [site.name]}, geometry=[hall],
                                 crs="EPSG:4326")
    car = Travel(backend=CrowFlyEngine(CrowFlyModel("drive", 0.0, 1.3, 40.0)))
    slow = Travel(backend=CrowFlyEngine(CrowFlyModel("walk", 0.0, 1.3, 3.6)))
    modes = compare_modes(pts, gpd_sites, {"voiture": car, "transports en commun": slow},
                          max_minutes=20)
    lost = modes.table.set_index("mode").loc["transports en commun", "communes_lost"]
    assert lost  # communes reached by car, not at walking pace
    html = build_mode_minutes_map(com, modes, site).get_root().render()
    assert "Temps transports en commun depuis" in html
    assert "<img src=x" not in html and "{{7*7}}" not in html
    assert "transports en commun : " in html and "voiture : " in html  # every mode shown


def test_siting_optimises_for_transit(territory_files, offline_cache, capsys):
    from diagnosis.__main__ import main

    pbf, gtfs = territory_files
    assert main(["site", "--territory", "200000438", "--format", "json", "--max-minutes", "30",
                 "--mode", "transit", "--gtfs", str(gtfs), "--osm-pbf", str(pbf),
                 "--date", "2026-03-03"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    text = json.dumps(data, ensure_ascii=False)
    assert "transports en commun (Lila Test)" in text and "mardi 3 mars 2026" in text
    assert data["params"]["engine"] == "transit"
    assert data["sites"][0]["code_insee"] in {"44129", "44161"}  # at an end of the bus line
