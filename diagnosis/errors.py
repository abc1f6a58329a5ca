"""Project errors: messages name the argument, show the bad value and say what to do."""

from __future__ import annotations

import math


class MaillageError(Exception):
    """Base class of every error Maillage raises on purpose."""


class InputError(MaillageError, ValueError):
    """Bad input from the user or the caller (argument, file, row, field)."""


class SourceError(MaillageError, RuntimeError):
    """A data source failed or returned something unusable."""


class MissingDataError(MaillageError, LookupError):
    """The territory resolves, but the data it needs is not loaded."""


def check_positive(value: object, name: str) -> float:
    """Return ``value`` as a finite float > 0, or raise :class:`InputError` naming ``name``.

    Examples
    --------
    >>> check_positive("20", "max_minutes")
    20.0
    >>> check_positive(0, "max_minutes")
    Traceback (most recent call last):
    ...
    diagnosis.errors.InputError: max_minutes must be a positive finite number; got 0
    """
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number; got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be a positive finite number; got {value!r}")
    return v
