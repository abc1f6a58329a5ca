"""Defaults shared by the analysis, the loaders, the app and the CLI.

Every value here is a documented default; the functions take them as keyword
options so a user can change them (see ``guides/indicateurs.md``).
"""

from __future__ import annotations

#: Metric CRS for mainland France (RGF93 / Lambert-93). All distances are computed in it.
METRIC_CRS = "EPSG:2154"
#: CRS of maps, GeoJSON and most open-data files.
WGS84 = "EPSG:4326"
#: Metric CRS of the overseas départements (local UTM zones), by département code; the
#: same table as :data:`data_sources.national.METRIC_CRS_BY_DEP`.
METRIC_CRS_OVERSEAS: dict[str, str] = {
    "971": "EPSG:5490",  # RGAF09 / UTM 20N (Guadeloupe)
    "972": "EPSG:5490",  # RGAF09 / UTM 20N (Martinique)
    "973": "EPSG:2972",  # RGFG95 / UTM 22N (Guyane)
    "974": "EPSG:2975",  # RGR92 / UTM 40S (La Réunion)
    "976": "EPSG:4471",  # RGM04 / UTM 38S (Mayotte)
}

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

#: Travel modes a user can choose: road graph by car or on foot, the crow-fly estimate,
#: walking with a pushchair (OSM walk network without steps) and public transport (GTFS
#: timetables at a departure hour, walking with a pushchair to and from the stops).
TRAVEL_MODES: tuple[str, ...] = ("drive", "walk", "crow", "poussette", "transit")
#: Departure hour of the transit mode (a morning group).
DEFAULT_DEPART = "09:30"
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
#: Facility types that can host a Maison (the default candidate pool of siting).
HOST_TYPES: tuple[str, ...] = ("pmi", "eaje", "rpe", "centre_social", "laep", "evs", "mairie")
#: Siting objectives: maximal covering (births within T) or p-median (mean time).
OBJECTIVES: tuple[str, ...] = ("max_covering", "p_median")
#: How a territory can be split for a comparison.
SPLITS: tuple[str, ...] = ("epci", "commune", "departement", "region")
#: National plan: default number of new sites of each département's own answer.
DEFAULT_PER_DEPARTEMENT = 3
#: Share of families expected to join a peer group: an assumption, always labelled.
DEFAULT_UPTAKE_RATE = 0.15
#: New Maisons of the main siting scenario.
DEFAULT_K = 1
#: Siting objective: maximal covering (births within T) or p-median (mean time).
DEFAULT_OBJECTIVE = "max_covering"
#: Name given to the i-th point a user proposes as a site.
#: ``type`` given to candidate points proposed by the user (not a facility type).
USER_SITE_TYPE = "user_site"
USER_SITE_LABEL = "Site proposé n°{n}"
#: Id of the i-th point a user proposes as a site (an imported facility is
#: ``user:<file>:<id>``: the site resolver looks for loaded facilities first).
USER_SITE_ID = "user:{n}"
#: Families per peer group (a stable group of about ten families, MAISON_MODEL).
DEFAULT_GROUP_SIZE = 10
#: Babies of one group are born within this many months (babies of the same age).
DEFAULT_BIRTH_WINDOW_MONTHS = 3.0

# --- Peer groups: one Maison's capacity (see diagnosis/cohorts.py) ----------------------

#: Peer groups one facilitator runs at the same time. The federation's model (Ensemble pour
#: la Petite Enfance) says a trained facilitator runs "only a few groups at a time", beside
#: the maillage territorial, professional watch and evaluation; 3 is a working assumption
#: drawn from that statement, not a measured figure: change it with ``groups_per_facilitator``.
DEFAULT_GROUPS_PER_FACILITATOR = 3
#: Facilitators of one Maison (one trained facilitator by default; change with ``facilitators``).
DEFAULT_FACILITATORS_PER_MAISON = 1

