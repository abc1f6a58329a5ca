"""The embedded demo: its figures, and that the committed files are what build_demo makes."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from data_sources import demo
from data_sources.demo import build_demo
from tests.conftest import require_shared


def test_demo_figures():
    com = demo.load_demo_communes()
    assert len(com) == 207 and com["code_insee"].is_unique
    assert com["births_2024"].sum() == 14582
    assert com["population_2022"].sum() == 1473156
    assert com["poverty_rate_2021"].isna().sum() == 97  # secret stays missing, never 0
    assert (com["poverty_rate_2021"] != 0).all()
    assert com.loc[com["epci_code"] == "200000438", "births_2024"].sum() == 353
    assert com[["townhall_lon", "townhall_lat"]].notna().all().all()
    fac = demo.load_demo_facilities()
    assert (fac["type"] == "mairie").sum() == 207
    directory = fac[fac["source"] == "demo_directory"]
    assert len(directory) == 38 and (directory["position_precision"] == "commune").all()
    unplaced = demo.demo_manifest()["unplaced"]
    assert [u["type"] for u in unplaced] == ["rpe"]  # the row with no commune is reported


def test_committed_demo_matches_a_fresh_build(tmp_path):
    ship = require_shared("ship")
    assert build_demo.main(["--ship", str(ship), "--out", str(tmp_path)]) == 0
    for name in ("communes_44", "facilities_44"):
        fresh = gpd.read_parquet(tmp_path / f"{name}.parquet")
        committed = gpd.read_parquet(demo.DEMO_DIR / f"{name}.parquet")
        pd.testing.assert_frame_equal(pd.DataFrame(fresh.drop(columns="geometry")),
                                      pd.DataFrame(committed.drop(columns="geometry")))
        assert fresh.geometry.geom_equals_exact(committed.geometry, 1e-9).all()
    for name in ("communes", "epci", "departements"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"cog2026_{name}.parquet"),
                                      pd.read_parquet(demo.DEMO_DIR / f"cog2026_{name}.parquet"))
