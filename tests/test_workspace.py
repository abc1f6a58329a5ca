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
