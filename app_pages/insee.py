"""Page « Fichiers INSEE »: the user's INSEE files, so that any territory is diagnosed."""

from __future__ import annotations

import streamlit as st

from app_pages import INSEE_KEY, _cached, current_selection, md_escape
from app_pages._bounded import keep_uploads
from data_sources.user_file.read import MAX_IMPORT_BYTES
from diagnosis.errors import MaillageError, render_error


def _store_insee() -> None:
    kept, refused = keep_uploads(st.session_state.get("upload_insee") or [],
                                 what="fichier INSEE")
    st.session_state[INSEE_KEY] = kept
    st.session_state["insee_refused"] = refused


st.title("Fichiers INSEE")
st.markdown(
    "Hors de la démo (Loire-Atlantique), et sans internet, Maillage diagnostique n'importe "
    "quel territoire français avec les fichiers que vous téléchargez sur insee.fr : le "
    "**comparateur de territoires** du département (naissances, population, revenus, "
    "pauvreté) et, si vous l'avez, un extrait du **dossier complet** (familles "
    "monoparentales, enfants de moins de 3 ans). Les contours des communes sont livrés "
    "avec Maillage.\n\n"
    "Toute édition est reconnue (`P22_POP`, `P23_POP`, `NAISD24`, `NAISD25`…) ; le secret "
    "statistique (`s`) reste inconnu, jamais 0 ; un indicateur absent du fichier est signalé."
)
st.file_uploader("Fichiers INSEE (CSV)", type=["csv"], accept_multiple_files=True,
                 key="upload_insee", on_change=_store_insee)
st.caption(f"Au plus {MAX_IMPORT_BYTES // 2**20} Mo par fichier.")
for message in st.session_state.get("insee_refused") or []:
    st.error(md_escape(message))
files = st.session_state.get(INSEE_KEY) or []
if not files:
    st.info("Aucun fichier INSEE donné : le diagnostic utilise la démo ou le stock local.")
    st.stop()
sel = current_selection()
try:
    ws = _cached.workspace(sel.code, sel.files_key, sel.files)
except MaillageError as exc:
    st.error(f"Fichiers INSEE refusés : {md_escape(render_error(exc))}")
    st.stop()
read = [n for n in ws.notices if n.startswith("Fichier INSEE lu")]
st.success(f"{len(files)} fichier(s) INSEE pris en compte pour {md_escape(ws.territory.label)}.")
for line in read:
    st.markdown(f"- {md_escape(line)}")
others = [n for n in ws.notices if "INSEE" in n and not n.startswith("Fichier INSEE lu")]
if others:
    st.info("\n".join(f"- {md_escape(n)}" for n in others), icon=":material/info:")
