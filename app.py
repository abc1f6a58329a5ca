"""Maillage in the browser: ``streamlit run app.py``.

The page router and the shared frame only: page settings, the sidebar territory picker
(département → EPCI → commune, or a search by name or code) and the navigation.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

import streamlit as st

from app_pages import (
    CHOOSE,
    DEFAULT_DEPARTEMENT,
    DEFAULT_TERRITORY,
    TERRITORY_KEY,
    _cached,
    md_escape,
)
from diagnosis.errors import InputError, render_error
from diagnosis.maps import set_asset_base_url
from diagnosis.territory import AmbiguousTerritoryError, UnknownTerritoryError

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
#: download buttons. A file the browser refuses (over ``server.maxUploadSize``, or of a
#: type the uploader does not accept) keeps its chip, with a French reason in place of
#: "File must be 50.0MB or smaller." and no English tooltip on hover.
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
[data-testid="stFileUploaderDropzone"] > div:not([data-testid]) > :not([data-testid]) {
  display: none;
}
[data-testid="stFileUploaderDropzone"] > div:not([data-testid]):not(:has([data-testid]))::after {
  content: "Déposez les fichiers ici";
}
[data-testid="stFileChipName"] + div { display: none; }
[data-testid="stFileChip"][aria-invalid="true"] [data-testid="stFileChipName"]::after {
  content: "refusé : plus de 50 Mo, ou format non accepté";
  display: block; font-size: 0.75rem; color: #b3261e;
}
[data-testid="stFileChip"][aria-invalid="true"] > span[role="alert"] { font-size: 0; }
[data-testid="stFileChip"][aria-invalid="true"] > span[role="alert"]::after {
  content: "Fichier refusé : plus de 50 Mo, ou format non accepté.";
  font-size: 0.875rem;
}
[data-testid="stTooltipErrorHoverTarget"] { pointer-events: none; }
[data-testid="stTooltipErrorHoverTarget"] [data-testid="stFileChipDeleteBtn"] {
  pointer-events: auto;
}
[data-testid="InputInstructions"] > * { display: none; }
[data-testid="InputInstructions"]::after { content: "Entrée pour valider"; }
[data-testid="stElementToolbar"] { display: none; }
</style>"""
st.html(FRENCH_UI_CSS)

_KINDS = {"commune": "commune", "epci": "intercommunalité", "departement": "département"}


def _french_resolve_error(query: str, exc: InputError) -> str:
    """A French message for an unknown or ambiguous territory, with the closest names.

    Built from the error's fields (its kind and candidates), never by reading its text.
    """
    shown = md_escape(query)
    names = ", ".join(md_escape(str(c)) for c in exc.candidates)
    if isinstance(exc, AmbiguousTerritoryError):
        return (f"Plusieurs territoires s'appellent « {shown} » : {names}. Précisez le code, "
                "ou le nom avec son département, par exemple « Sainte-Marie (974) ».")
    if isinstance(exc, UnknownTerritoryError):
        if not names:
            return (f"Aucun territoire ne correspond à « {shown} ». Essayez un code INSEE de "
                    "commune (5 caractères), un SIREN d'EPCI (9 chiffres) ou un code de "
                    "département.")
        return f"Aucun territoire ne s'appelle « {shown} ». Noms les plus proches : {names}."
    return f"Territoire introuvable : « {shown} ». Détail : {md_escape(render_error(exc))}"


#: Session key of a territory that the selectboxes cannot show (a région, France, a list
#: of communes or a drawn area, from the search box or the page « Territoire sur mesure »).
CUSTOM_KEY = "picker_custom"

#: The chosen département, EPCI and commune live in plain session keys, never in the
#: widgets' own state. A selectbox whose browser-side state is lost (a rerun that races a
#: page switch, a reconnect under load) falls back to its default index: that default is
#: always the session's current choice, so a lost state can no longer turn into the first
#: option (« 01 — Ain », issue 25.7). A choice made elsewhere (search, another list)
#: bumps :data:`GEN_KEY`, which gives the widgets new keys, so they are drawn afresh from
#: the session's choice instead of having their state written through the API.
CHOICE_KEYS = {"dep": "territory_dep", "epci": "territory_epci", "commune": "territory_commune"}
GEN_KEY = "picker_generation"


