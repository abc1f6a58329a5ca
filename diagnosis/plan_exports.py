"""Deliverables of the national plan: French tables, CSV, GeoPackage, JSON and a short PDF.

Pure functions of a :class:`diagnosis.plan.NationalPlan`: the app and the command line
write the same files. Tables have French headers and values rounded to their meaning
(families to the unit, shares in % to the tenth); CSV through :mod:`diagnosis.csvfile`
(``;``, decimal comma, BOM); the PDF through Jinja2 (autoescape on) and WeasyPrint, its
figures drawn by matplotlib with legends outside the plotting area.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.csvfile import french_csv_bytes
from diagnosis.formatting import fr_number, fr_percent
from diagnosis.plan import NationalPlan
from diagnosis.schema import facility_label

#: Column codes of the sites table -> French headers.
SITE_COLUMNS: dict[str, str] = {
    "rank": "Rang d'ouverture",
    "name": "Lieu d'accueil",
    "type": "Type de lieu",
    "code_insee": "Code commune",
    "commune": "Commune",
    "dep_code": "Département (code)",
    "dep_name": "Département",
    "marginal_families": "Familles en plus par an (naissances)",
    "cumulative_families": "Familles cumulées par an",
    "n_communes": "Communes nouvellement à portée",
    "explanation": "Pourquoi ce lieu",
}
DEP_COLUMNS: dict[str, str] = {
    "dep_code": "Code",
    "dep_name": "Département",
    "n_communes": "Communes",
    "n_communes_unknown": "Communes sans naissances connues",
    "births": "Naissances par an (connues)",
    "births_served_before": "Naissances à portée d'une Maison existante",
    "share_served_before": "Part à portée d'une Maison existante (%)",
    "n_existing": "Maisons existantes connues",
    "n_new_national": "Nouvelles Maisons du plan France",
    "families_new_national": "Familles en plus par an (plan France)",
    "own_sites": "Réponse propre au département : lieux",
    "own_families": "Réponse propre : familles en plus par an",
}
CURVE_COLUMNS: dict[str, str] = {
    "k": "Nouvelles Maisons",
    "marginal_families": "Familles en plus avec cette Maison (par an)",
    "cumulative_families": "Familles en plus cumulées (par an)",
    "share_served": "Part des naissances à portée d'une Maison (%)",
    "part": "Partie de la courbe",
}
EXISTING_COLUMNS: dict[str, str] = {
    "facility_id": "Identifiant",
    "name": "Maison",
    "code_insee": "Code commune",
    "dep_code": "Département (code)",
    "families_within": "Naissances par an à portée",
}


def _rounded(values: pd.Series, kind: str) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce")
    if kind == "count":
        return v.round(0).astype("Int64")
    return (100 * v).round(1)


def plan_tables(plan: NationalPlan) -> dict[str, pd.DataFrame]:
    """The plan's tables with French headers and rounded values (no geometry).

    Keys: ``plan_sites`` (France), ``plan_departements``, ``plan_sites_departements``
    (each département's own answer), ``plan_courbe``, ``maisons_existantes``.
    """
    sites = pd.DataFrame(plan.layers["sites"]).drop(columns="geometry")
    dep_sites = pd.DataFrame(plan.layers["departement_sites"]).drop(columns="geometry")
    out: dict[str, pd.DataFrame] = {}
    for key, frame in (("plan_sites", sites), ("plan_sites_departements", dep_sites)):
        f = frame.copy()
        f["type"] = f["type"].map(lambda t: facility_label(str(t)))
        for col in ("marginal_families", "cumulative_families"):
            f[col] = _rounded(f[col], "count")
        out[key] = f.loc[:, list(SITE_COLUMNS)].rename(columns=SITE_COLUMNS)
    dep = plan.layers["departements"].copy()
    dep["share_served_before"] = dep["births_served_before"] / dep["births"].where(
        dep["births"] > 0)
    for col in ("births", "births_served_before", "families_new_national", "own_families"):
        dep[col] = _rounded(dep[col], "count")
    dep["share_served_before"] = _rounded(dep["share_served_before"], "share")
    out["plan_departements"] = dep.loc[:, list(DEP_COLUMNS)].rename(columns=DEP_COLUMNS)
    curve = plan.layers["curve"].copy()
    for col in ("marginal_families", "cumulative_families"):
        curve[col] = _rounded(curve[col], "count")
    curve["share_served"] = _rounded(curve["share_served"], "share")
    curve["part"] = curve["part"].map({"plan": "plan proposé",
                                       "au-delà": "au-delà du plan (glouton)"})
    out["plan_courbe"] = curve.loc[:, list(CURVE_COLUMNS)].rename(columns=CURVE_COLUMNS)
    ex = pd.DataFrame(plan.layers["existing"]).drop(columns="geometry", errors="ignore")
    ex["families_within"] = _rounded(ex.get("families_within", pd.Series(dtype=float)),
                                     "count")
    out["maisons_existantes"] = ex.loc[:, [c for c in EXISTING_COLUMNS if c in ex]].rename(
        columns=EXISTING_COLUMNS)
    return out


def plan_csv_bytes(plan: NationalPlan, table: str = "plan_sites") -> bytes:
    """One plan table as CSV for French Excel (``;``, decimal comma, BOM)."""
    return french_csv_bytes(plan_tables(plan)[table])


def write_plan_csv(plan: NationalPlan, path: str | Path) -> list[Path]:
    """The sites at ``path``; départements, their answers and the curve beside it."""
    from diagnosis.exports import write_bytes_atomic

    p = Path(path)
    files = []
    for key, suffix in (("plan_sites", ""), ("plan_departements", "_departements"),
                        ("plan_sites_departements", "_sites_departements"),
                        ("plan_courbe", "_courbe")):
        target = p.with_name(p.stem + suffix + p.suffix)
        write_bytes_atomic(target, plan_csv_bytes(plan, key), option="--out")
        files.append(target)
    return files


def export_plan_geopackage(plan: NationalPlan, path: str | Path, *,
                           sources: Sequence[Mapping[str, str]] = ()) -> Path:
    """The plan as a GeoPackage for QGIS (EPSG:4326): sites, existing Maisons, tables."""
    from diagnosis.exports import export_geopackage

    tables = plan_tables(plan)
    layers: dict[str, pd.DataFrame] = {}
    for key, layer in (("plan_sites", "sites"), ("plan_sites_departements",
                                                   "departement_sites"),
                       ("maisons_existantes", "existing")):
        geo = plan.layers[layer]
        layers[key] = gpd.GeoDataFrame(tables[key].reset_index(drop=True),
                                       geometry=list(geo.geometry), crs=geo.crs)
    layers["plan_departements"] = tables["plan_departements"]
    layers["plan_courbe"] = tables["plan_courbe"]
    if sources:
        layers["sources"] = pd.DataFrame([{"Source": s.get("title", ""),
                                           "Millésime": s.get("vintage", ""),
                                           "Licence": s.get("licence", ""),
                                           "Mention": s.get("attribution", "")}
                                          for s in sources])
    return export_geopackage(layers, path)


def plan_record(plan: NationalPlan, territory: str) -> dict[str, Any]:
    """The plan as JSON-ready data (NaN -> None)."""
    from diagnosis.exports import json_ready

    def recs(df: pd.DataFrame) -> list[dict[str, Any]]:
        frame = pd.DataFrame(df).drop(columns="geometry", errors="ignore")
        return [json_ready(r) for r in frame.to_dict("records")]

    return cast("dict[str, Any]", json_ready({
        "territory": territory, "summary": plan.summary, "params": plan.params,
        "sites": recs(plan.layers["sites"]), "existing": recs(plan.layers["existing"]),
        "departements": recs(plan.layers["departements"]),
        "departement_sites": recs(plan.layers["departement_sites"]),
        "curve": recs(plan.layers["curve"]),
    }))


def summary_lines(plan: NationalPlan) -> list[str]:
    """The plan's summary in a few French sentences."""
    s = plan.summary
    p = plan.params
    lines = [
        f"{fr_number(s['births_total'])} naissances par an connues dans "
        f"{fr_number(s['n_communes'])} communes ; {fr_percent(s['share_before'], decimals=1)} "
        f"à moins de {fr_number(p['max_minutes'])} min d'une des {s['n_existing']} Maisons "
        "existantes connues.",
        f"{s['n_new']} nouvelles Maisons toucheraient {fr_number(s['families_new'])} familles "
        f"de plus par an : {fr_percent(s['share_after'], decimals=1)} des naissances à "
        "portée d'une Maison.",
    ]
    if s["stop_paying_at"] is not None:
        lines.append(
            f"À partir de la {s['stop_paying_at']}e nouvelle Maison, chacune toucherait moins "
            f"de {fr_number(s['min_families'])} familles par an, soit moins d'un groupe de "
            "pairs par an (10 familles, participation supposée de 15 %).")
    else:
        lines.append(f"Chaque Maison de la courbe touche au moins "
                     f"{fr_number(s['min_families'])} familles par an (un groupe de pairs par "
                     "an, participation supposée de 15 %) : le plan paie encore.")
    lines.append(f"Temps de trajet : {s['travel_label']}. Calcul : {s['method']} "
                 f"({s['status_label']}).")
    lines.extend(s.get("notes", []))
    return lines


# --------------------------------------------------------------------------------------
# Figures and PDF
# --------------------------------------------------------------------------------------
def render_curve_png(plan: NationalPlan, *, dpi: int = 150) -> bytes:
    """The marginal-gain curve (bars) with the peer-group line, legend below the axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curve = plan.layers["curve"]
    fig = Figure(figsize=(7.5, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    in_plan = curve["part"].eq("plan").to_numpy()
    k = curve["k"].to_numpy()
    g = curve["marginal_families"].to_numpy(dtype=float)
    ax.bar(k[in_plan], g[in_plan], color="#1f6f8b", label="Maisons du plan")
    ax.bar(k[~in_plan], g[~in_plan], color="#9ecae1", label="Au-delà du plan")
    ax.axhline(plan.summary["min_families"], color="#c0392b", lw=1.2, ls="--",
               label="Un groupe de pairs par an")
    ax.set_xlabel("Nouvelles Maisons (ordre d'ouverture)")
    ax.set_ylabel("Familles en plus par an")
    ax.yaxis.set_major_formatter(
        __import__("matplotlib.ticker", fromlist=["FuncFormatter"]).FuncFormatter(
            lambda v, _: fr_number(v)))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False)
    fig.subplots_adjust(bottom=0.32, left=0.12, right=0.98, top=0.95)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def render_sites_png(plan: NationalPlan, communes_xy: np.ndarray | None = None, *,
                     dpi: int = 150) -> bytes:
    """Map of the new Maisons (numbered by rank) and the existing ones, mainland France.

    Numbers sit inside their markers (no label can overlap another label); names are in
    the table. The legend is drawn outside the map area.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from diagnosis.settings import FRANCE_METRO_BBOX

    if communes_xy is None and "communes" in plan.layers:
        com = plan.layers["communes"]
        communes_xy = com[["lon", "lat"]].to_numpy(dtype=float)
    fig = Figure(figsize=(7.0, 7.4))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.12, 0.96, 0.86))
    west, south, east, north = FRANCE_METRO_BBOX
    if communes_xy is not None and len(communes_xy):
        ax.scatter(communes_xy[:, 0], communes_xy[:, 1], s=0.3, color="#cccccc",
                   label="Communes", rasterized=True)
    ex = plan.layers["existing"]
    if len(ex):
        ax.scatter(ex.geometry.x, ex.geometry.y, s=40, marker="s", color="#2c7fb8",
                   edgecolor="white", label="Maison existante connue", zorder=3)
    sites = plan.sites
    if len(sites):
        ax.scatter(sites.geometry.x, sites.geometry.y, s=120, color="#d95f0e",
                   edgecolor="white", label="Nouvelle Maison (rang)", zorder=4)
        for r in sites.itertuples():
            ax.text(r.geometry.x, r.geometry.y, str(r.rank), fontsize=5, color="white",
                    ha="center", va="center", zorder=5)
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect(1 / math.cos(math.radians((south + north) / 2)))
    ax.set_xticks([])
    ax.set_yticks([])
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=3, frameon=False,
               markerscale=1.0)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


