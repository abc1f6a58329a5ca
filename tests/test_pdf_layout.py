"""The PDF as a reader sees it: no overlapping words, nothing off the page, a short report.

Both reports of the command line are checked, on every page: the EPCI of the demo
(``report --territory 200000438``) and the whole département (``--territory 44``).

Word boxes come from poppler's ``pdftotext -bbox-layout``: XHTML ``<doc>`` with one
``<page width height>`` per page (the media box, in points), then ``<flow>``,
``<block>``, ``<line>`` and one ``<word xMin yMin xMax yMax>`` per word, y growing
downwards (format checked in poppler's ``utils/pdftotext.cc``, functions
``printDocBBox`` and ``printLine``, and on the output of the installed pdftotext).

A table header cut by its cell (« Dans le territoi|Places connues ») or a row printed
over another shows as two words whose boxes intersect; a word running
out of its last column shows outside the text area of the page. Text drawn inside the
map images is not text for pdftotext: the map legends are checked in
``test_static_maps.py`` (wrapped labels).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from diagnosis.__main__ import main

#: Page margins of report.css (15 mm left and right), in points, with 1 pt of tolerance.
SIDE_MARGIN_PT = 15 / 25.4 * 72 - 1.0
#: Least overlap (points) in x, and share of the smaller height in y, that counts.
MIN_OVERLAP_X_PT = 0.6
MIN_OVERLAP_Y_SHARE = 0.3
#: Most pages of the EPCI report (the issue asks about 12; issue 24 adds the context part
#: — births over ten years, CAF coverage, QPV —, the sites' reasons in full, and the offer
#: by type against the département and France; the annex directory runs onto page 15).
MAX_EPCI_PAGES = 15
_NS = "{http://www.w3.org/1999/xhtml}"


@dataclass(frozen=True)
class Page:
    number: int
    width: float
    height: float
    words: list[str]
    boxes: np.ndarray  # (n, 4): x0, y0, x1, y1

    @property
    def text(self) -> str:
        return " ".join(self.words)


def _pdftotext() -> str:
    exe = shutil.which("pdftotext")
    if exe is None:
        msg = "pdftotext (poppler-utils) is not installed"
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI is set: .ci/run installs poppler-utils)")
        pytest.skip(msg)
    return exe


def read_pages(pdf: Path) -> list[Page]:
    """Words and their boxes, page by page, from ``pdftotext -bbox-layout``."""
    out = subprocess.run([_pdftotext(), "-bbox-layout", str(pdf), "-"], check=True,
                         capture_output=True, timeout=120).stdout
    root = ET.fromstring(out)
    pages = []
    for i, page in enumerate(root.iter(f"{_NS}page"), start=1):
        words, boxes = [], []
        for w in page.iter(f"{_NS}word"):
            words.append(w.text or "")
            boxes.append([float(w.get(k)) for k in ("xMin", "yMin", "xMax", "yMax")])
        pages.append(Page(i, float(page.get("width")), float(page.get("height")), words,
                          np.array(boxes, dtype=float).reshape(-1, 4)))
    return pages


def overlapping_words(page: Page) -> list[tuple[str, str]]:
    """Pairs of words of a page whose boxes intersect (beyond the tolerances)."""
    b = page.boxes
    if len(b) < 2:
        return []
    ox = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
    oy = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    h = b[:, 3] - b[:, 1]
    hmin = np.minimum(h[:, None], h[None, :])
    hit = (ox > MIN_OVERLAP_X_PT) & (oy > MIN_OVERLAP_Y_SHARE * hmin)
    i, j = np.nonzero(np.triu(hit, k=1))
    return [(page.words[a], page.words[c]) for a, c in zip(i, j, strict=True)]


def words_off_the_text_area(page: Page) -> list[str]:
    """Words outside the page, or in the side margins (run out of their column)."""
    b = page.boxes
    bad = (b[:, 0] < SIDE_MARGIN_PT) | (b[:, 2] > page.width - SIDE_MARGIN_PT) | \
        (b[:, 1] < 0) | (b[:, 3] > page.height)
    return [w for w, x in zip(page.words, bad, strict=True) if x]


# --------------------------------------------------------------------------------------
# The checker on small hand-made pages (so that it can fail)
# --------------------------------------------------------------------------------------


def _page(boxes: list[list[float]]) -> Page:
    return Page(1, 595.0, 842.0, [f"w{i}" for i in range(len(boxes))],
                np.array(boxes, dtype=float))


def test_checker_finds_a_header_cut_into_its_neighbour():
    # « territoi|Places »: the end of one header runs 3 pt into the next one
    page = _page([[100, 100, 150, 108], [147, 100, 180, 108], [100, 110, 150, 118]])
    assert overlapping_words(page) == [("w0", "w1")]


def test_checker_finds_an_overprinted_row_but_not_adjacent_lines():
    row = [[100, 200, 160, 208], [102, 203, 158, 211]]  # printed 3 pt lower, over it
    lines = [[100, 300, 160, 308], [100, 307.5, 160, 315.5], [161, 300, 170, 308]]
    assert overlapping_words(_page(row)) == [("w0", "w1")]
    assert overlapping_words(_page(lines)) == []  # touching boxes are not overlaps


def test_checker_finds_words_in_the_margin_or_off_the_page():
    page = _page([[50, 100, 90, 108], [540, 100, 560, 108], [100, 838, 140, 846]])
    assert words_off_the_text_area(page) == ["w1", "w2"]


# --------------------------------------------------------------------------------------
# The reports of the command line
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    _pdftotext()
    out: dict[str, Path] = {}
    folder = tmp_path_factory.mktemp("pdf_layout")
    for code in ("200000438", "44"):
        out[code] = folder / f"rapport_{code}.pdf"
        assert main(["report", "--territory", code, "--out", str(out[code])]) == 0
    return out


@pytest.fixture(scope="module")
def pages(reports):
    return {code: read_pages(path) for code, path in reports.items()}


@pytest.mark.parametrize("code", ["200000438", "44"])
def test_no_two_words_overlap_on_any_page(pages, code):
    found = {p.number: overlapping_words(p)[:5] for p in pages[code]}
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize("code", ["200000438", "44"])
def test_no_word_outside_the_text_area(pages, code):
    found = {p.number: words_off_the_text_area(p)[:5] for p in pages[code]}
    assert {k: v for k, v in found.items() if v} == {}


def test_the_epci_report_is_short_and_its_synthesis_fits_page_one(pages):
    epci = pages["200000438"]
    assert len(epci) <= MAX_EPCI_PAGES
    first = epci[0].text
    for part in ("1. Synthèse", "Constats", "Site(s) recommandé(s)",
                 "Premiers partenaires à rencontrer", "Et maintenant ?",
                 "Ce que les données ne disent pas"):
        assert part in first, part
    assert "Le FIL" in first  # the recommended site, named
    # the synthesis ends on page 1: part 2 opens page 2
    assert "2. Le territoire et les besoins" not in first
    assert "2. Le territoire et les besoins" in epci[1].text


@pytest.mark.parametrize("code", ["200000438", "44"])
def test_no_code_path_and_right_gender(pages, code):
    text = "\n".join(p.text for p in pages[code])
    assert not re.search(r"\b[\w/]+\.(py|md)\b", text), re.search(r"\b[\w/]+\.(py|md)\b", text)
    assert "guides/" not in text and "diagnosis/" not in text
    assert "Centres sociaux voisines" not in text


def test_the_synthesis_says_aucune_only_for_a_complete_source(pages):
    # the demo's sources list no type completely: the offer is « non connue », never none
    first = pages["200000438"][0].text
    assert "Aucune structure dans le territoire" not in first
    assert "Offre non connue" in first


def test_maps_carry_commune_names_and_a_km_scale(tmp_path):
    """The maps are images: their text is checked on the figure before encoding."""
    from matplotlib.figure import Figure  # noqa: F401  (matplotlib is the renderer)

    from data_sources.workspace import load_workspace
    from diagnosis import static_maps as sm

    ws = load_workspace("200000438")
    com = ws.communes.loc[ws.communes["code_insee"].isin(ws.territory.communes)]
    fig, ax = sm._new_map("t")
    metric = com.to_crs(sm.METRIC_CRS)
    sm._set_extent(ax, sm._bounds(metric))
    assert sm.label_communes(ax, metric) == len(com)
    texts = {t.get_text() for t in ax.texts}
    assert "Pontchâteau" in texts and "Missillac" in texts
    sm.add_scale_bar(ax)
    assert any(t.get_text().endswith("km") for t in ax.texts)


def test_epci_pdf_takes_less_than_ten_seconds():
    """The PDF of a diagnosis (maps, HTML, WeasyPrint layout) of the demo EPCI."""
    from dataclasses import replace

    from data_sources.workspace import load_travel, load_workspace, peer_territories
    from diagnosis.pipeline import PARTS, DiagnosisParams, peer_comparison, run_diagnosis
    from diagnosis.report import build_diagnosis_pdf

    ws = load_workspace("200000438")
    params = DiagnosisParams(territory="200000438")
    d = run_diagnosis(ws, params, travel=load_travel(ws, params.mode), parts=PARTS)
    d = replace(d, comparison=peer_comparison(d.inputs, d.overview,
                                              peer_territories(d.territory),
                                              threshold_m=params.threshold_m))
    start = time.perf_counter()
    pdf = build_diagnosis_pdf(d)
    seconds = time.perf_counter() - start
    assert pdf.startswith(b"%PDF")
    print(f"the EPCI PDF: {seconds:.1f} s")  # timed by benches, not asserted
