"""The report's public API: HTML through Jinja2 (autoescape on), PDF through WeasyPrint."""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec

import geopandas as gpd
import pandas as pd

from diagnosis.analyses import Catchment, Site
from diagnosis.errors import InputError
from diagnosis.map_furniture import format_length_fr, image_data_uri
from diagnosis.map_tiles import BaseTiles, MapBase
from diagnosis.overview import Overview
from diagnosis.pipeline import Diagnosis
from diagnosis.report._base import (
    _KIND_LABELS,
    FIGURE_SCHEME,
    IMAGE_FORMAT,
    TEMPLATES_DIR,
    Progress,
    ReportMeta,
    _cell_text,
)
from diagnosis.report.action import action_section
from diagnosis.report.context import context_section
from diagnosis.report.method import _limits_part, _method_part, _sources_table
from diagnosis.report.offer import offer_levels_part
from diagnosis.report.results import (
    _access_section,
    _cohorts_section,
    _gaps_section,
    _partners_section,
    _siting_section,
    _with_modes,
)
from diagnosis.report.site import _comparison_part, _site_part
from diagnosis.report.synthesis import _synthesis
from diagnosis.report.territory import _directory, _needs_part, _offer_part
from diagnosis.static_maps import Base, attribution_text

_P = ParamSpec("_P")

if TYPE_CHECKING:
    from diagnosis.accessibility import AccessIndicators
    from diagnosis.analyses import PartnerTables
    from diagnosis.cohorts import CohortPlan
    from diagnosis.context import TerritoryContext
    from diagnosis.gaps import GapsResult
    from diagnosis.offer_levels import OfferLevels
    from diagnosis.siting import SitingResult
    from diagnosis.travel.compare import ModeComparison


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=False)
    return env.get_template("report.html.j2")




@dataclass(frozen=True)
class _Document:
    """A report's HTML whose images are :data:`FIGURE_SCHEME` placeholders.

    ``figures`` maps each placeholder to the function drawing its image
    (:data:`IMAGE_FORMAT`), in the order of the document.
    """

    html: str
    figures: dict[str, Callable[[], bytes]]


def _inline_figures(doc: _Document) -> str:
    """The document with every figure drawn and embedded as a data URI."""
    html = doc.html
    for key, draw in doc.figures.items():
        html = html.replace(f'src="{key}"', f'src="{image_data_uri(draw(), fmt=IMAGE_FORMAT)}"',
                            1)
    return html


