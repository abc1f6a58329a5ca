"""French column labels, units, sources and rounding of the export layers.

The analyses keep ASCII column codes (``births_2024``, ``dist_m_pmi``); what a consultant
opens in Excel or QGIS has French labels and values rounded to their meaning: families,
births and places to units, minutes to one decimal, metres to the metre, shares in %
with one decimal. :func:`column_spec` says, for a (layer, column code), its label, its
definition, its unit, its source and its year; :func:`french_layer` applies labels and
rounding to one layer; :func:`dictionary_rows` feeds the ``dictionnaire`` table.

Examples
--------
>>> spec = column_spec("communes_indicateurs", "dist_m_pmi")
>>> spec.label, spec.unit
('Centres de PMI : distance à la plus proche (m)', 'm')
>>> round_values(pd.Series([84.0739007018663, None]), "count").tolist()
[84, <NA>]
>>> round_values(pd.Series([0.87535411]), "share").tolist()
[87.5]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from diagnosis.needs import DEFAULT_YEARS, DERIVED_FROM, year_of
from diagnosis.schema import (
    ENGINE_SHORT_LABELS,
    FACILITY_TYPES,
    TRAVEL_MODE_LABELS,
    facility_label,
)

#: How a column's values are rounded (see :func:`round_values`).
KINDS: tuple[str, ...] = ("text", "bool", "count", "decimal1", "minutes", "share", "percent",
                          "metres", "euros", "degrees", "score", "ratio", "km2")

_INSEE = "Insee"
_COG = "IGN, Insee — Admin Express, COG"
_CALC = "Calcul Maillage (données chargées)"
_FAC = "Source de la ligne (colonnes Source et Date de la source)"


@dataclass(frozen=True)
class ColumnSpec:
    """What an export column is: French label, definition, unit, source, year, rounding."""

    label: str
    description: str
    unit: str = ""
    source: str = ""
    year: str = ""
    kind: str = "text"


def _c(label: str, description: str = "", unit: str = "", source: str = "", year: str = "",
       kind: str = "text") -> ColumnSpec:
    return ColumnSpec(label, description or label, unit, source, year, kind)


#: Fixed columns, by code (per-type columns are in :data:`_PER_TYPE`).
_FIXED: dict[str, ColumnSpec] = {
    # communes
    "code_insee": _c("Code INSEE", "Code INSEE de la commune (texte, 5 caractères)",
                     source=_COG, year="2026"),
    "townhall_lon": _c("Mairie : longitude", "Longitude de la mairie (départ des "
                       "distances), WGS84", "degrés", "Annuaire de l'administration (DILA)",
                       "2024", "degrees"),
    "townhall_lat": _c("Mairie : latitude", "Latitude de la mairie (départ des distances), "
                       "WGS84", "degrés", "Annuaire de l'administration (DILA)", "2024",
                       "degrees"),
    "epci_code": _c("EPCI (SIREN)", "SIREN de l'intercommunalité", source=_COG, year="2026"),
    "epci_name": _c("EPCI", "Nom de l'intercommunalité", source=_COG, year="2026"),
    "births_year": _c("Année des naissances", "Année des naissances domiciliées du fichier "
                      "INSEE lu", source=_INSEE),
    "population_year": _c("Année de la population", "Année du recensement du fichier INSEE "
                          "lu", source=_INSEE),
    "insee_partial": _c("Données INSEE partielles", "Indicateurs dont le fichier INSEE ne "
                        "donne que la somme des parties connues (commune fusionnée dont "
                        "une ancienne commune manque) ; vide quand tout est connu",
                        source=_INSEE),
    "ept_code": _c("EPT (SIREN)", "SIREN de l'établissement public territorial du Grand "
                   "Paris (vide ailleurs)", source=_COG, year="2026"),
    "ept_name": _c("EPT", "Nom de l'établissement public territorial du Grand Paris "
                   "(vide ailleurs)", source=_COG, year="2026"),
    "dep_code": _c("Département", "Code du département", source=_COG, year="2026"),
    "population_2022": _c("Population 2022", "Population municipale (P22_POP)", "habitants",
                          _INSEE + ", recensement", "2022", "count"),
    "area_km2": _c("Superficie (km²)", "Superficie (SUPERF)", "km²", _INSEE, "", "km2"),
    "births_2024": _c("Naissances 2024", "Naissances domiciliées (état civil, NAISD24)",
                      "naissances", _INSEE + ", état civil", "2024", "count"),
    "births_2016_2021": _c("Naissances 2016-2021 (cumul)", "Naissances cumulées (NAIS1621)",
                           "naissances", _INSEE + ", état civil", "2016-2021", "count"),
    "births_mean_2016_2021": _c("Naissances par an 2016-2021 (moyenne)", "NAIS1621 / 6",
                                "naissances/an", _INSEE + ", état civil", "2016-2021",
                                "decimal1"),
    "median_income_2021": _c("Revenu médian 2021 (€/UC)", "Revenu disponible médian par "
                             "unité de consommation (MED21)", "€", _INSEE + ", Filosofi",
                             "2021", "euros"),
    "poverty_rate_2021": _c("Taux de pauvreté 2021 (%)", "Taux de pauvreté au seuil de 60 % "
                            "(TP6021) ; vide = secret statistique, jamais 0", "%",
                            _INSEE + ", Filosofi", "2021", "percent"),
    "single_parent_families_2022": _c("Familles monoparentales 2022", "C22_FAMMONO",
                                      "familles", _INSEE + ", recensement", "2022", "count"),
    "couples_with_children_2022": _c("Couples avec enfant(s) 2022", "C22_COUPAENF",
                                     "familles", _INSEE + ", recensement", "2022", "count"),
    "family_households_2022": _c("Ménages familiaux 2022", "C22_MENFAM", "ménages",
                                 _INSEE + ", recensement", "2022", "count"),
    "population_0014_2022": _c("Population 0-14 ans 2022", "P22_POP0014", "habitants",
                               _INSEE + ", recensement", "2022", "count"),
    "density_per_km2": _c("Densité 2022 (hab./km²)", "Population 2022 / superficie",
                          "hab./km²", _INSEE, "2022", "decimal1"),
    "families_2022": _c("Familles avec enfant(s) 2022", "C22_COUPAENF + C22_FAMMONO",
                        "familles", _INSEE + ", recensement", "2022", "count"),
    "single_parent_share_2022": _c("Part des familles monoparentales 2022 (%)",
                                   "C22_FAMMONO / (C22_COUPAENF + C22_FAMMONO) × 100", "%",
                                   _INSEE + ", recensement", "2022", "percent"),
    "under3_estimate": _c("Enfants de moins de 3 ans", "Comptage du recensement quand un "
                          "fichier le donne, sinon ESTIMATION : 3 × naissances 2024 (voir "
                          "« Base des moins de 3 ans »)", "enfants",
                          _INSEE + ", recensement ou état civil (estimation Maillage)", "",
                          "count"),
    "under3_basis": _c("Base des moins de 3 ans", "« recensement AAAA » (comptage) ou "
                       "« estimation : 3 × naissances »", "", _INSEE, "", "text"),
    "caf_coverage_rate": _c("Taux de couverture CAF de la commune", "Places d'accueil du "
                            "jeune enfant pour 100 enfants de moins de 3 ans", "places/100",
                            "Cnaf", "", "decimal1"),
    "caf_coverage_rate_epci": _c("Taux de couverture CAF de l'EPCI", "Places d'accueil du "
                                 "jeune enfant pour 100 enfants de moins de 3 ans (EPCI)",
                                 "places/100", "Cnaf", "", "decimal1"),
    "caf_coverage_rate_dep": _c("Taux de couverture CAF du département", "Places d'accueil "
                                "du jeune enfant pour 100 enfants de moins de 3 ans "
                                "(département)", "places/100", "Cnaf", "", "decimal1"),
    "caf_coverage_rate_france": _c("Taux de couverture CAF de la France", "Places d'accueil "
                                   "du jeune enfant pour 100 enfants de moins de 3 ans "
                                   "(France hors Mayotte)", "places/100", "Cnaf", "",
                                   "decimal1"),
    "caf_coverage_year": _c("Année du taux de couverture CAF", source="Cnaf"),
    "geometry": _c("geometry", "Géométrie (GeoPackage seulement ; EPSG:4326)"),
    # facilities
    "facility_id": _c("Identifiant", "« source:identifiant dans la source »", source=_FAC),
    "type": _c("Type (code)", "Code du type de structure (pmi, eaje, mam, laep…)"),
    "subtype": _c("Sous-type", "Crèches : multi-accueil, micro-crèche…", source=_FAC),
    "address": _c("Adresse", source=_FAC),
    "postcode": _c("Code postal", source=_FAC),
    "capacity": _c("Places", "Nombre de places (vide = inconnu, jamais 0 pour inconnu)",
                   "places", _FAC, "", "count"),
    "operator": _c("Gestionnaire", source=_FAC),
    "phone": _c("Téléphone", source=_FAC),
    "email": _c("Courriel", source=_FAC),
    "website": _c("Site web", source=_FAC),
    "source": _c("Source", "Clé de la source (voir la table sources)"),
    "source_id": _c("Identifiant dans la source", source=_FAC),
    "source_date": _c("Date de la source", "Date ou millésime de la ligne dans sa source"),
    "position_precision": _c("Précision de la position", "adresse, rue, ou commune (placée "
                             "à la mairie : approximative)"),
    "notes": _c("Remarques", "Remarques de la source (fiabilité, ancienneté)", source=_FAC),
    "source_url": _c("Page source", "Page web d'où vient la ligne", source=_FAC),
    "lon": _c("Longitude", "Longitude (WGS84)", "degrés", kind="degrees"),
    "lat": _c("Latitude", "Latitude (WGS84)", "degrés", kind="degrees"),
    # accessibility and gaps
    "label": _c("Type", "Type de structure"),
    "type_label": _c("Type", "Type de structure"),
    "engine": _c("Méthode de calcul", "réseau routier ou vol d'oiseau (estimation)"),
    "mode": _c("Mode de déplacement"),
    "n_facilities_flagged": _c("Structures loin du réseau", unit="structures", source=_CALC,
                               kind="count"),
    "n_pairs_beyond_cutoff": _c("Couples commune-structure au-delà de la coupure",
                                unit="couples", source=_CALC, kind="count"),
    "n_pairs_disconnected": _c("Couples commune-structure non reliés", unit="couples",
                               source=_CALC, kind="count"),
    "n_pairs_flagged": _c("Couples commune-structure signalés", unit="couples", source=_CALC,
                          kind="count"),
    "n_facilities": _c("Structures prises en compte", unit="structures", source=_CALC,
                       kind="count"),
    "n_facilities_without_capacity": _c("Structures sans capacité connue", unit="structures",
                                        source=_CALC, kind="count"),
    "n_facilities_without_demand": _c("Structures sans naissance à portée",
                                      unit="structures", source=_CALC, kind="count"),
    "births_total": _c("Naissances du territoire", unit="naissances", source=_CALC,
                       kind="count"),
    "births_within": _c("Naissances à portée", "Naissances des communes sous le seuil de "
                        "temps", "naissances", _CALC, kind="count"),
    "share_births_within": _c("Part des naissances à portée (%)", unit="%", source=_CALC,
                              kind="share"),
    "n_communes_beyond": _c("Communes hors de portée", unit="communes", source=_CALC,
                            kind="count"),
    "n_communes_births_missing": _c("Communes sans naissances connues", unit="communes",
                                    source=_CALC, kind="count"),
    "births": _c("Naissances", "Naissances retenues pour la commune", "naissances", _CALC,
                 kind="count"),
    "origin_snap_m": _c("Distance de la mairie au réseau (m)", unit="m", source=_CALC,
                        kind="metres"),
    "origin_flagged": _c("Mairie loin du réseau", unit="oui/non", source=_CALC, kind="bool"),
    "minutes_nearest": _c("Temps à la plus proche (min)", unit="min", source=_CALC,
                          kind="minutes"),
    "n_communes": _c("Communes", unit="communes", source=_CALC, kind="count"),
    "n_communes_white": _c("Communes en zone blanche", unit="communes", source=_CALC,
                           kind="count"),
    "births_white": _c("Naissances en zone blanche", unit="naissances", source=_CALC,
                       kind="count"),
    "share_births_white": _c("Part des naissances en zone blanche (%)", unit="%",
                             source=_CALC, kind="share"),
    "n_white_births_missing": _c("Communes en zone blanche sans naissances connues",
                                 unit="communes", source=_CALC, kind="count"),
    "poverty_rate_used": _c("Taux de pauvreté retenu (%)", "Publié, ou estimé depuis le "
                            "revenu médian (secret statistique)", "%", _CALC, kind="percent"),
    "poverty_basis": _c("Base du taux de pauvreté", source=_CALC),
    "poverty_rate_source": _c("Base du taux de pauvreté", source=_CALC),
    "missing_factors": _c("Facteurs inconnus (écartés)", source=_CALC),
    "score": _c("Score de priorité (naissances pondérées par les besoins)",
                "Naissances 2024 × moyenne pondérée des facteurs (1 = moyenne du "
                "territoire)", unit="naissances", source=_CALC, kind="score"),
    "access_deficit": _c("Éloignement des services (0-1)", "Moyenne sur les types de "
                         "min(temps à la plus proche / seuil, 1)", unit="0-1", source=_CALC,
                         kind="ratio"),
    "estimated_factors": _c("Facteurs estimés", source=_CALC),
    "rank": _c("Rang", source=_CALC, kind="count"),
    # siting
    "status": _c("Statut", source=_CALC),
    "births_covered": _c("Naissances à portée", unit="naissances", source=_CALC,
                         kind="count"),
    "births_new": _c("Naissances nouvellement à portée", unit="naissances", source=_CALC,
                     kind="count"),
    "need_covered": _c("Besoin pondéré couvert", unit="naissances pondérées", source=_CALC,
                       kind="decimal1"),
    "need_exclusive": _c("Besoin pondéré couvert par ce seul site",
                         unit="naissances pondérées", source=_CALC, kind="decimal1"),
    "single_parent_families": _c("Familles monoparentales à portée", unit="familles",
                                 source=_CALC, kind="count"),
    "births_poverty": _c("Naissances sous le seuil de pauvreté à portée (estimation)",
                         unit="naissances", source=_CALC, kind="count"),
    "runner_up_id": _c("Site suivant : identifiant", source=_CALC),
    "runner_up_name": _c("Site suivant", source=_CALC),
    "advantage": _c("Avance sur le site suivant", unit="naissances pondérées", source=_CALC,
                    kind="decimal1"),
    "explanation": _c("Pourquoi ce site", source=_CALC),
    "partners_within": _c("Partenaires à portée", unit="structures", source=_CALC,
                          kind="count"),
    "births_used": _c("Naissances retenues", unit="naissances", source=_CALC, kind="count"),
    "single_parent_share_used": _c("Part de familles monoparentales retenue (%)", unit="%",
                                   source=_CALC, kind="percent"),
    "single_parent_share_source": _c("Base de la part de familles monoparentales",
                                     source=_CALC),
    "need_weight": _c("Poids du besoin", unit="coefficient", source=_CALC, kind="ratio"),
    "weight_used": _c("Besoin pondéré", unit="naissances pondérées", source=_CALC,
                      kind="decimal1"),
    "covered_before": _c("Déjà à portée d'une Maison", unit="oui/non", source=_CALC,
                         kind="bool"),
    "covered_after": _c("À portée après implantation", unit="oui/non", source=_CALC,
                        kind="bool"),
    "site_id": _c("Site : identifiant", source=_CALC),
    "site_name": _c("Site", source=_CALC),
    "minutes_to_site": _c("Temps au site (min)", unit="min", source=_CALC, kind="minutes"),
    "max_minutes": _c("Temps maximal (min)", unit="min", source=_CALC, kind="minutes"),
    # partners
    "role": _c("Rôle"),
    "organisation": _c("Organisation"),
    "description": _c("Description"),
    "scope": _c("Périmètre"),
    "contact_status": _c("Statut du contact"),
    "minutes": _c("Temps (min)", unit="min", source=_CALC, kind="minutes"),
    "distance_m": _c("Distance (m)", "Distance à vol d'oiseau", "m", _CALC, kind="metres"),
    # two-column tables
    "indicateur": _c("Indicateur"),
    "valeur": _c("Valeur", kind="decimal1"),
    "Indicateur": _c("Indicateur"),
    "Valeur": _c("Valeur", kind="decimal1"),
    # meta tables
    "key": _c("Clé", "Clé de la source"),
    "title": _c("Titre"),
    "vintage": _c("Millésime"),
    "licence": _c("Licence"),
    "attribution": _c("Mention à citer"),
    "url": _c("Adresse web"),
    "crs": _c("Système de coordonnées", "Système de coordonnées des données brutes"),
    "cle": _c("Paramètre"),
}

#: Per-type column prefixes: label and definition (``{}`` is the type's plural label).
_PER_TYPE: dict[str, ColumnSpec] = {
    "n_": _c("{} : nombre", "Nombre de structures « {} » dans la commune", "structures",
             _CALC, kind="count"),
    "places_": _c("{} : places connues", "Places connues « {} » dans la commune (vide = "
                  "aucune connue)", "places", _CALC, kind="count"),
    "dist_m_": _c("{} : distance à la plus proche (m)", "Distance à vol d'oiseau de la "
                  "mairie à la structure « {} » la plus proche, cherchée aussi hors du "
                  "territoire (vide = aucune chargée)", "m", _CALC, kind="metres"),
    "within_": _c("{} : à portée", "La structure « {} » la plus proche est sous le seuil "
                  "de distance (voir metadonnees)", "oui/non", _CALC, kind="bool"),
    "minutes_nearest_": _c("{} : temps à la plus proche (min)", "Temps de trajet de la "
                           "mairie à la structure « {} » la plus proche", "min", _CALC,
                           kind="minutes"),
    "reachable_": _c("{} : accessibles sous le seuil", "Structures « {} » à portée de "
                     "temps", "structures", _CALC, kind="count"),
    "e2sfca_": _c("{} : places accessibles par naissance (E2SFCA)", "Indice E2SFCA des "
                  "structures « {} » (vide = capacités inconnues)", "places/naissance",
                  _CALC, kind="ratio"),
    "deficit_": _c("{} : éloignement (0-1)", "min(temps à la structure « {} » la plus "
                   "proche / seuil, 1)", "0-1", _CALC, kind="ratio"),
}
_FACTORS = {"births": "naissances", "poverty": "pauvreté",
            "single_parent": "familles monoparentales", "access": "éloignement"}
#: Layers whose ``name`` column names a structure or a site (elsewhere, a commune).
_NAMED_PLACES = ("structures_", "sites_recommandes", "partenaires_autour_du_site",
                 "zones_de_desserte")
#: French values of the coded text columns.
VALUE_LABELS: dict[str, Mapping[str, str]] = {
    "engine": ENGINE_SHORT_LABELS,
    "mode": {k: v for k, v in TRAVEL_MODE_LABELS.items()},
    "position_precision": {"address": "adresse", "street": "rue", "commune": "commune"},
    "poverty_basis": {"poverty_rate": "taux publié", "published": "taux publié",
                      "median_income": "estimé depuis le revenu médian"},
    "poverty_rate_source": {"poverty_rate": "taux publié", "published": "taux publié",
                            "median_income": "estimé depuis le revenu médian"},
    "single_parent_share_source": {"published": "part publiée"},
    "indicateur": {
        "births_total": "Naissances du territoire",
        "births_covered_before": "Naissances à portée avant",
        "births_covered_after": "Naissances à portée après",
        "births_newly_covered": "Naissances nouvellement à portée",
        "share_covered_before": "Part des naissances à portée avant (%)",
        "share_covered_after": "Part des naissances à portée après (%)",
        "need_total": "Besoin pondéré du territoire",
        "need_covered_after": "Besoin pondéré couvert après",
        "n_selected": "Sites retenus",
        "status": "Statut (code)",
        "status_label": "Statut",
        "message": "Résumé",
        "method": "Méthode (exact ou glouton)",
        "gap": "Écart maximal à l'optimum (%)",
        "runtime_s": "Temps de calcul (s)",
        "objective": "Valeur de l'objectif",
    },
}


def column_spec(layer: str, column: str, *, year: str = "",
                data_years: Mapping[str, int] | None = None) -> ColumnSpec:
    """The French label, definition, unit, source, year and rounding of a column.

    ``year`` is printed for the columns computed by Maillage (the diagnosis' year);
    ``data_years`` (:func:`diagnosis.needs.data_years`) gives the year of the INSEE
    figures read, which replaces the 2025-edition year in the label, the INSEE column
    names quoted and the year (``Naissances 2022``, ``NAISD22`` for a 2024-edition file).

    Examples
    --------
    >>> column_spec("structures_mam", "name").label, column_spec("manques_priorites", "name").label
    ('Nom', 'Commune')
    >>> column_spec("manques_priorites", "contrib_poverty").label
    'Part du score : pauvreté (naissances pondérées)'
    """
    if column == "name":
        label = "Nom" if layer.startswith(_NAMED_PLACES) and layer != \
            "sites_recommandes_demande" else "Commune"
        spec = _c(label, "Nom publié" if label == "Nom" else "Nom de la commune",
                  source=_FAC if label == "Nom" else _COG, year="" if label == "Nom" else "2026")
    elif column in _FIXED:
        spec = _FIXED[column]
    else:
        spec = _pattern_spec(column)
    if spec.source == _CALC and year and not spec.year:
        spec = ColumnSpec(spec.label, spec.description, spec.unit, spec.source, year,
                          spec.kind)
    return _dated(spec, column, data_years)


#: INSEE column names quoted in descriptions, by base column (``{y}``: two-digit year).
_INSEE_TOKENS: dict[str, str] = {
    "births_2024": "NAISD{y}", "population_2022": "P{y}_POP",
    "median_income_2021": "MED{y}", "poverty_rate_2021": "TP60{y}",
    "single_parent_families_2022": "C{y}_FAMMONO", "couples_with_children_2022": "C{y}_COUPAENF",
    "family_households_2022": "C{y}_MENFAM", "population_0014_2022": "P{y}_POP0014",
}


def _dated(spec: ColumnSpec, column: str, data_years: Mapping[str, int] | None) -> ColumnSpec:
    """The spec of an INSEE-based column with the year of the figures actually read.

    Examples
    --------
    >>> s = column_spec("communes_indicateurs", "births_2024", data_years={"births_2024": 2022})
    >>> s.label, s.year, "NAISD22" in s.description
    ('Naissances 2022', '2022', True)
    """
    base = DERIVED_FROM.get(column, column)
    if not data_years or base not in DEFAULT_YEARS:
        return spec
    old, new = DEFAULT_YEARS[base], year_of(dict(data_years), column)
    if old == new:
        return spec
    label, desc = spec.label, spec.description
    if base == "births_2016_2021":
        pairs = [(f"{old - 5}-{old}", f"{new - 5}-{new}"),
                 (f"NAIS{(old - 5) % 100:02d}{old % 100:02d}",
                  f"NAIS{(new - 5) % 100:02d}{new % 100:02d}")]
    else:
        pairs = [(str(old), str(new))]
        token = _INSEE_TOKENS.get(base)
        if token:
            pairs.insert(0, (token.format(y=f"{old % 100:02d}"),
                             token.format(y=f"{new % 100:02d}")))
    for a, b in pairs:
        label, desc = label.replace(a, b), desc.replace(a, b)
    year = str(new) if spec.year in ("", str(old)) else spec.year
    return ColumnSpec(label, desc, spec.unit, spec.source, year, spec.kind)


def _pattern_spec(column: str) -> ColumnSpec:
    for prefix, tpl in sorted(_PER_TYPE.items(), key=lambda kv: -len(kv[0])):
        t = column.removeprefix(prefix)
        if column.startswith(prefix) and t in FACILITY_TYPES:
            lab = facility_label(t, plural=True)
            return ColumnSpec(tpl.label.format(lab), tpl.description.format(lab), tpl.unit,
                              tpl.source, tpl.year, tpl.kind)
    for prefix, label, unit, kind in (
            ("factor_", "Facteur : {} (× moyenne du territoire)", "multiplicateur", "ratio"),
            ("contrib_", "Part du score : {} (naissances pondérées)", "naissances",
             "score")):
        f = column.removeprefix(prefix)
        if column.startswith(prefix) and f in _FACTORS:
            return _c(label.format(_FACTORS[f]), unit=unit, source=_CALC, kind=kind)
    return _c(column, "Colonne produite par l'analyse (nom technique)", source=_CALC,
              kind="text")


def round_values(values: pd.Series, kind: str) -> pd.Series:
    """Values rounded to their meaning; missing values stay missing (never 0).

    Examples
    --------
    >>> round_values(pd.Series([18.849380290153643, float("inf")]), "minutes").tolist()
    [18.8, nan]
    >>> round_values(pd.Series([2.0]), "ratio").tolist()
    [2.0]
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not a rounding kind; use one of {list(KINDS)}")
    if kind in ("text", "bool") or not pd.api.types.is_numeric_dtype(values) or \
            pd.api.types.is_bool_dtype(values):
        if values.dtype == object and kind not in ("text", "bool"):
            return values.map(lambda v: round(v, 1) if isinstance(v, float) else v)
        return values
    v = pd.to_numeric(values, errors="coerce").astype("float64").replace([np.inf, -np.inf],
                                                                          np.nan)
    if kind in ("count", "metres", "euros"):
        return v.round(0).astype("Int64")
    decimals = {"decimal1": 1, "minutes": 1, "percent": 1, "score": 1, "ratio": 3,
                "km2": 2, "degrees": 6}
    if kind == "share":
        return (100 * v).round(1)
    return v.round(decimals[kind])


def _fr_cell(value: object) -> object:
    """A number in a text column as French text (``309.0`` → ``309``, ``87.54`` → ``87,5``).

    Examples
    --------
    >>> _fr_cell(309.0), _fr_cell(87.5354), _fr_cell("optimum"), _fr_cell(True)
    ('309', '87,5', 'optimum', True)
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer |
                                                 np.floating):
        return value
    v = float(value)
    if not np.isfinite(v):
        return ""
    return str(int(round(v))) if float(round(v, 1)).is_integer() else \
        f"{v:.1f}".replace(".", ",")


def _unknown_reach(df: pd.DataFrame) -> pd.DataFrame:
    """« Within reach » is unknown, not « no », where no facility of the type is loaded.

    ``within_<type>`` is empty wherever ``dist_m_<type>`` is (nothing loaded anywhere),
    so that a spreadsheet never reads « non » for a type nobody knows.
    """
    for col in list(df.columns):
        t = str(col).removeprefix("within_")
        dist = f"dist_m_{t}"
        if not str(col).startswith("within_") or dist not in df:
            continue
        unknown = pd.to_numeric(df[dist], errors="coerce").replace(
            [np.inf, -np.inf], np.nan).isna()
        if not unknown.any():
            continue
        if df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
            df[col] = df[col].where(~unknown, "")  # CSV: already « oui »/« non »
        else:
            df[col] = df[col].astype("boolean").mask(unknown.to_numpy(), pd.NA)
    return df


def french_layer(layer: str, df: pd.DataFrame, *,
                 data_years: Mapping[str, int] | None = None) -> pd.DataFrame:
    """``df`` with French column labels, French values of coded columns, rounded values.

    ``data_years``: the years of the INSEE figures (see :func:`column_spec`).
    """
    out = _unknown_reach(df.copy())
    labels: dict[str, str] = {}
    used: set[str] = set()
    for col in out.columns:
        if col == getattr(out, "_geometry_column_name", None) or col == "geometry":
            continue
        spec = column_spec(layer, str(col), data_years=data_years)
        out[col] = round_values(out[col], spec.kind)
        text = out[col].dtype == object or pd.api.types.is_string_dtype(out[col])
        if col in VALUE_LABELS and text:
            out[col] = out[col].map(lambda v, m=VALUE_LABELS[col]: m.get(v, v))
        if out[col].dtype == object and spec.kind != "text":
            out[col] = out[col].map(_fr_cell)  # numbers among text: written the French way
        label = spec.label if spec.label not in used else f"{spec.label} [{col}]"
        used.add(label)
        labels[str(col)] = label
    return out.rename(columns=labels)


def french_label(layer: str, column: str, columns: list[str], *,
                 data_years: Mapping[str, int] | None = None) -> str:
    """The label :func:`french_layer` gives ``column`` among ``columns`` of ``layer``."""
    used: set[str] = set()
    for col in columns:
        if col == "geometry":
            if col == column:
                return col
            continue
        spec = column_spec(layer, col, data_years=data_years)
        label = spec.label if spec.label not in used else f"{spec.label} [{col}]"
        used.add(label)
        if col == column:
            return label
    raise KeyError(column)
