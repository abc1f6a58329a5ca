"""Need weight of each commune: births, poverty and single parents (imputed once).

Part of :mod:`diagnosis.siting` (see its docstring for the models).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from diagnosis.errors import InputError
from diagnosis.needs import impute_poverty_rate
from diagnosis.siting._common import DEFAULT_NEED_WEIGHTS

#: Facility types that can host a Maison (the default candidate pool).
# --------------------------------------------------------------------------------------
# Need weights
# --------------------------------------------------------------------------------------
#: Where the poverty rate used for a commune comes from (French labels, shown to users).
POVERTY_SOURCES: dict[str, str] = {
    "published": "publié (Filosofi 2021)",
    "median_income": "estimé d'après le revenu médian (taux sous secret statistique)",
    "territory_mean": "moyenne des communes publiées (taux et revenu sous secret)",
}
#: French names of the factors of the need weight (for notices).
NEED_FACTOR_LABELS: dict[str, str] = {"poverty": "taux de pauvreté",
                                      "single_parent": "part des familles monoparentales"}
#: Where the single-parent share used for a commune comes from (French labels).
SINGLE_PARENT_SOURCES: dict[str, str] = {
    "published": "publié (recensement 2022)",
    "territory_mean": "moyenne des communes publiées (donnée manquante)",
}


def compute_need_weights(
    communes: pd.DataFrame,
    *,
    weights: Mapping[str, float] | None = None,
    births_col: str = "births_2024",
    fallback_births_col: str = "births_mean_2016_2021",
    min_communes_for_fit: int = 5,
) -> pd.DataFrame:
    """Form the need weight of each commune from births, poverty and single parents.

    ``need_weight = births x (1 + a x poverty_rate / 100 + b x single_parent_share / 100)``

    Read it as: every birth counts 1; a birth in a household under the poverty line
    counts ``a`` more, a birth in a single-parent family ``b`` more (the commune's
    rates stand for the share of its births in such households: an approximation).

    Parameters
    ----------
    communes
        One row per commune with the need columns of :data:`diagnosis.schema.NEEDS_COLUMNS`
        (``births_2024``, ``poverty_rate_2021`` (%), ``median_income_2021``,
        ``single_parent_share_2022`` (%) or ``single_parent_families_2022`` and
        ``families_2022``, ``population_2022``).
    weights
        Coefficients ``{"poverty": a, "single_parent": b}`` (>= 0); default
        :data:`DEFAULT_NEED_WEIGHTS` (1 and 1). Set one to 0 to leave that factor out.
    births_col
        Births per year. Where it is missing, ``fallback_births_col`` is used.
    fallback_births_col
        Births per year to use when ``births_col`` is missing (mean 2016-2021).
    min_communes_for_fit
        Fewest communes with both a published poverty rate and a median income needed
        to estimate the secret rates from the median income.

    Returns
    -------
    pandas.DataFrame
        A copy of ``communes`` with ``births_used``, ``poverty_rate_used`` (%),
        ``poverty_rate_source`` (key of :data:`POVERTY_SOURCES`),
        ``single_parent_share_used`` (%), ``single_parent_share_source`` and
        ``need_weight``.

    Raises
    ------
    InputError
        Unknown or negative coefficients, missing columns for a factor whose
        coefficient is positive, births missing in both columns, or a factor with no
        published value in the whole table.

    Notes
    -----
    INSEE does not publish the poverty rate of small communes (statistical secret): a
    missing rate is never read as 0. It is estimated, in order, (1) from the commune's
    median income with a straight line ``rate = c + d x income`` fitted on the communes
    of the table that publish both (at least ``min_communes_for_fit`` of them, with a
    falling slope), clipped to [0, 100]; (2) otherwise as the population-weighted mean
    rate of the communes that publish one. A missing single-parent share takes the
    family-weighted share of the communes that publish one. ``*_source`` says which
    value each commune got.

    Examples
    --------
    >>> c = pd.DataFrame({"code_insee": ["44001", "44002"], "births_2024": [100.0, 10.0],
    ...     "poverty_rate_2021": [20.0, float("nan")], "population_2022": [5000.0, 800.0],
    ...     "single_parent_share_2022": [25.0, 10.0]})
    >>> out = compute_need_weights(c)
    >>> out["need_weight"].tolist()
    [145.0, 13.0]
    >>> out["poverty_rate_source"].tolist()
    ['published', 'territory_mean']

    See Also
    --------
    guides/implantation.md : how need weights are formed.
    """
    coef = dict(DEFAULT_NEED_WEIGHTS)
    if weights is not None:
        unknown = sorted(set(weights) - set(DEFAULT_NEED_WEIGHTS))
        if unknown:
            raise InputError(
                f"weights has unknown keys {unknown!r}; use {sorted(DEFAULT_NEED_WEIGHTS)}"
            )
        coef.update({key: float(v) for key, v in weights.items()})
    for key, v in coef.items():
        if not (math.isfinite(v) and v >= 0):
            raise InputError(f"weights[{key!r}]={v!r} must be a finite number >= 0")
    out = communes.copy()
    births = _num(out, births_col, required=True)
    if fallback_births_col in out.columns:
        births = births.fillna(_num(out, fallback_births_col))
    if births.isna().any():
        rows = _row_labels(out, births.isna())
        raise InputError(
            f"births are missing in {births_col!r} (and {fallback_births_col!r}) for {rows}; "
            "fill them (état civil) before computing need weights"
        )
    if (births < 0).any():
        raise InputError(f"communes[{births_col!r}] has negative births; check the source")
    out["births_used"] = births.astype("float64")

    pop = _num(out, "population_2022")
    dropped: list[str] = []
    rate = pd.Series(0.0, index=out.index)
    source = pd.Series("", index=out.index, dtype=object)
    if coef["poverty"] > 0:
        try:
            rate, source = _poverty_used(_num(out, "poverty_rate_2021"),
                                         _num(out, "median_income_2021"), pop,
                                         min_fit=min_communes_for_fit)
        except InputError:
            coef["poverty"] = 0.0
            dropped.append(NEED_FACTOR_LABELS["poverty"])
            rate = pd.Series(0.0, index=out.index)
    out["poverty_rate_used"] = rate
    out["poverty_rate_source"] = source

    share = pd.Series(0.0, index=out.index)
    sp_source = pd.Series("", index=out.index, dtype=object)
    if coef["single_parent"] > 0:
        try:
            share, sp_source = _single_parent_used(out)
        except InputError:
            coef["single_parent"] = 0.0
            dropped.append(NEED_FACTOR_LABELS["single_parent"])
    out["single_parent_share_used"] = share
    out["single_parent_share_source"] = sp_source
    # Siting never fails on a missing factor: the factor is left out, and said so.
    out.attrs["need_notices"] = tuple(
        f"{label.capitalize()} : aucune donnée chargée pour les communes du territoire ; ce "
        "facteur est laissé de côté dans le poids des besoins (les naissances et les autres "
        "facteurs comptent seuls)." for label in dropped)
    out.attrs["need_coefficients"] = dict(coef)
    out["need_weight"] = out["births_used"] * (
        1.0 + coef["poverty"] * out["poverty_rate_used"] / 100.0
        + coef["single_parent"] * out["single_parent_share_used"] / 100.0
    )
    return out


def _num(df: pd.DataFrame, col: str, *, required: bool = False) -> pd.Series:
    if col not in df.columns:
        if required:
            raise InputError(
                f"communes lacks column {col!r}; found {list(df.columns)}. "
                "Compute the needs first (diagnosis.needs.compute_needs)"
            )
        return pd.Series(np.nan, index=df.index, dtype="float64")
    return pd.to_numeric(df[col], errors="coerce").astype("float64")


def _row_labels(df: pd.DataFrame, mask: pd.Series) -> list[str]:
    if "code_insee" in df.columns:
        return [str(v) for v in df.loc[mask, "code_insee"].head(10)]
    return [str(v) for v in df.index[mask.to_numpy()][:10]]


def _poverty_used(rate: pd.Series, income: pd.Series, pop: pd.Series, *,
                  min_fit: int) -> tuple[pd.Series, pd.Series]:
    """The imputed poverty rate (:func:`diagnosis.needs.impute_poverty_rate`).

    Raises an error naming the option when no commune gives any poverty information.
    """
    if not rate.notna().any() and not income.notna().any():
        raise InputError(
            "no commune of the table publishes a poverty rate or a median income; "
            "pass weights={'poverty': 0} to leave poverty out of the need weight"
        )
    used, source = impute_poverty_rate(rate, income, pop, min_fit=min_fit)
    if used.isna().any():
        raise InputError(
            "poverty rates are secret in every commune of the table and too few "
            "communes publish both a rate and a median income to estimate them; pass "
            "weights={'poverty': 0} or add neighbouring communes"
        )
    return used, source


def _single_parent_used(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    share = _num(df, "single_parent_share_2022")
    mono = _num(df, "single_parent_families_2022")
    fam = _num(df, "families_2022")
    computed = 100.0 * mono / fam.where(fam > 0)
    share = share.fillna(computed)
    known = share.notna()
    if not known.any():
        raise InputError(
            "no commune of the table has a single-parent share "
            "('single_parent_share_2022' or 'single_parent_families_2022' and "
            "'families_2022'); add them or pass weights={'single_parent': 0}"
        )
    source = pd.Series(np.where(known, "published", "territory_mean"), index=df.index,
                       dtype=object)
    both = mono.notna() & fam.notna() & (fam > 0)
    mean = float(100.0 * mono[both].sum() / fam[both].sum()) if both.any() else \
        float(share[known].mean())
    return share.fillna(mean).astype("float64"), source


