"""Folium maps of a diagnosis (no Streamlit here: the app only displays them).

:func:`build_overview_map` draws an :class:`~diagnosis.overview.Overview`: births per
commune (choropleth), the territory's outline, one layer per facility type with a fixed
colour (:data:`FACILITY_STYLES`), the nearest facilities outside the territory (paler),
the town halls (hidden by default), a French legend and the data sources' attribution.

Markers are canvas circle markers inside one GeoJSON layer per type, so a whole
département stays fast to build and to pan. Every data value shown in a popup or a
tooltip is HTML-escaped.

Offline: folium points the page at CDNs for Leaflet. :func:`set_asset_base_url` (called
once by the app) makes every ``build_*_map`` (decorated with ``@_map_builder``) load the
copies vendored in ``static/vendor/`` instead (:func:`use_local_assets`), so the communes
and markers draw with no internet; only the background tiles then stay blank.

See Also
--------
guides/indicateurs.md : definition and source of every indicator.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ParamSpec

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.colormap import ColorMap
from branca.element import Element, MacroElement
from jinja2 import Template
from shapely.geometry import mapping

from diagnosis.errors import InputError
from diagnosis.schema import (
    EAJE_SUBTYPES,
    FACILITY_TYPES,
    NEEDS_COLUMNS,
    PRECISIONS,
    facility_label,
)
from diagnosis.settings import METRIC_CRS, WGS84

#: Fixed style per facility type: marker colour and radius (pixels).
FACILITY_STYLES: dict[str, dict[str, Any]] = {
    "pmi": {"color": "#d62728", "radius": 8},
    "eaje": {"color": "#1f77b4", "radius": 7},
    "mam": {"color": "#6baed6", "radius": 6},
    "laep": {"color": "#ff7f0e", "radius": 7},
    "rpe": {"color": "#17becf", "radius": 7},
    "centre_social": {"color": "#2ca02c", "radius": 7},
    "evs": {"color": "#98df8a", "radius": 6},
    "maternite": {"color": "#e377c2", "radius": 9},
    "sage_femme": {"color": "#c51b7d", "radius": 5},
    "mairie": {"color": "#737373", "radius": 4},
    "maison_1000_jours": {"color": "#ffd700", "radius": 10},
}

#: Sequential colours of the commune choropleth (light to dark) and of missing values.
CHOROPLETH_COLORS: tuple[str, ...] = ("#f2f0f7", "#dadaeb", "#bcbddc", "#9e9ac8", "#756bb1")
MISSING_COLOR = "#d9d9d9"

#: folium's CDN address of each script and stylesheet our maps load, and the path of its
#: vendored copy under the app's asset folder (``static/vendor/``, re-created by
#: ``static/vendor/fetch.sh``). A map asking for an address missing here still loads it
#: from the CDN (with a warning in the log): vendor it too.
LOCAL_ASSETS: dict[str, str] = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": "leaflet-1.9.3/leaflet.js",
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": "leaflet-1.9.3/leaflet.css",
}
# What streamlit-folium adds by itself for a branca colour map (not rewritable: avoid them).
_COLORMAP_JS = ("https://d3js.org/d3.v4.min.js",
                "https://cdnjs.cloudflare.com/ajax/libs/d3/3.5.5/d3.min.js")

logger = logging.getLogger(__name__)
_P = ParamSpec("_P")
# Set once by the app (set_asset_base_url); None: folium's CDN addresses.
_asset_base_url: str | None = None

_OSM_ATTRIBUTION = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)
_FACILITY_PANE = "maillage_structures"
_FONT = "font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 11.5px;"


def set_asset_base_url(base_url: str | None) -> None:
    """Make every map built from now on load Leaflet from ``base_url``, not from a CDN.

    The app calls it once with the address where Streamlit serves ``static/vendor/``
    (``/app/static/vendor/``); every ``build_*_map`` then applies :func:`use_local_assets`.

    Parameters
    ----------
    base_url
        URL (absolute, or root-relative like ``"/app/static/vendor/"``) of the folder
        holding the :data:`LOCAL_ASSETS` files; ``None`` goes back to folium's CDNs.
    """
    global _asset_base_url
    if base_url is not None and not base_url.strip():
        raise InputError(f"base_url={base_url!r} is empty; give the URL of the folder that "
                         "serves static/vendor/ (e.g. '/app/static/vendor/') or None")
    _asset_base_url = base_url


def _asset_elements(m: Element) -> Iterator[Element]:
    """``m`` and every element under it (the ones with scripts are what st_folium reads)."""
    yield m
    for child in m._children.values():
        yield from _asset_elements(child)


def use_local_assets(m: folium.Map, base_url: str) -> folium.Map:
    """Point the scripts and stylesheets of ``m`` and its plugins at local copies.

    Every address of :data:`LOCAL_ASSETS` in an element's ``default_js`` or
    ``default_css`` becomes ``base_url`` + its vendored path. Streamlit serves the copies
    (``server.enableStaticServing``): the browser caches them and leaflet.css finds its
    images beside it. Inlining them instead would not work through streamlit-folium, which
    drops the inline scripts of the page header and loads only the script addresses.

    Parameters
    ----------
    m
        The map, changed in place (element attributes only: folium's classes are left
        alone, so other maps keep their CDN addresses).
    base_url
        URL of the folder holding the vendored files, see :func:`set_asset_base_url`.

    Returns
    -------
    folium.Map
        ``m`` itself.

    Examples
    --------
    >>> m = use_local_assets(_leaflet_map(), "/app/static/vendor/")
    >>> m.default_js
    [('leaflet', '/app/static/vendor/leaflet-1.9.3/leaflet.js')]
    >>> m.default_css
    [('leaflet_css', '/app/static/vendor/leaflet-1.9.3/leaflet.css')]
    """
    prefix = base_url.rstrip("/") + "/"
    for elem in _asset_elements(m):
        for attr in ("default_js", "default_css"):
            links = getattr(elem, attr, None)
            if links:
                # A new list on the element: folium's class defaults stay intact.
                setattr(elem, attr, [(name, prefix + LOCAL_ASSETS[url] if url in LOCAL_ASSETS
                                      else url) for name, url in links])
    for url in find_external_assets(m):
        logger.warning("the map still loads %s from the internet (blank map offline): vendor "
                       "it in static/vendor/fetch.sh and diagnosis.maps.LOCAL_ASSETS", url)
    return m


def _is_external(url: str) -> bool:
    return url.lower().startswith(("http://", "https://", "//"))


def find_external_assets(m: folium.Map) -> list[str]:
    """Scripts and stylesheets of ``m`` that a browser would fetch from the internet.

    Covers what streamlit-folium loads: the ``default_js`` / ``default_css`` of the map
    and of every element under it, and d3 for a branca colour map. Tiles are not counted.

    Examples
    --------
    >>> len(find_external_assets(folium.Map(tiles=None)))  # Leaflet, jQuery, Bootstrap...
    10
    >>> find_external_assets(use_local_assets(_leaflet_map(), "/app/static/vendor"))
    []
    """
    found: list[str] = []
    for elem in _asset_elements(m):
        if isinstance(elem, ColorMap):
            found += _COLORMAP_JS
        for attr in ("default_js", "default_css"):
            found += [url for _, url in getattr(elem, attr, None) or () if _is_external(url)]
    return list(dict.fromkeys(found))


def _leaflet_map(**kwargs: Any) -> folium.Map:
    """A ``folium.Map`` without tiles that loads Leaflet only.

    folium also asks for jQuery, Bootstrap and icon fonts, which only ``folium.Popup``,
    ``folium.Icon`` markers and glyphicons use. Our popups are GeoJSON popups and our
    markers circles, so Leaflet is enough, and it is the only library vendored: start
    every map here. (streamlit-folium loads the scripts one after the other and gives up
    at the first that fails: one unreachable script leaves the whole map blank.)
    """
    m = folium.Map(tiles=None, **kwargs)
    m.default_js = [(n, u) for n, u in m.default_js if n.startswith("leaflet")]
    m.default_css = [(n, u) for n, u in m.default_css if n.startswith("leaflet")]
    return m


def _map_builder(build: Callable[_P, folium.Map]) -> Callable[_P, folium.Map]:
    """Decorate every ``build_*_map``: local scripts once :func:`set_asset_base_url` is set."""
    @functools.wraps(build)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> folium.Map:
        m = build(*args, **kwargs)
        if _asset_base_url is not None:
            use_local_assets(m, _asset_base_url)
        return m
    return wrapper


def _esc(value: object) -> str:
    """HTML-escape a data value (missing values become ``""``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value).strip(), quote=True)


