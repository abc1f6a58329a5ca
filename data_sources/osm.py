"""OpenStreetMap through osmnx: road graphs for travel times, and facility features.

osmnx is used, not re-implemented; this module is the one place that configures it
(cache folder under Maillage's cache, cache on, a user agent naming Maillage). osmnx
talks to Overpass itself and keeps its own cache of responses; on top of it the
converted :class:`~diagnosis.travel.RoadGraph` of each territory is cached as
``.npz`` and the raw facility features as GeoParquet, so a second run needs neither the
network nor networkx.

Loaders follow fetch -> cache -> parse -> validate:

- :func:`load_road_graph` (Overpass) and :func:`road_graph_from_osm_file` (an ``.osm``
  XML extract) return a ``RoadGraph``;
- :func:`load_osm_facilities` returns facilities in the schema, parsed by the pure
  :func:`parse_osm_features` (tags listed in ``osm_tags_diagnostic_1000j.md``).

See Also
--------
guides/accessibilite.md : the method guide (in French).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
from shapely.geometry.base import BaseGeometry

from data_sources._budget import not_a_file_fr
from data_sources._cache_paths import is_offline, osm_cache_dir
from data_sources.registry import SourceInfo, register
from diagnosis.errors import InputError, SourceError
from diagnosis.schema import FACILITY_DTYPES, validate_facilities
from diagnosis.settings import METRIC_CRS, WGS84
from diagnosis.travel import MODES, WALK_SPEED_KMH, RoadGraph, road_graph_from_networkx

logger = logging.getLogger(__name__)

OSM = register(SourceInfo(
    key="osm",
    title="OpenStreetMap (réseau routier et équipements)",
    url="https://www.openstreetmap.org (API Overpass, via osmnx)",
    licence="ODbL 1.0",
    attribution="© les contributeurs d'OpenStreetMap",
    vintage="données du jour de l'extraction",
    crs="EPSG:4326",
    notes=(
        "Couverture inégale selon les communes : les crèches, PMI, LAEP et relais petite "
        "enfance sont souvent absents ou mal étiquetés dans OpenStreetMap. Les vitesses "
        "routières sont les limitations affichées (ou des valeurs par défaut par type de "
        "route), sans embouteillages ni temps aux carrefours."
    ),
))

#: Bump when the cached RoadGraph file layout changes.
_GRAPH_FORMAT = 1

#: Speeds (km/h) for drive edges without a ``maxspeed`` tag, by highway type. Assumed
#: typical French values (legal limits or below); osmnx uses ``maxspeed`` when tagged.
FR_HIGHWAY_SPEEDS_KMH: dict[str, float] = {
    "motorway": 110.0, "motorway_link": 60.0,
    "trunk": 90.0, "trunk_link": 50.0,
    "primary": 70.0, "primary_link": 40.0,
    "secondary": 60.0, "secondary_link": 40.0,
    "tertiary": 50.0, "tertiary_link": 30.0,
    "unclassified": 40.0, "road": 30.0,
    "residential": 30.0, "living_street": 20.0, "service": 20.0,
}
#: Speed (km/h) of drive edges whose type is neither tagged nor listed above.
FALLBACK_SPEED_KMH = 30.0

#: Highway types kept for driving when reading an ``.osm`` file (as osmnx's "drive"
#: network type: no service roads, tracks, paths or footways).
DRIVE_HIGHWAYS = frozenset(FR_HIGHWAY_SPEEDS_KMH) - {"service"}
#: Highway types never walked (as osmnx's "walk" network type).
WALK_EXCLUDED_HIGHWAYS = frozenset({
    "abandoned", "bus_guideway", "construction", "cycleway", "motorway", "motorway_link",
    "no", "planned", "platform", "proposed", "raceway", "razed", "rest_area", "services",
})

#: Tags asked from Overpass for facilities (see osm_tags_diagnostic_1000j.md). Name
#: patterns (PMI, LAEP, RPE…) are applied to these features by :func:`parse_osm_features`.
OSM_FACILITY_TAGS: dict[str, list[str]] = {
    "amenity": ["kindergarten", "childcare", "social_centre", "community_centre",
                "social_facility", "hospital", "clinic", "doctors"],
    "healthcare": ["midwife", "hospital", "clinic", "centre", "counselling"],
    "office": ["government", "association"],
}

#: Tag columns read by the parser (the raw cache keeps these only).
_TAG_COLUMNS = (
    "amenity", "healthcare", "healthcare:speciality", "office", "kindergarten:FR",
    "school:FR", "ref:UAI", "community_centre", "social_facility", "name", "official_name",
    "description", "addr:housenumber", "addr:street", "addr:postcode", "capacity", "operator",
    "phone", "contact:phone", "email", "contact:email", "website", "contact:website",
)

# kindergarten:FR values (accents, case and separators normalised) -> EAJE subtype.
_KINDERGARTEN_FR: dict[str, str] = {
    "multiaccueil": "multi_accueil",
    "multi_accueil": "multi_accueil",
    "creche_collective": "creche_collective",
    "creche_parentale": "creche_parentale",
    "creche_familiale": "creche_familiale",
    "microcreche": "micro_creche",
    "micro_creche": "micro_creche",
    "halte_garderie": "halte_garderie",
    "jardin_enfants": "",
    "jardin_d_enfants": "",
}
# Name / description patterns, matched on accent-free lower-case text.
_SUBTYPE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("micro_creche", re.compile(r"micro[- ]?creche")),
    ("multi_accueil", re.compile(r"multi[- ]?accueil")),
    ("halte_garderie", re.compile(r"halte[- ]?garderie")),
    ("creche_familiale", re.compile(r"creche familiale")),
    ("creche_parentale", re.compile(r"creche parentale")),
    ("creche_collective", re.compile(r"creche collective")),
)
_EAJE_WORDS = re.compile(r"creche|multi[- ]?accueil|halte[- ]?garderie|petite enfance")
_SCHOOL_WORDS = re.compile(r"\becole\b|maternelle|\bschool\b|groupe scolaire")
_PERISCOLAIRE = re.compile(r"periscolaire|accueil de loisirs|centre de loisirs|\balsh\b"
                           r"|garderie (scolaire|periscolaire)")
_MAM = re.compile(r"maison d'?\s?assistant|\bmam\b")
_LAEP = re.compile(r"lieu d'?\s?accueil enfants?[- ]parents?|\blaep\b")
_RPE = re.compile(r"relais petite enfance|relais (d'?\s?)?assistant|\brpe\b|\bram\b"
                  r"|relais parents? assistant")
_PMI = re.compile(r"\bpmi\b|protection maternelle")
_EVS = re.compile(r"espace de vie sociale|\bevs\b")
_CENTRE_SOCIAL = re.compile(r"centre social|centre socio|centres sociaux")
_MATERNITE = re.compile(r"maternite")


# --------------------------------------------------------------------------------------
# osmnx configuration and cache
# --------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Folder of Maillage's OSM caches (inside the HTTP layer's cache folder)."""
    return osm_cache_dir()


