"""The diagnosis report: HTML through Jinja2 (autoescape on), PDF through WeasyPrint.

Why one module of about 1,550 lines: it holds the report's sections in reading order
(synthesis, needs, offer, access, siting, partners, peer groups, method, annexes), each
a small function of the same results and table helpers.

The report is a pure function of results: :func:`render_report_html` and
:func:`render_report` take an :class:`~diagnosis.overview.Overview` and, optionally, the
results of the other analyses (accessibility, gaps, siting, partners, cohorts,
comparison). A part whose result is missing is printed as « Non calculé » with the
reason: the PDF never pretends to be complete. :func:`build_report_pdf` is the single
entry point of the command line and of the app.

Parts (about a dozen pages for an EPCI): 1. a one-page synthesis (the territory in five
figures, three to five findings, the recommended sites and why, the first partners to
meet, what to do next, what the data cannot say); 2. territory and needs (maps, table per
commune); 3. the offer (one table, one map); 4. access and gaps; 5. siting (recommended
sites, scenarios, the site studied); 6. partners (contact sheet); 7. peer groups
(the catchment's potential against one Maison's capacity); 8. comparison with
neighbouring territories; 9. method (the substance of the guides, with this report's
parameters), sources and limits; annexes: the needs of every commune when there are
many, and the directory of known structures. Every page carries the data attribution
and its number. The PDF names no file of the code: the guides' content is in part 9.

Optional results are read by shape, so the modules written later plug in without a
change here: an object with ``layers`` (mapping of tables) or ``table`` / ``summary``
DataFrames (or a DataFrame, or a mapping of figures) is printed as tables; point
layers are mapped.

See Also
--------
guides/diagnostic.md : the diagnosis step by step.
guides/lecture-des-cartes.md : how to read the maps.
tests/test_pdf_layout.py : no overlapping word, nothing off the page, on every page.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.analyses import Catchment, Site
from diagnosis.errors import InputError
from diagnosis.exports import result_frames
from diagnosis.formatting import UNKNOWN, fr_number, fr_percent
from diagnosis.overview import Overview, origin_points
from diagnosis.pipeline import Diagnosis
from diagnosis.schema import (
    ENGINE_CROW_FLY,
    ENGINE_SHORT_LABELS,
    FACILITY_TYPES,
    NEEDS_COLUMNS,
    facility_label,
)
from diagnosis.settings import METRIC_CRS
from diagnosis.static_maps import (
    attribution_text,
    format_length_fr,
    image_data_uri,
    render_choropleth_map,
    render_offer_map,
    render_points_map,
)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
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
                "departement": "Département"}
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


def _figure(image: bytes, caption: str) -> dict[str, str]:
    return {"uri": image_data_uri(image, fmt=IMAGE_FORMAT), "caption": caption}


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


def _params_paragraph(result: Any) -> list[str]:
    params = getattr(result, "params", None)
    if not isinstance(params, Mapping) or not params:
        return []
    items = [f"{k} = {v}" for k, v in params.items() if isinstance(v, str | int | float | bool)]
    return [f"Paramètres : {', '.join(items)}."] if items else []


def _generic_section(result: Any, *, reason_missing: str, communes: gpd.GeoDataFrame,
                     context: gpd.GeoDataFrame | None, attribution: str,
                     map_title: str = "", titles: Mapping[str, str] | None = None,
                     ) -> dict[str, Any]:
    if result is None:
        return _section(computed=False, reason=reason_missing)
    tables, figures = [], []
    for key, frame in result_frames(result).items():
        if isinstance(frame, gpd.GeoDataFrame) and len(frame) and frame.crs is not None and \
                set(frame.geom_type.dropna()) == {"Point"} and map_title:
            label_col = "name" if "name" in frame else None
            figures.append(_figure(render_points_map(
                communes, frame, title=map_title, attribution=attribution, label_col=label_col,
                legend_label=map_title, context=context, fmt=IMAGE_FORMAT), map_title))
        tables.append(_frame_table(frame, title=(titles or {}).get(key, "")))
    return _section(computed=True, paragraphs=_params_paragraph(result), tables=tables,
                    figures=figures)


_FACTOR_LABELS = {"births": "naissances", "poverty": "pauvreté",
                  "single_parent": "familles monoparentales", "access": "éloignement"}


def _gaps_section(gaps: Any, *, communes: gpd.GeoDataFrame, context: gpd.GeoDataFrame | None,
                  attribution: str, reason_missing: str) -> dict[str, Any]:
    layers = getattr(gaps, "layers", None)
    summary = getattr(gaps, "summary", None)
    priority = layers.get("priority") if isinstance(layers, Mapping) else None
    if gaps is None or not isinstance(priority, pd.DataFrame) or "score" not in priority:
        return _generic_section(gaps, reason_missing=reason_missing, communes=communes,
                                context=context, attribution=attribution)
    params = getattr(gaps, "params", {}) or {}
    paras = []
    weights = params.get("weights")
    if isinstance(weights, Mapping):
        paras.append("Score de priorité (0–100) : naissances, pauvreté, familles "
                     "monoparentales et éloignement des services, pondérés "
                     + ", ".join(f"{_FACTOR_LABELS.get(k, k)} {fr_number(100 * float(v))} %"
                                 for k, v in weights.items())
                     + f" ; seuil {fr_number(params.get('max_minutes'))} minutes. Un facteur "
                     "inconnu est écarté et les autres re-pondérés (jamais compté 0).")
    tables, figures = [], []
    if isinstance(summary, pd.DataFrame) and {"label", "n_communes_white"} <= set(summary):
        paras.append("Zones blanches (communes dont la structure la plus proche d'un type est "
                     "au-delà du seuil) : colonne « Communes hors de portée » du tableau "
                     "d'accessibilité ; le détail par commune est dans l'export.")
    geo = communes.merge(priority[["code_insee", "score"]], on="code_insee", how="left")
    figures.append(_figure(render_choropleth_map(
        geo, "score", title="Score de priorité des communes (0–100)",
        legend_title="Score de priorité", attribution=attribution, context=context,
        cmap="Reds", fmt=IMAGE_FORMAT),
        "Score de priorité : plus il est élevé, plus la commune cumule besoins et éloignement "
        "des services."))
    contrib = [c for c in priority.columns if c.startswith("contrib_")]
    top = priority.sort_values("score", ascending=False).head(10)
    rows = [[fr_number(r.get("rank")), r.get("name", r["code_insee"]), fr_number(r.get("births")),
             fr_number(r["score"], decimals=1),
             *[fr_number(r[c], decimals=1) for c in contrib]] for r in top.to_dict("records")]
    labels = {"contrib_births": "dont naissances", "contrib_poverty": "dont pauvreté",
              "contrib_single_parent": "dont monoparentalité",
              "contrib_access": "dont éloignement"}
    cols = ["Rang", "Commune", "Naissances", "Score", *[labels.get(c, c) for c in contrib]]
    tables.append(_table(cols, rows, numeric=[True, False, True, True, *[True] * len(contrib)],
                         title="Communes prioritaires (10 premières)", small=True,
                         widths=[7, 25, 11, 11, *[46 / max(len(contrib), 1)] * len(contrib)]))
    return _section(computed=True, paragraphs=paras, tables=tables, figures=figures)


_SCENARIO_ROWS_LEFT_OUT = ("Sites recommandés", "Temps de calcul (s)")


def _siting_section(siting: Any, scenarios: pd.DataFrame | None, *,
                    communes: gpd.GeoDataFrame, context: gpd.GeoDataFrame | None,
                    attribution: str, reason_missing: str) -> dict[str, Any]:
    layers = getattr(siting, "layers", None)
    sites = layers.get("sites") if isinstance(layers, Mapping) else None
    if siting is None or not isinstance(sites, gpd.GeoDataFrame):
        return _generic_section(siting, reason_missing=reason_missing, communes=communes,
                                context=context, attribution=attribution,
                                map_title="Sites recommandés")
    summary = getattr(siting, "summary", {}) or {}
    paras = [str(summary["message"])] if summary.get("message") else []
    paras.append("Temps de trajet : voir la partie 4 ; méthode en partie 9. "
                 "Ces recommandations sont une aide à la discussion avec les partenaires, pas "
                 "une décision.")
    figures, tables = [], []
    recommended = sites.loc[sites["status"].eq("recommandé")] if "status" in sites else sites
    if len(recommended):
        figures.append(_figure(render_points_map(
            communes, recommended, title="Sites recommandés", attribution=attribution,
            label_col="rank" if "rank" in recommended else None,
            legend_label="Sites recommandés (rang)", context=context, fmt=IMAGE_FORMAT),
            "Sites recommandés pour accueillir la Maison (scénario principal)."))
        rows = []
        for r in recommended.to_dict("records"):
            rows.append([fr_number(r.get("rank")), r.get("name", ""), r.get("type_label", ""),
                         fr_number(r.get("births_covered")), fr_number(r.get("births_new")),
                         r.get("explanation", "")])
        tables.append(_table(["Rang", "Site", "Type", "Naissances à portée",
                              "dont nouvelles", "Pourquoi"], rows,
                             numeric=[True, False, False, True, True, False], small=True,
                             widths=[6, 20, 14, 10, 10, 40], title="Sites recommandés"))
    if isinstance(scenarios, pd.DataFrame) and len(scenarios):
        # the sites are named in the table above; the computing time is for the app
        scenarios = scenarios.drop(index=[i for i in _SCENARIO_ROWS_LEFT_OUT
                                          if i in scenarios.index])
        cols = list(scenarios.columns)
        rows = [[str(idx), *[_shorten(_cell(v), 60) for v in row]] for idx, row in
                zip(scenarios.index, scenarios.itertuples(index=False, name=None), strict=True)]
        tables.append(_table(["Indicateur", *[str(c) for c in cols]], rows,
                             numeric=[False, *[True] * len(cols)], small=True,
                             title="Scénarios comparés",
                             widths=[100 - 16 * len(cols), *[16] * len(cols)]
                             if len(cols) <= 4 else None))
    return _section(computed=True, paragraphs=paras, tables=tables, figures=figures)


def _partners_section(partners: Any, *, reason_missing: str) -> dict[str, Any]:
    layers = getattr(partners, "layers", None)
    if partners is None or not isinstance(layers, Mapping):
        return _section(computed=partners is not None, reason=reason_missing,
                        tables=[_frame_table(f, title=k) for k, f in
                                result_frames(partners).items()] if partners is not None
                        else [])
    tables = []
    inst = layers.get("institutions")
    if isinstance(inst, pd.DataFrame) and len(inst):
        records = inst.to_dict("records")
        towns = [r for r in records if r.get("role") == "Commune"]
        if len(towns) > MAX_CONTACT_TOWN_HALLS:
            records = [r for r in records if r.get("role") != "Commune"]
            records.append({"role": "Communes", "organisation": f"{len(towns)} mairies",
                            "description": "Locaux possibles, CCAS, relais d'information "
                                           "auprès des familles : coordonnées ci-dessous "
                                           "(partenaires à portée) et dans l'annuaire en "
                                           "annexe.",
                            "contact_status": towns[0].get("contact_status", "")})
        rows = [[r.get("role", ""), r.get("organisation", ""), r.get("description", ""),
                 " · ".join(str(r[k]) for k in ("phone", "email", "website") if r.get(k))
                 or "à chercher"] for r in records]
        tables.append(_table(["Rôle", "Organisation", "Pourquoi la rencontrer", "Contact"],
                             rows, small=True, widths=[15, 23, 40, 22],
                             title="Institutions à rencontrer",
                             note="Coordonnées à chercher dans les annuaires officiels : "
                                  "Maillage n'en invente aucune."))
    near = layers.get("near_site")
    if isinstance(near, pd.DataFrame):
        pp = getattr(partners, "params", {}) or {}
        radius = pp.get("radius_m")
        top = pp.get("max_minutes")
        rows = [[r.get("type_label", ""), r.get("name", ""),
                 (f"{fr_number(r['minutes'])} min" if top and pd.notna(r.get("minutes"))
                  else _fr_km(float(r.get("distance_m", np.nan)))),
                 " · ".join(str(r[k]) for k in ("phone", "email", "website") if r.get(k))
                 or _NA] for r in near.to_dict("records")]
        if top:
            within = (f" (à {fr_number(top)} min ou moins ; "
                      f"{pp.get('travel_label', '')})")
        elif radius:
            within = f" (à {_fr_km(float(radius))} ou moins, à vol d'oiseau)"
        else:
            within = ""
        site_name = pp.get("site_name")
        tables.append(_table(["Type", "Structure", "Temps ou distance" if top else "Distance",
                              "Contact"], rows, small=True,
                             widths=[20, 40, 12, 28],
                             title=(f"Partenaires à portée de « {site_name} »" if site_name
                                    else "Structures proches du site étudié") + within,
                             note="" if rows else "Aucune structure chargée à cette distance."))
    return _section(computed=True, tables=tables)


def _cohorts_section(cohorts: Any, *, reason_missing: str) -> dict[str, Any]:
    if cohorts is None or not hasattr(cohorts, "to_frame"):
        return _generic_section(cohorts, reason_missing=reason_missing,
                                communes=gpd.GeoDataFrame(), context=None, attribution="")
    params = getattr(cohorts, "params", {}) or {}
    scope = str(params.get("scope") or "naissances 2024 de tout le territoire")
    paras = [f"Pour les {scope}, avec un taux de participation "
             f"supposé de {fr_percent(params.get('uptake_rate'))} des familles (hypothèse à "
             "discuter avec les partenaires) et des groupes de "
             f"{fr_number(params.get('group_size'))} familles."]
    text = str(getattr(cohorts, "binding_text", "") or "")
    if text:
        paras.append(text)
    paras += [str(w) for w in getattr(cohorts, "warnings", ())]
    c = cohorts

    def one(v: Any) -> str:
        return fr_number(v, decimals=1)

    rows = [
        ["Naissances par an de la zone", fr_number(c.births_per_year), "", ""],
        ["Familles participantes par an", fr_number(c.families_per_year),
         fr_number(getattr(c, "maison_families_per_year", np.nan)), "familles"],
        ["Groupes pouvant démarrer par an", one(c.groups_per_year),
         one(getattr(c, "maison_groups_per_year", np.nan)), "groupes"],
        ["Groupes en cours en même temps", one(c.concurrent_groups),
         one(getattr(c, "maison_concurrent_groups", np.nan)), "groupes"],
        ["Heures d'animation par mois", fr_number(c.facilitator_hours_per_month),
         fr_number(getattr(c, "maison_facilitator_hours_per_month", np.nan)), "heures"],
        ["Mois pour réunir un groupe", one(c.months_to_fill_group), "", "mois"],
        ["Durée d'un groupe", fr_number(c.group_duration_months), "", "mois"],
    ]
    table = _table(["Indicateur", "Potentiel de la zone", "Une Maison (capacité)", "Unité"],
                   rows, numeric=[False, True, True, False], widths=[46, 20, 20, 14],
                   title="Groupes de pairs : potentiel de la zone et capacité d'une Maison",
                   note=(f"Capacité d'une Maison : {fr_number(params.get('facilitators'))} "
                         "animatrice(s) ou animateur(s) formé(s), "
                         f"{fr_number(params.get('groups_per_facilitator'))} groupes à la "
                         "fois chacun (hypothèses réglables)."))
    return _section(computed=True, paragraphs=paras, tables=[table])


def _access_section(access: Any, *, threshold_label: str) -> dict[str, Any]:
    if access is None:
        return _section(computed=False, reason=(
            "Les temps de trajet par la route et l'indicateur d'accessibilité (E2SFCA) n'ont "
            "pas été calculés pour ce rapport. Les distances à vol d'oiseau de la partie 3 "
            f"(seuil {threshold_label}) en donnent une première idée, sans tenir compte du "
            "réseau routier ni des transports."))
    summary = getattr(access, "summary", None)
    if isinstance(summary, pd.DataFrame) and {"type", "share_births_within"} <= set(summary):
        params = getattr(access, "params", {}) or {}
        mins = params.get("max_minutes")
        rows = []
        for r in summary.to_dict("records"):
            engine = str(r.get("engine", "") or "")
            typ = str(r["type"])
            rows.append([facility_label(typ, plural=True) if typ in FACILITY_TYPES else typ,
                         ENGINE_SHORT_LABELS.get(engine, engine) or _NA,
                         fr_number(r.get("n_facilities", np.nan)),
                         fr_number(r.get("births_within", np.nan)),
                         fr_percent(r["share_births_within"]),
                         fr_number(r.get("n_communes_beyond", np.nan))])
        engines = {str(e) for e in summary.get("engine", pd.Series(dtype=str)) if e}
        para = [f"Seuil d'accessibilité : {fr_number(mins)} minutes." if mins is not None
                else ""]
        if engines == {ENGINE_CROW_FLY}:
            para.append("Temps estimés à partir des distances à vol d'oiseau (aucun réseau "
                        "routier chargé) : une approximation.")
        level = params.get("demand_level")
        para.append(f"Points de départ des familles : {level} (naissances de chaque commune "
                    "réparties selon la part de ses jeunes enfants, une estimation) ; chaque "
                    "commune agrège ses points." if level else
                    "Points de départ des familles : la mairie de chaque commune (un point "
                    "par commune : l'accès à l'intérieur d'une commune n'est pas mesuré).")
        return _section(computed=True, paragraphs=[p for p in para if p], tables=[_table(
            ["Type", "Temps calculés", "Structures prises en compte", "Naissances à portée",
             "Part à portée",
             "Communes hors de portée"], rows, numeric=[False, False, True, True, True, True],
            title="Accessibilité par type de structure", widths=[26, 14, 14, 16, 14, 16])])
    return _section(computed=True, paragraphs=_params_paragraph(access),
                    tables=[_frame_table(f, title=k) for k, f in result_frames(access).items()])


# --------------------------------------------------------------------------------------
# Parts of the report
# --------------------------------------------------------------------------------------


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


def _key_findings(overview: Overview, threshold_label: str) -> tuple[list[dict[str, str]],
                                                                     dict[str, Any],
                                                                     list[str]]:
    s = overview.summary
    n = int(s["n_communes"])
    cards = [
        {"value": fr_number(s.get("births_2024")), "label": "naissances domiciliées en 2024"},
        {"value": fr_number(s.get("births_mean_2016_2021")),
         "label": "naissances par an en moyenne 2016-2021"},
        {"value": "≈ " + fr_number(s.get("under3_estimate")),
         "label": "enfants de moins de 3 ans — ESTIMATION (3 × naissances 2024), pas un "
                  "comptage"},
        {"value": fr_number(s.get("population_2022")), "label": "habitants en 2022"},
        {"value": fr_number(n), "label": "communes" + (
            f" (+ {s['n_communes_missing']} sans données)" if s.get("n_communes_missing")
            else "")},
        {"value": threshold_label, "label": "seuil de proximité (à vol d'oiseau depuis la "
                                            "mairie)"},
    ]
    rows, findings = [], []
    names = _names(overview.layers["communes"])
    absent, unknown, partial, not_found = [], [], [], []
    coverage = s.get("coverage", {})
    for t in _types(overview):
        f = s["facilities"][t]
        w = s["births_within_threshold"][t]
        without = s["communes_without"][t]
        loaded = _loaded_anywhere(overview, t)
        complete = coverage.get(t, {}).get("status") == "complete"
        share = fr_percent(w["share"]) if loaded else "non renseigné"
        rows.append([facility_label(t, plural=True), fr_number(f["count"]),
                     fr_number(f["places_known"]), f"{len(without)} / {n}",
                     fr_number(w["births"]) if loaded else _NA, share])
        if not loaded and not complete:
            unknown.append(facility_label(t, plural=True))
        elif f["count"] == 0 and complete:
            absent.append(f"{facility_label(t, plural=True)} ({fr_percent(w['share'])})")
        elif f["count"] == 0:
            not_found.append(facility_label(t, plural=True))
        elif len(without) and n > 1:
            listed = ", ".join(names.get(c, c) for c in without[:4])
            more = f" et {len(without) - 4} autres" if len(without) > 4 else ""
            partial.append(f"{facility_label(t, plural=True)} : {f['count']} dans le "
                           f"territoire, {len(without)} commune(s) sur {n} sans ({listed}{more})"
                           f", {fr_percent(w['share'])} des naissances à portée.")
    if absent:
        findings.append("Aucune structure dans le territoire (selon les sources qui les "
                        "recensent toutes) : " + ", ".join(absent) +
                        f" — entre parenthèses, la part des naissances 2024 à {threshold_label} "
                        "ou moins d'une structure voisine.")
    findings.extend(partial[:5])
    if len(partial) > 5:
        findings.append(f"… et {len(partial) - 5} autre(s) type(s) : voir la partie 3.")
    if not_found:
        findings.append("Offre non connue dans le territoire (aucune source chargée ne les "
                        "recense toutes ; les données chargées n'en placent aucune ici, ce qui "
                        "ne veut pas dire qu'il n'y en a pas) : " + ", ".join(not_found)
                        + ". Importez un fichier de structures ou mettez à jour les sources "
                        "(FINESS pour les PMI, BPE pour les crèches, relais, LAEP…).")
    if unknown:
        findings.append("Offre inconnue (aucune structure chargée, ni dans le territoire ni "
                        "autour ; pas forcément absente) : " + ", ".join(unknown) + ".")
    approx = sum(int(s["facilities"][t]["at_commune_precision"]) for t in _types(overview))
    total = sum(int(s["facilities"][t]["count"]) for t in _types(overview))
    if approx:
        findings.append(f"{approx} structure(s) sur {total} sont placées à la mairie de leur "
                        "commune (position approximative) : les distances sont indicatives.")
    if s.get("n_communes_missing"):
        findings.append(f"{s['n_communes_missing']} commune(s) du territoire n'ont pas de "
                        "données chargées : les chiffres ne couvrent que les autres.")
    table = _table(["Type de structure", "Dans le territoire", "Places connues",
                    "Communes sans", f"Naissances à ≤ {threshold_label}", "Part des naissances"],
                   rows, numeric=[False, True, True, True, True, True],
                   title="Offre et proximité par type de structure",
                   widths=[30, 13, 13, 13, 16, 15],
                   note=("« Places connues » : somme des capacités publiées (— : aucune "
                         "connue). « Communes sans » : communes sans structure du type sur "
                         "leur sol. Naissances à portée : naissances 2024 des communes dont "
                         f"la mairie est à {threshold_label} ou moins (à vol d'oiseau) d'une "
                         "structure du type, dans ou hors du territoire."))
    return cards, table, findings


def _shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary under ``limit`` characters (with « … »)."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def _share_of(summary: pd.DataFrame, typ: str) -> float | None:
    row = summary.loc[summary["type"].eq(typ)]
    if len(row) == 0 or not float(row["n_facilities"].iloc[0] or 0):
        return None
    v = row["share_births_within"].iloc[0]
    return None if pd.isna(v) else float(v)


#: Order in which the structures near the site are proposed as first partners.
_PARTNER_ORDER = ("pmi", "maternite", "sage_femme", "laep", "centre_social", "evs", "rpe",
                  "eaje", "mam")


def fr_short(value: Any) -> str:
    """A figure for a sentence: one decimal unless it is a whole number.

    Examples
    --------
    >>> fr_short(2.0), fr_short(6.06), fr_short(None)
    ('2', '6,1', '—')
    """
    try:
        v = round(float(value), 1)
    except (TypeError, ValueError):
        return _NA
    return fr_number(v, decimals=0 if v.is_integer() else 1)


def _synthesis(overview: Overview, *, access: Any, gaps: Any, siting: Any, partners: Any,
               cohorts: Any, threshold_label: str) -> dict[str, Any]:
    """Page 1: the territory in five figures, findings, sites, partners, next steps, limits."""
    s = overview.summary
    com = overview.layers["communes"]
    n = int(s["n_communes"])
    fam = pd.to_numeric(com.get("families_2022"), errors="coerce") \
        if "families_2022" in com else pd.Series(dtype=float)
    mono = pd.to_numeric(com.get("single_parent_families_2022"), errors="coerce") \
        if "single_parent_families_2022" in com else pd.Series(dtype=float)
    mono_share = float(mono.sum() / fam.sum()) if fam.notna().any() and fam.sum() > 0 \
        and mono.notna().any() else None
    cards = [
        {"value": fr_number(s.get("births_2024")), "label": "naissances domiciliées en 2024"},
        {"value": "≈ " + fr_number(s.get("under3_estimate")),
         "label": "enfants de moins de 3 ans (ESTIMATION : 3 × naissances 2024)"},
        {"value": fr_number(s.get("population_2022")), "label": "habitants en 2022"},
        {"value": fr_number(n), "label": "communes" + (
            f" (+ {s['n_communes_missing']} sans données)" if s.get("n_communes_missing")
            else "")},
        {"value": fr_percent(mono_share, decimals=1),
         "label": "de familles monoparentales parmi les familles avec enfant(s) (2022)"},
    ]
    findings: list[str] = []
    b24, bmean = s.get("births_2024"), s.get("births_mean_2016_2021")
    if b24 is not None and bmean:
        change = float(b24) / float(bmean) - 1
        trend = ("stables" if abs(change) < 0.03 else
                 f"en baisse de {fr_percent(-change)}" if change < 0 else
                 f"en hausse de {fr_percent(change)}")
        findings.append(f"{fr_number(b24)} naissances en 2024, {trend} par rapport à la "
                        f"moyenne 2016-2021 ({fr_number(bmean)} par an).")
    coverage = s.get("coverage", {})
    present, absent, unknown = [], [], []
    for t in _types(overview):
        if t == "mairie":
            continue
        count = int(s["facilities"][t]["count"])
        status = coverage.get(t, {}).get("status")
        if count:
            present.append(f"{fr_number(count)} "
                           f"{_lower_first(facility_label(t, plural=count > 1))}")
        elif status == "complete":
            absent.append(_lower_first(facility_label(t, plural=True)))
        else:
            unknown.append(_lower_first(facility_label(t, plural=True)))
    if present:
        findings.append("Structures connues dans le territoire : " + ", ".join(present) + ".")
    if absent:
        findings.append("Aucune structure dans le territoire, selon les sources qui les "
                        "recensent toutes : " + ", ".join(absent) + ".")
    if unknown:
        findings.append("Offre non connue (aucune source complète chargée : ce n'est pas "
                        "une absence) : " + ", ".join(unknown) + ".")
    acc_summary = getattr(access, "summary", None)
    if isinstance(acc_summary, pd.DataFrame) and {"type", "share_births_within",
                                                  "n_facilities"} <= set(acc_summary):
        minutes = (getattr(access, "params", {}) or {}).get("max_minutes")
        parts = []
        for t in ("pmi", "eaje", "laep", "rpe", "maternite"):
            share = _share_of(acc_summary, t)
            if share is not None:
                parts.append(f"{fr_percent(share)} pour les "
                             f"{_lower_first(facility_label(t, plural=True))}")
        engines = set(acc_summary.get("engine", pd.Series(dtype=str)).dropna())
        how = " (temps estimés à vol d'oiseau)" if engines == {ENGINE_CROW_FLY} else ""
        if parts and minutes is not None:
            findings.append(f"Part des naissances à {fr_number(minutes)} min ou moins d'une "
                            f"structure connue{how} : " + ", ".join(parts[:4]) + ".")
    prio = (getattr(gaps, "layers", None) or {}).get("priority") \
        if isinstance(getattr(gaps, "layers", None), Mapping) else None
    if isinstance(prio, pd.DataFrame) and "score" in prio and len(prio) > 1:
        top = prio.sort_values("score", ascending=False).head(3)
        tops = [str(r.get("name", r["code_insee"])) for r in top.to_dict("records")]
        findings.append("Communes les plus prioritaires (besoins et éloignement des "
                        "services) : " + ", ".join(tops) + ".")
    if cohorts is not None and hasattr(cohorts, "maison_groups_per_year"):
        findings.append(
            f"Groupes de pairs : la zone desservie pourrait en remplir "
            f"{fr_short(cohorts.groups_per_year)} par an ; une Maison en anime "
            f"{fr_short(cohorts.maison_groups_per_year)} par an "
            + ("(sa capacité limite)." if getattr(cohorts, "binding", "") == "capacite"
               else "(les naissances limitent)."))
    if len(findings) > 5:
        findings = findings[:4] + findings[-1:]
    sites: list[dict[str, str]] = []
    layers = getattr(siting, "layers", None)
    table = layers.get("sites") if isinstance(layers, Mapping) else None
    commune_names = _names(com)
    if isinstance(table, pd.DataFrame) and len(table):
        rec = table.loc[table["status"].eq("recommandé")] if "status" in table else table
        for r in rec.head(3).to_dict("records"):
            code = str(r.get("code_insee", ""))
            sites.append({"name": _shorten(str(r.get("name", "")), 90),
                          "where": f"{r.get('type_label', '')}, {commune_names.get(code, code)}",
                          "why": _shorten(str(r.get("explanation", "")), 230)})
    contacts = []
    p_layers = getattr(partners, "layers", None)
    if isinstance(p_layers, Mapping):
        inst = p_layers.get("institutions")
        if isinstance(inst, pd.DataFrame):
            for r in inst.loc[inst["role"].ne("Commune")].head(4).to_dict("records"):
                contact = " · ".join(str(r[k]) for k in ("phone", "email") if r.get(k))
                contacts.append(_shorten(f"{r['organisation']} ({str(r['role']).lower()})", 95)
                                + (f" — {contact}" if contact else ""))
        near = p_layers.get("near_site")
        if isinstance(near, pd.DataFrame) and len(near):
            # the two nearest structures, then the town hall nearest to the site
            is_hall = near["type"].eq("mairie") if "type" in near else \
                pd.Series(False, index=near.index)
            others = near.loc[~is_hall]
            if "type" in others:  # health and parenting before childcare
                rank = others["type"].map({t: i for i, t in enumerate(_PARTNER_ORDER)})
                others = others.assign(_rank=rank.fillna(len(_PARTNER_ORDER))).sort_values(
                    ["_rank", *(["minutes"] if "minutes" in others else [])], kind="stable")
            picked = pd.concat([others.head(2), near.loc[is_hall].head(1)])
            for r in picked.to_dict("records"):
                contact = " · ".join(str(r[k]) for k in ("phone", "email") if r.get(k))
                contacts.append(_shorten(str(r["name"]), 70)
                                + (f" — {contact}" if contact else ""))
    next_steps = [
        "Présenter ce diagnostic au comité de pilotage (CAF, Département et PMI, "
        "intercommunalité, communes) et fixer ensemble le seuil de temps et la part des "
        "familles attendue dans les groupes.",
        "Rencontrer les partenaires de la fiche contacts (partie 6) ; compléter l'offre "
        "partielle ou non connue avec eux, puis relancer le diagnostic.",
    ]
    if sites:
        next_steps.append("Visiter le ou les sites recommandés : locaux, accès, horaires, "
                          "accord du gestionnaire.")
    next_steps.append("Phase suivante de l'accompagnement : cadrage du projet et formation "
                      "de l'animatrice ou de l'animateur des groupes.")
    cannot = []
    engines = set(acc_summary.get("engine", pd.Series(dtype=str)).dropna()) \
        if isinstance(acc_summary, pd.DataFrame) else set()
    if engines == {ENGINE_CROW_FLY} or access is None:
        cannot.append("Les temps de trajet réels : ils sont estimés à vol d'oiseau, sans "
                      "réseau routier ni transports en commun.")
    else:
        cannot.append("Les trajets en transports en commun : les temps sont calculés sur le "
                      "réseau routier.")
    cannot.append("Le nombre exact d'enfants de moins de 3 ans (estimé) ni les places "
                  "réellement libres en crèche.")
    if unknown:
        cannot.append("L'absence d'un type dont l'offre est partielle ou non connue.")
    if cohorts is not None:
        cannot.append("La part des familles qui rejoindront un groupe : "
                      f"{fr_percent((getattr(cohorts, 'params', {}) or {}).get('uptake_rate'))}"
                      " est une hypothèse.")
    return {"cards": cards, "findings": findings, "sites": sites, "contacts": contacts,
            "next_steps": next_steps, "cannot": cannot,
            "siting_computed": siting is not None, "partners_computed": partners is not None}


def _needs_table(com: pd.DataFrame, *, limit: int | None = None) -> dict[str, Any]:
    cols = [("name", "Commune", None), ("code_insee", "Code", None),
            ("births_2024", "Naiss. 2024", 0), ("births_mean_2016_2021", "Moy. 2016-21", 1),
            ("under3_estimate", "< 3 ans (est.)", 0), ("population_2022", "Pop. 2022", 0),
            ("density_per_km2", "Densité", 0), ("median_income_2021", "Revenu médian", 0),
            ("poverty_rate_2021", "Pauvreté %", 1),
            ("single_parent_share_2022", "Familles mono\u00adparentales %", 1),
            ("caf_coverage_rate", "Couv. CAF", 0),
            ("caf_coverage_rate_epci", "Couv. CAF EPCI", 0)]
    cols = [c for c in cols if c[0] in com]
    data = com.sort_values("births_2024", ascending=False, na_position="last")
    if limit is not None:
        data = data.head(limit)
    rows = []
    for r in data.itertuples(index=False):
        rows.append([getattr(r, c) if d is None else fr_number(getattr(r, c), decimals=d)
                     for c, _, d in cols])

    def tot(col: str) -> str:
        v = pd.to_numeric(com[col], errors="coerce")
        return fr_number(v.sum()) if v.notna().any() else _NA

    total: list[str] = []
    for c, _, _ in cols:
        if c == "name":
            total.append("Territoire")
        elif c in ("births_2024", "births_mean_2016_2021", "under3_estimate",
                   "population_2022"):
            total.append(tot(c))
        elif c == "density_per_km2" and {"population_2022", "area_km2"} <= set(com):
            area = pd.to_numeric(com["area_km2"], errors="coerce").sum()
            total.append(fr_number(pd.to_numeric(com["population_2022"]).sum() / area)
                         if area > 0 else _NA)
        elif c == "single_parent_share_2022" and \
                {"single_parent_families_2022", "families_2022"} <= set(com):
            fam = pd.to_numeric(com["families_2022"], errors="coerce").sum()
            mono = pd.to_numeric(com["single_parent_families_2022"], errors="coerce").sum()
            total.append(fr_number(100 * mono / fam, decimals=1) if fam > 0 else _NA)
        else:
            total.append("")
    width = {"name": 17, "code_insee": 7, "population_2022": 9, "median_income_2021": 9,
             "single_parent_share_2022": 10}
    raw = [width.get(c[0], 8) for c in cols]
    return _table([c[1] for c in cols], rows, numeric=[c[2] is not None for c in cols],
                  widths=[100 * w / sum(raw) for w in raw],
                  total=total, small=True, title="Besoins par commune (par naissances 2024)",
                  note=("— : donnée manquante (secret statistique pour le taux de pauvreté des "
                        "petites communes : jamais remplacé par 0). « < 3 ans (est.) » est une "
                        "estimation (3 × naissances 2024). Revenu médian : revenu disponible "
                        "par unité de consommation 2021 (€). Le total ne fait pas la moyenne "
                        "des revenus ni des taux de pauvreté, qui ne s'additionnent pas."
                        + (" Couv. CAF : places d'accueil du jeune enfant pour 100 enfants de "
                           "moins de 3 ans (Cnaf, publié pour les communes de plus de 10 000 "
                           "habitants et pour l'EPCI)." if "caf_coverage_rate" in com else "")))


def _needs_part(overview: Overview, context: gpd.GeoDataFrame | None,
                attribution: str) -> dict[str, Any]:
    """Territory and needs: figures, the births and poverty maps, the table per commune."""
    com = overview.layers["communes"]
    s = overview.summary
    area = pd.to_numeric(com.get("area_km2"), errors="coerce").sum() if "area_km2" in com \
        else float("nan")
    pop = s.get("population_2022")
    paras = [f"{overview.territory.label} : {len(com)} commune(s), "
             f"{fr_number(pop)} habitants en 2022, {fr_number(area)} km², soit "
             f"{fr_number(pop / area if pop and area else float('nan'))} habitants par km² ; "
             f"{fr_number(s.get('births_2024'))} naissances domiciliées en 2024 (enfants dont "
             "la mère réside dans la commune), "
             f"{fr_number(s.get('births_mean_2016_2021'))} par an en moyenne de 2016 à 2021."]
    if "epci_name" in com and overview.territory.kind == "departement":
        paras.append(f"{com['epci_name'].nunique()} intercommunalités (EPCI) ont des communes "
                     "dans le territoire.")
    inc = pd.to_numeric(com["median_income_2021"], errors="coerce") \
        if "median_income_2021" in com else pd.Series(dtype=float)
    pov = pd.to_numeric(com["poverty_rate_2021"], errors="coerce") \
        if "poverty_rate_2021" in com else pd.Series(dtype=float)
    social = []
    if inc.notna().any():
        social.append(f"revenu disponible médian 2021 de {fr_number(inc.min())} € à "
                      f"{fr_number(inc.max())} € par unité de consommation selon la commune")
    if len(pov):
        social.append(f"taux de pauvreté 2021 publié pour {int(pov.notna().sum())} commune(s) "
                      f"sur {len(pov)} (les autres sont sous secret statistique, jamais "
                      "comptées 0)"
                      + (f", de {fr_number(pov.min(), decimals=1)} % à "
                         f"{fr_number(pov.max(), decimals=1)} %" if pov.notna().any() else ""))
    if social:
        paras.append(_capitalize(" ; ".join(social)) + ".")
    paras.append("Les enfants de moins de 3 ans sont estimés à 3 × naissances 2024 : une "
                 "estimation, pas un comptage.")
    figures = [_figure(render_choropleth_map(
        com, "births_2024", title="Naissances domiciliées en 2024 par commune",
        legend_title="Naissances 2024", attribution=attribution, context=context,
        fmt=IMAGE_FORMAT),
        "Naissances 2024 par commune (classes par quantiles). Source : Insee, état civil.")]
    if pov.notna().any():
        figures.append(_figure(render_choropleth_map(
            com, "poverty_rate_2021", title="Taux de pauvreté 2021 (%)",
            legend_title="Taux de pauvreté (%)", attribution=attribution, context=context,
            cmap="Oranges", missing_label="secret statistique", fmt=IMAGE_FORMAT),
            "Taux de pauvreté au seuil de 60 % (Filosofi 2021) ; hachures : secret "
            "statistique, jamais 0."))
    full = _needs_table(com)
    if len(com) <= MAX_INLINE_COMMUNES:
        return _section(computed=True, paragraphs=paras, figures=figures, tables=[full],
                        annex=None)
    top = _needs_table(com, limit=MAX_INLINE_COMMUNES)
    top["title"] = f"Besoins : les {MAX_INLINE_COMMUNES} communes aux naissances les plus " \
                   "nombreuses"
    top["note"] = f"Les {len(com)} communes sont en annexe A ; {top['note']}"
    return _section(computed=True, paragraphs=paras, figures=figures, tables=[top],
                    annex=full)


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



def _offer_part(overview: Overview, context: gpd.GeoDataFrame | None, attribution: str,
                threshold_label: str) -> dict[str, Any]:
    """The offer: one table of every type, one map of every structure of the territory."""
    com = overview.layers["communes"]
    fac = overview.layers["facilities"]
    s = overview.summary
    n = len(com)
    coverage = s.get("coverage", {})
    rows = []
    for t in _types(overview):
        f = s["facilities"][t]
        w = s["births_within_threshold"][t]
        loaded = _loaded_anywhere(overview, t)
        dist = com[f"dist_m_{t}"].to_numpy(dtype=float) if f"dist_m_{t}" in com else \
            np.array([np.nan])
        status = coverage.get(t, {}).get("label") or ("connue" if t == "mairie" else _NA)
        rows.append([facility_label(t, plural=True), fr_number(f["count"]),
                     fr_number(f["places_known"]), f"{len(s['communes_without'][t])} / {n}",
                     fr_percent(w["share"]) if loaded else _NA,
                     _fr_km(float(np.median(dist))) if loaded else _NA, str(status)])
    table = _table(["Type de structure", "Dans le territoire", "Places connues",
                    "Communes sans", f"Naissances à {threshold_label} ou moins",
                    "Distance médiane", "Offre connue"], rows,
                   numeric=[False, True, True, True, True, True, False],
                   title="Offre et proximité par type de structure",
                   widths=[27, 11, 11, 11, 14, 12, 14],
                   note=("« Places connues » : somme des capacités publiées (— : aucune "
                         "connue). « Communes sans » : communes sans structure du type sur "
                         "leur sol. Naissances à portée : part des naissances 2024 des "
                         f"communes dont la mairie est à {threshold_label} ou moins (à vol "
                         "d'oiseau) d'une structure du type, dans ou hors du territoire. "
                         "Distance médiane : de la mairie à la structure la plus proche. "
                         "« Offre connue » : complète quand une source qui recense tout le "
                         "type est chargée, partielle sinon, inconnue sans aucune donnée "
                         "(une offre partielle ou inconnue n'est pas une absence)."))
    types = [t for t in _types(overview) if t != "mairie"]
    figures = []
    if len(fac.loc[fac["type"].isin(types)]):
        figures.append(_figure(render_offer_map(
            com, fac, types=types, title="Les structures connues du territoire",
            attribution=attribution, context=context, fmt=IMAGE_FORMAT),
            "Structures chargées, par type (les mairies ne sont pas dessinées). Une "
            "structure placée à la mairie de sa commune a une position approximative."))
    paras = [f"Pour chaque type : les structures connues du territoire, et la proximité "
             f"des communes (mairie à {threshold_label} ou moins d'une structure du type, "
             "à vol d'oiseau, dans ou hors du territoire). La liste des structures, avec "
             "leurs coordonnées, est en annexe."]
    return _section(computed=True, paragraphs=paras, figures=figures, tables=[table])



def _directory(overview: Overview) -> list[dict[str, Any]]:
    fac = overview.layers["facilities"]
    near = overview.layers["facilities_nearby"]
    names = _names(overview.layers["communes"])
    groups: list[dict[str, Any]] = []
    order = [t for t in FACILITY_TYPES if t != "mairie"] + ["mairie"]

    def rows_of(df: pd.DataFrame) -> list[list[str]]:
        rows = []
        for r in df.sort_values(["code_insee", "name"]).to_dict("records"):
            contact = " · ".join(str(r[k]) for k in ("phone", "email", "website") if r[k])
            src = f"{r['source']} ({r['source_date']})" if r["source_date"] else r["source"]
            address = " ".join(str(r[k]) for k in ("address", "postcode") if r[k])
            rows.append([str(r["name"]), names.get(str(r["code_insee"]), str(r["code_insee"])),
                         address or _NA, contact or _NA, str(src)])
        return rows

    cols = ["Nom", "Commune", "Adresse", "Contact", "Source (date)"]
    widths = [28, 14, 20, 22, 16]
    for t in order:
        sub = fac.loc[fac["type"].eq(t)]
        if len(sub):
            label = facility_label(t, plural=True)
            note = ""
            if t == "mairie":
                label += " (communes, CCAS)"
                if len(sub) > MAX_DIRECTORY_TOWN_HALLS:
                    note = (f"{len(sub)} mairies : les {MAX_DIRECTORY_TOWN_HALLS} premières par "
                            "code INSEE sont listées ; la liste complète est dans l'export "
                            "(couche structures_mairies).")
                    sub = sub.sort_values("code_insee").head(MAX_DIRECTORY_TOWN_HALLS)
            groups.append({"label": f"{label} ({len(fac.loc[fac['type'].eq(t)])})",
                           "table": _table(cols, rows_of(sub), small=True, widths=widths,
                                           note=note)})
    if len(near):
        near_rows = rows_of(near)
        for row, typ in zip(near_rows, near.sort_values(["code_insee", "name"])["type"],
                            strict=True):
            row[0] = f"{row[0]} — {facility_label(typ)}"
        groups.append({"label": f"Structures voisines, hors du territoire ({len(near)})",
                       "table": _table(cols, near_rows, small=True, widths=widths,
                                       note="Les plus proches de leur type pour au moins une "
                                            "commune du territoire.")})
    return groups


def _site_part(site: Site, overview: Overview, siting: Any, threshold_label: str,
               catchment: Catchment | None = None) -> dict[str, Any]:
    com = overview.layers["communes"]
    births_col = str(overview.params.get("births_col", "births_2024"))
    births = pd.to_numeric(com[births_col], errors="coerce").fillna(0).to_numpy()
    total = births.sum()
    names = _names(com)
    kind = facility_label(site.facility_type) if site.facility_type in FACILITY_TYPES \
        else site.facility_type
    paras = [f"{site.name} ({kind}, {names.get(site.code_insee, site.code_insee)} ; "
             f"identifiant {site.site_id})."]
    if catchment is not None:
        top = float(catchment.area["max_minutes"].iloc[0])
        label = str(catchment.area["label"].iloc[0])
        sel = catchment.communes
        own = sel["code_insee"].isin(overview.territory.communes)
        in_births = float(pd.to_numeric(sel.loc[own, births_col], errors="coerce").sum())
        paras.append(
            f"Zone desservie : {len(sel)} commune(s) ont leur mairie à {fr_number(top)} min ou "
            f"moins de ce site ({label}), dont {int(own.sum())} du territoire : "
            f"{fr_number(catchment.births_per_year)} naissances 2024 en tout, dont "
            f"{fr_number(in_births)} dans le territoire, soit "
            f"{fr_percent(in_births / total if total else None)} de ses naissances. Les "
            "groupes de pairs ci-dessous sont calculés sur cette même zone.")
        rows = [[str(r.get("name", r["code_insee"])), f"{fr_number(r['minutes'])} min",
                 fr_number(r.get(births_col))] for r in sel.to_dict("records")]
        table = _table(["Commune", "Temps de la mairie au site", "Naissances 2024"], rows,
                       numeric=[False, True, True], small=True, widths=[50, 25, 25])
    else:
        th = origin_points(com).to_crs(METRIC_CRS)
        pt = gpd.GeoSeries([site.geometry], crs="EPSG:4326").to_crs(METRIC_CRS).iloc[0]
        d = th.distance(pt).to_numpy()
        near = d <= float(overview.params["threshold_m"])
        paras.append(f"À vol d'oiseau, {int(near.sum())} commune(s) du territoire ont leur "
                     f"mairie à {threshold_label} ou moins de ce site : "
                     f"{fr_number(births[near].sum())} naissances 2024, soit "
                     f"{fr_percent(births[near].sum() / total if total else None)} des "
                     "naissances du territoire (temps de trajet non calculés).")
        rows = [[names.get(c, c), _fr_km(float(x)), fr_number(b)] for c, x, b in
                sorted(zip(com["code_insee"], d, births, strict=True), key=lambda z: z[1])]
        table = _table(["Commune", "Distance de la mairie au site", "Naissances 2024"], rows,
                       numeric=[False, True, True], small=True, widths=[50, 25, 25])
    layers = getattr(siting, "layers", None)
    sites = layers.get("sites") if isinstance(layers, Mapping) else None
    if isinstance(sites, pd.DataFrame) and "facility_id" in sites:
        hit = sites.loc[sites["facility_id"].astype(str).eq(site.site_id)]
        if len(hit) and "status" in hit and hit["status"].iloc[0] == "recommandé":
            paras.append(f"Ce site fait partie des sites recommandés du scénario principal "
                         f"(rang {fr_number(hit['rank'].iloc[0])}) : voir ci-dessous.")
        else:
            paras.append("Ce site ne fait pas partie des sites recommandés du scénario "
                         "principal : comparez-le aux sites recommandés ci-dessous.")
    if siting is None:
        return _section(computed=False, name=site.name, reason=(
            "L'analyse d'implantation de ce site (temps de trajet, comparaison avec les autres "
            "sites possibles) n'a pas été calculée : seules les distances à vol d'oiseau "
            "ci-dessous sont données."), paragraphs=paras, tables=[table])
    return _section(computed=True, name=site.name, paragraphs=paras, tables=[table])


def _comparison_part(comparison: pd.DataFrame | None, overview: Overview,
                     attribution: str) -> dict[str, Any]:
    if comparison is None or len(comparison) == 0:
        return _section(computed=False, reason=(
            "La comparaison avec d'autres territoires n'a pas été demandée pour ce rapport "
            "(commande « compare » pour la produire)."))
    from diagnosis.comparison import render_comparison_chart

    code = overview.territory.code
    # (plural noun, feminine?) of each kind of territory: the adjectives agree with it
    kinds = {"epci": ("intercommunalités (EPCI)", True), "commune": ("communes", True),
             "departement": ("départements", False)}
    kind, fem = kinds.get(str(comparison["kind"].iloc[0]), ("territoires", False))
    near, each = ("voisines", "chacune") if fem else ("voisins", "chacun")
    if comparison["code"].eq(code).any():
        paras = [f"Le territoire (en orange) parmi {len(comparison) - 1} autres {kind} "
                 f"{near}, {each} avec son propre diagnostic, mêmes paramètres."]
    else:
        paras = [f"Les {len(comparison)} {kind} du territoire, {each} avec son propre "
                 "diagnostic, mêmes paramètres."]
    figures = []
    key_type = next((t for t in ("eaje", "pmi", "laep") if f"share_within_{t}" in comparison
                     and comparison[f"n_{t}"].sum() > 0), None)
    if key_type:
        figures.append(_figure(render_comparison_chart(
            comparison, metric=f"share_within_{key_type}", highlight=code,
            attribution=attribution, fmt=IMAGE_FORMAT),
            f"Part des naissances 2024 à portée : {facility_label(key_type, plural=True)}."))
    types = [t for t in ("pmi", "eaje", "laep", "rpe") if f"share_within_{t}" in comparison]
    rows = []
    for r in comparison.sort_values("births_2024", ascending=False).to_dict("records"):
        rows.append([("▶ " if r["code"] == code else "") + str(r["name"]),
                     fr_number(r["n_communes"]), fr_number(r["births_2024"]),
                     *[fr_percent(r[f"share_within_{t}"]) for t in types],
                     "partielle" if r["coverage_partial"] else "complète"])
    table = _table(["Territoire", "Communes", "Naissances 2024",
                    *[f"À portée : {facility_label(t, plural=True)}" for t in types],
                    "Couverture"], rows, numeric=[False, True, True, *[True] * len(types), False],
                   small=True, widths=[100 - 10 * (3 + len(types)), 10, 10,
                                       *[10] * len(types), 10],
                   note=("Couverture partielle : des communes du territoire "
                                     "(dans un autre département) n'ont pas de données "
                                     "chargées ; ses chiffres ne portent que sur les autres."))
    return _section(computed=True, paragraphs=paras, figures=figures, tables=[table])


def _method_part(threshold_label: str, *, access: Any = None, gaps: Any = None,
                 siting: Any = None, cohorts: Any = None) -> list[dict[str, Any]]:
    """The method annex: the substance of the method guides, with this report's values."""
    ap = getattr(access, "params", {}) or {}
    minutes = ap.get("max_minutes")
    t_label = f"{fr_number(minutes)} minutes" if minutes is not None else "T minutes"
    gp = getattr(gaps, "params", {}) or {}
    weights = gp.get("weights") if isinstance(gp.get("weights"), Mapping) else None
    cp = getattr(cohorts, "params", {}) or {}
    w_text = (", ".join(f"{_FACTOR_LABELS.get(k, k)} {fr_number(100 * float(v))} %"
                        for k, v in weights.items()) if weights else
              "naissances 35 %, pauvreté 20 %, familles monoparentales 15 %, éloignement 30 %")
    return [
        {"title": "La démarche", "paragraphs": [
            "Ce diagnostic suit la première phase de l'accompagnement des Maisons des 1000 "
            "premiers jours proposé par la fédération Ensemble pour la Petite Enfance : "
            "diagnostic territorial de la petite enfance et de la parentalité, et "
            "construction du maillage territorial (le réseau des partenaires). Il repère où "
            "naissent les enfants et où vivent les familles, recense l'offre, mesure qui en "
            "est proche, repère les communes qui en manquent, puis propose un lieu "
            "d'accueil, les partenaires à rencontrer et le nombre de groupes de pairs "
            "possibles."]},
        {"title": "Les besoins (indicateurs Insee par commune)", "paragraphs": [
            "Naissances domiciliées 2024 (état civil, NAISD24) ; moyenne annuelle 2016-2021 "
            "(NAIS1621 / 6) ; population municipale 2022 (P22_POP) ; superficie (SUPERF) et "
            "densité (P22_POP / SUPERF) ; revenu disponible médian par unité de "
            "consommation 2021 (MED21) ; taux de pauvreté au seuil de 60 % 2021 (TP6021), "
            "non publié pour les petites communes (secret statistique : laissé vide, jamais "
            "0) ; familles monoparentales 2022 (C22_FAMMONO) et leur part parmi les familles "
            "avec enfant(s) (C22_FAMMONO / (C22_COUPAENF + C22_FAMMONO)).",
            "Enfants de moins de 3 ans : aucune source communale ne les compte ; ils sont "
            "estimés à 3 × NAISD24, et toujours présentés comme une estimation.",
            "Totaux du territoire : les effectifs s'additionnent ; la densité et les parts "
            "sont recalculées sur les totaux ; revenus et taux de pauvreté ne sont ni "
            "additionnés ni moyennés."]},
        {"title": "L'offre et la proximité", "paragraphs": [
            "Les structures viennent des sources listées plus bas ; chacune garde sa source, "
            "sa date et la précision de sa position (adresse, rue, ou mairie de la commune "
            "quand seule la commune est connue). Une offre est dite « complète » seulement "
            "quand une source qui recense tout le type est chargée : sinon, ne pas trouver "
            "de structure ne prouve pas qu'il n'y en a pas.",
            "Proximité : distance à vol d'oiseau, en Lambert-93, de la mairie de chaque "
            "commune à la structure la plus proche de chaque type, cherchée aussi hors du "
            f"territoire ; une commune est « à portée » sous {threshold_label}."]},
        {"title": "Accessibilité et manques", "paragraphs": [
            "Temps de trajet de la mairie de chaque commune à chaque structure : sur le "
            "réseau routier OpenStreetMap quand il est chargé, sinon estimés à vol d'oiseau "
            "(distance × facteur de détour, à vitesse moyenne constante) — le rapport dit "
            f"lequel. Seuil d'accessibilité : {t_label} (une convention à choisir avec les "
            "partenaires, pas une norme).",
            "Indice E2SFCA (Luo et Qi, 2009) : places accessibles par naissance annuelle, "
            "en tenant compte de la concurrence entre communes et d'une pondération "
            "décroissante avec le temps ; une structure dont la capacité n'est pas publiée "
            "est écartée du calcul, jamais comptée 0 place.",
            "Zone blanche : commune dont la structure la plus proche d'un type est au-delà "
            "du seuil. Score de priorité (0 à 100) : somme pondérée de quatre facteurs "
            f"ramenés entre 0 et 1 ({w_text}) ; un facteur inconnu est écarté et les autres "
            "re-pondérés ; pour une commune sous secret statistique, le revenu médian "
            "remplace le taux de pauvreté. Les poids sont une convention à discuter."]},
        {"title": "Où implanter la Maison", "paragraphs": [
            "Couverture maximale (Church et ReVelle, 1974) : avec k nouveaux lieux choisis "
            "parmi les lieux d'accueil possibles (PMI, crèches, relais, centres sociaux, "
            "LAEP, mairies…), mettre le plus de besoin à portée d'une Maison ; le besoin "
            "d'une commune pondère ses naissances par la pauvreté et la monoparentalité. "
            "Le problème est résolu exactement (solveur HiGHS) quand il est petit, sinon "
            "par une méthode gloutonne améliorée, dont l'écart à l'optimum est donné. "
            "Chaque site recommandé est expliqué (besoin couvert, nouvelles naissances à "
            "portée, site suivant et écart). Une recommandation est une aide à la "
            "discussion, pas une décision."]},
        {"title": "Les groupes de pairs", "paragraphs": [
            "Un groupe réunit une dizaine de familles dont les bébés ont le même âge, "
            "1 h 30 deux fois par mois pendant un an. À partir des naissances de la zone "
            "desservie et de la part des familles qui rejoindraient un groupe (hypothèse : "
            f"{fr_percent(cp.get('uptake_rate')) if cp else 'à fixer'}), on calcule les "
            "familles par mois, le temps pour réunir un groupe, les groupes pouvant démarrer "
            "chaque année et, par la loi de Little, les groupes menés en même temps. Ce "
            "potentiel est comparé à la capacité d'une Maison (animatrices ou animateurs "
            "formés × groupes menés à la fois par chacun) : la plus petite des deux limite "
            "les groupes réellement animés."]},
        {"title": "Les partenaires", "paragraphs": [
            "Le maillage territorial réunit santé de la mère et de l'enfant (PMI, "
            "maternités, sages-femmes, médecins), institutions (CAF, Département, ARS, "
            "intercommunalité, communes et CCAS), accueil du jeune enfant et parentalité "
            "(crèches, assistantes maternelles et MAM, relais petite enfance, LAEP), vie "
            "sociale (centres sociaux, espaces de vie sociale, associations, "
            "médiathèques). Les coordonnées imprimées viennent des sources citées : "
            "vérifiez-les avant tout contact ; Maillage n'en invente aucune."]},
        {"title": "Lire les cartes", "paragraphs": [
            "Les cartes sont en Lambert-93, avec une échelle en kilomètres et le nord "
            "géographique. Les communes voisines hors du territoire sont en gris. Les "
            "classes des cartes par commune sont des quantiles ; une commune hachurée a "
            "une donnée manquante ou secrète, jamais comptée 0."]},
    ]



