"""Command line of Maillage: ``python -m diagnosis <command> …``.

This module is a composition root: it may import :mod:`data_sources` (through the
shared wiring :func:`data_sources.workspace.load_workspace`).

Commands
--------
summary
    Needs, offer and crow-fly proximity of a territory (JSON or table).
report
    The PDF diagnosis report (``--out FILE.pdf``, ``--author``, ``--site``).
export
    GeoPackage for QGIS, CSV tables for Excel, diagnosis file (``--diagnosis-file``).
compare
    Territories side by side (``--territory CODE --by epci|commune`` or ``--territories``).
rerun
    Re-run a diagnosis file and check that its data did not change.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from diagnosis.comparison import SPLITS
from diagnosis.errors import MaillageError
from diagnosis.schema import facility_label
from diagnosis.settings import DEFAULT_THRESHOLD_M


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--territory", required=True, metavar="CODE_OR_NAME",
                   help="commune (code INSEE), EPCI (SIREN), département (code) ou nom")
    p.add_argument("--facilities", action="append", default=[], metavar="FILE",
                   help="fichier de structures à importer (CSV, GeoJSON, GeoPackage); répétable")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m diagnosis``."""
    ap = argparse.ArgumentParser(
        prog="python -m diagnosis",
        description="Maillage : diagnostic territorial pour une Maison des 1000 premiers jours.",
    )
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summary", help="besoins, offre et proximité d'un territoire")
    _add_common(s)
    s.add_argument("--threshold-m", type=float, default=DEFAULT_THRESHOLD_M,
                   help="distance à vol d'oiseau jugée « à portée » (mètres, défaut %(default)s)")
    s.add_argument("--format", choices=("json", "table"), default="table")
    _add_deliverable_parsers(sub)
    return ap


