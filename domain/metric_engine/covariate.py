"""CUPED's pre-exposure covariate (stats.md §1.6), read from the same events as the metric.

The covariate of an entity is the same metric measured over the `lookback_days` before its first
exposure, `[first - lookback, first)`. It only depends on the first exposure, which never moves,
so it is computed once per analysis and serves every day of a series; the database load starts
`lookback` earlier instead of running a second query (`analysis_start`).

- Mean metrics: the metric's own aggregate (`math`, property filters, distinct sessions or days)
  over the window's events. Events before the experiment start count here, that is the point;
  the window is not winsorized (upstream clamps the post-exposure value only).
- Ordered and strict funnels: 1 if the entity performed the funnel's last step in the window,
  else 0. A whole funnel cannot be "completed" before exposure, because the exposure is its
  step 0; the last step's event is the conversion the funnel measures (upstream's choice too).
- Unordered funnels, ratio and retention metrics: no covariate (upstream defines none either).
"""

from __future__ import annotations

import numpy as np

from domain.metric_engine.accumulate import Accumulator, row_values
from domain.metric_engine.columns import EventColumns, FloatArray, IntArray
from domain.metric_engine.exposures import Exposures
from domain.metric_engine.sources import source_mask
from domain.metric_engine.spec import UNIT_MICROS, ExperimentSpec, Metric, Source
from domain.metrics.schema import ExperimentFunnelMetric, ExperimentMeanMetric, StepOrderValue
from domain.stats import parse_stats_config


def supports_cuped(metric: Metric) -> bool:
    if isinstance(metric, ExperimentMeanMetric):
        return True
    if isinstance(metric, ExperimentFunnelMetric):
        return metric.funnel_order_type is not StepOrderValue.UNORDERED
    return False


def cuped_lookback(spec: ExperimentSpec, metric: Metric) -> int:
    """µs of history before each first exposure to read; 0 when CUPED is off or undefined here."""
    config = parse_stats_config(spec.stats_config)
    if not config.cuped or not supports_cuped(metric):
        return 0
    return config.cuped_lookback_days * UNIT_MICROS["day"]


def pre_exposure_rows(
    events: EventColumns, mask: np.ndarray, exposures: Exposures, lookback: int
) -> IntArray:
    """Rows of `mask` in `[first exposure - lookback, first exposure)` of their entity."""
    rows = np.flatnonzero(mask)
    starts = exposures.first[events.entity[rows]]  # NEVER for the never exposed: no window
    times = events.timestamp[rows]
    keep = (times < starts) & (times >= starts - lookback)
    return rows[keep].astype(np.int64)


def _mean(
    events: EventColumns, source: Source, spec: ExperimentSpec, exposures: Exposures, lookback: int
) -> FloatArray:
    mask = source_mask(events, source, spec.actions)
    rows, values, math = row_values(
        events, source, pre_exposure_rows(events, mask, exposures, lookback), spec.timezone
    )
    state = Accumulator(math, events.entity_count)
    state.add(events.entity[rows], values)
    return state.values()


def _funnel(
    events: EventColumns,
    metric: ExperimentFunnelMetric,
    spec: ExperimentSpec,
    exposures: Exposures,
    lookback: int,
) -> FloatArray:
    mask = source_mask(events, metric.series[-1], spec.actions)
    rows = pre_exposure_rows(events, mask, exposures, lookback)
    covariate = np.zeros(events.entity_count, dtype=np.float64)
    covariate[events.entity[rows]] = 1.0
    return covariate


def covariate_values(
    events: EventColumns, metric: Metric, spec: ExperimentSpec, exposures: Exposures
) -> FloatArray | None:
    """Per entity: the CUPED covariate, or None when the analysis collects none."""
    lookback = cuped_lookback(spec, metric)
    if not lookback:
        return None
    if isinstance(metric, ExperimentMeanMetric):
        return _mean(events, metric.source, spec, exposures, lookback)
    assert isinstance(metric, ExperimentFunnelMetric)
    return _funnel(events, metric, spec, exposures, lookback)
