"""Command line of Maillage: ``python -m diagnosis <command> …``.

The analysis commands and their French printing live here; the parser is
:mod:`diagnosis.cli_parser` (French argparse: :mod:`diagnosis.cli_french`), the pieces every
command shares (parameters, loading, output) :mod:`diagnosis.cli_common`, the deliverables
(report, export, compare, rerun) :mod:`diagnosis.cli_deliverables` and the national plan
:mod:`diagnosis.cli_plan`. Every computation is a call to :mod:`diagnosis.pipeline`.

This module is a composition root: it may import :mod:`data_sources` (through the
shared wiring :func:`data_sources.workspace.load_workspace`).

Commands
--------
summary
    Needs, offer and crow-fly proximity of a territory (JSON or table).
access
    Travel time to each type of service, zones blanches, ranked priority communes.
site
    Recommended host sites for the Maison, explained, scenarios, peer-group cohorts.
partners
    Partners within reach of a site and institutions to meet (JSON, CSV or table).
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
from typing import TYPE_CHECKING, Any, cast

from diagnosis.cli_common import (  # noqa: F401 (_clean: tests)
    _clean,
    _console,
    _diagnosis,
    _emit,
    _esc,
    _fr,
    _kind_fr,
    _params,
    _parse_points,
    _parse_weights,
    _records,
    _Steps,
    _territory,
    _travel,
    _travel_defaults,
    _workspace,
)
from diagnosis.cli_deliverables import DELIVERABLE_COMMANDS
from diagnosis.cli_french import (  # noqa: F401 (french_argparse_message: tests)
    FrenchArgumentParser,
    FrenchHelpFormatter,
    float_between,
    french_argparse_message,
    int_at_least,
    non_empty,
)
from diagnosis.cli_parser import MAX_MINUTES_LIMIT, build_parser  # noqa: F401 (tests, API)
from diagnosis.cli_plan import cmd_plan
from diagnosis.errors import MaillageError

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from data_sources.workspace import Workspace
    from diagnosis.analyses import AccessResult, SitingScenarios
    from diagnosis.gaps import GapsResult
    from diagnosis.overview import Overview
    from diagnosis.pipeline import DiagnosisParams
    from diagnosis.siting import SitingResult
    from diagnosis.travel import Travel


def _summary_json(ws: Workspace, ov: Overview) -> dict[str, Any]:
    out = _clean(dict(ov.summary))
    out["notices"] = list(ws.notices)
    out["territory"]["note"] = ws.territory.note
    out["imports"] = [
        {"file": r.file, "rows_read": r.rows_read, "accepted": r.accepted,
         "rejected": int(len(r.rejected)), "duplicates": int(len(r.duplicates)),
         "summary": r.summary_fr()}
        for r in ws.imports
    ]
    return cast("dict[str, Any]", out)


def _print_table(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from diagnosis.formatting import NOT_KNOWN_F, fr_known, fr_number, fr_out_of
    from diagnosis.overview import COVERAGE_LABELS
    from diagnosis.schema import facility_label

    con = Console(width=110, emoji=False, highlight=False)
    t = data["territory"]
    con.print(f"[bold]{_esc(t['name'])}[/bold] ({_kind_fr(t['kind'])} {t['code']})")
    if t.get("note"):
        con.print(_esc(t["note"]))
    births = data["births_2024"]
    n_total = int(data.get("n_communes_total", data["n_communes"]))
    known = fr_out_of(int(data.get("n_communes_births_known", data["n_communes"])), n_total)
    births_year = (data.get("data_years") or {}).get("births_2024", 2024)
    con.print(f"Communes : {n_total}   Naissances {births_year} : "
              + (f"{fr_number(births)}{known}" if births is not None else NOT_KNOWN_F + "s"))
    for code, lacking in (data.get("communes_partial") or {}).items():
        con.print(f"Commune {code} : somme des seules parties connues ({lacking}) : un "
                  "minimum.")
    if data["under3_estimate"] is not None:
        con.print(f"Enfants de moins de 3 ans : {fr_number(data['under3_estimate'])}{known} "
                  f"({data['under3_estimate_label']})")
    tab = Table(title=f"Offre et proximité (≤ {data['threshold_m'] / 1000:g} km à vol d'oiseau "
                      "depuis la mairie)")
    for col in ("Type", "Structures", "Places connues", "Naissances à portée", "Part",
                "Communes sans", "Offre connue"):
        tab.add_column(col, justify="left" if col in ("Type", "Offre connue") else "right")
    n = int(data["n_communes"])
    for typ, f in data["facilities"].items():
        w = data["births_within_threshold"][typ]
        status = str(f.get("status", w.get("status", "unknown")))
        places = "—" if f["places_known"] is None else fr_number(f["places_known"])
        tab.add_row(facility_label(typ, plural=True),
                    fr_known(f["count"], status=status, feminine=True), places,
                    fr_known(w["births"], status=status, feminine=True),
                    fr_known(w["share"], status=status, percent=True, feminine=True),
                    fr_known(len(data["communes_without"][typ]), status=status,
                             bound="upper", total=n),
                    COVERAGE_LABELS.get(status, status))
    con.print(tab)
    if any(f.get("status") != "complete" for f in data["facilities"].values()):
        con.print("« non connu(e) » : aucune source chargée ne recense ce type en entier et "
                  "les données chargées n'en placent aucune ; « ≥ » : au moins, d'après les "
                  "structures connues ; « ≤ » : au plus. Importez un fichier de structures ou "
                  "mettez à jour les sources pour les connaître.")
    for imp in data.get("imports", []):
        con.print(f"Import {_esc(imp['file'])} : {_esc(imp['summary'])}")
    con.print("[bold]Sources[/bold]")
    for s in data["sources"]:
        con.print(_esc(f"- {s['title']} — {s['vintage']} — {s['licence']} — "
                       f"{s['attribution']}"))
    for n in data["notices"]:
        con.print(f"[yellow]! {_esc(n)}[/yellow]")


def cmd_summary(args: argparse.Namespace) -> int:
    """Run ``summary``."""
    from diagnosis.pipeline import diagnose_overview

    params = _params(args)
    ws = _workspace(args)
    ov = diagnose_overview(ws, params)
    data = _summary_json(ws, ov)
    if args.format == "json":
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(data)
    return 0


# ======================================================================================
# Analyses: access (accessibility and gaps), site (where to open), partners (maillage)
# ======================================================================================


def _emit_access_json(args: argparse.Namespace, ws: Workspace, params: DiagnosisParams,
                      res: AccessResult, travel: Travel) -> None:
    """``access --format json``: the types, white zones and every commune's figures.

    (Built for JSON only: the records of 10,900 communes took 0.3 s a table did not use.)
    """
    from diagnosis.gaps import PRIORITY_FACTORS

    prio = res.gaps.layers["priority"]
    kinds = list(res.access.params["facility_types"])
    com_cols = ["rank", "code_insee", "name", "score",
                *[f"factor_{k}" for k in PRIORITY_FACTORS],
                *[f"contrib_{k}" for k in PRIORITY_FACTORS], "poverty_basis",
                "estimated_factors", "missing_factors"]
    acc = res.access.table.set_index("code_insee").to_dict("index")  # one lookup per row
    communes = []
    for rec in _records(prio, com_cols):
        row = acc[rec["code_insee"]]
        rec["births"] = _records_value(row["births"])
        rec["minutes_nearest"] = {t: _records_value(row[f"minutes_nearest_{t}"]) for t in kinds}
        rec["reachable"] = {t: int(row[f"reachable_{t}"]) for t in kinds}
        communes.append(rec)
    data = {
        "territory": {"code": ws.territory.code, "name": ws.territory.name,
                      "kind": ws.territory.kind},
        "params": {**dict(res.params), "mode": params.mode,
                   "travel_reason": params.travel_reason},
        "types": _records(res.access.summary),
        "white_zones": _records(res.gaps.summary),
        "communes": communes,
        "notes": [*([params.travel_reason] if params.travel_reason else []), *res.notes,
                  *ws.notices],
        "sources": [*ws.sources, *map(dict, travel.sources)],
    }
    big = len(communes) > 2_000  # a national table: compact JSON (4 s less to write)
    _emit(args, json.dumps(_clean(data), ensure_ascii=False,
                           indent=None if big else 2) + "\n")


def cmd_access(args: argparse.Namespace) -> int:
    """Run ``access``: time to services, zones blanches and ranked priority communes."""
    from diagnosis.formatting import fr_known
    from diagnosis.pipeline import diagnose_access, diagnose_demand, diagnose_overview

    params = _params(args)
    if args.distributed and args.scheduler is None:
        # the local Dask workers' imports run in the background while the data loads
        from diagnosis.distributed import start_worker_server

        start_worker_server(preload_modules=["data_sources.workspace"])
    with _Steps("Accessibilité", total=3) as step:
        step("chargement des données")
        ws = _workspace(args)
        params = _travel_defaults(args, params, ws)
        ov = diagnose_overview(ws, params)
        if args.distributed:
            step("temps de trajet par département (Dask)")
            res = _distributed_access(args, ws, params, ov)
            travel = res.travel
        else:
            step("réseau routier")
            travel = _travel(args, ws, params)
            step("temps de trajet et manques")
            res = diagnose_access(ws, params, overview=ov, travel=travel,
                                  demand=diagnose_demand(ws, ov))
    if args.format == "json":
        _emit_access_json(args, ws, params, res, travel)
        return 0
    from rich.table import Table

    con = _console()
    t = ws.territory
    con.print(f"[bold]{_esc(t.name)}[/bold] ({_kind_fr(t.kind)} {t.code}) — seuil "
              f"{_fr(params.max_minutes)} min — {_esc(travel.label)}")
    if params.travel_reason:
        con.print(_esc(params.travel_reason))
    tab = Table(title="Accès aux services, par type")
    for col in ("Type", "Structures chargées", "Sans capacité", "Naissances à portée", "Part",
                "Communes hors de portée"):
        tab.add_column(col, justify="left" if col == "Type" else "right")
    coverage = ov.summary.get("coverage", {})
    for r in res.access.summary.to_dict("records"):
        status = str(coverage.get(r["type"], {}).get("status", "unknown"))
        tab.add_row(_esc(r["label"]), str(r["n_facilities"]),
                    str(r["n_facilities_without_capacity"]),
                    fr_known(r["births_within"], status=status, feminine=True),
                    fr_known(r["share_births_within"], status=status, percent=True,
                             feminine=True),
                    fr_known(r["n_communes_beyond"], status=status, bound="upper",
                             total=len(res.access.table)))
    con.print(tab)
    _print_priority(con, res.gaps, top=args.top,
                    births_year=ov.summary.get("data_years", {}).get("births_2024", 2024))
    for n in (*res.notes, *ws.notices):
        con.print(f"[yellow]! {_esc(n)}[/yellow]")
    return 0


def _print_priority(con: Console, gaps: GapsResult, *, top: int,
                    births_year: int = 2024) -> None:
    """The priority ranking: births, each factor's multiplier, the score, what is estimated."""
    from rich.table import Table

    from diagnosis.formatting import fr_percent
    from diagnosis.gaps import FACTOR_LABELS, MULTIPLIER_LABELS, PRIORITY_FACTORS, SCORE_LABEL

    prio = gaps.layers["priority"]
    w = gaps.params["weights"]
    tab = Table(title=f"Communes prioritaires ({min(top, len(prio))} premières sur "
                      f"{len(prio)}) : besoins en familles")
    tab.add_column("Rang", justify="right")
    tab.add_column("Commune")
    for k in PRIORITY_FACTORS:
        tab.add_column(f"Naissances {births_year}" if k == "births" else MULTIPLIER_LABELS[k],
                       justify="right")
    tab.add_column(SCORE_LABEL, justify="right")
    tab.add_column("Estimé ou manquant")
    for r in prio.head(top).to_dict("records"):
        missing = [FACTOR_LABELS[k].lower() + " inconnue" if k != "births"
                   else "naissances inconnues"
                   for k in str(r.get("missing_factors") or "").split(",") if k]
        tab.add_row(_fr(r["rank"]), _esc(r["name"]), _fr(r["births"]),
                    *[_fr(r[f"factor_{k}"], 2) for k in PRIORITY_FACTORS[1:]],
                    _fr(r["score"], 1),
                    " ; ".join([s for s in (str(r.get("estimated_factors") or ""),) if s]
                               + missing) or "—")
    con.print(tab)
    con.print(f"Score = naissances {births_year} × moyenne pondérée des facteurs (poids : "
              + ", ".join(f"{FACTOR_LABELS[k].lower()} {fr_percent(w[k])}"
                          for k in PRIORITY_FACTORS)
              + ") ; un facteur de 1 est la moyenne du territoire (pondérée par les "
              "naissances), plafonné à 3. Une commune sans naissance a un score de 0.")


