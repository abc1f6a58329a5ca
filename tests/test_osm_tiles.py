"""OpenStreetMap tiles under the report's maps: fetched on request, cached, drawn pale.

No network: a local tile server (``http.server`` on 127.0.0.1, allow-listed with
``_http.configure(allow_hosts=...)`` as in tests/test_http.py) serves small PNG tiles
generated here, or hostile answers (an HTML page, bytes that are no image, a tile of the
wrong size, an error). Tile names follow the slippy-map convention
(https://wiki.openstreetmap.org/wiki/Slippy_map_tilenames), checked against pyproj.
"""

from __future__ import annotations

import io
import re
import threading
from dataclasses import replace
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import geopandas as gpd
import numpy as np
import pytest
from matplotlib.image import AxesImage
from PIL import Image
from pyproj import Transformer
from shapely.geometry import box

from data_sources import _http, osm_tiles
from data_sources.osm_tiles import (
    MAX_TILES,
    choose_zoom,
    load_base_tiles,
    load_osm_tiles,
    parse_tile,
    territory_bounds,
    tile_bounds,
    tile_index,
    tile_range,
)
from diagnosis import static_maps as sm
from diagnosis.map_tiles import (
    FILL_ALPHA_OVER_TILES,
    TILES_GID,
    BaseTiles,
    MapBase,
    TileMosaic,
    pale,
)

TILE_RGB = (40, 170, 60)  # a green no map of the report uses
FILL_RGB = (0xDC, 0xE9, 0xF5)  # the territory map's fill (render_territory_map)


def _png(rgb: tuple[int, int, int] = TILE_RGB, size: int = 256, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buf, format=fmt)
    return buf.getvalue()


class _TileHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        srv = self.server
        with srv.lock:
            srv.hits.append(self.path)
        mode = srv.mode
        if mode == "ok":
            body, ctype, status = _png(), "image/png", 200
        elif mode == "html":
            body, ctype, status = b"<!DOCTYPE html><html><body>Maintenance</body></html>", \
                "text/html", 200
        elif mode == "garbage":
            body, ctype, status = b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 40, "image/png", 200
        elif mode == "huge":  # a tile of the wrong size: refused before decoding
            body, ctype, status = _png(size=2048), "image/png", 200
        else:
            body, ctype, status = b"erreur", "text/plain", 503
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def tile_server(tmp_path):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _TileHandler)
    srv.hits, srv.lock, srv.mode = [], threading.Lock(), "ok"
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _http.configure(cache_dir=tmp_path / "cache", offline=False, backoff_factor=0,
                    max_retries=0, rate_limits={}, timeout_s=(2.0, 2.0),
                    allow_hosts=("127.0.0.1",))
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
    yield srv
    srv.shutdown()
    srv.server_close()
    _http.reset()


def _requested(srv) -> set[tuple[int, int, int]]:
    out = set()
    for path in srv.hits:
        z, x, y = re.fullmatch(r"/(\d+)/(\d+)/(\d+)\.png", path).groups()
        out.add((int(z), int(x), int(y)))
    return out


#: Two communes near Nantes (a small territory: a high zoom).
COMMUNES = gpd.GeoDataFrame(
    {"code_insee": ["44109", "44143"], "name": ["Ouest", "Est"],
     "births_2024": [100.0, 40.0]},
    geometry=[box(-1.60, 47.18, -1.55, 47.25), box(-1.55, 47.18, -1.50, 47.25)],
    crs="EPSG:4326")


def test_tile_names_agree_with_pyproj_and_the_zoom_caps_the_count():
    to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    for lon, lat, z in [(-1.5536, 47.2173, 10), (2.35, 48.85, 14), (9.45, 42.70, 7),
                        (-4.49, 48.39, 16)]:
        x, y = tile_index(lon, lat, z)
        west, south, east, north = tile_bounds(x, y, z)
        mx, my = to_merc.transform(lon, lat)
        assert west <= mx < east and south < my <= north
    for bounds in [(-1.60, 47.18, -1.50, 47.25), (-2.6, 46.8, -0.9, 47.9),
                   (-5.2, 41.3, 9.6, 51.1), (2.33, 48.85, 2.34, 48.86)]:
        z = choose_zoom(bounds)
        x0, x1, y0, y1 = tile_range(bounds, z)
        assert (x1 - x0 + 1) * (y1 - y0 + 1) <= MAX_TILES
        if z < osm_tiles.MAX_ZOOM:  # the next zoom would need too many
            x0, x1, y0, y1 = tile_range(bounds, z + 1)
            assert (x1 - x0 + 1) * (y1 - y0 + 1) > MAX_TILES