def _limits_part(overview: Overview, notices: Sequence[str]) -> dict[str, Any]:
    s = overview.summary
    items = list(notices)
    items.append("Les distances sont à vol d'oiseau depuis la mairie de chaque commune : un "
                 "trajet réel est plus long, et une commune étendue a des habitants plus "
                 "loin que sa mairie.")
    items.append("Les enfants de moins de 3 ans sont estimés (3 × naissances 2024) : aucune "
                 "source communale ne les compte directement.")
    if s.get("n_communes_missing"):
        items.append(f"{s['n_communes_missing']} commune(s) du territoire sans données "
                     f"chargées ({', '.join(s.get('communes_missing', [])[:10])}) : "
                     "diagnostic partiel.")
    unknown = [facility_label(t, plural=True) for t in _types(overview)
               if not _loaded_anywhere(overview, t)]
    if unknown:
        items.append("Types sans aucune structure chargée (offre inconnue, pas forcément "
                      f"absente) : {', '.join(unknown)}.")
    rows = []
    for t in _types(overview):
        f = s["facilities"][t]
        if f["count"]:
            rows.append([facility_label(t, plural=True), fr_number(f["count"]),
                         fr_number(f["at_commune_precision"]), fr_number(f["with_capacity"])])
    tables = []
    if rows:
        tables.append(_table(["Type", "Structures", "dont placées à la mairie (approx.)",
                              "dont capacité connue"], rows, numeric=[False, True, True, True],
                             widths=[40, 20, 20, 20],
                             title="Précision des positions et des capacités"))
    return {"points": items, "tables": tables}


