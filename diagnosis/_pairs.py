"""Travel-time pairs as the access computations read them: checked, as CSR, per row.

Every access function accepts dense minutes, a sparse matrix of stored pairs or a
:class:`~diagnosis.travel.TravelTimes`; these helpers turn any of them into checked
arrays (errors name ``travel_minutes``) and reduce stored pairs row by row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from diagnosis.errors import InputError
from diagnosis.travel import TravelTimes


def _as_minutes(
    values: Any, *, allow_empty_columns: bool = False, check_values: bool = True
) -> np.ndarray:
    """Return a 2-D dense float matrix of minutes or raise naming ``travel_minutes``.

    With ``check_values=False`` the caller checks NaN and negative values itself.
    """
    arr = values.minutes if isinstance(values, TravelTimes) else values
    try:
        minutes = np.asarray(arr, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"travel_minutes must be a 2-D array of minutes; got {arr!r}") from None
    _check_shape(minutes.shape, allow_empty_columns)
    if check_values:
        _check_minutes(minutes)
    return np.ascontiguousarray(minutes)


def _check_shape(shape: tuple[int, ...], allow_empty_columns: bool) -> None:
    if len(shape) != 2:
        raise InputError(f"travel_minutes must be 2-D (origins × facilities); got shape "
                         f"{shape!r}")
    if shape[0] == 0 or (shape[1] == 0 and not allow_empty_columns):
        raise InputError(f"travel_minutes is empty (shape {shape!r}); give at least "
                         "one origin and one facility")


def _sparse_pairs(
    matrix: Any, *, allow_empty_columns: bool = False
) -> tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray]:
    """Stored entries of a sparse matrix as ``(shape, rows, cols, minutes)``, checked."""
    coo = sp.coo_array(matrix)
    shape = (int(coo.shape[0]), int(coo.shape[1]))
    _check_shape(shape, allow_empty_columns)
    values = np.asarray(coo.data, dtype=float)
    _check_minutes(values)
    return shape, np.asarray(coo.row, dtype=np.int64), np.asarray(coo.col, dtype=np.int64), \
        values


def _pairs_csr(travel_minutes: Any, top: float, *,
               allow_empty_columns: bool = False) -> sp.csr_array:
    """Travel-time pairs as a canonical CSR array of minutes, checked in one pass.

    A sparse input (or a :class:`~diagnosis.travel.TravelTimes`) keeps its stored
    pairs, those past ``top`` included (every decay weighs them 0); a dense one keeps the
    cells with ``t <= top``. The minutes of a TravelTimes were checked when it was built
    (no NaN, none negative: :class:`~diagnosis.travel.TravelTimes` raises otherwise), so
    only foreign inputs are checked here.
    """
    checked = isinstance(travel_minutes, TravelTimes)
    source = travel_minutes.within if checked else travel_minutes
    if not sp.issparse(source):
        shape, rows, cols, values = _pairs_within(source, top,
                                                  allow_empty_columns=allow_empty_columns)
        return sp.csr_array((values, (rows, cols)), shape=shape)
    csr = source if isinstance(source, sp.csr_array) else sp.csr_array(source)
    _check_shape((int(csr.shape[0]), int(csr.shape[1])), allow_empty_columns)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    if csr.dtype != np.float64:
        csr = csr.astype(float)
    if not checked and csr.nnz and not csr.data.min() >= 0:  # one pass: NaN or < 0
        _check_minutes(csr.data)
    return csr


def _per_row(ufunc: np.ufunc, values: np.ndarray, indptr: np.ndarray, *, empty: float,
             dtype: Any = None) -> np.ndarray:
    """``ufunc`` reduced over each CSR row's ``values`` (``empty`` for a row without any).

    One ``reduceat`` pass over the stored values; a padding value past the end lets
    trailing empty rows index it.

    Examples
    --------
    >>> _per_row(np.add, np.array([1, 2, 3]), np.array([0, 0, 2, 2, 3]), empty=0).tolist()
    [0, 3, 0, 3]
    """
    n = indptr.shape[0] - 1
    out_type = np.dtype(values.dtype if dtype is None else dtype)
    if values.shape[0] == 0:
        return np.full(n, empty, dtype=out_type)
    padded = np.append(values, np.array(empty, dtype=values.dtype))
    out = ufunc.reduceat(padded, indptr[:-1], dtype=out_type)
    out[indptr[1:] == indptr[:-1]] = empty
    return out


def _pairs_within(
    travel_minutes: Any, top: float, *, allow_empty_columns: bool = False
) -> tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray]:
    """Pairs with ``t <= top`` as ``(shape, rows, cols, minutes)`` from any accepted input."""
    source = travel_minutes.within if isinstance(travel_minutes, TravelTimes) \
        else travel_minutes
    if sp.issparse(source):
        shape, rows, cols, values = _sparse_pairs(source,
                                                  allow_empty_columns=allow_empty_columns)
        keep = values <= top
        return shape, rows[keep], cols[keep], values[keep]
    minutes = _as_minutes(source, allow_empty_columns=allow_empty_columns, check_values=False)
    n, m = minutes.shape
    # One pass over the matrix: cells within the catchment, plus NaN cells (not > top)
    # so that the value check only looks at the few selected cells.
    flat = np.flatnonzero(~(minutes > top))
    values = minutes.ravel()[flat]
    _check_minutes(values)
    rows, cols = np.divmod(flat, m)
    return (n, m), rows, cols, values


def _check_minutes(minutes: np.ndarray) -> None:
    """Raise naming ``travel_minutes`` if it holds NaN or negative times."""
    if not (minutes >= 0).all():  # one pass catches NaN and negative times
        if np.isnan(minutes).any():
            raise InputError("travel_minutes holds NaN; use np.inf for pairs out of reach")
        raise InputError(f"travel_minutes holds negative times (min {np.min(minutes)!r}); "
                         "times must be >= 0")


def _as_vector(values: Any, name: str, length: int) -> np.ndarray:
    """Return a 1-D float vector of ``length`` or raise naming ``name``."""
    try:
        vec = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numbers; got {values!r}") from None
    if vec.shape != (length,):
        raise InputError(f"{name} must have {length} values (one per row/column of "
                         f"travel_minutes); got shape {vec.shape!r}")
    return vec
