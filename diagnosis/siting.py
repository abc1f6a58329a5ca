"""Where to open a Maison: maximal covering and p-median on travel-time matrices.

Two layers, as in PySAL ``spopt``: a core on matrices (numpy / scipy.sparse) and a thin
GeoDataFrame front.

Core
    :func:`solve_max_covering` opens ``k`` sites among candidates to maximise the
    need-weighted births within ``T`` minutes of an open site (the *maximal covering
    location problem*, Church & ReVelle 1974). ``method="exact"`` builds the integer
    programme directly from the sparse coverage matrix and solves it with HiGHS
    (``highspy``) after reducing the instance (demand points with identical coverage
    sets merged, dominated candidates dropped); ``method="greedy"`` is a lazy greedy
    followed by a best-improvement swap pass. :func:`solve_p_median` opens ``k`` sites to
    minimise the weighted travel time (greedy + vertex substitution, exact with HiGHS on
    small instances only).
Front
    :func:`build_candidates` gathers host facilities and user points,
    :func:`compute_need_weights` forms the need weight of each commune,
    :func:`find_host_sites` runs a scenario and explains each recommended site,
    :func:`compare_scenarios` lays scenarios side by side.

Conventions: ``k`` is the number of *new* sites; candidates listed in ``fixed`` (existing
Maisons) are open in addition to them. Travel times are minutes, ``np.inf`` (or NaN)
when unreachable; a demand point is covered when its time to an open site is
``<= max_minutes``.

See Also
--------
guides/implantation.md : the models, the need weights, greedy vs exact, how to read
    the explanations.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse

from diagnosis.errors import InputError
from diagnosis.needs import impute_poverty_rate
from diagnosis.schema import FACILITY_COLUMNS, FACILITY_TYPES
from diagnosis.settings import METRIC_CRS, WGS84

#: Facility types that can host a Maison (the default candidate pool).
HOST_TYPES: tuple[str, ...] = ("pmi", "eaje", "rpe", "centre_social", "laep", "evs", "mairie")
#: ``type`` given to candidate points proposed by the user (not a facility type).
USER_SITE_TYPE = "user_site"
#: Facility type of the existing Maisons (candidates that are usually ``fixed``).
EXISTING_TYPE = "maison_1000_jours"
#: Solver methods accepted by :func:`solve_max_covering` and :func:`solve_p_median`.
METHODS: tuple[str, ...] = ("exact", "greedy", "auto")
#: Objectives accepted by :func:`find_host_sites`.
OBJECTIVES: tuple[str, ...] = ("max_covering", "p_median")
#: Default time limit (seconds) given to HiGHS.
DEFAULT_TIME_LIMIT_S = 60.0
#: ``method="auto"`` solves the covering exactly up to this many coverage pairs (non-zeros
#: of the *reduced* matrix), greedily beyond.
AUTO_EXACT_MAX_NONZEROS = 2_000_000
#: The exact p-median is attempted up to this many (demand, candidate) pairs.
P_MEDIAN_EXACT_MAX_PAIRS = 50_000
#: Default need-weight coefficients of :func:`compute_need_weights`.
DEFAULT_NEED_WEIGHTS: dict[str, float] = {"poverty": 1.0, "single_parent": 1.0}

#: French labels of result statuses.
STATUS_LABELS: dict[str, str] = {
    "optimal": "optimum prouvé",
    "time_limit": "arrêt à la limite de temps (optimum non prouvé)",
    "stopped": "arrêt du solveur (optimum non prouvé)",
    "heuristic": "solution heuristique (glouton + échanges)",
    "no_demand": "aucune naissance à desservir",
}

_USER_LABEL = "Site proposé"


# --------------------------------------------------------------------------------------
# Core results
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SolverResult:
    """The solution of a siting problem on matrices.

    Attributes
    ----------
    problem
        ``"max_covering"`` or ``"p_median"``.
    selected
        Indices (columns of the matrix) of the new sites, ascending; excludes ``fixed``.
    fixed
        Indices of the sites open beforehand, ascending.
    objective
        Covering: total weight covered by the open sites (new and fixed). p-median: total
        weighted minutes, unreachable demand counted at ``unreachable_minutes``.
    covered
        Boolean mask over demand points: within reach of an open site (covering: within
        the coverage matrix; p-median: finite time to an open site).
    assignment
        Per demand point, the open site serving it (covering: lowest-index open site
        covering it; p-median: nearest open site, lowest index on ties), ``-1`` if none.
    status
        ``"optimal"`` (HiGHS proved optimality within ``mip_rel_gap``), ``"time_limit"``
        (HiGHS stopped at the time limit: the best solution found, not proved),
        ``"stopped"`` (HiGHS stopped for another reason, see ``solver_status``) or
        ``"heuristic"`` (greedy: no optimality claim).
    gap
        Relative distance between ``objective`` and ``bound`` (0 when proved optimal up
        to the tolerance, NaN without a bound).
    bound
        Best bound proved by HiGHS on the objective (upper bound for covering, lower
        bound for p-median); NaN for greedy.
    method
        ``"exact"`` or ``"greedy"`` (the method actually run, after ``"auto"``).
    runtime_s
        Wall-clock seconds of the whole call (checks, reduction, greedy, MIP).
    reduced_shape
        (demand points, candidates) of the instance given to the MIP after reduction;
        ``(0, 0)`` when no MIP was needed.
    solver_status
        HiGHS's own model status string (empty for greedy).
    """

    problem: str
    selected: np.ndarray
    fixed: np.ndarray
    objective: float
    covered: np.ndarray
    assignment: np.ndarray
    status: str
    gap: float
    bound: float
    method: str
    runtime_s: float
    reduced_shape: tuple[int, int] = (0, 0)
    solver_status: str = ""

    @property
    def is_optimal(self) -> bool:
        """Whether the solver proved this solution optimal."""
        return self.status == "optimal"

    @property
    def open_sites(self) -> np.ndarray:
        """Indices of every open site (fixed and new), ascending."""
        return np.union1d(self.fixed, self.selected).astype(np.int64)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


# --------------------------------------------------------------------------------------
# Input checks shared by the two solvers
# --------------------------------------------------------------------------------------
def _check_k_fixed(k: object, fixed: Iterable[int], n_cand: int) -> tuple[int, np.ndarray]:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InputError(f"k={k!r} must be a whole number of sites to open (>= 1)")
    k = int(k)
    if k < 1:
        raise InputError(f"k={k!r} must be at least 1 (the number of new sites to open)")
    fixed_arr = np.asarray(list(fixed), dtype=np.int64).ravel()
    if fixed_arr.size:
        bad = fixed_arr[(fixed_arr < 0) | (fixed_arr >= n_cand)]
        if bad.size:
            raise InputError(
                f"fixed={fixed_arr.tolist()!r} holds indices {bad.tolist()!r} outside "
                f"0..{n_cand - 1}; give column indices of the candidate matrix"
            )
        if np.unique(fixed_arr).size != fixed_arr.size:
            raise InputError(f"fixed={fixed_arr.tolist()!r} repeats indices; list each once")
    fixed_arr = np.unique(fixed_arr)
    n_free = n_cand - fixed_arr.size
    if k > n_free:
        raise InputError(
            f"k={k!r} is larger than the number of candidate sites that are not already "
            f"open ({n_free} = {n_cand} candidates - {fixed_arr.size} fixed); "
            "lower k or add candidates"
        )
    return k, fixed_arr


def _check_weights(weights: object, n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != (n,):
        raise InputError(
            f"weights has {w.size} values but the matrix has {n} demand rows; "
            "give one weight per demand point"
        )
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise InputError(
            f"weights must be finite and >= 0; rows {rows} hold {w[bad][:5].tolist()!r}. "
            "Replace missing weights (NaN) by an estimate before siting"
        )
    return w


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise InputError(f"method={method!r} is not a method; use one of {list(METHODS)}")


def _check_time_limit(time_limit_s: float) -> None:
    if isinstance(time_limit_s, bool) or not isinstance(
            time_limit_s, (int, float, np.integer, np.floating)) or not time_limit_s > 0:
        raise InputError(f"time_limit_s={time_limit_s!r} must be a number of seconds > 0")


def _as_coverage(coverage: object) -> sparse.csc_matrix:
    if sparse.issparse(coverage):
        a = sparse.csc_matrix(coverage)
    else:
        arr = np.asarray(coverage)
        if arr.ndim != 2:
            raise InputError(
                f"coverage must be a 2-D (demand x candidates) matrix; got shape {arr.shape!r}"
            )
        a = sparse.csc_matrix(arr.astype(bool))
    a = a.astype(bool).astype(np.float64)  # 0/1, explicit zeros dropped below
    a.eliminate_zeros()
    a.sort_indices()
    return a


# --------------------------------------------------------------------------------------
# Maximal covering
# --------------------------------------------------------------------------------------
def solve_max_covering(
    coverage: sparse.spmatrix | sparse.sparray | np.ndarray,
    weights: np.ndarray | Sequence[float],
    k: int,
    *,
    fixed: Iterable[int] = (),
    method: str = "exact",
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    mip_rel_gap: float = 1e-9,
    n_starts: int = 4,
) -> SolverResult:
    """Open ``k`` sites that cover the most weight (maximal covering location problem).

    Parameters
    ----------
    coverage
        Boolean (demand x candidates) matrix, scipy.sparse or dense: ``True`` when the
        demand point is within the service standard of the candidate (travel time
        ``<= T``).
    weights
        Weight of each demand point (need-weighted births), finite and ``>= 0``.
    k
        Number of *new* sites to open, ``>= 1``, at most the number of candidates not in
        ``fixed``.
    fixed
        Column indices of sites already open (existing Maisons): they cover their demand
        and do not count in ``k``.
    method
        ``"exact"``: integer programme solved by HiGHS on the reduced instance, seeded
        with the greedy solution; ``"greedy"``: lazy greedy + swap pass; ``"auto"``: exact
        when the reduced instance has at most :data:`AUTO_EXACT_MAX_NONZEROS` coverage
        pairs, greedy beyond.
    time_limit_s
        Time limit given to HiGHS. When it stops the search, the best solution found is
        returned with ``status="time_limit"`` and its proved ``gap``.
    mip_rel_gap
        Relative gap at which HiGHS declares optimality (its default is 1e-4; ours is
        tighter so that "optimal" means optimal).
    n_starts
        Greedy restarts: start ``s`` forces the ``s``-th best single site first (start 1
        is the plain greedy); the best result is kept (the earliest on ties).

    Returns
    -------
    SolverResult
        ``problem="max_covering"``.

    Raises
    ------
    InputError
        ``k < 1`` or larger than the free candidates, bad ``fixed`` indices, weights of
        the wrong length, negative or missing, unknown method.

    Notes
    -----
    The model (ReVelle's formulation, as ``spopt.locate.MCLP``)::

        max  sum_i w_i x_i
        s.t. x_i <= sum_{j in N_i} y_j      for every demand point i
             sum_{j not fixed} y_j = k,  y_j = 1 for fixed j
             y_j in {0, 1},  0 <= x_i <= 1

    ``x_i`` can stay continuous: with integral ``y`` an optimal ``x_i`` is
    ``min(1, sum y)``, which is 0 or 1. Before solving, demand covered by ``fixed`` sites,
    zero-weight and uncoverable demand are set aside; a candidate whose coverage set is
    included in another's is dropped (an optimal solution never needs it: swap it for
    its dominator); of identical candidates the lowest index is kept; demand points
    with identical coverage sets are merged (weights summed).

    The exact method first solves the linear relaxation (HiGHS interior point +
    crossover): its value bounds the optimum, and when its vertex is integral (the usual
    case) it is an optimal solution and no branch-and-bound is run. Otherwise HiGHS's
    branch-and-bound runs, seeded with the greedy solution; ``status`` and ``gap`` come
    from HiGHS's own model status and dual bound.

    Greedy: each step opens the candidate with the largest weight of newly covered
    demand; ties go to the lowest index; gains are re-evaluated lazily (a stale gain is
    an upper bound). The swap pass then applies the best improving (remove one, add one)
    exchange until none improves (ties: lowest removed index, then lowest added index).
    With ``n_starts > 1`` the greedy restarts from the next best single sites. Greedy is
    deterministic; the exact method returns an optimal set found by HiGHS (deterministic
    for a given input and HiGHS version; several sets may be optimal).

    Examples
    --------
    Three demand points, three candidates; candidate 1 covers points 0 and 1:

    >>> cov = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]], dtype=bool)
    >>> r = solve_max_covering(cov, [5.0, 4.0, 3.0], 1)
    >>> r.selected.tolist(), r.objective, r.status
    ([1], 9.0, 'optimal')
    >>> solve_max_covering(cov, [5.0, 4.0, 3.0], 1, fixed=[1], method="greedy").selected
    array([2])

    See Also
    --------
    solve_p_median, find_host_sites
    guides/implantation.md : the covering model, greedy vs exact.
    """
    t0 = time.perf_counter()
    _check_method(method)
    _check_time_limit(time_limit_s)
    a = _as_coverage(coverage)
    n, m = a.shape
    w = _check_weights(weights, n)
    k, fixed_arr = _check_k_fixed(k, fixed, m)

    if isinstance(n_starts, bool) or not isinstance(n_starts, (int, np.integer)) or \
            n_starts < 1:
        raise InputError(f"n_starts={n_starts!r} must be a whole number >= 1")

    red: _Reduced | None = None
    if method in ("exact", "auto"):
        red = _reduce_covering(a, w, k, fixed_arr)
    if red is None or (method == "auto" and red.nnz > AUTO_EXACT_MAX_NONZEROS):
        sel = _multistart_covering(a, w, k, fixed_arr, n_starts=int(n_starts))
        return _covering_result(a, w, sel, fixed_arr, status="heuristic",
                                bound=math.nan, method="greedy", t0=t0)
    if red.trivial is not None:
        return _covering_result(a, w, red.trivial, fixed_arr, status="optimal",
                                bound=math.nan, method="exact", t0=t0)
    found, status, bound, solver_status = _exact_covering(
        red, k, lambda: _multistart_covering(a, w, k, fixed_arr, n_starts=1),
        time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap,
    )
    # HiGHS stopped without a solution of its own: keep the greedy one (with the bound)
    sel = found if found is not None else _multistart_covering(a, w, k, fixed_arr,
                                                                n_starts=int(n_starts))
    return _covering_result(a, w, sel, fixed_arr, status=status, bound=bound,
                            method="exact", t0=t0, reduced_shape=red.shape,
                            solver_status=solver_status)


def _covering_result(a: sparse.csc_matrix, w: np.ndarray, sel: np.ndarray, fixed: np.ndarray,
                     *, status: str, bound: float, method: str, t0: float,
                     reduced_shape: tuple[int, int] = (0, 0),
                     solver_status: str = "") -> SolverResult:
    sel = np.sort(np.asarray(sel, dtype=np.int64))
    open_ = np.union1d(fixed, sel).astype(np.int64)
    sub = a[:, open_]
    covered = np.asarray(sub.sum(axis=1)).ravel() > 0
    objective = float(w[covered].sum())
    # assignment: lowest-index open site covering the point
    assignment = np.full(a.shape[0], -1, dtype=np.int64)
    sub_csr = sub.tocsr()
    sub_csr.sort_indices()
    starts, ends = sub_csr.indptr[:-1], sub_csr.indptr[1:]
    has = ends > starts
    assignment[has] = open_[sub_csr.indices[starts[has]]]
    if status == "optimal" and not math.isfinite(bound):
        bound = objective
    gap = math.nan if not math.isfinite(bound) else max(0.0, bound - objective) / max(
        abs(objective), 1e-12)
    if status == "optimal" and gap < 1e-12:
        gap = 0.0
    return SolverResult(
        problem="max_covering", selected=_frozen(sel), fixed=_frozen(fixed.copy()),
        objective=objective, covered=_frozen(covered), assignment=_frozen(assignment),
        status=status, gap=gap, bound=bound, method=method,
        runtime_s=time.perf_counter() - t0, reduced_shape=reduced_shape,
        solver_status=solver_status,
    )


def _multistart_covering(a: sparse.csc_matrix, w: np.ndarray, k: int, fixed: np.ndarray, *,
                         n_starts: int) -> np.ndarray:
    """Greedy + swap from the ``n_starts`` best single sites; best result, earliest on ties."""
    best = _swap_covering(a, w, _greedy_covering(a, w, k, fixed), fixed)
    if n_starts <= 1:
        return best
    best_obj = _covered_weight(a, w, np.union1d(best, fixed))
    m = a.shape[1]
    free = np.ones(m, dtype=bool)
    free[fixed] = False
    single = np.asarray(a.T @ w).ravel()
    order = [int(j) for j in np.lexsort((np.arange(m), -single)) if free[j]]
    tol = 1e-9 * max(float(w.sum()), 1.0)
    for first in order[1:n_starts]:
        forced = np.union1d(fixed, [first]).astype(np.int64)
        rest = _greedy_covering(a, w, k - 1, forced) if k > 1 else np.zeros(0, np.int64)
        sel = _swap_covering(a, w, np.union1d(rest, [first]).astype(np.int64), fixed)
        obj = _covered_weight(a, w, np.union1d(sel, fixed))
        if obj > best_obj + tol:
            best, best_obj = sel, obj
    return best


def _covered_weight(a: sparse.csc_matrix, w: np.ndarray, open_: np.ndarray) -> float:
    if open_.size == 0:
        return 0.0
    covered = np.asarray(a[:, open_.astype(np.int64)].sum(axis=1)).ravel() > 0
    return float(w[covered].sum())


def _greedy_covering(a: sparse.csc_matrix, w: np.ndarray, k: int,
                     fixed: np.ndarray) -> np.ndarray:
    """Lazy greedy; ties to the lowest index (a stale gain is an upper bound)."""
    n, m = a.shape
    covered = np.zeros(n, dtype=bool)
    if fixed.size:
        covered |= np.asarray(a[:, fixed].sum(axis=1)).ravel() > 0
    indptr, indices = a.indptr, a.indices

    def gain(j: int) -> float:
        idx = indices[indptr[j]:indptr[j + 1]]
        return float(w[idx[~covered[idx]]].sum())

    is_fixed = np.zeros(m, dtype=bool)
    is_fixed[fixed] = True
    heap = [(-gain(j), j) for j in range(m) if not is_fixed[j]]
    heapq.heapify(heap)
    chosen: list[int] = []
    while len(chosen) < k:
        _, j = heapq.heappop(heap)
        g = gain(j)
        if not heap or (-g, j) <= heap[0]:
            chosen.append(j)
            covered[indices[indptr[j]:indptr[j + 1]]] = True
        else:
            heapq.heappush(heap, (-g, j))
    return np.sort(np.asarray(chosen, dtype=np.int64))


def _covering_swap_deltas(a: sparse.csc_matrix, w: np.ndarray, sel: np.ndarray,
                          fixed: np.ndarray) -> np.ndarray:
    """Objective change of every (remove ``sel[r]``, add column ``c``) exchange.

    Returns a ``(len(sel), m)`` array; entries of open columns are ``-inf``.
    """
    m = a.shape[1]
    open_mask = np.zeros(m, dtype=bool)
    open_mask[fixed] = True
    open_mask[sel] = True
    count = a @ open_mask.astype(np.float64)
    v0 = np.where(count == 0, w, 0.0)
    v1 = np.where(count == 1, w, 0.0)
    gain0 = a.T @ v0
    a_sel = a[:, sel]
    loss = a_sel.T @ v1
    overlap = (a_sel.T @ sparse.diags(v1) @ a).toarray()
    delta = gain0[None, :] - loss[:, None] + overlap
    delta[:, open_mask] = -np.inf
    return np.asarray(delta)


def _swap_covering(a: sparse.csc_matrix, w: np.ndarray, sel: np.ndarray, fixed: np.ndarray,
                   *, max_swaps: int = 1000) -> np.ndarray:
    """Best-improvement swap pass (remove one new site, add one candidate)."""
    sel = np.sort(sel)
    tol = 1e-9 * max(float(w.sum()), 1.0)
    for _ in range(max_swaps):
        if sel.size == 0 or sel.size + fixed.size >= a.shape[1]:
            break
        delta = _covering_swap_deltas(a, w, sel, fixed)
        flat = int(np.argmax(delta))
        r, c = divmod(flat, delta.shape[1])
        if not delta[r, c] > tol:
            break
        sel = np.sort(np.append(np.delete(sel, r), c))
    return sel


@dataclass(frozen=True)
class _Reduced:
    """A covering instance after reduction (see :func:`solve_max_covering` notes)."""

    matrix: sparse.csc_matrix  # merged demand x surviving candidates, 0/1
    weights: np.ndarray  # merged weights
    candidates: np.ndarray  # original index of each surviving candidate
    representative: np.ndarray  # per original candidate: surviving column or -1
    base: float  # weight covered by fixed sites
    trivial: np.ndarray | None  # an optimal selection when no MIP is needed
    shape: tuple[int, int] = (0, 0)
    nnz: int = 0


def _reduce_covering(a: sparse.csc_matrix, w: np.ndarray, k: int,
                     fixed: np.ndarray) -> _Reduced:
    n, m = a.shape
    free = np.ones(m, dtype=bool)
    free[fixed] = False
    covered_fixed = (np.asarray(a[:, fixed].sum(axis=1)).ravel() > 0) if fixed.size else \
        np.zeros(n, dtype=bool)
    base = float(w[covered_fixed].sum())
    free_idx = np.flatnonzero(free)
    a_free = a[:, free_idx]
    reach = np.asarray(a_free.sum(axis=1)).ravel() > 0
    rows = np.flatnonzero((w > 0) & ~covered_fixed & reach)
    b0 = sparse.csc_matrix(a_free[rows].astype(np.int32))
    sizes = np.diff(b0.indptr)
    # dominance: j dominated by j2 when cover(j) is included in cover(j2)
    dominated = sizes == 0
    inter = sparse.coo_matrix(b0.T @ b0)
    r_, c_, v_ = inter.row, inter.col, inter.data
    incl = (r_ != c_) & (v_ == sizes[r_])
    r_, c_ = r_[incl], c_[incl]
    strict = sizes[r_] < sizes[c_]
    same_lower = (sizes[r_] == sizes[c_]) & (c_ < r_)
    dominated[r_[strict | same_lower]] = True
    surv_local = np.flatnonzero(~dominated)
    representative = np.full(m, -1, dtype=np.int64)
    pos = np.full(free_idx.size, -1, dtype=np.int64)
    pos[surv_local] = np.arange(surv_local.size)
    representative[free_idx[surv_local]] = pos[surv_local]
    # a dominated candidate maps to its lowest-index surviving dominator (inclusion is
    # transitive, so every dominated candidate has one)
    to_survivor = dominated[r_] & ~dominated[c_]
    if to_survivor.any():
        order = np.lexsort((c_[to_survivor], r_[to_survivor]))
        rr, cc = r_[to_survivor][order], c_[to_survivor][order]
        first = np.r_[True, rr[1:] != rr[:-1]]
        representative[free_idx[rr[first]]] = pos[cc[first]]
    cand = free_idx[surv_local]
    if surv_local.size <= k:
        # every coverable point can be covered: open all survivors, fill with the
        # lowest-index free candidates (they add nothing)
        survivors = {int(j) for j in cand}
        chosen = sorted(survivors)
        for j in free_idx:
            if len(chosen) >= k:
                break
            if int(j) not in survivors:
                chosen.append(int(j))
        return _Reduced(matrix=sparse.csc_matrix((0, 0)), weights=np.zeros(0), candidates=cand,
                        representative=representative, base=base,
                        trivial=np.sort(np.asarray(chosen[:k], dtype=np.int64)))
    mat, merged_w = _merge_rows(b0[:, surv_local], w[rows])
    return _Reduced(matrix=mat, weights=merged_w, candidates=cand,
                    representative=representative, base=base, trivial=None,
                    shape=mat.shape, nnz=int(mat.nnz))


def _merge_rows(b: sparse.spmatrix, w: np.ndarray) -> tuple[sparse.csc_matrix, np.ndarray]:
    """Merge demand rows with identical coverage sets (weights summed); drop empty rows."""
    b = sparse.csr_matrix(b)
    b.sort_indices()
    keep = np.flatnonzero(np.diff(b.indptr) > 0)
    b = b[keep]
    w = w[keep]
    keys: dict[bytes, int] = {}
    group = np.empty(b.shape[0], dtype=np.int64)
    indptr, indices = b.indptr, b.indices
    for i in range(b.shape[0]):
        group[i] = keys.setdefault(indices[indptr[i]:indptr[i + 1]].tobytes(), len(keys))
    n_groups = len(keys)
    merged_w = np.bincount(group, weights=w, minlength=n_groups)
    first_row = np.full(n_groups, -1, dtype=np.int64)
    first_row[group[::-1]] = np.arange(b.shape[0])[::-1]
    mat = sparse.csc_matrix(b[first_row], dtype=np.float64)
    mat.data[:] = 1.0
    return mat, merged_w


def _import_highspy() -> Any:
    try:
        import highspy
    except ImportError as exc:  # pragma: no cover - highspy is a requirement
        raise ImportError(
            "the exact siting methods need HiGHS: pip install highspy "
            "(or use method='greedy')"
        ) from exc
    return highspy


def _run_highs(highspy: Any, *, n_col: int, n_row: int, matrix: sparse.csc_matrix,
               sense: int, cost: np.ndarray, col_lower: np.ndarray, col_upper: np.ndarray,
               row_lower: np.ndarray, row_upper: np.ndarray, integrality: np.ndarray | None,
               start: np.ndarray | None, time_limit_s: float, mip_rel_gap: float,
               options: Mapping[str, object] | None = None) -> tuple[Any, Any, Any]:
    """Pass a column-wise model to HiGHS, solve it, return (solver, status, info).

    ``integrality=None`` solves the linear programme (no integer columns).
    """
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", max(float(time_limit_s), 0.01))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    for key, value in (options or {}).items():
        h.setOptionValue(key, value)
    inf = highspy.kHighsInf
    if integrality is None:
        integrality = np.zeros(n_col, dtype=np.int32)
    h.passModel(
        int(n_col), int(n_row), int(matrix.nnz), 1, int(sense), 0.0,
        np.ascontiguousarray(cost, dtype=np.float64),
        np.ascontiguousarray(col_lower, dtype=np.float64),
        np.ascontiguousarray(col_upper, dtype=np.float64),
        np.ascontiguousarray(np.where(np.isinf(row_lower), -inf, row_lower), dtype=np.float64),
        np.ascontiguousarray(np.where(np.isinf(row_upper), inf, row_upper), dtype=np.float64),
        np.ascontiguousarray(matrix.indptr, dtype=np.int32),
        np.ascontiguousarray(matrix.indices, dtype=np.int32),
        np.ascontiguousarray(matrix.data, dtype=np.float64),
        np.ascontiguousarray(integrality, dtype=np.int32),
    )
    if start is not None:
        h.setSolution(int(n_col), np.arange(n_col, dtype=np.int32),
                      np.ascontiguousarray(start, dtype=np.float64))
    h.run()
    return h, h.getModelStatus(), h.getInfo()


def _highs_outcome(highspy: Any, h: Any, model_status: Any, info: Any
                   ) -> tuple[str, bool, str]:
    """Map HiGHS's model status to ours: (status, has_solution, HiGHS status text)."""
    text = h.modelStatusToString(model_status)
    has_sol = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
    if model_status == highspy.HighsModelStatus.kOptimal:
        return "optimal", has_sol, text
    if model_status == highspy.HighsModelStatus.kTimeLimit:
        return "time_limit", has_sol, text
    return "stopped", has_sol, text


