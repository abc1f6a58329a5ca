"""Everything the transit and pushchair engines need, loaded and prepared.

:func:`prepare_transit` reads the user's GTFS zips and OpenStreetMap extract, validates
the feeds for the study date (:func:`data_sources.gtfs.prepare_feed`), writes the
walking world the router needs (streets without steps, stops and streets scaled to the
pushchair's speed: :class:`~diagnosis.travel.transit.WalkScale`) into the cache, and
builds the :class:`~diagnosis.travel.transit.TransitEngine`. :func:`load_poussette_graph`
builds the pushchair walk graph of an extract.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_sources import _http
from data_sources.gtfs import PreparedFeed, folder_name, prepare_feed, read_gtfs, write_engine_feed
from data_sources.walknet import read_walk_ways, write_walk_pbf
from diagnosis.errors import InputError
from diagnosis.travel.graph import RoadGraph
from diagnosis.travel.modes import POUSSETTE_SPEED_KMH
from diagnosis.travel.poussette import PoussetteProfile, poussette_graph
from diagnosis.travel.transit import (
    DEFAULT_MAX_TRANSFERS,
    DEFAULT_MAX_WALK_MIN,
    TransitEngine,
    build_transit_engine,
    walk_scale_for,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TransitInputs:
    """The engine and what it was built from (for the ledger and the outputs)."""

    engine: TransitEngine
    feeds: tuple[PreparedFeed, ...]
    osm_pbf: str
    notices: tuple[str, ...]

    def records(self) -> list[dict[str, str]]:
        """One registry record per feed, plus the street network."""
        return [f.record() for f in self.feeds] + [{
            "source": "osm", "title": "Réseau piéton OpenStreetMap (sans escaliers)",
            "url": self.osm_pbf, "licence": "ODbL 1.0",
            "vintage": "date de l'extrait fourni"}]


def _cache_folder(osm_pbf: Path, gtfs: Sequence[Path], day: dt.date, speed: float) -> Path:
    h = hashlib.sha256()
    for p in (osm_pbf, *gtfs):
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    h.update(f"{day.isoformat()}|{speed}|v2".encode())
    return _http.get_config().cache_dir / "transit" / h.hexdigest()[:16]


def prepare_transit(osm_pbf: str | Path, gtfs_paths: Sequence[str | Path], *, day: dt.date,
                    depart_s: int, max_walk_min: float = DEFAULT_MAX_WALK_MIN,
                    max_transfers: int = DEFAULT_MAX_TRANSFERS,
                    walk_speed_kmh: float = POUSSETTE_SPEED_KMH) -> TransitInputs:
    """Validate the feeds for ``day``, write the scaled walking world, build the engine.

    Raises
    ------
    InputError
        No GTFS given, a file missing or unreadable.
    SourceError
        A feed has no trip on ``day`` (French message naming the network and the date).
    """
    if not gtfs_paths:
        raise InputError("aucun fichier GTFS : donnez au moins un --gtfs (zip des horaires)",
                         argument="--gtfs", value=[])
    pbf = Path(osm_pbf)
    if not pbf.is_file():
        raise InputError(f"extrait OpenStreetMap introuvable : {str(pbf)!r}",
                         argument="--osm-pbf", value=str(pbf))
    paths = [Path(p) for p in gtfs_paths]
    feeds = [prepare_feed(read_gtfs(p), day) for p in paths]
    lon = np.concatenate([f.stops["stop_lon"].to_numpy(float) for f in feeds])
    lat = np.concatenate([f.stops["stop_lat"].to_numpy(float) for f in feeds])
    scale = walk_scale_for(float(np.median(lon)), float(np.median(lat)),
                           walk_speed_kmh=walk_speed_kmh)
    folder = _cache_folder(pbf, paths, day, walk_speed_kmh)
    walk_pbf = folder / "walk.osm.pbf"
    dirs = []
    notices: list[str] = []
    for i, f in enumerate(feeds):
        d = folder / f"gtfs_{i}_{folder_name(f.feed)}"
        if not (d / "stop_times.txt").is_file():
            write_engine_feed(f, d, transform=scale.forward)
        dirs.append(str(d))
        notices.extend(f"{f.feed.name} : {n}" for n in f.notices)
    if not walk_pbf.is_file():
        tmp = folder / "walk.tmp.osm.pbf"
        counts = write_walk_pbf(pbf, tmp, scale=scale, drop_steps=True)
        tmp.replace(walk_pbf)
        notices.append(f"Réseau piéton : {counts['steps_dropped']} escalier(s) écarté(s) "
                       "(poussette).")
    engine = build_transit_engine(str(walk_pbf), dirs, scale=scale, day=day,
                                  depart_s=depart_s, networks=[f.feed.name for f in feeds],
                                  max_walk_min=max_walk_min, max_transfers=max_transfers,
                                  walk_speed_kmh=walk_speed_kmh, notes=notices)
    return TransitInputs(engine=engine, feeds=tuple(feeds), osm_pbf=str(pbf),
                         notices=tuple(notices))


def load_poussette_graph(osm_pbf: str | Path, *,
                         profile: PoussetteProfile | None = None) -> RoadGraph:
    """The pushchair walk graph of an OpenStreetMap extract (``.osm.pbf``)."""
    return poussette_graph(read_walk_ways(osm_pbf), profile=profile)
