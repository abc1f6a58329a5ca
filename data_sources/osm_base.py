"""Base layers of the report's maps from the study's OpenStreetMap extract: roads, water.

The PDF's maps draw no web tiles (they must work offline and in tests); when the study
was given an OpenStreetMap extract (``--osm-pbf``, ``.osm.pbf`` or ``.osm``), its main
roads and its water are drawn under the labels, light, with the ODbL attribution.
pyosmium reads the file (used, not re-implemented, as in :mod:`data_sources.walknet`).

Output of :func:`read_base_layers`: a GeoDataFrame in EPSG:4326 with ``kind``
(:data:`BASE_KINDS`) and ``geometry`` (lines for roads and rivers, polygons for water
bodies closed as one way; multipolygon relations are left out, lakes drawn by a relation
then lack from the map, never wrongly filled).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
from shapely.geometry import LineString, Polygon, box

from data_sources.walknet import _check, _osmium
from diagnosis.settings import WGS84

if TYPE_CHECKING:
    from diagnosis.pipeline import Diagnosis

#: Road classes drawn (OSM ``highway``): the network a reader finds their way with.
MAJOR_ROADS = frozenset({"motorway", "trunk", "primary", "motorway_link", "trunk_link",
                         "primary_link"})
ROADS = frozenset({"secondary", "tertiary", "secondary_link", "tertiary_link"})
#: Waterways drawn as lines, and tags of water bodies (closed ways).
RIVERS = frozenset({"river", "canal"})
WATER_TAGS = (("natural", "water"), ("landuse", "reservoir"), ("waterway", "riverbank"))
#: Kinds of the output (stable keys; the maps give their French labels).
BASE_KINDS = ("major_road", "road", "river", "water")


def _kind(tags: Any, closed: bool) -> str | None:
    highway = tags.get("highway")
    if highway in MAJOR_ROADS:
        return "major_road"
    if highway in ROADS:
        return "road"
    if closed and any(tags.get(k) == v for k, v in WATER_TAGS):
        return "water"
    if tags.get("waterway") in RIVERS:
        return "river"
    return None


def read_base_layers(path: str | Path, *,
                     bounds: Sequence[float] | None = None) -> gpd.GeoDataFrame:
    """Main roads, rivers and water bodies of an OpenStreetMap extract (EPSG:4326).

    Parameters
    ----------
    path
        The extract (``.osm.pbf`` or ``.osm``).
    bounds
        (west, south, east, north) in degrees: only features crossing them are kept.

    Raises
    ------
    InputError
        The file does not exist (message in French, naming ``--osm-pbf``).
    """
    osmium = _osmium()
    p = _check(path)
    kinds: list[str] = []
    geoms: list[Any] = []
    fp = osmium.FileProcessor(str(p), osmium.osm.NODE | osmium.osm.WAY).with_locations()
    for way in fp:
        if not way.is_way() or len(way.nodes) < 2:
            continue
        closed = way.nodes[0].ref == way.nodes[-1].ref
        kind = _kind(way.tags, closed)
        if kind is None:
            continue
        xy = [(n.location.lon, n.location.lat) for n in way.nodes if n.location.valid()]
        if len(xy) < 2:
            continue
        if kind == "water":
            if len(xy) < 4:
                continue
            geom = Polygon(xy)
            if not geom.is_valid:
                geom = geom.buffer(0)
        else:
            geom = LineString(xy)
        kinds.append(kind)
        geoms.append(geom)
    out = gpd.GeoDataFrame({"kind": kinds}, geometry=geoms, crs=WGS84)
    if bounds is not None and len(out):
        out = out.loc[out.intersects(box(*bounds))].reset_index(drop=True)
    return out


def load_base_layers(osm_pbf: str | Path | None, communes: gpd.GeoDataFrame, *,
                     margin_deg: float = 0.05) -> gpd.GeoDataFrame | None:
    """The base layers around ``communes`` from the study's extract, or ``None``.

    The one call of the app and the command line (``report``): ``None`` when the study
    has no extract (the maps then show the commune outlines only).
    """
    if not osm_pbf:
        return None
    west, south, east, north = (float(v) for v in communes.to_crs(WGS84).total_bounds)
    return read_base_layers(osm_pbf, bounds=(west - margin_deg, south - margin_deg,
                                             east + margin_deg, north + margin_deg))


def with_map_bases(diag: Diagnosis, *, osm_tiles: bool) -> Diagnosis:
    """``diag`` with the bases of its report's maps (extract, then tiles if asked for).

    The study's OpenStreetMap extract gives roads and water; ``osm_tiles`` adds the
    OpenStreetMap tiles. The one wiring of the report's map bases, for the app and
    ``python -m diagnosis report`` alike.
    """
    from dataclasses import replace

    from data_sources.osm_tiles import load_base_tiles

    communes = diag.overview.layers["communes"]
    return replace(diag, base_layers=load_base_layers(diag.params.osm_pbf, communes),
                   base_tiles=load_base_tiles(communes, enabled=osm_tiles))
