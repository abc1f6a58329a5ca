"""Walking with a pushchair: the OSM walk network without steps, at a pushchair's pace.

The ``poussette`` engine is a :class:`~diagnosis.travel.graph.RoadGraph` of mode
``"poussette"`` built from OpenStreetMap ways (:func:`poussette_graph`): every way a
pedestrian may use (the osmnx ``walk`` rules), **except** ``highway=steps``, walked both
ways at :data:`POUSSETTE_SPEED_KMH`, slower on ways tagged rough (unpaved surface, bad
smoothness) or steep (``incline`` above :attr:`PoussetteProfile.steep_incline_pct`).
It is routed like any road graph (:class:`~diagnosis.travel.engines.RoadEngine`).

Speed. No measured speed of parents pushing a pushchair was found; the default is a
design value: the Texas DOT *Roadway Design Manual* (ch. 19 "Pedestrian Facilities",
§ 19.2.1.3 "Walking Speeds") gives typical pedestrian speeds of about 3 to 4 ft/s
(0.9-1.2 m/s) and designs for 3.5 ft/s (1.07 m/s) "to accommodate most pedestrians",
naming double-wide strollers among the users to plan for. We take 1.0 m/s (3.6 km/h),
toward the slow end, against 4.5 km/h for an adult walking alone
(:data:`~diagnosis.travel.modes.WALK_SPEED_KMH`). Change it with
:class:`PoussetteProfile`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from diagnosis.errors import InputError
from diagnosis.travel.graph import RoadGraph, _to_metric, road_graph_from_arrays
from diagnosis.travel.modes import POUSSETTE_SPEED_KMH

__all__ = ["POUSSETTE_SPEED_KMH", "OsmWays", "PoussetteProfile", "count_steps",
           "poussette_graph"]

#: ``highway`` values no pedestrian uses (the osmnx ``walk`` network rules).
_NOT_WALKABLE = re.compile(
    r"abandoned|bus_guideway|construction|cycleway|motor|no|planned|platform|proposed|"
    r"raceway|razed")
#: Surfaces hard going with a pushchair.
ROUGH_SURFACES = frozenset({
    "unpaved", "gravel", "fine_gravel", "dirt", "earth", "ground", "grass", "sand", "mud",
    "pebblestone", "woodchips", "rock", "stone", "cobblestone", "unhewn_cobblestone",
    "grass_paver"})
ROUGH_SMOOTHNESS = frozenset({"bad", "very_bad", "horrible", "very_horrible", "impassable"})


@dataclass(frozen=True)
class PoussetteProfile:
    """Speeds of the pushchair walk.

    Attributes
    ----------
    speed_kmh
        Speed on paved, level ways (default :data:`POUSSETTE_SPEED_KMH`).
    rough_factor
        Speed multiplier on rough ways (unpaved surface or bad smoothness); an
        assumption (0.7), to set from local knowledge.
    steep_factor
        Speed multiplier on ways whose tagged ``incline`` exceeds ``steep_incline_pct``;
        an assumption (0.7). Both factors multiply on a way that is rough and steep.
    steep_incline_pct
        Slope (%) from which a way is steep: 6 %, above the 5 % most accessibility
        guides take as the comfortable limit for wheeled users.
    drop_steps
        Leave out ``highway=steps`` (True: a pushchair does not go down steps).

    Examples
    --------
    >>> p = PoussetteProfile()
    >>> p.way_factor({"highway": "steps"}), p.way_factor({"highway": "footway"})
    (None, 1.0)
    >>> p.way_factor({"highway": "path", "surface": "gravel", "incline": "8%"})
    0.49
    """

    speed_kmh: float = POUSSETTE_SPEED_KMH
    rough_factor: float = 0.7
    steep_factor: float = 0.7
    steep_incline_pct: float = 6.0
    drop_steps: bool = True

    def __post_init__(self) -> None:
        for name in ("speed_kmh", "rough_factor", "steep_factor", "steep_incline_pct"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InputError(f"{name}={value!r} must be a number > 0", argument=name,
                                 value=value)
        if self.rough_factor > 1 or self.steep_factor > 1:
            raise InputError("rough_factor and steep_factor slow the walk: use values <= 1",
                             argument="rough_factor", value=self.rough_factor)

    def way_factor(self, tags: Mapping[str, str]) -> float | None:
        """Speed multiplier of a way, or None when a pushchair does not use it."""
        hw = str(tags.get("highway", ""))
        if not hw or _NOT_WALKABLE.fullmatch(hw) or hw.startswith("motorway"):
            return None
        if hw == "steps" and self.drop_steps:
            return None
        if tags.get("foot") == "no" or tags.get("area") == "yes" \
                or tags.get("access") in {"no", "private"} and tags.get("foot") not in {
                    "yes", "designated", "permissive"}:
            return None
        factor = 1.0
        if tags.get("surface") in ROUGH_SURFACES or tags.get("smoothness") in ROUGH_SMOOTHNESS:
            factor *= self.rough_factor
        incline = _incline_pct(tags.get("incline", ""))
        if incline is not None and abs(incline) > self.steep_incline_pct:
            factor *= self.steep_factor
        return round(factor, 6)


def _incline_pct(value: str) -> float | None:
    """Numeric incline in percent (``"8%"``, ``"-10 %"``, ``"5°"``), None otherwise.

    Examples
    --------
    >>> _incline_pct("8%"), _incline_pct("-12 %"), _incline_pct("up"), _incline_pct("5°")
    (8.0, -12.0, None, 8.7)
    """
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(%|°)?\s*", str(value))
    if not m:
        return None
    num = float(m.group(1))
    if m.group(2) == "°":
        return round(math.tan(math.radians(num)) * 100, 1)
    return num


@dataclass(frozen=True)
class OsmWays:
    """Ways of an OSM extract as arrays (from :func:`data_sources.walknet.read_walk_ways`).

    Attributes
    ----------
    node_ids, lon, lat
        Every way node (with repeats where ways share nodes), WGS84.
    way_start
        Offsets: way ``i`` is ``node_ids[way_start[i]:way_start[i + 1]]``.
    tags
        One tag mapping per way.
    """

    node_ids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    way_start: np.ndarray
    tags: tuple[Mapping[str, str], ...]


def poussette_graph(ways: OsmWays, *, profile: PoussetteProfile | None = None) -> RoadGraph:
    """The pushchair walk graph of OSM ways (two-way edges, seconds at the way's speed).

    Raises
    ------
    InputError
        No way a pushchair can use.
    """
    prof = profile or PoussetteProfile()
    n_ways = len(ways.tags)
    factors = np.array([np.nan if (f := prof.way_factor(t)) is None else f
                        for t in ways.tags], dtype=float)
    starts = np.asarray(ways.way_start, dtype=np.int64)
    lengths = np.diff(starts)
    keep_way = np.isfinite(factors) & (lengths >= 2)
    if not keep_way.any():
        raise InputError("aucune voie praticable avec une poussette dans l'extrait "
                         "OpenStreetMap : vérifiez le fichier (.osm.pbf) et la zone")
    # consecutive node pairs of kept ways
    way_of = np.repeat(np.arange(n_ways), lengths)
    same_way = np.r_[way_of[1:] == way_of[:-1], False]
    pair = same_way & keep_way[way_of]
    a = np.flatnonzero(pair)
    b = a + 1
    ids, inv = np.unique(np.asarray(ways.node_ids, dtype=np.int64), return_inverse=True)
    inv = inv.ravel()
    x_all, y_all = _to_metric(np.asarray(ways.lon, float), np.asarray(ways.lat, float),
                              "EPSG:4326")
    x = np.zeros(ids.size)
    y = np.zeros(ids.size)
    x[inv], y[inv] = x_all, y_all
    length_m = np.hypot(x_all[b] - x_all[a], y_all[b] - y_all[a])
    speed_ms = prof.speed_kmh / 3.6 * factors[way_of[a]]
    secs = length_m / speed_ms
    tail = np.concatenate([inv[a], inv[b]])
    head = np.concatenate([inv[b], inv[a]])
    return road_graph_from_arrays(tail, head, np.concatenate([secs, secs]), x, y,
                                  mode="poussette", osm_ids=ids)


def count_steps(tags: Iterable[Mapping[str, str]]) -> int:
    """Number of ``highway=steps`` ways (what the poussette network leaves out)."""
    return sum(1 for t in tags if t.get("highway") == "steps")