def _covering_model(b: sparse.csc_matrix, weights: np.ndarray, k: int) -> dict[str, Any]:
    """Column-wise covering model: columns y (sites) then x (demand); rows demand + card."""
    nd, nc = b.shape
    top = sparse.hstack([-b, sparse.identity(nd, format="csc")], format="csc")
    card = sparse.csc_matrix(
        (np.ones(nc), (np.zeros(nc, dtype=np.int64), np.arange(nc))), shape=(1, nc + nd)
    )
    matrix = sparse.csc_matrix(sparse.vstack([top, card], format="csc"))
    matrix.sort_indices()
    return dict(
        n_col=nc + nd, n_row=nd + 1, matrix=matrix, sense=-1,
        cost=np.concatenate([np.zeros(nc), weights]),
        col_lower=np.zeros(nc + nd), col_upper=np.ones(nc + nd),
        row_lower=np.concatenate([np.full(nd, -np.inf), [float(k)]]),
        row_upper=np.concatenate([np.zeros(nd), [float(k)]]),
    )


def _exact_covering(red: _Reduced, k: int, start: Callable[[], np.ndarray], *,
                    time_limit_s: float, mip_rel_gap: float
                    ) -> tuple[np.ndarray | None, str, float, str]:
    """Solve the reduced covering: LP relaxation first, the MIP only when it is fractional.

    1. The LP optimum ``z`` bounds the MIP; when HiGHS's interior point + crossover
       returns an integral vertex, it is an optimal integer solution and no
       branch-and-bound is needed (the usual case for covering instances).
    2. Otherwise, with the greedy value ``L`` as incumbent, reduced-cost fixing: a site
       at 0 in the LP with reduced cost ``r`` (<= 0) cannot be open in a solution worth
       more than ``z + r``; when ``z + r < L`` it is left out (symmetrically, a site at
       1 with ``z - r < L`` is forced in). HiGHS's branch-and-bound then runs on what is
       left, seeded with the greedy solution. The bound returned covers the sites left
       out (their bounds are below ``L``).
    """
    highspy = _import_highspy()
    t0 = time.perf_counter()
    b = red.matrix
    nd, nc = b.shape
    model = _covering_model(b, red.weights, k)
    h, model_status, info = _run_highs(
        highspy, **model, integrality=None, start=None, time_limit_s=time_limit_s,
        mip_rel_gap=mip_rel_gap, options={"solver": "ipm", "run_crossover": "on"},
    )
    lp_ok = model_status == highspy.HighsModelStatus.kOptimal
    z = float(info.objective_function_value) if lp_ok else math.inf
    if lp_ok:
        sol = h.getSolution()
        y_lp = np.asarray(sol.col_value[:nc])
        rc = np.asarray(sol.col_dual[:nc])
        y_int = np.round(y_lp)
        if np.abs(y_lp - y_int).max(initial=0.0) <= 1e-7 and int(y_int.sum()) == k:
            sel = red.candidates[np.flatnonzero(y_int > 0.5)]
            return np.sort(sel), "optimal", red.base + z, "Optimal (integral LP relaxation)"
    # incumbent: the greedy sites mapped to their surviving representatives
    y0 = np.zeros(nc)
    reps = red.representative[start()]
    y0[reps[reps >= 0]] = 1.0
    for j in range(nc):
        if y0.sum() >= k:
            break
        if y0[j] == 0:
            y0[j] = 1.0
    incumbent = float(red.weights @ np.minimum(1.0, b @ y0))
    if lp_ok:  # the LP rounded (k largest values, lowest index on ties) may do better
        y1 = np.zeros(nc)
        y1[np.lexsort((np.arange(nc), -y_lp))[:k]] = 1.0
        value = float(red.weights @ np.minimum(1.0, b @ y1))
        if value > incumbent:
            y0, incumbent = y1, value
    keep = np.ones(nc, dtype=bool)
    force = np.zeros(nc, dtype=bool)
    left_out_bound = -math.inf
    if lp_ok:
        margin = 1e-7 * max(1.0, abs(z)) + 1e-6
        fix0 = (y_lp <= 1e-9) & (z + rc < incumbent - margin)
        fix1 = (y_lp >= 1.0 - 1e-9) & (z - rc < incumbent - margin)
        if not (y0[fix0] > 0).any() and (y0[fix1] > 0).all():
            keep, force = ~fix0, fix1
            bounds = np.concatenate([z + rc[fix0], z - rc[fix1]])
            left_out_bound = float(bounds.max()) if bounds.size else -math.inf
    # what is left: sites not left out; demand they can reach, merged again (rows that
    # differed only by left-out sites become identical)
    kept = np.flatnonzero(keep)
    b_r, w_r = _merge_rows(b[:, kept], red.weights)
    model = _covering_model(b_r, w_r, k)
    model["col_lower"][: kept.size] = force[kept].astype(np.float64)
    y0_r = y0[kept]
    x0_r = np.minimum(1.0, b_r @ y0_r)
    h, model_status, info = _run_highs(
        highspy, **model,
        integrality=np.concatenate([np.ones(kept.size, np.int32),
                                    np.zeros(b_r.shape[0], np.int32)]),
        start=np.concatenate([y0_r, x0_r]),
        time_limit_s=time_limit_s - (time.perf_counter() - t0),
        mip_rel_gap=mip_rel_gap, options={"mip_lp_solver": "ipm"},
    )
    status, has_sol, text = _highs_outcome(highspy, h, model_status, info)
    dual = float(info.mip_dual_bound)
    if kept.size < nc:
        text += f" (after reduced-cost fixing of {nc - kept.size} of {nc} sites)"
    bound = max(dual, left_out_bound) if math.isfinite(dual) else math.inf
    bound = red.base + min(z, bound)
    bound = bound if math.isfinite(bound) else math.nan
    if not has_sol:
        return None, status, bound, text
    y = np.asarray(h.getSolution().col_value[: kept.size])
    sel = red.candidates[kept[y > 0.5]]
    return np.sort(sel), status, bound, text


