"""What a person sees: the app in a real headless Chromium (Playwright), offline.

Starts ``streamlit run app.py`` on a free local port, opens the default page (the demo
EPCI) and checks that the folium map (inside the streamlit-folium iframe) draws its
communes and facility markers, with its legend and attribution, and that the page shows
the key figures and the sources. A screenshot is saved under pytest's tmp path.

Every request that does not go to the local server is refused, as on a machine with no
internet: the map must load Leaflet from the app itself (``static/vendor/``, see
``diagnosis.maps.use_local_assets``); only the background tiles stay blank.

A third test visits every page and fails on any English string of Streamlit, Leaflet or
Vega. What they render was read from the installed sources: Streamlit 1.67's bundle
(``streamlit/static/static/js/FileUploader.*.js``: "Upload", "<size> per file", "Drag and
drop files here"; ``utils.*.js``: "Choose an option"; ``ArrowVegaLiteChart.*.js``: only
``usermeta.embedOptions`` renderer/theme/padding reach vega-embed), folium 0.20's
``folium.py`` (``control_scale`` writes a bare ``L.control.scale()``, miles included) and
Leaflet 1.9's ``Control.Scale`` options (``metric``, ``imperial``).

Skipped when ``/usr/bin/chromium`` is absent, except on CI (env ``CI`` set): then it fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
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


def _offline(route) -> None:
    """Let requests reach the local server only, as on a machine without internet."""
    if urllib.parse.urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        route.abort("internetdisconnected")


@contextlib.contextmanager
def _offline_session(**options: object):
    """Headless Chromium with a French page, 1440 × 1800, offline (:func:`_offline`);
    ``options`` go to the browser context (e.g. ``accept_downloads=True``).

    Yields ``(page, errors)``: the page and the script errors it raised.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1800},
                                          locale="fr-FR", **options)
            context.route("**/*", _offline)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page, errors
        finally:
            browser.close()


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


# In the map's frame: the Leaflet layers drawn (projected for the current view) and, per
# canvas, how many pixels are painted. Tiles are blocked, so painted pixels are vectors.
DRAWN_JS = """() => {
    const out = {polygons: 0, circles: 0, painted: []};
    if (!window.L || !window.map) { return out; }
    window.map.eachLayer((layer) => {
        if (layer instanceof L.Polygon && layer._parts && layer._parts.length) {
            out.polygons += 1;
        } else if (layer instanceof L.CircleMarker && layer._point) {
            out.circles += 1;
        }
    });
    for (const c of document.querySelectorAll(".leaflet-container canvas")) {
        const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < data.length; i += 4) { if (data[i]) { n += 1; } }
        out.painted.push(n);
    }
    return out;
}"""


def test_default_page_draws_map_offline_with_legend_and_figures(server, tmp_path):
    from playwright.sync_api import Route, expect, sync_playwright

    blocked: list[tuple[str, str, str]] = []  # resource type, URL, URL of the frame
    loaded: list[str] = []

    def offline(r: Route) -> None:
        host = urllib.parse.urlsplit(r.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            blocked.append((r.request.resource_type, r.request.url, r.request.frame.url))
            r.abort("internetdisconnected")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1800},
                                          locale="fr-FR")
            context.route("**/*", offline)
            page = context.new_page()
            page.on("requestfinished", lambda req: loaded.append(req.url))
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

            # The vector layers are drawn: the 9 communes, facility circles, and paint on
            # both canvases (communes in the overlay pane, facilities in their own pane).
            map_frame = next(f for f in page.frames if "streamlit_folium" in f.url)
            map_frame.wait_for_function(
                f"(() => {{ const d = ({DRAWN_JS})(); return d.polygons >= 9 && "
                "d.circles > 0 && d.painted.length >= 2 && d.painted.every((n) => n > 50); })",
                timeout=30_000)
            drawn = map_frame.evaluate(DRAWN_JS)
            assert drawn["polygons"] == 9, drawn
            assert drawn["circles"] > 0, drawn

            # Leaflet came from the app; the map asked nothing but tiles from outside, and
            # the page no script, stylesheet or font (its favicon, from page_icon, may be).
            assert any(u.startswith(server) and u.endswith("/app/static/vendor/leaflet-1.9.3/"
                                                           "leaflet.js") for u in loaded), loaded
            assert any(u.endswith("/leaflet-1.9.3/leaflet.css") for u in loaded), loaded
            needed = [(kind, url) for kind, url, frame_url in blocked
                      if "tile.openstreetmap.org" not in url
                      and ("streamlit_folium" in frame_url
                           or kind in ("script", "stylesheet", "font", "fetch", "xhr"))]
            assert not needed, blocked

            expect(page.get_by_text("Sources : Code officiel géographique 2026")).to_be_visible()
            page.wait_for_timeout(500)
            shot = tmp_path / "territoire.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 20_000
        finally:
            browser.close()


