"""The partner network map of a studied site."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.maps._analysis import (
    RECOMMENDED_COLOR,
    _add_catchments,
    _analysis_legend,
    _analysis_map,
    _catchment_items,
    _finish,
    _num,
    _site_markers,
)
from diagnosis.maps._common import (
    _FACILITY_PANE,
    FACILITY_STYLES,
    MISSING_COLOR,
    _esc,
    _fmt_number,
    _GeoJson,
    _map_builder,
)
from diagnosis.maps._layers import _point_layer
from diagnosis.schema import (
    FACILITY_TYPES,
    facility_label,
)
from diagnosis.settings import WGS84


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
        _GeoJson({"type": "FeatureCollection", "features": features},
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
