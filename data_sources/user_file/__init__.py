"""Import a user's own facility file (CSV, GeoJSON, GeoPackage) into the facility schema.

A project holder or a consultant brings their own list: a hand-made table, a CAF or
département export, a FINESS or INSEE BPE extract. The import is shaped like the other
loaders, in small pure steps, one module each (this package re-exports the public names):

1. :func:`read_table` — bytes -> raw text table (encoding, separator, geometry, CRS);
2. :func:`detect_columns` — which file column holds the name, the type, the position…
   (accent- and case-blind; an explicit ``mapping`` wins);
3. :func:`parse_facilities` — rows -> facilities + a per-row :class:`ImportReport`
   (types mapped, coordinates checked and converted, rows without coordinates placed at
   their town hall, rejected rows kept with their reason, duplicates flagged);
4. :func:`diagnosis.schema.validate_facilities`.

:func:`load_facility_file` runs the four steps. Nothing is dropped silently: every row is
either accepted or listed in ``report.rejected`` with a French reason, and every
correction (swapped coordinates, approximate position, interpreted type…) is counted in
``report.warnings`` and listed row by row in ``report.notes``.

Row numbers are the numbers a user sees: for a CSV, the line in the file (the header is
line 1, so the first data row is line 2); for GeoJSON and GeoPackage, the feature's rank
(1 = first feature).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from data_sources.user_file.columns import COLUMN_ALIASES, detect_columns, insee_fallback_columns
from data_sources.user_file.communes import _needs_cog, _shipped_cog
from data_sources.user_file.duplicates import find_duplicates
from data_sources.user_file.parse import parse_facilities
from data_sources.user_file.positions import locate_points
from data_sources.user_file.read import RawTable, _read_source, read_table
from data_sources.user_file.report import ImportReport, ImportResult
from data_sources.user_file.types import map_type

__all__ = [
    "COLUMN_ALIASES",
    "ImportReport",
    "ImportResult",
    "RawTable",
    "detect_columns",
    "find_duplicates",
    "insee_fallback_columns",
    "load_facility_file",
    "locate_points",
    "map_type",
    "parse_facilities",
    "read_table",
]


def load_facility_file(
    source: str | Path | bytes | bytearray | memoryview | Any,
    *,
    name: str | None = None,
    mapping: Mapping[str, str] | None = None,
    default_type: str | None = None,
    town_halls: gpd.GeoDataFrame | None = None,
    communes: gpd.GeoDataFrame | None = None,
    cog: pd.DataFrame | None = None,
    source_date: str = "",
    header: bool = True,
) -> ImportResult:
    """Import a user's facility file (CSV, GeoJSON or GeoPackage).

    Parameters
    ----------
    source
        A path, the file's bytes (then ``name`` is required), or a binary file-like
        object such as a Streamlit ``UploadedFile`` (its ``name`` is used).
    name
        File name shown in the report and used in ``facility_id``/``source``; its
        extension chooses the reader (``.csv``/``.txt``/``.tsv``, ``.geojson``/``.json``,
        ``.gpkg``). Defaults to the path's name.
    mapping
        Column key -> file column, overriding detection (keys: the schema columns
        ``name``, ``type``, ``subtype``, ``address``, ``postcode``, ``code_insee``,
        ``capacity``, ``operator``, ``phone``, ``email``, ``website``, ``id``, and
        ``lat``, ``lon``, ``x``, ``y``, ``epsg``, ``precision``, ``commune``).
    default_type
        Type given to rows whose type is empty or unknown (a schema type such as
        ``"eaje"`` or any recognised label such as ``"micro-crèche"``); without it those
        rows are rejected.
    town_halls
        Town-hall points (columns ``code_insee`` and a point geometry, any CRS) where rows
        without coordinates are placed, with ``position_precision = "commune"``.
    communes
        Commune polygons (``code_insee`` + geometry): rows with coordinates but no
        commune code get the code of the commune containing them.
    cog
        COG commune table (columns ``code``, ``name``, ``kind``, ``parent_code``,
        ``former_codes``, ``postcodes``, as :func:`data_sources.cog.load_cog` gives),
        used to find a missing commune code from the postcode and to replace codes of
        former (merged) communes. Defaults to the shipped COG 2026.
    source_date
        Date or vintage of the file (ISO, may be partial: ``"2024"``).
    header
        ``False`` for a CSV without a header line: the columns are then ``colonne_1``,
        ``colonne_2``…, and ``mapping`` may name them by number (``{"name": 1,
        "lat": 3, "lon": 4}``).

    Returns
    -------
    ImportResult
        ``facilities`` (validated schema table) and ``report``.

    Raises
    ------
    InputError
        Unreadable, empty or unsupported file; no name column; no usable location
        column; a ``mapping`` naming an absent column; an unknown ``default_type``.
        The message names the file and lists the columns found.

    """
    with _without_gc_pauses():
        return _load_facility_file(source, name=name, mapping=mapping,
                                   default_type=default_type, town_halls=town_halls,
                                   communes=communes, cog=cog, source_date=source_date,
                                   header=header)


@contextmanager
def _without_gc_pauses() -> Iterator[None]:
    """Hold the cyclic garbage collector while a file is imported.

    An import builds hundreds of thousands of small objects (cells, rows), none of them
    in a reference cycle that would need collecting; each automatic collection would
    then scan every object of the process (pandas, geopandas, the loaded tables) again,
    which cost more than the import's own work. Collection resumes afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load_facility_file(
    source: str | Path | bytes | bytearray | memoryview | Any,
    *,
    name: str | None,
    mapping: Mapping[str, str] | None,
    default_type: str | None,
    town_halls: gpd.GeoDataFrame | None,
    communes: gpd.GeoDataFrame | None,
    cog: pd.DataFrame | None,
    source_date: str,
    header: bool,
) -> ImportResult:
    data, file_name = _read_source(source, name=name)
    raw = read_table(data, file_name=file_name, header=header)
    if not header and mapping:
        mapping = {key: f"colonne_{int(col)}" if str(col).strip().isdigit() else str(col)
                   for key, col in mapping.items()}
    from data_sources.insee_files import check_not_insee_file

    check_not_insee_file(list(raw.frame.columns), file_name=file_name)  # it goes to --insee
    columns = detect_columns(list(raw.frame.columns), mapping, file_name=file_name,
                             has_geometry=raw.geometry is not None)
    fallbacks = () if mapping and "code_insee" in mapping else insee_fallback_columns(
        list(raw.frame.columns), columns)
    if cog is None and _needs_cog(columns):
        cog = _shipped_cog()
    facilities, report = parse_facilities(
        raw, columns, file_name=file_name, default_type=default_type, town_halls=town_halls,
        communes=communes, cog=cog, source_date=source_date, insee_fallbacks=fallbacks)
    return ImportResult(facilities=facilities, report=report)
