"""Assemble a territory's data from the store's département snapshots (read only).

A département fetched or imported once (``python -m data_sources fetch --territory 26``
writes the store folder ``departement-26``) serves every commune, EPCI and custom
territory inside it; a territory across two départements (an EPCI such as Arche Agglo,
07 and 26) is assembled from both. The territory's own folder, when one was written
(``epci-200073096``), is read too; where two snapshots hold the same commune or
facility, the most recently written one is used. What is missing is named, in French,
with the command that loads it.

This module only reads the store (:func:`data_sources.store.read_store`); writing
stays in :mod:`data_sources.store`.

:func:`communes_from_insee` builds the communes table of the schema for a territory
from the shipped national geography and the INSEE files a user gives, without network.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from data_sources.cog import departement_name
from data_sources.national import load_national_communes, metric_crs
from data_sources.store import LedgerEntry, StoredTerritory, read_store
from diagnosis.errors import InputError, SourceError
from diagnosis.needs import compute_needs
from diagnosis.schema import NEEDS_COLUMNS, Territory, isin_codes
from diagnosis.settings import WGS84

if TYPE_CHECKING:  # the INSEE files' reader: only for a user's files (4 ms of import)
    from data_sources.insee_files import InseeImport


def fetch_command(code: str) -> str:
    """The command that loads a territory's public data into the store.

    Examples
    --------
    >>> fetch_command("26")
    'python -m data_sources fetch --territory 26'
    """
    return f"python -m data_sources fetch --territory {code}"


@dataclass(frozen=True)
class AssembledTerritory:
    """A territory's data, put together from the store.

    Attributes
    ----------
    territory
        The territory asked for.
    communes
        Communes of every snapshot used (the territory's and the rest of its
        départements, for neighbours across a border), one row per commune, with an
        ``in_territory`` column; ``None`` when no snapshot holds communes.
    facilities
        Facilities of every snapshot used, one row per ``facility_id``; ``None`` when
        no snapshot holds facilities.
    ledgers
        Store folder name (``departement-26``) -> its ledger rows.
    snapshots
        Snapshot folders read, most recent first.
    departements_loaded
        Départements of the territory for which a snapshot holds communes.
    communes_missing
        Communes of the territory that no snapshot holds.
    missing
        French messages: what is not loaded, each with the command that loads it.
    """

    territory: Territory
    communes: gpd.GeoDataFrame | None
    facilities: gpd.GeoDataFrame | None
    ledgers: Mapping[str, tuple[LedgerEntry, ...]] = field(default_factory=dict)
    snapshots: tuple[Path, ...] = ()
    departements_loaded: tuple[str, ...] = ()
    communes_missing: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether every commune of the territory and some facilities are loaded."""
        return not self.communes_missing and self.facilities is not None


def _dep_territory(code: str) -> Territory:
    return Territory("departement", code, departement_name(code) or code, ())


def assemble_territory(
    territory: Territory, *, root: str | Path | None = None
) -> AssembledTerritory:
    """Assemble a territory from the département snapshots of the store that cover it.

    Parameters
    ----------
    territory
        Any resolved territory (commune, EPCI, département, région, custom).
    root
        Store root (default :func:`data_sources.store.default_store_dir`).

    Returns
    -------
    AssembledTerritory
        Communes and facilities of the snapshots read; ``missing`` names each
        département (or layer) not loaded with ``python -m data_sources fetch
        --territory <département>``. A snapshot that cannot be read is reported in
        ``missing`` (with the store's message) and nothing else is dropped.

    Raises
    ------
    InputError
        The territory has no commune.
    """
    if not territory.communes:
        raise InputError(f"territory={territory.label!r} n'a aucune commune à assembler")
    wanted = set(territory.communes)
    candidates: list[Territory] = [_dep_territory(d) for d in territory.departements]
    if territory.kind != "departement":
        candidates.append(territory)
    stored: list[tuple[str, StoredTerritory]] = []
    problems: list[str] = []
    for cand in candidates:
        folder = f"{cand.kind}-{cand.code}"
        try:
            snap = read_store(cand, root=root)
        except SourceError as exc:
            problems.append(f"{folder} : {exc}")
            continue
        if snap is not None and snap.has_data:
            stored.append((folder, snap))
    # most recent first (written_at is to the second: the ledger file's time breaks ties)
    stored.sort(key=lambda fs: (fs[1].written_at, _mtime(fs[1].path / "ledger.json")),
                reverse=True)
    com_frames = [s.communes for _f, s in stored if s.communes is not None]
    fac_frames = [s.facilities for _f, s in stored if s.facilities is not None]
    communes = None
    if com_frames:
        communes = gpd.GeoDataFrame(pd.concat(com_frames, ignore_index=True), crs=WGS84)
        communes = communes.drop_duplicates("code_insee", keep="first").reset_index(drop=True)
        communes["in_territory"] = communes["code_insee"].isin(wanted)
    facilities = None
    if fac_frames:
        facilities = gpd.GeoDataFrame(pd.concat(fac_frames, ignore_index=True), crs=WGS84)
        facilities = facilities.drop_duplicates("facility_id", keep="first")
        facilities = facilities.reset_index(drop=True)
    have = set(communes["code_insee"]) if communes is not None else set()
    missing_codes = tuple(sorted(wanted - have))
    dep_of = _dep_map(territory)
    missing_deps = sorted({dep_of[c] for c in missing_codes})
    messages = list(problems)
    missing_per_dep = Counter(dep_of[c] for c in missing_codes)
    for dep in missing_deps:
        n = missing_per_dep[dep]
        name = departement_name(dep) or dep
        messages.append(
            f"Département {dep} ({name}) : {n} commune(s) du territoire sans données chargées "
            f"(besoins INSEE, contours) ; lancez « {fetch_command(dep)} » ou importez le "
            "fichier INSEE du comparateur de territoires du département."
        )
    fac_deps = {dep for f, s in stored if s.facilities is not None
                for dep in _folder_deps(f, territory)}
    for dep in sorted(set(territory.departements) - fac_deps):
        if dep in missing_deps:
            continue
        name = departement_name(dep) or dep
        messages.append(
            f"Département {dep} ({name}) : aucun équipement chargé ; lancez "
            f"« {fetch_command(dep)} » ou importez une liste d'équipements."
        )
    loaded = tuple(sorted({dep_of[c] for c in wanted & have}))
    return AssembledTerritory(
        territory=territory, communes=communes, facilities=facilities,
        ledgers={f: s.ledger for f, s in stored}, snapshots=tuple(s.path for _f, s in stored),
        departements_loaded=loaded, communes_missing=missing_codes, missing=tuple(messages),
    )


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _dep_map(territory: Territory) -> dict[str, str]:
    """Commune code -> département code, for the territory's communes."""
    deps = set(territory.departements)
    lengths = sorted({len(d) for d in deps}, reverse=True)  # the longest code first
    out = {}
    for c in territory.communes:
        out[c] = next((c[:n] for n in lengths if c[:n] in deps),
                      c[:3] if c.startswith("97") else c[:2])
    return out


