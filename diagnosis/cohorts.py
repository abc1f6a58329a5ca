"""Peer-group cohorts: how many groups a catchment can fill, and what they cost in time.

A Maison des 1000 premiers jours runs peer-support groups of about ten families whose
babies have nearly the same age. From the births of the catchment and the share of
families expected to join, :func:`compute_cohorts` derives how fast groups fill, how
many start each year, how many run at once and how many facilitator hours they need.

The arithmetic (all rates per month, steady state)::

    births per month       m = B / 12             (B: mean yearly births)
    families per month     r = m x uptake_rate
    families per window    r x birth_window_months
    months to fill a group group_size / r
    groups per year        12 r / group_size
    group duration         prenatal months + programme_months
    concurrent groups      groups per year x group duration / 12   (Little's law)
    facilitator hours      concurrent x sessions_per_month
                           x (session_hours + prep) x facilitators_per_session

These figures are the catchment's *potential*. One Maison can only run what its
facilitators can hold at once (a capacity, not a property of the catchment)::

    capacity (at once)     facilitators x groups_per_facilitator
    capacity (per year)    capacity x 12 / group duration           (Little's law)
    groups a year          min(potential, capacity)
    binds                  "capacite" when the capacity is below the potential,
                           else "potentiel"

See Also
--------
guides/implantation.md : cohort arithmetic and its assumptions (in French).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from diagnosis.errors import InputError
from diagnosis.settings import DEFAULT_FACILITATORS_PER_MAISON, DEFAULT_GROUPS_PER_FACILITATOR

#: Months of pregnancy counted by the prenatal start month (the 1st month starts at
#: conception; the 9th ends at birth).
PREGNANCY_MONTHS = 9

#: Values of :attr:`CohortPlan.binding`: what limits the groups a Maison runs.
BINDING_POTENTIAL = "potentiel"
BINDING_CAPACITY = "capacite"



@dataclass(frozen=True)
class CohortPlan:
    """What a catchment's births allow in peer groups (see :func:`compute_cohorts`).

    Attributes
    ----------
    births_per_year
        Mean yearly births used (arithmetic mean of the years given).
    n_years
        Number of yearly values averaged.
    births_per_month
        ``births_per_year / 12``.
    families_per_month
        Families expected to join per month (``births_per_month x uptake_rate``).
    families_per_year
        ``12 x families_per_month``.
    families_per_window
        Families whose babies are born within one birth window.
    months_to_fill_group
        Months of recruitment to gather ``group_size`` families (inf without births).
    groups_per_year
        Full groups that can start per year (``families_per_year / group_size``).
    fills_within_window
        Whether a full group can be gathered within the birth window.
    group_size_within_window
        Size of a group that keeps to the birth window: ``min(group_size,
        families_per_window)``.
    prenatal_months
        Months a group meets before birth (0 without a prenatal start).
    group_duration_months
        ``prenatal_months + programme_months``.
    concurrent_groups
        Groups running at the same time in steady state (mean).
    facilitator_hours_per_month
        Facilitation hours (sessions and their preparation) per month in steady state,
        for the whole potential of the catchment.
    capacity_concurrent_groups
        Groups one Maison can run at the same time (``facilitators x
        groups_per_facilitator``).
    capacity_groups_per_year
        Groups that capacity lets start per year (``capacity x 12 / group duration``).
    maison_groups_per_year
        Groups the Maison can really start per year: ``min(groups_per_year,
        capacity_groups_per_year)``.
    maison_concurrent_groups
        Groups the Maison runs at once in steady state: ``min(concurrent_groups,
        capacity_concurrent_groups)``.
    maison_families_per_year
        Families the Maison's groups take in per year (``maison_groups_per_year x
        group_size``).
    maison_facilitator_hours_per_month
        Facilitation hours per month for the groups the Maison really runs.
    binding
        :data:`BINDING_CAPACITY` when the Maison's capacity is below the catchment's
        potential (the catchment could fill more groups than the Maison can hold),
        else :data:`BINDING_POTENTIAL`.
    binding_text
        A French sentence saying which of the two binds, with the figures.
    warnings
        French warnings for the user (empty when the plan is comfortable).
    params
        The parameters used.
    """

    births_per_year: float
    n_years: int
    births_per_month: float
    families_per_month: float
    families_per_year: float
    families_per_window: float
    months_to_fill_group: float
    groups_per_year: float
    fills_within_window: bool
    group_size_within_window: float
    prenatal_months: int
    group_duration_months: float
    concurrent_groups: float
    facilitator_hours_per_month: float
    capacity_concurrent_groups: float = math.inf
    capacity_groups_per_year: float = math.inf
    maison_groups_per_year: float = 0.0
    maison_concurrent_groups: float = 0.0
    maison_families_per_year: float = 0.0
    maison_facilitator_hours_per_month: float = 0.0
    binding: str = BINDING_POTENTIAL
    binding_text: str = ""
    warnings: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Return the plan as a two-column table with French labels (for the app and PDF).

        Examples
        --------
        >>> t = compute_cohorts(120, uptake_rate=0.25).to_frame()
        >>> t.loc[0, "Indicateur"], float(t.loc[0, "Valeur"])
        ('Naissances par an (moyenne)', 120.0)
        """
        rows = [
            ("Naissances par an (moyenne)", self.births_per_year),
            ("Naissances par mois", self.births_per_month),
            ("Familles participantes par mois", self.families_per_month),
            ("Familles participantes par an", self.families_per_year),
            ("Familles par fenêtre de naissance", self.families_per_window),
            ("Mois pour réunir un groupe", self.months_to_fill_group),
            ("Groupes pouvant démarrer par an", self.groups_per_year),
            ("Taille d'un groupe dans la fenêtre", self.group_size_within_window),
            ("Durée d'un groupe (mois)", self.group_duration_months),
            ("Groupes simultanés (régime établi)", self.concurrent_groups),
            ("Heures d'animation par mois", self.facilitator_hours_per_month),
            ("Groupes simultanés possibles pour une Maison", self.capacity_concurrent_groups),
            ("Groupes par an possibles pour une Maison", self.capacity_groups_per_year),
            ("Groupes par an réellement animés par la Maison", self.maison_groups_per_year),
            ("Familles accueillies par an par la Maison", self.maison_families_per_year),
            ("Heures d'animation par mois (Maison)", self.maison_facilitator_hours_per_month),
        ]
        return pd.DataFrame(rows, columns=["Indicateur", "Valeur"])


