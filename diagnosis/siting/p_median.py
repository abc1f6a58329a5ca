"""p-median: greedy plus vertex substitution, exact on HiGHS for small instances.

Part of :mod:`diagnosis.siting` (see its docstring for the models).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse

from diagnosis.errors import InputError
from diagnosis.pmedian import solve_p_median_fast
from diagnosis.siting._common import (
    DEFAULT_TIME_LIMIT_S,
    P_MEDIAN_EXACT_MAX_PAIRS,
    SolverResult,
    _check_k_fixed,
    _check_method,
    _check_time_limit,
    _check_weights,
    _frozen,
)
from diagnosis.siting._highs import _highs_outcome, _import_highspy, _run_highs


#: Facility types that can host a Maison (the default candidate pool).
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
    # greedy + fast vertex substitution with restarts (diagnosis.pmedian): within 0.04 %
    # of the Lagrangian bound in 0.3 s at 2,000 x 300, p = 1..10 (bench/siting.py)
    sel = np.asarray(solve_p_median_fast(dc, wr, k, fixed=fixed_arr,
                                         unreachable_minutes=penalty).selected,
                     dtype=np.int64)
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


def _p_median_penalty(d: np.ndarray) -> float:
    finite = d[np.isfinite(d)]
    return 10.0 * float(finite.max()) if finite.size and finite.max() > 0 else 1.0
