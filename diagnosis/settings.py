"""Defaults shared by the analysis, the loaders, the app and the CLI.

Every value here is a documented default; the functions take them as keyword
options so a user can change them (see ``guides/indicateurs.md``).
"""

from __future__ import annotations

#: Metric CRS for mainland France (RGF93 / Lambert-93). All distances are computed in it.
METRIC_CRS = "EPSG:2154"
#: CRS of maps, GeoJSON and most open-data files.
WGS84 = "EPSG:4326"

#: Default crow-fly threshold (metres) for "births within reach of a facility type".
DEFAULT_THRESHOLD_M = 5_000.0

#: Under-3 estimate: children aged 0, 1 and 2 ≈ 3 × yearly births (labelled as an estimate).
UNDER3_YEARS = 3

#: Bounding box of metropolitan France and Corsica in WGS84 (lon_min, lat_min, lon_max, lat_max).
FRANCE_METRO_BBOX = (-5.5, 41.2, 10.0, 51.2)
#: Bounding boxes of the overseas départements (lon_min, lat_min, lon_max, lat_max).
FRANCE_OVERSEAS_BBOXES = {
    "971": (-61.9, 15.8, -60.9, 16.6),  # Guadeloupe
    "972": (-61.3, 14.3, -60.7, 14.9),  # Martinique
    "973": (-54.7, 2.0, -51.5, 5.9),  # Guyane
    "974": (55.1, -21.5, 55.9, -20.8),  # La Réunion
    "976": (44.9, -13.1, 45.4, -12.5),  # Mayotte
}

#: Two facilities of the same type closer than this (metres) with similar names are duplicates.
DUPLICATE_DISTANCE_M = 50.0

# --------------------------------------------------------------------------------------
# Defaults of a diagnosis (diagnosis.pipeline.DiagnosisParams, the app and the CLI)
# --------------------------------------------------------------------------------------

#: Travel modes a user can choose: road graph by car or on foot, or the crow-fly estimate.
TRAVEL_MODES: tuple[str, ...] = ("drive", "walk", "crow")
#: Default mode of the analysis commands and pages (access, site, partners): the road
#: network, with a labelled crow-fly fallback when no graph can be loaded.
DEFAULT_MODE = "drive"
#: Default mode of the deliverables (report, export): crow-fly, so that they are
#: reproducible offline; the user can ask for the road network.
DEFAULT_DELIVERABLE_MODE = "crow"
#: Travel-time standard T (minutes) of access, siting, partners and catchments.
DEFAULT_MAX_MINUTES = 20.0
#: Times are routed up to this multiple of T, so that "minutes to the nearest" also says
#: how far beyond T a gap lies (infinite only beyond it).
ROUTING_CUTOFF_FACTOR = 2.0
#: For "the nearest PMI / maternité wherever it is" and the p-median (every pair
#: matters), times are routed up to this multiple of T.
FAR_CUTOFF_FACTOR = 10.0
#: Share of families expected to join a peer group: an assumption, always labelled.
DEFAULT_UPTAKE_RATE = 0.15
#: New Maisons of the main siting scenario.
DEFAULT_K = 1
#: Siting objective: maximal covering (births within T) or p-median (mean time).
DEFAULT_OBJECTIVE = "max_covering"
#: Name given to the i-th point a user proposes as a site.
USER_SITE_LABEL = "Site proposé n°{n}"
#: Families per peer group (a stable group of about ten families, MAISON_MODEL).
DEFAULT_GROUP_SIZE = 10
#: Babies of one group are born within this many months (babies of the same age).
DEFAULT_BIRTH_WINDOW_MONTHS = 3.0