def compute_cohorts(
    births_per_year: float | Sequence[float] | Mapping[Any, float] | pd.Series,
    *,
    uptake_rate: float,
    group_size: int = 10,
    birth_window_months: float = 3.0,
    prenatal_start_month: int | None = 4,
    sessions_per_month: float = 2.0,
    session_hours: float = 1.5,
    programme_months: float = 12.0,
    facilitator_prep_hours_per_session: float = 0.5,
    facilitators_per_session: int = 1,
    facilitators: int = DEFAULT_FACILITATORS_PER_MAISON,
    groups_per_facilitator: int = DEFAULT_GROUPS_PER_FACILITATOR,
) -> CohortPlan:
    """Plan peer groups from the births of a catchment.

    Parameters
    ----------
    births_per_year
        Yearly births of the catchment: one number, or a series of yearly values (list,
        mapping year -> births, pandas Series). Their arithmetic mean is used (each year
        counts the same; missing years (NaN) are left out, never read as 0). With a clear
        downward trend, pass the latest year alone.
    uptake_rate
        Share of families of the catchment expected to join a group, in (0, 1].
    group_size
        Families per group (about 10).
    birth_window_months
        Largest spread of birth dates within a group ("babies of the same age"): 3
        months by default, i.e. a quarter.
    prenatal_start_month
        Month of pregnancy (1-9) in which families join: 4 (the 4th month, when the
        early prenatal interview takes place) means 6 months of prenatal meetings.
        ``None``: groups start at birth.
    sessions_per_month
        Group sessions per month.
    session_hours
        Length of a session (hours).
    programme_months
        Months the group keeps meeting after birth.
    facilitator_prep_hours_per_session
        Preparation, travel and follow-up per session (hours), an assumption to adjust.
    facilitators_per_session
        Facilitators present at each session (co-facilitation: 2).
    facilitators
        Trained facilitators of the Maison (default
        :data:`~diagnosis.settings.DEFAULT_FACILITATORS_PER_MAISON`).
    groups_per_facilitator
        Groups one facilitator runs at the same time (default
        :data:`~diagnosis.settings.DEFAULT_GROUPS_PER_FACILITATOR`, a working assumption
        drawn from the federation's "a few groups at a time"). With co-facilitation
        (``facilitators_per_session=2``) each group takes two facilitators' slots.

    Returns
    -------
    CohortPlan

    Raises
    ------
    InputError
        ``uptake_rate`` outside (0, 1], negative or missing births, non-positive sizes,
        durations or rates, a prenatal start month outside 1-9.

    Examples
    --------
    120 births a year, a quarter of the families join: 10 births and 2.5 families a
    month, 7.5 families per 3-month window, 4 months to gather 10 families, 3 groups a
    year lasting 6 + 12 months, so 4.5 groups at once and 4.5 x 2 x (1.5 + 0.5) = 18
    hours of facilitation a month:

    >>> p = compute_cohorts(120, uptake_rate=0.25)
    >>> p.births_per_month, p.families_per_month, p.families_per_window
    (10.0, 2.5, 7.5)
    >>> p.months_to_fill_group, p.groups_per_year, p.fills_within_window
    (4.0, 3.0, False)
    >>> p.prenatal_months, p.group_duration_months, p.concurrent_groups
    (6, 18.0, 4.5)
    >>> p.facilitator_hours_per_month
    18.0
    >>> print(p.warnings[0])  # doctest: +ELLIPSIS
    Avec 2,5 familles par mois, réunir un groupe de 10 familles prend 4 mois...

    One facilitator holding 3 groups at once can start 3 x 12 / 18 = 2 groups a year,
    fewer than the 3 the catchment could fill: the Maison's capacity binds.

    >>> p.capacity_concurrent_groups, p.capacity_groups_per_year, p.maison_groups_per_year
    (3.0, 2.0, 2.0)
    >>> p.binding, p.maison_families_per_year
    ('capacite', 20.0)
    >>> compute_cohorts(120, uptake_rate=0.25, facilitators=2).binding
    'potentiel'

    A series of yearly births uses its mean:

    >>> compute_cohorts([110, 130, 120], uptake_rate=0.5).births_per_year
    120.0

    See Also
    --------
    guides/implantation.md : cohort arithmetic and its assumptions.
    """
    births, n_years = _mean_births(births_per_year)
    prenatal = _check_options(
        uptake_rate=uptake_rate, group_size=group_size,
        facilitators_per_session=facilitators_per_session, facilitators=facilitators,
        groups_per_facilitator=groups_per_facilitator, birth_window_months=birth_window_months,
        sessions_per_month=sessions_per_month, session_hours=session_hours,
        programme_months=programme_months,
        facilitator_prep_hours_per_session=facilitator_prep_hours_per_session,
        prenatal_start_month=prenatal_start_month)

    uptake = float(uptake_rate)
    per_month = births / 12.0
    fam_month = per_month * uptake
    fam_year = 12.0 * fam_month
    fam_window = fam_month * birth_window_months
    to_fill = group_size / fam_month if fam_month > 0 else math.inf
    groups_year = fam_year / group_size
    duration = prenatal + float(programme_months)
    concurrent = groups_year * duration / 12.0
    hours = concurrent * sessions_per_month * (
        session_hours + facilitator_prep_hours_per_session) * facilitators_per_session
    fills = to_fill <= birth_window_months
    # Each group takes facilitators_per_session of the Maison's facilitator slots.
    cap_now = float(facilitators * groups_per_facilitator) / facilitators_per_session
    cap_year = cap_now * 12.0 / duration
    binding = BINDING_CAPACITY if cap_year < groups_year else BINDING_POTENTIAL
    maison_year = min(groups_year, cap_year)
    maison_now = min(concurrent, cap_now)
    maison_hours = maison_now * sessions_per_month * (
        session_hours + facilitator_prep_hours_per_session) * facilitators_per_session
    binding_text = _binding_sentence(
        binding, groups_year=groups_year, cap_year=cap_year, cap_now=cap_now,
        facilitators=int(facilitators), to_fill=to_fill,
    )

    warnings = _warnings(fam_month=fam_month, fills=fills, group_size=group_size,
                         to_fill=to_fill, birth_window_months=birth_window_months,
                         fam_window=fam_window, groups_year=groups_year)
    return CohortPlan(
        births_per_year=births, n_years=n_years, births_per_month=per_month,
        families_per_month=fam_month, families_per_year=fam_year,
        families_per_window=fam_window, months_to_fill_group=to_fill,
        groups_per_year=groups_year, fills_within_window=bool(fills),
        group_size_within_window=float(min(group_size, fam_window)),
        prenatal_months=prenatal, group_duration_months=duration,
        concurrent_groups=concurrent, facilitator_hours_per_month=hours,
        capacity_concurrent_groups=cap_now, capacity_groups_per_year=cap_year,
        maison_groups_per_year=maison_year, maison_concurrent_groups=maison_now,
        maison_families_per_year=maison_year * group_size,
        maison_facilitator_hours_per_month=maison_hours,
        binding=binding, binding_text=binding_text,
        warnings=tuple(warnings),
        params={
            "uptake_rate": uptake, "group_size": int(group_size),
            "birth_window_months": float(birth_window_months),
            "prenatal_start_month": prenatal_start_month,
            "sessions_per_month": float(sessions_per_month),
            "session_hours": float(session_hours), "programme_months": float(programme_months),
            "facilitator_prep_hours_per_session": float(facilitator_prep_hours_per_session),
            "facilitators_per_session": int(facilitators_per_session),
            "facilitators": int(facilitators),
            "groups_per_facilitator": int(groups_per_facilitator),
        },
    )


