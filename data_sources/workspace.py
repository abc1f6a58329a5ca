"""Loading shared by the app and the command line: a territory, its data, travel times.

:func:`load_workspace` resolves the territory, loads communes and facilities (the
local store written by ``python -m data_sources fetch`` when present, the embedded
demo otherwise), imports the user's facility files, and lists the sources used and
the notices a user must see (demo, partial, estimated data).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data_sources import demo
from data_sources._geoparquet import read_parquet_frame
from data_sources.cog import departement_name, resolve
from data_sources.registry import covered_types, get_source
from data_sources.store import LedgerEntry, StoredTerritory, read_source_layer, read_store
from diagnosis.errors import InputError, MissingDataError, SourceError
from diagnosis.schema import (
    Territory,
    concat_validated,
    empty_facilities,
    isin_codes,
    validate_facilities,
)
from diagnosis.settings import WGS84

if TYPE_CHECKING:
    from diagnosis.travel import Travel

#: Key of the CAF coverage source (:data:`data_sources.caf.CAF`; written out so that
#: loading a workspace does not import the HTTP layer).
CAF_KEY = "caf_txcouv"


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
    iris, grid, qpv
        IRIS with population and children aged 0-2, Filosofi 200 m cells, QPV 2024
        (from the store when fetched, or the user's files), else ``None`` (not loaded).

    A workspace is the :class:`diagnosis.pipeline.DiagnosisInputs` of a diagnosis.
    """

    territory: Territory
    communes: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    sources: tuple[dict[str, str], ...]
    imports: tuple[Any, ...]
    notices: tuple[str, ...]
    origin: str
    iris: gpd.GeoDataFrame | None = None
    grid: gpd.GeoDataFrame | None = None
    qpv: gpd.GeoDataFrame | None = None

    @property
    def dep_name(self) -> str | None:
        """Name of the territory's first département (for the institutions), if any."""
        deps = self.territory.departements
        return departement_name(deps[0]) if deps else None

    @property
    def own_communes(self) -> gpd.GeoDataFrame:
        """The territory's own communes (without the neighbours loaded for context)."""
        return self.communes.loc[self._own_rows]

    @functools.cached_property
    def _own_rows(self) -> pd.Series:
        """Which rows of ``communes`` are the territory's (tested once per workspace)."""
        return isin_codes(self.communes["code_insee"], self.territory.communes)


def load_travel(ws: Workspace, mode: str, *, road_graph_file: str | Path | None = None,
                gtfs_files: Sequence[str | Path] = (), osm_pbf: str | Path | None = None,
                day: dt.date | None = None, depart_s: int = 34_200,
                max_walk_min: float | None = None, max_transfers: int | None = None
                ) -> Travel:
    """How travel times are computed for ``mode`` (drive, walk, crow, poussette, transit).

    The one place where a road graph is loaded (for the app and the command line): the
    OpenStreetMap graph around the territory's communes, or ``road_graph_file``; without
    one (offline, Overpass down, ``"crow"``), the labelled crow-fly estimate, and
    ``Travel.note`` says why: calibrated on a road graph where one exists (``"crow"``
    with ``road_graph_file``, or the territory's graph in the cache), else the model of
    the territory's density class (:func:`diagnosis.travel.crow_model_for`).
    ``poussette`` walks on the extract ``osm_pbf`` without steps (crow-fly at the
    pushchair's speed without one); ``transit`` needs the GTFS zips ``gtfs_files``, the
    extract ``osm_pbf`` and the study date ``day``.
    """
    from data_sources._cache_paths import has_cached_road_graph
    from diagnosis.travel import Travel, crow_model_for  # scipy: only to travel

    if mode == "transit":
        return _transit_travel(gtfs_files, osm_pbf, day=day, depart_s=depart_s,
                               max_walk_min=max_walk_min, max_transfers=max_transfers)
    if mode == "poussette":
        if osm_pbf:
            from data_sources.transit import load_poussette_graph

            return Travel(graph=load_poussette_graph(osm_pbf),
                          note="Réseau piéton OpenStreetMap sans escaliers (poussette).")
        return Travel(mode="poussette", note=(
            "Sans extrait OpenStreetMap (--osm-pbf), temps à pied avec une poussette "
            "estimés à vol d'oiseau."))
    engine_mode = "drive" if mode == "crow" else mode
    if mode == "crow" and road_graph_file is None and not has_cached_road_graph(engine_mode):
        # crow-fly with no road graph to calibrate on: the HTTP and OSM layers (requests,
        # requests-cache: 0.3-0.4 s) are not even imported
        model, why = crow_model_for(ws.own_communes, engine_mode, graph=None)
        return Travel(mode=engine_mode, note=why, crow_model=model)
    from data_sources.osm import cached_road_graph, road_graph_for

    graph, note = road_graph_for(ws.own_communes, mode=mode, road_graph_file=road_graph_file)
    if graph is not None:
        return Travel(graph=graph, mode=engine_mode, note=note)
    # crow-fly: calibrated on a road graph where one exists (the file named, or the
    # territory's graph in the cache), else the model of the territory's density class
    known = (road_graph_for(ws.own_communes, mode=engine_mode,
                            road_graph_file=road_graph_file)[0]
             if mode == "crow" and road_graph_file is not None
             else cached_road_graph(ws.own_communes, mode=engine_mode))
    model, why = crow_model_for(ws.own_communes, engine_mode, graph=known)
    return Travel(mode=engine_mode, note=" ".join(t for t in (note, why) if t),
                  crow_model=model)


