"""Page « Plan national » with ``streamlit.testing.v1.AppTest`` (no browser).

Births come from a comparateur-format file of Valence Romans Agglo (26), built as in
tests/test_app.py; the existing Maisons are the shipped list plus a federation file.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

TIMEOUT = 300


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.run(timeout=TIMEOUT)
    assert not at.exception
    return at


def test_page_without_insee_file_says_what_to_give(app):
    app.switch_page("app_pages/plan.py").run(timeout=TIMEOUT)
    assert not app.exception, [e.value for e in app.exception]
    assert any("comparateur" in w.value for w in app.warning)


def test_plan_page_draws_new_maisons_with_their_gains(app):
    from tests.test_app import _drome_files

    _, insee, _ = _drome_files()
    app.switch_page("app_pages/insee.py").run(timeout=TIMEOUT)
    app.file_uploader(key="upload_insee").set_value(
        ("comparateur_26.csv", insee, "text/csv")).run(timeout=TIMEOUT)
    app.switch_page("app_pages/plan.py").run(timeout=TIMEOUT)
    app.number_input(key="plan_new").set_value(3).run(timeout=TIMEOUT)
    assert not app.exception, [e.value for e in app.exception]
    sites = next(d.value for d in app.dataframe if "Rang d'ouverture" in d.value.columns)
    assert 1 <= len(sites) <= 3
    # the only births loaded are in the Drôme: sites in it or just across its borders
    assert set(sites["Département (code)"]) <= {"26", "07", "38", "84", "05", "04"}
    gains = sites["Familles en plus par an (naissances)"].tolist()
    assert gains == sorted(gains, reverse=True) and gains[0] > 0
    assert len(app.get("imgs")) >= 1 or len(app.get("image")) >= 1  # the curve
    # the map is interactive (streamlit-folium's component), no longer a picture
    assert any("survolez un point" in c.value for c in app.caption)
    maps = app.get("component_instance")
    assert len(maps) == 1
    import json

    args = json.loads(maps[0].proto.json_args)  # the map's frame, then its layers
    script = args["script"] + args["feature_group"] + args["layer_control"]
    assert "Nouvelles Maisons du plan" in script and "Nouvelle Maison n" in script
    labels = {b.label for b in app.get("download_button")}
    assert {"Tableaux (CSV pour Excel)", "Carte pour QGIS (GeoPackage)",
            "Rapport court (PDF)"} <= labels
