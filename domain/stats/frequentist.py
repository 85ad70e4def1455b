"""Frequentist engine (stats.md §5): two-sided Welch t-test on Δ."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import t as student_t

from domain.stats.effects import DifferenceType, effect_size
from domain.stats.errors import StatisticError
from domain.stats.statistics import Statistic

# Upstream `validate_sample_sizes` default; the n ≥ 50 exposure gate normally hides it.
MIN_SAMPLE_SIZE = 5


@dataclass(frozen=True)
class FrequentistResult:
    """Welch t-test of one test variant against the baseline."""

    effect: float
    variance: float
    t_statistic: float
    degrees_of_freedom: float
    p_value: float
    confidence_interval: tuple[float, float]
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def welch_satterthwaite_df(treatment: Statistic, control: Statistic) -> float:
    """Welch-Satterthwaite df from the raw per-group variances, even when Δ is relative.

    That mirrors upstream (and gbstats): df describes the group variances, not the delta-method
    variance of the lift.
    """
    if min(treatment.n, control.n) < 2:
        raise StatisticError("Welch-Satterthwaite requires n ≥ 2 per group.")
    a = treatment.variance / treatment.n
    b = control.variance / control.n
    denominator = a**2 / (treatment.n - 1) + b**2 / (control.n - 1)
    if not denominator > 0:
        # Both groups constant: upstream dies on 0/0 here and nulls the stats; same outcome.
        raise StatisticError("Degrees of freedom undefined: both groups have zero variance")
    return (a + b) ** 2 / denominator


def check_test_inputs(treatment: Statistic, control: Statistic, alpha: float, min_sample_size: int) -> None:
    """Upstream's guards of every frequentist test: alpha inside (0, 1), n ≥ min per group."""
    if not 0 < alpha < 1:
        raise StatisticError("Alpha must be between 0 and 1")
    if treatment.n < min_sample_size:
        raise StatisticError(f"Treatment sample size ({treatment.n}) below minimum ({min_sample_size})")
    if control.n < min_sample_size:
        raise StatisticError(f"Control sample size ({control.n}) below minimum ({min_sample_size})")


def welch_t_test(
    treatment: Statistic,
    control: Statistic,
    *,
    alpha: float = 0.05,
    difference_type: DifferenceType = DifferenceType.RELATIVE,
    min_sample_size: int = MIN_SAMPLE_SIZE,
    baseline_mean: float | None = None,
) -> FrequentistResult:
    """Two-sided p-value and (1 - alpha) confidence interval of `treatment` against `control`.

    `baseline_mean`: the unadjusted control mean a CUPED comparison divides by (`relative_effect`).
    """
    check_test_inputs(treatment, control, alpha, min_sample_size)
    effect = effect_size(treatment, control, difference_type, baseline_mean)
    df = welch_satterthwaite_df(treatment, control)
    if not effect.variance > 0:
        raise StatisticError("Pooled variance must be positive")
    se = math.sqrt(effect.variance)
    t_stat = effect.estimate / se
    # `2·sf(|t|)` equals upstream's `2·(1 - cdf(|t|))` but keeps precision for tiny p-values.
    p_value = float(2 * student_t.sf(abs(t_stat), df))
    margin = float(student_t.ppf(1 - alpha / 2, df)) * se
    return FrequentistResult(
        effect=effect.estimate,
        variance=effect.variance,
        t_statistic=t_stat,
        degrees_of_freedom=df,
        p_value=p_value,
        confidence_interval=(effect.estimate - margin, effect.estimate + margin),
        alpha=alpha,
    )