def _distributed_access(args: argparse.Namespace, ws: Workspace, params: DiagnosisParams,
                        ov: Overview) -> AccessResult:
    """``access --distributed``: one Dask task per département, progress on stderr."""
    from data_sources.workspace import DepartementGraphLoader
    from diagnosis.errors import InputError
    from diagnosis.pipeline import diagnose_access_distributed

    if params.mode == "crow":
        raise InputError("--distributed routes on the road network: use --mode drive or walk",
                         argument="--distributed",
                         fr="--distributed calcule sur le réseau routier : choisissez "
                            "--mode drive ou walk")

    def progress(dep: str, done: int, total: int) -> None:
        print(f"  département {dep} : fait ({done}/{total})", file=sys.stderr)

    loader = DepartementGraphLoader(params.engine_mode, road_graph_file=args.road_graph)
    return diagnose_access_distributed(ws, params, overview=ov, graph_loader=loader,
                                       scheduler_address=args.scheduler,
                                       n_workers=args.workers, progress=progress)


def _records_value(v: Any) -> Any:

    f = float(v)
    return None if math.isnan(f) else (f if math.isfinite(f) else "inf")


def cmd_site(args: argparse.Namespace) -> int:
    """Run ``site``: recommended host sites, explained, and the peer groups they allow."""
    from diagnosis.pipeline import (
        diagnose_demand,
        diagnose_overview,
        diagnose_siting,
        recommended,
        site_catchments,
    )

    params = _params(args)  # a bad option stops before any work
    with _Steps("Implantation", total=4) as step:
        step("chargement des données")
        ws = _workspace(args)
        params = _travel_defaults(args, params, ws)
        ov = diagnose_overview(ws, params)
        step("réseau routier")
        travel = _travel(args, ws, params)
        step("optimisation")
        sc = diagnose_siting(ws, params, overview=ov, travel=travel,
                             demand=diagnose_demand(ws, ov))
        step("groupes de pairs")
        main = sc.main
        cohorts = []
        for c in site_catchments(ws, params, overview=ov, travel=travel,
                                 sites=recommended(sc, ws.facilities)):
            plan = c.cohorts
            cohorts.append({"site_id": c.site.site_id, "site_name": c.site.name,
                            "catchment_communes": c.catchment.communes["code_insee"].tolist(),
                            **({k: v for k, v in plan.__dict__.items() if k != "params"}
                               if plan else {}),
                            "params": dict(plan.params) if plan else {}})
    site_cols = ["rank", "status", "facility_id", "name", "type", "type_label", "address",
                 "code_insee", "births_covered", "births_new", "need_covered",
                 "need_exclusive", "single_parent_families", "births_poverty",
                 "minutes_nearest_pmi", "minutes_nearest_maternite", "partners_within",
                 "runner_up_id", "runner_up_name", "advantage", "explanation"]
    data = {
        "territory": {"code": ws.territory.code, "name": ws.territory.name,
                      "kind": ws.territory.kind},
        "params": {**{k: v for k, v in main.params.items()}, "engine": travel.engine,
                   "travel_label": travel.label, "uptake_rate": args.uptake_rate,
                   "mode": params.mode, "travel_reason": params.travel_reason},
        "summary": {k: v for k, v in main.summary.items()},
        "sites": _records(main.sites, site_cols),
        "cohorts": cohorts,
        "scenarios": _scenario_records(sc.table) if len(sc.results) > 1 else [],
        "notes": [*sc.notes, *ws.notices],
    }
    if args.format == "json":
        from diagnosis.exports import json_ready

        _emit(args, json.dumps(_clean(json_ready(data)), ensure_ascii=False, indent=2) + "\n")
        return 0
    _print_site_table(ws, main, sc, cohorts, travel, args, params)
    return 0


