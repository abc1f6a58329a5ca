"""Gaps: "zones blanches" per facility type and a priority score per commune.

Both read the per-commune accessibility table of
:func:`diagnosis.accessibility.compute_access_indicators` and the commune needs
(:data:`diagnosis.schema.NEEDS_COLUMNS`).

- A commune is in the *zone blanche* of a type when its nearest facility of that type
  is farther than ``max_minutes`` (or unreachable); its births are births out of reach.
- The priority score ranks the *need in families*: the births of the commune, weighted
  by how much more (or less) than the territory's average its families face poverty,
  single parenthood and distance to services. A commune of 22 inhabitants without
  births scores 0, whatever its rates. Each factor is kept as its own column, so that
  a reader can see *why* a commune ranks high:

  ================= =================================================================
  factor            multiplier ``m_k`` (1 = the territory's average)
  ================= =================================================================
  ``births``        1 (every birth counts)
  ``poverty``       poverty rate / the territory's mean rate; when the rate is under
                    statistical secret it is estimated (median income, else the mean
                    of the published rates: :func:`diagnosis.needs.impute_poverty_rate`)
                    and the commune's ``estimated_factors`` says so
  ``single_parent`` single-parent family share / the territory's mean share
  ``access``        access deficit (mean over facility types of min(minutes to the
                    nearest / max_minutes, 1)) / the territory's mean deficit
  ================= =================================================================

  Means are weighted by births; a multiplier is capped at :data:`MULTIPLIER_CAP`; a
  territory whose mean is 0 gives every commune 1.

  ``score = births × Σ w_k m_k / Σ w_k`` over the factors known for the commune, in
  *naissances pondérées par les besoins*: a commune whose factors are all at the
  territory's average scores its births. ``contrib_<k> = births × w_k m_k / Σ w_k``
  (they add up to the score). A factor that is unknown is left out and the others are
  re-weighted (listed in ``missing_factors``), never counted as 0; a commune whose
  births are unknown has no score (ranked last), never 0.

See Also
--------
guides/accessibilite.md : the method guide (in French).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.accessibility import AccessIndicators
from diagnosis.errors import InputError, check_positive
from diagnosis.needs import impute_poverty_rate
from diagnosis.schema import facility_label

#: Need columns read by the score (names from :data:`diagnosis.schema.NEEDS_COLUMNS`).
POVERTY_COL = "poverty_rate_2021"
INCOME_COL = "median_income_2021"
SINGLE_PARENT_COL = "single_parent_share_2022"

#: Factors of the priority score, in display order.
PRIORITY_FACTORS: tuple[str, ...] = ("births", "poverty", "single_parent", "access")

#: Default weights of the priority score (they are normalised to sum to 1). A convention
#: that gives the most weight to the number of families and to distance, to be discussed
#: with the partners of the project: change them with ``weights=``.
DEFAULT_PRIORITY_WEIGHTS: Mapping[str, float] = {
    "births": 0.35,
    "poverty": 0.20,
    "single_parent": 0.15,
    "access": 0.30,
}

#: Largest multiplier of a factor (times the territory's mean): a rate far above the
#: mean (a small commune's 40 % poverty rate) weighs at most three times the average.
MULTIPLIER_CAP = 3.0

#: What the priority columns hold (French), for every table that prints them.
SCORE_LABEL = "Score (naissances pondérées par les besoins)"
MULTIPLIER_LABELS: dict[str, str] = {
    "births": "Naissances 2024",
    "poverty": "Pauvreté (× moyenne du territoire)",
    "single_parent": "Familles monoparentales (× moyenne)",
    "access": "Éloignement des services (× moyenne)",
}

#: French labels of the factors.
FACTOR_LABELS: dict[str, str] = {
    "births": "Naissances",
    "poverty": "Pauvreté",
    "single_parent": "Familles monoparentales",
    "access": "Éloignement des services",
}

#: What the poverty factor was computed from, with its French label.
POVERTY_BASIS_LABELS: dict[str, str] = {
    "poverty_rate": "taux de pauvreté 2021",
    "median_income": "estimé d'après le revenu médian 2021 (taux sous secret statistique)",
    "territory_mean": "moyenne des communes publiées (taux et revenu sous secret)",
    "missing": "non disponible (facteur écarté, autres facteurs re-pondérés)",
}
#: What is estimated in a commune's factors (``estimated_factors``), in French.
ESTIMATED_LABELS: dict[str, str] = {
    "median_income": "pauvreté estimée d'après le revenu médian (taux sous secret)",
    "territory_mean": "pauvreté estimée à la moyenne du territoire (taux et revenu sous "
                      "secret)",
}
#: :func:`diagnosis.needs.impute_poverty_rate` source -> ``poverty_basis`` key.
_POVERTY_BASIS = {"published": "poverty_rate", "median_income": "median_income",
                  "territory_mean": "territory_mean", "missing": "missing"}


# --------------------------------------------------------------------------------------
# Small factories and normalisations
# --------------------------------------------------------------------------------------


def priority_weights(weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Complete ``weights`` with the defaults and normalise them to sum to 1.

    Examples
    --------
    >>> priority_weights()
    {'births': 0.35, 'poverty': 0.2, 'single_parent': 0.15, 'access': 0.3}
    >>> priority_weights({"births": 1, "poverty": 1, "single_parent": 0, "access": 2})
    {'births': 0.25, 'poverty': 0.25, 'single_parent': 0.0, 'access': 0.5}
    """
    merged = dict(DEFAULT_PRIORITY_WEIGHTS)
    if weights is not None:
        unknown = [k for k in weights if k not in PRIORITY_FACTORS]
        if unknown:
            raise InputError(f"weights has unknown factors {unknown!r}; use some of "
                             f"{list(PRIORITY_FACTORS)}")
        merged.update({k: float(v) for k, v in weights.items()})
    bad = {k: v for k, v in merged.items() if not np.isfinite(v) or v < 0}
    if bad:
        raise InputError(f"weights must be finite and >= 0; got {bad!r}")
    total = sum(merged.values())
    if total <= 0:
        raise InputError(f"weights={dict(weights or {})!r} sum to 0; give at least one "
                         "positive weight")
    return {k: merged[k] / total for k in PRIORITY_FACTORS}


