"""Page « Implantation »: where to open the Maison, explained, and the peer groups it allows."""

from __future__ import annotations

import streamlit as st

from app_pages import CHOOSE, CHOOSE_MANY, _cached, current_selection, md_escape
from app_pages._bounded import show_table
from app_pages._study import (
    POINT_DIGITS,
    add_point,
    bind,
    current_study,
    remove_point,
    show_study_error,
    site_choice,
)
from app_pages._widgets import (
    error_box,
    load_travel,
    require_data,
    show_map,
    show_notes,
    travel_inputs,
)
from diagnosis.errors import MaillageError
from diagnosis.maps import build_siting_map, default_attribution
from diagnosis.pipeline import step_params
from diagnosis.presentation import (
    OBJECTIVE_LABELS,
    cohort_table,
    fr_value,
    recommended_sites,
    scenario_table,
    sites_table,
)
from diagnosis.schema import facility_label
from diagnosis.settings import DEFAULT_THRESHOLD_M, DEFAULT_UPTAKE_RATE
from diagnosis.siting import HOST_TYPES

sel = current_selection()
require_data(sel, "Implantation de la Maison")
st.markdown("Où ouvrir la Maison des 1000 premiers jours ? Parmi les structures qui peuvent "
            "l'accueillir (et vos propres propositions), les sites qui mettent le plus de "
            "naissances à portée, en tenant compte de la pauvreté et des familles "
            "monoparentales. Chaque site recommandé est expliqué.")

mode, max_minutes = travel_inputs("implantation")
study = current_study(sel)
points = study.user_sites
left, right = st.columns(2)
left.number_input("Nombre de nouveaux sites (k)", min_value=1, max_value=10, step=1,
                  **bind("implantation_k", "k", int(study.k), int))
right.radio("Objectif", options=list(OBJECTIVE_LABELS), format_func=OBJECTIVE_LABELS.__getitem__,
            **bind("implantation_objective", "objective", study.objective, str))
left, right = st.columns(2)
left.multiselect("Lieux pouvant accueillir la Maison", options=list(HOST_TYPES),
                 format_func=facility_label, placeholder=CHOOSE_MANY,
                 **bind("implantation_hosts", "host_types",
                        [h for h in study.host_types if h in HOST_TYPES], tuple))
right.multiselect("Scénarios à comparer (nombre de sites)", options=list(range(1, 6)),
                  placeholder=CHOOSE_MANY,
                  help="Un scénario qui demande plus de sites que de lieux candidats est écarté.",
                  **bind("implantation_scenarios", "scenarios",
                         [k for k in study.scenarios if 1 <= k <= 5],
                         lambda v: tuple(sorted(v))))
show_study_error()

diag = None
problems = _cached.siting_problems(sel.code, sel.files_key, (int(study.k),), study.host_types,
                                   points, sel.files)
for problem in problems:
    st.error(md_escape(problem), icon=":material/error:")
if not problems:
    load_travel(sel, mode)
    try:
        diag = _cached.diagnosis(sel.code, sel.files_key, study, sel.files)
    except MaillageError as exc:
        error_box("Les sites n'ont pas pu être calculés avec ces paramètres.", exc)
run = diag.siting if diag is not None else None

ws = _cached.workspace(sel.code, sel.files_key, sel.files)
ov = _cached.overview(sel.code, sel.files_key, DEFAULT_THRESHOLD_M, sel.files)


@st.fragment
def _map_and_clicked_point() -> None:
    """The map and its clicked point: a click reruns this part only, not the whole page.

    Adding the point changes the study: then the whole page runs again.
    """
    clicked = (show_map(
        ("implantation", sel.code, sel.files_key, step_params(study, "siting"), run is None),
        lambda: build_siting_map(run.main if run else None, communes=ov.layers["communes"],
                                 catchments=diag.catchments if run and diag else None,
                                 user_points=points, attribution=default_attribution(ws.sources)),
        # a clicked point belongs to its territory: another territory, another map
        key=f"implantation_map_{sel.code}", height=520,
        returned_objects=("last_clicked",)) or {}
    ).get("last_clicked")
    if not clicked:
        return
    lon, lat = float(clicked["lng"]), float(clicked["lat"])
    st.caption(f"Point cliqué : longitude {lon:.5f}, latitude {lat:.5f}")
    if st.button("Ajouter ce point comme site proposé", key="implantation_add_click",
                 on_click=add_point, args=(lon, lat), icon=":material/add_location:",
                 disabled=(round(lon, POINT_DIGITS), round(lat, POINT_DIGITS)) in points):
        st.rerun()  # the study changed: sites, scenarios and groups are the whole page's