def _fmt_number(value: float | None, *, decimals: int = 0) -> str:
    r"""Format a number the French way (thin space thousands, comma decimals).

    Examples
    --------
    >>> _fmt_number(1059.0)
    '1\u202f059'
    >>> _fmt_number(2.25, decimals=1)
    '2,2'
    >>> _fmt_number(float("nan"))
    'non diffusé'
    """
    if value is None or not np.isfinite(value):
        return "non diffusé"
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\u202f").replace(".", ",")


def class_breaks(values: Iterable[float], *, n_classes: int = 5) -> list[float]:
    """Return rounded quantile breaks (lower bounds of each class after the first).

    Parameters
    ----------
    values
        Values to classify (NaN ignored).
    n_classes
        Wanted number of classes; fewer when values repeat.

    Returns
    -------
    list of float
        Increasing thresholds ``b``: class ``k`` holds ``b[k-1] <= v < b[k]``.

    Examples
    --------
    >>> class_breaks([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], n_classes=5)
    [2.0, 4.0, 6.0, 8.0]
    >>> class_breaks([3, 3, 3])
    []
    """
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0 or n_classes < 2:
        return []
    qs = np.quantile(arr, np.linspace(0, 1, n_classes + 1)[1:-1])
    breaks = sorted({float(np.ceil(q)) for q in qs if np.ceil(q) > arr.min()})
    return breaks