def relative_to_mean(values: Any, births: Any, *, cap: float = MULTIPLIER_CAP) -> np.ndarray:
    """Values divided by their births-weighted mean, capped (NaN kept; mean 0 gives 1).

    Examples
    --------
    >>> relative_to_mean([10.0, 30.0, np.nan], [100.0, 100.0, 50.0]).tolist()
    [0.5, 1.5, nan]
    >>> relative_to_mean([0.0, 0.0], [10.0, 5.0]).tolist()
    [1.0, 1.0]
    >>> relative_to_mean([1.0, 40.0], [99.0, 1.0], cap=3.0).round(4).tolist()
    [0.7194, 3.0]
    """
    v = np.asarray(values, dtype=float)
    b = np.asarray(births, dtype=float)
    ok = ~np.isnan(v) & ~np.isnan(b) & (b > 0)
    mean = float((v[ok] * b[ok]).sum() / b[ok].sum()) if ok.any() else float("nan")
    if not np.isfinite(mean) or mean <= 0:
        return np.where(np.isnan(v), np.nan, 1.0)
    return np.minimum(v / mean, cap)


def access_deficit(minutes_nearest: Any, *, max_minutes: float) -> np.ndarray:
    """Distance to the nearest facility as a share of the threshold, capped at 1.

    Examples
    --------
    >>> access_deficit([0.0, 10.0, 30.0, np.inf], max_minutes=20).tolist()
    [0.0, 0.5, 1.0, 1.0]
    """
    top = check_positive(max_minutes, "max_minutes")
    t = np.asarray(minutes_nearest, dtype=float)
    if np.isnan(t).any():
        raise InputError("minutes_nearest holds NaN; use np.inf for unreachable communes")
    return np.clip(t / top, 0.0, 1.0)


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GapsResult:
    """Zones blanches and priority ranking of a territory.

    Attributes
    ----------
    layers
        ``"white_zones"``: one row per (commune, type) out of reach: ``code_insee``,
        ``name``, ``type``, ``type_label``, ``minutes_nearest``, ``births`` (plus
        ``geometry`` when the communes had one).
        ``"priority"``: one row per commune, best-ranked first: the need columns, the
        per-type ``deficit_<type>`` and their mean ``access_deficit``, the multipliers
        ``factor_<k>`` (1 = the territory's average), the weighted ``contrib_<k>`` (they
        add up to ``score``, in births weighted by needs), ``poverty_basis``,
        ``estimated_factors`` (French, empty when nothing is estimated),
        ``missing_factors`` and ``rank`` (1 = highest priority).
    summary
        One row per type: communes and births in the zone blanche, share of births.
    params
        ``max_minutes``, ``weights`` (normalised), ``facility_types``, missing columns.
    """

    layers: Mapping[str, pd.DataFrame]
    summary: pd.DataFrame
    params: Mapping[str, Any] = field(default_factory=dict)


