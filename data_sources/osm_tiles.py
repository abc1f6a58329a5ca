"""OpenStreetMap raster tiles for a light base under the report's maps (on request).

fetch -> cache -> parse -> validate, as every loader: :func:`fetch_tile` asks
:mod:`data_sources._http` (outbound policy, User-Agent, HTTP cache, deadlines) for one
tile, :func:`parse_tile` decodes it (PNG or JPEG, 256 × 256 pixels, nothing else),
:func:`load_osm_tiles` puts the tiles of a territory side by side in one
:class:`~diagnosis.map_tiles.TileMosaic` with its EPSG:3857 bounds, and
:func:`load_base_tiles` is the one call of the app and the command line: it never
raises, and says in French why there is no base when the tiles could not be loaded.

Few tiles, as the OpenStreetMap tile usage policy asks
(https://operations.osmfoundation.org/policies/tiles/: a User-Agent naming the
application, tiles cached, no bulk download): one mosaic per report, the zoom chosen so
that it needs at most :data:`MAX_TILES` tiles, every tile kept in the HTTP cache (a
second report of the same territory makes no request). Tile addresses follow the
slippy-map convention (https://wiki.openstreetmap.org/wiki/Slippy_map_tilenames).
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence

import geopandas as gpd
import numpy as np

from data_sources import _http
from data_sources.registry import SourceInfo, register
from diagnosis.errors import SourceError
from diagnosis.map_tiles import OSM_TILES_ATTRIBUTION, BaseTiles, TileMosaic
from diagnosis.settings import METRIC_CRS, WGS84

logger = logging.getLogger(__name__)

#: Address of a tile (``{z}``, ``{x}``, ``{y}``): the OpenStreetMap France-wide standard
#: style of the OSM Foundation's servers.
TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
#: Side of a tile in pixels.
TILE_PX = 256
#: Most tiles fetched for one mosaic (one report).
MAX_TILES = 16
#: Highest zoom asked (street level; a small commune needs no more).
MAX_ZOOM = 16
#: Largest tile accepted (bytes): a real tile weighs 5 to 80 kB.
MAX_TILE_BYTES = 1 * 2**20
#: Overall deadline (seconds) of all the tiles of a mosaic: a slow network gives up fast.
DEADLINE_S = 30.0
#: Margin around the territory (share of its larger side): the maps' frames are wider.
MARGIN = 0.12
#: Half the side of the Web-Mercator square (metres).
_HALF_WORLD_M = 20037508.342789244
SOURCE = "osm_tiles"

OSM_TILES = register(SourceInfo(
    key=SOURCE,
    title="Fond de carte OpenStreetMap (tuiles du style standard)",
    url="https://tile.openstreetmap.org",
    licence="ODbL 1.0 (données), CC BY-SA 2.0 (rendu)",
    attribution=OSM_TILES_ATTRIBUTION,
    vintage="tuiles du jour du téléchargement",
    crs="EPSG:3857",
    notes="Téléchargé seulement à la demande (fond de carte du rapport), en ligne.",
))


def tile_index(lon: float, lat: float, zoom: int) -> tuple[int, int]:
    """Column and row of the tile holding a point (slippy-map tile names).

    Examples
    --------
    >>> tile_index(-1.5536, 47.2173, 10)  # Nantes
    (507, 359)
    >>> tile_index(0.0, 0.0, 0)
    (0, 0)
    """
    n = 2 ** zoom
    lat = max(min(lat, 85.0511), -85.0511)
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def tile_range(bounds: Sequence[float], zoom: int) -> tuple[int, int, int, int]:
    """``(x_min, x_max, y_min, y_max)`` (inclusive) of the tiles covering ``bounds``.

    ``bounds`` is ``(west, south, east, north)`` in degrees; rows grow southwards.

    Examples
    --------
    >>> tile_range((-1.60, 47.18, -1.50, 47.25), 12)
    (2029, 2030, 1436, 1437)
    """
    west, south, east, north = bounds
    x0, y0 = tile_index(west, north, zoom)
    x1, y1 = tile_index(east, south, zoom)
    return x0, x1, y0, y1


def choose_zoom(bounds: Sequence[float], *, max_tiles: int = MAX_TILES,
                max_zoom: int = MAX_ZOOM) -> int:
    """The highest zoom at which ``bounds`` (degrees) needs at most ``max_tiles`` tiles.

    Examples
    --------
    >>> choose_zoom((-1.60, 47.18, -1.50, 47.25))  # a city: 4 × 4 tiles at most
    13
    >>> choose_zoom((-5.2, 41.3, 9.6, 51.1))  # France
    6
    """
    for zoom in range(max_zoom, -1, -1):
        x0, x1, y0, y1 = tile_range(bounds, zoom)
        if (x1 - x0 + 1) * (y1 - y0 + 1) <= max_tiles:
            return zoom
    return 0


def tile_bounds(x: int, y: int, zoom: int) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a tile in EPSG:3857 metres.

    Examples
    --------
    >>> [round(v) for v in tile_bounds(0, 0, 1)]
    [-20037508, 0, 0, 20037508]
    """
    size = 2 * _HALF_WORLD_M / 2 ** zoom
    west = -_HALF_WORLD_M + x * size
    north = _HALF_WORLD_M - y * size
    return west, north - size, west + size, north


