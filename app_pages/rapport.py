"""Page « Rapport et exports »: the PDF report, the data files and the territory comparison."""

from __future__ import annotations

import streamlit as st

from app_pages import CHOOSE, _cached, current_selection, md_escape
from app_pages._widgets import LAST_SITES_KEY, error_box, load_travel, require_data, travel_inputs
from diagnosis.cohorts import DEFAULT_UPTAKE_RATE
from diagnosis.comparison import build_comparison_chart
from diagnosis.errors import MaillageError
from diagnosis.presentation import comparison_metrics, comparison_table

REPORT_KEY = "rapport_pdf"
EXPORTS_KEY = "rapport_exports"
SPLITS = {"epci": "ses intercommunalités (EPCI)", "commune": "ses communes"}
#: Steps the report announces (see diagnosis.report.render_report), for the progress bar.
REPORT_STEPS = 8

sel = current_selection()
require_data(sel, "Rapport et exports")
ws = _cached.workspace(sel.code, sel.files_key, sel.files)
st.markdown("Le diagnostic complet en **PDF** (à imprimer ou à joindre à un dossier), les "
            "données en **GeoPackage** (QGIS) ou en **CSV** (Excel), et la comparaison des "
            "territoires pour la fédération. Rien n'est écrit sur le serveur : tout se "
            "télécharge.")

mode, max_minutes = travel_inputs("rapport")
left, right = st.columns(2)
author = left.text_input("Auteur (imprimé en couverture)", key="rapport_author")
uptake = right.slider("Participation des familles aux groupes de pairs (hypothèse, %)",
                      min_value=1, max_value=100, value=round(100 * DEFAULT_UPTAKE_RATE),
                      key="rapport_uptake")
recommended = {str(k[0]): tuple(k) for k in st.session_state.get(LAST_SITES_KEY, [])}
hosts = _cached.facility_choices(sel.code, sel.files_key, True, sel.files)
site_id = st.selectbox(
    "Site étudié pour la Maison (facultatif)",
    options=["", *recommended, *[h for h in hosts if h not in recommended]],
    format_func=lambda i: ("— aucun : le premier site recommandé —" if not i else
                           f"{recommended[i][1]} — site recommandé" if i in recommended
                           else hosts.get(i, i)), placeholder=CHOOSE, key="rapport_site")
site = (recommended.get(site_id) or _cached.facility_site(sel.code, sel.files_key, site_id,
                                                          sel.files)) if site_id else None
load_travel(sel, mode)

st.subheader("Rapport PDF")
params = (sel.code, sel.files_key, mode, max_minutes, site, uptake, author)
if st.button("Générer le rapport PDF", key="rapport_generate", type="primary",
             icon=":material/picture_as_pdf:"):
    bar = st.progress(0.0, text="Préparation du rapport…")
    done: list[str] = []

    def _step(name: str) -> None:
        done.append(name)
        bar.progress(min(len(done) / REPORT_STEPS, 0.95), text=f"{name.capitalize()}…")

    try:
        pdf = _cached.report_pdf(sel.code, sel.files_key, sel.files, author=author, mode=mode,
                                 max_minutes=max_minutes, site=site,
                                 uptake_rate=uptake / 100, progress=_step)
    except MaillageError as exc:
        bar.empty()
        error_box("Le rapport n'a pas pu être produit.", exc)
    else:
        bar.progress(1.0, text="Rapport prêt.")
        st.session_state[REPORT_KEY] = {"params": params, "pdf": pdf}
report = st.session_state.get(REPORT_KEY)
if report and report["params"] == params:
    st.download_button("Télécharger le rapport PDF", data=report["pdf"], key="rapport_download",
                       file_name=f"maillage_diagnostic_{sel.code}.pdf", mime="application/pdf",
                       icon=":material/download:")
elif report:
    st.caption("Les paramètres ont changé depuis le dernier rapport : générez-le à nouveau.")

st.subheader("Données du diagnostic")
st.caption("Toutes les couches (communes et indicateurs, structures par type, accès, manques, "
           "sites recommandés, partenaires, groupes de pairs) avec un dictionnaire des "
           "colonnes et les sources. GeoPackage en EPSG:4326 ; CSV séparés par « ; », "
           "décimales à virgule.")
export_params = (sel.code, sel.files_key, mode, max_minutes, uptake)
if st.button("Préparer les fichiers de données", key="rapport_prepare_exports",
             icon=":material/database:"):
    st.session_state[EXPORTS_KEY] = export_params
if st.session_state.get(EXPORTS_KEY) == export_params:
    try:
        gpkg = _cached.geopackage(sel.code, sel.files_key, mode, max_minutes, uptake / 100,
                                  sel.files)
        csvs = _cached.csv_zip(sel.code, sel.files_key, mode, max_minutes, uptake / 100,
                               sel.files)
    except MaillageError as exc:
        error_box("Les fichiers de données n'ont pas pu être produits.", exc)
    else:
        left, right = st.columns(2)
        left.download_button("GeoPackage (QGIS)", data=gpkg, key="rapport_gpkg",
                             file_name=f"maillage_{sel.code}.gpkg",
                             mime="application/geopackage+sqlite3", icon=":material/download:")
        right.download_button("Tableaux CSV (zip)", data=csvs, key="rapport_csv",
                              file_name=f"maillage_{sel.code}_csv.zip", mime="application/zip",
                              icon=":material/download:")

st.subheader("Comparer des territoires")
by = st.radio(f"Comparer les parties de « {md_escape(ws.territory.name)} » :",
              options=list(SPLITS), format_func=SPLITS.__getitem__, horizontal=True,
              index=0 if ws.territory.kind == "departement" else 1, key="rapport_compare_by")
table, skipped = _cached.comparison(sel.code, sel.files_key, by, sel.files)
if skipped:
    st.warning(f"{len(skipped)} territoire(s) sans données chargées, écartés : "
               + md_escape(" ; ".join(skipped[:10])) + (" …" if len(skipped) > 10 else ""))
if table is None:
    st.info("Aucun territoire à comparer n'a de données chargées.")
    st.stop()
metrics = comparison_metrics(table)
metric = st.selectbox("Indicateur", options=list(metrics), format_func=metrics.__getitem__,
                      placeholder=CHOOSE, key="rapport_compare_metric")
st.altair_chart(build_comparison_chart(table, metric=metric, highlight=sel.code),
                width="stretch", key="rapport_compare_chart")
st.dataframe(comparison_table(table), hide_index=True, key="rapport_compare_table",
             placeholder="—")
st.caption("Chaque ligne est le diagnostic du territoire seul (distances à vol d'oiseau depuis "
           "la mairie). Couverture partielle : certaines communes n'ont pas de données "
           "chargées, les chiffres ne portent que sur les autres.")
