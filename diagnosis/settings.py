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

# --- Peer groups: one Maison's capacity (see diagnosis/cohorts.py) ----------------------

#: Peer groups one facilitator runs at the same time. The federation's model (Ensemble pour
#: la Petite Enfance) says a trained facilitator runs "only a few groups at a time", beside
#: the maillage territorial, professional watch and evaluation; 3 is a working assumption
#: drawn from that statement, not a measured figure: change it with ``groups_per_facilitator``.
DEFAULT_GROUPS_PER_FACILITATOR = 3
#: Facilitators of one Maison (one trained facilitator by default; change with ``facilitators``).
DEFAULT_FACILITATORS_PER_MAISON = 1
