"""The national plan's map: existing Maisons (fixed) and the new ones, numbered by rank.

The interactive twin of :func:`diagnosis.plan_exports.render_sites_png` (the static map of
the plan's PDF): same plan, same sites, same ranks. Every name and explanation shown in a
tooltip is escaped (:func:`diagnosis.maps._common._esc`) and travels as GeoJSON data,
never as template source; the rank numbers are integers written by us.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import folium
import geopandas as gpd
import pandas as pd
from shapely.geometry import box

from diagnosis.formatting import fr_number
from diagnosis.maps._analysis import (
    _analysis_legend,
    _analysis_map,
    _finish,
    _num,
    _site_markers,
)
from diagnosis.maps._common import _FACILITY_PANE, _esc, _map_builder
from diagnosis.settings import FRANCE_METRO_BBOX, WGS84

if TYPE_CHECKING:
    from diagnosis.plan import NationalPlan


#: Colours of the plan's map (the same as the PDF's static map).
NEW_COLOR = "#d95f0e"
EXISTING_COLOR = "#2c7fb8"
OWN_ANSWER_COLOR = "#fdae6b"
#: Most rank numbers written on the map (beyond, the tooltip gives the rank).
MAX_RANK_LABELS = 100


def _points(frame: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    if frame is None or not len(frame):
        return gpd.GeoDataFrame(geometry=[], crs=WGS84)
    out = frame.to_crs(WGS84) if frame.crs is not None else frame.set_crs(WGS84)
    return out.loc[out.geometry.notna() & ~out.geometry.is_empty]


def _new_tip(row: dict[str, Any]) -> str:
    where = ", ".join(_esc(row.get(c)) for c in ("commune", "dep_name") if _esc(row.get(c)))
    tip = (f"<b>Nouvelle Maison n°{int(_num(row.get('rank')))}</b> : {_esc(row.get('name'))}"
           + (f"<br>{where}" if where else "")
           + f"<br>Familles en plus par an : "
             f"{_esc(fr_number(_num(row.get('marginal_families'))))}")
    if _esc(row.get("explanation")):
        tip += f"<br><small>{_esc(row.get('explanation'))}</small>"
    return tip


def _existing_tip(row: dict[str, Any]) -> str:
    tip = f"<b>Maison existante</b> : {_esc(row.get('name'))}"
    if _esc(row.get("commune")):
        tip += f"<br>{_esc(row.get('commune'))}"
    families = _num(row.get("families_within"))
    if families == families:  # not NaN
        tip += f"<br>Naissances à portée : {_esc(fr_number(families))}"
    return tip


@_map_builder
def build_plan_map(plan: NationalPlan, *, tiles: str | None = "OpenStreetMap") -> folium.Map:
    """Map of a :class:`~diagnosis.plan.NationalPlan`: existing and new Maisons.

    Parameters
    ----------
    plan
        The plan (its ``sites``, ``existing`` and ``departement_sites`` layers).
    tiles
        Background tiles (``None``: none, the map works offline).

    Returns
    -------
    folium.Map
        New Maisons (orange, numbered by opening rank), existing Maisons (blue, fixed),
        each département's own answer (hidden layer), a French legend.
    """
    sites = _points(plan.layers.get("sites"))
    existing = _points(plan.layers.get("existing"))
    own = _points(plan.layers.get("departement_sites"))
    shown = pd.concat([sites.geometry, existing.geometry], ignore_index=True)
    frame = gpd.GeoDataFrame(geometry=list(shown) if len(shown)
                             else [box(*FRANCE_METRO_BBOX)], crs=WGS84)
    m, bounds = _analysis_map(frame, tiles)
    folium.map.CustomPane(_FACILITY_PANE, z_index=450).add_to(m)  # the markers' pane
    if bounds[2] - bounds[0] < 1.0 and bounds[3] - bounds[1] < 0.7:  # a few close points:
        bounds = [bounds[0] - 1.0, bounds[1] - 0.7, bounds[2] + 1.0, bounds[3] + 0.7]  # région
    if len(own):
        group = _site_markers(
            [(g.x, g.y, f"<b>Réponse du département {_esc(r.get('dep_code'))}, "
                        f"n°{int(_num(r.get('rank')))}</b> : {_esc(r.get('name'))}")
             for g, r in zip(own.geometry, own.to_dict("records"), strict=True)],
            color=OWN_ANSWER_COLOR, radius=5, name="Réponse propre à chaque département")
        group.show = False
        group.add_to(m)
    if len(existing):
        _site_markers([(g.x, g.y, _existing_tip(r)) for g, r in
                       zip(existing.geometry, existing.to_dict("records"), strict=True)],
                      color=EXISTING_COLOR, radius=7,
                      name="Maisons existantes connues").add_to(m)
    if len(sites):
        _site_markers([(g.x, g.y, _new_tip(r)) for g, r in
                       zip(sites.geometry, sites.to_dict("records"), strict=True)],
                      color=NEW_COLOR, radius=9, name="Nouvelles Maisons du plan").add_to(m)
        numbers = folium.FeatureGroup(name="Rang d'ouverture", show=True)
        for g, rank in list(zip(sites.geometry, sites["rank"], strict=True))[:MAX_RANK_LABELS]:
            folium.Marker([g.y, g.x], interactive=False, icon=folium.DivIcon(
                html=f'<div style="font:bold 10px sans-serif;color:white;text-align:center;'
                     f'width:18px;margin:-6px 0 0 -9px">{int(_num(rank))}</div>',
                icon_size=(0, 0))).add_to(numbers)
        numbers.add_to(m)
    items = [("dot", NEW_COLOR, f"Nouvelle Maison, numérotée par rang d'ouverture "
                                f"({len(sites)})"),
             ("dot", EXISTING_COLOR, f"Maison existante connue, fixe ({len(existing)})")]
    if len(own):
        items.append(("dot", OWN_ANSWER_COLOR, "Réponse propre à chaque département "
                                               "(couche masquée)"))
    notes = ["Maisons existantes : liste de départ non exhaustive et fichier de la "
             "fédération s'il est donné."]
    return _finish(m, bounds, _analysis_legend("Plan national", items, notes=notes),
                   "IGN, INSEE — Admin Express ; Insee ; Maisons connues : sources publiques")