def _check_options(
    *, uptake_rate: float, group_size: int, facilitators_per_session: int, facilitators: int,
    groups_per_facilitator: int, birth_window_months: float, sessions_per_month: float,
    session_hours: float, programme_months: float, facilitator_prep_hours_per_session: float,
    prenatal_start_month: int | None,
) -> int:
    """Raise on a bad option of :func:`compute_cohorts`; return the prenatal months."""
    if isinstance(uptake_rate, bool) or not isinstance(uptake_rate, (int, float)) or \
            not (0.0 < float(uptake_rate) <= 1.0):
        raise InputError(
            f"uptake_rate={uptake_rate!r} must be a share in (0, 1] (e.g. 0.25 for a "
            "quarter of the families); 0 or less, or more than 1, is not a share"
        )
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) or \
            group_size < 1:
        raise InputError(f"group_size={group_size!r} must be a whole number of families >= 1")
    if isinstance(facilitators_per_session, bool) or not isinstance(
            facilitators_per_session, (int, np.integer)) or facilitators_per_session < 1:
        raise InputError(f"facilitators_per_session={facilitators_per_session!r} must be a "
                         "whole number >= 1")
    for name, value in (("facilitators", facilitators),
                        ("groups_per_facilitator", groups_per_facilitator)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name}={value!r} must be a whole number >= 1")
    _positive(birth_window_months, "birth_window_months")
    _positive(sessions_per_month, "sessions_per_month")
    _positive(session_hours, "session_hours")
    _positive(programme_months, "programme_months")
    _non_negative(facilitator_prep_hours_per_session, "facilitator_prep_hours_per_session")
    if prenatal_start_month is None:
        prenatal = 0
    elif isinstance(prenatal_start_month, bool) or not isinstance(
            prenatal_start_month, (int, np.integer)) or not 1 <= prenatal_start_month <= 9:
        raise InputError(
            f"prenatal_start_month={prenatal_start_month!r} must be a month of pregnancy "
            "from 1 to 9, or None for groups that start at birth"
        )
    else:
        prenatal = PREGNANCY_MONTHS - int(prenatal_start_month) + 1
    return prenatal


