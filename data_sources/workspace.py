"""The wiring shared by the app and the command line: a territory and its loaded data.

:func:`load_workspace` resolves the territory, loads communes and facilities (the
local store written by ``python -m data_sources fetch`` when present, the embedded
demo otherwise), imports the user's facility files, and lists the sources used and
the notices a user must see (demo, partial, estimated data).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from data_sources import demo
from data_sources.cog import resolve
from data_sources.registry import get_source
from diagnosis.errors import MissingDataError
from diagnosis.schema import Territory, validate_facilities
from diagnosis.settings import WGS84


@dataclass(frozen=True)
class Workspace:
    """A territory with everything loaded for it.

    Attributes
    ----------
    territory
        The resolved territory.
    communes
        Loaded communes (the territory's and their neighbours), needs and town halls.
    facilities
        Loaded facilities (all loaded départements, for cross-border proximity),
        including the user's imported files.
    sources
        Source records (key, title, url, licence, attribution, vintage, notes) for
        every source in use.
    imports
        One import report per user file (:class:`data_sources.user_file.ImportReport`).
    notices
        French notices to display: demo data, partial coverage, estimates.
    origin
        ``"demo"`` or ``"store"``.
    """

    territory: Territory
    communes: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    sources: tuple[dict[str, str], ...]
    imports: tuple[Any, ...]
    notices: tuple[str, ...]
    origin: str


def town_halls(communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Town hall points (``code_insee``, geometry) from the communes table."""
    pts = gpd.points_from_xy(communes["townhall_lon"], communes["townhall_lat"])
    return gpd.GeoDataFrame({"code_insee": communes["code_insee"].to_numpy()},
                            geometry=pts, crs=WGS84)


def _source_record(key: str) -> dict[str, str]:
    info = asdict(get_source(key))
    info.pop("columns", None)
    return {k: str(v) for k, v in info.items()}


def load_workspace(
    query: str | Territory,
    *,
    facility_files: Iterable[str | Path | tuple[str, bytes]] = (),
    extra_facilities: Sequence[gpd.GeoDataFrame] = (),
) -> Workspace:
    """Resolve a territory and load its data.

    Parameters
    ----------
    query
        Code or name of a commune, EPCI or département, or a resolved territory.
    facility_files
        User files to import (paths, or ``(file_name, bytes)`` pairs from an upload).
    extra_facilities
        Facility tables already in the schema (e.g. from the live loaders).

    Returns
    -------
    Workspace

    Raises
    ------
    diagnosis.errors.InputError
        Unknown territory (with the closest names) or unreadable user file.
    diagnosis.errors.MissingDataError
        The territory resolves but none of its communes has loaded data: the
        message says which data is missing and how to get it.
    """
    territory = query if isinstance(query, Territory) else resolve(query)
    communes = demo.load_demo_communes()
    loaded = set(communes["code_insee"])
    missing = [c for c in territory.communes if c not in loaded]
    if len(missing) == len(territory.communes):
        deps = ", ".join(territory.departements)
        raise MissingDataError(
            f"{territory.label} est bien un territoire français, mais ses données ne sont pas "
            f"chargées (département(s) {deps}) : contours des communes, données INSEE "
            "(naissances, population, revenus, familles) et structures de la petite enfance "
            "manquent. La démo embarquée couvre la Loire-Atlantique (44). Pour ce territoire : "
            f"`python -m data_sources fetch --territory {territory.code}` (avec internet), "
            "ou importez les fichiers INSEE et vos fichiers de structures."
        )
    facilities = demo.load_demo_facilities()
    keys = list(demo.DEMO_SOURCES)
    notices = [
        "Données de démonstration : Loire-Atlantique (44), INSEE édition 2025 (naissances "
        "2024, population 2022, revenus 2021), annuaire partiel des structures compilé à la "
        "main : l'offre affichée est très incomplète.",
        "Les structures de l'annuaire sont placées à la mairie de leur commune (position "
        "approximative) ; les distances sont à vol d'oiseau depuis la mairie.",
        "Les enfants de moins de 3 ans sont une estimation (3 × naissances 2024), pas un "
        "comptage.",
    ]
    unplaced = demo.demo_manifest().get("unplaced", [])
    if unplaced:
        names = "; ".join(f"{u['name']} ({u['reason']})" for u in unplaced)
        notices.append(f"{len(unplaced)} ligne(s) de l'annuaire non placée(s) : {names}.")
    if missing:
        notices.append(
            f"{len(missing)} commune(s) du territoire sans données chargées "
            f"({', '.join(missing[:10])}{'…' if len(missing) > 10 else ''}) : "
            "le diagnostic est partiel."
        )
    tables = [facilities]
    reports = []
    if facility_files:
        from data_sources.user_file import load_facility_file

        halls = town_halls(communes)
        for f in facility_files:
            if isinstance(f, tuple):
                result = load_facility_file(f[1], name=f[0], town_halls=halls)
            else:
                result = load_facility_file(f, town_halls=halls)
            reports.append(result.report)
            tables.append(result.facilities)
            keys.extend(sorted(set(result.facilities["source"])))
    tables.extend(extra_facilities)
    for t in extra_facilities:
        keys.extend(sorted(set(t["source"])))
    if len(tables) > 1:
        merged = pd.concat([t for t in tables if len(t)], ignore_index=True)
        facilities = validate_facilities(gpd.GeoDataFrame(merged, geometry="geometry", crs=WGS84),
                                         source="workspace")
    sources = tuple(_source_record(k) for k in dict.fromkeys(keys))
    return Workspace(territory, communes, facilities, sources, tuple(reports), tuple(notices),
                     origin="demo")
