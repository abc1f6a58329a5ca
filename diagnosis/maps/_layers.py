"""Facility and commune layers: popups, canvas point layers, choropleth features, legend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import mapping

from diagnosis.formatting import NOT_KNOWN_F, fr_known
from diagnosis.maps._common import (
    _FONT,
    FACILITY_STYLES,
    MISSING_COLOR,
    _class_of,
    _esc,
    _fmt_number,
    _GeoJson,
)
from diagnosis.needs import data_years, year_of
from diagnosis.schema import (
    EAJE_SUBTYPES,
    FACILITY_TYPES,
    PRECISIONS,
    facility_label,
)
from diagnosis.settings import METRIC_CRS, WGS84


def _facility_popup(row: Mapping[str, Any], *, source_titles: Mapping[str, str],
                    outside: bool) -> str:
    """HTML popup of one facility, every data value escaped."""
    ftype = str(row.get("type", ""))
    label = facility_label(ftype) if ftype in FACILITY_TYPES else ftype
    sub = str(row.get("subtype", "") or "")
    if sub:
        label = f"{label} — {EAJE_SUBTYPES.get(sub, sub)}"
    lines = [f"<b>{_esc(row.get('name')) or '(sans nom)'}</b>", _esc(label)]
    address = ", ".join(p for p in (_esc(row.get("address")), _esc(row.get("postcode"))) if p)
    if address:
        lines.append(address)
    fields = (("operator", "Gestionnaire"), ("phone", "Tél."), ("email", "Courriel"))
    lines += [f"{title} : {_esc(row.get(col))}" for col, title in fields if _esc(row.get(col))]
    website = str(row.get("website", "") or "").strip()
    if website.lower().startswith(("https://", "http://")):
        lines.append(f'Site : <a href="{_esc(website)}" target="_blank" '
                     f'rel="noopener noreferrer">{_esc(website)}</a>')
    elif website:
        lines.append(f"Site : {_esc(website)}")
    cap = row.get("capacity")
    if cap is not None and isinstance(cap, float | int) and np.isfinite(cap):
        lines.append(f"Places : {_fmt_number(float(cap))}")
    if _esc(row.get("notes")):
        lines.append(f"<i>{_esc(row.get('notes'))}</i>")
    precision = str(row.get("position_precision", ""))
    source = str(row.get("source", ""))
    small = [f"Position : {_esc(PRECISIONS.get(precision, precision))}",
             f"Source : {_esc(source_titles.get(source, source))}"
             + (f" ({_esc(row.get('source_date'))})" if _esc(row.get("source_date")) else "")]
    if outside:
        small.insert(0, "Hors du territoire : la plus proche de ce type pour au moins une commune")
    lines.append("<small>" + "<br>".join(small) + "</small>")
    return "<br>".join(lines)


def _spread_coincident(points: gpd.GeoDataFrame, *, radius_m: float = 200.0) -> gpd.GeoDataFrame:
    """Spread points sharing one position on a small circle so each stays clickable.

    Facilities placed at their town hall (commune precision) often share a position;
    moving them ``radius_m`` apart loses no real precision. Other points are unchanged.
    """
    if len(points) < 2:
        return points
    metric = points.geometry.to_crs(METRIC_CRS)
    x, y = metric.x.to_numpy(), metric.y.to_numpy()
    key = pd.Series(list(zip(np.round(x, 1), np.round(y, 1), strict=True)), index=points.index)
    rank = key.groupby(key).cumcount().to_numpy()
    size = key.map(key.value_counts()).to_numpy()
    if (size == 1).all():
        return points
    angle = 2 * np.pi * rank / np.maximum(size, 1)
    shift = np.where(size > 1, radius_m, 0.0)
    moved = gpd.GeoSeries(gpd.points_from_xy(x + shift * np.cos(angle), y + shift * np.sin(angle)),
                          index=points.index, crs=METRIC_CRS).to_crs(WGS84)
    out = points.copy()
    out = out.set_geometry(moved)
    return out


#: Most points drawn per layer: the browser receives a bounded map (a 100,000-row upload
#: would otherwise send ~50 MB of script); every point stays in the tables and exports.
MAX_POINTS_PER_LAYER = 5_000


def thinned(points: gpd.GeoDataFrame, *, max_points: int = MAX_POINTS_PER_LAYER
            ) -> gpd.GeoDataFrame:
    """At most ``max_points`` rows, evenly spread over the table's order (all when fewer).

    Examples
    --------
    >>> import geopandas as gpd
    >>> pts = gpd.GeoDataFrame({"n": range(10)}, geometry=gpd.points_from_xy(range(10),
    ...                        range(10)), crs="EPSG:4326")
    >>> thinned(pts, max_points=4)["n"].tolist()
    [0, 3, 6, 9]
    """
    if len(points) <= max_points:
        return points
    keep = np.unique(np.linspace(0, len(points) - 1, max_points).round().astype(int))
    return points.iloc[keep]


def drawn_count_note(n_total: int, *, max_points: int = MAX_POINTS_PER_LAYER) -> str:
    """`` — 5 000 dessinées`` when a layer of ``n_total`` points is thinned, else ``""``.

    Examples
    --------
    >>> drawn_count_note(12_000)
    ' — 5\u202f000 dessinées (carte allégée)'
    >>> drawn_count_note(12)
    ''
    """
    if n_total <= max_points:
        return ""
    return f" — {max_points:,} dessinées (carte allégée)".replace(",", "\u202f")


def _points_geojson(facilities: gpd.GeoDataFrame, *, source_titles: Mapping[str, str],
                    outside: bool) -> dict[str, Any]:
    """GeoJSON of facility points with only a ``tooltip`` and a ``popup`` property.

    At most :data:`MAX_POINTS_PER_LAYER` points (:func:`thinned`).
    """
    features = []
    for row in thinned(facilities).to_dict("records"):
        geom = row.get("geometry")
        if geom is None or geom.is_empty:
            continue
        ftype = str(row.get("type", ""))
        label = facility_label(ftype) if ftype in FACILITY_TYPES else ftype
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point",
                         "coordinates": [round(geom.x, 6), round(geom.y, 6)]},
            "properties": {
                "tooltip": f"{_esc(row.get('name')) or '(sans nom)'}<br><small>{_esc(label)}"
                           + (" — hors territoire" if outside else "") + "</small>",
                "popup": _facility_popup(row, source_titles=source_titles, outside=outside),
            },
        })
    return {"type": "FeatureCollection", "features": features}


def _point_layer(facilities: gpd.GeoDataFrame, ftype: str, *,
                 source_titles: Mapping[str, str], outside: bool,
                 pane: str = "overlayPane") -> folium.GeoJson:
    style = FACILITY_STYLES.get(ftype, {"color": "#444444", "radius": 6})
    marker = folium.CircleMarker(
        radius=style["radius"] - (1 if outside else 0),
        color="#7f7f7f" if outside else "#222222",
        weight=1 if outside else 1.5,
        opacity=0.6 if outside else 1.0,
        fill=True,
        fill_color=style["color"],
        fill_opacity=0.35 if outside else 0.95,
        dash_array="3" if outside else None,
    )
    marker.options["pane"] = pane  # folium's path options drop it
    return _GeoJson(
        _points_geojson(facilities, source_titles=source_titles, outside=outside),
        marker=marker,
        tooltip=folium.GeoJsonTooltip(fields=["tooltip"], labels=False),
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False, max_width=360),
        control=False,
    )


def _communes_geojson(communes: gpd.GeoDataFrame, value_col: str, colors: Sequence[str],
                      breaks: Sequence[float], value_label: str) -> dict[str, Any]:
    features = []
    pop_label = f"Population {year_of(data_years(communes), 'population_2022')}"
    for row in communes.to_dict("records"):
        value = pd.to_numeric(row.get(value_col), errors="coerce")
        value = float(value) if value is not None and pd.notna(value) else float("nan")
        k = _class_of(value, breaks)
        tip = [f"<b>{_esc(row.get('name'))}</b> ({_esc(row.get('code_insee'))})",
               f"{_esc(value_label)} : {_fmt_number(value)}"]
        if value_col != "under3_estimate" and "under3_estimate" in row:
            tip.append("Enfants de moins de 3 ans (estimation) : "
                       + _fmt_number(pd.to_numeric(row.get("under3_estimate"), errors="coerce")))
        if "population_2022" in row and value_col != "population_2022":
            tip.append(f"{pop_label} : "
                       + _fmt_number(pd.to_numeric(row.get("population_2022"), errors="coerce")))
        features.append({
            "type": "Feature",
            "id": str(row.get("code_insee")),
            "geometry": mapping(row["geometry"]),
            "properties": {"fill": MISSING_COLOR if k < 0 else colors[k],
                           "tooltip": "<br>".join(tip)},
        })
    return {"type": "FeatureCollection", "features": features}


def _commune_style(feature: Mapping[str, Any]) -> dict[str, Any]:
    return {"fillColor": feature["properties"]["fill"], "fillOpacity": 0.6,
            "color": "#6a6a6a", "weight": 0.8}


def _outline_style(feature: Mapping[str, Any]) -> dict[str, Any]:
    return {"color": "#222222", "weight": 3, "fill": False}


def _legend_html(*, value_label: str, class_labels: Sequence[str], colors: Sequence[str],
                 has_missing: bool, type_counts: Mapping[str, tuple[int, int]],
                 show_town_halls: bool, n_town_halls: int, attribution: str,
                 statuses: Mapping[str, str] | None = None) -> str:
    """The French HTML legend (static text from us, data values escaped).

    A type's count inside the territory follows :func:`~diagnosis.formatting.fr_known`
    with its coverage in ``statuses``: « 0 » only when a complete source was loaded,
    « ≥ n » from a partial one, « aucune connue » otherwise (unknown is not none).
    """
    def swatch(color: str) -> str:
        return (f'<span style="display:inline-block;width:14px;height:10px;background:{color};'
                'border:1px solid #6a6a6a;margin-right:6px;vertical-align:middle"></span>')

    def dot(color: str, *, pale: bool = False) -> str:
        fill = f"{color}59" if pale else color
        border = "1px dashed #7f7f7f" if pale else "1.5px solid #222"
        return (f'<span style="display:inline-block;width:11px;height:11px;border-radius:50%;'
                f'background:{fill};border:{border};margin-right:6px;vertical-align:middle">'
                "</span>")

    parts = [f'<div style="{_FONT}background:rgba(255,255,255,0.92);padding:8px 10px;'
             'border-radius:6px;box-shadow:0 1px 4px rgba(0,0,0,0.35);max-width:300px;'
             'max-height:62vh;overflow-y:auto;line-height:1.4">',
             '<details open><summary style="font-weight:bold;font-size:13px;cursor:pointer;'
             'margin-bottom:4px">Légende</summary>',
             f"<div><b>{_esc(value_label)}</b> par commune</div>"]
    parts += [f"<div>{swatch(c)}{_esc(lab)}</div>" for c, lab in zip(colors, class_labels,
                                                                     strict=True)]
    if has_missing:
        parts.append(f"<div>{swatch(MISSING_COLOR)}non connu ou non diffusé (secret "
                         "statistique)</div>")
    parts.append('<div><span style="display:inline-block;width:14px;border-top:3px solid #222;'
                 'margin-right:6px;vertical-align:middle"></span>Contour du territoire</div>')
    parts.append('<div style="margin-top:6px"><b>Structures</b> (positions : voir la fiche)</div>')
    if not type_counts:
        parts.append("<div><i>Aucune structure connue dans les données chargées.</i></div>")
    any_outside = False
    for ftype, (n_in, n_out) in type_counts.items():
        color = FACILITY_STYLES.get(ftype, {"color": "#444444"})["color"]
        extra = f" (+{n_out} hors territoire)" if n_out else ""
        any_outside = any_outside or n_out > 0
        shown = fr_known(n_in, status=(statuses or {}).get(ftype, "complete"),
                         feminine=True)
        shown = "aucune connue" if shown == NOT_KNOWN_F else shown
        parts.append(f"<div>{dot(color)}{_esc(facility_label(ftype, plural=True))} : "
                     f"{_esc(shown)}{extra}</div>")
    if any_outside:
        parts.append(f"<div>{dot('#7f7f7f', pale=True)}symbole pâle : hors du territoire, "
                     "la plus proche pour au moins une commune</div>")
    hall = FACILITY_STYLES["mairie"]["color"]
    state = ("affichées" if show_town_halls
             else "masquées, à afficher avec le sélecteur de couches (en haut à droite)")
    parts.append(f"<div>{dot(hall)}Mairies ({n_town_halls}) : {state}</div>")
    if attribution:
        parts.append('<div style="margin-top:6px;font-size:10.5px;color:#444">Sources : '
                     f"{_esc(attribution)}</div>")
    parts.append("</details></div>")
    return "".join(parts)
