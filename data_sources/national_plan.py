"""Wiring of the national plan shared by the app and the command line.

:func:`load_plan_inputs` loads the territory (France, a région, a département…) with
the user's INSEE files and facility files (:func:`data_sources.workspace.load_workspace`),
the existing Maisons (the shipped, non-exhaustive list and/or the federation's own
file) and the candidate host sites (loaded host structures plus every commune's town
hall from the shipped national geography); :func:`run_national_plan` then calls
:func:`diagnosis.plan.compute_national_plan`. One wiring, two front ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import pandas as pd

from data_sources.maisons import MaisonsLoad, load_federation_maisons, load_known_maisons
from data_sources.workspace import Workspace, load_travel, load_workspace
from diagnosis.errors import InputError
from diagnosis.plan import NationalPlan, compute_national_plan, plan_candidates
from diagnosis.settings import WGS84
from diagnosis.siting import HOST_TYPES
from diagnosis.travel import Travel

#: Travel modes of the plan: calibrated crow-fly driving estimate, or the road network.
PLAN_MODES: tuple[str, ...] = ("crow", "drive")


@dataclass(frozen=True)
class PlanInputs:
    """What a national plan is computed from."""

    workspace: Workspace
    maisons: gpd.GeoDataFrame
    maisons_loads: tuple[MaisonsLoad, ...]
    candidates: gpd.GeoDataFrame
    dep_names: dict[str, str]
    travel: Travel
    notices: tuple[str, ...]


def load_plan_inputs(
    territory: str = "FR",
    *,
    insee_files: Sequence[str | Path | tuple[str, bytes]] = (),
    facility_files: Sequence[str | Path | tuple[str, bytes]] = (),
    maisons_files: Sequence[str | Path | tuple[str, bytes]] = (),
    known_maisons: bool = True,
    mode: str = "crow",
    road_graph_file: str | Path | None = None,
    host_types: Sequence[str] = HOST_TYPES,
) -> PlanInputs:
    """Load everything a national plan needs (see the module docstring).

    Raises
    ------
    InputError
        Unknown mode, territory or unreadable file (French message).
    """
    if mode not in PLAN_MODES:
        raise InputError(f"mode={mode!r} is not a plan mode; use one of {PLAN_MODES}",
                         argument="--mode", value=mode, candidates=PLAN_MODES,
                         fr=f"--mode {mode} : choisissez crow (estimation à vol d'oiseau) "
                            "ou drive (réseau routier)")
    ws = load_workspace(territory, insee_files=insee_files, facility_files=facility_files)
    own = ws.own_communes
    loads: list[MaisonsLoad] = []
    if known_maisons:
        loads.append(load_known_maisons(_geography(ws)))
    for f in maisons_files:
        loads.append(load_federation_maisons(f, _geography(ws)))
    tables = [ld.maisons for ld in loads if len(ld.maisons)]
    from_files = ws.facilities.loc[ws.facilities["type"].eq("maison_1000_jours")]
    if len(from_files):
        tables.append(from_files)
    if tables:
        maisons = gpd.GeoDataFrame(pd.concat(tables, ignore_index=True), geometry="geometry",
                                   crs=WGS84)
        maisons = maisons.drop_duplicates("facility_id").reset_index(drop=True)
    else:
        maisons = gpd.GeoDataFrame({"facility_id": [], "name": [], "code_insee": []},
                                   geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)
    candidates = plan_candidates(ws.facilities, _with_town_halls(own), host_types=host_types)
    from data_sources.cog import load_cog

    deps = load_cog().departements
    dep_names = dict(zip(deps["code"].astype(str), deps["name"].astype(str), strict=True))
    notices = list(ws.notices)
    if known_maisons:
        notices.append("Maisons existantes : liste de départ livrée avec Maillage (15 Maisons "
                       "ou projets cités publiquement), non exhaustive ; donnez la liste de la "
                       "fédération pour un plan juste.")
    for ld in loads:
        notices.append(f"Maisons ({_source_label(ld.source)}) : {ld.summary_fr()}")
        notices.extend(ld.notes)
    travel = _travel(ws, mode, road_graph_file)
    if travel.note:
        notices.append(travel.note)
    return PlanInputs(ws, maisons, tuple(loads), candidates, dep_names, travel,
                      tuple(notices))


def run_national_plan(inputs: PlanInputs, *, new: int, max_minutes: float,
                      per_departement: int = 3, **options: Any) -> NationalPlan:
    """The national plan of loaded inputs (:func:`diagnosis.plan.compute_national_plan`)."""
    return compute_national_plan(inputs.workspace.own_communes, inputs.candidates,
                                 inputs.maisons, new=new, max_minutes=max_minutes,
                                 travel=inputs.travel, dep_names=inputs.dep_names,
                                 per_departement=per_departement, **options)


def _source_label(source: str) -> str:
    return "liste livrée" if source == "maisons_connues" else \
        f"fichier {source.removeprefix('user:')}"


def _geography(ws: Workspace) -> pd.DataFrame:
    """Communes with name, département and reference point, to place Maisons."""
    from data_sources.national import load_national_communes

    return cast("pd.DataFrame", load_national_communes())


def _with_town_halls(communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The communes with their town-hall points (from the shipped geography if absent)."""
    if {"townhall_lon", "townhall_lat"} <= set(communes.columns):
        return communes
    from data_sources.national import load_national_communes

    nat = load_national_communes(departements=sorted(set(communes["code_insee"].map(
        lambda c: c[:3] if c.startswith("97") else c[:2]))))
    halls = nat.set_index("code_insee")[["townhall_lon", "townhall_lat"]]
    out = communes.copy()
    out["townhall_lon"] = out["code_insee"].map(halls["townhall_lon"])
    out["townhall_lat"] = out["code_insee"].map(halls["townhall_lat"])
    return out


def _travel(ws: Workspace, mode: str, road_graph_file: str | Path | None) -> Travel:
    if mode == "crow":
        return Travel(mode="drive")
    if road_graph_file is None and len(ws.territory.departements) > 1:
        return Travel(mode="drive", note=(
            "Réseau routier non calculé sur plusieurs départements pour le plan : temps "
            "estimés à vol d'oiseau en voiture (donnez --road-graph pour un réseau)."))
    return load_travel(ws, "drive", road_graph_file=road_graph_file)