def _scenario_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    from diagnosis.exports import json_ready

    return [json_ready({"scenario": c, **{str(i): v for i, v in table[c].items()}})
            for c in table.columns]


def _print_site_table(ws: Workspace, main: SitingResult, sc: SitingScenarios,
                      cohorts: list[dict[str, Any]], travel: Travel, args: argparse.Namespace,
                      params: DiagnosisParams) -> None:
    from rich.table import Table

    con = _console()
    t = ws.territory
    s = main.summary
    con.print(f"[bold]{_esc(t.name)}[/bold] ({_kind_fr(t.kind)} {t.code}) — {args.k} "
              "nouveau(x) site(s), "
              f"seuil {_fr(params.max_minutes)} min — {_esc(travel.label)}")
    if params.travel_reason:
        con.print(_esc(params.travel_reason))
    con.print(_esc(s.get("message", "")))
    tab = Table(title="Sites recommandés")
    for col in ("Rang", "Site (identifiant)", "Type", "Naissances à portée", "dont nouvelles",
                "Apport du site", "PMI (min)", "Maternité (min)", "Partenaires à portée"):
        tab.add_column(col, justify="left" if col in ("Site (identifiant)", "Type") else "right")
    for r in main.sites.to_dict("records"):
        label = f"{r['name']} ({r['facility_id']})"
        if r["status"] != "recommandé":
            label += f" — {r['status']}"
        gain = r.get("births_marginal")
        tab.add_row(_fr(r.get("rank")), _esc(label), _esc(r.get("type_label", "")),
                    _fr(r.get("births_covered")), _fr(r.get("births_new")),
                    "—" if gain is None or gain != gain else f"+{_fr(gain)}",
                    _fr(r.get("minutes_nearest_pmi")), _fr(r.get("minutes_nearest_maternite")),
                    _fr(r.get("partners_within")))
    con.print(tab)
    con.print("« Apport du site » : naissances à portée que le site ajoute aux sites mieux "
              "classés (et aux Maisons existantes).")
    for r in main.sites.loc[main.sites["status"] == "recommandé"].to_dict("records"):
        con.print(f"[bold]{_esc(r['name'])}[/bold] : {_esc(r['explanation'])}")
    for c in cohorts:
        if not c.get("params"):
            continue
        con.print(f"[bold]Groupes de pairs autour de {_esc(c['site_name'])}[/bold] "
                  f"({_esc(c['params'].get('scope', ''))}, participation supposée "
                  f"{_fr(100 * c['params']['uptake_rate'])} %) : la Maison anime "
                  f"{_fr(c['maison_groups_per_year'], 1)} groupe(s) de "
                  f"{c['params']['group_size']} familles par an "
                  f"({_fr(c['maison_families_per_year'])} familles), "
                  f"{_fr(c['maison_facilitator_hours_per_month'], 1)} h d'animation par mois."
                  f" {_esc(c.get('binding_text', ''))}")
        for w in c["warnings"]:
            con.print(f"[yellow]! {_esc(w)}[/yellow]")
    if len(sc.results) > 1:
        tab = Table(title="Scénarios comparés")
        tab.add_column("Indicateur")
        for col in sc.table.columns:
            tab.add_column(str(col), justify="right")
        for idx, row in sc.table.iterrows():
            tab.add_row(_esc(idx), *[_fr(v, 1) if isinstance(v, float) else _esc(v)
                                     for v in row])
        con.print(tab)
    for n in (*sc.notes, *ws.notices):
        con.print(f"[yellow]! {_esc(n)}[/yellow]")


