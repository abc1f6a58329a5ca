"""The source runners of a fetch: one function per live source, what each returns.

Split from :mod:`data_sources.fetch` (which runs them, judges each answer and writes the
store); :data:`_RUNNERS` maps a source key to its runner.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from data_sources import (
    annuaire,
    ban,
    boundaries,
    bpe,
    caf,
    demo,
    filosofi,
    finess,
    inclusion,
    insee_melodi,
    iris,
    osm,
    qpv,
)
from data_sources.cog import load_cog
from data_sources.store import (
    StoredTerritory,
)
from diagnosis.errors import SourceError
from diagnosis.needs import under3_children
from diagnosis.schema import FACILITY_DTYPES, NEEDS_COLUMNS, Territory
from diagnosis.settings import METRIC_CRS, WGS84


@dataclass
class _Loaded:
    """What a source runner returns."""

    layer: pd.DataFrame
    vintage: str = ""
    unplaced: pd.DataFrame | None = None
    note: str = ""
    data_date: str = ""  # oldest date of the data served (cache entry, file), for the ledger


@dataclass
class _Run:
    """State shared by the runners of one fetch."""

    area: Territory
    offline: bool | None  # None: the HTTP layer's setting (MAILLAGE_OFFLINE)
    previous: StoredTerritory | None
    fresh: dict[str, _Loaded] = field(default_factory=dict)

    def layer(self, key: str) -> pd.DataFrame | None:
        """Return this run's table of ``key``, else the stored one, else ``None``."""
        if key in self.fresh:
            return self.fresh[key].layer
        if self.previous is not None:
            return self.previous.source_layers.get(key)
        return None


def _demo_communes(area: Territory) -> gpd.GeoDataFrame:
    com = demo.load_demo_communes()
    return com.loc[com["code_insee"].isin(area.communes)].reset_index(drop=True)


def demo_covers(area: Territory) -> bool:
    """Whether the embedded demo holds every commune of ``area``."""
    codes = demo.demo_commune_codes()
    return bool(area.communes) and all(c in codes for c in area.communes)


def _run_boundaries(run: _Run) -> _Loaded:
    a = run.area
    if a.kind == "epci":
        gdf = boundaries.load_communes(epci_siren=a.code, offline=run.offline)
    else:
        parts = [boundaries.load_communes(dep_code=d, offline=run.offline)
                 for d in a.departements]
        gdf = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry",
                               crs=WGS84)
    gdf = gdf.loc[gdf["code_insee"].isin(a.communes)].reset_index(drop=True)
    if gdf.empty:
        raise SourceError(
            f"{boundaries.GEO_API.key}: none of the {len(a.communes)} communes of {a.label} "
            "came back from geo.api.gouv.fr."
        )
    missing = sorted(set(a.communes) - set(gdf["code_insee"]))
    note = f"{len(missing)} commune(s) sans contour : {', '.join(missing[:10])}" if missing else ""
    return _Loaded(gdf, vintage=f"COG en vigueur le {dt.date.today().isoformat()}", note=note)


def _melodi_vintage(needs: pd.DataFrame) -> str:
    labels = {"births": "naissances", "population": "population", "median_income": "Filosofi",
              "families": "familles", "under3_count": "moins de 3 ans (recensement)"}
    parts = []
    for prefix, label in labels.items():
        years = sorted(int(c[-4:]) for c in needs.columns
                       if re.fullmatch(rf"{prefix}_\d{{4}}", c) and needs[c].notna().any())
        if years:
            parts.append(f"{label} {years[-1]}")
    return ", ".join(parts)


