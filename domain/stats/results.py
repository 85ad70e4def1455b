"""Result assembly: per-variant sufficient statistics + `stats_config` → PostHog's result JSON.

Mirrors upstream `get_bayesian_experiment_result` / `get_frequentist_experiment_result`: gates
first, then each test variant against the baseline on its own (domain/stats/comparison.py); a
`StatisticError` leaves that variant's statistical fields null. Beyond upstream, each test
variant also carries:

- `adjusted_p_value`, `adjusted_significant`: the chosen multiple-comparison correction over the
  metric's test variants that have a p-value (domain/stats/corrections.py); `p_value` and
  `significant` stay raw. Null under `none` and for the Bayesian engine.
- `variance_reduction`: under CUPED, 1 - adjusted / unadjusted per-unit variance of the variant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from domain.stats.bayesian import BayesianResult
from domain.stats.comparison import Comparison, ComparisonResult, compare
from domain.stats.config import StatsConfig, StatsMethod, parse_stats_config
from domain.stats.corrections import adjusted_p_values
from domain.stats.errors import ExperimentDataError, StatisticError
from domain.stats.frequentist import FrequentistResult
from domain.stats.statistics import MetricType, Statistic, statistic_for
from domain.stats.sufficient import VariantStats, zero_variant_stats
from domain.stats.validation import ValidationFailure, validate_variant

logger = logging.getLogger(__name__)

T = TypeVar("T")

Outcome = tuple[list[ValidationFailure], Comparison | None]
Adjusted = tuple[float | None, bool | None]


@dataclass(frozen=True)
class VariantAnalysis:
    """One test variant as analysed: gate failures, comparison (None if stopped), correction."""

    variant: VariantStats
    failures: list[ValidationFailure]
    comparison: Comparison | None
    adjusted_p_value: float | None
    adjusted_significant: bool | None


@dataclass(frozen=True)
class Analysis:
    baseline: VariantStats
    baseline_failures: list[ValidationFailure]
    tests: list[VariantAnalysis]


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


def compare_variants(
    metric_type: MetricType | str,
    treatment: VariantStats,
    control: VariantStats,
    stats_config: Mapping[str, Any] | StatsConfig | None = None,
) -> ComparisonResult:
    """One test variant against the baseline, without the gates; raises `StatisticError`."""
    config = stats_config if isinstance(stats_config, StatsConfig) else parse_stats_config(stats_config)
    return compare(metric_type, treatment, control, config).result


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


def _outcome(
    kind: MetricType, variant: VariantStats, baseline: VariantStats, ready: bool, config: StatsConfig
) -> Outcome:
    """The variant's gate failures and, when the gates and the baseline allow, its comparison."""
    failures = validate_variant(variant, kind)
    if not ready or failures:
        return failures, None
    return failures, _try("comparison", variant, lambda: compare(kind, variant, baseline, config))


def _p_value(outcome: Outcome) -> float | None:
    comparison = outcome[1]
    if comparison is None or not isinstance(comparison.result, FrequentistResult):
        return None
    return comparison.result.p_value


def _corrected(outcomes: Sequence[Outcome], config: StatsConfig) -> list[Adjusted]:
    """(adjusted p-value, adjusted significance) per outcome.

    The family is the metric's test variants that got a p-value: a variant stopped by a gate was
    not tested, so it does not dilute the others' correction.
    """
    p_values = [_p_value(outcome) for outcome in outcomes]
    adjusted = adjusted_p_values([p for p in p_values if p is not None], config.correction)
    if adjusted is None:
        return [(None, None)] * len(outcomes)
    values = iter(adjusted)
    out: list[Adjusted] = []
    for p in p_values:
        value = None if p is None else next(values)
        # Strict `<`, like `significant` (p < alpha), so both flags agree when no correction bites.
        out.append((None, None) if value is None else (value, value < config.alpha))
    return out


def _variant_result(analysis: VariantAnalysis, config: StatsConfig) -> dict[str, Any]:
    comparison = analysis.comparison
    base = analysis.variant.to_dict()
    head = {"key": base.pop("key"), "method": config.method.value}
    stats = _stat_values(comparison.result if comparison else None, config.method)
    extras = {
        "adjusted_p_value": analysis.adjusted_p_value,
        "adjusted_significant": analysis.adjusted_significant,
        "variance_reduction": comparison.variance_reduction if comparison else None,
    }
    return {**head, **base, **stats, **extras, "validation_failures": [f.value for f in analysis.failures]}


def analyse_variants(
    metric_type: MetricType | str,
    variants: Sequence[VariantStats],
    config: StatsConfig,
    *,
    variant_keys: Sequence[str] | None = None,
) -> Analysis:
    """Gates, comparisons and the correction: everything a result is rendered from.

    `variants` carries one entry per exposed variant; `variant_keys` (the flag's variant keys in
    flag order), when given, orders the output and fills absent variants with zeros.
    """
    kind = MetricType(metric_type)
    rows = add_missing_variants(variants, variant_keys, kind) if variant_keys is not None else list(variants)
    baseline, tests = split_baseline(rows, config.baseline_variant_key)
    baseline_failures = validate_variant(baseline, kind, is_baseline=True)
    control_stat: Statistic | None = None
    if not baseline_failures:
        control_stat = _try("baseline", baseline, lambda: statistic_for(kind, baseline))
    outcomes = [_outcome(kind, v, baseline, control_stat is not None, config) for v in tests]
    analysed = [
        VariantAnalysis(v, failures, comparison, *adjusted)
        for v, (failures, comparison), adjusted in zip(
            tests, outcomes, _corrected(outcomes, config), strict=True
        )
    ]
    return Analysis(baseline, baseline_failures, analysed)


def compute_experiment_result(
    metric_type: MetricType | str,
    variants: Sequence[VariantStats],
    stats_config: Mapping[str, Any] | StatsConfig | None = None,
    *,
    variant_keys: Sequence[str] | None = None,
) -> dict[str, Any]:
    """PostHog's new-format `ExperimentQueryResponse` as a JSON-ready dict (see `analyse_variants`)."""
    config = stats_config if isinstance(stats_config, StatsConfig) else parse_stats_config(stats_config)
    analysis = analyse_variants(metric_type, variants, config, variant_keys=variant_keys)
    failures = [f.value for f in analysis.baseline_failures]
    return {
        **dict.fromkeys(LEGACY_NULL_FIELDS),
        "baseline": {**analysis.baseline.to_dict(), "validation_failures": failures},
        "variant_results": [_variant_result(test, config) for test in analysis.tests],
    }