# --- Crow-fly travel times with an access term (see diagnosis/travel/crowfly.py) ---------------
# minutes = access_min + distance_km x detour / speed_kmh x 60. The shipped defaults come
# from the literature, not from a fit on test data: a car trip's terminal time (walking
# to and from the car, parking: 1-5 min by area type in NCHRP Report 716, "Travel Demand
# Forecasting: Parameters and Techniques", 2012; the low end here) and the detour factor
# of large road networks (about 1.3, Wang, Bette, Schreckenberg & Guhr, npj Complexity
# 2024). Where a road graph is loaded, diagnosis.travel.crowfly.calibrate_on_graph fits the two
# terms on it; guides/accessibilite.md gives the error of both against routed times.

#: Fixed access term of a car trip (minutes): getting to and from the road network.
CROWFLY_DRIVE_ACCESS_MIN = 1.0
#: Road distance / straight-line distance for car trips, with the car speed below.
CROWFLY_DRIVE_DETOUR = 1.3
#: Average car speed (km/h) of the crow-fly model (the project's door-to-door value).
CROWFLY_DRIVE_SPEED_KMH = 40.0
# --- Crow-fly car model by density class (diagnosis.travel.crowfly.class_crow_fly_model) ---
# Chosen from published values, never fitted on test data: the access term and detour as
# above; the speed of the roads that carry trips of a few km in each class under the
# French speed limits (Code de la route: 50 km/h in built-up areas, 80 km/h on two-way
# roads outside them since decree 2018-487), i.e. the speeds of
# data_sources.osm.FR_HIGHWAY_SPEEDS_KMH the router uses: dense areas 50 km/h (the urban
# arterials; issue 20 measured the single 40 km/h model 15-40 % too slow beyond 5 km on
# real car minutes of a dense département, i.e. about 1.4-1.7 min/km, 46-56 km/h at a
# detour of 1.3), intermediate areas 45 km/h (tertiary and secondary roads through
# towns), rural areas 65 km/h (departmental roads, below 80 for bends and villages).
# The error of each class against routed times is in guides/accessibilite.md.

#: Density classes of the crow-fly car model, with the commune density (inhabitants per
#: km²) from which a territory belongs to each (the thresholds of the 1 km² cells of the
#: INSEE/Eurostat grille de densité: urban centres 1,500, urban clusters 300).
CROWFLY_CLASS_MIN_DENSITY: dict[str, float] = {"dense": 1_500.0, "intermediate": 300.0,
                                               "rural": 0.0}
#: (access minutes, detour, speed km/h) of the car model per density class.
CROWFLY_DRIVE_BY_CLASS: dict[str, tuple[float, float, float]] = {
    "dense": (1.0, 1.3, 50.0),
    "intermediate": (1.0, 1.3, 45.0),
    "rural": (1.0, 1.3, 65.0),
}

#: Fixed access term of a walk (minutes): none, a walk starts at the door.
CROWFLY_WALK_ACCESS_MIN = 0.0
#: Path length / straight-line distance for walks (the same network factor).
CROWFLY_WALK_DETOUR = 1.3
#: Walking speed (km/h) of the crow-fly model.
CROWFLY_WALK_SPEED_KMH = 4.5

# --- Default travel mode from the territory's density (see diagnosis.travel.crowfly) -----------

#: Population per km² above which a commune counts as dense: the density of the 1 km² cells
#: of INSEE's and Eurostat's "centres urbains" (grille communale de densité).
DENSE_POPULATION_PER_KM2 = 1_500.0
#: Share of the territory's population living in dense communes above which walking is the
#: default mode.
DENSE_POPULATION_SHARE = 0.5
#: Default threshold (minutes) of the walking mode chosen for dense territories.
DEFAULT_WALK_MAX_MINUTES = 15.0
#: Default threshold (minutes) of the car mode chosen for rural territories.
DEFAULT_DRIVE_MAX_MINUTES = 20.0
