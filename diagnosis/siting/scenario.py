"""One siting scenario on a GeoDataFrame front: solved, laid out and explained.

Part of :mod:`diagnosis.siting` (see its docstring for the models).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse

from diagnosis.errors import InputError
from diagnosis.schema import FACILITY_TYPES
from diagnosis.siting._common import (
    DEFAULT_TIME_LIMIT_S,
    EXISTING_TYPE,
    HOST_TYPES,
    OBJECTIVES,
    STATUS_LABELS,
    USER_SITE_TYPE,
    SolverResult,
    _as_coverage,
    _check_k_fixed,
    _check_method,
)
from diagnosis.siting.covering import _covering_swap_deltas, solve_max_covering
from diagnosis.siting.explain import _explain, _fr, _type_label
from diagnosis.siting.p_median import _p_median_penalty, _p_median_swap_costs, solve_p_median


#: Facility types that can host a Maison (the default candidate pool).
# --------------------------------------------------------------------------------------
# Front: one scenario, explained
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SitingResult:
    """A siting scenario: recommended sites, explained, and the demand they serve.

    Attributes
    ----------
    layers
        ``"sites"``: GeoDataFrame (EPSG:4326) of the recommended sites (``status =
        "recommandé"``) then the existing ones (``"existant"``), with the explanation
        columns (see :func:`find_host_sites`); ``"demand"``: the demand table with
        ``weight_used``, ``covered_before``, ``covered_after``, ``site_id``,
        ``site_name`` and ``minutes_to_site`` (NaN when no open site is reachable).
    summary
        Totals and the solver outcome: ``status``, ``status_label``, ``message`` (French),
        ``method``, ``gap``, ``runtime_s``, ``births_total``, ``births_covered_before``,
        ``births_covered_after``, ``births_newly_covered``, ``share_covered_before``,
        ``share_covered_after`` (%), ``need_total``, ``need_covered_after``,
        ``objective``, ``n_selected``, ``site_names``.
    params
        The parameters of the scenario (``label``, ``k``, ``max_minutes``, columns,
        ``fixed_ids``, ``host_types``, ``method``, ``objective``, ``time_limit_s``).
    solution
        The core :class:`SolverResult` (indices refer to the candidate pool, i.e. the rows
        of ``layers["sites"]`` are not in that order), or None when there was nothing to
        solve (``status = "no_demand"``).
    """

    layers: dict[str, gpd.GeoDataFrame]
    summary: dict[str, Any]
    params: dict[str, Any]
    solution: SolverResult | None = field(default=None, compare=False)

    @property
    def sites(self) -> gpd.GeoDataFrame:
        """The sites layer."""
        return self.layers["sites"]

    @property
    def demand(self) -> gpd.GeoDataFrame:
        """The demand layer."""
        return self.layers["demand"]


def find_host_sites(
    demand: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    travel_minutes: Any,
    *,
    k: int,
    max_minutes: float,
    weight_col: str = "need_weight",
    births_col: str | None = None,
    demand_id_col: str = "code_insee",
    fixed_ids: Sequence[str] | None = None,
    host_types: Sequence[str] | None = None,
    already_covered: Any = None,
    objective: str = "max_covering",
    method: str = "auto",
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    label: str | None = None,
) -> SitingResult:
    """Recommend ``k`` host sites for new Maisons and explain each choice.

    Parameters
    ----------
    demand
        One row per demand point (commune or IRIS) with ``weight_col`` and births.
    candidates
        Candidate sites, e.g. from :func:`build_candidates` (``facility_id``, ``type``,
        ``name``, geometry).
    travel_minutes
        Minutes from each demand point (rows) to each candidate (columns), ``np.inf`` when
        unreachable: a numpy array in the row orders of ``demand`` and ``candidates``, a
        :class:`diagnosis.travel.TravelTimes`, or a DataFrame indexed by
        ``demand[demand_id_col]`` with ``candidates["facility_id"]`` as columns.
    k
        Number of new sites to recommend (>= 1).
    max_minutes
        Service standard: a demand point is covered within this travel time.
    weight_col
        Need weight of each demand point (:func:`compute_need_weights`), >= 0.
    births_col
        Births per year for the explanations; default ``births_used`` if present, else
        ``births_2024``.
    demand_id_col
        Identifier of demand points (for DataFrame matrices and the outputs).
    fixed_ids
        ``facility_id`` of sites already open (existing Maisons), kept open and not counted
        in ``k``. Default: every candidate of type ``maison_1000_jours``.
    host_types
        Candidate types allowed to host (default :data:`HOST_TYPES`); user points
        (``type = "user_site"``) are always allowed.
    already_covered
        Boolean per demand point: already served by the existing offer. Sites are credited
        with "newly covered" births only outside it and outside the reach of fixed sites.
        Default: the reach of the fixed sites only.
    objective
        ``"max_covering"`` (most need within ``max_minutes``) or ``"p_median"`` (least
        need-weighted travel time).
    method
        ``"exact"``, ``"greedy"`` or ``"auto"`` (see :func:`solve_max_covering`).
    time_limit_s
        Time limit of the exact solver.
    label
        Scenario name for :func:`compare_scenarios` (default ``"k sites, T min"``).

    Returns
    -------
    SitingResult
        Sites layer columns: ``facility_id``, ``name``, ``type``, ``type_label``,
        ``address``, ``code_insee``, ``status``, ``rank``, ``births_covered`` (births
        within ``max_minutes``), ``births_new`` (of which outside the existing offer),
        ``need_covered``, ``need_exclusive`` (need covered by this site only: lost if it
        were dropped), ``single_parent_families`` and ``births_poverty`` (births x poverty
        rate; NaN when the columns are absent), ``runner_up_id``, ``runner_up_name``,
        ``advantage`` (covering: need covered lost by swapping the site for its best
        replacement; p-median: weighted minutes gained), ``births_marginal`` and
        ``need_marginal`` (births and need within ``max_minutes`` the site adds to the
        sites ranked before it: ranks follow these marginal gains), ``explanation``
        (French). A covering site that adds nothing has status
        :data:`NO_GAIN_STATUS` (« sans apport »): it is listed, not recommended, and the
        summary's message says so and suggests a shorter time or walking.

    Raises
    ------
    InputError
        ``k < 1`` or larger than the candidates, no candidate of the chosen types, a
        misaligned matrix, missing or negative weights, bad ``max_minutes``.

    Notes
    -----
    When no birth lies within ``max_minutes`` of a candidate outside the reach of the
    fixed sites, nothing is solved: the result has ``summary["status"] == "no_demand"``,
    no recommended site and a French message saying why.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> from diagnosis.settings import WGS84
    >>> dem = gpd.GeoDataFrame({"code_insee": ["44001", "44002", "44003"],
    ...     "births_2024": [30.0, 20.0, 5.0], "need_weight": [40.0, 25.0, 6.0]},
    ...     geometry=[Point(-2.0, 47.0), Point(-2.1, 47.0), Point(-2.2, 47.0)], crs=WGS84)
    >>> cand = gpd.GeoDataFrame({"facility_id": ["pmi:1", "mairie:2"],
    ...     "type": ["pmi", "mairie"], "name": ["PMI A", "Mairie B"]},
    ...     geometry=[Point(-2.0, 47.0), Point(-2.2, 47.0)], crs=WGS84)
    >>> minutes = np.array([[5.0, 25.0], [12.0, 14.0], [30.0, 4.0]])
    >>> r = find_host_sites(dem, cand, minutes, k=1, max_minutes=15)
    >>> r.sites["name"].tolist(), r.summary["births_covered_after"]
    (['PMI A'], 50.0)

    See Also
    --------
    compute_need_weights, build_candidates, compare_scenarios
    guides/implantation.md : how to read the explanations.
    """
    births_col, w, births = _check_inputs(
        demand, candidates, objective=objective, method=method, max_minutes=max_minutes,
        weight_col=weight_col, births_col=births_col, demand_id_col=demand_id_col)
    within: Any = getattr(travel_minutes, "within", None)
    sparse_path = (objective == "max_covering" and sparse.issparse(within)
                   and not isinstance(travel_minutes, pd.DataFrame))
    if sparse_path and within.shape != (len(demand), len(candidates)):
        raise InputError(f"travel_minutes has shape {within.shape!r} but demand x candidates "
                         f"is {(len(demand), len(candidates))!r}; compute it for these rows, "
                         "in this order")
    minutes = None if sparse_path else _align_minutes(travel_minutes, demand, candidates,
                                                      demand_id_col)

    fixed_set, allowed, is_fixed, pool = _candidate_pool(candidates, fixed_ids=fixed_ids,
                                                         host_types=host_types)
    fixed_local = np.flatnonzero(is_fixed[pool])
    k_checked, _ = _check_k_fixed(k, fixed_local, pool.size)
    d: Any
    if minutes is None:  # sparse all the way: only the pairs within reach are held
        assert within is not None
        d = _SparseMinutes(sparse.csc_matrix(within)[:, pool])
        cov = d.coverage(max_minutes)
    else:
        d = minutes[:, pool]
        cov = sparse.csc_matrix(d <= max_minutes)
    fixed_cov = np.asarray(cov[:, fixed_local].sum(axis=1)).ravel() > 0 if fixed_local.size \
        else np.zeros(len(demand), dtype=bool)
    before = fixed_cov.copy()
    if already_covered is not None:
        ac = np.asarray(already_covered, dtype=bool).ravel()
        if ac.shape != (len(demand),):
            raise InputError(f"already_covered has {ac.size} values for {len(demand)} "
                             "demand rows; give one boolean per demand row")
        before |= ac
    params: dict[str, Any] = {
        "label": label or f"{k_checked} site{'s' if k_checked > 1 else ''}, "
                          f"{_fr(max_minutes)} min",
        "k": k_checked, "max_minutes": float(max_minutes), "weight_col": weight_col,
        "births_col": births_col, "demand_id_col": demand_id_col,
        "fixed_ids": sorted(fixed_set), "host_types": allowed, "method": method,
        "objective": objective, "time_limit_s": float(time_limit_s),
        "n_demand": int(len(demand)), "n_candidates": int(pool.size - fixed_local.size),
    }
    free_local = np.setdiff1d(np.arange(pool.size), fixed_local)
    free_cov = np.asarray(cov[:, free_local].sum(axis=1)).ravel() > 0
    reachable_need = float(w[free_cov & ~fixed_cov].sum())
    if objective == "max_covering" and reachable_need <= 0 or \
            objective == "p_median" and float(w.sum()) <= 0:
        return _no_demand_result(demand, candidates, pool, fixed_local, d, births, w, before,
                                 fixed_cov, free_cov, params)
    if objective == "max_covering":
        sol = solve_max_covering(cov, w, k_checked, fixed=fixed_local, method=method,
                                 time_limit_s=time_limit_s)
    else:
        sol = solve_p_median(d, w, k_checked, fixed=fixed_local, method=method,
                             time_limit_s=time_limit_s)
    return _explained_result(demand, candidates, pool, d, cov, births, w, before, sol, params)


def _check_inputs(
    demand: gpd.GeoDataFrame, candidates: gpd.GeoDataFrame, *, objective: str, method: str,
    max_minutes: float, weight_col: str, births_col: str | None, demand_id_col: str,
) -> tuple[str, np.ndarray, np.ndarray]:
    """Check the inputs of :func:`find_host_sites`; return the births column, weights, births.

    Births not known count 0 in the explanations; weights must be finite and >= 0.
    """
    if objective not in OBJECTIVES:
        raise InputError(f"objective={objective!r} is not an objective; use one of "
                         f"{list(OBJECTIVES)}")
    _check_method(method)
    if isinstance(max_minutes, bool) or not isinstance(
            max_minutes, (int, float, np.integer, np.floating)) or not (
            math.isfinite(max_minutes) and max_minutes > 0):
        raise InputError(f"max_minutes={max_minutes!r} must be a number of minutes > 0")
    if not isinstance(demand, gpd.GeoDataFrame) or not isinstance(candidates, gpd.GeoDataFrame):
        raise InputError("demand and candidates must be GeoDataFrames")
    if len(demand) == 0:
        raise InputError("demand is empty; give at least one commune")
    if births_col is None:
        births_col = "births_used" if "births_used" in demand.columns else "births_2024"
    for col in (weight_col, births_col):
        if col not in demand.columns:
            raise InputError(
                f"demand lacks column {col!r}; found {list(demand.columns)}. Compute need "
                "weights with compute_need_weights or name the columns"
            )
    w = pd.to_numeric(demand[weight_col], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise InputError(
            f"demand[{weight_col!r}] must be finite and >= 0; rows "
            f"{_ids(demand, demand_id_col, bad)} hold {w[bad][:5].tolist()!r}"
        )
    births = pd.to_numeric(demand[births_col], errors="coerce").fillna(0.0).to_numpy(float)
    for col in ("facility_id", "type", "name"):
        if col not in candidates.columns:
            raise InputError(f"candidates lacks column {col!r}; build them with "
                             "build_candidates")
    return births_col, w, births


def _candidate_pool(
    candidates: gpd.GeoDataFrame, *, fixed_ids: Sequence[str] | None,
    host_types: Sequence[str] | None,
) -> tuple[set[str], list[str], np.ndarray, np.ndarray]:
    """The fixed sites, the allowed types, the fixed mask and the candidates of the solve.

    Fixed sites (default: the existing Maisons) and candidates of an allowed host type
    or a user point form the pool.
    """
    ids = candidates["facility_id"].astype(str).to_numpy()
    types = candidates["type"].astype(str).to_numpy()
    if fixed_ids is None:
        fixed_set = set(ids[types == EXISTING_TYPE])
    else:
        fixed_set = {str(i) for i in fixed_ids}
        unknown = sorted(fixed_set - set(ids))
        if unknown:
            raise InputError(f"fixed_ids {unknown!r} are not facility_id values of candidates")
    allowed = list(HOST_TYPES if host_types is None else host_types)
    bad_types = [t for t in allowed if t not in FACILITY_TYPES]
    if bad_types:
        raise InputError(f"host_types holds unknown types {bad_types!r}; use some of "
                         f"{list(HOST_TYPES)}")
    is_fixed = np.isin(ids, list(fixed_set))
    pool_mask = is_fixed | np.isin(types, allowed + [USER_SITE_TYPE])
    if not (pool_mask & ~is_fixed).any():
        raise InputError(
            f"no candidate site of the chosen types: host_types={allowed!r}, candidate "
            f"types found: {sorted(set(types))}; widen host_types or add user points"
        )
    pool = np.flatnonzero(pool_mask)
    return fixed_set, allowed, is_fixed, pool


def _runner_ups(a: sparse.csc_matrix, d: Any, w: np.ndarray, sel: np.ndarray,
                fixed: np.ndarray, open_local: np.ndarray, *,
                problem: str) -> tuple[np.ndarray, np.ndarray]:
    """Best single replacement of each new site (others kept) and what swapping it costs.

    Covering: need covered lost; p-median: weighted minutes gained. Differences below
    the rounding noise of the sums are ties (0).
    """
    if problem == "max_covering":
        delta = _covering_swap_deltas(a, w, sel, fixed) if sel.size else np.zeros((0, 0))
        best_c = np.argmax(delta, axis=1) if delta.size else np.zeros(0, dtype=np.int64)
        adv = -delta[np.arange(sel.size), best_c] if delta.size else np.zeros(0)
    else:
        rows = np.flatnonzero(w > 0)
        pen = _p_median_penalty(d)
        dc = np.minimum(d[rows], pen)
        costs = _p_median_swap_costs(dc, w[rows], sel, fixed, pen)
        cur = float(w[rows] @ np.minimum(dc[:, open_local].min(axis=1), pen))
        best_c = np.argmin(costs, axis=1)
        adv = costs[np.arange(sel.size), best_c] - cur
    return best_c, np.where(np.abs(adv) <= 1e-9 * max(float(np.abs(w).sum()), 1.0), 0.0, adv)


def _message(summary: Mapping[str, Any], sol: SolverResult, *, status_label: str,
             n_useful: int, n_without_gain: int, max_minutes: float,
             marginal_births: Sequence[float]) -> str:
    """The French message of a solved scenario: what it covers, each site's gain, caveats."""
    t, newly = max_minutes, summary["births_newly_covered"]
    message = (
        f"{n_useful} site(s) recommandé(s) ({status_label}) : "
        f"{_fr(summary['births_covered_after'])} naissances par an à moins de {_fr(t)} min "
        f"d'une Maison ({_fr(summary['share_covered_after'], 1)} %), dont {_fr(newly)} "
        "nouvellement couvertes."
    )
    if len(marginal_births) > 1:
        message += " Apport de chaque site, dans l'ordre : " + ", ".join(
            f"+{_fr(b)}" for b in marginal_births) + " naissances à portée."
    if n_without_gain:
        message += (
            f" {n_without_gain} site(s) de plus n'ajouteraient aucune naissance à "
            f"{_fr(t)} min ou moins : {n_useful} site(s) suffisent à ce seuil, les autres ne "
            "sont pas recommandés. Pour départager des sites proches, essayez un temps plus "
            "court (ou, en voiture dans un territoire dense, la marche : 15 min à pied).")
    if sol.status in ("time_limit", "stopped"):
        message += (f" Le solveur s'est arrêté avant de prouver l'optimum : la solution est "
                    f"au plus à {_fr(100 * sol.gap, 2)} % de l'optimum.")
    return message


