"""Static maps for the PDF report: matplotlib (Agg) on commune outlines, in EPSG:2154.

Every map is drawn on its own :class:`matplotlib.figure.Figure` (no pyplot, no global
state, no tile download), in Lambert-93 metres so that the scale bar is exact, and
carries a legend, a scale bar, a north arrow (rotated to true north: grid north differs
from it by the meridian convergence) and the data attribution. Renderers return PNG
bytes; :func:`diagnosis.map_furniture.image_data_uri` embeds them in HTML. The scale
bar, the north arrow and the attribution are drawn by :mod:`diagnosis.map_furniture`.

With ``base`` (:func:`data_sources.osm_base.read_base_layers`: roads, rivers and water of
the study's OpenStreetMap extract), every renderer draws them, light, over the communes'
fills and adds the ODbL attribution; no tile is ever fetched.

Polygons are converted to matplotlib paths once per table (:func:`polygon_paths`) and
drawn as one :class:`~matplotlib.collections.PathCollection`, which is several times
faster than drawing each polygon.

See Also
--------
guides/lecture-des-cartes.md : how to read each map (in French).
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.path import Path as MplPath

from diagnosis.errors import InputError
from diagnosis.map_furniture import (
    FURNITURE_GID,
    IMAGE_FORMATS,
    add_attribution,
    add_north_arrow,
    add_scale_bar,
    format_length_fr,
    grid_convergence_deg,
    polygon_paths,
)
from diagnosis.map_tiles import TILES_GID, MapBase, draw_tiles, fade_patches
from diagnosis.schema import FACILITY_TYPES, facility_agree, facility_label
from diagnosis.settings import METRIC_CRS

#: Figure size (inches) of a full-width map in the A4 report.
MAP_SIZE_IN: tuple[float, float] = (6.7, 5.0)
#: Resolution of the PNG maps (dots per inch).
MAP_DPI = 110
#: Longest legend line (characters) before it wraps: the legend column is ~2 inches wide.
LEGEND_WRAP = 34
#: Most commune names written on a map; beyond, the most populated ones are named.
MAX_NAMES = 40
#: ``gid`` of the texts a map may move or leave out to avoid overlaps (lowest priority
#: last): names of points (sites) first, then commune names.
POINT_LABEL_GID = "point-label"
COMMUNE_LABEL_GID = "commune-label"
#: ``gid`` of the markers no label may cover (the sites of a points map).
MARKER_GID = "site-marker"
#: Pixels kept between two labels (the white halo around the letters).
LABEL_GAP_PX = 1.5
#: Colour of each facility type on maps (colour-blind-safe palette, Okabe–Ito based).
TYPE_COLORS: dict[str, str] = {
    "pmi": "#D55E00",
    "eaje": "#0072B2",
    "mam": "#56B4E9",
    "laep": "#009E73",
    "rpe": "#E69F00",
    "centre_social": "#CC79A7",
    "evs": "#882255",
    "maternite": "#000000",
    "sage_femme": "#999933",
    "mairie": "#555555",
    "maison_1000_jours": "#AA0000",
}
_WITHIN_COLOR = "#CDEBC5"
_BEYOND_COLOR = "#F9D5B8"
_MISSING_COLOR = "#E0E0E0"
_CONTEXT_FACE = "#F4F4F4"
_CONTEXT_EDGE = "#BBBBBB"
_EDGE = "#4D4D4D"
#: Style of the base layers (:func:`data_sources.osm_base.read_base_layers` kinds):
#: colour, line width (points), z-order (above the communes' fills, under the points).
BASE_STYLES: dict[str, tuple[str, float, float]] = {
    "water": ("#B9D7EE", 0.0, 1.5),
    "river": ("#7FB2DC", 0.8, 1.6),
    "road": ("#9A9A9A", 0.45, 2.0),
    "major_road": ("#6E6E6E", 0.9, 2.1),
}
#: Attribution added under a map drawn with base layers (OpenStreetMap, ODbL).
OSM_BASE_ATTRIBUTION = "Fond : © les contributeurs d'OpenStreetMap (ODbL)"
_WITH_OSM_BASE = "with-osm-base"
#: ``gid`` of the legend entries of the base layers (drawn opaque, even over tiles).
BASE_HANDLE_GID = "base-layer"
#: What a map may draw under its data: an extract's layers, or those and OSM tiles.
Base: TypeAlias = gpd.GeoDataFrame | MapBase | None


# --------------------------------------------------------------------------------------
# Map frame
# --------------------------------------------------------------------------------------


def _metric(gdf: gpd.GeoDataFrame | gpd.GeoSeries, name: str) -> Any:
    if gdf.crs is None:
        raise InputError(f"{name} has no CRS; set one (EPSG:4326 expected)")
    return gdf.to_crs(METRIC_CRS)


def _new_map(title: str, *, size_in: tuple[float, float] = MAP_SIZE_IN) -> tuple[Figure, Axes]:
    fig = Figure(figsize=size_in, dpi=MAP_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.01, 0.07, 0.64, 0.85))
    ax.set_aspect("equal")
    ax.set_axis_off()
    fig.suptitle(title, x=0.01, y=0.985, ha="left", va="top", fontsize=9.5, fontweight="bold")
    return fig, ax


def _set_extent(ax: Axes, bounds: Sequence[float], *, pad: float = 0.04) -> None:
    minx, miny, maxx, maxy = bounds
    w, h = max(maxx - minx, 1000.0), max(maxy - miny, 1000.0)
    # Keep the axes' aspect (equal) while filling the frame.
    fig = cast(Figure, ax.figure)
    box_w = ax.get_position().width * fig.get_figwidth()
    box_h = ax.get_position().height * fig.get_figheight()
    ratio = box_h / box_w
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    w, h = w * (1 + 2 * pad), h * (1 + 2 * pad)
    if h / w > ratio:
        w = h / ratio
    else:
        h = w * ratio
    ax.set_xlim(cx - w / 2, cx + w / 2)
    ax.set_ylim(cy - h / 2, cy + h / 2)


def _draw_polygons(ax: Axes, paths: list[MplPath], *, facecolors: Any, edgecolor: str = _EDGE,
                   linewidth: float = 0.4, zorder: float = 1, hatch: str | None = None) -> None:
    coll = PathCollection(paths, facecolors=facecolors, edgecolors=edgecolor,
                          linewidths=linewidth, zorder=zorder)
    if hatch:
        coll.set_hatch(hatch)
    ax.add_collection(coll)


def _draw_context(ax: Axes, context: gpd.GeoDataFrame | None, bounds: Sequence[float]) -> None:
    if context is None or len(context) == 0:
        return
    ctx = context.cx[bounds[0]:bounds[2], bounds[1]:bounds[3]]
    if len(ctx):
        _draw_polygons(ax, polygon_paths(ctx.geometry), facecolors=_CONTEXT_FACE,
                       edgecolor=_CONTEXT_EDGE, linewidth=0.3, zorder=0)


def _draw_base(ax: Axes, base: Base) -> list[Any]:
    """Draw the base layers (roads, rivers, water) inside the frame; return legend handles.

    ``base`` is :func:`data_sources.osm_base.read_base_layers`'s table (``kind``,
    geometry, any CRS), or a :class:`~diagnosis.map_tiles.MapBase` that may add an
    OpenStreetMap tile mosaic (drawn pale under everything). Nothing is fetched here: a
    map without base shows the commune outlines only.
    """
    if isinstance(base, MapBase):
        if base.tiles is not None:
            draw_tiles(ax, base.tiles)
            ax.set_gid(_WITH_OSM_BASE)  # :func:`_finish` adds the OSM attribution
        base = base.layers
    if base is None or len(base) == 0:
        return []
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    layer = _metric(base, "base").cx[x0:x1, y0:y1]
    handles: list[Any] = []
    labels = {"water": "plan d'eau", "river": "cours d'eau", "road": "route",
              "major_road": "route principale"}
    for kind, (color, width, z) in BASE_STYLES.items():
        sub = layer.loc[layer["kind"].eq(kind)]
        if len(sub) == 0:
            continue
        if kind == "water":
            _draw_polygons(ax, polygon_paths(sub.geometry), facecolors=color,
                           edgecolor=color, linewidth=0.0, zorder=z)
            handles.append(Patch(facecolor=color, edgecolor=color, label=labels[kind],
                                 gid=BASE_HANDLE_GID))
            continue
        lines = [np.asarray(part.coords)[:, :2] for g in sub.geometry
                 for part in (shapely.get_parts(g) if g.geom_type.startswith("Multi")
                              else [g]) if part.geom_type == "LineString"]
        ax.add_collection(LineCollection(lines, colors=color, linewidths=width, zorder=z,
                                         capstyle="round"))
        handles.append(Line2D([], [], color=color, linewidth=width + 0.4,
                              label=labels[kind]))
    if handles:
        ax.set_gid(_WITH_OSM_BASE)  # :func:`_finish` adds the ODbL attribution
    return handles


def save_figure(fig: Figure, *, fmt: str = "png", dpi: int = MAP_DPI) -> bytes:
    """Encode a figure as PNG (default) or JPEG (``fmt="jpeg"``: faster to embed in a PDF)."""
    if fmt not in IMAGE_FORMATS:
        raise InputError(f"fmt={fmt!r} is not an image format; use one of {list(IMAGE_FORMATS)}")
    buf = io.BytesIO()
    if fmt == "png":
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    else:
        fig.savefig(buf, format="jpeg", dpi=dpi, pil_kwargs={"quality": 90})
    return buf.getvalue()


def _finish(fig: Figure, ax: Axes, handles: list[Any], *, legend_title: str,
            attribution: str, note: str = "", fmt: str = "png") -> bytes:
    """Add the legend, scale bar, north arrow, attribution; return the encoded image."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    add_scale_bar(ax)
    add_north_arrow(ax, rotation_deg=grid_convergence_deg((x0 + x1) / 2, (y0 + y1) / 2))
    hidden = declutter_labels(ax)
    if hidden:
        note = (note + " " if note else "") + (
            f"{hidden} libellé(s) masqué(s) pour éviter les chevauchements.")
    for h in handles:
        h.set_label(textwrap.fill(str(h.get_label()), width=LEGEND_WRAP))
    if any(im.get_gid() == TILES_GID for im in ax.images):
        fade_patches([h for h in handles if h.get_gid() != BASE_HANDLE_GID])
    if handles:
        leg = fig.legend(handles=handles, title=legend_title, loc="upper left",
                         bbox_to_anchor=(0.67, 0.92), fontsize=6.5, title_fontsize=7,
                         frameon=False, alignment="left")
        leg.get_title().set_fontweight("bold")
    if note:
        fig.text(0.67, 0.08, textwrap.fill(note, width=48), ha="left", va="bottom",
                 fontsize=6, color="#333333", parse_math=False)
    if ax.get_gid() == _WITH_OSM_BASE:
        attribution = f"{attribution} · {OSM_BASE_ATTRIBUTION}" if attribution \
            else OSM_BASE_ATTRIBUTION
    add_attribution(fig, attribution)
    return save_figure(fig, fmt=fmt)