def test_implantation_page_shows_a_recommended_site(server, tmp_path):
    from playwright.sync_api import expect

    from data_sources.workspace import load_workspace
    from diagnosis.analyses import compute_siting
    from diagnosis.overview import compute_overview

    ws = load_workspace("200000438")
    ov = compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)
    main = compute_siting(ov, ws.facilities, k_values=[1], max_minutes=20).main
    name = str(main.sites.loc[main.sites["status"] == "recommandé", "name"].iloc[0])

    with _offline_session() as (page, errors):
        page.goto(f"{server}/implantation", wait_until="domcontentloaded", timeout=60_000)
        main_area = page.locator("section.stMain, [data-testid='stMain']").first
        expect(main_area.get_by_role("heading", name="Implantation de la Maison")) \
            .to_be_visible(timeout=90_000)
        expect(main_area.get_by_role("heading", name="Sites recommandés")).to_be_visible(
            timeout=60_000)
        expect(main_area.get_by_text(name, exact=False).first).to_be_visible()
        frame = page.frame_locator("iframe[title*='streamlit_folium']").first
        legend = frame.locator(".maillage-legend")
        expect(legend).to_contain_text("Site recommandé (1)", timeout=60_000)
        expect(legend).to_contain_text("Zone desservie par un site recommandé")
        page.screenshot(path=str(tmp_path / "implantation.png"), full_page=True)

        # A click on the map reruns the map's part of the page only (a fragment); the
        # point it adds changes the study, and the whole page then shows it.
        _idle(page)
        container = frame.locator(".leaflet-container").first
        box = container.bounding_box()
        assert box is not None
        container.click(position={"x": box["width"] * 0.55, "y": box["height"] * 0.5})
        caption = main_area.get_by_text("Point cliqué : longitude")
        expect(caption).to_be_visible(timeout=60_000)
        lon, lat = re.findall(r"-?\d+\.\d{5}", caption.inner_text())
        expect(main_area.get_by_text("Sites proposés (0)")).to_be_visible()
        main_area.get_by_role("button", name="Ajouter ce point comme site proposé").click()
        expect(main_area.get_by_text("Sites proposés (1)")).to_be_visible(timeout=60_000)
        expect(main_area.get_by_text(f"Site proposé n°1 : longitude {lon}, latitude {lat}")
               ).to_be_visible()
        expect(legend).to_contain_text("Site proposé (1)", timeout=60_000)
        assert not errors, errors