def parse_tile(data: bytes) -> np.ndarray:
    """Decode one tile: a PNG or JPEG image of 256 × 256 pixels, as RGB ``uint8``.

    Raises
    ------
    ValueError
        An HTML page, bytes that are no image, another format or size, or a body larger
        than :data:`MAX_TILE_BYTES` (the HTTP layer then fetches the tile once more and
        never caches the bad answer).
    """
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_TILE_BYTES:
        raise ValueError(f"a tile of {len(data)} bytes (more than {MAX_TILE_BYTES})")
    if data[:512].lstrip().lower().startswith((b"<!doctype html", b"<html", b"<")):
        raise _http.HtmlAnswerError(f"an HTML page came back where a tile was expected "
                                    f"(starts with {data[:60]!r})")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format not in {"PNG", "JPEG"}:
                raise ValueError(f"a {im.format} image where a PNG tile was expected")
            if im.size != (TILE_PX, TILE_PX):  # checked before decoding: no image bomb
                raise ValueError(f"a tile of {im.size[0]} × {im.size[1]} pixels "
                                 f"(expected {TILE_PX} × {TILE_PX})")
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"not an image ({type(exc).__name__}: {exc}; starts with "
                         f"{data[:16]!r})") from exc
    return rgb


def fetch_tile(x: int, y: int, zoom: int, *, url_template: str | None = None) -> np.ndarray:
    """One tile, decoded, through the HTTP layer (its cache answers a second time).

    Raises
    ------
    SourceError
        No answer, an HTTP error, a refused address, or twice an answer that is no tile.
    """
    url = (url_template or TILE_URL).format(z=zoom, x=x, y=y)
    data = _http.fetch_bytes(url, source=SOURCE, check=parse_tile)
    return parse_tile(data)


def territory_bounds(communes: gpd.GeoDataFrame, *,
                     margin: float = MARGIN) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` in degrees of a square around the communes.

    The square (in Lambert-93, with ``margin``) covers the frame of every map of the
    report, whose map area is about as high as it is wide.
    """
    minx, miny, maxx, maxy = communes.to_crs(METRIC_CRS).total_bounds
    side = max(maxx - minx, maxy - miny, 1000.0) * (1 + 2 * margin)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    corners = gpd.GeoSeries.from_xy(
        [cx - side / 2, cx + side / 2, cx - side / 2, cx + side / 2],
        [cy - side / 2, cy - side / 2, cy + side / 2, cy + side / 2], crs=METRIC_CRS)
    west, south, east, north = (float(v) for v in corners.to_crs(WGS84).total_bounds)
    return west, south, east, north


def load_osm_tiles(communes: gpd.GeoDataFrame, *, url_template: str | None = None,
                   max_tiles: int = MAX_TILES) -> TileMosaic:
    """The tiles around ``communes`` side by side (at most ``max_tiles`` of them).

    Raises
    ------
    SourceError
        A tile could not be fetched or was no image (the first failure stops the others).
    """
    bounds = territory_bounds(communes)
    zoom = choose_zoom(bounds, max_tiles=max_tiles)
    x0, x1, y0, y1 = tile_range(bounds, zoom)
    image = np.zeros(((y1 - y0 + 1) * TILE_PX, (x1 - x0 + 1) * TILE_PX, 3), dtype=np.uint8)
    with _http.source_deadline(DEADLINE_S, source=SOURCE):
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                r, c = (y - y0) * TILE_PX, (x - x0) * TILE_PX
                image[r:r + TILE_PX, c:c + TILE_PX] = fetch_tile(x, y, zoom,
                                                                 url_template=url_template)
    west, _, _, north = tile_bounds(x0, y0, zoom)
    _, south, east, _ = tile_bounds(x1, y1, zoom)
    return TileMosaic(image=image, bounds=(west, south, east, north), zoom=zoom)


def load_base_tiles(communes: gpd.GeoDataFrame, *, enabled: bool,
                    url_template: str | None = None) -> BaseTiles | None:
    """The OpenStreetMap base of a report, or why not; ``None`` when not asked for.

    The one call of the app (checkbox « Fond de carte OpenStreetMap (en ligne) ») and of
    ``python -m diagnosis report --fond-de-carte osm``. It never raises for the network:
    offline, a refused address, a timeout or an answer that is no tile give a
    :class:`~diagnosis.map_tiles.BaseTiles` without mosaic and its French reason, and the
    maps are drawn as without the option.
    """
    if not enabled:
        return None
    try:
        return BaseTiles(load_osm_tiles(communes, url_template=url_template))
    except SourceError as exc:
        logger.warning("OpenStreetMap tiles not loaded: %s", exc)
        return BaseTiles(None, reason_fr=_reason_fr(exc))
    except OSError as exc:  # the HTTP cache could not be written (full disk, rights)
        logger.warning("OpenStreetMap tiles not loaded: %s", exc)
        return BaseTiles(None, reason_fr="cache des téléchargements inutilisable (disque "
                                         "plein ou droits d'écriture)")


def _reason_fr(exc: SourceError) -> str:
    """Why the tiles are missing, in French (never the English message).

    Examples
    --------
    >>> _reason_fr(SourceError("x: HTTP 503", kind="http", status=503))
    'serveur de tuiles OpenStreetMap : réponse HTTP 503'
    """
    return f"serveur de tuiles OpenStreetMap : {exc.motive_fr}"
