"""Probable duplicates among the imported facilities."""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from data_sources.user_file.columns import _fold, _map_unique
from data_sources.user_file.report import _empty_table
from diagnosis.settings import (
    DUPLICATE_DISTANCE_M,
)


def find_duplicates(
    facilities: gpd.GeoDataFrame,
    *,
    rows: Sequence[int] | None = None,
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
    types = facilities["type"].astype(str).to_numpy()
    keys = _map_unique(facilities["name"], lambda s: _fold(s, " ")).to_numpy()
    found: dict[int, tuple[int, str]] = {}
    frame = pd.DataFrame({"type": types, "key": keys, "id": ids})
    for _, group in frame.groupby(["type", "key"], sort=False).indices.items():
        idx = np.asarray(group, dtype=np.int64)
        if len(idx) < 2:
            continue
        for start in range(1, len(idx), 1000):  # chunks bound memory for huge groups
            later = idx[start:start + 1000]
            d = _haversine_m(lon[later][:, None], lat[later][:, None],
                             lon[idx][None, :], lat[idx][None, :])
            earlier = np.arange(len(idx))[None, :] < np.arange(start, start + len(later))[:, None]
            near = (d <= distance_m) & earlier
            for k in np.flatnonzero(near.any(axis=1)):
                first = int(near[k].argmax())
                found[int(later[k])] = (int(idx[first]),
                                        f"même type et même nom, à {d[k, first]:.0f} m")
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


def _haversine_m(
    lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in metres between broadcastable arrays of points (radians in)."""
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
