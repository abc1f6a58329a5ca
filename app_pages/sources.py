"""Page « Sources et limites »: the sources in use, what is demo, partial or estimated."""

from __future__ import annotations

import streamlit as st

from app_pages import _cached, current_selection, md_escape
from diagnosis.errors import MaillageError

st.title("Sources et limites")
sel = current_selection()
try:
    ws = _cached.workspace(sel.code, sel.files_key, sel.files)
except MaillageError as exc:
    st.warning(md_escape(exc))
    st.stop()

st.header("Ce qu'il faut savoir avant de lire le diagnostic")
for notice in ws.notices:
    st.info(md_escape(notice))
st.markdown(
    "- **Distances** : à vol d'oiseau, de la mairie de chaque commune à la structure la plus "
    "proche (y compris hors du territoire) ; un trajet réel est plus long.\n"
    "- **Enfants de moins de 3 ans** : estimation (3 × naissances 2024), pas un comptage.\n"
    "- **Valeurs manquantes** : « non diffusé » signifie que l'INSEE ne publie pas la "
    "valeur (secret statistique, petite commune) ; ce n'est jamais un zéro.\n"
    "- **Structures** : seules celles des sources chargées et des fichiers importés sont "
    "comptées ; une commune « sans structure » peut en avoir une qui manque aux données."
)

st.header("Sources utilisées")
for src in ws.sources:
    with st.container(border=True):
        st.markdown(f"**{md_escape(src['title'])}**")
        st.markdown(
            f"Millésime : {md_escape(src['vintage'] or '—')} · Licence : "
            f"{md_escape(src['licence'])}  \nAttribution : {md_escape(src['attribution'])}  \n"
            f"Origine : {md_escape(src['url'])}"
        )
        if src.get("notes"):
            st.caption(md_escape(src["notes"]))

unplaced = _cached.demo_manifest().get("unplaced", [])
if ws.origin == "demo":
    st.header("Lignes de l'annuaire de démonstration non placées")
    if unplaced:
        st.dataframe(
            [{"Fichier": u.get("file", ""), "Ligne": u.get("line", ""),
              "Type": u.get("type", ""), "Nom": u.get("name", ""),
              "Motif": u.get("reason", "")} for u in unplaced],
            hide_index=True, key="unplaced_rows",
        )
    else:
        st.write("Toutes les lignes de l'annuaire de démonstration sont placées.")
