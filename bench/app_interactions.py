"""Benchmark: how fast the app answers a person, in a real headless Chromium.

Run from the repository root (Debian's chromium and Playwright installed)::

    python bench/app_interactions.py [--territory 44] [--port 0] [--only NAME]

Starts ``streamlit run app.py`` on a free local port (every request to another host is
refused, as offline), picks the territory (default: the demo département, 44) by the
sidebar search, then visits every page once to warm the caches (the "first load", not
timed as an interaction). Then each interaction is timed from the action (a click, a key
press) to the page being idle again: the app's script run is over (``stApp``'s
``data-test-script-state`` went from ``running`` back to ``notRunning``) and the browser
has painted two more frames. Interactions: page changes, a territory change (the EPCI,
then back to the whole département), the threshold sliders, a map type change, a click on
the Implantation map and adding the clicked point as a proposed site.

Prints one line per interaction (``<name> <seconds>``) and a last line
``RESULT max_s=<slowest> median_s=<median> n=<count>``. Not part of pytest.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]

# Counts the script runs that finished (state back to notRunning after running).
_WATCH_JS = """() => {
    if (window.__maillageRuns !== undefined) { return; }
    window.__maillageRuns = 0;
    const app = document.querySelector("[data-testid='stApp']");
    let last = app.getAttribute("data-test-script-state");
    new MutationObserver(() => {
        const now = app.getAttribute("data-test-script-state");
        if (now === "notRunning" && last !== "notRunning") { window.__maillageRuns += 1; }
        last = now;
    }).observe(app, {attributes: true, attributeFilter: ["data-test-script-state"]});
}"""
_IDLE_JS = """(before) => {
    const app = document.querySelector("[data-testid='stApp']");
    return window.__maillageRuns > before
        && app.getAttribute("data-test-script-state") === "notRunning";
}"""
_FRAMES_JS = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                        timeout=2) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("streamlit did not answer /_stcore/health within 60 s")


class Driver:
    """Actions on the app page, each waited until the app is idle again."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def idle_after(self, action: Callable[[], None], *, timeout_s: float = 180) -> float:
        """Seconds from ``action`` to the end of the script run it caused (plus 2 frames)."""
        self.page.evaluate(_WATCH_JS)
        before = self.page.evaluate("() => window.__maillageRuns")
        start = time.perf_counter()
        action()
        self.page.wait_for_function(_IDLE_JS, arg=before, timeout=timeout_s * 1000,
                                    polling="raf")
        self.page.evaluate(_FRAMES_JS)
        return time.perf_counter() - start

    def main(self) -> Any:
        return self.page.locator("[data-testid='stMain']")

    def nav(self, title: str) -> Callable[[], None]:
        link = self.page.locator("[data-testid='stSidebarNav'] a").filter(has_text=title)
        return lambda: link.first.click()

    def select(self, label: str, option: str, *, scope: Any = None) -> Callable[[], None]:
        box = (scope or self.page).locator("[data-testid='stSelectbox']").filter(
            has_text=label).first

        def act() -> None:
            box.locator("[role='combobox'], input").first.click()
            self.page.locator("[role='option']").filter(has_text=option).first.click()
        return act

    def slider_key(self, label: str, key: str) -> Callable[[], None]:
        thumb = self.main().get_by_role("slider", name=label).first

        def act() -> None:
            thumb.focus()
            thumb.press(key)
        return act

    def map_click(self, x_frac: float, y_frac: float) -> Callable[[], None]:
        frame = self.page.frame_locator("iframe[title*='streamlit_folium']").first
        container = frame.locator(".leaflet-container").first

        def act() -> None:
            box = container.bounding_box()
            assert box is not None, "the map is not drawn"
            container.click(position={"x": box["width"] * x_frac, "y": box["height"] * y_frac})
        return act

    def button(self, name: str) -> Callable[[], None]:
        return lambda: self.main().get_by_role("button", name=name).first.click()

    def search(self, query: str) -> Callable[[], None]:
        box = self.page.locator("[data-testid='stSidebar'] [data-testid='stTextInput'] input")

        def act() -> None:
            box.fill(query)
            box.press("Enter")
        return act


def run(territory: str, port: int, only: str | None) -> list[tuple[str, float]]:
    from playwright.sync_api import Route, sync_playwright

    def offline(r: Route) -> None:
        if urllib.parse.urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            r.abort("internetdisconnected")

    url = f"http://127.0.0.1:{port}"
    results: list[tuple[str, float]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1800},
                                          locale="fr-FR")
            context.route("**/*", offline)
            page = context.new_page()
            page.set_default_timeout(180_000)
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
            page.wait_for_selector("[data-testid='stMetric']")
            d = Driver(page)

            def timed(name: str, action: Callable[[], None], *, warm: bool = False) -> None:
                seconds = d.idle_after(action)
                label = f"first:{name}" if warm else name
                print(f"{label} {seconds:.3f}", flush=True)
                if not warm and (only is None or only in name):
                    results.append((name, seconds))

            timed("territoire", d.search(territory), warm=True)
            pages = ["Besoins et lacunes", "Implantation", "Partenaires", "Rapport et exports",
                     "Importer des structures", "Sources et limites", "Territoire"]
            for title in pages:  # first load of every page: caches warmed, not counted
                timed(f"page:{title}", d.nav(title), warm=True)
            for title in pages:
                timed(f"page:{title}", d.nav(title))

            # Territoire: the « à portée » distance slider, twice (a new value, then back).
            timed("slider:distance+", d.slider_key("Distance jugée", "ArrowRight"))
            timed("slider:distance-", d.slider_key("Distance jugée", "ArrowLeft"))

            # Territory change: an EPCI of the département, then the whole département.
            sidebar = page.locator("[data-testid='stSidebar']")
            timed("territory:epci", d.select("Intercommunalité", "Pontchâteau", scope=sidebar))
            timed("territory:departement", d.select("Intercommunalité", "tout le département",
                                                    scope=sidebar))

            timed("page:Besoins et lacunes", d.nav("Besoins et lacunes"))
            timed("slider:T+", d.slider_key("Temps de trajet maximal", "ArrowRight"))
            timed("slider:T-", d.slider_key("Temps de trajet maximal", "ArrowLeft"))
            radios = d.main().locator("[data-testid='stRadio'] label")
            timed("radio:access-map", lambda: radios.filter(
                has_text="Temps jusqu'au service le plus proche").first.click())
            timed("radio:priority-map", lambda: radios.filter(
                has_text="Score de priorité").first.click())

            timed("page:Implantation", d.nav("Implantation"))
            page.frame_locator("iframe[title*='streamlit_folium']").first \
                .locator(".leaflet-container").first.wait_for()
            timed("map:click", d.map_click(0.45, 0.55))
            timed("site:add", d.button("Ajouter ce point comme site proposé"))
            timed("map:click2", d.map_click(0.6, 0.4))
            timed("slider:uptake", d.slider_key("Participation des familles", "ArrowRight"))
            timed("page:Partenaires", d.nav("Partenaires"))
            timed("page:Territoire", d.nav("Territoire"))
        finally:
            browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--territory", default="44", help="code searched in the sidebar")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--only", default=None, help="count only interactions with this text")
    args = parser.parse_args(argv)
    port = args.port or _free_port()
    proc = _start_server(port)
    try:
        results = run(args.territory, port, args.only)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    times = [s for _, s in results]
    slowest = max(results, key=lambda r: r[1])
    print(f"RESULT max_s={max(times):.3f} median_s={statistics.median(times):.3f} "
          f"n={len(times)} slowest={slowest[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