def _transit_travel(gtfs_files: Sequence[str | Path], osm_pbf: str | Path | None, *,
                    day: dt.date | None, depart_s: int, max_walk_min: float | None,
                    max_transfers: int | None) -> Travel:
    """The transit engine of the user's GTFS zips and street extract."""
    from data_sources.transit import prepare_transit
    from diagnosis.study_calendar import french_date, french_hour, next_school_tuesday
    from diagnosis.travel import Travel
    from diagnosis.travel.transit import DEFAULT_MAX_TRANSFERS, DEFAULT_MAX_WALK_MIN

    if not gtfs_files or not osm_pbf:
        raise InputError(
            "mode transit without timetables or street extract",
            argument="--gtfs", value=list(map(str, gtfs_files)),
            fr="le mode transports en commun (transit) a besoin des horaires GTFS du "
               "territoire (--gtfs FICHIER.zip, sur transport.data.gouv.fr) et d'un extrait "
               "OpenStreetMap des rues (--osm-pbf FICHIER.osm.pbf, par exemple l'extrait "
               "régional de Geofabrik découpé au territoire)")
    study_day = day or next_school_tuesday(dt.date.today())
    inputs = prepare_transit(osm_pbf, list(gtfs_files), day=study_day, depart_s=depart_s,
                             max_walk_min=max_walk_min or DEFAULT_MAX_WALK_MIN,
                             max_transfers=DEFAULT_MAX_TRANSFERS if max_transfers is None
                             else max_transfers)
    nets = ", ".join(f"{f.feed.name} ({f.record()['vintage']})" for f in inputs.feeds)
    note = (f"Transports en commun : réseaux {nets} ; horaires du {french_date(study_day)}, "
            f"départ à {french_hour(depart_s)}.")
    if inputs.notices:
        note += " " + " ".join(inputs.notices)
    return Travel(backend=inputs.engine, note=note, sources=tuple(inputs.records()))


