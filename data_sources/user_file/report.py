"""The import report: what happened to each row of an imported file."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd


def _empty_table(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})


@dataclass(frozen=True)
class ImportReport:
    """What happened to each row of an imported file.

    Attributes
    ----------
    file
        File name as given (``"creches.csv"``).
    rows_read
        Data rows read (blank lines excluded); ``rows_read == accepted + len(rejected)``.
    accepted
        Rows kept as facilities.
    rejected
        Columns ``row`` (as the user sees it, see the module notes), ``name`` (raw name),
        ``reason`` (French).
    duplicates
        Probable duplicates, flagged and kept: ``row``, ``name``, ``duplicate_of_row``,
        ``reason`` (French).
    warnings
        French sentences counting every correction or approximation.
    column_mapping
        Column key (schema column or ``lat``/``lon``/``x``/``y``/``epsg``/``precision``/
        ``commune``) -> file column actually used.
    crs_detected
        CRS the coordinates were read in (``"EPSG:4326"``, ``"EPSG:2154"``, several joined
        by ``" + "``), empty when no row had coordinates.
    encoding
        Text encoding (``"UTF-8"``, ``"UTF-8 (BOM)"``, ``"cp1252"``…).
    notes
        Accepted rows that were corrected or approximated: ``row``, ``name``, ``note``.
    duplicate_ids
        ``facility_id`` of the flagged duplicates: reported, and counted once (the
        workspace leaves them out of the facilities it analyses).
    """

    file: str
    rows_read: int
    accepted: int
    rejected: pd.DataFrame
    duplicates: pd.DataFrame
    warnings: tuple[str, ...]
    column_mapping: dict[str, str]
    crs_detected: str
    encoding: str
    notes: pd.DataFrame = field(default_factory=lambda: _empty_table(["row", "name", "note"]))
    duplicate_ids: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """Return one table for display or export, with French column labels.

        Returns
        -------
        pandas.DataFrame
            Columns ``ligne``, ``nom``, ``statut`` (``rejetée``, ``doublon signalé``,
            ``acceptée``), ``motif``; sorted by row.
        """
        parts = [
            pd.DataFrame({"ligne": self.rejected["row"], "nom": self.rejected["name"],
                          "statut": "rejetée", "motif": self.rejected["reason"]}),
            pd.DataFrame({"ligne": self.duplicates["row"], "nom": self.duplicates["name"],
                          "statut": "doublon signalé",
                          "motif": [f"doublon probable de la ligne {d} : {r}" for d, r in zip(
                              self.duplicates["duplicate_of_row"], self.duplicates["reason"],
                              strict=True)]}),
            pd.DataFrame({"ligne": self.notes["row"], "nom": self.notes["name"],
                          "statut": "acceptée", "motif": self.notes["note"]}),
        ]
        parts = [p for p in parts if len(p)]
        if not parts:
            return _empty_table(["ligne", "nom", "statut", "motif"])
        out = pd.concat(parts, ignore_index=True)
        out["ligne"] = out["ligne"].astype("int64")
        return out.sort_values("ligne", kind="stable").reset_index(drop=True)

    @property
    def flagged(self) -> int:
        """Accepted rows that carry a note or a duplicate flag (to check by hand)."""
        rows = set(self.notes["row"].tolist()) | set(self.duplicates["row"].tolist())
        return len(rows)

    def cli_lines(self, max_rows: int = 10) -> list[str]:
        """Short French lines for a terminal: counts, warnings, first rejections.

        Parameters
        ----------
        max_rows
            Rejected rows listed at most (the others are counted).

        Returns
        -------
        list of str
            The summary line (rows read = accepted + rejected, with the flagged rows
            among the accepted), one line per warning, then the first rejection reasons.

        Examples
        --------
        >>> import pandas as pd
        >>> rep = ImportReport(
        ...     file="creches.csv", rows_read=3, accepted=2,
        ...     rejected=pd.DataFrame({"row": [3], "name": ["X"], "reason": ["pas de nom"]}),
        ...     duplicates=_empty_table(["row", "name", "duplicate_of_row", "reason"]),
        ...     warnings=("1 ligne vide ignorée",), column_mapping={}, crs_detected="",
        ...     encoding="UTF-8")
        >>> for line in rep.cli_lines():
        ...     print(line)
        creches.csv : 3 lignes lues = 2 acceptées (dont 0 à vérifier) + 1 rejetée.
          Attention : 1 ligne vide ignorée
          Rejetée, ligne 3 (X) : pas de nom
        """
        n_rej = len(self.rejected)
        lines = [
            f"{self.file} : {_plural(self.rows_read, 'ligne lue', 'lignes lues')} = "
            f"{_plural(self.accepted, 'acceptée', 'acceptées')} (dont {self.flagged} à "
            f"vérifier) + {_plural(n_rej, 'rejetée', 'rejetées')}."
        ]
        lines += [f"  Attention : {_short(w)}" for w in self.warnings]
        limit = max(int(max_rows), 0)
        head = self.rejected.head(limit)
        for row, raw_name, reason in zip(head["row"].tolist(), head["name"].tolist(),
                                         head["reason"].tolist(), strict=True):
            name = f" ({_short(str(raw_name), 60)})" if str(raw_name) else ""
            lines.append(f"  Rejetée, ligne {row}{name} : {_short(str(reason))}")
        if n_rej > limit:
            more = _plural(n_rej - limit, "autre ligne rejetée", "autres lignes rejetées")
            lines.append(f"  … et {more} (voir le rapport d'import complet).")
        if len(self.duplicates):
            dup = _plural(len(self.duplicates), "doublon probable signalé",
                          "doublons probables signalés")
            lines.append(f"  {dup} (comptés une fois).")
        return lines

    def summary_fr(self) -> str:
        """Return one French sentence, e.g. ``"286 lignes lues, 280 acceptées, …"``."""
        n_rej, n_dup = len(self.rejected), len(self.duplicates)
        return (f"{_plural(self.rows_read, 'ligne lue', 'lignes lues')}, "
                f"{_plural(self.accepted, 'acceptée', 'acceptées')}, "
                f"{_plural(n_rej, 'rejetée', 'rejetées')}, "
                f"{_plural(n_dup, 'doublon signalé', 'doublons signalés')}")


@dataclass(frozen=True)
class ImportResult:
    """Facilities imported from a user's file and the report of the import.

    Attributes
    ----------
    facilities
        Schema columns (:data:`diagnosis.schema.FACILITY_COLUMNS`), validated, EPSG:4326.
    report
        What happened to each row.
    """

    facilities: gpd.GeoDataFrame
    report: ImportReport


def _short(text: str, limit: int = 200) -> str:
    r"""One line of at most ``limit`` characters (a long name or reason is cut).

    Examples
    --------
    >>> _short("a\nb" + "c" * 300, 10)
    'a bcccccc…'
    """
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n < 2 else many}"


def _rows_text(rows: Iterable[int], limit: int = 10) -> str:
    rows = sorted(int(r) for r in rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f"… (+{len(rows) - limit})" if len(rows) > limit else ""
    return f"{'ligne' if len(rows) == 1 else 'lignes'} {shown}{more}"


class _Log:
    """Collects rejections, per-row notes and warnings while parsing."""

    def __init__(self) -> None:
        self.reasons: dict[int, list[str]] = {}
        self.notes: dict[int, list[str]] = {}
        self.warnings: list[str] = []
        self.outside: set[int] = set()  # rows rejected for coordinates outside France

    def reject(self, rows: Iterable[int], reason: str | Callable[[int], str]) -> None:
        for r in rows:
            self.reasons.setdefault(int(r), []).append(reason(r) if callable(reason) else reason)

    def note(self, rows: Iterable[int], note: str | Callable[[int], str]) -> None:
        for r in rows:
            self.notes.setdefault(int(r), []).append(note(r) if callable(note) else note)