def cmd_partners(args: argparse.Namespace) -> int:
    """Run ``partners``: structures within reach of a site, and institutions to meet."""
    import pandas as pd

    from diagnosis.partners import export_partners_csv
    from diagnosis.pipeline import diagnose_overview, diagnose_partners, studied_site
    from diagnosis.presentation import french_partners_table, partners_export_frame

    params = _params(args)
    ws = _workspace(args)
    params = _travel_defaults(args, params, ws)
    site = studied_site(ws, params, None)
    assert site is not None  # --site is required
    travel = _travel(args, ws, params)
    t = ws.territory
    res = diagnose_partners(ws, params, overview=diagnose_overview(ws, params), travel=travel,
                            site=site)
    near = res.layers["near_site"]
    inst = res.layers.get("institutions", pd.DataFrame())
    if args.format == "csv":
        titles = {str(r.get("key", "")): str(r.get("title", "")) for r in ws.sources}
        data = export_partners_csv(french_partners_table(partners_export_frame(res.layers),
                                                         titles))
        if args.out:
            from diagnosis.exports import write_bytes_atomic

            write_bytes_atomic(args.out, data, option="--out")
            print(f"Écrit : {args.out} ({len(near)} structures, {len(inst)} institutions)",
                  file=sys.stderr)
        else:
            sys.stdout.buffer.write(data)
        return 0
    if args.format == "json":
        data_json = {"territory": {"code": t.code, "name": t.name},
                     "site": {"facility_id": site.site_id, "name": site.name,
                              "type": site.facility_type, "code_insee": site.code_insee,
                              **dict(site.details)},
                     "params": dict(res.params),
                     "partners": _records(near), "institutions": _records(inst),
                     "notes": [f"Temps de trajet : {travel.label}.",
                               *([params.travel_reason] if params.travel_reason else []),
                               *([travel.note] if travel.note else []), *ws.notices]}
        _emit(args, json.dumps(_clean(data_json), ensure_ascii=False, indent=2) + "\n")
        return 0
    from rich.table import Table

    con = _console()
    con.print(f"[bold]Partenaires de {_esc(site.name)}[/bold] ({_esc(site.site_id)}) à "
              f"{_fr(params.max_minutes)} min ou moins — {_esc(travel.label)}")
    tab = Table()
    for col in ("Type", "Structure", "Adresse", "Temps (min)", "Distance (km)", "Contact"):
        tab.add_column(col, justify="right" if "(" in col else "left")
    for r in near.to_dict("records"):
        contact = " · ".join(str(r[k]) for k in ("phone", "email", "website") if r.get(k))
        tab.add_row(_esc(r["type_label"]), _esc(r["name"]), _esc(r["address"]),
                    _fr(r["minutes"]), _fr(r["distance_m"] / 1000, 1), _esc(contact or "—"))
    con.print(tab)
    tab = Table(title="Institutions à rencontrer (coordonnées à vérifier)")
    for col in ("Rôle", "Organisation", "Pourquoi"):
        tab.add_column(col)
    for r in inst.to_dict("records"):
        tab.add_row(_esc(r["role"]), _esc(r["organisation"]), _esc(r["description"]))
    con.print(tab)
    if travel.note:
        con.print(f"[yellow]! {_esc(travel.note)}[/yellow]")
    return 0


