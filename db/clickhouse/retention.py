"""Retention metrics in SQL (`domain.metric_engine.retention`).

Per entity with a qualifying start event: its start times and its completion times, each sorted.
For every boundary `b` the start is the first start (`first_seen`) or the last one before `b`
(`last_seen`); the retention window's `[low, high)` follows from it (local days from the grid of
midnights the domain computes, truncated hours, or exact units), and the entity is retained at its
first completion at or after `max(low, start)` when that is before `high`. Arrays of one value per
boundary come out: `start_at`, `retained_at`, `window_end`.
"""

from __future__ import annotations

from db.clickhouse import sql
from db.clickhouse.exposures import Scope
from db.clickhouse.filters import source_sql
from db.clickhouse.values import after_exposure, qualifying
from domain.metric_engine import Needs
from domain.metric_engine.days import DayGrid
from domain.metric_engine.retention import HOUR
from domain.metric_engine.spec import UNIT_MICROS
from domain.metrics.schema import ExperimentRetentionMetric

_NEVER = f"toInt64({sql.NEVER})"


def _start(scope: Scope, metric: ExperimentRetentionMetric) -> str:
    """The start as of boundary `b` (NEVER when none)."""
    if metric.start_handling.value == "first_seen":
        return f"if(empty(starts), {_NEVER}, starts[1])"
    latest = "arrayMax(arrayPushFront(arrayFilter(s -> s < b, starts), toInt64(-1)))"
    return f"if({latest} < 0, {_NEVER}, {latest})"


def _bounds(scope: Scope, metric: ExperimentRetentionMetric) -> tuple[str, str]:
    """`low`, `high` of the retention window of start `s` (the embedded engine's `_Windows.bounds`)."""
    unit = metric.retention_window_unit.value
    low, high = metric.retention_window_start, metric.retention_window_end
    if unit == "day":
        grid = DayGrid.covering(scope.spec.start, scope.until, scope.timezone, extra_days=high + 2)
        midnights = sql.integers(grid.midnights.tolist())
        local = f"toDate(fromUnixTimestamp64Micro(least(s, {sql.integer(scope.until)}), 'UTC'), {sql.string(scope.timezone)})"
        day = f"dateDiff('day', toDate({sql.string(grid.first.isoformat())}), {local})"
        last = grid.midnights.size - 1

        def at(offset: int) -> str:
            return f"{midnights}[least(greatest({day} + {offset}, 0), {last}) + 1]"

        return at(low), at(high + 1)
    if unit == "hour":
        hour = f"(s - s % {HOUR})"
        return f"{hour} + {low * HOUR}", f"{hour} + {(high + 1) * HOUR}"
    step = UNIT_MICROS[unit]
    return f"s + {low * step}", f"s + {high * step + 1}"


def retention_sql(
    scope: Scope, needs: Needs, metric: ExperimentRetentionMetric, exposures: str, window: int
) -> str:
    """`entity, start_at, retained_at, window_end`: one array element per boundary."""
    actions = scope.spec.actions
    starts = qualifying(
        scope, needs, source_sql(metric.start_event, actions), "", exposures, after_exposure(window)
    )
    completions = scope.scan(needs, source_sql(metric.completion_event, actions))
    low, high = _bounds(scope, metric)
    retained = f"arrayMin(arrayPushBack(arrayFilter(c -> c >= greatest({low}, s), comps), {_NEVER}))"
    start_at = f"arrayMap(b -> {_start(scope, metric)}, {scope.boundaries})"
    return (
        f"SELECT entity, start_at, arrayMap(s -> if({retained} < {high}, {retained}, {_NEVER}), start_at) "
        f"AS retained_at, arrayMap(s -> {high}, start_at) AS window_end FROM (SELECT s.entity AS entity, "
        f"c.comps AS comps, {start_at} AS start_at FROM "
        f"(SELECT entity, arraySort(groupArray(ts)) AS starts FROM ({starts}) GROUP BY entity) AS s "
        f"LEFT JOIN (SELECT entity, arraySort(groupArray(ts)) AS comps FROM ({completions}) GROUP BY entity) "
        "AS c ON s.entity = c.entity)"
    )