def _report_document(
    overview: Overview,
    *,
    access: AccessIndicators | None = None,
    gaps: GapsResult | None = None,
    siting: SitingResult | None = None,
    scenarios: pd.DataFrame | None = None,
    partners: PartnerTables | None = None,
    cohorts: CohortPlan | None = None,
    comparison: pd.DataFrame | None = None,
    site: Site | None = None,
    context: gpd.GeoDataFrame | None = None,
    meta: ReportMeta | None = None,
    progress: Progress | None = None,
    catchment: Catchment | None = None,
    modes: ModeComparison | None = None,
    territory_context: TerritoryContext | None = None,
    offer_levels: OfferLevels | None = None,
    base_layers: gpd.GeoDataFrame | None = None,
    base_tiles: BaseTiles | None = None,
) -> _Document:
    """Render the diagnosis report as one self-contained HTML document (French).

    :func:`render_report_html` is this function with every figure drawn and inlined.

    Parameters
    ----------
    overview
        The diagnosis (:func:`diagnosis.overview.compute_overview`).
    access, gaps, siting, partners, cohorts
        Results of the other analyses, or ``None`` (the part says « Non calculé »).
    scenarios
        Siting scenarios side by side (:func:`diagnosis.siting.compare_scenarios`).
    comparison
        A comparison table (:func:`diagnosis.comparison.compare_territories`) including
        the territory, or ``None``.
    site
        A site studied for the Maison (``--site``), or ``None``.
    context
        Communes drawn in grey around the territory on the maps (e.g. all loaded ones).
    meta
        Author, date, sources, notices, imports.
    progress
        Called with the name of each step (for a progress bar).
    catchment
        The catchment of ``site`` (communes within T): the site section and the cohorts
        then speak of the same communes. Without it, the site section gives crow-fly
        distances only, and says so.
    offer_levels
        The offer by type against the département and France
        (:class:`diagnosis.offer_levels.OfferLevels`).
    base_layers
        Roads and water drawn on the maps (:func:`data_sources.osm_base.read_base_layers`);
        ``None``: the maps show the commune outlines only (never a tile fetched).
    base_tiles
        The OpenStreetMap tiles asked for (:class:`diagnosis.map_tiles.BaseTiles`), drawn
        pale under every map; the limits say when they could not be loaded. ``None``:
        not asked for.

    Returns
    -------
    str (``render_report_html``) or _Document (``_report_document``)
        ``render_report_html``: the HTML with the CSS and the figures (data URIs)
        inlined. ``_report_document``: the HTML with a :data:`FIGURE_SCHEME` placeholder
        per figure and the function drawing each (the PDF draws them while laying out).
    """
    if not isinstance(overview, Overview):
        raise InputError(f"overview must be an Overview (from compute_overview), got "
                         f"{type(overview).__name__!r}")
    meta = meta or ReportMeta()
    step = progress or (lambda _name: None)
    s = overview.summary
    sources = list(meta.sources) or list(s.get("sources", []))
    attribution = attribution_text(sources) or "Sources : voir la partie « Sources »"
    threshold_label = format_length_fr(float(overview.params["threshold_m"])) \
        .replace(" ", "\u00a0")
    created = meta.created or dt.date.today()
    com = overview.layers["communes"]
    base: Base = base_layers
    if base_tiles is not None and base_tiles.mosaic is not None:
        base = MapBase(layers=base_layers, tiles=base_tiles.mosaic)

    draws: dict[str, Callable[[], bytes]] = {}
    step("synthèse")
    synthesis = _synthesis(overview, access=access, gaps=gaps, siting=siting,
                           partners=partners, cohorts=cohorts, threshold_label=threshold_label)
    step("cartes du territoire et des besoins")
    needs = _needs_part(overview, context, attribution, base=base)
    trends = context_section(territory_context)
    actions = action_section(overview, partners=partners, siting=siting, cohorts=cohorts,
                             territory_context=territory_context)
    step("cartes de l'offre")
    offer = _offer_part(overview, context, attribution, threshold_label, base=base)
    by_level = offer_levels_part(offer_levels)
    offer = {**offer, "tables": [*offer["tables"], *by_level["tables"]],
             "after": by_level["after"]}
    step("accessibilité, implantation, partenaires")
    ctx = {
        **_front_matter(overview, meta, created=created, threshold_label=threshold_label,
                        attribution=attribution),
        "synthesis": synthesis,
        "needs": needs,
        "trends": trends,
        "actions": actions,
        "offer": offer,
        "access": _with_modes(_access_section(access, threshold_label=threshold_label),
                              modes),
        "gaps": _gaps_section(gaps, reason_missing=(
            "Le score de priorité des communes (besoins rapportés à l'offre accessible) n'a "
            "pas été calculé pour ce rapport. Les parties 2 et 3 donnent les besoins et les "
            "communes sans structure."), communes=com, context=context,
            attribution=attribution, base=base),
        "siting": _siting_section(siting, scenarios, reason_missing=(
            "Les sites recommandés et le tableau de scénarios (combien de naissances chaque "
            "choix de lieu met à portée) n'ont pas été calculés pour ce rapport."),
            communes=com, context=context, attribution=attribution, base=base),
        "site": (_site_part(site, overview, siting, threshold_label, catchment)
                 if site else None),
        "partners": _partners_section(partners, reason_missing=(
            "La sélection des partenaires à rencontrer en priorité n'a pas été calculée : "
            "l'annuaire en annexe liste toutes les structures connues.")),
        "directory": _directory(overview, sources=sources, context=context),
        "cohorts": _cohorts_section(cohorts, reason_missing=(
            "Le nombre de groupes de pairs possibles n'a pas été calculé pour ce rapport : "
            "il dépend de la part des familles qui rejoindraient un groupe, une hypothèse à "
            "fixer avec les partenaires (option --uptake-rate, par exemple 0,2).")),
        "comparison": _comparison_part(comparison, overview, attribution),
        "method": _method_part(threshold_label, access=access, gaps=gaps, siting=siting,
                               cohorts=cohorts, years=overview.summary.get("data_years")),
        "sources_table": _sources_table(sources),
        "imports": list(meta.imports),
        "limits": _limits_part(overview, [*meta.notices, *(
            [base_tiles.note_fr()] if base_tiles is not None else [])]),
    }
    step("mise en page HTML")
    n = 0
    for section in ctx.values():
        for fig in section.get("figures", ()) if isinstance(section, dict) else ():
            fig["uri"] = f"{FIGURE_SCHEME}{n}"
            n += 1
            draws[fig["uri"]] = fig["draw"]
    html = french_spacing(str(_template().render(**ctx)))
    return _Document(html=html, figures={key: draws[key] for key in _report_figure_keys(html)})



