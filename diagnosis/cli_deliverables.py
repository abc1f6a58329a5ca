"""Deliverable commands of ``python -m diagnosis``: report, export, compare, rerun."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from diagnosis.cli_common import _diagnosis, _esc, _Steps, terminal_text

if TYPE_CHECKING:
    import pandas as pd

    from diagnosis.inputs import DiagnosisInputs


def cmd_report(args: argparse.Namespace) -> int:
    """Run ``report``: the PDF diagnosis report."""
    import time
    from dataclasses import replace

    from data_sources.osm_base import with_map_bases
    from data_sources.workspace import peer_territories
    from diagnosis.exports import check_writable, write_bytes_atomic
    from diagnosis.pipeline import peer_comparison
    from diagnosis.report import PdfProcess, render_diagnosis_pdf

    start = time.perf_counter()
    out = check_writable(args.out, option="--out")
    existed = out.exists()
    # WeasyPrint is imported in a forked process while the diagnosis is computed here; it
    # then lays the report out while the maps are drawn here (forked before the progress
    # bar's thread starts)
    with PdfProcess() as pdf_process, _Steps("Rapport", total=14) as step:
        step("chargement des données")
        diag = _diagnosis(args, step)
        step("comparaison avec les territoires voisins")
        if not args.no_comparison:
            diag = replace(diag, comparison=peer_comparison(
                diag.inputs, diag.overview, peer_territories(diag.territory),
                threshold_m=diag.params.threshold_m))
        # the study's OpenStreetMap extract, if any, draws roads and water on the maps;
        # OpenStreetMap tiles only when asked for (--fond-de-carte osm)
        diag = with_map_bases(diag,
                              osm_tiles=getattr(args, "fond_de_carte", "aucun") == "osm")
        report = render_diagnosis_pdf(diag, author=args.author, progress=step,
                                      pdf_process=pdf_process)
        step("écriture du fichier")
        write_bytes_atomic(out, report.pdf, option="--out")
    pages = report.pages
    print(f"Rapport écrit : {out} ({pages} pages, {time.perf_counter() - start:.1f} s)"
          + (" — il remplace le fichier qui existait" if existed else ""))
    for note in diag.notes:
        print(f"  {terminal_text(note)}", file=sys.stderr)
    if diag.base_tiles is not None and diag.base_tiles.mosaic is None:
        print(f"  {diag.base_tiles.note_fr()}", file=sys.stderr)
    if args.site and diag.siting is None:
        print(f"  Site {args.site} : analyse d'implantation non calculée (distances à vol "
              "d'oiseau seulement).", file=sys.stderr)
    return 0


def _data_files(ws: DiagnosisInputs) -> dict[str, str]:
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
        check_writable,
        diagnosis_export_layers,
        export_csv_tables,
        export_geopackage,
        write_diagnosis_file,
    )

    if not (args.out or args.csv_dir or args.diagnosis_file):
        raise InputError("export needs an output: --out FILE.gpkg, --csv-dir DIR and/or "
                         "--diagnosis-file FILE.json", argument="--out",
                         fr="export : indiquez au moins une sortie : --out FICHIER.gpkg, "
                            "--csv-dir DOSSIER ou --diagnosis-file FICHIER.json")
    if args.out:
        if Path(args.out).suffix.lower() != ".gpkg":
            raise InputError(f"--out {args.out!r} must end with .gpkg (GeoPackage)")
        check_writable(args.out, option="--out")
    if args.diagnosis_file:
        check_writable(args.diagnosis_file, option="--diagnosis-file")
    diag = _diagnosis(args)
    ws, ov = diag.inputs, diag.overview
    layers = diagnosis_export_layers(diag)
    if args.out:
        existed = Path(args.out).exists()
        export_geopackage(layers, args.out)
        print(f"GeoPackage écrit : {args.out} ({len(layers)} couches, EPSG:4326)"
              + (" — il remplace le fichier qui existait" if existed else ""))
    if args.csv_dir:
        files = export_csv_tables(layers, args.csv_dir)
        print(f"CSV écrits : {len(files)} fichiers dans {args.csv_dir}")
    if args.diagnosis_file:
        record = build_diagnosis_record(
            ov, query=args.territory, sources=ws.sources, data_files=_data_files(ws),
            imports=_imports_ledger(args.facilities, ws.imports), origin=ws.origin)
        write_diagnosis_file(record, args.diagnosis_file)
        print(f"Fichier de diagnostic écrit : {args.diagnosis_file}")
    for note in diag.notes:
        print(f"  {terminal_text(note)}", file=sys.stderr)
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
    from diagnosis.pipeline import compare_overviews

    if args.out:
        check_writable(args.out, option="--out")
    overviews, skipped = [], []
    if args.territories:
        for q in args.territories:
            try:
                ws = load_workspace(q, facility_files=args.facilities, insee_files=args.insee)
            except MissingDataError as exc:
                skipped.append(str(exc))
                continue
            part, sk = compare_overviews([ws.territory], ws, threshold_m=args.threshold_m)
            overviews += part
            skipped += sk
    else:
        ws = load_workspace(args.territory, facility_files=args.facilities,
                            insee_files=args.insee)
        children = split_territory(ws.territory, load_cog(), by=args.by)
        overviews, skipped = compare_overviews(children, ws, threshold_m=args.threshold_m)
    if not overviews:
        raise MissingDataError("aucun territoire à comparer n'a de données chargées : "
                               + " ; ".join(skipped))
    df = compare_territories(overviews)
    for s in skipped:
        print(f"attention : {terminal_text(s)}", file=sys.stderr)
    if args.format == "json":
        text = json.dumps(comparison_records(df), ensure_ascii=False, indent=2) + "\n"
    elif args.format == "csv":
        from diagnosis.comparison import french_comparison_table
        from diagnosis.csvfile import french_csv_text

        text = "\ufeff" + french_csv_text(french_comparison_table(df), lineterminator="\n")
    else:
        text = _comparison_table(df.loc[:, summary_columns()], df)
    if args.out:
        data = text.encode("utf-8")  # the CSV text starts with its BOM
        write_bytes_atomic(args.out, data, option="--out")
        print(f"Comparaison écrite : {args.out} ({len(df)} territoires)")
    else:
        sys.stdout.write(text)
    return 0


def _comparison_table(df: pd.DataFrame, full: pd.DataFrame) -> str:
    """The printed comparison: columns of ``df``, statuses read from ``full``."""
    from rich.console import Console
    from rich.table import Table

    from diagnosis.comparison import comparison_years, metric_label
    from diagnosis.formatting import fr_known, fr_number, fr_out_of

    tab = Table(title=f"Comparaison de {len(df)} territoires")
    years = comparison_years(full)
    for col in df.columns:
        tab.add_column(metric_label(col, years=years) if col not in ("code", "name") else
                       {"code": "Code", "name": "Territoire"}[col],
                       justify="left" if col in ("code", "name") else "right")
    for rec in full.loc[df.index].to_dict("records"):
        cells = []
        for col in df.columns:
            v = rec[col]
            if col.startswith("share_within_"):
                status = str(rec.get(f"offer_status_{col.removeprefix('share_within_')}",
                                     "complete"))
                cells.append(fr_known(v, status=status, percent=True, feminine=True))
            elif col == "coverage_partial":
                known = fr_out_of(int(rec.get("n_communes_births_known", rec["n_communes"])),
                                  int(rec.get("n_communes_total", rec["n_communes"])))
                cells.append(f"partielle{known}" if v else "complète")
            elif isinstance(v, float | int) and not isinstance(v, bool):
                cells.append(fr_number(v))
            else:
                cells.append(_esc(v))
        tab.add_row(*cells)
    con = Console(width=160, record=True, file=__import__("io").StringIO(), emoji=False)
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
                         "are missing; put them back at that path to re-run it",
                         argument="FILE.json", value=args.file,
                         fr=f"« {args.file} » : fichier(s) importé(s) introuvable(s) : "
                            + ", ".join(f"« {f} »" for f in lost)
                            + " ; remettez-les à cet emplacement pour relancer le diagnostic")
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
    print(terminal_text(f"Diagnostic du {rec.get('created', '?')} : {t.get('name')} "
                        f"({t.get('code')}), seuil {float(p['threshold_m']):g} m"))
    if data_changes:
        print("ATTENTION : les données ont changé depuis ce diagnostic :", file=sys.stderr)
        for m in data_changes:
            print(f"  - {terminal_text(m)}", file=sys.stderr)
    else:
        print("Données : identiques (mêmes empreintes SHA-256, mêmes millésimes).")
    if result_changes:
        print(f"Résultats : {len(result_changes)} différence(s) :")
        for m in result_changes[:50]:
            print(f"  - {terminal_text(m)}")
    else:
        print("Résultats : identiques.")
    return 1 if args.strict and (data_changes or result_changes) else 0


DELIVERABLE_COMMANDS = {"report": cmd_report, "export": cmd_export, "compare": cmd_compare,
                        "rerun": cmd_rerun}