def _sources_table(sources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    rows = [[s.get("title", s.get("key", "")), s.get("vintage", "") or _NA,
             s.get("licence", "") or _NA, s.get("attribution", "") or _NA,
             s.get("url", "") or _NA] for s in sources]
    return _table(["Source", "Millésime", "Licence", "Mention", "Adresse"], rows, small=True,
                  widths=[26, 14, 14, 24, 22])


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=False)
    return env.get_template("report.html.j2")


def render_report_html(
    overview: Overview,
    *,
    access: Any = None,
    gaps: Any = None,
    siting: Any = None,
    scenarios: pd.DataFrame | None = None,
    partners: Any = None,
    cohorts: Any = None,
    comparison: pd.DataFrame | None = None,
    site: Site | None = None,
    context: gpd.GeoDataFrame | None = None,
    meta: ReportMeta | None = None,
    progress: Progress | None = None,
    catchment: Catchment | None = None,
) -> str:
    """Render the diagnosis report as one self-contained HTML document (French).

    Parameters
    ----------
    overview
        The diagnosis (:func:`diagnosis.overview.compute_overview`).
    access, gaps, siting, partners, cohorts
        Results of the other analyses, or ``None`` (the part says « Non calculé »).
    scenarios
        Siting scenarios side by side (:func:`diagnosis.siting.compare_scenarios`).
    comparison
        A comparison table (:func:`diagnosis.comparison.compare_territories`) including
        the territory, or ``None``.
    site
        A site studied for the Maison (``--site``), or ``None``.
    context
        Communes drawn in grey around the territory on the maps (e.g. all loaded ones).
    meta
        Author, date, sources, notices, imports.
    progress
        Called with the name of each step (for a progress bar).
    catchment
        The catchment of ``site`` (communes within T): the site section and the cohorts
        then speak of the same communes. Without it, the site section gives crow-fly
        distances only, and says so.

    Returns
    -------
    str
        HTML with the CSS and the maps (PNG data URIs) inlined.
    """
    if not isinstance(overview, Overview):
        raise InputError(f"overview must be an Overview (from compute_overview), got "
                         f"{type(overview).__name__!r}")
    meta = meta or ReportMeta()
    step = progress or (lambda _name: None)
    s = overview.summary
    sources = list(meta.sources) or list(s.get("sources", []))
    attribution = attribution_text(sources) or "Sources : voir la partie « Sources »"
    threshold_label = format_length_fr(float(overview.params["threshold_m"])) \
        .replace(" ", "\u00a0")
    t = overview.territory
    created = meta.created or dt.date.today()
    com = overview.layers["communes"]

    step("synthèse")
    synthesis = _synthesis(overview, access=access, gaps=gaps, siting=siting,
                           partners=partners, cohorts=cohorts, threshold_label=threshold_label)
    step("cartes du territoire et des besoins")
    needs = _needs_part(overview, context, attribution)
    step("cartes de l'offre")
    offer = _offer_part(overview, context, attribution, threshold_label)
    step("accessibilité, implantation, partenaires")
    origin_labels = {"demo": "données de démonstration embarquées (Loire-Atlantique)",
                     "store": "données téléchargées des sources publiques"}
    ctx = {
        "css": (TEMPLATES_DIR / "report.css").read_text(encoding="utf-8"),
        "title": meta.title,
        "territory": {"label": t.label, "name": t.name, "code": t.code,
                      "kind_label": _KIND_LABELS.get(t.kind, t.kind),
                      "n_communes": s["n_communes"], "note": t.note},
        "meta": {"author": meta.author, "date": created.strftime("%d/%m/%Y"),
                 "date_iso": created.isoformat(),
                 "origin_label": origin_labels.get(meta.origin, meta.origin or "non précisé")},
        "params": {"threshold": threshold_label},
        "header": f"Maillage — {meta.title} — {t.label} — {created.strftime('%d/%m/%Y')}",
        "footer": attribution,
        "notices": list(meta.notices),
        "synthesis": synthesis,
        "needs": needs,
        "offer": offer,
        "access": _access_section(access, threshold_label=threshold_label),
        "gaps": _gaps_section(gaps, reason_missing=(
            "Le score de priorité des communes (besoins rapportés à l'offre accessible) n'a "
            "pas été calculé pour ce rapport. Les parties 2 et 3 donnent les besoins et les "
            "communes sans structure."), communes=com, context=context,
            attribution=attribution),
        "siting": _siting_section(siting, scenarios, reason_missing=(
            "Les sites recommandés et le tableau de scénarios (combien de naissances chaque "
            "choix de lieu met à portée) n'ont pas été calculés pour ce rapport."),
            communes=com, context=context, attribution=attribution),
        "site": (_site_part(site, overview, siting, threshold_label, catchment)
                 if site else None),
        "partners": _partners_section(partners, reason_missing=(
            "La sélection des partenaires à rencontrer en priorité n'a pas été calculée : "
            "l'annuaire en annexe liste toutes les structures connues.")),
        "directory": _directory(overview),
        "cohorts": _cohorts_section(cohorts, reason_missing=(
            "Le nombre de groupes de pairs possibles n'a pas été calculé pour ce rapport : "
            "il dépend de la part des familles qui rejoindraient un groupe, une hypothèse à "
            "fixer avec les partenaires (option --uptake-rate, par exemple 0,2).")),
        "comparison": _comparison_part(comparison, overview, attribution),
        "method": _method_part(threshold_label, access=access, gaps=gaps, siting=siting,
                               cohorts=cohorts),
        "sources_table": _sources_table(sources),
        "imports": list(meta.imports),
        "limits": _limits_part(overview, meta.notices),
    }
    step("mise en page HTML")
    return french_spacing(str(_template().render(**ctx)))


