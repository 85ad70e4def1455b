"""What an analysis needs to know about the experiment, and the metric parsed into its schema model.

`ExperimentSpec` carries values, never rows: the database layer builds it from the experiment, its
flag, its holdout, its project and the actions it references.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from domain.metric_engine.errors import MetricEngineError
from domain.metric_engine.filters import TEST_ACCOUNT_FILTERS
from domain.metrics.schema import (
    ActionsNode,
    EventsNode,
    ExperimentDataWarehouseNode,
    ExperimentFunnelMetric,
    ExperimentMeanMetric,
    ExperimentMetric,
    ExperimentRatioMetric,
    ExperimentRetentionMetric,
)

DEFAULT_EXPOSURE_EVENT = "$feature_flag_called"
MULTIPLE_VARIANT_KEY = "$multiple"
SECOND = 1_000_000
# Upstream's `conversion_window_to_seconds`: a "month" is 30 days.
UNIT_MICROS = {
    "second": SECOND,
    "minute": 60 * SECOND,
    "hour": 3600 * SECOND,
    "day": 86_400 * SECOND,
    "week": 7 * 86_400 * SECOND,
    "month": 30 * 86_400 * SECOND,
}

Metric = ExperimentMeanMetric | ExperimentFunnelMetric | ExperimentRatioMetric | ExperimentRetentionMetric
Source = EventsNode | ActionsNode | ExperimentDataWarehouseNode
ActionSteps = tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class ExperimentSpec:
    """The experiment as the analysis sees it. Times are µs since the epoch, UTC."""

    flag_key: str
    variant_keys: tuple[str, ...]  # the flag's variants, in flag order
    start: int
    end: int | None = None  # inclusive, like upstream's `timestamp <= date_to`
    holdout_id: int | None = None
    exposure_criteria: Mapping[str, Any] | None = None
    stats_config: Mapping[str, Any] | None = None
    only_count_matured_users: bool = False
    excluded_variants: tuple[str, ...] = ()
    timezone: str = "UTC"
    test_account_filters: tuple[Mapping[str, Any], ...] = TEST_ACCOUNT_FILTERS
    actions: Mapping[int, ActionSteps] = field(default_factory=dict)
    # The flag's filters, for the split its variants (and holdout) ask for; None: an even split.
    flag_filters: Mapping[str, Any] | None = None

    @property
    def variants(self) -> tuple[str, ...]:
        """Analysed variant keys: the flag's (minus excluded ones), then the holdout's own key."""
        keys = tuple(k for k in self.variant_keys if k not in self.excluded_variants)
        return keys + ((f"holdout-{self.holdout_id}",) if self.holdout_id is not None else ())

    @property
    def exposure_config(self) -> Mapping[str, Any] | None:
        config = (self.exposure_criteria or {}).get("exposure_config")
        return config if isinstance(config, Mapping) else None

    @property
    def exposure_source(self) -> EventsNode | ActionsNode:
        """The exposure as a metric source: `$feature_flag_called` unless a custom event or action."""
        config = self.exposure_config
        if config is not None and config.get("kind") == "ActionsNode":
            return ActionsNode(id=int(config["id"]))
        event = config.get("event") if config is not None else None
        if not event or event == DEFAULT_EXPOSURE_EVENT:
            return EventsNode(event=DEFAULT_EXPOSURE_EVENT)
        return EventsNode(event=str(event), properties=list(config.get("properties") or []))  # type: ignore[union-attr]

    @property
    def is_default_exposure(self) -> bool:
        source = self.exposure_source
        return isinstance(source, EventsNode) and source.event == DEFAULT_EXPOSURE_EVENT

    @property
    def variant_property(self) -> str:
        """Where the exposure event carries the variant (upstream `_build_variant_property`)."""
        return "$feature_flag_response" if self.is_default_exposure else f"$feature/{self.flag_key}"

    @property
    def first_seen(self) -> bool:
        """`multiple_variant_handling: first_seen` keeps an entity's first variant instead of excluding it."""
        return (self.exposure_criteria or {}).get("multiple_variant_handling") == "first_seen"

    @property
    def filter_test_accounts(self) -> bool:
        return bool((self.exposure_criteria or {}).get("filterTestAccounts"))


def parse_metric(metric: Mapping[str, Any]) -> Metric:
    """The metric dict as its schema model; a malformed metric is a user-facing error."""
    try:
        return ExperimentMetric.model_validate(dict(metric)).root
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise MetricEngineError(f"Invalid metric: {problems}") from None


def window_micros(value: int | None, unit: str | None) -> int:
    """A conversion window in µs; 0 when unset (no window)."""
    if not value or not unit:
        return 0
    return int(value) * UNIT_MICROS[str(unit)]


def conversion_window(metric: Metric) -> int:
    unit = metric.conversion_window_unit.value if metric.conversion_window_unit else None
    return window_micros(metric.conversion_window, unit)
