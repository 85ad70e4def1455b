"""Which events and properties an analysis reads: the database loads exactly these, in one query."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from domain.metric_engine.covariate import cuped_lookback
from domain.metric_engine.exposures import exposure_needs
from domain.metric_engine.sources import Needs, needs_of
from domain.metric_engine.spec import ExperimentSpec, Source, parse_metric
from domain.metrics.schema import (
    ActionsNode,
    ExperimentFunnelMetric,
    ExperimentMeanMetric,
    ExperimentRatioMetric,
)


def metric_sources(metric: Mapping[str, Any]) -> list[Source]:
    parsed = parse_metric(metric)
    if isinstance(parsed, ExperimentMeanMetric):
        return [parsed.source]
    if isinstance(parsed, ExperimentFunnelMetric):
        return list(parsed.series)
    if isinstance(parsed, ExperimentRatioMetric):
        return [parsed.numerator, parsed.denominator]
    return [parsed.start_event, parsed.completion_event]


def metric_needs(spec: ExperimentSpec, metric: Mapping[str, Any]) -> Needs:
    """Exposure needs plus every source's (raises MetricEngineError for what cannot be evaluated)."""
    return exposure_needs(spec) | needs_of(metric_sources(metric), spec.actions)


def events_start(spec: ExperimentSpec, metric: Mapping[str, Any]) -> int:
    """Earliest event the analysis reads (µs): the experiment start, or the CUPED lookback before it.

    Entities exposed at the start need their pre-exposure window too, so the one query starts that
    much earlier; exposures and post-exposure values still only count from the start.
    """
    return spec.start - cuped_lookback(spec, parse_metric(metric))


def exposure_query_needs(spec: ExperimentSpec) -> Needs:
    return exposure_needs(spec)


def action_ids(metrics: Sequence[Mapping[str, Any]], exposure_config: Mapping[str, Any] | None) -> set[int]:
    """Actions the analysis must resolve (metric sources and an ActionsNode exposure)."""
    ids = {int(s.id) for m in metrics for s in metric_sources(m) if isinstance(s, ActionsNode)}
    if exposure_config and exposure_config.get("kind") == "ActionsNode" and "id" in exposure_config:
        ids.add(int(exposure_config["id"]))
    return ids
