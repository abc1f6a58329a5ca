"""Needs per commune: births, families, income and poverty, with derived indicators.

Input columns are the base columns produced by the INSEE loaders
(:mod:`data_sources.insee_files`, :mod:`data_sources.insee_melodi`); output columns are
:data:`diagnosis.schema.NEEDS_COLUMNS`. Missing values (statistical secret) stay NaN.

See Also
--------
guides/indicateurs.md : definition, formula and source of every indicator.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from diagnosis.errors import InputError
from diagnosis.schema import NEEDS_COLUMNS, NEEDS_NUMERIC
from diagnosis.settings import UNDER3_YEARS

#: Year of the values each INSEE-based column holds in the 2025 edition of the files (the
#: column names are historical: ``births_2024`` holds the newest births of the file
#: read). Files of another edition carry their year per commune in ``<column>_year``.
DEFAULT_YEARS: dict[str, int] = {
    "births_2024": 2024, "population_2022": 2022, "births_2016_2021": 2021,
    "median_income_2021": 2021, "poverty_rate_2021": 2021,
    "single_parent_families_2022": 2022, "couples_with_children_2022": 2022,
    "family_households_2022": 2022, "population_0014_2022": 2022,
}
#: Columns derived from another column, whose year they take.
DERIVED_FROM: dict[str, str] = {
    "births_mean_2016_2021": "births_2016_2021", "density_per_km2": "population_2022",
    "families_2022": "single_parent_families_2022",
    "single_parent_share_2022": "single_parent_families_2022",
    "under3_estimate": "births_2024",
}

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
    under3, basis = under3_children(out)
    out["under3_estimate"] = under3
    out["under3_basis"] = basis
    for c in NEEDS_NUMERIC:
        if c not in out:
            out[c] = np.nan
        out[c] = out[c].astype("float64")
    for c in NEEDS_COLUMNS:
        if c not in out:
            out[c] = ""
    return out


#: Columns that may hold a census count of children under 3 (newest first) and its year.
UNDER3_CENSUS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("under3_census", "under3_census_year"), ("under3_count", "under3_year"))


def under3_children(communes: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Children under 3 per commune: a census count where one is loaded, else 3 × births.

    The count comes from ``under3_census`` (INSEE files ``P21_POP0002``…, Melodi
    ``AGE=Y0T2``) or ``under3_count``, with its year; elsewhere the estimate
    ``3 × births_2024`` is used. The second series says which, in French, per commune.

    Examples
    --------
    >>> c = pd.DataFrame({"births_2024": [10.0, 20.0], "under3_census": [33.0, None],
    ...                   "under3_census_year": [2022, None]})
    >>> n, basis = under3_children(c)
    >>> n.tolist(), basis.tolist()
    ([33.0, 60.0], ['recensement 2022', 'estimation : 3 × naissances'])
    """
    births = pd.to_numeric(communes.get("births_2024", pd.Series(np.nan, index=communes.index)),
                           errors="coerce").astype("float64")
    value = UNDER3_YEARS * births
    basis = pd.Series(np.where(births.notna(), "estimation : 3 × naissances", ""),
                      index=communes.index, dtype=object)
    for col, year_col in reversed(UNDER3_CENSUS_COLUMNS):
        if col not in communes.columns:
            continue
        count = pd.to_numeric(communes[col], errors="coerce").astype("float64")
        known = count.notna()
        years = (pd.to_numeric(communes[year_col], errors="coerce")
                 if year_col in communes.columns else pd.Series(np.nan, index=communes.index))
        value = value.where(~known, count)
        basis = basis.where(~known, years.map(
            lambda y: f"recensement {int(y)}" if pd.notna(y) else "recensement"))
    return value, basis


def under3_label(basis: pd.Series, *, births_year: int = 2024) -> str:
    """French label of a territory's under-3 figure from the per-commune bases.

    Examples
    --------
    >>> under3_label(pd.Series(["recensement 2022", "recensement 2022"]))
    'recensement 2022 (comptage)'
    >>> under3_label(pd.Series(["recensement 2022", "estimation : 3 × naissances"]))
    'recensement 2022 pour 1 commune(s), estimation 3 × naissances pour 1 (mélange)'
    """
    b = basis.astype(str)
    census = b[b.str.startswith("recensement")]
    if len(census) and len(census) == len(b):
        return f"{census.mode().iloc[0]} (comptage)"
    if len(census):
        return (f"{census.mode().iloc[0]} pour {len(census)} commune(s), estimation 3 × "
                f"naissances pour {len(b) - len(census)} (mélange)")
    return f"estimation : 3 × naissances {births_year} (pas un comptage)"


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


