"""Who loses access without a car: the same sites by car, with a pushchair, by transit.

:func:`compare_modes` times the trips from every commune (its town hall) to each site
with several engines (a :class:`~diagnosis.travel.engines.Travel` per mode) and says,
per site and mode, how many births live within the threshold, and which communes within
reach by car are out of reach in that mode. A pure function of points and engines; the
pipeline calls it, the report and the CLI print its table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.errors import InputError, check_positive
from diagnosis.settings import METRIC_CRS
from diagnosis.travel.engines import Travel

#: Columns of :attr:`ModeComparison.table`.
COLUMNS: tuple[str, ...] = ("site_id", "site", "mode", "label", "births_within",
                            "share_births_within", "communes_within", "communes_lost")


@dataclass(frozen=True, eq=False)
class ModeComparison:
    """Access to the same sites in several modes.

    Attributes
    ----------
    table
        One row per site and mode (:data:`COLUMNS`): births and communes within
        ``max_minutes``, and the communes within reach by the reference mode (the first
        one, the car) that are not in this mode (``communes_lost``, names joined by
        ``", "``). Births of communes whose births are unknown are not counted
        (``share_births_within`` is over the known births).
    max_minutes
        Threshold.
    labels
        Mode -> French description of its engine (networks, date, hour…).
    minutes
        One row per commune, site and mode: ``code_insee``, ``name``, ``site_id``,
        ``mode``, ``minutes`` (``inf`` beyond the threshold or out of reach), for the map
        of minutes from the site (:func:`diagnosis.maps.build_mode_minutes_map`).
    """

    table: pd.DataFrame
    max_minutes: float
    labels: Mapping[str, str] = field(default_factory=dict)
    minutes: pd.DataFrame = field(default_factory=pd.DataFrame)


def compare_modes(points: gpd.GeoDataFrame, sites: gpd.GeoDataFrame,
                  travels: Mapping[str, Travel], *, max_minutes: float,
                  births_col: str = "births_2024", name_col: str = "name") -> ModeComparison:
    """Births and communes within ``max_minutes`` of each site, in each mode.

    Parameters
    ----------
    points
        One point per commune (EPSG:4326 or any CRS), with ``births_col`` and
        ``name_col``.
    sites
        The sites (``site_id``, ``name``, points).
    travels
        Mode label (``"voiture"``…) -> engine; the first is the reference.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> from diagnosis.travel.crowfly import CrowFlyModel
    >>> from diagnosis.travel.engines import CrowFlyEngine
    >>> pts = gpd.GeoDataFrame({"name": ["A", "B"], "births_2024": [10.0, 5.0]},
    ...     geometry=[Point(700000, 6600000), Point(703000, 6600000)], crs=METRIC_CRS)
    >>> site = gpd.GeoDataFrame({"site_id": ["s"], "name": ["Maison"]},
    ...     geometry=[Point(700000, 6600000)], crs=METRIC_CRS)
    >>> car = Travel(backend=CrowFlyEngine(CrowFlyModel("drive", 0.0, 1.0, 60.0)))
    >>> foot = Travel(backend=CrowFlyEngine(CrowFlyModel("walk", 0.0, 1.0, 6.0)))
    >>> t = compare_modes(pts, site, {"voiture": car, "à pied": foot}, max_minutes=15).table
    >>> t[["mode", "births_within", "communes_lost"]].values.tolist()
    [['voiture', 15.0, ''], ['à pied', 10.0, 'B']]
    """
    limit = check_positive(max_minutes, "max_minutes")
    if not travels:
        raise InputError("travels is empty: give at least one mode", argument="travels",
                         value={})
    for col in (births_col, name_col):
        if col not in points.columns:
            raise InputError(f"points has no column {col!r}", argument="points", value=col)
    p = points.to_crs(METRIC_CRS)
    s = sites.to_crs(METRIC_CRS)
    p_xy = np.column_stack([p.geometry.x, p.geometry.y])
    s_xy = np.column_stack([s.geometry.x, s.geometry.y])
    births = pd.to_numeric(p[births_col], errors="coerce").to_numpy(float)
    known = np.isfinite(births)
    total = float(births[known].sum())
    names = p[name_col].astype(str).to_numpy()
    rows = []
    per_commune = []
    codes = (p["code_insee"].astype(str).to_numpy() if "code_insee" in p.columns
             else np.arange(len(p)).astype(str))
    reference: np.ndarray | None = None
    for mode, travel in travels.items():
        minutes = travel.times(p_xy, s_xy, max_minutes=limit).minutes
        within = minutes <= limit
        if reference is None:
            reference = within
        for j in range(len(s)):
            per_commune.append(pd.DataFrame({
                "code_insee": codes, "name": names, "site_id": str(s["site_id"].iloc[j]),
                "mode": mode, "minutes": minutes[:, j]}))
            w = within[:, j]
            lost = reference[:, j] & ~w
            b = float(births[w & known].sum())
            rows.append({"site_id": str(s["site_id"].iloc[j]), "site": str(s["name"].iloc[j]),
                         "mode": mode, "label": travel.label, "births_within": b,
                         "share_births_within": b / total if total > 0 else np.nan,
                         "communes_within": int(w.sum()),
                         "communes_lost": ", ".join(names[lost])})
    return ModeComparison(table=pd.DataFrame(rows, columns=list(COLUMNS)), max_minutes=limit,
                          labels={m: t.label for m, t in travels.items()},
                          minutes=pd.concat(per_commune, ignore_index=True))
