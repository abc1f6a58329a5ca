"""Report plumbing: what the report says about itself, French formatting, tables.

Tables and sections are plain dicts for the template.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.errors import InputError
from diagnosis.exports import result_frames
from diagnosis.formatting import UNKNOWN, fr_number
from diagnosis.gaps import FACTOR_LABELS
from diagnosis.overview import Overview
from diagnosis.schema import (
    NEEDS_COLUMNS,
)
from diagnosis.static_maps import Base, render_points_map

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
#: Format of the images embedded in the PDF (JPEG: WeasyPrint embeds it without re-encoding).
IMAGE_FORMAT = "jpeg"
#: Most town halls listed in the partner directory (the export holds them all).
MAX_DIRECTORY_TOWN_HALLS = 60
#: Most town halls listed one by one among the institutions of the contact sheet.
MAX_CONTACT_TOWN_HALLS = 3
#: Most communes in a table of the body; the full table goes to the annex.
MAX_INLINE_COMMUNES = 15
#: Most rows printed for a table built from an optional result.
MAX_GENERIC_ROWS = 25
_KIND_LABELS = {"commune": "Commune", "epci": "Intercommunalité (EPCI)",
                "departement": "Département", "region": "Région", "pays": "France",
                "custom": "Territoire sur mesure"}
_NA = UNKNOWN

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReportMeta:
    """What the report says about itself.

    Attributes
    ----------
    author
        Author printed on the cover (may be empty).
    created
        Date of the report (default: today).
    sources
        Source records (``key``, ``title``, ``vintage``, ``licence``, ``attribution``,
        ``url``); default: those of the overview's summary.
    notices
        French notices to print on the cover and in the limits (demo, partial data…).
    imports
        One French line per imported file (what was accepted, rejected).
    origin
        ``"demo"`` or ``"store"`` (where the base data came from).
    title
        Title of the document.
    """

    author: str = ""
    created: dt.date | None = None
    sources: tuple[Mapping[str, Any], ...] = ()
    notices: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    origin: str = ""
    title: str = "Diagnostic territorial"


# --------------------------------------------------------------------------------------
# French formatting
# --------------------------------------------------------------------------------------


def _fr_km(metres: float) -> str:
    if not np.isfinite(metres):
        return _NA
    return f"{fr_number(metres / 1000, decimals=1)}\u00a0km"


# --------------------------------------------------------------------------------------
# Tables and sections (plain dicts for the template)
# --------------------------------------------------------------------------------------


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "",
           numeric: Sequence[bool] | None = None, total: Sequence[Any] | None = None,
           note: str = "", small: bool = False,
           widths: Sequence[float] | None = None) -> dict[str, Any]:
    """A table for the template; ``widths`` (percent) switch to the fast fixed layout."""
    if widths is not None and len(widths) != len(columns):
        raise InputError(f"widths={list(widths)!r} must have one value per column {columns!r}")
    return {
        "widths": list(widths) if widths is not None else None,
        "title": title,
        "columns": list(columns),
        "rows": [[_cell_text(c) for c in r] for r in rows],
        "numeric": list(numeric) if numeric is not None else [False] * len(columns),
        "total": [str(c) for c in total] if total is not None else None,
        "note": note,
        "css_class": " ".join(c for c in ("small" if small else "",
                                          "fixed" if widths is not None else "") if c),
    }


#: Longest text a table cell shows (a 20,000-character name once made the PDF 50 pages).
MAX_CELL_CHARS = 300


def _cell_text(value: Any) -> str:
    """A cell's text, cut to :data:`MAX_CELL_CHARS` with an ellipsis.

    Examples
    --------
    >>> len(_cell_text("x" * 5000)), _cell_text("court")
    (301, 'court')
    """
    text = str(value)
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + "…"


def _section(*, computed: bool, reason: str = "", paragraphs: Sequence[str] = (),
             tables: Sequence[dict[str, Any]] = (), figures: Sequence[dict[str, str]] = (),
             **extra: Any) -> dict[str, Any]:
    return {"computed": computed, "reason": reason, "paragraphs": list(paragraphs),
            "tables": list(tables), "figures": list(figures), **extra}


#: Scheme of the placeholder ``src`` of a figure not drawn yet (see :func:`_figure`).
FIGURE_SCHEME = "maillage-figure:"


def _figure(draw: Callable[[], bytes], caption: str) -> dict[str, Any]:
    """A figure of the report, drawn later by ``draw`` (an :data:`IMAGE_FORMAT` image).

    Sections only describe their figures: the renderer draws each one once, either
    inline (:func:`diagnosis.report.render_report_html`) or while WeasyPrint reads the
    document (:func:`diagnosis.report.build_diagnosis_pdf`). ``uri`` is set by the
    renderer.
    """
    return {"draw": draw, "caption": caption, "uri": ""}


_COLUMN_LABELS: dict[str, str] = {
    **NEEDS_COLUMNS,
    "type": "Type", "label": "Type", "name": "Nom", "facility_id": "Identifiant",
    "engine": "Moteur", "mode": "Mode", "n_facilities": "Structures chargées",
    "births_within": "Naissances à portée", "share_births_within": "Part à portée",
    "births_total": "Naissances", "n_communes_beyond": "Communes hors de portée",
    "priority_score": "Score de priorité", "rank": "Rang", "births": "Naissances",
    "minutes": "Minutes", "covered_births": "Naissances couvertes", "k": "Sites",
    "objective": "Objectif", "status": "Statut", "capacity": "Places",
    "phone": "Téléphone", "email": "Courriel", "website": "Site web",
    "address": "Adresse", "commune": "Commune", "groups": "Groupes",
}


def _cell(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "oui" if value else "non"
    if isinstance(value, int | np.integer):
        return fr_number(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return _NA
        return fr_number(v, decimals=0 if abs(v) >= 100 or v.is_integer() else 2)
    if value is None or value is pd.NA:
        return _NA
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _frame_table(df: pd.DataFrame, *, title: str = "") -> dict[str, Any]:
    data = pd.DataFrame(df.drop(columns="geometry")) if "geometry" in df.columns else df
    cols = list(data.columns)[:9]
    rows = [[_cell(v) for v in r] for r in data.loc[:, cols].head(MAX_GENERIC_ROWS)
            .itertuples(index=False, name=None)]
    numeric = [pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(
        data[c]) for c in cols]
    note = ""
    if len(data) > MAX_GENERIC_ROWS or len(data.columns) > len(cols):
        note = (f"{len(data)} ligne(s) et {len(data.columns)} colonne(s) au total : "
                "voir l'export (GeoPackage ou CSV) pour le détail.")
    return _table([_COLUMN_LABELS.get(str(c), str(c)) for c in cols], rows, title=title,
                  numeric=numeric, note=note, small=True, widths=[100 / len(cols)] * len(cols))


def _params_paragraph(result: object) -> list[str]:
    params = getattr(result, "params", None)
    if not isinstance(params, Mapping) or not params:
        return []
    items = [f"{k} = {v}" for k, v in params.items() if isinstance(v, str | int | float | bool)]
    return [f"Paramètres : {', '.join(items)}."] if items else []


def _generic_section(result: object | None, *, reason_missing: str, communes: gpd.GeoDataFrame,
                     context: gpd.GeoDataFrame | None, attribution: str,
                     map_title: str = "", titles: Mapping[str, str] | None = None,
                     base: Base = None) -> dict[str, Any]:
    if result is None:
        return _section(computed=False, reason=reason_missing)
    tables, figures = [], []
    for key, frame in result_frames(result).items():
        if isinstance(frame, gpd.GeoDataFrame) and len(frame) and frame.crs is not None and \
                set(frame.geom_type.dropna()) == {"Point"} and map_title:
            label_col = "name" if "name" in frame else None
            figures.append(_figure(partial(
                render_points_map, communes, frame, title=map_title, attribution=attribution,
                label_col=label_col, legend_label=map_title, context=context,
                fmt=IMAGE_FORMAT, base=base), map_title))
        tables.append(_frame_table(frame, title=(titles or {}).get(key, "")))
    return _section(computed=True, paragraphs=_params_paragraph(result), tables=tables,
                    figures=figures)


def _names(communes: pd.DataFrame) -> dict[str, str]:
    if "name" not in communes:
        return {c: c for c in communes["code_insee"]}
    return dict(zip(communes["code_insee"], communes["name"], strict=True))


def _types(overview: Overview) -> list[str]:
    return [t for t in overview.params.get("types", ()) if t in overview.summary["facilities"]]


def _loaded_anywhere(overview: Overview, typ: str) -> bool:
    """Whether any facility of the type was loaded (a finite distance exists)."""
    col = f"dist_m_{typ}"
    com = overview.layers["communes"]
    return bool(col in com and np.isfinite(com[col].to_numpy(dtype=float)).any())


def _shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary under ``limit`` characters (with « … »)."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def _lower_first(label: str) -> str:
    """A label inside a sentence: « Crèches (EAJE) » → « crèches (EAJE) », « MAM » kept.

    Examples
    --------
    >>> _lower_first("Centres de PMI"), _lower_first("MAM"), _lower_first("LAEP")
    ('centres de PMI', 'MAM', 'LAEP')
    """
    word = label.split(" ", 1)[0]
    return label if word.isupper() else label[:1].lower() + label[1:]


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


#: The priority factors inside a sentence (the one list: :data:`diagnosis.gaps.FACTOR_LABELS`).
_FACTOR_LABELS = {k: v[:1].lower() + v[1:] for k, v in FACTOR_LABELS.items()}
