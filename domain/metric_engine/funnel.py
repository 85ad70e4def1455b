"""Funnel metrics: when each entity reached each step (stats.md §1.2).

The exposure is step 0; the metric's series are steps 1..N, all at or after the first exposure and,
with a conversion window, before it closes. Instead of a per-day replay we compute, per entity, the
instant each step was first reached (`reach[u, k]`, NEVER if not). As of T the entity has reached
`#{k : reach[u, k] < T}` steps — exact for every T because each order type's progress only grows:

- ordered (default): greedy earliest matching, each step on a later event than the previous one
  (equal timestamps are ordered by storage order); greedy is optimal when the window is anchored at
  the exposure, so truncating the data at T truncates the chain at T;
- unordered: each step's first occurrence, independently (steps done in any order);
- strict: the longest run of consecutive steps among the entity's funnel events, i.e. no other
  *funnel-step* event in between (events of other names are not loaded, so they do not break it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from domain.metric_engine.accumulate import qualifying_rows
from domain.metric_engine.columns import NEVER, BoolArray, EventColumns, IntArray
from domain.metric_engine.exposures import Exposures, in_experiment_window, position_at_or_after
from domain.metric_engine.sources import source_mask
from domain.metric_engine.spec import ExperimentSpec, conversion_window
from domain.metrics.schema import ExperimentFunnelMetric


def step_masks(events: EventColumns, metric: ExperimentFunnelMetric, spec: ExperimentSpec) -> list[BoolArray]:
    window = in_experiment_window(events, spec)
    return [source_mask(events, step, spec.actions) & window for step in metric.series]


def sorted_keys(events: EventColumns, rows: IntArray) -> IntArray:
    """entity·n + position for candidate rows, ascending: one searchsorted finds each entity's next match."""
    keys = events.entity[rows] * events.size + rows
    return np.sort(keys)


def next_match(
    keys: IntArray, entity: IntArray, after: IntArray, n: int, inclusive: bool
) -> tuple[BoolArray, IntArray]:
    """For each (entity, position): is there a candidate of that entity at a later position, and where."""
    if keys.size == 0:
        return np.zeros(entity.size, dtype=bool), np.zeros(entity.size, dtype=np.int64)
    query = entity * n + after
    found = np.searchsorted(keys, query, side="left" if inclusive else "right")
    hit = found < keys.size
    hit[hit] = keys[found[hit]] // n == entity[hit]
    return hit, keys[np.minimum(found, keys.size - 1)] % n


def _ordered(events: EventColumns, candidates: list[IntArray], exposures: Exposures) -> IntArray:
    reach = np.full((events.entity_count, len(candidates)), NEVER, dtype=np.int64)
    entity = np.flatnonzero(exposures.first != NEVER).astype(np.int64)
    position = position_at_or_after(events, exposures.first[entity])
    for k, rows in enumerate(candidates):
        hit, found = next_match(sorted_keys(events, rows), entity, position, events.size, inclusive=k == 0)
        entity, position = entity[hit], found[hit]
        reach[entity, k] = events.timestamp[position]
    return reach


def _unordered(events: EventColumns, candidates: list[IntArray]) -> IntArray:
    reach = np.full((events.entity_count, len(candidates)), NEVER, dtype=np.int64)
    for k, rows in enumerate(candidates):
        who, first = np.unique(events.entity[rows], return_index=True)
        reach[who, k] = events.timestamp[rows[first]]
    return reach


def _strict(events: EventColumns, candidates: list[IntArray]) -> IntArray:
    steps = len(candidates)
    reach = np.full((events.entity_count, steps), NEVER, dtype=np.int64)
    rows = np.unique(np.concatenate(candidates)) if candidates else np.empty(0, dtype=np.int64)
    matches = np.zeros((rows.size, steps), dtype=bool)
    for k, step_rows in enumerate(candidates):
        matches[:, k] = np.isin(rows, step_rows)
    order = np.argsort(events.entity[rows], kind="stable")
    run: dict[int, int] = {}
    for i in order.tolist():
        entity, done = int(events.entity[rows[i]]), run.get(int(events.entity[rows[i]]), 0)
        if done < steps and matches[i, done]:
            done += 1
        else:
            done = 1 if matches[i, 0] else 0
        run[entity] = done
        if done and reach[entity, done - 1] == NEVER:
            reach[entity, done - 1] = events.timestamp[rows[i]]
    return reach


def funnel_reach(
    events: EventColumns, metric: ExperimentFunnelMetric, spec: ExperimentSpec, exposures: Exposures
) -> IntArray:
    """`reach[u, k]`: when entity u first completed step k+1 (NEVER if not)."""
    window = conversion_window(metric)
    candidates = [
        qualifying_rows(events, mask, exposures, window) for mask in step_masks(events, metric, spec)
    ]
    order = metric.funnel_order_type.value if metric.funnel_order_type else "ordered"
    if order == "unordered":
        return _unordered(events, candidates)
    if order == "strict":
        return _strict(events, candidates)
    return _ordered(events, candidates, exposures)


def steps_reached(reach: IntArray, as_of: int) -> IntArray:
    reached: IntArray = (reach < as_of).sum(axis=1).astype(np.int64)
    return reached


def step_counts(reached: IntArray, steps: int) -> Sequence[int]:
    """`countIf(step_reached >= i)` for i = 1..N, among the entities given."""
    return [int(np.count_nonzero(reached >= i)) for i in range(1, steps + 1)]