def _ox() -> Any:
    """Import osmnx and point it at Maillage's cache folder and user agent."""
    import osmnx as ox

    from data_sources import _http

    ox.settings.cache_folder = str(cache_dir() / "osmnx")
    ox.settings.use_cache = True
    ox.settings.http_user_agent = _http.USER_AGENT
    ox.settings.log_console = False
    ox.settings.requests_timeout = OVERPASS_TIMEOUT_S
    # osmnx retries an Overpass 429/504 after 55 s, without end: a response hook (passed
    # through its requests_kwargs setting) stops after OVERPASS_MAX_RETRIES of them.
    ox.settings.requests_kwargs = {"hooks": {"response": [_overpass_guard]}}
    return ox


#: Seconds osmnx waits for Overpass (``settings.requests_timeout``).
OVERPASS_TIMEOUT_S = 180
#: Overpass 429/504 answers osmnx may retry (it pauses 55 s before each) in one query.
OVERPASS_MAX_RETRIES = 2
#: Seconds osmnx pauses before retrying a 429/504 (``_overpass._overpass_request``).
OVERPASS_RETRY_PAUSE_S = 55.0
_guard = threading.local()


@contextlib.contextmanager
def _overpass_budget() -> Iterator[None]:
    """Count the Overpass 429/504 answers of one query (see :func:`_overpass_guard`)."""
    _guard.busy = 0
    try:
        yield
    finally:
        _guard.busy = 0


