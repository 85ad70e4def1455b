"""Per-entity values of a mean-style source (mean metrics, both sides of a ratio), day by day, in SQL
(`domain.metric_engine.accumulate`).

A contribution is a qualifying event (in the experiment window, at or after the entity's first
exposure, inside the conversion window) at its own timestamp. Each entity's value as of boundary
`b` aggregates its contributions with `ts < b`; `-ForEach` over the boundaries builds all days'
cumulative values in one aggregation, as an array per entity (index i = day i).

`qualifying` and `contributions` take the join condition, so CUPED's covariate (`covariate.py`)
reads the same source's rows before the exposure (`before_exposure`) with the same rules.
"""

from __future__ import annotations

from db.clickhouse import sql
from db.clickhouse.exposures import Scope
from db.clickhouse.filters import source_sql
from domain.metric_engine import MetricEngineError, Needs
from domain.metric_engine.sources import SESSION_PROPERTY, math_of
from domain.metric_engine.spec import Source


def after_exposure(window: int) -> str:
    """At or after the entity's first exposure and, with a conversion window, before it closes."""
    return "e.ts >= x.first" + (f" AND e.ts - x.first < {sql.integer(window)}" if window else "")


def before_exposure(lookback: int) -> str:
    """CUPED's pre-exposure window `[first - lookback, first)` (`domain...covariate.pre_exposure_rows`)."""
    return f"e.ts < x.first AND e.ts >= x.first - {sql.integer(lookback)}"


def qualifying(
    scope: Scope,
    needs: Needs,
    where: str,
    columns: str,
    exposures: str,
    condition: str,
    since: int | None = None,
) -> str:
    """Rows of `where` (scanned from `since`, default the start) joined to their entity's exposure,
    kept when `condition` (`after_exposure` or `before_exposure`) holds."""
    rows = scope.scan(needs, where, [columns] if columns else [], since=since)
    return f"SELECT e.* FROM ({rows}) AS e INNER JOIN ({exposures}) AS x ON e.entity = x.entity WHERE {condition}"


def _local_day(scope: Scope) -> str:
    return f"toDate(fromUnixTimestamp64Micro(ts, 'UTC'), {sql.string(scope.timezone)})"


def contributions(
    scope: Scope, needs: Needs, source: Source, exposures: str, condition: str, since: int | None = None
) -> tuple[str, str]:
    """(`entity, ts, value` rows, the math that aggregates them) of the rows `qualifying` keeps.

    Distinct maths keep each (entity, session) or (entity, local day) pair's first row, a 1 each."""
    math = math_of(source)
    where = source_sql(source, scope.spec.actions)

    def rows(where: str, column: str) -> str:
        return qualifying(scope, needs, where, column, exposures, condition, since)

    if math in ("sum", "avg", "min", "max"):
        if not source.math_property:
            raise MetricEngineError(f"Math '{math}' needs a math_property")
        return rows(where, f"{sql.number_or_zero(source.math_property)} AS value"), math
    if math == "total":
        return rows(where, "1. AS value"), math
    if math == "unique_session":
        where += f" AND NOT {sql.is_null(SESSION_PROPERTY)} AND {sql.raw(SESSION_PROPERTY)} != '\"\"'"
        key = sql.raw(SESSION_PROPERTY)
    else:  # dau
        key = _local_day(scope)
    pairs = rows(where, f"{key} AS pair")
    return f"SELECT entity, min(ts) AS ts, 1. AS value FROM ({pairs}) GROUP BY entity, pair", "total"


def values_sql(scope: Scope, needs: Needs, source: Source, exposures: str, window: int, name: str) -> str:
    """`entity, <name>`: per entity, an array of its cumulative value as of each boundary."""
    rows, math = contributions(scope, needs, source, exposures, after_exposure(window))
    b = scope.boundaries
    total = f"sumForEach(arrayMap(b -> if(ts < b, value, 0.), {b}))"
    count = f"sumForEach(arrayMap(b -> if(ts < b, 1., 0.), {b}))"
    if math in ("total", "sum"):
        value = total
    elif math == "avg":
        value = f"arrayMap((s, c) -> if(c > 0, s / c, 0.), {total}, {count})"
    else:
        extreme = "min" if math == "min" else "max"
        start = "inf" if math == "min" else "-inf"
        best = f"{extreme}ForEach(arrayMap(b -> if(ts < b, value, {start}), {b}))"
        value = f"arrayMap((m, c) -> if(c > 0, m, 0.), {best}, {count})"
    return f"SELECT entity, {value} AS {name} FROM ({rows}) GROUP BY entity"
