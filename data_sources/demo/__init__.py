"""The embedded demo territory: Loire-Atlantique (44), built by ``build_demo.py``.

Files here are generated from ``../shared/data/ship`` (IGN, INSEE, annuaire de
l'administration; Licence Ouverte 2.0) and committed; see ``manifest.json``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import geopandas as gpd

from data_sources._geoparquet import read_geoparquet, read_parquet_frame
from diagnosis.schema import validate_facilities

DEMO_DIR = Path(__file__).resolve().parent
#: Départements whose data the demo holds.
DEMO_DEPARTEMENTS = ("44",)
#: Registry keys of the sources the demo is built from.
DEMO_SOURCES = ("cog2026", "ign_admin_express", "insee_comparateur", "insee_dossier_complet",
                "annuaire_mairies", "demo_directory")


@lru_cache(maxsize=1)
def _communes() -> gpd.GeoDataFrame:
    return read_geoparquet(DEMO_DIR / "communes_44.parquet")


@lru_cache(maxsize=1)
def _facilities() -> gpd.GeoDataFrame:
    return validate_facilities(read_geoparquet(DEMO_DIR / "facilities_44.parquet"),
                               source="demo facilities_44.parquet")


@lru_cache(maxsize=1)
def demo_commune_codes() -> frozenset[str]:
    """The codes of the demo's communes (only that column is read)."""
    column = read_parquet_frame(DEMO_DIR / "communes_44.parquet", columns=["code_insee"])
    return frozenset(str(c) for c in column["code_insee"].tolist())


def load_demo_communes() -> gpd.GeoDataFrame:
    """Communes of the demo with geometry, town hall position and needs (a copy)."""
    return _communes().copy()


def load_demo_facilities() -> gpd.GeoDataFrame:
    """Facilities of the demo: directory rows at their town hall, and the town halls (a copy)."""
    return _facilities().copy()


@lru_cache(maxsize=1)
def demo_manifest() -> dict[str, Any]:
    """The build manifest: inputs and their hashes, row counts, rows not placed."""
    text = (DEMO_DIR / "manifest.json").read_text(encoding="utf-8")
    return cast("dict[str, Any]", json.loads(text))
