"""Crow-fly travel times: the plain estimate, the calibrated model and its calibration.

Without a road graph, a travel time is estimated from the straight-line distance. The
plain estimate ``distance x detour factor / speed`` underestimates short trips (getting to
the road network, winding streets) and overestimates long ones. The model here adds a
fixed access term::

    minutes = access_min + distance_km x detour / speed_kmh x 60

and fits ``access_min`` (>= 0) and ``detour`` (>= 1) by bounded, robust least squares
(:func:`scipy.optimize.least_squares`, ``soft_l1`` loss so that a few very winding
routes do not drag the fit) against routed times on a real road graph, for a fixed
speed (the detour and the speed cannot be told apart from times alone).

The plain estimate (:func:`crow_fly_travel_times`) is the engine used when no network
is loaded; every result is labelled ``engine="crow_fly"``.

See Also
--------
guides/accessibilite.md : the calibration, its error against routed times (in French).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree

from diagnosis import settings
from diagnosis.errors import InputError, check_positive
from diagnosis.schema import ENGINE_CROW_FLY
from diagnosis.travel._common import CHUNK_CELLS, as_xy
from diagnosis.travel.graph import RoadGraph
from diagnosis.travel.modes import (
    DETOUR_FACTOR,
    MODE_LABELS,
    MODES,
    POUSSETTE_SPEED_KMH,
    default_speed_kmh,
)
from diagnosis.travel.times import TravelTimes, compute_travel_times, pairs_to_csr, stack_rows

#: Chunk size of the crow-fly pairs (module attribute so tests can make it small).
_CHUNK_CELLS = CHUNK_CELLS


def crow_fly_travel_times(
    origins_xy: np.ndarray,
    destinations_xy: np.ndarray,
    *,
    detour_factor: float = DETOUR_FACTOR,
    speed_kmh: float | None = None,
    mode: str = "drive",
    max_minutes: float | None = None,
    access_min: float = 0.0,
) -> TravelTimes:
    """Estimate travel times from straight-line distances.

    ``minutes = access_min + distance_m × detour_factor / (speed_kmh × 1000 / 60)``
    (0 for two points at the same place).

    With a cutoff, the pairs come from a k-d tree radius search
    (``cKDTree.sparse_distance_matrix`` with ``max_distance``), so only the pairs within
    reach are ever held; the nearest destination comes from a k-d tree query.

    Parameters
    ----------
    origins_xy, destinations_xy
        ``(n, 2)`` arrays of x/y in metres, EPSG:2154.
    detour_factor
        Road distance / straight-line distance; default :data:`DETOUR_FACTOR` (1.3,
        the typical ratio measured on large road networks, see the constant).
    speed_kmh
        Average speed; default :data:`DRIVE_SPEED_KMH` (40 km/h, an assumption for
        rural and peri-urban France) for ``mode="drive"``, :data:`WALK_SPEED_KMH`
        (4.5 km/h) for ``mode="walk"``.
    mode
        ``"drive"`` or ``"walk"``; chooses the default speed and labels the result.
    max_minutes
        Optional cutoff; pairs above it are not stored (counted in
        ``n_beyond_cutoff``). Without one, every pair is stored: give a cutoff for
        large inputs.
    access_min
        Fixed access term of every trip (minutes, >= 0): reaching and leaving the
        network (see :func:`calibrate_on_graph`, which calibrates it).

    Returns
    -------
    TravelTimes
        With ``engine="crow_fly"``, zero snap distances and no flags.

    Examples
    --------
    1.3 km by road at 39 km/h is 2 minutes:

    >>> tt = crow_fly_travel_times(np.array([[0.0, 0.0]]), np.array([[1000.0, 0.0]]),
    ...                            speed_kmh=39.0)
    >>> round(float(tt.minutes[0, 0]), 9), tt.engine
    (2.0, 'crow_fly')
    >>> tt = crow_fly_travel_times(np.array([[0.0, 0.0]]),
    ...                            np.array([[1000.0, 0.0], [9000.0, 0.0]]),
    ...                            speed_kmh=39.0, max_minutes=5)
    >>> tt.n_pairs_within, tt.n_beyond_cutoff, round(float(tt.nearest_minutes[0]), 9)
    (1, 1, 2.0)
    """
    o_xy = as_xy(origins_xy, "origins_xy")
    d_xy = as_xy(destinations_xy, "destinations_xy")
    speed = default_speed_kmh(mode) if speed_kmh is None else check_positive(speed_kmh, "speed_kmh")
    detour = check_positive(detour_factor, "detour_factor")
    if detour < 1:
        raise InputError(
            f"detour_factor={detour_factor!r} is below 1: a road is never shorter than "
            "the straight line; use a value >= 1 (1.3 is typical)"
        )
    cutoff = None if max_minutes is None else check_positive(max_minutes, "max_minutes")
    access = float(access_min)
    if not (np.isfinite(access) and access >= 0):
        raise InputError(f"access_min={access_min!r} must be a number of minutes >= 0",
                         argument="access_min", value=access_min)
    metres_per_minute = speed * 1000.0 / 60.0
    n_o, n_d = o_xy.shape[0], d_xy.shape[0]
    d_tree = cKDTree(d_xy)
    bound = np.inf
    if cutoff is not None:
        # Radius search slightly beyond the cutoff; the cutoff itself is applied below
        # on the exact formula, so a pair on the boundary is decided as before.
        bound = max(cutoff - access, 0.0) * metres_per_minute / detour * (1.0 + 1e-9)
    # Origins in chunks of about _CHUNK_CELLS pairs (the first chunk assumes every pair
    # is within reach, the next ones follow the density seen so far): temporaries stay
    # small and the result is stacked row block by row block (12 bytes per stored pair).
    step = max(1, _CHUNK_CELLS // max(n_d, 1))
    parts = []
    start = seen_pairs = 0
    while start < n_o:
        o_part = o_xy[start:start + step]
        start += o_part.shape[0]
        if cutoff is None:
            rows = np.repeat(np.arange(o_part.shape[0], dtype=np.int64), n_d)
            cols = np.tile(np.arange(n_d, dtype=np.int64), o_part.shape[0])
        else:
            pairs = cKDTree(o_part).sparse_distance_matrix(d_tree, bound,
                                                           output_type="ndarray")
            rows = pairs["i"].astype(np.int64)
            cols = pairs["j"].astype(np.int64)
            del pairs
        minutes = _crow_minutes(o_part[rows], d_xy[cols], detour, metres_per_minute, access)
        if cutoff is not None:
            keep = ~(minutes > cutoff)
            rows, cols, minutes = rows[keep], cols[keep], minutes[keep]
        parts.append(pairs_to_csr(rows, cols, minutes, (o_part.shape[0], n_d)))
        seen_pairs += rows.size
        per_origin = max(seen_pairs / start, 1.0)
        step = max(1, min(int(_CHUNK_CELLS / per_origin), 8 * step))
    within = stack_rows(parts, n_d)

    _, idx = d_tree.query(o_xy, k=1, distance_upper_bound=bound)
    idx = np.asarray(idx, dtype=np.int64)
    found = idx < n_d
    nearest = np.full(n_o, np.inf)
    nearest[found] = _crow_minutes(o_xy[found], d_xy[idx[found]], detour, metres_per_minute,
                                   access)
    if cutoff is not None:
        nearest[nearest > cutoff] = np.inf
    return TravelTimes(
        within=within,
        nearest_minutes=nearest,
        origin_snap_m=np.zeros(n_o),
        destination_snap_m=np.zeros(n_d),
        origin_flagged=np.zeros(n_o, dtype=bool),
        destination_flagged=np.zeros(n_d, dtype=bool),
        n_beyond_cutoff=n_o * n_d - within.nnz,
        n_disconnected=0,
        n_flagged_pairs=0,
        engine=ENGINE_CROW_FLY,
        mode=mode,
        max_minutes=cutoff,
        params={"speed_kmh": speed, "detour_factor": detour, "access_min": access},
    )


def _crow_minutes(
    a_xy: np.ndarray, b_xy: np.ndarray, detour: float, metres_per_minute: float,
    access_min: float = 0.0,
) -> np.ndarray:
    """Crow-fly minutes between paired rows of ``a_xy`` and ``b_xy`` (the one formula)."""
    dist = np.hypot(a_xy[:, 0] - b_xy[:, 0], a_xy[:, 1] - b_xy[:, 1])
    minutes = dist * detour / metres_per_minute
    if access_min:
        minutes = np.where(dist > 0, minutes + access_min, 0.0)
    return cast("np.ndarray", minutes)


@dataclass(frozen=True)
class CrowFlyModel:
    """``minutes = access_min + distance_km x detour / speed_kmh x 60``.

    Attributes
    ----------
    mode
        ``"drive"`` or ``"walk"``.
    access_min
        Fixed access term (minutes), >= 0.
    detour
        Route length / straight-line distance, >= 1.
    speed_kmh
        Average speed (km/h), > 0.

    Examples
    --------
    >>> m = CrowFlyModel("walk", access_min=1.0, detour=1.2, speed_kmh=4.5)
    >>> round(float(m.minutes(np.array([1500.0]))[0]), 6)  # 1 + 1.5 x 1.2 / 4.5 x 60
    25.0
    >>> m.max_distance_m(25.0)
    1500.0
    """

    mode: str
    access_min: float
    detour: float
    speed_kmh: float

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode={self.mode!r} is not a travel mode; use one of {MODES}")
        for name, low in (("access_min", 0.0), ("detour", 1.0)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= low):
                raise InputError(f"{name}={value!r} must be a finite number >= {low:g}")
        if not (isinstance(self.speed_kmh, (int, float)) and math.isfinite(self.speed_kmh)
                and self.speed_kmh > 0):
            raise InputError(f"speed_kmh={self.speed_kmh!r} must be a finite number > 0")

    @property
    def minutes_per_km(self) -> float:
        """Slope of the model (minutes per straight-line km)."""
        return self.detour / self.speed_kmh * 60.0

    def minutes(self, distance_m: np.ndarray) -> np.ndarray:
        """Estimated minutes for straight-line distances in metres (0 m -> 0 min)."""
        d = np.asarray(distance_m, dtype=np.float64)
        out = self.access_min + d / 1000.0 * self.minutes_per_km
        return np.where(d > 0, out, 0.0)

    def max_distance_m(self, max_minutes: float) -> float:
        """Largest straight-line distance (m) reached within ``max_minutes``."""
        if max_minutes <= self.access_min:
            return 0.0
        return (max_minutes - self.access_min) / self.minutes_per_km * 1000.0

    def label(self) -> str:
        """French description for legends and reports.

        Examples
        --------
        >>> print(default_crow_fly_model("drive").label())  # doctest: +ELLIPSIS
        estimation à vol d'oiseau en voiture : 1 min d'accès + distance × 1,3 à 40 km/h
        """
        return (
            f"estimation à vol d'oiseau {MODE_LABELS[self.mode]} : {_fr(self.access_min)} min "
            f"d'accès + distance × {_fr(self.detour)} à {_fr(self.speed_kmh)} km/h"
        )


def default_crow_fly_model(mode: str) -> CrowFlyModel:
    """The shipped calibration of a mode (constants of :mod:`diagnosis.settings`).

    Examples
    --------
    >>> default_crow_fly_model("drive").speed_kmh
    40.0
    """
    if mode == "drive":
        return CrowFlyModel("drive", settings.CROWFLY_DRIVE_ACCESS_MIN,
                            settings.CROWFLY_DRIVE_DETOUR, settings.CROWFLY_DRIVE_SPEED_KMH)
    if mode == "walk":
        return CrowFlyModel("walk", settings.CROWFLY_WALK_ACCESS_MIN,
                            settings.CROWFLY_WALK_DETOUR, settings.CROWFLY_WALK_SPEED_KMH)
    if mode == "poussette":  # the walk model at the pushchair's speed
        return CrowFlyModel("poussette", settings.CROWFLY_WALK_ACCESS_MIN,
                            settings.CROWFLY_WALK_DETOUR, POUSSETTE_SPEED_KMH)
    raise InputError(f"mode={mode!r} is not a travel mode; use one of {MODES}")


#: Density classes of the crow-fly car model, densest first.
DENSITY_CLASSES: tuple[str, ...] = ("dense", "intermediate", "rural")
#: French names of the density classes.
DENSITY_CLASS_LABELS: dict[str, str] = {"dense": "urbain dense",
                                        "intermediate": "intermédiaire", "rural": "rural"}


def class_crow_fly_model(mode: str, density_class: str) -> CrowFlyModel:
    """The shipped crow-fly model of a mode for a density class.

    Cars go at the speed of the roads that carry most trips in the class
    (:data:`~diagnosis.settings.CROWFLY_DRIVE_BY_CLASS`, published values); walking
    does not depend on density.

    Examples
    --------
    >>> [class_crow_fly_model("drive", c).speed_kmh for c in DENSITY_CLASSES]
    [50.0, 45.0, 65.0]
    >>> class_crow_fly_model("walk", "rural") == default_crow_fly_model("walk")
    True
    """
    if density_class not in DENSITY_CLASSES:
        raise InputError(f"density_class={density_class!r} is not one of {DENSITY_CLASSES}",
                         argument="density_class", value=density_class)
    if mode != "drive":
        return default_crow_fly_model(mode)
    access, detour, speed = settings.CROWFLY_DRIVE_BY_CLASS[density_class]
    return CrowFlyModel("drive", access, detour, speed)


def density_class_of(population: Any, area_km2: Any) -> str:
    """Density class of a territory from its communes' population and area.

    The class of the commune density (:data:`~diagnosis.settings.
    CROWFLY_CLASS_MIN_DENSITY`) in which most of the territory's population lives;
    communes with an unknown population or area are left out; none known: intermediate.

    Examples
    --------
    >>> density_class_of([300_000, 5_000], [65.0, 20.0])
    'dense'
    >>> density_class_of([800, 1_200, 400], [20.0, 15.0, 30.0])
    'rural'
    """
    pop = np.asarray(population, dtype=np.float64)
    area = np.asarray(area_km2, dtype=np.float64)
    ok = np.isfinite(pop) & np.isfinite(area) & (area > 0) & (pop >= 0)
    if not ok.any() or pop[ok].sum() <= 0:
        return "intermediate"
    dens = pop[ok] / area[ok]
    shares = {}
    limits = settings.CROWFLY_CLASS_MIN_DENSITY
    for i, c in enumerate(DENSITY_CLASSES):
        upper = limits[DENSITY_CLASSES[i - 1]] if i else math.inf
        shares[c] = float(pop[ok][(dens >= limits[c]) & (dens < upper)].sum())
    return max(DENSITY_CLASSES, key=lambda c: shares[c])


def crow_model_for(communes: Any, mode: str, *, graph: RoadGraph | None = None,
                   population_col: str = "population_2022",
                   max_nodes: int = 300) -> tuple[CrowFlyModel, str]:
    """The crow-fly model of a territory, and a French sentence saying where it comes from.

    Where a road graph of the mode exists, the model is calibrated on it
    (:func:`calibrate_on_graph`, access term and slope, detour kept at
    :data:`~diagnosis.settings.CROWFLY_DRIVE_DETOUR`); otherwise it is the shipped model
    of the territory's density class (:func:`density_class_of`,
    :func:`class_crow_fly_model`).

    Parameters
    ----------
    communes
        The territory's communes (population and polygons or ``area_km2``).
    mode
        ``"drive"`` or ``"walk"``.
    graph
        A road graph of the territory, if one was loaded.
    population_col
        Population column.
    max_nodes
        Nodes drawn from the graph for the calibration.
    """
    if graph is not None and graph.mode == mode:
        try:
            cal = calibrate_on_graph(graph, max_nodes=max_nodes, min_distance_m=100.0,
                                     detour=settings.CROWFLY_DRIVE_DETOUR
                                     if mode == "drive" else settings.CROWFLY_WALK_DETOUR)
        except InputError:
            pass  # too small a graph: the density class's model below
        else:
            m = cal.model
            return m, (f"Temps à vol d'oiseau calibrés sur le réseau routier chargé : "
                       f"{_fr(m.access_min)} min d'accès + {_fr(m.minutes_per_km)} min par km "
                       f"(écart moyen {_fr(cal.errors.mae_min)} min sur des trajets tests).")
    pop = pd.to_numeric(communes[population_col], errors="coerce") \
        if population_col in communes.columns else pd.Series(np.nan, index=communes.index)
    if "area_km2" in communes.columns:
        area = pd.to_numeric(communes["area_km2"], errors="coerce").to_numpy(dtype=float)
    elif getattr(communes, "crs", None) is not None:
        area = communes.geometry.to_crs(settings.METRIC_CRS).area.to_numpy() / 1e6
    else:
        area = np.full(len(communes), np.nan)
    cls = density_class_of(pop.to_numpy(dtype=float), area)
    m = class_crow_fly_model(mode, cls)
    if mode != "drive":
        return m, ""
    return m, (f"Modèle à vol d'oiseau des territoires de type « {DENSITY_CLASS_LABELS[cls]} » "
               f"(selon la densité des communes) : {_fr(m.access_min)} min d'accès + distance "
               f"× {_fr(m.detour)} à {_fr(m.speed_kmh)} km/h.")


def factor_only_model(mode: str, *, detour: float = DETOUR_FACTOR,
                      speed_kmh: float | None = None) -> CrowFlyModel:
    """The plain estimate ``distance x factor / speed`` (no access term), for comparison.

    Defaults are those of :func:`diagnosis.travel.crow_fly_travel_times` (detour
    :data:`~diagnosis.travel.DETOUR_FACTOR`, the mode's default speed).

    Examples
    --------
    >>> factor_only_model("drive").access_min
    0.0
    """
    speed = default_speed_kmh(mode) if speed_kmh is None else speed_kmh
    return CrowFlyModel(mode, 0.0, detour, speed)


@dataclass(frozen=True)
class CrowFlyErrors:
    """Errors of a model against routed times (minutes).

    Attributes
    ----------
    mae_min
        Mean absolute error.
    median_abs_min
        Median absolute error.
    bias_min
        Mean of (estimate - routed): > 0 overestimates.
    n_pairs
        Pairs compared.
    """

    mae_min: float
    median_abs_min: float
    bias_min: float
    n_pairs: int


def crow_fly_errors(model: CrowFlyModel, distance_m: np.ndarray,
                    routed_minutes: np.ndarray) -> CrowFlyErrors:
    """Compare a model's estimates with routed times.

    Examples
    --------
    >>> m = CrowFlyModel("walk", 0.0, 1.0, 6.0)  # 10 min per km
    >>> e = crow_fly_errors(m, np.array([1000.0, 2000.0]), np.array([12.0, 18.0]))
    >>> e.mae_min, e.median_abs_min, e.bias_min, e.n_pairs
    (2.0, 2.0, 0.0, 2)
    """
    d, t = _pairs(distance_m, routed_minutes)
    err = model.minutes(d) - t
    return CrowFlyErrors(float(np.abs(err).mean()), float(np.median(np.abs(err))),
                         float(err.mean()), int(d.size))


def fit_crow_fly(distance_m: np.ndarray, routed_minutes: np.ndarray, *, mode: str,
                 speed_kmh: float | None = None, loss: str = "soft_l1",
                 loss_scale_min: float = 0.1, detour: float | None = None) -> CrowFlyModel:
    """Fit ``access_min`` and ``detour`` by bounded (robust) least squares.

    Parameters
    ----------
    distance_m
        Straight-line distances of origin-destination pairs (metres, > 0).
    routed_minutes
        Routed travel times of the same pairs (minutes, finite).
    mode
        ``"drive"`` or ``"walk"``.
    speed_kmh
        The model's speed, fixed (default: the shipped speed of the mode).
    loss
        Loss of :func:`scipy.optimize.least_squares`: ``"soft_l1"`` (robust, default) or
        ``"linear"`` (ordinary least squares).
    loss_scale_min
        Residual (minutes) where the robust loss starts to flatten.
    detour
        When given, the access term and the slope (minutes per straight-line km) are
        fitted, the detour is kept at this value and the speed is read from the slope
        (``speed = detour x 60 / slope``): the fit is then free of the speed's bound, so
        fast rural roads are not forced to the mode's shipped speed.

    Returns
    -------
    CrowFlyModel

    Raises
    ------
    InputError
        Arrays of different shapes, fewer than 2 usable pairs, negative values.

    Examples
    --------
    Times made with 2 minutes of access and a detour of 1.5 at 6 km/h are recovered:

    >>> d = np.array([500.0, 1000.0, 2000.0, 4000.0])
    >>> m = fit_crow_fly(d, 2 + d / 1000 * 1.5 / 6 * 60, mode="walk", speed_kmh=6.0)
    >>> round(m.access_min, 4), round(m.detour, 4)
    (2.0, 1.5)

    With the detour fixed, the slope is fitted and read as a speed (1 min per km at a
    detour of 1.3: 78 km/h):

    >>> m = fit_crow_fly(d, 0.5 + d / 1000, mode="drive", detour=1.3)
    >>> round(m.access_min, 3), round(m.speed_kmh, 2)
    (0.5, 78.0)
    """
    from scipy.optimize import least_squares  # imported only when a model is fitted

    d, t = _pairs(distance_m, routed_minutes)
    if d.size < 2:
        raise InputError(f"fit_crow_fly needs at least 2 pairs with distance > 0; got {d.size}")
    if detour is not None:  # access and slope fitted; the slope read as a speed
        if not (math.isfinite(detour) and detour >= 1.0):
            raise InputError(f"detour={detour!r} must be a finite number >= 1")
        km = d / 1000.0
        res = least_squares(lambda p: p[0] + km * p[1] - t, x0=[0.5, 1.5],
                            bounds=([0.0, 1e-3], [np.inf, np.inf]), loss=loss,
                            f_scale=loss_scale_min)
        return CrowFlyModel(mode, float(res.x[0]), float(detour),
                            float(detour) * 60.0 / float(res.x[1]))
    speed = default_crow_fly_model(mode).speed_kmh if speed_kmh is None else float(speed_kmh)
    slope = d / 1000.0 / speed * 60.0

    def residuals(p: np.ndarray) -> np.ndarray:
        return cast("np.ndarray", p[0] + slope * p[1] - t)

    res = least_squares(residuals, x0=[0.5, 1.3], bounds=([0.0, 1.0], [np.inf, np.inf]),
                        loss=loss, f_scale=loss_scale_min)
    return CrowFlyModel(mode, float(res.x[0]), float(res.x[1]), speed)


@dataclass(frozen=True)
class CrowFlyCalibration:
    """A calibration on a road graph, and its error on pairs held out of the fit.

    Attributes
    ----------
    model
        The fitted model.
    errors
        Its errors on the held-out pairs.
    factor_only_errors
        Errors of ``distance x factor / speed`` alone on the same pairs.
    params
        How the pairs were drawn (nodes, seed, minimum distance, pairs used to fit).
    """

    model: CrowFlyModel
    errors: CrowFlyErrors
    factor_only_errors: CrowFlyErrors
    params: dict[str, Any] = field(default_factory=dict)


def calibrate_on_graph(
    graph: RoadGraph,
    *,
    max_nodes: int = 400,
    min_distance_m: float = 50.0,
    max_minutes: float = 120.0,
    seed: int = 0,
    factor_only_detour: float = DETOUR_FACTOR,
    speed_kmh: float | None = None,
    loss: str = "soft_l1",
    detour: float | None = None,
) -> CrowFlyCalibration:
    """Fit the crow-fly model to routed node-to-node times of a road graph.

    Up to ``max_nodes`` nodes of the graph are drawn (with ``seed``); the times between
    every pair of them are routed with :func:`~diagnosis.travel.compute_travel_times`.
    Origins are split in two halves: the model is fitted on the pairs of one half and its
    error measured on the other, against the factor-only estimate.

    Parameters
    ----------
    graph
        A road graph (e.g. from :func:`data_sources.osm.road_graph_from_osm_file`).
    max_nodes
        Nodes drawn as origins and destinations.
    min_distance_m
        Pairs closer than this (straight line) are left out.
    max_minutes
        Routing cutoff: pairs farther apart in time are left out.
    seed
        Random seed of the draw and the split.
    factor_only_detour
        Detour factor of the comparison estimate.
    speed_kmh
        Speed of both models (default: the mode's shipped speed).
    loss
        Loss of the fit (see :func:`fit_crow_fly`).
    detour
        Fit the access term and the slope with this detour kept (see
        :func:`fit_crow_fly`); ``None``: fit the detour at ``speed_kmh``.

    Returns
    -------
    CrowFlyCalibration

    Raises
    ------
    InputError
        Fewer than 4 reachable pairs on either half.
    """
    rng = np.random.default_rng(seed)
    n = graph.n_nodes
    nodes = np.sort(rng.choice(n, size=min(n, max_nodes), replace=False))
    xy = np.column_stack([graph.x[nodes], graph.y[nodes]])
    # points sit on their node: snap within half a metre, so none moves to another part
    tt = compute_travel_times(graph, xy, xy, max_minutes=max_minutes, max_snap_m=0.5)
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    ok = np.isfinite(tt.minutes) & (dist >= min_distance_m)
    fit_rows = np.zeros(len(nodes), dtype=bool)
    fit_rows[rng.permutation(len(nodes))[: len(nodes) // 2]] = True
    fit_mask = ok & fit_rows[:, None]
    test_mask = ok & ~fit_rows[:, None]
    if fit_mask.sum() < 4 or test_mask.sum() < 4:
        raise InputError(
            f"the road graph gives too few reachable pairs ({int(ok.sum())}) farther apart "
            f"than min_distance_m={min_distance_m!r} to calibrate on; use a larger graph"
        )
    model = fit_crow_fly(dist[fit_mask], tt.minutes[fit_mask], mode=graph.mode,
                         speed_kmh=speed_kmh, loss=loss, detour=detour)
    base = factor_only_model(graph.mode, detour=factor_only_detour, speed_kmh=model.speed_kmh)
    return CrowFlyCalibration(
        model=model,
        errors=crow_fly_errors(model, dist[test_mask], tt.minutes[test_mask]),
        factor_only_errors=crow_fly_errors(base, dist[test_mask], tt.minutes[test_mask]),
        params={"n_nodes": int(len(nodes)), "seed": seed, "min_distance_m": min_distance_m,
                "n_fit_pairs": int(fit_mask.sum()), "factor_only_detour": factor_only_detour,
                "loss": loss},
    )


def routed_pairs(graph: RoadGraph, *, max_nodes: int = 400, min_distance_m: float = 50.0,
                 max_minutes: float = 120.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Straight-line metres and routed minutes between nodes drawn from a road graph.

    Up to ``max_nodes`` nodes are drawn with ``seed``; every ordered pair of them farther
    apart than ``min_distance_m`` and reachable within ``max_minutes`` is returned.

    Returns
    -------
    distance_m, routed_minutes
        One value per pair, same order.
    """
    rng = np.random.default_rng(seed)
    nodes = np.sort(rng.choice(graph.n_nodes, size=min(graph.n_nodes, max_nodes),
                               replace=False))
    xy = np.column_stack([graph.x[nodes], graph.y[nodes]])
    tt = compute_travel_times(graph, xy, xy, max_minutes=max_minutes, max_snap_m=0.5)
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    ok = np.isfinite(tt.minutes) & (dist >= min_distance_m)
    return dist[ok], tt.minutes[ok]


#: Straight-line distance bands (km) of the error tables (last band open-ended).
DISTANCE_BANDS_KM: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, math.inf)


def crow_fly_errors_by_band(model: CrowFlyModel, distance_m: Any, routed_minutes: Any, *,
                            bands_km: tuple[float, ...] = DISTANCE_BANDS_KM,
                            threshold_min: float | None = None) -> list[dict[str, Any]]:
    """Errors of a model against routed times, by straight-line distance band.

    Parameters
    ----------
    model
        The crow-fly model.
    distance_m, routed_minutes
        Pairs (e.g. from :func:`routed_pairs`).
    bands_km
        Band edges in km, increasing.
    threshold_min
        A travel-time standard: each band also gives the share of pairs on which the
        model and the routed time agree about « within the standard ».

    Returns
    -------
    list of dict
        One row per non-empty band: ``band`` (French), ``n_pairs``, ``mae_min``,
        ``bias_min`` (> 0: overestimates), ``bias_pct`` (mean relative error, %),
        ``agree_pct`` (when ``threshold_min`` is given).

    Examples
    --------
    >>> m = CrowFlyModel("walk", 0.0, 1.0, 6.0)  # 10 min per km
    >>> rows = crow_fly_errors_by_band(m, np.array([500.0, 1500.0]), np.array([4.0, 18.0]),
    ...                                bands_km=(0.0, 1.0, 2.0))
    >>> [(r["band"], r["bias_min"], r["bias_pct"]) for r in rows]
    [('0 à 1 km', 1.0, 25.0), ('1 à 2 km', -3.0, -16.7)]
    """
    d, t = _pairs(distance_m, routed_minutes)
    est = model.minutes(d)
    rows = []
    for lo, hi in zip(bands_km[:-1], bands_km[1:], strict=True):
        sel = (d >= lo * 1000.0) & (d < hi * 1000.0) & (t > 0)
        if not sel.any():
            continue
        err = est[sel] - t[sel]
        band = (f"{_fr(lo)} à {_fr(hi)} km" if math.isfinite(hi) else f"{_fr(lo)} km et plus")
        row = {"band": band, "n_pairs": int(sel.sum()),
               "mae_min": round(float(np.abs(err).mean()), 2),
               "bias_min": round(float(err.mean()), 2),
               "bias_pct": round(float(100.0 * (err / t[sel]).mean()), 1)}
        if threshold_min is not None:
            row["agree_pct"] = round(float(100.0 * ((est[sel] <= threshold_min)
                                                    == (t[sel] <= threshold_min)).mean()), 1)
        rows.append(row)
    return rows


def crow_fly_minutes_within(
    origins_xy: np.ndarray,
    destinations_xy: np.ndarray,
    *,
    max_minutes: float,
    model: CrowFlyModel,
) -> sp.csr_array:
    """Calibrated crow-fly minutes of the pairs within reach, as a sparse matrix.

    Only pairs within ``model.max_distance_m(max_minutes)`` are computed (k-d tree
    radius search), so no dense origin x destination matrix is built. A pair at the same
    place gets 0 minutes, stored explicitly; pairs out of reach are not stored.

    Parameters
    ----------
    origins_xy, destinations_xy
        ``(n, 2)`` arrays of x/y in metres, EPSG:2154.
    max_minutes
        Threshold (minutes, > 0).
    model
        The crow-fly model (e.g. :func:`default_crow_fly_model`).

    Returns
    -------
    scipy.sparse.csr_array
        ``(n_origins, n_destinations)`` minutes.

    Examples
    --------
    >>> m = CrowFlyModel("walk", 1.0, 1.0, 6.0)  # 1 min + 10 min per km
    >>> t = crow_fly_minutes_within(np.array([[0.0, 0.0]]),
    ...                             np.array([[0.0, 0.0], [500.0, 0.0], [3000.0, 0.0]]),
    ...                             max_minutes=10.0, model=m)
    >>> t.toarray().round(6).tolist(), t.nnz
    ([[0.0, 6.0, 0.0]], 2)
    """
    if not (isinstance(max_minutes, (int, float)) and math.isfinite(max_minutes)
            and max_minutes > 0):
        raise InputError(f"max_minutes={max_minutes!r} must be a finite number > 0")
    o = _xy(origins_xy, "origins_xy")
    d = _xy(destinations_xy, "destinations_xy")
    radius = model.max_distance_m(float(max_minutes))
    dist = cKDTree(o).sparse_distance_matrix(cKDTree(d), max_distance=radius,
                                             output_type="coo_matrix")
    rows, cols, vals = dist.row, dist.col, dist.data
    # sparse_distance_matrix drops zero distances: add the coincident pairs back
    same = cKDTree(o).query_ball_tree(cKDTree(d), r=0.0)
    zr = np.repeat(np.arange(len(o)), [len(s) for s in same])
    zc = np.fromiter((j for s in same for j in s), dtype=np.int64, count=len(zr))
    rows = np.concatenate([rows, zr])
    cols = np.concatenate([cols, zc])
    vals = np.concatenate([model.minutes(vals), np.zeros(len(zr))])
    keep = vals <= max_minutes
    out = sp.coo_array((vals[keep], (rows[keep], cols[keep])), shape=(len(o), len(d)))
    return sp.csr_array(out)


def _pairs(distance_m: Any, routed_minutes: Any) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(distance_m, dtype=np.float64).ravel()
    t = np.asarray(routed_minutes, dtype=np.float64).ravel()
    if d.shape != t.shape:
        raise InputError(
            f"distance_m and routed_minutes must have the same length; got {d.size} and "
            f"{t.size}"
        )
    if (d < 0).any() or (t < 0).any():
        raise InputError("distance_m and routed_minutes must be >= 0")
    ok = np.isfinite(d) & np.isfinite(t) & (d > 0)
    return d[ok], t[ok]


def _xy(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.isfinite(arr).all():
        raise InputError(f"{name} must be an (n, 2) array of finite x/y in metres (EPSG:2154)")
    return arr


def _fr(value: float) -> str:
    """Short French number: ``1.16 -> '1,16'``, ``15.0 -> '15'``."""
    return f"{value:.3g}".replace(".", ",")

