"""Travel engines: one interface, one sparse pairs container out.

An engine answers two questions for any points (x/y metres, EPSG:2154):

- :meth:`TravelEngine.times`: the minutes from origins to destinations within a cutoff,
  as a :class:`~diagnosis.travel.times.TravelTimes` (sparse pairs, explicit zeros, the
  counts of pairs out of reach) -- the one container E2SFCA, gaps, siting, catchments,
  partners and cohorts read;
- :meth:`TravelEngine.isochrone`: the area reached from one point within a time.

:class:`RoadEngine` routes on a :class:`~diagnosis.travel.graph.RoadGraph` (car, walk),
:class:`CrowFlyEngine` estimates from straight-line distances. A new engine (walking
with a pushchair, public transport) is one more class with these members; the analyses
receive it wrapped in a :class:`Travel`, which also carries the French note shown with
the results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from diagnosis.errors import InputError
from diagnosis.schema import ENGINE_CROW_FLY, ENGINE_ROAD
from diagnosis.travel.crowfly import CrowFlyModel, crow_fly_travel_times, default_crow_fly_model
from diagnosis.travel.graph import DEFAULT_MAX_SNAP_M, RoadGraph
from diagnosis.travel.isochrones import crow_fly_isochrone, road_isochrone
from diagnosis.travel.modes import ENGINE_LABELS, MODE_LABELS, MODES
from diagnosis.travel.times import TravelTimes, compute_travel_times


@runtime_checkable
class TravelEngine(Protocol):
    """What every travel engine provides (see the module docstring)."""

    @property
    def engine(self) -> str:
        """Engine name carried by its results (e.g. ``"road_network"``)."""
        ...

    @property
    def mode(self) -> str:
        """Travel mode (``"drive"``, ``"walk"``…)."""
        ...

    @property
    def label(self) -> str:
        """French description of the times, for legends, tables and reports."""
        ...

    def times(self, origins_xy: np.ndarray, destinations_xy: np.ndarray, *,
              max_minutes: float) -> TravelTimes:
        """Minutes from origins to destinations (x/y EPSG:2154) within ``max_minutes``."""
        ...

    def isochrone(self, point_xy: tuple[float, float], *, max_minutes: float,
                  resolution_m: float) -> Any:
        """Area (shapely geometry, EPSG:2154) reached from a point within ``max_minutes``."""
        ...


@dataclass(frozen=True, eq=False)
class RoadEngine:
    """Shortest times on a road graph (:func:`~diagnosis.travel.times.compute_travel_times`).

    Examples
    --------
    >>> from diagnosis.travel.graph import road_graph_from_arrays
    >>> g = road_graph_from_arrays([0, 1], [1, 0], [120.0, 120.0], [0.0, 1000.0], [0.0, 0.0],
    ...                            mode="walk")
    >>> e = RoadEngine(g)
    >>> e.times(np.array([[0.0, 0.0]]), np.array([[1000.0, 0.0]]), max_minutes=5).minutes
    array([[2.]])
    >>> e.label
    'temps de trajet sur le réseau routier OpenStreetMap, à pied'
    """

    graph: RoadGraph
    max_snap_m: float = DEFAULT_MAX_SNAP_M

    @property
    def engine(self) -> str:
        """:data:`~diagnosis.schema.ENGINE_ROAD`."""
        return ENGINE_ROAD

    @property
    def mode(self) -> str:
        """The graph's mode."""
        return self.graph.mode

    @property
    def label(self) -> str:
        """French description of the times."""
        return f"{ENGINE_LABELS[ENGINE_ROAD]}, {MODE_LABELS.get(self.mode, self.mode)}"

    def times(self, origins_xy: np.ndarray, destinations_xy: np.ndarray, *,
              max_minutes: float) -> TravelTimes:
        """Routed minutes within ``max_minutes``."""
        return compute_travel_times(self.graph, origins_xy, destinations_xy,
                                    max_minutes=max_minutes, max_snap_m=self.max_snap_m)

    def isochrone(self, point_xy: tuple[float, float], *, max_minutes: float,
                  resolution_m: float) -> Any:
        """Streets reached within ``max_minutes``, widened by ``resolution_m``."""
        return road_isochrone(self.graph, point_xy, max_minutes=max_minutes,
                              resolution_m=resolution_m)


