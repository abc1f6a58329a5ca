"""A facility placed away from the commune its row declares is flagged, whatever the code.

Rows are written in the importer's usual CSV layout (``nom;type;code_insee;latitude;
longitude``); points are real places: the town halls of Paris 18e (48.8925, 2.3444),
Saint-Ouen-sur-Seine (48.9118, 2.3340, 1.2 km outside Paris) and Pantin (48.8946,
2.4092, 0.9 km outside Paris). Polygons: the shipped national geography.
"""

from __future__ import annotations

from data_sources.user_file import load_facility_file


def _notes(tmp_path, rows: list[str]):
    f = tmp_path / "structures.csv"
    f.write_text("nom;type;code_insee;latitude;longitude\n" + "\n".join(rows) + "\n",
                 encoding="utf-8")
    res = load_facility_file(f)
    notes = res.report.notes
    return res, {int(r): n for r, n in zip(notes["row"], notes["note"], strict=True)}


def test_a_paris_arrondissement_code_placed_in_a_neighbouring_commune_is_flagged(tmp_path):
    res, notes = _notes(tmp_path, [
        "Crèche du 18e;crèche;75118;48.8925;2.3444",          # in Paris 18e: fine
        "Crèche dite du 18e;crèche;75118;48.9118;2.3340",     # Saint-Ouen-sur-Seine
        "PMI dite de Paris;pmi;75056;48.8946;2.4092",          # Pantin
    ])
    assert res.report.accepted == 3  # kept, not lost
    assert 2 not in notes
    assert "hors de la commune déclarée 75118 (commune 75056)" in notes[3]
    assert "à vérifier" in notes[3]
    assert "hors de la commune déclarée 75056" in notes[4]
    assert any("hors de leur commune déclarée" in w for w in res.report.warnings)


def test_a_point_inside_its_commune_or_at_its_border_is_not_flagged(tmp_path):
    # Bagnolet's town hall (207 m from Paris) with Bagnolet's code; a point inside Paris
    res, notes = _notes(tmp_path, [
        "Centre social;centre social;93006;48.8696;2.4166",
        "LAEP;laep;75120;48.8652;2.4120",
    ])
    assert notes == {} and res.report.accepted == 2