def _warnings(*, fam_month: float, fills: bool, group_size: int, to_fill: float,
              birth_window_months: float, fam_window: float, groups_year: float) -> list[str]:
    """French warnings: no births, a group that does not fill in its window, < 1 a year."""
    warnings: list[str] = []
    if fam_month <= 0:
        warnings.append(
            "Aucune naissance dans la zone desservie : aucun groupe ne peut être constitué. "
            "Vérifiez la zone (temps de trajet) ou les naissances."
        )
    elif not fills:
        warnings.append(
            f"Avec {_fr(fam_month)} familles par mois, réunir un groupe de {group_size} "
            f"familles prend {_fr(to_fill)} mois, plus que la fenêtre de naissance de "
            f"{_fr(birth_window_months)} mois : la zone ne remplit pas un groupe dans ce "
            f"délai. Pistes : des groupes plus petits (environ "
            f"{max(1, round(fam_window))} familles), "
            "une fenêtre plus large (bébés d'âges plus éloignés), une zone desservie plus "
            "grande ou une meilleure mobilisation des familles."
        )
    if 0 < groups_year < 1:
        warnings.append(
            f"Moins d'un groupe complet par an ({_fr(groups_year)}) : le rythme d'ouverture "
            "des groupes sera irrégulier."
        )
    return warnings