def _figures_inlined(build: Callable[_P, _Document]) -> Callable[_P, str]:
    """``build``'s report with every figure drawn and inlined (same parameters)."""
    @functools.wraps(build)
    def render(*args: _P.args, **kwargs: _P.kwargs) -> str:
        return _inline_figures(build(*args, **kwargs))

    return render


#: The diagnosis report as one self-contained HTML document (French): the CSS and the
#: figures (data URIs) inlined; the parameters and documentation of _report_document.
render_report_html = _figures_inlined(_report_document)
render_report_html.__name__ = render_report_html.__qualname__ = "render_report_html"


def _report_figure_keys(html: str) -> list[str]:
    """The figure placeholders of a report's HTML, in the order of the document.

    WeasyPrint asks for the images in that order.
    """
    return re.findall(rf'src="({re.escape(FIGURE_SCHEME)}\d+)"', html)


#: Where the data of a report came from (``ReportMeta.origin``), in French.
_ORIGIN_LABELS = {"demo": "données de démonstration embarquées (Loire-Atlantique)",
                  "store": "données téléchargées des sources publiques"}


def _front_matter(overview: Overview, meta: ReportMeta, *, created: dt.date,
                  threshold_label: str, attribution: str) -> dict[str, Any]:
    """The cover, the running header and footer and the notices of the report."""
    t = overview.territory
    return {
        "css": (TEMPLATES_DIR / "report.css").read_text(encoding="utf-8"),
        "title": meta.title,
        "territory": {"label": t.label, "name": t.name, "code": t.code,
                      "kind_label": _KIND_LABELS.get(t.kind, "Territoire"),
                      # a custom territory's code is an internal hash: never printed
                      "show_code": t.kind != "custom",
                      "n_communes": overview.summary["n_communes"], "note": t.note},
        "meta": {"author": meta.author, "date": created.strftime("%d/%m/%Y"),
                 "date_iso": created.isoformat(),
                 "origin_label": _ORIGIN_LABELS.get(meta.origin, meta.origin or "non précisé")},
        "params": {"threshold": threshold_label},
        # repeated on every page: cut like a table cell (sources and labels are data)
        "header": f"Maillage — {meta.title} — {_cell_text(t.label)} — "
                  f"{created.strftime('%d/%m/%Y')}",
        "footer": _cell_text(attribution),
        "notices": list(meta.notices),
    }


#: French typography: a no-break space inside guillemets (a line never starts with »).
_FRENCH_SPACES = (("« ", "«\u00a0"), (" »", "\u00a0»"))


def french_spacing(html: str) -> str:
    r"""No line break after « or before » in the body of the report.

    Only the text after ``<body>`` is touched (the stylesheet is left as it is); the
    characters replaced never occur inside our markup.

    Examples
    --------
    >>> french_spacing("<style>a « b</style><body>Voir « ici » : oui</body>")
    '<style>a « b</style><body>Voir «\xa0ici\xa0» : oui</body>'
    """
    head, sep, body = html.partition("<body>")
    if not sep:
        return html
    for a, b in _FRENCH_SPACES:
        body = body.replace(a, b)
    return head + sep + body