def _class_of(value: float, breaks: Sequence[float]) -> int:
    """Index of the class of ``value`` (-1 when missing)."""
    if value is None or not np.isfinite(value):
        return -1
    return int(np.searchsorted(np.asarray(breaks, dtype=float), value, side="right"))


def _class_labels(breaks: Sequence[float], vmin: float, vmax: float, *,
                  integers: bool) -> list[str]:
    """French labels of the classes defined by ``breaks`` over [vmin, vmax].

    Examples
    --------
    >>> _class_labels([10.0, 20.0], 0.0, 35.0, integers=True)
    ['0 à 9', '10 à 19', '20 à 35']
    >>> _class_labels([10.0], 0.5, 12.5, integers=False)
    ['moins de 10', '10 ou plus (max. 12,5)']
    """
    bounds = [vmin, *breaks, vmax]
    labels = []
    for k in range(len(bounds) - 1):
        lo, hi = bounds[k], bounds[k + 1]
        last = k == len(bounds) - 2
        if not integers:
            if last:
                labels.append(f"{_fmt_number(lo)} ou plus (max. {_fmt_number(hi, decimals=1)})"
                              if k else f"{_fmt_number(lo, decimals=1)} à "
                              f"{_fmt_number(hi, decimals=1)}")
            else:
                labels.append(f"moins de {_fmt_number(hi)}" if k == 0
                              else f"{_fmt_number(lo)} à moins de {_fmt_number(hi)}")
        elif last:
            labels.append(f"{_fmt_number(lo)} à {_fmt_number(hi)}" if hi > lo
                          else _fmt_number(lo))
        elif hi - 1 > lo:
            labels.append(f"{_fmt_number(lo)} à {_fmt_number(hi - 1)}")
        else:
            labels.append(_fmt_number(lo))
    return labels


def _palette(n: int) -> list[str]:
    """``n`` colours spread over :data:`CHOROPLETH_COLORS`."""
    if n <= 0:
        return []
    idx = np.linspace(0, len(CHOROPLETH_COLORS) - 1, n).round().astype(int)
    return [CHOROPLETH_COLORS[i] for i in idx]


