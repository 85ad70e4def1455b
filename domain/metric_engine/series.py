"""The analysis: events + experiment + metric -> PostHog's result JSON, as of one or many instants.

`metric_series` answers a whole timeseries in one pass: per-entity state is built once from the
time-sorted events and read at each boundary, so day D's result equals what a one-shot analysis with
`as_of` = D's boundary returns (`metric_result`), including `$multiple` exclusion re-evaluated as of
that day, conversion windows and maturity. Each day re-aggregates the per-entity values (O(entities)
vectorized work per day), which keeps winsorization bounds exact per day instead of delta-updating.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from domain.metric_engine.accumulate import values_by_day
from domain.metric_engine.columns import BoolArray, EventColumns, FloatArray
from domain.metric_engine.covariate import covariate_values
from domain.metric_engine.errors import MetricEngineError
from domain.metric_engine.exposures import Exposures, build_exposures
from domain.metric_engine.funnel import funnel_reach, step_counts, steps_reached
from domain.metric_engine.retention import retention_by_day
from domain.metric_engine.spec import ExperimentSpec, Metric, conversion_window, parse_metric
from domain.metrics.schema import (
    ExperimentFunnelMetric,
    ExperimentMeanMetric,
    ExperimentMetricOutlierHandling,
    ExperimentRatioMetric,
    ExperimentRetentionMetric,
)
from domain.stats import (
    ExperimentDataError,
    VariantStats,
    clamp,
    compute_experiment_result,
    expected_split,
    funnel_variant_stats,
    mean_variant_stats,
    parse_stats_config,
    ratio_variant_stats,
    sample_ratio_mismatch,
    winsorization_bounds,
)

DayStats = list[VariantStats]
Groups = list[tuple[str, BoolArray]]


def _groups(spec: ExperimentSpec, exposures: Exposures, counted: BoolArray) -> Groups:
    return [(key, counted & (exposures.variant == i)) for i, key in enumerate(spec.variants)]


def _matured(spec: ExperimentSpec, exposures: Exposures, window: int, as_of: int) -> BoolArray:
    """`only_count_matured_users`: the entity's conversion window closed by the analysis time.

    The reference instant is the analysis time (`query_to`), not the wall clock upstream reads, so a
    backfilled day shows what was known at its end and recomputing it later gives the same numbers.
    """
    if not spec.only_count_matured_users or not window:
        return np.ones(exposures.first.size, dtype=bool)
    return exposures.first <= as_of - window


def _winsorized(
    values: FloatArray,
    pool: BoolArray,
    lower: float | None,
    upper: float | None,
    ignore_zeros: bool | None,
) -> FloatArray:
    """Clamp into quantile bounds of the pooled values (all exposed entities, as upstream pools them)."""
    if lower is None and upper is None:
        return values
    bounds = winsorization_bounds(values[pool], lower, upper, ignore_zeros=bool(ignore_zeros))
    return clamp(values, bounds)


def _outliers(handling: ExperimentMetricOutlierHandling | None) -> tuple[float | None, float | None, bool]:
    if handling is None:
        return None, None, False
    return handling.lower_bound_percentile, handling.upper_bound_percentile, bool(handling.ignore_zeros)


def _mean_days(
    events: EventColumns, metric: Metric, spec: ExperimentSpec, exposures: Exposures, as_of: Sequence[int]
) -> Iterator[DayStats]:
    assert isinstance(metric, ExperimentMeanMetric)
    window = conversion_window(metric)
    bounds = (metric.lower_bound_percentile, metric.upper_bound_percentile, metric.ignore_zeros)
    covariate = covariate_values(events, metric, spec, exposures)
    for at, raw in zip(
        as_of, values_by_day(events, metric.source, spec, exposures, window, as_of), strict=True
    ):
        pool = exposures.exposed(at) & _matured(spec, exposures, window, at)
        values = _winsorized(raw, pool, *bounds)
        groups = _groups(spec, exposures, pool & exposures.counted(at))
        yield [mean_variant_stats(key, values[mask], _masked(covariate, mask)) for key, mask in groups]


def _masked(covariate: FloatArray | None, mask: BoolArray) -> FloatArray | None:
    return None if covariate is None else covariate[mask]


def _funnel_days(
    events: EventColumns, metric: Metric, spec: ExperimentSpec, exposures: Exposures, as_of: Sequence[int]
) -> Iterator[DayStats]:
    assert isinstance(metric, ExperimentFunnelMetric)
    reach = funnel_reach(events, metric, spec, exposures)
    covariate = covariate_values(events, metric, spec, exposures)
    steps = len(metric.series)
    window = conversion_window(metric)
    for at in as_of:
        counted = exposures.counted(at) & _matured(spec, exposures, window, at)
        reached = steps_reached(reach, at)
        converted = (reached == steps).astype(np.float64)
        yield [
            funnel_variant_stats(
                key, converted[mask], step_counts(reached[mask], steps), _masked(covariate, mask)
            )
            for key, mask in _groups(spec, exposures, counted)
        ]


def _ratio_days(
    events: EventColumns, metric: Metric, spec: ExperimentSpec, exposures: Exposures, as_of: Sequence[int]
) -> Iterator[DayStats]:
    assert isinstance(metric, ExperimentRatioMetric)
    window = conversion_window(metric)
    numerators = values_by_day(events, metric.numerator, spec, exposures, window, as_of)
    denominators = values_by_day(events, metric.denominator, spec, exposures, window, as_of)
    for at, num, den in zip(as_of, numerators, denominators, strict=True):
        pool = exposures.exposed(at) & _matured(spec, exposures, window, at)
        num = _winsorized(num, pool, *_outliers(metric.numerator_outlier_handling))
        den = _winsorized(den, pool, *_outliers(metric.denominator_outlier_handling))
        groups = _groups(spec, exposures, pool & exposures.counted(at))
        yield [ratio_variant_stats(key, num[mask], den[mask]) for key, mask in groups]


def _retention_days(
    events: EventColumns, metric: Metric, spec: ExperimentSpec, exposures: Exposures, as_of: Sequence[int]
) -> Iterator[DayStats]:
    assert isinstance(metric, ExperimentRetentionMetric)
    for at, day in zip(as_of, retention_by_day(events, metric, spec, exposures, as_of), strict=True):
        counted = exposures.counted(at) & (day.start < at)
        if spec.only_count_matured_users:
            counted &= day.window_end <= at
        retained = (day.retained_at < at).astype(np.float64)
        ones = np.ones_like(retained)
        yield [
            ratio_variant_stats(key, retained[mask], ones[mask])
            for key, mask in _groups(spec, exposures, counted)
        ]


_KINDS: dict[str, Callable[..., Iterator[DayStats]]] = {
    "mean": _mean_days,
    "funnel": _funnel_days,
    "ratio": _ratio_days,
    "retention": _retention_days,
}


def _exposures_as_of(spec: ExperimentSpec, exposures: Exposures, at: int) -> dict[str, int]:
    """Entities counted in each analysed variant as of `at` (`$multiple` ones excluded)."""
    counted = exposures.variant[exposures.counted(at)]
    per_variant = np.bincount(counted, minlength=len(spec.variants))
    return {key: int(per_variant[i]) for i, key in enumerate(spec.variants)}


def metric_series(
    spec: ExperimentSpec, metric: Mapping[str, Any], events: EventColumns, as_of: Sequence[int]
) -> list[dict[str, Any]]:
    """One result per instant of `as_of` (ascending, µs): the cumulative analysis up to it.

    Each result also carries `srm`, the sample-ratio check of that instant's exposures against
    the flag's split (all exposures, whatever the metric's own maturity or windows).
    """
    if any(later < earlier for earlier, later in pairwise(as_of)):
        raise ValueError("as_of must be ascending")
    parsed = parse_metric(metric)
    exposures = build_exposures(events, spec)
    days = _KINDS[parsed.metric_type](events, parsed, spec, exposures, as_of)
    counts = [_exposures_as_of(spec, exposures, at) for at in as_of]
    return results_from_stats(parsed.metric_type, days, spec, counts)


def results_from_stats(
    kind: str,
    days: Iterable[DayStats],
    spec: ExperimentSpec,
    exposure_counts: Sequence[Mapping[str, int]] | None,
) -> list[dict[str, Any]]:
    """PostHog's result JSON for each day's per-variant statistics (whichever engine computed them),
    each with its `srm` when that day's exposure counts per variant are given."""
    config = parse_stats_config(spec.stats_config)
    split = expected_split(spec.flag_filters, spec.variants)
    results = []
    try:
        for i, stats in enumerate(days):
            result = compute_experiment_result(kind, stats, config, variant_keys=spec.variants)
            if exposure_counts is not None:
                result["srm"] = sample_ratio_mismatch(exposure_counts[i], split)
            results.append(result)
    except ExperimentDataError as exc:
        raise MetricEngineError(str(exc)) from None
    return results


def metric_result(
    spec: ExperimentSpec, metric: Mapping[str, Any], events: EventColumns, as_of: int
) -> dict[str, Any]:
    """The result a results query returns at `as_of`."""
    return metric_series(spec, metric, events, [as_of])[0]
