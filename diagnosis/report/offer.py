"""Report tables « offre par type » against the département and France, and the CAF rate.

Reads :class:`diagnosis.offer_levels.OfferLevels` (computed once by the pipeline): this
module formats, it never computes a figure. Every figure not loaded reads « non connu »
and the note under the table says which source would bring it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diagnosis.formatting import fr_known, fr_number
from diagnosis.offer_levels import LEVELS, LevelRate, OfferLevels
from diagnosis.report._base import _table
from diagnosis.schema import facility_label


def fr_rate(rate: LevelRate) -> str:
    r"""A rate as printed: « 12,3 », « ≥ 1,2 » (a minimum) or « non connu ».

    Examples
    --------
    >>> fr_rate(LevelRate(12.34, "exact")), fr_rate(LevelRate(None, "unknown", "x"))
    ('12,3', 'non connu')
    >>> fr_rate(LevelRate(1.2, "minimum", "y"))
    '≥\xa01,2'
    """
    if rate.value is None:
        return "non connu"
    text = fr_number(rate.value, decimals=1)
    return f"≥\u00a0{text}" if rate.kind == "minimum" else text


def _places_cell(row: Mapping[Any, Any]) -> str:
    n, n_cap = int(row["facilities"]), int(row["with_capacity"])
    if n_cap == 0:
        return "non connues" if n else "0" if row["status"] == "complete" else "non connues"
    places = fr_number(row["places_known"])
    return places if n_cap == n else f"{places} ({n_cap} structure(s) sur {n})"


def offer_levels_part(levels: OfferLevels | None) -> dict[str, Any]:
    """Paragraphs and tables of the offer by type at three levels (``None``: not computed).

    Returns
    -------
    dict
        ``tables`` (template tables; the children counted are stated in the first
        table's note) and ``after`` (paragraphs printed after the tables: a table whose
        every figure is unknown is one sentence instead).
    """
    if levels is None:
        return {"after": ["Offre par type rapportée aux enfants de moins de 3 ans "
                          "(territoire, département, France) : non calculée pour ce "
                          "rapport."], "tables": []}
    labels = levels.level_labels
    rows: list[list[str]] = []
    reasons: dict[str, list[str]] = {}
    reason_types: dict[str, list[str]] = {}
    for r in levels.table.to_dict("records"):
        cells = [facility_label(str(r["type"]), plural=True),
                 fr_known(r["facilities"], status=str(r["status"])),
                 _places_cell(r)]
        for level in LEVELS:
            rate = levels.rate(str(r["type"]), level)
            cells.append(fr_rate(rate))
            if rate.reason and str(labels[level]) not in reasons.setdefault(rate.reason, []):
                reasons[rate.reason].append(str(labels[level]))
            kinds = reason_types.setdefault(rate.reason, [])
            if rate.reason and cells[0] not in kinds:
                kinds.append(cells[0])
        rows.append(cells)
    children = levels.children
    dep_note = (f" ({levels.departement_communes} communes chargées)"
                if levels.departement_communes else "")
    counts = [f"{labels[lv]} {fr_number(children[lv])}" + (dep_note if lv == "departement"
                                                            else "")
              if children[lv] is not None else f"{labels[lv]} non connu" for lv in LEVELS]
    paragraphs = ["Enfants de moins de 3 ans (dénominateur des taux) : " + ", ".join(counts)
                  + (f" ; {levels.children_label}" if levels.children_label else "") + "."]
    unknown_note = " ".join(f"{_join(lvs)} : {reason}." for reason, lvs in reasons.items())
    after: list[str] = []
    tables: list[dict[str, Any]] = []
    rates = levels.table[[f"rate_{lv}" for lv in LEVELS]]
    if rates.isna().all().all():
        after.append("Places pour 100 enfants de moins de 3 ans, par type de structure : "
                     "non connues pour chaque type (jamais 0) ; "
                     + _short(reasons, reason_types, n_types=len(rows)))
    else:
        tables.append(_table(
            ["Type de structure", "Structures du territoire", "Places connues",
             "Territoire", str(labels["departement"]), "France"], rows,
            numeric=[False, True, True, True, True, True], widths=[25, 12, 17, 14, 18, 14],
            title="Places pour 100 enfants de moins de 3 ans, par type de structure",
            note=(paragraphs[0] + " « ≥ » : minimum, calculé avec les seules places "
                  "connues. « non connu » : jamais 0. " + unknown_note + " "
                  + " ".join(levels.notes)).strip()))
    after.extend(levels.notes if not tables else ())
    definition = ("places d'accueil formel (accueil collectif, assistantes maternelles, garde "
                  "à domicile, école avant 3 ans) pour 100 enfants de moins de 3 ans, "
                  "calculé par la Cnaf")
    if all(levels.caf[lv].value is None for lv in LEVELS):
        # chapter 2 (« couverture CAF ») already says it and what to load: not twice
        after.append("Taux de couverture CAF du territoire, du département et de la "
                     "France : non connus (voir la partie 2).")
        return {"after": after, "tables": tables}
    caf_rows = []
    for level in LEVELS:
        rate = levels.caf[level]
        caf_rows.append([str(labels[level]), fr_rate(rate),
                         "Cnaf, data.caf.fr" + (f" ({levels.caf_year})" if levels.caf_year
                                                 else "")
                         if rate.value is not None else _cap(rate.reason)])
    caf = _table(["Niveau", "Taux de couverture", "Source ou donnée à charger"], caf_rows,
                 numeric=[False, True, False], widths=[26, 18, 56],
                 title="Taux de couverture de l'accueil du jeune enfant (Cnaf)"
                       + (f", {levels.caf_year}" if levels.caf_year else ""),
                 note=_cap(definition) + ".")
    return {"after": after, "tables": [*tables, caf]}


def _short(reasons: dict[str, list[str]], types: dict[str, list[str]], *,
           n_types: int) -> str:
    """« A et B : offre connue en partie ; France : non chargé. À charger : x ; y. ».

    A reason that holds for some types only names them: « offre non chargée
    (Sages-femmes) ».
    """
    what: dict[str, None] = {}
    parts = []
    for reason, lvs in reasons.items():
        head, _, load = reason.partition(" : ")
        some = types.get(reason, [])
        if 0 < len(some) < n_types:
            head += f" ({', '.join(some)})"
        parts.append(f"{_join(lvs)} : {head}")
        if load:
            what.setdefault(load, None)
    return " ; ".join(parts) + "." + (f" À charger : {' ; '.join(what)}." if what else "")


def _join(labels: list[str]) -> str:
    """« Territoire », « Territoire et France », « Territoire, A et France »."""
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " et " + labels[-1]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
