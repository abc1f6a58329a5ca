"""Minutes from the studied site in one travel mode (e.g. by transit), per commune."""

from __future__ import annotations

from typing import Any

import folium
import geopandas as gpd
import numpy as np

from diagnosis.maps._analysis import (
    ACCESS_COLORS,
    NEUTRAL_COLOR,
    _analysis_legend,
    _analysis_map,
    _fill_layer,
    _finish,
    _site_markers,
)
from diagnosis.maps._common import _esc, _fmt_number, _map_builder
from diagnosis.settings import WGS84


@_map_builder
def build_mode_minutes_map(
    communes: gpd.GeoDataFrame,
    modes: Any,
    site: Any,
    *,
    mode: str = "transports en commun",
    attribution: str = "",
    tiles: str | None = "OpenStreetMap",
) -> folium.Map:
    """Communes coloured by the minutes between them and ``site`` in ``mode``.

    Parameters
    ----------
    communes
        Commune polygons (``code_insee``, ``name``).
    modes
        A :class:`~diagnosis.travel.compare.ModeComparison` (its ``minutes``).
    site
        The studied site (:class:`~diagnosis.analyses.Site`: ``site_id``, ``name``,
        ``geometry`` in EPSG:4326).
    mode
        The mode shown (a key of ``modes.labels``); the tooltip gives every mode.

    Returns
    -------
    folium.Map
        Classes: within a third, two thirds, the threshold; beyond it or out of reach.
    """
    t = modes.minutes
    mine = t.loc[t["site_id"].astype(str) == str(site.site_id)]
    table = mine.pivot_table(index="code_insee", columns="mode", values="minutes",
                             aggfunc="min")
    limit = float(modes.max_minutes)
    com = communes.to_crs(WGS84)
    fills, tips = [], []
    for code, name in zip(com["code_insee"].astype(str), com["name"], strict=True):
        row = table.loc[code] if code in table.index else None
        value = float(row[mode]) if row is not None and mode in row else np.nan
        if not np.isfinite(value):
            fills.append(ACCESS_COLORS[-1] if row is not None else NEUTRAL_COLOR)
        else:
            k = min(int(value / (limit / 3)), 2) if value <= limit else 3
            fills.append(ACCESS_COLORS[k])
        parts = [f"<b>{_esc(name)}</b>"]
        for m in modes.labels:
            v = float(row[m]) if row is not None and m in row else np.nan
            parts.append(f"{_esc(m)} : " + (f"{_fmt_number(v)} min" if np.isfinite(v)
                                             else f"plus de {_fmt_number(limit)} min"))
        tips.append("<br>".join(parts))
    m, bounds = _analysis_map(com, tiles)
    _fill_layer(com, fills, tips, f"Minutes {mode} depuis le site").add_to(m)
    geom = site.geometry
    _site_markers([(float(geom.x), float(geom.y), f"<b>{_esc(site.name)}</b><br>Site étudié")],
                  color="#ffd700", radius=9, name="Site étudié").add_to(m)
    third = limit / 3
    items = [("swatch", ACCESS_COLORS[0], f"{_fmt_number(third)} min ou moins"),
             ("swatch", ACCESS_COLORS[1], f"{_fmt_number(2 * third)} min ou moins"),
             ("swatch", ACCESS_COLORS[2], f"{_fmt_number(limit)} min ou moins"),
             ("swatch", ACCESS_COLORS[3], f"plus de {_fmt_number(limit)} min, ou hors d'atteinte"),
             ("swatch", NEUTRAL_COLOR, "non calculé")]
    legend = _analysis_legend(f"Temps {mode} depuis « {site.name} »", items,
                              notes=[modes.labels.get(mode, "")], attribution=attribution)
    return _finish(m, bounds, legend, attribution)