#: The short report's template (a file beside the report's, never built from data).
PLAN_TEMPLATE = "plan.html.j2"


#: Longest text a cell or note of the short PDF shows (names come from files and sources:
#: a 20,000-character name would fill pages).
MAX_PDF_TEXT_CHARS = 300


def _cut(value: object) -> str:
    """``value`` as text, cut to :data:`MAX_PDF_TEXT_CHARS` with an ellipsis.

    Examples
    --------
    >>> len(_cut("x" * 5000)), _cut("Clisson")
    (301, 'Clisson')
    """
    text = str(value)
    return text if len(text) <= MAX_PDF_TEXT_CHARS else text[:MAX_PDF_TEXT_CHARS] + "…"


def plan_html(plan: NationalPlan, *, territory: str, notices: Sequence[str] = (),
              communes_xy: np.ndarray | None = None) -> str:
    """The short report as HTML (every value escaped by Jinja2's autoescape)."""
    import jinja2

    from diagnosis.report._base import TEMPLATES_DIR

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    tpl = env.get_template(PLAN_TEMPLATE)

    def uri(png: bytes) -> str:
        return "data:image/png;base64," + base64.b64encode(png).decode("ascii")

    dep = plan.layers["departements"]
    share = dep["births_served_before"] / dep["births"].where(dep["births"] > 0)
    deps = [{"name": _cut(f"{r['dep_name']} ({r['dep_code']})"),
             "births": fr_number(r["births"]),
             "share": fr_percent(sh, decimals=1), "n_new": str(r["n_new_national"]),
             "own": _cut(f"{r['own_sites'] or '—'}")
             + f" ({fr_number(r['own_families'])} familles)"}
            for r, sh in zip(dep.to_dict("records"), share, strict=True)]
    sites = [{"rank": r["rank"], "name": _cut(r["name"]),
              "dep": _cut(f"{r['dep_name']} ({r['dep_code']})"),
              "gain": fr_number(r["marginal_families"]), "why": _cut(r["explanation"])}
             for r in plan.sites.to_dict("records")]
    return tpl.render(territory=_cut(territory), lines=summary_lines(plan),
                      curve=uri(render_curve_png(plan)),
                      map=uri(render_sites_png(plan, communes_xy)), sites=sites, deps=deps,
                      notices=[_cut(n) for n in notices])


def render_plan_pdf(plan: NationalPlan, *, territory: str, notices: Sequence[str] = (),
                    communes_xy: np.ndarray | None = None) -> bytes:
    """The short PDF of the plan (synthesis, curve, map, sites and reasons, départements)."""
    import weasyprint

    html = plan_html(plan, territory=territory, notices=notices, communes_xy=communes_xy)
    return bytes(weasyprint.HTML(string=html).write_pdf())
