"""Needs per commune: births, families, income and poverty, with derived indicators.

Input columns are the base columns produced by the INSEE loaders
(:mod:`data_sources.insee_files`, :mod:`data_sources.insee_melodi`); output columns are
:data:`diagnosis.schema.NEEDS_COLUMNS`. Missing values (statistical secret) stay NaN.

See Also
--------
guides/indicateurs.md : definition, formula and source of every indicator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from diagnosis.errors import InputError
from diagnosis.schema import NEEDS_COLUMNS, NEEDS_NUMERIC
from diagnosis.settings import UNDER3_YEARS

_BASE = ("code_insee", "births_2024", "births_2016_2021", "population_2022", "area_km2",
         "median_income_2021", "poverty_rate_2021", "single_parent_families_2022",
         "couples_with_children_2022")


def compute_needs(base: pd.DataFrame) -> pd.DataFrame:
    """Derive the need indicators of each commune from the INSEE base columns.

    Parameters
    ----------
    base
        One row per commune with ``code_insee`` (str) and the INSEE base columns
        (births_2024, births_2016_2021, population_2022, area_km2, median_income_2021,
        poverty_rate_2021, single_parent_families_2022, couples_with_children_2022);
        other columns (name, epci_code…) are kept.

    Returns
    -------
    pandas.DataFrame
        ``base`` with the numeric columns of :data:`NEEDS_COLUMNS` added:

        - ``births_mean_2016_2021`` = births 2016–2021 / 6;
        - ``density_per_km2`` = population / area;
        - ``families_2022`` = couples with children + single-parent families;
        - ``single_parent_share_2022`` = 100 × single-parent / families (NaN if 0 families);
        - ``under3_estimate`` = 3 × births 2024 (an estimate, labelled as such).

    Examples
    --------
    >>> b = pd.DataFrame({"code_insee": ["44001"], "births_2024": [23.0],
    ...     "births_2016_2021": [130.0], "population_2022": [2052.0], "area_km2": [61.76],
    ...     "median_income_2021": [20750.0], "poverty_rate_2021": [float("nan")],
    ...     "single_parent_families_2022": [97.0], "couples_with_children_2022": [291.0]})
    >>> n = compute_needs(b)
    >>> float(n.births_mean_2016_2021.iloc[0].round(2)), float(n.single_parent_share_2022.iloc[0])
    (21.67, 25.0)
    >>> float(n.under3_estimate.iloc[0]), bool(n.poverty_rate_2021.isna().iloc[0])
    (69.0, True)
    """
    missing = [c for c in _BASE if c not in base.columns]
    if missing:
        raise InputError(
            f"base lacks columns {missing}; found {list(base.columns)}. Load the INSEE files "
            "with data_sources.insee_files.load_insee_files"
        )
    out = base.copy()
    out["code_insee"] = out["code_insee"].astype(str)
    num = {c: pd.to_numeric(out[c], errors="coerce").astype("float64") for c in _BASE[1:]}
    for c, v in num.items():
        out[c] = v
    for c in ("births_2024", "births_2016_2021", "population_2022"):
        if (num[c] < 0).any():
            raise InputError(f"base[{c!r}] has negative values; check the INSEE file")
    out["births_mean_2016_2021"] = num["births_2016_2021"] / 6.0
    area = num["area_km2"].where(num["area_km2"] > 0)
    out["density_per_km2"] = num["population_2022"] / area
    families = num["couples_with_children_2022"] + num["single_parent_families_2022"]
    out["families_2022"] = families
    out["single_parent_share_2022"] = (
        100.0 * num["single_parent_families_2022"] / families.where(families > 0)
    )
    out["under3_estimate"] = UNDER3_YEARS * num["births_2024"]
    for c in NEEDS_NUMERIC:
        if c not in out:
            out[c] = np.nan
        out[c] = out[c].astype("float64")
    for c in NEEDS_COLUMNS:
        if c not in out:
            out[c] = ""
    return out


#: Fewest communes publishing both a poverty rate and a median income to fit the one
#: from the other.
MIN_COMMUNES_FOR_POVERTY_FIT = 5


def impute_poverty_rate(rate: pd.Series, income: pd.Series, population: pd.Series, *,
                        min_fit: int = MIN_COMMUNES_FOR_POVERTY_FIT
                        ) -> tuple[pd.Series, pd.Series]:
    """The poverty rate of every commune, published or estimated, and where it comes from.

    The one imputation of the project (siting and the priority score both use it). INSEE
    does not publish the rate of small communes (statistical secret): it is estimated from
    the commune's median income by a linear fit over the communes publishing both (when at
    least ``min_fit`` do and the fit slopes down), else the population-weighted mean of the
    published rates. Where neither can be had, the rate stays missing (``"missing"``).

    Parameters
    ----------
    rate, income, population
        Poverty rate (%), median income (€) and population, one value per commune.
    min_fit
        Fewest communes with both values needed for the fit.

    Returns
    -------
    (pandas.Series, pandas.Series)
        The rate used (%) and its source: ``"published"``, ``"median_income"``,
        ``"territory_mean"`` or ``"missing"``.

    Examples
    --------
    >>> r, s = impute_poverty_rate(pd.Series([20.0, np.nan]), pd.Series([18000.0, np.nan]),
    ...                            pd.Series([5000.0, 800.0]))
    >>> r.tolist(), s.tolist()
    ([20.0, 20.0], ['published', 'territory_mean'])
    """
    rate = pd.to_numeric(rate, errors="coerce").astype("float64")
    income = pd.to_numeric(income, errors="coerce").astype("float64")
    population = pd.to_numeric(population, errors="coerce").astype("float64")
    known = rate.notna()
    used = rate.copy()
    source = pd.Series(np.where(known, "published", "missing"), index=rate.index, dtype=object)
    both = known & income.notna()
    fit_ok = False
    slope = intercept = 0.0
    if int(both.sum()) >= min_fit and income[both].nunique() > 1:
        slope, intercept = np.polyfit(income[both].to_numpy(), rate[both].to_numpy(), 1)
        fit_ok = bool(slope < 0)
    by_income = ~known & income.notna() & fit_ok
    used[by_income] = np.clip(intercept + slope * income[by_income], 0.0, 100.0)
    source[by_income] = "median_income"
    rest = used.isna()
    if rest.any() and known.any():
        wts = population[known].where(population[known] > 0)
        mean = float(np.average(rate[known], weights=wts)) if wts.notna().all() else \
            float(rate[known].mean())
        used[rest] = mean
        source[rest] = "territory_mean"
    return used, source
