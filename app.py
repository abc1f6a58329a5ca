"""Maillage in the browser: ``streamlit run app.py``.

The page router and the shared frame only: page settings, the sidebar territory picker
(département → EPCI → commune, or a search by name or code) and the navigation.
"""

from __future__ import annotations

import posixpath
import re

import streamlit as st

from app_pages import (
    CHOOSE,
    DEFAULT_DEPARTEMENT,
    DEFAULT_TERRITORY,
    TERRITORY_KEY,
    _cached,
    md_escape,
)
from diagnosis.errors import InputError
from diagnosis.maps import set_asset_base_url

st.set_page_config(page_title="Maillage — diagnostic territorial", page_icon=":material/hub:",
                   layout="wide", initial_sidebar_state="expanded")
# Maps load Leaflet from static/vendor/ (served at app/static/), not from a CDN: offline-proof.
set_asset_base_url(posixpath.join("/", st.get_option("server.baseUrlPath"), "app/static/vendor")
                   if st.get_option("server.enableStaticServing") else None)

#: Streamlit has no locale: the file uploader's English strings ("Upload", "50MB per file",
#: "Drag and drop files here") are hidden and French text is shown instead by CSS, on the
#: data-testids Streamlit 1.67 renders (checked by tests/test_browser.py). The input hint
#: ("Press Enter to apply") reads in French; the tables' toolbar (English tooltips
#: "Download as CSV", "Search", "Fullscreen") is hidden: each page offers its own French
#: download buttons.
FRENCH_UI_CSS = """<style>
[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"] p {
  display: none;
}
[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"]::after {
  content: "Parcourir les fichiers";
}
[data-testid="stFileUploaderDropzoneInstructions"] > div > span { display: none; }
[data-testid="stFileUploaderDropzoneInstructions"] > div::after {
  content: "Glissez-déposez vos fichiers ici · 50 Mo au plus par fichier";
  font-size: 0.875rem;
}
[data-testid="stFileUploaderDropzone"] > div:not([data-testid]) > * { display: none; }
[data-testid="stFileUploaderDropzone"] > div:not([data-testid])::after {
  content: "Déposez les fichiers ici";
}
[data-testid="InputInstructions"] > * { display: none; }
[data-testid="InputInstructions"]::after { content: "Entrée pour valider"; }
[data-testid="stElementToolbar"] { display: none; }
</style>"""
st.html(FRENCH_UI_CSS)

_KINDS = {"commune": "commune", "epci": "intercommunalité", "departement": "département"}


def _french_resolve_error(query: str, exc: InputError) -> str:
    """A French message for an unknown or ambiguous territory, with the closest names."""
    text = str(exc)
    shown = md_escape(query)
    close = re.search(r"noms les plus proches : (.*)$", text)
    if close:
        names = close.group(1).strip()
        if names == "aucun":
            return (f"Aucun territoire ne correspond à « {shown} ». Essayez un code INSEE de "
                    "commune (5 caractères), un SIREN d'EPCI (9 chiffres) ou un code de "
                    "département.")
        hints = ", ".join(md_escape(n.strip()) for n in names.split(";"))
        return f"Aucun territoire ne s'appelle « {shown} ». Noms les plus proches : {hints}."
    ambiguous = re.search(r"ambigu : (.*?)\. Donnez", text)
    if ambiguous:
        cands = ", ".join(md_escape(n.strip()) for n in ambiguous.group(1).split(";"))
        return (f"Plusieurs territoires s'appellent « {shown} » : {cands}. Précisez le code, "
                "ou le nom avec son département, par exemple « Sainte-Marie (974) ».")
    return f"Territoire introuvable : « {shown} ». Détail : {md_escape(text)}"


#: Session key of a territory that the selectboxes cannot show (a région, France, a list
#: of communes or a drawn area, from the search box or the page « Territoire sur mesure »).
CUSTOM_KEY = "picker_custom"


def _on_departement() -> None:
    st.session_state[CUSTOM_KEY] = None
    st.session_state["picker_epci"] = ""
    st.session_state["picker_commune"] = ""
    st.session_state["picker_message"] = None


def _on_epci() -> None:
    st.session_state[CUSTOM_KEY] = None
    st.session_state["picker_commune"] = ""
    st.session_state["picker_message"] = None


def _on_commune() -> None:
    st.session_state[CUSTOM_KEY] = None
    st.session_state["picker_message"] = None


