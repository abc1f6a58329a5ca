"""Shared parts of the analysis maps: commune fills, catchments, site markers, legends."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
from shapely.geometry import mapping

from diagnosis.maps._common import (
    _FACILITY_PANE,
    _FONT,
    _OSM_ATTRIBUTION,
    _Attribution,
    _esc,
    _fmt_number,
    _GeoJson,
    _leaflet_map,
    _Legend,
)
from diagnosis.maps._layers import _commune_style
from diagnosis.settings import WGS84

# ======================================================================================
# Maps of the analyses: priority score, time to services, siting, partner network
# ======================================================================================

#: Colours of the priority score classes (five equal classes up to the top score).
PRIORITY_COLORS: tuple[str, ...] = ("#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")
#: Colours of the time classes: within a third, two thirds, the threshold, beyond it.
ACCESS_COLORS: tuple[str, ...] = ("#1a9850", "#a6d96a", "#fee08b", "#d73027")
#: Colour of catchment areas (isochrones) and of recommended / proposed sites.
CATCHMENT_COLOR = "#2b6cb0"
RECOMMENDED_COLOR = "#ffd700"
USER_SITE_COLOR = "#7b3294"
NEUTRAL_COLOR = "#f0f0f0"


def _num(value: Any) -> float:
    """A number from a table cell (NaN when missing or not a number)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _analysis_map(frame: gpd.GeoDataFrame, tiles: str | None) -> tuple[folium.Map, list[float]]:
    """An empty map centred on ``frame`` (EPSG:4326) and its bounds (west, south, east, north)."""
    west, south, east, north = (float(v) for v in frame.to_crs(WGS84).total_bounds)
    m = _leaflet_map(location=[(south + north) / 2, (west + east) / 2], zoom_start=10,
                     prefer_canvas=True, control_scale=True)
    if tiles:
        folium.TileLayer(tiles, name="Fond OpenStreetMap", attr=_OSM_ATTRIBUTION,
                         control=False).add_to(m)
    return m, [west, south, east, north]


def _fit(m: folium.Map, bounds: Sequence[float]) -> None:
    west, south, east, north = bounds
    m.fit_bounds([[south, west], [north, east]], padding_top_left=(310, 20),
                 padding_bottom_right=(20, 20))


def _fill_layer(communes: gpd.GeoDataFrame, fills: Sequence[str], tooltips: Sequence[str],
                name: str) -> folium.FeatureGroup:
    """Communes filled with ``fills`` (one colour each), an HTML tooltip each (escaped)."""
    drawn = [(geom, fill, tip) for geom, fill, tip in zip(
        communes.to_crs(WGS84).geometry, fills, tooltips, strict=True) if geom is not None]
    features = [{"type": "Feature", "geometry": mapping(geom),
                 "properties": {"fill": fill, "tooltip": tip}} for geom, fill, tip in drawn]
    group = folium.FeatureGroup(name=name, show=True)
    _GeoJson({"type": "FeatureCollection", "features": features},
             style_function=_commune_style,
             tooltip=folium.GeoJsonTooltip(fields=["tooltip"], labels=False),
             control=False, shapes=[geom for geom, _, _ in drawn]).add_to(group)
    return group


def _catchment_style(feature: Mapping[str, Any]) -> dict[str, Any]:
    return {"color": CATCHMENT_COLOR, "weight": 2.5, "dashArray": "6 4",
            "fillColor": CATCHMENT_COLOR, "fillOpacity": 0.12}


def _add_catchments(m: folium.Map, catchments: gpd.GeoDataFrame | None, *,
                    names: Sequence[str] = ()) -> int:
    """Draw isochrones (one row each, from :func:`diagnosis.analyses.compute_catchment`)."""
    if catchments is None or len(catchments) == 0:
        return 0
    areas = catchments.to_crs(WGS84)
    features = []
    for i, row in enumerate(areas.to_dict("records")):
        name = names[i] if i < len(names) else str(row.get("name", "") or "")
        minutes = _num(row.get("max_minutes"))
        tip = f"Zone à {_fmt_number(minutes)} min ou moins" if np.isfinite(minutes) \
            else "Zone desservie"
        if name:
            tip += f" de « {_esc(name)} »"
        if _esc(row.get("label")):
            tip += f"<br><small>{_esc(row.get('label'))}</small>"
        features.append({"type": "Feature", "geometry": mapping(row["geometry"]),
                          "properties": {"tooltip": tip}})
    group = folium.FeatureGroup(name="Zone desservie (isochrone)", show=True)
    _GeoJson({"type": "FeatureCollection", "features": features},
                   style_function=_catchment_style,
                   tooltip=folium.GeoJsonTooltip(fields=["tooltip"], labels=False),
                   control=False).add_to(group)
    group.add_to(m)
    return len(features)


