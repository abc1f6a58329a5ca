"""Page « Implantation »: where to open the Maison, explained, and the peer groups it allows."""

from __future__ import annotations

import streamlit as st

from app_pages import CHOOSE, CHOOSE_MANY, _cached, current_selection, md_escape
from app_pages._widgets import (
    LAST_SITES_KEY,
    error_box,
    load_travel,
    require_data,
    show_map,
    show_notes,
    travel_inputs,
)
from diagnosis.cohorts import DEFAULT_UPTAKE_RATE
from diagnosis.errors import MaillageError
from diagnosis.maps import build_siting_map, default_attribution
from diagnosis.presentation import (
    OBJECTIVE_LABELS,
    cohort_table,
    fr_value,
    scenario_table,
    sites_table,
)
from diagnosis.schema import facility_label
from diagnosis.settings import DEFAULT_THRESHOLD_M
from diagnosis.siting import HOST_TYPES

POINTS_KEY = "implantation_points"


def _add_point(lon: float, lat: float) -> None:
    st.session_state[POINTS_KEY] = [*st.session_state[POINTS_KEY], (round(lon, 6), round(lat, 6))]


def _remove_point(index: int) -> None:
    st.session_state[POINTS_KEY] = [p for i, p in enumerate(st.session_state[POINTS_KEY])
                                    if i != index]


sel = current_selection()
require_data(sel, "Implantation de la Maison")
st.markdown("Où ouvrir la Maison des 1000 premiers jours ? Parmi les structures qui peuvent "
            "l'accueillir (et vos propres propositions), les sites qui mettent le plus de "
            "naissances à portée, en tenant compte de la pauvreté et des familles "
            "monoparentales. Chaque site recommandé est expliqué.")
st.session_state.setdefault(POINTS_KEY, [])
points = tuple(st.session_state[POINTS_KEY])

mode, max_minutes = travel_inputs("implantation")
left, right = st.columns(2)
k = int(left.number_input("Nombre de nouveaux sites (k)", min_value=1, max_value=10, value=1,
                          step=1, key="implantation_k"))
objective = right.radio("Objectif", options=list(OBJECTIVE_LABELS),
                        format_func=OBJECTIVE_LABELS.__getitem__, key="implantation_objective")
n_hosts = len(_cached.facility_choices(sel.code, sel.files_key, True, sel.files))
left, right = st.columns(2)
hosts = left.multiselect("Lieux pouvant accueillir la Maison", options=list(HOST_TYPES),
                         default=list(HOST_TYPES), format_func=facility_label,
                         placeholder=CHOOSE_MANY, key="implantation_hosts")
scenarios = right.multiselect("Scénarios à comparer (nombre de sites)", options=range(1, 6),
                              default=[v for v in (2, 3) if v <= n_hosts + len(points)],
                              placeholder=CHOOSE_MANY, key="implantation_scenarios")
ks = tuple(dict.fromkeys([k, *sorted(scenarios)]))

run = None
problems = _cached.siting_problems(sel.code, sel.files_key, ks, tuple(hosts), points, sel.files)
for problem in problems:
    st.error(md_escape(problem), icon=":material/error:")
if not problems:
    load_travel(sel, mode)
    try:
        run = _cached.siting(sel.code, sel.files_key, mode, max_minutes, ks, tuple(hosts),
                             objective, points, sel.files)
    except MaillageError as exc:
        error_box("Les sites n'ont pas pu être calculés avec ces paramètres.", exc)

