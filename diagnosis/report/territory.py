"""Territory and needs, the offer and the directory of known structures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.formatting import fr_known, fr_number
from diagnosis.needs import data_years, period_label, year_of
from diagnosis.overview import Overview
from diagnosis.report._base import (
    _NA,
    IMAGE_FORMAT,
    MAX_DIRECTORY_TOWN_HALLS,
    MAX_INLINE_COMMUNES,
    _capitalize,
    _figure,
    _fr_km,
    _loaded_anywhere,
    _names,
    _section,
    _table,
    _types,
)
from diagnosis.schema import (
    FACILITY_TYPES,
    facility_label,
)
from diagnosis.static_maps import (
    Base,
    render_choropleth_map,
    render_offer_map,
)


def _needs_table(com: pd.DataFrame, *, limit: int | None = None,
                 years: dict[str, int] | None = None) -> dict[str, Any]:
    years = years or data_years(com)
    yb, yp = year_of(years, "births_2024"), year_of(years, "population_2022")
    yi = year_of(years, "median_income_2021")
    start, end = period_label(years).split("-")
    cols = [("name", "Commune", None), ("code_insee", "Code", None),
            ("births_2024", f"Naiss. {yb}", 0),
            ("births_mean_2016_2021", f"Moy. {start}-{end[2:]}", 1),
            ("under3_estimate", "< 3 ans (est.)", 0), ("population_2022", f"Pop. {yp}", 0),
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
                  total=total, small=True, title=f"Besoins par commune (par naissances {yb})",
                  note=("— : donnée manquante (secret statistique pour le taux de pauvreté des "
                        "petites communes : jamais remplacé par 0). « < 3 ans (est.) » est une "
                        f"estimation (3 × naissances {yb}). Revenu médian : revenu disponible "
                        f"par unité de consommation {yi} (€). Le total ne fait pas la moyenne "
                        "des revenus ni des taux de pauvreté, qui ne s'additionnent pas."
                        + (" Couv. CAF : places d'accueil du jeune enfant pour 100 enfants de "
                           "moins de 3 ans (Cnaf, publié pour les communes de plus de 10 000 "
                           "habitants et pour l'EPCI)." if "caf_coverage_rate" in com else "")))


def _needs_part(overview: Overview, context: gpd.GeoDataFrame | None,
                attribution: str, *, base: Base = None) -> dict[str, Any]:
    """Territory and needs: figures, the births and poverty maps, the table per commune."""
    com = overview.layers["communes"]
    s = overview.summary
    area = pd.to_numeric(com.get("area_km2"), errors="coerce").sum() if "area_km2" in com \
        else float("nan")
    pop = s.get("population_2022")
    years = s.get("data_years")
    yb, yp = year_of(years, "births_2024"), year_of(years, "population_2022")
    yi, yr = year_of(years, "median_income_2021"), year_of(years, "poverty_rate_2021")
    start, end = period_label(years).split("-")
    paras = [f"{overview.territory.label} : {len(com)} commune(s), "
             f"{fr_number(pop)} habitants en {yp}, {fr_number(area)} km², soit "
             f"{fr_number(pop / area if pop and area else float('nan'))} habitants par km² ; "
             f"{fr_number(s.get('births_2024'))} naissances domiciliées en {yb} (enfants dont "
             "la mère réside dans la commune), "
             f"{fr_number(s.get('births_mean_2016_2021'))} par an en moyenne de {start} à {end}."]
    if "epci_name" in com and overview.territory.kind == "departement":
        paras.append(f"{com['epci_name'].nunique()} intercommunalités (EPCI) ont des communes "
                     "dans le territoire.")
    inc = pd.to_numeric(com["median_income_2021"], errors="coerce") \
        if "median_income_2021" in com else pd.Series(dtype=float)
    pov = pd.to_numeric(com["poverty_rate_2021"], errors="coerce") \
        if "poverty_rate_2021" in com else pd.Series(dtype=float)
    social = []
    if inc.notna().any():
        social.append(f"revenu disponible médian {yi} de {fr_number(inc.min())} € à "
                      f"{fr_number(inc.max())} € par unité de consommation selon la commune")
    if len(pov):
        social.append(f"taux de pauvreté {yr} publié pour {int(pov.notna().sum())} commune(s) "
                      f"sur {len(pov)} (les autres sont sous secret statistique, jamais "
                      "comptées 0)"
                      + (f", de {fr_number(pov.min(), decimals=1)} % à "
                         f"{fr_number(pov.max(), decimals=1)} %" if pov.notna().any() else ""))
    if social:
        paras.append(_capitalize(" ; ".join(social)) + ".")
    paras.append(f"Les enfants de moins de 3 ans sont estimés à 3 × naissances {yb} : une "
                 "estimation, pas un comptage.")
    figures = [_figure(partial(
        render_choropleth_map, com, "births_2024",
        title=f"Naissances domiciliées en {yb} par commune",
        legend_title=f"Naissances {yb}", attribution=attribution, context=context,
        fmt=IMAGE_FORMAT, base=base),
        f"Naissances {yb} par commune (classes par quantiles). Source : Insee, état civil.")]
    if pov.notna().any():
        figures.append(_figure(partial(
            render_choropleth_map, com, "poverty_rate_2021", title=f"Taux de pauvreté {yr} (%)",
            legend_title="Taux de pauvreté (%)", attribution=attribution, context=context,
            cmap="Oranges", missing_label="secret statistique", fmt=IMAGE_FORMAT,
            base=base),
            f"Taux de pauvreté au seuil de 60 % (Filosofi {yr}) ; hachures : secret "
            "statistique, jamais 0."))
    full = _needs_table(com, years=years)
    if len(com) <= MAX_INLINE_COMMUNES:
        return _section(computed=True, paragraphs=paras, figures=figures, tables=[full],
                        annex=None)
    top = _needs_table(com, limit=MAX_INLINE_COMMUNES, years=years)
    top["title"] = f"Besoins : les {MAX_INLINE_COMMUNES} communes aux naissances les plus " \
                   "nombreuses"
    top["note"] = f"Les {len(com)} communes sont en annexe A ; {top['note']}"
    return _section(computed=True, paragraphs=paras, figures=figures, tables=[top],
                    annex=full)







def _offer_part(overview: Overview, context: gpd.GeoDataFrame | None, attribution: str,
                threshold_label: str, *, base: Base = None
                ) -> dict[str, Any]:
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
        st = str(f.get("status", "complete" if t == "mairie" else "unknown"))
        rows.append([facility_label(t, plural=True),
                     fr_known(f["count"], status=st, feminine=True),
                     fr_number(f["places_known"]),
                     fr_known(len(s["communes_without"][t]), status=st, bound="upper",
                              total=n) + f" / {n}",
                     fr_known(w["share"], status=st, percent=True, feminine=True),
                     _fr_km(float(np.median(dist))) if loaded else _NA, str(status)])
    table = _table(["Type de structure", "Dans le territoire", "Places connues",
                    "Communes sans", f"Naissances à {threshold_label} ou moins",
                    "Distance médiane", "Offre connue"], rows,
                   numeric=[False, True, True, True, True, True, False],
                   title="Offre et proximité par type de structure",
                   widths=[27, 11, 11, 11, 14, 12, 14],
                   note=("« Places connues » : somme des capacités publiées (— : aucune "
                         "connue). « Communes sans » : communes sans structure du type sur "
                         f"leur sol. Naissances à portée : part des naissances "
                         f"{year_of(s.get('data_years'), 'births_2024')} des "
                         f"communes dont la mairie est à {threshold_label} ou moins (à vol "
                         "d'oiseau) d'une structure du type, dans ou hors du territoire. "
                         "Distance médiane : de la mairie à la structure la plus proche. "
                         "« Offre connue » : complète quand une source qui recense tout le "
                         "type est chargée, partielle sinon, inconnue sans aucune donnée "
                         "(une offre partielle ou inconnue n'est pas une absence)."))
    types = [t for t in _types(overview) if t != "mairie"]
    figures = []
    if len(fac.loc[fac["type"].isin(types)]):
        figures.append(_figure(partial(
            render_offer_map, com, fac, types=types, title="Les structures connues du territoire",
            attribution=attribution, context=context, fmt=IMAGE_FORMAT, base=base),
            "Structures chargées, par type (les mairies ne sont pas dessinées). Une "
            "structure placée à la mairie de sa commune a une position approximative."))
    paras = [f"Pour chaque type : les structures connues du territoire, et la proximité "
             f"des communes (mairie à {threshold_label} ou moins d'une structure du type, "
             "à vol d'oiseau, dans ou hors du territoire). La liste des structures, avec "
             "leurs coordonnées, est en annexe."]
    return _section(computed=True, paragraphs=paras, figures=figures, tables=[table])



def _directory(overview: Overview, *, sources: Sequence[Mapping[str, Any]] = (),
               context: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """The annex directory: structures by type, communes by name, sources by title.

    Neighbouring structures lie in communes outside the territory: ``context`` (all the
    loaded communes) names them; a source is named by its title, never its key.
    """
    fac = overview.layers["facilities"]
    near = overview.layers["facilities_nearby"]
    names = {**(_names(context) if context is not None and "name" in context else {}),
             **_names(overview.layers["communes"])}
    titles = {str(s.get("key", "")): str(s.get("title", "")) for s in sources
              if s.get("title")}

    def source_label(key: Any) -> str:
        key = str(key)
        if key in titles:
            return titles[key]
        if key.startswith("user:"):
            return f"Fichier importé : {key.removeprefix('user:')}"
        return "source non précisée" if not key else key
    groups: list[dict[str, Any]] = []
    order = [t for t in FACILITY_TYPES if t != "mairie"] + ["mairie"]

    def rows_of(df: pd.DataFrame) -> list[list[str]]:
        rows = []
        for r in df.sort_values(["code_insee", "name"]).to_dict("records"):
            contact = " · ".join(str(r[k]) for k in ("phone", "email", "website") if r[k])
            src = source_label(r["source"]) + (f" ({r['source_date']})" if r["source_date"]
                                               else "")
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
