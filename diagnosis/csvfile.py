"""CSV files for French Excel, safe to open: the one writer of every CSV the project makes.

``;`` separator, decimal comma, UTF-8 with a byte-order mark (Excel then reads accents),
CRLF line ends. A text cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage
return) would be run as a formula by a spreadsheet (CSV injection, OWASP): such cells
get a leading apostrophe, which Excel and LibreOffice show as text and do not print.
Numbers are written as numbers (a negative number is not a formula).

Examples
--------
>>> df = pd.DataFrame({"nom": ["=SOMME(A1)", "Crèche"], "places": [-1.5, 12]})
>>> french_csv_bytes(df).decode("utf-8-sig").splitlines()
['nom;places', "'=SOMME(A1);-1,5", 'Crèche;12,0']
"""

from __future__ import annotations

import codecs

import pandas as pd

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: object) -> object:
    """``value`` with a leading apostrophe when it is text a spreadsheet would run.

    Examples
    --------
    >>> neutralise_cell("=1+1"), neutralise_cell("-2"), neutralise_cell(-2.0), neutralise_cell("a")
    ("'=1+1", "'-2", -2.0, 'a')
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells (and column names) cannot run as formulas."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise_cell)
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out


def french_csv_text(df: pd.DataFrame, *, lineterminator: str = "\r\n") -> str:
    """``df`` as CSV text for French Excel, formulas neutralised (no BOM)."""
    return neutralise_formulas(df).to_csv(sep=";", decimal=",", index=False,
                                          lineterminator=lineterminator)


def french_csv_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as CSV bytes for French Excel: UTF-8 with BOM, ``;``, decimal comma."""
    return codecs.BOM_UTF8 + french_csv_text(df).encode("utf-8")