ws = _cached.workspace(sel.code, sel.files_key, sel.files)
ov = _cached.overview(sel.code, sel.files_key, DEFAULT_THRESHOLD_M, sel.files)
clicked = (show_map(
    ("implantation", sel.code, sel.files_key, mode, max_minutes, ks, tuple(hosts), objective,
     points, run is None),
    lambda: build_siting_map(run.scenarios.main if run else None, communes=ov.layers["communes"],
                             catchments=run.catchments if run else None, user_points=points,
                             attribution=default_attribution(ws.sources)),
    key="implantation_map", height=520, returned_objects=("last_clicked",)) or {}
).get("last_clicked")
if clicked:
    lon, lat = float(clicked["lng"]), float(clicked["lat"])
    st.caption(f"Point cliqué : longitude {lon:.5f}, latitude {lat:.5f}")
    st.button("Ajouter ce point comme site proposé", key="implantation_add_click",
              on_click=_add_point, args=(lon, lat), icon=":material/add_location:",
              disabled=(round(lon, 6), round(lat, 6)) in points)
with st.expander(f"Sites proposés ({len(points)})", expanded=bool(points)):
    for i, (lon, lat) in enumerate(points):
        line = st.columns([4, 1])
        line[0].write(f"Site proposé n°{i + 1} : longitude {lon:.5f}, latitude {lat:.5f}")
        line[1].button("Retirer", key=f"implantation_remove_{i}", on_click=_remove_point,
                      args=(i,))
    row = st.columns(3)
    lon_in = row[0].number_input("Longitude", value=None, format="%.5f", key="implantation_lon")
    lat_in = row[1].number_input("Latitude", value=None, format="%.5f", key="implantation_lat")
    row[2].button("Ajouter", key="implantation_add_typed", on_click=_add_point,
                  args=(lon_in, lat_in), disabled=lon_in is None or lat_in is None)

if run is None:
    st.stop()
main = run.scenarios.main
st.session_state[LAST_SITES_KEY] = [s.key for s in run.sites]
st.subheader("Sites recommandés")
st.info(md_escape(main.summary.get("message", "")))
for site in run.sites:
    with st.container(border=True):
        st.markdown(f"**{md_escape(site.name)}** — {md_escape(site.type_label)}")
        st.write(md_escape(site.explanation))
st.dataframe(sites_table(main), hide_index=True, key="implantation_sites_table", placeholder="—")
st.subheader("Scénarios comparés")
st.dataframe(scenario_table(run.scenarios.table), hide_index=True,
             key="implantation_scenarios_table")

st.subheader("Groupes de pairs autour d'un site")
if not run.sites:
    st.stop()
sites = run.sites
index = st.selectbox("Site", options=list(range(len(sites))),
                     placeholder=CHOOSE, key="implantation_cohort_site",
                     format_func=lambda i: sites[i].name)
if index is None:
    st.stop()
row = st.columns(3)
uptake = row[0].slider("Participation des familles (hypothèse, %)", min_value=1, max_value=100,
                       value=round(100 * DEFAULT_UPTAKE_RATE), key="implantation_uptake",
                       help="Part des familles de la zone qui rejoindraient un groupe : une "
                            "hypothèse de travail, aucun chiffre national n'existe encore.")
size = int(row[1].number_input("Familles par groupe", min_value=2, max_value=30, value=10,
                               key="implantation_group_size"))
window = row[2].slider("Fenêtre de naissance (mois)", min_value=1, max_value=12, value=3,
                       key="implantation_window")
plan = _cached.cohorts(sel.code, sel.files_key, mode, max_minutes, sites[index].key,
                       uptake / 100, size, float(window), sel.files)
row = st.columns(3)
row[0].metric("Groupes pouvant démarrer par an", fr_value(plan.groups_per_year))
row[1].metric("Mois pour réunir un groupe", fr_value(plan.months_to_fill_group))
row[2].metric("Heures d'animation par mois", fr_value(plan.facilitator_hours_per_month))
st.caption(f"Calcul sur les {md_escape(plan.params.get('scope', ''))}, avec une participation "
           f"supposée de {uptake} % (hypothèse à discuter avec les partenaires).")
for warning in plan.warnings:
    st.warning(md_escape(warning))
st.dataframe(cohort_table(plan), hide_index=True, key="implantation_cohort_table")
show_notes([*run.scenarios.notes, *ws.notices])