def test_tiles_requested_for_the_territory_then_served_from_the_cache(tile_server):
    mosaic = load_osm_tiles(COMMUNES, url_template=tile_server.url)
    bounds = territory_bounds(COMMUNES)
    z = choose_zoom(bounds)
    x0, x1, y0, y1 = tile_range(bounds, z)
    expected = {(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)}
    assert _requested(tile_server) == expected and len(tile_server.hits) == len(expected)
    assert 4 <= len(expected) <= MAX_TILES and mosaic.zoom == z
    assert mosaic.image.shape == ((y1 - y0 + 1) * 256, (x1 - x0 + 1) * 256, 3)
    assert (mosaic.image == TILE_RGB).all()
    # the mosaic covers the territory (EPSG:3857)
    west, south, east, north = COMMUNES.to_crs("EPSG:3857").total_bounds
    mw, ms, me, mn = mosaic.bounds
    assert mw < west < east < me and ms < south < north < mn
    # a second report of the same territory: every tile from the HTTP cache
    again = load_osm_tiles(COMMUNES, url_template=tile_server.url)
    assert len(tile_server.hits) == len(expected)
    assert (again.image == mosaic.image).all() and again.bounds == mosaic.bounds


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def test_map_draws_the_tiles_pale_inside_the_territory(tile_server):
    mosaic = load_osm_tiles(COMMUNES, url_template=tile_server.url)
    with_tiles = _pixels(sm.render_territory_map(
        COMMUNES, title="Territoire", attribution="Sources : IGN",
        base=MapBase(tiles=mosaic)))
    without = _pixels(sm.render_territory_map(COMMUNES, title="Territoire",
                                              attribution="Sources : IGN"))
    washed = pale(np.array([[TILE_RGB]], dtype=np.uint8))[0, 0].astype(float)
    # inside a commune: its fill, translucent, over the washed-out tile colour
    inside = np.rint(FILL_ALPHA_OVER_TILES * np.array(FILL_RGB)
                     + (1 - FILL_ALPHA_OVER_TILES) * washed)
    # outside the communes, inside the map: the washed-out tile itself
    for colour, least in ((inside, 20000), (washed, 5000)):
        near = (np.abs(with_tiles - colour) <= 2).all(axis=2).sum()
        assert near > least, (colour, near)
        assert (np.abs(without - colour) <= 2).all(axis=2).sum() == 0
    assert (np.abs(without - np.array(FILL_RGB)) <= 1).all(axis=2).sum() > 20000


def test_map_with_tiles_names_osm_and_keeps_its_layout(tile_server, monkeypatch):
    caught = []
    real = sm.save_figure
    monkeypatch.setattr(sm, "save_figure", lambda fig, **kw: caught.append(fig) or real(fig, **kw))
    mosaic = load_osm_tiles(COMMUNES, url_template=tile_server.url)
    sm.render_choropleth_map(COMMUNES, "births_2024", title="Naissances", legend_title="N",
                             attribution="Sources : Insee", base=MapBase(tiles=mosaic))
    fig = caught[-1]
    images = [a for a in fig.axes[0].get_children() if isinstance(a, AxesImage)]
    assert len(images) == 1 and images[0].get_gid() == TILES_GID
    assert images[0].get_zorder() < min(c.get_zorder() for c in fig.axes[0].collections)
    texts = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "© les contributeurs d'OpenStreetMap" in texts and "Insee" in texts
    # the legend's colours are those of the translucent fills
    patches = fig.legends[0].get_patches()
    assert patches and all(p.get_facecolor()[3] == FILL_ALPHA_OVER_TILES for p in patches)
    assert sm.layout_problems(fig) == []


@pytest.mark.parametrize(("mode", "motive"), [
    ("html", "page HTML reçue au lieu des données"),
    ("garbage", "réponse inutilisable"),
    ("huge", "réponse inutilisable"),
    ("error", "réponse HTTP 503"),
])
def test_a_hostile_answer_is_refused_never_cached_and_said_in_french(tile_server, mode,
                                                                     motive):
    tile_server.mode = mode
    got = load_base_tiles(COMMUNES, enabled=True, url_template=tile_server.url)
    assert got is not None and got.mosaic is None
    assert got.reason_fr == f"serveur de tuiles OpenStreetMap : {motive}"
    note = got.note_fr()
    assert note.startswith("Le fond de carte OpenStreetMap demandé n'a pas pu être chargé")
    assert "contours des communes" in note
    # the first failure stops the others: one tile asked (twice for an unusable body)
    assert len(set(tile_server.hits)) == 1
    tile_server.mode = "ok"  # the bad answer was not cached: the tiles are fetched now
    before = len(tile_server.hits)
    assert load_base_tiles(COMMUNES, enabled=True, url_template=tile_server.url).mosaic \
        is not None
    assert len(tile_server.hits) > before


