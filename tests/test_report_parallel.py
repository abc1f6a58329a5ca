"""The report laid out on two cores (:mod:`diagnosis.report._parallel`): cut before a
chapter that starts a page, the parts laid out side by side, joined into the PDF one
layout would have given: the same pages, text, page numbers, bookmarks (titles, pages,
positions, nesting), named destinations, information and language.

Data: the embedded demo's EPCI (200000438), whose report has figures before its method
chapter and two annexes after it, and small hand-made documents for the cut itself.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
from pypdf import PdfReader

from diagnosis.report import _parallel, render
from diagnosis.report._base import FIGURE_SCHEME
from diagnosis.report._parallel import split_report, write_pdf_on_two_cores

HEAD = ("<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">"
        "<title>T</title><style>section.chapter { break-before: page }</style></head>")
RUNNING = '\n<div id="header">H</div>\n'


@pytest.fixture(autouse=True)
def any_size(monkeypatch):
    """Small documents are cut too (a test says when real ones are not)."""
    monkeypatch.setattr(_parallel, "_MIN_SECOND_TAGS", 0)


def _doc(*sections: str) -> str:
    return HEAD + "<body>" + RUNNING + "".join(sections) + "\n</body>\n</html>"


def _section(kind: str, name: str, rows: int, *, figure: bool = False) -> str:
    cells = "".join(f"<tr><td>{name} {i}</td><td>{i}</td></tr>" for i in range(rows))
    image = f'<img src="{FIGURE_SCHEME}0">' if figure else ""
    return (f'\n<section class="{kind}" id="{name}"><h2>{name}</h2>{image}'
            f"<table>{cells}</table></section>")


def test_the_cut_evens_the_markup_and_keeps_the_running_elements():
    html = _doc(_section("synthesis", "a", 10, figure=True), _section("flow", "b", 30),
                _section("chapter", "c", 20), _section("chapter annex", "d", 45))
    first, second, head = split_report(html, figure_scheme=FIGURE_SCHEME)
    # before "d" (45 rows against 60) rather than before "c" (65 against 40)
    assert 'id="d"' in second and 'id="c"' in first and 'id="d"' not in first
    assert second.count("<section") == 1 and first.count("<section") == 3
    for part in (first, second):  # each a whole document with the running header
        assert part.startswith(HEAD[:40]) and part.rstrip().endswith("</html>")
        assert '<div id="header">H</div>' in part
        assert "@bottom-right { content: none }" in part  # numbered once joined
    assert "margin-top: 0" in second and "margin-top: 0" not in first
    assert head == html.partition("<body>")[0]


def test_no_cut_after_the_last_figure_or_for_a_small_tail():
    figure_last = _doc(_section("synthesis", "a", 10), _section("chapter", "b", 40),
                       _section("chapter", "c", 40, figure=True))
    assert split_report(figure_last, figure_scheme=FIGURE_SCHEME) is None
    small_tail = _doc(_section("synthesis", "a", 60, figure=True),
                      _section("chapter", "b", 3))
    assert split_report(small_tail, figure_scheme=FIGURE_SCHEME) is None
    no_chapter = _doc(_section("synthesis", "a", 30), _section("flow", "b", 30))
    assert split_report(no_chapter, figure_scheme=FIGURE_SCHEME) is None


def test_a_second_part_too_small_for_its_process_is_not_cut(monkeypatch, report_html):
    """An EPCI's annexes (about 600 tags) are laid out with the rest: a process and the
    join would cost more than they save (measured 0.15 s slower)."""
    monkeypatch.setattr(_parallel, "_MIN_SECOND_TAGS", 2_000)
    assert split_report(report_html, figure_scheme=FIGURE_SCHEME) is None
    big = _doc(_section("synthesis", "a", 300, figure=True),
               _section("chapter annex", "b", 400))
    first, second, _ = split_report(big, figure_scheme=FIGURE_SCHEME)
    assert 'id="b"' in second


def test_text_that_looks_like_a_chapter_is_no_cut():
    """A name from a source, escaped by the template, is never a place to cut."""
    hostile = '&lt;section class=&quot;chapter&quot;&gt; </body> « Crèche »'
    html = _doc(_section("synthesis", "a", 20),
                f'\n<section class="flow" id="b"><p>\n{hostile}</p></section>',
                _section("chapter", "c", 20))
    first, second, _ = split_report(html, figure_scheme=FIGURE_SCHEME)
    assert hostile in first and hostile not in second


@pytest.fixture(scope="module")
def diag():
    from data_sources.workspace import load_travel, load_workspace
    from diagnosis.pipeline import PARTS, DiagnosisParams, run_diagnosis

    ws = load_workspace("200000438")
    params = DiagnosisParams(territory="200000438")
    return run_diagnosis(ws, params, travel=load_travel(ws, params.mode), parts=PARTS)


@pytest.fixture(scope="module")
def report_html(diag):
    doc = render._report_document(diag.overview, **render.diagnosis_report_kwargs(diag))
    return render._inline_figures(doc)  # the figures drawn, as data URIs


def _facts(pdf: bytes) -> dict:
    reader = PdfReader(io.BytesIO(pdf))

    def outline(items, depth=0):
        for item in items:
            if isinstance(item, list):
                yield from outline(item, depth + 1)
            else:
                yield (depth, item.title, reader.get_destination_page_number(item),
                       round(float(item["/Left"]), 2), round(float(item["/Top"]), 2))

    return {"pages": len(reader.pages),
            "text": [page.extract_text() for page in reader.pages],
            "outline": list(outline(reader.outline)),
            "dests": {name: reader.get_destination_page_number(dest)
                      for name, dest in reader.named_destinations.items()},
            "info": dict(reader.metadata or {}),
            "lang": reader.root_object.get("/Lang"),
            "boxes": [tuple(page.mediabox) for page in reader.pages]}


def _font_objects(pdf: bytes) -> int:
    fonts = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for ref in (page["/Resources"].get("/Font") or {}).values():
            fonts.add(ref.idnum)
    return len(fonts)


def test_two_cores_give_the_pdf_of_one_layout(report_html):
    first, second, _ = split_report(report_html, figure_scheme="maillage-figure:")
    assert "Annexe" in second and "<img" not in second  # a real cut, before the annexes
    one = render._write_pdf(report_html, render._FigureSource({}))
    two = write_pdf_on_two_cores(report_html, lambda: None, render=render._render_document,
                                 figure_scheme=FIGURE_SCHEME)
    assert two[1] == one[1] == len(PdfReader(io.BytesIO(two[0])).pages)
    facts_one, facts_two = _facts(one[0]), _facts(two[0])
    assert facts_two == facts_one
    assert f"Page {one[1]} / {one[1]}" in facts_two["text"][-1]
    assert len(facts_one["outline"]) > 10 and any(d == 2 for d, *_ in facts_one["outline"])


def test_the_pdf_process_cuts_the_report_and_gets_its_figures(diag, monkeypatch):
    """The command's path: the PDF process (forked) cuts the report, receives the maps
    from the command and its helper, lays both parts out; the PDF is the one laid out
    here in one piece."""
    import datetime as dt

    from diagnosis.report import PdfProcess, render_diagnosis_pdf

    cuts = []
    real_split = _parallel.split_report

    def split(html, **kwargs):
        parts = real_split(html, **kwargs)
        cuts.append(parts is not None)
        return parts

    created = dt.date(2026, 1, 15)
    here = render_diagnosis_pdf(diag, created=created, pdf_process=None)
    monkeypatch.setattr(_parallel, "split_report", split)
    with PdfProcess() as process:  # forked now: the process cuts (and counts there)
        forked = render_diagnosis_pdf(diag, created=created, pdf_process=process)
    assert cuts == []  # the layout was not done here
    assert forked.pages == here.pages
    assert _facts(forked.pdf) == _facts(here.pdf)
    # laid out in parts: each part (and the page numbers) embeds its own font subsets
    assert _font_objects(forked.pdf) > _font_objects(here.pdf)
    images = {im.data for page in PdfReader(io.BytesIO(forked.pdf)).pages
              for im in page.images}
    assert images == {im.data for page in PdfReader(io.BytesIO(here.pdf)).pages
                      for im in page.images}


def test_a_failed_second_process_leaves_its_part_here(report_html, tmp_path):
    parent = os.getpid()
    marks = tmp_path / "marks"

    def render_failing_there(html, figures):
        if os.getpid() != parent:
            marks.write_text("forked")
            raise RuntimeError("mise en page impossible")
        return render._render_document(html, figures)

    one = render._write_pdf(report_html, render._FigureSource({}))
    two = write_pdf_on_two_cores(report_html, lambda: None, render=render_failing_there,
                                 figure_scheme=FIGURE_SCHEME)
    assert marks.read_text() == "forked"
    assert _facts(two[0]) == _facts(one[0])


def _lay_out_slowly(html: str, pid_file: str) -> None:
    parent = os.getpid()

    def slow_there(doc_html, figures):
        if os.getpid() != parent:
            Path(pid_file).write_text(str(os.getpid()))
            time.sleep(60)
        return render._render_document(doc_html, figures)

    write_pdf_on_two_cores(html, lambda: None, render=slow_there,
                           figure_scheme=FIGURE_SCHEME)


def test_a_stopped_pdf_process_stops_its_second_process(report_html, tmp_path):
    """The command stops its PDF process (SIGTERM): the forked part goes with it."""
    pid_file = tmp_path / "child.pid"
    proc = multiprocessing.get_context("fork").Process(
        target=_lay_out_slowly, args=(report_html, str(pid_file)))
    proc.start()
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the second part's process never started"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    proc.terminate()
    proc.join(30)
    assert proc.exitcode == -signal.SIGTERM
    deadline = time.monotonic() + 30
    while _running(child):
        assert time.monotonic() < deadline, "the second part's process lays out on"
        time.sleep(0.05)


def _running(pid: int) -> bool:
    """Whether a process runs (a zombie, killed but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_the_module_needs_no_figure_in_the_second_part():
    """The second part's process has no figure source: a cut never leaves one there."""
    html = _doc(_section("synthesis", "a", 5), _section("chapter", "b", 30, figure=True),
                _section("chapter", "c", 30))
    first, second, _ = split_report(html, figure_scheme=FIGURE_SCHEME)
    assert FIGURE_SCHEME in first and FIGURE_SCHEME not in second
