"""Travel times: engines, the sparse pairs container, crow-fly model, isochrones, modes.

Layout (one topic a module):

- :mod:`~diagnosis.travel.graph`: the road graph (CSR of edge seconds) and snapping;
- :mod:`~diagnosis.travel.times`: :class:`TravelTimes`, the sparse pairs container every
  engine returns, and routing on a road graph;
- :mod:`~diagnosis.travel.crowfly`: the crow-fly estimate, its model and calibration;
- :mod:`~diagnosis.travel.isochrones`: the area reached from a point;
- :mod:`~diagnosis.travel.modes`: modes, speeds, labels, the default mode by density;
- :mod:`~diagnosis.travel.engines`: the :class:`TravelEngine` interface, the road and
  crow-fly engines, and :class:`Travel` (engine + note) that the analyses receive.
"""

from __future__ import annotations

from diagnosis.schema import ENGINE_CROW_FLY, ENGINE_ROAD
from diagnosis.travel.crowfly import (
    DENSITY_CLASSES,
    CrowFlyModel,
    calibrate_on_graph,
    class_crow_fly_model,
    crow_fly_errors,
    crow_fly_errors_by_band,
    crow_fly_minutes_within,
    crow_fly_travel_times,
    crow_model_for,
    default_crow_fly_model,
    density_class_of,
    factor_only_model,
    fit_crow_fly,
    routed_pairs,
)
from diagnosis.travel.engines import CrowFlyEngine, RoadEngine, Travel, TravelEngine
from diagnosis.travel.graph import (
    DEFAULT_MAX_SNAP_M,
    RoadGraph,
    road_graph_from_arrays,
    road_graph_from_networkx,
    snap_points,
)
from diagnosis.travel.modes import (
    DETOUR_FACTOR,
    DRIVE_SPEED_KMH,
    ENGINE_LABELS,
    MODE_LABELS,
    MODES,
    WALK_SPEED_KMH,
    default_mode_for,
    default_speed_kmh,
    default_travel_for,
)
from diagnosis.travel.times import (
    TravelTimes,
    compute_travel_times,
    pairs_to_csr,
    sparse_to_dense_minutes,
)

__all__ = [
    "DEFAULT_MAX_SNAP_M", "DETOUR_FACTOR", "DRIVE_SPEED_KMH", "ENGINE_CROW_FLY",
    "ENGINE_LABELS", "ENGINE_ROAD", "MODES", "MODE_LABELS", "WALK_SPEED_KMH",
    "CrowFlyEngine", "CrowFlyModel", "RoadEngine", "RoadGraph", "Travel", "TravelEngine",
    "DENSITY_CLASSES", "TravelTimes", "calibrate_on_graph", "class_crow_fly_model",
    "crow_fly_errors_by_band", "crow_model_for", "density_class_of", "routed_pairs",
    "compute_travel_times", "crow_fly_errors",
    "crow_fly_minutes_within", "crow_fly_travel_times", "default_crow_fly_model",
    "default_mode_for", "default_speed_kmh", "default_travel_for", "factor_only_model",
    "fit_crow_fly",
    "pairs_to_csr", "road_graph_from_arrays", "road_graph_from_networkx", "snap_points",
    "sparse_to_dense_minutes",
]