def _clean(obj: Any) -> Any:
    """Make a summary JSON-safe (NaN → null)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _summary_json(ws: Any, ov: Any) -> dict[str, Any]:
    out = _clean(dict(ov.summary))
    out["notices"] = list(ws.notices)
    out["territory"]["note"] = ws.territory.note
    out["imports"] = [
        {"file": r.file, "rows_read": r.rows_read, "accepted": r.accepted,
         "rejected": int(len(r.rejected)), "duplicates": int(len(r.duplicates)),
         "summary": r.summary_fr()}
        for r in ws.imports
    ]
    return out


def _print_table(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=110)
    t = data["territory"]
    con.print(f"[bold]{t['name']}[/bold] ({t['kind']} {t['code']})")
    if t.get("note"):
        con.print(t["note"])
    births = data["births_2024"]
    con.print(f"Communes : {data['n_communes']}   Naissances 2024 : "
              f"{births:,.0f}".replace(",", " ") if births is not None else "")
    if data["under3_estimate"] is not None:
        con.print(f"Enfants de moins de 3 ans : {data['under3_estimate']:,.0f} "
                  f"({data['under3_estimate_label']})".replace(",", " "))
    tab = Table(title=f"Offre et proximité (≤ {data['threshold_m'] / 1000:g} km à vol d'oiseau "
                      "depuis la mairie)")
    for col in ("Type", "Structures", "Places connues", "Naissances à portée", "Part",
                "Communes sans"):
        tab.add_column(col, justify="left" if col == "Type" else "right")
    for typ, f in data["facilities"].items():
        w = data["births_within_threshold"][typ]
        share = "—" if w["share"] is None else f"{100 * w['share']:.0f} %"
        places = "—" if f["places_known"] is None else f"{f['places_known']:.0f}"
        tab.add_row(facility_label(typ, plural=True), str(f["count"]), places,
                    f"{w['births']:.0f}", share, str(len(data["communes_without"][typ])))
    con.print(tab)
    for imp in data.get("imports", []):
        con.print(f"Import {imp['file']} : {imp['summary']}")
    con.print("[bold]Sources[/bold]")
    for s in data["sources"]:
        con.print(f"- {s['title']} — {s['vintage']} — {s['licence']} — {s['attribution']}")
    for n in data["notices"]:
        con.print(f"[yellow]! {n}[/yellow]")


def cmd_summary(args: argparse.Namespace) -> int:
    """Run ``summary``."""
    from data_sources.workspace import load_workspace
    from diagnosis.overview import compute_overview

    ws = load_workspace(args.territory, facility_files=args.facilities)
    ov = compute_overview(ws.territory, ws.communes, ws.facilities,
                          threshold_m=args.threshold_m, sources=ws.sources)
    data = _summary_json(ws, ov)
    if args.format == "json":
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(data)
    return 0


# ======================================================================================
# Consultant and federation deliverables: report (PDF), export (GeoPackage, CSV and a
# diagnosis file), compare (territories side by side), rerun (a diagnosis file).
# ======================================================================================


def _add_deliverable_parsers(sub: Any) -> None:
    """Parsers of ``report``, ``export``, ``compare`` and ``rerun``."""
    r = sub.add_parser("report", help="rapport PDF du diagnostic")
    _add_common(r)
    r.add_argument("--out", required=True, metavar="FILE.pdf", help="fichier PDF à écrire")
    r.add_argument("--author", default="", metavar="NAME", help="auteur, imprimé en couverture")
    r.add_argument("--site", metavar="SITE_ID",
                   help="lieu étudié pour la Maison : identifiant (facility_id) ou nom exact "
                        "d'une structure chargée")
    r.add_argument("--threshold-m", type=float, default=DEFAULT_THRESHOLD_M,
                   help="distance à vol d'oiseau jugée « à portée » (mètres, défaut %(default)s)")
    r.add_argument("--max-minutes", type=float, default=None,
                   help="seuil d'accessibilité et d'implantation (minutes ; défaut du module "
                        "d'accessibilité)")
    r.add_argument("--uptake-rate", type=float, default=None, metavar="SHARE",
                   help="part des familles qui rejoindraient un groupe de pairs (0-1) : "
                        "sans elle, les groupes de pairs ne sont pas calculés")
    r.add_argument("--no-analyses", action="store_true",
                   help="ne pas calculer accessibilité, manques, implantation, partenaires "
                        "et groupes de pairs")
    r.add_argument("--no-comparison", action="store_true",
                   help="ne pas comparer le territoire à ses voisins")

    e = sub.add_parser("export", help="GeoPackage (QGIS), CSV (Excel) et fichier de diagnostic")
    _add_common(e)
    e.add_argument("--out", metavar="FILE.gpkg", help="GeoPackage à écrire (couches en français)")
    e.add_argument("--csv-dir", metavar="DIR", help="dossier où écrire un CSV par couche")
    e.add_argument("--diagnosis-file", metavar="FILE.json",
                   help="fichier de diagnostic (paramètres, sources, empreintes des fichiers) "
                        "pour le relancer avec `rerun`")
    e.add_argument("--threshold-m", type=float, default=DEFAULT_THRESHOLD_M,
                   help="distance à vol d'oiseau jugée « à portée » (mètres, défaut %(default)s)")
    e.add_argument("--max-minutes", type=float, default=None,
                   help="seuil d'accessibilité et d'implantation (minutes)")
    e.add_argument("--uptake-rate", type=float, default=None, metavar="SHARE",
                   help="part des familles qui rejoindraient un groupe de pairs (0-1)")
    e.add_argument("--no-analyses", action="store_true",
                   help="ne pas calculer accessibilité, manques, implantation, partenaires "
                        "et groupes de pairs")

    c = sub.add_parser("compare", help="comparer des territoires (une ligne par territoire)")
    which = c.add_mutually_exclusive_group(required=True)
    which.add_argument("--territory", metavar="CODE_OR_NAME",
                       help="territoire à découper (voir --by)")
    which.add_argument("--territories", nargs="+", metavar="CODE_OR_NAME",
                       help="liste de territoires à comparer")
    c.add_argument("--by", choices=SPLITS, default="epci",
                   help="découpage de --territory : ses EPCI ou ses communes (défaut epci)")
    c.add_argument("--facilities", action="append", default=[], metavar="FILE",
                   help="fichier de structures à importer ; répétable")
    c.add_argument("--threshold-m", type=float, default=DEFAULT_THRESHOLD_M,
                   help="distance à vol d'oiseau jugée « à portée » (mètres, défaut %(default)s)")
    c.add_argument("--format", choices=("table", "json", "csv"), default="table")
    c.add_argument("--out", metavar="FILE", help="écrire dans un fichier plutôt qu'à l'écran")

    rr = sub.add_parser("rerun", help="relancer un diagnostic enregistré et vérifier ses données")
    rr.add_argument("file", metavar="FILE.json", help="fichier écrit par export --diagnosis-file")
    rr.add_argument("--strict", action="store_true",
                    help="code de sortie 1 si les données ou les résultats ont changé")


class _Steps:
    """A rich progress bar on stderr, advanced by name."""

    def __init__(self, title: str, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  TimeElapsedColumn(), console=Console(stderr=True),
                                  transient=True)
        self._task = self._progress.add_task(title, total=total)

    def __enter__(self) -> _Steps:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def __call__(self, name: str) -> None:
        self._progress.update(self._task, description=name, advance=1)


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    """Workspace and overview of ``--territory`` (shared by report and export)."""
    from data_sources.workspace import load_workspace
    from diagnosis.overview import compute_overview

    ws = load_workspace(args.territory, facility_files=args.facilities)
    ov = compute_overview(ws.territory, ws.communes, ws.facilities,
                          threshold_m=args.threshold_m, sources=ws.sources)
    return ws, ov


def _analyses(args: argparse.Namespace, ws: Any, ov: Any, site: Any = None) -> Any:
    from diagnosis.report import ReportAnalyses, compute_report_analyses

    if args.no_analyses:
        return ReportAnalyses(notes=("Accessibilité, manques, implantation, partenaires et "
                                     "groupes de pairs non demandés (--no-analyses).",))
    return compute_report_analyses(ov, ws.facilities, max_minutes=args.max_minutes,
                                   site=site, uptake_rate=args.uptake_rate)


def _find_site(ws: Any, query: str) -> Any:
    """The facility named by ``--site`` (facility_id, or exact name, accent-blind)."""
    import difflib

    from diagnosis.errors import InputError
    from diagnosis.report import Site
    from diagnosis.territory import normalize_name

    fac = ws.facilities
    hit = fac.loc[fac["facility_id"].eq(query)]
    if hit.empty:
        hit = fac.loc[fac["name"].map(normalize_name).eq(normalize_name(query))]
    if len(hit) != 1:
        if len(hit) > 1:
            ids = ", ".join(f"{r.facility_id} ({r.name})" for r in hit.head(5).itertuples())
            raise InputError(f"--site {query!r} names {len(hit)} facilities: {ids}; give the "
                             "facility_id")
        pool = list(fac["facility_id"]) + list(fac["name"])
        close = difflib.get_close_matches(query, pool, n=5, cutoff=0.5)
        raise InputError(f"--site {query!r} is not a loaded facility (facility_id or exact "
                         f"name); closest: {close or 'none'}. List them with "
                         "`python -m diagnosis export --csv-dir DIR`.")
    r = hit.iloc[0]
    return Site(site_id=r["facility_id"], name=r["name"], facility_type=r["type"],
                code_insee=r["code_insee"], geometry=r.geometry)


def _compare_overviews(territories: Sequence[Any], ws: Any, *,
                       threshold_m: float) -> tuple[list[Any], list[str]]:
    """Overviews of ``territories`` on the workspace's data; skipped ones with a reason."""
    from diagnosis.errors import MissingDataError
    from diagnosis.overview import compute_overview

    overviews, skipped = [], []
    for t in territories:
        try:
            overviews.append(compute_overview(t, ws.communes, ws.facilities,
                                              threshold_m=threshold_m, sources=ws.sources))
        except MissingDataError:
            skipped.append(f"{t.label} : aucune donnée chargée, territoire écarté")
    return overviews, skipped


