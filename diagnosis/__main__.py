"""Command line of Maillage: ``python -m diagnosis <command> …``.

This module is a composition root: it may import :mod:`data_sources` (through the
shared wiring :func:`data_sources.workspace.load_workspace`).

Commands
--------
summary
    Needs, offer and crow-fly proximity of a territory (JSON or table).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

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


COMMANDS = {"summary": cmd_summary}


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