class _Legend(MacroElement):
    """A Leaflet control holding a French HTML legend (bottom left of the map)."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>
        .leaflet-control-attribution { max-width: 55%; font-size: 10px; }
        </style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: "bottomleft"});
        {{ this.get_name() }}.onAdd = function () {
            var div = L.DomUtil.create("div", "maillage-legend");
            div.innerHTML = {{ this.html_js }};
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, legend_html: str) -> None:
        super().__init__()
        self._name = "MaillageLegend"
        self.legend_html = legend_html
        self.html_js = _js_string(legend_html)


class _Attribution(MacroElement):
    """Add the data sources' attribution to the map's attribution control."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.text_js }});
        {% endmacro %}
        """
    )

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "MaillageAttribution"
        self.text = text
        self.text_js = _js_string(html.escape(text, quote=False))


def _js_string(text: str) -> str:
    """A JavaScript string literal safe inside a ``<script>`` element (keeps accents)."""
    out = json.dumps(text, ensure_ascii=False)
    return out.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def default_attribution(sources: Iterable[Mapping[str, str]]) -> str:
    """Join the attribution strings of source records (first occurrence order).

    Examples
    --------
    >>> default_attribution([{"attribution": "IGN"}, {"attribution": "INSEE"},
    ...                      {"attribution": "IGN"}])
    'IGN | INSEE'
    """
    seen = dict.fromkeys(str(s.get("attribution", "")).strip() for s in sources)
    return " | ".join(a for a in seen if a)


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


def _points_geojson(facilities: gpd.GeoDataFrame, *, source_titles: Mapping[str, str],
                    outside: bool) -> dict[str, Any]:
    """GeoJSON of facility points with only a ``tooltip`` and a ``popup`` property."""
    features = []
    for row in facilities.to_dict("records"):
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
    return folium.GeoJson(
        _points_geojson(facilities, source_titles=source_titles, outside=outside),
        marker=marker,
        tooltip=folium.GeoJsonTooltip(fields=["tooltip"], labels=False),
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False, max_width=360),
        control=False,
    )


def _communes_geojson(communes: gpd.GeoDataFrame, value_col: str, colors: Sequence[str],
                      breaks: Sequence[float], value_label: str) -> dict[str, Any]:
    features = []
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
            tip.append("Population 2022 : "
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
                 show_town_halls: bool, n_town_halls: int, attribution: str) -> str:
    """The French HTML legend (static text from us, data values escaped)."""
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
        parts.append(f"<div>{swatch(MISSING_COLOR)}non diffusé (secret statistique)</div>")
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
        parts.append(f"<div>{dot(color)}{_esc(facility_label(ftype, plural=True))} : "
                     f"{n_in}{extra}</div>")
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


@_map_builder
def build_overview_map(
    overview: Any,
    *,
    facility_types: Iterable[str] | None = None,
    show_town_halls: bool = False,
    value_col: str = "births_2024",
    attribution: str | None = None,
    tiles: str | None = "OpenStreetMap",
) -> folium.Map:
    """Draw a diagnosis overview: births per commune, facilities per type, legend.

    Parameters
    ----------
    overview
        A :class:`diagnosis.overview.Overview` (its ``communes``, ``facilities`` and
        ``facilities_nearby`` layers, and ``summary["sources"]``).
    facility_types
        Facility types to draw (default: every type present, town halls apart).
    show_town_halls
        Whether the town hall layer is visible when the map opens (it is always in
        the layer control).
    value_col
        Commune column of the choropleth (a key of :data:`~diagnosis.schema.NEEDS_COLUMNS`).
    attribution
        Data attribution shown in the map's attribution control and legend (default:
        the attribution strings of ``overview.summary["sources"]``).
    tiles
        Background tiles (``None`` for none); OpenStreetMap by default.

    Returns
    -------
    folium.Map
        Canvas-rendered (``prefer_canvas=True``) map fitted to the territory.

    Raises
    ------
    InputError
        Unknown facility type, or ``value_col`` missing from the communes layer.
    """
    communes = overview.layers["communes"]
    if value_col not in communes.columns:
        raise InputError(
            f"value_col={value_col!r} is not a column of the communes layer; use one of "
            f"{[c for c in NEEDS_COLUMNS if c in communes.columns]}"
        )
    facilities = overview.layers["facilities"]
    nearby = overview.layers.get("facilities_nearby", facilities.iloc[0:0])
    if facility_types is None:
        present = set(facilities["type"]) | set(nearby["type"])
        types = [t for t in FACILITY_TYPES if t in present and t != "mairie"]
    else:
        types = [t for t in dict.fromkeys(facility_types) if t != "mairie"]
        unknown = [t for t in types if t not in FACILITY_TYPES]
        if unknown:
            raise InputError(f"facility_types={unknown!r} are not facility types; use "
                             f"{sorted(FACILITY_TYPES)}")
    sources = list(overview.summary.get("sources", []))
    if attribution is None:
        attribution = default_attribution(sources)
    source_titles = {str(s.get("key", "")): str(s.get("title", "")) for s in sources}

    communes = communes.to_crs(WGS84)
    west, south, east, north = communes.total_bounds
    m = _leaflet_map(location=[(south + north) / 2, (west + east) / 2], zoom_start=10,
                     prefer_canvas=True, control_scale=True)
    if tiles:
        folium.TileLayer(tiles, name="Fond OpenStreetMap", attr=_OSM_ATTRIBUTION,
                         control=False).add_to(m)

    value_label = NEEDS_COLUMNS.get(value_col, value_col)
    values = pd.to_numeric(communes[value_col], errors="coerce")
    breaks = class_breaks(values.to_numpy())
    colors = _palette(len(breaks) + 1)
    finite = values[np.isfinite(values)]
    integers = bool(np.all(np.mod(finite, 1) == 0))
    labels = (_class_labels(breaks, float(finite.min()), float(finite.max()), integers=integers)
              if len(finite) else [])
    colors = colors[:len(labels)]
    choro = folium.FeatureGroup(name=f"{value_label} par commune", show=True)
    folium.GeoJson(
        _communes_geojson(communes, value_col, colors or [MISSING_COLOR], breaks, value_label),
        style_function=_commune_style,
        tooltip=folium.GeoJsonTooltip(fields=["tooltip"], labels=False),
        control=False,
    ).add_to(choro)
    choro.add_to(m)

    outline_geom = communes.to_crs(METRIC_CRS).union_all().buffer(0).boundary
    outline = gpd.GeoSeries([outline_geom], crs=METRIC_CRS).to_crs(WGS84).iloc[0]
    outline_group = folium.FeatureGroup(name="Contour du territoire", show=True)
    folium.GeoJson(mapping(outline), style_function=_outline_style, control=False,
                   interactive=False).add_to(outline_group)
    outline_group.add_to(m)

    # Facilities above the communes and the town halls, in their own (canvas) pane.
    folium.map.CustomPane(_FACILITY_PANE, z_index=450).add_to(m)
    drawn = pd.concat([facilities.loc[facilities["type"].isin(types)].assign(_outside=False),
                       nearby.loc[nearby["type"].isin(types)].assign(_outside=True)],
                      ignore_index=True)
    drawn = _spread_coincident(gpd.GeoDataFrame(drawn, geometry="geometry", crs=WGS84))
    type_counts: dict[str, tuple[int, int]] = {}
    for t in types:
        of_type = drawn.loc[drawn["type"].eq(t)]
        inside = of_type.loc[~of_type["_outside"].astype(bool)]
        outside = of_type.loc[of_type["_outside"].astype(bool)]
        if inside.empty and outside.empty:
            continue
        type_counts[t] = (int(len(inside)), int(len(outside)))
        name = f"{facility_label(t, plural=True)} ({len(inside)}"
        name += f" + {len(outside)} hors territoire)" if len(outside) else ")"
        group = folium.FeatureGroup(name=name, show=True)
        for part, is_out in ((outside, True), (inside, False)):
            if not part.empty:
                _point_layer(part, t, source_titles=source_titles, outside=is_out,
                             pane=_FACILITY_PANE).add_to(group)
        group.add_to(m)

    halls = facilities.loc[facilities["type"].eq("mairie")]
    hall_group = folium.FeatureGroup(name=f"Mairies ({len(halls)})", show=show_town_halls)
    if not halls.empty:
        _point_layer(halls, "mairie", source_titles=source_titles, outside=False).add_to(
            hall_group)
    hall_group.add_to(m)

    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    _Legend(_legend_html(
        value_label=value_label, class_labels=labels, colors=colors,
        has_missing=bool(values.isna().any()), type_counts=type_counts,
        show_town_halls=show_town_halls, n_town_halls=int(len(halls)),
        attribution=attribution,
    )).add_to(m)
    if attribution:
        _Attribution(attribution).add_to(m)
    # Leave room on the left for the legend.
    m.fit_bounds([[south, west], [north, east]], padding_top_left=(310, 20),
                 padding_bottom_right=(20, 20))
    return m
