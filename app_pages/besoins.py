"""Page « Besoins et lacunes »: time to services, zones blanches and priority communes."""

from __future__ import annotations

import folium
import streamlit as st

from app_pages import CHOOSE, CHOOSE_MANY, _cached, current_selection
from app_pages._bounded import show_table
from app_pages._study import bind, bind_weight, current_study, show_study_error
from app_pages._widgets import (
    error_box,
    load_travel,
    require_data,
    show_map,
    show_notes,
    travel_inputs,
)
from diagnosis.analyses import AccessResult
from diagnosis.errors import InputError
from diagnosis.gaps import FACTOR_LABELS, PRIORITY_FACTORS
from diagnosis.maps import build_access_map, build_priority_map, default_attribution
from diagnosis.needs import data_years
from diagnosis.pipeline import step_params
from diagnosis.schema import facility_label

MAP_KINDS = {"priority": "Score de priorité", "access": "Temps jusqu'au service le plus proche"}

sel = current_selection()
require_data(sel, "Besoins et lacunes")
st.markdown(
    "Où les familles sont-elles loin des services de la petite enfance ? Pour chaque "
    "commune (depuis sa mairie) : le temps jusqu'à la structure la plus proche de chaque "
    "type, les **zones blanches** (aucune structure à moins de T minutes) et un **score de "
    "priorité** de 0 à 100 qui combine naissances, pauvreté, familles monoparentales et "
    "éloignement des services."
)

mode, max_minutes = travel_inputs("besoins")
study = current_study(sel)
all_types = _cached.analysed_types(sel.code, sel.files_key, sel.files)
chosen = [t for t in (study.types if study.types is not None else all_types) if t in all_types]
st.multiselect("Types de structures analysés", options=all_types, format_func=facility_label,
               placeholder=CHOOSE_MANY,
               **bind("besoins_types", "types", chosen,
                      lambda v: None if list(v) == list(all_types) else tuple(v)))
with st.expander("Poids du score de priorité", icon=":material/tune:"):
    cols = st.columns(len(PRIORITY_FACTORS))
    for k, col in zip(PRIORITY_FACTORS, cols, strict=True):
        col.slider(FACTOR_LABELS[k], min_value=0.0, max_value=1.0, step=0.05,
                   **bind_weight(f"besoins_weight_{k}", k, study))
    st.caption("Les poids sont ramenés à une somme de 100 %. Les valeurs par défaut sont une "
               "convention (priorité aux naissances et à l'éloignement), à discuter avec les "
               "partenaires du projet. Ils valent pour tout le diagnostic : rapport PDF et "
               "exports compris.")
show_study_error()
if not chosen:
    st.warning("Choisissez au moins un type de structure à analyser.")
    st.stop()

travel = load_travel(sel, mode)
step = _cached.access(sel.code, sel.files_key, study, sel.files)
if step.value is None:
    error_box("L'analyse n'a pas pu être faite avec ces paramètres (tous les poids à zéro, ou "
              "aucune structure des types choisis n'est chargée).",
              InputError(" ".join(step.notes)))
    st.stop()
res: AccessResult = step.value
ws = _cached.workspace(sel.code, sel.files_key, sel.files)

st.subheader("Carte")
left, middle, right = st.columns(3)
kind = left.radio("Carte affichée", options=list(MAP_KINDS), format_func=MAP_KINDS.__getitem__,
                  key="besoins_map_kind")
ftype = middle.selectbox("Type de structure (carte des temps)",
                         options=list(res.access.params["facility_types"]),
                         format_func=facility_label, placeholder=CHOOSE, key="besoins_map_type",
                         disabled=kind != "access")
choices = _cached.facility_choices(sel.code, sel.files_key, False, sel.files)
site_id = right.selectbox("Zone desservie par une structure", options=["", *choices],
                          format_func=lambda i: choices.get(i, "— aucune —"),
                          placeholder=CHOOSE, key="besoins_catchment_site",
                          help="Dessine la zone atteinte en T minutes depuis la structure "
                               "(isochrone).")
area, area_label = None, ""
if site_id:
    area = _cached.catchment(sel.code, sel.files_key, study, site_id, sel.files)
    area_label = _cached.study_site(sel.code, sel.files_key, study, site_id, sel.files).name
attribution = default_attribution(ws.sources)


def _build_map() -> folium.Map:
    if kind == "priority":
        return build_priority_map(res.gaps, catchment=area, catchment_label=area_label,
                                  attribution=attribution, births_year=data_years(
                                      ws.communes)["births_2024"])
    return build_access_map(res.access, res.gaps.layers["priority"], ftype,
                            facilities=ws.facilities, catchment=area,
                            catchment_label=area_label, travel_label=res.travel.label,
                            attribution=attribution)


show_map(("besoins", sel.code, sel.files_key, step_params(study, "access"), kind,
          ftype if kind == "access" else None, site_id), _build_map, key="besoins_map",
         height=560)

st.subheader("Communes prioritaires")
st.caption("Score de 0 à 100 = somme des contributions des quatre facteurs : chaque facteur "
           "est ramené entre 0 et 1 (1 = la commune la plus concernée du territoire), puis "
           "multiplié par son poids × 100. Les colonnes de facteurs expliquent donc le score.")
tables = _cached.access_tables(sel.code, sel.files_key, study, sel.files)
show_table(tables.priority, hide_index=True, key="besoins_priority_table",
             placeholder="—")

st.subheader("Accès aux services, par type")
st.caption(f"À portée : structure du type à {max_minutes:g} minutes ou moins de la mairie.")
show_table(tables.access, hide_index=True, key="besoins_access_table",
             placeholder="—")
st.subheader("Zones blanches")
show_table(tables.white_zones, hide_index=True, key="besoins_white_table",
             placeholder="—")
show_notes([*res.notes, *ws.notices])
