"""Calibrated crow-fly travel times, and the default travel mode of a territory.

Without a road graph, a travel time is estimated from the straight-line distance. The
plain estimate ``distance x detour factor / speed`` underestimates short trips (getting to
the road network, winding streets) and overestimates long ones. The model here adds a
fixed access term::

    minutes = access_min + distance_km x detour / speed_kmh x 60

and fits ``access_min`` (>= 0) and ``detour`` (>= 1) by bounded, robust least squares
(:func:`scipy.optimize.least_squares`, ``soft_l1`` loss so that a few very winding
routes do not drag the fit) against routed times on a real road graph, for a fixed
speed (the detour and the speed cannot be told apart from times alone).

:func:`default_mode_for` picks walking thresholds where the territory's population
lives in dense communes, and the car elsewhere.

See Also
--------
guides/accessibilite.md : the calibration, its error against routed times (in French).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import least_squares
from scipy.spatial import cKDTree

from diagnosis import settings
from diagnosis.errors import InputError
from diagnosis.travel_times import (
    DETOUR_FACTOR,
    MODES,
    RoadGraph,
    compute_travel_times,
    default_speed_kmh,
)

#: French labels of the modes.
_MODE_FR = {"drive": "en voiture", "walk": "à pied"}


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
            f"estimation à vol d'oiseau {_MODE_FR[self.mode]} : {_fr(self.access_min)} min "
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
    raise InputError(f"mode={mode!r} is not a travel mode; use one of {MODES}")


def factor_only_model(mode: str, *, detour: float = DETOUR_FACTOR,
                      speed_kmh: float | None = None) -> CrowFlyModel:
    """The plain estimate ``distance x factor / speed`` (no access term), for comparison.

    Defaults are those of :func:`diagnosis.travel_times.crow_fly_travel_times` (detour
    :data:`~diagnosis.travel_times.DETOUR_FACTOR`, the mode's default speed).

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
                 loss_scale_min: float = 0.1) -> CrowFlyModel:
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
    """
    speed = default_crow_fly_model(mode).speed_kmh if speed_kmh is None else float(speed_kmh)
    d, t = _pairs(distance_m, routed_minutes)
    if d.size < 2:
        raise InputError(f"fit_crow_fly needs at least 2 pairs with distance > 0; got {d.size}")
    slope = d / 1000.0 / speed * 60.0

    def residuals(p: np.ndarray) -> np.ndarray:
        return p[0] + slope * p[1] - t

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
) -> CrowFlyCalibration:
    """Fit the crow-fly model to routed node-to-node times of a road graph.

    Up to ``max_nodes`` nodes of the graph are drawn (with ``seed``); the times between
    every pair of them are routed with :func:`~diagnosis.travel_times.compute_travel_times`.
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
                         speed_kmh=speed_kmh, loss=loss)
    base = factor_only_model(graph.mode, detour=factor_only_detour, speed_kmh=model.speed_kmh)
    return CrowFlyCalibration(
        model=model,
        errors=crow_fly_errors(model, dist[test_mask], tt.minutes[test_mask]),
        factor_only_errors=crow_fly_errors(base, dist[test_mask], tt.minutes[test_mask]),
        params={"n_nodes": int(len(nodes)), "seed": seed, "min_distance_m": min_distance_m,
                "n_fit_pairs": int(fit_mask.sum()), "factor_only_detour": factor_only_detour,
                "loss": loss},
    )


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


# --------------------------------------------------------------------------------------
# Default mode of a territory
# --------------------------------------------------------------------------------------


