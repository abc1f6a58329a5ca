r"""French formatting of numbers, shares, minutes, distances and missing values.

The one module the app, the command line, the maps and the PDF use to print a value, so
that a figure reads the same everywhere: narrow no-break space for thousands, decimal
comma, one mark for an unknown value (:data:`UNKNOWN`) and one for a value covered by the
statistical secret (:data:`SECRET`).

Examples
--------
>>> fr_number(14582), fr_minutes(18.849380290153643), fr_km(12345.0)
('14\u202f582', '19\xa0min', '12,3\xa0km')
"""

from __future__ import annotations

import math
from typing import Any

#: Mark of a value that is not known (not loaded, not computed).
UNKNOWN = "—"
#: Mark of a value INSEE does not publish (statistical secret).
SECRET = "secret stat."


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def fr_number(value: Any, *, decimals: int = 0) -> str:
    r"""French number: narrow no-break space for thousands, decimal comma, ``—`` if missing.

    Examples
    --------
    >>> fr_number(14582), fr_number(2.456, decimals=1), fr_number(float("nan"))
    ('14\u202f582', '2,5', '—')
    >>> fr_number("s")
    's'
    """
    if value is None or str(value) == "<NA>":
        return UNKNOWN
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return UNKNOWN
    if math.isinf(v):
        return "∞"
    text = f"{v:,.{decimals}f}"
    return text.replace(",", "\u202f").replace(".", ",")


def fr_percent(share: Any, *, decimals: int = 0) -> str:
    r"""A share (0–1) as a French percentage.

    Examples
    --------
    >>> fr_percent(0.2408), fr_percent(None), fr_percent(0.155, decimals=1)
    ('24\xa0%', '—', '15,5\xa0%')
    """
    v = _float(share)
    if v is None:
        return UNKNOWN
    return f"{fr_number(100 * v, decimals=decimals)}\u00a0%"


def fr_minutes(minutes: Any, *, decimals: int = 0) -> str:
    r"""Minutes, rounded (``∞`` beyond the routing cutoff is « hors de portée »).

    Examples
    --------
    >>> fr_minutes(7.6), fr_minutes(float("inf")), fr_minutes(None)
    ('8\xa0min', 'hors de portée', '—')
    """
    v = _float(minutes)
    if v is None:
        return UNKNOWN
    if math.isinf(v):
        return "hors de portée"
    return f"{fr_number(v, decimals=decimals)}\u00a0min"


def fr_km(metres: Any, *, decimals: int = 1) -> str:
    r"""A distance in metres written in km (metres under 1 km).

    Examples
    --------
    >>> fr_km(850), fr_km(12345.0), fr_km(float("nan"))
    ('850\xa0m', '12,3\xa0km', '—')
    """
    v = _float(metres)
    if v is None or math.isinf(v):
        return UNKNOWN
    if abs(v) < 1000:
        return f"{fr_number(v)}\u00a0m"
    return f"{fr_number(v / 1000, decimals=decimals)}\u00a0km"


def fr_decimal(value: float) -> str:
    """A short number as typed (``2.5`` → ``2,5``, ``20.0`` → ``20``), for sentences.

    Examples
    --------
    >>> fr_decimal(2.5), fr_decimal(20.0)
    ('2,5', '20')
    """
    return f"{value:g}".replace(".", ",")


def fr_value(value: Any, *, secret: bool = False, decimals: int = 0) -> str:
    """A value for a table cell: the number, or the secret or unknown mark.

    Examples
    --------
    >>> fr_value(None, secret=True), fr_value(None), fr_value(3.0)
    ('secret stat.', '—', '3')
    """
    if _float(value) is None and not isinstance(value, str):
        return SECRET if secret else UNKNOWN
    return fr_number(value, decimals=decimals)


#: What is printed for a count or share the loaded sources do not know (never 0).
NOT_KNOWN = "non connu"
NOT_KNOWN_F = "non connue"


def fr_known(value: Any, *, status: str, bound: str = "lower", total: Any = None,
             percent: bool = False, feminine: bool = False, decimals: int = 0) -> str:
    r"""A count or share printed as far as the loaded sources know it.

    One rule for every output: the figure is printed as is only when a source listing
    the facility type completely was loaded (``status`` ``"complete"``). With a partial
    source (``"partial"``) a count of known facilities is a lower bound (« ≥ 3 ») and a
    count of communes *without* one an upper bound (``bound="upper"``: « ≤ 8 »); a
    bound that says nothing (≥ 0, or ≤ all ``total`` communes) and an unknown
    ``status`` give « non connu(e) ».

    Parameters
    ----------
    value
        The figure computed from the loaded data (``None``/NaN: not known).
    status
        ``"complete"``, ``"partial"`` or ``"unknown"`` (see
        :func:`diagnosis.overview.facility_coverage`).
    bound
        ``"lower"`` (counts of what exists, births within reach) or ``"upper"``
        (communes without).
    total
        For ``bound="upper"``: the largest possible value (the number of communes).
    percent
        ``value`` is a share (0-1) printed as a percentage.
    feminine
        « non connue » rather than « non connu ».
    decimals
        Decimals of the number.

    Examples
    --------
    >>> fr_known(0, status="complete"), fr_known(0, status="unknown")
    ('0', 'non connu')
    >>> fr_known(3, status="partial"), fr_known(0, status="partial", feminine=True)
    ('≥\xa03', 'non connue')
    >>> fr_known(8, status="partial", bound="upper", total=9)
    '≤\xa08'
    >>> fr_known(9, status="partial", bound="upper", total=9)
    'non connu'
    >>> fr_known(0.24, status="partial", percent=True, feminine=True)
    '≥\xa024\xa0%'
    """
    missing = NOT_KNOWN_F if feminine else NOT_KNOWN
    v = _float(value)
    if v is None or status not in ("complete", "partial"):
        return missing

    def text(x: float) -> str:
        return fr_percent(x, decimals=decimals) if percent else fr_number(x, decimals=decimals)

    if status == "complete":
        return text(v)
    if bound == "upper":
        top = _float(total)
        return missing if top is None or v >= top else f"≤\u00a0{text(v)}"
    return f"≥\u00a0{text(v)}" if v > 0 else missing


def fr_out_of(known: int, total: int) -> str:
    """« sur N communes connues sur M » when a commune is missing, else ``""``.

    Examples
    --------
    >>> fr_out_of(9, 9)
    ''
    >>> fr_out_of(8, 9)
    ' (sur 8 communes connues sur 9)'
    """
    if known >= total:
        return ""
    return f" (sur {fr_number(known)} commune{'s' if known > 1 else ''} connue" \
           f"{'s' if known > 1 else ''} sur {fr_number(total)})"