def find_white_zones(
    access: AccessIndicators,
    *,
    max_minutes: float | None = None,
    facility_types: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Communes and births beyond ``max_minutes`` of any facility of each type.

    Parameters
    ----------
    access
        Result of :func:`~diagnosis.accessibility.compute_access_indicators`.
    max_minutes
        Threshold; default the one of ``access``.
    facility_types
        Types to examine; default those of ``access``.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The long table of communes out of reach (one row per commune and type) and the
        per-type summary (``n_communes``, ``n_communes_white``, ``births_white``,
        ``births_total``, ``share_births_white``, ``n_white_births_missing``).
    """
    top = check_positive(access.params["max_minutes"] if max_minutes is None else max_minutes,
                    "max_minutes")
    types = _access_types(access, facility_types)
    table = access.table
    births = table["births"].to_numpy(dtype=float)
    known = ~np.isnan(births)
    parts, rows = [], []
    for ftype in types:
        minutes = table[f"minutes_nearest_{ftype}"].to_numpy(dtype=float)
        white = minutes > top
        part = pd.DataFrame({
            "code_insee": table["code_insee"].to_numpy()[white],
            "name": (table["name"].to_numpy()[white] if "name" in table
                     else np.full(int(white.sum()), "", dtype=object)),
            "type": ftype,
            "type_label": facility_label(ftype, plural=True),
            "minutes_nearest": minutes[white],
            "births": births[white],
        })
        parts.append(part)
        total = float(births[known].sum())
        out = float(births[known & white].sum())
        rows.append({
            "type": ftype,
            "label": facility_label(ftype, plural=True),
            "n_communes": int(len(table)),
            "n_communes_white": int(white.sum()),
            "births_white": out,
            "births_total": total,
            "share_births_white": out / total if total > 0 else float("nan"),
            "n_white_births_missing": int((white & ~known).sum()),
        })
    white_zones = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["code_insee", "name", "type", "type_label", "minutes_nearest", "births"])
    return white_zones, pd.DataFrame(rows)


def compute_priority(
    communes: pd.DataFrame,
    access: AccessIndicators,
    *,
    weights: Mapping[str, float] | None = None,
    max_minutes: float | None = None,
    facility_types: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Priority score of every commune of ``access`` (see the module docstring).

    Parameters
    ----------
    communes
        Need columns keyed by ``code_insee`` (``poverty_rate_2021``,
        ``median_income_2021``, ``single_parent_share_2022``); absent columns count as
        unknown for every commune and are reported.
    access
        Result of :func:`~diagnosis.accessibility.compute_access_indicators` (gives the
        births and the minutes to the nearest facility).
    weights
        Factor weights; missing keys take :data:`DEFAULT_PRIORITY_WEIGHTS`; normalised.
    max_minutes
        Threshold of the access deficit; default the one of ``access``.
    facility_types
        Types in the access deficit; default those of ``access``.

    Returns
    -------
    (pandas.DataFrame, list of str)
        The priority table (highest priority first) and the need columns that were
        absent from ``communes``.
    """
    w = priority_weights(weights)
    top = check_positive(access.params["max_minutes"] if max_minutes is None else max_minutes,
                    "max_minutes")
    types = _access_types(access, facility_types)
    if "code_insee" not in communes.columns:
        raise InputError(f"communes lacks column 'code_insee'; found {list(communes.columns)}")
    codes = communes["code_insee"].astype(str)
    if codes.duplicated().any():
        dup = codes[codes.duplicated()].head(5).tolist()
        raise InputError(f"communes has duplicate code_insee values {dup!r}; keep one row each")
    missing_cols = [c for c in (POVERTY_COL, INCOME_COL, SINGLE_PARENT_COL)
                    if c not in communes.columns]
    needs = pd.DataFrame({"code_insee": codes.to_numpy()})
    for col in (POVERTY_COL, INCOME_COL, SINGLE_PARENT_COL):
        needs[col] = (pd.to_numeric(communes[col], errors="coerce").to_numpy(dtype=float)
                      if col in communes.columns else np.nan)
    base = access.table[["code_insee"] + (["name"] if "name" in access.table else [])
                        + ["births"]].copy()
    base["code_insee"] = base["code_insee"].astype(str)
    out = base.merge(needs, on="code_insee", how="left", validate="one_to_one")

    # Factors: multipliers of the births, 1 = the territory's (births-weighted) average.
    births = out["births"].to_numpy(dtype=float)
    factors: dict[str, np.ndarray] = {"births": np.where(np.isnan(births), np.nan, 1.0)}
    # the poverty rate imputed as for siting (one method: diagnosis.needs)
    pop = (pd.to_numeric(communes["population_2022"], errors="coerce").set_axis(codes)
           .reindex(out["code_insee"]).to_numpy(dtype=float)
           if "population_2022" in communes.columns else np.full(len(out), np.nan))
    used, basis = impute_poverty_rate(out[POVERTY_COL], out[INCOME_COL],
                                      pd.Series(pop, index=out.index))
    factors["poverty"] = relative_to_mean(used.to_numpy(dtype=float), births)
    # the new columns gathered here and joined once (each insert into a frame costs ~1 ms)
    extra: dict[str, Any] = {"poverty_rate_used": used.to_numpy(dtype=float),
                             "poverty_basis": basis.map(_POVERTY_BASIS).to_numpy()}
    factors["single_parent"] = relative_to_mean(out[SINGLE_PARENT_COL], births)
    deficits = []
    for ftype in types:
        d = access_deficit(access.table[f"minutes_nearest_{ftype}"], max_minutes=top)
        extra[f"deficit_{ftype}"] = d
        deficits.append(d)
    extra["access_deficit"] = (np.mean(deficits, axis=0) if deficits
                               else np.full(len(out), np.nan))
    factors["access"] = relative_to_mean(extra["access_deficit"], births)

    # Weighted contributions over the factors known for each commune, in weighted births.
    f = np.column_stack([factors[k] for k in PRIORITY_FACTORS])
    wv = np.array([w[k] for k in PRIORITY_FACTORS])
    known = ~np.isnan(f)
    denom = (known * wv).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        contrib = np.where(known, births[:, None] * f * wv / denom[:, None], np.nan)
    for i, k in enumerate(PRIORITY_FACTORS):
        extra[f"factor_{k}"] = f[:, i]
    for i, k in enumerate(PRIORITY_FACTORS):
        extra[f"contrib_{k}"] = contrib[:, i]
    extra["missing_factors"] = [",".join(k for k, ok in zip(PRIORITY_FACTORS, row, strict=True)
                                         if not ok) for row in known]
    extra["estimated_factors"] = [ESTIMATED_LABELS.get(str(b), "")
                                  for b in extra["poverty_basis"]]
    has_score = (denom > 0) & ~np.isnan(births)
    score = pd.Series(np.where(has_score, np.nansum(contrib, axis=1), np.nan), index=out.index)
    extra["score"] = score
    extra["rank"] = score.rank(ascending=False, method="min").astype("Int64")
    out = pd.concat([out, pd.DataFrame(extra, index=out.index)], axis=1)
    out = out.sort_values(["score", "births", "code_insee"], ascending=[False, False, True],
                          na_position="last", kind="stable").reset_index(drop=True)
    return out, missing_cols


def compute_gaps(
    communes: pd.DataFrame,
    access: AccessIndicators,
    *,
    weights: Mapping[str, float] | None = None,
    max_minutes: float | None = None,
    facility_types: Sequence[str] | None = None,
) -> GapsResult:
    """Zones blanches per type and priority ranking of the communes.

    Parameters
    ----------
    communes
        Communes with the need columns (and, if a GeoDataFrame, their geometry, which
        is carried into both layers for maps).
    access
        Result of :func:`~diagnosis.accessibility.compute_access_indicators`.
    weights, max_minutes, facility_types
        See :func:`compute_priority`.

    Returns
    -------
    GapsResult
    """
    white, summary = find_white_zones(access, max_minutes=max_minutes,
                                      facility_types=facility_types)
    priority, missing_cols = compute_priority(communes, access, weights=weights,
                                              max_minutes=max_minutes,
                                              facility_types=facility_types)
    layers: dict[str, pd.DataFrame] = {"white_zones": white, "priority": priority}
    if isinstance(communes, gpd.GeoDataFrame):
        geo = communes[["code_insee", communes.geometry.name]].copy()
        geo["code_insee"] = geo["code_insee"].astype(str)
        for key, layer in list(layers.items()):
            merged = layer.merge(geo, on="code_insee", how="left")
            layers[key] = gpd.GeoDataFrame(merged, geometry=communes.geometry.name,
                                           crs=communes.crs)
    top = access.params["max_minutes"] if max_minutes is None else float(max_minutes)
    return GapsResult(
        layers=layers,
        summary=summary,
        params={
            "max_minutes": top,
            "weights": priority_weights(weights),
            "facility_types": tuple(_access_types(access, facility_types)),
            "missing_need_columns": tuple(missing_cols),
            "births_col": access.params.get("births_col", ""),
        },
    )


def _access_types(access: AccessIndicators, facility_types: Sequence[str] | None) -> list[str]:
    types = list(access.params["facility_types"] if facility_types is None else facility_types)
    missing = [t for t in types if f"minutes_nearest_{t}" not in access.table.columns]
    if missing:
        raise InputError(f"facility_types {missing!r} are not in the accessibility table; "
                         f"available: {list(access.params['facility_types'])}")
    return types