def _on_search() -> None:
    query = str(st.session_state.get("picker_search", "")).strip()
    if not query:
        st.session_state["picker_message"] = None
        return
    try:
        t = _cached.territory(query)
    except InputError as exc:
        st.session_state["picker_message"] = ("error", _french_resolve_error(query, exc))
        return
    st.session_state[CUSTOM_KEY] = query if t.kind not in {"commune", "epci",
                                                           "departement"} else None
    dep = t.departements[0] if t.departements else DEFAULT_DEPARTEMENT
    st.session_state["picker_dep"] = dep
    st.session_state["picker_epci"] = t.code if t.kind == "epci" else (
        _cached.commune_epci(t.code) if t.kind == "commune" else "")
    st.session_state["picker_commune"] = t.code if t.kind == "commune" else ""
    message = f"Territoire choisi : {md_escape(t.label)}."
    if t.note:
        message += f" {md_escape(t.note)}"
    st.session_state["picker_message"] = ("success", message)


def territory_picker() -> str:
    """Sidebar widgets; returns the code of the chosen territory."""
    defaults = {"picker_dep": DEFAULT_DEPARTEMENT, "picker_epci": DEFAULT_TERRITORY,
                "picker_commune": "", "picker_message": None}
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)
    with st.sidebar:
        st.subheader("Territoire")
        deps = _cached.departement_options()
        st.selectbox("Département", options=list(deps), format_func=lambda c: deps.get(c, c),
                     placeholder=CHOOSE, key="picker_dep", on_change=_on_departement)
        dep = st.session_state["picker_dep"]
        epcis = _cached.epci_options(dep)
        if st.session_state["picker_epci"] not in epcis:
            st.session_state["picker_epci"] = ""
        st.selectbox("Intercommunalité (EPCI)", options=["", *epcis],
                     format_func=lambda c: epcis.get(c, "— tout le département —"),
                     placeholder=CHOOSE, key="picker_epci", on_change=_on_epci)
        epci = st.session_state["picker_epci"]
        communes = _cached.commune_options(dep, epci)
        if st.session_state["picker_commune"] not in communes:
            st.session_state["picker_commune"] = ""
        whole = "— toute l'intercommunalité —" if epci else "— tout le département —"
        st.selectbox("Commune", options=["", *communes],
                     format_func=lambda c: communes.get(c, whole),
                     placeholder=CHOOSE, key="picker_commune",
                     on_change=_on_commune)
        st.text_input("Rechercher un nom ou un code", key="picker_search",
                      on_change=_on_search,
                      placeholder="ex. Pontchâteau, 44129, 200000438, Loire-Atlantique",
                      help="Commune, intercommunalité (SIREN) ou département ; accents et "
                           "majuscules indifférents.")
        message = st.session_state.get("picker_message")
        if message:
            level, text = message
            (st.error if level == "error" else st.success)(text)
        code = st.session_state["picker_commune"] or epci or dep
        custom = st.session_state.get(CUSTOM_KEY)
        if custom:
            try:
                chosen = _cached.territory(custom)
            except InputError:
                st.session_state[CUSTOM_KEY] = None
            else:
                st.info(f"Territoire sur mesure : {md_escape(chosen.label)} (changez de "
                        "département, d'EPCI ou de commune pour revenir aux listes).")
                code = custom
        st.caption("Démo embarquée : Loire-Atlantique (44). Ailleurs : vos fichiers INSEE "
                   "(page « Fichiers INSEE ») et de structures, ou la mise à jour des "
                   "sources (page « Sources et limites »).")
    return code


st.session_state[TERRITORY_KEY] = territory_picker()

pages = [
    st.Page("app_pages/territoire.py", title="Territoire", icon=":material/map:",
            default=True),
    st.Page("app_pages/besoins.py", title="Besoins et lacunes", icon=":material/troubleshoot:",
            url_path="besoins"),
    st.Page("app_pages/implantation.py", title="Implantation", icon=":material/add_location:",
            url_path="implantation"),
    st.Page("app_pages/partenaires.py", title="Partenaires", icon=":material/diversity_3:",
            url_path="partenaires"),
    st.Page("app_pages/rapport.py", title="Rapport et exports", icon=":material/description:",
            url_path="rapport"),
    st.Page("app_pages/import_fichier.py", title="Importer des structures",
            icon=":material/upload_file:", url_path="importer"),
    st.Page("app_pages/insee.py", title="Fichiers INSEE", icon=":material/table_view:",
            url_path="insee"),
    st.Page("app_pages/zone.py", title="Territoire sur mesure", icon=":material/draw:",
            url_path="zone"),
    st.Page("app_pages/federation.py", title="Vue nationale", icon=":material/public:",
            url_path="national"),
    st.Page("app_pages/plan.py", title="Plan national", icon=":material/flag:",
            url_path="plan"),
    st.Page("app_pages/sources.py", title="Sources et limites", icon=":material/info:",
            url_path="sources"),
]
st.navigation(pages, position="sidebar").run()
