"""The siting map: recommended and proposed sites with their catchments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.errors import InputError
from diagnosis.maps._analysis import (
    CATCHMENT_COLOR,
    NEUTRAL_COLOR,
    RECOMMENDED_COLOR,
    USER_SITE_COLOR,
    _add_catchments,
    _analysis_legend,
    _analysis_map,
    _fill_layer,
    _finish,
    _num,
    _site_markers,
)
from diagnosis.maps._common import _FACILITY_PANE, FACILITY_STYLES, _esc, _fmt_number, _map_builder
from diagnosis.settings import USER_SITE_LABEL, WGS84


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
