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
