"""Widgets shared by the analysis pages: travel mode and threshold T, errors, notes.

The threshold and the travel mode are options of the session's study
(:mod:`app_pages._study`): chosen on one page, they are the study's on every page.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

import folium
import pandas as pd
import streamlit as st

from app_pages import CHOOSE, Selection, _cached, current_selection, md_escape
from app_pages._bounded import map_fits
from app_pages._study import bind, current_study
from diagnosis.errors import MaillageError, MissingDataError, render_error
from diagnosis.pipeline import DiagnosisParams
from diagnosis.schema import TRAVEL_MODE_CHOICES
from diagnosis.study_calendar import french_date
from diagnosis.travel import Travel

#: Travel modes offered, with their French label.
MODES: dict[str, str] = TRAVEL_MODE_CHOICES


def travel_inputs(prefix: str) -> tuple[str, float]:
    """The travel mode and threshold T widgets of the study (``<prefix>_mode``, ``_minutes``)."""
    sel = current_selection()
    study = current_study(sel)
    default_mode, default_minutes, reason = _cached.default_travel(sel.code, sel.files_key,
                                                                   sel.files)
    left, right = st.columns(2)
    left.selectbox(
        "Temps de trajet", options=list(MODES), format_func=MODES.__getitem__,
        placeholder=CHOOSE, **bind(f"{prefix}_mode", "mode", study.mode, str),
        help="À vol d'oiseau : distance × facteur de détour à vitesse moyenne, une "
             "estimation. Réseau routier : OpenStreetMap, téléchargé à la première "
             "utilisation (plus long), sinon estimation à vol d'oiseau signalée.")
    right.slider(
        "Temps de trajet maximal T (minutes)", min_value=5, max_value=60, step=1,
        format="%d min", **bind(f"{prefix}_minutes", "max_minutes", int(study.max_minutes),
                                float))
    if (study.mode, study.max_minutes) == (default_mode, float(default_minutes)):
        st.caption(f"Valeurs proposées pour ce territoire : {md_escape(reason)}")
    if study.mode in ("poussette", "transit"):
        _transit_inputs(prefix, study)
    return study.mode, study.max_minutes


def _split_paths(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in str(text).replace("\n", ";").split(";") if p.strip())


def _transit_inputs(prefix: str, study: DiagnosisParams) -> None:
    """Files, date and hour of the pushchair and transit modes (options of the study)."""
    st.caption("Guide : « Parents sans voiture » (guides/transports.md) — horaires GTFS sur "
               "transport.data.gouv.fr, rues en extrait OpenStreetMap .osm.pbf.")
    left, right = st.columns(2)
    left.text_input("Extrait OpenStreetMap des rues (.osm.pbf, chemin sur cet ordinateur)",
                    **bind(f"{prefix}_osm_pbf", "osm_pbf", study.osm_pbf, str))
    if study.mode != "transit":
        return
    right.text_input("Horaires GTFS (.zip ; plusieurs fichiers séparés par « ; »)",
                     **bind(f"{prefix}_gtfs", "gtfs_files", "; ".join(study.gtfs_files),
                            _split_paths))
    day = study.transit_day()
    left.text_input("Jour étudié (AAAA-MM-JJ ; vide : prochain mardi hors vacances)",
                    **bind(f"{prefix}_date", "study_date", study.study_date, str))
    right.text_input("Heure de départ (HH:MM)",
                     **bind(f"{prefix}_depart", "depart", study.depart, str))
    st.caption(f"Horaires du {md_escape(french_date(day))}, départ à "
               f"{md_escape(study.depart)}.")


def load_travel(sel: Selection, mode: str) -> Travel:
    """The cached travel times of the mode; a warning when the road graph is unavailable."""
    try:
        key = _cached.transit_key(current_study(sel))
        if mode == "crow":
            how = _cached.travel(sel.code, sel.files_key, mode, sel.files, key)
        else:
            with st.spinner("Chargement du réseau (la première fois, cela peut prendre une "
                            "minute)…"):
                how = _cached.travel(sel.code, sel.files_key, mode, sel.files, key)
    except MaillageError as exc:
        st.warning(md_escape(render_error(exc)), icon=":material/warning:")
        st.stop()
    if how.engine == "transit" or mode == "poussette":
        st.info(md_escape(f"Temps de trajet : {how.label}. {how.note}"),
                icon=":material/info:")
        return how
    if how.note and how.graph is None and mode != "crow":
        # The note holds the download error as data_sources.osm words it (English, technical):
        # a French sentence first, the detail folded away.
        st.warning("Réseau routier OpenStreetMap indisponible (hors ligne, ou serveur "
                   "Overpass injoignable) : les temps de trajet sont estimés à vol d'oiseau.",
                   icon=":material/warning:")
        with st.expander("Détail technique"):
            st.caption(md_escape(how.note))
    elif how.note:
        st.warning(md_escape(how.note), icon=":material/warning:")
    if how.graph is None:
        st.info(f"Temps de trajet : {md_escape(how.label)}. Une estimation, pas un "
                "itinéraire.", icon=":material/info:")
    return how


def missing_data_screen(sel: Selection) -> None:
    """What to give when the territory's data is not loaded: plain words and buttons.

    No option name, no internal code: the files a person downloads or already has, and
    the pages where to give them.
    """
    try:
        t = _cached.territory(sel.code)
        name = f"{t.name} ({t.code})" if t.kind != "custom" else \
            f"{t.name} ({len(t.communes)} communes)"
    except MaillageError:
        name = "ce territoire"
    st.warning(
        f"Les données de **{md_escape(name)}** ne sont pas chargées : Maillage livre "
        "les contours de toutes les communes de France, mais pas encore leurs naissances ni "
        "leurs structures de la petite enfance. Donnez le fichier du comparateur de "
        "territoires de l'INSEE et vos listes de structures (voir ci-dessous).",
        icon=":material/info:")
    st.markdown(
        "**Pour faire le diagnostic sans internet, donnez :**\n\n"
        "1. le fichier du **comparateur de territoires** de l'INSEE pour son département "
        "(sur insee.fr : « Comparateur de territoires », téléchargement du département, "
        "fichier CSV) : naissances, population, revenus ;\n"
        "2. si vous en avez, **vos listes de structures** (crèches, PMI, relais petite "
        "enfance, centres sociaux…), en tableur CSV ou en fichier cartographique.\n\n"
        "Avec internet, Maillage peut aussi chercher lui-même les données publiques.")
    st.page_link("app_pages/insee.py", label="Donner le fichier de l'INSEE",
                 icon=":material/table_view:")
    st.page_link("app_pages/import_fichier.py", label="Donner vos listes de structures",
                 icon=":material/upload_file:")
    st.page_link("app_pages/sources.py", label="Chercher les données publiques (avec "
                 "internet)", icon=":material/sync:")


def require_data(sel: Selection, title: str) -> None:
    """Show the page title; stop with a French message when the territory has no data."""
    st.title(title)
    try:
        ws = _cached.workspace(sel.code, sel.files_key, sel.files)
    except MissingDataError:
        missing_data_screen(sel)
        st.stop()
    except MaillageError as exc:
        st.error(f"Le diagnostic n'a pas pu être préparé : {md_escape(render_error(exc))}")
        st.stop()
    st.caption(f"{md_escape(ws.territory.label)} · {len(ws.territory.communes)} commune(s)")


def show_notes(notes: Iterable[str]) -> None:
    """French notes of an analysis, as one info box."""
    items = [str(n) for n in notes if str(n).strip()]
    if items:
        st.info("\n".join(f"- {md_escape(n)}" for n in items), icon=":material/info:")


def error_box(what: str, exc: Exception) -> None:
    """A French error for a refused input (no traceback), with the technical detail."""
    st.error(f"{what} Détail : {md_escape(render_error(exc))}", icon=":material/error:")



def show_map(cache_key: Hashable, build: Callable[[], folium.Map], *, key: str, height: int,
             returned_objects: tuple[str, ...] = ()) -> Any:
    """Show a folium map as ``st_folium`` does, rebuilt only when ``cache_key`` changes.

    ``cache_key`` must hold every input of ``build`` (territory, files, parameters).
    Returns the component's value (the ``returned_objects`` of the last interaction).
    """
    args = _cached.map_component_args(cache_key, key, height, tuple(returned_objects), build)
    if not map_fits(args):  # never Streamlit's English « MessageSizeError »
        return None
    hash_key = args["key"]

    def _on_change() -> None:
        st.session_state[key] = st.session_state.get(hash_key, {})

    return _cached.FOLIUM_COMPONENT(**args, on_change=_on_change)


def french_table(df: pd.DataFrame, *, key: str, height: int | None = None) -> None:
    """A table whose numbers a French browser shows the French way (see ``show_table``)."""
    from app_pages._bounded import show_table

    kwargs: dict[str, Any] = {"hide_index": True, "width": "stretch"}
    if height is not None:
        kwargs["height"] = height
    show_table(df, key=key, **kwargs)
