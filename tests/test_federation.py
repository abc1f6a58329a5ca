"""The federation's national view (diagnosis/federation.py) with partial INSEE files.

The INSEE file is a comparateur-format file for 16 communes of the Drôme (26), made as in
``tests/test_any_territory.py`` (``_comparateur``): a user file covering part of one
département. What is not loaded is unknown, never 0 and never the text ``None``; the
coverage of each territory is computed from the communes whose births are known.
"""

from __future__ import annotations

import numpy as np
import pytest

from data_sources.cog import resolve
from data_sources.workspace import load_workspace
from diagnosis.federation import groups_of, national_table, rank_territories
from diagnosis.overview import compute_overview
from tests.test_any_territory import _comparateur

N_KNOWN = 16


@pytest.fixture(scope="module")
def partial():
    codes = sorted(resolve("26").communes)[:N_KNOWN]
    data = _comparateur(codes).encode("cp1252")
    ws = load_workspace("26", insee_files=[("comparateur_partiel.csv", data)])
    ov = compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)
    return codes, ov


def test_a_partial_insee_file_gives_partial_territories_and_no_made_up_zero(partial):
    codes, ov = partial
    com = ov.layers["communes"]
    groups = groups_of(com, "epci")
    table = national_table(ov, groups, {})
    known = table.loc[table["n_communes_births_known"] > 0]
    # the EPCIs holding the 16 communes, and only they, have figures
    assert set(known["code"]) == {groups[c] for c in codes if c in groups}
    assert int(known["n_communes_births_known"].sum()) == N_KNOWN
    births = com.set_index("code_insee").loc[codes, "births_2024"].sum()
    assert known["births_2024"].sum() == pytest.approx(births)
    assert (known["coverage"] == known["n_communes_births_known"] / known["n_communes"]).all()
    unknown = table.loc[table["n_communes_births_known"] == 0]
    assert len(unknown) and unknown["births_2024"].isna().all()  # unknown, not 0
    assert (unknown["coverage"] == 0).all()

    ranked = rank_territories(table)
    assert set(ranked["Code"]) == set(known["code"])  # only what is known is ranked
    assert not ranked.isna().any().any()
    assert "None" not in ranked.astype(str).to_string()
    partial_rows = known.loc[known["n_communes_births_known"] < known["n_communes"]]
    for code, k, n in zip(partial_rows["code"], partial_rows["n_communes_births_known"],
                          partial_rows["n_communes"], strict=True):
        cov = ranked.set_index("Code").loc[code, "Couverture des données"]
        assert cov == f"partielle : {k} commune(s) sur {n}"
    assert np.isfinite(ranked["Naissances 2024"]).all()


def test_the_national_ranking_says_the_year_of_the_births_read():
    import pandas as pd

    from diagnosis.overview import Overview

    com = pd.DataFrame({"code_insee": ["1", "2"], "births_2024": [10.0, 5.0],
                        "births_2024_year": pd.array([2022, 2022], dtype="Int64")})
    ov = Overview.__new__(Overview)
    object.__setattr__(ov, "layers", {"communes": com})
    object.__setattr__(ov, "params", {"types": (), "threshold_m": 5000.0})
    table = national_table(ov, {"1": "A", "2": "B"}, {"A": "Aa", "B": "Bb"})
    assert set(table["births_year"]) == {2022}
    ranked = rank_territories(table)
    assert "Naissances 2022" in ranked.columns and "Naissances 2024" not in ranked.columns


def test_compare_france_by_departement_shows_only_the_covered_one(tmp_path, capsys):
    """Issue 19: ``compare --territory FR`` with a file covering 16 communes of the Drôme
    lists the Drôme as partial (16 communes known of its total), and leaves out, with a
    French reason, every département whose births are all unknown: none is « complète »."""
    import json

    from diagnosis.__main__ import main

    drome = resolve("26")
    f = tmp_path / "comparateur_partiel.csv"
    f.write_text(_comparateur(sorted(drome.communes)[:N_KNOWN]), encoding="cp1252")
    assert main(["compare", "--territory", "FR", "--by", "departement", "--insee", str(f),
                 "--format", "json"]) == 0
    out = capsys.readouterr()
    rows = json.loads(out.out)
    assert [r["code"] for r in rows] == ["26"]
    (row,) = rows
    assert row["n_communes_births_known"] == N_KNOWN
    assert row["n_communes_total"] == len(drome.communes)
    assert row["coverage_partial"] is True
    assert out.err.count("aucune naissance connue") == len(resolve("FR").departements) - 1
