"""A report laid out on two cores: cut before a chapter that starts a page, joined after.

WeasyPrint lays a document out on one core, and a département's report spends most of
its time there (its annexes alone, about 1,700 table cells, are half of it). Every
chapter of the report (``<section class="chapter">``) starts on a new page
(``break-before: page``), so the pages before such a chapter are laid out exactly as if
the document stopped there, and the pages from it on exactly as if the document began
there, but for the body's own top margin (it only lies on the first page). The PDF
process therefore cuts the report before the chapter that evens the work out, lays the
second part out in a process forked from itself (WeasyPrint already imported), the first
part meanwhile, and joins the two PDFs with pypdf:

* the pages, in order;
* the page numbers (« Page 3 / 25 »), which depend on both parts: each part is laid out
  without them, and the numbers are drawn over the joined pages from a document of empty
  pages laid out with the report's own ``@page`` rules;
* the bookmarks, built by WeasyPrint's own ``Document.make_bookmark_tree`` from both
  parts' pages, so the nesting is the one the whole document would have had;
* the document's information (title, author, dates) and language, from the first part.

Only a cut whose second part holds no figure is taken (the figures come to the PDF
process only), and only if that part is worth a process. If the forked process fails, the
second part is laid out here.
"""

from __future__ import annotations

import io
import os
import re
import signal
import types
from collections.abc import Callable, Sequence
from typing import Any

#: Where a report may be cut: before a top-level chapter, which starts a page.
_CHAPTER = re.compile(r'\n<section class="chapter[ "]')

#: The smallest second part worth its process: a share of the report's markup, and a
#: number of tags (``<``). Laying out two parts costs about 0.4 s more CPU (the page
#: numbers, the join) and pays only when the second part's layout is longer: a
#: département's annexes (about 6,000 tags, 1.9 s) gain 1.3 s; an EPCI's (about 600
#: tags) lost 0.15 s, its time being the diagnosis and the maps, not the layout.
_MIN_SHARE = 0.15
_MIN_SECOND_TAGS = 2_000

#: Each part is laid out without the page numbers (drawn over the joined pages), and the
#: part that starts at a chapter without the body's top margin (first page only).
_NO_NUMBERS = "<style>@page { @bottom-right { content: none } }</style>"
_CONTINUED = "<style>body { margin-top: 0; padding-top: 0; border-top-width: 0 }</style>"

#: Render a document: ``(html, figures or None) -> weasyprint.Document``.
RenderDocument = Callable[[str, Any], Any]


def split_report(html: str, *, figure_scheme: str) -> tuple[str, str, str] | None:
    """The report cut in two laid-out-alike documents, and the page-number document's head.

    Returns ``(first, second, head)`` (``head``: the report's ``<head>``, for
    :func:`_page_numbers_html`) or ``None`` when no cut is worth it: no chapter after
    the last figure, or a second part below :data:`_MIN_SHARE` of the markup or below
    :data:`_MIN_SECOND_TAGS` tags. The cut evens the two parts' markup (tags), a measure
    of WeasyPrint's layout work.
    """
    head, sep, body = html.partition("<body>")
    start = body.find("\n<section")
    end = body.rfind("</body>")
    if not sep or start < 0 or end < 0 or "</head>" not in head:
        return None
    last_figure = body.rfind(figure_scheme)
    cuts = [m.start() for m in _CHAPTER.finditer(body, max(start, last_figure) + 1, end)]
    if not cuts:
        return None
    total = body.count("<", start, end)
    cut = min(cuts, key=lambda c: abs(2 * body.count("<", c, end) - total))
    if body.count("<", cut, end) < max(_MIN_SHARE * total, _MIN_SECOND_TAGS):
        return None
    numbered = head.replace("</head>", _NO_NUMBERS + "</head>", 1)
    continued = head.replace("</head>", _NO_NUMBERS + _CONTINUED + "</head>", 1)
    first = numbered + sep + body[:cut] + body[end:]
    second = continued + sep + body[:start] + body[cut:]
    return first, second, head


def _page_numbers_html(head: str, n_pages: int) -> str:
    """``n_pages`` empty pages with the report's ``@page`` rules: only the numbers show."""
    pages = '<div style="break-before: page"></div>' * (n_pages - 1)
    return f"{head}<body><div></div>{pages}</body></html>"