def _site_markers(points: Sequence[tuple[float, float, str]], *, color: str, radius: int,
                  name: str) -> folium.FeatureGroup:
    """Big circle markers (lon, lat, HTML tooltip already escaped) in their own group."""
    features = [{"type": "Feature",
                 "geometry": {"type": "Point", "coordinates": [round(x, 6), round(y, 6)]},
                 "properties": {"tooltip": tip}} for x, y, tip in points]
    marker = folium.CircleMarker(radius=radius, color="#222222", weight=2.5, fill=True,
                                 fill_color=color, fill_opacity=0.95)
    marker.options["pane"] = _FACILITY_PANE
    group = folium.FeatureGroup(name=name, show=True)
    _GeoJson({"type": "FeatureCollection", "features": features}, marker=marker,
                   tooltip=folium.GeoJsonTooltip(fields=["tooltip"], labels=False),
                   control=False).add_to(group)
    return group


def _analysis_legend(title: str, items: Sequence[tuple[str, str, str]], *,
                     notes: Sequence[str] = (), attribution: str = "") -> str:
    """French HTML legend of an analysis map; every label and note is escaped here.

    ``items`` are (kind, colour, label), kind one of ``swatch``, ``dot``, ``line``, ``area``.
    """
    def symbol(kind: str, color: str) -> str:
        if kind == "dot":
            return (f'<span style="display:inline-block;width:11px;height:11px;'
                    f'border-radius:50%;background:{color};border:1.5px solid #222;'
                    'margin-right:6px;vertical-align:middle"></span>')
        if kind == "line":
            return (f'<span style="display:inline-block;width:18px;border-top:3px solid '
                    f'{color};margin-right:6px;vertical-align:middle"></span>')
        if kind == "area":
            return (f'<span style="display:inline-block;width:14px;height:10px;'
                    f'background:{color}33;border:2px dashed {color};margin-right:6px;'
                    'vertical-align:middle"></span>')
        return (f'<span style="display:inline-block;width:14px;height:10px;background:{color};'
                'border:1px solid #6a6a6a;margin-right:6px;vertical-align:middle"></span>')

    parts = [f'<div style="{_FONT}background:rgba(255,255,255,0.92);padding:8px 10px;'
             'border-radius:6px;box-shadow:0 1px 4px rgba(0,0,0,0.35);max-width:300px;'
             'max-height:62vh;overflow-y:auto;line-height:1.4">',
             '<details open><summary style="font-weight:bold;font-size:13px;cursor:pointer;'
             'margin-bottom:4px">Légende</summary>',
             f"<div><b>{_esc(title)}</b></div>"]
    parts += [f"<div>{symbol(kind, color)}{_esc(label)}</div>" for kind, color, label in items]
    parts += [f'<div style="margin-top:4px;font-size:10.5px">{_esc(n)}</div>' for n in notes]
    if attribution:
        parts.append('<div style="margin-top:6px;font-size:10.5px;color:#444">Sources : '
                     f"{_esc(attribution)}</div>")
    parts.append("</details></div>")
    return "".join(parts)


def _finish(m: folium.Map, bounds: Sequence[float], legend: str, attribution: str) -> folium.Map:
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    _Legend(legend).add_to(m)
    if attribution:
        _Attribution(attribution).add_to(m)
    _fit(m, bounds)
    return m


def _catchment_items(n: int, label: str = "") -> list[tuple[str, str, str]]:
    if not n:
        return []
    return [("area", CATCHMENT_COLOR, "Zone desservie (isochrone)"
             + (f" de « {label} »" if label else ""))]
