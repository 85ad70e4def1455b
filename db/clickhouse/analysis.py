"""A metric's per-variant, per-day sufficient statistics computed by ClickHouse, then `domain.stats`.

One query per analysis, whatever the number of days: exposures, per-entity values and the daily
aggregation all run in ClickHouse, and what comes back is one row per variant with an array per
statistic (one element per day). Python builds `VariantStats` from those sums and hands them to the
same `results_from_stats` the embedded engine ends with. No event crosses into Python.

The same rows carry each day's counted entities per variant (`exposed`, for the sample-ratio check)
and, with CUPED on, the covariate's sums (`covariate_*`, from one more part: `covariate.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
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
from db.clickhouse.covariate import covariate_sql
from db.clickhouse.exposures import Scope, exposures_sql
from db.clickhouse.funnel import reach_sql
from db.clickhouse.retention import retention_sql
from db.clickhouse.values import values_sql
from domain.metric_engine import Needs, metric_needs
from domain.metric_engine.covariate import cuped_lookback
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
        self.lookback = cuped_lookback(scope.spec, metric)  # 0: no covariate

    def _values(self, source: Any, name: str) -> Part:
        query = values_sql(self.scope, self.needs, source, self.exposures, self.window, name)
        return Part(query, {name: zeros(self.scope)})

    def _counted(self, expression: str) -> str:
        return per_day(self.scope, f"if({counted(self.window, self.matured)}, {expression}, 0.)")

    def _covariate(self) -> list[Part]:
        if not self.lookback:
            return []
        query = covariate_sql(self.scope, self.needs, self.metric, self.exposures, self.lookback)
        return [Part(query, {}, {"covariate": "0."})]

    def _covariate_sums(self, metric_value: str) -> Sums:
        """CUPED's Σx, Σx², Σy·x over the day's counted entities (y: the day's value, winsorized)."""
        if not self.lookback:
            return {}
        return {
            "covariate_total": self._counted("covariate"),
            "covariate_squares": self._counted("covariate * covariate"),
            "covariate_product": self._counted(f"{metric_value} * covariate"),
        }

    def _stats(self, parts: Sequence[Part], windows: Sequence[str], sums: Sums) -> StatsQuery:
        """The query, with each day's entities counted per variant for the sample-ratio check
        (`series._exposures_as_of`: exposed, not yet `$multiple`, whatever the metric's windows)."""
        exposed = per_day(self.scope, "if(first < b AND multiple >= b, 1., 0.)")
        return stats_sql(entity_table(self.exposures, parts), windows, {**sums, "exposed": exposed})

    def _moments(self, parts: Sequence[Part], columns: Mapping[str, Outliers], sums: Sums) -> StatsQuery:
        windows = [
            column
            for name, outliers in columns.items()
            for column in bound_columns(self.scope, name, outliers, pool(self.window, self.matured))
        ]
        return self._stats(parts, windows, {"samples": self._counted("1."), **sums})

    def mean(self) -> StatsQuery:
        assert isinstance(self.metric, ExperimentMeanMetric)
        m = self.metric
        outliers = Outliers(m.lower_bound_percentile, m.upper_bound_percentile, bool(m.ignore_zeros))
        v = value("vals", outliers)
        sums = {"total": self._counted(v), "squares": self._counted(f"{v} * {v}"), **self._covariate_sums(v)}
        parts = [self._values(m.source, "vals"), *self._covariate()]
        return self._moments(parts, {"vals": outliers}, sums)

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
        converted = f"toFloat64(reached[i] = {steps})"
        sums = {"total": self._counted(converted), **step_counts, **self._covariate_sums(converted)}
        unreached = f"arrayWithConstant({self.scope.days}, toUInt64(0))"
        return self._moments([Part(reach, {"reached": unreached}), *self._covariate()], {}, sums)

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
        return self._stats([part], [], sums)

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
        return _with_covariate(VariantStats(key, n, total, total, step_counts=counts), row, day)
    if kind == "retention":  # a ratio of retained (0/1) over 1 per entity
        return VariantStats(key, n, total, total, None, float(n), float(n), total)
    squares = float(row["squares"][day])
    if kind == "mean":
        return _with_covariate(VariantStats(key, n, total, squares), row, day)
    return VariantStats(
        key, n, total, squares, None,
        float(row["den_total"][day]), float(row["den_squares"][day]), float(row["product"][day]),
    )  # fmt: skip


def _with_covariate(stats: VariantStats, row: Mapping[str, Sequence[float]], day: int) -> VariantStats:
    """CUPED's sums when the query computed them (`covariate_*` names), as the embedded engine fills them."""
    if "covariate_total" not in row:
        return stats
    return replace(
        stats,
        covariate_sum=float(row["covariate_total"][day]),
        covariate_sum_squares=float(row["covariate_squares"][day]),
        covariate_sum_product=float(row["covariate_product"][day]),
    )


def _by_variant(scope: Scope, names: Sequence[str], rows: Rows) -> list[dict[str, Sequence[float]]]:
    """Each variant's arrays by name, in `spec.variants` order (zeros for a variant without rows)."""
    found = {int(row[0]): dict(zip(names, row[1:], strict=True)) for row in rows}
    empty: dict[str, Sequence[float]] = {name: [0.0] * scope.days for name in names}
    return [found.get(index, empty) for index in range(len(scope.spec.variants))]


def day_stats(metric: Metric, scope: Scope, names: Sequence[str], rows: Rows) -> list[DayStats]:
    """Rows (`variant, <one array per name>`) as each day's per-variant statistics, in variant order."""
    variants = list(zip(scope.spec.variants, _by_variant(scope, names, rows), strict=True))
    steps = len(metric.series) if isinstance(metric, ExperimentFunnelMetric) else 0
    return [
        [_variant_day(metric.metric_type, key, row, day, steps) for key, row in variants]
        for day in range(scope.days)
    ]


def exposure_counts(scope: Scope, names: Sequence[str], rows: Rows) -> list[dict[str, int]]:
    """Each day's counted entities per variant (the `exposed` arrays), for the sample-ratio check."""
    variants = list(zip(scope.spec.variants, _by_variant(scope, names, rows), strict=True))
    return [{key: int(row["exposed"][day]) for key, row in variants} for day in range(scope.days)]


def metric_series_from_rows(
    metric: Metric, scope: Scope, names: Sequence[str], rows: Rows
) -> list[dict[str, Any]]:
    days = day_stats(metric, scope, names, rows)
    return results_from_stats(metric.metric_type, days, scope.spec, exposure_counts(scope, names, rows))