def _neighbour_comparison(ws: Any, ov: Any, *, threshold_m: float) -> Any:
    """Comparison of the territory with its peers (None when there is none).

    An EPCI among the EPCIs of its département(s), a commune among the communes of its
    EPCI; a département through its EPCIs.
    """
    from data_sources.cog import load_cog, resolve
    from diagnosis.comparison import compare_territories, split_territory

    t = ws.territory
    cog = load_cog()
    if t.kind == "commune":
        row = cog.communes.loc[cog.communes["code"].eq(t.code) &
                               cog.communes["kind"].eq("commune")]
        epci = str(row["epci_code"].iloc[0]) if len(row) else ""
        if not epci or epci == "nan":
            return None
        peers = split_territory(resolve(epci), cog, by="commune")
    else:
        peers = []
        for dep in t.departements:
            peers += split_territory(resolve(dep), cog, by="epci")
        peers = list({p.code: p for p in peers}.values())
    peers = [p for p in peers if p.code != t.code]
    overviews, _ = _compare_overviews(peers, ws, threshold_m=threshold_m)
    if not overviews:
        return None
    # a département is compared through its EPCIs; a commune or an EPCI among its peers
    return compare_territories(overviews if t.kind == "departement" else [ov, *overviews])


def cmd_report(args: argparse.Namespace) -> int:
    """Run ``report``: the PDF diagnosis report."""
    import time

    from diagnosis.exports import check_writable, write_bytes_atomic
    from diagnosis.report import build_report_pdf, count_pdf_pages

    start = time.perf_counter()
    out = check_writable(args.out, option="--out")
    with _Steps("Rapport", total=10) as step:
        step("chargement des données")
        ws, ov = _load(args)
        site = _find_site(ws, args.site) if args.site else None
        step("accessibilité, manques, implantation")
        analyses = _analyses(args, ws, ov, site)
        step("comparaison avec les territoires voisins")
        comparison = None if args.no_comparison else \
            _neighbour_comparison(ws, ov, threshold_m=args.threshold_m)
        pdf = build_report_pdf(
            ov, sources=ws.sources, notices=ws.notices, author=args.author,
            imports=[r.summary_fr() for r in ws.imports], origin=ws.origin,
            context=ws.communes, comparison=comparison, site=site, progress=step,
            **analyses.as_kwargs())
        step("écriture du fichier")
        write_bytes_atomic(out, pdf, option="--out")
    pages = count_pdf_pages(pdf)
    print(f"Rapport écrit : {out} ({pages} pages, {time.perf_counter() - start:.1f} s)")
    for note in analyses.notes:
        print(f"  {note}", file=sys.stderr)
    if args.site and analyses.siting is None:
        print(f"  Site {args.site} : analyse d'implantation non calculée (distances à vol "
              "d'oiseau seulement).", file=sys.stderr)
    return 0


