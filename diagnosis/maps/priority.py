"""The priority map: communes by priority score."""

from __future__ import annotations

from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.errors import InputError
from diagnosis.maps._analysis import (
    PRIORITY_COLORS,
    _add_catchments,
    _analysis_legend,
    _analysis_map,
    _catchment_items,
    _fill_layer,
    _finish,
    _num,
)
from diagnosis.maps._common import MISSING_COLOR, _esc, _fmt_number, _map_builder
from diagnosis.settings import WGS84


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