def _ids(df: pd.DataFrame, id_col: str, mask: np.ndarray) -> list[str]:
    if id_col in df.columns:
        return [str(v) for v in df.loc[mask, id_col].head(5)]
    return [str(v) for v in df.index[mask][:5]]


class _SparseMinutes:
    """Travel minutes held as the sparse pairs within reach (absent pair: unreachable).

    Enough of a matrix for maximal covering: the coverage matrix, and dense blocks of the
    few columns of the open sites (``d[:, cols]``) for the explanations.
    """

    def __init__(self, within: sparse.csc_matrix) -> None:
        self.within = within
        self.shape = within.shape

    def coverage(self, max_minutes: float) -> sparse.csc_matrix:
        """Boolean coverage: the stored pairs at ``max_minutes`` or less (zeros included)."""
        cov = self.within.copy()
        cov.data = cov.data <= max_minutes
        cov.eliminate_zeros()
        return sparse.csc_matrix(cov, dtype=bool)

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, cols = key
        block = self.within[:, cols]
        dense = np.full(block.shape, np.inf)
        coo = block.tocoo()
        dense[coo.row, coo.col] = coo.data  # explicit zeros are real 0-minute pairs
        return cast("np.ndarray", dense[rows])


def _align_minutes(travel_minutes: Any, demand: pd.DataFrame, candidates: pd.DataFrame,
                   demand_id_col: str) -> np.ndarray:
    shape = (len(demand), len(candidates))
    if isinstance(travel_minutes, pd.DataFrame):
        rows = demand[demand_id_col].astype(str) if demand_id_col in demand.columns \
            else demand.index
        cols = candidates["facility_id"].astype(str)
        tm = travel_minutes.copy()
        tm.index = tm.index.astype(str)
        tm.columns = tm.columns.astype(str)
        missing_r = sorted(set(rows) - set(tm.index))[:5]
        missing_c = sorted(set(cols) - set(tm.columns))[:5]
        if missing_r or missing_c:
            raise InputError(
                f"travel_minutes lacks demand rows {missing_r!r} / candidate columns "
                f"{missing_c!r}; compute travel times for every demand point and candidate"
            )
        arr = tm.loc[list(rows), list(cols)].to_numpy(dtype=np.float64)
    else:
        raw = getattr(travel_minutes, "minutes", travel_minutes)
        try:
            arr = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(
                f"travel_minutes must be a matrix of minutes; got {type(raw).__name__}"
            ) from None
        if arr.shape != shape:
            raise InputError(
                f"travel_minutes has shape {arr.shape!r} but demand x candidates is "
                f"{shape!r}; compute it for these rows, in this order"
            )
    arr = np.where(np.isnan(arr), np.inf, arr)
    if (arr < 0).any():
        raise InputError("travel_minutes holds negative times; check the travel-time matrix")
    return arr


