"""Maximal covering location: lazy greedy, swap, instance reduction, HiGHS model.

Part of :mod:`diagnosis.siting` (see its docstring for the models).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from diagnosis.errors import InputError
from diagnosis.siting._common import (
    AUTO_EXACT_MAX_NONZEROS,
    DEFAULT_TIME_LIMIT_S,
    SolverResult,
    _as_coverage,
    _check_k_fixed,
    _check_method,
    _check_time_limit,
    _check_weights,
    _frozen,
)
from diagnosis.siting._highs import _highs_outcome, _import_highspy, _run_highs

#: Facility types that can host a Maison (the default candidate pool).
# --------------------------------------------------------------------------------------
# Maximal covering
# --------------------------------------------------------------------------------------
#: Random kicks of the iterated local search, per greedy start (see ``_kick_and_swap``).
KICKS_PER_START = 25
#: Kicks stop at this many coverage pairs visited (n_kicks x pairs), but never below KICKS_MIN.
KICK_PAIR_BUDGET = 13_000_000
KICKS_MIN = 10
#: HiGHS options of the linear relaxation (interior point + crossover gives a vertex).
LP_OPTIONS: dict[str, object] = {"solver": "ipm", "run_crossover": "on", "presolve": "off"}
#: HiGHS options of the branch-and-bound. Presolve is off: on covering models it finds
#: nothing to remove after our reduction yet took half the solve time (6 of 12 s at
#: 4,000 x 400), and the reduced-cost fixing already shrinks the model. The incumbent
#: given is usually optimal, so the search is a proof: the sub-MIP heuristics (RINS, RENS)
#: and feasibility jump are off (-25 % CPU on the bench's hard instances).
MIP_OPTIONS: dict[str, object] = {
    "presolve": "off", "mip_heuristic_run_rins": False, "mip_heuristic_run_rens": False,
    "mip_heuristic_run_feasibility_jump": False,
}
#: Sites added to the LP's support in the restricted MIP: those of largest reduced cost.
RESTRICTED_EXTRA_SITES = 20
#: HiGHS options of the MIP restricted to the LP's sites (small: presolve pays there).
SUB_MIP_OPTIONS: dict[str, object] = {}
#: A kicked optimum this close to the best (share) becomes the next starting point.
ACCEPT_SHARE = 0.005


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
    case) it is an optimal solution and no branch-and-bound is run. Otherwise the MIP
    restricted to the sites the LP opens gives an incumbent, reduced-cost fixing leaves
    out the sites that cannot beat it, and HiGHS's branch-and-bound runs on the rest,
    seeded with the incumbent; ``status`` and ``gap`` come
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
    # kicks cost a few swap passes each, O(coverage pairs): fewer on large instances
    n_kicks = min(KICKS_PER_START * n_starts,
                  max(KICKS_MIN, int(KICK_PAIR_BUDGET / max(a.nnz, 1))))
    return _kick_and_swap(a, w, best, fixed, n_kicks=n_kicks)


def _kick_and_swap(a: sparse.csc_matrix, w: np.ndarray, sel: np.ndarray, fixed: np.ndarray,
                   *, n_kicks: int, seed: int = 0) -> np.ndarray:
    """Iterated local search from a swap-optimum ``sel``; the best selection found.

    Each kick closes 2-3 open sites at random, opens as many random others, restores a
    swap-optimum, and keeps it when it covers more.

    A swap pass stops at a local optimum; a kick leaves it for a neighbouring valley (the
    classic perturbation of iterated local search, Lourenço, Martin & Stützle 2003). The
    random generator is seeded, so the answer is the same at every run.
    """
    k = sel.size
    m = a.shape[1]
    if k < 2 or n_kicks <= 0 or k + fixed.size >= m:
        return sel
    rng = np.random.default_rng(seed)
    tol = 1e-9 * max(float(w.sum()), 1.0)
    best = sel
    best_obj = _covered_weight(a, w, np.union1d(best, fixed))
    closed = np.ones(m, dtype=bool)
    closed[fixed] = False
    cur = best
    for i in range(n_kicks):
        r = min(k, 2 + i % 2)
        drop = rng.choice(k, r, replace=False)
        keep = np.delete(cur, drop)
        free = closed.copy()
        free[cur] = False
        pool = np.flatnonzero(free)
        if pool.size < r:
            break
        add = rng.choice(pool, r, replace=False)
        cand = _swap_covering(a, w, np.union1d(keep, add).astype(np.int64), fixed)
        obj = _covered_weight(a, w, np.union1d(cand, fixed))
        if obj > best_obj + tol:
            best, best_obj = cand, obj
        # walk on from a near-best optimum (within ACCEPT_SHARE of the best), else restart
        # from the best: the search crosses plateaus instead of circling one valley
        cur = cand if obj >= best_obj * (1.0 - ACCEPT_SHARE) else best
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
    2. Otherwise the incumbent ``L`` is the best of: the greedy + swap sites, the LP's
       ``k`` largest values improved by a swap pass, and the optimum of the same MIP
       restricted to the sites the LP opens (small, solved by HiGHS in milliseconds,
       often the global optimum). Then reduced-cost fixing: a site
       at 0 in the LP with reduced cost ``r`` (<= 0) cannot be open in a solution worth
       more than ``z + r``; when ``z + r < L`` it is left out (symmetrically, a site at
       1 with ``z - r < L`` is forced in). HiGHS's branch-and-bound then runs on what is
       left (presolve off: see :data:`MIP_OPTIONS`), seeded with the incumbent. The
       bound returned covers the sites left out (their bounds are below ``L``).
    """
    highspy = _import_highspy()
    t0 = time.perf_counter()
    b = red.matrix
    nd, nc = b.shape
    model = _covering_model(b, red.weights, k)
    h, model_status, info = _run_highs(
        highspy, **model, integrality=None, start=None, time_limit_s=time_limit_s,
        mip_rel_gap=mip_rel_gap, options=LP_OPTIONS,
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
    # incumbent: the best of the greedy + swap sites and of the LP's k largest values
    # improved by the same swap pass, on the reduced instance
    y0 = np.zeros(nc)
    reps = red.representative[start()]
    y0[reps[reps >= 0]] = 1.0
    for j in range(nc):
        if y0.sum() >= k:
            break
        if y0[j] == 0:
            y0[j] = 1.0
    incumbent = float(red.weights @ np.minimum(1.0, b @ y0))
    if lp_ok:
        rounded = np.lexsort((np.arange(nc), -y_lp))[:k].astype(np.int64)
        swapped = _swap_covering(b, red.weights, rounded, np.zeros(0, np.int64))
        value = _covered_weight(b, red.weights, swapped)
        if value > incumbent:
            y0 = np.zeros(nc)
            y0[swapped] = 1.0
            incumbent = value
    if lp_ok:
        # a better incumbent from the sites the LP uses: the same MIP restricted to them
        # (and the incumbent's) is small, and its optimum is often the global one
        support = (y_lp > 1e-9) | (y0 > 0)
        # and the sites whose LP reduced cost is closest to zero (the next to enter)
        rest = np.flatnonzero(~support)
        support[rest[np.argsort(-rc[rest], kind="stable")[:RESTRICTED_EXTRA_SITES]]] = True
        if support.sum() < nc:
            found = _covering_mip(
                highspy, b, red.weights, k, np.flatnonzero(support), y0,
                np.zeros(nc, dtype=bool), time_limit_s=time_limit_s - (time.perf_counter() - t0),
                mip_rel_gap=mip_rel_gap, options=SUB_MIP_OPTIONS)
            if found[1] and found[2] is not None:
                # a swap pass over all the sites may still improve on it
                sub = _swap_covering(b, red.weights, np.flatnonzero(found[2] > 0.5),
                                     np.zeros(0, np.int64))
                value = _covered_weight(b, red.weights, sub)
                if value > incumbent:
                    y0 = np.zeros(nc)
                    y0[sub] = 1.0
                    incumbent = value
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
    kept = np.flatnonzero(keep)
    status, has_sol, y, dual, text = _covering_mip(
        highspy, b, red.weights, k, kept, y0, force,
        time_limit_s=time_limit_s - (time.perf_counter() - t0),
        mip_rel_gap=mip_rel_gap, options=MIP_OPTIONS)
    if kept.size < nc:
        text += f" (after reduced-cost fixing of {nc - kept.size} of {nc} sites)"
    bound = max(dual, left_out_bound) if math.isfinite(dual) else math.inf
    bound = red.base + min(z, bound)
    bound = bound if math.isfinite(bound) else math.nan
    if not has_sol or y is None:
        return None, status, bound, text
    sel = red.candidates[np.flatnonzero(y > 0.5)]
    return np.sort(sel), status, bound, text


def _covering_mip(highspy: Any, b: sparse.csc_matrix, w: np.ndarray, k: int, cols: np.ndarray,
                  y_start: np.ndarray, force: np.ndarray, *, time_limit_s: float,
                  mip_rel_gap: float, options: dict[str, object]
                  ) -> tuple[str, bool, np.ndarray | None, float, str]:
    """The covering MIP on the sites ``cols`` only, seeded with ``y_start`` (over all sites).

    Demand rows that differ only by the other sites are merged again. Returns (status,
    has_solution, solution over all sites or None, HiGHS dual bound, HiGHS status text).
    """
    nc = b.shape[1]
    b_r, w_r = _merge_rows(b[:, cols], w)
    model = _covering_model(b_r, w_r, k)
    model["col_lower"][: cols.size] = force[cols].astype(np.float64)
    y0_r = y_start[cols]
    start = None
    if y0_r.sum() == k:  # the start lies in the restricted model
        start = np.concatenate([y0_r, np.minimum(1.0, b_r @ y0_r)])
    h, model_status, info = _run_highs(
        highspy, **model,
        integrality=np.concatenate([np.ones(cols.size, np.int32),
                                    np.zeros(b_r.shape[0], np.int32)]),
        start=start, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, options=options,
    )
    status, has_sol, text = _highs_outcome(highspy, h, model_status, info)
    y = None
    if has_sol:
        y = np.zeros(nc)
        y[cols] = np.round(np.asarray(h.getSolution().col_value[: cols.size]))
    return status, has_sol, y, float(info.mip_dual_bound), text


