"""Bayesian engine (stats.md §4): Gaussian likelihood on Δ, flat prior by default.

With the flat prior the posterior is N(Δ, Var(Δ)), so everything is closed form; no Monte Carlo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import norm

from domain.stats.effects import DifferenceType, Effect, effect_size
from domain.stats.errors import StatisticError
from domain.stats.statistics import ProportionStatistic, Statistic

# The normal approximation to the binomial is only trusted with this many successes and failures
# in each group (upstream `BayesianProportionTest`).
MIN_SUCCESSES_AND_FAILURES = 5


@dataclass(frozen=True)
class GaussianPrior:
    """Prior on Δ. `proper=False` (upstream's only use) means precision 0: data alone decide."""

    mean: float = 0.0
    variance: float = 1.0
    proper: bool = False

    @property
    def precision(self) -> float:
        return 1.0 / self.variance if self.proper else 0.0


@dataclass(frozen=True)
class BayesianResult:
    """Posterior summary of one test variant against the baseline."""

    effect: float
    variance: float
    chance_to_win: float
    credible_interval: tuple[float, float]
    ci_level: float
    # Expected loss of shipping control / treatment; upstream computes it but does not return it.
    risk_control: float
    risk_treatment: float

    @property
    def significant(self) -> bool:
        """Upstream's `is_decisive`: two one-sided rules, so ≈ 2·(1 - ci_level) under the null."""
        return self.chance_to_win > self.ci_level or self.chance_to_win < 1 - self.ci_level


def check_normal_approximation(treatment: Statistic, control: Statistic) -> None:
    """Funnel guard: ≥ 5 successes and ≥ 5 failures in both groups."""
    for name, stat in (("treatment", treatment), ("control", control)):
        if not isinstance(stat, ProportionStatistic):
            continue
        successes, failures = stat.sum, stat.n - stat.sum
        if min(successes, failures) < MIN_SUCCESSES_AND_FAILURES:
            raise StatisticError(
                f"Normal approximation invalid: {name} has {successes} successes and {failures} "
                f"failures (need ≥{MIN_SUCCESSES_AND_FAILURES} of each)"
            )


def posterior(effect: Effect, prior: GaussianPrior) -> tuple[float, float]:
    """Precision-weighted update; with a flat prior it returns (Δ, Var(Δ)) unchanged."""
    if not effect.variance > 0:
        raise StatisticError("Effect variance must be positive")
    data_precision = 1.0 / effect.variance
    precision = prior.precision + data_precision
    if not prior.proper:
        return effect.estimate, 1.0 / precision
    mean = (prior.precision * prior.mean + data_precision * effect.estimate) / precision
    return mean, 1.0 / precision


def expected_losses(mean: float, std: float) -> tuple[float, float]:
    """(E[max(θ, 0)], E[max(-θ, 0)]) for θ ~ N(mean, std²), i.e. upstream's risk pair.

    Closed form of P(θ > 0)·E[θ | θ > 0] instead of upstream's truncated-normal call; same value.
    """
    z = mean / std
    density = std * float(norm.pdf(z))
    return mean * float(norm.cdf(z)) + density, -mean * float(norm.cdf(-z)) + density


def _validate(treatment: Statistic, control: Statistic, ci_level: float) -> None:
    if not 0 < ci_level < 1:
        raise StatisticError("ci_level must be between 0 and 1")
    if type(treatment) is not type(control):
        raise StatisticError("Treatment and control statistics must be the same type")
    if treatment.variance < 0 or control.variance < 0:
        # Only a ratio's delta-method variance can go negative (strong negative covariance terms).
        raise StatisticError("Variance cannot be negative")
    check_normal_approximation(treatment, control)


def bayesian_test(
    treatment: Statistic,
    control: Statistic,
    *,
    ci_level: float = 0.95,
    difference_type: DifferenceType = DifferenceType.RELATIVE,
    prior: GaussianPrior | None = None,
    inverse: bool = False,
    baseline_mean: float | None = None,
) -> BayesianResult:
    """Chance to win, credible interval and risk of `treatment` against `control` (the baseline).

    `inverse` ("lower is better") exists upstream but result assembly never sets it.
    `baseline_mean`: the unadjusted control mean a CUPED comparison divides by (`relative_effect`).
    """
    _validate(treatment, control, ci_level)
    divisor = control.mean if baseline_mean is None else baseline_mean
    if difference_type is DifferenceType.RELATIVE and divisor <= 0:
        raise StatisticError("Control mean must be positive for relative difference calculation")
    effect = effect_size(treatment, control, difference_type, baseline_mean)
    mean, variance = posterior(effect, prior or GaussianPrior())
    std = math.sqrt(variance)
    win = norm.cdf(0, loc=mean, scale=std) if inverse else norm.sf(0, loc=mean, scale=std)
    alpha = 1 - ci_level
    lower, upper = norm.ppf([alpha / 2, 1 - alpha / 2], loc=mean, scale=std)
    risk_control, risk_treatment = expected_losses(mean, std)
    return BayesianResult(
        effect=float(mean),
        variance=float(variance),
        chance_to_win=float(win),
        credible_interval=(float(lower), float(upper)),
        ci_level=ci_level,
        risk_control=risk_control,
        risk_treatment=risk_treatment,
    )
