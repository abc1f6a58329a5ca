from __future__ import annotations

import math

import pandas as pd
import pytest

from diagnosis.errors import InputError
from diagnosis.needs import compute_needs
from diagnosis.schema import NEEDS_COLUMNS


def _base(**over):
    row = {"code_insee": "44001", "births_2024": 10.0, "births_2016_2021": 60.0,
           "population_2022": 1000.0, "area_km2": 20.0, "median_income_2021": 21000.0,
           "poverty_rate_2021": float("nan"), "single_parent_families_2022": 30.0,
           "couples_with_children_2022": 90.0}
    row.update(over)
    return pd.DataFrame([row])


def test_derived_indicators_by_hand():
    n = compute_needs(_base()).iloc[0]
    assert n.births_mean_2016_2021 == 10.0
    assert n.density_per_km2 == 50.0
    assert n.families_2022 == 120.0
    assert n.single_parent_share_2022 == 25.0
    assert n.under3_estimate == 30.0
    assert math.isnan(n.poverty_rate_2021)  # secret stays missing, never 0
    assert set(NEEDS_COLUMNS) <= set(compute_needs(_base()).columns)


def test_zero_area_and_no_family_give_nan_not_inf():
    n = compute_needs(_base(area_km2=0.0, single_parent_families_2022=0.0,
                            couples_with_children_2022=0.0)).iloc[0]
    assert math.isnan(n.density_per_km2) and math.isnan(n.single_parent_share_2022)


def test_missing_and_negative_columns_are_named():
    with pytest.raises(InputError, match="births_2024"):
        compute_needs(_base().drop(columns="births_2024"))
    with pytest.raises(InputError, match="negative"):
        compute_needs(_base(births_2024=-1.0))
