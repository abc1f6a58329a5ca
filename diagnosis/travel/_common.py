"""Shared plumbing of the travel engines: argument checks and number formatting."""

from __future__ import annotations

from typing import Any

import numpy as np

from diagnosis.errors import InputError

#: Largest (sources x nodes) block a single Dijkstra call, or (origins x destinations)
#: block a crow-fly chunk, may hold (float64 cells): 2 M cells = 16 MB, small enough to
#: stay near the CPU caches.
CHUNK_CELLS = 2_000_000


def as_xy(values: Any, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """Return ``values`` as a finite ``(n, 2)`` float array or raise naming ``name``."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an (n, 2) array of x/y metres; got {values!r}") from None
    if arr.ndim == 2 and arr.shape[0] == 0:
        arr = arr.reshape(0, 2) if arr.size == 0 else arr
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(
            f"{name} must be an (n, 2) array of x/y metres in EPSG:2154; got shape {arr.shape!r}"
        )
    if arr.shape[0] == 0 and not allow_empty:
        raise InputError(f"{name} is empty; give at least one point")
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise InputError(
            f"{name} has a non-finite coordinate at row {row}: {arr[row].tolist()!r}; "
            "drop or geocode that point"
        )
    return arr




def fr_number(value: float) -> str:
    """Format a number the French way (decimal comma, no useless zeros).

    Examples
    --------
    >>> fr_number(1.3), fr_number(40.0)
    ('1,3', '40')
    """
    return f"{value:g}".replace(".", ",")