# ======================================================================================
# Consultant and federation deliverables: report (PDF), export (GeoPackage, CSV and a
# diagnosis file), compare (territories side by side), rerun (a diagnosis file).
# ======================================================================================


COMMANDS = {"summary": cmd_summary, "access": cmd_access, "site": cmd_site,
            "partners": cmd_partners}
COMMANDS.update(DELIVERABLE_COMMANDS)
COMMANDS["plan"] = cmd_plan


def cmd_reseaux(args: argparse.Namespace) -> int:
    """Run ``reseaux``: the GTFS feeds of the national access point covering the territory.

    A feed covers the territory when its covered area lists one of its communes or is the
    AOM (mobility authority) of one of them (``/api/aoms/{insee}``, at most 60 communes
    asked, cached).
    """
    from data_sources.gtfs import (
        feeds_for_territory,
        fetch_aom_siren,
        fetch_catalogue,
        parse_catalogue,
    )

    ws = _workspace(args)
    codes = list(ws.territory.communes)
    sirens = {fetch_aom_siren(c) for c in codes[:60]}
    feeds = feeds_for_territory(parse_catalogue(fetch_catalogue()), codes, aom_sirens=sirens)
    rows = [{"reseau": f.title, "couverture": f"{f.covered_type} {f.covered_name}".strip(),
             "debut": f.start.isoformat() if f.start else None,
             "fin": f.end.isoformat() if f.end else None,
             "licence": f.licence or None, "url": f.url} for f in feeds]
    if args.format == "json":
        _emit(args, json.dumps({"territory": ws.territory.code, "feeds": rows},
                               ensure_ascii=False, indent=2) + "\n")
        return 0
    from rich.table import Table

    con = _console()
    t = ws.territory
    con.print(f"[bold]{_esc(t.name)}[/bold] ({_kind_fr(t.kind)} {t.code}) — horaires GTFS à "
              "télécharger (point d'accès national transport.data.gouv.fr)")
    if len(codes) > 60:
        con.print(f"[yellow]! Autorités organisatrices cherchées pour 60 communes sur "
                  f"{len(codes)}.[/yellow]")
    if not rows:
        con.print("Aucun jeu GTFS trouvé dont la couverture touche le territoire : voyez les "
                  "cars régionaux et le TER sur transport.data.gouv.fr.")
        return 0
    tab = Table()
    for col in ("Réseau", "Couverture", "Horaires", "Licence", "Adresse"):
        tab.add_column(col)
    for r in rows:
        dates = (f"du {r['debut']} au {r['fin']}" if r["debut"] and r["fin"]
                 else "non indiquées")
        tab.add_row(_esc(r["reseau"]), _esc(r["couverture"]), _esc(dates),
                    _esc(r["licence"] or "non indiquée"), _esc(r["url"]))
    con.print(tab)
    con.print("Puis : --mode transit --gtfs FICHIER.zip (répétable) --osm-pbf RUES.osm.pbf "
              "(guide guides/transports.md).")
    return 0