def label_communes(ax: Axes, communes: gpd.GeoDataFrame, *, name_col: str = "name",
                   max_labels: int = MAX_NAMES, rank_col: str = "population_2022") -> int:
    """Write commune names (white halo) at a point inside each polygon; return how many.

    With more than ``max_labels`` communes, only the ``max_labels // 2`` largest by
    ``rank_col`` are named (when the column exists; else none). Names are written
    largest first (by ``rank_col``, else by area): :func:`declutter_labels` keeps the
    first ones when two would overlap.
    """
    from matplotlib import patheffects

    if name_col not in communes or len(communes) == 0:
        return 0
    com = communes
    if rank_col in com:
        order = pd.to_numeric(com[rank_col], errors="coerce").fillna(-1)
    else:
        order = pd.Series(com.geometry.area.to_numpy(), index=com.index)
    if len(com) > max_labels:
        if rank_col not in com:
            return 0
        com = com.loc[order.sort_values(ascending=False).index[: max_labels // 2]]
    else:
        com = com.loc[order.sort_values(ascending=False, kind="stable").index]
    size = 5.5 if len(com) <= 15 else 4.8
    halo = [patheffects.withStroke(linewidth=1.6, foreground="white")]
    pts = com.geometry.representative_point()
    for p, name in zip(pts, com[name_col], strict=True):
        ax.text(p.x, p.y, str(name), ha="center", va="center", fontsize=size, zorder=8,
                color="#1A1A1A", parse_math=False, path_effects=halo, gid=COMMUNE_LABEL_GID)
    return len(com)


#: Where a commune name may go around its point, in label heights (above or below, two
#: lines at most: further, it would name the neighbour).
_COMMUNE_MOVES: tuple[tuple[float, float], ...] = ((0, 0), (0, 1.1), (0, -1.1), (0, 2.2),
                                                   (0, -2.2))
#: Where a point's name may go around it (offset points, alignment).
_POINT_MOVES: tuple[tuple[float, float, str, str], ...] = tuple(
    (dx, dy + (step if dy > 0 else -step), ha, va)
    for step in (0, 12, 24, 36)
    for dx, dy, ha, va in ((5, 5, "left", "bottom"), (5, -5, "left", "top"),
                           (-5, 5, "right", "bottom"), (-5, -5, "right", "top")))


def _box(artist: Any, renderer: Any, gap: float = LABEL_GAP_PX) -> Any:
    """Rendered extent of an artist (of a label's letters only: not its leader line)."""
    from matplotlib.text import Annotation, Text

    if isinstance(artist, Annotation):
        artist.update_positions(renderer)  # its text follows the offset given
    if isinstance(artist, Text):
        return Text.get_window_extent(artist, renderer).padded(gap)
    return artist.get_window_extent(renderer).padded(gap)


def _marker_boxes(ax: Axes) -> list[Any]:
    """Pixel boxes of the markers tagged :data:`MARKER_GID` (one per point)."""
    from matplotlib.transforms import Bbox

    fig = cast(Figure, ax.figure)
    boxes = []
    for coll in ax.collections:
        if coll.get_gid() != MARKER_GID or not isinstance(coll, PathCollection):
            continue
        sizes = coll.get_sizes()
        half = (math.sqrt(float(sizes[0])) if len(sizes) else 6.0) / 2 * fig.dpi / 72
        for x, y in ax.transData.transform(np.asarray(coll.get_offsets())):
            boxes.append(Bbox([[x - half, y - half], [x + half, y + half]]))
    return boxes


def _centre(box: Any) -> np.ndarray:
    return np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])


