"""``python -m diagnosis plan``: the federation's national plan on the command line.

Part of the command line (a composition root, like :mod:`diagnosis.__main__`): the
wiring shared with the app is :mod:`data_sources.national_plan`; the tables and files
are :mod:`diagnosis.plan_exports`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diagnosis.cli_common import terminal_text
from diagnosis.settings import DEFAULT_PER_DEPARTEMENT

if TYPE_CHECKING:
    from data_sources.national_plan import PlanInputs
    from diagnosis.plan import NationalPlan

def add_plan_parser(sub: Any) -> None:
    """The ``plan`` sub-command."""
    p = sub.add_parser("plan", help="plan national : où de nouvelles Maisons toucheraient le "
                                    "plus de familles sans Maison à portée")
    p.add_argument("--territory", default="FR", metavar="CODE_OR_NAME",
                   help="France (FR, défaut), une région ou un département")
    p.add_argument("--new", type=int, default=50, metavar="N",
                   help="nombre de nouvelles Maisons pour la France (défaut %(default)s)")
    p.add_argument("--mode", choices=("crow", "drive"), default="crow",
                   help="temps de trajet : estimation à vol d'oiseau en voiture (crow, défaut) "
                        "ou réseau routier (drive : --road-graph, ou un seul département)")
    p.add_argument("--road-graph", metavar="FILE",
                   help="réseau routier à utiliser avec --mode drive (.osm ou .npz)")
    p.add_argument("--max-minutes", type=float, default=30.0,
                   help="une famille est « à portée » d'une Maison à moins de ce temps "
                        "(minutes, défaut %(default)s)")
    p.add_argument("--per-departement", type=int, default=DEFAULT_PER_DEPARTEMENT,
                   metavar="N", help="nouvelles Maisons de la réponse propre à chaque "
                                     "département (défaut %(default)s)")
    p.add_argument("--insee", action="append", default=[], metavar="FILE",
                   help="fichier INSEE du comparateur de territoires (naissances de chaque "
                        "commune) ; répétable")
    p.add_argument("--facilities", action="append", default=[], metavar="FILE",
                   help="structures pouvant accueillir une Maison (PMI, crèches, RPE, centres "
                        "sociaux, LAEP…) ; répétable")
    p.add_argument("--maisons", action="append", default=[], metavar="FILE",
                   help="liste des Maisons existantes de la fédération (CSV avec nom, commune, "
                        "departement, ou fichier de structures) ; répétable")
    p.add_argument("--no-known-maisons", action="store_true",
                   help="ne pas utiliser la liste de départ des Maisons connues livrée avec "
                        "Maillage")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--out", metavar="FILE",
                   help="écrire dans un fichier : .csv (Excel), .gpkg (QGIS), .pdf (rapport "
                        "court) ou .json")


def cmd_plan(args: argparse.Namespace) -> int:
    """Run ``plan``."""
    from data_sources.national_plan import load_plan_inputs, run_national_plan
    from diagnosis.errors import InputError
    from diagnosis.exports import check_writable

    out = None
    if args.out:
        out = check_writable(args.out, option="--out")
        if out.suffix.lower() not in (".csv", ".gpkg", ".pdf", ".json"):
            raise InputError(f"--out {args.out!r}: unknown extension", argument="--out",
                             value=args.out,
                             fr=f"--out {args.out} : l'extension doit être .csv, .gpkg, .pdf "
                                "ou .json")
    inputs = load_plan_inputs(args.territory, insee_files=args.insee,
                              facility_files=args.facilities, maisons_files=args.maisons,
                              known_maisons=not args.no_known_maisons, mode=args.mode,
                              road_graph_file=args.road_graph)
    plan = run_national_plan(inputs, new=args.new, max_minutes=args.max_minutes,
                             per_departement=args.per_departement)
    for notice in inputs.notices:
        print(f"  {terminal_text(notice)}", file=sys.stderr)
    if out is not None:
        _write(plan, inputs, out)
        return 0
    if args.format == "json":
        from diagnosis.plan_exports import plan_record

        sys.stdout.write(json.dumps(plan_record(plan, inputs.workspace.territory.label),
                                    ensure_ascii=False, indent=2) + "\n")
    elif args.format == "csv":
        from diagnosis.csvfile import french_csv_text
        from diagnosis.plan_exports import plan_tables

        sys.stdout.write("\ufeff" + french_csv_text(plan_tables(plan)["plan_sites"],
                                                    lineterminator="\n"))
    else:
        _print_table(plan, inputs.workspace.territory.label)
    return 0


def _write(plan: NationalPlan, inputs: PlanInputs, out: Path) -> None:
    from diagnosis.exports import write_bytes_atomic
    from diagnosis.plan_exports import (
        export_plan_geopackage,
        plan_record,
        render_plan_pdf,
        write_plan_csv,
    )

    label = inputs.workspace.territory.label
    suffix = out.suffix.lower()
    existed = out.exists()
    if suffix == ".gpkg":
        export_plan_geopackage(plan, out, sources=inputs.workspace.sources)
    elif suffix == ".pdf":
        write_bytes_atomic(out, render_plan_pdf(plan, territory=label,
                                                notices=inputs.notices), option="--out")
    elif suffix == ".json":
        write_bytes_atomic(out, (json.dumps(plan_record(plan, label), ensure_ascii=False,
                                            indent=2) + "\n").encode("utf-8"), option="--out")
    else:
        files = write_plan_csv(plan, out)
        print("Tableaux écrits à côté : " + ", ".join(f.name for f in files[1:]))
    print(f"Plan national écrit : {out} ({plan.summary['n_new']} nouvelles Maisons)"
          + (" — il remplace le fichier qui existait" if existed else ""))


def _print_table(plan: NationalPlan, label: str) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from diagnosis.formatting import fr_number
    from diagnosis.plan_exports import summary_lines

    con = Console(width=150, emoji=False)
    con.print(Text(terminal_text(f"Plan national — {label}"), style="bold"))
    for line in summary_lines(plan):
        con.print(Text(terminal_text(line)))
    tab = Table(title="Nouvelles Maisons, dans l'ordre d'ouverture conseillé")
    for col in ("Rang", "Lieu", "Commune", "Département", "Familles en plus / an",
                "Cumul", "Communes"):
        tab.add_column(col, justify="right" if col in ("Rang", "Familles en plus / an",
                                                       "Cumul", "Communes") else "left")
    for r in plan.sites.to_dict("records"):
        tab.add_row(str(r["rank"]), Text(terminal_text(r["name"])),
                    Text(terminal_text(r["commune"])),
                    Text(terminal_text(f"{r['dep_name']} ({r['dep_code']})")),
                    fr_number(r["marginal_families"]), fr_number(r["cumulative_families"]),
                    str(r["n_communes"]))
    con.print(tab)
    for r in plan.sites.head(10).to_dict("records"):
        con.print(Text(terminal_text(f"{r['rank']}. {r['explanation']}")))
