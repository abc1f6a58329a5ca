"""Report sections of the analysis results: gaps, siting, partners, peer groups, access."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.exports import result_frames
from diagnosis.formatting import fr_number, fr_percent
from diagnosis.needs import data_years, year_of
from diagnosis.report._base import (
    _FACTOR_LABELS,
    _NA,
    IMAGE_FORMAT,
    MAX_CONTACT_TOWN_HALLS,
    _cell,
    _cell_text,
    _figure,
    _fr_km,
    _frame_table,
    _generic_section,
    _params_paragraph,
    _section,
    _shorten,
    _table,
)
from diagnosis.schema import (
    ENGINE_CROW_FLY,
    ENGINE_SHORT_LABELS,
    FACILITY_TYPES,
    facility_label,
)
from diagnosis.static_maps import (
    Base,
    render_choropleth_map,
    render_points_map,
)

if TYPE_CHECKING:
    from diagnosis.accessibility import AccessIndicators
    from diagnosis.analyses import PartnerTables
    from diagnosis.cohorts import CohortPlan
    from diagnosis.gaps import GapsResult
    from diagnosis.siting import SitingResult
    from diagnosis.travel.compare import ModeComparison


def _gaps_section(gaps: GapsResult | None, *, communes: gpd.GeoDataFrame,
                  context: gpd.GeoDataFrame | None, attribution: str,
                  reason_missing: str, base: Base = None
                  ) -> dict[str, Any]:
    layers = getattr(gaps, "layers", None)
    summary = getattr(gaps, "summary", None)
    priority = layers.get("priority") if isinstance(layers, Mapping) else None
    if gaps is None or not isinstance(priority, pd.DataFrame) or "score" not in priority:
        return _generic_section(gaps, reason_missing=reason_missing, communes=communes,
                                context=context, attribution=attribution, base=base)
    params = getattr(gaps, "params", {}) or {}
    yb = year_of(data_years(communes), "births_2024")
    paras = []
    weights = params.get("weights")
    if isinstance(weights, Mapping):
        paras.append(f"Score de priorité : les naissances {yb} de la commune, pondérées par "
                     "ses besoins (pauvreté, familles monoparentales, éloignement des "
                     "services, chacun rapporté à la moyenne du territoire : 1 = la "
                     "moyenne), poids "
                     + ", ".join(f"{_FACTOR_LABELS.get(k, k)} {fr_number(100 * float(v))} %"
                                 for k, v in weights.items())
                     + f" ; seuil {fr_number(params.get('max_minutes'))} minutes. Il se lit "
                     "en naissances pondérées : une commune dans la moyenne a pour score "
                     "ses naissances, une commune sans naissance 0. Un facteur inconnu est "
                     "écarté et les autres re-pondérés (jamais compté 0) ; un facteur estimé "
                     "est signalé sur la ligne de la commune.")
    tables, figures = [], []
    if isinstance(summary, pd.DataFrame) and {"label", "n_communes_white"} <= set(summary):
        paras.append("Zones blanches (communes dont la structure la plus proche d'un type est "
                     "au-delà du seuil) : colonne « Communes hors de portée » du tableau "
                     "d'accessibilité ; le détail par commune est dans l'export.")
    geo = communes.merge(priority[["code_insee", "score"]], on="code_insee", how="left")
    figures.append(_figure(partial(
        render_choropleth_map, geo, "score",
        title="Score de priorité des communes (naissances pondérées)",
        legend_title="Naissances pondérées", attribution=attribution, context=context,
        cmap="Reds", fmt=IMAGE_FORMAT, base=base),
        "Score de priorité : plus il est élevé, plus la commune compte de familles qui "
        "cumulent besoins et éloignement des services."))
    top = priority.sort_values("score", ascending=False, na_position="last").head(10)
    factors = [k for k in ("poverty", "single_parent", "access") if f"factor_{k}" in priority]
    labels = {"poverty": "Pauvreté (× moy.)", "single_parent": "Monoparentalité (× moy.)",
              "access": "Éloignement (× moy.)"}

    def estimated(r: Mapping[Any, Any]) -> str:
        missing = [_FACTOR_LABELS.get(k, k) for k in str(r.get("missing_factors") or "")
                   .split(",") if k]
        est = "estimée" if str(r.get("estimated_factors") or "") else ""
        parts = ([f"pauvreté {est}"] if est else []) + [f"{m} inconnu(e)" for m in missing]
        return ", ".join(parts) or "—"

    rows = [[fr_number(r.get("rank")), r.get("name", r["code_insee"]), fr_number(r.get("births")),
             *[fr_number(r[f"factor_{k}"], decimals=2) for k in factors],
             fr_number(r["score"], decimals=1), estimated(r)]
            for r in top.to_dict("records")]
    cols = ["Rang", "Commune", f"Naissances {yb}", *[labels[k] for k in factors],
            "Score (naissances pondérées)", "Estimé ou inconnu"]
    tables.append(_table(cols, rows,
                         numeric=[True, False, True, *[True] * len(factors), True, False],
                         title="Communes prioritaires (10 premières)", small=True,
                         widths=[6, 20, 10, *[10] * len(factors), 12, 52 - 10 * len(factors)],
                         note="« × moy. » : valeur de la commune rapportée à la moyenne du "
                              "territoire (pondérée par les naissances), plafonnée à 3."))
    return _section(computed=True, paragraphs=paras, tables=tables, figures=figures)


_SCENARIO_ROWS_LEFT_OUT = ("Sites recommandés", "Temps de calcul (s)")
#: Longest explanation of a site printed in full (a real one is under 600 characters).
MAX_REASON_CHARS = 2_000


def _siting_section(siting: SitingResult | None, scenarios: pd.DataFrame | None, *,
                    communes: gpd.GeoDataFrame, context: gpd.GeoDataFrame | None,
                    attribution: str, reason_missing: str,
                    base: Base = None) -> dict[str, Any]:
    layers = getattr(siting, "layers", None)
    sites = layers.get("sites") if isinstance(layers, Mapping) else None
    if siting is None or not isinstance(sites, gpd.GeoDataFrame):
        return _generic_section(siting, reason_missing=reason_missing, communes=communes,
                                context=context, attribution=attribution,
                                map_title="Sites recommandés", base=base)
    summary = getattr(siting, "summary", {}) or {}
    paras = [str(summary["message"])] if summary.get("message") else []
    paras.append("Temps de trajet : voir la partie 4 ; méthode en partie 9. "
                 "Ces recommandations sont une aide à la discussion avec les partenaires, pas "
                 "une décision.")
    figures, tables = [], []
    recommended = sites.loc[sites["status"].eq("recommandé")] if "status" in sites else sites
    if len(recommended):
        figures.append(_figure(partial(
            render_points_map, communes, recommended, title="Sites recommandés",
            attribution=attribution,
            label_col="rank" if "rank" in recommended else None,
            legend_label="Sites recommandés (rang)", context=context, fmt=IMAGE_FORMAT,
            base=base),
            "Sites recommandés pour accueillir la Maison (scénario principal)."))
        rows = []
        for r in recommended.to_dict("records"):
            rows.append([fr_number(r.get("rank")), r.get("name", ""), r.get("type_label", ""),
                         fr_number(r.get("births_covered")), fr_number(r.get("births_new")),
                         r.get("explanation", "")])
        # the reasons in full below the table (a table cell is cut at MAX_CELL_CHARS);
        # bounded so that a hostile 20,000-character text cannot fill pages
        for r in recommended.to_dict("records"):
            why = str(r.get("explanation", "") or "")
            if why:
                paras.append(f"Pourquoi le site n° {fr_number(r.get('rank'))}, "
                             f"{r.get('name', '')} : "
                             + (why if len(why) <= MAX_REASON_CHARS
                                else why[:MAX_REASON_CHARS] + " [texte tronqué]"))
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


def _partners_section(partners: PartnerTables | None, *, reason_missing: str) -> dict[str, Any]:
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


def _cohorts_section(cohorts: CohortPlan | None, *, reason_missing: str) -> dict[str, Any]:
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


def _with_modes(section: dict[str, Any], modes: ModeComparison | None) -> dict[str, Any]:
    """Add the car / pushchair / transit comparison of the same sites to a section."""
    table = getattr(modes, "table", None)
    if modes is None or not isinstance(table, pd.DataFrame) or table.empty:
        return section
    rows = [[str(r["site"]), str(r["mode"]), fr_number(r["births_within"]),
             fr_percent(r["share_births_within"]), fr_number(r["communes_within"]),
             str(r["communes_lost"]) or "aucune"] for r in table.to_dict("records")]
    # engine labels carry network names from the GTFS files: cut like table cells
    labels = "; ".join(f"{m} : {_cell_text(lab)}" for m, lab in modes.labels.items())
    out = dict(section)
    out["computed"] = True
    out["paragraphs"] = [*section.get("paragraphs", []), (
        "Qui perd l'accès sans voiture ? Les mêmes sites, depuis la mairie de chaque "
        f"commune, à {fr_number(modes.max_minutes)} minutes au plus en voiture, à pied avec "
        "une poussette et en transports en commun. " + labels + ".")]
    out["tables"] = [*section.get("tables", []), _table(
        ["Site", "Mode", "Naissances à portée", "Part à portée", "Communes à portée",
         "Communes à portée en voiture perdues"], rows,
        numeric=[False, False, True, True, True, False],
        title="Accès aux mêmes sites selon le mode de déplacement",
        widths=[22, 14, 14, 12, 12, 26])]
    return out


def _access_section(access: AccessIndicators | None, *, threshold_label: str) -> dict[str, Any]:
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
