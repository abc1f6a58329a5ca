"""Walking networks from an OpenStreetMap extract (``.osm.pbf``), through pyosmium.

- :func:`read_walk_ways` reads the ways with a ``highway`` tag and their node positions
  (parse), for :func:`diagnosis.travel.poussette.poussette_graph`;
- :func:`write_walk_pbf` writes the extract the transit engine walks on: without
  ``highway=steps`` and moved by a :class:`~diagnosis.travel.transit.WalkScale`.

The extract is the user's (e.g. a Geofabrik regional extract cut to the territory with
``osmium extract``); pyosmium is used, not re-implemented.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from diagnosis.errors import InputError
from diagnosis.travel.poussette import OsmWays
from diagnosis.travel.transit import WalkScale

logger = logging.getLogger(__name__)


def _osmium() -> Any:
    try:
        import osmium
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("reading .osm.pbf files needs pyosmium: pip install osmium==4.3.2"
                          ) from exc
    return osmium


def _check(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"extrait OpenStreetMap introuvable : {str(p)!r}",
                         argument="--osm-pbf", value=str(p))
    return p


def read_walk_ways(path: str | Path) -> OsmWays:
    """Ways with a ``highway`` tag, with their nodes' positions (WGS84)."""
    osmium = _osmium()
    p = _check(path)
    ids: list[int] = []
    lon: list[float] = []
    lat: list[float] = []
    starts = [0]
    tags: list[dict[str, str]] = []
    fp = osmium.FileProcessor(str(p), osmium.osm.NODE | osmium.osm.WAY).with_locations()
    for way in fp:
        if not way.is_way() or "highway" not in way.tags:
            continue
        refs = [(n.ref, n.location) for n in way.nodes if n.location.valid()]
        if len(refs) < 2:
            continue
        for ref, loc in refs:
            ids.append(ref)
            lon.append(loc.lon)
            lat.append(loc.lat)
        starts.append(len(ids))
        tags.append({t.k: t.v for t in way.tags})
    if not tags:
        raise InputError(f"aucune voie (highway) dans l'extrait {str(p)!r}",
                         argument="--osm-pbf", value=str(p))
    return OsmWays(node_ids=np.asarray(ids, np.int64), lon=np.asarray(lon),
                   lat=np.asarray(lat), way_start=np.asarray(starts, np.int64),
                   tags=tuple(tags))


def write_walk_pbf(src: str | Path, dst: str | Path, *, scale: WalkScale | None = None,
                   drop_steps: bool = True) -> dict[str, int]:
    """Copy nodes and ways of ``src`` to ``dst``, without steps, moved by ``scale``.

    Returns the counts written (``nodes``, ``ways``, ``steps_dropped``).
    """
    osmium = _osmium()
    p = _check(src)
    out = Path(dst)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    node_ids: list[int] = []
    lons: list[float] = []
    lats: list[float] = []
    for node in osmium.FileProcessor(str(p), osmium.osm.NODE):
        if node.location.valid():
            node_ids.append(node.id)
            lons.append(node.location.lon)
            lats.append(node.location.lat)
    lon = np.asarray(lons)
    lat = np.asarray(lats)
    if scale is not None and lon.size:
        lon, lat = scale.forward(lon, lat)
    where = {nid: i for i, nid in enumerate(node_ids)}
    counts = {"nodes": 0, "ways": 0, "steps_dropped": 0}
    with osmium.SimpleWriter(str(out)) as writer:
        for obj in osmium.FileProcessor(str(p), osmium.osm.NODE | osmium.osm.WAY):
            if obj.is_node():
                i = where.get(obj.id)
                if i is None:
                    continue
                writer.add_node(obj.replace(location=osmium.osm.Location(float(lon[i]),
                                                                          float(lat[i]))))
                counts["nodes"] += 1
            else:
                if drop_steps and obj.tags.get("highway") == "steps":
                    counts["steps_dropped"] += 1
                    continue
                writer.add_way(obj)
                counts["ways"] += 1
    logger.debug("walk pbf %s -> %s: %s", p, out, counts)
    return counts
