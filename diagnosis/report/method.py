"""The method annex, the limits and the sources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from diagnosis.formatting import fr_number, fr_percent
from diagnosis.needs import period_label, year_of
from diagnosis.overview import Overview
from diagnosis.report._base import _FACTOR_LABELS, _NA, _loaded_anywhere, _table, _types
from diagnosis.schema import (
    facility_label,
)

if TYPE_CHECKING:
    from diagnosis.accessibility import AccessIndicators
    from diagnosis.cohorts import CohortPlan
    from diagnosis.gaps import GapsResult
    from diagnosis.siting import SitingResult


def _method_part(threshold_label: str, *, access: AccessIndicators | None = None,
                 gaps: GapsResult | None = None, siting: SitingResult | None = None,
                 cohorts: CohortPlan | None = None,
                 years: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """The method annex: the substance of the method guides, with this report's values.

    ``years`` (:func:`diagnosis.needs.data_years`): the years of the INSEE figures, in
    the labels and the column names quoted (``NAISD22`` for a 2024-edition file).
    """
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
        *_needs_sections(dict(years or {})),
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
            "du seuil. Score de priorité, en naissances pondérées par les besoins : les "
            "naissances de la commune × la moyenne pondérée de quatre multiplicateurs "
            f"({w_text}) : 1 pour les naissances, et pour la pauvreté, la monoparentalité "
            "et l'éloignement la valeur de la commune rapportée à la moyenne du territoire "
            "(plafonnée à 3). Une commune sans naissance a un score de 0 ; un facteur "
            "inconnu est écarté et les autres re-pondérés ; un taux de pauvreté sous "
            "secret statistique est estimé (revenu médian) et signalé sur la ligne de la "
            "commune. Les poids sont une convention à discuter."]},
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


def _needs_sections(y: dict[str, int]) -> list[dict[str, Any]]:
    """The annex's first sections: the approach, and the INSEE indicators of the needs.

    The column names quoted follow the years of the figures read (``NAISD22`` for a
    2024-edition file).
    """
    yb, yp = year_of(y, "births_2024"), year_of(y, "population_2022")
    yi, yr = year_of(y, "median_income_2021"), year_of(y, "poverty_rate_2021")
    yf = year_of(y, "single_parent_families_2022")
    start, end = period_label(y).split("-")
    nais = f"NAIS{start[2:]}{end[2:]}"
    pop, fam, cpl = f"P{yp % 100:02d}_POP", f"C{yf % 100:02d}_FAMMONO", \
        f"C{yf % 100:02d}_COUPAENF"
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
            f"Naissances domiciliées {yb} (état civil, NAISD{yb % 100:02d}) ; moyenne "
            f"annuelle {start}-{end} ({nais} / 6) ; population municipale {yp} ({pop}) ; "
            f"superficie (SUPERF) et densité ({pop} / SUPERF) ; revenu disponible médian "
            f"par unité de consommation {yi} (MED{yi % 100:02d}) ; taux de pauvreté au "
            f"seuil de 60 % {yr} (TP60{yr % 100:02d}), non publié pour les petites communes "
            "(secret statistique : laissé vide, jamais 0) ; familles monoparentales "
            f"{yf} ({fam}) et leur part parmi les familles avec enfant(s) ({fam} / ({cpl} "
            f"+ {fam})).",
            "Enfants de moins de 3 ans : aucune source communale ne les compte ; ils sont "
            f"estimés à 3 × NAISD{yb % 100:02d}, et toujours présentés comme une "
            "estimation.",
            "Totaux du territoire : les effectifs s'additionnent ; la densité et les parts "
            "sont recalculées sur les totaux ; revenus et taux de pauvreté ne sont ni "
            "additionnés ni moyennés."]},
    ]


def _limits_part(overview: Overview, notices: Sequence[str]) -> dict[str, Any]:
    s = overview.summary
    items = list(notices)
    items.append("Les distances sont à vol d'oiseau depuis la mairie de chaque commune : un "
                 "trajet réel est plus long, et une commune étendue a des habitants plus "
                 "loin que sa mairie.")
    items.append("Les enfants de moins de 3 ans sont estimés (3 × naissances "
                 f"{year_of(s.get('data_years'), 'births_2024')}) : aucune "
                 "source communale ne les compte directement.")
    if s.get("n_communes_missing"):
        items.append(f"{s['n_communes_missing']} commune(s) du territoire sans données "
                     f"chargées ({', '.join(s.get('communes_missing', [])[:10])}) : "
                     "diagnostic partiel.")
    partial = s.get("communes_partial") or {}
    if partial:
        items.append(f"{len(partial)} commune(s) fusionnée(s) dont le fichier INSEE ne donne "
                     "que les parties connues : "
                     + " ; ".join(f"{c} : {p}" for c, p in list(partial.items())[:5])
                     + " — leurs totaux sont des minimums.")
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
