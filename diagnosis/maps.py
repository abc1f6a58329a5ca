"""Folium maps of a diagnosis (no Streamlit here: the app only displays them).

Why one module of about 1,400 lines: every builder shares the same escaping (no text
becomes template source), legend, attribution and offline-asset machinery; a builder
split off would have to import all of it back.

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
from branca import element as branca_element
from branca.colormap import ColorMap
from branca.element import Element, MacroElement
from jinja2 import Template
from shapely.geometry import mapping

from diagnosis.errors import InputError
from diagnosis.formatting import fr_number
from diagnosis.schema import (
    EAJE_SUBTYPES,
    FACILITY_TYPES,
    NEEDS_COLUMNS,
    PRECISIONS,
    facility_label,
)
from diagnosis.settings import METRIC_CRS, USER_SITE_LABEL, WGS84

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
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.draw/1.0.2/leaflet.draw.js":
        "leaflet-draw-1.0.4/leaflet.draw.js",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.draw/1.0.2/leaflet.draw.css":
        "leaflet-draw-1.0.4/leaflet.draw.css",
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

    ``control_scale=True`` adds a metric scale bar (m, km), never miles.

    folium also asks for jQuery, Bootstrap and icon fonts, which only ``folium.Popup``,
    ``folium.Icon`` markers and glyphicons use. Our popups are GeoJSON popups and our
    markers circles, so Leaflet is enough, and it is the only library vendored: start
    every map here. (streamlit-folium loads the scripts one after the other and gives up
    at the first that fails: one unreachable script leaves the whole map blank.)
    """
    metric_scale = bool(kwargs.pop("control_scale", False))
    m = folium.Map(tiles=None, **kwargs)
    if metric_scale:
        _MetricScale().add_to(m)
    m.default_js = [(n, u) for n, u in m.default_js if n.startswith("leaflet")]
    m.default_css = [(n, u) for n, u in m.default_css if n.startswith("leaflet")]
    return m


def _map_builder(build: Callable[_P, folium.Map]) -> Callable[_P, folium.Map]:
    """Decorate every ``build_*_map``: template syntax neutralised, local scripts if set.

    Every map goes through :func:`neutralise_template_syntax` before it is returned, so no
    text of a source or a user file can become Jinja source when folium renders the page.
    """
    @functools.wraps(build)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> folium.Map:
        m = build(*args, **kwargs)
        neutralise_template_syntax(m)
        if _asset_base_url is not None:
            use_local_assets(m, _asset_base_url)
        return m
    return wrapper


#: Characters that open Jinja syntax (``{{``, ``{%``, ``{#``) and their HTML entities.
_BRACE_ENTITIES = str.maketrans({"{": "&#123;", "}": "&#125;"})
#: The same characters as JavaScript escapes (for text inside a JS string literal).
_BRACE_JS_ESCAPES = str.maketrans({"{": "\\u007b", "}": "\\u007d"})


