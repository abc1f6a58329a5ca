"""Benchmark: how fast the app answers a person, in a real headless Chromium.

Run from the repository root (Debian's chromium and Playwright installed)::

    python bench/app_interactions.py [--territory 44] [--port 0] [--only NAME] [--app-dir DIR]

Starts ``streamlit run app.py`` on a free local port (every request to another host is
refused, as offline), picks the territory (default: the demo département, 44) by the
sidebar search, then visits every page once to warm the caches (the "first load", not
timed as an interaction). Then each interaction is timed from the action to the page
being idle again: the app's script run is over (Streamlit's ``script_finished`` message
arrived on the websocket) and the browser has painted two more frames; the time the run
ended is printed too. The action starts at its first input event in the page
(``pointerdown``/``keydown``, in the map's frame too), not when Playwright starts waiting
for the element to be actionable. Interactions: page changes, a territory change (an
EPCI, then back to the whole département), the sliders, a map type change, a click on the
Implantation map and adding the clicked point as a proposed site.

Each interaction is either ``new`` (it asks for something this session never computed: a
slider moved to a value never seen, another map, a clicked point, a proposed site, a page
showing a study changed elsewhere) or ``cached`` (back to a value already computed, or a
page whose study is unchanged). A person meets both; the app must answer both fast.

Prints one line per interaction (``<name> <seconds> [new|cached]``) and a last line
``RESULT max_s=<slowest> median_s=<median> n=<count> slowest=<name> new_max_s=...
new_median_s=... n_new=... slowest_new=... cached_max_s=... cached_median_s=... n_cached=...
n_over_0_5=...`` (``n_over_0_5``: interactions slower than 0.5 s). ``--app-dir`` runs the
app of another checkout (e.g. main's, to measure old and new back to back on the same
load). Not part of pytest.
"""

from __future__ import annotations

import argparse
import os
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

_FRAMES_JS = """() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(
    () => r(performance.timeOrigin + performance.now()))))"""
