"""Shared pieces of the CLI commands: the study's parameters, loading, output, French text.

Every command of ``python -m diagnosis`` builds its :class:`~diagnosis.pipeline.DiagnosisParams`
and loads its data through these functions, so that the commands cannot drift apart.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from data_sources.workspace import Workspace
    from diagnosis.pipeline import Diagnosis, DiagnosisParams, Progress
    from diagnosis.schema import Territory
    from diagnosis.travel import Travel


def _travel_defaults(args: argparse.Namespace, params: DiagnosisParams,
                     ws: Workspace) -> DiagnosisParams:
    """``params`` with the mode and threshold the user left out, by the density rule.

    The one rule of the app, the CLI and the report
    (:func:`diagnosis.travel.default_travel_for`); the reason goes with the parameters.
    """
    from dataclasses import replace

    from diagnosis.travel import default_travel_for

    if not hasattr(args, "car_mode"):
        return params
    mode, minutes, why = default_travel_for(ws.own_communes, car_mode=args.car_mode,
                                            mode=args.mode, max_minutes=args.max_minutes)
    return replace(params, mode=mode, max_minutes=minutes, travel_reason=why)


def _clean(obj: Any) -> Any:
    """Make a summary JSON-safe (NaN → null)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _kind_fr(kind: str) -> str:
    """French word of a territory kind (« intercommunalité », never ``epci``)."""
    from diagnosis.comparison import KIND_LABELS

    return KIND_LABELS.get(str(kind), str(kind))


#: C0 and C1 control characters (ESC starts terminal sequences): never printed from data.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_text(value: object) -> str:
    r"""``value`` as text a terminal prints as is: control characters become ``?``.

    Names come from files and sources; an ESC in one would start a terminal sequence.

    Examples
    --------
    >>> terminal_text("Crèche \x1b[2J")
    'Crèche ?[2J'
    """
    return _CONTROL.sub("?", str(value))


def _esc(text: Any) -> str:
    r"""A data value printed through rich: markup shown as text, no control character.

    (Our consoles read no emoji code either: ``emoji=False``.)

    Examples
    --------
    >>> _esc("Crèche [/bold] \x1b[2J")
    'Crèche \\[/bold] ?[2J'
    """
    from rich.markup import escape

    return escape(terminal_text(text))


def _parse_weights(text: str | None, *, option: str = "--weights"
                   ) -> dict[str, float] | None:
    from diagnosis.errors import InputError

    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        try:
            out[key.strip()] = float(value.replace(" ", ""))
        except ValueError:
            sep = ""
        if not sep:
            raise InputError(f"{option} {text!r}: write factor=number pairs separated by "
                             "commas, e.g. births=0.4,poverty=0.2,single_parent=0.1,access=0.3",
                             argument=option, value=text,
                             fr=f"{option} « {text} » : écrivez des paires facteur=nombre "
                                "séparées par des virgules, par exemple poverty=1,"
                                "single_parent=0")
    return out


def _parse_points(points: Sequence[str]) -> tuple[tuple[float, float], ...]:
    """``--point lon,lat`` options as (longitude, latitude) pairs."""
    from diagnosis.errors import InputError

    out = []
    for text in points:
        try:
            lon, lat = (float(v) for v in text.split(","))
        except ValueError:
            raise InputError(f"--point {text!r}: give longitude,latitude in degrees, e.g. "
                             "--point -2.15,47.43", argument="--point", value=text,
                             hint="-2.15,47.43",
                             fr=f"--point « {text} » : écrivez longitude,latitude en degrés, "
                                "par exemple --point=-2.15,47.43") from None
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise InputError(f"--point {text!r} is not a longitude,latitude pair in degrees",
                             argument="--point", value=text, hint="-2.15,47.43",
                             fr=f"--point « {text} » : longitude entre -180 et 180 et latitude "
                                "entre -90 et 90 degrés attendues, par exemple "
                                "--point=-2.15,47.43")
        out.append((lon, lat))
    return tuple(out)


