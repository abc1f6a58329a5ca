"""Demand points below the commune: IRIS and 200 m grid cells, the commune as fallback.

One demand point per commune makes access all-or-nothing in a city. When finer units
are loaded, :func:`compute_demand_points` spreads each commune's totals over them:

- **IRIS** (INSEE census, contours from the IGN): weight = the IRIS's population aged
  0-2 (``pop_0_2``);
- **200 m cells** (INSEE Filosofi 2019): weight = the cell's individuals aged 0-3
  (``ind_0_3``).

A commune's births (and its under-3 figure) are multiplied by each unit's share of the
commune's young children; its population by each unit's share of the population. These
are **estimates** (births are not published below the commune) and every output says so.
The sums over a commune's units equal the commune's totals; a missing commune value
stays missing in every unit. A commune the finer layer does not cover keeps one point
(its representative point).

See Also
--------
guides/accessibilite.md : demand points and their levels (in French).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.errors import InputError
from diagnosis.settings import METRIC_CRS, UNDER3_YEARS

#: Levels of a demand point, finest last.
LEVELS: tuple[str, ...] = ("commune", "iris", "carreau")

#: French labels of the levels (plural, for "demande calculée par …").
LEVEL_LABELS: dict[str, str] = {
    "commune": "communes",
    "iris": "IRIS",
    "carreau": "carreaux de 200 m",
}

#: Columns of :attr:`DemandPoints.points`.
DEMAND_COLUMNS: tuple[str, ...] = (
    "origin_id", "code_insee", "level", "unit_code", "share_young", "share_population",
    "share_basis", "births", "under3", "population", "births_estimated", "geometry",
)

#: Values of ``share_basis``: what the commune's totals were spread by.
BASIS_YOUNG = "enfants"
BASIS_POPULATION = "population"
BASIS_COMMUNE = "commune"


@dataclass(frozen=True)
class DemandPoints:
    """Origins of the demand (see :func:`compute_demand_points`).

    Attributes
    ----------
    points
        One row per origin, columns :data:`DEMAND_COLUMNS`, points in EPSG:2154:
        ``origin_id`` (``"commune:44109"``, ``"iris:441090101"``,
        ``"carreau:CRS3035RES200mN…"``), ``code_insee``, ``level`` (one of
        :data:`LEVELS`), ``unit_code`` (IRIS code or cell id; the INSEE code for a
        commune), ``share_young`` / ``share_population`` (the unit's share of its
        commune), ``share_basis`` (:data:`BASIS_YOUNG`, :data:`BASIS_POPULATION` or
        :data:`BASIS_COMMUNE`), ``births``, ``under3``, ``population`` (the commune's
        totals spread; NaN where the commune's value is unknown), ``births_estimated``
        (True for sub-commune units).
    level
        Finest level present (one of :data:`LEVELS`).
    level_label
        Its French label ("carreaux de 200 m", "IRIS", "communes").
    communes_by_level
        Number of communes at each level.
    notes
        French sentences for the app and the report (how births were spread, which
        communes kept their commune point).
    params
        Column names used.
    """

    points: gpd.GeoDataFrame
    level: str
    level_label: str
    communes_by_level: dict[str, int]
    notes: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def xy(self) -> np.ndarray:
        """``(n, 2)`` coordinates in metres (EPSG:2154), for travel times."""
        return np.column_stack([self.points.geometry.x.to_numpy(),
                                self.points.geometry.y.to_numpy()])

    def by_commune(self) -> pd.DataFrame:
        """Sums of births, under-3 and population per commune (NaN stays NaN).

        Examples
        --------
        >>> from shapely.geometry import Point
        >>> c = gpd.GeoDataFrame({"code_insee": ["44109"], "births_2024": [30.0],
        ...                       "population_2022": [1000.0]},
        ...                      geometry=[Point(355000, 6690000)], crs="EPSG:2154")
        >>> float(compute_demand_points(c).by_commune().loc["44109", "births"])
        30.0
        """
        cols = ["births", "under3", "population"]
        return cast("pd.DataFrame", self.points.groupby("code_insee")[cols].sum(min_count=1))


def compute_demand_points(
    communes: gpd.GeoDataFrame,
    *,
    iris: gpd.GeoDataFrame | None = None,
    grid: gpd.GeoDataFrame | None = None,
    births_col: str = "births_2024",
    population_col: str = "population_2022",
    under3_col: str | None = None,
    iris_young_col: str = "pop_0_2",
    iris_population_col: str = "population",
    grid_young_col: str = "ind_0_3",
    grid_population_col: str = "ind",
) -> DemandPoints:
    """Demand points at the finest level loaded, with the commune point as fallback.

    Parameters
    ----------
    communes
        One row per commune: ``code_insee`` (str), ``births_col``, ``population_col``,
        optionally ``under3_col``, and a polygon or point geometry with a CRS.
    iris
        IRIS table (e.g. :func:`data_sources.iris.load_iris_population`): ``code_iris``,
        ``code_insee``, ``iris_young_col``, ``iris_population_col``, polygons.
    grid
        200 m cells (e.g. :func:`data_sources.filosofi.load_filosofi`): ``idcar_200m``,
        ``code_insee`` (empty when a cell straddles several communes: it then goes to the
        commune that holds its centre, which needs commune polygons), ``grid_young_col``,
        ``grid_population_col``, polygons or points.
    births_col, population_col
        Commune columns of yearly births and population.
    under3_col
        Commune column of children under 3; ``None``: ``UNDER3_YEARS x births`` (an
        estimate).
    iris_young_col, iris_population_col, grid_young_col, grid_population_col
        Columns of the finer layers.

    Returns
    -------
    DemandPoints

    Raises
    ------
    InputError
        A missing column (named), no CRS, duplicate commune codes.

    Examples
    --------
    A commune of 20 births with two IRIS holding 30 and 10 children aged 0-2: 15 and 5
    births (an estimate).

    >>> from shapely.geometry import box
    >>> c = gpd.GeoDataFrame({"code_insee": ["44109"], "births_2024": [20.0],
    ...                       "population_2022": [4000.0]},
    ...                      geometry=[box(0, 0, 2000, 1000)], crs="EPSG:2154")
    >>> i = gpd.GeoDataFrame({"code_iris": ["441090101", "441090102"],
    ...                       "code_insee": ["44109", "44109"], "pop_0_2": [30.0, 10.0],
    ...                       "population": [2500.0, 1500.0]},
    ...                      geometry=[box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000)],
    ...                      crs="EPSG:2154")
    >>> d = compute_demand_points(c, iris=i)
    >>> d.level_label, d.points["births"].tolist(), d.points["population"].tolist()
    ('IRIS', [15.0, 5.0], [2500.0, 1500.0])
    """
    base = _communes(communes, births_col=births_col, population_col=population_col,
                     under3_col=under3_col)
    codes = set(base["code_insee"])
    units: list[pd.DataFrame] = []
    covered: dict[str, str] = {}
    notes: list[str] = []
    if grid is not None:
        cells = _grid_units(grid, base, young_col=grid_young_col,
                            population_col=grid_population_col, notes=notes)
        cells = cells[cells["code_insee"].isin(codes)]
        units.append(cells)
        covered.update(dict.fromkeys(cells["code_insee"].unique(), "carreau"))
    if iris is not None:
        iu = _iris_units(iris, young_col=iris_young_col, population_col=iris_population_col)
        iu = iu[iu["code_insee"].isin(codes) & ~iu["code_insee"].isin(set(covered))]
        # a commune with a single IRIS is that IRIS: nothing finer than the commune
        n_iris = iu.groupby("code_insee")["unit_code"].transform("size")
        iu = iu[n_iris >= 2]
        units.append(iu)
        covered.update(dict.fromkeys(iu["code_insee"].unique(), "iris"))

    rows = [_spread(base, u) for u in units if not u.empty]
    finer = pd.concat(rows, ignore_index=True) if rows else None
    if finer is not None:
        # communes whose units have no usable weight fall back to their point
        fallback = set(finer.loc[finer["share_basis"] == BASIS_COMMUNE, "code_insee"])
        finer = finer[~finer["code_insee"].isin(fallback)]
        for code in fallback:
            covered.pop(code, None)
        if fallback:
            notes.append(
                f"{len(fallback)} commune(s) sans effectif connu dans leurs unités fines "
                f"({', '.join(sorted(fallback)[:5])}{'…' if len(fallback) > 5 else ''}) : "
                "point de la commune."
            )
    rest = base[~base["code_insee"].isin(set(covered))]
    commune_rows = pd.DataFrame({
        "origin_id": "commune:" + rest["code_insee"],
        "code_insee": rest["code_insee"],
        "level": "commune",
        "unit_code": rest["code_insee"],
        "share_young": 1.0,
        "share_population": 1.0,
        "share_basis": BASIS_COMMUNE,
        "births": rest["births"],
        "under3": rest["under3"],
        "population": rest["population"],
        "births_estimated": False,
        "geometry": rest["point"],
    })
    parts = [p for p in (finer, commune_rows) if p is not None and not p.empty]
    table = pd.concat(parts, ignore_index=True) if parts else commune_rows
    table["births_estimated"] = table["births_estimated"].astype(bool)
    points = gpd.GeoDataFrame(table.loc[:, list(DEMAND_COLUMNS)], geometry="geometry",
                              crs=METRIC_CRS)
    points = points.sort_values(["code_insee", "origin_id"]).reset_index(drop=True)

    by_level = {lv: int(points.loc[points["level"] == lv, "code_insee"].nunique())
                for lv in LEVELS}
    present = [lv for lv in LEVELS if by_level[lv] > 0]
    level = present[-1] if present else "commune"
    for lv, young in (("carreau", "individus de 0 à 3 ans (Filosofi 2019)"),
                      ("iris", "enfants de 0 à 2 ans (recensement)")):
        if by_level[lv]:
            notes.insert(0,
                f"Demande calculée par {LEVEL_LABELS[lv]} pour {by_level[lv]} commune(s) : "
                f"les naissances de chaque commune sont réparties selon la part de ses "
                f"{young} dans chaque unité (estimation, les naissances ne sont pas "
                "publiées sous la commune).")
    if level != "commune" and by_level["commune"]:
        notes.append(f"{by_level['commune']} commune(s) non couverte(s) par un découpage "
                     "plus fin : un point par commune.")
    return DemandPoints(
        points=points, level=level, level_label=LEVEL_LABELS[level],
        communes_by_level=by_level, notes=tuple(notes),
        params={"births_col": births_col, "population_col": population_col,
                "under3_col": under3_col, "iris_young_col": iris_young_col,
                "grid_young_col": grid_young_col},
    )


# --------------------------------------------------------------------------------------


def _need(gdf: pd.DataFrame, cols: list[str], name: str) -> None:
    missing = [c for c in cols if c not in gdf.columns]
    if missing:
        raise InputError(
            f"{name} lacks columns {missing!r}; columns are {list(gdf.columns)!r}"
        )


def _metric(gdf: gpd.GeoDataFrame, name: str) -> gpd.GeoSeries:
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(f"{name} must be a GeoDataFrame; got {type(gdf).__name__}")
    if gdf.crs is None:
        raise InputError(f"{name} has no CRS: set it (e.g. EPSG:4326) before use")
    return gdf.geometry.to_crs(METRIC_CRS)


def _points(geoms: gpd.GeoSeries) -> gpd.GeoSeries:
    is_point = geoms.geom_type == "Point"
    return gpd.GeoSeries(np.where(is_point, geoms, geoms.representative_point()),
                         index=geoms.index, crs=METRIC_CRS)


def _num(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _communes(communes: gpd.GeoDataFrame, *, births_col: str, population_col: str,
              under3_col: str | None) -> pd.DataFrame:
    _need(communes, ["code_insee", births_col, population_col]
          + ([under3_col] if under3_col else []), "communes")
    geoms = _metric(communes, "communes")
    codes = communes["code_insee"].astype(str)
    dup = codes[codes.duplicated()]
    if not dup.empty:
        raise InputError(f"communes has duplicate code_insee {dup.head(5).tolist()!r}")
    births = _num(communes[births_col])
    under3 = _num(communes[under3_col]) if under3_col else UNDER3_YEARS * births
    return pd.DataFrame({
        "code_insee": codes.to_numpy(),
        "births": births.to_numpy(),
        "under3": under3.to_numpy(),
        "population": _num(communes[population_col]).to_numpy(),
        "point": _points(geoms).to_numpy(),
        "polygon": geoms.to_numpy(),
    })


def _iris_units(iris: gpd.GeoDataFrame, *, young_col: str, population_col: str
                ) -> pd.DataFrame:
    _need(iris, ["code_iris", "code_insee", young_col, population_col], "iris")
    geoms = _metric(iris, "iris")
    codes = iris["code_iris"].astype(str)
    dup = codes[codes.duplicated()]
    if not dup.empty:
        raise InputError(f"iris has duplicate code_iris {dup.head(5).tolist()!r}")
    return pd.DataFrame({
        "level": "iris", "unit_code": codes.to_numpy(),
        "code_insee": iris["code_insee"].astype(str).to_numpy(),
        "young": _num(iris[young_col]).to_numpy(),
        "pop": _num(iris[population_col]).to_numpy(),
        "geometry": _points(geoms).to_numpy(),
    })


def _grid_units(grid: gpd.GeoDataFrame, base: pd.DataFrame, *, young_col: str,
                population_col: str, notes: list[str]) -> pd.DataFrame:
    _need(grid, ["idcar_200m", "code_insee", young_col, population_col], "grid")
    geoms = _metric(grid, "grid")
    centres = gpd.GeoSeries(np.where(geoms.geom_type == "Point", geoms, geoms.centroid),
                            index=grid.index, crs=METRIC_CRS)
    code = grid["code_insee"].fillna("").astype(str).to_numpy().copy()
    open_ = code == ""
    if open_.any():
        polys = gpd.GeoDataFrame({"code_insee": base["code_insee"]},
                                 geometry=list(base["polygon"]), crs=METRIC_CRS)
        polys = polys[polys.geom_type.isin(["Polygon", "MultiPolygon"])]
        pts = gpd.GeoDataFrame(geometry=centres[open_].reset_index(drop=True), crs=METRIC_CRS)
        hit = gpd.sjoin(pts, polys, how="left", predicate="within")
        hit = hit[~hit.index.duplicated(keep="first")]
        code[np.flatnonzero(open_)] = hit["code_insee"].fillna("").to_numpy()
        lost = int((code == "").sum())
        if lost:
            notes.append(f"{lost} carreau(x) à cheval sur plusieurs communes n'ont pu être "
                         "rattachés à aucune commune chargée : ils sont ignorés.")
    ids = grid["idcar_200m"].astype(str)
    return pd.DataFrame({
        "level": "carreau", "unit_code": ids.to_numpy(), "code_insee": code,
        "young": _num(grid[young_col]).to_numpy(),
        "pop": _num(grid[population_col]).to_numpy(),
        "geometry": centres.to_numpy(),
    })


def _shares(values: pd.Series, keys: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Share of each unit in its commune and whether the commune's values are usable."""
    total = values.groupby(keys).transform("sum")
    all_known = values.notna().groupby(keys).transform("all")
    ok = all_known & (total > 0)
    return (values / total).where(ok), ok


def _spread(base: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    u = units.reset_index(drop=True)
    young_share, young_ok = _shares(u["young"], u["code_insee"])
    pop_share, pop_ok = _shares(u["pop"], u["code_insee"])
    basis = np.where(young_ok, BASIS_YOUNG, np.where(pop_ok, BASIS_POPULATION, BASIS_COMMUNE))
    s_young = young_share.where(young_ok, pop_share)
    s_pop = pop_share.where(pop_ok, young_share)
    b = base.set_index("code_insee")
    c = u["code_insee"]
    return pd.DataFrame({
        "origin_id": u["level"] + ":" + u["unit_code"],
        "code_insee": c,
        "level": u["level"],
        "unit_code": u["unit_code"],
        "share_young": s_young,
        "share_population": s_pop,
        "share_basis": basis,
        "births": c.map(b["births"]).to_numpy() * s_young,
        "under3": c.map(b["under3"]).to_numpy() * s_young,
        "population": c.map(b["population"]).to_numpy() * s_pop,
        "births_estimated": True,
        "geometry": u["geometry"],
    })
