"""Page « Importer des structures »: the user's own facility files and their import report."""

from __future__ import annotations

import streamlit as st

from app_pages import FILES_KEY, INSEE_KEY, _cached, current_selection, files_key, md_escape
from app_pages._bounded import keep_uploads, show_table
from data_sources.user_file.read import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS
from diagnosis.errors import MaillageError, MissingDataError, render_error
from diagnosis.schema import FACILITY_TYPES


def _store_uploads() -> None:
    """Keep the uploaded files in the session (the uploader forgets them on page change);
    a file over the size cap is refused in French, never read."""
    kept, refused = keep_uploads(st.session_state.get("upload_files") or [],
                                 what="fichier de structures")
    st.session_state[FILES_KEY] = kept
    st.session_state["upload_refused"] = refused


def _forget_files() -> None:
    st.session_state[FILES_KEY] = []


def _scrape_page() -> None:
    """Read a directory page (polite scraper) and add its entries as an imported file."""
    from data_sources import scrape
    from data_sources.cog import resolve

    url = (st.session_state.get("scrape_url") or "").strip()
    try:
        result = scrape.scrape_directory(url, facility_type=st.session_state["scrape_type"],
                                         territory=resolve(current_selection().code))
    except MaillageError as exc:
        st.session_state["scrape_message"] = f"Page non lue : {render_error(exc)}"
        return
    if result.rows.empty:
        st.session_state["scrape_message"] = "Aucune structure trouvée sur cette page."
        return
    name = f"page_{result.fetched_on}_{len(st.session_state.get(FILES_KEY) or [])}.csv"
    data = scrape.write_facility_csv(result.rows).encode("utf-8")
    st.session_state[FILES_KEY] = [*(st.session_state.get(FILES_KEY) or []), (name, data)]
    st.session_state["scrape_message"] = " ".join(scrape.iter_summary(result))


st.title("Importer des structures")
st.markdown(
    "Ajoutez vos propres listes de structures (crèches, MAM, PMI, LAEP, relais, centres "
    "sociaux…) : un tableau fait à la main, un export de la CAF, du Département ou de la "
    "FINESS. Formats : **CSV** (séparateur `;` ou `,`), **GeoJSON**, **GeoPackage**.\n\n"
    "Colonnes reconnues (noms libres, accents et majuscules indifférents) : nom, type, "
    "adresse, code postal, code INSEE ou commune, latitude/longitude (ou X/Y en "
    "Lambert-93), capacité ou places, gestionnaire, téléphone, courriel, site. Les lignes "
    "sans coordonnées sont placées à la mairie de leur commune (position approximative). "
    "Rien n'est écarté en silence : chaque ligne rejetée est listée avec son motif."
)
st.file_uploader("Fichiers de structures", type=["csv", "txt", "tsv", "geojson", "json", "gpkg"],
                 accept_multiple_files=True, key="upload_files", on_change=_store_uploads)
st.caption(f"Au plus {MAX_IMPORT_BYTES // 2**20} Mo et {MAX_IMPORT_ROWS:,} lignes par fichier."
           .replace(",", "\u202f"))
for message in st.session_state.get("upload_refused") or []:
    st.error(md_escape(message))

with st.expander("Lire une page d'annuaire (liste de PMI, de relais, de centres sociaux…)"):
    st.caption("La page est lue poliment (robots.txt respecté, une requête à la fois, jamais "
               "de captcha ni de connexion contournés) ; les structures trouvées sont "
               "importées ci-dessous comme un fichier, à relire.")
    st.text_input("Adresse de la page", key="scrape_url")
    st.selectbox("Type des structures de la page", list(FACILITY_TYPES), key="scrape_type",
                 format_func=lambda t: FACILITY_TYPES[t][1])
    st.button("Lire la page", key="scrape_run", on_click=_scrape_page)
    if st.session_state.get("scrape_message"):
        st.info(md_escape(st.session_state["scrape_message"]))

sel = current_selection()
uploaded = tuple(st.session_state.get(FILES_KEY) or ())
#: The INSEE files given on « Fichiers INSEE »: a territory outside the demo needs them.
insee = tuple(st.session_state.get(INSEE_KEY) or ())
if not uploaded:
    st.info("Aucun fichier importé pour l'instant : le diagnostic utilise les données "
            "chargées seules.")
    st.stop()

kept = []
for name, data in uploaded:
    single = ((name, data), *insee)
    try:
        ws = _cached.workspace(sel.code, files_key(single), single)
    except MissingDataError as exc:
        st.warning(f"Import impossible pour ce territoire : {md_escape(render_error(exc))}")
        st.stop()
    except MaillageError as exc:
        st.error(f"Le fichier « {md_escape(name)} » n'a pas pu être importé et n'est pas "
                 f"utilisé : {md_escape(render_error(exc))}")
        continue
    kept.append((name, data))
    report = ws.imports[0]
    with st.container(border=True):
        st.subheader(md_escape(report.file))
        st.write(report.summary_fr())
        c = st.columns(4)
        c[0].metric("Lignes lues", report.rows_read)
        c[1].metric("Acceptées", report.accepted)
        c[2].metric("Rejetées", len(report.rejected))
        c[3].metric("Doublons signalés", len(report.duplicates))
        for warning in report.warnings:
            st.warning(md_escape(warning))
        details = report.to_frame()
        if len(details):
            st.markdown("**Lignes rejetées, doublons et corrections** (numéro de ligne du "
                        "fichier)")
            show_table(details, hide_index=True, key=f"import_report_{name}")
        st.caption(
            f"Encodage : {md_escape(report.encoding or '—')} · système de coordonnées : "
            f"{md_escape(report.crs_detected or 'aucune coordonnée')} · colonnes utilisées : "
            + (", ".join(f"{md_escape(k)} ← « {md_escape(v)} »"
                         for k, v in report.column_mapping.items()) or "—")
        )

if len(kept) != len(uploaded):
    st.session_state[FILES_KEY] = kept
if kept:
    st.success(f"{len(kept)} fichier(s) utilisé(s) par le diagnostic : les structures "
               "acceptées apparaissent sur la carte et dans les chiffres de la page "
               "« Territoire ».")
st.button("Retirer les fichiers importés", key="forget_files", on_click=_forget_files)
