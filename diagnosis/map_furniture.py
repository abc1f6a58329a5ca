"""Pure helpers and furniture of the static maps (:mod:`diagnosis.static_maps`).

The scale bar (a round length, labelled in French), the north arrow (rotated to true
north by the meridian convergence), the attribution line, the conversion of polygons to
matplotlib paths and the data URIs of the images: no map state, no data.
"""

from __future__ import annotations

import base64
import math
import textwrap

import geopandas as gpd
import numpy as np
import shapely
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrow, Rectangle
from matplotlib.path import Path as MplPath
from pyproj import Transformer
from shapely.geometry.polygon import orient

from diagnosis.errors import InputError
from diagnosis.settings import METRIC_CRS, WGS84

#: Image formats the renderers can return.
IMAGE_FORMATS: tuple[str, ...] = ("png", "jpeg")
#: ``gid`` of the map furniture (scale bar, north arrow): fixed, labels avoid it.
FURNITURE_GID = "furniture"


# --------------------------------------------------------------------------------------
# Small helpers (pure)
# --------------------------------------------------------------------------------------


def nice_scale_length(span_m: float, *, fraction: float = 0.25) -> float:
    """Longest "round" length (1, 2 or 5 × 10^n metres) not above ``fraction × span_m``.

    Parameters
    ----------
    span_m
        Width of the map in metres.
    fraction
        Largest share of the width the scale bar may take.

    Examples
    --------
    >>> nice_scale_length(40_000)
    10000.0
    >>> nice_scale_length(7_300)
    1000.0
    >>> nice_scale_length(130_000)
    20000.0
    """
    if not math.isfinite(span_m) or span_m <= 0:
        raise InputError(f"span_m={span_m!r} must be a positive number of metres")
    target = span_m * fraction
    power = 10.0 ** math.floor(math.log10(target))
    for step in (5.0, 2.0, 1.0):
        if step * power <= target:
            return step * power
    return power  # pragma: no cover - unreachable: 1 × power <= target by construction


def format_length_fr(length_m: float) -> str:
    """French label of a length: ``"500 m"``, ``"2 km"``, ``"2,5 km"``.

    Examples
    --------
    >>> format_length_fr(500), format_length_fr(20_000), format_length_fr(2_500)
    ('500 m', '20 km', '2,5 km')
    """
    if length_m < 1000:
        return f"{length_m:g} m"
    return f"{length_m / 1000:g} km".replace(".", ",")


def grid_convergence_deg(x: float, y: float, *, crs: str = METRIC_CRS) -> float:
    """Angle (degrees, counter-clockwise) from grid north to true north at ``(x, y)``.

    Examples
    --------
    >>> abs(round(grid_convergence_deg(700_000, 6_600_000), 3))  # on the Lambert-93 meridian
    0.0
    >>> grid_convergence_deg(300_000, 6_700_000) < 0  # west of it: leans right (clockwise)
    True
    """
    to_geo = Transformer.from_crs(crs, WGS84, always_xy=True)
    to_map = Transformer.from_crs(WGS84, crs, always_xy=True)
    lon, lat = to_geo.transform(x, y)
    x2, y2 = to_map.transform(lon, min(lat + 0.05, 89.9))
    return math.degrees(math.atan2(-(x2 - x), y2 - y))


def png_data_uri(png: bytes) -> str:
    """Return a ``data:image/png;base64,…`` URI for an ``<img src>``."""
    return image_data_uri(png, fmt="png")


def image_data_uri(data: bytes, *, fmt: str = "png") -> str:
    """Return a ``data:image/<fmt>;base64,…`` URI for an ``<img src>``."""
    if fmt not in IMAGE_FORMATS:
        raise InputError(f"fmt={fmt!r} is not an image format; use one of {list(IMAGE_FORMATS)}")
    return f"data:image/{fmt};base64," + base64.b64encode(data).decode("ascii")


def polygon_paths(geoms: gpd.GeoSeries) -> list[MplPath]:
    """Convert (multi)polygons to matplotlib compound paths (holes kept empty), in order.

    Empty or missing geometries give an empty path.
    """
    paths: list[MplPath] = []
    for geom in geoms:
        if geom is None or geom.is_empty:
            paths.append(MplPath(np.empty((0, 2))))
            continue
        parts = shapely.get_parts(geom) if geom.geom_type.startswith("Multi") else [geom]
        ring_paths = []
        for poly in parts:
            if poly.geom_type != "Polygon":
                continue
            # Exterior counter-clockwise, holes clockwise: matplotlib fills with the
            # non-zero winding rule, so holes stay empty only with opposite orientations.
            poly = orient(poly, sign=1.0)
            for ring in (poly.exterior, *poly.interiors):
                xy = np.asarray(ring.coords)[:, :2]
                codes = np.full(len(xy), MplPath.LINETO, dtype=np.uint8)
                codes[0] = MplPath.MOVETO
                codes[-1] = MplPath.CLOSEPOLY
                ring_paths.append(MplPath(xy, codes))
        paths.append(MplPath.make_compound_path(*ring_paths) if ring_paths
                     else MplPath(np.empty((0, 2))))
    return paths


# --------------------------------------------------------------------------------------
# Map furniture
# --------------------------------------------------------------------------------------


def add_scale_bar(ax: Axes, *, length_m: float | None = None) -> float:
    """Draw a two-segment black/white scale bar in the lower left corner.

    The axes must be in metres (EPSG:2154). Returns the length drawn (metres).
    """
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    span = x1 - x0
    length = nice_scale_length(span) if length_m is None else float(length_m)
    height = (y1 - y0) * 0.012
    left = x0 + span * 0.04
    bottom = y0 + (y1 - y0) * 0.05
    half = length / 2
    ax.add_patch(Rectangle((left - span * 0.012, bottom - height * 1.6), length + span * 0.05,
                           height * 5.2, facecolor="white", edgecolor="none", alpha=0.8,
                           zorder=9, gid=FURNITURE_GID))
    for i, color in enumerate(("black", "white")):
        ax.add_patch(Rectangle((left + i * half, bottom), half, height, facecolor=color,
                               edgecolor="black", linewidth=0.6, zorder=10))
    for pos, text in ((left, "0"), (left + length, format_length_fr(length))):
        ax.text(pos, bottom + height * 1.5, text, ha="center", va="bottom", fontsize=6.5,
                zorder=10, gid=FURNITURE_GID)
    return length


def add_north_arrow(ax: Axes, *, rotation_deg: float = 0.0) -> None:
    """Draw a north arrow in the upper right corner, rotated by ``rotation_deg``."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    w, h = x1 - x0, y1 - y0
    size = min(w, h) * 0.07
    cx, cy = x1 - w * 0.05, y1 - h * 0.14
    theta = math.radians(rotation_deg)
    dx, dy = -math.sin(theta) * size, math.cos(theta) * size
    ax.add_patch(FancyArrow(cx - dx / 2, cy - dy / 2, dx, dy, width=size * 0.12,
                            head_width=size * 0.45, head_length=size * 0.45,
                            length_includes_head=True, color="black", zorder=10,
                            gid=FURNITURE_GID))
    ax.text(cx + dx * 0.75, cy + dy * 0.75, "N", ha="center", va="bottom", fontsize=8,
            fontweight="bold", zorder=10, gid=FURNITURE_GID)


def add_attribution(fig: Figure, text: str) -> None:
    """Write the data attribution under the map, in small type."""
    fig.text(0.01, 0.005, textwrap.fill(text, width=175), ha="left", va="bottom", fontsize=5.5,
             color="#333333", parse_math=False)