def test_a_new_threshold_swaps_the_map_layers_in_the_same_map(server, tmp_path):
    """A new T on « Besoins et lacunes » keeps the map drawn (same frame: the view a person
    chose stays) and swaps its layers: the old communes leave, the new ones are drawn,
    one legend and one layer control, and no replaced group is kept in memory. Another
    territory keeps the map too, fitted to its communes."""
    from playwright.sync_api import expect

    from data_sources.cog import resolve

    state_js = """() => { let polys = 0; window.map.eachLayer((l) => {
        if (l instanceof L.Polygon) { polys += 1; } });
        return {kept: window.__kept || null, groups: (window.feature_group || []).length,
                legends: document.querySelectorAll(".maillage-legend").length,
                controls: document.querySelectorAll(".leaflet-control-layers").length,
                polys: polys, oldGone: window.__old ? !window.map.hasLayer(window.__old) : null};
    }"""
    with _offline_session() as (page, errors):
        page.goto(f"{server}/besoins", wait_until="domcontentloaded", timeout=60_000)
        main = page.locator("[data-testid='stMain']").first
        expect(main.get_by_role("heading", name="Besoins et lacunes").first).to_be_visible(
            timeout=120_000)
        frame = page.frame_locator("iframe[title*='streamlit_folium']").first
        expect(frame.locator(".maillage-legend")).to_contain_text("Score de priorité",
                                                                  timeout=60_000)
        _idle(page)
        map_frame = next(f for f in page.frames if "streamlit_folium" in f.url)
        map_frame.wait_for_function("() => window.map && window.feature_group")
        map_frame.evaluate("""() => { window.__kept = "this map";
            window.map.eachLayer((l) => { if (l instanceof L.Polygon) { window.__old = l; } });
        }""")
        before = map_frame.evaluate(state_js)
        # the view is fitted to the EPCI (the frame opens on France, zoom 5)
        assert map_frame.evaluate("""() => window.map.getZoom() >= 9 && window.map
            .getBounds().contains(L.latLng(47.437, -2.090))""")  # Pontchâteau
        thumb = main.get_by_role("slider", name="Temps de trajet maximal T (minutes)").first
        for _ in range(3):
            thumb.focus()
            thumb.press("ArrowRight")
            _idle(page)
        map_frame.wait_for_function("() => window.__old && !window.map.hasLayer(window.__old)")
        after = map_frame.evaluate(state_js)
        assert before["oldGone"] is False and before["polys"] == 9, before
        assert after == {"kept": "this map", "groups": before["groups"], "legends": 1,
                         "controls": 1, "polys": 9, "oldGone": True}, after
        assert float(thumb.input_value()) == 23

        # another territory: the same map, its layers, fitted to the whole département
        search = page.locator("[data-testid='stSidebar'] [data-testid='stTextInput'] input")
        search.fill("44")
        search.press("Enter")
        _idle(page)
        map_frame.wait_for_function(
            f"() => ({state_js})().polys === {len(resolve('44').communes)}",
            timeout=60_000)
        assert map_frame.evaluate(state_js)["kept"] == "this map"
        seen = map_frame.evaluate("""() => [[47.218, -1.553], [47.717, -1.376],
            [47.115, -2.103], [47.087, -1.282]].map((p) => window.map.getBounds()
            .contains(L.latLng(p[0], p[1])))""")  # Nantes, Châteaubriant, Pornic, Clisson
        assert seen == [True] * 4, seen
        assert not errors, errors


# --- French everywhere: no English string of Streamlit, Leaflet or Vega on any page ----
# What Streamlit 1.67 renders was read from its bundle (static/js/FileUploader.*.js:
# "Upload", "<size> per file", "Drag and drop files here" while dragging; utils.*.js:
# "Choose an option"); the uploader's French text is CSS ``::after`` content (app.py).

ENGLISH = ("Upload", "Drag and drop", "Browse files", "Choose an option", "Choose options",
           "per file", "No data", "No results", "No options to select",
           # issue 24's leftovers: Streamlit's input hint and table toolbar, internal keys
           "Press Enter", "Download as CSV", "Fullscreen", "Show/hide columns",
           "sage_femme", "maison_1000_jours", "demo_directory", "custom · code",
           "must be", "does not", "is not a", "cannot")
ENGLISH_PATTERNS = (r"\bLimit\b", r"\d\s*mi\b", r"\d\s*ft\b", r"\d,\d{3}\b", r"\d%")
PAGES = [("Territoire", "CC du Pays de Pontchâteau"), ("Besoins et lacunes", "Besoins et lacunes"),
         ("Implantation", "Implantation de la Maison"), ("Partenaires", "Partenaires"),
         ("Rapport et exports", "Rapport et exports"),
         ("Fichiers INSEE", "Fichiers INSEE"),
         ("Territoire sur mesure", "Territoire sur mesure"),
         ("Importer des structures", "Importer des structures"),
         ("Vue nationale", "Vue nationale"), ("Plan national", "Plan national"),
         ("Sources et limites", "Sources et limites")]
# Every visible text of a frame: innerText (not display:none), SVG text (Vega charts),
# and the CSS generated content that the uploader shows.
VISIBLE_TEXT_JS = """() => {
    const parts = [document.body.innerText];
    for (const t of document.querySelectorAll("svg text")) { parts.push(t.textContent); }
    return parts.join("\\n");
}"""


def _english_in(text: str) -> list[str]:
    import re

    found = [s for s in ENGLISH if s in text]
    found += [m.group(0) for p in ENGLISH_PATTERNS for m in re.finditer(p, text)]
    return found


