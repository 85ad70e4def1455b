"""Validation gates run before any statistics (stats.md §6, upstream `validate_variant_result`)."""

from __future__ import annotations

from enum import StrEnum

from domain.stats.statistics import MetricType
from domain.stats.sufficient import VariantStats

MIN_EXPOSURES = 50
MIN_METRIC_DATA = 5


class ValidationFailure(StrEnum):
    """`ExperimentStatsValidationFailure` values as they appear in the JSON."""

    NOT_ENOUGH_EXPOSURES = "not-enough-exposures"
    NOT_ENOUGH_METRIC_DATA = "not-enough-metric-data"
    BASELINE_MEAN_IS_ZERO = "baseline-mean-is-zero"


def validate_variant(
    variant: VariantStats, metric_type: MetricType | str, *, is_baseline: bool = False
) -> list[ValidationFailure]:
    """Every gate the variant fails, in upstream's order; empty means "analyse it".

    A failing baseline blocks every comparison; a failing test variant only its own.
    """
    failures: list[ValidationFailure] = []
    if variant.number_of_samples < MIN_EXPOSURES:
        failures.append(ValidationFailure.NOT_ENOUGH_EXPOSURES)
    if MetricType(metric_type) in (MetricType.FUNNEL, MetricType.RETENTION) and variant.sum < MIN_METRIC_DATA:
        failures.append(ValidationFailure.NOT_ENOUGH_METRIC_DATA)
    # Upstream tests the raw sum, not the mean, so a baseline whose values cancel to 0 also fails.
    if is_baseline and variant.sum == 0:
        failures.append(ValidationFailure.BASELINE_MEAN_IS_ZERO)
    return failures