def _esc(value: object) -> str:
    """HTML-escape a data value (missing values become ``""``), braces included.

    branca renders each element's script, then feeds the output to Jinja again as
    template source when the page is rendered: a ``{{ … }}`` in a facility name would run
    on the server. Braces become HTML entities, which the browser shows as ``{`` ``}``.

    Examples
    --------
    >>> _esc("Crèche {{ 7*7 }} <b>")
    'Crèche &#123;&#123; 7*7 &#125;&#125; &lt;b&gt;'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value).strip(), quote=True).translate(_BRACE_ENTITIES)


def _neutral_html(text: str) -> str:
    """``text`` (already HTML, e.g. a tooltip we built) with braces as HTML entities."""
    return text.translate(_BRACE_ENTITIES)


def _neutralise_value(value: Any) -> Any:
    """Braces of every string in a JSON-like value replaced by HTML entities."""
    if isinstance(value, str):
        return _neutral_html(value)
    if isinstance(value, dict):
        return {k: _neutralise_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_neutralise_value(v) for v in value]
    return value


def neutralise_template_syntax(m: Element) -> Element:
    """Make every text a map displays inert as Jinja source (in place; returns ``m``).

    folium (through branca) renders each element's script and then renders that output
    again as a Jinja template when the page is built, in the app too (``st_folium``).
    Text from a source or a user file that reaches the page (GeoJSON properties, layer
    names, tooltips, popups) would then run as template code. This walks the whole
    element tree and encodes ``{`` and ``}`` in those texts as HTML entities: every such
    text is shown as HTML by Leaflet, so the person reading the map still sees the braces.

    Parameters
    ----------
    m
        A folium map (or any branca element) about to be rendered.

    Returns
    -------
    branca.element.Element
        ``m`` itself.

    Examples
    --------
    >>> m = folium.Map(tiles=None)
    >>> _ = folium.FeatureGroup(name="{{ 'AB' ~ 'CD' }}").add_to(m)
    >>> _ = neutralise_template_syntax(m)
    >>> "ABCD" in m.get_root().render()
    False
    """
    for el in _asset_elements(m):
        if isinstance(el, folium.GeoJson) and isinstance(el.data, dict):
            el.data = _neutralise_value(el.data)
        name = getattr(el, "layer_name", None)
        if isinstance(name, str):
            setattr(el, "layer_name", _neutral_html(name))  # noqa: B010 (any layer class)
        for attr in ("text", "html"):  # folium.Tooltip, folium.Popup/branca Html
            value = getattr(el, attr, None)
            if isinstance(value, str):
                setattr(el, attr, _neutral_html(value))
        if isinstance(el, branca_element.Html) and isinstance(el.data, str):
            el.data = _neutral_html(el.data)
    return m


def _fmt_number(value: float | None, *, decimals: int = 0) -> str:
    r"""French number (:func:`diagnosis.formatting.fr_number`; ``—`` when unknown).

    Examples
    --------
    >>> _fmt_number(1059.0), _fmt_number(2.25, decimals=1), _fmt_number(float("nan"))
    ('1\u202f059', '2,2', '—')
    """
    return fr_number(value, decimals=decimals)


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


class _MetricScale(MacroElement):
    """Leaflet's scale bar in metres and kilometres only (folium's draws miles too)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        L.control.scale({metric: true, imperial: false, maxWidth: 150})
            .addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "MaillageScale"


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
    r"""A JavaScript string literal safe inside a ``<script>`` and as Jinja source.

    Keeps accents; ``</``, line separators and braces (``{{`` would be Jinja syntax when
    branca re-renders the script) are escaped.

    Examples
    --------
    >>> _js_string("a {{ b }} </script>")
    '"a \\u007b\\u007b b \\u007d\\u007d <\\/script>"'
    """
    out = json.dumps(text, ensure_ascii=False).translate(_BRACE_JS_ESCAPES)
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


# ======================================================================================
# Maps of the analyses: priority score, time to services, siting, partner network
# ======================================================================================

