"""Bounded data between the browser and the server: upload caps, paginated tables, maps.

Streamlit refuses a message over ``server.maxMessageSize`` (200 MB) with an English
« MessageSizeError » and the page breaks; a large upload can make a table or a map that
big. Every upload goes through :func:`keep_uploads` (size cap, French refusal), every
table that may be long through :func:`show_table` (pages of :data:`TABLE_PAGE_ROWS`
rows, the whole table in the CSV download), and every map through :func:`map_fits`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from data_sources.user_file.read import MAX_IMPORT_BYTES
from diagnosis.errors import render_error

#: Rows of a table sent to the browser at once.
TABLE_PAGE_ROWS = 1_000
#: Largest total of one session's uploads of a kind (two files at the per-file cap).
MAX_UPLOAD_TOTAL_BYTES = 2 * MAX_IMPORT_BYTES
#: Largest map (its Leaflet script and data) sent to the browser.
MAX_MAP_BYTES = 40 * 2**20


def _mb(n: float) -> str:
    return f"{n / 2**20:.0f} Mo" if n >= 10 * 2**20 else f"{n / 2**20:.1f} Mo".replace(".", ",")


def keep_uploads(uploads: Iterable[Any], *, max_bytes: int = MAX_IMPORT_BYTES,
                 max_total_bytes: int = MAX_UPLOAD_TOTAL_BYTES,
                 what: str = "fichier") -> tuple[list[tuple[str, bytes]], list[str]]:
    """The (name, bytes) of the uploads within the caps, and a French refusal for the rest.

    Each file holds at most ``max_bytes``, all kept files together ``max_total_bytes``
    (files are kept in upload order). The size is read from the upload's ``size`` before
    its bytes are copied.
    """
    from data_sources._budget import check_size

    kept: list[tuple[str, bytes]] = []
    refused: list[str] = []
    total = 0
    for f in uploads:
        name = str(getattr(f, "name", "") or "fichier")
        size = int(getattr(f, "size", 0) or 0)
        try:
            if size > max_bytes:
                raise _oversize(name, size, max_bytes, what=what)
            if total + size > max_total_bytes:
                refused.append(f"{what} « {name} » non chargé : les fichiers déposés dépassent "
                               f"ensemble {_mb(max_total_bytes)} ; retirez-en un ou ne gardez "
                               "que les lignes du territoire étudié")
                continue
            data = f.getvalue()
            check_size(data, name=name, max_bytes=max_bytes, what=what)
        except Exception as exc:  # an InputError, or an upload that cannot be read
            refused.append(render_error(exc))
            continue
        total += len(data)
        kept.append((name, data))
    return kept, refused


def _oversize(name: str, size: int, max_bytes: int, *, what: str) -> Exception:
    from diagnosis.errors import InputError

    return InputError(f"{name!r} is too large ({size} bytes > {max_bytes})", argument=what,
                      value=name,
                      fr=f"{what} « {name} » refusé : {_mb(size)}, au plus {_mb(max_bytes)} "
                         "par fichier. Ne gardez que les lignes du territoire étudié, ou "
                         "découpez-le en plusieurs fichiers")


def page_bounds(n_rows: int, page: int, *, page_rows: int = TABLE_PAGE_ROWS) -> tuple[int, int]:
    """First and past-the-end row of ``page`` (1 = first), clipped to the table.

    Examples
    --------
    >>> page_bounds(2_500, 3, page_rows=1_000)
    (2000, 2500)
    >>> page_bounds(2_500, 9, page_rows=1_000)
    (2000, 2500)
    """
    n_pages = max(1, -(-n_rows // page_rows))
    page = min(max(1, int(page)), n_pages)
    return (page - 1) * page_rows, min(page * page_rows, n_rows)


def french_number_columns(df: pd.DataFrame) -> dict[str, Any]:
    """Column settings that show every number column the French way.

    Streamlit has no locale of its own: ``format="localized"`` formats numbers with the
    reader's browser locale (a French browser shows « 11 249 » and « 29,2 »), while the
    values stay numbers (sorting, the CSV download). Year and code columns keep their
    digits.
    """
    out: dict[str, Any] = {}
    for col in df.columns:
        name = str(col)
        if (pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])
                and not any(w in name.lower() for w in ("année", "code", "millésime", "siren"))):
            out[name] = st.column_config.NumberColumn(format="localized")
    return out


def show_table(df: pd.DataFrame | Sequence[Mapping[str, Any]], *, key: str,
               page_rows: int = TABLE_PAGE_ROWS, **kwargs: Any) -> None:
    """``st.dataframe`` of at most ``page_rows`` rows, with a page number when longer.

    Numbers are shown the French way in a French browser (:func:`french_number_columns`).
    """
    df = pd.DataFrame(df)
    config = french_number_columns(df)
    config.update(kwargs.pop("column_config", None) or {})
    kwargs["column_config"] = config
    n = len(df)
    if n <= page_rows:
        st.dataframe(df, key=key, **kwargs)
        return
    n_pages = -(-n // page_rows)
    page = st.number_input(f"Page (sur {n_pages})", min_value=1, max_value=n_pages, value=1,
                           step=1, key=f"{key}_page")
    start, stop = page_bounds(n, int(page), page_rows=page_rows)
    st.dataframe(df.iloc[start:stop], key=key, **kwargs)
    st.caption(f"Lignes {start + 1:,} à {stop:,} sur {n:,} : le tableau est découpé en pages "
               "pour rester léger dans le navigateur ; le téléchargement CSV donne tout."
               .replace(",", "\u202f"))


def component_bytes(args: Mapping[str, Any]) -> int:
    """Approximate size of a component's arguments once sent (their text)."""
    total = 0
    for value in args.values():
        if isinstance(value, str | bytes):
            total += len(value)
        elif isinstance(value, Mapping):
            total += component_bytes(value)
        elif isinstance(value, list | tuple):
            total += sum(len(v) for v in value if isinstance(v, str | bytes))
    return total


def map_fits(args: Mapping[str, Any], *, max_bytes: int = MAX_MAP_BYTES) -> bool:
    """Whether a map may be sent; when not, a French warning is shown instead."""
    size = component_bytes(args)
    if size <= max_bytes:
        return True
    st.warning(f"Carte non affichée : elle pèserait {_mb(size)} dans le navigateur (au plus "
               f"{_mb(max_bytes)}). Les tableaux, le rapport PDF et les exports (GeoPackage "
               "pour QGIS) contiennent toutes les données ; réduisez le territoire ou le "
               "nombre de structures importées pour la voir.", icon=":material/map:")
    return False
