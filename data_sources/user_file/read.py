"""Read a facility file's bytes as a table of text cells (CSV, GeoJSON, GeoPackage)."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from data_sources.user_file._decode import _decode
from data_sources.user_file.report import _plural, _rows_text
from diagnosis.errors import InputError

#: File extensions read as CSV text and as vector files (pyogrio).
CSV_EXTENSIONS = (".csv", ".txt", ".tsv")


GEO_EXTENSIONS = (".geojson", ".json", ".gpkg")


#: Separators tried on CSV files, in order of preference when equally plausible.
CSV_SEPARATORS = (";", ",", "\t")


@dataclass(frozen=True)
class RawTable:
    """A file read as a table of text cells, before any interpretation.

    Attributes
    ----------
    frame
        One column per file column, cells as ``str`` (``""`` when empty); the index is
        the row number as the user sees it (CSV line, or feature rank for vector files).
    encoding
        Text encoding detected.
    separator
        CSV separator (``""`` for vector files).
    geometry
        Geometries of a vector file (same index as ``frame``), else ``None``.
    crs
        CRS of ``geometry`` as text (``"EPSG:4326"``), ``""`` when none.
    malformed
        Rows that could not be split into the header's columns -> French reason.
    warnings
        French notes about the reading itself (blank lines, renamed columns, layers).
    """

    frame: pd.DataFrame
    encoding: str
    separator: str = ""
    geometry: gpd.GeoSeries | None = None
    crs: str = ""
    malformed: Mapping[int, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _read_source(source: Any, *, name: str | None) -> tuple[bytes, str]:
    """Return the bytes and the file name of a path, bytes or file-like ``source``."""
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read the facility file {str(path)!r}: {exc}; "
                             "check the path") from exc
        return data, name or path.name
    if isinstance(source, bytes | bytearray | memoryview):
        if not name:
            raise InputError("load_facility_file got bytes without name=; pass the file "
                             "name too (e.g. name='creches.csv'), its extension picks the reader")
        return bytes(source), name
    if hasattr(source, "getvalue") or hasattr(source, "read"):
        data = source.getvalue() if hasattr(source, "getvalue") else source.read()
        file_name = name or Path(str(getattr(source, "name", "") or "")).name
        if not file_name:
            raise InputError("load_facility_file got a file object without a name; "
                             "pass name='<file name with extension>'")
        if isinstance(data, str):
            data = data.encode("utf-8")
        return bytes(data), file_name
    raise InputError(f"source={source!r} is not a path, bytes or a file object; "
                     "pass the path of a CSV, GeoJSON or GeoPackage file")


def read_table(data: bytes, *, file_name: str) -> RawTable:
    """Read a CSV, GeoJSON or GeoPackage file's bytes as a table of text cells.

    Parameters
    ----------
    data
        The file's bytes.
    file_name
        Its name; the extension chooses the reader and the name appears in errors.

    Returns
    -------
    RawTable
        Cells as text, indexed by the row number a user sees.

    Raises
    ------
    InputError
        Unsupported extension, empty file, undecodable bytes, a single column (wrong
        separator) or an unreadable vector file.
    """
    ext = Path(file_name).suffix.lower()
    if ext in CSV_EXTENSIONS:
        return _read_csv(data, file_name=file_name)
    if ext in GEO_EXTENSIONS:
        return _read_vector(data, file_name=file_name)
    hint = " (export the sheet as CSV from your spreadsheet)" if ext in {
        ".xls", ".xlsx", ".ods"} else ""
    raise InputError(
        f"{file_name!r}: unsupported extension {ext!r}{hint}; use a CSV "
        f"({', '.join(CSV_EXTENSIONS)}), a GeoJSON ({', '.join(GEO_EXTENSIONS[:2])}) "
        "or a GeoPackage (.gpkg) file"
    )


def _sniff_separator(lines: Sequence[str]) -> tuple[str, int]:
    """Return the separator whose split is widest and most consistent, and its width."""
    best: tuple[tuple[bool, bool, int, float], str, int] | None = None
    for sep in CSV_SEPARATORS:
        rows = [r for r in csv.reader(lines, delimiter=sep) if any(c.strip() for c in r)]
        if not rows:
            continue
        width = len(rows[0])
        consistent = sum(len(r) == width for r in rows) / len(rows)
        score = (width >= 2, consistent >= 0.9, width, consistent)
        if best is None or score > best[0]:
            best = (score, sep, width)
    if best is None:
        return CSV_SEPARATORS[0], 0
    return best[1], best[2]


def _read_csv(data: bytes, *, file_name: str) -> RawTable:
    text, encoding = _decode(data, file_name=file_name)
    if not text.strip():
        raise InputError(f"{file_name!r} is empty; export the facility list again with a "
                         "header line (nom, type, adresse, code_insee or lat/lon…) and its rows")
    lines = text.splitlines(keepends=True)
    skip_first = 0
    forced = re.fullmatch(r"\s*sep=(.)\s*", lines[0]) if lines else None
    if forced:  # Excel's "sep=;" hint line
        sep, skip_first = forced.group(1), 1
        width = len(next(csv.reader([lines[1]], delimiter=sep))) if len(lines) > 1 else 0
    else:
        sample = [ln for ln in lines[:60] if ln.strip()]
        sep, width = _sniff_separator(sample)
    if width < 2:
        first = next((ln.strip() for ln in lines[skip_first:] if ln.strip()), "")
        raise InputError(
            f"{file_name!r}: only one column found in the header {first[:120]!r}: the "
            "separator is probably not ';', ',' or a tab; save the file as CSV with one of "
            "these separators (and at least a name column and a location column)"
        )
    reader = csv.reader(io.StringIO("".join(lines[skip_first:]), newline=""), delimiter=sep)
    header: list[str] | None = None
    records: list[list[str]] = []
    row_numbers: list[int] = []
    malformed: dict[int, str] = {}
    blank_rows = 0
    titles: list[int] = []
    prev_line = skip_first
    try:
        for record in reader:
            start_line, prev_line = prev_line + 1, reader.line_num + skip_first
            cells = [c.replace("\u00a0", " ").strip() for c in record]
            if not any(cells):
                if record and header is not None:
                    blank_rows += 1  # a row of separators only (spreadsheet leftovers)
                continue
            if header is None:
                if sum(bool(c) for c in cells) < 2 and len(titles) < 5:
                    titles.append(start_line)  # a title above the header ("Liste des…;;;")
                    continue
                header = cells
                continue
            records.append(cells)
            row_numbers.append(start_line)
    except csv.Error as exc:
        raise InputError(f"{file_name!r}: CSV syntax error near line {reader.line_num}: {exc}; "
                         "check the quotes around values") from exc
    if header is None:
        raise InputError(f"{file_name!r}: no header line with at least two column names; "
                         "the first line must name the columns (nom, type, adresse…)")
    warnings: list[str] = []
    if titles:
        warnings.append(f"{_rows_text(titles)} avant l'en-tête ignorée(s) (titre)")
    names = _unique_headers(header, warnings)
    width = len(names)
    rows: list[list[str]] = []
    for number, cells in zip(row_numbers, records, strict=True):
        if len(cells) > width and any(cells[width:]):
            malformed[number] = (
                f"{len(cells)} valeurs pour {width} colonnes : un séparateur « {_sep_label(sep)} » "
                "dans une valeur sans guillemets ?")
        cells = (cells + [""] * width)[:width]
        rows.append(cells)
    if not rows:
        raise InputError(f"{file_name!r} has a header ({', '.join(names[:8])}) but no data rows; "
                         "add one row per facility")
    frame = pd.DataFrame(rows, columns=names, index=pd.Index(row_numbers, name="row"), dtype=object)
    # drop unnamed trailing columns that hold nothing (spreadsheet leftovers)
    empty_unnamed = [c for c, h in zip(names, header, strict=True)
                     if not h and not frame[c].astype(bool).any()]
    frame = frame.drop(columns=empty_unnamed)
    if blank_rows:
        warnings.append(f"{_plural(blank_rows, 'ligne vide ignorée', 'lignes vides ignorées')}")
    return RawTable(frame=frame, encoding=encoding, separator=sep, malformed=malformed,
                    warnings=tuple(warnings))


def _sep_label(sep: str) -> str:
    return "tabulation" if sep == "\t" else sep


def _unique_headers(header: Sequence[str], warnings: list[str]) -> list[str]:
    names: list[str] = []
    for i, h in enumerate(header):
        name = h or f"colonne_{i + 1}"
        if name in names:
            k = 2
            while f"{name}.{k}" in names:
                k += 1
            warnings.append(f"colonne « {name} » en double : la suivante est lue comme "
                            f"« {name}.{k} »")
            name = f"{name}.{k}"
        names.append(name)
    return names


def _read_vector(data: bytes, *, file_name: str) -> RawTable:
    import pyogrio  # local: the CSV path does not need GDAL

    if not data.strip():
        raise InputError(f"{file_name!r} is empty; export the layer again")
    warnings: list[str] = []
    # GDAL wants a real file name with the right extension (a GeoPackage read from memory
    # warns about its "non conformant file extension"): go through a temporary file.
    with tempfile.TemporaryDirectory(prefix="maillage_import_") as tmp:
        path = Path(tmp) / f"upload{Path(file_name).suffix.lower()}"
        path.write_bytes(data)
        try:
            layers = pyogrio.list_layers(path)
            layer = None
            if len(layers) > 1:
                spatial = [str(n) for n, kind in layers if kind]
                layer = spatial[0] if spatial else str(layers[0][0])
                warnings.append(f"{len(layers)} couches dans le fichier : seule « {layer} » "
                                "est lue")
            gdf = pyogrio.read_dataframe(path, layer=layer)
        except Exception as exc:  # pyogrio raises DataSourceError and friends
            raise InputError(f"{file_name!r}: cannot read it as GeoJSON/GeoPackage ({exc}); "
                             "check the file or export it again") from exc
    if len(gdf) == 0:
        raise InputError(f"{file_name!r} holds no feature; export the layer with its objects")
    index = pd.Index(range(1, len(gdf) + 1), name="row")
    geometry: gpd.GeoSeries | None = None
    crs = ""
    if isinstance(gdf, gpd.GeoDataFrame) and gdf.geometry.name in gdf.columns:
        geometry = gpd.GeoSeries(gdf.geometry.to_numpy(), index=index, crs=gdf.crs)
        crs = gdf.crs.to_string() if gdf.crs is not None else ""
        attrs = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    else:
        attrs = pd.DataFrame(gdf)
    frame = pd.DataFrame({c: [_cell_text(v) for v in attrs[c]] for c in attrs.columns},
                         index=index, dtype=object)
    frame.columns = [str(c) for c in frame.columns]
    return RawTable(frame=frame, encoding="UTF-8", geometry=geometry, crs=crs,
                    warnings=tuple(warnings))


def _cell_text(value: object) -> str:
    """Cell -> text: missing is ``""``, 44140.0 is ``"44140"``, other floats keep repr."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return ""
        number = float(value)
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return repr(number)
    return str(value).replace("\u00a0", " ").strip()
