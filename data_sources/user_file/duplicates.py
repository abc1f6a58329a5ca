"""Probable duplicates among the imported facilities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd

from data_sources.user_file.columns import _fold_all
from data_sources.user_file.report import _empty_table
from diagnosis.settings import (
    DUPLICATE_DISTANCE_M,
)


def find_duplicates(
    facilities: gpd.GeoDataFrame,
    *,
    rows: Sequence[int] | np.ndarray | None = None,
    file_ids: Sequence[str] | None = None,
    distance_m: float = DUPLICATE_DISTANCE_M,
) -> pd.DataFrame:
    """Flag probable duplicates: same type and same name nearby, or same source id.

    Names are compared folded (no accents, case or punctuation); distances are
    great-circle metres between WGS84 points (valid overseas too). Each duplicate points
    to the first row of its group; nothing is removed.

    Parameters
    ----------
    facilities
        Schema facilities (``type``, ``name``, geometry in EPSG:4326).
    rows
        Row number of each facility as the user sees it (default: 1, 2, …).
    file_ids
        The file's own id of each facility (``""`` when none); equal non-empty ids of the
        same type are duplicates whatever the distance.
    distance_m
        Largest distance between two same-named facilities to call them duplicates.

    Returns
    -------
    pandas.DataFrame
        Columns ``row``, ``name``, ``duplicate_of_row``, ``reason`` (French).
    """
    cols = ["row", "name", "duplicate_of_row", "reason"]
    n = len(facilities)
    if n == 0:
        return _empty_table(cols)
    rows_arr = np.asarray(rows if rows is not None else range(1, n + 1), dtype=np.int64)
    ids = list(file_ids) if file_ids is not None else [""] * n
    lon = np.radians(facilities.geometry.x.to_numpy(dtype=float))
    lat = np.radians(facilities.geometry.y.to_numpy(dtype=float))
    types = facilities["type"].to_numpy(dtype=object)
    if pd.api.types.infer_dtype(types, skipna=False) != "string":  # not schema text
        types = facilities["type"].astype(str).to_numpy(dtype=object)
    # names folded once per distinct name (files repeat names: « Crèche municipale »)
    name_of_row, distinct_names = pd.factorize(facilities["name"].to_numpy(dtype=object))
    key_of_name, distinct_keys = pd.factorize(
        np.asarray(_fold_all(list(distinct_names), " "), dtype=object))
    key_of_row = key_of_name[name_of_row]
    type_of_row, _ = pd.factorize(types)
    found: dict[int, tuple[int, str]] = {}
    # one search over every row, each (type, name) group apart from the others; groups
    # numbered in order of first appearance (as a groupby's ngroup without sorting)
    groups, _ = pd.factorize(type_of_row.astype(np.int64) * max(len(distinct_keys), 1)
                             + key_of_row)
    # a row alone in its group has no earlier row to repeat: only the groups of two rows
    # or more are searched (a file of distinct names costs nothing here)
    shared = np.flatnonzero(np.bincount(groups)[groups] > 1)
    pairs = _earliest_near(lon[shared], lat[shared], distance_m, groups=groups[shared])
    later = shared[np.array([i for i, _ in pairs], dtype=np.int64)]
    first = shared[np.array([j for _, j in pairs], dtype=np.int64)]
    metres = _haversine_m(lon[later], lat[later], lon[first], lat[first])
    for i, j, d in zip(later.tolist(), first.tolist(), metres.tolist(), strict=True):
        found[i] = (j, f"même type et même nom, à {d:.0f} m")
    frame = pd.DataFrame({"type": types, "id": ids}) if any(ids) else \
        pd.DataFrame({"type": [], "id": []}, dtype=object)
    with_id = frame[frame["id"].ne("")]
    for _, id_group in with_id.groupby(["type", "id"], sort=False).indices.items():
        positions = with_id.index.to_numpy()[np.asarray(id_group)]
        for j in positions[1:].tolist():
            reason = f"même type et même identifiant {ids[j]!r}"
            if j in found:
                reason = f"{reason} ; {found[j][1]}"
            found[j] = (int(positions[0]), reason)
    order = sorted(found)
    all_names = facilities["name"].to_numpy(dtype=object)
    return pd.DataFrame({
        "row": pd.Series(rows_arr[order], dtype="int64"),
        "name": pd.Series(all_names[order], dtype=object),
        "duplicate_of_row": pd.Series(rows_arr[[found[j][0] for j in order]], dtype="int64"),
        "reason": pd.Series([found[j][1] for j in order], dtype=object),
    })


def _earliest_near(
    lon: np.ndarray, lat: np.ndarray, distance_m: float, *,
    groups: np.ndarray | None = None,
) -> list[tuple[int, int]]:
    """For each point, the first earlier point of its group within ``distance_m`` (radians in).

    Near-linear: identical positions of a group are merged first (a shared placeholder
    position, such as a town hall, costs nothing), then the pairs of distinct positions
    within reach on the unit sphere are found (:func:`_pairs_within`). The groups (e.g.
    same type and name) are searched together: each group sits on its own level of a
    fourth coordinate, farther from the others than any two points of the sphere. The
    earliest point near ``j`` is the smallest index among the positions near ``j``'s
    position, when it is smaller than ``j``.

    Returns
    -------
    list of (int, int)
        ``(later, first)`` index pairs into the arrays, ``first < later``.

    Examples
    --------
    >>> import numpy as np
    >>> lon = np.radians([-2.0, -2.0001, 5.0, -2.0, -2.0])
    >>> lat = np.radians([47.0, 47.0, 45.0, 47.0, 47.0])
    >>> _earliest_near(lon, lat, 50.0)
    [(1, 0), (3, 0), (4, 0)]
    >>> _earliest_near(lon, lat, 50.0, groups=np.array([0, 0, 0, 1, 1]))
    [(1, 0), (4, 3)]
    """
    n = len(lon)
    xyz = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    level = np.zeros(n) if groups is None else np.asarray(groups, dtype=float) * 8.0
    uniq, inverse = _distinct_rows(np.column_stack([np.round(xyz, 12), level]))
    first_of = np.full(len(uniq), n, dtype=np.int64)
    np.minimum.at(first_of, inverse, np.arange(n))
    radius = 2.0 * np.sin(min(distance_m / _EARTH_M, np.pi) / 2.0) * (1 + 1e-9)
    pairs = _pairs_within(uniq, radius)
    earliest = first_of.copy()
    np.minimum.at(earliest, pairs[:, 0], first_of[pairs[:, 1]])
    np.minimum.at(earliest, pairs[:, 1], first_of[pairs[:, 0]])
    cand = earliest[inverse]
    later = np.flatnonzero(cand < np.arange(n))
    return [(int(k), int(cand[k])) for k in later]


#: Most distinct positions of one group compared pair by pair (numpy); a larger group
#: (a file of many « Crèche sans nom ») is searched with a k-d tree.
_PAIRWISE_MAX = 64
#: Pairs compared in one numpy step.
_PAIRS_PER_STEP = 500_000


def _pairs_within(points: np.ndarray, radius: float) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, of rows of ``points`` at most ``radius`` apart.

    The pairs of a k-d tree's ``query_pairs`` (the same squared distance, summed in the
    same order, compared with ``radius²``), found without scipy (0.2 s of imports) in
    the usual file: ``points`` are (x, y, z, level) rows and only rows of one level (a
    group) can be within reach; a group of at most :data:`_PAIRWISE_MAX` rows is
    compared pair by pair, the groups of one size together, a larger group by a k-d tree.

    Examples
    --------
    >>> pts = np.array([[0.0, 0, 0, 0], [0.5, 0, 0, 0], [3.0, 0, 0, 0], [0.1, 0, 0, 8]])
    >>> _pairs_within(pts, 1.0).tolist()
    [[0, 1]]
    """
    level = points[:, 3]
    order = np.argsort(level, kind="stable")
    ordered = level[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(order) else \
        np.zeros(0, dtype=np.int64)
    sizes = np.diff(np.r_[starts, len(order)])
    bound = radius ** 2
    found = [np.zeros((0, 2), dtype=np.int64)]
    for size in np.unique(sizes[sizes > 1]).tolist():
        firsts = starts[sizes == size]
        if size > _PAIRWISE_MAX:  # a large group: a k-d tree on its rows alone
            from scipy.spatial import cKDTree

            for first in firsts.tolist():
                rows = np.sort(order[first:first + size])
                pairs = cKDTree(points[rows]).query_pairs(r=radius, output_type="ndarray")
                found.append(rows[pairs.reshape(-1, 2)])
            continue
        a, b = np.triu_indices(size, 1)
        step = max(1, _PAIRS_PER_STEP // len(a))
        for k in range(0, len(firsts), step):
            members = order[firsts[k:k + step, None] + np.arange(size)]
            i, j = members[:, a].ravel(), members[:, b].ravel()
            diff = points[i] - points[j]
            squared = diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1]
            squared = squared + diff[:, 2] * diff[:, 2]
            squared = squared + diff[:, 3] * diff[:, 3]
            near = squared <= bound
            found.append(np.column_stack([np.minimum(i[near], j[near]),
                                          np.maximum(i[near], j[near])]))
    return np.concatenate(found).astype(np.int64, copy=False)


def _distinct_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a 2-D float array and the number of each row among them.

    As ``np.unique(values, axis=0, return_inverse=True)`` (the same rows, in the same
    order), by one lexicographic sort of the columns rather than a sort of row records.

    Examples
    --------
    >>> uniq, inverse = _distinct_rows(np.array([[1.0, 2.0], [0.0, 5.0], [1.0, 2.0]]))
    >>> uniq.tolist(), inverse.tolist()
    ([[0.0, 5.0], [1.0, 2.0]], [1, 0, 1])
    """
    n = len(values)
    if n == 0:
        return values[:0], np.zeros(0, dtype=np.int64)
    order = np.lexsort(values.T[::-1])
    ordered = values[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return ordered[starts], inverse


_EARTH_M = 6_371_008.8


def _haversine_m(
    lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in metres between broadcastable arrays of points (radians in)."""
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return cast("np.ndarray", 2 * _EARTH_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))
