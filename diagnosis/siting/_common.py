"""Constants, the solver result and the input checks shared by the siting models.

Part of :mod:`diagnosis.siting` (see its docstring for the models).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from diagnosis.errors import InputError
from diagnosis.schema import USER_SITE_TYPE_LABEL
from diagnosis.settings import HOST_TYPES as HOST_TYPES  # re-exported
from diagnosis.settings import OBJECTIVES as OBJECTIVES  # re-exported
from diagnosis.settings import USER_SITE_TYPE as USER_SITE_TYPE  # re-exported

#: Facility type of the existing Maisons (candidates that are usually ``fixed``).
EXISTING_TYPE = "maison_1000_jours"
#: Solver methods accepted by :func:`solve_max_covering` and :func:`solve_p_median`.
METHODS: tuple[str, ...] = ("exact", "greedy", "auto")
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

_USER_LABEL = USER_SITE_TYPE_LABEL


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


