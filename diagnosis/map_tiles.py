"""A light OpenStreetMap raster base under the report's maps (drawn, never fetched here).

The tiles are fetched by :mod:`data_sources.osm_tiles` (through the project's one HTTP
layer) and come here as data: a decoded Web-Mercator mosaic with its EPSG:3857 bounds
(:class:`TileMosaic`). :func:`draw_tiles` warps it to the map's Lambert-93 frame
(pyproj for the coordinates, :func:`scipy.ndimage.map_coordinates` for the bilinear
resampling), washes it out (:func:`pale`) and draws it under everything else.

A report asks for the base or not (:class:`BaseTiles`: the mosaic, or why it could not
be loaded, in French for the report's limits); without it the maps are drawn as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import numpy as np

from diagnosis.errors import InputError
from diagnosis.settings import METRIC_CRS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Attribution required by the OpenStreetMap tile usage policy (printed on every map).
OSM_TILES_ATTRIBUTION = "© les contributeurs d'OpenStreetMap"
#: Share of the tile's colour kept (the rest is white): a light base, not a street map.
TILE_STRENGTH = 0.5
#: Share of the tile's saturation kept (the rest is its grey level).
TILE_SATURATION = 0.6
#: Opacity of the communes' fills over the base (1: the base is hidden inside them).
FILL_ALPHA_OVER_TILES = 0.6
#: Longest side (pixels) of the warped image: above the map's own resolution (~500 px).
WARP_MAX_PX = 900
#: z-order of the base: under the neighbours' fills (0) and everything else.
TILES_ZORDER = -1.0
#: ``gid`` of the drawn base image (tests and the layout check find it by it).
TILES_GID = "osm-tiles"


@dataclass(frozen=True)
class TileMosaic:
    """Decoded tiles side by side, in Web Mercator.

    Attributes
    ----------
    image
        ``uint8`` array ``(rows, cols, 3)``: RGB, first row at the north.
    bounds
        ``(west, south, east, north)`` of the mosaic in EPSG:3857 metres.
    zoom
        Zoom level of the tiles.
    attribution
        Printed in the map's sources line.
    """

    image: np.ndarray
    bounds: tuple[float, float, float, float]
    zoom: int
    attribution: str = OSM_TILES_ATTRIBUTION

    def __post_init__(self) -> None:
        img = self.image
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or min(img.shape[:2]) < 1:
            raise InputError(f"image must be a uint8 array (rows, cols, 3), got shape "
                             f"{img.shape!r} and dtype {img.dtype!r}")
        west, south, east, north = self.bounds
        if not (west < east and south < north):
            raise InputError(f"bounds={self.bounds!r} must be (west, south, east, north) "
                             "with west < east and south < north (EPSG:3857 metres)")


@dataclass(frozen=True)
class BaseTiles:
    """The raster base a report asked for: the mosaic, or why there is none.

    Attributes
    ----------
    mosaic
        The tiles, or ``None`` when they could not be loaded.
    reason_fr
        Why not (French, for the report's limits); empty when ``mosaic`` is set.
    """

    mosaic: TileMosaic | None
    reason_fr: str = ""

    def note_fr(self) -> str:
        """The sentence of the report's limits about the base map."""
        if self.mosaic is not None:
            return ("Fond des cartes : tuiles OpenStreetMap (© les contributeurs "
                    "d'OpenStreetMap, ODbL), éclaircies sous les contours des communes.")
        return ("Le fond de carte OpenStreetMap demandé n'a pas pu être chargé"
                + (f" ({self.reason_fr.rstrip('.')})" if self.reason_fr else "")
                + " : les cartes montrent les contours des communes sans ce fond.")


@dataclass(frozen=True)
class MapBase:
    """What a map draws under its data: vector layers of an extract, a tile mosaic, or both.

    ``layers`` is :func:`data_sources.osm_base.read_base_layers`'s table (or ``None``).
    """

    layers: gpd.GeoDataFrame | None = None
    tiles: TileMosaic | None = None


def pale(rgb: np.ndarray, *, strength: float = TILE_STRENGTH,
         saturation: float = TILE_SATURATION) -> np.ndarray:
    """Wash colours out: part grey, then towards white (``uint8`` in, ``uint8`` out).

    Examples
    --------
    >>> pale(np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)).tolist()
    [[[128, 128, 128], [255, 255, 255]]]
    """
    x = rgb.astype(float)
    grey = x @ np.array([0.299, 0.587, 0.114])
    x = grey[..., None] + (x - grey[..., None]) * saturation
    x = 255.0 - (255.0 - x) * strength
    return cast(np.ndarray, np.clip(np.rint(x), 0, 255).astype(np.uint8))


def warp_to_metric(mosaic: TileMosaic, extent: tuple[float, float, float, float], *,
                   max_px: int = WARP_MAX_PX) -> np.ndarray:
    """The mosaic resampled on a Lambert-93 grid covering ``extent`` (RGBA ``uint8``).

    ``extent`` is ``(xmin, xmax, ymin, ymax)`` in EPSG:2154 metres; the first row of the
    result is at ``ymax``. Pixels outside the mosaic are transparent.
    """
    from pyproj import Transformer
    from scipy.ndimage import map_coordinates

    x0, x1, y0, y1 = extent
    if not (x0 < x1 and y0 < y1):
        raise InputError(f"extent={extent!r} must be (xmin, xmax, ymin, ymax) with "
                         "xmin < xmax and ymin < ymax")
    ratio = (y1 - y0) / (x1 - x0)
    cols = max(int(max_px if ratio <= 1 else max_px / ratio), 2)
    rows = max(int(max_px * ratio if ratio <= 1 else max_px), 2)
    xs = x0 + (np.arange(cols) + 0.5) * (x1 - x0) / cols
    ys = y1 - (np.arange(rows) + 0.5) * (y1 - y0) / rows
    gx, gy = np.meshgrid(xs, ys)
    to_merc = Transformer.from_crs(METRIC_CRS, "EPSG:3857", always_xy=True)
    mx, my = to_merc.transform(gx, gy)
    west, south, east, north = mosaic.bounds
    h, w = mosaic.image.shape[:2]
    col = (mx - west) / (east - west) * w - 0.5
    row = (north - my) / (north - south) * h - 0.5
    inside = (col >= -0.5) & (col <= w - 0.5) & (row >= -0.5) & (row <= h - 0.5)
    out = np.zeros((rows, cols, 4), dtype=np.uint8)
    coords = np.stack([row.ravel(), col.ravel()])
    for band in range(3):
        values = map_coordinates(mosaic.image[..., band].astype(float), coords, order=1,
                                 mode="nearest")
        out[..., band] = np.clip(np.rint(values), 0, 255).reshape(rows, cols)
    out[..., 3] = np.where(inside, 255, 0)
    return out


def fade_patches(handles: Sequence[object]) -> None:
    """Legend patches as translucent as the fills drawn over the tiles (same colours)."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    for h in handles:
        if isinstance(h, Patch):
            r, g, b, a = (float(v) for v in to_rgba(h.get_facecolor()))
            h.set_facecolor((r, g, b, min(a, FILL_ALPHA_OVER_TILES)))


def draw_tiles(ax: Axes, mosaic: TileMosaic) -> None:
    """Draw the mosaic, pale, under everything in the map's current frame.

    The fills already drawn (the communes, their neighbours) become translucent
    (:data:`FILL_ALPHA_OVER_TILES`) so that the base shows through them; their outlines
    stay as they are.
    """
    from matplotlib.collections import PathCollection
    from matplotlib.figure import Figure

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    fig = cast("Figure", ax.figure)
    box = ax.get_position()
    px = max(fig.get_figwidth() * box.width, fig.get_figheight() * box.height) * fig.dpi
    rgba = warp_to_metric(mosaic, (x0, x1, y0, y1), max_px=min(WARP_MAX_PX, int(px * 1.5)))
    rgba[..., :3] = pale(rgba[..., :3])
    ax.imshow(rgba, extent=(x0, x1, y0, y1), origin="upper", interpolation="bilinear",
              zorder=TILES_ZORDER, gid=TILES_GID)
    ax.set_xlim(x0, x1)  # imshow may have changed them
    ax.set_ylim(y0, y1)
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and coll.get_zorder() <= 1:
            faces = np.array(coll.get_facecolor(), dtype=float)
            if faces.size:
                faces[:, 3] = np.minimum(faces[:, 3], FILL_ALPHA_OVER_TILES)
                coll.set_facecolor(cast(Any, faces))
