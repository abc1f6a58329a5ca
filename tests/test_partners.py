"""Tests of diagnosis.partners on small hand-made facility tables (no data files)."""

from __future__ import annotations

import codecs
import io
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from diagnosis.errors import InputError
from diagnosis.partners import (
    INSTITUTION_COLUMNS,
    PARTNER_COLUMNS,
    export_partners_csv,
    find_partners,
    institutional_partners,
)

L93 = "EPSG:2154"


def _facilities() -> gpd.GeoDataFrame:
    # along a line east of the site (300 000, 6 700 000): 0, 1, 2, 3 and 20 km
    return gpd.GeoDataFrame(
        {"facility_id": ["site", "rpe:1", "pmi:1", "pmi:2", "laep:1"],
         "type": ["centre_social", "rpe", "pmi", "pmi", "laep"],
         "name": ["Centre social (site)", "RPE", "PMI B", "PMI A", "LAEP loin"],
         "address": ["1 rue A", "2 rue B", "", "3 rue C", "4 rue D"],
         "phone": ["", "02 40 00 00 00", "", "", ""],
         "email": ["", "", "pmi@example.org", "", ""],
         "website": ["", "", "", "https://example.org", ""],
         "source": ["demo", "demo", "finess", "finess", "demo"]},
        geometry=[Point(300_000 + d, 6_700_000) for d in (0, 1_000, 2_000, 3_000, 20_000)],
        crs=L93,
    ).to_crs("EPSG:4326")


def test_radius_groups_by_type_and_sorts_by_distance():
    p = find_partners(Point(300_000, 6_700_000), _facilities(), radius_m=5_000)
    assert list(p.columns) == list(PARTNER_COLUMNS)
    # schema order of types: pmi before rpe before centre_social
    assert p["facility_id"].tolist() == ["pmi:1", "pmi:2", "rpe:1", "site"]
    assert p["distance_m"].round(0).tolist() == [2000.0, 3000.0, 1000.0, 0.0]
    assert p["minutes"].isna().all()
    assert p.loc[0, "email"] == "pmi@example.org" and p.loc[2, "phone"] == "02 40 00 00 00"
    assert p.loc[0, "type_label"] == "Centre de PMI"


def test_site_row_is_left_out_of_its_own_partners():
    fac = _facilities()
    p = find_partners(fac.iloc[[0]], fac, radius_m=5_000)
    assert "site" not in p["facility_id"].tolist()
    row = fac.to_crs(L93).iloc[0]
    assert "site" not in find_partners(row, fac, radius_m=5_000)["facility_id"].tolist()


def test_travel_minutes_select_and_order():
    minutes = np.array([0.0, 25.0, 12.0, 8.0, np.inf])
    p = find_partners(Point(300_000, 6_700_000), _facilities(), minutes, max_minutes=15,
                      types=["pmi", "laep"])
    assert p["facility_id"].tolist() == ["pmi:2", "pmi:1"]  # 8 min before 12 min
    assert p["minutes"].tolist() == [8.0, 12.0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({}, "exactly one"), ({"radius_m": 1.0, "max_minutes": 5.0}, "exactly one"),
     ({"max_minutes": 5.0}, "needs travel_minutes"), ({"radius_m": -1.0}, "radius_m=-1.0"),
     ({"radius_m": 10.0, "types": ["ecole"]}, "unknown facility types"),
     ({"travel_minutes": [1.0, 2.0], "max_minutes": 5.0}, "one time per facility")],
)
def test_bad_input_raises(kwargs, match):
    with pytest.raises(InputError, match=match):
        find_partners(Point(300_000, 6_700_000), _facilities(), **kwargs)


def test_site_must_be_a_point():
    with pytest.raises(InputError, match="must be a point"):
        find_partners("here", _facilities(), radius_m=100.0)


def test_institutional_partners_are_roles_to_contact_without_invented_contacts():
    communes = pd.DataFrame({"code_insee": ["44129", "44049", "44129"],
                             "name": ["Pontchâteau", "Crossac", "Pontchâteau"]})
    t = institutional_partners("CC du Pays de Pontchâteau", "44", communes,
                               "CC du Pays de Pontchâteau Saint-Gildas-des-Bois")
    assert list(t.columns) == list(INSTITUTION_COLUMNS)
    orgs = t["organisation"].tolist()
    assert orgs[0] == "Caisse d'allocations familiales (CAF) du département 44"
    assert any("service de PMI" in o for o in orgs)
    assert any("Maternité" in o for o in orgs)
    assert "CC du Pays de Pontchâteau Saint-Gildas-des-Bois" in orgs
    assert orgs[-2:] == ["Mairie de Pontchâteau", "Mairie de Crossac"]  # deduplicated
    assert set(t["contact_status"]) == {"à contacter"}
    assert (t[["phone", "email", "website"]] == "").all().all()
    assert set(t["scope"]) == {"CC du Pays de Pontchâteau"}


def test_institutional_partners_without_epci_and_bad_codes():
    t = institutional_partners("Ajaccio", "2A", ["Ajaccio", "Le Pellerin"],
                               dep_name="Corse-du-Sud")
    assert "Intercommunalité" not in t["role"].tolist()
    assert t["organisation"].tolist()[-2:] == ["Mairie d'Ajaccio", "Mairie du Pellerin"]
    assert t["organisation"].iloc[0].endswith("de Corse-du-Sud")
    with pytest.raises(InputError, match="dep_code='4'"):
        institutional_partners("X", "4", ["X"])
    with pytest.raises(InputError, match="territory_name"):
        institutional_partners(" ", "44", ["X"])


def test_csv_export_for_french_excel():
    p = find_partners(Point(300_000, 6_700_000), _facilities(), radius_m=2_500)
    data = export_partners_csv(p)
    assert data.startswith(codecs.BOM_UTF8)
    text = data.decode("utf-8-sig")
    assert text.splitlines()[0].split(";") == list(PARTNER_COLUMNS)
    back = pd.read_csv(io.StringIO(text), sep=";", decimal=",", dtype={"phone": str})
    assert back["distance_m"].round(0).tolist() == [2000.0, 1000.0, 0.0]
    distances = [line.split(";")[PARTNER_COLUMNS.index("distance_m")]
                 for line in text.splitlines()[1:]]
    assert all(re.fullmatch(r"\d+,\d+", d) for d in distances)  # decimal comma
    with pytest.raises(InputError):
        export_partners_csv("not a table")  # type: ignore[arg-type]
