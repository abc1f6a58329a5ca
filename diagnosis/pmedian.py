"""Fast p-median heuristic (greedy + fast vertex substitution) and a Lagrangian bound.

:func:`solve_p_median_fast` opens ``k`` sites minimising the weighted travel time to the
nearest open site. It runs the same algorithm as the greedy path of
:func:`diagnosis.siting.solve_p_median` (greedy, then best-improvement exchanges of one
open site for one closed candidate, Teitz & Bart), but evaluates *all* exchanges of an
iteration in a few passes over the matrix (Whitaker's fast interchange, in the form of
Resende & Werneck 2007): with ``d1``/``d2`` the times to the nearest and second-nearest
open sites,

- ``gain(j) = Σ_i w_i (d1_i − d_ij)⁺``: what opening candidate ``j`` saves;
- ``loss(r) = Σ_{i: nearest is r} w_i (d2_i − d1_i)``: what closing ``r`` costs;
- ``extra(j, r) = Σ_{i: nearest is r} w_i (d2_i − max(d_ij, d1_i))⁺``;

and the cost change of the exchange (open ``j``, close ``r``) is
``loss(r) − gain(j) − extra(j, r)``. One iteration costs O(n·m) instead of O(p·n·m).

:func:`p_median_lower_bound` proves how far a solution can be from the optimum: the
Lagrangian relaxation of the assignment constraints, maximised by subgradient steps
(Beasley 1993, "Lagrangean heuristics for location problems"). At 2,000 × 300 a generic
MIP is out of reach, but the bound certifies the heuristic's gap.

Times are minutes, ``np.inf`` or NaN when unreachable; a demand point no open site
reaches costs ``unreachable_minutes`` (default as in :func:`diagnosis.siting.solve_p_median`:
10 × the largest finite time).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from diagnosis.errors import InputError


@dataclass(frozen=True, eq=False)
class PMedianSolution:
    """A p-median solution.

    Attributes
    ----------
    selected
        Columns of the new sites, ascending (``fixed`` excluded).
    fixed
        Columns open beforehand, ascending.
    objective
        Total weighted minutes (unreached demand at ``unreachable_minutes``).
    assignment
        Per demand point, the nearest open site (lowest index on ties), ``-1`` if none
        reaches it.
    n_swaps
        Exchanges applied after the greedy (first descent and improving restarts).
    unreachable_minutes
        The cost of an unreached demand point used.
    runtime_s
        Wall-clock seconds.
    """

    selected: np.ndarray
    fixed: np.ndarray
    objective: float
    assignment: np.ndarray
    n_swaps: int
    unreachable_minutes: float
    runtime_s: float


def _prepare(minutes: object, weights: object, k: object, fixed: Iterable[int],
             unreachable_minutes: float | None
             ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, float, np.ndarray]:
    d = np.asarray(minutes, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] == 0 or d.shape[1] == 0:
        raise InputError(f"minutes must be a non-empty 2-D (demand x candidates) matrix; "
                         f"got shape {d.shape!r}")
    n, m = d.shape
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise InputError(f"weights must have {n} values (one per demand row); got shape "
                         f"{w.shape!r}")
    if not np.isfinite(w).all() or (w < 0).any():
        bad = np.flatnonzero(~np.isfinite(w) | (w < 0))[:5].tolist()
        raise InputError(f"weights must be finite and >= 0; rows {bad} hold "
                         f"{w[bad].tolist()!r}")
    fixed_arr = np.unique(np.asarray(list(fixed), dtype=np.int64))
    if fixed_arr.size and (fixed_arr.min() < 0 or fixed_arr.max() >= m):
        raise InputError(f"fixed holds columns outside 0..{m - 1}: {fixed_arr.tolist()!r}")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1 \
            or k > m - fixed_arr.size:
        raise InputError(f"k={k!r} must be a whole number between 1 and the "
                         f"{m - fixed_arr.size} candidates not fixed")
    d = np.where(np.isnan(d), np.inf, d)
    if (d < 0).any():
        raise InputError("minutes holds negative travel times; check the travel-time matrix")
    finite = np.isfinite(d)
    if not finite.any():
        raise InputError("minutes has no finite travel time: no candidate reaches any demand")
    penalty = 10.0 * float(d[finite].max()) if unreachable_minutes is None \
        else float(unreachable_minutes)
    if penalty <= 0 and float(d[finite].max()) == 0:
        penalty = 1.0
    if not (math.isfinite(penalty) and penalty > 0):
        raise InputError(f"unreachable_minutes={unreachable_minutes!r} must be a number of "
                         "minutes > 0")
    rows = np.flatnonzero(w > 0)
    return np.minimum(d[rows], penalty), w[rows], int(k), fixed_arr, penalty, d


def _nearest_two(dc: np.ndarray, open_: np.ndarray, penalty: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time to the nearest and second-nearest open site (or ``penalty``), nearest's column."""
    n = dc.shape[0]
    sub = np.concatenate([dc[:, open_], np.full((n, 1), penalty)], axis=1)
    order = np.argsort(sub, axis=1, kind="stable")[:, :2]
    rows = np.arange(n)
    d1 = sub[rows, order[:, 0]]
    d2 = sub[rows, order[:, 1]] if sub.shape[1] > 1 else d1
    c1 = np.where(order[:, 0] < open_.size, open_[np.minimum(order[:, 0], open_.size - 1)], -1)
    return d1, d2, c1


