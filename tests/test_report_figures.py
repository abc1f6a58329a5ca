"""The report's figures and its PDF process: each figure drawn once, the same report
whether WeasyPrint works in a forked process (the command line) or here, a figure that
cannot be drawn stops the report with its own error, a failing process leaves the
layout to the caller.

Data: the embedded demo (EPCI 200000438, CC du Pays de Pontchâteau Saint-Gildas-des-Bois)
with its full diagnosis and its neighbours compared, so that every kind of figure is drawn
(births, poverty, offer, priority score, recommended sites, comparison chart).
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from contextlib import nullcontext
from dataclasses import replace

import pytest
from pypdf import PdfReader

from diagnosis import comparison as comparison_module
from diagnosis.errors import InputError
from diagnosis.report import (
    PdfProcess,
    _base,
    render_diagnosis_html,
    render_diagnosis_pdf,
    results,
    territory,
)

CREATED = dt.date(2026, 1, 15)
#: Where the report's sections find their figure renderers (module, function name).
RENDERERS = [(territory, "render_choropleth_map"), (territory, "render_offer_map"),
             (results, "render_choropleth_map"), (results, "render_points_map"),
             (_base, "render_points_map"), (comparison_module, "render_comparison_chart")]


@pytest.fixture(scope="module")
def diag():
    from data_sources.workspace import load_travel, load_workspace, peer_territories
    from diagnosis.pipeline import PARTS, DiagnosisParams, peer_comparison, run_diagnosis

    ws = load_workspace("200000438")
    params = DiagnosisParams(territory="200000438")
    d = run_diagnosis(ws, params, travel=load_travel(ws, params.mode), parts=PARTS)
    return replace(d, comparison=peer_comparison(d.inputs, d.overview,
                                                 peer_territories(d.territory),
                                                 threshold_m=params.threshold_m))


def _images(pdf: bytes) -> set[bytes]:
    """The distinct images of a PDF (WeasyPrint shares one resource list between pages)."""
    return {im.data for page in PdfReader(io.BytesIO(pdf)).pages for im in page.images}


def _texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture(scope="module")
def drawn(diag):
    """The report laid out here, every call of a figure renderer recorded."""
    calls: list[tuple[str, str]] = []
    mp = pytest.MonkeyPatch()
    for module, name in RENDERERS:
        real = getattr(module, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls.append((_name, str(kwargs.get("title") or kwargs.get("metric"))))
            return _real(*args, **kwargs)

        mp.setattr(module, name, counted)
    try:
        report = render_diagnosis_pdf(diag, created=CREATED, pdf_process=None)
    finally:
        mp.undo()
    return report, calls


def test_every_figure_is_drawn_once_and_embedded(drawn):
    report, calls = drawn
    kinds = Counter(name for name, _ in calls)
    # births and poverty, offer, priority score, recommended sites, comparison chart
    assert kinds["render_choropleth_map"] == 3 and kinds["render_offer_map"] == 1
    assert kinds["render_points_map"] == 1 and kinds["render_comparison_chart"] == 1
    assert [c for c, n in Counter(calls).items() if n > 1] == []
    images = _images(report.pdf)
    assert len(images) == len(calls)
    assert all(im.startswith(b"\xff\xd8") for im in images)  # JPEG, embedded as drawn
    assert report.pages == len(PdfReader(io.BytesIO(report.pdf)).pages)


def test_pdf_process_gives_the_same_report(diag, drawn):
    here, _ = drawn
    with PdfProcess() as process:
        forked = render_diagnosis_pdf(diag, created=CREATED, pdf_process=process)
        assert process._proc is None  # laid out there, and stopped
    assert forked.pages == here.pages
    assert _texts(forked.pdf) == _texts(here.pdf)
    assert _images(forked.pdf) == _images(here.pdf)


def test_html_report_embeds_every_figure(diag, drawn):
    _, calls = drawn
    html = render_diagnosis_html(diag, created=CREATED)
    assert "maillage-figure:" not in html
    assert html.count('src="data:image/jpeg;base64,') == len(calls)


@pytest.mark.parametrize("in_process", [False, True])
@pytest.mark.parametrize(("module", "name"), [(territory, "render_offer_map"),
                                              (results, "render_choropleth_map")])
def test_a_figure_that_cannot_be_drawn_stops_the_report(diag, monkeypatch, in_process,
                                                        module, name):
    """The offer map is drawn by the command, the priority map (4th) by its helper."""
    def broken(*args, **kwargs):
        raise InputError("carte des structures impossible à dessiner")

    monkeypatch.setattr(module, name, broken)
    with PdfProcess() if in_process else nullcontext() as process:
        with pytest.raises(InputError, match="carte des structures impossible"):
            render_diagnosis_pdf(diag, created=CREATED, pdf_process=process)
        assert process is None or process._proc is None  # stopped


def test_a_pdf_process_that_fails_leaves_the_layout_here(diag, drawn, monkeypatch):
    """WeasyPrint failing in the process (here: its layout replaced by an error): the
    command lays the report out itself and gets the same PDF."""
    from diagnosis.report import render

    here, _ = drawn
    real = render._render_document

    def broken(html, figures):
        raise RuntimeError("mise en page impossible")

    monkeypatch.setattr(render, "_render_document", broken)
    with PdfProcess() as process:  # forked with the broken layout
        monkeypatch.setattr(render, "_render_document", real)  # here: the real one
        report = render_diagnosis_pdf(diag, created=CREATED, pdf_process=process)
    assert report.pages == here.pages and _texts(report.pdf) == _texts(here.pdf)