def widget_key(level: str) -> str:
    """The current key of the département, EPCI or commune selectbox (tests find it here)."""
    return f"picker_{level}_{st.session_state.get(GEN_KEY, 0)}"


def _choose(*, dep: str | None = None, epci: str = "", commune: str = "",
            custom: str | None = None, message: tuple[str, str] | None = None) -> None:
    """Record a choice of territory and redraw the lists from it."""
    if dep is not None:
        st.session_state[CHOICE_KEYS["dep"]] = dep
    st.session_state[CHOICE_KEYS["epci"]] = epci
    st.session_state[CHOICE_KEYS["commune"]] = commune
    st.session_state[CUSTOM_KEY] = custom
    st.session_state["picker_message"] = message
    st.session_state[GEN_KEY] = st.session_state.get(GEN_KEY, 0) + 1


def _on_departement(key: str) -> None:
    _choose(dep=str(st.session_state[key]))


def _on_epci(key: str) -> None:
    _choose(epci=str(st.session_state[key] or ""))


def _on_commune(key: str) -> None:
    _choose(epci=st.session_state[CHOICE_KEYS["epci"]],
            commune=str(st.session_state[key] or ""))


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
    message = f"Territoire choisi : {md_escape(t.label)}."
    if t.note:
        message += f" {md_escape(t.note)}"
    _choose(dep=t.departements[0] if t.departements else DEFAULT_DEPARTEMENT,
            epci=t.code if t.kind == "epci" else (
                _cached.commune_epci(t.code) if t.kind == "commune" else ""),
            commune=t.code if t.kind == "commune" else "",
            custom=query if t.kind not in {"commune", "epci", "departement"} else None,
            message=("success", message))


def _select(label: str, level: str, options: dict[str, str], *, blank: str | None,
            on_change: Callable[[str], None]) -> str:
    """One selectbox of the picker, drawn from the session's choice for ``level``."""
    choices = ([""] if blank is not None else []) + list(options)
    chosen = st.session_state[CHOICE_KEYS[level]]
    if chosen not in choices:  # e.g. an EPCI of another département
        chosen = st.session_state[CHOICE_KEYS[level]] = choices[0]
    key = widget_key(level)
    st.selectbox(label, options=choices, index=choices.index(chosen),
                 format_func=lambda c: options.get(c, blank or c), key=key, placeholder=CHOOSE,
                 on_change=on_change, args=(key,))
    return str(chosen)


def territory_picker() -> str:
    """Sidebar widgets; returns the code of the chosen territory."""
    defaults = {CHOICE_KEYS["dep"]: DEFAULT_DEPARTEMENT, CHOICE_KEYS["epci"]: DEFAULT_TERRITORY,
                CHOICE_KEYS["commune"]: "", "picker_message": None}
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)
    with st.sidebar:
        st.subheader("Territoire")
        dep = _select("Département", "dep", _cached.departement_options(), blank=None,
                      on_change=_on_departement)
        epci = _select("Intercommunalité (EPCI)", "epci", _cached.epci_options(dep),
                       blank="— tout le département —", on_change=_on_epci)
        whole = "— toute l'intercommunalité —" if epci else "— tout le département —"
        commune = _select("Commune", "commune", _cached.commune_options(dep, epci),
                          blank=whole, on_change=_on_commune)
        st.text_input("Rechercher un nom ou un code", key="picker_search",
                      on_change=_on_search,
                      placeholder="ex. Pontchâteau, 44129, 200000438, Loire-Atlantique",
                      help="Commune, intercommunalité (SIREN) ou département ; accents et "
                           "majuscules indifférents.")
        message = st.session_state.get("picker_message")
        if message:
            level, text = message
            (st.error if level == "error" else st.success)(text)
        code = commune or epci or dep
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
page = st.navigation(pages, position="sidebar")
try:
    page.run()
finally:  # also when the page stops early (st.stop) or asks for a rerun
    _cached.settle_after_first_visit(page.url_path)