def default_mode_for(
    communes: gpd.GeoDataFrame | pd.DataFrame,
    *,
    population_col: str = "population",
    area_km2_col: str | None = None,
    dense_per_km2: float = settings.DENSE_POPULATION_PER_KM2,
    dense_share: float = settings.DENSE_POPULATION_SHARE,
    density_grid_col: str | None = None,
    dense_levels: tuple[int, ...] = (1,),
) -> tuple[str, float, str]:
    """Default travel mode and threshold of a territory, with a French reason.

    A commune is dense when its population per km² is at least ``dense_per_km2``
    (1,500 by default: the density of the 1 km² cells of the "centres urbains" of
    INSEE's and Eurostat's grille communale de densité; a commune's mean density is a
    coarser measure). When at least ``dense_share`` of the territory's population lives
    in dense communes, the default is walking (:data:`~diagnosis.settings.
    DEFAULT_WALK_MAX_MINUTES`), otherwise the car (:data:`~diagnosis.settings.
    DEFAULT_DRIVE_MAX_MINUTES`). Communes with an unknown population are left out and
    said so; with no known population at all the car is kept, and the reason says why.

    Parameters
    ----------
    communes
        One row per commune, with a population column and either an area column or
        polygons (areas are then measured in EPSG:2154).
    population_col
        Population column.
    area_km2_col
        Area column (km²); ``None``: from the polygons.
    dense_per_km2
        Density (inhabitants per km²) from which a commune is dense.
    dense_share
        Share of the population in dense communes from which walking is the default.
    density_grid_col
        Column of INSEE's grille communale de densité (levels 1-7 or 1-4); when given, a
        commune is dense when its level is in ``dense_levels`` (1: "grands centres
        urbains" / "communes densément peuplées") instead of by its mean density, and
        no area is needed.
    dense_levels
        Levels of the density grid counted as dense.

    Returns
    -------
    tuple[str, float, str]
        ``(mode, max_minutes, reason)``.

    Examples
    --------
    >>> t = pd.DataFrame({"population": [150_000, 3_000], "area_km2": [40.0, 30.0]})
    >>> mode, minutes, why = default_mode_for(t, area_km2_col="area_km2")
    >>> mode, minutes
    ('walk', 15.0)
    >>> print(why)  # doctest: +ELLIPSIS
    98 % de la population vit dans des communes denses (au moins 1 500 habitants par km²...
    """
    if population_col not in communes.columns:
        raise InputError(
            f"communes has no column population_col={population_col!r}; columns are "
            f"{list(communes.columns)!r}"
        )
    pop = pd.to_numeric(communes[population_col], errors="coerce").to_numpy(dtype=np.float64)
    if density_grid_col is not None:
        return _mode_from_grid(communes, pop, density_grid_col=density_grid_col,
                               dense_levels=dense_levels, dense_share=dense_share)
    if area_km2_col is not None:
        if area_km2_col not in communes.columns:
            raise InputError(f"communes has no column area_km2_col={area_km2_col!r}")
        area = pd.to_numeric(communes[area_km2_col], errors="coerce").to_numpy(dtype=np.float64)
    elif isinstance(communes, gpd.GeoDataFrame):
        if communes.crs is None:
            raise InputError("communes has no CRS: set it (e.g. EPSG:4326) to measure areas")
        area = communes.geometry.to_crs(settings.METRIC_CRS).area.to_numpy() / 1e6
    else:
        raise InputError("communes needs polygons or area_km2_col to compute densities")
    known = np.isfinite(pop) & (pop >= 0) & np.isfinite(area) & (area > 0)
    drive = settings.DEFAULT_DRIVE_MAX_MINUTES
    walk = settings.DEFAULT_WALK_MAX_MINUTES
    if not known.any() or pop[known].sum() <= 0:
        return ("drive", drive,
                f"Population des communes non connue : mode par défaut en voiture, "
                f"{_fr(drive)} minutes (à changer selon le territoire).")
    dense = known & (pop / np.where(area > 0, area, np.nan) >= dense_per_km2)
    share = float(pop[dense].sum() / pop[known].sum())
    unknown = int((~known).sum())
    tail = (f" {unknown} commune(s) sans population ou superficie connue ne sont pas "
            "comptées." if unknown else "")
    head = (f"{_fr(round(share * 100))} % de la population vit dans des communes denses "
            f"(au moins {_thousands(dense_per_km2)} habitants par km², seuil des centres "
            "urbains de la grille de densité Insee/Eurostat)")
    if share >= dense_share:
        return ("walk", walk,
                f"{head} : seuil par défaut de {_fr(walk)} minutes à pied, modifiable.{tail}")
    return ("drive", drive,
            f"{head} : territoire peu dense, seuil par défaut de {_fr(drive)} minutes en "
            f"voiture, modifiable.{tail}")


def _mode_from_grid(communes: pd.DataFrame, pop: np.ndarray, *, density_grid_col: str,
                    dense_levels: tuple[int, ...], dense_share: float) -> tuple[str, float, str]:
    if density_grid_col not in communes.columns:
        raise InputError(f"communes has no column density_grid_col={density_grid_col!r}")
    level = pd.to_numeric(communes[density_grid_col], errors="coerce").to_numpy(
        dtype=np.float64)
    known = np.isfinite(pop) & (pop >= 0) & np.isfinite(level)
    drive = settings.DEFAULT_DRIVE_MAX_MINUTES
    walk = settings.DEFAULT_WALK_MAX_MINUTES
    if not known.any() or pop[known].sum() <= 0:
        return ("drive", drive,
                "Population ou niveau de densité des communes non connus : mode par défaut "
                f"en voiture, {_fr(drive)} minutes (à changer selon le territoire).")
    dense = known & np.isin(level, np.asarray(dense_levels, dtype=np.float64))
    share = float(pop[dense].sum() / pop[known].sum())
    unknown = int((~known).sum())
    tail = (f" {unknown} commune(s) sans population ou niveau de densité connu ne sont pas "
            "comptées." if unknown else "")
    head = (f"{_fr(round(share * 100))} % de la population vit dans des communes denses "
            f"(grille communale de densité de l'Insee, niveau "
            f"{', '.join(str(v) for v in dense_levels)})")
    if share >= dense_share:
        return ("walk", walk,
                f"{head} : seuil par défaut de {_fr(walk)} minutes à pied, modifiable.{tail}")
    return ("drive", drive,
            f"{head} : territoire peu dense, seuil par défaut de {_fr(drive)} minutes en "
            f"voiture, modifiable.{tail}")


# --------------------------------------------------------------------------------------


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


def _thousands(value: float) -> str:
    return f"{value:,.0f}".replace(",", "\u202f").replace("\u202f", " ")
