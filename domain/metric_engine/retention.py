"""Retention metrics: of the entities that did the start event, how many came back (upstream
`_build_retention_query`).

- Start: the first (`first_seen`) or last (`last_seen`) start event at or after the entity's first
  exposure (and inside the conversion window, if any). Entities without one are not in the sample
  (upstream INNER JOINs exposures with start events).
- Retained: a completion event at or after the start and inside the retention window
  [start + window_start, start + window_end], both ends inclusive; for `day` and `hour` units both
  timestamps are first truncated to the local day / the hour, so [7, 7] days means "any time on the
  7th day after". Other units compare exact instants (a month is 30 days).
- Statistics: a ratio with numerator = retained (0/1) and denominator = 1 per entity.
- Maturity (`only_count_matured_users`): the retention window must have closed by the analysis time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from domain.metric_engine.accumulate import qualifying_rows
from domain.metric_engine.columns import NEVER, EventColumns, IntArray
from domain.metric_engine.days import DayGrid
from domain.metric_engine.exposures import (
    Exposures,
    first_per_entity,
    in_experiment_window,
    position_at_or_after,
)
from domain.metric_engine.funnel import next_match, sorted_keys
from domain.metric_engine.sources import source_mask
from domain.metric_engine.spec import UNIT_MICROS, ExperimentSpec, conversion_window
from domain.metrics.schema import ExperimentRetentionMetric

HOUR = UNIT_MICROS["hour"]


@dataclass(frozen=True)
class RetentionDay:
    start: IntArray  # per entity: start time as of the day, NEVER when none yet
    retained_at: IntArray  # per entity: when the retention completed (NEVER if not by the window's end)
    window_end: IntArray  # per entity: end of the retention window (exclusive), for maturity


class _Windows:
    def __init__(self, metric: ExperimentRetentionMetric, spec: ExperimentSpec, grid: DayGrid) -> None:
        self.unit = metric.retention_window_unit.value
        self.low, self.high = metric.retention_window_start, metric.retention_window_end
        self.grid = grid

    def bounds(self, start: IntArray) -> tuple[IntArray, IntArray]:
        """[low, high) instants in which a completion retains an entity that started at `start`."""
        if self.unit == "day":
            day = self.grid.index(start)
            return self.grid.midnight(day + self.low), self.grid.midnight(day + self.high + 1)
        if self.unit == "hour":
            hour = start - start % HOUR
            return hour + self.low * HOUR, hour + (self.high + 1) * HOUR
        step = UNIT_MICROS[self.unit]
        return start + self.low * step, start + self.high * step + 1


def _completion(
    events: EventColumns, keys: IntArray, entity: IntArray, start: IntArray, windows: _Windows
) -> RetentionDay:
    low, high = windows.bounds(start)
    low = np.maximum(low, start)  # upstream also requires completion >= start
    hit, position = next_match(keys, entity, position_at_or_after(events, low), events.size, inclusive=True)
    at = np.where(hit, events.timestamp[position], NEVER)
    at = np.where(at < high, at, NEVER)
    count = events.entity_count
    out = RetentionDay(
        start=np.full(count, NEVER, dtype=np.int64),
        retained_at=np.full(count, NEVER, dtype=np.int64),
        window_end=np.full(count, NEVER, dtype=np.int64),
    )
    out.start[entity], out.retained_at[entity], out.window_end[entity] = start, at, high
    return out


def retention_by_day(
    events: EventColumns,
    metric: ExperimentRetentionMetric,
    spec: ExperimentSpec,
    exposures: Exposures,
    as_of: Sequence[int],
) -> Iterator[RetentionDay]:
    """Per-entity start / retention instants as of each boundary (ascending)."""
    window = in_experiment_window(events, spec)
    starts = qualifying_rows(
        events,
        source_mask(events, metric.start_event, spec.actions) & window,
        exposures,
        conversion_window(metric),
    )
    completions = np.flatnonzero(source_mask(events, metric.completion_event, spec.actions) & window)
    keys = sorted_keys(events, completions.astype(np.int64))
    top = int(events.timestamp.max(initial=spec.start))
    grid = DayGrid.covering(spec.start, top, spec.timezone, extra_days=metric.retention_window_end + 2)
    windows = _Windows(metric, spec, grid)
    if metric.start_handling.value == "first_seen":
        who, first = first_per_entity(events.entity[starts])
        fixed = _completion(events, keys, who, events.timestamp[starts[first]], windows)
        for _ in as_of:
            yield fixed
        return
    times, entity = events.timestamp[starts], events.entity[starts]
    cuts = np.searchsorted(times, np.asarray(as_of, dtype=np.int64), side="left")
    latest = np.full(events.entity_count, -1, dtype=np.int64)
    done = 0
    for cut in cuts:
        # The last start before the boundary: a running maximum over the starts seen so far.
        np.maximum.at(latest, entity[done:cut], times[done:cut])
        done = int(cut)
        who = np.flatnonzero(latest >= 0).astype(np.int64)
        yield _completion(events, keys, who, latest[who], windows)
