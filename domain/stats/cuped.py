"""CUPED variance reduction (stats.md §1.6), as PostHog's `shared/cuped.py` computes it.

Each variant carries its pre-exposure covariate X as three more sufficient statistics beside the
metric Y's: `covariate_sum` (ΣX), `covariate_sum_squares` (ΣX²) and `covariate_sum_product` (ΣY·X).
Any engine that can produce sums (the SQL one, ClickHouse) can therefore feed CUPED.

For one test variant against the baseline:
- θ = Cov(Y, X) / Var(X) over both groups pooled into one sample (sums added, n = nT + nC),
  0 when that Var(X) < 1e-10 (no adjustment possible);
- each group's adjusted mean is ȳ - θ·x̄ and its per-unit variance s²y + θ²·s²x - 2θ·Cov(y, x)
  (within the group), floored at 1e-10;
- the relative effect divides by the *unadjusted* control mean (`baseline_mean`).

With several test variants θ is computed per pair, so the baseline's adjusted moments differ
from one comparison to the next, as upstream and gbstats do. Ratio and retention metrics are not
adjusted (upstream has no exact CUPED for them).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.stats.errors import StatisticError
from domain.stats.statistics import AdjustedStatistic, ProportionStatistic, SampleMeanStatistic, Statistic
from domain.stats.sufficient import VariantStats

VARIANCE_FLOOR = 1e-10


@dataclass(frozen=True)
class Covariate:
    """One group's pre-exposure covariate: Σx, Σx² and Σy·x over its n units."""

    n: int
    sum: float
    sum_squares: float
    sum_product: float

    @classmethod
    def of(cls, variant: VariantStats) -> Covariate | None:
        """The variant's covariate, or None when the analysis collected none (CUPED off / n.a.)."""
        if variant.covariate_sum is None:
            return None
        return cls(
            n=variant.number_of_samples,
            sum=variant.covariate_sum,
            sum_squares=variant.covariate_sum_squares or 0.0,
            sum_product=variant.covariate_sum_product or 0.0,
        )

    @property
    def mean(self) -> float:
        return self.sum / self.n

    @property
    def variance(self) -> float:
        return 0.0 if self.n <= 1 else (self.sum_squares - self.sum**2 / self.n) / (self.n - 1)

    def covariance(self, post_sum: float) -> float:
        """Sample covariance of the metric (whose sum is `post_sum`) with the covariate."""
        return 0.0 if self.n <= 1 else (self.sum_product - post_sum * self.sum / self.n) / (self.n - 1)


@dataclass(frozen=True)
class CupedAdjustment:
    treatment: AdjustedStatistic
    control: AdjustedStatistic
    theta: float
    baseline_mean: float  # the control's unadjusted mean: the divisor of a relative effect
    variance_reduction: float  # the treatment's: 1 - adjusted / unadjusted per-unit variance


Adjustable = SampleMeanStatistic | ProportionStatistic


def _pooled_theta(treatment: Adjustable, control: Adjustable, t_cov: Covariate, c_cov: Covariate) -> float:
    n = treatment.n + control.n
    if n <= 1:
        return 0.0
    pre_sum = t_cov.sum + c_cov.sum
    pre_variance = (t_cov.sum_squares + c_cov.sum_squares - pre_sum**2 / n) / (n - 1)
    if pre_variance < VARIANCE_FLOOR:
        return 0.0
    post_sum = float(treatment.sum + control.sum)
    covariance = (t_cov.sum_product + c_cov.sum_product - post_sum * pre_sum / n) / (n - 1)
    return covariance / pre_variance


def _adjust(post: Adjustable, covariate: Covariate, theta: float) -> tuple[AdjustedStatistic, float]:
    """The group's adjusted moments and its variance reduction (0 when θ = 0 or Var(Y) ≈ 0)."""
    if covariate.n != post.n:
        raise StatisticError(f"Covariate n ({covariate.n}) does not match the metric's n ({post.n})")
    variance = post.variance + theta**2 * covariate.variance - 2 * theta * covariate.covariance(post.sum)
    variance = max(variance, VARIANCE_FLOOR)
    reduction = 1.0 - variance / post.variance if theta != 0 and post.variance > VARIANCE_FLOOR else 0.0
    return AdjustedStatistic(n=post.n, mean=post.mean - theta * covariate.mean, variance=variance), reduction


def cuped_adjust(
    treatment: Statistic, control: Statistic, treatment_covariate: Covariate, control_covariate: Covariate
) -> CupedAdjustment:
    """Both groups adjusted with the pair's pooled θ (raises StatisticError for ratio metrics)."""
    if not isinstance(treatment, SampleMeanStatistic | ProportionStatistic) or not isinstance(
        control, SampleMeanStatistic | ProportionStatistic
    ):
        raise StatisticError("CUPED adjustment is only defined for mean and funnel metrics")
    theta = _pooled_theta(treatment, control, treatment_covariate, control_covariate)
    adjusted_t, reduction = _adjust(treatment, treatment_covariate, theta)
    adjusted_c, _ = _adjust(control, control_covariate, theta)
    return CupedAdjustment(
        treatment=adjusted_t,
        control=adjusted_c,
        theta=theta,
        baseline_mean=control.mean,
        variance_reduction=reduction,
    )
