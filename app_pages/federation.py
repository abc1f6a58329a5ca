"""Page « Vue nationale »: the federation compares départements or EPCIs of France.

Needs of every commune from the INSEE files given (page « Fichiers INSEE », a national
comparateur file), facilities from the imported files; the comparison is the one of
``python -m diagnosis compare --territory FR --by departement|region|epci``.
"""

from __future__ import annotations

import streamlit as st

from app_pages import _cached, current_selection, md_escape
from app_pages._bounded import show_table
from app_pages._widgets import show_map
from diagnosis.errors import MaillageError, render_error
from diagnosis.federation import RANK_METRIC, build_federation_map, rank_territories
from diagnosis.formatting import fr_number

BY = {"departement": "départements", "region": "régions", "epci": "intercommunalités (EPCI)"}

st.title("Vue nationale")
st.markdown(
    "Pour la fédération : chaque territoire de France comparé sur les mêmes indicateurs, "
    "et les territoires où une nouvelle Maison toucherait le plus de naissances sans "
    "structure à portée. Donnez le fichier national du comparateur de territoires (page "
    "« Fichiers INSEE ») et vos listes de structures (dont les Maisons existantes, type "
    "« Maison des 1000 premiers jours »)."
)
by = st.radio("Découper la France en", options=list(BY), format_func=BY.__getitem__,
              horizontal=True, key="national_by")
sel = current_selection()
try:
    table, skipped = _cached.national_comparison(sel.files_key, by, sel.files)
except MaillageError as exc:
    st.warning(md_escape(render_error(exc)))
    st.page_link("app_pages/insee.py", label="Donner le fichier national du comparateur de "
                 "territoires", icon=":material/table_view:")
    st.stop()
metric = st.selectbox("Indicateur de la carte", options=list(RANK_METRIC),
                      format_func=RANK_METRIC.__getitem__, key="national_metric")
outlines = _cached.national_outlines(by)
show_map(("national", sel.files_key, by, metric),
         lambda: build_federation_map(table, outlines, metric=metric),
         key="national_map", height=560)
st.subheader("Où une nouvelle Maison toucherait le plus de naissances non servies")
ranked = rank_territories(table)
show_table(ranked, hide_index=True, key="national_ranking")
st.download_button("Classement (CSV)", data=_cached.french_csv(ranked),
                   file_name=f"classement_{by}.csv", mime="text/csv", key="national_csv")
unknown = int((table["n_communes_births_known"] == 0).sum())
if skipped:
    st.caption(f"{fr_number(len(skipped))} commune(s) de France sans données INSEE "
               "chargées : leurs naissances sont inconnues (pas zéro) et les territoires qui "
               "les contiennent sont incomplets (colonne « Couverture des données »)."
               + (f" {fr_number(unknown)} {BY[by]} sans aucune donnée ne sont pas classés."
                  if unknown else ""))