# --------------------------------------------------------------------------------------
# p-median
# --------------------------------------------------------------------------------------
def solve_p_median(
    minutes: np.ndarray,
    weights: np.ndarray | Sequence[float],
    k: int,
    *,
    fixed: Iterable[int] = (),
    method: str = "auto",
    unreachable_minutes: float | None = None,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    mip_rel_gap: float = 1e-9,
) -> SolverResult:
    """Open ``k`` sites that minimise the weighted travel time to the nearest open site.

    Parameters
    ----------
    minutes
        Dense (demand x candidates) travel times in minutes; ``np.inf`` or NaN when
        unreachable.
    weights
        Weight of each demand point, finite and ``>= 0``.
    k
        Number of new sites to open (``fixed`` sites come in addition).
    fixed
        Column indices of sites already open.
    method
        ``"greedy"`` (greedy + vertex substitution), ``"exact"`` (HiGHS, only up to
        :data:`P_MEDIAN_EXACT_MAX_PAIRS` reachable pairs) or ``"auto"`` (exact when small
        enough, greedy beyond).
    unreachable_minutes
        Cost of a demand point no open site reaches (longer times are capped at it).
        Default: 10 x the largest finite time of the matrix, so reaching a family first
        outweighs shortening trips.
    time_limit_s, mip_rel_gap
        HiGHS options for the exact method.

    Returns
    -------
    SolverResult
        ``problem="p_median"``; ``objective`` in weighted minutes.

    Raises
    ------
    InputError
        As :func:`solve_max_covering`; also ``method="exact"`` on an instance larger than
        :data:`P_MEDIAN_EXACT_MAX_PAIRS` pairs, or a matrix with no finite time.

    Notes
    -----
    Greedy opens, step by step, the site that lowers the total most (ties: lowest index);
    vertex substitution (Teitz & Bart) then applies the best improving exchange of one
    open new site for one closed candidate until none improves. At 2,000 x 300 a generic
    MIP (600,000 assignment variables) is out of reach on a laptop, while greedy + swap
    lands within about 1 % of the best known answer; the exact model
    (``x_ij <= y_j`` assignment formulation with an "unreached" slack per demand point)
    is for small instances and for checking the heuristic.

    Examples
    --------
    >>> d = np.array([[0.0, 10.0], [10.0, 0.0], [4.0, 6.0]])
    >>> r = solve_p_median(d, [1.0, 3.0, 1.0], 1)
    >>> r.selected.tolist(), r.objective
    ([1], 16.0)

    See Also
    --------
    solve_max_covering
    guides/implantation.md : the p-median and vertex substitution.
    """
    t0 = time.perf_counter()
    _check_method(method)
    _check_time_limit(time_limit_s)
    d = np.asarray(minutes, dtype=np.float64)
    if d.ndim != 2:
        raise InputError(f"minutes must be a 2-D (demand x candidates) matrix; got {d.shape!r}")
    n, m = d.shape
    w = _check_weights(weights, n)
    k, fixed_arr = _check_k_fixed(k, fixed, m)
    d = np.where(np.isnan(d), np.inf, d)
    if (d < 0).any():
        raise InputError("minutes holds negative travel times; check the travel-time matrix")
    finite = np.isfinite(d)
    if not finite.any():
        raise InputError("minutes has no finite travel time: no candidate reaches any demand")
    penalty = _p_median_penalty(d) if unreachable_minutes is None else \
        float(unreachable_minutes)
    if not (math.isfinite(penalty) and penalty > 0):
        raise InputError(f"unreachable_minutes={unreachable_minutes!r} must be a number of "
                         "minutes > 0")
    rows = np.flatnonzero(w > 0)
    dc = np.minimum(d[rows], penalty)
    wr = w[rows]
    sel = _greedy_p_median(dc, wr, k, fixed_arr, penalty)
    sel = _swap_p_median(dc, wr, sel, fixed_arr, penalty)
    pairs = int((d[rows] < penalty).sum())
    run_exact = method == "exact" or (method == "auto" and pairs <= P_MEDIAN_EXACT_MAX_PAIRS)
    if method == "exact" and pairs > P_MEDIAN_EXACT_MAX_PAIRS:
        raise InputError(
            f"method='exact' on a p-median with {pairs} reachable pairs (more than "
            f"{P_MEDIAN_EXACT_MAX_PAIRS}): a generic MIP is out of reach at that size; "
            "use method='greedy' or 'auto'"
        )
    status, bound, method_run, shape, text = "heuristic", math.nan, "greedy", (0, 0), ""
    if run_exact:
        found, status, bound, text = _exact_p_median(
            dc, wr, k, fixed_arr, penalty, sel, time_limit_s=time_limit_s,
            mip_rel_gap=mip_rel_gap)
        if found is not None:
            sel = found
        method_run, shape = "exact", (rows.size, m)
    open_ = np.union1d(fixed_arr, sel).astype(np.int64)
    sub = d[:, open_]
    best = sub.min(axis=1)
    assignment = np.where(np.isfinite(best), open_[np.argmin(sub, axis=1)], -1)
    objective = float((w * np.minimum(best, penalty)).sum())
    gap = math.nan
    if math.isfinite(bound):
        gap = max(0.0, objective - bound) / max(abs(objective), 1e-12)
        if status == "optimal" and gap < 1e-12:
            gap = 0.0
    return SolverResult(
        problem="p_median", selected=_frozen(np.sort(sel)), fixed=_frozen(fixed_arr),
        objective=objective, covered=_frozen(np.isfinite(best)),
        assignment=_frozen(assignment.astype(np.int64)), status=status, gap=gap, bound=bound,
        method=method_run, runtime_s=time.perf_counter() - t0, reduced_shape=shape,
        solver_status=text,
    )


