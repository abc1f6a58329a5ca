"""Report part « Plan d'action »: what to do next, with whom, from what the diagnosis found.

A consultant's diagnostic ends with an action plan. Each action names its partners and
its basis in the diagnosis: the institutions to meet (partners' table), the data still
unknown (types of offer, births over ten years, CAF coverage, QPV), the recommended site
and the peer groups' pace. Nothing here is a new computation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from diagnosis.formatting import fr_number
from diagnosis.report._base import _section, _table, _types
from diagnosis.schema import facility_label

if TYPE_CHECKING:
    from diagnosis.analyses import PartnerTables
    from diagnosis.cohorts import CohortPlan
    from diagnosis.context import TerritoryContext
    from diagnosis.overview import Overview
    from diagnosis.siting import SitingResult


def action_section(overview: Overview, *, partners: PartnerTables | None = None,
                   siting: SitingResult | None = None, cohorts: CohortPlan | None = None,
                   territory_context: TerritoryContext | None = None) -> dict[str, Any]:
    """The action plan as a table: action, with whom, when, from which finding.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> ov = NS(summary={"facilities": {}, "n_communes": 9}, params={"types": ()})
    >>> rows = action_section(ov)["tables"][0]["rows"]
    >>> rows[0][0].startswith("Présenter le diagnostic"), len(rows) >= 4
    (True, True)
    """
    rows: list[list[str]] = []
    rows.append(["Présenter le diagnostic au comité de pilotage et fixer le seuil de temps "
                 "et la part des familles attendue dans les groupes",
                 "CAF, Département (PMI), intercommunalité, communes", "mois 1",
                 "synthèse (partie 1)"])
    layers = getattr(partners, "layers", None)
    inst = layers.get("institutions") if isinstance(layers, Mapping) else None
    if isinstance(inst, pd.DataFrame) and len(inst):
        names = [str(r["organisation"]) for r in inst.to_dict("records")
                 if r.get("role") != "Commune"][:6]
        rows.append(["Rencontrer les institutions du maillage territorial",
                     ", ".join(names) or "institutions de la partie 6", "mois 1 à 2",
                     "fiche contacts (partie 6)"])
    else:
        rows.append(["Rencontrer les institutions du maillage territorial",
                     "CAF, PMI, intercommunalité, communes", "mois 1 à 2",
                     "partenaires non calculés : relancer le diagnostic avec un site"])
    s = getattr(overview, "summary", {}) or {}
    facilities = s.get("facilities", {}) or {}
    unknown = [facility_label(t, plural=True) for t in _types(overview)
               if not (facilities.get(t) or {}).get("count")] if facilities else []
    missing = []
    if unknown:
        missing.append("offre non connue : " + ", ".join(unknown[:6]))
    if getattr(territory_context, "births_trend", None) is None:
        missing.append("naissances sur dix ans")
    if getattr(territory_context, "caf_coverage", None) is None:
        missing.append("taux de couverture CAF")
    qpv = getattr(territory_context, "qpv", None)
    if qpv is None or getattr(qpv, "basis", "") == "non chargé":
        missing.append("quartiers prioritaires")
    if missing:
        rows.append(["Compléter les données non connues, puis relancer le diagnostic",
                     "CAF (places, taux de couverture), Département (PMI), gestionnaires",
                     "mois 1 à 2", " ; ".join(missing)])
    s_layers = getattr(siting, "layers", None)
    sites = s_layers.get("sites") if isinstance(s_layers, Mapping) else None
    if isinstance(sites, pd.DataFrame) and len(sites):
        rec = sites.loc[sites["status"].eq("recommandé")] if "status" in sites else sites
        if len(rec):
            first = rec.iloc[0]
            rows.append([f"Visiter le site recommandé n° 1 : {first.get('name', '')} (locaux, "
                         "accès, horaires, accord du gestionnaire)",
                         "gestionnaire du lieu, commune", "mois 2 à 3",
                         "implantation (partie 5)"])
    plan = cohorts
    per_month = getattr(plan, "births_per_month", None) if plan is not None else None
    rows.append(["Former l'animatrice ou l'animateur et ouvrir les premiers groupes de pairs",
                 "fédération (Ensemble pour la petite enfance), PMI, maternité",
                 "mois 4 à 6",
                 (f"environ {fr_number(per_month, decimals=1)} naissances par mois à portée "
                  "(partie 7)") if isinstance(per_month, int | float) else
                 "groupes de pairs (partie 7)"])
    rows.append(["Évaluer : familles accompagnées, isolement ressenti, orientation vers les "
                 "services", "comité technique, chercheurs partenaires", "après 1 an",
                 "méthode de la fédération (phase 4)"])
    return _section(computed=True, tables=[_table(
        ["Action", "Avec qui", "Quand", "À partir de"], rows, small=True,
        widths=[38, 26, 10, 26], title="Plan d'action proposé (à discuter en comité)")])
