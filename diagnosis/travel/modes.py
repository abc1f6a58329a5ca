"""Travel modes: names, default speeds, French labels, default mode by density.

:func:`default_mode_for` picks walking thresholds where the territory's population
lives in dense communes, and the car elsewhere.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis import settings
from diagnosis.errors import InputError
from diagnosis.schema import ENGINE_CROW_FLY, ENGINE_ROAD, TRAVEL_MODE_LABELS

#: Travel modes a road graph can be built for (``poussette``: walking with a pushchair,
#: :mod:`diagnosis.travel.poussette`).
MODES: tuple[str, ...] = ("drive", "walk", "poussette")

#: Walking speed (km/h) used for walk graphs and the crow-fly walk estimate. A common
#: planning value for adults (pedestrian speeds are usually quoted between 4 and 5 km/h);
#: with a pram or a toddler it is lower: change it if your public walks slowly.
WALK_SPEED_KMH = 4.5

#: Walking speed with a pushchair (km/h): 1.0 m/s, a design value (sources in
#: :mod:`diagnosis.travel.poussette`).
POUSSETTE_SPEED_KMH = 3.6

#: Average door-to-door driving speed (km/h) for the crow-fly estimate. An assumption for
#: rural and peri-urban France (mix of departmental roads, village crossings and
#: parking), not a measured value: use a road graph when you can.
DRIVE_SPEED_KMH = 40.0

#: Road distance / straight-line distance. About 1.3 ± 0.1 on large road networks
#: (Wang, Bette, Schreckenberg & Guhr, "How much longer do you have to drive than the
#: crow has to fly?", npj Complexity 1, 22, 2024); shorter trips are often more winding.
DETOUR_FACTOR = 1.3

#: French labels of the engines and modes, for legends and reports.
ENGINE_LABELS: dict[str, str] = {
    ENGINE_ROAD: "temps de trajet sur le réseau routier OpenStreetMap",
    ENGINE_CROW_FLY: "estimation à vol d'oiseau (distance × facteur de détour, vitesse moyenne)",
}
#: French labels of the engine modes (the one list: :data:`diagnosis.schema.TRAVEL_MODE_LABELS`).
MODE_LABELS: dict[str, str] = {m: TRAVEL_MODE_LABELS[m]
                               for m in ("drive", "walk", "poussette", "transit")}


def default_speed_kmh(mode: str) -> float:
    """Default crow-fly speed of a mode.

    Examples
    --------
    >>> default_speed_kmh("walk"), default_speed_kmh("drive"), default_speed_kmh("poussette")
    (4.5, 40.0, 3.6)
    """
    if mode == "walk":
        return WALK_SPEED_KMH
    if mode == "poussette":
        return POUSSETTE_SPEED_KMH
    if mode == "drive":
        return DRIVE_SPEED_KMH
    raise InputError(f"mode={mode!r} is not a travel mode; use one of {MODES}")




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


def default_travel_for(
    communes: gpd.GeoDataFrame | pd.DataFrame,
    *,
    car_mode: str = "drive",
    mode: str | None = None,
    max_minutes: float | None = None,
    population_col: str = "population_2022",
) -> tuple[str, float, str]:
    """The travel mode and threshold of a study: the user's, else the density rule.

    The one rule of the app, the command line and the report
    (:func:`default_mode_for`): walking 15 minutes where most of the population lives
    in dense communes, the car 20 minutes elsewhere. What the user chose is kept; only
    what they left out is filled in, and the reason says why (``""`` when nothing was
    filled in).

    Parameters
    ----------
    communes
        The territory's own communes (population and polygons or ``area_km2``).
    car_mode
        The car mode of the caller: ``"drive"`` (road graph) or ``"crow"`` (crow-fly
        estimate, no download).
    mode, max_minutes
        The user's choices (``None``: not given).
    population_col
        Population column.

    Returns
    -------
    tuple[str, float, str]
        ``(mode, max_minutes, reason)``.

    Examples
    --------
    >>> t = pd.DataFrame({"population_2022": [150_000, 3_000], "area_km2": [40.0, 30.0]})
    >>> default_travel_for(t, car_mode="crow")[:2]
    ('walk', 15.0)
    >>> default_travel_for(t, car_mode="crow", mode="crow")[:2]
    ('crow', 20.0)
    >>> default_travel_for(t, mode="drive", max_minutes=10)
    ('drive', 10.0, '')
    """
    if mode is not None and max_minutes is not None:
        return mode, float(max_minutes), ""
    if population_col in communes.columns:
        area_col = "area_km2" if "area_km2" in communes.columns else None
        if area_col is None and not isinstance(communes, gpd.GeoDataFrame):
            dense_mode, dense_minutes, why = (
                "drive", settings.DEFAULT_DRIVE_MAX_MINUTES,
                "Superficie des communes non connue : mode par défaut en voiture, "
                f"{_fr(settings.DEFAULT_DRIVE_MAX_MINUTES)} minutes.")
        else:
            dense_mode, dense_minutes, why = default_mode_for(
                communes, population_col=population_col, area_km2_col=area_col)
    else:
        dense_mode, dense_minutes, why = (
            "drive", settings.DEFAULT_DRIVE_MAX_MINUTES,
            "Population des communes non connue : mode par défaut en voiture, "
            f"{_fr(settings.DEFAULT_DRIVE_MAX_MINUTES)} minutes (à changer selon le "
            "territoire).")
    chosen = mode or ("walk" if dense_mode == "walk" else car_mode)
    if max_minutes is not None:
        minutes = float(max_minutes)
    elif (chosen == "walk") == (dense_mode == "walk"):
        minutes = float(dense_minutes)
    else:
        minutes = (settings.DEFAULT_WALK_MAX_MINUTES if chosen == "walk"
                   else settings.DEFAULT_DRIVE_MAX_MINUTES)
    label = MODE_LABELS.get("walk" if chosen == "walk" else "drive", chosen)
    if mode is not None:  # only the threshold was left out: the mode's default
        return chosen, minutes, f"Seuil par défaut {label} : {_fr(minutes)} minutes."
    if max_minutes is not None:
        return chosen, minutes, (f"Mode par défaut {label}, selon la densité du territoire "
                                 f"(seuil choisi : {_fr(minutes)} minutes). {why}")
    return chosen, minutes, f"Mode et seuil par défaut, selon la densité du territoire : {why}"


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


def _fr(value: float) -> str:
    """Short French number: ``1.16 -> '1,16'``, ``15.0 -> '15'``."""
    return f"{value:.3g}".replace(".", ",")


def _thousands(value: float) -> str:
    return f"{value:,.0f}".replace(",", "\u202f").replace("\u202f", " ")
