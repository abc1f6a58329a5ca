"""Pages of the Streamlit app: one thin page per step (widgets, a cached call, display).

The sidebar territory picker lives in ``app.py``; it stores the chosen territory code in
``st.session_state[TERRITORY_KEY]``. The import page stores the user's files (name, bytes)
in ``st.session_state[FILES_KEY]`` so every page diagnoses with them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import streamlit as st

#: The demo EPCI shown when the app opens (CC du Pays de Pontchâteau St-Gildas-des-Bois).
DEFAULT_TERRITORY = "200000438"
DEFAULT_DEPARTEMENT = "44"
#: Session keys shared by the pages.
TERRITORY_KEY = "territory_code"
FILES_KEY = "facility_files"
#: The user's INSEE files (comparateur de territoires, dossier complet), uploaded apart.
INSEE_KEY = "insee_files"

#: Placeholders of empty select boxes (Streamlit's own are "Choose an option"/"Choose options").
CHOOSE = "Choisissez une option"
CHOOSE_MANY = "Choisissez une ou plusieurs options"

FileList = tuple[tuple[str, bytes], ...]
FilesKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Selection:
    """The territory code chosen in the sidebar and the user's imported files.

    ``files`` holds the facility files then the INSEE files: the workspace tells them apart
    by their header (:func:`data_sources.insee_files.looks_like_insee_file`).
    """

    code: str
    files: FileList
    files_key: FilesKey


def files_key(files: FileList) -> FilesKey:
    """Cache key of uploaded files: (name, SHA-256 of the bytes) per file."""
    return tuple((name, hashlib.sha256(data).hexdigest()) for name, data in files)


def current_selection() -> Selection:
    """Read the shared selection from the session (defaults: demo EPCI, no file)."""
    code = str(st.session_state.get(TERRITORY_KEY) or DEFAULT_TERRITORY)
    files = tuple(st.session_state.get(FILES_KEY) or ()) + tuple(
        st.session_state.get(INSEE_KEY) or ())
    return Selection(code, files, files_key(files))


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~$])")


def md_escape(text: object) -> str:
    """Escape Markdown in a data value shown with ``st.markdown``/``st.info``."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))
