"""The Code officiel géographique 2026, shipped compactly in ``data_sources/demo/``.

Any French commune, EPCI or département resolves from these tables, whether or not
its data is loaded.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from diagnosis.schema import Territory
from diagnosis.territory import CogTables, normalize_name, resolve_territory

DEMO_DIR = Path(__file__).resolve().parent / "demo"


@lru_cache(maxsize=1)
def load_cog() -> CogTables:
    """Load the shipped COG 2026 tables (communes, EPCI, départements), once per process."""
    com = pd.read_parquet(DEMO_DIR / "cog2026_communes.parquet")
    epci = pd.read_parquet(DEMO_DIR / "cog2026_epci.parquet")
    dep = pd.read_parquet(DEMO_DIR / "cog2026_departements.parquet")
    for df in (com, epci, dep):
        for c in df.columns:
            if df[c].dtype != "float64":
                df[c] = df[c].astype(object)
    com["key"] = com["name"].map(normalize_name)
    epci["key"] = epci["name"].map(normalize_name)
    return CogTables(communes=com, epci=epci, departements=dep)


def resolve(query: str) -> Territory:
    """Resolve a commune, EPCI or département by code or name (see :func:`resolve_territory`)."""
    return resolve_territory(query, load_cog())


def departement_name(code: str) -> str | None:
    """Name of a département from its code (``"44"`` -> ``"Loire-Atlantique"``), or None."""
    dep = load_cog().departements
    hit = dep.loc[dep["code"].astype(str).eq(str(code)), "name"]
    return str(hit.iloc[0]) if len(hit) else None
