"""Read a facility file's bytes as a table of text cells (CSV, GeoJSON, GeoPackage)."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import warnings as warnings_module
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from data_sources._budget import check_size, read_file_capped, read_stream_capped
from data_sources.user_file._decode import Decoded, _about, _decode
from data_sources.user_file.report import _plural, _rows_text
from diagnosis.errors import InputError

#: File extensions read as CSV text and as vector files (pyogrio).
CSV_EXTENSIONS = (".csv", ".txt", ".tsv")


GEO_EXTENSIONS = (".geojson", ".json", ".gpkg")


#: Largest facility file imported (bytes): the app's upload limit too (below Streamlit's
#: own ``maxUploadSize`` of 50 MB, so that the refusal is Maillage's, in French).
MAX_IMPORT_BYTES = 40 * 2**20
#: Most data rows (or features) imported from one file.
MAX_IMPORT_ROWS = 100_000
_WHAT = "fichier de structures"


#: Separators tried on CSV files, in order of preference when equally plausible.
CSV_SEPARATORS = (";", ",", "\t", "|")


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
    notes
        Rows read but flagged (stray quote, Windows-1252 line…) -> French note.
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
    notes: Mapping[int, str] = field(default_factory=dict)


def _read_source(source: Any, *, name: str | None,
                 max_bytes: int = MAX_IMPORT_BYTES) -> tuple[bytes, str]:
    """Return the bytes and the file name of a path, bytes or file-like ``source``.

    A path that is not a regular file (``/dev/zero``, a FIFO, a folder) and a file larger
    than ``max_bytes`` are refused with a French message, before being read whole.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        return read_file_capped(path, max_bytes=max_bytes, what=_WHAT), name or path.name
    if isinstance(source, bytes | bytearray | memoryview):
        if not name:
            raise InputError("load_facility_file got bytes without name=; pass the file "
                             "name too (e.g. name='creches.csv'), its extension picks the reader")
        check_size(source, name=name, max_bytes=max_bytes, what=_WHAT)
        return bytes(source), name
    if hasattr(source, "getvalue") or hasattr(source, "read"):
        file_name = name or Path(str(getattr(source, "name", "") or "")).name
        if not file_name:
            raise InputError("load_facility_file got a file object without a name; "
                             "pass name='<file name with extension>'")
        if hasattr(source, "read"):
            data = read_stream_capped(source, name=file_name, max_bytes=max_bytes, what=_WHAT)
        else:
            data = source.getvalue()
            if isinstance(data, str):
                data = data.encode("utf-8")
            check_size(data, name=file_name, max_bytes=max_bytes, what=_WHAT)
        return bytes(data), file_name
    raise InputError(f"source={source!r} is not a path, bytes or a file object; "
                     "pass the path of a CSV, GeoJSON or GeoPackage file")


