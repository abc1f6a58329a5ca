"""Page « Partenaires »: the maillage of a site, structures within reach and institutions."""

from __future__ import annotations

import streamlit as st

from app_pages import CHOOSE, _cached, current_selection, md_escape
from app_pages._bounded import show_table
from app_pages._cached import PartnerView
from app_pages._study import bind, current_study, site_choice
from app_pages._widgets import (
    error_box,
    load_travel,
    require_data,
    show_map,
    travel_inputs,
)
from diagnosis.errors import MaillageError
from diagnosis.maps import (
    build_mode_minutes_map,
    build_partner_network_map,
    default_attribution,
)
from diagnosis.settings import USER_SITE_ID, USER_SITE_LABEL

sel = current_selection()
require_data(sel, "Partenaires")
st.markdown("Avec qui construire le maillage autour de la Maison ? Les structures à portée du "
            "site (PMI, crèches, relais, LAEP, centres sociaux, maternités…), avec leurs "
            "coordonnées publiées, et les institutions du territoire à rencontrer.")

mode, max_minutes = travel_inputs("partenaires")
study = current_study(sel)
hosts = _cached.facility_choices(sel.code, sel.files_key, True, sel.files)
travel_label = load_travel(sel, mode).label
try:
    diag = _cached.diagnosis(sel.code, sel.files_key, study, sel.files)
    view = _cached.partner_view(sel.code, sel.files_key, study, sel.files)
except MaillageError as exc:
    error_box("Les partenaires n'ont pas pu être calculés pour ce site.", exc)
    st.stop()
recommended = {c.site.site_id: c.site.name for c in diag.recommended}
proposed = {USER_SITE_ID.format(n=i): USER_SITE_LABEL.format(n=i)
            for i in range(1, len(study.user_sites) + 1)}
options = [*recommended, *[h for h in hosts if h not in recommended],
           *[p for p in proposed if p not in recommended]]
if view is None or not options:
    st.warning("Aucun lieu d'accueil possible dans ce territoire : importez vos structures "
               "(page « Importer des structures ») ou proposez un site (page « Implantation »).")
    st.stop()
first = next(iter(recommended.values()), "")
st.selectbox(
    "Site étudié", options=["", *options], placeholder=CHOOSE,
    format_func=lambda i: (f"— le premier site recommandé : {first} —" if not i else
                           f"{recommended[i]} — site recommandé (page « Implantation »)"
                           if i in recommended else hosts.get(i) or proposed.get(i, i)),
    help="Le site étudié vaut pour tout le diagnostic : groupes de pairs, rapport et "
         "exports. Par défaut, le premier site recommandé (page « Implantation »).",
    **bind("partenaires_site", "site", study.site if study.site in options else "",
           site_choice(options)))
area = diag.catchment.area if diag.catchment is not None else None
ws = _cached.workspace(sel.code, sel.files_key, sel.files)
shown: PartnerView = view
near = view.near

show_map(("partenaires", sel.code, sel.files_key, _cached.partner_key(study)),
         lambda: build_partner_network_map(shown.site, near, ws.facilities, catchment=area,
                                           attribution=default_attribution(ws.sources)),
         key="partenaires_map", height=520)

if diag.modes is not None and diag.site is not None:
    st.subheader("Sans voiture : minutes en transports en commun depuis le site")
    show_map(("partenaires_modes", sel.code, sel.files_key, _cached.partner_key(study)),
             lambda: build_mode_minutes_map(ws.own_communes, diag.modes, diag.site,
                                            attribution=default_attribution(ws.sources)),
             key="partenaires_modes_map", height=460)
    mine = diag.modes.table.loc[diag.modes.table["site_id"] == diag.site.site_id]
    show_table(mine[["mode", "births_within", "communes_within", "communes_lost"]].rename(
        columns={"mode": "Mode", "births_within": "Naissances à portée",
                 "communes_within": "Communes à portée",
                 "communes_lost": "Communes à portée en voiture perdues"}),
        hide_index=True, key="partenaires_modes_table", placeholder="—")

st.subheader(f"Structures à {max_minutes:g} minutes ou moins ({len(near)})")
st.caption(f"Temps de trajet : {md_escape(travel_label)}. Distance à vol "
           "d'oiseau. Coordonnées telles que publiées par les sources (vides si inconnues).")
if not view.groups:
    st.info("Aucune structure chargée à portée de ce site : augmentez le temps de trajet "
            "maximal ou importez vos structures.")
for i, (label, table) in enumerate(view.groups.items()):
    st.markdown(f"**{md_escape(label)}** ({len(table)})")
    show_table(table, hide_index=True, key=f"partenaires_table_{i}", placeholder="—")

st.subheader("Institutions à rencontrer")
st.caption("Rôle de chaque institution dans le projet ; les coordonnées sont à trouver et à "
           "vérifier.")
show_table(view.institutions, hide_index=True, key="partenaires_institutions",
             placeholder="—")
st.download_button("Télécharger les partenaires (CSV)", key="partenaires_csv",
                   data=view.csv, file_name=f"maillage_partenaires_{sel.code}.csv",
                   mime="text/csv", icon=":material/download:")