def _run_melodi(run: _Run) -> _Loaded:
    needs = insee_melodi.load_insee_needs(run.area, errors="collect", offline=run.offline)
    failures: dict[str, str] = dict(needs.attrs.get("failures", {}))
    values = needs.drop(columns=["code_insee"])
    if len(failures) == len(insee_melodi.DEFAULT_SERIES) or not values.notna().any().any():
        first = next(iter(failures.values()), "no value for any commune")
        kinds = set(dict(needs.attrs.get("failure_kinds", {})).values())
        raise SourceError(f"{first} ({len(failures)} series out of "
                          f"{len(insee_melodi.DEFAULT_SERIES)} failed)",
                          kind=kinds.pop() if len(kinds) == 1 else None,
                          source=insee_melodi.MELODI.key)
    note = ("séries en échec : " + " ; ".join(f"{k} ({v})" for k, v in sorted(failures.items()))
            if failures else "")
    return _Loaded(needs, vintage=_melodi_vintage(needs), note=note)


def _unplaced(gdf: pd.DataFrame) -> pd.DataFrame | None:
    rows = gdf.attrs.get("unplaced")
    return rows if isinstance(rows, pd.DataFrame) and len(rows) else None


def _run_finess(run: _Run) -> _Loaded:
    gdf = finess.load_finess(run.area, offline=run.offline)
    return _Loaded(gdf, vintage=str(gdf.attrs.get("extraction_date", "")),
                   unplaced=_unplaced(gdf))


def _run_bpe(run: _Run) -> _Loaded:
    gdf = bpe.load_bpe(run.area, offline=run.offline)
    return _Loaded(gdf, vintage=str(gdf.attrs.get("vintage", bpe.DEFAULT_VINTAGE)),
                   unplaced=_unplaced(gdf), note=" ; ".join(gdf.attrs.get("notes", [])))


def _outline(run: _Run) -> gpd.GeoDataFrame:
    com = run.layer(boundaries.GEO_API.key)
    if com is None or len(com) == 0:
        com = _demo_communes(run.area)
    if len(com) == 0:
        raise SourceError(
            f"{osm.OSM.key}: the commune contours of {run.area.label} are needed to query "
            "OpenStreetMap and could not be fetched."
        )
    return gpd.GeoDataFrame(com[["code_insee", "geometry"]], geometry="geometry", crs=com.crs)


def _run_osm(run: _Run) -> _Loaded:
    com = _outline(run)
    polygon = com.to_crs(WGS84).union_all()
    gdf = osm.load_osm_facilities(polygon, communes=com)
    dates = sorted({d for d in gdf["source_date"] if d}) if len(gdf) else []
    return _Loaded(gdf, vintage=dates[-1] if dates else dt.date.today().isoformat())


def _run_caf(run: _Run) -> _Loaded:
    census = run.layer(iris.IRIS_CENSUS.key)  # weights of the arrondissements' rates
    weights = iris.children_by_arrondissement(census) if census is not None else {}
    cov = caf.load_coverage(run.area, levels=caf.ALL_LEVELS, children_under3=weights,
                            offline=run.offline)
    years = sorted(set(cov["year"].tolist()))
    return _Loaded(cov, vintage=str(years[-1]) if years else "",
                   note=" ; ".join(cov.attrs.get("notes", [])))


def _run_inclusion(run: _Run) -> _Loaded:
    gdf = inclusion.load_inclusion(run.area, offline=run.offline)
    dates = sorted({str(d)[:10] for d in gdf["source_date"] if d}) if len(gdf) else []
    return _Loaded(gdf, vintage=f"mise à jour jusqu'au {dates[-1]}" if dates else "",
                   unplaced=_unplaced(gdf))


def _run_annuaire(run: _Run) -> _Loaded:
    gdf = annuaire.load_annuaire(run.area, offline=run.offline)
    return _Loaded(gdf, vintage=str(gdf.attrs.get("vintage", "")), unplaced=_unplaced(gdf))


def _run_iris_contours(run: _Run) -> _Loaded:
    gdf = iris.load_iris_contours(run.area, offline=run.offline)
    missing = sorted(set(run.area.communes) - set(gdf["code_insee"]))
    note = f"{len(missing)} commune(s) sans IRIS : {', '.join(missing[:10])}" if missing else ""
    return _Loaded(gdf, vintage="dernière édition (Géoplateforme, LATEST)", note=note)