def _weighted_column_sums(w: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``w @ matrix`` in numpy's own loop.

    Not through BLAS on purpose: on a busy machine OpenBLAS threads spin and cost
    several times the work (measured 10x at 2,000 x 300 with a load of 4 on 2 cores).
    """
    return cast("np.ndarray", np.einsum("i,ij->j", w, matrix))


def _closed_mask(m: int, fixed: np.ndarray, selected: np.ndarray) -> np.ndarray:
    closed = np.ones(m, dtype=bool)
    closed[fixed] = False
    closed[selected] = False
    return closed


def _cost(dc: np.ndarray, wr: np.ndarray, fixed: np.ndarray, selected: np.ndarray,
          penalty: float) -> float:
    open_ = np.union1d(fixed, selected).astype(np.int64)
    return float(wr @ np.minimum(dc[:, open_].min(axis=1), penalty))


def _interchange(dc: np.ndarray, wr: np.ndarray, selected: np.ndarray, fixed: np.ndarray,
                 penalty: float, max_swaps: int) -> tuple[np.ndarray, int]:
    """Best improving exchange until none improves (fast interchange); returns the swaps."""
    n, m = dc.shape
    closed = _closed_mask(m, fixed, selected)
    n_swaps = 0
    while n_swaps < max_swaps and selected.size + fixed.size < m:
        open_ = np.union1d(fixed, selected).astype(np.int64)
        d1, d2, c1 = _nearest_two(dc, open_, penalty)
        current = float(wr @ d1)
        gain = _weighted_column_sums(wr, np.maximum(d1[:, None] - dc, 0.0))
        slot = np.full(m, -1, dtype=np.int64)
        slot[selected] = np.arange(selected.size)
        owner = np.where(c1 >= 0, slot[np.maximum(c1, 0)], -1)  # which selected site serves i
        mine = np.flatnonzero(owner >= 0)
        loss = np.bincount(owner[mine], weights=(wr * (d2 - d1))[mine],
                           minlength=selected.size)
        # extra(j, r): rows grouped by the selected site serving them, summed per group.
        rows = mine[np.argsort(owner[mine], kind="stable")]
        extra = np.zeros((selected.size, m))
        if rows.size:
            groups, starts = np.unique(owner[rows], return_index=True)
            contrib = wr[rows, None] * np.maximum(
                d2[rows, None] - np.maximum(dc[rows], d1[rows, None]), 0.0)
            extra[groups] = np.add.reduceat(contrib, starts, axis=0)
        delta = loss[:, None] - gain[None, :] - extra
        delta[:, ~closed] = np.inf
        flat = int(np.argmin(delta))
        r, c = divmod(flat, m)
        if not delta[r, c] < -1e-9 * max(abs(current), 1.0):
            break
        closed[selected[r]] = True
        closed[c] = False
        selected = np.sort(np.append(np.delete(selected, r), c))
        n_swaps += 1
    return selected, n_swaps


def solve_p_median_fast(
    minutes: np.ndarray,
    weights: np.ndarray | Sequence[float],
    k: int,
    *,
    fixed: Iterable[int] = (),
    unreachable_minutes: float | None = None,
    max_swaps: int = 10_000,
    initial: Iterable[int] | None = None,
    n_restarts: int = 16,
    seed: int = 0,
) -> PMedianSolution:
    """Greedy + fast vertex substitution for the p-median (see the module docstring).

    Parameters
    ----------
    minutes
        Dense (demand x candidates) minutes; ``np.inf`` or NaN when unreachable.
    weights
        Weight of each demand point, finite and ``>= 0``.
    k
        Number of new sites (``fixed`` come in addition).
    fixed
        Columns of sites already open (never closed by an exchange).
    unreachable_minutes
        Cost of an unreached demand point; default 10 × the largest finite time.
    max_swaps
        Safety limit on the number of exchanges.
    initial
        ``k`` columns (not fixed) to start the exchanges from instead of the greedy
        (for multi-start searches).
    n_restarts
        Perturbations of the iterated local search after the first local optimum (0:
        plain greedy + interchange, the algorithm of ``diagnosis.siting``).
    seed
        Seed of the perturbations (the result is deterministic for a given seed).

    Returns
    -------
    PMedianSolution

    Raises
    ------
    InputError
        Bad shapes, weights, ``k`` or ``fixed``; negative times; no finite time.

    Examples
    --------
    >>> d = np.array([[0.0, 10.0], [10.0, 0.0], [4.0, 6.0]])
    >>> r = solve_p_median_fast(d, [1.0, 3.0, 1.0], 1)
    >>> r.selected.tolist(), r.objective
    ([1], 16.0)
    """
    t0 = time.perf_counter()
    dc, wr, k, fixed_arr, penalty, d_full = _prepare(minutes, weights, k, fixed,
                                                     unreachable_minutes)
    n, m = dc.shape
    # Greedy: open the site with the largest gain, k times (ties: lowest index).
    cur = np.full(n, penalty)
    if fixed_arr.size:
        cur = np.minimum(cur, dc[:, fixed_arr].min(axis=1))
    closed = np.ones(m, dtype=bool)
    closed[fixed_arr] = False
    sel: list[int] = []
    if initial is not None:
        sel = sorted({int(j) for j in initial})
        if len(sel) != k or min(sel) < 0 or max(sel) >= m or not closed[sel].all():
            raise InputError(f"initial must hold {k} distinct columns in 0..{m - 1} that "
                             f"are not fixed; got {list(initial)!r}")
        closed[sel] = False
    for _ in range(k - len(sel)):
        gain = _weighted_column_sums(wr, np.maximum(cur[:, None] - dc, 0.0))
        gain[~closed] = -np.inf
        j = int(np.argmax(gain))
        sel.append(j)
        closed[j] = False
        cur = np.minimum(cur, dc[:, j])
    selected, n_swaps = _interchange(dc, wr, np.sort(np.asarray(sel, dtype=np.int64)),
                                     fixed_arr, penalty, max_swaps)
    # Iterated local search: perturb the best solution (close q random sites, open q
    # random candidates), run the interchange again, keep what improves.
    best_cost = _cost(dc, wr, fixed_arr, selected, penalty)
    rng = np.random.default_rng(seed)
    for _ in range(n_restarts):
        free = np.flatnonzero(_closed_mask(m, fixed_arr, selected))
        q = min(int(rng.integers(1, 3)), selected.size, free.size)
        if q == 0:
            break
        trial = selected.copy()
        trial[rng.choice(selected.size, q, replace=False)] = rng.choice(free, q, replace=False)
        trial, swaps = _interchange(dc, wr, np.sort(trial), fixed_arr, penalty, max_swaps)
        cost = _cost(dc, wr, fixed_arr, trial, penalty)
        if cost < best_cost - 1e-9 * max(abs(best_cost), 1.0):
            selected, best_cost = trial, cost
            n_swaps += swaps

    open_ = np.union1d(fixed_arr, selected).astype(np.int64)
    sub = d_full[:, open_]
    best = sub.min(axis=1)
    assignment = np.where(np.isfinite(best), open_[np.argmin(sub, axis=1)], -1)
    w_all = np.asarray(weights, dtype=np.float64)
    objective = float((w_all * np.minimum(best, penalty)).sum())
    return PMedianSolution(selected=selected, fixed=fixed_arr, objective=objective,
                           assignment=assignment.astype(np.int64), n_swaps=n_swaps,
                           unreachable_minutes=penalty, runtime_s=time.perf_counter() - t0)


def p_median_lower_bound(
    minutes: np.ndarray,
    weights: np.ndarray | Sequence[float],
    k: int,
    *,
    upper_bound: float,
    fixed: Iterable[int] = (),
    unreachable_minutes: float | None = None,
    iterations: int = 600,
) -> float:
    """Lagrangian lower bound on the p-median optimum (subgradient optimisation).

    Relaxing "each demand point is assigned once" with multipliers ``λ_i`` gives
    ``L(λ) = Σ_i λ_i + Σ_{j open} ρ_j`` with ``ρ_j = Σ_i min(0, w_i d_ij − λ_i)``, where
    the open columns are the fixed ones, the "unreached" column (cost
    ``unreachable_minutes``, always available) and the ``k`` free columns of smallest
    ``ρ_j``. Every ``L(λ)`` is a lower bound; subgradient steps
    ``λ += θ (UB − L) g / ||g||²`` raise it, halving ``θ`` when it stalls.

    Parameters
    ----------
    minutes, weights, k, fixed, unreachable_minutes
        As in :func:`solve_p_median_fast` (same defaults, so the bound is on the same
        objective).
    upper_bound
        Objective of a known solution (e.g. :func:`solve_p_median_fast`), for the steps.
    iterations
        Subgradient iterations.

    Returns
    -------
    float
        The best bound found: no solution has a smaller objective.

    Examples
    --------
    >>> d = np.array([[0.0, 10.0], [10.0, 0.0], [4.0, 6.0]])
    >>> lb = p_median_lower_bound(d, [1.0, 3.0, 1.0], 1, upper_bound=16.0)
    >>> bool(lb <= 16.0 + 1e-9), round(lb, 6)
    (True, 16.0)
    """
    dc, wr, k, fixed_arr, penalty, _ = _prepare(minutes, weights, k, fixed,
                                                unreachable_minutes)
    n, m = dc.shape
    cost = wr[:, None] * dc
    virtual = wr * penalty
    free = np.ones(m, dtype=bool)
    free[fixed_arr] = False
    free_idx = np.flatnonzero(free)
    lam = cost.min(axis=1)
    best = -np.inf
    theta = 2.0
    stall = 0
    for _ in range(iterations):
        red = np.minimum(cost - lam[:, None], 0.0)
        rho = red.sum(axis=0)
        pick = free_idx[np.argpartition(rho[free_idx], k - 1)[:k]] if k < free_idx.size \
            else free_idx
        open_ = np.concatenate([fixed_arr, pick])
        red_v = np.minimum(virtual - lam, 0.0)
        value = float(lam.sum() + rho[open_].sum() + red_v.sum())
        if not math.isfinite(best) or value > best + 1e-12 * max(abs(best), 1.0):
            best, stall = value, 0
        else:
            stall += 1
            if stall >= 20:
                theta, stall = theta / 2.0, 0
                if theta < 1e-6:
                    break
        g = 1.0 - (red[:, open_] < 0).sum(axis=1) - (red_v < 0)
        norm = float(g @ g)
        if norm == 0:
            break  # the relaxed solution is feasible: the bound is the optimum
        lam = lam + theta * (upper_bound - value) / norm * g
    return best