def html_to_pdf(html: str) -> bytes:
    """Lay out a report's HTML (:func:`render_report_html`) as PDF bytes (WeasyPrint)."""
    return _write_pdf(html, _FigureSource({}))[0]


def _write_pdf(html: str, figures: _FigureSource) -> tuple[bytes, int]:
    """Lay out HTML as a PDF; WeasyPrint asks ``figures`` for each placeholder image.

    Returns the PDF and its number of pages. A figure that fails to draw raises its
    error here (WeasyPrint alone would print a broken image).
    """
    doc = _render_document(html, figures)
    return bytes(doc.write_pdf()), len(doc.pages)


def _render_document(html: str, figures: _FigureSource | None) -> Any:
    """HTML laid out by WeasyPrint (its ``Document``); see :func:`_write_pdf`.

    ``figures=None``: a document without figure placeholders.
    """
    source = figures if figures is not None else _FigureSource({})
    try:
        import weasyprint
        from weasyprint.urls import URLFetcher, URLFetcherResponse
    except ImportError as exc:  # pragma: no cover - weasyprint is in requirements.txt
        raise ImportError("The PDF report needs WeasyPrint: pip install weasyprint "
                          "(and a font, e.g. Debian's fonts-dejavu-core)") from exc
    failed: list[Exception] = []

    class _Fetcher(URLFetcher):  # type: ignore[misc]  # WeasyPrint has no type hints
        def fetch(self, url: str, headers: Any = None) -> Any:
            if not url.startswith(FIGURE_SCHEME):
                return super().fetch(url, headers)
            try:
                image = source(url)
            except Exception as exc:
                failed.append(exc)
                raise
            return URLFetcherResponse(url, body=image,
                                      headers={"Content-Type": f"image/{IMAGE_FORMAT}"})

    try:
        doc = weasyprint.HTML(string=html, base_url=str(TEMPLATES_DIR),
                              url_fetcher=_Fetcher()).render()
    finally:
        source.close()
    if failed:
        raise failed[0]
    return doc


class _FigureSource:
    """The images of a report's figures, drawn once each, on demand, in this process."""

    def __init__(self, figures: Mapping[str, Callable[[], bytes]]) -> None:
        self._draws = dict(figures)
        self._images: dict[str, bytes | None] = {}

    def __call__(self, key: str) -> bytes:
        image = self._images.get(key)
        if image is None:
            image = self._images[key] = self._draws[key]()
        return image

    def close(self) -> None:
        """Release what the source holds (nothing here)."""


class PdfProcess:
    """WeasyPrint in a forked process, ready before the report is written.

    Started before the diagnosis is computed, the process imports WeasyPrint (about
    half a second) meanwhile; given a report, it parses the document and computes its
    styles while this process draws the maps and sends them one by one, then lays the
    document out. On a machine with a free core, both waits vanish from the command's
    time. Anything that goes wrong in the process (it failed, or is gone) makes
    :meth:`write_pdf` lay the document out here, raising the error as without it.

    For a single caller that runs no other threads of its own (the command line):
    forking a process that runs other threads (a web server) is unsafe. Linux only
    (elsewhere the layout is made here). Use as a context manager: the process is
    stopped on exit.
    """

    def __init__(self) -> None:
        self._proc: Any = None
        if sys.platform.startswith("linux"):
            import multiprocessing

            ctx = multiprocessing.get_context("fork")
            self._conn, child_end = ctx.Pipe()
            self._proc = ctx.Process(target=_pdf_server, args=(child_end,), daemon=True)
            self._proc.start()
            child_end.close()

    def __enter__(self) -> PdfProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_pdf(self, doc: _Document) -> tuple[bytes, int]:
        """The PDF of a report document and its number of pages."""
        figures = _FigureSource(doc.figures)
        reply: Any = None
        if self._proc is not None:
            # every other map is drawn by a helper process meanwhile: the PDF process
            # only parses and styles until the maps come, a core would idle
            figures = _HelperFigures(doc.figures, list(doc.figures)[1::2])
            try:
                self._conn.send(doc.html)
                for key in doc.figures:  # in the order WeasyPrint asks for them
                    self._conn.send((key, figures(key)))
                reply = self._conn.recv()
            except (EOFError, OSError):
                reply = None
            finally:
                figures.close()
                self.close()
        if isinstance(reply, tuple) and len(reply) == 2:
            return bytes(reply[0]), int(reply[1])
        return _write_pdf(doc.html, figures)  # here: its error, if any, is raised

    def close(self) -> None:
        """Stop the process (it may still be importing or laying out)."""
        if self._proc is None:
            return
        self._conn.close()
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join()
        self._proc = None