def _run_iris_census(run: _Run) -> _Loaded:
    census = iris.load_iris_census(run.area, offline=run.offline)
    years = sorted({int(y) for y in census["census_year"].dropna()})
    return _Loaded(census, vintage=f"recensement {years[-1]}" if years else "")


def _run_grid(run: _Run) -> _Loaded:
    cells = filosofi.load_filosofi(_outline(run), offline=run.offline)
    cells = cells[cells["code_insee"].isin(run.area.communes) | cells["code_insee"].eq("")]
    imputed = pd.to_numeric(cells["imputed"], errors="coerce")
    note = (f"{int((imputed == 1).sum())} carreau(x) sur {len(cells)} imputé(s) "
            "(moins de 11 ménages : valeurs estimées)" if imputed.notna().any() else "")
    return _Loaded(cells.reset_index(drop=True), vintage="Filosofi 2021", note=note)


def _run_qpv(run: _Run) -> _Loaded:
    gdf = qpv.load_qpv(run.area, fallback=False, offline=run.offline)
    notes = list(gdf.attrs.get("notes", []))
    if gdf.empty:
        notes.insert(0, "aucun QPV dans le territoire")
    return _Loaded(gdf, vintage="QPV 2024 (" + str(gdf.attrs.get("basis", "")) + ")",
                   note=" ; ".join(notes))


_RUNNERS: dict[str, Callable[[_Run], _Loaded]] = {
    boundaries.GEO_API.key: _run_boundaries,
    insee_melodi.MELODI.key: _run_melodi,
    finess.FINESS.key: _run_finess,
    bpe.BPE.key: _run_bpe,
    osm.OSM.key: _run_osm,
    caf.CAF.key: _run_caf,
    inclusion.INCLUSION.key: _run_inclusion,
    annuaire.ANNUAIRE.key: _run_annuaire,
    iris.IRIS_CONTOURS.key: _run_iris_contours,
    iris.IRIS_CENSUS.key: _run_iris_census,
    filosofi.FILOSOFI_2021.key: _run_grid,
    qpv.QPV.key: _run_qpv,
}


