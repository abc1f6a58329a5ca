"""Benchmark: the PDF report of an EPCI and of a département, whole command.

Run from the repository root::

    python bench/report.py [--runs 3]

What a user runs, timed as whole processes (offline, embedded demo data)::

    python -m diagnosis report --territory 200000438 --out epci.pdf   # CC Pays de Pontchâteau
    python -m diagnosis report --territory 44 --out dep.pdf           # Loire-Atlantique

against the part no code of ours can shorten, in the same run: WeasyPrint laying out the
very HTML the command rendered (captured once, then laid out alone in its own process,
imports included). Medians and the ratio are printed. The check: the PDF of every run
has the same number of pages, and its text names the territory.

Prints ``RESULT epci_s=… epci_layout_s=… dep_s=… dep_layout_s=… pages=…/… equal=… runs=…
load=… epci_cpu_s=… dep_cpu_s=…`` (``*_cpu_s``: user + system seconds of the command and
of the process it forks, medians).

How the command spends its two cores (:class:`diagnosis.report.PdfProcess`): a process
forked at its start imports WeasyPrint while the diagnosis is computed, receives the
report's HTML, and lays it out in two parts (:mod:`diagnosis.report._parallel`): the
report is cut before the chapter that evens the work (a chapter starts a page, so both
parts lay out as the whole would: for a département, the annexes, about 60 % of the
layout), the second part is laid out in a process forked from it, the first part there
while the command draws the maps (matplotlib, once each, half of them in a helper
process) and sends them; pypdf then joins the two PDFs (page numbers drawn over the
joined pages, WeasyPrint's own bookmark tree). ``*_layout_s`` is WeasyPrint laying out
the whole HTML in one process, as before: the command can now beat it. On a loaded
machine the processes share the cores with others and the wall time says little (the
two-part layout costs about 0.4 s more CPU: the page numbers' document and the join):
read ``*_cpu_s`` too.

Measured (2 cores shared with other jobs; whole command, medians of 3 runs, load given):

- before (commit 1c34b09) against now, alternating (the report gained content since:
  offer by type, label placement, so the two PDFs differ): EPCI 6.77 s -> 5.57 s wall,
  6.73 s -> 5.46 s CPU (load 2.0-2.4); département 10.11 s -> 8.68 s wall, 9.99 s ->
  8.91 s CPU (load 1.8-2.1). What went: osmnx and networkx imported by every crow-fly
  run to name a cache file (1.3-1.7 s), the peers' overviews each reprojecting every
  facility.
- this bench, 6 Dec 2026, load 3.1-6.1::

    RESULT epci_s=6.85 epci_layout_s=3.47 dep_s=8.57 dep_layout_s=5.29 pages=15/25
    equal=True runs=3 load=3.12   (one line)

Not at the goal (EPCI < 4 s, département < 6 s) then: WeasyPrint alone takes ~4.2 s CPU
for the département's 25 pages (490 table rows; text shaping and block layout, not
flex boxes: the report has one), and the maps ~1 s.

- 6 Dec 2026, second pass (PdfProcess with a helper drawing every other map, maps drawn
  once on demand, comparison chart at the maps' 110 dpi, page count from the layout
  instead of re-reading the PDF with pypdf). No quiet machine: load 4-10 on 2 cores.
  Old (53d11d3) against new, alternating, whole command, load 4.2-4.8: EPCI 11.58 / 9.38 s
  -> 8.91 / 7.67 s wall, CPU (all processes) 5.66 / 5.43 s -> 5.14 / 4.92 s;
  département 19.60 / 15.87 s -> 16.23 / 13.56 s wall, CPU 9.73 / 8.79 s -> 8.10 / 7.88 s.
  Same at load 1.9-2.6: EPCI 4.99 / 5.17 s -> 3.59 / 3.61 s wall (CPU 5.20 / 5.39 s ->
  4.72 / 4.75 s); département 8.27 / 8.20 s -> 5.88 / 6.10 s wall (CPU 8.50 / 8.42 s ->
  7.33 / 7.77 s).
  This bench, load 5.1::

    RESULT epci_s=8.65 epci_layout_s=5.05 dep_s=10.45 dep_layout_s=8.63 pages=15/25
    equal=True runs=2 load=5.14 epci_cpu_s=4.97 dep_cpu_s=8.03   (one line)

  Split of the CPU (load 4.5): EPCI, command 2.4 s (2.0 s up to the report's HTML, 0.4 s
  of maps) and its two processes 2.45 s (WeasyPrint: 0.3-0.5 s of import, the rest
  parsing, layout, writing; the helper: half the maps); département, command 2.7 s and
  processes 4.7 s. On a quiet machine the time is about the command's own work up to its
  last map plus WeasyPrint's layout and writing (~1 s EPCI, ~2.4 s département): both
  near the goal by that estimate; the quiet run decides.

- 6 Dec 2026, third pass: the département's report laid out on two cores (see above; an
  EPCI's annexes are too small to be worth it and stay with the rest). Quiet machine
  (load 1.2-1.6, nothing else running), commit 60de45e then the size threshold::

    RESULT epci_s=3.98 epci_layout_s=2.90 dep_s=4.73 dep_layout_s=5.29 pages=15/25
    equal=True runs=3 load=1.55 epci_cpu_s=5.25 dep_cpu_s=7.70   (one line)

  Cut against not cut (same commit, the cut disabled), ``farm-bench -n 7``, alternating,
  load 1.2-1.4: département 6.29 s -> 5.11 s wall (median of the pairs' ratios 0.81),
  CPU 7.98 s -> 8.25 s (+3 %); the PDFs have the same pages, text, page numbers,
  bookmarks and named destinations (``tests/test_report_parallel.py``). The EPCI report
  against the session's start (8b9c98b), 11 runs: 3.82 s -> 3.78 s (the same). On this
  machine the runs move by up to 15 % from one minute to the next (the same command took
  4.7 to 6.4 s in one bad minute): compare in the same minutes.

What was tried and did not move WeasyPrint (3 interleaved runs each, layout alone on the
département's HTML, CPU within noise of 2.5-2.9 s): ``table-layout: fixed`` everywhere
(the big tables already are), no ``hyphens``, no ``tr { break-inside: avoid }``, one font
family instead of three, no flex (``.duo``, ``.cards``), no repeated ``thead``, separate
borders instead of collapsed. WeasyPrint lays each page out once (no repagination pass);
its cost is per box: ~3,450 table cells and their text lines.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path

from _whole import run_timed  # bench/ is the script's folder

REPO = Path(__file__).resolve().parents[1]

_CAPTURE = """
import sys
from pathlib import Path
from diagnosis.report import render
real = render._report_document
def keep(*args, **kwargs):
    doc = real(*args, **kwargs)  # the report's HTML, its figures drawn here as data URIs
    Path(sys.argv[1]).write_text(render._inline_figures(doc), encoding="utf-8")
    return doc
