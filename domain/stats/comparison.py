"""One test variant against the baseline: the configured engine, CUPED-adjusted when it applies.

- Bayesian (stats.md §4), or frequentist: the fixed-horizon Welch t-test (§5) or, with
  `sequential`, the always-valid confidence sequence (domain/stats/sequential.py).
- CUPED (domain/stats/cuped.py) when the config asks for it and both variants carry a covariate;
  the engine only collects one for the metrics CUPED is defined on (means, ordered and strict
  funnels), so a ratio metric under `cuped.enabled` is analysed unadjusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from domain.stats.bayesian import BayesianResult, bayesian_test
from domain.stats.config import StatsConfig, StatsMethod
from domain.stats.cuped import Covariate, cuped_adjust
from domain.stats.errors import StatisticError
from domain.stats.frequentist import FrequentistResult, welch_t_test
from domain.stats.sequential import sequential_t_test
from domain.stats.statistics import MetricType, Statistic, statistic_for
from domain.stats.sufficient import VariantStats

ComparisonResult = BayesianResult | FrequentistResult


@dataclass(frozen=True)
class Comparison:
    result: ComparisonResult
    variance_reduction: float | None  # the test variant's, under CUPED; None without CUPED


def _ensure_finite(result: ComparisonResult) -> ComparisonResult:
    if isinstance(result, BayesianResult):
        numbers = (result.chance_to_win, *result.credible_interval)
    else:
        numbers = (result.p_value, *result.confidence_interval)
    if not all(math.isfinite(x) for x in numbers):
        raise StatisticError("Statistics are not finite")
    return result


def run_test(
    treatment: Statistic, control: Statistic, config: StatsConfig, baseline_mean: float | None = None
) -> ComparisonResult:
    """The configured engine on two ready statistics (raises `StatisticError`)."""
    kind = config.difference_type
    result: ComparisonResult
    if config.method is StatsMethod.FREQUENTIST and config.sequential:
        result = sequential_t_test(
            treatment,
            control,
            alpha=config.alpha,
            difference_type=kind,
            tuning_parameter=config.sequential_tuning_parameter,
            baseline_mean=baseline_mean,
        )
    elif config.method is StatsMethod.FREQUENTIST:
        result = welch_t_test(
            treatment, control, alpha=config.alpha, difference_type=kind, baseline_mean=baseline_mean
        )
    else:
        result = bayesian_test(
            treatment, control, ci_level=config.ci_level, difference_type=kind, baseline_mean=baseline_mean
        )
    return _ensure_finite(result)


def compare(
    metric_type: MetricType | str, treatment: VariantStats, control: VariantStats, config: StatsConfig
) -> Comparison:
    """`treatment` against `control` (the baseline), without the gates; raises `StatisticError`."""
    treatment_stat, control_stat = statistic_for(metric_type, treatment), statistic_for(metric_type, control)
    covariates = Covariate.of(treatment), Covariate.of(control)
    if not config.cuped or covariates[0] is None or covariates[1] is None:
        return Comparison(run_test(treatment_stat, control_stat, config), None)
    adjusted = cuped_adjust(treatment_stat, control_stat, covariates[0], covariates[1])
    result = run_test(adjusted.treatment, adjusted.control, config, adjusted.baseline_mean)
    return Comparison(result, adjusted.variance_reduction)