def _emit(args: argparse.Namespace, text: str, *, encoding: str = "utf-8") -> None:
    from diagnosis.exports import write_bytes_atomic

    if getattr(args, "out", None):
        write_bytes_atomic(args.out, text.encode(encoding), option="--out")
        print(f"Écrit : {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _records(df: Any, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    from diagnosis.exports import json_ready

    frame = df if columns is None else df.loc[:, [c for c in columns if c in df.columns]]
    frame = frame.drop(columns=[c for c in ("geometry",) if c in frame.columns])
    return [json_ready(r) for r in frame.to_dict("records")]


def _console() -> Any:
    from rich.console import Console

    return Console(width=130, emoji=False)


def _fr(value: Any, decimals: int = 0) -> str:
    from diagnosis.formatting import fr_number  # not through diagnosis.report (matplotlib)

    return fr_number(value, decimals=decimals)


class _Steps:
    """A rich progress bar on stderr, advanced by name."""

    def __init__(self, title: str, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  TimeElapsedColumn(), console=Console(stderr=True, emoji=False),
                                  transient=True)
        self._task = self._progress.add_task(title, total=total)

    def __enter__(self) -> _Steps:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def __call__(self, name: str) -> None:
        self._progress.update(self._task, description=name, advance=1)


def _params(args: argparse.Namespace) -> DiagnosisParams:
    """The :class:`~diagnosis.pipeline.DiagnosisParams` of a command's options."""
    from diagnosis.pipeline import DiagnosisParams

    kw: dict[str, Any] = {"territory": args.territory or getattr(args, "communes_file", "")
                          or ""}
    for opt in ("mode", "max_minutes", "threshold_m", "uptake_rate", "k", "objective",
                "site", "depart", "study_date"):
        value = getattr(args, opt, None)
        if value is not None:
            kw[opt] = value
    if getattr(args, "host_types", None):
        kw["host_types"] = tuple(args.host_types)
    if getattr(args, "types", None):
        kw["types"] = tuple(args.types)
    if getattr(args, "scenarios", None):
        kw["scenarios"] = tuple(args.scenarios)
    if getattr(args, "scenario_minutes", None):
        kw["scenario_minutes"] = tuple(args.scenario_minutes)
    if getattr(args, "weights", None):
        kw["weights"] = _parse_weights(args.weights)
    if getattr(args, "need_weights", None):
        kw["need_weights"] = _parse_weights(args.need_weights, option="--need-weights")
    for opt in ("facilitators", "groups_per_facilitator"):
        if getattr(args, opt, None) is not None:
            kw[opt] = getattr(args, opt)
    if getattr(args, "point", None):
        kw["user_sites"] = _parse_points(args.point)
    if getattr(args, "gtfs", None):
        kw["gtfs_files"] = tuple(str(g) for g in args.gtfs)
    if getattr(args, "osm_pbf", None):
        kw["osm_pbf"] = str(args.osm_pbf)
    if getattr(args, "no_analyses", False):
        kw["uptake_rate"] = None
    return DiagnosisParams(**kw)


def _territory(args: argparse.Namespace) -> Territory:
    """``--territory`` resolved, or the custom territory of ``--communes-file``."""
    from data_sources.cog import resolve, territory_from_communes_file
    from diagnosis.errors import InputError

    if getattr(args, "communes_file", None):
        return territory_from_communes_file(args.communes_file, name=args.territory)
    if not args.territory:
        raise InputError("--territory or --communes-file is required", argument="--territory",
                         fr="indiquez le territoire : --territory CODE_OU_NOM, ou "
                            "--communes-file FICHIER pour un territoire sur mesure")
    return resolve(args.territory)


def _workspace(args: argparse.Namespace) -> Workspace:
    """The territory of ``--territory`` with its data and the ``--facilities`` files."""
    from data_sources.workspace import load_workspace

    ws = load_workspace(_territory(args), facility_files=args.facilities,
                        insee_files=getattr(args, "insee", []),
                        iris_files=tuple(args.iris) if getattr(args, "iris", None) else None,
                        grid_file=getattr(args, "grid", None))
    for notice in ws.territory.notices:  # an old commune code resolved, never silently
        print(f"  {terminal_text(notice)}", file=sys.stderr)
    for report in ws.imports:  # what was accepted, flagged, rejected, and why: briefly
        for line in report.cli_lines():
            print(f"  {terminal_text(line)}", file=sys.stderr)
    return ws


def _travel(args: argparse.Namespace, ws: Workspace, params: DiagnosisParams) -> Travel:
    """How travel times are computed for ``--mode`` / ``--road-graph``."""
    from data_sources.workspace import load_travel

    return load_travel(ws, params.mode, road_graph_file=getattr(args, "road_graph", None),
                       gtfs_files=params.gtfs_files, osm_pbf=params.osm_pbf or None,
                       day=params.transit_day(), depart_s=params.depart_s,
                       max_walk_min=getattr(args, "max_walk_minutes", None),
                       max_transfers=getattr(args, "max_transfers", None))


def _diagnosis(args: argparse.Namespace, step: Progress | None = None) -> Diagnosis:
    """The whole diagnosis of ``--territory`` (report and export)."""
    from diagnosis.pipeline import PARTS, run_diagnosis
    from diagnosis.travel import Travel

    params = _params(args)
    ws = _workspace(args)
    params = _travel_defaults(args, params, ws)
    if args.no_analyses:
        diag = run_diagnosis(ws, params, travel=Travel(mode=params.engine_mode),
                             parts=("overview",), progress=step)
        from dataclasses import replace

        return replace(diag, notes=("Accessibilité, manques, implantation, partenaires et "
                                    "groupes de pairs non demandés (--no-analyses).",))
    return run_diagnosis(ws, params, travel=_travel(args, ws, params), parts=PARTS,
                         progress=step, compare=_compare_travels(args, ws, params))


def _compare_travels(args: argparse.Namespace, ws: Workspace,
                     params: DiagnosisParams) -> dict[str, Travel] | None:
    """Car, pushchair and transit engines for ``report --compare-modes`` (else None)."""
    if not getattr(args, "compare_modes", False):
        return None
    from dataclasses import replace

    return {label: _travel(args, ws, replace(params, mode=mode))
            for label, mode in (("voiture", "drive"), ("poussette", "poussette"),
                                ("transports en commun", "transit"))}