def _idle(page) -> None:
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                           timeout=120_000)
    page.wait_for_timeout(600)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                           timeout=120_000)


def test_every_page_is_french(server, tmp_path):
    from playwright.sync_api import expect

    with _offline_session() as (page, _):
        page.goto(server, wait_until="domcontentloaded", timeout=60_000)
        main = page.locator("[data-testid='stMain']").first
        expect(main.get_by_role("heading", name="CC du Pays de Pontchâteau")).to_be_visible(
            timeout=90_000)
        english: dict[str, list[str]] = {}
        scales: list[str] = []
        for title, heading in PAGES:
            page.locator("[data-testid='stSidebarNav'] a").filter(has_text=title) \
                .first.click()
            expect(main.get_by_role("heading", name=heading).first).to_be_visible(
                timeout=120_000)
            _idle(page)
            if title == "Rapport et exports":  # the chart's axes are SVG text, read
                axis = page.locator("[data-testid='stVegaLiteChart'] svg text")
                expect(axis.first).to_be_attached(timeout=120_000)
                assert axis.count() > 5
            texts = [page.evaluate(VISIBLE_TEXT_JS)]
            for frame in page.frames[1:]:
                if frame.is_detached():
                    continue
                texts.append(frame.evaluate(VISIBLE_TEXT_JS))
                scales += frame.evaluate(
                    "() => [...document.querySelectorAll('.leaflet-control-scale-line')]"
                    ".map((e) => e.innerText)")
            if title == "Territoire sur mesure":  # the drawing map really draws
                assert any("Dessiner un polygone" in t for t in texts), texts
            found = _english_in("\n".join(texts))
            if found:
                english[title] = found
            page.screenshot(path=str(tmp_path / f"{title}.png"), full_page=True)
        assert not english, english
        # Typing in a text box: Streamlit's "Press Enter to apply" reads in French.
        search = page.get_by_placeholder("ex. Pontchâteau", exact=False).first
        search.click()
        search.press_sequentially("Nan")
        hint = page.locator("[data-testid='InputInstructions']").first
        expect(hint).to_be_attached(timeout=10_000)
        shown = hint.evaluate("""(h) => h.innerText + getComputedStyle(h, "::after")
            .content""")
        assert "Entrée pour valider" in shown and not _english_in(
            hint.evaluate("(h) => h.innerText")), shown
        search.fill("")
        # Tables: no English toolbar (download, search, fullscreen) on any table.
        assert page.locator("[data-testid='stElementToolbar']:visible").count() == 0
        # Map pages show one metric scale bar each (m or km, never miles or feet).
        assert len(scales) >= 4, scales
        assert all(s.strip().endswith((" m", " km")) for s in scales), scales

        # The uploader (last pages visited: « Importer des structures »): French text in
        # place of Streamlit's, also while a file is dragged over it.
        page.locator("[data-testid='stSidebarNav'] a").filter(
            has_text="Importer des structures").first.click()
        zone = page.locator("[data-testid='stFileUploaderDropzone']").first
        expect(zone).to_be_visible(timeout=60_000)
        after = zone.evaluate("""(z) => [...z.querySelectorAll("*")].map(
            (e) => getComputedStyle(e, "::after").content).filter((c) => c !== "none")""")
        assert '"Parcourir les fichiers"' in after, after
        assert '"Déposez les fichiers ici"' not in after, after  # only while dragging
        assert any("Glissez-déposez vos fichiers ici" in c for c in after), after
        expect(zone.locator("button").first).to_be_visible()
        zone.evaluate("""(z) => {
            const dt = new DataTransfer();
            dt.items.add(new File(["nom;type"], "a.csv", {type: "text/csv"}));
            z.dispatchEvent(new DragEvent("dragenter", {dataTransfer: dt, bubbles: true}));
            z.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true}));
        }""")
        page.wait_for_timeout(500)
        dragging = zone.evaluate("""(z) => [...z.querySelectorAll("*")].map(
            (e) => getComputedStyle(e, "::after").content).filter((c) => c !== "none")""")
        assert '"Déposez les fichiers ici"' in dragging, dragging
        assert not _english_in(zone.inner_text()), zone.inner_text()
        zone.evaluate("""(z) => z.dispatchEvent(new DragEvent("dragleave",
            {dataTransfer: new DataTransfer(), bubbles: true}))""")
        # A file over the server's 50 MB limit is refused by the browser: its chip stays
        # visible with a French reason, and Streamlit's English tooltip never shows.
        big = tmp_path / "tres_gros.csv"
        with big.open("wb") as f:
            f.write(b"nom;type\n")
            f.truncate(51 * 2**20)
        page.locator("input[type='file']").first.set_input_files(str(big))
        chip = zone.locator("[data-testid='stFileChip'][aria-invalid='true']").first
        expect(chip).to_be_visible(timeout=30_000)
        reason = chip.locator("[data-testid='stFileChipName']").evaluate(
            "(n) => n.innerText + getComputedStyle(n, '::after').content")
        assert "tres_gros.csv" in reason and "refusé : plus de 50 Mo" in reason, reason
        assert "Déposez les fichiers ici" not in zone.evaluate(
            """(z) => [...z.querySelectorAll("*")].map(
            (e) => getComputedStyle(e, "::after").content).join(" ")""")
        box = chip.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(1_000)
        tips = page.locator("[data-testid^='stTooltip'][data-testid$='Content']:visible")
        assert not any(_english_in(t) or "File must" in t for t in tips.all_inner_texts())


