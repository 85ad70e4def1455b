"""stats.md §9 worked example (funnel, control 100/1000 vs test 130/1000), reproduced numerically."""

from __future__ import annotations

import json
import math

import pytest

from domain.stats import (
    DifferenceType,
    ProportionStatistic,
    VariantStats,
    bayesian_test,
    compute_experiment_result,
    effect_size,
    welch_satterthwaite_df,
    welch_t_test,
)

CONTROL = ProportionStatistic(n=1000, sum=100)
TEST = ProportionStatistic(n=1000, sum=130)
# The table is printed to 6 significant decimals, so compare at half a unit of the last digit.
TABLE = 5e-7


def variants() -> list[VariantStats]:
    return [
        VariantStats(key="control", number_of_samples=1000, sum=100.0, sum_squares=100.0),
        VariantStats(key="test", number_of_samples=1000, sum=130.0, sum_squares=130.0),
    ]


def test_group_moments() -> None:
    assert (CONTROL.mean, TEST.mean) == pytest.approx((0.10, 0.13))
    assert (CONTROL.variance, TEST.variance) == pytest.approx((0.09, 0.1131))


def test_relative_effect_and_delta_method_variance() -> None:
    effect = effect_size(TEST, CONTROL, DifferenceType.RELATIVE)
    assert effect.estimate == pytest.approx(0.30)
    assert effect.variance == pytest.approx(0.01131 + 0.01521)
    assert math.sqrt(effect.variance) == pytest.approx(0.162850, abs=TABLE)


def test_relative_bayesian() -> None:
    result = bayesian_test(TEST, CONTROL)
    assert result.chance_to_win == pytest.approx(0.967276, abs=TABLE)
    assert result.credible_interval == pytest.approx((-0.019179, 0.619179), abs=TABLE)
    assert result.significant  # 0.967 > 0.95


def test_relative_frequentist() -> None:
    result = welch_t_test(TEST, CONTROL)
    assert welch_satterthwaite_df(TEST, CONTROL) == pytest.approx(1972.48, abs=0.005)
    assert result.t_statistic == pytest.approx(1.842190, abs=TABLE)
    assert result.p_value == pytest.approx(0.065597, abs=TABLE)
    assert result.confidence_interval == pytest.approx((-0.019375, 0.619375), abs=TABLE)
    assert not result.significant  # the lesson: same data, the two engines disagree


def test_absolute_effect() -> None:
    effect = effect_size(TEST, CONTROL, DifferenceType.ABSOLUTE)
    assert effect.estimate == pytest.approx(0.03)
    assert effect.variance == pytest.approx(0.0002031)
    assert math.sqrt(effect.variance) == pytest.approx(0.0142513, abs=5e-8)


def test_absolute_bayesian() -> None:
    result = bayesian_test(TEST, CONTROL, difference_type=DifferenceType.ABSOLUTE)
    assert result.chance_to_win == pytest.approx(0.982357, abs=TABLE)
    assert result.credible_interval == pytest.approx((0.0020679, 0.0579321), abs=5e-8)


def test_absolute_frequentist() -> None:
    result = welch_t_test(TEST, CONTROL, difference_type=DifferenceType.ABSOLUTE)
    assert result.t_statistic == pytest.approx(2.105069, abs=TABLE)
    assert result.p_value == pytest.approx(0.035411, abs=TABLE)
    assert result.confidence_interval == pytest.approx((0.0020508, 0.0579492), abs=5e-8)
    assert result.significant


def test_result_json_bayesian() -> None:
    result = compute_experiment_result("funnel", variants(), {"method": "bayesian"})
    json.dumps(result)  # plain JSON types only
    assert result["baseline"] == {
        "key": "control",
        "number_of_samples": 1000,
        "sum": 100.0,
        "sum_squares": 100.0,
        "step_counts": None,
        "denominator_sum": None,
        "denominator_sum_squares": None,
        "numerator_denominator_sum_product": None,
        "covariate_sum": None,
        "covariate_sum_squares": None,
        "covariate_sum_product": None,
        "validation_failures": [],
    }
    [variant] = result["variant_results"]
    assert variant["key"] == "test" and variant["method"] == "bayesian"
    assert variant["chance_to_win"] == pytest.approx(0.967276, abs=TABLE)
    assert variant["credible_interval"] == pytest.approx([-0.019179, 0.619179], abs=TABLE)
    assert variant["significant"] is True
    assert variant["validation_failures"] == []
    assert "p_value" not in variant and "confidence_interval" not in variant


def test_result_json_frequentist() -> None:
    result = compute_experiment_result("funnel", variants(), {"method": "frequentist"})
    [variant] = result["variant_results"]
    assert variant["method"] == "frequentist"
    assert variant["p_value"] == pytest.approx(0.065597, abs=TABLE)
    assert variant["confidence_interval"] == pytest.approx([-0.019375, 0.619375], abs=TABLE)
    assert variant["significant"] is False
    assert "chance_to_win" not in variant


def test_result_json_absolute_scale_via_stats_config() -> None:
    config = {"method": "frequentist", "frequentist": {"difference_type": "ABSOLUTE"}}
    [variant] = compute_experiment_result("funnel", variants(), config)["variant_results"]
    assert variant["p_value"] == pytest.approx(0.035411, abs=TABLE)
    assert variant["significant"] is True


def test_legacy_top_level_fields_are_null() -> None:
    result = compute_experiment_result("funnel", variants())
    legacy = set(result) - {"baseline", "variant_results"}
    assert legacy == {
        "kind",
        "insight",
        "metric",
        "variants",
        "probability",
        "significant",
        "significance_code",
        "stats_version",
        "p_value",
        "credible_intervals",
    }
    assert all(result[k] is None for k in legacy)