def town_halls(communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Reference point of each commune (``code_insee``, geometry).

    Its town hall, else a point inside the commune (:func:`diagnosis.overview.origin_points`).
    """
    from diagnosis.overview import origin_points

    return gpd.GeoDataFrame({"code_insee": communes["code_insee"].to_numpy()},
                            geometry=origin_points(communes).to_numpy(), crs=WGS84)


def import_town_halls(communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Reference points a user's facility file is checked and placed against.

    Every commune of France (the shipped geography), the territory's own points taking
    precedence for its communes: a row of the file gets the same verdict and position
    whatever territory is studied, so a département's figures equal the same communes'
    in a national run (one study, one truth).
    """
    own = town_halls(communes)
    national = _national_town_halls()
    rest = national.loc[~isin_codes(national["code_insee"], own["code_insee"].tolist())]
    return gpd.GeoDataFrame(pd.concat([own, rest], ignore_index=True), crs=WGS84)


@functools.lru_cache(maxsize=1)
def _national_town_halls() -> gpd.GeoDataFrame:
    """:func:`town_halls` of every commune of France, without reading every polygon.

    The shipped geography gives a reference point for almost every commune: only its
    point columns are read, and the polygons only of the few communes without a point
    (the same points as ``town_halls(load_national_communes())``, in the same order);
    the points are computed once per geography and kept in the cache folder
    (:mod:`data_sources._halls_cache`).
    """
    from data_sources._halls_cache import read_points, write_points
    from data_sources.national import COMMUNES_FILE

    stored = read_points(COMMUNES_FILE)  # computed once per geography (cache folder)
    if stored is None:
        stored = _national_points(COMMUNES_FILE)
        write_points(COMMUNES_FILE, *stored)
    codes, lon, lat = stored
    located = ~np.isnan(lon) & ~np.isnan(lat)
    points = np.full(len(codes), None, dtype=object)
    points[located] = shapely.points(lon[located], lat[located])
    return gpd.GeoDataFrame({"code_insee": codes}, geometry=points, crs=WGS84)


def _national_points(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Code, longitude and latitude of the town hall of every commune of ``path`` (NaN: none).

    The point columns of the geography; for a commune without them, the point inside its
    polygon that :func:`town_halls` gives.
    """
    from data_sources.national import load_national_communes

    table = read_parquet_frame(path, columns=["code_insee", "point_lon", "point_lat"])
    lon = table["point_lon"].to_numpy(dtype=float, na_value=np.nan)
    lat = table["point_lat"].to_numpy(dtype=float, na_value=np.nan)
    codes = table["code_insee"].to_numpy(dtype=object)
    located = ~np.isnan(lon) & ~np.isnan(lat)
    if not located.all():  # a point inside the polygon, as town_halls gives it
        missing = codes[~located].tolist()
        deps = sorted({c[:3] if c.startswith("97") else c[:2] for c in missing})
        rest = load_national_communes(departements=deps)
        rest = rest.loc[isin_codes(rest["code_insee"], missing)]
        inside = dict(zip(rest["code_insee"], town_halls(rest).geometry, strict=True))
        for i in np.flatnonzero(~located):
            point = inside.get(codes[i])
            if point is not None and not point.is_empty:
                lon[i], lat[i] = point.x, point.y
    return codes, lon, lat


def _source_record(key: str) -> dict[str, str]:
    info = asdict(get_source(key))
    info.pop("columns", None)
    record = {k: str(v) for k, v in info.items()}
    record["covers"] = ",".join(covered_types(key))
    return record


def load_workspace(
    query: str | Territory,
    *,
    facility_files: Iterable[str | Path | tuple[str, bytes]] = (),
    insee_files: Sequence[str | Path | tuple[str, bytes]] = (),
    iris_files: tuple[str | Path, str | Path] | None = None,
    grid_file: str | Path | None = None,
    extra_facilities: Sequence[gpd.GeoDataFrame] = (),
    use_store: bool = True,
) -> Workspace:
    """Resolve a territory and load its data.

    The local store written by ``python -m data_sources fetch`` is used when it holds
    data for the territory (``origin="store"``, sources and vintages from its ledger,
    a notice per source whose last update failed); the embedded demo otherwise
    (``origin="demo"``).

    Parameters
    ----------
    query
        Code or name of a commune, EPCI or département, or a resolved territory.
    facility_files
        User files to import (paths, or ``(file_name, bytes)`` pairs from an upload).
    insee_files
        INSEE *comparateur de territoires* and/or *dossier complet* CSVs the user
        downloaded (:func:`data_sources.insee_files.read_insee_files`): with the shipped
        national geography, any French territory is diagnosed offline; over the demo or
        the store, their figures replace the loaded ones (a notice says so).
    iris_files
        ``(contours, census)``: the IRIS contours (IGN Contours IRIS, GeoPackage or
        GeoJSON) and INSEE's census base by IRIS (CSV or its zip): demand below the
        commune (:mod:`data_sources.iris`).
    grid_file
        INSEE Filosofi 200 m cells (GeoPackage, CSV or zip) of the territory: demand on
        the grid (:mod:`data_sources.filosofi`).
    extra_facilities
        Facility tables already in the schema (e.g. from the live loaders).
    use_store
        Read the local store (:mod:`data_sources.store`); ``False`` forces the demo.

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
    stored = None
    store_notices: list[str] = []
    if use_store:
        try:
            stored = read_store(territory)
        except SourceError as exc:
            store_notices.append(
                f"Le stock local de ce territoire est illisible ({exc}) : il est ignoré."
            )
    if use_store and (stored is None or not stored.has_data):
        stored, assembled_notices = _assembled_store(territory)
        store_notices += assembled_notices
    if stored is not None and stored.has_data:
        communes, facilities, records, notices, origin = _from_store(territory, stored)
    elif insee_files and not _in_demo(territory):
        communes, facilities, records, notices, origin = _from_insee_files(territory,
                                                                           insee_files)
        insee_files = ()
    else:
        communes, facilities, records, notices = _from_demo(territory)
        origin = "demo"
    if insee_files:  # the user's INSEE files over the demo or the store
        communes, more_records, more = _with_insee_files(territory, communes, insee_files)
        records += more_records
        notices += more
    notices = store_notices + list(territory.notices) + notices
    keys: list[str] = []
    tables = [facilities]
    reports = []
    if facility_files:
        from data_sources.user_file import load_facility_file

        halls = import_town_halls(communes)
        seen: set[str] = set(facilities["facility_id"].to_numpy(dtype=object).tolist())
        for i, f in enumerate(facility_files, start=1):
            if isinstance(f, tuple):
                result = load_facility_file(f[1], name=f[0], town_halls=halls)
            else:
                result = load_facility_file(f, town_halls=halls)
            reports.append(result.report)
            # a flagged duplicate is reported, and counted once everywhere
            kept = result.facilities.loc[~isin_codes(result.facilities["facility_id"],
                                                     set(result.report.duplicate_ids))]
            tables.append(_distinct_ids(kept, seen, i))
            keys.extend(sorted(set(result.facilities["source"])))
    # the loaders and the importer validated their tables (each row checked once); a table
    # handed in from outside may have been built or edited since: it is checked here
    tables.extend(validate_facilities(t, source=f"extra_facilities[{k}]")
                  for k, t in enumerate(extra_facilities))
    for t in extra_facilities:
        keys.extend(sorted(set(t["source"])))
    if len(tables) > 1:
        facilities = concat_validated(tables, source="workspace")
    iris = grid = qpv = None
    if stored is not None and stored.has_data and origin == "store":
        iris, grid, qpv, more_records = _context_from_store(stored, communes)
        records += more_records
    if qpv is None:  # offline fallback: the shipped list of QPV per commune
        from data_sources.qpv import QPV, qpv_from_list

        qpv = qpv_from_list(territory.communes)
        qpv.attrs["basis"] = "liste communale"
        keys.append(QPV.key)
    if iris_files is not None:
        from data_sources.iris import load_iris_population

        parts = [load_iris_population(dep, contours_path=iris_files[0],
                                      census_path=iris_files[1])
                 for dep in territory.departements]
        iris = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=parts[0].crs)
        iris = iris.loc[iris["code_insee"].isin(set(communes["code_insee"]))]
        notices = [*notices, *(n for p in parts for n in p.attrs.get("notes", ()))]
        keys.extend(["ign_contours_iris", "insee_rp_iris_population"])
    if grid_file is not None:
        from data_sources.filosofi import load_filosofi

        grid = load_filosofi(communes, path=grid_file)
        keys.append("insee_filosofi_2019_200m")
    known = {r["key"] for r in records}
    sources = tuple(records) + tuple(
        _source_record(k) for k in dict.fromkeys(keys) if k not in known)
    return Workspace(territory, communes, facilities, sources, tuple(reports), tuple(notices),
                     origin=origin, iris=iris, grid=grid, qpv=qpv)


#: Store keys of the context layers: IRIS contours, IRIS census, 200 m cells, QPV.
_IRIS_CONTOURS_KEY = "ign_contours_iris"
_IRIS_CENSUS_KEY = "insee_rp_iris_population"
_GRID_KEY = "insee_filosofi_2021_200m"
_QPV_KEY = "anct_qpv_2024"


def _context_from_store(
    stored: StoredTerritory, communes: gpd.GeoDataFrame
) -> tuple[gpd.GeoDataFrame | None, gpd.GeoDataFrame | None, gpd.GeoDataFrame | None,
           list[dict[str, str]]]:
    """The IRIS (contours joined with the census), 200 m cells and QPV a fetch stored."""
    from data_sources.iris import join_iris

    def layer(key: str) -> pd.DataFrame | None:
        try:
            return read_source_layer(stored, key)
        except SourceError:
            return None

    used: list[str] = []
    iris = grid = qpv = None
    contours, census = layer(_IRIS_CONTOURS_KEY), layer(_IRIS_CENSUS_KEY)
    if contours is not None and len(contours) and census is not None and len(census):
        iris = join_iris(gpd.GeoDataFrame(contours, geometry="geometry", crs=WGS84),
                         pd.DataFrame(census))
        iris = iris.loc[iris["code_insee"].isin(set(communes["code_insee"]))]
        used += [_IRIS_CONTOURS_KEY, _IRIS_CENSUS_KEY]
    cells = layer(_GRID_KEY)
    if cells is not None and len(cells):
        grid = gpd.GeoDataFrame(cells, geometry="geometry", crs=WGS84)
        used.append(_GRID_KEY)
    found = layer(_QPV_KEY)
    if found is not None:
        qpv = gpd.GeoDataFrame(found, geometry="geometry", crs=WGS84)
        qpv.attrs["basis"] = str(found["basis"].iloc[0]) if len(found) else "contours"
        used.append(_QPV_KEY)
    records = [_ledger_record(e) for e in stored.ledger if e.source in used and e.has_data]
    return iris, grid, qpv, records


def _assembled_store(territory: Territory) -> tuple[StoredTerritory | None, list[str]]:
    """The territory from the store's département snapshots (one fetch serves them all).

    A commune, EPCI or custom territory inside a fetched département, an EPCI across two
    fetched départements: assembled by :func:`data_sources.assemble.assemble_territory`;
    what is missing is named with the command that loads it.
    """
    from data_sources.assemble import assemble_territory

    try:
        got = assemble_territory(territory)
    except (SourceError, MissingDataError):
        return None, []
    com = got.communes
    if com is None or not com["code_insee"].isin(territory.communes).any():
        return None, []
    ledger = tuple({e.source: e for rows in got.ledgers.values() for e in rows}.values())
    stored = StoredTerritory(path=got.snapshots[0] if got.snapshots else Path("."),
                             territory={"kind": territory.kind, "code": territory.code,
                                        "name": territory.name},
                             written_at=max((e.fetched_at for e in ledger), default=""),
                             communes=com.drop(columns=["in_territory"], errors="ignore"),
                             facilities=got.facilities, ledger=ledger)
    notices = [f"Données assemblées depuis le stock local des départements "
               f"{', '.join(got.departements_loaded)}.", *got.missing]
    return stored, notices


def _in_demo(territory: Territory) -> bool:
    """Whether every commune of the territory is in the embedded demo (Loire-Atlantique)."""
    codes = demo.demo_commune_codes()
    return all(c in codes for c in territory.communes)


def _context_territory(territory: Territory) -> tuple[Territory, gpd.GeoDataFrame]:
    """The territory's départements as one territory (neighbours across the border).

    INSEE files and the national geography are read for all of them; the geography read
    is returned with it, for the communes table.
    """
    from data_sources.national import load_national_communes

    deps = tuple(territory.departements)
    geo = load_national_communes(departements=deps)
    codes = tuple(dict.fromkeys([*territory.communes, *geo["code_insee"].astype(str)]))
    return Territory("custom", "contexte", f"Départements {', '.join(deps)}", codes, deps), geo


def _insee_notices(imp: Any, territory: Territory | None = None) -> list[str]:
    out = [f"Fichier INSEE lu : {line}" for line in imp.files]
    if territory is None:
        out += list(imp.notices)
    else:  # the files were read for the départements: speak of the territory's communes
        out += [n for n in imp.notices if "commune(s) du territoire absente(s)" not in n]
        own = set(territory.communes)  # once: France has 34,875 communes
        mine = [c for c in imp.communes_missing if c in own]
        if mine:
            out.append(f"{len(mine)} commune(s) du territoire absente(s) des fichiers INSEE "
                       f"({', '.join(mine[:10])}{'…' if len(mine) > 10 else ''}) : leurs "
                       "indicateurs restent inconnus.")
    if imp.missing_indicators:
        out.append("Indicateurs absents des fichiers INSEE donnés (non connus, pas nuls) : "
                   + ", ".join(imp.missing_indicators) + ".")
    return out


def _from_insee_files(
    territory: Territory, files: Sequence[str | Path | tuple[str, bytes]]
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, list[dict[str, str]], list[str], str]:
    """Communes from the shipped national geography and the user's INSEE files."""
    from data_sources.assemble import communes_from_insee
    from data_sources.insee_files import read_insee_files, source_fields

    context, geography = _context_territory(territory)
    imp = read_insee_files(list(files), territory_codes=context.communes)
    communes = communes_from_insee(context, imp, geography=geography)  # read once
    unplaced = communes.geometry.isna() | communes.geometry.is_empty
    if "point_lon" in communes:
        unplaced &= communes["point_lon"].isna()
    lost = communes.loc[unplaced, "code_insee"].tolist()
    communes = communes.loc[~unplaced].reset_index(drop=True)
    known = communes.loc[isin_codes(communes["code_insee"], territory.communes)]
    if "births_2024" not in known or known["births_2024"].isna().all():
        raise MissingDataError(
            f"{territory.label} : les fichiers INSEE donnés n'ont les naissances d'aucune "
            "commune du territoire (colonne NAISDxx) ; donnez le fichier du « comparateur "
            "de territoires » de son département.",
            argument="--insee", value=[str(f if not isinstance(f, tuple) else f[0])
                                       for f in files])
    notices = [
        "Contours des communes : géographie nationale livrée avec Maillage (IGN, INSEE — "
        "Admin Express généralisé, COG 2026) ; besoins : vos fichiers INSEE.",
        *_insee_notices(imp, territory),
    ]
    own = set(territory.communes)
    mine = [c for c in lost if c in own]
    if mine:
        notices.append(f"{len(mine)} commune(s) sans contour ni point dans la géographie "
                       f"livrée ({', '.join(mine[:10])}) : elles ne sont pas placées et "
                       "restent hors du diagnostic.")
    if "under3_census" not in communes or communes["under3_census"].isna().all():
        notices.append("Les enfants de moins de 3 ans sont une estimation (3 × naissances), "
                       "pas un comptage.")
    if (communes.get("point_kind", pd.Series(dtype=str)) == "centre de la commune").any():
        notices.append("Certaines communes sont représentées par un point à l'intérieur de la "
                       "commune (« centre de la commune »), leur mairie connue étant mal placée "
                       "ou inconnue.")
    notices.append("Aucune structure n'est chargée pour ce territoire hors de vos fichiers : "
                   "importez-les (--facilities) ou mettez à jour les sources.")
    records = [_source_record(k) for k in ("cog2026", "ign_admin_express_france")]
    records.append({**_source_record("insee_comparateur"), **source_fields(imp)})
    return communes, empty_facilities(), records, notices, "fichiers"


def _with_insee_files(territory: Territory, communes: gpd.GeoDataFrame,
                      files: Sequence[str | Path | tuple[str, bytes]]
                      ) -> tuple[gpd.GeoDataFrame, list[dict[str, str]], list[str]]:
    """The loaded communes with the needs of the user's INSEE files where they give them."""
    from data_sources.insee_files import read_insee_files, source_fields
    from diagnosis.needs import compute_needs

    imp = read_insee_files(list(files), territory_codes=list(communes["code_insee"]))
    new = imp.communes.set_index("code_insee")
    out = communes.copy()
    idx = out["code_insee"].map(lambda c: c in new.index)
    replaced = 0
    for col in new.columns:
        vals = out.loc[idx, "code_insee"].map(new[col])
        if col not in out:
            out[col] = pd.Series(pd.NA if str(new[col].dtype) == "Int64" else float("nan"),
                                 index=out.index, dtype=new[col].dtype)
        has = vals.notna()
        replaced = max(replaced, int(has.sum()))
        out.loc[vals.index[has], col] = vals[has]
    base = pd.DataFrame(out.drop(columns=out.geometry.name))
    needs = compute_needs(base)
    out = gpd.GeoDataFrame(needs, geometry=out.geometry.to_numpy(), crs=out.crs)
    notices = [f"Vos fichiers INSEE remplacent les chiffres chargés pour {replaced} commune(s) "
               "(la valeur la plus récente de vos fichiers l'emporte).", *_insee_notices(imp)]
    return out, [{**_source_record("insee_comparateur"), **source_fields(imp)}], notices


def _distinct_ids(fac: gpd.GeoDataFrame, seen: set[str], nth: int) -> gpd.GeoDataFrame:
    """Keep facility ids unique across imported files (two files may share a name).

    A file whose ids collide with ids already loaded gets them suffixed with its rank
    among the imported files (``user:structures:3`` -> ``user:structures#2:3``).
    """
    ids = fac["facility_id"].to_numpy(dtype=object)  # validated: text, read as Python text
    if len(fac) and not seen.isdisjoint(ids.tolist()):
        ids = pd.Series(ids, dtype=object).str.replace(r"^(user:[^:]*)", rf"\g<1>#{nth}",
                                                       regex=True).to_numpy(dtype=object)
        fac = fac.assign(facility_id=ids)
    seen.update(ids.tolist())
    return fac


def _missing_data_error(territory: Territory, failed: Sequence[str] = ()) -> MissingDataError:
    deps = ", ".join(territory.departements)
    tried = (f" La dernière mise à jour a échoué pour : {', '.join(failed)}."
             if failed else "")
    return MissingDataError(
        f"{territory.label} est bien un territoire français, mais ses données ne sont pas "
        f"chargées (département(s) {deps}) : les contours des communes sont livrés avec "
        "Maillage, il manque les données INSEE (naissances, population, revenus, familles) "
        f"et les structures de la petite enfance.{tried} Sans internet : donnez le fichier "
        "du « comparateur de territoires » de l'INSEE de son département (option "
        "`--insee FICHIER.csv`, ou « Fichiers INSEE » dans l'application) et vos fichiers "
        "de structures (`--facilities`). Avec internet : "
        f"`python -m data_sources fetch --territory {territory.code}`.",
        argument="--insee", hint="--insee comparateur_26.csv",
        fr=f"{territory.label} est bien un territoire français, mais ses données ne sont pas "
           f"chargées (département(s) {deps}).{tried} Sans internet : donnez le fichier du "
           "« comparateur de territoires » de l'INSEE de son département (--insee "
           "FICHIER.csv) et vos fichiers de structures (--facilities FICHIER). Avec "
           "internet : python -m data_sources fetch --territory "
           f"{territory.code if territory.kind != 'custom' else ' '.join(territory.departements)}."
    )


def _partial_notice(missing: Sequence[str]) -> str:
    return (
        f"{len(missing)} commune(s) du territoire sans données chargées "
        f"({', '.join(missing[:10])}{'…' if len(missing) > 10 else ''}) : "
        "le diagnostic est partiel."
    )


def _from_demo(
    territory: Territory,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, list[dict[str, str]], list[str]]:
    """Communes, facilities, source records and notices of the embedded demo."""
    communes = demo.load_demo_communes()
    loaded = set(communes["code_insee"])
    missing = [c for c in territory.communes if c not in loaded]
    if len(missing) == len(territory.communes):
        raise _missing_data_error(territory)
    facilities = demo.load_demo_facilities()
    notices = list(_DEMO_NOTICES)
    unplaced = demo.demo_manifest().get("unplaced", [])
    if unplaced:
        names = "; ".join(f"{u['name']} ({u['reason']})" for u in unplaced)
        notices.append(f"{len(unplaced)} ligne(s) de l'annuaire non placée(s) : {names}.")
    if missing:
        notices.append(_partial_notice(missing))
    return communes, facilities, [_source_record(k) for k in demo.DEMO_SOURCES], notices


_DEMO_NOTICES = (
    "Données de démonstration : Loire-Atlantique (44), INSEE édition 2025 (naissances "
    "2024, population 2022, revenus 2021), annuaire partiel des structures compilé à la "
    "main : l'offre affichée est très incomplète.",
    "Les structures de l'annuaire sont placées à la mairie de leur commune (position "
    "approximative) ; les distances sont à vol d'oiseau depuis la mairie.",
    "Les enfants de moins de 3 ans sont une estimation (3 × naissances 2024), pas un "
    "comptage.",
)
#: Ledger sources whose data make the communes layer, and the facility layer.
_COMMUNE_SOURCES = ("geo_api_communes", "insee_melodi")
_FACILITY_SOURCES = ("finess", "bpe", "osm", "data_inclusion", "ban")


def _ledger_record(entry: LedgerEntry) -> dict[str, str]:
    rec = _source_record(entry.source)
    if entry.source == "bpe" and entry.note:
        # a TYPEQU code missing from the edition read: its type is unknown, not « aucune »
        from data_sources.bpe import uncovered_types

        lost = uncovered_types(entry.note)
        rec["covers"] = ",".join(t for t in rec["covers"].split(",") if t and t not in lost)
    date = entry.fetched_at[:10]
    vintage = entry.vintage or rec["vintage"]
    rec["vintage"] = f"{vintage} (téléchargé le {date})" if date else vintage
    rec["fetched_at"] = entry.fetched_at
    return rec


def _from_store(
    territory: Territory, stored: StoredTerritory
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, list[dict[str, str]], list[str], str]:
    """Communes, facilities, source records, notices and origin from the local store."""
    failed = [e for e in stored.ledger if e.status in {"failed", "missing-offline", "timeout"}]
    in_demo = demo.demo_commune_codes()
    covered = any(c in in_demo for c in territory.communes)
    keys: list[str] = ["cog2026"]
    used: list[str] = []
    notices = [
        f"Données téléchargées depuis les sources publiques et gardées dans le stock local "
        f"(mise à jour du {stored.written_at[:10]}) ; le tableau des sources donne le "
        "millésime et la date de chaque source."
    ]
    if stored.communes is not None:
        communes = stored.communes
        used.extend(_COMMUNE_SOURCES)
        notices.append(
            "Les enfants de moins de 3 ans sont une estimation (3 × naissances 2024), pas "
            "un comptage ; les valeurs non publiées par l'INSEE restent vides."
        )
    elif covered:
        communes = demo.load_demo_communes()
        keys.extend(k for k in demo.DEMO_SOURCES if k != "demo_directory")
        notices.append(
            "Contours et besoins des communes : données de démonstration (Loire-Atlantique, "
            "INSEE édition 2025), faute de mise à jour réussie des sources INSEE ; les "
            "enfants de moins de 3 ans sont une estimation (3 × naissances 2024)."
        )
    else:
        raise _missing_data_error(territory, [e.title for e in failed])
    loaded = set(communes["code_insee"])
    missing = [c for c in territory.communes if c not in loaded]
    if len(missing) == len(territory.communes):
        raise _missing_data_error(territory, [e.title for e in failed])
    if missing:
        notices.append(_partial_notice(missing))
    if stored.facilities is not None:
        facilities = stored.facilities
        used.extend(_FACILITY_SOURCES)
        halls = demo.load_demo_facilities()
        halls = halls.loc[halls["type"].eq("mairie")
                          & halls["code_insee"].isin(territory.communes)]
        if len(halls):
            # the sources' own town halls (annuaire, BPE, OSM) and the demo's: one each
            from data_sources.merge import merge_facilities

            facilities = merge_facilities([facilities, halls])[0]
            keys.append("annuaire_mairies")
        notices.append(
            "Structures : celles des sources téléchargées pour les communes du territoire "
            "seulement (une structure voisine, hors du territoire, n'est pas comptée) ; "
            "chacune est placée selon sa source (adresse, rue ou mairie) et les distances "
            "sont à vol d'oiseau depuis la mairie de chaque commune."
        )
    else:
        facilities = empty_facilities()
        notices.append(
            "Aucune structure n'a pu être téléchargée : importez vos fichiers de structures "
            "ou relancez la mise à jour."
        )
    for e in failed:
        if e.source in used or e.source in _COMMUNE_SOURCES:
            notices.append(f"Mise à jour en échec : {e.error}")
    for e in stored.ledger:  # what was stored but is known to be incomplete or kept back
        if e.status == "partial" and e.has_data:
            notices.append(f"Données partielles — {e.title} : {e.note}")
        elif e.status == "suspect" and e.has_data:
            notices.append(f"Dernière mise à jour refusée — {e.title} : {e.note}")
    records = [_source_record(k) for k in keys]
    coverage = read_source_layer(stored, CAF_KEY)
    if coverage is not None and len(coverage):
        communes = with_caf_coverage(communes, coverage)
        used.append(CAF_KEY)
    records += [_ledger_record(e) for e in stored.ledger
                if e.source in used and e.has_data]
    return communes, facilities, records, notices, "store"


def with_caf_coverage(communes: gpd.GeoDataFrame, coverage: pd.DataFrame) -> gpd.GeoDataFrame:
    """Add the CNAF childcare coverage rates (latest year) to the communes.

    ``caf_coverage_rate`` is the commune's own rate (published for communes of more than
    10,000 inhabitants only: NaN elsewhere, never 0), ``caf_coverage_rate_epci`` the rate
    of the commune's EPCI, ``caf_coverage_rate_dep`` of its département and
    ``caf_coverage_rate_france`` of France (when those levels were loaded),
    ``caf_coverage_year`` the year of the rates used.

    Parameters
    ----------
    communes
        Communes with ``code_insee`` (and ``epci_code`` for the EPCI rate).
    coverage
        :func:`data_sources.caf.load_coverage` output: ``level``, ``code``, ``year``,
        ``rate``.
    """
    out = communes.copy()
    cov = coverage.dropna(subset=["rate"])
    cols = ("caf_coverage_rate", "caf_coverage_rate_epci", "caf_coverage_rate_dep",
            "caf_coverage_rate_france", "caf_coverage_year")
    for col in cols:
        out[col] = float("nan")
    if cov.empty:
        return out
    year = int(cov["year"].max())
    latest = cov.loc[cov["year"] == year]
    com = latest.loc[latest["level"] == "commune"].drop_duplicates("code", keep="last")
    out["caf_coverage_rate"] = out["code_insee"].astype(str).map(
        com.set_index("code")["rate"]).astype(float)
    if "epci_code" in out.columns:
        epci = latest.loc[latest["level"] == "epci"].drop_duplicates("code", keep="last")
        out["caf_coverage_rate_epci"] = out["epci_code"].astype(str).map(
            epci.set_index("code")["rate"]).astype(float)
    if "dep_code" in out.columns:
        dep = latest.loc[latest["level"] == "departement"].drop_duplicates("code", keep="last")
        out["caf_coverage_rate_dep"] = out["dep_code"].astype(str).map(
            dep.set_index("code")["rate"]).astype(float)
    france = latest.loc[latest["level"] == "france", "rate"]
    if len(france):
        out["caf_coverage_rate_france"] = float(france.iloc[-1])
    known = out[list(cols[:-1])].notna().any(axis=1)
    out.loc[known, "caf_coverage_year"] = float(year)
    return out


# --------------------------------------------------------------------------------------
# Comparison wiring shared by the app and the command line
# --------------------------------------------------------------------------------------


def peer_territories(territory: Territory) -> list[Territory]:
    """The peers a territory is compared with in its report (read from the COG).

    A commune among the communes of its EPCI, an EPCI among the EPCIs of its
    département(s), a département through its EPCIs; the territory itself left out (the
    comparison is computed by :func:`diagnosis.pipeline.peer_comparison`).
    """
    from data_sources.cog import load_cog
    from diagnosis.comparison import split_territory

    t = territory
    cog = load_cog()
    if t.kind == "commune":
        row = cog.communes.loc[cog.communes["code"].eq(t.code) &
                               cog.communes["kind"].eq("commune")]
        epci = row["epci_code"].iloc[0] if len(row) else ""
        if not isinstance(epci, str) or not epci:
            return []
        peers = split_territory(resolve(epci), cog, by="commune")
    else:
        peers = []
        for dep in t.departements:
            peers += split_territory(resolve(dep), cog, by="epci")
        peers = list({p.code: p for p in peers}.values())
    return [p for p in peers if p.code != t.code]


class DepartementGraphLoader:
    """Picklable loader of one département's road graph, for a Dask worker.

    The graph covers the département's shipped commune polygons widened by
    ``buffer_m`` (families near a border reach the next département's services), from
    ``road_graph_file`` when given, else the OpenStreetMap cache or download
    (:func:`data_sources.osm.road_graph_for`).
    """

    def __init__(self, mode: str, *, road_graph_file: str | None = None,
                 buffer_m: float = 15_000.0) -> None:
        self.mode = mode
        self.road_graph_file = road_graph_file
        self.buffer_m = buffer_m

    def __call__(self, dep: str) -> Any:
        """The road graph of département ``dep``; a SourceError when none can be had."""
        from data_sources.national import load_national_communes
        from data_sources.osm import road_graph_for

        communes = load_national_communes(departements=[dep])
        graph, note = road_graph_for(communes, mode=self.mode,
                                     road_graph_file=self.road_graph_file,
                                     buffer_m=self.buffer_m)
        if graph is None:
            raise SourceError(f"département {dep} : pas de réseau routier ({note})")
        return graph