#: French typography: a no-break space inside guillemets (a line never starts with »).
_FRENCH_SPACES = (("« ", "«\u00a0"), (" »", "\u00a0»"))


def french_spacing(html: str) -> str:
    r"""No line break after « or before » in the body of the report.

    Only the text after ``<body>`` is touched (the stylesheet is left as it is); the
    characters replaced never occur inside our markup.

    Examples
    --------
    >>> french_spacing("<style>a « b</style><body>Voir « ici » : oui</body>")
    '<style>a « b</style><body>Voir «\xa0ici\xa0» : oui</body>'
    """
    head, sep, body = html.partition("<body>")
    if not sep:
        return html
    for a, b in _FRENCH_SPACES:
        body = body.replace(a, b)
    return head + sep + body


def _pdf_from_html(html: str) -> bytes:
    try:
        import weasyprint
    except ImportError as exc:  # pragma: no cover - weasyprint is in requirements.txt
        raise ImportError("The PDF report needs WeasyPrint: pip install weasyprint "
                          "(and a font, e.g. Debian's fonts-dejavu-core)") from exc
    return bytes(weasyprint.HTML(string=html, base_url=str(TEMPLATES_DIR)).write_pdf())


def render_report(
    overview: Overview,
    *,
    access: Any = None,
    gaps: Any = None,
    siting: Any = None,
    scenarios: pd.DataFrame | None = None,
    partners: Any = None,
    cohorts: Any = None,
    comparison: pd.DataFrame | None = None,
    site: Site | None = None,
    context: gpd.GeoDataFrame | None = None,
    meta: ReportMeta | None = None,
    progress: Progress | None = None,
    catchment: Catchment | None = None,
) -> bytes:
    """Render the diagnosis report as PDF bytes (see :func:`render_report_html`)."""
    html = render_report_html(overview, access=access, gaps=gaps, siting=siting,
                              scenarios=scenarios, partners=partners, cohorts=cohorts,
                              comparison=comparison, site=site, context=context, meta=meta,
                              progress=progress, catchment=catchment)
    if progress:
        progress("mise en page PDF")
    return _pdf_from_html(html)