def _overpass_guard(response: Any, *args: Any, **kwargs: Any) -> Any:
    """Requests hook: stop osmnx after :data:`OVERPASS_MAX_RETRIES` 429/504 answers."""
    if getattr(response, "status_code", 200) in {429, 504}:
        from data_sources import _http

        left = _http.deadline_left()
        if left is not None and left < OVERPASS_RETRY_PAUSE_S:  # no 55 s pause past it
            with contextlib.suppress(Exception):
                response.close()
            url = str(getattr(response, "url", "?"))
            message = (f"osm : Overpass a répondu HTTP {response.status_code} (serveur occupé) "
                       f"à {url} et le délai global de la source ne laisse pas le temps de la "
                       "pause d'osmnx avant un nouvel essai ; réessayez plus tard")
            raise SourceError(message, kind="deadline", source="osm", url=url, fr=message)
        _guard.busy = getattr(_guard, "busy", 0) + 1
        if _guard.busy > OVERPASS_MAX_RETRIES:
            url = str(getattr(response, "url", "?"))
            message = (f"osm : Overpass a répondu HTTP {response.status_code} (serveur occupé) "
                       f"{_guard.busy} fois à {url} ; réessayez plus tard")
            raise SourceError(message, kind="retries", source="osm", url=url, fr=message)
    return response


def _area_key(polygon: BaseGeometry, *parts: object) -> str:
    """Stable short key of a polygon and options (for cache file names).

    The osmnx version is read from the installed package's metadata: importing osmnx
    (seconds) only to name a cache file would cost every crow-fly run.
    """
    h = hashlib.sha256(polygon.normalize().wkb)
    for p in (*parts, _osmnx_version()):
        h.update(repr(p).encode())
    return h.hexdigest()[:20]


def _osmnx_version() -> str:
    """The installed osmnx version (as ``osmnx.__version__``), without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("osmnx")
    except PackageNotFoundError:
        import osmnx as ox

        return str(ox.__version__)


def _check_polygon(polygon_wgs84: Any, buffer_m: float) -> BaseGeometry:
    if not isinstance(polygon_wgs84, BaseGeometry) or polygon_wgs84.geom_type not in {
            "Polygon", "MultiPolygon"}:
        raise InputError(
            f"polygon_wgs84 must be a shapely Polygon or MultiPolygon in EPSG:4326; got "
            f"{type(polygon_wgs84).__name__}. Use e.g. communes.to_crs(4326).union_all()."
        )
    if polygon_wgs84.is_empty:
        raise InputError("polygon_wgs84 is empty; select at least one commune")
    minx, miny, maxx, maxy = polygon_wgs84.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InputError(
            f"polygon_wgs84 bounds {polygon_wgs84.bounds!r} are not longitudes/latitudes; "
            "reproject it to EPSG:4326"
        )
    if buffer_m < 0 or not np.isfinite(buffer_m):
        raise InputError(f"buffer_m must be >= 0 metres; got {buffer_m!r}")
    if buffer_m > 0:
        geo = gpd.GeoSeries([polygon_wgs84], crs=WGS84).to_crs(METRIC_CRS).buffer(buffer_m)
        polygon_wgs84 = geo.to_crs(WGS84).iloc[0]
    return polygon_wgs84


def _atomic_write(path: Path, write: Any) -> None:
    """Write via a temporary file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_road_graph(graph: RoadGraph, path: str | Path) -> Path:
    """Save a RoadGraph as a compressed ``.npz`` (atomic write)."""
    path = Path(path)
    m = graph.travel_time_s

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh, format=np.array(_GRAPH_FORMAT), data=m.data, indices=m.indices,
                indptr=m.indptr, x=graph.x, y=graph.y, osm_ids=graph.osm_ids,
                mode=np.array(graph.mode),
            )

    _atomic_write(path, write)
    return path


