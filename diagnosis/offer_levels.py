"""The offer by type against the département and France: places per 100 children, CAF rate.

What a consultant's diagnostic sets side by side for each facility type: the structures
and places of the territory, the places per 100 children under 3 in the territory, its
département and France, and the CNAF coverage rate (*taux de couverture*) of the same
three levels. Computed once here from the loaded data (the PDF reads
:attr:`diagnosis.pipeline.Diagnosis.offer_levels`).

A figure is computed only from what was loaded, and says how far it goes:

- ``exact``: a source listing the type completely was loaded, every structure of the
  level has a known capacity and the children of every commune are known;
- ``minimum``: the type is listed completely but some capacities are missing: the rate
  is a lower bound (« ≥ »), as the counts of a partial offer are;
- ``unknown``: a partial offer (structures not loaded may hold any number of places),
  no capacity, children not known: the reason and what would bring it (never 0).

A département's figure reads the communes and structures loaded for it (the demo and the
stored départements load whole départements; the count of communes read is stated).
France's needs every commune of France: it is known only for a national study.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from diagnosis.needs import under3_children, under3_label
from diagnosis.schema import Territory

#: Levels of the comparison, in column order.
LEVELS: tuple[str, ...] = ("territoire", "departement", "france")

#: What would bring a figure that is not loaded (French, for the report).
TO_LOAD: dict[str, str] = {
    "france_places": "les naissances et les capacités d'accueil de toute la France (Insee "
                     "état civil ; FINESS, BPE ou data.caf.fr pour les places)",
    "departement_communes": "les communes du département (mise à jour des sources ou "
                            "fichier INSEE du département)",
    "capacity": "les capacités des structures (FINESS, BPE, data.caf.fr, ou une colonne "
                "« places » dans votre fichier)",
    "offer": "une source qui recense ce type de structure (mise à jour des sources ou "
             "fichier de structures)",
    "births": "les naissances de chaque commune (fichier INSEE)",
    "caf_departement": "data.caf.fr, taux de couverture par département (jeu "
                       "« txcouv_pe_dep », pas encore lu par Maillage)",
    "caf_france": "data.caf.fr, taux de couverture national (pas encore lu par Maillage)",
    "caf_territory": "data.caf.fr, taux de couverture par commune et par EPCI (mise à jour "
                     "des sources avec internet)",
}


@dataclass(frozen=True)
class LevelRate:
    """One figure of one level, with how far it goes.

    Attributes
    ----------
    value
        The figure (places per 100 children under 3), or ``None`` when unknown.
    kind
        ``"exact"``, ``"minimum"`` (lower bound) or ``"unknown"``.
    reason
        French: why unknown or a minimum, and what would bring it (``""`` when exact).
    """

    value: float | None
    kind: str
    reason: str = ""


@dataclass(frozen=True)
class OfferLevels:
    """The offer of each type at three levels, and the CAF coverage rate of each level.

    Attributes
    ----------
    types
        The facility types, in the report's order.
    level_labels
        ``territoire``, ``departement``, ``france`` -> French label (« Loire-Atlantique
        (44) »).
    table
        One row per type: ``type``, ``facilities`` (structures of the territory),
        ``with_capacity``, ``places_known`` (NaN when none known), ``status`` (offer
        coverage) and, per level ``l``, ``rate_<l>`` / ``kind_<l>`` / ``reason_<l>``.
    caf
        The CNAF coverage rate per level (:class:`LevelRate`), with ``caf_year``.
    children
        Children under 3 per level (``None``: unknown) and how they were counted.
    departement_communes
        Communes loaded for the département (stated next to its figures).
    notes
        French notes.
    """

    types: tuple[str, ...]
    level_labels: Mapping[str, str]
    table: pd.DataFrame
    caf: Mapping[str, LevelRate]
    caf_year: int | None
    children: Mapping[str, float | None]
    children_label: str
    departement_communes: int
    notes: tuple[str, ...] = field(default=())

    def rate(self, typ: str, level: str) -> LevelRate:
        """The places per 100 children of ``typ`` at ``level``."""
        row = self.table.loc[self.table["type"].eq(typ)].iloc[0]
        value = row[f"rate_{level}"]
        return LevelRate(None if pd.isna(value) else float(value), str(row[f"kind_{level}"]),
                         str(row[f"reason_{level}"]))


def places_rate(places: float | None, children: float | None, *, complete_offer: bool,
                all_capacities: bool, places_loaded: bool = True) -> LevelRate:
    """Places per 100 children under 3, as far as the loaded data know it.

    With a source listing the type completely, the rate is exact when every capacity is
    known and a minimum (« ≥ ») when some are; with a partial offer (a directory, a
    user's file) the structures not loaded may hold any number of places: unknown
    (``places_loaded``: some structures of the type are loaded, for the reason).

    Examples
    --------
    >>> places_rate(30.0, 200.0, complete_offer=True, all_capacities=True)
    LevelRate(value=15.0, kind='exact', reason='')
    >>> places_rate(30.0, 200.0, complete_offer=True, all_capacities=False).kind
    'minimum'
    >>> places_rate(30.0, 200.0, complete_offer=False, all_capacities=True).kind
    'unknown'
    >>> places_rate(30.0, None, complete_offer=True, all_capacities=True).value is None
    True
    """
    if children is None or not math.isfinite(children) or children <= 0:
        return LevelRate(None, "unknown", f"enfants de moins de 3 ans non connus : "
                                          f"{TO_LOAD['births']}")
    if not complete_offer:
        what = "connue en partie" if places_loaded else "non chargée"
        return LevelRate(None, "unknown", f"offre {what} : {TO_LOAD['offer']}")
    if all_capacities:
        return LevelRate(100.0 * float(places or 0.0) / children, "exact")
    if places is None or not math.isfinite(places) or places <= 0:
        return LevelRate(None, "unknown", f"aucune capacité connue : {TO_LOAD['capacity']}")
    return LevelRate(100.0 * places / children, "minimum",
                     f"capacités connues pour une partie des structures : "
                     f"{TO_LOAD['capacity']}")


def _children(communes: pd.DataFrame) -> tuple[float | None, pd.Series]:
    """Children under 3 of the communes (``None`` when one commune's is unknown)."""
    if communes.empty:
        return None, pd.Series(dtype=object)
    value, basis = under3_children(communes)
    if value.isna().any():
        return None, basis
    return float(value.sum()), basis


def _level_places(capacity: np.ndarray, selected: np.ndarray
                  ) -> tuple[int, int, float | None]:
    """Structures, structures with a capacity and known places among ``selected`` rows.

    ``capacity``: every facility's capacity as floats (NaN unknown); ``selected``: a mask.
    """
    cap = capacity[selected]
    known = ~np.isnan(cap)
    places = float(cap[known].sum()) if known.any() else None
    return int(selected.sum()), int(known.sum()), places


def _caf_rates(territory: Territory, caf: Any) -> tuple[dict[str, LevelRate], int | None]:
    """The CNAF rate of each level from a :class:`diagnosis.context.CafCoverage`."""
    year = getattr(caf, "year", None)
    if caf is None or year is None:
        territory_rate = LevelRate(None, "unknown", f"non chargé : {TO_LOAD['caf_territory']}")
    elif territory.kind == "epci":
        rate = getattr(caf, "epci_rate", None)
        territory_rate = (LevelRate(float(rate), "exact") if rate is not None
                          and math.isfinite(float(rate)) else
                          LevelRate(None, "unknown", "non publié pour cet EPCI"))
    elif territory.kind == "commune":
        rows = caf.by_commune.loc[caf.by_commune["code_insee"].astype(str).eq(territory.code)]
        rate = float(rows["rate"].iloc[0]) if len(rows) else float("nan")
        territory_rate = (LevelRate(rate, "exact") if math.isfinite(rate) else LevelRate(
            None, "unknown", "non publié (la Cnaf ne publie le taux que pour les communes "
                             "de plus de 10 000 habitants) ; voir le taux de l'EPCI"))
    else:
        territory_rate = LevelRate(None, "unknown", "non publié pour ce découpage (la Cnaf "
                                                    "publie par commune, EPCI et département)")
    dep = _loaded_rate(getattr(caf, "departement_rate", None), TO_LOAD["caf_departement"])
    france = _loaded_rate(getattr(caf, "france_rate", None), TO_LOAD["caf_france"])
    if territory.kind == "departement":
        territory_rate = dep
    elif territory.kind == "pays":
        territory_rate = france
    return {"territoire": territory_rate, "departement": dep, "france": france}, (
        int(year) if year is not None else None)


def _loaded_rate(value: Any, to_load: str) -> LevelRate:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return LevelRate(None, "unknown", f"non chargé : {to_load}")
    return LevelRate(v, "exact") if math.isfinite(v) else LevelRate(
        None, "unknown", f"non chargé : {to_load}")


def compute_offer_levels(
    territory: Territory,
    communes: pd.DataFrame,
    facilities: pd.DataFrame,
    *,
    types: Sequence[str],
    coverage: Mapping[str, Mapping[str, Any]],
    caf: Any = None,
    departement_name: str | None = None,
) -> OfferLevels:
    """Places per 100 children under 3 of each type, and the CAF rate, at three levels.

    Parameters
    ----------
    territory
        The territory diagnosed.
    communes
        Every loaded commune (the territory's and its départements': ``code_insee``,
        ``dep_code``, births or a census count of children under 3).
    facilities
        Every loaded facility (``type``, ``code_insee``, ``capacity``).
    types
        Facility types, in order.
    coverage
        Per type, ``{"status": "complete" | "partial" | "unknown"}``
        (:func:`diagnosis.overview.facility_coverage`; ``Overview.summary["coverage"]``).
    caf
        :class:`diagnosis.context.CafCoverage` or ``None`` (not loaded).
    departement_name
        Name of the territory's (first) département, for its label.

    Returns
    -------
    OfferLevels
    """
    codes = {str(c) for c in communes["code_insee"]} if "code_insee" in communes else set()
    own = communes.loc[communes["code_insee"].astype(str).isin(set(territory.communes))]
    dep_code = territory.departements[0] if territory.departements else ""
    national = territory.kind == "pays"
    dep_rows = (communes.loc[communes["dep_code"].astype(str).eq(dep_code)]
                if dep_code and "dep_code" in communes else communes.iloc[0:0])
    children_t, basis_t = _children(own)
    children_d, _ = _children(dep_rows)
    missing_own = len(set(territory.communes) - codes)
    if missing_own:
        children_t = None
    dep_label = (f"{departement_name} ({dep_code})" if departement_name and dep_code
                 else (f"Département {dep_code}" if dep_code else "Département"))
    labels = {"territoire": "Territoire", "departement": dep_label, "france": "France"}
    rows: list[dict[str, Any]] = []
    dep_codes = {str(c) for c in dep_rows["code_insee"]} if len(dep_rows) else set()
    # each facility's type, commune and capacity read once (not once per type and level)
    fac_types = facilities["type"].astype(str).to_numpy(dtype=object)
    fac_codes = facilities["code_insee"].astype(str)
    in_territory = fac_codes.isin(set(territory.communes)).to_numpy(dtype=bool)
    in_dep = fac_codes.isin(dep_codes).to_numpy(dtype=bool)
    capacity = pd.to_numeric(facilities["capacity"], errors="coerce").to_numpy(
        dtype=float, na_value=np.nan)
    for t in types:
        status = str(coverage.get(t, {}).get("status", "unknown"))
        complete = status == "complete"
        of_type = fac_types == t
        n, n_cap, places = _level_places(capacity, of_type & in_territory)
        row: dict[str, Any] = {"type": t, "facilities": n, "with_capacity": n_cap,
                               "places_known": np.nan if places is None else places,
                               "status": status}
        loaded = status != "unknown"
        rates = {"territoire": places_rate(places, children_t, complete_offer=complete,
                                           all_capacities=n_cap == n, places_loaded=loaded)}
        if national:
            rates["departement"] = LevelRate(None, "unknown", "étude nationale : voir le "
                                                              "tableau par département")
            rates["france"] = rates["territoire"]
        else:
            if dep_codes:
                dn, dcap, dplaces = _level_places(capacity, of_type & in_dep)
                rates["departement"] = places_rate(dplaces, children_d,
                                                   complete_offer=complete,
                                                   all_capacities=dcap == dn,
                                                   places_loaded=loaded)
            else:
                rates["departement"] = LevelRate(None, "unknown", "non chargé : "
                                                 + TO_LOAD["departement_communes"])
            rates["france"] = LevelRate(None, "unknown",
                                        f"non chargé : {TO_LOAD['france_places']}")
        for level, r in rates.items():
            row[f"rate_{level}"] = np.nan if r.value is None else r.value
            row[f"kind_{level}"] = r.kind
            row[f"reason_{level}"] = r.reason
        rows.append(row)
    caf_rates, caf_year = _caf_rates(territory, caf)
    notes = []
    if missing_own:
        notes.append(f"{missing_own} commune(s) du territoire sans données chargées : "
                     "enfants de moins de 3 ans du territoire non connus.")
    return OfferLevels(
        types=tuple(types), level_labels=labels,
        table=pd.DataFrame(rows, columns=[
            "type", "facilities", "with_capacity", "places_known", "status",
            *(f"{k}_{lv}" for lv in LEVELS for k in ("rate", "kind", "reason"))]),
        caf=caf_rates, caf_year=caf_year,
        children={"territoire": children_t,
                  "departement": None if national else children_d,
                  "france": children_t if national else None},
        children_label=under3_label(basis_t) if len(basis_t) else "",
        departement_communes=len(dep_rows), notes=tuple(notes))