@dataclass(frozen=True)
class CrowFlyEngine:
    """Crow-fly estimate of a :class:`~diagnosis.travel.crowfly.CrowFlyModel`.

    Examples
    --------
    >>> e = CrowFlyEngine(CrowFlyModel("walk", 0.0, 1.0, 6.0))  # 10 min per km
    >>> e.times(np.zeros((1, 2)), np.array([[500.0, 0.0]]), max_minutes=20).minutes
    array([[5.]])
    """

    model: CrowFlyModel

    @property
    def engine(self) -> str:
        """:data:`~diagnosis.schema.ENGINE_CROW_FLY`."""
        return ENGINE_CROW_FLY

    @property
    def mode(self) -> str:
        """The model's mode."""
        return self.model.mode

    @property
    def label(self) -> str:
        """French description of the estimate (its access term, speed and detour)."""
        return crow_fly_travel_times(np.zeros((1, 2)), np.zeros((1, 2)),
                                     **self._options()).label

    def _options(self) -> dict[str, Any]:
        m = self.model
        return {"mode": m.mode, "detour_factor": m.detour, "speed_kmh": m.speed_kmh,
                "access_min": m.access_min}

    def times(self, origins_xy: np.ndarray, destinations_xy: np.ndarray, *,
              max_minutes: float) -> TravelTimes:
        """Estimated minutes within ``max_minutes``."""
        return crow_fly_travel_times(origins_xy, destinations_xy, max_minutes=max_minutes,
                                     **self._options())

    def isochrone(self, point_xy: tuple[float, float], *, max_minutes: float,
                  resolution_m: float) -> Any:
        """The disc the model reaches within ``max_minutes``."""
        return crow_fly_isochrone(self.model, point_xy, max_minutes=max_minutes)


@dataclass(frozen=True, eq=False)
class Travel:
    """How travel times are computed in a diagnosis: an engine and a note.

    Attributes
    ----------
    graph
        Road graph (:func:`data_sources.osm.load_road_graph`), or None for the crow-fly
        estimate (calibrated model of the mode, :mod:`diagnosis.travel.crowfly`), which
        every output labels as such.
    mode
        ``"drive"`` or ``"walk"`` (with a graph or a ``backend``, their own mode).
    note
        French note shown with the results (e.g. why no road graph is used).
    backend
        Any other :class:`TravelEngine` (it then takes precedence over ``graph``).
    crow_model
        The crow-fly model to use without a graph (the territory's density class, or a
        calibration on a road graph: :func:`diagnosis.travel.crowfly.crow_model_for`);
        ``None``: the mode's shipped default.
    sources
        Registry records of what the engine was built from (GTFS feeds and their dates,
        street extract), for the list of sources of the outputs.

    Examples
    --------
    >>> Travel().label.endswith("en voiture (1 min d'accès + 40 km/h, détour × 1,3)")
    True
    >>> Travel().engine
    'crow_fly'
    """

    graph: RoadGraph | None = None
    mode: str = "drive"
    note: str = ""
    backend: TravelEngine | None = None
    crow_model: CrowFlyModel | None = None
    sources: tuple[Mapping[str, str], ...] = ()

    def __post_init__(self) -> None:
        """Check the mode and take the engine's own."""
        if self.backend is not None:
            object.__setattr__(self, "mode", self.backend.mode)
            return
        if self.graph is not None:
            object.__setattr__(self, "mode", self.graph.mode)
        if self.mode not in MODES:
            raise InputError(f"mode={self.mode!r} is not a travel mode; use one of {MODES}",
                             argument="mode", value=self.mode)

    @property
    def engine_impl(self) -> TravelEngine:
        """The engine that computes the times."""
        if self.backend is not None:
            return self.backend
        if self.graph is not None:
            return RoadEngine(self.graph)
        return CrowFlyEngine(self.crow_fly)

    @property
    def engine(self) -> str:
        """Engine name (:data:`~diagnosis.schema.ENGINE_ROAD`, ``ENGINE_CROW_FLY``…)."""
        return self.engine_impl.engine

    @property
    def crow_fly(self) -> CrowFlyModel:
        """The crow-fly model: ``crow_model``, else the mode's shipped default."""
        if self.crow_model is not None and self.crow_model.mode == self.mode:
            return self.crow_model
        return default_crow_fly_model(self.mode)

    @property
    def label(self) -> str:
        """French description of the times, for legends, tables and reports."""
        return self.engine_impl.label

    def times(self, origins_xy: np.ndarray, destinations_xy: np.ndarray, *,
              max_minutes: float) -> TravelTimes:
        """Travel minutes from origins to destinations (x/y in EPSG:2154), with a cutoff."""
        return self.engine_impl.times(origins_xy, destinations_xy, max_minutes=max_minutes)

    @property
    def has_stops(self) -> bool:
        """Whether the engine knows public transport stops (:meth:`stop_access`)."""
        return getattr(self.engine_impl, "stops_within_walk", None) is not None

    def stop_access(self, xy: np.ndarray) -> np.ndarray | None:
        """Whether each point has a public transport stop within walking reach.

        None for engines without stops (road, crow-fly): unknown is not "no stop".
        """
        impl = self.engine_impl
        check = getattr(impl, "stops_within_walk", None)
        return None if check is None else np.asarray(check(xy), dtype=bool)

    def isochrone(self, point_xy: tuple[float, float], *, max_minutes: float,
                  resolution_m: float = 250.0) -> Any:
        """Area (EPSG:2154) reached from ``point_xy`` within ``max_minutes``."""
        return self.engine_impl.isochrone(point_xy, max_minutes=max_minutes,
                                          resolution_m=resolution_m)
