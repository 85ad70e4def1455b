"""Effect size and its variance, shared by both engines (stats.md §3)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from domain.stats.errors import StatisticError
from domain.stats.statistics import Statistic, ratio_variance

_ZERO_MEAN = 1e-10


class DifferenceType(Enum):
    """How the test variant is compared with the baseline; relative lift is a fraction."""

    RELATIVE = "relative"
    ABSOLUTE = "absolute"


@dataclass(frozen=True)
class Effect:
    """Point estimate Δ and Var(Δ) on the chosen difference scale."""

    estimate: float
    variance: float


def absolute_effect(treatment: Statistic, control: Statistic) -> Effect:
    """`μT - μC` with `s²T/nT + s²C/nC`."""
    return Effect(
        estimate=treatment.mean - control.mean,
        variance=treatment.variance / treatment.n + control.variance / control.n,
    )


def relative_effect(treatment: Statistic, control: Statistic, baseline_mean: float | None = None) -> Effect:
    """`(μT - μC)/μC` with the delta-method variance of μT/μC for independent groups.

    `baseline_mean` replaces μC as the divisor (both in Δ and in its variance) when given: CUPED
    compares adjusted means but divides by the *unadjusted* control mean, as PostHog does
    (its `unadjusted_mean`). Only the near-zero guard lives here; the Bayesian engine adds its
    stricter `μC > 0` check.
    """
    divisor = control.mean if baseline_mean is None else baseline_mean
    if abs(divisor) < _ZERO_MEAN:
        raise StatisticError("Control mean cannot be zero for relative difference calculation")
    variance = ratio_variance(
        mean_m=treatment.mean,
        var_m=treatment.variance / treatment.n,
        mean_d=divisor,
        var_d=control.variance / control.n,
        covariance=0.0,
    )
    return Effect(estimate=(treatment.mean - control.mean) / divisor, variance=variance)


def effect_size(
    treatment: Statistic,
    control: Statistic,
    difference_type: DifferenceType,
    baseline_mean: float | None = None,
) -> Effect:
    """Dispatch on `difference_type` (`baseline_mean`: see `relative_effect`)."""
    if difference_type is DifferenceType.ABSOLUTE:
        return absolute_effect(treatment, control)
    return relative_effect(treatment, control, baseline_mean)