def read_road_graph(path: str | Path) -> RoadGraph:
    """Read a RoadGraph written by :func:`save_road_graph`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != _GRAPH_FORMAT:
                raise KeyError("format")
            n = z["x"].shape[0]
            matrix = sp.csr_array((z["data"], z["indices"], z["indptr"]), shape=(n, n))
            return RoadGraph(travel_time_s=matrix, x=z["x"], y=z["y"], osm_ids=z["osm_ids"],
                             mode=str(z["mode"]))
    except (OSError, KeyError, ValueError) as exc:
        raise SourceError(
            f"cached road graph {str(path)!r} is unreadable ({exc!r}); delete it or call "
            "the loader with refresh=True"
        ) from exc


# --------------------------------------------------------------------------------------
# Road graphs
# --------------------------------------------------------------------------------------


def road_graph_for(
    communes: gpd.GeoDataFrame,
    *,
    mode: str,
    road_graph_file: str | Path | None = None,
    buffer_m: float = 5_000.0,
) -> tuple[RoadGraph | None, str]:
    """The road graph to use for a territory, or None with the French reason why not.

    Used by the command line and the app (``--mode`` / ``--road-graph``): ``mode="crow"``
    asks for crow-fly estimates; ``"drive"``/``"walk"`` read ``road_graph_file`` (an OSM
    XML extract ``.osm`` or a graph saved as ``.npz``) when given, else the cached or
    downloaded graph of the communes' outline widened by ``buffer_m``. A graph that cannot
    be had (offline without cache, Overpass down) is not an error: the caller falls back
    to crow-fly times, and the returned note says why.

    Returns
    -------
    graph, note
        The graph (None for crow-fly) and a French note ("" when the graph is used).

    Raises
    ------
    InputError
        Unknown mode; ``road_graph_file`` missing or unreadable (a file the user named
        must not be silently replaced by an estimate).
    """
    if mode == "crow":
        return None, ""
    if mode not in MODES:
        raise InputError(f"mode={mode!r} is not a travel mode; use crow or one of {MODES}")
    if road_graph_file is not None:
        path = Path(road_graph_file)
        if path.suffix.lower() == ".npz":
            if not path.is_file():
                raise InputError(f"--road-graph {str(path)!r} is not a file",
                                 argument="--road-graph", value=str(path),
                                 fr=not_a_file_fr(path, what="--road-graph"))
            graph = read_road_graph(path)
            if graph.mode != mode:
                raise InputError(f"--road-graph {str(path)!r} is a {graph.mode!r} graph; "
                                 f"use --mode {graph.mode} or another file")
            return graph, ""
        try:
            return road_graph_from_osm_file(path, mode=mode), ""
        except SourceError as exc:
            raise InputError(f"--road-graph {str(path)!r}: {exc}") from exc
    outline = communes.to_crs(WGS84).union_all()
    try:
        return load_road_graph(outline, mode=mode, buffer_m=buffer_m), ""
    except SourceError as exc:
        return None, (f"Réseau routier OpenStreetMap indisponible ({exc}) : temps estimés "
                      "à vol d'oiseau.")



def cached_road_graph(communes: gpd.GeoDataFrame, *, mode: str,
                      buffer_m: float = 5_000.0) -> RoadGraph | None:
    """The road graph of the communes already in the cache, or None (never downloads)."""
    if mode not in MODES:
        return None
    folder = cache_dir() / "road_graphs"
    if not any(folder.glob(f"{mode}-*.npz")):  # no graph of the mode: no outline to key
        return None
    polygon = _check_polygon(communes.to_crs(WGS84).union_all(), buffer_m)
    path = folder / f"{mode}-{_area_key(polygon, mode)}.npz"
    return read_road_graph(path) if path.exists() else None


def load_road_graph(
    polygon_wgs84: BaseGeometry,
    *,
    mode: str = "drive",
    buffer_m: float = 0.0,
    refresh: bool = False,
) -> RoadGraph:
    """Road graph of a territory from OpenStreetMap (Overpass), cached per territory.

    Parameters
    ----------
    polygon_wgs84
        Territory outline in EPSG:4326.
    mode
        ``"drive"`` (osmnx network type "drive", speeds from ``maxspeed`` or
        :data:`FR_HIGHWAY_SPEEDS_KMH`) or ``"walk"`` (all ways a pedestrian may use,
        both directions, :data:`~diagnosis.travel.WALK_SPEED_KMH`).
    buffer_m
        Widen the outline by this many metres (trips and facilities across the border).
    refresh
        Ignore the cached graph and download again.

    Returns
    -------
    RoadGraph

    Raises
    ------
    InputError
        Bad polygon or mode.
    SourceError
        Overpass unreachable or empty answer; offline mode without a cached graph.
    """
    if mode not in MODES:
        raise InputError(f"mode={mode!r} is not a travel mode; use one of {MODES}")
    polygon = _check_polygon(polygon_wgs84, buffer_m)
    path = cache_dir() / "road_graphs" / f"{mode}-{_area_key(polygon, mode)}.npz"
    if path.exists() and not refresh:
        logger.debug("road graph from cache %s", path)
        return read_road_graph(path)
    if is_offline():  # told without loading the HTTP layer (requests, requests-cache)
        raise SourceError(
            f"osm : pas de réseau routier ({mode}) en cache pour ce territoire ({path.name}) et "
            "Maillage est hors ligne ; connectez-vous une fois, ou utilisez les temps à vol "
            "d'oiseau", kind="offline", source="osm",
        )
    from data_sources import _http

    ox = _ox()
    _http.probe(f"{ox.settings.overpass_url}/status", source="osm")
    try:
        with _overpass_budget():
            graph_nx = ox.graph_from_polygon(polygon, network_type=mode, retain_all=False,
                                             simplify=True)
    except Exception as exc:  # osmnx raises requests, Overpass and "empty" errors
        raise SourceError(
            f"osm : le réseau routier ({mode}) n'a pas pu être téléchargé d'Overpass "
            f"({exc!r}) ; vérifiez la connexion et réessayez, ou utilisez les temps à vol "
            "d'oiseau", kind="offline", source="osm",
        ) from exc
    graph = road_graph_from_networkx(_add_travel_times(graph_nx, mode), mode=mode)
    save_road_graph(graph, path)
    return graph


def road_graph_from_osm_file(path: str | Path, *, mode: str = "drive") -> RoadGraph:
    """Road graph from an OSM XML extract (``.osm``), e.g. exported from openstreetmap.org.

    osmnx reads every way of the file, so ways are filtered here as osmnx's network
    types do: for ``"drive"`` the highway types of :data:`DRIVE_HIGHWAYS` (one-way
    streets respected), for ``"walk"`` every highway except
    :data:`WALK_EXCLUDED_HIGHWAYS`, in both directions; ``area=yes`` and private or
    forbidden access are dropped. The graph is then simplified and reduced to its
    largest weakly connected part.

    Parameters
    ----------
    path
        The ``.osm`` file.
    mode
        ``"drive"`` or ``"walk"``.

    Returns
    -------
    RoadGraph

    Raises
    ------
    InputError
        Unknown mode, missing file.
    SourceError
        The file holds no road usable in this mode.
    """
    if mode not in MODES:
        raise InputError(f"mode={mode!r} is not a travel mode; use one of {MODES}")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"path={str(path)!r} is not a file; give an OSM XML extract (.osm)",
                         argument="--road-graph", value=str(path),
                         fr=not_a_file_fr(path, what="--road-graph"))
    ox = _ox()
    try:
        graph_nx = ox.graph_from_xml(path, bidirectional=(mode == "walk"), simplify=False,
                                     retain_all=True)
    except Exception as exc:  # malformed XML, wrong encoding
        raise SourceError(f"{str(path)!r}: cannot read it as OSM XML ({exc!r})",
                          fr=f"« {path} » : illisible comme extrait OpenStreetMap (.osm, "
                             "XML) ; vérifiez le fichier") from exc
    drop = [(u, v, k) for u, v, k, d in graph_nx.edges(keys=True, data=True)
            if not _way_allowed(d, mode)]
    graph_nx.remove_edges_from(drop)
    import networkx as nx  # imported only when an osmnx graph is converted

    graph_nx.remove_nodes_from(list(nx.isolates(graph_nx)))
    if graph_nx.number_of_edges() == 0:
        raise SourceError(f"{str(path)!r} holds no road usable for mode={mode!r}")
    graph_nx = ox.simplify_graph(graph_nx)
    graph_nx = ox.truncate.largest_component(graph_nx, strongly=False)
    return road_graph_from_networkx(_add_travel_times(graph_nx, mode), mode=mode)


def _way_allowed(data: Mapping[str, Any], mode: str) -> bool:
    """Whether an edge of an unsimplified osmnx graph belongs to the ``mode`` network.

    Examples
    --------
    >>> _way_allowed({"highway": "residential"}, "drive"), _way_allowed({}, "walk")
    (True, False)
    >>> _way_allowed({"highway": "footway"}, "drive"), _way_allowed({"highway": "footway"}, "walk")
    (False, True)
    """
    hwy = data.get("highway")
    if not isinstance(hwy, str) or not hwy:
        return False
    if str(data.get("area", "")) == "yes" or str(data.get("access", "")) in {"private", "no"}:
        return False
    if mode == "drive":
        return hwy in DRIVE_HIGHWAYS
    return hwy not in WALK_EXCLUDED_HIGHWAYS


def _add_travel_times(graph_nx: Any, mode: str) -> Any:
    """Add ``speed_kph`` and ``travel_time`` (seconds) to every edge."""
    ox = _ox()
    if mode == "drive":
        graph_nx = ox.add_edge_speeds(graph_nx, hwy_speeds=FR_HIGHWAY_SPEEDS_KMH,
                                      fallback=FALLBACK_SPEED_KMH)
        return ox.add_edge_travel_times(graph_nx)
    speed_ms = WALK_SPEED_KMH / 3.6
    for _, _, data in graph_nx.edges(data=True):
        data["speed_kph"] = WALK_SPEED_KMH
        data["travel_time"] = float(data["length"]) / speed_ms
    return graph_nx


# --------------------------------------------------------------------------------------
# Facilities
# --------------------------------------------------------------------------------------


def _plain(text: Any) -> str:
    """Lower-case, accent-free text with straight apostrophes (for patterns)."""
    if not isinstance(text, str):
        return ""
    text = text.replace("’", "'").replace("`", "'")
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).lower().strip()


def _eaje_subtype(text: str) -> str:
    for subtype, pattern in _SUBTYPE_PATTERNS:
        if pattern.search(text):
            return subtype
    return ""


def classify_osm_tags(tags: Mapping[str, Any]) -> tuple[str, str] | None:
    """Facility ``(type, subtype)`` of an OSM feature's tags, or None if not ours.

    Rules, first match wins:

    1. ``amenity=kindergarten`` with ``kindergarten:FR`` -> ``eaje`` with its subtype;
    2. name or description matching LAEP, relais petite enfance / RAM, PMI patterns;
    3. hospital / clinic with ``healthcare:speciality`` containing ``obstetrics`` or a
       name containing "maternité" -> ``maternite``;
    4. ``healthcare=midwife`` -> ``sage_femme``;
    5. ``amenity=social_centre`` / ``community_centre`` / ``social_facility`` named
       "espace de vie sociale" -> ``evs``, "centre social / socio…" -> ``centre_social``;
    6. ``amenity=kindergarten`` or ``childcare`` otherwise: schools (``school:FR``,
       ``ref:UAI``, "école", "maternelle") and after-school care (périscolaire, accueil de
       loisirs) are left out; "maison d'assistants maternels" / MAM -> ``mam``; else
       ``eaje`` with a subtype guessed from the name ("micro-crèche"…) or empty.

    Examples
    --------
    >>> classify_osm_tags({"amenity": "kindergarten", "kindergarten:FR": "microcrèche"})
    ('eaje', 'micro_creche')
    >>> classify_osm_tags({"amenity": "social_facility", "name": "Centre médico-social - PMI"})
    ('pmi', '')
    >>> classify_osm_tags({"healthcare": "midwife", "name": "Cabinet de sages-femmes"})
    ('sage_femme', '')
    >>> classify_osm_tags({"amenity": "kindergarten", "name": "École maternelle Jules Ferry"})
    >>> classify_osm_tags({"amenity": "community_centre", "name": "Salle des fêtes"})
    """
    amenity = _plain(tags.get("amenity"))
    healthcare = _plain(tags.get("healthcare"))
    names = " ".join(_plain(tags.get(k)) for k in ("name", "official_name"))
    text = f"{names} {_plain(tags.get('description'))}"

    kfr = _plain(tags.get("kindergarten:FR"))
    if amenity == "kindergarten" and kfr:
        key = re.sub(r"[\s\-']+", "_", kfr)
        if key in {"maternelle", "ecole_maternelle"}:
            return None
        return "eaje", _KINDERGARTEN_FR.get(key, "")
    if _LAEP.search(text):
        return "laep", ""
    if _RPE.search(text):
        return "rpe", ""
    if _PMI.search(text):
        return "pmi", ""
    if amenity in {"hospital", "clinic"} or healthcare in {"hospital", "clinic"}:
        spec = _plain(tags.get("healthcare:speciality"))
        if "obstetric" in spec or _MATERNITE.search(names):
            return "maternite", ""
        return None
    if healthcare == "midwife":
        return "sage_femme", ""
    if amenity in {"social_centre", "community_centre", "social_facility"}:
        if _EVS.search(names):
            return "evs", ""
        if _CENTRE_SOCIAL.search(names):
            return "centre_social", ""
        return None
    if amenity in {"kindergarten", "childcare"}:
        is_school = _plain(tags.get("school:FR")) or _plain(tags.get("ref:UAI"))
        if is_school or (_SCHOOL_WORDS.search(text) and not _EAJE_WORDS.search(text)):
            return None
        if _PERISCOLAIRE.search(text):
            return None
        if _MAM.search(text):
            return "mam", ""
        return "eaje", _eaje_subtype(text)
    return None


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


def _tag(row: Mapping[str, Any], *keys: str) -> str:
    for k in keys:
        v = row.get(k)
        if v is None or _is_nan(v):
            continue
        text = str(v).strip()
        if text:
            return text
    return ""


def _capacity(value: str) -> float:
    """Places from a ``capacity`` tag (``"24"``, ``"24 places"``); NaN if not a number.

    Examples
    --------
    >>> _capacity("24"), _capacity("12 places"), _capacity("")
    (24.0, 12.0, nan)
    """
    m = re.match(r"^\s*(\d+(?:[.,]\d+)?)", value or "")
    return float(m.group(1).replace(",", ".")) if m else float("nan")


def parse_osm_features(
    raw: gpd.GeoDataFrame,
    *,
    communes: gpd.GeoDataFrame | None = None,
    source_date: str = "",
) -> gpd.GeoDataFrame:
    """Turn osmnx features into facilities with the schema's columns.

    Parameters
    ----------
    raw
        What ``osmnx.features_from_polygon`` / ``features_from_xml`` return: tag columns,
        a geometry, and an ``(element, id)`` index (or ``element`` and ``id`` columns).
    communes
        Communes with ``code_insee`` and polygons: each facility gets the code of the
        commune it lies in, facilities outside every commune are dropped (logged), and
        the table is validated. Without it, ``code_insee`` is empty and the table is
        not validated (the schema requires a commune code).
    source_date
        Extraction date written in ``source_date`` (ISO).

    Returns
    -------
    geopandas.GeoDataFrame
        Facilities (schema columns, EPSG:4326): ``source="osm"``,
        ``source_id="node/123"`` (or ``way/…``, ``relation/…``),
        ``position_precision="address"``; polygons are placed at a point inside them.
        Features that are not early-childhood or parenting services are left out.
    """
    if not isinstance(raw, gpd.GeoDataFrame):
        raise InputError(f"raw must be a GeoDataFrame from osmnx; got {type(raw).__name__}")
    if raw.crs is None:
        raise InputError("raw has no CRS; osmnx features are in EPSG:4326, set it")
    frame = raw.to_crs(WGS84)
    if isinstance(frame.index, pd.MultiIndex) and {"element", "id"} <= set(frame.index.names):
        elements = frame.index.get_level_values("element").astype(str)
        ids = frame.index.get_level_values("id").astype(str)
    elif {"element", "id"} <= set(frame.columns):
        elements, ids = frame["element"].astype(str), frame["id"].astype(str)
    else:
        raise InputError(
            "raw lacks the osmnx (element, id) index; found index names "
            f"{list(frame.index.names)!r} and columns {list(frame.columns)[:10]!r}"
        )
    records: list[dict[str, Any]] = []
    geoms = []
    tag_cols = [c for c in frame.columns if c != frame.geometry.name]
    for (elem, osm_id), tags, geom in zip(zip(elements, ids, strict=True),
                                          frame[tag_cols].to_dict("records"),
                                          frame.geometry, strict=True):
        kind = classify_osm_tags(tags)
        if kind is None or geom is None or geom.is_empty:
            continue
        ftype, subtype = kind
        source_id = f"{elem}/{osm_id}"
        records.append({
            "facility_id": f"osm:{source_id}",
            "type": ftype,
            "subtype": subtype,
            "name": _tag(tags, "name", "official_name"),
            "address": " ".join(p for p in (_tag(tags, "addr:housenumber"),
                                            _tag(tags, "addr:street")) if p),
            "postcode": _tag(tags, "addr:postcode"),
            "code_insee": "",
            "capacity": _capacity(_tag(tags, "capacity")),
            "operator": _tag(tags, "operator"),
            "phone": _tag(tags, "phone", "contact:phone"),
            "email": _tag(tags, "email", "contact:email"),
            "website": _tag(tags, "website", "contact:website"),
            "source": "osm",
            "source_id": source_id,
            "source_date": source_date,
            "position_precision": "address",
        })
        geoms.append(geom if geom.geom_type == "Point" else geom.representative_point())
    data = pd.DataFrame(records, columns=list(FACILITY_DTYPES))
    out = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)
    out["capacity"] = out["capacity"].astype("float64")
    if communes is None:
        return out
    if "code_insee" not in communes.columns or communes.crs is None:
        raise InputError("communes must be a GeoDataFrame with 'code_insee' and a CRS")
    zones = communes[["code_insee", communes.geometry.name]].to_crs(WGS84)
    joined = gpd.sjoin(out[["geometry"]], zones, how="left", predicate="within")
    code = joined.groupby(level=0)["code_insee"].first()
    out["code_insee"] = code.reindex(out.index).fillna("").astype(str).to_numpy()
    outside = out["code_insee"].eq("")
    if outside.any():
        logger.info("osm: %d facilities outside the communes dropped", int(outside.sum()))
    return validate_facilities(out[~outside], source="osm")


def load_osm_facilities(
    polygon_wgs84: BaseGeometry,
    *,
    communes: gpd.GeoDataFrame | None = None,
    buffer_m: float = 0.0,
    refresh: bool = False,
) -> gpd.GeoDataFrame:
    """Early-childhood and parenting facilities mapped in OpenStreetMap.

    Fetches the features of :data:`OSM_FACILITY_TAGS` with
    ``osmnx.features_from_polygon``, caches them (GeoParquet, per territory) and parses
    them with :func:`parse_osm_features`.

    Parameters
    ----------
    polygon_wgs84
        Territory outline in EPSG:4326.
    communes
        Communes (``code_insee`` + polygons) to give each facility its commune code and
        validate the table; see :func:`parse_osm_features`.
    buffer_m
        Widen the outline by this many metres.
    refresh
        Ignore the cached features and query Overpass again.

    Returns
    -------
    geopandas.GeoDataFrame
        Facilities in the schema (empty when nothing is mapped).

    Raises
    ------
    SourceError
        Overpass unreachable; offline mode without cached features.
    """
    polygon = _check_polygon(polygon_wgs84, buffer_m)
    path = cache_dir() / "features" / f"{_area_key(polygon, OSM_FACILITY_TAGS)}.parquet"
    from data_sources import _http

    cfg = _http.get_config()
    refresh = _http.refresh_requested(f"OSM {path}") or refresh
    stale = path.exists() and time.time() - path.stat().st_mtime > cfg.expire_after_s
    if path.exists() and (cfg.offline or not (refresh or stale)):
        raw = gpd.read_parquet(path)
    else:
        if cfg.offline:
            raise SourceError(
                f"osm : pas de structures en cache pour ce territoire ({path.name}) et Maillage "
                "est hors ligne ; connectez-vous une fois, ou importez les structures d'un fichier",
                kind="offline", source="osm",
            )
        try:
            raw = _fetch_features(polygon, refresh=refresh or stale)
        except SourceError as exc:
            if not (stale and not refresh):
                raise
            logger.warning("%s; the expired copy %s is used", exc, path)
            raw = gpd.read_parquet(path)
        else:
            if len(raw):  # an empty answer (Overpass down, maintenance) is asked again
                _atomic_write(path, lambda tmp: raw.to_parquet(tmp))
    fetched = str(raw["_fetched_on"].iloc[0]) if len(raw) else ""
    _http.note_data_date(f"{fetched}T00:00:00Z" if fetched else
                         dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
                         if path.exists() else None)
    raw = raw.set_index(["element", "id"]).drop(columns=["_fetched_on"])
    return parse_osm_features(raw, communes=communes, source_date=fetched)


def _fetch_features(polygon: BaseGeometry, *, refresh: bool = False) -> gpd.GeoDataFrame:
    """Query Overpass and keep the tag columns the parser reads, as text.

    ``refresh`` bypasses osmnx's own response cache for this query.
    """
    from data_sources import _http

    ox = _ox()
    _http.probe(f"{ox.settings.overpass_url}/status", source="osm")
    use_cache = ox.settings.use_cache
    try:
        ox.settings.use_cache = use_cache and not refresh
        with _overpass_budget():
            raw = ox.features_from_polygon(polygon, tags=OSM_FACILITY_TAGS)
    except ox._errors.InsufficientResponseError:
        raw = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)
        raw.index = pd.MultiIndex.from_arrays([[], []], names=["element", "id"])
    except SourceError:
        raise
    except Exception as exc:  # requests and Overpass errors
        raise SourceError(
            f"osm : les structures n'ont pas pu être téléchargées d'Overpass ({exc!r}) ; "
            "vérifiez la connexion et réessayez plus tard"
        ) from exc
    finally:
        ox.settings.use_cache = use_cache
    keep = pd.DataFrame(index=raw.index)
    for col in _TAG_COLUMNS:
        keep[col] = (raw[col].map(lambda v: "" if v is None or _is_nan(v) else str(v))
                     if col in raw.columns else "")
    out = gpd.GeoDataFrame(keep, geometry=raw.geometry.to_numpy(), crs=raw.crs or WGS84)
    out = out.reset_index()
    out["element"] = out["element"].astype(str)
    out["id"] = out["id"].astype("int64")
    out["_fetched_on"] = dt.date.today().isoformat()
    return out
