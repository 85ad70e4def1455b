"""A metric's per-variant, per-day sufficient statistics computed by ClickHouse, then `domain.stats`.

One query per analysis, whatever the number of days: exposures, per-entity values and the daily
aggregation all run in ClickHouse, and what comes back is one row per variant with an array per
statistic (one element per day). Python builds `VariantStats` from those sums and hands them to the
same `results_from_stats` the embedded engine ends with. No event crosses into Python.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from db.clickhouse.aggregate import (
    Outliers,
    Part,
    StatsQuery,
    bound_columns,
    counted,
    entity_table,
    per_day,
    pool,
    stats_sql,
    value,
    zeros,
)
from db.clickhouse.exposures import Scope, exposures_sql
from db.clickhouse.funnel import reach_sql
from db.clickhouse.retention import retention_sql
from db.clickhouse.values import values_sql
from domain.metric_engine import Needs, metric_needs
from domain.metric_engine.series import DayStats, results_from_stats
from domain.metric_engine.spec import Metric, conversion_window, parse_metric
from domain.metrics.schema import (
    ExperimentFunnelMetric,
    ExperimentMeanMetric,
    ExperimentMetricOutlierHandling,
    ExperimentRatioMetric,
    ExperimentRetentionMetric,
)
from domain.stats import VariantStats

Rows = Sequence[Sequence[Any]]
Sums = dict[str, str]


def _outliers(handling: ExperimentMetricOutlierHandling | None) -> Outliers:
    if handling is None:
        return Outliers()
    return Outliers(
        handling.lower_bound_percentile, handling.upper_bound_percentile, bool(handling.ignore_zeros)
    )


class Query:
    """The SQL of one metric analysis and how to read its rows back."""

    def __init__(self, scope: Scope, metric: Metric, needs: Needs) -> None:
        self.scope, self.metric, self.needs = scope, metric, needs
        self.window = conversion_window(metric)
        self.matured = scope.spec.only_count_matured_users
        self.exposures = exposures_sql(scope, needs)

    def _values(self, source: Any, name: str) -> Part:
        query = values_sql(self.scope, self.needs, source, self.exposures, self.window, name)
        return Part(query, {name: zeros(self.scope)})

    def _counted(self, expression: str) -> str:
        return per_day(self.scope, f"if({counted(self.window, self.matured)}, {expression}, 0.)")

    def _moments(self, parts: Sequence[Part], columns: Mapping[str, Outliers], sums: Sums) -> StatsQuery:
        windows = [
            column
            for name, outliers in columns.items()
            for column in bound_columns(self.scope, name, outliers, pool(self.window, self.matured))
        ]
        table = entity_table(self.exposures, parts)
        return stats_sql(table, windows, {"samples": self._counted("1."), **sums})

    def mean(self) -> StatsQuery:
        assert isinstance(self.metric, ExperimentMeanMetric)
        m = self.metric
        outliers = Outliers(m.lower_bound_percentile, m.upper_bound_percentile, bool(m.ignore_zeros))
        v = value("vals", outliers)
        sums = {"total": self._counted(v), "squares": self._counted(f"{v} * {v}")}
        return self._moments([self._values(m.source, "vals")], {"vals": outliers}, sums)

    def ratio(self) -> StatsQuery:
        assert isinstance(self.metric, ExperimentRatioMetric)
        m = self.metric
        num_outliers, den_outliers = (
            _outliers(m.numerator_outlier_handling),
            _outliers(m.denominator_outlier_handling),
        )
        num, den = value("num", num_outliers), value("den", den_outliers)
        sums = {
            "total": self._counted(num),
            "squares": self._counted(f"{num} * {num}"),
            "den_total": self._counted(den),
            "den_squares": self._counted(f"{den} * {den}"),
            "product": self._counted(f"{num} * {den}"),
        }
        parts = [self._values(m.numerator, "num"), self._values(m.denominator, "den")]
        return self._moments(parts, {"num": num_outliers, "den": den_outliers}, sums)

    def funnel(self) -> StatsQuery:
        assert isinstance(self.metric, ExperimentFunnelMetric)
        steps = len(self.metric.series)
        reach = reach_sql(self.scope, self.needs, self.metric, self.exposures, self.window)
        step_counts = {
            f"step_{k}": self._counted(f"toFloat64(reached[i] >= {k})") for k in range(1, steps + 1)
        }
        sums = {"total": self._counted(f"toFloat64(reached[i] = {steps})"), **step_counts}
        return self._moments(
            [Part(reach, {"reached": f"arrayWithConstant({self.scope.days}, toUInt64(0))"})], {}, sums
        )

    def retention(self) -> StatsQuery:
        assert isinstance(self.metric, ExperimentRetentionMetric)
        query = retention_sql(self.scope, self.needs, self.metric, self.exposures, self.window)
        never = f"arrayWithConstant({self.scope.days}, toInt64(9223372036854775807))"
        part = Part(query, {"start_at": never, "retained_at": never, "window_end": never})
        started = "start_at[i] < b" + (" AND window_end[i] <= b" if self.matured else "")
        in_sample = f"first < b AND multiple >= b AND {started}"
        sums = {
            "samples": per_day(self.scope, f"if({in_sample}, 1., 0.)"),
            "total": per_day(self.scope, f"if({in_sample} AND retained_at[i] < b, 1., 0.)"),
        }
        return stats_sql(entity_table(self.exposures, [part]), [], sums)

    def sql(self) -> StatsQuery:
        builders: dict[str, Callable[[], StatsQuery]] = {
            "mean": self.mean,
            "funnel": self.funnel,
            "ratio": self.ratio,
            "retention": self.retention,
        }
        return builders[self.metric.metric_type]()


def metric_query(scope: Scope, metric: Mapping[str, Any]) -> tuple[Metric, StatsQuery]:
    """The parsed metric and its one query (validated by the domain first, before any I/O)."""
    needs = metric_needs(scope.spec, metric)
    parsed = parse_metric(metric)
    return parsed, Query(scope, parsed, needs).sql()


def _variant_day(
    kind: str, key: str, row: Mapping[str, Sequence[float]], day: int, steps: int
) -> VariantStats:
    n = int(row["samples"][day])
    total = float(row["total"][day])
    if kind == "funnel":
        counts = tuple(int(row[f"step_{k}"][day]) for k in range(1, steps + 1))
        return VariantStats(key, n, total, total, step_counts=counts)
    if kind == "retention":  # a ratio of retained (0/1) over 1 per entity
        return VariantStats(key, n, total, total, None, float(n), float(n), total)
    squares = float(row["squares"][day])
    if kind == "mean":
        return VariantStats(key, n, total, squares)
    return VariantStats(
        key, n, total, squares, None,
        float(row["den_total"][day]), float(row["den_squares"][day]), float(row["product"][day]),
    )  # fmt: skip


def _empty_row(names: Sequence[str], days: int) -> dict[str, list[float]]:
    return {name: [0.0] * days for name in names}


def day_stats(metric: Metric, scope: Scope, names: Sequence[str], rows: Rows) -> list[DayStats]:
    """Rows (`variant, <one array per name>`) as each day's per-variant statistics, in variant order."""
    by_variant = {int(row[0]): dict(zip(names, row[1:], strict=True)) for row in rows}
    steps = len(metric.series) if isinstance(metric, ExperimentFunnelMetric) else 0
    keys = scope.spec.variants
    empty = _empty_row(names, scope.days)
    return [
        [
            _variant_day(metric.metric_type, key, by_variant.get(index, empty), day, steps)
            for index, key in enumerate(keys)
        ]
        for day in range(scope.days)
    ]


def metric_series_from_rows(
    metric: Metric, scope: Scope, names: Sequence[str], rows: Rows
) -> list[dict[str, Any]]:
    # The sample-ratio check needs each day's exposure counts: not computed here yet (srm left out).
    return results_from_stats(metric.metric_type, day_stats(metric, scope, names, rows), scope.spec, None)