def declutter_labels(ax: Axes) -> int:
    """Move or leave out map labels so that none overlaps another or the map furniture.

    Labels are the texts tagged :data:`POINT_LABEL_GID` (names of sites, placed first)
    and :data:`COMMUNE_LABEL_GID` (commune names, in the order written: largest first).
    Each is tried at its place, then around it (:data:`_COMMUNE_MOVES`,
    :data:`_POINT_MOVES`); one that fits nowhere inside the map without touching a
    label already kept, the scale bar, the north arrow or a site's marker
    (:data:`MARKER_GID`) is hidden.

    Returns
    -------
    int
        How many labels were hidden (the map says so in its note).
    """
    from matplotlib.text import Annotation

    fig = cast(Figure, ax.figure)
    renderer = cast(Any, fig.canvas).get_renderer()
    frame = ax.get_window_extent(renderer)
    kept = [_box(a, renderer, 0.0) for a in [*ax.texts, *ax.patches]
            if a.get_gid() == FURNITURE_GID and a.get_visible()] + _marker_boxes(ax)
    labels = [t for gid in (POINT_LABEL_GID, COMMUNE_LABEL_GID) for t in ax.texts
              if t.get_gid() == gid and t.get_visible()]
    hidden = 0
    for t in labels:
        if isinstance(t, Annotation):
            moves: list[Any] = list(_POINT_MOVES)
        else:
            box = _box(t, renderer, 0.0)
            anchor = _centre(box)
            moves = [(dx * box.width / 2, dy * box.height) for dx, dy in _COMMUNE_MOVES]
        for move in moves:
            if isinstance(t, Annotation):
                t.xyann = (move[0], move[1])
                t.set_horizontalalignment(move[2])
                t.set_verticalalignment(move[3])
            else:
                box = _box(t, renderer, 0.0)
                shift = np.asarray(anchor, dtype=float) + np.asarray(move) - _centre(box)
                box = box.translated(*shift)
                # a name that overflows the frame slides back inside it (no further)
                shift[0] += max(frame.x0 - box.x0, 0.0) - max(box.x1 - frame.x1, 0.0)
                shift[1] += max(frame.y0 - box.y0, 0.0) - max(box.y1 - frame.y1, 0.0)
                x, y = ax.transData.inverted().transform(
                    ax.transData.transform(t.get_position()) + shift)
                t.set_position((float(x), float(y)))
            box = _box(t, renderer)
            inside = frame.padded(2 * LABEL_GAP_PX)
            if inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1) \
                    and not any(box.overlaps(k) for k in kept):
                kept.append(box)
                break
        else:
            t.set_visible(False)
            hidden += 1
    return hidden


