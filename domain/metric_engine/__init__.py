"""Metric computation from stored events: pure, vectorized, no I/O.

Events come in as `EventColumns` (time-sorted numpy arrays with factorized strings); the experiment
as an `ExperimentSpec`; the metric as PostHog's metric JSON. Out come PostHog's result JSON (via
`domain.stats`), for one instant or for a whole daily series in one pass. `metric_needs` tells the
database layer which event names and properties to load.
"""

from domain.metric_engine.columns import (
    EventColumns,
    PropertyColumn,
    column_from_json,
    column_from_values,
    events_from_rows,
    factorize,
    from_micros,
    to_micros,
)
from domain.metric_engine.days import (
    AnalysisDay,
    analysis_days,
    last_midnight,
    local_midnight,
    result_day,
    zone,
)
from domain.metric_engine.errors import MetricEngineError
from domain.metric_engine.exposure_series import exposure_counts
from domain.metric_engine.filters import TEST_ACCOUNT_FILTERS
from domain.metric_engine.needs import events_start, exposure_query_needs, metric_needs
from domain.metric_engine.series import metric_result, metric_series
from domain.metric_engine.sources import Needs
from domain.metric_engine.spec import MULTIPLE_VARIANT_KEY, ExperimentSpec, parse_metric

__all__ = [
    "MULTIPLE_VARIANT_KEY",
    "TEST_ACCOUNT_FILTERS",
    "AnalysisDay",
    "EventColumns",
    "ExperimentSpec",
    "MetricEngineError",
    "Needs",
    "PropertyColumn",
    "analysis_days",
    "column_from_json",
    "column_from_values",
    "events_from_rows",
    "events_start",
    "exposure_counts",
    "exposure_query_needs",
    "factorize",
    "from_micros",
    "last_midnight",
    "local_midnight",
    "metric_needs",
    "metric_result",
    "metric_series",
    "parse_metric",
    "result_day",
    "to_micros",
    "zone",
]