#: Colours of the priority score classes (0-20 ... 80-100), light to dark.
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
    features = [{"type": "Feature", "geometry": mapping(geom),
                 "properties": {"fill": fill, "tooltip": tip}}
                for geom, fill, tip in zip(communes.to_crs(WGS84).geometry, fills, tooltips,
                                           strict=True) if geom is not None]
    group = folium.FeatureGroup(name=name, show=True)
    folium.GeoJson({"type": "FeatureCollection", "features": features},
                   style_function=_commune_style,
                   tooltip=folium.GeoJsonTooltip(fields=["tooltip"], labels=False),
                   control=False).add_to(group)
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
    folium.GeoJson({"type": "FeatureCollection", "features": features},
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
    folium.GeoJson({"type": "FeatureCollection", "features": features}, marker=marker,
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


@_map_builder
def build_priority_map(
    gaps: Any,
    *,
    catchment: gpd.GeoDataFrame | None = None,
    catchment_label: str = "",
    attribution: str = "",
    tiles: str | None = "OpenStreetMap",
) -> folium.Map:
    """Choropleth of the priority score of the communes, with each factor in the tooltip.

    Parameters
    ----------
    gaps
        A :class:`~diagnosis.gaps.GapsResult` whose ``layers["priority"]`` has a geometry
        (:func:`diagnosis.analyses.compute_access` gives one).
    catchment
        Optional isochrone of a site (:func:`diagnosis.analyses.compute_catchment`).
    catchment_label
        Name of that site, for the legend and the tooltip.
    attribution
        Data sources shown in the attribution control and the legend.
    tiles
        Background tiles (``None`` for none).

    Returns
    -------
    folium.Map
        Classes of 20 points (0-20 ... 80-100), French legend, escaped tooltips.

    Raises
    ------
    InputError
        The priority layer has no geometry.
    """
    from diagnosis.gaps import FACTOR_LABELS, PRIORITY_FACTORS

    prio = gaps.layers["priority"]
    if not isinstance(prio, gpd.GeoDataFrame) or prio.crs is None:
        raise InputError("gaps.layers['priority'] has no geometry with a CRS; compute the "
                         "gaps from communes with their polygons (compute_access does)")
    prio = prio.to_crs(WGS84)
    m, bounds = _analysis_map(prio, tiles)
    scores = pd.to_numeric(prio["score"], errors="coerce").to_numpy(dtype=float)
    fills, tips = [], []
    for row, score in zip(prio.to_dict("records"), scores, strict=True):
        k = -1 if not np.isfinite(score) else min(int(score // 20), 4)
        fills.append(MISSING_COLOR if k < 0 else PRIORITY_COLORS[k])
        tip = [f"<b>{_esc(row.get('name'))}</b> ({_esc(row.get('code_insee'))})",
               f"Rang {_esc(row.get('rank'))} — score {_fmt_number(score, decimals=1)} / 100"]
        tip += [f"{_esc(FACTOR_LABELS[f])} : "
                f"{_fmt_number(_num(row.get(f'contrib_{f}')), decimals=1)}"
                for f in PRIORITY_FACTORS if f"contrib_{f}" in row]
        tips.append("<br>".join(tip))
    _fill_layer(prio, fills, tips, "Score de priorité par commune").add_to(m)
    n = _add_catchments(m, catchment, names=[catchment_label])
    items = [("swatch", c, f"{20 * i} à {20 * (i + 1)}") for i, c in enumerate(PRIORITY_COLORS)]
    if not np.isfinite(scores).all():
        items.append(("swatch", MISSING_COLOR, "non calculé"))
    items += _catchment_items(n, catchment_label)
    notes = ["Score de 0 à 100 : naissances, pauvreté, familles monoparentales et "
             "éloignement des services, pondérés (détail au survol)."]
    legend = _analysis_legend("Score de priorité (0 à 100) par commune", items, notes=notes,
                              attribution=attribution)
    return _finish(m, bounds, legend, attribution)


def access_classes(max_minutes: float) -> list[tuple[float, str]]:
    """Upper bounds and French labels of the time classes for a threshold T.

    Examples
    --------
    >>> [label for _, label in access_classes(20)]
    ['moins de 7 min', '7 à 13 min', '13 à 20 min', 'plus de 20 min (hors de portée)']
    """
    t = float(max_minutes)
    a, b = t / 3, 2 * t / 3
    return [(a, f"moins de {_fmt_number(a)} min"),
            (b, f"{_fmt_number(a)} à {_fmt_number(b)} min"),
            (t, f"{_fmt_number(b)} à {_fmt_number(t)} min"),
            (math.inf, f"plus de {_fmt_number(t)} min (hors de portée)")]


@_map_builder
def build_access_map(
    access: Any,
    communes: gpd.GeoDataFrame,
    facility_type: str,
    *,
    facilities: gpd.GeoDataFrame | None = None,
    catchment: gpd.GeoDataFrame | None = None,
    catchment_label: str = "",
    travel_label: str = "",
    attribution: str = "",
    tiles: str | None = "OpenStreetMap",
) -> folium.Map:
    """Choropleth of the minutes from each commune to the nearest facility of one type.

    Parameters
    ----------
    access
        An :class:`~diagnosis.accessibility.AccessIndicators` (its ``table`` holds
        ``minutes_nearest_<type>``; ``params["max_minutes"]`` is the threshold T).
    communes
        The territory's communes (``code_insee`` and polygons, with a CRS).
    facility_type
        The type mapped (a column ``minutes_nearest_<type>`` of the table).
    facilities
        Optional facilities; those of ``facility_type`` are drawn as markers.
    catchment, catchment_label
        Optional isochrone of a site, and the site's name.
    travel_label
        How the times were obtained (``Travel.label``), printed in the legend; default
        from the engine of ``access.summary``.
    attribution, tiles
        As in :func:`build_priority_map`.

    Returns
    -------
    folium.Map
        Classes relative to T (:func:`access_classes`), French legend with the travel
        time method, escaped tooltips.

    Raises
    ------
    InputError
        ``facility_type`` not in the access table.
    """
    col = f"minutes_nearest_{facility_type}"
    table = access.table
    if col not in table.columns:
        kinds = [c.removeprefix("minutes_nearest_") for c in table.columns
                 if c.startswith("minutes_nearest_")]
        raise InputError(f"facility_type={facility_type!r} was not analysed; use one of {kinds}")
    t = float(access.params["max_minutes"])
    com = communes.to_crs(WGS84).merge(
        pd.DataFrame(table.loc[:, ["code_insee", col]]), on="code_insee", how="inner")
    m, bounds = _analysis_map(com if len(com) else communes, tiles)
    classes = access_classes(t)
    label = facility_label(facility_type) if facility_type in FACILITY_TYPES else facility_type
    fills, tips = [], []
    for row in com.to_dict("records"):
        minutes = _num(row.get(col))
        if np.isnan(minutes):
            fills.append(MISSING_COLOR)
            text = "non calculé"
        else:
            # below T/3, below 2T/3, up to T included, beyond T
            k = 2 if minutes == t else next(i for i, (hi, _) in enumerate(classes)
                                            if minutes < hi or i == len(classes) - 1)
            fills.append(ACCESS_COLORS[k])
            text = (f"{_fmt_number(minutes)} min" if np.isfinite(minutes)
                    else f"plus de {_fmt_number(t)} min")
        tips.append(f"<b>{_esc(row.get('name'))}</b> ({_esc(row.get('code_insee'))})<br>"
                    f"{_esc(label)} la plus proche connue : {text}")
    _fill_layer(com, fills, tips, f"Temps jusqu'à : {label}").add_to(m)
    n = _add_catchments(m, catchment, names=[catchment_label])
    items = [("swatch", c, lab) for c, (_, lab) in zip(ACCESS_COLORS, classes, strict=True)]
    if facilities is not None:
        of_type = facilities.loc[facilities["type"].eq(facility_type)]
        if len(of_type):
            folium.map.CustomPane(_FACILITY_PANE, z_index=450).add_to(m)
            group = folium.FeatureGroup(name=f"{facility_label(facility_type, plural=True)}"
                                        if facility_type in FACILITY_TYPES else facility_type)
            _point_layer(_spread_coincident(of_type.to_crs(WGS84)), facility_type,
                         source_titles={}, outside=False, pane=_FACILITY_PANE).add_to(group)
            group.add_to(m)
            color = FACILITY_STYLES.get(facility_type, {"color": "#444444"})["color"]
            items.append(("dot", color, f"{label} ({len(of_type)})"))
    items += _catchment_items(n, catchment_label)
    notes = [f"Temps de trajet : {travel_label or _engine_note(access)}."]
    legend = _analysis_legend(f"Temps jusqu'à : {label} (la plus proche)", items,
                              notes=notes, attribution=attribution)
    return _finish(m, bounds, legend, attribution)


def _engine_note(access: Any) -> str:
    engine = ""
    summary = getattr(access, "summary", None)
    if summary is not None and "engine" in summary and len(summary):
        engine = str(summary["engine"].iloc[0])
    return ("estimation à vol d'oiseau (distance × facteur de détour)" if engine == "crow_fly"
            else "réseau routier OpenStreetMap")


@_map_builder
def build_siting_map(
    result: Any | None,
    *,
    communes: gpd.GeoDataFrame | None = None,
    catchments: gpd.GeoDataFrame | None = None,
    user_points: Sequence[tuple[float, float]] = (),
    attribution: str = "",
    tiles: str | None = "OpenStreetMap",
) -> folium.Map:
    """Recommended sites, existing Maisons, their catchments and the communes reached.

    Parameters
    ----------
    result
        A :class:`~diagnosis.siting.SitingResult` (its ``sites`` layer, and its
        ``demand`` layer with ``code_insee`` and ``covered_after``), or None to draw
        the communes and the proposed points only (before a run, or after bad input).
    communes
        The territory's communes (polygons): filled by whether a site is within reach.
    catchments
        Isochrones of the sites (one row each, with a ``name`` column).
    user_points
        Sites proposed by the user, (longitude, latitude), numbered from 1.
    attribution, tiles
        As in :func:`build_priority_map`.

    Returns
    -------
    folium.Map
    """
    sites = (result.sites.to_crs(WGS84) if len(result.sites) else result.sites) \
        if result is not None else gpd.GeoDataFrame({"status": []}, geometry=[], crs=WGS84)
    frames = [f for f in (communes, sites) if f is not None and len(f)]
    if not frames:
        raise InputError("nothing to draw: the result has no site and no communes were given")
    m, bounds = _analysis_map(frames[0], tiles)
    items: list[tuple[str, str, str]] = []
    if communes is not None and len(communes):
        demand = result.demand if result is not None else pd.DataFrame()
        covered = dict(zip(demand["code_insee"].astype(str),
                           demand.get("covered_after", pd.Series(False, index=demand.index))
                           .astype(bool), strict=True)) if "code_insee" in demand else {}
        minutes = {str(c): _num(v) for c, v in zip(demand["code_insee"], demand["minutes_to_site"],
                                                   strict=True)} \
            if "minutes_to_site" in demand and "code_insee" in demand else {}
        fills, tips = [], []
        for row in communes.to_crs(WGS84).to_dict("records"):
            code = str(row.get("code_insee"))
            ok = covered.get(code)
            fills.append(NEUTRAL_COLOR if ok is None else ("#c7e9c0" if ok else "#fdd0a2"))
            tip = f"<b>{_esc(row.get('name'))}</b> ({_esc(code)})<br>"
            tip += ("un site à portée" if ok else "aucun site à portée") if ok is not None \
                else "hors de l'analyse"
            if code in minutes and np.isfinite(minutes[code]):
                tip += f" ({_fmt_number(float(minutes[code]))} min)"
            tips.append(tip)
        _fill_layer(communes, fills, tips, "Communes à portée").add_to(m)
        if covered:
            items += [("swatch", "#c7e9c0", "commune avec un site à portée"),
                      ("swatch", "#fdd0a2", "commune sans site à portée")]
        else:
            items.append(("swatch", NEUTRAL_COLOR, "commune du territoire"))
    names = [str(v) for v in catchments["name"]] if catchments is not None and \
        "name" in catchments else []
    n = _add_catchments(m, catchments, names=names)
    items += [("area", CATCHMENT_COLOR, "Zone desservie par un site recommandé")] if n else []
    folium.map.CustomPane(_FACILITY_PANE, z_index=450).add_to(m)
    if len(user_points):
        pts = [(lon, lat, f"<b>{USER_SITE_LABEL.format(n=i)}</b><br>"
                          f"<small>{lat:.5f}, {lon:.5f}</small>")
               for i, (lon, lat) in enumerate(user_points, start=1)]
        _site_markers(pts, color=USER_SITE_COLOR, radius=8, name="Sites proposés").add_to(m)
        items.append(("dot", USER_SITE_COLOR, f"Site proposé ({len(user_points)})"))
    for status, color, radius, label in (("existant", FACILITY_STYLES["maison_1000_jours"]
                                          ["color"], 9, "Maison existante"),
                                         ("recommandé", RECOMMENDED_COLOR, 12, "Site recommandé")):
        part = sites.loc[sites["status"].eq(status)] if len(sites) else sites
        if not len(part):
            continue
        pts = []
        for row in part.to_dict("records"):
            geom = row["geometry"]
            tip = f"<b>{_esc(row.get('name'))}</b><br>{_esc(row.get('type_label'))}"
            if status == "recommandé":
                tip += (f"<br>Rang {_esc(row.get('rank'))} — naissances à portée : "
                        f"{_fmt_number(_num(row.get('births_covered')))}")
            pts.append((float(geom.x), float(geom.y), tip))
        _site_markers(pts, color=color, radius=radius, name=f"{label}s").add_to(m)
        items.append(("dot", color, f"{label} ({len(part)})"))
    notes = ["Cliquez sur la carte pour proposer un site."]
    legend = _analysis_legend("Implantation de la Maison", items, notes=notes,
                              attribution=attribution)
    return _finish(m, bounds, legend, attribution)


def _line_style(feature: Mapping[str, Any]) -> dict[str, Any]:
    return {"color": feature["properties"]["color"], "weight": 3, "opacity": 0.85}


@_map_builder
def build_partner_network_map(
    site: Any,
    partners: pd.DataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    catchment: gpd.GeoDataFrame | None = None,
    attribution: str = "",
    tiles: str | None = "OpenStreetMap",
) -> folium.Map:
    """The site in the centre, a line to each partner within reach, coloured by type.

    Parameters
    ----------
    site
        The site studied: a :class:`~diagnosis.analyses.Site` (``name``, ``geometry``
        in EPSG:4326).
    partners
        Partners within reach (:func:`diagnosis.partners.find_partners`: ``facility_id``,
        ``type``, ``name``, ``minutes``, ``distance_m``).
    facilities
        Facilities with their positions (``facility_id``, geometry), to place the partners.
    catchment
        Optional isochrone of the site.
    attribution, tiles
        As in :func:`build_priority_map`.

    Returns
    -------
    folium.Map
    """
    geom = site.geometry
    fac = facilities.to_crs(WGS84)
    pos = dict(zip(fac["facility_id"].astype(str), fac.geometry, strict=True))
    features: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    xs, ys = [float(geom.x)], [float(geom.y)]
    for row in partners.to_dict("records"):
        p = pos.get(str(row.get("facility_id")))
        if p is None or p.is_empty:
            continue
        ftype = str(row.get("type", ""))
        color = FACILITY_STYLES.get(ftype, {"color": "#444444"})["color"]
        counts[ftype] = counts.get(ftype, 0) + 1
        minutes = _num(row.get("minutes"))
        dist = _num(row.get("distance_m")) / 1000
        label = facility_label(ftype) if ftype in FACILITY_TYPES else ftype
        tip = (f"<b>{_esc(row.get('name'))}</b><br>{_esc(label)}<br>"
               + (f"{_fmt_number(minutes)} min — " if np.isfinite(minutes) else "")
               + f"{_fmt_number(dist, decimals=1)} km à vol d'oiseau")
        features.append({"type": "Feature", "properties": {"color": color, "tooltip": tip},
                         "geometry": {"type": "LineString", "coordinates": [
                             [round(float(geom.x), 6), round(float(geom.y), 6)],
                             [round(float(p.x), 6), round(float(p.y), 6)]]}})
        xs.append(float(p.x))
        ys.append(float(p.y))
    frame = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xs, ys), crs=WGS84)
    if catchment is not None and len(catchment):
        frame = pd.concat([frame, catchment.to_crs(WGS84)[["geometry"]]], ignore_index=True)
    m, bounds = _analysis_map(gpd.GeoDataFrame(frame, geometry="geometry", crs=WGS84), tiles)
    n = _add_catchments(m, catchment, names=[str(site.name)])
    # The pane first: the markers of the group below are drawn in it.
    folium.map.CustomPane(_FACILITY_PANE, z_index=450).add_to(m)
    group = folium.FeatureGroup(name=f"Partenaires à portée ({len(features)})", show=True)
    if features:
        folium.GeoJson({"type": "FeatureCollection", "features": features},
                       style_function=_line_style,
                       tooltip=folium.GeoJsonTooltip(fields=["tooltip"], labels=False),
                       control=False).add_to(group)
    group.add_to(m)
    drawn = fac.loc[fac["facility_id"].astype(str).isin(
        [str(r) for r in partners.get("facility_id", [])])]
    for ftype in [t for t in FACILITY_TYPES if t in counts] + \
            [t for t in counts if t not in FACILITY_TYPES]:
        _point_layer(drawn.loc[drawn["type"].eq(ftype)], ftype, source_titles={},
                     outside=False, pane=_FACILITY_PANE).add_to(group)
    _site_markers([(float(geom.x), float(geom.y),
                    f"<b>{_esc(site.name)}</b><br>Site étudié pour la Maison")],
                  color=RECOMMENDED_COLOR, radius=12, name="Site étudié").add_to(m)
    items = [("dot", RECOMMENDED_COLOR, f"Site étudié : {site.name}")]
    items += [("line", FACILITY_STYLES.get(t, {"color": "#444444"})["color"],
               f"{facility_label(t, plural=True) if t in FACILITY_TYPES else t} : {c}")
              for t, c in counts.items()]
    if not counts:
        items.append(("swatch", MISSING_COLOR, "aucun partenaire à portée"))
    items += _catchment_items(n)
    legend = _analysis_legend("Réseau de partenaires du site", items, attribution=attribution)
    return _finish(m, bounds, legend, attribution)


#: French texts of the drawing tool (Leaflet.draw's ``L.drawLocal``, the parts shown).
DRAW_TEXTS_FR: dict[str, Any] = {
    "draw": {
        "toolbar": {
            "actions": {"title": "Annuler le dessin", "text": "Annuler"},
            "finish": {"title": "Terminer le dessin", "text": "Terminer"},
            "undo": {"title": "Effacer le dernier point", "text": "Effacer le dernier point"},
            "buttons": {"polygon": "Dessiner un polygone",
                        "rectangle": "Dessiner un rectangle"},
        },
        "handlers": {
            "polygon": {"tooltip": {"start": "Cliquez pour commencer la zone.",
                                    "cont": "Cliquez pour continuer la zone.",
                                    "end": "Cliquez sur le premier point pour fermer la "
                                           "zone."}},
            "polyline": {"error": "<strong>Erreur :</strong> les bords ne doivent pas se "
                                  "croiser !"},
            "rectangle": {"tooltip": {"start": "Cliquez et faites glisser pour dessiner."}},
            "simpleshape": {"tooltip": {"end": "Relâchez pour terminer."}},
        },
    },
    "edit": {
        "toolbar": {
            "actions": {"save": {"title": "Enregistrer", "text": "Enregistrer"},
                        "cancel": {"title": "Annuler", "text": "Annuler"},
                        "clearAll": {"title": "Tout effacer", "text": "Tout effacer"}},
            "buttons": {"edit": "Modifier", "editDisabled": "Rien à modifier",
                        "remove": "Effacer la zone", "removeDisabled": "Aucune zone à effacer"},
        },
        "handlers": {"remove": {"tooltip": {"text": "Cliquez sur la zone à effacer."}}},
    },
}


class _DrawLocal(MacroElement):
    """Put :data:`DRAW_TEXTS_FR` into Leaflet.draw's ``L.drawLocal`` (deep merge)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            function merge(a, b) { for (var k in b) {
                if (typeof b[k] === "object" && a[k]) { merge(a[k], b[k]); } else { a[k] = b[k]; }
            } }
            if (window.L && L.drawLocal) { merge(L.drawLocal, {{ this.texts_js }}); }
        })();
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "MaillageDrawLocal"
        self.texts_js = _js_value(DRAW_TEXTS_FR)


def _js_value(value: Any) -> str:
    r"""A JSON value as JavaScript, safe inside a ``<script>`` and as Jinja source.

    The JSON travels as a string literal given to ``JSON.parse``: braces can then be
    escaped (``\u007b`` is only valid inside a string), as :func:`_js_string` does.

    Examples
    --------
    >>> print(_js_value({"a": "b"}))
    JSON.parse("\u007b\"a\": \"b\"\u007d")
    """
    return f"JSON.parse({_js_string(json.dumps(value, ensure_ascii=False))})"


@_map_builder
def build_draw_map(communes: gpd.GeoDataFrame, *, tiles: str | None = "OpenStreetMap"
                   ) -> folium.Map:
    """Map to draw a custom territory on: the communes' outlines and a drawing tool.

    The polygon or rectangle drawn is read back by the app (``st_folium``'s
    ``last_active_drawing``); :func:`diagnosis.territory.territory_from_polygon` turns it
    into the communes it covers. Leaflet.draw is vendored like Leaflet (offline).
    """
    from folium.plugins import Draw

    com = communes.to_crs(WGS84)
    m, bounds = _analysis_map(com, tiles)
    tips = [f"<b>{_esc(r.get('name'))}</b> ({_esc(r.get('code_insee'))})"
            for r in com.to_dict("records")]
    _fill_layer(com, ["#dadaeb"] * len(com), tips, "Communes").add_to(m)
    _DrawLocal().add_to(m)  # before the tool: its buttons read L.drawLocal when built
    Draw(export=False, position="topleft",
         draw_options={"polyline": False, "circle": False, "circlemarker": False,
                       "marker": False, "polygon": {"allowIntersection": False},
                       "rectangle": True},
         edit_options={"edit": False, "remove": True}).add_to(m)
    _fit(m, bounds)
    return m