COMMANDS["reseaux"] = cmd_reseaux


#: Suffix each output option must end with, per command (French name of the format).
_OUT_SUFFIXES = {("report", "out"): (".pdf", "PDF"), ("export", "out"): (".gpkg", "GeoPackage"),
                 ("export", "diagnosis_file"): (".json", "JSON")}


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any computation, an output that cannot be written or would be lost.

    Every ``--out``/``--diagnosis-file`` must be a regular file in an existing folder
    (never a device such as ``/dev/null``, a FIFO or a folder) with the format's suffix;
    ``--csv-dir`` must be a folder or a new name.
    """
    from pathlib import Path

    from diagnosis.errors import InputError

    for dest in ("out", "diagnosis_file"):
        value = getattr(args, dest, None)
        if not value:
            continue
        from diagnosis.exports import check_writable  # only when a file is written

        option = "--" + dest.replace("_", "-")
        check_writable(value, option=option)
        suffix = _OUT_SUFFIXES.get((args.command, dest))
        if suffix and Path(value).suffix.lower() != suffix[0]:
            raise InputError(f"{option} {value!r} must end with {suffix[0]}", argument=option,
                             value=value,
                             fr=f"{option} « {value} » : le fichier écrit est un {suffix[1]}, "
                                f"son nom doit finir par {suffix[0]} (par exemple "
                                f"diagnostic{suffix[0]})")
    csv_dir = getattr(args, "csv_dir", None)
    if csv_dir:
        d = Path(csv_dir)
        if d.exists() and not d.is_dir():
            raise InputError(f"--csv-dir {csv_dir!r} exists and is not a folder",
                             argument="--csv-dir", value=csv_dir,
                             fr=f"--csv-dir « {csv_dir} » existe et n'est pas un dossier : "
                                "donnez un dossier (existant ou à créer)")
        parent = d if d.is_dir() else d.parent
        if not parent.is_dir():
            raise InputError(f"--csv-dir {csv_dir!r}: {str(parent)!r} does not exist",
                             argument="--csv-dir", value=csv_dir,
                             fr=f"--csv-dir « {csv_dir} » : le dossier « {parent} » n'existe "
                                "pas ; créez-le ou choisissez un autre chemin")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 on bad input, with a message on stderr).

    Every error reaches the user through :func:`diagnosis.errors.render_error` (French,
    no traceback): 2 for a project error (bad input, missing data, failed source), 1 for
    an operating-system error or a lack of memory.
    """
    return _dispatch(build_parser().parse_args(argv))


