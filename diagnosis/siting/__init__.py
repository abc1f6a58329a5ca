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

Layout (one module per topic): :mod:`._common` (constants, the solver result, input
checks), :mod:`.covering` (maximal covering: greedy, swap, reduction, HiGHS model),
:mod:`.p_median`, :mod:`._highs` (calls to HiGHS), :mod:`.need_weights`,
:mod:`.candidates`, :mod:`.scenario` (the GeoDataFrame front) and :mod:`.explain`
(French explanations, scenarios side by side).

See Also
--------
guides/implantation.md : the models, the need weights, greedy vs exact, how to read
    the explanations.
"""

from __future__ import annotations

from diagnosis.siting._common import (
    AUTO_EXACT_MAX_NONZEROS,
    DEFAULT_NEED_WEIGHTS,
    DEFAULT_TIME_LIMIT_S,
    EXISTING_TYPE,
    HOST_TYPES,
    METHODS,
    OBJECTIVES,
    P_MEDIAN_EXACT_MAX_PAIRS,
    STATUS_LABELS,
    USER_SITE_TYPE,
    SolverResult,
    _as_coverage,
)
from diagnosis.siting.candidates import build_candidates
from diagnosis.siting.covering import _greedy_covering, _reduce_covering, solve_max_covering
from diagnosis.siting.explain import compare_scenarios
from diagnosis.siting.need_weights import (
    NEED_FACTOR_LABELS,
    POVERTY_SOURCES,
    SINGLE_PARENT_SOURCES,
    compute_need_weights,
)
from diagnosis.siting.p_median import solve_p_median
from diagnosis.siting.scenario import SitingResult, find_host_sites

__all__ = [
    "AUTO_EXACT_MAX_NONZEROS", "DEFAULT_NEED_WEIGHTS", "DEFAULT_TIME_LIMIT_S", "EXISTING_TYPE",
    "HOST_TYPES", "METHODS", "NEED_FACTOR_LABELS", "OBJECTIVES", "P_MEDIAN_EXACT_MAX_PAIRS",
    "POVERTY_SOURCES", "SINGLE_PARENT_SOURCES", "STATUS_LABELS", "USER_SITE_TYPE",
    "SitingResult", "SolverResult", "build_candidates", "compare_scenarios",
    "compute_need_weights", "find_host_sites", "solve_max_covering", "solve_p_median",
    # private helpers the tests exercise
    "_as_coverage", "_greedy_covering", "_reduce_covering",
]
