"""Result assembly: per-variant sufficient statistics + `stats_config` → PostHog's result JSON.

Mirrors upstream `get_bayesian_experiment_result` / `get_frequentist_experiment_result`: gates
first, then each test variant against the baseline on its own, with no multiple-comparison
correction (stats.md §7); a `StatisticError` leaves that variant's statistical fields null.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from domain.stats.bayesian import BayesianResult, bayesian_test
from domain.stats.config import StatsConfig, StatsMethod, parse_stats_config
from domain.stats.errors import ExperimentDataError, StatisticError
from domain.stats.frequentist import FrequentistResult, welch_t_test
from domain.stats.statistics import MetricType, Statistic, statistic_for
from domain.stats.sufficient import VariantStats, zero_variant_stats
from domain.stats.validation import validate_variant

logger = logging.getLogger(__name__)

T = TypeVar("T")

ComparisonResult = BayesianResult | FrequentistResult

# Legacy top-level keys of `ExperimentQueryResponse`: present but null in the new format (§8).
LEGACY_NULL_FIELDS = (
    "kind",
    "insight",
    "metric",
    "variants",
    "probability",
    "significant",
    "significance_code",
    "stats_version",
    "p_value",
    "credible_intervals",
)

_STAT_FIELDS = {
    StatsMethod.BAYESIAN: ("chance_to_win", "credible_interval", "significant"),
    StatsMethod.FREQUENTIST: ("p_value", "confidence_interval", "significant"),
}


def split_baseline(
    variants: Sequence[VariantStats], baseline_key: str
) -> tuple[VariantStats, list[VariantStats]]:
    """The baseline and the test variants (input order kept, which callers make flag order)."""
    baselines = [v for v in variants if v.key == baseline_key]
    if not baselines:
        raise ExperimentDataError("No control variant found")
    if len(baselines) > 1:
        raise ExperimentDataError("Multiple control variants found")
    return baselines[0], [v for v in variants if v.key != baseline_key]


def add_missing_variants(
    variants: Sequence[VariantStats], variant_keys: Sequence[str], metric_type: MetricType | str
) -> list[VariantStats]:
    """Order by `variant_keys` (flag order), adding zero rows for variants nobody saw.

    Keys outside `variant_keys` (e.g. a holdout) follow in their input order.
    """
    kind = MetricType(metric_type)
    by_key = {v.key: v for v in variants}
    steps = next((len(v.step_counts) for v in variants if v.step_counts is not None), None)
    ratio = kind in (MetricType.RATIO, MetricType.RETENTION)
    ordered = [
        by_key.get(key)
        or zero_variant_stats(key, ratio=ratio, steps=steps if kind is MetricType.FUNNEL else None)
        for key in variant_keys
    ]
    known = set(variant_keys)
    return ordered + [v for v in variants if v.key not in known]


def _ensure_finite(result: ComparisonResult) -> ComparisonResult:
    if isinstance(result, BayesianResult):
        numbers = (result.chance_to_win, *result.credible_interval)
    else:
        numbers = (result.p_value, *result.confidence_interval)
    if not all(math.isfinite(x) for x in numbers):
        raise StatisticError("Statistics are not finite")
    return result


def run_test(treatment: Statistic, control: Statistic, config: StatsConfig) -> ComparisonResult:
    """The configured engine on two ready statistics (raises `StatisticError`)."""
    if config.method is StatsMethod.FREQUENTIST:
        result: ComparisonResult = welch_t_test(
            treatment, control, alpha=config.alpha, difference_type=config.difference_type
        )
    else:
        result = bayesian_test(
            treatment, control, ci_level=config.ci_level, difference_type=config.difference_type
        )
    return _ensure_finite(result)


def compare_variants(
    metric_type: MetricType | str,
    treatment: VariantStats,
    control: VariantStats,
    stats_config: Mapping[str, Any] | StatsConfig | None = None,
) -> ComparisonResult:
    """One test variant against the baseline, without the gates; raises `StatisticError`."""
    config = stats_config if isinstance(stats_config, StatsConfig) else parse_stats_config(stats_config)
    return run_test(statistic_for(metric_type, treatment), statistic_for(metric_type, control), config)


def _stat_values(result: ComparisonResult | None, method: StatsMethod) -> dict[str, Any]:
    if result is None:
        return dict.fromkeys(_STAT_FIELDS[method])
    if isinstance(result, BayesianResult):
        interval_key, head = "credible_interval", {"chance_to_win": result.chance_to_win}
        interval = result.credible_interval
    else:
        interval_key, head = "confidence_interval", {"p_value": result.p_value}
        interval = result.confidence_interval
    return {
        **head,
        interval_key: [float(interval[0]), float(interval[1])],
        "significant": bool(result.significant),
    }


def _try(what: str, variant: VariantStats, compute: Callable[[], T]) -> T | None:
    """Run `compute()`; a `StatisticError` becomes None, logged as upstream's "statistics skipped"."""
    try:
        return compute()
    except StatisticError as exc:
        logger.info(
            "experiment_statistics_skipped: %s variant=%s n=%d reason=%s",
            what,
            variant.key,
            variant.number_of_samples,
            exc,
        )
        return None


def _variant_result(
    metric_type: MetricType,
    variant: VariantStats,
    control_stat: Statistic | None,
    config: StatsConfig,
) -> dict[str, Any]:
    failures = validate_variant(variant, metric_type)
    result: ComparisonResult | None = None
    if control_stat is not None and not failures:
        result = _try(
            "comparison",
            variant,
            lambda: run_test(statistic_for(metric_type, variant), control_stat, config),
        )
    base = variant.to_dict()
    head = {"key": base.pop("key"), "method": config.method.value}
    stats = _stat_values(result, config.method)
    return {**head, **base, **stats, "validation_failures": [f.value for f in failures]}


def compute_experiment_result(
    metric_type: MetricType | str,
    variants: Sequence[VariantStats],
    stats_config: Mapping[str, Any] | StatsConfig | None = None,
    *,
    variant_keys: Sequence[str] | None = None,
) -> dict[str, Any]:
    """PostHog's new-format `ExperimentQueryResponse` as a JSON-ready dict.

    `variants` carries one entry per exposed variant; `variant_keys` (the flag's variant keys in
    flag order), when given, orders the output and fills absent variants with zeros.
    """
    kind = MetricType(metric_type)
    config = stats_config if isinstance(stats_config, StatsConfig) else parse_stats_config(stats_config)
    rows = add_missing_variants(variants, variant_keys, kind) if variant_keys is not None else list(variants)
    baseline, tests = split_baseline(rows, config.baseline_variant_key)
    baseline_failures = validate_variant(baseline, kind, is_baseline=True)
    control_stat: Statistic | None = None
    if not baseline_failures:
        control_stat = _try("baseline", baseline, lambda: statistic_for(kind, baseline))
    return {
        **dict.fromkeys(LEGACY_NULL_FIELDS),
        "baseline": {**baseline.to_dict(), "validation_failures": [f.value for f in baseline_failures]},
        "variant_results": [_variant_result(kind, v, control_stat, config) for v in tests],
    }