def _column_costs(d: np.ndarray, w: np.ndarray, cur: np.ndarray,
                  *, block_cells: int = 4_000_000) -> np.ndarray:
    """``sum_i w_i min(d_ic, cur_i)`` for every column c, in column blocks."""
    n, m = d.shape
    out = np.empty(m)
    step = max(1, block_cells // max(n, 1))
    for s in range(0, m, step):
        blk = d[:, s:s + step]
        out[s:s + step] = w @ np.minimum(blk, cur[:, None])
    return out


def _greedy_p_median(d: np.ndarray, w: np.ndarray, k: int, fixed: np.ndarray,
                     penalty: float) -> np.ndarray:
    n, m = d.shape
    cur = np.full(n, penalty)
    if fixed.size:
        cur = np.minimum(cur, d[:, fixed].min(axis=1))
    closed = np.ones(m, dtype=bool)
    closed[fixed] = False
    chosen: list[int] = []
    for _ in range(k):
        costs = _column_costs(d, w, cur)
        costs[~closed] = np.inf
        j = int(np.argmin(costs))
        chosen.append(j)
        closed[j] = False
        cur = np.minimum(cur, d[:, j])
    return np.sort(np.asarray(chosen, dtype=np.int64))


def _p_median_swap_costs(d: np.ndarray, w: np.ndarray, sel: np.ndarray, fixed: np.ndarray,
                         penalty: float) -> np.ndarray:
    """Total cost after each (remove ``sel[r]``, add column ``c``) exchange.

    Returns a ``(len(sel), m)`` array; entries of open columns are ``+inf``.
    """
    n, m = d.shape
    open_ = np.union1d(fixed, sel).astype(np.int64)
    sub = np.concatenate([d[:, open_], np.full((n, 1), penalty)], axis=1)
    order = np.argsort(sub, axis=1, kind="stable")
    rows = np.arange(n)
    best = sub[rows, order[:, 0]]
    second = sub[rows, order[:, 1]] if sub.shape[1] > 1 else best
    nearest = np.where(order[:, 0] < open_.size, open_[np.minimum(order[:, 0],
                                                                   open_.size - 1)], -1)
    out = np.empty((sel.size, m))
    for r, s in enumerate(sel):
        alt = np.where(nearest == s, second, best)
        out[r] = _column_costs(d, w, alt)
    open_mask = np.zeros(m, dtype=bool)
    open_mask[open_] = True
    out[:, open_mask] = np.inf
    return out


def _swap_p_median(d: np.ndarray, w: np.ndarray, sel: np.ndarray, fixed: np.ndarray,
                   penalty: float, *, max_swaps: int = 1000) -> np.ndarray:
    sel = np.sort(sel)
    for _ in range(max_swaps):
        if sel.size + fixed.size >= d.shape[1]:
            break
        open_ = np.union1d(fixed, sel).astype(np.int64)
        current = float(w @ np.minimum(d[:, open_].min(axis=1), penalty))
        costs = _p_median_swap_costs(d, w, sel, fixed, penalty)
        flat = int(np.argmin(costs))
        r, c = divmod(flat, costs.shape[1])
        tol = 1e-9 * max(abs(current), 1.0)
        if not costs[r, c] < current - tol:
            break
        sel = np.sort(np.append(np.delete(sel, r), c))
    return sel


def _exact_p_median(d: np.ndarray, w: np.ndarray, k: int, fixed: np.ndarray, penalty: float,
                    start_sel: np.ndarray, *, time_limit_s: float, mip_rel_gap: float
                    ) -> tuple[np.ndarray | None, str, float, str]:
    highspy = _import_highspy()
    n, m = d.shape
    pi, pj = np.nonzero(d < penalty)
    npair = pi.size
    # columns: y (m) | x pairs (npair) | u unreached (n)
    ncol = m + npair + n
    # rows: assignment (n) | link x_p - y_j <= 0 (npair) | cardinality (1)
    xcols = m + np.arange(npair)
    ucols = m + npair + np.arange(n)
    r_assign = np.concatenate([pi, np.arange(n)])
    c_assign = np.concatenate([xcols, ucols])
    link_rows = n + np.arange(npair)
    free = np.ones(m, dtype=bool)
    free[fixed] = False
    free_idx = np.flatnonzero(free)
    rr = np.concatenate([r_assign, link_rows, link_rows, np.full(free_idx.size, n + npair)])
    cc = np.concatenate([c_assign, xcols, pj, free_idx])
    vv = np.concatenate([np.ones(c_assign.size), np.ones(npair), -np.ones(npair),
                         np.ones(free_idx.size)])
    matrix = sparse.csc_matrix((vv, (rr, cc)), shape=(n + npair + 1, ncol))
    matrix.sort_indices()
    cost = np.concatenate([np.zeros(m), w[pi] * d[pi, pj], w * penalty])
    col_lower = np.zeros(ncol)
    col_lower[fixed] = 1.0
    row_lower = np.concatenate([np.ones(n), np.full(npair, -np.inf), [float(k)]])
    row_upper = np.concatenate([np.ones(n), np.zeros(npair), [float(k)]])
    integrality = np.zeros(ncol, dtype=np.int32)
    integrality[:m] = 1
    # warm start from the heuristic
    open_ = np.union1d(fixed, start_sel).astype(np.int64)
    y0 = np.zeros(m)
    y0[open_] = 1.0
    sub = np.concatenate([d[:, open_], np.full((n, 1), penalty)], axis=1)
    arg = np.argmin(sub, axis=1)
    nearest = np.where(arg < open_.size, open_[np.minimum(arg, open_.size - 1)], -1)
    x0 = (nearest[pi] == pj).astype(float)
    u0 = (nearest < 0).astype(float)
    h, model_status, info = _run_highs(
        highspy, n_col=ncol, n_row=n + npair + 1, matrix=matrix, sense=1, cost=cost,
        col_lower=col_lower, col_upper=np.ones(ncol), row_lower=row_lower,
        row_upper=row_upper, integrality=integrality, start=np.concatenate([y0, x0, u0]),
        time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap,
    )
    status, has_sol, text = _highs_outcome(highspy, h, model_status, info)
    bound = float(info.mip_dual_bound)
    bound = bound if math.isfinite(bound) else math.nan
    if not has_sol:
        return None, status, bound, text
    y = np.asarray(h.getSolution().col_value[:m])
    sel = np.flatnonzero((y > 0.5) & free)
    return sel.astype(np.int64), status, bound, text


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


# --------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------
def build_candidates(
    facilities: gpd.GeoDataFrame,
    *,
    host_types: Sequence[str] = HOST_TYPES,
    user_points: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    territory: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
) -> gpd.GeoDataFrame:
    """Gather the candidate sites: host facilities, existing Maisons and user points.

    Parameters
    ----------
    facilities
        Facility table (columns of :data:`diagnosis.schema.FACILITY_COLUMNS`; missing
        text columns are filled with ``""``).
    host_types
        Facility types that may host a Maison (default :data:`HOST_TYPES`).
    user_points
        Points proposed by the user (with a CRS; an optional ``name`` column). They get
        ``type = "user_site"`` and ids ``"user:1"``, ``"user:2"``...
    territory
        Territory polygon(s) with a CRS; required with ``user_points``, which must lie
        inside it.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, the facility columns plus ``candidate_kind`` (``"host"``,
        ``"existing"`` for Maisons des 1000 premiers jours, ``"user"``), in this order:
        facilities in input order, then user points.

    Raises
    ------
    InputError
        Unknown host types, no candidate of the chosen types and no user point, user
        points without ``territory`` or outside it.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> f = gpd.GeoDataFrame({"facility_id": ["a", "b", "c"],
    ...     "type": ["pmi", "maternite", "mairie"], "name": ["PMI", "Mat.", "Mairie"]},
    ...     geometry=[Point(-2.1, 47.4), Point(-2.2, 47.4), Point(-2.0, 47.5)], crs=WGS84)
    >>> build_candidates(f)["facility_id"].tolist()
    ['a', 'c']

    See Also
    --------
    find_host_sites
    guides/implantation.md : which structures can host a Maison.
    """
    bad = [t for t in host_types if t not in FACILITY_TYPES]
    if bad:
        raise InputError(
            f"host_types holds unknown facility types {bad!r}; use some of {list(HOST_TYPES)}"
        )
    if facilities.crs is None:
        raise InputError("facilities has no CRS; set one (EPSG:4326 expected)")
    fac = facilities.to_crs(WGS84) if not facilities.crs.equals(WGS84) else facilities.copy()
    for col in FACILITY_COLUMNS:
        if col not in fac.columns:
            fac[col] = np.nan if col == "capacity" else ""
    kind = np.where(fac["type"].isin(host_types), "host",
                    np.where(fac["type"].eq(EXISTING_TYPE), "existing", ""))
    fac = fac.loc[kind != "", list(FACILITY_COLUMNS)].copy()
    fac["candidate_kind"] = kind[kind != ""]
    parts = [fac]
    if user_points is not None and len(user_points):
        parts.append(_user_candidates(user_points, territory))
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else fac.reset_index(drop=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=WGS84)
    if not (out["candidate_kind"] != "existing").any():
        found = sorted(set(facilities["type"].astype(str))) if "type" in facilities else []
        raise InputError(
            f"no candidate site: none of the {len(facilities)} facilities has a type in "
            f"host_types={list(host_types)!r} (types found: {found}) and no user point was "
            "given; widen host_types or add user points"
        )
    return out


def _user_candidates(points: gpd.GeoDataFrame | gpd.GeoSeries,
                     territory: gpd.GeoDataFrame | gpd.GeoSeries | None) -> gpd.GeoDataFrame:
    if points.crs is None:
        raise InputError("user_points has no CRS; set one (EPSG:4326 for longitude/latitude)")
    if territory is None:
        raise InputError("user_points needs territory= (the territory polygon) to check "
                         "that each point lies inside it")
    if territory.crs is None:
        raise InputError("territory has no CRS; set one (EPSG:4326 expected)")
    gdf = points if isinstance(points, gpd.GeoDataFrame) else gpd.GeoDataFrame(geometry=points)
    geoms = gdf.geometry
    not_point = geoms.isna() | geoms.is_empty | (geoms.geom_type != "Point")
    if not_point.any():
        raise InputError(
            f"user_points rows {list(gdf.index[not_point.to_numpy()][:5])} are not points; "
            "give one point per proposed site"
        )
    area = territory.to_crs(METRIC_CRS).geometry.union_all()
    metric = geoms.to_crs(METRIC_CRS)
    outside = ~metric.apply(area.covers).to_numpy(dtype=bool)
    names = (gdf["name"].astype(str) if "name" in gdf.columns
             else pd.Series([f"{_USER_LABEL} n°{i + 1}" for i in range(len(gdf))],
                            index=gdf.index))
    if outside.any():
        rows = [f"row {i} ({names.iloc[i]!r}, {geoms.to_crs(WGS84).iloc[i].wkt})"
                for i in np.flatnonzero(outside)[:5]]
        raise InputError(
            f"user_points lie outside the territory polygon: {rows}; move them inside "
            "the territory or drop them"
        )
    n = len(gdf)
    data = {c: [""] * n for c in FACILITY_COLUMNS if c != "geometry"}
    data["facility_id"] = [f"user:{i + 1}" for i in range(n)]
    data["type"] = [USER_SITE_TYPE] * n
    data["name"] = names.tolist()
    data["source"] = ["user"] * n
    data["source_id"] = [str(i + 1) for i in range(n)]
    data["position_precision"] = ["address"] * n
    out = gpd.GeoDataFrame(data, geometry=list(geoms.to_crs(WGS84)), crs=WGS84)
    out["capacity"] = np.nan
    out["candidate_kind"] = "user"
    return out


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
        :class:`diagnosis.travel_times.TravelTimes`, or a DataFrame indexed by
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
        replacement; p-median: weighted minutes gained), ``explanation`` (French).

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
    minutes = _align_minutes(travel_minutes, demand, candidates, demand_id_col)

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
    fixed_local = np.flatnonzero(is_fixed[pool])
    d = minutes[:, pool]
    k_checked, _ = _check_k_fixed(k, fixed_local, pool.size)
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


