"""Project errors: messages name the argument, show the bad value and say what to do."""

from __future__ import annotations


class MaillageError(Exception):
    """Base class of every error Maillage raises on purpose."""


class InputError(MaillageError, ValueError):
    """Bad input from the user or the caller (argument, file, row, field)."""


class SourceError(MaillageError, RuntimeError):
    """A data source failed or returned something unusable."""


class MissingDataError(MaillageError, LookupError):
    """The territory resolves, but the data it needs is not loaded."""
