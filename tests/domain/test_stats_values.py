"""Per-entity value helpers: sufficient statistics from arrays and winsorization."""

from __future__ import annotations

import numpy as np
import pytest

from domain.stats import (
    SampleMeanStatistic,
    VariantStats,
    WinsorizationBounds,
    clamp,
    mean_variant_stats,
    statistic_for,
    winsorization_bounds,
    winsorize,
    zero_variant_stats,
)


def test_mean_sufficient_statistics_square_each_entity_total() -> None:
    values = np.array([0.0, 2.0, 3.5, 0.0, 10.0])
    stats = mean_variant_stats("control", values)
    assert (stats.number_of_samples, stats.sum, stats.sum_squares) == (5, 15.5, 4 + 12.25 + 100)
    stat = statistic_for("mean", stats)
    assert isinstance(stat, SampleMeanStatistic)
    assert (stat.mean, stat.variance) == pytest.approx((values.mean(), values.var(ddof=1)))


def test_constant_values_do_not_trip_the_sum_squares_check_on_rounding() -> None:
    stat = statistic_for("mean", mean_variant_stats("v", np.full(1000, 0.1)))
    assert stat.variance == pytest.approx(0.0, abs=1e-15)


def test_single_entity_has_zero_variance() -> None:
    assert statistic_for("mean", mean_variant_stats("v", [4.0])).variance == 0.0


@pytest.mark.parametrize("bad", [[1.0, np.nan], [np.inf], [[1.0, 2.0]]])
def test_non_finite_or_non_vector_values_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        mean_variant_stats("v", bad)  # type: ignore[arg-type]


def test_round_trip_through_the_json_shape() -> None:
    stats = VariantStats(
        "test",
        120,
        30.0,
        30.0,
        step_counts=(120, 60, 30),
        denominator_sum=None,
    )
    row = {**stats.to_dict(), "chance_to_win": 0.7, "validation_failures": []}
    assert VariantStats.from_dict(row) == stats
    ratio = zero_variant_stats("x", ratio=True)
    assert VariantStats.from_dict(ratio.to_dict()) == ratio and ratio.is_ratio


def test_bounds_are_pooled_across_variants() -> None:
    values = {"control": np.arange(0.0, 50.0), "test": np.arange(50.0, 100.0)}
    result = winsorize(values, lower_bound_percentile=0.1, upper_bound_percentile=0.9)
    pooled = np.arange(0.0, 100.0)
    low, high = np.quantile(pooled, [0.1, 0.9])
    assert result["control"].min() == pytest.approx(low) and result["control"].max() == 49.0
    assert result["test"].max() == pytest.approx(high) and result["test"].min() == 50.0


def test_unset_percentiles_leave_values_alone() -> None:
    values = {"control": np.array([5.0, -3.0, 1e9])}
    np.testing.assert_array_equal(winsorize(values)["control"], values["control"])
    bounds = winsorization_bounds(values["control"], upper_bound_percentile=0.5)
    assert bounds == WinsorizationBounds(lower=-3.0, upper=5.0)


def test_ignore_zeros_computes_the_upper_cap_without_zero_entities() -> None:
    values = np.concatenate([np.zeros(90), np.arange(1.0, 11.0)])
    with_zeros = winsorization_bounds(values, upper_bound_percentile=0.9)
    without = winsorization_bounds(values, upper_bound_percentile=0.9, ignore_zeros=True)
    assert with_zeros is not None and without is not None
    assert with_zeros.upper == pytest.approx(np.quantile(values, 0.9))  # 0.1: zeros dominate
    assert without.upper == pytest.approx(np.quantile(np.arange(1.0, 11.0), 0.9))  # 9.1
    clamped = clamp(values, without)
    assert clamped.max() == pytest.approx(9.1) and (clamped == 0).sum() == 90  # zeros stay zeros


def test_ignore_zeros_with_only_zeros_applies_no_cap() -> None:
    bounds = winsorization_bounds(np.zeros(10), upper_bound_percentile=0.9, ignore_zeros=True)
    assert bounds == WinsorizationBounds(lower=0.0, upper=0.0)


def test_percentiles_must_be_fractions_and_empty_input_has_no_bounds() -> None:
    with pytest.raises(ValueError, match="fraction"):
        winsorization_bounds([1.0, 2.0], upper_bound_percentile=99)
    assert winsorization_bounds([], upper_bound_percentile=0.9) is None
    assert clamp([1.0, 2.0], None).tolist() == [1.0, 2.0]


def test_winsorized_values_feed_the_statistics() -> None:
    rng = np.random.default_rng(1)
    raw = {"control": rng.lognormal(0, 2, 2000), "test": rng.lognormal(0, 2, 2000)}
    capped = winsorize(raw, upper_bound_percentile=0.99)
    before = statistic_for("mean", mean_variant_stats("c", raw["control"])).variance
    after = statistic_for("mean", mean_variant_stats("c", capped["control"])).variance
    assert after < before