def _binding_sentence(binding: str, *, groups_year: float, cap_year: float, cap_now: float,
                      facilitators: int, to_fill: float) -> str:
    """French sentence saying whether the catchment or the Maison limits the groups."""
    who = "une animatrice ou un animateur" if facilitators == 1 else \
        f"{facilitators} animatrices ou animateurs"
    fill = "" if math.isinf(to_fill) else f" ; un groupe se remplit en {_fr(to_fill)} mois"
    if binding == BINDING_CAPACITY:
        return (
            f"La capacité de la Maison limite les groupes : la zone desservie pourrait en "
            f"remplir {_fr(groups_year)} par an, mais {who} ne peu"
            f"{'t' if facilitators == 1 else 'vent'} en mener que {_fr(cap_now)} à la fois, "
            f"soit {_fr(cap_year)} nouveaux groupes par an{fill}. Pour servir toute la zone : "
            "plus d'animation, ou plusieurs Maisons."
        )
    return (
        f"Les naissances de la zone desservie limitent les groupes : {_fr(groups_year)} "
        f"groupes par an, sous la capacité de la Maison ({_fr(cap_year)} par an, "
        f"{_fr(cap_now)} à la fois avec {who}){fill}."
    )


def _mean_births(value: Any) -> tuple[float, int]:
    if isinstance(value, Mapping):
        values = list(value.values())
    elif isinstance(value, pd.Series):
        values = value.tolist()
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        values = [value]
    elif isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        values = list(np.asarray(value, dtype=object).ravel())
    else:
        raise InputError(
            f"births_per_year={value!r} must be a number or a series of yearly births"
        )
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"births_per_year holds values that are not numbers: {values!r}"
        ) from None
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        raise InputError("births_per_year has no value (all missing); give yearly births")
    if (~np.isfinite(arr)).any() or (arr < 0).any():
        raise InputError(f"births_per_year must be finite and >= 0; got {values!r}")
    return float(arr.mean()), int(arr.size)


def _positive(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(float(value)) and float(value) > 0):
        raise InputError(f"{name}={value!r} must be a number > 0")


def _non_negative(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(float(value)) and float(value) >= 0):
        raise InputError(f"{name}={value!r} must be a number >= 0")


def _fr(value: float) -> str:
    """Short French number: ``2.5 -> '2,5'``, ``4.0 -> '4'``."""
    return f"{value:.3g}".replace(".", ",")
