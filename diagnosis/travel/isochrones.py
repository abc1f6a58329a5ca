"""Isochrones: the area reached from one point within a time, in EPSG:2154.

On a network, the nodes reached within the time (one Dijkstra with a cutoff), each
widened by a resolution and merged: the area around the streets one can reach. As the
crow flies, the disc of the model's reach. Engines call these from their
``isochrone`` method (:mod:`diagnosis.travel.engines`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from scipy.sparse.csgraph import dijkstra

from diagnosis.errors import InputError, check_positive
from diagnosis.travel.crowfly import CrowFlyModel
from diagnosis.travel.graph import RoadGraph, snap_points


def road_isochrone(graph: RoadGraph, point_xy: tuple[float, float], *, max_minutes: float,
                   resolution_m: float = 250.0) -> Any:
    """Area around the nodes of ``graph`` reached from ``point_xy`` within ``max_minutes``.

    Examples
    --------
    >>> from diagnosis.travel.graph import road_graph_from_arrays
    >>> g = road_graph_from_arrays([0, 1], [1, 2], [60.0, 60.0], [0.0, 1000.0, 2000.0],
    ...                            [0.0, 0.0, 0.0], mode="walk")
    >>> area = road_isochrone(g, (0.0, 0.0), max_minutes=1.5, resolution_m=100)
    >>> area.contains(shapely.Point(1000, 0)), area.contains(shapely.Point(2000, 0))
    (True, False)
    """
    limit = check_positive(max_minutes, "max_minutes")
    width = check_positive(resolution_m, "resolution_m")
    snapped = snap_points(graph, np.array([[float(point_xy[0]), float(point_xy[1])]]))
    if bool(snapped.flagged[0]):
        raise InputError(
            f"the site is {snapped.distance_m[0]:.0f} m from the nearest road of the "
            "graph: no isochrone; check its position or use crow-fly times"
        )
    secs = dijkstra(graph.travel_time_s, directed=True, indices=int(snapped.node[0]),
                    limit=limit * 60)
    return reached_area(graph.x, graph.y, np.isfinite(secs), resolution_m=width)


def reached_area(x: np.ndarray, y: np.ndarray, reached: np.ndarray, *,
                 resolution_m: float) -> Any:
    """Union of discs of ``resolution_m`` around the reached points (EPSG:2154)."""
    pts = shapely.points(np.asarray(x)[reached], np.asarray(y)[reached])
    return shapely.union_all(shapely.buffer(pts, resolution_m, quad_segs=4))


def crow_fly_isochrone(model: CrowFlyModel, point_xy: tuple[float, float], *,
                       max_minutes: float) -> Any:
    """The disc reached by the crow-fly model: ``(max_minutes - access) × speed / detour``.

    Examples
    --------
    >>> disc = crow_fly_isochrone(CrowFlyModel("walk", 0.0, 1.0, 6.0), (0.0, 0.0),
    ...                           max_minutes=10)
    >>> round(disc.area / (np.pi * 1000.0 ** 2), 2)  # a 1 km disc
    1.0
    """
    limit = check_positive(max_minutes, "max_minutes")
    radius = model.max_distance_m(limit)
    return shapely.Point(float(point_xy[0]), float(point_xy[1])).buffer(max(radius, 1.0),
                                                                        quad_segs=32)
