"""The study's day and hour, read and written in French (no heavy import).

The transit engine (:mod:`diagnosis.travel.transit`) times a trip on a given day at a
given hour; every command and page reads those options (``--date``, ``--depart``) when a
study's parameters are checked, so they live here, without the routing libraries.
"""

from __future__ import annotations

import datetime as dt

from diagnosis.errors import InputError

#: Default departure (seconds since midnight): 9 h 30, the hour of a morning group.
DEFAULT_DEPART_S = 9 * 3600 + 30 * 60

_DAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS_FR = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
              "septembre", "octobre", "novembre", "décembre")

#: School holidays to avoid when choosing the default study date: the union over zones
#: A, B and C of the usual French periods (month, day) -> (month, day), inclusive. An
#: approximation of the published calendar: give ``--date`` for an exact day.
SCHOOL_HOLIDAYS: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
    ((10, 17), (11, 3)),   # Toussaint
    ((12, 19), (12, 31)),  # Noël
    ((1, 1), (1, 4)),
    ((2, 6), (3, 9)),      # hiver, toutes zones
    ((4, 3), (5, 4)),      # printemps, toutes zones
    ((5, 13), (5, 17)),    # pont de l'Ascension
    ((7, 4), (8, 31)),     # été
)


def french_date(day: dt.date) -> str:
    """``mardi 3 mars 2026``.

    Examples
    --------
    >>> french_date(dt.date(2026, 3, 3))
    'mardi 3 mars 2026'
    """
    return f"{_DAYS_FR[day.weekday()]} {day.day} {_MONTHS_FR[day.month - 1]} {day.year}"


def french_hour(seconds: int) -> str:
    """``9 h 30``.

    Examples
    --------
    >>> french_hour(34200), french_hour(36000)
    ('9 h 30', '10 h')
    """
    h, m = divmod(int(seconds) // 60, 60)
    return f"{h} h {m:02d}" if m else f"{h} h"


def parse_depart(text: str) -> int:
    """Seconds since midnight of ``"09:30"`` / ``"9h30"``; French error otherwise.

    Examples
    --------
    >>> parse_depart("09:30"), parse_depart("9h30"), parse_depart("14 h")
    (34200, 34200, 50400)
    """
    import re

    m = re.fullmatch(r"\s*(\d{1,2})\s*(?:[:h]\s*(\d{2})?)?\s*", str(text))
    if not m or int(m.group(1)) > 23:
        raise InputError(f"heure de départ {text!r} illisible : écrivez par exemple 09:30",
                         argument="--depart", value=text)
    return int(m.group(1)) * 3600 + int(m.group(2) or 0) * 60


def parse_study_date(text: str) -> dt.date:
    """The study date of ``"2026-03-03"`` (or ``"03/03/2026"``); French error otherwise.

    Examples
    --------
    >>> parse_study_date("2026-03-03"), parse_study_date("03/03/2026")
    (datetime.date(2026, 3, 3), datetime.date(2026, 3, 3))
    """
    value = str(text).strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise InputError(f"date {text!r} illisible : écrivez par exemple 2026-03-03",
                     argument="--date", value=text)


def in_school_holidays(day: dt.date) -> bool:
    """Whether ``day`` falls in :data:`SCHOOL_HOLIDAYS` (approximate, all zones)."""
    md = (day.month, day.day)
    return any(a <= md <= b for a, b in SCHOOL_HOLIDAYS)


def next_school_tuesday(today: dt.date) -> dt.date:
    """The next Tuesday (after ``today``) outside school holidays: the default study date.

    Examples
    --------
    >>> next_school_tuesday(dt.date(2026, 12, 5))
    datetime.date(2026, 12, 8)
    >>> next_school_tuesday(dt.date(2026, 12, 16))  # Christmas holidays are skipped
    datetime.date(2027, 1, 5)
    """
    day = today + dt.timedelta(days=1)
    while day.weekday() != 1 or in_school_holidays(day):
        day += dt.timedelta(days=1)
    return day
