"""The workspace: demo data plus the user's files, ids unique across files."""

from __future__ import annotations

from data_sources.workspace import load_workspace


def test_two_files_with_the_same_name_keep_distinct_ids(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "s.csv").write_text("nom;type;code_insee\nCrèche A;crèche;44129\n",
                                          encoding="utf-8")
    (tmp_path / "b" / "s.csv").write_text("nom;type;code_insee\nCrèche B;crèche;44161\n",
                                          encoding="utf-8")
    ws = load_workspace("200000438", facility_files=[tmp_path / "a" / "s.csv",
                                                     tmp_path / "b" / "s.csv"])
    fac = ws.facilities
    user = fac.loc[fac["facility_id"].str.startswith("user:")]
    assert sorted(user["name"]) == ["Crèche A", "Crèche B"]  # nothing dropped
    assert user["facility_id"].is_unique and fac["facility_id"].is_unique
    assert len(ws.imports) == 2 and all(r.accepted == 1 for r in ws.imports)


#: Three crèches of Pontchâteau (44129), the second listed twice (same name, same place):
#: the importer flags row 3 as a duplicate of row 2.
DUPLICATED = ("nom;type;code_insee;latitude;longitude;places\n"
              "Crèche Les Lutins;crèche;44129;47.4376;-2.0876;40\n"
              "Crèche Les Lutins;crèche;44129;47.4377;-2.0875;40\n"
              "Crèche du Brivet;crèche;44129;47.4310;-2.0950;30\n")


def test_a_flagged_duplicate_is_counted_once_everywhere(tmp_path, capsys):
    """Issue 19: « 1 doublon signalé » and the duplicate counted once in the workspace, the
    overview (app, CLI, PDF), the CLI summary and the partners of a site."""
    import json

    from data_sources.workspace import load_travel
    from diagnosis.__main__ import main
    from diagnosis.overview import compute_overview
    from diagnosis.pipeline import DiagnosisParams, run_diagnosis

    f = tmp_path / "creches.csv"
    f.write_text(DUPLICATED, encoding="utf-8")
    bare = load_workspace("200000438")
    ws = load_workspace("200000438", facility_files=[f])
    (report,) = ws.imports
    assert "1 doublon signalé" in report.summary_fr()
    assert report.rows_read == 3 == report.accepted + len(report.rejected)  # nothing lost
    user = ws.facilities.loc[ws.facilities["source"].astype(str).str.startswith("user:")]
    assert sorted(user["name"]) == ["Crèche Les Lutins", "Crèche du Brivet"]

    def eaje(facilities):
        return compute_overview(ws.territory, ws.communes, facilities,
                                sources=ws.sources).summary["facilities"]["eaje"]

    before, after = eaje(bare.facilities), eaje(ws.facilities)
    assert after["count"] == before["count"] + 2
    assert after["places_known"] == (before["places_known"] or 0) + 70

    assert main(["summary", "--territory", "200000438", "--facilities", str(f),
                 "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)["facilities"]["eaje"]
    assert (cli["count"], cli["places_known"]) == (after["count"], after["places_known"])

    site = user.loc[user["name"] == "Crèche du Brivet", "facility_id"].iloc[0]
    diag = run_diagnosis(ws, DiagnosisParams(territory="200000438", mode="crow", site=site),
                         travel=load_travel(ws, "crow"), parts=("partners",))
    near = diag.partners.layers["near_site"]
    assert (near["name"] == "Crèche Les Lutins").sum() == 1


#: Two crèches of Pontchâteau (44129) and a PMI placed at its town hall: a user file.
SMALL = ("nom;type;code_insee;latitude;longitude;places\n"
         "Crèche Les Lutins;crèche;44129;47.4376;-2.0876;40\n"
         "Crèche du Brivet;crèche;44129;47.4310;-2.0950;30\n"
         "PMI de Pontchâteau;pmi;44129;;;\n")


def _notes_table(ids, notes):
    """A schema table of two crèches with the optional ``notes`` column."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import Point

    from diagnosis.schema import FACILITY_DTYPES

    rows = [{**{c: "" for c in FACILITY_DTYPES}, "facility_id": fid, "type": "eaje",
             "name": f"Crèche {fid}", "code_insee": "44129", "capacity": 10.0,
             "source": "osm", "source_id": fid, "position_precision": "address",
             "notes": note, "geometry": Point(-2.09, 47.43)}
            for fid, note in zip(ids, notes, strict=True)]
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry="geometry", crs="EPSG:4326")


def test_merged_facilities_equal_one_validation_of_the_whole(tmp_path):
    """The workspace trusts the rows its loaders validated (each row checked once): the
    table equals the former validation of the concatenated tables, column by column."""
    import geopandas as gpd
    import pandas as pd
    from geopandas.testing import assert_geodataframe_equal

    from data_sources.user_file import load_facility_file
    from data_sources.workspace import import_town_halls
    from diagnosis.schema import validate_facilities

    f = tmp_path / "creches.csv"
    f.write_text(SMALL, encoding="utf-8")
    extra = _notes_table(["test:1", "test:2"], [" à voir ", None])  # not validated: checked
    ws = load_workspace("200000438", facility_files=[f], extra_facilities=[extra])
    bare = load_workspace("200000438")
    imported = load_facility_file(f, town_halls=import_town_halls(bare.communes)).facilities
    whole = pd.concat([bare.facilities, imported, extra], ignore_index=True)
    expected = validate_facilities(gpd.GeoDataFrame(whole, geometry="geometry", crs="EPSG:4326"),
                                   source="test")
    assert_geodataframe_equal(ws.facilities, expected, check_dtype=True, check_like=False)
    # the optional columns of the demo: "" in the rows of the tables without them
    assert list(ws.facilities.columns)[-2:] == ["notes", "source_url"]
    assert ws.facilities["notes"].tolist()[-5:] == ["", "", "", "à voir", ""]
    assert ws.facilities["source_url"].tolist()[-5:] == [""] * 5


def test_a_table_edited_after_validation_is_still_checked(tmp_path):
    """A table handed to the workspace from outside (``extra_facilities``) is validated
    there even when it once came out of the importer: a row edited since is refused."""
    import pytest

    from data_sources.user_file import load_facility_file
    from diagnosis.errors import InputError

    f = tmp_path / "creches.csv"
    f.write_text(SMALL, encoding="utf-8")
    edited = load_facility_file(f).facilities.copy()
    edited.loc[1, "type"] = "garderie"
    with pytest.raises(InputError, match="'type' has invalid values \\['garderie'\\]"):
        load_workspace("200000438", extra_facilities=[edited])
    edited = load_facility_file(f).facilities.copy()
    edited.loc[0, "code_insee"] = "4412"
    with pytest.raises(InputError, match="'code_insee'"):
        load_workspace("200000438", facility_files=[f], extra_facilities=[edited])


def test_ids_are_checked_unique_across_the_merged_tables(tmp_path):
    import pytest

    from diagnosis.errors import InputError

    bare = load_workspace("200000438")
    taken = str(bare.facilities["facility_id"].iloc[0])
    with pytest.raises(InputError, match=f"'facility_id' has invalid values \\['{taken}'"):
        load_workspace("200000438", extra_facilities=[_notes_table([taken, "test:2"],
                                                                   ["", ""])])