def _data_files(ws: Any) -> dict[str, str]:
    """SHA-256 of the base data files of the workspace (the embedded demo)."""
    from pathlib import Path

    from data_sources import demo
    from diagnosis.exports import file_sha256

    if ws.origin != "demo":
        return {}
    root = Path(demo.DEMO_DIR).parents[1]
    files = sorted(Path(demo.DEMO_DIR).glob("*.parquet")) + [Path(demo.DEMO_DIR) /
                                                             "manifest.json"]
    return {str(p.relative_to(root)): file_sha256(p) for p in files if p.is_file()}


def _imports_ledger(files: Sequence[str], reports: Sequence[Any]) -> list[dict[str, Any]]:
    from pathlib import Path

    from diagnosis.exports import file_sha256

    out = []
    for f, rep in zip(files, reports, strict=True):
        p = Path(f).resolve()
        out.append({"file": str(p), "name": p.name, "sha256": file_sha256(p),
                    "rows_read": rep.rows_read, "accepted": rep.accepted,
                    "rejected": int(len(rep.rejected))})
    return out


def cmd_export(args: argparse.Namespace) -> int:
    """Run ``export``: GeoPackage, CSV tables and the diagnosis file."""
    from pathlib import Path

    from diagnosis.errors import InputError
    from diagnosis.exports import (
        build_diagnosis_record,
        build_export_layers,
        check_writable,
        export_csv_tables,
        export_geopackage,
        write_diagnosis_file,
    )

    if not (args.out or args.csv_dir or args.diagnosis_file):
        raise InputError("export needs an output: --out FILE.gpkg, --csv-dir DIR and/or "
                         "--diagnosis-file FILE.json")
    if args.out:
        if Path(args.out).suffix.lower() != ".gpkg":
            raise InputError(f"--out {args.out!r} must end with .gpkg (GeoPackage)")
        check_writable(args.out, option="--out")
    if args.diagnosis_file:
        check_writable(args.diagnosis_file, option="--diagnosis-file")
    ws, ov = _load(args)
    analyses = _analyses(args, ws, ov)
    layers = build_export_layers(ov, access=analyses.access, gaps=analyses.gaps,
                                 siting=analyses.siting, partners=analyses.partners,
                                 cohorts=analyses.cohorts, sources=ws.sources)
    if args.out:
        export_geopackage(layers, args.out)
        print(f"GeoPackage écrit : {args.out} ({len(layers)} couches, EPSG:4326)")
    if args.csv_dir:
        files = export_csv_tables(layers, args.csv_dir)
        print(f"CSV écrits : {len(files)} fichiers dans {args.csv_dir}")
    if args.diagnosis_file:
        record = build_diagnosis_record(
            ov, query=args.territory, sources=ws.sources, data_files=_data_files(ws),
            imports=_imports_ledger(args.facilities, ws.imports), origin=ws.origin)
        write_diagnosis_file(record, args.diagnosis_file)
        print(f"Fichier de diagnostic écrit : {args.diagnosis_file}")
    for note in analyses.notes:
        print(f"  {note}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Run ``compare``: one row per territory, each equal to its own diagnosis."""
    from data_sources.cog import load_cog
    from data_sources.workspace import load_workspace
    from diagnosis.comparison import (
        compare_territories,
        comparison_records,
        split_territory,
        summary_columns,
    )
    from diagnosis.errors import MissingDataError
    from diagnosis.exports import check_writable, write_bytes_atomic

    if args.out:
        check_writable(args.out, option="--out")
    overviews, skipped = [], []
    if args.territories:
        for q in args.territories:
            try:
                ws = load_workspace(q, facility_files=args.facilities)
            except MissingDataError as exc:
                skipped.append(str(exc))
                continue
            part, sk = _compare_overviews([ws.territory], ws, threshold_m=args.threshold_m)
            overviews += part
            skipped += sk
    else:
        ws = load_workspace(args.territory, facility_files=args.facilities)
        children = split_territory(ws.territory, load_cog(), by=args.by)
        overviews, skipped = _compare_overviews(children, ws, threshold_m=args.threshold_m)
    if not overviews:
        raise MissingDataError("aucun territoire à comparer n'a de données chargées : "
                               + " ; ".join(skipped))
    df = compare_territories(overviews)
    for s in skipped:
        print(f"attention : {s}", file=sys.stderr)
    if args.format == "json":
        text = json.dumps(comparison_records(df), ensure_ascii=False, indent=2) + "\n"
    elif args.format == "csv":
        text = df.to_csv(sep=";", decimal=",", index=False, lineterminator="\n")
    else:
        text = _comparison_table(df.loc[:, summary_columns()])
    if args.out:
        data = text.encode("utf-8-sig" if args.format == "csv" else "utf-8")
        write_bytes_atomic(args.out, data, option="--out")
        print(f"Comparaison écrite : {args.out} ({len(df)} territoires)")
    else:
        sys.stdout.write(text)
    return 0


def _comparison_table(df: Any) -> str:
    from rich.console import Console
    from rich.table import Table

    from diagnosis.comparison import metric_label
    from diagnosis.report import fr_number, fr_percent

    tab = Table(title=f"Comparaison de {len(df)} territoires")
    for col in df.columns:
        tab.add_column(metric_label(col) if col not in ("code", "name") else
                       {"code": "Code", "name": "Territoire"}[col],
                       justify="left" if col in ("code", "name") else "right")
    for rec in df.to_dict("records"):
        cells = []
        for col, v in rec.items():
            if col.startswith("share_within_"):
                cells.append(fr_percent(v))
            elif col == "coverage_partial":
                cells.append("partielle" if v else "complète")
            elif isinstance(v, float | int) and not isinstance(v, bool):
                cells.append(fr_number(v))
            else:
                cells.append(str(v))
        tab.add_row(*cells)
    con = Console(width=160, record=True, file=__import__("io").StringIO())
    con.print(tab)
    return con.export_text()


def cmd_rerun(args: argparse.Namespace) -> int:
    """Run ``rerun``: re-run a diagnosis file and check its data ledger and results."""
    from pathlib import Path

    from data_sources.workspace import load_workspace
    from diagnosis.errors import InputError
    from diagnosis.exports import (
        build_diagnosis_record,
        compare_ledgers,
        compare_summaries,
        read_diagnosis_file,
    )
    from diagnosis.overview import compute_overview

    rec = read_diagnosis_file(args.file)
    files = [str(i.get("file", "")) for i in rec["ledger"].get("imports", [])]
    lost = [f for f in files if not Path(f).is_file()]
    if lost:
        raise InputError(f"{args.file}: imported file(s) {lost!r} recorded in the diagnosis "
                         "are missing; put them back at that path to re-run it")
    t = rec["territory"]
    ws = load_workspace(str(t["code"]), facility_files=files)
    p = rec["params"]
    ov = compute_overview(ws.territory, ws.communes, ws.facilities,
                          threshold_m=float(p["threshold_m"]), types=tuple(p["types"]),
                          births_col=str(p.get("births_col", "births_2024")),
                          sources=ws.sources)
    new = build_diagnosis_record(ov, query=str(t.get("query", t["code"])), sources=ws.sources,
                                 data_files=_data_files(ws),
                                 imports=_imports_ledger(files, ws.imports), origin=ws.origin)
    data_changes = compare_ledgers(rec["ledger"], new["ledger"])
    result_changes = compare_summaries(rec["summary"], new["summary"])
    print(f"Diagnostic du {rec.get('created', '?')} : {t.get('name')} ({t.get('code')}), "
          f"seuil {float(p['threshold_m']):g} m")
    if data_changes:
        print("ATTENTION : les données ont changé depuis ce diagnostic :", file=sys.stderr)
        for m in data_changes:
            print(f"  - {m}", file=sys.stderr)
    else:
        print("Données : identiques (mêmes empreintes SHA-256, mêmes millésimes).")
    if result_changes:
        print(f"Résultats : {len(result_changes)} différence(s) :")
        for m in result_changes[:50]:
            print(f"  - {m}")
    else:
        print("Résultats : identiques.")
    return 1 if args.strict and (data_changes or result_changes) else 0


DELIVERABLE_COMMANDS = {"report": cmd_report, "export": cmd_export, "compare": cmd_compare,
                        "rerun": cmd_rerun}


COMMANDS = {"summary": cmd_summary}
COMMANDS.update(DELIVERABLE_COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 on bad input, with a message on stderr)."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except MaillageError as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
