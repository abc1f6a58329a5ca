"""Several app sessions at once (issue 25 item 7): no session changes another's territory.

Streamlit's ``AppTest`` cannot run in parallel threads (each run installs and removes the
one ``Runtime`` singleton: "Runtime hasn't been created!"), so the sessions here take
turns, step by step, in one process: as several people on one server, they share the
process's caches (every ``st.cache_*`` wrapper, the COG tables, the asset settings),
which is where one session's choice could leak into another's. Each session picks its
own territory of the embedded demo (Loire-Atlantique), uploads its own facility file,
sets its own k and goes through the pages; after every step of every session, each one
still has its own territory, its own upload and its own study. Truly simultaneous
sessions are driven in a real browser by ``tests/test_browser.py``.
"""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from app_pages import DEFAULT_TERRITORY
from data_sources.cog import resolve

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 300
#: One territory per session: EPCIs and communes of the demo département.
TERRITORIES = ("200000438", "44129", "200067346", "44161")


def _facility_file(code: str) -> bytes:
    """A one-row facility file named after the session's territory."""
    commune = sorted(resolve(code).communes)[0]
    return f"nom;type;code_insee\nCrèche de la session {code};crèche;{commune}\n".encode()


def _check(sessions: dict[str, AppTest], chosen: dict[str, str], uploaded: set[str]) -> None:
    for code, at in sessions.items():
        if code not in chosen:  # not run yet
            continue
        assert not at.exception, (code, [e.value for e in at.exception])
        assert at.session_state["territory_code"] == chosen[code], code
        if "study" in at.session_state:
            assert at.session_state["study"].territory == chosen[code], code
        files = [n for n, _ in (at.session_state["facility_files"]
                                if "facility_files" in at.session_state else [])]
        assert files == ([f"structures_{code}.csv"] if code in uploaded else []), (code, files)


def test_sessions_taking_turns_keep_their_own_territory_upload_and_study():
    sessions = {code: AppTest.from_file(APP, default_timeout=TIMEOUT) for code in TERRITORIES}
    uploaded: set[str] = set()
    chosen: dict[str, str] = {}  # the territory each session has chosen so far
    steps = [
        lambda at, code: at.run(timeout=TIMEOUT),
        lambda at, code: at.text_input(key="picker_search").input(code).run(timeout=TIMEOUT),
        lambda at, code: at.switch_page("app_pages/import_fichier.py").run(timeout=TIMEOUT),
        lambda at, code: at.file_uploader(key="upload_files").set_value(
            (f"structures_{code}.csv", _facility_file(code), "text/csv")).run(
            timeout=TIMEOUT),
        lambda at, code: at.switch_page("app_pages/implantation.py").run(timeout=TIMEOUT),
        lambda at, code: at.switch_page("app_pages/territoire.py").run(timeout=TIMEOUT),
    ]
    for i, step in enumerate(steps):
        for code, at in sessions.items():
            step(at, code)
            chosen[code] = DEFAULT_TERRITORY if i == 0 else code
            if i == 3:
                uploaded.add(code)
            _check(sessions, chosen, uploaded)
    for code, at in sessions.items():
        t = resolve(code)
        assert at.title[0].value == t.name, code
        shown = {m.label: m.value for m in at.metric}
        assert int(str(shown["Communes"]).replace("\u202f", "")) == len(t.communes), code
        assert any(f"structures_{code}.csv" in s.value.replace("\\", "") for s in at.success)
