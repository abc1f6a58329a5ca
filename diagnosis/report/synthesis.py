"""The one-page synthesis: the territory in five figures, the findings, what to do next."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from diagnosis.formatting import fr_number, fr_out_of, fr_percent
from diagnosis.needs import period_label, year_of
from diagnosis.overview import Overview
from diagnosis.report._base import (
    _NA,
    _lower_first,
    _names,
    _shorten,
    _types,
)
from diagnosis.schema import (
    ENGINE_CROW_FLY,
    facility_label,
)

if TYPE_CHECKING:
    from diagnosis.accessibility import AccessIndicators
    from diagnosis.analyses import PartnerTables
    from diagnosis.cohorts import CohortPlan
    from diagnosis.gaps import GapsResult
    from diagnosis.siting import SitingResult


# --------------------------------------------------------------------------------------
# Parts of the report
# --------------------------------------------------------------------------------------


def _years(summary: Mapping[str, Any]) -> tuple[int, int, str]:
    """Years of the births, the population and the births period, from the files read."""
    years = summary.get("data_years")
    return (year_of(years, "births_2024"), year_of(years, "population_2022"),
            period_label(years))


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


def _synthesis(overview: Overview, *, access: AccessIndicators | None, gaps: GapsResult | None,
               siting: SitingResult | None, partners: PartnerTables | None,
               cohorts: CohortPlan | None, threshold_label: str) -> dict[str, Any]:
    """Page 1: the territory in five figures, findings, sites, partners, next steps, limits."""
    findings, unknown = _findings(overview, access=access, gaps=gaps, cohorts=cohorts)
    sites = _recommended_sites(siting, _names(overview.layers["communes"]))
    return {"cards": _cards(overview), "findings": findings, "sites": sites,
            "contacts": _contacts(partners), "next_steps": _next_steps(bool(sites)),
            "cannot": _cannot(access, cohorts=cohorts, offer_unknown=bool(unknown)),
            "siting_computed": siting is not None, "partners_computed": partners is not None}


def _cards(overview: Overview) -> list[dict[str, str]]:
    """The territory in five figures (births, under-3s, population, communes, families)."""
    s = overview.summary
    yb, yp, _period = _years(s)
    yf = year_of(s.get("data_years"), "single_parent_families_2022")
    com = overview.layers["communes"]
    n = int(s["n_communes"])
    fam = pd.to_numeric(com.get("families_2022"), errors="coerce") \
        if "families_2022" in com else pd.Series(dtype=float)
    mono = pd.to_numeric(com.get("single_parent_families_2022"), errors="coerce") \
        if "single_parent_families_2022" in com else pd.Series(dtype=float)
    mono_share = float(mono.sum() / fam.sum()) if fam.notna().any() and fam.sum() > 0 \
        and mono.notna().any() else None
    return [
        {"value": fr_number(s.get("births_2024")), "label": f"naissances domiciliées en {yb}"
         + fr_out_of(int(s.get("n_communes_births_known", n)),
                     int(s.get("n_communes_total", n)))},
        {"value": "≈ " + fr_number(s.get("under3_estimate")),
         "label": f"enfants de moins de 3 ans (ESTIMATION : 3 × naissances {yb})"},
        {"value": fr_number(s.get("population_2022")), "label": f"habitants en {yp}"},
        {"value": fr_number(n), "label": "communes" + (
            f" (+ {s['n_communes_missing']} sans données)" if s.get("n_communes_missing")
            else "")},
        {"value": fr_percent(mono_share, decimals=1),
         "label": f"de familles monoparentales parmi les familles avec enfant(s) ({yf})"},
    ]


def _findings(overview: Overview, *, access: AccessIndicators | None, gaps: GapsResult | None,
              cohorts: CohortPlan | None) -> tuple[list[str], list[str]]:
    """At most five findings, and the types whose offer is not known (not an absence)."""
    s = overview.summary
    yb, _yp, period = _years(s)
    findings: list[str] = []
    b24, bmean = s.get("births_2024"), s.get("births_mean_2016_2021")
    if b24 is not None and bmean:
        change = float(b24) / float(bmean) - 1
        trend = ("stables" if abs(change) < 0.03 else
                 f"en baisse de {fr_percent(-change)}" if change < 0 else
                 f"en hausse de {fr_percent(change)}")
        findings.append(f"{fr_number(b24)} naissances en {yb}, {trend} par rapport à la "
                        f"moyenne {period} ({fr_number(bmean)} par an).")
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
        findings.append("Communes les plus prioritaires (familles concernées : naissances "
                        "pondérées par les besoins et l'éloignement des services) : "
                        + ", ".join(tops) + ".")
    if cohorts is not None and hasattr(cohorts, "maison_groups_per_year"):
        findings.append(
            f"Groupes de pairs : la zone desservie pourrait en remplir "
            f"{fr_short(cohorts.groups_per_year)} par an ; une Maison en anime "
            f"{fr_short(cohorts.maison_groups_per_year)} par an "
            + ("(sa capacité limite)." if getattr(cohorts, "binding", "") == "capacite"
               else "(les naissances limitent)."))
    if len(findings) > 5:
        findings = findings[:4] + findings[-1:]
    return findings, unknown


def _recommended_sites(siting: SitingResult | None,
                       commune_names: Mapping[str, str]) -> list[dict[str, str]]:
    """The first three recommended sites: name, where, why."""
    sites: list[dict[str, str]] = []
    layers = getattr(siting, "layers", None)
    table = layers.get("sites") if isinstance(layers, Mapping) else None
    if isinstance(table, pd.DataFrame) and len(table):
        rec = table.loc[table["status"].eq("recommandé")] if "status" in table else table
        for r in rec.head(3).to_dict("records"):
            code = str(r.get("code_insee", ""))
            sites.append({"name": _shorten(str(r.get("name", "")), 90),
                          "where": f"{r.get('type_label', '')}, {commune_names.get(code, code)}",
                          "why": _shorten(str(r.get("explanation", "")), 230)})
    return sites


def _contacts(partners: PartnerTables | None) -> list[str]:
    """Institutions to meet, then the structures nearest to the site and its town hall."""
    contacts = []
    p_layers = getattr(partners, "layers", None)
    if isinstance(p_layers, Mapping):
        inst = p_layers.get("institutions")
        if isinstance(inst, pd.DataFrame):
            for r in inst.loc[inst["role"].ne("Commune")].head(4).to_dict("records"):
                contact = " · ".join(str(r[k]) for k in ("phone", "email") if r.get(k))
                contacts.append(_shorten(f"{r['organisation']} ({str(r['role']).lower()})", 95)
                                + (f" — {_shorten(contact, 120)}" if contact else ""))
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
                                + (f" — {_shorten(contact, 120)}" if contact else ""))
    return contacts


def _next_steps(has_sites: bool) -> list[str]:
    """What to do next: steering committee, partners, visits of the sites, next phase."""
    next_steps = [
        "Présenter ce diagnostic au comité de pilotage (CAF, Département et PMI, "
        "intercommunalité, communes) et fixer ensemble le seuil de temps et la part des "
        "familles attendue dans les groupes.",
        "Rencontrer les partenaires de la fiche contacts (partie 6) ; compléter l'offre "
        "partielle ou non connue avec eux, puis relancer le diagnostic.",
    ]
    if has_sites:
        next_steps.append("Visiter le ou les sites recommandés : locaux, accès, horaires, "
                          "accord du gestionnaire.")
    next_steps.append("Phase suivante de l'accompagnement : cadrage du projet et formation "
                      "de l'animatrice ou de l'animateur des groupes.")
    return next_steps


def _cannot(access: AccessIndicators | None, *, cohorts: CohortPlan | None,
            offer_unknown: bool) -> list[str]:
    """What this diagnosis cannot say (estimated times, under-3s, unknown offer, uptake)."""
    acc_summary = getattr(access, "summary", None)
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
    if offer_unknown:
        cannot.append("L'absence d'un type dont l'offre est partielle ou non connue.")
    if cohorts is not None:
        cannot.append("La part des familles qui rejoindront un groupe : "
                      f"{fr_percent((getattr(cohorts, 'params', {}) or {}).get('uptake_rate'))}"
                      " est une hypothèse.")
    return cannot
