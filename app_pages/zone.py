"""Page « Territoire sur mesure »: a named list of communes, or an area drawn on the map.

Groupings that are not EPCIs (a pays, a canton, an établissement public territorial of
the Métropole du Grand Paris) are diagnosed as custom territories: the communes listed,
or those a drawn polygon covers (:func:`diagnosis.territory.territory_from_polygon`).
The territory is then chosen for every page, like one picked in the sidebar.
"""

from __future__ import annotations

import streamlit as st
from shapely.geometry import shape

from app_pages import _cached, md_escape
from app_pages._widgets import show_map
from diagnosis.errors import MaillageError, render_error
from diagnosis.maps import build_draw_map

#: The sidebar's custom-territory slot (see app.py).
CUSTOM_KEY = "picker_custom"

st.title("Territoire sur mesure")
st.markdown("Un territoire qui n'est ni une commune, ni une intercommunalité, ni un "
            "département : listez ses communes, ou dessinez-le sur la carte.")

name = st.text_input("Nom du territoire", value="Mon territoire", key="zone_name")
codes = st.text_area("Codes INSEE des communes (séparés par des virgules ou des espaces)",
                     key="zone_codes", placeholder="93066, 93001, 93027")
if st.button("Choisir cette liste de communes", key="zone_list"):
    query = f"{name or 'Mon territoire'}={codes}"
    try:
        t = _cached.territory(query)
    except MaillageError as exc:
        st.error(f"Liste refusée : {md_escape(render_error(exc))}")
    else:
        st.session_state[CUSTOM_KEY] = query
        st.success(f"Territoire choisi : {md_escape(t.label)}.")
        for notice in t.notices:
            st.info(md_escape(notice))

st.subheader("Ou dessinez la zone")
dep = st.selectbox("Département où dessiner", options=list(_cached.departement_options()),
                   format_func=_cached.departement_options().__getitem__, key="zone_dep",
                   index=list(_cached.departement_options()).index("44"))
communes = _cached.departement_geometry(dep)
# a drawing belongs to its département: another département, another map
drawn = show_map(("zone", dep), lambda: build_draw_map(communes), key=f"zone_map_{dep}",
                 height=520, returned_objects=("last_active_drawing",))
polygon = (drawn or {}).get("last_active_drawing")
if polygon and polygon.get("geometry"):
    try:
        t = _cached.drawn_territory(str(name or "Zone dessinée"),
                                    shape(polygon["geometry"]).wkt, dep)
    except MaillageError as exc:
        st.error(f"Zone refusée : {md_escape(render_error(exc))}")
    else:
        st.write(f"{len(t.communes)} commune(s) dans la zone dessinée.")
        if st.button("Choisir la zone dessinée", key="zone_drawn"):
            st.session_state[CUSTOM_KEY] = f"{t.name}={','.join(t.communes)}"
            st.success(f"Territoire choisi : {md_escape(t.label)}.")
