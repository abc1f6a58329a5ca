"""Page « Rapport et exports »: the PDF report, the data files and the territory comparison."""

from __future__ import annotations

import streamlit as st

from app_pages import CHOOSE, _cached, current_selection, md_escape
from app_pages._bounded import show_table
from app_pages._study import bind, bind_weight, current_study, show_study_error, site_choice
from app_pages._widgets import error_box, load_travel, require_data, travel_inputs
from diagnosis.comparison import build_comparison_chart
from diagnosis.errors import MaillageError
from diagnosis.gaps import FACTOR_LABELS, PRIORITY_FACTORS
from diagnosis.presentation import study_table
from diagnosis.settings import DEFAULT_UPTAKE_RATE, USER_SITE_ID, USER_SITE_LABEL

REPORT_KEY = "rapport_pdf"
EXPORTS_KEY = "rapport_exports"
SPLITS = {"epci": "ses intercommunalités (EPCI)", "commune": "ses communes"}
#: Steps the report announces (see diagnosis.report.build_diagnosis_pdf), for the progress bar.
REPORT_STEPS = 8

sel = current_selection()
require_data(sel, "Rapport et exports")
ws = _cached.workspace(sel.code, sel.files_key, sel.files)
st.markdown("Le diagnostic complet en **PDF** (à imprimer ou à joindre à un dossier), les "
            "données en **GeoPackage** (QGIS) ou en **CSV** (Excel), et la comparaison des "
            "territoires pour la fédération. Rien n'est écrit sur le serveur : tout se "
            "télécharge.")

st.subheader("Paramètres de l'étude")
st.caption("Le rapport et les fichiers de données sont le diagnostic de ces paramètres, ceux "
           "que vous avez choisis sur les pages « Besoins et lacunes », « Implantation » et "
           "« Partenaires » : changez-les ici ou sur ces pages, ils valent partout.")
mode, max_minutes = travel_inputs("rapport")
study = current_study(sel)
left, right = st.columns(2)
left.number_input("Nombre de nouveaux sites (k)", min_value=1, max_value=10, step=1,
                  **bind("rapport_k", "k", int(study.k), int))
right.slider("Participation des familles aux groupes de pairs (hypothèse, %)", min_value=1,
             max_value=100, **bind("rapport_uptake", "uptake_rate",
                                   round(100 * (study.uptake_rate or DEFAULT_UPTAKE_RATE)),
                                   lambda v: v / 100))
with st.expander("Poids du score de priorité", icon=":material/tune:"):
    cols = st.columns(len(PRIORITY_FACTORS))
    for factor, col in zip(PRIORITY_FACTORS, cols, strict=True):
        col.slider(FACTOR_LABELS[factor], min_value=0.0, max_value=1.0, step=0.05,
                   **bind_weight(f"rapport_weight_{factor}", factor, study))
show_study_error()
load_travel(sel, mode)
try:
    diag = _cached.diagnosis(sel.code, sel.files_key, study, sel.files)
except MaillageError as exc:
    error_box("Le diagnostic de ces paramètres n'a pas pu être calculé.", exc)
    st.stop()
recommended = {c.site.site_id: c.site.name for c in diag.recommended}
hosts = _cached.facility_choices(sel.code, sel.files_key, True, sel.files)
proposed = {USER_SITE_ID.format(n=i): USER_SITE_LABEL.format(n=i)
            for i in range(1, len(study.user_sites) + 1)}
options = ["", *recommended, *[h for h in hosts if h not in recommended],
           *[p for p in proposed if p not in recommended]]
st.selectbox(
    "Site étudié pour la Maison", options=options, placeholder=CHOOSE,
    format_func=lambda i: ("— le premier site recommandé —" if not i else
                           f"{recommended[i]} — site recommandé" if i in recommended
                           else hosts.get(i) or proposed.get(i, i)),
    **bind("rapport_site", "site", study.site if study.site in options else "",
           site_choice(options)))