def read_table(data: bytes, *, file_name: str, max_rows: int = MAX_IMPORT_ROWS,
               header: bool = True) -> RawTable:
    """Read a CSV, GeoJSON or GeoPackage file's bytes as a table of text cells.

    Parameters
    ----------
    data
        The file's bytes.
    file_name
        Its name; the extension chooses the reader and the name appears in errors.
    max_rows
        Most data rows (CSV) or features (GeoJSON, GeoPackage) read; a larger file is
        refused (French message) rather than cut.
    header
        ``False`` for a CSV without a header line: every line is a row and the columns
        are named ``colonne_1``, ``colonne_2``… (give a ``mapping`` to say which is which).

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
        return _read_csv(data, file_name=file_name, max_rows=max_rows, header=header)
    if ext in GEO_EXTENSIONS:
        return _read_vector(data, file_name=file_name, max_rows=max_rows)
    hint = " (export the sheet as CSV from your spreadsheet)" if ext in {
        ".xls", ".xlsx", ".ods"} else ""
    hint_fr = " (exportez la feuille en CSV depuis le tableur)" if hint else ""
    raise InputError(
        f"{file_name!r}: unsupported extension {ext!r}{hint}; use a CSV "
        f"({', '.join(CSV_EXTENSIONS)}), a GeoJSON ({', '.join(GEO_EXTENSIONS[:2])}) "
        "or a GeoPackage (.gpkg) file", **_about(file_name),
        fr=f"« {file_name} » : extension « {ext} » non lue{hint_fr} ; donnez un fichier CSV "
           f"({', '.join(CSV_EXTENSIONS)}), GeoJSON ({', '.join(GEO_EXTENSIONS[:2])}) ou "
           "GeoPackage (.gpkg)"
    )


#: Most columns (separators per line) read: a facility list has a few dozen at most.
MAX_IMPORT_COLUMNS = 500


def _check_width(lines: Sequence[str], seps: str, *, file_name: str,
                 max_columns: int = MAX_IMPORT_COLUMNS) -> None:
    """Refuse a file with a line of more than ``max_columns`` values (before splitting it).

    Examples
    --------
    >>> _check_width(["a;b;c"], ";", file_name="f.csv", max_columns=3)
    >>> _check_width(["a;b;c;d"], ";", file_name="f.csv", max_columns=3)
    Traceback (most recent call last):
    ...
    diagnosis.errors.InputError: 'f.csv': line 1 has more than 3 columns
    """
    if not lines or max(map(len, lines)) <= max_columns:  # no line long enough: one pass
        return
    for number, line in enumerate(lines, start=1):
        if len(line) > max_columns and max(line.count(s) for s in seps) >= max_columns:
            raise InputError(
                f"{file_name!r}: line {number} has more than {max_columns} columns",
                **_about(file_name),
                fr=f"« {file_name} » : la ligne {number} compte plus de {max_columns} "
                   "colonnes ; ce n'est pas une liste de structures (au plus "
                   f"{max_columns} colonnes) : vérifiez le séparateur ou exportez de nouveau")


def _sniff_separator(lines: Sequence[str]) -> tuple[str, int]:
    """Return the separator whose split is widest and most consistent, and its width."""
    best: tuple[tuple[bool, bool, int, float], str, int] | None = None
    for sep in CSV_SEPARATORS:
        try:
            rows = [r for r in csv.reader(lines, delimiter=sep) if any(c.strip() for c in r)]
        except csv.Error:  # a field over the size limit: judge on the other lines
            rows = [r for r in csv.reader([ln for ln in lines if len(ln) < 100_000],
                                          delimiter=sep) if any(c.strip() for c in r)]
        if not rows:
            continue
        # title lines above the header ("Liste des crèches", "Mise à jour : mars 2024")
        # hold one value: judge the width on the lines holding two values or more
        wide = [r for r in rows if sum(bool(c.strip()) for c in r) >= 2] or rows
        width = Counter(len(r) for r in wide).most_common(1)[0][0]
        consistent = sum(len(r) == width for r in wide) / len(wide)
        score = (width >= 2, consistent >= 0.9, width, consistent)
        if best is None or score > best[0]:
            best = (score, sep, width)
    if best is None:
        return CSV_SEPARATORS[0], 0
    return best[1], best[2]


def _too_many_rows(file_name: str, max_rows: int, *, unit: str = "lignes") -> InputError:
    limit = f"{max_rows:,}".replace(",", "\u202f")
    return InputError(
        f"{file_name!r} has more than {max_rows} rows", argument="fichier de structures",
        value=file_name,
        fr=f"fichier de structures « {file_name} » refusé : plus de {limit} {unit} (au plus "
           f"{limit} par fichier). Ne gardez que les structures du territoire étudié, ou "
           "découpez le fichier en plusieurs")


def _read_csv(data: bytes, *, file_name: str, max_rows: int = MAX_IMPORT_ROWS,
              header: bool = True) -> RawTable:
    decoded = _decode(data, file_name=file_name)
    text = decoded.text
    if not text.strip():
        raise InputError(f"{file_name!r} is empty; export the facility list again with a "
                         "header line (nom, type, adresse, code_insee or lat/lon…) and its rows",
                         **_about(file_name),
                         fr=f"« {file_name} » est vide : exportez de nouveau la liste, avec une "
                            "ligne d'en-tête (nom, type, adresse, code_insee ou lat/lon…) et "
                            "ses lignes")
    lines = text.splitlines(keepends=True)
    sep, width, skip_first = _csv_layout(lines, file_name=file_name)
    read = _read_records(lines, sep=sep, width=width, skip_first=skip_first,
                         file_name=file_name, max_rows=max_rows, header=header)
    head = read.head
    if head is None:
        raise InputError(f"{file_name!r}: no header line with at least two column names; "
                         "the first line must name the columns (nom, type, adresse…)",
                         **_about(file_name),
                         fr=f"« {file_name} » : aucune ligne d'en-tête d'au moins deux noms de "
                            "colonnes ; la première ligne doit nommer les colonnes (nom, type, "
                            "adresse…)")
    warnings: list[str] = []
    if read.titles:
        warnings.append(f"{_rows_text(read.titles)} avant l'en-tête ignorée(s) (titre)")
    names = _unique_headers(head, warnings)
    width = len(names)
    rows: list[list[str]] = []
    if read.table is not None:  # arrow's text, one column per name: the table at once
        frame = read.table.rename_columns(names).to_pandas()
        frame.index = pd.Index(read.row_numbers, name="row")
        return _csv_table(frame, head, names, read, decoded, sep, warnings)
    if set(map(len, read.records)) == {width}:  # every row as wide as the header
        rows = read.records
    else:
        padded: list[list[str]] = []
        for number, cells in zip(read.row_numbers, read.records, strict=True):
            if len(cells) > width and any(cells[width:]):
                read.malformed[number] = (
                    f"{len(cells)} valeurs pour {width} colonnes : un séparateur "
                    f"« {_sep_label(sep)} » dans une valeur sans guillemets ?")
            padded.append((cells + [""] * width)[:width])
        rows = padded
    if not len(rows):
        raise InputError(f"{file_name!r} has a header ({', '.join(names[:8])}) but no data rows; "
                         "add one row per facility", **_about(file_name),
                         fr=f"« {file_name} » a un en-tête ({', '.join(names[:8])}) mais aucune "
                            "ligne de données : ajoutez une ligne par structure")
    frame = pd.DataFrame(rows, columns=names, index=pd.Index(read.row_numbers, name="row"),
                         dtype=object)
    return _csv_table(frame, head, names, read, decoded, sep, warnings)


def _csv_table(frame: pd.DataFrame, head: list[str], names: list[str], read: _Records,
               decoded: Decoded, sep: str, warnings: list[str]) -> RawTable:
    """The :class:`RawTable` of a CSV's cells: empty unnamed columns dropped, notes."""
    # drop unnamed trailing columns that hold nothing (spreadsheet leftovers)
    empty_unnamed = [c for c, h in zip(names, head, strict=True)
                     if not h and not frame[c].astype(bool).any()]
    frame = frame.drop(columns=empty_unnamed)
    if read.blank_rows:
        warnings.append(
            f"{_plural(read.blank_rows, 'ligne vide ignorée', 'lignes vides ignorées')}")
    if read.stray:
        warnings.append(f"guillemet isolé : {_rows_text(read.stray)} lue(s) une par une (elles "
                        "se lisaient comme une seule ligne)")
    _note_decoding(decoded, read, warnings)
    return RawTable(frame=frame, encoding=decoded.encoding, separator=sep, malformed=read.malformed,
                    warnings=tuple(warnings), notes=read.notes)


