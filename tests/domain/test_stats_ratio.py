"""Ratio and retention metrics: sufficient statistics and the delta-method variances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from domain.stats import (
    BayesianResult,
    FrequentistResult,
    RatioStatistic,
    SampleMeanStatistic,
    compare_variants,
    compute_experiment_result,
    ratio_variance,
    ratio_variant_stats,
    statistic_for,
)

M = np.array([3.0, 0.0, 5.0, 2.0, 7.0, 1.0])
D = np.array([2.0, 1.0, 4.0, 2.0, 5.0, 1.0])


def ratio_stat(m: np.ndarray, d: np.ndarray) -> RatioStatistic:
    stat = statistic_for("ratio", ratio_variant_stats("v", m, d))
    assert isinstance(stat, RatioStatistic)
    return stat


def test_ratio_sufficient_statistics() -> None:
    stats = ratio_variant_stats("v", M, D)
    assert stats.number_of_samples == 6
    assert (stats.sum, stats.sum_squares) == (18.0, 88.0)
    assert (stats.denominator_sum, stats.denominator_sum_squares) == (15.0, 51.0)
    assert stats.numerator_denominator_sum_product == float(np.dot(M, D))
    with pytest.raises(ValueError):
        ratio_variant_stats("v", M, D[:-1])


def test_delta_method_matches_the_gradient_form() -> None:
    stat = ratio_stat(M, D)
    assert stat.mean == pytest.approx(M.sum() / D.sum())
    m_bar, d_bar = M.mean(), D.mean()
    gradient = np.array([1 / d_bar, -m_bar / d_bar**2])
    expected = gradient @ np.cov(np.vstack([M, D]), ddof=1) @ gradient
    assert stat.variance == pytest.approx(expected, rel=1e-12)
    assert stat.covariance == pytest.approx(np.cov(M, D, ddof=1)[0, 1], rel=1e-12)


def test_delta_method_variance_matches_simulated_sampling_variance() -> None:
    rng = np.random.default_rng(2024)
    sims, n = 3000, 400
    d = rng.poisson(3.0, (sims, n)) + 1.0  # sessions per user, at least one
    m = rng.binomial(d.astype(np.int64), 0.2).astype(np.float64)  # conversions among them
    ratios = m.sum(axis=1) / d.sum(axis=1)
    predicted = np.mean([ratio_stat(m[i], d[i]).variance / n for i in range(200)])
    # 3000 draws estimate a variance to about ±2.6% (1 SE); 10% is a safe band.
    assert ratios.var(ddof=1) == pytest.approx(predicted, rel=0.10)


def test_retention_with_unit_denominator_is_the_sample_mean() -> None:
    completed = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    ratio = statistic_for("retention", ratio_variant_stats("v", completed, np.ones_like(completed)))
    mean = SampleMeanStatistic(completed.size, completed.sum(), float(completed @ completed))
    assert ratio.mean == pytest.approx(mean.mean)
    assert ratio.variance == pytest.approx(mean.variance, rel=1e-12)


def test_relative_lift_for_ratio_metric_by_hand() -> None:
    rng = np.random.default_rng(5)
    d_c, d_t = rng.poisson(3.0, 2000) + 1.0, rng.poisson(3.0, 2000) + 1.0
    m_c = rng.binomial(d_c.astype(np.int64), 0.20).astype(np.float64)
    m_t = rng.binomial(d_t.astype(np.int64), 0.22).astype(np.float64)
    control, test = ratio_variant_stats("control", m_c, d_c), ratio_variant_stats("test", m_t, d_t)
    rc, rt = ratio_stat(m_c, d_c), ratio_stat(m_t, d_t)
    delta = (rt.mean - rc.mean) / rc.mean
    var = rt.variance / (2000 * rc.mean**2) + rt.mean**2 * rc.variance / (2000 * rc.mean**4)
    assert ratio_variance(rt.mean, rt.variance / 2000, rc.mean, rc.variance / 2000, 0.0) == pytest.approx(var)

    freq = compare_variants("ratio", test, control, {"method": "frequentist"})
    assert isinstance(freq, FrequentistResult)
    a, b = rt.variance / 2000, rc.variance / 2000
    df = (a + b) ** 2 / (a**2 / 1999 + b**2 / 1999)  # raw ratio variances, not the lift's
    half = sps.t.ppf(0.975, df) * np.sqrt(var)
    assert (freq.effect, freq.variance, freq.degrees_of_freedom) == pytest.approx((delta, var, df), rel=1e-12)
    assert freq.confidence_interval == pytest.approx((delta - half, delta + half), rel=1e-10)

    bayes = compare_variants("ratio", test, control)
    assert isinstance(bayes, BayesianResult)
    assert bayes.chance_to_win == pytest.approx(sps.norm.cdf(delta / np.sqrt(var)), rel=1e-12)


def test_ratio_result_json_carries_the_extras() -> None:
    rng = np.random.default_rng(9)
    rows = [ratio_variant_stats(k, rng.poisson(2, 500), rng.poisson(4, 500) + 1) for k in ("control", "test")]
    result = compute_experiment_result("ratio", rows)
    for row in (result["baseline"], result["variant_results"][0]):
        assert row["denominator_sum"] is not None and row["numerator_denominator_sum_product"] is not None
    assert result["variant_results"][0]["chance_to_win"] is not None


def test_zero_denominator_gives_null_statistics() -> None:
    good = ratio_variant_stats("control", np.ones(100), np.ones(100) * 2)
    empty = ratio_variant_stats("test", np.ones(100), np.zeros(100))
    [row] = compute_experiment_result("ratio", [good, empty])["variant_results"]
    assert (row["chance_to_win"], row["significant"], row["validation_failures"]) == (None, None, [])
    # The same failure on the baseline side blocks the comparison as well.
    swapped = [
        ratio_variant_stats("control", np.ones(100), np.zeros(100)),
        ratio_variant_stats("t", np.tile(M, 20), np.tile(D, 20)),
    ]
    [row] = compute_experiment_result("ratio", swapped, {"method": "frequentist"})["variant_results"]
    assert row["p_value"] is None and row["validation_failures"] == []