def build_report_pdf(
    overview: Overview,
    *,
    sources: Sequence[Mapping[str, Any]],
    notices: Sequence[str] = (),
    author: str = "",
    imports: Sequence[str] = (),
    origin: str = "",
    created: dt.date | None = None,
    context: gpd.GeoDataFrame | None = None,
    access: Any = None,
    gaps: Any = None,
    siting: Any = None,
    scenarios: pd.DataFrame | None = None,
    partners: Any = None,
    cohorts: Any = None,
    comparison: pd.DataFrame | None = None,
    site: Site | None = None,
    progress: Progress | None = None,
) -> bytes:
    """The one call the app and the command line make to get the PDF report.

    Parameters
    ----------
    overview
        The diagnosis.
    sources, notices, imports, origin
        From the workspace (``Workspace.sources``, ``Workspace.notices``, one French line
        per import report, ``Workspace.origin``).
    author, created
        Printed on the cover.
    context
        Communes drawn around the territory (``Workspace.communes``).
    access, gaps, siting, scenarios, partners, cohorts, comparison, site
        Optional results (see :func:`render_report_html`, and
        :func:`compute_report_analyses` to compute those that exist).
    progress
        Called with each step's name.

    Returns
    -------
    bytes
        The PDF.

    Examples
    --------
    In the app::

        pdf = build_report_pdf(ov, sources=ws.sources, notices=ws.notices,
                               context=ws.communes, author=name)
        st.download_button("Rapport PDF", pdf, file_name="diagnostic.pdf")
    """
    meta = ReportMeta(author=author, created=created, sources=tuple(sources),
                      notices=tuple(notices), imports=tuple(imports), origin=origin)
    return render_report(overview, access=access, gaps=gaps, siting=siting,
                         scenarios=scenarios, partners=partners,
                         cohorts=cohorts, comparison=comparison, site=site, context=context,
                         meta=meta, progress=progress)


