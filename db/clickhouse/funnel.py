"""Funnel metrics in SQL: when each entity first reached each step (`domain.metric_engine.funnel`).

Every qualifying event (at or after the first exposure, inside the conversion window) carries a
bit mask of the steps it matches. Per entity, its events in capture order (timestamp, then `seq`)
are folded into `reach`, the instant of each step (NEVER if not reached), exactly as the embedded
engine's three order types define it; as of boundary `b` the entity has reached
`#{k : reach[k] < b}` steps.
"""

from __future__ import annotations

from db.clickhouse import sql
from db.clickhouse.exposures import Scope
from db.clickhouse.filters import source_sql
from db.clickhouse.values import after_exposure, qualifying
from domain.metric_engine import MetricEngineError, Needs
from domain.metrics.schema import ExperimentFunnelMetric

MAX_STEPS = 62  # the step mask is a UInt64


def _mask(scope: Scope, metric: ExperimentFunnelMetric) -> str:
    steps = [source_sql(step, scope.spec.actions) for step in metric.series]
    return " + ".join(f"if({step}, toUInt64({1 << k}), toUInt64(0))" for k, step in enumerate(steps))


def _ordered(steps: int) -> str:
    """Greedy earliest matching: each event can advance the chain by one step, in capture order."""
    start = f"(toUInt64(0), {sql.integers([])})"
    step = f"if(acc.1 < {steps} AND bitTest(x.3, acc.1), (acc.1 + 1, arrayPushBack(acc.2, x.1)), acc)"
    reached = f"arrayFold((acc, x) -> {step}, events, {start}).2"
    return f"arrayResize({reached}, {steps}, toInt64({sql.NEVER}))"


def _unordered(steps: int) -> str:
    """Each step's first occurrence, independently."""
    first = f"arrayMin(arrayMap(x -> if(bitTest(x.3, k), x.1, toInt64({sql.NEVER})), events))"
    return f"arrayMap(k -> {first}, range({steps}))"


def _strict(steps: int) -> str:
    """Longest run of consecutive steps among the funnel events; a step reached keeps its first time."""
    done = f"if(acc.1 < {steps} AND bitTest(x.3, acc.1), acc.1 + 1, if(bitTest(x.3, 0), toUInt64(1), toUInt64(0)))"
    reach = f"arrayMap((r, i) -> if(i = {done} AND r = {sql.NEVER}, x.1, r), acc.2, arrayEnumerate(acc.2))"
    start = f"(toUInt64(0), arrayWithConstant({steps}, toInt64({sql.NEVER})))"
    return f"arrayFold((acc, x) -> ({done}, {reach}), events, {start}).2"


def reach_sql(scope: Scope, needs: Needs, metric: ExperimentFunnelMetric, exposures: str, window: int) -> str:
    """`entity, reached`: per entity, how many steps it had reached as of each boundary."""
    steps = len(metric.series)
    if steps > MAX_STEPS:
        raise MetricEngineError(f"Funnels of more than {MAX_STEPS} steps are not supported")
    rows = qualifying(
        scope, needs, "mask != 0", f"{_mask(scope, metric)} AS mask", exposures, after_exposure(window)
    )
    order = metric.funnel_order_type.value if metric.funnel_order_type else "ordered"
    reach = {"unordered": _unordered, "strict": _strict}.get(order, _ordered)(steps)
    events = "arraySort(groupArray((ts, seq, mask)))"
    # Steps reached as of each boundary, computed once per entity (the daily sums index into it).
    reached = f"arrayMap(b -> toUInt64(arrayCount(r -> r < b, reach)), {scope.boundaries})"
    return (
        f"SELECT entity, {reached} AS reached FROM (SELECT entity, {reach} AS reach FROM "
        f"(SELECT entity, {events} AS events FROM ({rows}) GROUP BY entity))"
    )
