"""Page « Plan national »: where the federation's next Maisons would reach the most families.

The plan of ``python -m diagnosis plan --territory FR``: births of every commune from the
national INSEE file (page « Fichiers INSEE »), existing Maisons fixed (the shipped,
non-exhaustive list and/or the federation's file), candidates among host structures and
every town hall.
"""

from __future__ import annotations

import streamlit as st

from app_pages import _cached, current_selection, files_key, md_escape
from app_pages._widgets import french_table, show_map
from diagnosis.errors import MaillageError
from diagnosis.formatting import fr_number, fr_percent
from diagnosis.maps.plan import build_plan_map
from diagnosis.plan_exports import plan_tables, render_curve_png, summary_lines

MODES = {"crow": "À vol d'oiseau en voiture (estimation)",
         "drive": "Réseau routier en voiture"}

st.title("Plan national")
st.markdown(
    "Pour la fédération : où de nouvelles Maisons des 1000 premiers jours toucheraient le "
    "plus de familles qui n'ont aujourd'hui **aucune Maison à portée**. Les Maisons "
    "existantes restent en place ; les nouvelles s'installent dans une structure existante "
    "(PMI, crèche, relais petite enfance, centre social, LAEP) ou une mairie.")
left, right = st.columns(2)
new = left.number_input("Nouvelles Maisons pour la France", min_value=1, max_value=500,
                        value=50, step=1, key="plan_new")
minutes = right.slider("Temps de trajet maximal", min_value=10, max_value=60, value=30,
                       step=5, format="%d min", key="plan_minutes")
mode = left.radio("Temps de trajet", options=list(MODES), format_func=MODES.__getitem__,
                  key="plan_mode", horizontal=True)
per_dep = right.number_input("Nouvelles Maisons de la réponse propre à chaque département",
                             min_value=1, max_value=20, value=3, step=1, key="plan_per_dep")
known = st.checkbox("Utiliser la liste de départ des Maisons connues (15 Maisons citées "
                    "publiquement, non exhaustive)", value=True, key="plan_known")
uploaded = st.file_uploader("Liste des Maisons de la fédération (CSV avec les colonnes nom, "
                            "commune, departement ; ou un fichier de structures)",
                            type=["csv", "geojson", "gpkg"], accept_multiple_files=True,
                            key="plan_maisons")
maisons = tuple((f.name, f.getvalue()) for f in uploaded or ())
sel = current_selection()
args = (sel.files_key, files_key(maisons), bool(known), int(new), str(mode), float(minutes),
        int(per_dep), sel.files, maisons)
try:
    plan, notices, n_france = _cached.national_plan(*args)
except MaillageError as exc:
    st.warning(md_escape(exc.fr))
    st.page_link("app_pages/insee.py", label="Donner le fichier national du comparateur de "
                 "territoires (naissances de chaque commune)", icon=":material/table_view:")
    st.stop()
s = plan.summary
known_communes = s["n_communes"] - s["n_communes_unknown"]
if known_communes < 0.95 * n_france:
    st.warning(f"Naissances connues pour {fr_number(known_communes)} communes sur "
               f"{fr_number(n_france)} : le plan ne voit que ces familles. Donnez le fichier "
               "national du comparateur de territoires de l'INSEE (page « Fichiers INSEE »).",
               icon=":material/warning:")
    st.page_link("app_pages/insee.py", label="Donner le fichier national du comparateur de "
                 "territoires", icon=":material/table_view:")
c1, c2, c3 = st.columns(3)
c1.metric("Naissances à portée d'une Maison aujourd'hui", fr_percent(s["share_before"],
                                                                     decimals=1))
c2.metric(f"Familles en plus par an avec {s['n_new']} Maisons", fr_number(s["families_new"]))
c3.metric("Naissances à portée après le plan", fr_percent(s["share_after"], decimals=1))
for line in summary_lines(plan):
    st.markdown(md_escape(line))
st.subheader("Familles en plus à chaque nouvelle Maison")
st.image(render_curve_png(plan), caption="Chaque barre : les familles qu'une Maison de plus "
         "toucherait, dans l'ordre d'ouverture ; la ligne : un groupe de pairs par an.")
st.subheader("Où ouvrir")
st.caption("Nouvelles Maisons numérotées par rang d'ouverture (orange), Maisons existantes "
           "connues (bleu) ; survolez un point pour ses raisons. Le rapport PDF garde la "
           "carte fixe.")
show_map(("plan", *args[:7]), lambda: build_plan_map(plan), key="plan_map", height=560)
tables = plan_tables(plan)
st.subheader("Les nouvelles Maisons et leurs raisons")
french_table(tables["plan_sites"], key="plan_sites_table")
st.subheader("Par département")
french_table(tables["plan_departements"], key="plan_dep_table")
files = _cached.national_plan_files(*args)
cols = st.columns(3)
cols[0].download_button("Tableaux (CSV pour Excel)", data=files["plan_sites.csv"],
                        file_name="plan_national_sites.csv", mime="text/csv",
                        key="plan_dl_csv")
cols[0].download_button("Départements (CSV)", data=files["plan_departements.csv"],
                        file_name="plan_national_departements.csv", mime="text/csv",
                        key="plan_dl_dep")
cols[1].download_button("Carte pour QGIS (GeoPackage)", data=files["plan_national.gpkg"],
                        file_name="plan_national.gpkg", mime="application/geopackage+sqlite3",
                        key="plan_dl_gpkg")
cols[2].download_button("Rapport court (PDF)", data=files["plan_national.pdf"],
                        file_name="plan_national.pdf", mime="application/pdf",
                        key="plan_dl_pdf")
with st.expander("Limites et sources"):
    for n in notices:
        st.caption(md_escape(n))