def write_pdf_on_two_cores(html: str, figures: Callable[[], Any], *,
                           render: RenderDocument, figure_scheme: str,
                           inherited: Sequence[Any] = ()) -> tuple[bytes, int]:
    """The report's PDF and its page count, its two parts laid out side by side.

    ``render(html, figures)`` lays a document out (``figures``: the report's figure
    source, ``None`` for a part without figures); ``figures()`` makes the figure source,
    after the fork (it may start a thread). ``inherited``: connections the forked
    process must not keep open (closed there). Falls back to one layout when the report
    cannot be cut (:func:`split_report`); the second part is laid out here if its
    process fails. Forks (Linux): call from a process that runs no other threads.
    """
    parts = split_report(html, figure_scheme=figure_scheme)
    if parts is None:
        doc = render(html, figures())
        return bytes(doc.write_pdf()), len(doc.pages)
    first, second, head = parts
    import multiprocessing

    reader, writer = multiprocessing.Pipe(duplex=False)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the second part's process
        code = 1
        try:
            _die_with(parent)
            for conn in (reader, *inherited):
                conn.close()
            laid_out = render(second, None)
            # its pages first: the page numbers are laid out while this part is written
            writer.send(_pages(laid_out))
            writer.send(bytes(laid_out.write_pdf()))
            code = 0
        finally:
            os._exit(code)
    writer.close()
    try:
        doc = render(first, figures())
        pdf_first = bytes(doc.write_pdf())
        try:
            pages_second = reader.recv()
            numbers = _numbers(render, head, len(doc.pages) + len(pages_second))
            pdf_second = reader.recv()
        except (EOFError, OSError):  # the process failed: its part is laid out here
            laid_out = render(second, None)
            pages_second, pdf_second = _pages(laid_out), bytes(laid_out.write_pdf())
            numbers = _numbers(render, head, len(doc.pages) + len(pages_second))
    finally:
        reader.close()
        _stop(pid)
    pages = list(doc.pages) + [types.SimpleNamespace(height=h, bookmarks=b)
                               for h, b in pages_second]
    return _join(pdf_first, pdf_second, numbers, pages), len(pages)


def _pages(doc: Any) -> list[tuple[float, list[Any]]]:
    """Each page's height and bookmarks: what the joined document's outline needs."""
    return [(page.height, page.bookmarks) for page in doc.pages]


def _numbers(render: RenderDocument, head: str, n_pages: int) -> bytes:
    """The page numbers of a document of ``n_pages`` pages, one PDF page each."""
    return bytes(render(_page_numbers_html(head, n_pages), None).write_pdf())


def _die_with(parent: int) -> None:
    """Have this (forked) process killed when its parent ends, however it ends.

    The command stops the PDF process with SIGTERM when a figure fails or on Ctrl-C: its
    forked part must not lay out on. Linux's parent-death signal does it without any
    handler in the parent (whose threads may be the ones a signal reaches).
    """
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the call
        os._exit(1)


def _stop(pid: int) -> None:
    """Stop (if still running) and reap the second part's process."""
    try:
        if os.waitpid(pid, os.WNOHANG) == (0, 0):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _join(first: bytes, second: bytes, numbers: bytes, pages: list[Any]) -> bytes:
    """The two parts' PDFs as one: pages, page numbers, bookmarks, information."""
    import weasyprint
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import Fit, NameObject

    head = PdfReader(io.BytesIO(first))
    out = PdfWriter()
    out.append(head, import_outline=False)
    out.append(PdfReader(io.BytesIO(second)), import_outline=False)
    for page, number in zip(out.pages, PdfReader(io.BytesIO(numbers)).pages, strict=True):
        page.merge_page(number)
        page.compress_content_streams()
    # the tree WeasyPrint would have written for the whole document (PDF points: 0.75)
    tree = weasyprint.Document.make_bookmark_tree(types.SimpleNamespace(pages=pages),
                                                  scale=0.75, transform_pages=True)

    def add(items: list[Any], parent: Any = None) -> None:
        for title, (page_index, x, y), children, state in items:
            item = out.add_outline_item(title=title, page_number=page_index, parent=parent,
                                        fit=Fit.xyz(left=x, top=y, zoom=0),
                                        is_open=state != "closed")
            add(children, item)

    add(tree)
    if head.metadata:
        out.add_metadata(dict(head.metadata))
    lang = head.root_object.get("/Lang")
    if lang is not None:
        out.root_object[NameObject("/Lang")] = lang
    buf = io.BytesIO()
    out.write(buf)
    return buf.getvalue()