def test_parse_tile_refuses_what_is_not_a_tile():
    assert parse_tile(_png()).shape == (256, 256, 3)
    assert parse_tile(_png(fmt="JPEG")).shape == (256, 256, 3)
    for bad in (b"", b"<html>erreur</html>", b"GIF89a" + b"\x00" * 50, _png(size=512),
                b"\x00" * (osm_tiles.MAX_TILE_BYTES + 1)):
        with pytest.raises(ValueError):
            parse_tile(bad)
    buf = io.BytesIO()
    Image.new("RGB", (256, 256)).save(buf, format="GIF")
    with pytest.raises(ValueError, match="GIF"):
        parse_tile(buf.getvalue())


def test_refused_address_and_offline_fall_back_with_a_french_reason(tile_server):
    _http.configure(allow_hosts=())  # the outbound policy refuses 127.0.0.1
    got = load_base_tiles(COMMUNES, enabled=True, url_template=tile_server.url)
    assert got.mosaic is None and got.reason_fr.endswith("adresse refusée")
    _http.configure(allow_hosts=("127.0.0.1",), offline=True)
    got = load_base_tiles(COMMUNES, enabled=True, url_template=tile_server.url)
    assert got.mosaic is None and "hors ligne" in got.reason_fr
    assert tile_server.hits == []
    assert load_base_tiles(COMMUNES, enabled=False, url_template=tile_server.url) is None


def test_unreachable_server_falls_back():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _http.configure(offline=False, backoff_factor=0, max_retries=0, rate_limits={},
                    timeout_s=(1.0, 1.0), allow_hosts=("127.0.0.1",))
    try:
        got = load_base_tiles(COMMUNES, enabled=True,
                              url_template=f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png")
    finally:
        _http.reset()
    # a refused connection: _http reports it as unreachable or as a timeout
    assert got.mosaic is None and got.reason_fr.split(" : ")[-1] in {
        "service injoignable", "délai de réponse dépassé"}


def test_a_cache_that_cannot_be_written_falls_back(monkeypatch):
    from data_sources._http_cache import CacheWriteError

    def full_disk(*args, **kwargs):
        raise CacheWriteError("No space left on device")

    monkeypatch.setattr(_http, "fetch_bytes", full_disk)
    got = load_base_tiles(COMMUNES, enabled=True)
    assert got.mosaic is None and got.reason_fr.startswith("cache des téléchargements")


def test_mosaic_is_validated():
    with pytest.raises(ValueError, match="uint8"):
        TileMosaic(image=np.zeros((4, 4), dtype=np.uint8), bounds=(0, 0, 1, 1), zoom=1)
    with pytest.raises(ValueError, match="west < east"):
        TileMosaic(image=np.zeros((4, 4, 3), dtype=np.uint8), bounds=(1, 0, 0, 1), zoom=1)


def _demo():
    from data_sources.workspace import load_workspace
    from diagnosis.pipeline import DiagnosisParams, run_diagnosis
    from diagnosis.travel import Travel

    ws = load_workspace("200000438")
    return run_diagnosis(ws, DiagnosisParams(territory="200000438", mode="crow"),
                         travel=Travel())


def test_demo_report_draws_the_tiles_on_every_map_or_says_why_not(tile_server,
                                                                   monkeypatch):
    from diagnosis.report import render_diagnosis_html

    caught = []
    real = sm.save_figure
    monkeypatch.setattr(sm, "save_figure", lambda fig, **kw: caught.append(fig) or real(fig, **kw))
    d = _demo()
    communes = d.overview.layers["communes"]
    tiles = load_base_tiles(communes, enabled=True, url_template=tile_server.url)
    assert tiles.mosaic is not None and len(tile_server.hits) <= MAX_TILES
    html = unescape(render_diagnosis_html(replace(d, base_tiles=tiles)))
    assert len(caught) >= 4
    for fig in caught:
        assert [a for a in fig.axes[0].get_children() if isinstance(a, AxesImage)]
        assert "© les contributeurs d'OpenStreetMap" in \
            " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
        assert sm.layout_problems(fig) == []
    assert "Fond des cartes : tuiles OpenStreetMap" in html
    caught.clear()
    failed = BaseTiles(None, reason_fr="serveur de tuiles OpenStreetMap : service injoignable")
    html = unescape(render_diagnosis_html(replace(d, base_tiles=failed)))
    assert "Le fond de carte OpenStreetMap demandé n'a pas pu être chargé (serveur de " \
        "tuiles OpenStreetMap : service injoignable)" in html.replace("\u00a0", " ")
    for fig in caught:  # drawn exactly as without the option
        assert not [a for a in fig.axes[0].get_children() if isinstance(a, AxesImage)]
        assert "OpenStreetMap" not in " ".join(t.get_text() for t in fig.texts)
    plain = unescape(render_diagnosis_html(d))
    assert "fond de carte OpenStreetMap" not in plain and "Fond des cartes" not in plain


def test_report_command_draws_the_tiles_asked_for(tile_server, tmp_path, monkeypatch):
    """``report --fond-de-carte osm``: the tiles of the default address (here the local
    server) under every map of the PDF, the OSM attribution, the limits' sentence."""
    from pypdf import PdfReader

    from diagnosis.__main__ import main
    from diagnosis.report import render as report_render

    caught = []
    real = sm.save_figure
    monkeypatch.setattr(sm, "save_figure", lambda fig, **kw: caught.append(fig) or real(fig, **kw))
    # the report command draws half its maps in a helper process: here, all in this one,
    # where they are seen
    monkeypatch.setattr(report_render, "_HelperFigures",
                        lambda figures, theirs: report_render._FigureSource(figures))
    monkeypatch.setattr(osm_tiles, "TILE_URL", tile_server.url)
    out = tmp_path / "rapport.pdf"
    assert main(["report", "--territory", "200000438", "--out", str(out), "--mode", "crow",
                 "--no-comparison", "--fond-de-carte", "osm"]) == 0
    assert 0 < len(set(tile_server.hits)) <= MAX_TILES
    assert len(caught) >= 4
    for fig in caught:
        assert [a for a in fig.axes[0].get_children() if isinstance(a, AxesImage)]
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(out).pages))
    assert "Fond des cartes : tuiles OpenStreetMap" in text
    caught.clear()
    asked = len(tile_server.hits)
    assert main(["report", "--territory", "200000438", "--out", str(out), "--mode", "crow",
                 "--no-comparison"]) == 0  # default: no tile, none asked
    assert len(tile_server.hits) == asked
    assert caught and not [a for fig in caught for a in fig.axes[0].get_children()
                           if isinstance(a, AxesImage)]