#: Longest wait for one map from the helper process before drawing it here (s).
_HELPER_WAIT_S = 60.0


class _HelperFigures(_FigureSource):
    """Figures drawn here, except ``theirs``, drawn in order by a forked helper process.

    A figure the helper could not give (error, process gone, no answer within
    :data:`_HELPER_WAIT_S`) is drawn here, raising its error as without the helper.
    """

    def __init__(self, figures: Mapping[str, Callable[[], bytes]], theirs: list[str]) -> None:
        import multiprocessing

        super().__init__(figures)
        self._theirs = set(theirs)
        ctx = multiprocessing.get_context("fork")
        self._conn, child_end = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_draw_figures,
                                 args=([(k, self._draws[k]) for k in theirs], child_end),
                                 daemon=True)
        self._proc.start()
        child_end.close()

    def __call__(self, key: str) -> bytes:
        while key in self._theirs and key not in self._images and not self._conn.closed:
            try:
                if not self._conn.poll(_HELPER_WAIT_S):
                    raise EOFError
                done, image = self._conn.recv()
            except (EOFError, OSError):
                self.close()
                break
            self._images[done] = image
        return super().__call__(key)

    def close(self) -> None:
        """Close the pipe and stop the helper (it may still be drawing)."""
        self._conn.close()
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join()


def _draw_figures(figures: list[tuple[str, Callable[[], bytes]]], conn: Any) -> None:
    """In the helper process: draw each figure, send ``(key, image or None)``."""
    import signal

    # Ctrl-C stops the command, which stops this process: no second traceback from here
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for key, draw in figures:
        try:
            image: bytes | None = draw()
        except Exception:  # drawn again by the command, which raises the error
            image = None
        conn.send((key, image))
    conn.close()


class _ReceivedFigures(_FigureSource):
    """In the PDF process: the figures sent by the command, as they come.

    A thread reads them at once: the sender never waits for WeasyPrint to ask.
    """

    def __init__(self, conn: Any, keys: list[str]) -> None:
        import threading

        super().__init__({})
        self._ready = threading.Condition()
        self._gone = False
        self._thread = threading.Thread(target=self._read, args=(conn, len(keys)),
                                        daemon=True)
        self._thread.start()

    def _read(self, conn: Any, n: int) -> None:
        try:
            for _ in range(n):
                key, image = conn.recv()
                with self._ready:
                    self._images[key] = image
                    self._ready.notify_all()
        except (EOFError, OSError):
            pass
        with self._ready:
            self._gone = True
            self._ready.notify_all()

    def __call__(self, key: str) -> bytes:
        with self._ready:
            self._ready.wait_for(lambda: key in self._images or self._gone)
            image = self._images.get(key)
        if image is None:
            raise InputError(f"figure {key!r} was not received from the command")
        return image


def _pdf_server(conn: Any) -> None:
    """The PDF process: import WeasyPrint, receive a report, send ``(pdf, pages)``.

    On any error it sends nothing and ends: the command then lays the report out itself.
    """
    import signal

    # Ctrl-C stops the command, which stops this process: no second traceback from here
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import pypdf  # noqa: F401  # the imports are the work done in advance
        import weasyprint  # noqa: F401

        from diagnosis.report._parallel import write_pdf_on_two_cores

        html = conn.recv()
        conn.send(write_pdf_on_two_cores(
            html, lambda: _ReceivedFigures(conn, _report_figure_keys(html)),
            render=_render_document, figure_scheme=FIGURE_SCHEME, inherited=(conn,)))
    except Exception:  # the command lays the report out itself, and raises the error
        pass
    finally:
        conn.close()


