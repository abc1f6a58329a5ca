"""The diagnosis report: HTML through Jinja2 (autoescape on), PDF through WeasyPrint.

The report is a pure function of results: :func:`render_report_html` takes an
:class:`~diagnosis.overview.Overview` and, optionally, the results of the other analyses
(accessibility, gaps, siting, partners, cohorts, comparison); :func:`html_to_pdf` lays
it out as PDF. A part whose result is missing is printed as « Non calculé » with the
reason: the PDF never pretends to be complete. :func:`build_diagnosis_pdf` (the report
of a :class:`~diagnosis.pipeline.Diagnosis`) is the single entry point of the command
line and of the app.

Parts (about a dozen pages for an EPCI): 1. a one-page synthesis (the territory in five
figures, three to five findings, the recommended sites and why, the first partners to
meet, what to do next, what the data cannot say); 2. territory and needs (maps, table per
commune); 3. the offer (one table, one map); 4. access and gaps; 5. siting (recommended
sites, scenarios, the site studied); 6. partners (contact sheet); 7. peer groups
(the catchment's potential against one Maison's capacity); 8. comparison with
neighbouring territories; 9. method (the substance of the guides, with this report's
parameters), sources and limits; annexes: the needs of every commune when there are
many, and the directory of known structures. Every page carries the data attribution
and its number. The PDF names no file of the code: the guides' content is in part 9.

Optional results are read by shape, so the modules written later plug in without a
change here: an object with ``layers`` (mapping of tables) or ``table`` / ``summary``
DataFrames (or a DataFrame, or a mapping of figures) is printed as tables; point
layers are mapped.

Layout (one module a part, in reading order): ``_base`` (what the report says about
itself, French formatting, tables), ``synthesis``, ``territory`` (needs, offer, directory),
``results`` (access, gaps, siting, partners, peer groups), ``site`` (site studied,
comparison), ``method`` (method, limits, sources), ``render`` (the public API).

See Also
--------
guides/diagnostic.md : the diagnosis step by step.
guides/lecture-des-cartes.md : how to read the maps.
tests/test_pdf_layout.py : no overlapping word, nothing off the page, on every page.
"""

from __future__ import annotations

from diagnosis.formatting import fr_number, fr_percent
from diagnosis.report._base import (
    IMAGE_FORMAT,
    MAX_CELL_CHARS,
    MAX_CONTACT_TOWN_HALLS,
    MAX_DIRECTORY_TOWN_HALLS,
    MAX_GENERIC_ROWS,
    MAX_INLINE_COMMUNES,
    TEMPLATES_DIR,
    ReportMeta,
)
from diagnosis.report.render import (
    PdfProcess,
    PdfReport,
    build_diagnosis_pdf,
    count_pdf_pages,
    diagnosis_report_kwargs,
    french_spacing,
    html_to_pdf,
    render_diagnosis_html,
    render_diagnosis_pdf,
    render_report_html,
)
from diagnosis.report.synthesis import (
    fr_short,
)

__all__ = [
    "IMAGE_FORMAT",
    "MAX_CELL_CHARS",
    "MAX_CONTACT_TOWN_HALLS",
    "MAX_DIRECTORY_TOWN_HALLS",
    "MAX_GENERIC_ROWS",
    "MAX_INLINE_COMMUNES",
    "PdfProcess",
    "PdfReport",
    "ReportMeta",
    "TEMPLATES_DIR",
    "build_diagnosis_pdf",
    "count_pdf_pages",
    "diagnosis_report_kwargs",
    "fr_number",
    "fr_percent",
    "fr_short",
    "french_spacing",
    "render_diagnosis_html",
    "render_diagnosis_pdf",
    "html_to_pdf",
    "render_report_html",
]
