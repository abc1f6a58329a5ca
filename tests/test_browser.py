"""What a person sees: the app in a real headless Chromium (Playwright), offline.

Starts ``streamlit run app.py`` on a free local port, opens the default page (the demo
EPCI) and checks that the folium map (inside the streamlit-folium iframe) shows its
Leaflet container, legend and attribution, and that the page shows the key figures and
the sources. A screenshot is saved under pytest's tmp path.

The machine has no internet: the map's Leaflet script and stylesheet, which the page asks
from a CDN, are served from ``tests/data/browser/leaflet-1.9.3/`` (``leaflet.js``,
``leaflet.css`` and the layer control icons of Leaflet 1.9.3's ``dist`` folder,
BSD-2-Clause, unpacked from the npm package ``leaflet@1.9.3``; see LICENSE there).
Every other outside request (map tiles…) is refused, as offline.

Skipped when ``/usr/bin/chromium`` is absent, except on CI (env ``CI`` set): then it fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import folium
import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
LEAFLET_DIR = Path(__file__).resolve().parent / "data" / "browser" / "leaflet-1.9.3"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is absent: install Debian's chromium to run the browser test"
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI is set: the browser test must run)")
        pytest.skip(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _leaflet_dist_url() -> str:
    """The CDN folder of the Leaflet version folium asks for (must be the vendored one)."""
    js = dict(folium.Map.default_js)["leaflet"]
    if "leaflet@1.9.3/dist/" not in js:
        pytest.fail(f"folium now loads {js!r}: vendor that Leaflet version in {LEAFLET_DIR.parent}")
    return js.rsplit("/", 1)[0] + "/"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    port = _free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                out = log_path.read_text(errors="replace")
                pytest.fail(f"streamlit exited with code {proc.returncode}:\n{out[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("streamlit did not answer /_stcore/health within 60 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


def test_default_page_shows_map_legend_and_figures(server, tmp_path):
    from playwright.sync_api import Route, expect, sync_playwright

    dist = _leaflet_dist_url()
    types = {".js": "application/javascript", ".css": "text/css", ".png": "image/png"}

    def route(r: Route) -> None:
        url = r.request.url
        local = LEAFLET_DIR / url.removeprefix(dist) if url.startswith(dist) else None
        if url.startswith(server):
            r.continue_()
        elif local is not None and local.is_file():
            r.fulfill(status=200, body=local.read_bytes(), content_type=types[local.suffix])
        else:
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1800}, locale="fr-FR")
            page.route("**/*", route)
            page.goto(server, wait_until="domcontentloaded", timeout=60_000)
            main = page.locator("section.stMain, [data-testid='stMain']").first
            expect(main.get_by_role("heading", name="CC du Pays de Pontchâteau")).to_be_visible(
                timeout=90_000)
            metrics = page.locator("[data-testid='stMetric']")
            expect(metrics.filter(has_text="Communes").first).to_contain_text("9")
            expect(metrics.filter(has_text="Naissances 2024").first).to_contain_text("353")

            frame = page.frame_locator("iframe[title*='streamlit_folium']").first
            container = frame.locator(".leaflet-container")
            expect(container).to_be_visible(timeout=60_000)
            legend = frame.locator(".maillage-legend")
            expect(legend).to_be_visible()
            expect(legend).to_contain_text("Légende")
            expect(legend).to_contain_text("Naissances 2024 (domiciliées)")
            expect(legend).to_contain_text("Mairies (9) : masquées")
            expect(frame.locator(".leaflet-control-attribution")).to_contain_text("IGN")
            expect(frame.locator(".leaflet-control-layers")).to_contain_text("Mairies (9)")
            # one drawing canvas for the communes and one for the facilities' pane
            assert frame.locator("canvas").count() >= 2

            expect(page.get_by_text("Sources : Code officiel géographique 2026")).to_be_visible()
            page.wait_for_timeout(500)
            shot = tmp_path / "territoire.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 20_000
        finally:
            browser.close()