def test_a_non_44_territory_from_uploaded_files_in_the_browser(server, tmp_path):
    """Issue 12: outside the demo, with no network, a consultant uploads the INSEE
    comparateur file of the Drôme and a facility list, then sees the territory diagnosed."""
    from playwright.sync_api import Route, expect, sync_playwright

    from tests.test_app import _drome_files

    drome, insee, facilities = _drome_files()
    (tmp_path / "comparateur_26.csv").write_bytes(insee)
    (tmp_path / "structures_26.csv").write_bytes(facilities)

    def offline(r: Route) -> None:
        if urllib.parse.urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            r.abort("internetdisconnected")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1600},
                                          locale="fr-FR")
            context.route("**/*", offline)
            page = context.new_page()
            page.goto(server, wait_until="domcontentloaded", timeout=60_000)
            main = page.locator("[data-testid='stMain']").first
            expect(main.get_by_role("heading", name="CC du Pays de Pontchâteau")).to_be_visible(
                timeout=90_000)
            search = page.get_by_placeholder("ex. Pontchâteau", exact=False).first
            expect(search).to_be_visible(timeout=60_000)
            search.click()
            search.fill(drome)
            search.press("Enter")
            sidebar = page.locator("[data-testid='stSidebar']").first
            expect(sidebar.get_by_text("Valence Romans Agglo").first).to_be_visible(
                timeout=120_000)  # the territory is chosen before any upload
            _idle(page)
            expect(main.get_by_text("comparateur de territoires").first).to_be_visible(
                timeout=120_000)  # what to load, offered
            for title, name in (("Fichiers INSEE", "comparateur_26.csv"),
                                ("Importer des structures", "structures_26.csv")):
                page.locator("[data-testid='stSidebarNav'] a").filter(has_text=title) \
                    .first.click()
                _idle(page)
                page.locator("input[type='file']").first.set_input_files(str(tmp_path / name))
                _idle(page)
            page.locator("[data-testid='stSidebarNav'] a").filter(has_text="Territoire") \
                .first.click()
            _idle(page)
            expect(main.get_by_role("heading", name="Valence Romans Agglo")).to_be_visible(
                timeout=180_000)
            metrics = page.locator("[data-testid='stMetric']")
            expect(metrics.filter(has_text="Communes").first).to_contain_text(
                str(len(__import__("data_sources.cog", fromlist=["resolve"]).resolve(drome)
                        .communes)))
            page.screenshot(path=str(tmp_path / "drome.png"), full_page=True)
        finally:
            browser.close()


#: Territories of the concurrent sessions (issue 25 item 7), one per browser context.
SESSION_TERRITORIES = ("44129", "200067346", "44161", "44184")