#: Status of a site the solver opened but that adds no need within T (not recommended).
NO_GAIN_STATUS = "sans apport"


def _marginal_gains(a: sparse.csc_matrix, w: np.ndarray, births: np.ndarray,
                    sel: np.ndarray, fixed: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order the selected sites by marginal gain, each given those before it.

    Starting from the reach of the fixed sites, the site adding the most need within T
    comes first, then the one adding the most to both, and so on (ties: pool order).

    Returns
    -------
    order, need_gain, births_gain
        Per selected site (in ``sel`` order): its position (0 first), the need and the
        births it adds to the sites before it.
    """
    covered = (np.asarray(a[:, fixed].sum(axis=1)).ravel() > 0 if len(fixed)
               else np.zeros(a.shape[0], dtype=bool))
    cols = [np.asarray(a[:, int(j)].toarray()).ravel() > 0 for j in sel]
    order = np.zeros(len(sel), dtype=np.int64)
    need_gain = np.zeros(len(sel))
    births_gain = np.zeros(len(sel))
    left = list(range(len(sel)))
    for pos in range(len(sel)):
        gains = [float(w[cols[i] & ~covered].sum()) for i in left]
        best = left[int(np.argmax(gains))]
        order[best] = pos
        need_gain[best] = float(w[cols[best] & ~covered].sum())
        births_gain[best] = float(births[cols[best] & ~covered].sum())
        covered |= cols[best]
        left.remove(best)
    return order, need_gain, births_gain


def _optional_sum(demand: pd.DataFrame, col: str, mask: np.ndarray) -> float:
    if col not in demand.columns:
        return math.nan
    vals = pd.to_numeric(demand[col], errors="coerce").to_numpy(dtype=np.float64)[mask]
    if not np.isfinite(vals).any():
        return math.nan  # unknown, not 0
    return float(np.nansum(vals))


def _poverty_births(demand: pd.DataFrame, births: np.ndarray) -> np.ndarray | None:
    for col in ("poverty_rate_used", "poverty_rate_2021"):
        if col in demand.columns:
            rate = pd.to_numeric(demand[col], errors="coerce").to_numpy(dtype=np.float64)
            return cast("np.ndarray | None", births * rate / 100.0)
    return None


def _demand_layer(demand: gpd.GeoDataFrame, candidates: gpd.GeoDataFrame, pool: np.ndarray,
                  d: np.ndarray, open_local: np.ndarray, w: np.ndarray, before: np.ndarray,
                  max_minutes: float) -> gpd.GeoDataFrame:
    out = demand.copy()
    out["weight_used"] = w
    out["covered_before"] = before
    if open_local.size:
        sub = d[:, open_local]
        best = sub.min(axis=1)
        arg = open_local[np.argmin(sub, axis=1)]
        reach = np.isfinite(best)
        cand_rows = pool[arg]
        out["site_id"] = np.where(reach, candidates["facility_id"].astype(str).to_numpy()[
            cand_rows], "")
        out["site_name"] = np.where(reach, candidates["name"].astype(str).to_numpy()[
            cand_rows], "")
        out["minutes_to_site"] = np.where(reach, best, np.nan)
        out["covered_after"] = before | (best <= max_minutes)
    else:
        out["site_id"] = ""
        out["site_name"] = ""
        out["minutes_to_site"] = np.nan
        out["covered_after"] = before
    return out


def _site_rows(candidates: gpd.GeoDataFrame, rows: np.ndarray, status: str) -> pd.DataFrame:
    sub = candidates.iloc[rows]
    data = pd.DataFrame({
        "facility_id": sub["facility_id"].astype(str).to_numpy(),
        "name": sub["name"].astype(str).to_numpy(),
        "type": sub["type"].astype(str).to_numpy(),
        "type_label": [_type_label(t) for t in sub["type"].astype(str)],
        "address": (sub["address"].astype(str).to_numpy() if "address" in sub else ""),
        "code_insee": (sub["code_insee"].astype(str).to_numpy() if "code_insee" in sub
                       else ""),
        "status": status,
    })
    data["geometry"] = sub.geometry.to_numpy()
    return data


def _summary(demand_layer: pd.DataFrame, births: np.ndarray, w: np.ndarray,
             sites: pd.DataFrame) -> dict[str, Any]:
    before = demand_layer["covered_before"].to_numpy(dtype=bool)
    after = demand_layer["covered_after"].to_numpy(dtype=bool)
    total = float(births.sum())
    rec = sites[sites["status"] == "recommandé"]
    return {
        "births_total": total,
        "births_covered_before": float(births[before].sum()),
        "births_covered_after": float(births[after].sum()),
        "births_newly_covered": float(births[after & ~before].sum()),
        "share_covered_before": 100.0 * float(births[before].sum()) / total if total else
        math.nan,
        "share_covered_after": 100.0 * float(births[after].sum()) / total if total else
        math.nan,
        "need_total": float(w.sum()),
        "need_covered_after": float(w[after].sum()),
        "n_selected": int(len(rec)),
        "site_names": rec["name"].tolist(),
    }


def _to_sites_gdf(frames: list[pd.DataFrame], crs: Any) -> gpd.GeoDataFrame:
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["facility_id", "geometry"])
    return gpd.GeoDataFrame(df, geometry="geometry", crs=crs)


def _no_demand_result(demand: gpd.GeoDataFrame, candidates: gpd.GeoDataFrame,
                      pool: np.ndarray, fixed_local: np.ndarray, d: np.ndarray,
                      births: np.ndarray, w: np.ndarray, before: np.ndarray,
                      fixed_cov: np.ndarray, free_cov: np.ndarray,
                      params: dict[str, Any]) -> SitingResult:
    t = _fr(params["max_minutes"])
    if (w[free_cov] > 0).any():
        message = (
            f"Toutes les naissances à moins de {t} min des sites candidats sont déjà à "
            f"moins de {t} min d'une Maison existante : aucun nouveau site n'est recommandé."
        )
    else:
        message = (
            f"Aucune naissance (besoin pondéré nul) à moins de {t} min des sites candidats : "
            "aucun site n'est recommandé. Élargissez le temps de trajet, ajoutez des sites "
            "candidats ou vérifiez les naissances des communes."
        )
    fixed_rows = _site_rows(candidates, pool[fixed_local], "existant")
    sites = _to_sites_gdf([fixed_rows], candidates.crs)
    dem = _demand_layer(demand, candidates, pool, d, fixed_local, w, before,
                        params["max_minutes"])
    summary = _summary(dem, births, w, sites)
    summary.update({"status": "no_demand", "status_label": STATUS_LABELS["no_demand"],
                    "message": message, "method": "", "gap": math.nan, "runtime_s": 0.0,
                    "objective": math.nan})
    return SitingResult(layers={"sites": sites, "demand": dem}, summary=summary,
                        params=params, solution=None)


def _explained_result(demand: gpd.GeoDataFrame, candidates: gpd.GeoDataFrame, pool: np.ndarray,
                      d: np.ndarray, cov: sparse.csc_matrix, births: np.ndarray,
                      w: np.ndarray, before: np.ndarray, sol: SolverResult,
                      params: dict[str, Any]) -> SitingResult:
    a = _as_coverage(cov)
    sel, fixed = np.asarray(sol.selected), np.asarray(sol.fixed)
    open_local = np.union1d(sel, fixed).astype(np.int64)
    count = np.asarray(a[:, open_local].sum(axis=1)).ravel()
    pov = _poverty_births(demand, births)
    names = candidates["name"].astype(str).to_numpy()[pool]
    ids = candidates["facility_id"].astype(str).to_numpy()[pool]
    best_c, adv = _runner_ups(a, d, w, sel, fixed, open_local, problem=sol.problem)
    order, need_gain, births_gain = _marginal_gains(a, w, births, sel, fixed)
    records = []
    t = params["max_minutes"]
    for r, s in enumerate(sel):
        catch = np.asarray(a[:, s].toarray()).ravel() > 0
        new = catch & ~before
        excl = catch & (count == 1)
        has_alt = math.isfinite(float(adv[r])) if adv.size else False
        rec = {
            "births_covered": float(births[catch].sum()),
            "births_new": float(births[new].sum()),
            "need_covered": float(w[catch].sum()),
            "need_exclusive": float(w[excl].sum()),
            "single_parent_families": _optional_sum(demand, "single_parent_families_2022",
                                                    catch),
            "births_poverty": float(np.nansum(pov[catch])) if pov is not None else math.nan,
            "runner_up_id": ids[best_c[r]] if has_alt else "",
            "runner_up_name": names[best_c[r]] if has_alt else "",
            "advantage": float(adv[r]) + 0.0 if has_alt else math.nan,  # no -0.0
            "order": int(order[r]),
            "births_marginal": float(births_gain[r]),
            "need_marginal": float(need_gain[r]),
        }
        rec["explanation"] = _explain(rec, t, sol.problem)
        records.append(rec)
    # a site that adds no need within T to those ranked before it is not recommended
    # (covering: the solver may open it only to use up k)
    tol = 1e-9 * max(float(np.abs(w).sum()), 1.0)
    useless = (need_gain <= tol) & (sol.problem == "max_covering")
    rec_rows = _site_rows(candidates, pool[sel], "recommandé")
    rec_rows.loc[useless, "status"] = NO_GAIN_STATUS
    for col in ("births_covered", "births_new", "need_covered", "need_exclusive",
                "single_parent_families", "births_poverty", "runner_up_id",
                "runner_up_name", "advantage", "births_marginal", "need_marginal",
                "explanation", "order"):
        rec_rows[col] = [x[col] for x in records] if records else []
    for i in np.flatnonzero(useless):
        rec_rows.loc[i, "explanation"] = (
            f"N'ajoute aucune naissance à {_fr(t)} min ou moins aux sites mieux classés : "
            "non recommandé.")
    rec_rows = rec_rows.sort_values("order", kind="stable").drop(columns="order")
    rec_rows.insert(7, "rank", np.arange(1, len(rec_rows) + 1))
    fixed_rows = _site_rows(candidates, pool[fixed], "existant")
    for fr_i, s in enumerate(fixed):
        catch = np.asarray(a[:, s].toarray()).ravel() > 0
        fixed_rows.loc[fr_i, "births_covered"] = float(births[catch].sum())
        fixed_rows.loc[fr_i, "need_covered"] = float(w[catch].sum())
    sites = _to_sites_gdf([rec_rows, fixed_rows], candidates.crs)
    sites["rank"] = sites["rank"].astype("Int64")
    cols = [c for c in sites.columns if c != "geometry"] + ["geometry"]
    sites = sites[cols]
    dem = _demand_layer(demand, candidates, pool, d, open_local, w, before, t)
    summary = _summary(dem, births, w, sites)
    status_label = STATUS_LABELS.get(sol.status, sol.status)
    n_useful = int(len(sel) - useless.sum())
    summary["marginal_births"] = [float(x) for x in rec_rows["births_marginal"]]
    summary["n_without_gain"] = int(useless.sum())
    message = _message(summary, sol, status_label=status_label, n_useful=n_useful,
                       n_without_gain=int(useless.sum()), max_minutes=t,
                       marginal_births=summary["marginal_births"])
    summary.update({"status": sol.status, "status_label": status_label, "message": message,
                    "method": sol.method, "gap": sol.gap, "runtime_s": sol.runtime_s,
                    "objective": sol.objective})
    return SitingResult(layers={"sites": sites, "demand": dem}, summary=summary,
                        params=params, solution=sol)
