"""Report part « Évolutions, couverture CAF et quartiers prioritaires » (chapter 2).

What a consultant's diagnostic states about the territory's context, from
:class:`diagnosis.context.TerritoryContext`: births over ten years and their trend, the
CAF childcare coverage rate (communes, EPCI; département and France when loaded), the
quartiers prioritaires and the families living in them. Every figure not loaded says
« non connu » with what to load: never a zero.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from diagnosis.formatting import fr_number
from diagnosis.report._base import _cell_text, _section, _table

if TYPE_CHECKING:
    from diagnosis.context import TerritoryContext


#: What to load for each finding (French).
TO_LOAD = {
    "trend": "donnez un fichier INSEE des naissances par commune sur plusieurs années "
             "(état civil, séries NAISD de dix éditions) ou mettez à jour les sources",
    "caf": "mettez à jour les sources avec internet (data.caf.fr, taux de couverture de "
           "l'accueil du jeune enfant)",
    "qpv": "mettez à jour les sources (quartiers prioritaires 2024, ANCT)",
}


def _known(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def context_section(context: TerritoryContext | None) -> dict[str, Any]:
    """The section (paragraphs and tables) of a :class:`~diagnosis.context.TerritoryContext`.

    ``context`` may be ``None`` (nothing computed): every finding then reads « non connu ».

    Examples
    --------
    >>> s = context_section(None)
    >>> [p.split(" :")[0] for p in s["paragraphs"]]
    ['Naissances sur dix ans', 'Taux de couverture CAF', 'Quartiers prioritaires (QPV)']
    >>> all("non connu" in p for p in s["paragraphs"])
    True
    """
    paragraphs: list[str] = []
    tables: list[dict[str, Any]] = []
    trend = getattr(context, "births_trend", None)
    if trend is None or not trend.years:
        paragraphs.append(f"Naissances sur dix ans : non connues ; {TO_LOAD['trend']}.")
    elif len(trend.years) < 2:
        paragraphs.append(f"Naissances sur dix ans : une seule année chargée "
                          f"({trend.years[0]}), tendance non connue ; {TO_LOAD['trend']}.")
    else:
        change = (f"{fr_number(trend.change_pct, decimals=1)} %" if _known(trend.change_pct)
                  else "non connue")
        paragraphs.append(f"Naissances sur dix ans : {trend.period_fr}, tendance {trend.trend} "
                          f"(évolution {change} entre le début et la fin de la période, "
                          "moyennes de trois ans).")
        t = trend.territory
        tables.append(_table(
            ["Année", "Naissances", "Communes connues"],
            [[str(int(r["year"])), fr_number(r["births"]),
              f"{int(r['communes_known'])} sur {int(r['communes_total'])}"]
             for r in t.to_dict("records")],
            title="Naissances domiciliées par année (INSEE, état civil)"))
    caf = getattr(context, "caf_coverage", None)
    if caf is None or caf.year is None:
        paragraphs.append(f"Taux de couverture CAF : non connu ; {TO_LOAD['caf']}. Taux du "
                          "département et de la France : non connus (data.caf.fr les "
                          "publie, Maillage ne les lit pas encore).")
    else:
        epci = (f"{fr_number(caf.epci_rate, decimals=1)} places pour 100 enfants de moins "
                "de 3 ans" if _known(caf.epci_rate) else "non connu")
        dep = getattr(caf, "departement_rate", None)
        fr_rate = getattr(caf, "france_rate", None)
        paragraphs.append(
            f"Taux de couverture CAF ({caf.year}) : intercommunalité {epci} ; département "
            + (fr_number(dep, decimals=1) if _known(dep) else "non connu") + " ; France "
            + (fr_number(fr_rate, decimals=1) if _known(fr_rate) else "non connu")
            + ("" if _known(dep) and _known(fr_rate) else
               " (data.caf.fr les publie, Maillage ne les lit pas encore)")
            + ". La CNAF ne publie le taux par commune que pour les communes de 10 000 "
              "habitants et plus.")
        rows = [[str(r["name"]), fr_number(r["rate"], decimals=1) if _known(r["rate"])
                 else "non publié"] for r in caf.by_commune.to_dict("records")]
        if rows:
            tables.append(_table(["Commune", "Places pour 100 enfants de moins de 3 ans"], rows,
                                 title=f"Taux de couverture de l'accueil du jeune enfant "
                                       f"({caf.year}, CNAF)"))
    qpv = getattr(context, "qpv", None)
    if qpv is None or qpv.basis == "non chargé":
        paragraphs.append(f"Quartiers prioritaires (QPV) : non connus ; {TO_LOAD['qpv']}.")
    else:
        # one sentence per commune, names from the sources: each cut like a table cell
        paragraphs.append("Quartiers prioritaires (QPV) : "
                          + " ".join(_cell_text(s) for s in qpv.statements_fr))
    for note in getattr(context, "notes", ()) or ():
        paragraphs.append(_cell_text(note))
    return _section(computed=True, paragraphs=paragraphs, tables=tables)