def _csv_layout(lines: Sequence[str], *, file_name: str) -> tuple[str, int, int]:
    """``(separator, header width, lines to skip)`` of a CSV; refuse a one-column file."""
    skip_first = 0
    forced = re.fullmatch(r"\s*sep=(.)\s*", lines[0]) if lines else None
    if forced:  # Excel's "sep=;" hint line
        sep, skip_first = forced.group(1), 1
        width = len(next(csv.reader([lines[1]], delimiter=sep))) if len(lines) > 1 else 0
    else:
        sample = [ln for ln in lines[:60] if ln.strip()]
        _check_width(sample, "".join(CSV_SEPARATORS), file_name=file_name)
        sep, width = _sniff_separator(sample)
    _check_width(lines, sep, file_name=file_name)
    if width < 2:
        first = next((ln.strip() for ln in lines[skip_first:] if ln.strip()), "")
        raise InputError(
            f"{file_name!r}: only one column found in the header {first[:120]!r}: the "
            "separator is probably not ';', ',' or a tab; save the file as CSV with one of "
            "these separators (and at least a name column and a location column)",
            **_about(file_name),
            fr=f"« {file_name} » : une seule colonne dans l'en-tête « {first[:120]} » : le "
               "séparateur n'est ni « ; », ni « , », ni la tabulation, ni « | » ; enregistrez "
               "le fichier en CSV avec l'un d'eux (et au moins une colonne de nom et une de "
               "position)"
        )
    return sep, width, skip_first