def test_concurrent_browser_sessions_keep_their_own_territory(server, tmp_path):
    """Issue 25.7: four people at once (four browser contexts, each its own Streamlit
    session, driven concurrently): each picks a territory, uploads its own facility file
    and goes through two pages; none ends on another's territory or upload."""
    import asyncio

    from playwright.async_api import Route, async_playwright, expect

    from data_sources.cog import resolve

    async def offline(r: Route) -> None:
        if urllib.parse.urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"):
            await r.continue_()
        else:
            await r.abort("internetdisconnected")

    async def idle(page) -> None:
        ready = "[data-testid='stApp'][data-test-script-state='notRunning']"
        await page.wait_for_selector(ready, timeout=240_000)
        await page.wait_for_timeout(600)
        await page.wait_for_selector(ready, timeout=240_000)

    async def session(browser, code: str) -> dict:
        t = resolve(code)
        upload = tmp_path / f"structures_{code}.csv"
        upload.write_text(f"nom;type;code_insee\nCrèche {code};crèche;{sorted(t.communes)[0]}\n",
                          encoding="utf-8")
        context = await browser.new_context(viewport={"width": 1440, "height": 1600},
                                            locale="fr-FR")
        await context.route("**/*", offline)
        page = await context.new_page()
        await page.goto(server, wait_until="domcontentloaded", timeout=120_000)
        main = page.locator("[data-testid='stMain']").first
        await idle(page)
        search = page.get_by_placeholder("ex. Pontchâteau", exact=False).first
        await search.click()
        await search.fill(code)
        await search.press("Enter")
        await idle(page)
        await expect(main.get_by_role("heading", name=t.name)).to_be_visible(timeout=240_000)
        nav = page.locator("[data-testid='stSidebarNav'] a")
        await nav.filter(has_text="Importer des structures").first.click()
        await idle(page)
        await page.locator("input[type='file']").first.set_input_files(str(upload))
        await idle(page)
        await nav.filter(has_text="Besoins et lacunes").first.click()
        await idle(page)
        await nav.filter(has_text="Territoire").first.click()
        await idle(page)
        return {"page": page, "name": t.name, "communes": str(len(t.communes))}

    async def run() -> list[tuple[str, str, str]]:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
            try:
                done = await asyncio.gather(*(session(browser, c) for c in SESSION_TERRITORIES))
                seen = []
                # every session read once all have acted (no reload: a reload is a new one)
                for code, s in zip(SESSION_TERRITORIES, done, strict=True):
                    page = s["page"]
                    main = page.locator("[data-testid='stMain']").first
                    await expect(main.get_by_role("heading", name=s["name"])).to_be_visible()
                    communes = page.locator("[data-testid='stMetric']").filter(
                        has_text="Communes").first
                    await expect(communes).to_contain_text(s["communes"])
                    await expect(main.get_by_text(f"structures_{code}.csv").first
                                 ).to_be_visible()
                    for other in SESSION_TERRITORIES:
                        if other != code:
                            assert await main.get_by_text(f"structures_{other}.csv").count() \
                                == 0, (code, other)
                    seen.append((code, s["name"], await main.locator("h1").first.inner_text()))
                return seen
            finally:
                await browser.close()

    seen = asyncio.run(run())
    assert [(c, n) for c, n, _ in seen] == [(c, resolve(c).name) for c in SESSION_TERRITORIES]
    assert all(n in h1 for _, n, h1 in seen), seen


