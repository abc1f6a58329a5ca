"""The app sends bounded data to the browser and caps uploads in French (issue 25 item 2).

Before: a 3.4 MB upload of 100,000 unnamed rows on 5 positions sent a ~50 MB map and a
100,000-row report table; a larger one broke the Territoire page with Streamlit's English
« MessageSizeError … exceeds 200.0 MB ». Here the same upload (the row cap itself) is
imported and every element the pages send is measured: maps are thinned, tables
paginated, and the whole run stays far below Streamlit's 200 MB message limit.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app_pages._bounded import (
    MAX_MAP_BYTES,
    TABLE_PAGE_ROWS,
    component_bytes,
    keep_uploads,
    page_bounds,
)
from data_sources.user_file.read import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
TIMEOUT = 240
#: Streamlit's default ``server.maxMessageSize`` (MB): one message above it breaks a page.
STREAMLIT_MESSAGE_LIMIT = 200 * 2**20


def _upload_bytes(n: int) -> bytes:
    """``n`` unnamed crèches of Pontchâteau (44129, in the demo EPCI) on 5 positions."""
    positions = [(47.43 + k * 0.002, -2.09 + k * 0.002) for k in range(5)]
    lines = ["nom;type;lat;lon;code_insee"]
    lines += [f";eaje;{positions[i % 5][0]:.4f};{positions[i % 5][1]:.4f};44129"
              for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def _sent_bytes(at: AppTest) -> int:
    """Serialized size of every element of the last run (what the browser receives)."""
    total = 0
    stack = [at._tree]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "ByteSize"):
            total += proto.ByteSize()
        children = getattr(node, "children", None) or {}
        stack.extend(children.values() if isinstance(children, dict) else children)
    return total


def test_upload_over_the_cap_is_refused_in_french_before_reading():
    class Upload(SimpleNamespace):
        def getvalue(self) -> bytes:
            raise AssertionError("an oversized upload must not be copied")

    small = SimpleNamespace(name="ok.csv", size=10, getvalue=lambda: b"nom;type\nA;eaje\n")
    kept, refused = keep_uploads([Upload(name="gros.csv", size=MAX_IMPORT_BYTES + 1), small],
                                 what="fichier de structures")
    assert [name for name, _ in kept] == ["ok.csv"]
    assert len(refused) == 1
    assert refused[0].startswith("fichier de structures « gros.csv » refusé")
    assert f"au plus {MAX_IMPORT_BYTES // 2**20} Mo" in refused[0]


def test_uploads_over_the_total_cap_are_refused_in_upload_order():
    files = [SimpleNamespace(name=f"f{i}.csv", size=40, getvalue=lambda: b"x" * 40)
             for i in range(3)]
    kept, refused = keep_uploads(files, max_bytes=50, max_total_bytes=100,
                                 what="fichier de structures")
    assert [name for name, _ in kept] == ["f0.csv", "f1.csv"]
    assert len(refused) == 1 and "« f2.csv » non chargé" in refused[0]


def test_page_bounds_cover_every_row_once():
    n = 2 * TABLE_PAGE_ROWS + 7
    pages = -(-n // TABLE_PAGE_ROWS)
    seen = [r for p in range(1, pages + 1) for r in range(*page_bounds(n, p))]
    assert seen == list(range(n))


@pytest.fixture(scope="module")
def big_import() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run(timeout=TIMEOUT)
    at.switch_page("app_pages/import_fichier.py").run(timeout=TIMEOUT)
    at.file_uploader(key="upload_files").set_value(
        ("sans_nom.csv", _upload_bytes(MAX_IMPORT_ROWS), "text/csv")).run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_import_report_of_the_row_cap_is_paginated(big_import):
    at = big_import
    metrics = {m.label: m.value for m in at.metric}
    assert int(str(metrics["Lignes lues"]).replace("\u202f", "")) == MAX_IMPORT_ROWS
    report = at.dataframe[0].value
    assert isinstance(report, pd.DataFrame) and len(report) == TABLE_PAGE_ROWS
    assert any(n.label.startswith("Page (sur ") for n in at.number_input)
    assert _sent_bytes(at) < 20 * 2**20


def test_territory_page_with_the_row_cap_sends_a_bounded_map(big_import):
    at = big_import
    at.switch_page("app_pages/territoire.py").run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    sent = _sent_bytes(at)
    assert sent < STREAMLIT_MESSAGE_LIMIT // 10, sent
    maps = [n for n in _walk(at) if type(n).__name__ == "UnknownElement"]
    assert maps, "the territory map is drawn (thinned), not replaced by a warning"
    assert not any("Carte non affichée" in w.value for w in at.warning)


def _walk(at: AppTest) -> list:
    out, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        out.append(node)
        children = getattr(node, "children", None) or {}
        stack.extend(children.values() if isinstance(children, dict) else children)
    return out


def test_an_oversized_map_is_replaced_by_a_french_warning():
    def page() -> None:
        from app_pages._bounded import map_fits

        map_fits({"script": "x" * 64, "key": "k"}, max_bytes=16)

    at = AppTest.from_function(page).run(timeout=60)
    assert not at.exception
    assert at.warning and at.warning[0].value.startswith("Carte non affichée")
    assert component_bytes({"a": "xx", "b": {"c": "yyy"}, "d": ["z"]}) == 6
    assert MAX_MAP_BYTES < STREAMLIT_MESSAGE_LIMIT
