"""Statistic classes (stats.md §2): a mean and a per-unit variance from sufficient statistics.

Construction validates the inputs the way upstream's `__post_init__` does, so impossible sums
surface as a `StatisticError` (→ null statistics) rather than as a nonsense interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.stats.errors import StatisticError
from domain.stats.sufficient import VariantStats

# Below this |mean of d| a ratio is undefined; same threshold as upstream.
_ZERO_MEAN = 1e-10


class MetricType(StrEnum):
    """`ExperimentMetric.metric_type`."""

    MEAN = "mean"
    FUNNEL = "funnel"
    RATIO = "ratio"
    RETENTION = "retention"


@dataclass(frozen=True)
class SampleMeanStatistic:
    """Continuous metric: mean `sum/n`, variance `(sum_squares - sum²/n)/(n - 1)`."""

    n: int
    sum: float
    sum_squares: float

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise StatisticError("Sample size must be positive")
        # Upstream rejects sum_squares < sum²/n outright; the relative slack only forgives the
        # last-bit rounding of float sums built from identical values, which is not bad data.
        floor = self.sum**2 / self.n
        if self.sum_squares < floor - 1e-12 * max(1.0, abs(floor)):
            raise StatisticError("sum_squares incompatible with sum and n")

    @property
    def mean(self) -> float:
        return self.sum / self.n

    @property
    def variance(self) -> float:
        if self.n == 1:
            return 0.0
        # Clamped at 0 for the same rounding reason as the check above.
        return max(0.0, (self.sum_squares - self.sum**2 / self.n) / (self.n - 1))


@dataclass(frozen=True)
class ProportionStatistic:
    """Binary metric (funnel): mean `p = sum/n`, variance `p(1 - p)`."""

    n: int
    sum: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise StatisticError("Sample size must be positive")
        if self.sum < 0:
            raise StatisticError("Number of successes cannot be negative")
        if self.sum > self.n:
            raise StatisticError("Number of successes cannot exceed sample size")

    @property
    def mean(self) -> float:
        return self.sum / self.n

    @property
    def variance(self) -> float:
        p = self.mean
        return p * (1 - p)


@dataclass(frozen=True)
class RatioStatistic:
    """Ratio of sums `R = Σm/Σd` with the delta-method per-unit variance."""

    n: int
    numerator: SampleMeanStatistic
    denominator: SampleMeanStatistic
    sum_of_products: float

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise StatisticError("Sample size must be positive")
        if self.numerator.n != self.n or self.denominator.n != self.n:
            raise StatisticError("All statistics must have same sample size")
        if abs(self.denominator.mean) < _ZERO_MEAN:
            raise StatisticError("Denominator mean cannot be zero for ratio calculation")

    @property
    def mean(self) -> float:
        return self.numerator.sum / self.denominator.sum

    @property
    def covariance(self) -> float:
        if self.n == 1:
            return 0.0
        return (self.sum_of_products - self.numerator.sum * self.denominator.sum / self.n) / (self.n - 1)

    @property
    def variance(self) -> float:
        return ratio_variance(
            self.numerator.mean,
            self.numerator.variance,
            self.denominator.mean,
            self.denominator.variance,
            self.covariance,
        )


@dataclass(frozen=True)
class AdjustedStatistic:
    """A group's CUPED-adjusted mean and per-unit variance (domain/stats/cuped.py).

    Carried as the moments themselves: rebuilding a `SampleMeanStatistic` from them (upstream's
    way) would recompute the variance as a difference of large sums and lose digits.
    """

    n: int
    mean: float
    variance: float

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise StatisticError("Sample size must be positive")


Statistic = SampleMeanStatistic | ProportionStatistic | RatioStatistic | AdjustedStatistic


def ratio_variance(mean_m: float, var_m: float, mean_d: float, var_d: float, covariance: float) -> float:
    """Delta method for M/D: `Var(m)/d̄² + m̄²·Var(d)/d̄⁴ - 2·m̄·Cov(m,d)/d̄³`.

    Per unit when given per-unit moments; used with the variances of the group means (and zero
    covariance) it is also the relative-lift variance of stats.md §3.
    """
    if abs(mean_d) < _ZERO_MEAN:
        raise StatisticError("Denominator mean cannot be zero for ratio variance calculation")
    return var_m / mean_d**2 + mean_m**2 * var_d / mean_d**4 - 2 * mean_m * covariance / mean_d**3


def statistic_for(metric_type: MetricType | str, variant: VariantStats) -> Statistic:
    """Metric → statistic mapping of upstream's `metric_variant_to_statistic`."""
    kind = MetricType(metric_type)
    n = variant.number_of_samples
    if kind is MetricType.FUNNEL:
        return ProportionStatistic(n=n, sum=int(variant.sum))
    numerator = SampleMeanStatistic(n=n, sum=variant.sum, sum_squares=variant.sum_squares)
    if kind is MetricType.MEAN:
        return numerator
    # Missing ratio extras count as 0, as upstream's `or 0.0`; Σd = 0 then fails the ratio guard.
    denominator = SampleMeanStatistic(
        n=n, sum=variant.denominator_sum or 0.0, sum_squares=variant.denominator_sum_squares or 0.0
    )
    return RatioStatistic(
        n=n,
        numerator=numerator,
        denominator=denominator,
        sum_of_products=variant.numerator_denominator_sum_product or 0.0,
    )
