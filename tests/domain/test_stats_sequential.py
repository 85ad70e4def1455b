"""Sequential testing: reference §9's worked numbers, the formulas' properties, the result JSON."""

from __future__ import annotations

import math

import numpy as np
import pytest

from domain.stats import (
    DifferenceType,
    ProportionStatistic,
    VariantStats,
    compute_experiment_result,
    parse_stats_config,
    sequential_halfwidth,
    sequential_p_value,
    sequential_rho,
    sequential_t_test,
    welch_t_test,
)

CONTROL = ProportionStatistic(n=1000, sum=100)
TEST = ProportionStatistic(n=1000, sum=130)
WORKED = 1e-6  # the brief: §9's sequential numbers to 1e-6
SEQUENTIAL = {"method": "frequentist", "frequentist": {"sequential_testing_enabled": True}}


def variants() -> list[VariantStats]:
    return [
        VariantStats(key="control", number_of_samples=1000, sum=100.0, sum_squares=100.0),
        VariantStats(key="test", number_of_samples=1000, sum=130.0, sum_squares=130.0),
    ]


def test_worked_example_relative() -> None:
    result = sequential_t_test(TEST, CONTROL)
    assert result.confidence_interval == pytest.approx((-0.208706, 0.808706), abs=WORKED)
    assert result.p_value == pytest.approx(0.562221, abs=WORKED)
    assert result.effect == pytest.approx(0.30)
    assert not result.significant
    assert math.isnan(result.t_statistic) and math.isnan(result.degrees_of_freedom)


def test_worked_example_absolute() -> None:
    result = sequential_t_test(TEST, CONTROL, difference_type=DifferenceType.ABSOLUTE)
    assert result.confidence_interval == pytest.approx((-0.014518, 0.074518), abs=WORKED)
    assert result.p_value == pytest.approx(0.378932, abs=WORKED)


def test_worked_example_through_the_result_json() -> None:
    [row] = compute_experiment_result("funnel", variants(), SEQUENTIAL)["variant_results"]
    assert row["confidence_interval"] == pytest.approx([-0.208706, 0.808706], abs=WORKED)
    assert row["p_value"] == pytest.approx(0.562221, abs=WORKED)
    assert row["significant"] is False and row["method"] == "frequentist"
    absolute = {
        "method": "frequentist",
        "frequentist": {"sequential_testing_enabled": True, "difference_type": "ABSOLUTE"},
    }
    [row] = compute_experiment_result("funnel", variants(), absolute)["variant_results"]
    assert row["confidence_interval"] == pytest.approx([-0.014518, 0.074518], abs=WORKED)
    assert row["p_value"] == pytest.approx(0.378932, abs=WORKED)


def test_rho_by_hand() -> None:
    log_alpha = math.log(0.05)
    assert sequential_rho(0.05, 5000) == pytest.approx(
        math.sqrt((-2 * log_alpha + math.log(1 - 2 * log_alpha)) / 5000)
    )


def test_one_look_is_wider_than_the_fixed_horizon_interval() -> None:
    fixed = welch_t_test(TEST, CONTROL).confidence_interval
    sequential = sequential_t_test(TEST, CONTROL).confidence_interval
    assert sequential[0] < fixed[0] and sequential[1] > fixed[1]


def test_weak_evidence_gives_p_value_one_and_strong_evidence_a_tiny_one() -> None:
    assert sequential_p_value(0.01, 1.0, 10.0, 0.05, 5000.0) == 1.0
    assert sequential_p_value(0.5, 1e-4, 1e4, 0.05, 5000.0) < 1e-6
    # Far beyond where exp() overflows: the log-space form still answers 0, not NaN.
    assert sequential_p_value(10.0, 1e-8, 1e6, 0.05, 5000.0) == 0.0


def test_the_formulas_evaluate_arrays_elementwise() -> None:
    effect = np.array([0.3, 0.03, 0.0])
    variance = np.array([0.02652, 0.0002031, 0.01])
    n = np.array([2000.0, 2000.0, 500.0])
    p = sequential_p_value(effect, variance, n, 0.05, 5000.0)
    width = sequential_halfwidth(variance, n, 0.05, 5000.0)
    for i in range(3):
        assert p[i] == pytest.approx(
            sequential_p_value(float(effect[i]), float(variance[i]), float(n[i]), 0.05, 5000.0)
        )
        assert width[i] == pytest.approx(sequential_halfwidth(float(variance[i]), float(n[i]), 0.05, 5000.0))


def test_tuning_parameter_moves_the_interval() -> None:
    narrow_late = sequential_t_test(TEST, CONTROL, tuning_parameter=2000.0).confidence_interval
    narrow_early = sequential_t_test(TEST, CONTROL, tuning_parameter=200.0).confidence_interval
    assert narrow_late != narrow_early


def test_sequential_only_applies_to_the_frequentist_engine() -> None:
    bayes = {"method": "bayesian", "frequentist": {"sequential_testing_enabled": True}}
    assert parse_stats_config(bayes).sequential is False
    assert compute_experiment_result("funnel", variants(), bayes) == compute_experiment_result(
        "funnel", variants()
    )


def test_stored_bad_settings_fall_back_like_upstream() -> None:
    config = parse_stats_config(
        {
            "method": "frequentist",
            "frequentist": {"sequential_testing_enabled": "yes", "sequential_tuning_parameter": 0},
        }
    )
    assert config.sequential is False and config.sequential_tuning_parameter == 5000.0
    assert (
        parse_stats_config(
            {"method": "frequentist", "frequentist": {"sequential_tuning_parameter": 2e9}}
        ).sequential_tuning_parameter
        == 5000.0
    )
