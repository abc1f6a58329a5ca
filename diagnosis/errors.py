"""Project errors: messages name the argument, show the bad value and say what to do."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


class MaillageError(Exception):
    """Base class of every error Maillage raises on purpose.

    Besides the message, an error may carry structured fields so that the app and the
    command line render it in French without parsing the text:

    Attributes
    ----------
    argument
        The option, argument, file or column at fault (``"max_minutes"``, ``"--site"``).
    value
        The bad value.
    hint
        What to do, or an example of a good value.
    candidates
        Accepted values, or the closest known ones.
    fr_message
        A French message for the user, when the raiser wrote one.

    Examples
    --------
    >>> e = InputError("k=0 must be >= 1", argument="k", value=0, hint="1")
    >>> e.argument, e.value, str(e)
    ('k', 0, 'k=0 must be >= 1')
    >>> e.fr
    'valeur invalide pour k : 0 (exemple : 1). Détail : k=0 must be >= 1'
    """

    def __init__(self, message: str = "", *, argument: str | None = None,
                 value: Any = None, hint: str | None = None,
                 candidates: Sequence[Any] | None = None, fr: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument
        self.value = value
        self.hint = hint
        self.candidates = tuple(candidates) if candidates is not None else ()
        self.fr_message = fr

    @property
    def fr(self) -> str:
        """The message in French: the raiser's own, else built from the fields."""
        if self.fr_message:
            return self.fr_message
        if self.argument is None:
            return str(self)
        text = f"valeur invalide pour {self.argument} : {self.value!r}"
        if self.candidates:
            text += " ; valeurs possibles : " + ", ".join(str(c) for c in self.candidates[:10])
        if self.hint:
            text += f" (exemple : {self.hint})"
        return f"{text}. Détail : {self}"


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
        raise InputError(f"{name} must be a positive number; got {value!r}",
                         argument=name, value=value) from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be a positive finite number; got {value!r}",
                         argument=name, value=value)
    return v
