"""Shared machinery of the maps: styles, offline assets, escaping, classes, legends, attribution."""

from __future__ import annotations

import functools
import html
import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ParamSpec

import folium
import numpy as np
import shapely
from branca import element as branca_element
from branca.colormap import ColorMap
from branca.element import Element, MacroElement
from jinja2 import Template

from diagnosis.errors import InputError
from diagnosis.formatting import fr_number

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


class _RenderedText(Element):
    """Text an element's template already rendered, put on the page as it is.

    branca adds each element's rendered script to the page as a new ``Element(text)``,
    whose constructor compiles ``text`` as a Jinja template, to be rendered a second
    time. For a layer, that text holds its whole GeoJSON (hundreds of kilobytes for the
    communes of a département): Jinja lexed it for nothing. This element keeps the text.
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def render(self, **kwargs: Any) -> str:
        return self._text


class _RenderedOnce(MacroElement):
    """A ``MacroElement`` whose rendered header, html and script are never compiled again.

    Does what ``MacroElement.render`` does (each part of the element's template added
    to the page's header, html and script, then the children rendered), with
    :class:`_RenderedText` instead of ``Element`` around each rendered part. The page is
    the same text: a test renders each of our maps both ways.
    """

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]  # as MacroElement
        figure = self.get_root()
        if not isinstance(figure, branca_element.Figure):
            raise TypeError("You cannot render this Element if it is not in a Figure.")
        parts = self._template.module.__dict__
        for part in ("header", "html", "script"):
            macro = parts.get(part)
            if macro is not None:
                getattr(figure, part).add_child(_RenderedText(macro(self, kwargs)),
                                                name=self.get_name())
        for element in self._children.values():
            element.render(**kwargs)


class _GeoJson(folium.GeoJson, _RenderedOnce):
    """``folium.GeoJson`` with fast bounds, whose script is not compiled again as Jinja.

    folium walks every coordinate in Python for a layer's bounds, and streamlit-folium
    asks for them each time it turns a map into Leaflet script: a third of that time for
    the communes of a département. Here the bounds come from the ``shapes`` the features
    were made of (``shapely.geometry.mapping`` writes their very coordinates), from the
    coordinates of point features, or else from GEOS reading the features' JSON. They
    are the same numbers as folium's (the coordinates' JSON text is read back exactly).

    Its rendered script goes on the page as text (:class:`_RenderedOnce`).

    Examples
    --------
    >>> data = {"type": "FeatureCollection", "features": [{"type": "Feature",
    ...     "properties": {}, "geometry": {"type": "LineString",
    ...                                    "coordinates": [[-1.5, 47.2], [-1.4, 47.3]]}}]}
    >>> _GeoJson(data)._get_self_bounds() == folium.GeoJson(data)._get_self_bounds()
    True
    >>> line = shapely.LineString([(-1.5, 47.2), (-1.4, 47.3)])
    >>> _GeoJson(data, shapes=[line])._get_self_bounds()
    [[47.2, -1.5], [47.3, -1.4]]
    """

    def __init__(self, data: Any, *args: Any,
                 shapes: Sequence[shapely.Geometry] | None = None, **kwargs: Any) -> None:
        super().__init__(data, *args, **kwargs)
        self._shapes = None if shapes is None else list(shapes)

    def _get_self_bounds(self) -> list[list[float | None]]:
        if self._shapes is not None:
            return _bounds_of(self._shapes)
        data = self.data
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            return super()._get_self_bounds()
        shapes = [f.get("geometry") for f in data.get("features", ())]
        points = _point_coordinates(shapes)
        if points is not None:
            if not len(points):
                return [[None, None], [None, None]]
            (west, south), (east, north) = points.min(axis=0), points.max(axis=0)
            return [[float(south), float(west)], [float(north), float(east)]]
        try:
            found = shapely.from_geojson(json.dumps(
                {"type": "GeometryCollection", "geometries": [g for g in shapes if g]}))
        except (TypeError, ValueError, shapely.errors.GEOSException):
            return super()._get_self_bounds()
        return _bounds_of([found])


def _bounds_of(shapes: Sequence[shapely.Geometry | None]) -> list[list[float | None]]:
    """``[[south, west], [north, east]]`` of shapely geometries (``None`` when all empty)."""
    kept = [g for g in shapes if g is not None and not g.is_empty]
    if not kept:
        return [[None, None], [None, None]]
    west, south, east, north = (float(v) for v in shapely.total_bounds(kept))
    return [[south, west], [north, east]]


def _point_coordinates(shapes: Sequence[Any]) -> np.ndarray | None:
    """``(n, 2)`` coordinates when every GeoJSON geometry is a 2-D point, else ``None``."""
    try:
        if not all(g["type"] == "Point" and len(g["coordinates"]) == 2 for g in shapes):
            return None
        return np.array([g["coordinates"] for g in shapes], dtype=float).reshape(-1, 2)
    except (TypeError, KeyError, ValueError):
        return None


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
        if _braceless(value):  # e.g. a geometry's coordinates: nothing to encode
            return value
        return [_neutralise_value(v) for v in value]
    return value


def _braceless(values: list[Any] | tuple[Any, ...]) -> bool:
    """Whether a list holds no mapping and no brace in any text, read at C speed.

    Its JSON text then has no brace at all (a list's own brackets are ``[``/``]``).
    Anything JSON cannot encode is walked instead.

    Examples
    --------
    >>> _braceless([[-1.5, 47.2], [-1.4, 47.3]]), _braceless(["a", "{{ x }}"])
    (True, False)
    """
    if any(isinstance(v, dict) for v in values):
        return False
    try:
        text = json.dumps(values)
    except (TypeError, ValueError):
        return False
    return "{" not in text and "}" not in text


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


#: The page style of a legend (a narrower attribution beside it).
_LEGEND_HEADER = """
        {% macro header(this, kwargs) %}
        <style>
        .leaflet-control-attribution { max-width: 55%; font-size: 10px; }
        </style>
        {% endmacro %}
"""
#: A legend's Leaflet control, in the variable named after the element.
_LEGEND_CONTROL = """
        var {{ this.get_name() }} = L.control({position: "bottomleft"});
        {{ this.get_name() }}.onAdd = function () {
            var div = L.DomUtil.create("div", "maillage-legend");
            div.innerHTML = {{ this.html_js }};
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
"""


class _Legend(MacroElement):
    """A Leaflet control holding a French HTML legend (bottom left of the map)."""

    _template = Template(_LEGEND_HEADER + "{% macro script(this, kwargs) %}" + _LEGEND_CONTROL
                         + "{{ this.get_name() }}.addTo({{ this._parent.get_name() }});"
                         "{% endmacro %}")

    def __init__(self, legend_html: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "MaillageLegend"
        self.legend_html = legend_html
        self.html_js = _js_string(legend_html)


class _LegendStyle(MacroElement):
    """The page style a :class:`_Legend` brings (its ``header``), on its own."""

    _template = Template(_LEGEND_HEADER)

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "MaillageLegendStyle"


class _LegendLayer(MacroElement):
    """A :class:`_Legend` as a layer of a group: shown while the group is on the map.

    The legend's control is added when the layer is added to the map and removed with
    it, so a group that replaces another (:func:`split_layers`) replaces its legend too.
    """

    _template = Template("{% macro script(this, kwargs) %}" + _LEGEND_CONTROL + """
        new (L.Layer.extend({
            onAdd: function (map) { {{ this.get_name() }}.addTo(map); },
            onRemove: function (map) { {{ this.get_name() }}.remove(); }
        }))().addTo({{ this._parent.get_name() }});
        {% endmacro %}""")

    def __init__(self, legend: _Legend) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "MaillageLegend"
        self.legend_html = legend.legend_html
        self.html_js = legend.html_js


class _FitOnce(MacroElement):
    """A map's ``FitBounds`` as a layer: the view is fitted when these bounds are new.

    Layers swapped for new values of the same territory keep the view the person chose;
    another territory's layers fit the map to it. A map whose frame is still being laid
    out (narrower than the fit's padding) fits when it is resized.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        new (L.Layer.extend({
            onAdd: function (map) {
                var bounds = {{ this.bounds|tojson }};
                var options = {{ this.options|tojson }};
                var key = JSON.stringify(bounds);
                if (map.maillageFitted === key) { return; }
                map.maillageFitted = key;
                var fit = function () { map.fitBounds(bounds, options); };
                var pad = L.point(options.paddingTopLeft || [0, 0])
                    .add(L.point(options.paddingBottomRight || [0, 0]));
                var size = map.getSize();
                if (size.x > pad.x && size.y > pad.y) { fit(); } else { map.once("resize", fit); }
            },
            onRemove: function (map) {}
        }))().addTo({{ this._parent.get_name() }});
        {% endmacro %}""")

    def __init__(self, fit: folium.FitBounds) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "MaillageFit"
        self.bounds = fit.bounds
        self.options = fit.options


class _HiddenAtFirst(MacroElement):
    """Takes its group off the map as soon as it is added: shown from the layer control."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.once("add", function (e) { e.target.remove(); });
        {% endmacro %}""")

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "MaillageHidden"


#: Where every map frame opens before its layers fit it to the territory (France).
FRAME_CENTER: tuple[float, float] = (46.6, 2.4)
FRAME_ZOOM = 5


def split_layers(m: folium.Map) -> tuple[list[folium.FeatureGroup],
                                         folium.LayerControl | None]:
    """Take a map's data out of it, to be sent apart from its frame (in place).

    The app sends a map to the browser as its frame (scale, panes, tiles, attribution)
    and its layers (the feature groups, the legend, the fit to the territory and the
    layer control). The frame is the same for every territory and every value of the
    study's options: streamlit-folium keeps the map drawn and swaps its layers (the view
    the person chose is kept while the territory is the same) instead of loading a new
    map. The legend and the fit go in a group of their own (:class:`_LegendLayer`,
    :class:`_FitOnce`); a group hidden at first is taken off the map when added
    (:class:`_HiddenAtFirst`), and stays in the layer control.

    Returns
    -------
    tuple
        ``(groups, layer_control)``; ``m`` keeps the frame.
    """
    groups: list[folium.FeatureGroup] = []
    control = None
    frame = folium.FeatureGroup(name="Cadre", control=False)
    for name, child in list(m._children.items()):
        if isinstance(child, folium.FeatureGroup):
            if not child.show:
                _HiddenAtFirst().add_to(child)
            groups.append(child)
        elif isinstance(child, folium.LayerControl):
            control = child
        elif isinstance(child, _Legend):
            _LegendStyle().add_to(m)
            _LegendLayer(child).add_to(frame)
        elif isinstance(child, folium.FitBounds):
            _FitOnce(child).add_to(frame)
            m.location, m.options["zoom"] = list(FRAME_CENTER), FRAME_ZOOM
        else:
            continue
        del m._children[name]
    if frame._children:
        groups.append(frame)
    return groups, control


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
        super().__init__()  # type: ignore[no-untyped-call]
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
        super().__init__()  # type: ignore[no-untyped-call]
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