@dataclass
class _Records:
    """What the CSV reader gave, row by row, before the header names the columns.

    ``row_numbers`` and ``spans`` (first and last physical line) run beside ``records``;
    ``malformed`` and ``notes`` are keyed by row number.
    """

    head: list[str] | None
    records: list[list[str]] = field(default_factory=list)
    row_numbers: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    malformed: dict[int, str] = field(default_factory=dict)
    notes: dict[int, str] = field(default_factory=dict)
    blank_rows: int = 0
    titles: list[int] = field(default_factory=list)
    stray: list[int] = field(default_factory=list)
    #: The records as one arrow table of text (one column per header name) when arrow's
    #: CSV reader read them (then ``records`` is left empty: :meth:`rows` gives them).
    table: Any = field(default=None, compare=False, repr=False)

    def rows(self) -> list[list[str]]:
        """The records as lists of cells, whichever reader read them."""
        if self.table is None:
            return self.records
        return [list(r) for r in zip(*(c.to_pylist() for c in self.table.columns), strict=True)]

    def add(self, cells: list[str], first: int, last: int) -> None:
        self.records.append(cells)
        self.row_numbers.append(first)
        self.spans.append((first, last))


#: The characters ``str.strip()`` removes (``str.isspace``), less the line breaks of the
#: csv reader: a cell is stripped of them (test: ``test_spaces_are_str_isspace``).
_SPACES = ("\t\x0b\x0c\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
           "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def _padded_cell(text: str, sep: str) -> bool:
    r"""Whether a cell of ``text`` (no quotes) starts or ends with a space to strip.

    Examples
    --------
    >>> _padded_cell("a;b\nc;d\n", ";"), _padded_cell("a; b\n", ";"), _padded_cell("a;b \r\n", ";")
    (False, True, True)
    >>> _padded_cell("a b;c\n", ";"), _padded_cell("a\tb\n", "\t"), _padded_cell(" a;b", ";")
    (False, False, True)
    """
    if not text:
        return False
    edges = (sep, "\r", "\n")
    for space in _SPACES:  # one scan per kind of space, two-letter scans for those present
        if space == sep or space not in text:
            continue
        if text[0] == space or text[-1] == space:
            return True
        if any(space + edge in text or edge + space in text for edge in edges):
            return True
    return False


def _read_plain_records(lines: Sequence[str], *, sep: str, width: int, skip_first: int,
                        file_name: str, max_rows: int, header: bool) -> _Records | None:
    """:func:`_read_records` of a CSV without quotes, in bulk; ``None`` for any other CSV.

    Without a quote (and without a NUL or an over-long line) every physical line is one
    record and nothing is unreadable: the records are read in one pass, their cells
    stripped only when some cell has spaces at an edge, and the line numbers follow.
    """
    body = "".join(lines[skip_first:])
    if '"' in body or "\x00" in body:
        return None
    body = body.replace("\u00a0", " ")  # as each cell's, the csv reader splits the same
    if header:
        read = _arrow_records(body, sep=sep, first=skip_first + 1, file_name=file_name,
                              max_rows=max_rows)
        if read is not None:
            return read
    padded = _padded_cell(body, sep)
    phys = io.StringIO(body, newline="").readlines()
    if not phys or max(map(len, phys)) >= csv.field_size_limit():
        return None
    reader = csv.reader(phys, delimiter=sep)
    try:
        records = list(reader)
    except csv.Error:
        return None
    if reader.line_num != len(phys) or len(records) != len(phys):
        return None  # not one record per line: the general reader decides
    if padded:
        records = [[c.strip() for c in r] for r in records]
    out = _Records(head=None if header else [""] * width)
    filled = [k for k, cells in enumerate(records) if any(cells)]
    first = skip_first + 1  # line number of records[0]
    data_from = 0  # index into ``filled`` of the first data row
    if out.head is None:
        for position, k in enumerate(filled):
            cells = records[k]
            if sum(bool(c) for c in cells) < 2 and len(out.titles) < 5:
                out.titles.append(k + first)  # a title above the header ("Liste des…;;;")
                continue
            out.head, data_from = cells, position + 1
            break
        if out.head is None:
            return out
    data = filled[data_from:]
    if len(data) > max_rows:
        raise _too_many_rows(file_name, max_rows)
    after_head = filled[data_from - 1] + 1 if data_from else 0
    out.blank_rows = sum(1 for r in records[after_head:] if r and not any(r))
    out.records = [records[k] for k in data]
    out.row_numbers = [k + first for k in data]
    out.spans = [(r, r) for r in out.row_numbers]
    return out


#: A cell that starts or ends with a space ``str.strip`` removes (arrow's regular
#: expressions, with Python's spaces written out: arrow's ``\s`` and trimming know fewer).
_EDGE_SPACE = "^[{0}]|[{0}]$".format("".join(f"\\x{{{ord(c):04x}}}" for c in _SPACES))


def _arrow_records(body: str, *, sep: str, first: int, file_name: str,
                   max_rows: int) -> _Records | None:
    r""":func:`_read_plain_records` of the usual CSV, by arrow's reader; ``None`` for any other.

    The usual CSV (with a header; the caller checked that it has no quote or NUL; lines
    ending in ``\n``, ``\r\n`` or ``\r``): a first line of two names or more, then lines
    of as many cells, none blank, none to strip, none too long for the csv reader. Arrow
    splits its cells in C on both cores and hands them over as one table of arrow text,
    with no Python object per cell; any other file is left to the line reader
    (``None``). The records are those of the
    csv reader (test: ``test_arrow_reader_equals_the_general_reader``).

    Examples
    --------
    >>> out = _arrow_records("nom;type\nA;crèche\nB;pmi\n", sep=";", first=1,
    ...                      file_name="f.csv", max_rows=10)
    >>> out.head, out.rows(), out.row_numbers
    (['nom', 'type'], [['A', 'crèche'], ['B', 'pmi']], [2, 3])
    >>> _arrow_records("nom;type\n\nA;crèche\n", sep=";", first=1, file_name="f.csv",
    ...                max_rows=10) is None  # a blank line: the line reader counts it
    True
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    first_line = io.StringIO(body, newline="").readline()  # its end: \n, \r\n or \r
    head = first_line.rstrip("\r\n").split(sep)
    rest = body[len(first_line):]
    if sum(bool(c) for c in head) < 2 or not rest or rest.startswith(("\n", "\r")):
        return None  # titles, a blank line or no row: the line reader words it
    if any(c != c.strip() for c in head) or rest.startswith("\ufeff"):
        return None  # a name to strip (the line reader strips every cell), or a byte-order
        # mark that arrow's reader would drop from the first row
    try:
        data = rest.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate left by the decoding
        return None
    names = [f"c{k}" for k in range(len(head))]
    try:
        table = pcsv.read_csv(
            pa.py_buffer(data),
            read_options=pcsv.ReadOptions(column_names=names, use_threads=True),
            parse_options=pcsv.ParseOptions(delimiter=sep, quote_char=False,
                                            escape_char=False, double_quote=False,
                                            newlines_in_values=False,
                                            ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), null_values=[],
                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # a line of another width
        return None
    # lines as the csv reader counts them (\n, \r\n or \r ends one; arrow's reader too)
    lines = (rest.count("\n") + rest.count("\r") - rest.count("\r\n")
             + (not rest.endswith(("\n", "\r"))))
    if table.num_rows != lines or table.num_columns != len(head):
        return None
    if table.num_rows > max_rows:
        raise _too_many_rows(file_name, max_rows)
    lengths = [pc.utf8_length(c) for c in table.columns]
    line_length = lengths[0]
    for more in lengths[1:]:
        line_length = pc.add(line_length, more)
    if (pc.min(line_length).as_py() == 0  # a line of separators only: blank
            or pc.max(line_length).as_py() + len(head) >= csv.field_size_limit()
            or any(pc.any(pc.match_substring_regex(c, _EDGE_SPACE)).as_py()
                   for c in table.columns)):
        return None
    numbers = list(range(first + 1, first + 1 + table.num_rows))
    return _Records(head=head, row_numbers=numbers, spans=[(r, r) for r in numbers],
                    table=table)


def _read_records(lines: Sequence[str], *, sep: str, width: int, skip_first: int,
                  file_name: str, max_rows: int, header: bool) -> _Records:
    """Read the records of a CSV, keeping unreadable rows (flagged) and their line numbers."""
    plain = _read_plain_records(lines, sep=sep, width=width, skip_first=skip_first,
                                file_name=file_name, max_rows=max_rows, header=header)
    if plain is not None:
        return plain
    return _read_any_records(lines, sep=sep, width=width, skip_first=skip_first,
                             file_name=file_name, max_rows=max_rows, header=header)


def _read_any_records(lines: Sequence[str], *, sep: str, width: int, skip_first: int,
                      file_name: str, max_rows: int, header: bool) -> _Records:
    """:func:`_read_records` of any CSV, record by record (quotes, errors, long values)."""
    body = "".join(lines[skip_first:])
    phys = io.StringIO(body, newline="").readlines()  # the lines as the csv reader counts them
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=sep)
    out = _Records(head=None if header else [""] * width)
    prev_line = skip_first
    while True:
        if len(out.records) > max_rows:
            raise _too_many_rows(file_name, max_rows)
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            start_line, prev_line = prev_line + 1, reader.line_num + skip_first
            if out.head is None:
                raise InputError(f"{file_name!r}: CSV syntax error near line {start_line}: "
                                 f"{exc}; check the quotes around values", **_about(file_name),
                                 fr=f"« {file_name} » : erreur de syntaxe CSV vers la ligne "
                                    f"{start_line} : vérifiez les guillemets autour des "
                                    "valeurs") from exc
            if "field limit" in str(exc):
                limit = f"{csv.field_size_limit():,}".replace(",", "\u202f")
                reason = (f"une valeur dépasse {limit} caractères (texte collé par erreur ou "
                          "guillemet non fermé ?) : ligne ignorée")
            else:
                reason = f"ligne CSV illisible ({exc}) : vérifiez les guillemets"
            out.add([], start_line, prev_line)
            out.malformed[start_line] = reason
            continue
        start_line, prev_line = prev_line + 1, reader.line_num + skip_first
        cells = [c.replace("\u00a0", " ").strip() for c in record]
        if not any(cells):
            if record and out.head is not None:
                out.blank_rows += 1  # a row of separators only (spreadsheet leftovers)
            continue
        if out.head is None:
            if sum(bool(c) for c in cells) < 2 and len(out.titles) < 5:
                out.titles.append(start_line)  # a title above the header ("Liste des…;;;")
                continue
            out.head = cells
            continue
        if prev_line > start_line:  # one record over several lines: a stray quote?
            span = phys[start_line - skip_first - 1:prev_line - skip_first]
            if _add_split_lines(out, span, sep=sep, first=start_line, last=prev_line):
                continue
            out.notes[start_line] = (f"valeur sur plusieurs lignes (lignes {start_line} à "
                                     f"{prev_line}) : vérifiez les guillemets")
        out.add(cells, start_line, prev_line)
    return out


def _add_split_lines(out: _Records, span: Sequence[str], *, sep: str, first: int,
                     last: int) -> bool:
    """Add the lines of a record joined by a stray quote one by one; False if not one."""
    assert out.head is not None
    split = _split_lines(span, sep, width=len(out.head))
    if split is None:
        return False
    for k, line_cells in enumerate(split):
        if not any(line_cells):
            continue
        number = first + k
        out.add(line_cells, number, number)
        if '"' in span[k]:
            out.stray.append(number)
            out.notes[number] = (
                f"guillemet isolé : les lignes {first} à {last} se lisaient comme une seule, "
                "elles sont lues une par une ; vérifiez cette valeur")
    return True


def _note_decoding(decoded: Decoded, read: _Records, warnings: list[str]) -> None:
    """Flag the rows whose lines lost a NUL byte or were decoded as Windows-1252."""
    if decoded.nul_lines:
        for row in _rows_on_lines(read, set(decoded.nul_lines)):
            read.notes[row] = ("octet nul (caractère invisible) supprimé dans cette ligne : "
                               "vérifiez-la")
        warnings.append(f"octets nuls supprimés : {_rows_text(decoded.nul_lines)} du fichier "
                        "(les autres caractères sont gardés)")
    if decoded.cp1252_lines:
        flagged = _rows_on_lines(read, set(decoded.cp1252_lines))
        for row in flagged:
            read.notes[row] = "ligne en Windows-1252 dans un fichier UTF-8 : vérifiez les accents"
        if flagged:
            warnings.append(f"{_rows_text(flagged)} en Windows-1252 dans un fichier UTF-8 "
                            "(décodée(s) à part, accents à vérifier)")


def _rows_on_lines(read: _Records, lines: set[int]) -> list[int]:
    """Row numbers of the records spanning one of ``lines``."""
    return [row for row, (a, b) in zip(read.row_numbers, read.spans, strict=True)
            if any(line in lines for line in range(a, b + 1))]


def _split_lines(lines: Sequence[str], sep: str, *, width: int) -> list[list[str]] | None:
    r"""Cells of each line read alone, when every non-blank line has ``width`` cells.

    A stray quote makes the csv reader join lines into one record; read alone, each line
    of such a record has the header's width. A genuine value over several lines (an
    address with a line break) does not, and ``None`` is returned.

    Examples
    --------
    >>> _split_lines(['A "x;eaje;44129\n', 'B;eaje;44130\n'], ";", width=3)
    [['A "x', 'eaje', '44129'], ['B', 'eaje', '44130']]
    >>> _split_lines(['A;"12 rue X\n', 'BP 5";44129\n'], ";", width=3) is None
    True
    """
    out: list[list[str]] = []
    for line in lines:
        text = line.rstrip("\r\n")
        if not text.strip():
            out.append([])
            continue
        cells = [c.replace("\u00a0", " ").strip()
                 for c in next(csv.reader([text], delimiter=sep, quoting=csv.QUOTE_NONE))]
        if len(cells) > width and not any(cells[width:]):
            cells = cells[:width]
        if len(cells) != width:
            return None
        out.append(cells)
    return out


def _sep_label(sep: str) -> str:
    return "tabulation" if sep == "\t" else "barre verticale |" if sep == "|" else sep


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


def _read_vector(data: bytes, *, file_name: str, max_rows: int = MAX_IMPORT_ROWS) -> RawTable:
    import pyogrio  # local: the CSV path does not need GDAL

    if not data.strip():
        raise InputError(f"{file_name!r} is empty; export the layer again", **_about(file_name),
                         fr=f"« {file_name} » est vide : exportez de nouveau la couche")
    warnings: list[str] = []
    malformed: dict[int, str] = {}
    layers: Any = []
    spatial: list[str] = []
    # GDAL wants a real file name with the right extension (a GeoPackage read from memory
    # warns about its "non conformant file extension"): go through a temporary file.
    with tempfile.TemporaryDirectory(prefix="maillage_import_") as tmp:
        path = Path(tmp) / f"upload{Path(file_name).suffix.lower()}"
        path.write_bytes(data)
        try:
            with warnings_module.catch_warnings():
                # GDAL warns before failing on a file that is not a GeoPackage ("bad
                # application_id"): the failure below says it in French
                warnings_module.simplefilter("ignore", RuntimeWarning)
                layers = pyogrio.list_layers(path)
                spatial = [str(n) for n, kind in layers if kind]
                names = spatial or [str(layers[0][0])]
                features = sum(int(pyogrio.read_info(path, layer=layer).get("features") or 0)
                               for layer in names)
            if features > max_rows:
                raise _too_many_rows(file_name, max_rows, unit="objets")
            parts = []
            for layer in names:
                with warnings_module.catch_warnings():
                    # GDAL warns, then GEOS fails, on an unclosed ring: the GeoJSON is then
                    # read feature by feature below (the warning would only be noise)
                    warnings_module.simplefilter("ignore", RuntimeWarning)
                    parts.append(pyogrio.read_dataframe(path, layer=layer if len(layers) > 1
                                                        else None))
        except InputError:
            raise
        except Exception as exc:  # pyogrio raises DataSourceError and friends
            fallback = (_read_geojson_features(data, file_name=file_name, max_rows=max_rows)
                        if path.suffix in {".geojson", ".json"} else None)
            if fallback is None:
                raise InputError(f"{file_name!r}: cannot read it as GeoJSON/GeoPackage ({exc}); "
                                 "check the file or export it again", **_about(file_name),
                                 fr=f"« {file_name} » ne se lit pas comme un GeoJSON ou un "
                                    "GeoPackage : vérifiez le fichier ou exportez-le de "
                                    "nouveau") from exc
            parts, malformed = [fallback[0]], fallback[1]
            names = ["features"]
            if malformed:
                warnings.append(f"{_plural(len(malformed), 'objet illisible', 'objets illisibles')}"
                                f" ({_rows_text(sorted(malformed))}) : rejeté(s), les autres "
                                "sont lus")
    if len(layers) > 1:
        counts = ", ".join(f"« {n} » ({len(g)})" for n, g in zip(names, parts, strict=True))
        skipped = [str(n) for n, kind in layers if not kind]
        warnings.append(f"{len(names)} couche(s) lue(s) sur {len(layers)} : {counts}"
                        + (f" ; tables sans géométrie ignorées : {', '.join(skipped)}"
                           if skipped and spatial else ""))
    if len(parts) > 1:
        crs = next((g.crs for g in parts if getattr(g, "crs", None) is not None), None)
        parts = [g.to_crs(crs) if crs is not None and g.crs is not None else g for g in parts]
        gdf = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry=parts[0].geometry.name,
                               crs=crs)
    else:
        gdf = parts[0]
    if len(gdf) == 0:
        raise InputError(f"{file_name!r} holds no feature; export the layer with its objects",
                         **_about(file_name),
                         fr=f"« {file_name} » ne contient aucun objet : exportez la couche avec "
                            "ses objets")
    index = pd.Index(gdf.attrs.get("ranks", range(1, len(gdf) + 1)), name="row")
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
                    warnings=tuple(warnings), malformed=malformed)


def _open_ring(geom: Any) -> str:
    """Describe the first unclosed ring of a GeoJSON (Multi)Polygon, ``""`` when none.

    Examples
    --------
    >>> _open_ring({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]})
    'premier point [0, 0], dernier [1, 1]'
    >>> _open_ring({"type": "Point", "coordinates": [0, 0]})
    ''
    """
    if not isinstance(geom, dict):
        return ""
    kind, coords = geom.get("type"), geom.get("coordinates")
    polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    for polygon in polygons or []:
        for ring in polygon or []:
            if ring and list(ring[0]) != list(ring[-1]):
                return f"premier point {list(ring[0])}, dernier {list(ring[-1])}"
    return ""


def _read_geojson_features(data: bytes, *, file_name: str = "",
                           max_rows: int = MAX_IMPORT_ROWS,
                           ) -> tuple[gpd.GeoDataFrame, dict[int, str]] | None:
    """Read a GeoJSON feature by feature; a feature with a bad geometry is set aside.

    Returns ``None`` when the text is not a GeoJSON FeatureCollection.
    """
    import shapely.geometry

    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        return None
    if len(doc["features"]) > max_rows:
        raise _too_many_rows(file_name, max_rows, unit="objets")
    props: list[dict[str, Any]] = []
    geoms: list[Any] = []
    bad: dict[int, str] = {}
    for rank, feature in enumerate(doc["features"], start=1):
        feature = feature if isinstance(feature, dict) else {}
        shape = None
        try:
            geom = feature.get("geometry")
            open_ring = _open_ring(geom)
            if open_ring:
                bad[rank] = (f"polygone dont l'anneau n'est pas fermé ({open_ring}) : objet "
                             "ignoré ; corrigez sa géométrie ou donnez lat/lon")
            elif geom:
                shape = shapely.geometry.shape(geom)
        except Exception as exc:  # shapely raises GEOSException, ValueError, KeyError…
            bad[rank] = f"géométrie illisible ({exc}) : objet ignoré"
        props.append({str(k): v for k, v in (feature.get("properties") or {}).items()})
        geoms.append(shape)
    if not props:
        return None
    gdf = gpd.GeoDataFrame(pd.DataFrame(props), geometry=geoms, crs="EPSG:4326")
    return gdf, bad


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