def _ids(df: pd.DataFrame, id_col: str, mask: np.ndarray) -> list[str]:
    if id_col in df.columns:
        return [str(v) for v in df.loc[mask, id_col].head(5)]
    return [str(v) for v in df.index[mask][:5]]


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
            return births * rate / 100.0
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
    # runner-up of each new site: best single replacement, others kept
    if sol.problem == "max_covering":
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
    # differences below the rounding noise of the sums are ties
    adv = np.where(np.abs(adv) <= 1e-9 * max(float(np.abs(w).sum()), 1.0), 0.0, adv)
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
        }
        rec["explanation"] = _explain(rec, t, sol.problem)
        records.append(rec)
    rec_rows = _site_rows(candidates, pool[sel], "recommandé")
    for col in ("births_covered", "births_new", "need_covered", "need_exclusive",
                "single_parent_families", "births_poverty", "runner_up_id",
                "runner_up_name", "advantage", "explanation"):
        rec_rows[col] = [x[col] for x in records] if records else []
    rec_rows = rec_rows.sort_values(["need_exclusive", "facility_id"],
                                    ascending=[False, True], kind="stable")
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
    newly = summary["births_newly_covered"]
    message = (
        f"{len(sel)} site(s) recommandé(s) ({status_label}) : "
        f"{_fr(summary['births_covered_after'])} naissances par an à moins de {_fr(t)} min "
        f"d'une Maison ({_fr(summary['share_covered_after'], 1)} %), dont {_fr(newly)} "
        "nouvellement couvertes."
    )
    if sol.status in ("time_limit", "stopped"):
        message += (f" Le solveur s'est arrêté avant de prouver l'optimum : la solution est "
                    f"au plus à {_fr(100 * sol.gap, 2)} % de l'optimum.")
    summary.update({"status": sol.status, "status_label": status_label, "message": message,
                    "method": sol.method, "gap": sol.gap, "runtime_s": sol.runtime_s,
                    "objective": sol.objective})
    return SitingResult(layers={"sites": sites, "demand": dem}, summary=summary,
                        params=params, solution=sol)


def _p_median_penalty(d: np.ndarray) -> float:
    finite = d[np.isfinite(d)]
    return 10.0 * float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def _explain(rec: Mapping[str, Any], max_minutes: float, problem: str) -> str:
    """One French sentence per recommended site (counts rounded for reading)."""
    t = _fr(max_minutes)

    def need(x: float) -> str:
        return _fr(x, 0 if abs(x) >= 10 else 1)

    parts = [
        f"Couvre {_fr(rec['births_covered'], 0)} naissances par an à {t} min ou moins, dont "
        f"{_fr(rec['births_new'], 0)} hors de portée de l'offre existante",
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
    >>> from shapely.geometry import Point
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
