"""The study of a session: one frozen ``DiagnosisParams`` that every page reads and changes.

A study is the territory, the travel mode and threshold T, the priority weights and types,
k, the objective, the host types, the proposed points, the studied site and the peer-group
assumptions. The pages' widgets are views of it: each widget is given the study's value
before it is drawn, and its ``on_change`` callback writes the user's choice back into
the study. The one :class:`~diagnosis.pipeline.Diagnosis` of the study
(:func:`app_pages._cached.diagnosis`) is then what the pages, the PDF and every export
show.

The study lives in ``st.session_state``: each browser session has its own, and nothing
shared by the sessions (the ``st.cache_*`` wrappers return results that no page mutates)
can change it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, cast

import streamlit as st

from app_pages import Selection, _cached
from diagnosis.errors import InputError
from diagnosis.gaps import DEFAULT_PRIORITY_WEIGHTS, PRIORITY_FACTORS
from diagnosis.pipeline import DiagnosisParams
from diagnosis.settings import USER_SITE_ID

#: Session key of the study.
STUDY_KEY = "study"
#: Session key of the last French message of a refused change (shown by the page).
STUDY_ERROR_KEY = "study_error"
#: Scenarios compared with the main one when a study starts (trimmed to the candidates).
START_SCENARIOS = (2, 3)
#: Decimals kept of a proposed point's longitude and latitude (about 0.1 m).
POINT_DIGITS = 6


def current_study(sel: Selection) -> DiagnosisParams:
    """The session's study for the territory chosen in the sidebar.

    A new territory starts a new study, with the travel mode and threshold proposed for
    its density (:func:`app_pages._cached.default_travel`).
    """
    study = st.session_state.get(STUDY_KEY)
    if isinstance(study, DiagnosisParams) and study.territory == sel.code:
        return study
    mode, minutes, _ = _cached.default_travel(sel.code, sel.files_key, sel.files)
    study = DiagnosisParams(territory=sel.code, mode=mode, max_minutes=float(minutes),
                            scenarios=START_SCENARIOS)
    st.session_state[STUDY_KEY] = study
    return study


def change_study(**changes: Any) -> DiagnosisParams:
    """Replace options of the session's study (validated by ``DiagnosisParams``).

    A refused value keeps the study as it was and leaves a French message under
    :data:`STUDY_ERROR_KEY`.
    """
    study = st.session_state[STUDY_KEY]
    try:
        new = replace(study, **changes)
    except InputError as exc:
        st.session_state[STUDY_ERROR_KEY] = exc.fr
        return cast("DiagnosisParams", study)
    st.session_state[STUDY_ERROR_KEY] = None
    st.session_state[STUDY_KEY] = new
    return cast("DiagnosisParams", new)


def _from_widget(key: str, option: str, convert: Callable[[Any], Any]) -> None:
    change_study(**{option: convert(st.session_state[key])})


def bind(key: str, option: str, value: Any, convert: Callable[[Any], Any] = lambda v: v
         ) -> dict[str, Any]:
    """Widget arguments that show ``value`` (from the study) and write changes back.

    Use as ``st.slider(..., **bind("besoins_minutes", "max_minutes", study.max_minutes,
    float))``: the widget state is set from the study on every run (so a change made on
    another page shows here), and the callback stores ``convert(widget value)`` under
    ``option``.
    """
    st.session_state[key] = value
    return {"key": key, "on_change": _from_widget, "args": (key, option, convert)}


def site_choice(options: Iterable[str]) -> Callable[[Any], str | None]:
    """The study's ``site`` from a site selectbox's value (a site id, else None).

    A value that is not one of ``options`` (site ids) means the first recommended site.
    The box's first entry, "", reads « le premier site recommandé : … »; a rerun racing a
    change of the recommended sites can hand back that label instead of an id, which must
    mean what it says, not a site named like it (the diagnosis then found no such site).
    """
    known = {str(o) for o in options if o}
    return lambda v: str(v) if v and str(v) in known else None


def study_weights(study: DiagnosisParams) -> dict[str, float]:
    """The study's priority weights, the defaults filling what it does not set."""
    weights = {k: float(v) for k, v in DEFAULT_PRIORITY_WEIGHTS.items()}
    weights.update(dict(study.weights or ()))
    return weights


def _weight_changed(key: str, factor: str) -> None:
    weights = study_weights(st.session_state[STUDY_KEY])
    weights[factor] = float(st.session_state[key])
    change_study(weights=tuple((k, weights[k]) for k in PRIORITY_FACTORS))


def bind_weight(key: str, factor: str, study: DiagnosisParams) -> dict[str, Any]:
    """Widget arguments of one priority-weight slider (see :func:`bind`)."""
    st.session_state[key] = study_weights(study)[factor]
    return {"key": key, "on_change": _weight_changed, "args": (key, factor)}


def add_point(lon: float, lat: float) -> None:
    """Propose a site at (longitude, latitude) (a button's callback)."""
    study = st.session_state[STUDY_KEY]
    change_study(user_sites=(*study.user_sites, (round(lon, POINT_DIGITS),
                                                 round(lat, POINT_DIGITS))))


def remove_point(index: int) -> None:
    """Withdraw the proposed site at ``index``; a studied point keeps being the same point."""
    study = st.session_state[STUDY_KEY]
    kept = tuple(p for i, p in enumerate(study.user_sites) if i != index)
    site = study.site
    number = re.fullmatch(r"user:(\d+)", site or "")
    if number and int(number.group(1)) - 1 == index:
        site = None
    elif number and int(number.group(1)) - 1 > index:
        site = USER_SITE_ID.format(n=int(number.group(1)) - 1)
    change_study(user_sites=kept, site=site)


def show_study_error() -> None:
    """Show (once) the French message of a change the study refused."""
    message = st.session_state.pop(STUDY_ERROR_KEY, None)
    if message:
        st.error(f"Valeur refusée : {message}", icon=":material/error:")
