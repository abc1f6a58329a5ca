"""The access map: travel time to the nearest facility by class."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.errors import InputError
from diagnosis.maps._analysis import (
    ACCESS_COLORS,
    _add_catchments,
    _analysis_legend,
    _analysis_map,
    _catchment_items,
    _fill_layer,
    _finish,
    _num,
)
from diagnosis.maps._common import (
    _FACILITY_PANE,
    FACILITY_STYLES,
    MISSING_COLOR,
    _esc,
    _fmt_number,
    _map_builder,
)
from diagnosis.maps._layers import _point_layer, _spread_coincident, drawn_count_note
from diagnosis.schema import (
    FACILITY_TYPES,
    facility_label,
)
from diagnosis.settings import WGS84

if TYPE_CHECKING:
    from diagnosis.accessibility import AccessIndicators


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
    access: AccessIndicators,
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
            group = folium.FeatureGroup(name=(f"{facility_label(facility_type, plural=True)}"
                                              if facility_type in FACILITY_TYPES
                                              else facility_type) + drawn_count_note(len(of_type)))
            _point_layer(_spread_coincident(of_type.to_crs(WGS84)), facility_type,
                         source_titles={}, outside=False, pane=_FACILITY_PANE).add_to(group)
            group.add_to(m)
            color = FACILITY_STYLES.get(facility_type, {"color": "#444444"})["color"]
            items.append(("dot", color, f"{label} ({len(of_type)}"
                                        f"{drawn_count_note(len(of_type))})"))
    items += _catchment_items(n, catchment_label)
    notes = [f"Temps de trajet : {travel_label or _engine_note(access)}."]
    legend = _analysis_legend(f"Temps jusqu'à : {label} (la plus proche)", items,
                              notes=notes, attribution=attribution)
    return _finish(m, bounds, legend, attribution)


def _engine_note(access: AccessIndicators) -> str:
    engine = ""
    summary = getattr(access, "summary", None)
    if summary is not None and "engine" in summary and len(summary):
        engine = str(summary["engine"].iloc[0])
    return ("estimation à vol d'oiseau (distance × facteur de détour)" if engine == "crow_fly"
            else "réseau routier OpenStreetMap")
