"""Calls to the HiGHS solver (highspy) shared by the integer programmes.

Part of :mod:`diagnosis.siting` (see its docstring for the models).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import sparse


#: Facility types that can host a Maison (the default candidate pool).
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