render._report_document = keep
from diagnosis.__main__ import main
raise SystemExit(main(["report", "--territory", sys.argv[2], "--out", sys.argv[3]]))
"""

_LAYOUT = """
import sys
from pathlib import Path
import weasyprint
from diagnosis.report.render import TEMPLATES_DIR
html = Path(sys.argv[1]).read_text(encoding="utf-8")
weasyprint.HTML(string=html, base_url=str(TEMPLATES_DIR)).write_pdf()
"""


def _run(args: list[str], env: dict[str, str]) -> float:
    return run_timed(args, env)[0]


def _run_cpu(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the forked figure process included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = run_timed(args, env)[0]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _pdf_facts(path: Path) -> tuple[int, str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return len(reader.pages), reader.pages[0].extract_text() or ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    tmp = Path(tempfile.mkdtemp(prefix="bench_report_"))
    env = dict(os.environ, PYTHONPATH=str(REPO), MAILLAGE_OFFLINE="1")
    cases = {"epci": ("200000438", "Pontchâteau"), "dep": ("44", "Loire-Atlantique")}
    med: dict[str, float] = {}
    pages: dict[str, int] = {}
    equal = True
    for key, (code, word) in cases.items():
        html, pdf = tmp / f"{key}.html", tmp / f"{key}.pdf"
        _run([sys.executable, "-c", _CAPTURE, str(html), code, str(pdf)], env)  # warm-up
        pages[key], text = _pdf_facts(pdf)
        equal &= word in text
        ours, cpu, layout = [], [], []
        for _ in range(args.runs):
            wall, used = _run_cpu([sys.executable, "-m", "diagnosis", "report",
                                   "--territory", code, "--out", str(pdf)], env)
            ours.append(wall)
            cpu.append(used)
            equal &= _pdf_facts(pdf)[0] == pages[key]
            layout.append(_run([sys.executable, "-c", _LAYOUT, str(html)], env))
        med[key], med[f"{key}_layout"] = statistics.median(ours), statistics.median(layout)
        med[f"{key}_cpu"] = statistics.median(cpu)
        print(f"{key}: {', '.join(f'{s:.2f}' for s in ours)} s (CPU "
              f"{', '.join(f'{s:.2f}' for s in cpu)} s); layout alone: "
              f"{', '.join(f'{s:.2f}' for s in layout)} s")
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"RESULT epci_s={med['epci']:.2f} epci_layout_s={med['epci_layout']:.2f} "
          f"dep_s={med['dep']:.2f} dep_layout_s={med['dep_layout']:.2f} "
          f"pages={pages['epci']}/{pages['dep']} equal={equal} runs={args.runs} load={load} "
          f"epci_cpu_s={med['epci_cpu']:.2f} dep_cpu_s={med['dep_cpu']:.2f}")


if __name__ == "__main__":
    main()