def test_one_study_set_on_the_pages_reaches_the_pdf_and_geopackage(server, tmp_path):
    """Issue 19, in a real browser: travel time, k = 2 and a proposed point set on
    « Implantation », priority weights set on « Besoins et lacunes »; « Rapport et
    exports » states them, and the downloaded PDF and GeoPackage carry the same
    recommended sites (the names the page showed) and the same weights."""
    import pyogrio
    from playwright.sync_api import expect

    def slide_to(page, label: str, target: float) -> None:
        """Move a slider with the keyboard, as a person would (react-aria's range input)."""
        thumb = page.locator(f"input[type='range'][aria-label='{label}']").first
        thumb.focus()
        for _ in range(60):
            now = float(thumb.input_value())
            if abs(now - target) < 1e-9:
                break
            thumb.press("ArrowRight" if now < target else "ArrowLeft")
            page.wait_for_timeout(100)
        _idle(page)
        thumb = page.locator(f"input[type='range'][aria-label='{label}']").first
        assert abs(float(thumb.input_value()) - target) < 1e-9, thumb.input_value()

    def number(page, label: str, value: str) -> None:
        box = page.get_by_label(label, exact=True).first
        box.fill(value)
        box.press("Enter")
        _idle(page)

    with _offline_session(accept_downloads=True) as (page, _):
        page.goto(server, wait_until="domcontentloaded", timeout=60_000)
        main = page.locator("[data-testid='stMain']").first
        nav = page.locator("[data-testid='stSidebarNav'] a")
        expect(main.get_by_role("heading", name="CC du Pays de Pontchâteau")).to_be_visible(
            timeout=90_000)
        _idle(page)

        nav.filter(has_text="Besoins et lacunes").first.click()
        expect(main.get_by_role("heading", name="Besoins et lacunes").first).to_be_visible(
            timeout=120_000)
        _idle(page)
        main.get_by_text("Poids du score de priorité").first.click()
        slide_to(page, "Naissances", 0.6)
        slide_to(page, "Éloignement des services", 0.1)

        nav.filter(has_text="Implantation").first.click()
        expect(main.get_by_role("heading", name="Implantation de la Maison")).to_be_visible(
            timeout=120_000)
        _idle(page)
        slide_to(page, "Temps de trajet maximal T (minutes)", 10)
        main.get_by_text("Sites proposés (0)").first.click()
        number(page, "Longitude", "-2.12")
        number(page, "Latitude", "47.44")
        main.get_by_role("button", name="Ajouter", exact=True).click()
        _idle(page)
        number(page, "Nombre de nouveaux sites (k)", "2")
        expect(main.get_by_role("heading", name="Sites recommandés")).to_be_visible(
            timeout=120_000)
        shown = page.evaluate("() => document.body.innerText")

        nav.filter(has_text="Rapport et exports").first.click()
        expect(main.get_by_role("heading", name="Rapport et exports").first).to_be_visible(
            timeout=120_000)
        _idle(page)
        # the report page states the pages' choices in its own widgets
        assert page.get_by_label("Nombre de nouveaux sites (k)", exact=True).first \
            .input_value() == "2"
        assert page.locator("input[type='range'][aria-label='Temps de trajet maximal T "
                            "(minutes)']").first.input_value() == "10"
        main.get_by_role("button", name="Générer le rapport PDF").click()
        pdf_button = main.get_by_role("button", name="Télécharger le rapport PDF")
        expect(pdf_button).to_be_visible(timeout=240_000)
        with page.expect_download(timeout=60_000) as dl:
            pdf_button.click()
        pdf = tmp_path / "rapport.pdf"
        dl.value.save_as(pdf)
        main.get_by_role("button", name="Préparer les fichiers de données").click()
        gpkg_button = main.get_by_role("button", name="GeoPackage (QGIS)")
        expect(gpkg_button).to_be_visible(timeout=240_000)
        with page.expect_download(timeout=60_000) as dl:
            gpkg_button.click()
        gpkg = tmp_path / "etude.gpkg"
        dl.value.save_as(gpkg)
        page.screenshot(path=str(tmp_path / "rapport.png"), full_page=True)

    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    layers = {name for name, _ in pyogrio.list_layers(gpkg)}
    sites_layer = "sites_recommandes"
    assert sites_layer in layers and "metadonnees" in layers, layers
    sites = pyogrio.read_dataframe(gpkg, layer=sites_layer)
    recommended = sites.loc[sites["Statut"] == "recommandé"].sort_values("Rang")["Nom"].tolist()
    assert len(recommended) == 2, sites
    for site in recommended:
        assert site in shown, site          # the names the page showed
        assert " ".join(site.split()) in " ".join(text.split()), site  # and the PDF prints
    from diagnosis.formatting import fr_number, fr_percent
    from diagnosis.gaps import priority_weights

    weights = priority_weights({"births": 0.6, "poverty": 0.2, "single_parent": 0.15,
                                "access": 0.1})  # normalised to 100 %
    meta = pyogrio.read_dataframe(gpkg, layer="metadonnees").set_index("Paramètre")["Valeur"]
    assert meta["Nouveaux sites (k)"] == "2"
    assert meta["Sites proposés"] == "n°1 (-2.12000, 47.44000)"
    for key, label in (("births", "naissances"), ("access", "éloignement des services")):
        assert f"{label} {fr_percent(weights[key])}" in meta["Poids du score de priorité"]
        assert f"{label} {fr_number(100 * weights[key])} %" in " ".join(text.split())