def layout_problems(fig: Figure) -> list[str]:
    """What overlaps on a map figure: labels with labels, labels or the map with the legend.

    Checks the visible texts of every axes (labels, scale bar, north arrow), each legend
    of the figure and the figure's own texts (notes, attribution) with their rendered
    extents. Used by the tests of every map of the report.

    Returns
    -------
    list of str
        One line per overlap (empty when the layout is clean).
    """
    renderer = cast(Any, fig.canvas).get_renderer()
    out: list[str] = []
    legends = [*fig.legends, *(lg for a in fig.axes if (lg := a.get_legend()) is not None)]
    legend_boxes = [(f"légende « {lg.get_title().get_text()} »", lg.get_window_extent(renderer))
                    for lg in legends]
    fig_texts = [(f"texte « {t.get_text()[:30]} »", t.get_window_extent(renderer))
                 for t in fig.texts if t.get_visible() and t.get_text()]
    for ax in fig.axes:
        frame = ax.get_window_extent(renderer)
        texts = [t for t in ax.texts if t.get_visible() and t.get_text()
                 and t.get_gid() != FURNITURE_GID]
        boxes = [(t.get_text(), _box(t, renderer, 0.0)) for t in texts]
        for a, ba in boxes:
            if any(ba.overlaps(m) for m in _marker_boxes(ax)):
                out.append(f"« {a} » couvre un site")
        for i, (a, ba) in enumerate(boxes):
            for b, bb in boxes[i + 1:]:
                if ba.overlaps(bb):
                    out.append(f"« {a} » chevauche « {b} »")
            for name, lb in legend_boxes:
                if ba.overlaps(lb):
                    out.append(f"« {a} » chevauche la {name}")
        for name, lb in legend_boxes:
            if ax.get_legend() is None and lb.overlaps(frame):
                out.append(f"la {name} couvre la carte")
    for i, (a, ba) in enumerate([*legend_boxes, *fig_texts]):
        for b, bb in [*legend_boxes, *fig_texts][i + 1:]:
            if ba.overlaps(bb):
                out.append(f"{a} chevauche {b}")
    return out