_map_and_clicked_point()
with st.expander(f"Sites proposés ({len(points)})", expanded=bool(points)):
    for i, (lon, lat) in enumerate(points):
        line = st.columns([4, 1])
        line[0].write(f"Site proposé n°{i + 1} : longitude {lon:.5f}, latitude {lat:.5f}")
        line[1].button("Retirer", key=f"implantation_remove_{i}", on_click=remove_point,
                      args=(i,))
    row = st.columns(3)
    lon_in = row[0].number_input("Longitude", value=None, format="%.5f", key="implantation_lon")
    lat_in = row[1].number_input("Latitude", value=None, format="%.5f", key="implantation_lat")
    row[2].button("Ajouter", key="implantation_add_typed", on_click=add_point,
                  args=(lon_in, lat_in), disabled=lon_in is None or lat_in is None)

if diag is None:
    st.stop()
if run is None:
    show_notes([*diag.notes, *ws.notices])
    st.stop()
main = run.main
sites = recommended_sites(main)
st.subheader("Sites recommandés")
st.info(md_escape(main.summary.get("message", "")))
for site in sites:
    with st.container(border=True):
        st.markdown(f"**{md_escape(site.name)}** — {md_escape(site.type_label)}")
        st.write(md_escape(site.explanation))
show_table(sites_table(main), hide_index=True, key="implantation_sites_table", placeholder="—")
st.subheader("Scénarios comparés")
show_table(scenario_table(run.table), hide_index=True, key="implantation_scenarios_table")

st.subheader("Groupes de pairs autour du site étudié")
names = {s.site_id: s.name for s in sites}
if diag.site is not None:
    names.setdefault(diag.site.site_id, diag.site.name)
first = sites[0].name if sites else "aucun"
st.selectbox("Site étudié (aussi pour les partenaires et le rapport)",
             options=["", *[i for i in names if i != ""]], placeholder=CHOOSE,
             format_func=lambda i: names.get(i, i) if i else
             f"— le premier site recommandé : {first} —",
             **bind("implantation_cohort_site", "site",
                    study.site if study.site in names else "", site_choice(names)))
row = st.columns(3)
row[0].slider("Participation des familles (hypothèse, %)", min_value=1, max_value=100,
              help="Part des familles de la zone qui rejoindraient un groupe : une hypothèse "
                   "de travail, aucun chiffre national n'existe encore.",
              **bind("implantation_uptake", "uptake_rate",
                     round(100 * (study.uptake_rate or DEFAULT_UPTAKE_RATE)),
                     lambda v: v / 100))
row[1].number_input("Familles par groupe", min_value=2, max_value=30,
                    **bind("implantation_group_size", "group_size", int(study.group_size), int))
row[2].slider("Fenêtre de naissance (mois)", min_value=1, max_value=12,
              **bind("implantation_window", "birth_window_months",
                     int(study.birth_window_months), float))
plan = diag.cohorts
if plan is None:
    show_notes([*diag.notes, *ws.notices])
    st.stop()
row = st.columns(3)
row[0].metric("Groupes pouvant démarrer par an", fr_value(plan.groups_per_year))
row[1].metric("Mois pour réunir un groupe", fr_value(plan.months_to_fill_group))
row[2].metric("Heures d'animation par mois", fr_value(plan.facilitator_hours_per_month))
st.caption(f"Calcul sur les {md_escape(plan.params.get('scope', ''))}, avec une participation "
           f"supposée de {fr_value(100 * (study.uptake_rate or 0))} % (hypothèse à discuter "
           "avec les partenaires).")
for warning in plan.warnings:
    st.warning(md_escape(warning))
show_table(cohort_table(plan), hide_index=True, key="implantation_cohort_table")
show_notes([*run.notes, *ws.notices])