def _dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; every error as :func:`main` says."""
    from diagnosis.errors import render_error

    try:
        _check_outputs(args)
        return COMMANDS[args.command](args)
    except MaillageError as exc:
        print(f"erreur : {render_error(exc)}", file=sys.stderr)
        return 2
    except (OSError, MemoryError) as exc:
        print(f"erreur : {render_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"\n{render_error(exc)}", file=sys.stderr)
        return 130


#: Commands that print their answer and write their files (``--out``) before returning:
#: their process may end without the interpreter's teardown (:func:`run`).
FAST_EXIT = frozenset({"summary", "compare", "access", "site", "partners", "report", "export"})


def run() -> None:
    """``python -m diagnosis`` and the ``maillage`` command: :func:`main`, then the exit.

    Python's own exit frees every module and object one by one: 90-110 ms once pandas,
    geopandas and pyarrow are imported, a sixth of ``summary --territory 44``. After a
    command of :data:`FAST_EXIT`, when nothing else runs (no other thread, no child
    process, no profiler or tracer waiting to write its report), the output streams are
    flushed, the exit handlers run (``atexit``: logging, temporary files,
    multiprocessing) and the process ends there (``os._exit``), with the command's
    status. Otherwise, or if a stream cannot be flushed (a closed pipe),
    Python exits as usual.
    """
    import atexit
    import os
    import threading

    args = build_parser().parse_args()
    code = _dispatch(args)
    children = sys.modules.get("multiprocessing")
    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    if (args.command in FAST_EXIT and run_handlers is not None
            and sys.getprofile() is None and sys.gettrace() is None  # a profiler's report
            and threading.active_count() == 1
            and not (children is not None and children.active_children())):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            raise SystemExit(code) from None
        run_handlers()
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    run()