def _bounds(gdf: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = (float(v) for v in gdf.total_bounds)
    return minx, miny, maxx, maxy


def _union_bounds(a: Sequence[float], pts: gpd.GeoSeries | None) -> tuple[float, ...]:
    if pts is None or len(pts) == 0:
        return tuple(a)
    b = pts.total_bounds
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


# --------------------------------------------------------------------------------------
# Renderers
# --------------------------------------------------------------------------------------


def render_territory_map(
    communes: gpd.GeoDataFrame,
    *,
    title: str,
    attribution: str,
    context: gpd.GeoDataFrame | None = None,
    name_col: str = "name",
    max_labels: int = 40,
    fmt: str = "png",
    base: Base = None,
) -> bytes:
    """Map of the territory's communes over their neighbours, names written when few.

    Parameters
    ----------
    communes
        The territory's communes (polygons, any CRS).
    title, attribution
        Title and attribution printed on the map.
    context
        Neighbouring communes drawn in grey (e.g. all loaded communes).
    name_col
        Column of commune names.
    max_labels
        Names are written when the territory has at most this many communes.

    Returns
    -------
    bytes
        A PNG image (JPEG with ``fmt="jpeg"``).
    """
    com = _metric(communes, "communes")
    fig, ax = _new_map(title)
    bounds = _bounds(com)
    _set_extent(ax, bounds, pad=0.08)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    if context is not None:
        _draw_context(ax, _metric(context, "context"), (x0, y0, x1, y1))
    _draw_polygons(ax, polygon_paths(com.geometry), facecolors="#DCE9F5", zorder=1)
    base_handles = _draw_base(ax, base)
    label_communes(ax, com, name_col=name_col, max_labels=max_labels)
    handles = [Patch(facecolor="#DCE9F5", edgecolor=_EDGE, label="Communes du territoire")]
    if context is not None:
        handles.append(Patch(facecolor=_CONTEXT_FACE, edgecolor=_CONTEXT_EDGE,
                             label="Communes voisines"))
    handles += base_handles
    return _finish(fig, ax, handles, legend_title="Légende", attribution=attribution, fmt=fmt)


def class_breaks(values: np.ndarray, *, n_classes: int = 5) -> np.ndarray:
    """Class limits (quantiles, rounded, unique) for a choropleth; ``len = classes + 1``.

    Examples
    --------
    >>> class_breaks(np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]), n_classes=2).tolist()
    [1.0, 5.5, 10.0]
    >>> class_breaks(np.arange(0.0, 101.0), n_classes=4).tolist()
    [0.0, 25.0, 50.0, 75.0, 100.0]
    >>> class_breaks(np.array([4.0, 4.0, 4.0])).tolist()
    [4.0, 4.0]
    """
    v = values[np.isfinite(values)]
    if v.size == 0:
        return np.array([0.0, 0.0])
    qs = np.quantile(v, np.linspace(0, 1, n_classes + 1))
    span = float(v.max() - v.min())
    decimals = 0 if span >= 20 else (1 if span >= 2 else 2)
    scale = 10.0 ** decimals
    qs = np.round(qs, decimals)
    qs[0] = math.floor(float(v.min()) * scale) / scale
    qs[-1] = math.ceil(float(v.max()) * scale) / scale
    out = np.unique(qs)
    return out if out.size > 1 else np.array([out[0], out[0]])


def _fr_num(x: float) -> str:
    if float(x).is_integer():
        return f"{x:,.0f}".replace(",", "\u202f")
    return f"{x:,.2f}".rstrip("0").rstrip(".").replace(",", "\u202f").replace(".", ",")


def render_choropleth_map(
    communes: gpd.GeoDataFrame,
    column: str,
    *,
    title: str,
    legend_title: str,
    attribution: str,
    context: gpd.GeoDataFrame | None = None,
    cmap: str = "Blues",
    n_classes: int = 5,
    missing_label: str = "donnée manquante",
    note: str = "",
    fmt: str = "png",
    base: Base = None,
) -> bytes:
    """Choropleth of one numeric commune column in quantile classes.

    Missing values (NaN: statistical secret, not published) are drawn hatched grey and
    listed in the legend, never coloured as 0.

    Returns
    -------
    bytes
        A PNG image (JPEG with ``fmt="jpeg"``).
    """
    if column not in communes.columns:
        raise InputError(f"column={column!r} is not in communes; found {list(communes.columns)}")
    from matplotlib import colormaps

    com = _metric(communes, "communes")
    values = pd.to_numeric(com[column], errors="coerce").to_numpy(dtype=float)
    breaks = class_breaks(values, n_classes=n_classes)
    n_cls = max(len(breaks) - 1, 1)
    colors = colormaps[cmap](np.linspace(0.2, 0.9, n_cls))
    cls = np.clip(np.searchsorted(breaks, values, side="right") - 1, 0, n_cls - 1)
    faces = np.array([to_rgba(_MISSING_COLOR) if not np.isfinite(v) else colors[c]
                      for v, c in zip(values, cls, strict=True)]).reshape(-1, 4)
    fig, ax = _new_map(title)
    bounds = _bounds(com)
    _set_extent(ax, bounds)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    if context is not None:
        _draw_context(ax, _metric(context, "context"), (x0, y0, x1, y1))
    paths = polygon_paths(com.geometry)
    _draw_polygons(ax, paths, facecolors=faces, zorder=1)
    miss = ~np.isfinite(values)
    if miss.any():
        _draw_polygons(ax, [p for p, m in zip(paths, miss, strict=True) if m],
                       facecolors="none", edgecolor="#888888", linewidth=0.0, zorder=2,
                       hatch="////")
    base_handles = _draw_base(ax, base)
    label_communes(ax, com)
    handles: list[Any] = []
    if n_cls == 1 and breaks[0] == breaks[-1]:
        handles.append(Patch(facecolor=colors[0], edgecolor=_EDGE, label=_fr_num(breaks[0])))
    else:
        for i in range(n_cls):
            handles.append(Patch(facecolor=colors[i], edgecolor=_EDGE,
                                 label=f"{_fr_num(breaks[i])} – {_fr_num(breaks[i + 1])}"))
    if miss.any():
        handles.append(Patch(facecolor=_MISSING_COLOR, edgecolor=_EDGE, hatch="////",
                             label=f"{missing_label} ({int(miss.sum())})"))
    if context is not None:
        handles.append(Patch(facecolor=_CONTEXT_FACE, edgecolor=_CONTEXT_EDGE,
                             label="hors territoire"))
    return _finish(fig, ax, handles + base_handles, legend_title=legend_title,
                   attribution=attribution, note=note, fmt=fmt)


def render_facility_map(
    communes: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    facility_type: str,
    threshold_m: float,
    title: str,
    attribution: str,
    nearby: gpd.GeoDataFrame | None = None,
    context: gpd.GeoDataFrame | None = None,
    within_col: str | None = None,
    town_halls: gpd.GeoSeries | None = None,
    fmt: str = "png",
    base: Base = None,
) -> bytes:
    """Offer of one facility type: facilities, and communes within the threshold.

    Parameters
    ----------
    communes
        The territory's communes; ``within_col`` (default ``within_<type>``) says
        whether the town hall is within ``threshold_m`` of a facility of the type.
    facilities
        Facilities of the territory (only rows of ``facility_type`` are drawn).
    facility_type
        Type drawn.
    threshold_m
        Threshold used for ``within_col`` (shown in the legend).
    title, attribution
        Printed on the map.
    nearby
        Facilities outside the territory used as the nearest for some commune (drawn
        hollow; the map extent grows to include them).
    context
        Neighbouring communes drawn in grey.
    within_col
        Boolean column of ``communes``.
    town_halls
        Points from which distances are measured (drawn as small dots).

    Returns
    -------
    bytes
        A PNG image (JPEG with ``fmt="jpeg"``).
    """
    if facility_type not in FACILITY_TYPES:
        raise InputError(f"facility_type={facility_type!r} is not a facility type; use one of "
                         f"{sorted(FACILITY_TYPES)}")
    col = within_col or f"within_{facility_type}"
    com = _metric(communes, "communes")
    fac = _metric(facilities.loc[facilities["type"].eq(facility_type)], "facilities")
    near = None
    if nearby is not None and len(nearby):
        near = _metric(nearby.loc[nearby["type"].eq(facility_type)], "nearby")
    fig, ax = _new_map(title)
    bounds = _union_bounds(_bounds(com), near.geometry if near is not None else None)
    _set_extent(ax, bounds)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    if context is not None:
        _draw_context(ax, _metric(context, "context"), (x0, y0, x1, y1))
    within = com[col].fillna(False).astype(bool).to_numpy() if col in com else \
        np.zeros(len(com), dtype=bool)
    faces = [_WITHIN_COLOR if w else _BEYOND_COLOR for w in within]
    _draw_polygons(ax, polygon_paths(com.geometry), facecolors=faces, zorder=1)
    base_handles = _draw_base(ax, base)
    label_communes(ax, com)
    km = format_length_fr(threshold_m)
    handles: list[Any] = [
        Patch(facecolor=_WITHIN_COLOR, edgecolor=_EDGE,
              label=f"mairie à {km} ou moins ({int(within.sum())})"),
        Patch(facecolor=_BEYOND_COLOR, edgecolor=_EDGE,
              label=f"mairie à plus de {km} ({int((~within).sum())})"),
    ]
    if town_halls is not None and len(town_halls):
        th = _metric(town_halls, "town_halls")
        ax.scatter(th.x, th.y, s=3, color="#333333", zorder=3, linewidths=0)
        handles.append(Line2D([], [], marker="o", color="#333333", linestyle="none",
                              markersize=2, label="mairie (départ des distances)"))
    color = TYPE_COLORS.get(facility_type, "#000000")
    label = facility_label(facility_type, plural=True)
    if len(fac):
        approx = fac["position_precision"].eq("commune").to_numpy() \
            if "position_precision" in fac else np.zeros(len(fac), dtype=bool)
        ax.scatter(fac.geometry.x[~approx], fac.geometry.y[~approx], s=28, color=color,
                   edgecolors="white", linewidths=0.6, zorder=6, marker="o")
        ax.scatter(fac.geometry.x[approx], fac.geometry.y[approx], s=28, color=color,
                   edgecolors="white", linewidths=0.6, zorder=6, marker="D")
        handles.append(Line2D([], [], marker="o", color=color, linestyle="none",
                              markersize=5, label=f"{label} du territoire ({len(fac)})"))
        if approx.any():
            handles.append(Line2D([], [], marker="D", color=color, linestyle="none",
                                  markersize=4.5,
                                  label=f"dont position approximative ({int(approx.sum())})"))
    if near is not None and len(near):
        ax.scatter(near.geometry.x, near.geometry.y, s=28, facecolors="white",
                   edgecolors=color, linewidths=1.2, zorder=6)
        nearest = facility_agree(facility_type, "voisin", plural=True)
        handles.append(Line2D([], [], marker="o", markerfacecolor="white",
                              markeredgecolor=color, color="none", markersize=5,
                              label=f"{label} {nearest} les plus proches ({len(near)})"))
    if context is not None:
        handles.append(Patch(facecolor=_CONTEXT_FACE, edgecolor=_CONTEXT_EDGE,
                             label="hors territoire"))
    note = "Distances à vol d'oiseau depuis la mairie de chaque commune."
    return _finish(fig, ax, handles + base_handles, legend_title=label,
                   attribution=attribution, note=note, fmt=fmt)


def render_points_map(
    communes: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    *,
    title: str,
    attribution: str,
    label_col: str | None = None,
    legend_label: str = "Sites",
    context: gpd.GeoDataFrame | None = None,
    color: str = "#AA0000",
    fmt: str = "png",
    base: Base = None,
) -> bytes:
    """Points (e.g. recommended sites) over the territory's communes, optionally labelled.

    Returns
    -------
    bytes
        A PNG image (JPEG with ``fmt="jpeg"``).
    """
    com = _metric(communes, "communes")
    pts = _metric(points, "points")
    fig, ax = _new_map(title)
    _set_extent(ax, _union_bounds(_bounds(com), pts.geometry))
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    if context is not None:
        _draw_context(ax, _metric(context, "context"), (x0, y0, x1, y1))
    _draw_polygons(ax, polygon_paths(com.geometry), facecolors="#DCE9F5", zorder=1)
    base_handles = _draw_base(ax, base)
    label_communes(ax, com)
    ax.scatter(pts.geometry.x, pts.geometry.y, s=180, color=color, edgecolors="white",
               linewidths=0.8, zorder=6, marker="*", gid=MARKER_GID)
    if label_col and label_col in pts:
        for x, y, text in zip(pts.geometry.x, pts.geometry.y, pts[label_col], strict=True):
            ax.annotate(str(text), (x, y), xytext=(5, 5), textcoords="offset points",
                        fontsize=7, fontweight="bold", zorder=7, parse_math=False,
                        gid=POINT_LABEL_GID,
                        arrowprops={"arrowstyle": "-", "color": "#555555", "lw": 0.5,
                                    "shrinkA": 0, "shrinkB": 5},
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                              "alpha": 0.8})
    handles: list[Any] = [
        Patch(facecolor="#DCE9F5", edgecolor=_EDGE, label="Communes du territoire"),
        Line2D([], [], marker="*", color=color, linestyle="none", markersize=8,
               label=f"{legend_label} ({len(pts)})"),
    ]
    return _finish(fig, ax, handles + base_handles, legend_title="Légende",
                   attribution=attribution, fmt=fmt)


