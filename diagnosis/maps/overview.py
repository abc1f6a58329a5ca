"""The overview map: births per commune, the offer by type, town halls."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import mapping

from diagnosis.errors import InputError
from diagnosis.maps._common import (
    _FACILITY_PANE,
    _OSM_ATTRIBUTION,
    MISSING_COLOR,
    _Attribution,
    _class_labels,
    _GeoJson,
    _leaflet_map,
    _Legend,
    _map_builder,
    _palette,
    class_breaks,
    default_attribution,
)
from diagnosis.maps._layers import (
    _commune_style,
    _communes_geojson,
    _legend_html,
    _outline_style,
    _point_layer,
    _spread_coincident,
    drawn_count_note,
)
from diagnosis.needs import data_years, dated_label
from diagnosis.overview import Overview
from diagnosis.schema import (
    FACILITY_TYPES,
    NEEDS_COLUMNS,
    facility_label,
)
from diagnosis.settings import METRIC_CRS, WGS84


@_map_builder
def build_overview_map(
    overview: Overview,
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
    types = _drawn_types(facility_types, facilities, nearby)
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

    value_label, labels, colors, has_missing = _add_choropleth(m, communes, value_col)

    outline_geom = communes.to_crs(METRIC_CRS).union_all().buffer(0).boundary
    outline = gpd.GeoSeries([outline_geom], crs=METRIC_CRS).to_crs(WGS84).iloc[0]
    outline_group = folium.FeatureGroup(name="Contour du territoire", show=True)
    _GeoJson(mapping(outline), style_function=_outline_style, control=False,
                   interactive=False).add_to(outline_group)
    outline_group.add_to(m)

    type_counts = _add_facilities(m, facilities, nearby, types, source_titles=source_titles)

    halls = facilities.loc[facilities["type"].eq("mairie")]
    hall_group = folium.FeatureGroup(name=f"Mairies ({len(halls)})", show=show_town_halls)
    if not halls.empty:
        _point_layer(halls, "mairie", source_titles=source_titles, outside=False).add_to(
            hall_group)
    hall_group.add_to(m)

    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    _Legend(_legend_html(
        value_label=value_label, class_labels=labels, colors=colors,
        has_missing=has_missing, type_counts=type_counts,
        statuses={t: str(c.get("status", "unknown"))
                  for t, c in overview.summary.get("coverage", {}).items()},
        show_town_halls=show_town_halls, n_town_halls=int(len(halls)),
        attribution=attribution,
    )).add_to(m)
    if attribution:
        _Attribution(attribution).add_to(m)
    # Leave room on the left for the legend.
    m.fit_bounds([[south, west], [north, east]], padding_top_left=(310, 20),
                 padding_bottom_right=(20, 20))
    return m


def _drawn_types(facility_types: Iterable[str] | None, facilities: gpd.GeoDataFrame,
                 nearby: gpd.GeoDataFrame) -> list[str]:
    """Facility types drawn (town halls apart): those asked, else every type present."""
    if facility_types is None:
        present = set(facilities["type"]) | set(nearby["type"])
        return [t for t in FACILITY_TYPES if t in present and t != "mairie"]
    types = [t for t in dict.fromkeys(facility_types) if t != "mairie"]
    unknown = [t for t in types if t not in FACILITY_TYPES]
    if unknown:
        raise InputError(f"facility_types={unknown!r} are not facility types; use "
                         f"{sorted(FACILITY_TYPES)}")
    return types


def _add_choropleth(m: folium.Map, communes: gpd.GeoDataFrame,
                    value_col: str) -> tuple[str, list[str], list[str], bool]:
    """Add the communes coloured by ``value_col``; return its label, classes, colours, gaps."""
    value_label = dated_label(value_col, NEEDS_COLUMNS.get(value_col, value_col),
                              data_years(communes))
    values = pd.to_numeric(communes[value_col], errors="coerce")
    breaks = class_breaks(values.to_numpy())
    colors = _palette(len(breaks) + 1)
    finite = values[np.isfinite(values)]
    integers = bool(np.all(np.mod(finite, 1) == 0))
    labels = (_class_labels(breaks, float(finite.min()), float(finite.max()), integers=integers)
              if len(finite) else [])
    colors = colors[:len(labels)]
    choro = folium.FeatureGroup(name=f"{value_label} par commune", show=True)
    _GeoJson(
        _communes_geojson(communes, value_col, colors or [MISSING_COLOR], breaks, value_label),
        style_function=_commune_style,
        tooltip=folium.GeoJsonTooltip(fields=["tooltip"], labels=False),
        control=False, shapes=list(communes.geometry),
    ).add_to(choro)
    choro.add_to(m)
    return value_label, labels, colors, bool(values.isna().any())


def _add_facilities(m: folium.Map, facilities: gpd.GeoDataFrame, nearby: gpd.GeoDataFrame,
                    types: Sequence[str], *,
                    source_titles: Mapping[str, str]) -> dict[str, tuple[int, int]]:
    """Add one layer per type (inside, then outside the territory); return their counts."""
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
        name += drawn_count_note(max(len(inside), len(outside)))
        group = folium.FeatureGroup(name=name, show=True)
        for part, is_out in ((outside, True), (inside, False)):
            if not part.empty:
                _point_layer(part, t, source_titles=source_titles, outside=is_out,
                             pane=_FACILITY_PANE).add_to(group)
        group.add_to(m)
    return type_counts