def count_pdf_pages(pdf: bytes) -> int:
    """Number of pages of a PDF (reads it with pypdf)."""
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)


def diagnosis_report_kwargs(diagnosis: Diagnosis, *, author: str = "",
                            created: dt.date | None = None) -> dict[str, Any]:
    """The renderer's arguments for a :class:`~diagnosis.pipeline.Diagnosis` (one mapping)."""
    d = diagnosis
    acc = d.access
    meta = ReportMeta(author=author, created=created, sources=tuple(d.inputs.sources),
                      notices=((d.params.travel_reason,) if d.params.travel_reason
                               else ()) + tuple(d.inputs.notices),
                      imports=tuple(r.summary_fr() for r in d.inputs.imports),
                      origin=d.inputs.origin)
    return {"access": acc.access if acc else None, "gaps": acc.gaps if acc else None,
            "siting": d.siting.main if d.siting else None,
            "scenarios": d.siting.table if d.siting else None,
            "partners": d.partners, "cohorts": d.cohorts, "comparison": d.comparison,
            "site": d.site if d.params.site else None, "catchment": d.catchment,
            "context": d.inputs.communes, "meta": meta, "modes": d.modes,
            "territory_context": getattr(d, "context", None),
            "offer_levels": getattr(d, "offer_levels", None),
            "base_layers": getattr(d, "base_layers", None),
            "base_tiles": getattr(d, "base_tiles", None)}


def render_diagnosis_html(diagnosis: Diagnosis, *, author: str = "",
                          created: dt.date | None = None,
                          progress: Progress | None = None) -> str:
    """The report of a diagnosis as HTML (see :func:`render_report_html`)."""
    return render_report_html(diagnosis.overview, progress=progress,
                              **diagnosis_report_kwargs(diagnosis, author=author,
                                                        created=created))


class PdfReport(NamedTuple):
    """A laid-out report: the PDF and its number of pages."""

    pdf: bytes
    pages: int


def render_diagnosis_pdf(diagnosis: Diagnosis, *, author: str = "",
                         created: dt.date | None = None,
                         progress: Progress | None = None,
                         pdf_process: PdfProcess | None = None) -> PdfReport:
    """The PDF report of a diagnosis and its number of pages.

    Parameters
    ----------
    diagnosis
        :func:`diagnosis.pipeline.run_diagnosis`'s result (with its ``comparison`` set by
        the caller when peers are compared).
    author, created
        Printed on the cover.
    progress
        Called with each step's name.
    pdf_process
        A :class:`PdfProcess` started early (the command line): WeasyPrint lays the
        report out there while the maps are drawn here. ``None``: all is done here.

    See Also
    --------
    build_diagnosis_pdf : the PDF bytes only.
    """
    doc = _report_document(diagnosis.overview, progress=progress,
                           **diagnosis_report_kwargs(diagnosis, author=author,
                                                     created=created))
    if progress:
        progress("mise en page PDF")
    if pdf_process is not None:
        return PdfReport(*pdf_process.write_pdf(doc))
    return PdfReport(*_write_pdf(doc.html, _FigureSource(doc.figures)))


def build_diagnosis_pdf(diagnosis: Diagnosis, *, author: str = "",
                        created: dt.date | None = None,
                        progress: Progress | None = None) -> bytes:
    """The PDF report of a diagnosis: the one call the app and the command line make.

    Parameters
    ----------
    diagnosis
        :func:`diagnosis.pipeline.run_diagnosis`'s result (with its ``comparison`` set by
        the caller when peers are compared).
    author, created
        Printed on the cover.
    progress
        Called with each step's name.
    """
    return render_diagnosis_pdf(diagnosis, author=author, created=created,
                                progress=progress).pdf