show_table(study_table(study, site_name=diag.site.name if diag.site else None),
             hide_index=True, key="rapport_study_table")

st.subheader("Rapport PDF")
author = st.text_input("Auteur (imprimé en couverture)", key="rapport_author")
osm_tiles = st.checkbox(
    "Fond de carte OpenStreetMap (en ligne)", key="rapport_osm_tiles", value=False,
    help="Télécharge quelques tuiles OpenStreetMap (mises en cache) et les dessine, "
         "éclaircies, sous les cartes du rapport. Hors ligne, les cartes restent sans fond "
         "et le rapport le signale.")
params = (sel.code, sel.files_key, study, author, osm_tiles)
if st.button("Générer le rapport PDF", key="rapport_generate", type="primary",
             icon=":material/picture_as_pdf:"):
    bar = st.progress(0.0, text="Préparation du rapport…")
    done: list[str] = []

    def _step(name: str) -> None:
        done.append(name)
        bar.progress(min(len(done) / REPORT_STEPS, 0.95), text=f"{name.capitalize()}…")

    try:
        pdf = _cached.report_pdf(sel.code, sel.files_key, sel.files, study, author=author,
                                 progress=_step, osm_tiles=osm_tiles)
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
export_params = (sel.code, sel.files_key, study)
if st.button("Préparer les fichiers de données", key="rapport_prepare_exports",
             icon=":material/database:"):
    try:
        st.session_state[EXPORTS_KEY] = {
            "params": export_params,
            "gpkg": _cached.geopackage(sel.code, sel.files_key, study, sel.files),
            "csv": _cached.csv_zip(sel.code, sel.files_key, study, sel.files)}
    except MaillageError as exc:
        error_box("Les fichiers de données n'ont pas pu être produits.", exc)
exports = st.session_state.get(EXPORTS_KEY)
if exports and exports["params"] == export_params:
    left, right = st.columns(2)
    left.download_button("GeoPackage (QGIS)", data=exports["gpkg"], key="rapport_gpkg",
                         file_name=f"maillage_{sel.code}.gpkg",
                         mime="application/geopackage+sqlite3", icon=":material/download:")
    right.download_button("Tableaux CSV (zip)", data=exports["csv"], key="rapport_csv",
                          file_name=f"maillage_{sel.code}_csv.zip", mime="application/zip",
                          icon=":material/download:")
elif exports:
    st.caption("Les paramètres ont changé depuis les derniers fichiers : préparez-les à "
               "nouveau.")

st.subheader("Comparer des territoires")
by = st.radio(f"Comparer les parties de « {md_escape(ws.territory.name)} » :",
              options=list(SPLITS), format_func=SPLITS.__getitem__, horizontal=True,
              index=0 if ws.territory.kind == "departement" else 1, key="rapport_compare_by")
compared = _cached.comparison(sel.code, sel.files_key, by, sel.files)
table, skipped = compared.table, compared.skipped
if skipped:
    st.warning(f"{len(skipped)} territoire(s) sans données chargées, écartés : "
               + md_escape(" ; ".join(skipped[:10])) + (" …" if len(skipped) > 10 else ""))
if table is None:
    st.info("Aucun territoire à comparer n'a de données chargées.")
    st.stop()
metrics = compared.metrics
metric = st.selectbox("Indicateur", options=list(metrics), format_func=metrics.__getitem__,
                      placeholder=CHOOSE, key="rapport_compare_metric")
st.altair_chart(build_comparison_chart(table, metric=metric, highlight=sel.code),
                width="stretch", key="rapport_compare_chart")
show_table(compared.shown, hide_index=True, key="rapport_compare_table",
             placeholder="—")
st.caption("Chaque ligne est le diagnostic du territoire seul (distances à vol d'oiseau depuis "
           "la mairie). Couverture partielle : certaines communes n'ont pas de données "
           "chargées, les chiffres ne portent que sur les autres.")
