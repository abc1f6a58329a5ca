"""Page « Plan national » in a real headless Chromium, with no internet.

The INSEE comparateur file of the Drôme is uploaded (page « Fichiers INSEE »), then the
plan page draws its interactive map: the new Maisons and the known ones as Leaflet
circle markers, a French legend, the opening ranks, and no request leaves the machine
(tiles blocked; scripts served by the app). Same server and browser set-up as
tests/test_browser.py.
"""

from __future__ import annotations

import urllib.parse

import pytest

from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _idle, server  # noqa: F401

pytestmark = pytest.mark.browser

#: The plan map's markers drawn by Leaflet in the component's frame.
MARKERS_JS = """() => {
    const out = {circles: 0, ranks: []};
    if (!window.L || !window.map) { return out; }
    window.map.eachLayer((layer) => {
        if (layer instanceof L.CircleMarker && layer._point) { out.circles += 1; }
    });
    for (const d of document.querySelectorAll(".leaflet-marker-icon div")) {
        out.ranks.push(d.textContent);
    }
    return out;
}"""


def test_plan_page_draws_an_interactive_map_offline(server, tmp_path):  # noqa: F811
    from playwright.sync_api import Route, expect, sync_playwright

    from tests.test_app import _drome_files

    _, insee, _ = _drome_files()
    (tmp_path / "comparateur_26.csv").write_bytes(insee)
    outside: list[str] = []

    def offline(r: Route) -> None:
        if urllib.parse.urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort("internetdisconnected")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1800},
                                          locale="fr-FR")
            context.route("**/*", offline)
            page = context.new_page()
            logs: list[str] = []
            page.on("console", lambda m: logs.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: logs.append(f"pageerror: {e}"))
            page.goto(f"{server}/insee", wait_until="domcontentloaded", timeout=60_000)
            _idle(page)
            page.locator("input[type='file']").first.set_input_files(
                str(tmp_path / "comparateur_26.csv"))
            _idle(page)
            page.locator("[data-testid='stSidebarNav'] a").filter(has_text="Plan national") \
                .first.click()
            _idle(page)
            main = page.locator("[data-testid='stMain']").first
            expect(main.get_by_role("heading", name="Où ouvrir")).to_be_visible(
                timeout=180_000)
            frame_el = page.locator("iframe[title='streamlit_folium.st_folium']").first
            expect(frame_el).to_be_visible(timeout=60_000)
            frame = frame_el.content_frame
            expect(frame.locator(".leaflet-container").first).to_be_visible(timeout=60_000)
            expect(frame.get_by_text("Légende").first).to_be_visible()
            expect(frame.get_by_text("Maison existante connue").first).to_be_visible()
            page.wait_for_timeout(1500)
            drawn = frame_el.element_handle().content_frame().evaluate(MARKERS_JS)
            page.screenshot(path=str(tmp_path / "plan_page.png"), full_page=True)
            frame_el.screenshot(path=str(tmp_path / "plan_map.png"))
        finally:
            browser.close()
    assert drawn["ranks"][:3] == ["1", "2", "3"], drawn
    assert len(drawn["ranks"]) <= 50  # the page's default number of new Maisons
    assert drawn["circles"] >= len(drawn["ranks"]) + 1, drawn  # new and known Maisons
    assert not [e for e in logs if e.startswith("pageerror")], logs
    # the map asks the internet for its background tiles only, no script or stylesheet
    assert not [u for u in outside if u.split("?")[0].endswith((".js", ".css"))], outside
