"""Siting reports the marginal gain of each extra site and never recommends a site that
adds nothing (issue 20, item 5), on matrices checkable by hand."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from shapely.geometry import Point

from diagnosis.settings import WGS84
from diagnosis.siting import find_host_sites
from diagnosis.siting.scenario import NO_GAIN_STATUS


def _demand():
    return gpd.GeoDataFrame({"code_insee": ["44001", "44002", "44003"],
                             "births_2024": [30.0, 20.0, 5.0],
                             "need_weight": [40.0, 25.0, 6.0]},
                            geometry=[Point(-2.0, 47.0), Point(-2.1, 47.0), Point(-2.2, 47.0)],
                            crs=WGS84)


def _candidates(n):
    return gpd.GeoDataFrame({"facility_id": [f"pmi:{i}" for i in range(n)],
                             "type": ["pmi"] * n, "name": [f"PMI {i}" for i in range(n)]},
                            geometry=[Point(-2.0 - 0.1 * i, 47.0) for i in range(n)], crs=WGS84)


def test_each_site_says_what_it_adds_to_those_before_it():
    # A reaches 44001 and 44002; B reaches 44002 and 44003; C reaches 44003 only
    minutes = np.array([[5.0, 30.0, 40.0], [10.0, 8.0, 30.0], [40.0, 12.0, 6.0]])
    r = find_host_sites(_demand(), _candidates(3), minutes, k=2, max_minutes=15)
    sites = r.sites.loc[r.sites["status"] == "recommandé"]
    assert sites["facility_id"].tolist() == ["pmi:0", "pmi:1"]
    # A first (30 + 20 births), then B adds 44003's 5 births only
    assert sites["births_marginal"].tolist() == [50.0, 5.0]
    assert sites["need_marginal"].tolist() == [65.0, 6.0]
    assert r.summary["marginal_births"] == [50.0, 5.0]
    assert "+50, +5" in r.summary["message"]


def test_a_site_that_adds_nothing_is_not_recommended():
    # every candidate reaches every commune: one site covers all, k = 3 adds nothing
    minutes = np.full((3, 3), 5.0)
    r = find_host_sites(_demand(), _candidates(3), minutes, k=3, max_minutes=15)
    status = r.sites["status"].tolist()
    assert status.count("recommandé") == 1 and status.count(NO_GAIN_STATUS) == 2
    assert r.sites["births_marginal"].tolist() == [55.0, 0.0, 0.0]
    assert r.summary["n_selected"] == 1 and r.summary["n_without_gain"] == 2
    msg = r.summary["message"]
    assert msg.startswith("1 site(s) recommandé(s)")
    assert "n'ajouteraient aucune naissance" in msg and "la marche" in msg
    assert "non recommandé" in r.sites["explanation"].iloc[1]
