"""The question an automatic stop asks: which test variants does the always-valid test call?

`sequential_relative_comparisons` runs the same gates and engine as the results (frequentist,
relative change, sequential confidence sequence, Holm over the metric's test variants), so a
decision taken on it is the decision the result shows on the same day. Because the interval and
p-value are always valid, it may be asked every day without inflating the error rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from domain.stats.config import (
    DEFAULT_ALPHA,
    DEFAULT_BASELINE_KEY,
    DEFAULT_TUNING_PARAMETER,
    TUNING_PARAMETER_RANGE,
    Correction,
    StatsConfig,
    StatsMethod,
)
from domain.stats.effects import DifferenceType
from domain.stats.frequentist import FrequentistResult
from domain.stats.results import VariantAnalysis, analyse_variants
from domain.stats.statistics import MetricType
from domain.stats.sufficient import VariantStats


class Verdict(StrEnum):
    BETTER = "better"  # Holm-significant in the direction of the metric's goal
    WORSE = "worse"  # Holm-significant against it
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class SequentialComparison:
    """One test variant against the baseline, always valid, on the relative scale (fractions)."""

    key: str
    relative_change: float
    interval: tuple[float, float]
    p_value: float
    holm_p_value: float
    holm_significant: bool
    verdict: Verdict
    variance_reduction: float | None


def _comparison(test: VariantAnalysis, decrease_is_better: bool) -> SequentialComparison | None:
    comparison = test.comparison
    if comparison is None or test.adjusted_p_value is None or test.adjusted_significant is None:
        return None
    result = comparison.result
    assert isinstance(result, FrequentistResult)
    verdict = Verdict.INCONCLUSIVE
    if test.adjusted_significant and result.effect != 0:
        improved = (result.effect < 0) if decrease_is_better else (result.effect > 0)
        verdict = Verdict.BETTER if improved else Verdict.WORSE
    return SequentialComparison(
        key=test.variant.key,
        relative_change=result.effect,
        interval=result.confidence_interval,
        p_value=result.p_value,
        holm_p_value=test.adjusted_p_value,
        holm_significant=test.adjusted_significant,
        verdict=verdict,
        variance_reduction=comparison.variance_reduction,
    )


def sequential_relative_comparisons(
    metric_type: MetricType | str,
    variants: Sequence[VariantStats],
    *,
    goal: str | None = "increase",
    alpha: float = DEFAULT_ALPHA,
    tuning_parameter: float = DEFAULT_TUNING_PARAMETER,
    baseline_key: str = DEFAULT_BASELINE_KEY,
    cuped: bool = False,
) -> dict[str, SequentialComparison | None]:
    """Per test variant (by key): the sequential relative-change interval, its p-value and the
    Holm-adjusted significance; None where a gate or a statistics error stopped the comparison.

    `variants` are the per-variant sufficient statistics (as in a result's `baseline` and
    `variant_results`); `goal` is the metric's (`increase`, the default, or `decrease`);
    `cuped` adjusts with the covariate sums when the variants carry them; on this relative scale
    it inherits PostHog's CUPED variance, which can be too small (ARCHITECTURE.md, "Statistics"),
    so it is off by default.
    """
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
    if not TUNING_PARAMETER_RANGE[0] <= tuning_parameter <= TUNING_PARAMETER_RANGE[1]:
        raise ValueError("tuning_parameter must be between 1 and 1e9")
    config = StatsConfig(
        method=StatsMethod.FREQUENTIST,
        alpha=alpha,
        difference_type=DifferenceType.RELATIVE,
        baseline_variant_key=baseline_key,
        sequential=True,
        sequential_tuning_parameter=tuning_parameter,
        correction=Correction.HOLM,
        cuped=cuped,
    )
    analysis = analyse_variants(metric_type, variants, config)
    return {test.variant.key: _comparison(test, goal == "decrease") for test in analysis.tests}