def _address_rows(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Address-only rows with every facility column (for the BAN geocoder)."""
    parts = []
    for f in frames:
        f = f.copy()
        for col, dtype in FACILITY_DTYPES.items():
            if col not in f.columns:
                f[col] = np.nan if dtype == "float64" else ""
        if "geometry" in f.columns:
            f = f.drop(columns="geometry")
        parts.append(pd.DataFrame(f[list(FACILITY_DTYPES)]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=list(FACILITY_DTYPES))


def compose_communes(
    area: Territory,
    contours: gpd.GeoDataFrame,
    needs: pd.DataFrame | None,
) -> gpd.GeoDataFrame:
    """Communes of ``area`` with the needs columns of the schema, from contours and Melodi.

    Parameters
    ----------
    area
        The territory (its communes are kept).
    contours
        Commune contours (``code_insee, name, epci_code, dep_code, geometry``).
    needs
        Melodi table of :func:`data_sources.insee_melodi.load_insee_needs`, or ``None``
        (the needs columns are then missing values).

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`~diagnosis.schema.NEEDS_COLUMNS`, ``townhall_lon``/``townhall_lat`` (the
        demo's town halls where known, else a point inside the commune), the Melodi
        columns by year, ``births_2016_2021`` and ``under3_count`` when published, and the
        polygons (EPSG:4326). Derived columns: ``area_km2`` (EPSG:2154 area),
        ``density_per_km2``, ``single_parent_share_2022`` and ``under3_estimate``
        (3 × births 2024, an estimate). Missing values stay NaN, never 0.
    """
    com = contours.loc[contours["code_insee"].isin(area.communes),
                       ["code_insee", "name", "epci_code", "dep_code", "geometry"]].copy()
    com = gpd.GeoDataFrame(com, geometry="geometry", crs=contours.crs).to_crs(WGS84)
    epci = load_cog().epci
    names = dict(zip(epci["code"].astype(str), epci["name"].astype(str), strict=True))
    com["epci_name"] = com["epci_code"].map(lambda c: names.get(str(c), ""))
    # the EPT of the Grand Paris: the « intercommunalité » of its communes (not the MGP)
    from data_sources.national import ept_of_communes

    ept = ept_of_communes()
    com["ept_code"] = com["code_insee"].astype(str).map(ept["ept_code"]).fillna("")
    com["ept_name"] = com["code_insee"].astype(str).map(ept["ept_name"]).fillna("")
    halls = demo.load_demo_communes().set_index("code_insee")[["townhall_lon", "townhall_lat"]]
    inside = com.geometry.to_crs(METRIC_CRS).representative_point().to_crs(WGS84)
    known = com["code_insee"].map(halls["townhall_lon"])
    com["townhall_lon"] = known.where(known.notna(), inside.x).astype("float64")
    com["townhall_lat"] = com["code_insee"].map(halls["townhall_lat"]).where(
        known.notna(), inside.y).astype("float64")
    if needs is not None and len(needs):
        extra = needs.drop(columns=[c for c in ("name", "epci_code", "epci_name", "dep_code")
                                    if c in needs.columns])
        com = com.merge(extra, on="code_insee", how="left")
    com = gpd.GeoDataFrame(com, geometry="geometry", crs=WGS84)
    births = [f"births_{y}" for y in range(2016, 2022)]
    if all(c in com.columns for c in births):
        com["births_2016_2021"] = com[births].sum(axis=1, min_count=6).where(
            com[births].notna().all(axis=1))
    com["area_km2"] = com.geometry.to_crs(METRIC_CRS).area / 1e6
    for col in NEEDS_COLUMNS:
        if col not in com.columns:
            com[col] = np.nan
    pop = pd.to_numeric(com["population_2022"], errors="coerce")
    com["density_per_km2"] = pop / com["area_km2"].where(com["area_km2"] > 0)
    fam = pd.to_numeric(com["families_2022"], errors="coerce")
    single = pd.to_numeric(com["single_parent_families_2022"], errors="coerce")
    com["single_parent_share_2022"] = 100.0 * single / fam.where(fam > 0)
    com["under3_estimate"], com["under3_basis"] = under3_children(com)
    first = [*NEEDS_COLUMNS, "townhall_lon", "townhall_lat"]
    rest = [c for c in com.columns if c not in first and c != "geometry"]
    out = com[[*first, *rest, "geometry"]].sort_values("code_insee").reset_index(drop=True)
    for col in out.columns:
        if col not in {"code_insee", "name", "epci_code", "epci_name", "dep_code", "geometry",
                       "under3_basis"}:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=WGS84)


def _run_ban(
    run: _Run, unplaced_in: Mapping[str, pd.DataFrame]
) -> tuple[tuple[str, str], dict[str, pd.DataFrame], tuple[int, int]]:
    rows = _address_rows(unplaced_in.values())
    if rows.empty:
        return ("skipped", "aucune adresse à géocoder (aucune structure sans position)"), {}, (
            0, 0)
    halls = None
    contours = run.layer(boundaries.GEO_API.key)
    if contours is not None and len(contours):
        com = compose_communes(run.area, gpd.GeoDataFrame(contours, geometry="geometry"), None)
        halls = gpd.GeoDataFrame({"code_insee": com["code_insee"]}, crs=WGS84,
                                 geometry=gpd.points_from_xy(com["townhall_lon"],
                                                             com["townhall_lat"]))
    elif demo_covers(run.area):
        com = _demo_communes(run.area)
        halls = gpd.GeoDataFrame({"code_insee": com["code_insee"]}, crs=WGS84,
                                 geometry=gpd.points_from_xy(com["townhall_lon"],
                                                             com["townhall_lat"]))
    placed = ban.place_facilities(rows, town_halls=halls, offline=run.offline)
    by_source = {str(k): g.reset_index(drop=True) for k, g in placed.groupby("source")}
    rejected = len(rows) - len(placed)
    return ("ok", ""), by_source, (len(placed), rejected)
