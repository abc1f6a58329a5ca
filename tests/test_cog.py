"""The shipped COG 2026 tables and communes files (data_sources.cog).

The COG tables come from @etalab/decoupage-administratif 6.0.0 (fields as
geo.api.gouv.fr: ``anciensCodes``, ``chefLieu``, ``membres``), see
``data_sources/demo/build_demo.py``; the régions from ``data_sources/national``.
"""

from __future__ import annotations

import pytest

from data_sources.cog import (
    load_cog,
    read_communes_file,
    resolve,
    territory_from_communes_file,
)
from diagnosis.errors import InputError


def test_cog_has_the_18_regions_and_their_communes():
    cog = load_cog()
    assert cog.regions is not None and len(cog.regions) == 18
    assert set(cog.regions["code"]) == set(
        cog.communes.loc[cog.communes["kind"] == "commune", "region_code"]
    ) - {"975", "977", "978", "984", "986", "987", "988", "989"}
    assert sum(len(resolve(f"région {c}").communes) for c in cog.regions["code"]) == 34875


def test_shipped_name_keys_are_the_names_folded_today():
    """The COG files hold each name's look-up key (folded when built, not on every
    start): they must be what :func:`normalize_names` gives now, EPT names included."""
    import pandas as pd

    from data_sources.cog import DEMO_DIR
    from diagnosis.territory import normalize_names

    for table in ("communes", "epci"):
        shipped = pd.read_parquet(DEMO_DIR / f"cog2026_{table}.parquet")
        assert list(shipped["key"]) == normalize_names(shipped["name"]), table
    cog = load_cog()
    for df in (cog.communes, cog.epci):
        assert df["key"].notna().all()
        assert list(df["key"]) == normalize_names(df["name"])
    assert "plaine commune" in set(cog.epci.loc[cog.epci["kind"] == "EPT", "key"])
    assert resolve("Plaine Commune").kind == "epci"


def test_each_departement_lists_its_current_communes():
    """The départements table lists each one's current communes (built with the tables):
    the list is the communes table's, and a département resolves the same from either."""
    import pickle

    from data_sources.cog import _ShippedCog
    from diagnosis.territory import CogTables, resolve_territory

    fresh = _ShippedCog()
    assert resolve_territory("44", fresh).communes[:2] == ("44001", "44002")
    assert "communes" not in vars(fresh)  # resolved without reading the communes
    com = fresh.communes  # read on first use
    current = com.loc[com["kind"] == "commune"]
    plain = CogTables(communes=com, epci=fresh.epci,
                      departements=fresh.departements.drop(columns="communes"),
                      regions=fresh.regions)
    assert len(fresh.departements) > 100
    for code, listed in zip(fresh.departements["code"], fresh.departements["communes"],
                            strict=True):
        assert listed.split() == sorted(current.loc[current["dep_code"] == code, "code"])
        if code.startswith("98"):  # the TAAF and Pacific collectivités: no département code
            continue
        assert resolve_territory(code, fresh) == resolve_territory(code, plain)
    assert sum(len(s.split()) for s in fresh.departements["communes"]) == len(current)
    again = pickle.loads(pickle.dumps(fresh))  # e.g. sent to a worker process
    assert resolve_territory("2A", again) == resolve_territory("2A", plain)


def test_communes_file_one_code_per_line_and_csv(tmp_path):
    p = tmp_path / "plaine.txt"
    p.write_text("# Plaine Commune\n93066\n93001\n\n", encoding="utf-8")
    t = territory_from_communes_file(p)
    assert (t.name, t.communes) == ("plaine", ("93001", "93066"))
    csv = "nom;Code INSEE\nValence;26362\nAnnonay;7010\n".encode("cp1252")
    assert read_communes_file(csv, file="c.csv") == ["26362", "07010"]
    assert read_communes_file(b"code_insee\n2a004\n") == ["2A004"]
    with pytest.raises(InputError, match=r"c\.csv : ligne 3, 'Annonay'"):
        read_communes_file(b"code,nom\n26362,Valence\nAnnonay,x\n", file="c.csv")
    with pytest.raises(InputError, match="aucune colonne de code"):
        read_communes_file(b"nom;pop\nValence;1\n", file="c.csv")
    with pytest.raises(InputError, match="introuvable"):
        read_communes_file(tmp_path / "absent.txt")



def test_communes_file_with_unknown_codes_names_them(tmp_path):
    p = tmp_path / "ept.csv"
    p.write_text("code_insee\n93066\n93998\n", encoding="utf-8")
    with pytest.raises(InputError, match="93998"):
        territory_from_communes_file(p, name="Plaine Commune")
    ok = tmp_path / "ok.csv"
    ok.write_text("code_insee\n93066\n93001\n", encoding="utf-8")
    t = territory_from_communes_file(ok, name="Plaine Commune")
    assert t == resolve("Plaine Commune=93001,93066")
