"""Tests of diagnosis.cohorts: hand-checkable peer-group arithmetic (no data files)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from diagnosis.cohorts import CohortPlan, compute_cohorts
from diagnosis.errors import InputError


def test_reference_case_by_hand():
    # 120 births/yr -> 10/month; 25 % join -> 2.5 families/month, 30/yr;
    # window 3 months -> 7.5; 10 families take 4 months; 3 groups/yr;
    # joining in the 4th month of pregnancy -> 6 prenatal months + 12 = 18 months;
    # 3 x 18 / 12 = 4.5 groups at once; 4.5 x 2 sessions x (1.5 + 0.5) h = 18 h/month
    p = compute_cohorts(120, uptake_rate=0.25)
    assert isinstance(p, CohortPlan)
    assert (p.births_per_year, p.n_years, p.births_per_month) == (120.0, 1, 10.0)
    assert (p.families_per_month, p.families_per_year, p.families_per_window) == (2.5, 30.0, 7.5)
    assert (p.months_to_fill_group, p.groups_per_year) == (4.0, 3.0)
    assert p.fills_within_window is False and p.group_size_within_window == 7.5
    assert (p.prenatal_months, p.group_duration_months, p.concurrent_groups) == (6, 18.0, 4.5)
    assert p.facilitator_hours_per_month == 18.0
    assert len(p.warnings) == 1 and "4 mois" in p.warnings[0] and "3 mois" in p.warnings[0]


def test_large_catchment_has_no_warning():
    # 480 births, 50 % -> 20 families/month: a group of 10 in half a month
    p = compute_cohorts(480, uptake_rate=0.5, prenatal_start_month=None,
                        facilitators_per_session=2, facilitator_prep_hours_per_session=0)
    assert p.months_to_fill_group == 0.5 and p.fills_within_window
    assert p.groups_per_year == 24.0 and p.group_size_within_window == 10.0
    # no prenatal phase: 12 months; 24 groups/yr -> 24 at once; 24 x 2 x 1.5 x 2 = 144 h
    assert p.prenatal_months == 0 and p.concurrent_groups == 24.0
    assert p.facilitator_hours_per_month == 144.0
    assert p.warnings == ()


@pytest.mark.parametrize(
    "series",
    [[100, 140, 120], pd.Series([100.0, 140.0, 120.0], index=[2022, 2023, 2024]),
     {2022: 100, 2023: 140, 2024: 120}, np.array([100, 140, 120]),
     [100, 140, float("nan"), 120]],
)
def test_series_uses_the_arithmetic_mean_of_known_years(series):
    p = compute_cohorts(series, uptake_rate=0.25)
    assert p.births_per_year == 120.0 and p.n_years == 3


def test_small_catchment_warns_less_than_one_group_a_year():
    p = compute_cohorts(24, uptake_rate=0.25)  # 6 families a year
    assert p.groups_per_year == pytest.approx(0.6)
    assert any("Moins d'un groupe" in w for w in p.warnings)


def test_zero_births_is_a_plan_with_a_warning():
    p = compute_cohorts(0, uptake_rate=0.3)
    assert math.isinf(p.months_to_fill_group) and p.groups_per_year == 0.0
    assert p.facilitator_hours_per_month == 0.0
    assert "Aucune naissance" in p.warnings[0]


@pytest.mark.parametrize("rate", [0, 0.0, -0.1, 1.01, 25, float("nan"), True])
def test_uptake_rate_outside_the_range_raises(rate):
    with pytest.raises(InputError, match=r"\(0, 1\]"):
        compute_cohorts(120, uptake_rate=rate)


def test_uptake_rate_of_one_is_allowed():
    assert compute_cohorts(12, uptake_rate=1.0).families_per_month == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"births_per_year": -5}, ">= 0"), ({"births_per_year": [np.nan]}, "all missing"),
     ({"births_per_year": "120"}, "number or a series"),
     ({"group_size": 0}, "group_size=0"), ({"group_size": 2.5}, "group_size=2.5"),
     ({"birth_window_months": 0}, "birth_window_months=0"),
     ({"prenatal_start_month": 10}, "1 to 9"), ({"session_hours": -1}, "session_hours"),
     ({"facilitator_prep_hours_per_session": -1}, ">= 0"),
     ({"facilitators_per_session": 0}, "facilitators_per_session")],
)
def test_bad_parameters_raise(kwargs, match):
    args = {"births_per_year": 120, "uptake_rate": 0.25, **kwargs}
    births = args.pop("births_per_year")
    with pytest.raises(InputError, match=match):
        compute_cohorts(births, **args)


def test_plan_is_frozen_and_tabulates():
    p = compute_cohorts(120, uptake_rate=0.25)
    with pytest.raises(AttributeError):
        p.groups_per_year = 5.0  # type: ignore[misc]
    t = p.to_frame()
    assert list(t.columns) == ["Indicateur", "Valeur"]
    assert t.set_index("Indicateur").loc["Heures d'animation par mois", "Valeur"] == 18.0


# --- one Maison's capacity vs the catchment's potential --------------------------------


def test_dense_catchment_is_bounded_by_one_maisons_capacity():
    # a dense urban catchment: 2,400 births/yr, 15 % join -> 30 families/month,
    # 36 groups could start a year; one facilitator holding 3 groups of 18 months
    # starts 3 x 12 / 18 = 2 a year
    p = compute_cohorts(2400, uptake_rate=0.15)
    assert p.groups_per_year == pytest.approx(36.0)
    assert (p.capacity_concurrent_groups, p.capacity_groups_per_year) == (3.0, 2.0)
    assert p.maison_groups_per_year == 2.0 and p.maison_concurrent_groups == 3.0
    assert p.maison_families_per_year == 20.0
    # 3 groups x 2 sessions x (1.5 + 0.5) h
    assert p.maison_facilitator_hours_per_month == 12.0
    assert p.binding == "capacite"
    assert "capacité de la Maison limite" in p.binding_text
    assert "36" in p.binding_text and "3 à la fois" in p.binding_text
    assert p.maison_groups_per_year < p.groups_per_year


def test_small_catchment_is_bounded_by_its_births():
    p = compute_cohorts(24, uptake_rate=0.25)  # 0.6 groups a year < 2
    assert p.binding == "potentiel"
    assert p.maison_groups_per_year == pytest.approx(0.6)
    assert p.maison_concurrent_groups == pytest.approx(p.concurrent_groups)
    assert p.maison_facilitator_hours_per_month == pytest.approx(p.facilitator_hours_per_month)
    assert "naissances de la zone desservie limitent" in p.binding_text
    assert "se remplit en 20 mois" in p.binding_text


def test_capacity_options_scale_the_maison():
    # 2 facilitators x 4 groups = 8 at once -> 8 x 12 / 18 = 5.33 a year
    p = compute_cohorts(2400, uptake_rate=0.15, facilitators=2, groups_per_facilitator=4)
    assert p.capacity_concurrent_groups == 8.0
    assert p.capacity_groups_per_year == pytest.approx(16 / 3)
    assert "2 animatrices ou animateurs" in p.binding_text
    assert p.params["facilitators"] == 2 and p.params["groups_per_facilitator"] == 4
    # co-facilitation: each group takes two slots
    q = compute_cohorts(2400, uptake_rate=0.15, facilitators=2, groups_per_facilitator=4,
                        facilitators_per_session=2)
    assert q.capacity_concurrent_groups == 4.0


def test_default_capacity_comes_from_settings():
    from diagnosis import settings

    p = compute_cohorts(2400, uptake_rate=0.15)
    assert p.capacity_concurrent_groups == (
        settings.DEFAULT_FACILITATORS_PER_MAISON * settings.DEFAULT_GROUPS_PER_FACILITATOR)


def test_zero_births_binds_on_the_catchment():
    p = compute_cohorts(0, uptake_rate=0.3)
    assert p.binding == "potentiel" and p.maison_groups_per_year == 0.0
    assert "se remplit" not in p.binding_text


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"facilitators": 0}, "facilitators=0"), ({"groups_per_facilitator": 1.5}, "1.5"),
    ({"groups_per_facilitator": True}, "groups_per_facilitator=True"),
])
def test_bad_capacity_options_raise(kwargs, match):
    with pytest.raises(InputError, match=match):
        compute_cohorts(120, uptake_rate=0.25, **kwargs)


def test_table_holds_potential_and_capacity_rows():
    t = compute_cohorts(2400, uptake_rate=0.15).to_frame().set_index("Indicateur")["Valeur"]
    assert t["Groupes pouvant démarrer par an"] == pytest.approx(36.0)
    assert t["Groupes par an réellement animés par la Maison"] == 2.0
    assert t["Mois pour réunir un groupe"] == pytest.approx(10 / 30)