# In every frame (the maps' iframes too, same origin): the epoch time (ms) of each input
# event that starts an action, collected in the top window.
_INPUTS_JS = """for (const type of ["pointerdown", "keydown"]) {
    addEventListener(type, (e) => {
        try {
            const top = window.top;
            (top.__maillageInputs = top.__maillageInputs || []).push(
                performance.timeOrigin + e.timeStamp);
        } catch (err) { /* another origin: not ours */ }
    }, true);
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(port: int, app_dir: Path = REPO) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(app_dir)}  # that checkout's packages, not main's
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=app_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    """Actions on the app page, each waited until the app is idle again.

    The end of a script run is read from the app's own websocket: Streamlit sends a
    ``ForwardMsg`` whose ``script_finished`` says the run is over (parsed with Streamlit's
    protobuf classes), then the page is given two animation frames to paint.
    """

    def __init__(self, page: Any) -> None:
        self.page = page
        self.finished = 0
        self.finished_at = 0.0  # epoch seconds
        page.on("websocket", lambda ws: ws.on("framereceived", self._on_frame))

    def _on_frame(self, payload: Any) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if not isinstance(payload, bytes):
            return
        msg = ForwardMsg()
        try:
            msg.ParseFromString(payload)
        except Exception:  # noqa: BLE001 - not a ForwardMsg: not ours to judge
            return
        if msg.WhichOneof("type") == "script_finished" and msg.script_finished in (
                ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY):
            self.finished += 1
            self.finished_at = time.time()

    def wait_finished(self, before: int, *, timeout_s: float = 180) -> None:
        deadline = time.perf_counter() + timeout_s
        while self.finished <= before:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no script run finished within {timeout_s:g} s")
            self.page.wait_for_timeout(5)  # lets Playwright deliver the websocket events

    def idle_after(self, action: Callable[[], None], *,
                   timeout_s: float = 180) -> tuple[float, float]:
        """Seconds from the action to the end of its script run, and to the page painted.

        The action starts at its first input event in the page (``pointerdown`` of a
        click, ``keydown`` of a key), not when Playwright starts looking for the element.
        """
        before = self.finished
        self.page.evaluate("() => { window.__maillageInputs = []; }")
        start = time.time()
        action()
        self.wait_finished(before, timeout_s=timeout_s)
        painted = self.page.evaluate(_FRAMES_JS) / 1000
        inputs = self.page.evaluate("() => window.__maillageInputs || []")
        if inputs:
            start = min(inputs) / 1000
        return self.finished_at - start, painted - start

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


#: What an interaction asks of the app: a value never computed in this session, or one
#: already computed (see the module docstring).
NEW, CACHED = "new", "cached"
Result = tuple[str, float, str]


def run(territory: str, port: int, only: str | None) -> list[Result]:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Route, sync_playwright

    def offline(r: Route) -> None:
        if urllib.parse.urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            r.abort("internetdisconnected")

    url = f"http://127.0.0.1:{port}"
    results: list[Result] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1800},
                                          locale="fr-FR")
            context.route("**/*", offline)
            context.add_init_script(_INPUTS_JS)
            page = context.new_page()
            page.set_default_timeout(180_000)
            d = Driver(page)
            page.goto(url, wait_until="domcontentloaded")
            d.wait_finished(0)
            page.wait_for_selector("[data-testid='stMetric']")
            page.set_default_timeout(20_000)  # to find a widget; script runs wait longer

            def timed(name: str, action: Callable[[], None], kind: str = CACHED, *,
                      warm: bool = False) -> None:
                try:
                    run_s, seconds = d.idle_after(action)
                except (PlaywrightError, TimeoutError) as exc:  # e.g. a widget absent here
                    print(f"{name} skipped: {str(exc).splitlines()[0]}", flush=True)
                    return
                label = f"first:{name}" if warm else f"{name} {seconds:.3f} [{kind}]"
                if warm:
                    label += f" {seconds:.3f}"
                print(f"{label} (script run over at {run_s:.3f})", flush=True)
                if not warm and (only is None or only in name):
                    results.append((name, seconds, kind))

            timed("territoire", d.search(territory), warm=True)
            pages = ["Besoins et lacunes", "Implantation", "Partenaires", "Rapport et exports",
                     "Importer des structures", "Sources et limites", "Territoire"]
            for title in pages:  # first load of every page: caches warmed, not counted
                timed(f"page:{title}", d.nav(title), warm=True)
            for title in pages:
                timed(f"page:{title}", d.nav(title))

            # Territoire: the « à portée » distance slider: two new values, then back.
            timed("slider:distance+", d.slider_key("Distance jugée", "ArrowRight"), NEW)
            timed("slider:distance++", d.slider_key("Distance jugée", "ArrowRight"), NEW)
            timed("slider:distance-", d.slider_key("Distance jugée", "ArrowLeft"))

            # Territory change: an EPCI of the département (the one the app opened on), then
            # the whole département: both computed before.
            sidebar = page.locator("[data-testid='stSidebar']")
            timed("territory:epci", d.select("Intercommunalité", "Pontchâteau", scope=sidebar))
            timed("territory:departement", d.select("Intercommunalité", "tout le département",
                                                    scope=sidebar))

            timed("page:Besoins et lacunes", d.nav("Besoins et lacunes"))
            timed("slider:T+", d.slider_key("Temps de trajet maximal", "ArrowRight"), NEW)
            timed("slider:T++", d.slider_key("Temps de trajet maximal", "ArrowRight"), NEW)
            timed("slider:T-", d.slider_key("Temps de trajet maximal", "ArrowLeft"))
            timed("slider:T--", d.slider_key("Temps de trajet maximal", "ArrowLeft"))
            radios = d.main().locator("[data-testid='stRadio'] label")
            timed("radio:access-map", lambda: radios.filter(
                has_text="Temps jusqu'au service le plus proche").first.click(), NEW)
            timed("radio:priority-map", lambda: radios.filter(
                has_text="Score de priorité").first.click())

            timed("page:Implantation", d.nav("Implantation"))
            page.frame_locator("iframe[title*='streamlit_folium']").first \
                .locator(".leaflet-container").first.wait_for()
            timed("slider:uptake", d.slider_key("Participation des familles", "ArrowRight"),
                  NEW)
            timed("slider:uptake+", d.slider_key("Participation des familles", "ArrowRight"),
                  NEW)
            timed("slider:uptake-", d.slider_key("Participation des familles", "ArrowLeft"))
            timed("map:click", d.map_click(0.45, 0.55), NEW)
            timed("site:add", d.button("Ajouter ce point comme site proposé"), NEW)
            timed("map:click2", d.map_click(0.6, 0.4), NEW)
            # the study changed on Implantation (participation, a proposed site): new here
            timed("page:Partenaires", d.nav("Partenaires"), NEW)
            timed("page:Territoire", d.nav("Territoire"))
        finally:
            browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--territory", default="44", help="code searched in the sidebar")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--only", default=None, help="count only interactions with this text")
    parser.add_argument("--app-dir", type=Path, default=REPO,
                        help="checkout whose app.py is run (default: this one)")
    args = parser.parse_args(argv)
    port = args.port or _free_port()
    proc = _start_server(port, args.app_dir.resolve())
    try:
        results = run(args.territory, port, args.only)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    print("RESULT " + summary(results))
    return 0


def _stats(results: list[Result], prefix: str) -> str:
    if not results:
        return f"{prefix}max_s=nan {prefix}median_s=nan n_{prefix.rstrip('_')}=0"
    times = [s for _, s, _ in results]
    return (f"{prefix}max_s={max(times):.3f} {prefix}median_s={statistics.median(times):.3f}"
            f" n_{prefix.rstrip('_')}={len(times)} "
            f"slowest_{prefix.rstrip('_')}={max(results, key=lambda r: r[1])[0]}")


def summary(results: list[Result], *, limit_s: float = 0.5) -> str:
    """The RESULT fields: all interactions, then new values and cached ones apart."""
    times = [s for _, s, _ in results]
    slowest = max(results, key=lambda r: r[1])
    return (f"max_s={max(times):.3f} median_s={statistics.median(times):.3f} "
            f"n={len(times)} slowest={slowest[0]} "
            + _stats([r for r in results if r[2] == NEW], "new_") + " "
            + _stats([r for r in results if r[2] == CACHED], "cached_")
            + f" n_over_0_5={sum(s > limit_s for s in times)}")


if __name__ == "__main__":
    sys.exit(main())