def count_pdf_pages(pdf: bytes) -> int:
    """Number of pages of a PDF (reads it with pypdf)."""
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)


def diagnosis_report_kwargs(diagnosis: Diagnosis, *, author: str = "",
                            created: dt.date | None = None) -> dict[str, Any]:
    """The renderer's arguments for a :class:`~diagnosis.pipeline.Diagnosis` (one mapping)."""
    d = diagnosis
    acc = d.access
    meta = ReportMeta(author=author, created=created, sources=tuple(d.inputs.sources),
                      notices=tuple(d.inputs.notices),
                      imports=tuple(r.summary_fr() for r in d.inputs.imports),
                      origin=d.inputs.origin)
    return {"access": acc.access if acc else None, "gaps": acc.gaps if acc else None,
            "siting": d.siting.main if d.siting else None,
            "scenarios": d.siting.table if d.siting else None,
            "partners": d.partners, "cohorts": d.cohorts, "comparison": d.comparison,
            "site": d.site if d.params.site else None, "catchment": d.catchment,
            "context": d.inputs.communes, "meta": meta}


def render_diagnosis_html(diagnosis: Diagnosis, *, author: str = "",
                          created: dt.date | None = None,
                          progress: Progress | None = None) -> str:
    """The report of a diagnosis as HTML (see :func:`render_report_html`)."""
    return render_report_html(diagnosis.overview, progress=progress,
                              **diagnosis_report_kwargs(diagnosis, author=author,
                                                        created=created))


def build_diagnosis_pdf(diagnosis: Diagnosis, *, author: str = "",
                        created: dt.date | None = None,
                        progress: Progress | None = None) -> bytes:
    """The PDF report of a diagnosis: the one call the app and the command line make.

    Parameters
    ----------
    diagnosis
        :func:`diagnosis.pipeline.run_diagnosis`'s result (with its ``comparison`` set by
        the caller when peers are compared).
    author, created
        Printed on the cover.
    progress
        Called with each step's name.
    """
    return render_report(diagnosis.overview, progress=progress,
                         **diagnosis_report_kwargs(diagnosis, author=author, created=created))