def render_offer_map(
    communes: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    types: Sequence[str],
    title: str,
    attribution: str,
    context: gpd.GeoDataFrame | None = None,
    fmt: str = "png",
    base: Base = None,
) -> bytes:
    """Every facility of ``types`` on one map, one colour per type, communes named.

    One map of the whole offer keeps the report short; the per-type figures are in its
    tables (and the app draws one map per type).

    Returns
    -------
    bytes
        A PNG image (JPEG with ``fmt="jpeg"``).
    """
    unknown = [t for t in types if t not in FACILITY_TYPES]
    if unknown:
        raise InputError(f"types={unknown!r} are not facility types; use some of "
                         f"{sorted(FACILITY_TYPES)}")
    com = _metric(communes, "communes")
    fac = _metric(facilities.loc[facilities["type"].isin(list(types))], "facilities")
    fig, ax = _new_map(title)
    _set_extent(ax, _bounds(com))
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    if context is not None:
        _draw_context(ax, _metric(context, "context"), (x0, y0, x1, y1))
    _draw_polygons(ax, polygon_paths(com.geometry), facecolors="#F7F7F2", zorder=1)
    base_handles = _draw_base(ax, base)
    label_communes(ax, com)
    handles: list[Any] = []
    for t in types:
        sub = fac.loc[fac["type"].eq(t)]
        if len(sub) == 0:
            continue
        color = TYPE_COLORS.get(t, "#000000")
        ax.scatter(sub.geometry.x, sub.geometry.y, s=22, color=color, edgecolors="white",
                   linewidths=0.5, zorder=6)
        handles.append(Line2D([], [], marker="o", color=color, linestyle="none",
                              markersize=4.5, label=f"{facility_label(t, plural=True)} "
                                                     f"({len(sub)})"))
    if context is not None:
        handles.append(Patch(facecolor=_CONTEXT_FACE, edgecolor=_CONTEXT_EDGE,
                             label="hors territoire"))
    return _finish(fig, ax, handles + base_handles, legend_title="Structures du territoire",
                   attribution=attribution, fmt=fmt)


def attribution_text(sources: Sequence[Mapping[str, Any]], *,
                     keys: Sequence[str] | None = None) -> str:
    """Join the attributions of sources (unique, in order), restricted to ``keys`` if given.

    Examples
    --------
    >>> attribution_text([{"key": "a", "attribution": "IGN"}, {"key": "b", "attribution": "Insee"},
    ...                   {"key": "c", "attribution": "IGN"}])
    'Sources : IGN · Insee'
    """
    seen: dict[str, None] = {}
    for s in sources:
        if keys is not None and s.get("key") not in keys:
            continue
        text = str(s.get("attribution", "")).strip()
        if text:
            seen.setdefault(text, None)
    return ("Sources : " + " · ".join(seen)) if seen else ""
