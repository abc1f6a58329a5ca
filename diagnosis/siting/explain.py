"""French explanations of the recommended sites and the scenario table.

Part of :mod:`diagnosis.siting` (see its docstring for the models).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from diagnosis.errors import InputError
from diagnosis.schema import FACILITY_TYPES
from diagnosis.siting._common import _USER_LABEL, USER_SITE_TYPE

if TYPE_CHECKING:
    from diagnosis.siting.scenario import SitingResult


#: Facility types that can host a Maison (the default candidate pool).
def _fr(value: float, digits: int | None = None) -> str:
    """French number: thousands separated by a no-break space, decimal comma.

    ``digits=None``: no decimals for whole numbers, one otherwise.
    """
    if value is None or not math.isfinite(float(value)):
        return "–"
    if digits is None:
        digits = 0 if float(value).is_integer() else 1
    # round first, then add 0.0 so that a tiny negative prints "0", never "-0"
    text = f"{round(float(value), digits) + 0.0:,.{digits}f}"
    return text.replace(",", "\u00a0").replace(".", ",")


def _type_label(t: str) -> str:
    if t == USER_SITE_TYPE:
        return _USER_LABEL
    return FACILITY_TYPES.get(t, (t, t))[0]


def _explain(rec: Mapping[str, Any], max_minutes: float, problem: str) -> str:
    """One French sentence per recommended site (counts rounded for reading)."""
    t = _fr(max_minutes)

    def need(x: float) -> str:
        return _fr(x, 0 if abs(x) >= 10 else 1)

    parts = [
        f"Couvre {_fr(rec['births_covered'], 0)} naissances par an à {t} min ou moins, dont "
        f"{_fr(rec['births_new'], 0)} sans Maison à portée aujourd'hui",
        f"besoin pondéré couvert {need(rec['need_covered'])}, dont "
        f"{need(rec['need_exclusive'])} par ce seul site",
    ]
    if math.isfinite(rec["single_parent_families"]):
        parts.append(f"{_fr(rec['single_parent_families'], 0)} familles monoparentales dans "
                     "la zone")
    if math.isfinite(rec["births_poverty"]):
        parts.append(f"environ {_fr(rec['births_poverty'], 0)} naissances dans des ménages "
                     "sous le seuil de pauvreté")
    text = " ; ".join(parts) + "."
    if rec["runner_up_name"] and rec["advantage"] == 0.0:
        text += (f" {rec['runner_up_name']} ferait aussi bien à sa place (même résultat) : "
                 "les deux sites sont de bons candidats, à départager sur le terrain.")
    elif rec["runner_up_name"]:
        if problem == "max_covering":
            text += (f" Meilleure alternative : {rec['runner_up_name']}, qui couvrirait "
                     f"{need(rec['advantage'])} de besoin pondéré en moins.")
        else:
            text += (f" Meilleure alternative : {rec['runner_up_name']}, qui allongerait "
                     f"les trajets de {_fr(rec['advantage'], 0)} minutes pondérées au total.")
    else:
        text += " Aucun autre site candidat ne peut le remplacer."
    return text


def compare_scenarios(results: Sequence[SitingResult]) -> pd.DataFrame:
    """Lay siting scenarios side by side.

    Parameters
    ----------
    results
        Results of :func:`find_host_sites` (at least one).

    Returns
    -------
    pandas.DataFrame
        One column per scenario (its ``label``, made unique), one row per indicator,
        indexed by French labels: objective, k, minutes, method, status, gap (%), births
        covered before / after, share after (%), newly covered, need covered, sites,
        computing time (s).

    Examples
    --------
    >>> import geopandas as gpd
    >>> import numpy as np
    >>> from diagnosis.settings import WGS84
    >>> from shapely.geometry import Point
    >>> from diagnosis.siting import find_host_sites
    >>> dem = gpd.GeoDataFrame({"code_insee": ["1", "2"], "births_2024": [10.0, 5.0],
    ...     "need_weight": [10.0, 5.0]}, geometry=[Point(0, 0), Point(1, 0)], crs=WGS84)
    >>> cand = gpd.GeoDataFrame({"facility_id": ["a", "b"], "type": ["pmi", "rpe"],
    ...     "name": ["A", "B"]}, geometry=[Point(0, 0), Point(1, 0)], crs=WGS84)
    >>> m = np.array([[1.0, 30.0], [30.0, 1.0]])
    >>> t = compare_scenarios([find_host_sites(dem, cand, m, k=k, max_minutes=10)
    ...                        for k in (1, 2)])
    >>> t.loc["Naissances couvertes après"].tolist()
    [10.0, 15.0]

    See Also
    --------
    find_host_sites
    guides/implantation.md : comparing scenarios.
    """
    if not results:
        raise InputError("results is empty; give at least one SitingResult")
    columns: dict[str, list[Any]] = {}
    index = [
        "Objectif", "Nouveaux sites (k)", "Temps de trajet maximal (min)", "Méthode",
        "Statut", "Écart maximal à l'optimum (%)", "Naissances couvertes avant",
        "Naissances couvertes après", "Part des naissances couvertes après (%)",
        "Naissances nouvellement couvertes", "Besoin pondéré couvert", "Sites recommandés",
        "Temps de calcul (s)",
    ]
    objective_labels = {"max_covering": "Couverture maximale", "p_median": "p-médiane"}
    for res in results:
        s, p = res.summary, res.params
        name = str(p.get("label", "scénario"))
        base, i = name, 2
        while name in columns:
            name, i = f"{base} ({i})", i + 1
        gap = s.get("gap", math.nan)
        columns[name] = [
            objective_labels.get(p.get("objective", ""), p.get("objective", "")),
            p.get("k"), p.get("max_minutes"), s.get("method", ""), s.get("status_label", ""),
            100.0 * gap if isinstance(gap, float) and math.isfinite(gap) else math.nan,
            s.get("births_covered_before"), s.get("births_covered_after"),
            s.get("share_covered_after"), s.get("births_newly_covered"),
            s.get("need_covered_after"), "; ".join(s.get("site_names", [])),
            s.get("runtime_s"),
        ]
    return pd.DataFrame(columns, index=pd.Index(index, name="Indicateur"), dtype=object)
