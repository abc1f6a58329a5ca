"""Page « Territoire »: key figures, the map, offer and proximity, indicators per commune."""

from __future__ import annotations

import streamlit as st

from app_pages import _cached, current_selection, md_escape
from app_pages._bounded import show_table
from app_pages._widgets import missing_data_screen, show_map
from diagnosis.errors import MaillageError, MissingDataError, render_error
from diagnosis.formatting import fr_known, fr_out_of
from diagnosis.maps import build_overview_map
from diagnosis.schema import facility_label
from diagnosis.settings import DEFAULT_THRESHOLD_M

KINDS = {"commune": "Commune", "epci": "Intercommunalité", "departement": "Département"}


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}".replace(",", "\u202f")


sel = current_selection()
try:
    ws = _cached.workspace(sel.code, sel.files_key, sel.files)
except MissingDataError:
    st.title("Diagnostic du territoire")
    missing_data_screen(sel)
    st.stop()
except MaillageError as exc:
    st.title("Diagnostic du territoire")
    st.error(f"Le diagnostic n'a pas pu être préparé : {md_escape(render_error(exc))}")
    st.stop()

t = ws.territory
st.title(t.name)
st.caption((f"Territoire sur mesure · {len(t.communes)} communes" if t.kind == "custom" else
            f"{KINDS.get(t.kind, t.kind)} · code {t.code}")
           + " · premier diagnostic : besoins, offre et proximité")
if t.note:
    st.info(md_escape(t.note))
st.info("\n".join(f"- {md_escape(n)}" for n in ws.notices), icon=":material/info:")
for report in ws.imports:
    st.success(f"Fichier importé « {md_escape(report.file)} » : {md_escape(report.summary_fr())}"
               ". Détail sur la page « Importer des structures ».")

DEFAULT_KM = DEFAULT_THRESHOLD_M / 1000
threshold_km = float(st.session_state.get("threshold_km", DEFAULT_KM))  # slider further down
try:
    ov = _cached.overview(sel.code, sel.files_key, threshold_km * 1000, sel.files)
except MaillageError as exc:
    st.error(f"Le diagnostic n'a pas pu être calculé : {md_escape(render_error(exc))}")
    st.stop()
s = ov.summary
if s["n_communes_missing"]:
    st.warning(f"{s['n_communes_missing']} commune(s) du territoire sans données chargées : "
               "le diagnostic est partiel.")
if s.get("communes_births_unknown"):
    st.warning("Naissances et totaux des besoins" + fr_out_of(
        int(s["n_communes_births_known"]), int(s["n_communes_total"]))
        + " : sans naissances connues, " + md_escape(", ".join(s["communes_births_unknown"]))
        + " (absentes du fichier INSEE chargé). Elles ne sont pas comptées comme 0.")

years = s.get("data_years") or {}
yb, yp = years.get("births_2024", 2024), years.get("population_2022", 2022)
cols = st.columns(4)
cols[0].metric("Communes", s["n_communes"])
cols[1].metric(f"Naissances {yb}", _number(s["births_2024"]),
               help=f"Naissances domiciliées en {yb} (INSEE, état civil).")
cols[2].metric("Moins de 3 ans (estimation)", _number(s["under3_estimate"]),
               help=f"Estimation, pas un comptage : {s['under3_estimate_label']}.")
cols[3].metric(f"Population {yp}", _number(s["population_2022"]))

# The map does not depend on the « à portée » distance: drawn from the default overview, so
# moving the slider does not rebuild it.
base = _cached.overview(sel.code, sel.files_key, DEFAULT_THRESHOLD_M, sel.files)
show_map(("overview", sel.code, sel.files_key), lambda: build_overview_map(base),
         key="territory_map", height=620)
st.caption("Sources : " + " ; ".join(
    f"{md_escape(src['title'])} ({md_escape(src['vintage'])}, {md_escape(src['licence'])})"
    for src in ws.sources
) + ". Détail sur la page « Sources et limites ».")

st.subheader("Structures dans le territoire")
types = list(ov.params["types"])
for start in range(0, len(types), 5):
    row = st.columns(5)
    for col, ftype in zip(row, types[start:start + 5], strict=False):
        fac = s["facilities"][ftype]
        known = s.get("coverage", {}).get(ftype, {}).get("label", "inconnue")
        status = s.get("coverage", {}).get(ftype, {}).get("status", "unknown")
        col.metric(facility_label(ftype, plural=True),  # never 0 for « none known »
                   fr_known(fac["count"], status=status, feminine=True),
                   help=(f"Offre connue : {known}. Places connues : "
                         f"{_number(fac['places_known'])} ; placées à la mairie (position "
                         f"approximative) : {fac['at_commune_precision']}."))
partial = [facility_label(t, plural=True) for t in types
           if s.get("coverage", {}).get(t, {}).get("status") != "complete"]
if partial:
    st.caption("Aucune source chargée ne recense entièrement : " + ", ".join(partial)
               + ". Pour ces types, les nombres sont ceux des structures connues : un 0 veut "
               "dire « aucune connue », pas « aucune » (importez vos fichiers ou mettez à "
               "jour les sources).")

st.subheader("Offre et proximité")
st.slider("Distance jugée « à portée » (km à vol d'oiseau depuis la mairie)", min_value=1.0,
          max_value=30.0, value=DEFAULT_KM, step=0.5, format="%.1f km", key="threshold_km")
tables = _cached.overview_tables(sel.code, sel.files_key, threshold_km * 1000, sel.files)
show_table(tables.offer, hide_index=True, key="offer_table", placeholder="—")
st.caption(f"Naissances à portée : naissances {yb} des communes dont la mairie est à moins de "
           f"{threshold_km:g} km à vol d'oiseau d'une structure du type. « — » : inconnu.")

st.subheader("Indicateurs par commune")
show_table(tables.communes, hide_index=True, key="commune_table", placeholder="non diffusé")
st.download_button("Télécharger le tableau (CSV)", key="download_communes",
                   data=tables.communes_csv,
                   file_name=f"maillage_communes_{t.code}.csv", mime="text/csv")
