"""Sequential testing: the asymptotic confidence sequence of Waudby-Smith et al. (2023).

The same construction as gbstats 0.8.0's `SequentialTwoSidedTTest` and PostHog's newest
`SequentialTwoSidedTTest` (stats.md §12): for Δ with estimator variance Var(Δ) over N = nT + nC
units and tuning parameter N* (the sample size where the sequence is tightest),

    rho        = sqrt((-2·ln alpha + ln(-2·ln alpha + 1)) / N*)                        (eq. 161)
    half-width = sqrt(Var(Δ)·N) · sqrt(2·(N·rho² + 1)·ln(sqrt(N·rho² + 1)/alpha) / (N·rho)²)  (eq. 9)
    p          = min(1, 1/e), e = exp(rho²·Δ²·N/Var(Δ) / (2(N·rho² + 1))) / sqrt(N·rho² + 1)  (eq. 155)

The interval and p-value stay valid however often they are looked at, which is what lets a daily
timeseries (and the autopilot) act on any day's result. The formulas take numpy arrays as well as
floats, so simulations can evaluate many experiments at once with the very same code.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from domain.stats.effects import DifferenceType, effect_size
from domain.stats.errors import StatisticError
from domain.stats.frequentist import MIN_SAMPLE_SIZE, FrequentistResult, check_test_inputs
from domain.stats.statistics import Statistic

Num = TypeVar("Num", float, npt.NDArray[np.float64])


def sequential_rho(alpha: float, tuning_parameter: float) -> float:
    """The mixing parameter rho for a tuning parameter N* (eq. 161, two-sided)."""
    if not 0 < alpha < 1:
        raise StatisticError("Alpha must be between 0 and 1")
    if not tuning_parameter > 0:
        raise StatisticError("Sequential tuning parameter must be positive")
    log_alpha = math.log(alpha)
    return math.sqrt((-2 * log_alpha + math.log(-2 * log_alpha + 1)) / tuning_parameter)


def sequential_halfwidth(variance: Num, n: Num, alpha: float, tuning_parameter: float) -> Num:
    """Half-width of the confidence sequence for an estimator of variance `variance` over `n` units.

    Eq. 9 takes the per-observation variance s²; the estimator's variance times N is its analogue
    for a two-sample comparison (as gbstats and PostHog convert it).
    """
    rho = sequential_rho(alpha, tuning_parameter)
    spread = n * rho**2 + 1
    per_unit = variance * n
    return np.sqrt(per_unit) * np.sqrt(2 * spread * np.log(np.sqrt(spread) / alpha) / (n * rho) ** 2)  # type: ignore[no-any-return]


def sequential_p_value(effect: Num, variance: Num, n: Num, alpha: float, tuning_parameter: float) -> Num:
    """Always-valid two-sided p-value of H0: Δ = 0 (eq. 155), computed in log space.

    `1/e` underflows gracefully where gbstats' `exp` would overflow to infinity (p = 0 either way).
    """
    rho = sequential_rho(alpha, tuning_parameter)
    spread = n * rho**2 + 1
    log_e = rho**2 * (effect**2 * n / variance) / (2 * spread) - 0.5 * np.log(spread)
    return np.minimum(np.exp(-log_e), 1.0)  # type: ignore[no-any-return]


def sequential_t_test(
    treatment: Statistic,
    control: Statistic,
    *,
    alpha: float = 0.05,
    difference_type: DifferenceType = DifferenceType.RELATIVE,
    tuning_parameter: float = 5000.0,
    baseline_mean: float | None = None,
    min_sample_size: int = MIN_SAMPLE_SIZE,
) -> FrequentistResult:
    """Always-valid p-value and confidence sequence of `treatment` against `control`.

    Same guards as the fixed-horizon test; no t distribution is involved, so the result carries
    no t statistic or degrees of freedom (NaN, as upstream).
    """
    check_test_inputs(treatment, control, alpha, min_sample_size)
    effect = effect_size(treatment, control, difference_type, baseline_mean)
    if not effect.variance > 0:
        raise StatisticError("Pooled variance must be positive")
    n = float(treatment.n + control.n)
    margin = float(sequential_halfwidth(effect.variance, n, alpha, tuning_parameter))
    p_value = float(sequential_p_value(effect.estimate, effect.variance, n, alpha, tuning_parameter))
    return FrequentistResult(
        effect=effect.estimate,
        variance=effect.variance,
        t_statistic=math.nan,
        degrees_of_freedom=math.nan,
        p_value=p_value,
        confidence_interval=(effect.estimate - margin, effect.estimate + margin),
        alpha=alpha,
    )