def _folder_deps(folder: str, territory: Territory) -> Sequence[str]:
    kind, _, code = folder.partition("-")
    if kind == "departement":
        return (code,)
    return territory.departements  # the territory's own folder covers all of it


def communes_from_insee(territory: Territory, insee: InseeImport, *,
                        geography: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """The communes table of a territory from the national geography and INSEE files.

    Parameters
    ----------
    territory
        A resolved territory (its communes must all be current COG 2026 communes).
    insee
        What :func:`data_sources.insee_files.read_insee_files` gave for its communes.
    geography
        The shipped national communes of its départements when the caller already read
        them (:func:`data_sources.national.load_national_communes`).

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`~diagnosis.schema.NEEDS_COLUMNS` (derived ones by
        :func:`diagnosis.needs.compute_needs`; a missing indicator stays NaN), the
        ``<column>_year`` columns, ``under3_census``, ``townhall_lon``/``townhall_lat``
        (NaN where the town hall is unknown or outside the commune), ``point_kind``
        (``"mairie"`` or ``"centre de la commune"``),
        ``point_lon``/``point_lat`` and the polygons (EPSG:4326). ``area_km2`` falls
        back to the polygon's area (the shipped, simplified one) where the files have
        no ``SUPERF``.

    Raises
    ------
    InputError
        Communes of the territory absent from the national geography.
    """
    geo = geography if geography is not None else load_national_communes(
        departements=territory.departements)
    geo = geo.loc[isin_codes(geo["code_insee"], territory.communes)]
    absent = sorted(set(territory.communes) - set(geo["code_insee"]))
    if absent:
        raise InputError(
            f"{territory.label} : communes {absent[:10]} absentes de la géographie nationale "
            "livrée ; reconstruisez-la (python -m data_sources.national.build_national)"
        )
    base = insee.communes.loc[isin_codes(insee.communes["code_insee"], territory.communes)]
    merged = geo.merge(base, on="code_insee", how="left", validate="one_to_one")
    if "area_km2" not in merged or merged["area_km2"].isna().any():
        # the polygons are measured only when a file lacks some commune's area
        area = pd.Series(np.nan, index=merged.index)
        for dep, idx in merged.groupby("dep_code").groups.items():
            part = merged.loc[idx]
            area.loc[idx] = part.geometry.to_crs(metric_crs(str(dep))).area / 1e6
        if "area_km2" not in merged or merged["area_km2"].isna().all():
            merged["area_km2"] = area
        else:
            merged["area_km2"] = merged["area_km2"].fillna(area)
    needs = compute_needs(pd.DataFrame(merged.drop(columns="geometry")))
    out = gpd.GeoDataFrame(needs, geometry=merged.geometry.to_numpy(), crs=WGS84)
    first = [c for c in NEEDS_COLUMNS if c in out.columns]
    rest = [c for c in out.columns if c not in first and c != "geometry"]
    out = out[[*first, *rest, "geometry"]]
    return out.sort_values("code_insee").reset_index(drop=True)