def test_report_command_offline_writes_the_pdf_and_says_the_base_is_missing(
        tmp_path, monkeypatch, capsys):
    from pypdf import PdfReader

    from diagnosis.__main__ import main

    _http.configure(cache_dir=tmp_path / "cache", offline=True)
    try:
        out = tmp_path / "rapport.pdf"
        assert main(["report", "--territory", "200000438", "--out", str(out), "--mode",
                     "crow", "--no-comparison", "--fond-de-carte", "osm"]) == 0
    finally:
        _http.reset()
    err = capsys.readouterr().err
    assert "Le fond de carte OpenStreetMap demandé n'a pas pu être chargé" in err
    text = " ".join(p.extract_text() for p in PdfReader(out).pages)
    text = re.sub(r"\s+", " ", text)
    assert "fond de carte OpenStreetMap demandé n'a pas pu être chargé" in text


def test_app_checkbox_asks_for_the_tiles(tile_server, monkeypatch):
    """Page Rapport: « Fond de carte OpenStreetMap (en ligne) », off by default; checked,
    the PDF's maps are drawn on the tiles (served here by the local server)."""
    from pathlib import Path

    from pypdf import PdfReader
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(osm_tiles, "TILE_URL", tile_server.url)
    app_file = str(Path(__file__).resolve().parents[1] / "app.py")
    at = AppTest.from_file(app_file, default_timeout=120)
    at.run()
    at.switch_page("app_pages/rapport.py").run()
    assert not at.exception, [e.value for e in at.exception]
    box = at.checkbox(key="rapport_osm_tiles")
    assert box.label == "Fond de carte OpenStreetMap (en ligne)" and box.value is False
    box.check().run()
    at.button(key="rapport_generate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    pdf = at.session_state["rapport_pdf"]["pdf"]
    assert 0 < len(set(tile_server.hits)) <= MAX_TILES
    text = re.sub(r"\s+", " ", " ".join(p.extract_text()
                                        for p in PdfReader(io.BytesIO(pdf)).pages))
    assert "Fond des cartes : tuiles OpenStreetMap" in text


@pytest.mark.network
def test_live_tiles_of_the_demo_territory(tmp_path):
    """Live: the OSM Foundation's tile server answers PNG tiles of 256 px (run with
    ``-m network``); at most MAX_TILES tiles for the demo EPCI."""
    from data_sources.workspace import load_workspace

    _http.configure(cache_dir=tmp_path / "cache", offline=False)
    try:
        communes = load_workspace("200000438").communes
        mosaic = load_osm_tiles(communes)
    finally:
        _http.reset()
    rows, cols, _ = mosaic.image.shape
    assert rows * cols <= MAX_TILES * 256 * 256 and mosaic.image.std() > 0
