"""Result assembly: several variants, baseline choice, validation gates, config, failure paths."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from domain.stats import (
    DifferenceType,
    ExperimentDataError,
    SampleMeanStatistic,
    StatsMethod,
    VariantStats,
    bayesian_test,
    compare_variants,
    compute_experiment_result,
    funnel_variant_stats,
    mean_variant_stats,
    parse_stats_config,
    validate_variant,
    welch_t_test,
)
from domain.stats.bayesian import expected_losses


def funnel(key: str, n: int, conversions: int) -> VariantStats:
    return VariantStats(key=key, number_of_samples=n, sum=float(conversions), sum_squares=float(conversions))


def by_key(result: dict[str, object]) -> dict[str, dict[str, object]]:
    rows = result["variant_results"]
    assert isinstance(rows, list)
    return {row["key"]: row for row in rows}


# --- several variants ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["bayesian", "frequentist"])
def test_each_variant_is_compared_with_the_baseline_independently(method: str) -> None:
    control = funnel("control", 1000, 100)
    tests = [funnel("test-1", 1000, 130), funnel("test-2", 1000, 90), funnel("test-3", 1000, 101)]
    together = compute_experiment_result("funnel", [control, *tests], {"method": method})
    assert [row["key"] for row in together["variant_results"]] == ["test-1", "test-2", "test-3"]
    for variant in tests:
        alone = compute_experiment_result("funnel", [control, variant], {"method": method})
        # No multiple-comparison correction: adding arms changes nothing for the others.
        assert by_key(together)[variant.key] == alone["variant_results"][0]


def test_losing_variant_is_significant_in_bayesian_when_chance_to_win_is_low() -> None:
    result = compute_experiment_result("funnel", [funnel("control", 1000, 130), funnel("test", 1000, 100)])
    [row] = result["variant_results"]
    assert row["chance_to_win"] < 0.05 and row["significant"] is True


def test_baseline_variant_key_from_stats_config() -> None:
    rows = [funnel("control", 1000, 100), funnel("new", 1000, 130)]
    result = compute_experiment_result("funnel", rows, {"baseline_variant_key": "new"})
    assert result["baseline"]["key"] == "new"
    [row] = result["variant_results"]
    assert row["key"] == "control" and row["chance_to_win"] < 0.05


def test_variant_keys_give_flag_order_and_zero_rows_for_unseen_variants() -> None:
    rows = [funnel("test-b", 1000, 120), funnel("control", 1000, 100)]
    result = compute_experiment_result("funnel", rows, variant_keys=["control", "test-a", "test-b"])
    keys = [row["key"] for row in result["variant_results"]]
    assert keys == ["test-a", "test-b"]
    unseen = by_key(result)["test-a"]
    assert unseen["number_of_samples"] == 0 and unseen["chance_to_win"] is None
    assert unseen["validation_failures"] == ["not-enough-exposures", "not-enough-metric-data"]
    assert by_key(result)["test-b"]["chance_to_win"] is not None


def test_missing_or_duplicate_baseline_is_a_data_error() -> None:
    with pytest.raises(ExperimentDataError, match="No control variant found"):
        compute_experiment_result("funnel", [funnel("test", 1000, 100)])
    with pytest.raises(ExperimentDataError, match="Multiple control variants found"):
        compute_experiment_result("funnel", [funnel("control", 1000, 100), funnel("control", 10, 1)])


# --- validation gates ---------------------------------------------------------------------------


def test_exposure_gate_boundary() -> None:
    assert validate_variant(funnel("t", 49, 10), "funnel") == ["not-enough-exposures"]
    assert validate_variant(funnel("t", 50, 10), "funnel") == []


def test_metric_data_gate_applies_to_funnel_and_retention_only() -> None:
    low = VariantStats("t", 100, 4.0, 4.0, denominator_sum=100.0, denominator_sum_squares=100.0)
    assert validate_variant(low, "funnel") == ["not-enough-metric-data"]
    assert validate_variant(low, "retention") == ["not-enough-metric-data"]
    assert validate_variant(low, "mean") == []
    assert validate_variant(low, "ratio") == []


def test_baseline_zero_gate() -> None:
    zero = VariantStats("control", 100, 0.0, 0.0)
    assert validate_variant(zero, "mean", is_baseline=True) == ["baseline-mean-is-zero"]
    assert validate_variant(zero, "mean") == []


def test_failing_test_variant_only_skips_itself() -> None:
    rows = [funnel("control", 1000, 100), funnel("small", 40, 10), funnel("big", 1000, 130)]
    for method in StatsMethod:
        result = by_key(compute_experiment_result("funnel", rows, {"method": method.value}))
        assert result["small"]["validation_failures"] == ["not-enough-exposures"]
        assert result["small"]["significant"] is None
        assert result["big"]["significant"] is not None
        assert result["big"]["validation_failures"] == []


def test_failing_baseline_blocks_every_comparison() -> None:
    rows = [funnel("control", 1000, 0), funnel("a", 1000, 130), funnel("b", 1000, 50)]
    result = compute_experiment_result("funnel", rows, {"method": "frequentist"})
    assert result["baseline"]["validation_failures"] == ["not-enough-metric-data", "baseline-mean-is-zero"]
    for row in result["variant_results"]:
        assert row["validation_failures"] == []
        assert (row["p_value"], row["confidence_interval"], row["significant"]) == (None, None, None)


def test_proportion_guard_nulls_bayesian_but_not_frequentist() -> None:
    # 996/1000 successes leaves 4 failures: too few for the normal approximation.
    rows = [funnel("control", 1000, 990), funnel("test", 1000, 996)]
    [bayes] = compute_experiment_result("funnel", rows)["variant_results"]
    assert (bayes["chance_to_win"], bayes["credible_interval"], bayes["significant"]) == (None, None, None)
    assert bayes["validation_failures"] == []
    [freq] = compute_experiment_result("funnel", rows, {"method": "frequentist"})["variant_results"]
    assert freq["p_value"] is not None


def test_negative_baseline_mean_nulls_bayesian_relative_only() -> None:
    rng = np.random.default_rng(7)
    rows = [
        mean_variant_stats("control", rng.normal(-5, 1, 200)),
        mean_variant_stats("t", rng.normal(-4, 1, 200)),
    ]
    [bayes] = compute_experiment_result("mean", rows)["variant_results"]
    assert bayes["chance_to_win"] is None
    absolute = {"bayesian": {"difference_type": "ABSOLUTE"}}
    assert compute_experiment_result("mean", rows, absolute)["variant_results"][0]["chance_to_win"] > 0.99
    [freq] = compute_experiment_result("mean", rows, {"method": "frequentist"})["variant_results"]
    assert freq["p_value"] is not None


@pytest.mark.parametrize("method", ["bayesian", "frequentist"])
def test_zero_variance_in_both_groups_gives_null_statistics(method: str) -> None:
    rows = [mean_variant_stats("control", np.full(100, 2.0)), mean_variant_stats("t", np.full(100, 3.0))]
    [row] = compute_experiment_result("mean", rows, {"method": method})["variant_results"]
    assert row["significant"] is None and row["validation_failures"] == []


# --- config -------------------------------------------------------------------------------------


def test_config_defaults() -> None:
    for raw in (None, {}, {"method": "nonsense", "bayesian": None}):
        config = parse_stats_config(raw)
        assert config.method is StatsMethod.BAYESIAN
        assert (config.ci_level, config.alpha, config.baseline_variant_key) == (0.95, 0.05, "control")
        assert config.difference_type is DifferenceType.RELATIVE


@pytest.mark.parametrize("bad", ["abc", 1.5, 0, 1, -0.1, True, None, float("nan")])
def test_out_of_range_levels_fall_back_to_defaults(bad: object) -> None:
    config = parse_stats_config({"bayesian": {"ci_level": bad}, "frequentist": {"alpha": bad}})
    assert (config.ci_level, config.alpha) == (0.95, 0.05)


def test_difference_type_is_read_by_enum_name_from_the_chosen_method() -> None:
    assert (
        parse_stats_config({"bayesian": {"difference_type": "ABSOLUTE"}}).difference_type
        is DifferenceType.ABSOLUTE
    )
    # Upstream looks up the enum *name*; the lower-case value silently means relative there too.
    assert (
        parse_stats_config({"bayesian": {"difference_type": "absolute"}}).difference_type
        is DifferenceType.RELATIVE
    )
    other_section = {"method": "frequentist", "bayesian": {"difference_type": "ABSOLUTE"}}
    assert parse_stats_config(other_section).difference_type is DifferenceType.RELATIVE


def test_ci_level_changes_interval_and_significance() -> None:
    rows = [funnel("control", 1000, 100), funnel("test", 1000, 130)]
    [at_99] = compute_experiment_result("funnel", rows, {"bayesian": {"ci_level": 0.99}})["variant_results"]
    [at_95] = compute_experiment_result("funnel", rows)["variant_results"]
    assert at_99["chance_to_win"] == at_95["chance_to_win"]
    assert at_99["credible_interval"][0] < at_95["credible_interval"][0]
    assert at_99["significant"] is False and at_95["significant"] is True


def test_alpha_changes_significance() -> None:
    rows = [funnel("control", 1000, 100), funnel("test", 1000, 130)]
    [row] = compute_experiment_result(
        "funnel", rows, {"method": "frequentist", "frequentist": {"alpha": 0.1}}
    )["variant_results"]
    assert row["p_value"] == pytest.approx(0.065597, abs=5e-7) and row["significant"] is True


# --- engines against independent references -----------------------------------------------------


def test_welch_matches_scipy_on_raw_values() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.exponential(3.0, 400), rng.exponential(3.4, 300)
    result = welch_t_test(
        SampleMeanStatistic(b.size, b.sum(), (b * b).sum()),
        SampleMeanStatistic(a.size, a.sum(), (a * a).sum()),
        difference_type=DifferenceType.ABSOLUTE,
    )
    reference = sps.ttest_ind(b, a, equal_var=False)
    assert result.t_statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.degrees_of_freedom == pytest.approx(reference.df, rel=1e-10)
    low, high = reference.confidence_interval(0.95)
    assert result.confidence_interval == pytest.approx((low, high), rel=1e-9)


def test_compare_variants_uses_arrays_end_to_end() -> None:
    rng = np.random.default_rng(3)
    control = mean_variant_stats("control", rng.poisson(2.0, 5000))
    test = mean_variant_stats("test", rng.poisson(2.2, 5000))
    result = compare_variants("mean", test, control, {"method": "frequentist"})
    assert result.significant and 0.05 < result.effect < 0.15


def test_risk_matches_truncated_normal_definition() -> None:
    for mean, std in [(0.3, 0.16), (-0.02, 0.01), (0.0, 1.0)]:
        risk_control, risk_treatment = expected_losses(mean, std)
        a = (0 - mean) / std
        positive = sps.norm.sf(0, mean, std) * sps.truncnorm.mean(a, np.inf, loc=mean, scale=std)
        negative = sps.norm.cdf(0, mean, std) * abs(sps.truncnorm.mean(-np.inf, a, loc=mean, scale=std))
        assert (risk_control, risk_treatment) == pytest.approx((positive, negative), rel=1e-9)


def test_proper_prior_shrinks_towards_prior_mean() -> None:
    from domain.stats import GaussianPrior, ProportionStatistic

    control, test = ProportionStatistic(1000, 100), ProportionStatistic(1000, 130)
    flat = bayesian_test(test, control)
    shrunk = bayesian_test(test, control, prior=GaussianPrior(mean=0.0, variance=0.01, proper=True))
    assert 0 < shrunk.effect < flat.effect and shrunk.variance < flat.variance


def test_funnel_builder_counts_conversions() -> None:
    stats = funnel_variant_stats("control", np.array([1, 0, 1, 1, 0]), step_counts=[5, 4, 3])
    assert (stats.number_of_samples, stats.sum, stats.sum_squares) == (5, 3.0, 3.0)
    assert stats.to_dict()["step_counts"] == [5, 4, 3]
    with pytest.raises(ValueError):
        funnel_variant_stats("control", np.array([0, 2]))