def data_years(communes: pd.DataFrame) -> dict[str, int]:
    """The year of each INSEE-based column of a communes table.

    The most frequent ``<column>_year`` (the newest on a tie) where the table has
    one, else :data:`DEFAULT_YEARS`; derived columns (:data:`DERIVED_FROM`) take the
    year of their source. Labels (CLI, PDF, exports, sources) print these years, not
    the ones in the column names.

    Examples
    --------
    >>> c = pd.DataFrame({"births_2024_year": pd.array([2022, 2022, None], dtype="Int64"),
    ...                   "population_2022_year": pd.array([2021, 2021, 2021], dtype="Int64")})
    >>> y = data_years(c)
    >>> y["births_2024"], y["population_2022"], y["density_per_km2"], y["median_income_2021"]
    (2022, 2021, 2021, 2021)
    """
    return years_of({col: year_values(communes, col) for col in DEFAULT_YEARS
                     if f"{col}_year" in communes.columns})


def year_values(communes: pd.DataFrame, column: str) -> np.ndarray:
    """The ``<column>_year`` of each commune as floats (NaN: unknown)."""
    return np.asarray(pd.to_numeric(communes[f"{column}_year"], errors="coerce")
                      .to_numpy(dtype=float, na_value=np.nan))


def years_of(values: Mapping[str, np.ndarray]) -> dict[str, int]:
    """:func:`data_years` from each column's per-commune years (:func:`year_values`).

    Lets many territories cut from one table share the conversion of its year columns.
    """
    years = dict(DEFAULT_YEARS)
    for col, found_years in values.items():
        vals = found_years[~np.isnan(found_years)].astype(int)
        if len(vals):
            found, counts = np.unique(vals, return_counts=True)
            years[col] = int(found[counts == counts.max()].max())
    for col, src in DERIVED_FROM.items():
        years[col] = years[src]
    return years


def period_label(years: dict[str, int] | None, column: str = "births_2016_2021") -> str:
    """The six-year period of cumulated births, ``"2016-2021"`` for the 2025 edition.

    Examples
    --------
    >>> period_label({"births_2016_2021": 2020}), period_label(None)
    ('2015-2020', '2016-2021')
    """
    end = (years or {}).get(column, DEFAULT_YEARS[column])
    return f"{end - 5}-{end}"


def year_of(years: dict[str, int] | None, column: str) -> int:
    """The year of ``column`` in ``years`` (:func:`data_years`), else its default.

    Examples
    --------
    >>> year_of({"births_2024": 2022}, "births_2024"), year_of(None, "population_2022")
    (2022, 2022)
    """
    default = DEFAULT_YEARS.get(DERIVED_FROM.get(column, column), 0)
    return int((years or {}).get(column, default))


def dated_label(column: str, label: str, years: dict[str, int] | None) -> str:
    """``label`` of an INSEE-based column with the year of the figures read.

    Examples
    --------
    >>> dated_label("births_2024", "Naissances 2024 (domiciliées)", {"births_2024": 2022})
    'Naissances 2022 (domiciliées)'
    >>> dated_label("births_mean_2016_2021", "Naissances moy. 2016-2021",
    ...             {"births_2016_2021": 2020, "births_mean_2016_2021": 2020})
    'Naissances moy. 2015-2020'
    >>> dated_label("name", "Commune", {"births_2024": 2022})
    'Commune'
    """
    base = DERIVED_FROM.get(column, column)
    if not years or base not in DEFAULT_YEARS:
        return label
    old, new = DEFAULT_YEARS[base], year_of(years, column)
    if base == "births_2016_2021":
        return label.replace(f"{old - 5}-{old}", f"{new - 5}-{new}")
    return label.replace(str(old), str(new))
