"""Page « Sources et limites »: the sources in use, what is demo, partial or estimated."""

from __future__ import annotations

import streamlit as st

from app_pages import _cached, current_selection, md_escape
from app_pages._bounded import show_table
from data_sources.fetch import FetchProgress
from data_sources.store import STATUSES
from diagnosis.errors import MaillageError, render_error

FETCH_REPORT_KEY = "fetch_report"


def _render_update(code: str) -> None:
    """The « Mettre à jour les données » action, its last report and the ledger."""
    st.header("Mettre à jour les données")
    st.write(
        "Télécharge les sources publiques du territoire (contours, INSEE, FINESS, BPE, "
        "OpenStreetMap, CAF, data·inclusion, géocodage BAN) et les garde sur cet "
        "ordinateur. Une source en échec ne bloque pas les autres et garde les données "
        "précédentes."
    )
    if st.button("Mettre à jour les données", key="fetch_update", icon=":material/sync:"):
        bar = st.progress(0.0, text="Préparation…")

        def on_progress(ev: FetchProgress) -> None:
            done = ev.index + (0 if ev.outcome is None else 1)
            bar.progress(done / ev.total, text=f"{ev.title} ({done}/{ev.total})")

        result = _cached.update_territory(code, on_progress=on_progress)
        st.session_state[FETCH_REPORT_KEY] = {
            "code": code,
            "ok": [o.title for o in result.outcomes if o.ok],
            "failed": [o.message for o in result.failed],
            "doubtful": [f"{o.title} ({STATUSES[o.status]}) : {o.message}"
                         for o in result.outcomes if o.status in {"suspect", "partial"}],
            "cache_note": result.cache_note,
            "written": result.snapshot is not None,
            "demo": result.demo_covers and not result.communes_stored,
        }
        st.rerun()
    report = st.session_state.get(FETCH_REPORT_KEY)
    if report and report["code"] == code:
        if report["ok"]:
            st.success("Mises à jour : " + md_escape(", ".join(report["ok"])) + ".")
        for message in report["failed"]:
            st.warning(md_escape(message))
        for message in report.get("doubtful", ()):
            st.warning(md_escape(message))
        if report.get("cache_note"):
            st.info(md_escape(report["cache_note"]))
        if not report["written"]:
            st.warning("Aucune source n'a répondu : les données déjà chargées sont conservées.")
        if report["demo"]:
            st.info("La démo embarquée reste utilisée pour les communes de ce territoire.")
    ledger = _cached.store_ledger(code)
    if ledger is not None:
        st.subheader("Fraîcheur des données du stock local")
        show_table(ledger, hide_index=True, key="store_ledger")


st.title("Sources et limites")
sel = current_selection()
try:
    ws = _cached.workspace(sel.code, sel.files_key, sel.files)
except MaillageError as exc:
    st.warning(md_escape(render_error(exc)))
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

_render_update(ws.territory.code)

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
        show_table(
            [{"Fichier": u.get("file", ""), "Ligne": u.get("line", ""),
              "Type": u.get("type", ""), "Nom": u.get("name", ""),
              "Motif": u.get("reason", "")} for u in unplaced],
            hide_index=True, key="unplaced_rows",
        )
    else:
        st.write("Toutes les lignes de l'annuaire de démonstration sont placées.")
