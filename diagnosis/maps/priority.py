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
    births_year: int = 2024,
) -> folium.Map:
    """Choropleth of the priority score of the communes, with each factor in the tooltip.

    ``births_year``: the year of the births read (``overview.summary["data_years"]``).

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
        Five classes of equal width from 0 to the highest score (births weighted by
        needs), French legend, escaped tooltips.

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
    top = float(np.nanmax(scores)) if np.isfinite(scores).any() else 0.0
    # five classes of equal width from 0 to the highest score (weighted births)
    edges = np.linspace(0.0, top, len(PRIORITY_COLORS) + 1) if top > 0 else None
    fills, tips = [], []
    for row, score in zip(prio.to_dict("records"), scores, strict=True):
        if not np.isfinite(score):
            k = -1
        elif edges is None:
            k = 0
        else:
            k = min(int(np.searchsorted(edges, score, side="right")) - 1,
                    len(PRIORITY_COLORS) - 1)
        fills.append(MISSING_COLOR if k < 0 else PRIORITY_COLORS[k])
        tip = [f"<b>{_esc(row.get('name'))}</b> ({_esc(row.get('code_insee'))})",
               f"Rang {_esc(row.get('rank'))} — score {_fmt_number(score, decimals=1)} "
               "naissances pondérées",
               f"Naissances {births_year} : {_fmt_number(_num(row.get('births')))}"]
        tip += [f"{_esc(FACTOR_LABELS[f])} : × "
                f"{_fmt_number(_num(row.get(f'factor_{f}')), decimals=2)} la moyenne"
                for f in PRIORITY_FACTORS[1:] if f"factor_{f}" in row]
        if row.get("estimated_factors"):
            tip.append(f"Estimé : {_esc(row.get('estimated_factors'))}")
        tips.append("<br>".join(tip))
    _fill_layer(prio, fills, tips, "Score de priorité par commune").add_to(m)
    n = _add_catchments(m, catchment, names=[catchment_label])
    if edges is None:
        items = [("swatch", PRIORITY_COLORS[0], "0")]
    else:
        items = [("swatch", c, f"{_fmt_number(edges[i])} à {_fmt_number(edges[i + 1])}")
                 for i, c in enumerate(PRIORITY_COLORS)]
    if not np.isfinite(scores).all():
        items.append(("swatch", MISSING_COLOR, "non calculé (naissances inconnues)"))
    items += _catchment_items(n, catchment_label)
    notes = [f"Score en naissances pondérées : naissances {births_year} × besoins (pauvreté, "
             "familles "
             "monoparentales, éloignement des services ; 1 = moyenne du territoire). "
             "Détail au survol."]
    legend = _analysis_legend("Score de priorité par commune (naissances pondérées)", items,
                              notes=notes, attribution=attribution)
    return _finish(m, bounds, legend, attribution)
