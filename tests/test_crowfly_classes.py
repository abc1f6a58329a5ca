"""Crow-fly car model by density class, and its automatic calibration on a road graph
(issue 20, item 6).

The shipped class models (:data:`diagnosis.settings.CROWFLY_DRIVE_BY_CLASS`) come from
published values (French speed limits, the detour of road networks); these tests check
them against routed times on real OpenStreetMap graphs of each class built here with
osmnx (``data_sources.osm.road_graph_from_osm_file``): the Toulouse Compans-Caffarelli
extract (``test-only/osm``, dense) and boxes of the Rhein-Neckar extract
(``test-only/transit/rhein-neckar/rnv.osm.pbf``, read with pyosmium as in
``bench/crowfly_classes.py``): Mannheim's centre (dense), Heidelberg's western suburbs
(intermediate), the Palatinate wine villages north of Bad Dürkheim (rural). APIs relied
on: ``osmium.SimpleHandler`` (``node``/``way`` callbacks, ``apply_file``) from the
pyosmium docs, ``scipy.optimize.least_squares`` (bounds, ``loss``, ``f_scale``).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from diagnosis import settings
from diagnosis.errors import InputError
from diagnosis.travel import (
    DENSITY_CLASSES,
    CrowFlyModel,
    Travel,
    calibrate_on_graph,
    class_crow_fly_model,
    crow_fly_errors_by_band,
    crow_model_for,
    density_class_of,
    fit_crow_fly,
    road_graph_from_arrays,
    routed_pairs,
)
from tests.conftest import REPO, require_shared

#: The single model shipped before the density classes.
BEFORE = CrowFlyModel("drive", 1.0, 1.3, 40.0)


def _bench():
    spec = importlib.util.spec_from_file_location("crowfly_classes",
                                                  REPO / "bench" / "crowfly_classes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_density_class_of_communes():
    assert density_class_of([300_000, 40_000], [65.0, 14.0]) == "dense"
    assert density_class_of([9_000, 6_000], [15.0, 12.0]) == "intermediate"
    assert density_class_of([800, 1_200, 400], [20.0, 15.0, 30.0]) == "rural"
    # unknown populations are left out, not counted as 0; none known: intermediate
    assert density_class_of([np.nan, 900], [10.0, 30.0]) == "rural"
    assert density_class_of([np.nan], [10.0]) == "intermediate"


def test_class_models_are_the_settings_and_walking_does_not_change():
    for c in DENSITY_CLASSES:
        m = class_crow_fly_model("drive", c)
        assert (m.access_min, m.detour, m.speed_kmh) == settings.CROWFLY_DRIVE_BY_CLASS[c]
    assert class_crow_fly_model("drive", "rural").minutes_per_km < \
        class_crow_fly_model("drive", "intermediate").minutes_per_km
    assert class_crow_fly_model("walk", "dense") == class_crow_fly_model("walk", "rural")
    with pytest.raises(InputError, match="suburban"):
        class_crow_fly_model("drive", "suburban")


def test_fit_with_fixed_detour_reads_the_slope_as_a_speed():
    rng = np.random.default_rng(3)
    d = rng.uniform(200, 15_000, 400)
    t = 0.6 + d / 1000 * 1.3 / 72.0 * 60 + rng.normal(0, 0.05, d.size)
    m = fit_crow_fly(d, t, mode="drive", detour=1.3, loss="linear")
    assert m.detour == 1.3
    assert m.speed_kmh == pytest.approx(72.0, rel=0.01)
    assert m.access_min == pytest.approx(0.6, abs=0.05)
    # the old fit at a fixed 40 km/h cannot go below 1.5 min/km (detour >= 1)
    old = fit_crow_fly(d, t, mode="drive", speed_kmh=40.0, loss="linear")
    assert old.detour == pytest.approx(1.0) and old.minutes_per_km == pytest.approx(1.5)


def test_errors_by_band_by_hand():
    m = CrowFlyModel("drive", 0.0, 1.0, 60.0)  # 1 min per km
    rows = crow_fly_errors_by_band(m, np.array([500.0, 3_000.0, 12_000.0]),
                                   np.array([1.0, 2.0, 12.0]), threshold_min=2.5)
    assert [r["band"] for r in rows] == ["0 à 1 km", "2 à 5 km", "10 à 20 km"]
    assert [r["bias_min"] for r in rows] == [-0.5, 1.0, 0.0]
    assert [r["agree_pct"] for r in rows] == [100.0, 0.0, 100.0]


def test_calibration_is_automatic_where_a_graph_exists():
    # a straight 10 km road at 60 km/h: 1 min per km, no detour
    x = np.arange(0, 10_001, 500.0)
    a, b = np.arange(len(x) - 1), np.arange(1, len(x))
    graph = road_graph_from_arrays(np.r_[a, b], np.r_[b, a], np.full(2 * len(a), 30.0),
                                   x, np.zeros_like(x), mode="drive")  # 500 m in 30 s
    communes = pd.DataFrame({"population_2022": [800.0], "area_km2": [30.0]})
    model, why = crow_model_for(communes, "drive", graph=graph)
    assert model.minutes_per_km == pytest.approx(1.0, rel=0.02)
    assert "calibrés sur le réseau routier" in why
    rural, why = crow_model_for(communes, "drive")
    assert rural == class_crow_fly_model("drive", "rural") and "rural" in why
    travel = Travel(mode="drive", crow_model=model)
    assert travel.crow_fly is model
    assert travel.times(np.array([[0.0, 0.0]]), np.array([[5_000.0, 0.0]]),
                        max_minutes=30).minutes[0, 0] == pytest.approx(5.0, rel=0.05)


def _graphs():
    from data_sources.osm import road_graph_from_osm_file

    toulouse = require_shared("test-only/osm/toulouse_compans_caffarelli.osm")
    require_shared("test-only/transit/rhein-neckar/rnv.osm.pbf")
    bench = _bench()
    yield "dense", road_graph_from_osm_file(toulouse, mode="drive")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        for cls, _, bbox in bench.AREAS:
            path = Path(tmp) / f"{cls}.osm"
            bench.extract_box(bench.RNV, bbox, path)
            yield cls, road_graph_from_osm_file(path, mode="drive")


def test_class_models_beat_the_single_model_on_real_graphs_of_each_class():
    seen = set()
    for cls, graph in _graphs():
        d, t = routed_pairs(graph, max_nodes=150, min_distance_m=100.0, seed=5)
        assert len(d) > 500
        before = np.abs(BEFORE.minutes(d) - t).mean()
        after = np.abs(class_crow_fly_model("drive", cls).minutes(d) - t).mean()
        assert after < before, (cls, after, before)
        # calibrating on the graph itself does better still
        cal = calibrate_on_graph(graph, max_nodes=150, min_distance_m=100.0, seed=6,
                                 detour=1.3)
        assert cal.errors.mae_min < min(before, after), cls
        seen.add(cls)
    assert seen == set(DENSITY_CLASSES)
