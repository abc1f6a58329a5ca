"""Every ``st.cache_data`` / ``st.cache_resource`` wrapper of the app, in one place.

Workspaces and overviews are keyed by the territory code and the uploaded files'
hashes (the bytes themselves are passed as ``_files``, which Streamlit does not hash).
They are cached as shared resources (not copied on each read): pages must not mutate
them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from app_pages import FileList, FilesKey
from data_sources import demo
from data_sources.cog import load_cog, resolve
from data_sources.fetch import FetchProgress, FetchResult, fetch_territory
from data_sources.store import ledger_table, read_store
from data_sources.workspace import Workspace, load_workspace
from diagnosis.overview import Overview, compute_overview
from diagnosis.schema import Territory


@st.cache_data(show_spinner=False)
def departement_options() -> dict[str, str]:
    """Département code -> label ``"44 — Loire-Atlantique"``, in code order."""
    dep = load_cog().departements.sort_values("code")
    return {str(c): f"{c} — {n}" for c, n in zip(dep["code"], dep["name"], strict=True)}


@st.cache_data(show_spinner=False)
def epci_options(dep_code: str) -> dict[str, str]:
    """EPCIs with at least one current commune in the département: SIREN -> name."""
    cog = load_cog()
    com = cog.communes
    sirens = set(com.loc[(com["kind"] == "commune") & (com["dep_code"] == dep_code),
                         "epci_code"].dropna()) - {""}
    epci = cog.epci.loc[cog.epci["code"].isin(sirens)].sort_values("name")
    return {str(c): str(n) for c, n in zip(epci["code"], epci["name"], strict=True)}


@st.cache_data(show_spinner=False)
def commune_options(dep_code: str, epci_code: str) -> dict[str, str]:
    """Current communes of an EPCI (or of the département): INSEE code -> ``"Name (code)"``."""
    com = load_cog().communes
    sel = com.loc[(com["kind"] == "commune") & (com["dep_code"] == dep_code)]
    if epci_code:
        sel = sel.loc[sel["epci_code"] == epci_code]
    sel = sel.sort_values("name")
    return {str(c): f"{n} ({c})" for c, n in zip(sel["code"], sel["name"], strict=True)}


@st.cache_data(show_spinner=False)
def commune_epci(code: str) -> str:
    """SIREN of a current commune's EPCI (``""`` when it has none)."""
    com = load_cog().communes
    row = com.loc[(com["code"] == code) & (com["kind"] == "commune"), "epci_code"]
    value = row.iloc[0] if len(row) else ""
    return str(value) if isinstance(value, str) else ""


@st.cache_data(show_spinner=False, max_entries=256)
def territory(query: str) -> Territory:
    """Resolve a code or a name (raises :class:`diagnosis.errors.InputError`)."""
    return resolve(query)


@st.cache_resource(show_spinner="Chargement des données du territoire…", max_entries=8)
def workspace(code: str, files_key: FilesKey, _files: FileList) -> Workspace:
    """The territory's loaded data with the user's files (see :func:`load_workspace`)."""
    return load_workspace(code, facility_files=list(_files))


@st.cache_resource(show_spinner="Calcul du diagnostic…", max_entries=16)
def overview(code: str, files_key: FilesKey, threshold_m: float, _files: FileList) -> Overview:
    """The diagnosis overview of the territory (see :func:`compute_overview`)."""
    ws = workspace(code, files_key, _files)
    return compute_overview(ws.territory, ws.communes, ws.facilities,
                            threshold_m=threshold_m, sources=ws.sources)


@st.cache_data(show_spinner=False)
def demo_manifest() -> dict[str, Any]:
    """The embedded demo's build manifest (rows not placed, inputs, totals)."""
    return demo.demo_manifest()


@st.cache_data(show_spinner=False, max_entries=32)
def store_ledger(code: str) -> pd.DataFrame | None:
    """The freshness ledger of the territory's local store (French headers), or ``None``."""
    stored = read_store(resolve(code))
    return ledger_table(stored.ledger) if stored is not None else None


#: Wrappers over static data (COG, demo manifest): kept when the local store changes.
_STATIC_WRAPPERS = frozenset({"departement_options", "epci_options", "commune_options",
                              "commune_epci", "territory", "demo_manifest"})


def clear_territory_data() -> None:
    """Clear every cache wrapper of this module that depends on the territory's data.

    Every ``st.cache_*`` wrapper here except :data:`_STATIC_WRAPPERS` (so wrappers added
    later are cleared too): workspaces, overviews, analyses, the ledger.
    """
    for name, obj in list(globals().items()):
        if name in _STATIC_WRAPPERS or getattr(obj, "__module__", "") != __name__:
            continue
        clear = getattr(obj, "clear", None)
        if callable(clear):
            clear()


def update_territory(code: str, *, on_progress: Callable[[FetchProgress], None]) -> FetchResult:
    """Fetch the territory's live sources into the local store, then clear the data caches.

    Not a cache itself: a failed source keeps the previous data (see
    :func:`data_sources.fetch.fetch_territory`).
    """
    result = fetch_territory(resolve(code), progress=on_progress)
    clear_territory_data()
    return result
