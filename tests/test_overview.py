"""First diagnosis on a hand-checkable grid: three 10 km square communes in a row."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import Point, box

from diagnosis.errors import InputError, MissingDataError
from diagnosis.overview import compute_overview, compute_overviews, nearest_distances
from diagnosis.schema import Territory, empty_facilities, validate_facilities
from diagnosis.settings import METRIC_CRS

X0, Y0 = 300_000.0, 6_700_000.0  # Lambert-93, near Nantes


def _communes() -> gpd.GeoDataFrame:
    polys = [box(X0 + i * 10_000, Y0, X0 + (i + 1) * 10_000, Y0 + 10_000) for i in range(3)]
    halls = gpd.GeoSeries([Point(X0 + i * 10_000 + 5_000, Y0 + 5_000) for i in range(3)],
                          crs=METRIC_CRS).to_crs("EPSG:4326")
    gdf = gpd.GeoDataFrame({
        "code_insee": ["44001", "44002", "44003"],
        "name": ["A", "B", "C"],
        "births_2024": [100.0, 50.0, 10.0],
        "population_2022": [5000.0, 2000.0, 500.0],
        "under3_estimate": [300.0, 150.0, 30.0],
        "townhall_lon": halls.x.to_numpy(), "townhall_lat": halls.y.to_numpy(),
    }, geometry=polys, crs=METRIC_CRS).to_crs("EPSG:4326")
    return gdf


def _facilities(rows) -> gpd.GeoDataFrame:
    recs = []
    for i, (typ, code, x, y, cap) in enumerate(rows):
        recs.append({"facility_id": f"t:{i}", "type": typ, "subtype": "", "name": f"F{i}",
                     "address": "", "postcode": "", "code_insee": code, "capacity": cap,
                     "operator": "", "phone": "", "email": "", "website": "", "source": "t",
                     "source_id": str(i), "source_date": "2024", "position_precision": "address",
                     "geometry": Point(x, y)})
    gdf = gpd.GeoDataFrame(recs, geometry="geometry", crs=METRIC_CRS).to_crs("EPSG:4326")
    return validate_facilities(gdf, source="test")


def test_nearest_with_no_target_is_infinite():
    d, i = nearest_distances(np.zeros((2, 2)), np.empty((0, 2)))
    assert np.isinf(d).all() and (i == -1).all()


def test_counts_distances_and_births_within_threshold():
    com = _communes()
    fac = _facilities([
        ("pmi", "44001", X0 + 5_000, Y0 + 5_000, np.nan),       # at A's town hall
        ("eaje", "44001", X0 + 5_000, Y0 + 8_000, 20.0),        # 3 km north of A's hall
        ("eaje", "44001", X0 + 5_000, Y0 + 2_000, np.nan),      # capacity unknown
        ("eaje", "44004", X0 + 35_000, Y0 + 5_000, 12.0),       # outside: 10 km east of C
    ])
    terr = Territory("epci", "200000000", "T", ("44001", "44002", "44003"), ("44",))
    ov = compute_overview(terr, com, fac, threshold_m=6_000, types=("pmi", "eaje"))
    c = ov.layers["communes"].set_index("code_insee")
    assert c["n_eaje"].tolist() == [2, 0, 0]
    assert c.loc["44001", "places_eaje"] == 20.0 and math.isnan(c.loc["44002", "places_eaje"])
    assert c["dist_m_pmi"].round(3).tolist() == [0.0, 10_000.0, 20_000.0]
    # C's nearest crèche is across the border (10 km), B's is A's (10 km - 3 km: sqrt(1e8+9e6))
    assert c.loc["44003", "dist_m_eaje"] == pytest.approx(10_000.0, abs=1e-3)
    assert c.loc["44002", "dist_m_eaje"] == pytest.approx(math.hypot(10_000, 3_000), abs=1e-3)
    s = ov.summary
    assert s["n_communes"] == 3 and s["births_2024"] == 160.0
    assert s["facilities"]["eaje"] == {"count": 2, "places_known": 20.0, "with_capacity": 1,
                                       "at_commune_precision": 0, "status": "partial"}
    # no source lists every PMI: the births within reach are a lower bound
    assert s["births_within_threshold"]["pmi"] == {"births": 100.0, "share": 100 / 160,
                                                   "status": "partial", "lower_bound": True}
    assert s["communes_without"]["pmi"] == ["44002", "44003"]
    assert len(ov.layers["facilities"]) == 3
    assert ov.layers["facilities_nearby"]["code_insee"].tolist() == ["44004"]
    with pytest.raises(TypeError):
        ov.layers["communes"] = None  # read-only result


def test_missing_type_gives_infinite_distance_and_unknown_share():
    ov = compute_overview(Territory("commune", "44001", "A", ("44001",)), _communes(),
                          empty_facilities(), types=("laep",))
    assert np.isinf(ov.layers["communes"]["dist_m_laep"]).all()
    assert ov.summary["births_within_threshold"]["laep"]["share"] is None  # not known
    covered = compute_overview(Territory("commune", "44001", "A", ("44001",)), _communes(),
                               empty_facilities(), types=("laep",),
                               sources=[{"key": "s", "title": "S", "covers": "laep"}])
    assert covered.summary["births_within_threshold"]["laep"]["share"] == 0.0


def test_partial_and_missing_territories():
    part = Territory("epci", "1", "P", ("44001", "49001"), ("44", "49"))
    ov = compute_overview(part, _communes(), empty_facilities())
    assert ov.summary["communes_missing"] == ["49001"]
    with pytest.raises(MissingDataError, match="49"):
        compute_overview(Territory("departement", "49", "Maine-et-Loire", ("49001",), ("49",)),
                         _communes(), empty_facilities())


def test_bad_parameters():
    terr = Territory("commune", "44001", "A", ("44001",))
    with pytest.raises(InputError, match="threshold_m"):
        compute_overview(terr, _communes(), empty_facilities(), threshold_m=-1)
    with pytest.raises(InputError, match="creche"):
        compute_overview(terr, _communes(), empty_facilities(), types=("creche",))


def test_many_territories_at_once_equal_each_on_its_own():
    """compute_overviews (the comparison's path) gives each territory's own overview."""
    com = _communes()
    fac = _facilities([
        ("pmi", "44001", X0 + 5_000, Y0 + 5_000, np.nan),
        ("eaje", "44001", X0 + 5_000, Y0 + 8_000, 20.0),
        ("eaje", "44002", X0 + 15_000, Y0 + 2_000, np.nan),
        ("eaje", "44003", X0 + 25_000, Y0 + 5_000, 12.0),
        ("eaje", "44004", X0 + 35_000, Y0 + 5_000, 7.0),        # outside every territory
        ("laep", "44003", X0 + 24_000, Y0 + 5_000, np.nan),
    ])
    terrs = [Territory("commune", "44001", "A", ("44001",), ("44",)),
             Territory("custom", "c1", "B et C", ("44003", "44002", "44999"), ("44",)),
             Territory("custom", "c2", "Ailleurs", ("85001",), ("85",)),
             Territory("epci", "200000000", "T", ("44001", "44002", "44003"), ("44",))]
    many = compute_overviews(terrs, com, fac, threshold_m=4_000)
    assert many[2] is None  # no commune loaded: the single call raises
    with pytest.raises(MissingDataError):
        compute_overview(terrs[2], com, fac, threshold_m=4_000)
    for t, ov in zip(terrs, many, strict=True):
        if ov is None:
            continue
        one = compute_overview(t, com, fac, threshold_m=4_000)
        assert dict(ov.summary) == dict(one.summary)
        assert dict(ov.params) == dict(one.params)
        for name, layer in one.layers.items():
            assert_geodataframe_equal(ov.layers[name], layer)
    b_and_c = many[1].summary
    assert b_and_c["facilities"]["eaje"]["count"] == 2
    assert b_and_c["facilities"]["eaje"]["places_known"] == 12.0
    assert b_and_c["communes_missing"] == ["44999"]
    # A's nearest crèche of B and C's own is theirs; A's pmi is the nearest outside
    assert many[1].layers["facilities_nearby"]["code_insee"].tolist() == ["44001"]
    assert compute_overviews([], com, fac) == []


def test_layers_are_cut_when_read():
    """An overview's layers, built lazily from the shared table, are the territory's own
    rows, read-only and built once."""
    com = _communes()
    fac = _facilities([("eaje", "44002", X0 + 15_000, Y0 + 2_000, 9.0),
                       ("eaje", "44003", X0 + 25_000, Y0 + 5_000, 12.0)])
    terr = Territory("custom", "c1", "B et C", ("44003", "44002"), ("44",))
    ov = compute_overviews([terr], com, fac, threshold_m=4_000)[0]
    assert ov is not None
    assert set(ov.layers) == {"communes", "facilities", "facilities_nearby"}
    assert "communes" in ov.layers and "autre" not in ov.layers
    layer = ov.layers["communes"]
    assert layer["code_insee"].tolist() == ["44002", "44003"]
    assert layer["births_2024"].tolist() == [50.0, 10.0]
    assert layer["n_eaje"].tolist() == [1, 1]
    assert layer.crs.to_epsg() == 4326
    assert ov.layers["facilities"]["name"].tolist() == ["F0", "F1"]
    assert ov.layers["communes"] is layer
    with pytest.raises(TypeError):
        ov.layers["communes"] = layer  # type: ignore[index]
    assert ov.summary["births_2024"] == 60.0 and ov.summary["population_2022"] == 2500.0


def test_metric_xy_equals_the_reprojected_points():
    """The facilities' metric coordinates are those of ``to_crs`` to the last bit."""
    from diagnosis.overview import metric_xy

    rng = np.random.default_rng(3)
    pts = gpd.GeoSeries.from_xy(rng.uniform(-5, 8, 5000), rng.uniform(42, 51, 5000),
                                crs="EPSG:4326")
    ref = pts.to_crs(METRIC_CRS)
    xy = metric_xy(pts)
    assert np.array_equal(xy[:, 0], ref.x.to_numpy()) and np.array_equal(xy[:, 1],
                                                                          ref.y.to_numpy())
    gap = gpd.GeoSeries([Point(-1.5, 47.2), None], crs="EPSG:4326")  # the reprojection's
    ref = gap.to_crs(METRIC_CRS)  # own answer for a missing point: NaN
    np.testing.assert_array_equal(metric_xy(gap), np.column_stack([ref.x, ref.y]))
    with pytest.raises(ValueError):  # not points: refused as the reprojection refuses
        metric_xy(gpd.GeoSeries([Point(-1.5, 47.2), box(-1.6, 47.1, -1.5, 47.2)],
                                crs="EPSG:4326"))
    assert metric_xy(gpd.GeoSeries([], crs="EPSG:4326")).shape == (0, 2)
    web = pts.head(50).to_crs("EPSG:3857")  # another CRS: PROJ's own transformation
    ref = web.to_crs(METRIC_CRS)
    np.testing.assert_array_equal(metric_xy(web), np.column_stack([ref.x, ref.y]))


def test_wgs84_to_lambert93_is_still_projs_choice():
    """The pipeline written down is the one PROJ's database gives for EPSG:4326 -> 2154."""
    from pyproj import Transformer

    from diagnosis.overview import WGS84_TO_LAMBERT93

    chosen = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    assert chosen.definition == WGS84_TO_LAMBERT93
    lon = np.array([-4.5, 2.35, 8.5, 55.45, -61.0])  # Brest, Paris, Corse, La Réunion…
    lat = np.array([48.4, 48.85, 42.0, -21.1, 14.6])
    ours = Transformer.from_pipeline(WGS84_TO_LAMBERT93).transform(lon, lat)
    assert np.array_equal(ours, chosen.transform(lon, lat))


def test_offer_per_commune_equals_a_grouping_of_whole_rows():
    """Counts and places per commune and type equal a plain pandas grouping of the
    facility rows (capacities with gaps and fractions, codes outside the communes)."""
    from diagnosis.overview import _CommuneOffer

    rng = np.random.default_rng(5)
    n = 3000
    types = np.array(["eaje", "pmi", "rpe", "mam"])[rng.integers(0, 4, n)]
    codes = np.array(["44001", "44002", "44003", "44999"])[rng.integers(0, 4, n)]
    cap = np.where(rng.random(n) < 0.3, np.nan, rng.integers(1, 60, n) / rng.choice([1, 2, 3], n))
    rows = [(t, c, X0 + rng.uniform(0, 30_000), Y0 + rng.uniform(0, 10_000), v)
            for t, c, v in zip(types, codes, cap, strict=True)]
    fac = _facilities(rows)
    com = _communes()
    table = _CommuneOffer.build(com, fac, {"44001", "44002", "44003"},
                                types=("eaje", "pmi", "rpe", "mam", "laep"))
    keys = table.communes["code_insee"].tolist()
    for t in ("eaje", "pmi", "rpe", "mam", "laep"):
        of_type = fac.loc[fac["type"].eq(t) & fac["code_insee"].isin(keys)]
        counts = of_type.groupby("code_insee").size().reindex(keys).fillna(0).astype(int)
        places = of_type.groupby("code_insee")["capacity"].sum(min_count=1).reindex(keys)
        assert table.columns[f"n_{t}"].tolist() == counts.tolist()
        np.testing.assert_array_equal(table.columns[f"places_{t}"],
                                      places.astype("float64").to_numpy())
    assert table.columns["n_laep"].sum() == 0 and np.isnan(table.columns["places_laep"]).all()


def test_nearest_pair_by_pair_equals_the_k_d_tree(monkeypatch):
    """Up to 60 M pairs the nearest facility is searched pair by pair (no scipy import for
    a 100,000-row facility file): the same distances and the same first of equally near
    targets (co-located ones included) as the k-d tree beyond."""
    import diagnosis.overview as overview

    rng = np.random.default_rng(8)
    origins = rng.uniform(0, 50_000, (300, 2)).round(0)
    targets = rng.uniform(0, 50_000, (5_000, 2)).round(0)
    targets[100:140] = targets[99]  # a town hall's structures
    targets[4_000:4_010] = origins[:10]  # at an origin itself
    for bound in ("_ALL_PAIRS_MAX", "_TREE_FROM_PAIRS"):  # pair by pair, scipy loaded or not
        monkeypatch.setattr(overview, bound, 10**12)
    pairs = nearest_distances(origins, targets)
    for bound in ("_ALL_PAIRS_MAX", "_TREE_FROM_PAIRS"):
        monkeypatch.setattr(overview, bound, 0)
    tree = nearest_distances(origins, targets)
    assert np.array_equal(pairs[0], tree[0]) and np.array_equal(pairs[1], tree[1])
    monkeypatch.undo()  # Loire-Atlantique's 207 communes against a 100,000-row file
    assert overview._ALL_PAIRS_MAX >= 207 * 100_000
