"""CUPED: PostHog's reference case by hand (relative scale follows PostHog's own variance), the
degenerate cases, and how the result JSON reports it.

The absolute scale is checked against gbstats 0.8.0 in test_stats_gbstats.py; the relative one
cannot be (reference §11: gbstats' relative CUPED variance differs), so it is computed here from
the formulas, on the sums PostHog's own test suite uses (`test_mean_metric_relative_effect`).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from scipy.stats import norm
from scipy.stats import t as student_t

from domain.stats import (
    Covariate,
    SampleMeanStatistic,
    VariantStats,
    compute_experiment_result,
    cuped_adjust,
)

CONTROL = VariantStats(
    "control",
    2801,
    280.0,
    560.0,
    covariate_sum=195.0,
    covariate_sum_squares=390.0,
    covariate_sum_product=-18.0,
)
TEST = VariantStats(
    "test", 2800, 205.0, 510.0, covariate_sum=110.0, covariate_sum_squares=380.0, covariate_sum_product=-8.0
)
CUPED = {"cuped": {"enabled": True}}


def covariate(variant: VariantStats) -> Covariate:
    found = Covariate.of(variant)
    assert found is not None
    return found


def _by_hand() -> dict[str, float]:
    """Every step of the relative CUPED comparison, from the sums, in plain arithmetic."""
    n_c, n_t, n = 2801, 2800, 5601
    pre_sum, pre_squares, cross, post_sum = 195 + 110, 390 + 380, -18 + -8, 280 + 205
    theta = ((cross - post_sum * pre_sum / n) / (n - 1)) / ((pre_squares - pre_sum**2 / n) / (n - 1))

    def group(size: int, s: float, ss: float, x: float, xx: float, xy: float) -> tuple[float, float]:
        var_y, var_x = (ss - s**2 / size) / (size - 1), (xx - x**2 / size) / (size - 1)
        cov = (xy - s * x / size) / (size - 1)
        return s / size - theta * x / size, var_y + theta**2 * var_x - 2 * theta * cov

    mean_c, var_c = group(n_c, 280, 560, 195, 390, -18)
    mean_t, var_t = group(n_t, 205, 510, 110, 380, -8)
    unadjusted_c = 280 / n_c
    effect = (mean_t - mean_c) / unadjusted_c
    # PostHog's delta method: the adjusted treatment mean, divided by the unadjusted control mean.
    variance = var_t / (n_t * unadjusted_c**2) + mean_t**2 * var_c / (n_c * unadjusted_c**4)
    df = (var_t / n_t + var_c / n_c) ** 2 / ((var_t / n_t) ** 2 / (n_t - 1) + (var_c / n_c) ** 2 / (n_c - 1))
    raw_var_t = (510 - 205**2 / n_t) / (n_t - 1)
    return {
        "theta": theta,
        "mean_c": mean_c,
        "mean_t": mean_t,
        "effect": effect,
        "variance": variance,
        "df": df,
        "reduction": 1 - var_t / raw_var_t,
    }


def _row(
    config: dict[str, Any], control: VariantStats = CONTROL, test: VariantStats = TEST
) -> dict[str, Any]:
    [row] = compute_experiment_result("mean", [control, test], config)["variant_results"]
    return dict(row)


def test_theta_and_adjusted_means_match_posthogs_reference() -> None:
    adjusted = cuped_adjust(
        SampleMeanStatistic(2800, 205.0, 510.0),
        SampleMeanStatistic(2801, 280.0, 560.0),
        covariate(TEST),
        covariate(CONTROL),
    )
    hand = _by_hand()
    assert adjusted.theta == pytest.approx(-0.069566052, abs=1e-9)
    assert adjusted.theta == pytest.approx(hand["theta"], rel=1e-12)
    assert adjusted.control.mean == pytest.approx(0.104807347, abs=1e-9)
    assert adjusted.treatment.mean == pytest.approx(0.075947238, abs=1e-9)
    assert adjusted.baseline_mean == pytest.approx(280 / 2801)
    assert adjusted.variance_reduction == pytest.approx(hand["reduction"], rel=1e-12)


def test_relative_frequentist_follows_posthogs_variance() -> None:
    hand = _by_hand()
    margin = float(student_t.ppf(0.975, hand["df"])) * math.sqrt(hand["variance"])
    row = _row({"method": "frequentist", **CUPED})
    assert row["confidence_interval"] == pytest.approx(
        [hand["effect"] - margin, hand["effect"] + margin], rel=1e-12
    )
    # PostHog's published figures for the same sums (products/experiments/stats/tests/test_cuped.py).
    assert row["confidence_interval"] == pytest.approx([-0.486775, -0.090633], abs=5e-7)
    assert (row["confidence_interval"][0] + row["confidence_interval"][1]) / 2 == pytest.approx(-0.288704169)
    p_value = 2 * float(student_t.sf(abs(hand["effect"]) / math.sqrt(hand["variance"]), hand["df"]))
    assert row["p_value"] == pytest.approx(p_value, rel=1e-9) and row["significant"] is True
    assert row["variance_reduction"] == pytest.approx(hand["reduction"], rel=1e-12)


def test_relative_bayesian_follows_posthogs_variance() -> None:
    hand = _by_hand()
    row = _row({"method": "bayesian", **CUPED})
    z = float(norm.ppf(0.975)) * math.sqrt(hand["variance"])
    assert row["credible_interval"] == pytest.approx([hand["effect"] - z, hand["effect"] + z], rel=1e-12)
    assert row["credible_interval"] == pytest.approx([-0.486732, -0.090676], abs=5e-7)
    assert row["chance_to_win"] == pytest.approx(
        float(norm.cdf(hand["effect"] / math.sqrt(hand["variance"])))
    )


def test_relative_sequential_uses_the_same_effect_and_variance() -> None:
    hand = _by_hand()
    row = _row({"method": "frequentist", "frequentist": {"sequential_testing_enabled": True}, **CUPED})
    assert sum(row["confidence_interval"]) / 2 == pytest.approx(hand["effect"], rel=1e-12)
    n, alpha = 5601, 0.05
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / 5000)
    spread = n * rho**2 + 1
    width = math.sqrt(hand["variance"] * n) * math.sqrt(
        2 * spread * math.log(math.sqrt(spread) / alpha) / (n * rho) ** 2
    )
    assert row["confidence_interval"][1] - row["confidence_interval"][0] == pytest.approx(
        2 * width, rel=1e-12
    )


def test_constant_covariate_means_no_adjustment() -> None:
    def flat(key: str, total: float, squares: float, product: float) -> VariantStats:  # every x = 5
        return VariantStats(
            key,
            100,
            total,
            squares,
            covariate_sum=500.0,
            covariate_sum_squares=2500.0,
            covariate_sum_product=product,
        )

    control, test = flat("control", 480.0, 2800.0, 2400.0), flat("test", 500.0, 3000.0, 2500.0)
    with_cuped = _row({"method": "frequentist", **CUPED}, control, test)
    without = _row({"method": "frequentist"}, control, test)
    assert with_cuped["variance_reduction"] == 0.0
    assert with_cuped["confidence_interval"] == pytest.approx(without["confidence_interval"], rel=1e-12)
    assert without["variance_reduction"] is None


def test_cuped_off_ignores_the_covariate() -> None:
    row = _row({"method": "frequentist"})
    plain = _row(
        {"method": "frequentist"},
        VariantStats("control", 2801, 280.0, 560.0),
        VariantStats("test", 2800, 205.0, 510.0),
    )
    assert row["confidence_interval"] == plain["confidence_interval"] and row["variance_reduction"] is None


def test_ratio_metrics_are_analysed_unadjusted() -> None:
    def ratio(key: str, total: float, squares: float) -> VariantStats:
        return VariantStats(
            key,
            800,
            total,
            squares,
            denominator_sum=900.0,
            denominator_sum_squares=1000.0,
            numerator_denominator_sum_product=700.0,
        )

    control, test = ratio("control", 300.0, 400.0), ratio("test", 330.0, 450.0)
    [row] = compute_experiment_result("ratio", [control, test], {"method": "frequentist", **CUPED})[
        "variant_results"
    ]
    [plain] = compute_experiment_result("ratio", [control, test], {"method": "frequentist"})[
        "variant_results"
    ]
    assert row["variance_reduction"] is None and row["confidence_interval"] == plain["confidence_interval"]


def test_theta_is_computed_per_pair_with_the_baseline() -> None:
    other = VariantStats(
        "other",
        3500,
        420.0,
        840.0,
        covariate_sum=280.0,
        covariate_sum_squares=560.0,
        covariate_sum_product=-25.0,
    )
    result = compute_experiment_result("mean", [CONTROL, TEST, other], {"method": "frequentist", **CUPED})
    alone = compute_experiment_result("mean", [CONTROL, other], {"method": "frequentist", **CUPED})
    assert (
        result["variant_results"][1]["confidence_interval"]
        == alone["variant_results"][0]["confidence_interval"]
    )
    # PostHog's three-armed reference: the treatment's adjusted sd with the theta of its own pair.
    adjusted = cuped_adjust(
        SampleMeanStatistic(3500, 420.0, 840.0),
        SampleMeanStatistic(2801, 280.0, 560.0),
        covariate(other),
        covariate(CONTROL),
    )
    assert math.sqrt(adjusted.treatment.variance) == pytest.approx(0.473119119, abs=1e-8)
