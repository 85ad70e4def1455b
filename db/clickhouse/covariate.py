"""CUPED's pre-exposure covariate in SQL (`domain.metric_engine.covariate`), one scalar per entity.

The covariate is the metric over `[first exposure - lookback, first exposure)`: the scan starts
`lookback` before the experiment (events before the start count here, that is the point), and the
rows are joined to their entity's exposure like the metric's own rows, with the window reversed.

- Mean metrics: the source's own math over those rows (distinct sessions and local days counted
  inside the window), not winsorized (upstream clamps the post-exposure value only).
- Ordered and strict funnels: 1 when the entity performed the funnel's last step in the window.
- Everything else has none (`supports_cuped`); an entity without rows in its window has 0.

It depends on the first exposure only, which never moves, so one value serves every day.
"""

from __future__ import annotations

from db.clickhouse.exposures import Scope
from db.clickhouse.filters import source_sql
from db.clickhouse.values import before_exposure, contributions, qualifying
from domain.metric_engine import Needs
from domain.metric_engine.spec import Metric
from domain.metrics.schema import ExperimentFunnelMetric, ExperimentMeanMetric

# How the rows of each math (`values.contributions` folds distinct maths into `total`) aggregate.
_AGGREGATES = {"total": "sum", "sum": "sum", "avg": "avg", "min": "min", "max": "max"}


def covariate_sql(scope: Scope, needs: Needs, metric: Metric, exposures: str, lookback: int) -> str:
    """`entity, covariate`: per entity with rows in its window, the covariate (Float64)."""
    window = before_exposure(lookback)
    since = scope.spec.start - lookback
    if isinstance(metric, ExperimentMeanMetric):
        rows, math = contributions(scope, needs, metric.source, exposures, window, since)
        value = f"{_AGGREGATES[math]}(value)"
    else:
        assert isinstance(metric, ExperimentFunnelMetric)
        last = source_sql(metric.series[-1], scope.spec.actions)
        rows, value = qualifying(scope, needs, last, "", exposures, window, since), "1."
    return f"SELECT entity, toFloat64({value}) AS covariate FROM ({rows}) GROUP BY entity"
