"""Per-entity values of a mean-style source (mean metrics, both sides of a ratio), day after day.

Every qualifying event (in the experiment window, at or after the entity's first exposure, inside
the conversion window) is a contribution at its own timestamp. Contributions are already in time
order, so the values as of successive day boundaries come from one sweep: add the slice of
contributions before each boundary to per-entity state, then read the state. Each value is the
entity's *cumulative* aggregate, which keeps `sum_squares` correct (stats.md §10, pitfall 1).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from domain.metric_engine.columns import EventColumns, FloatArray, IntArray
from domain.metric_engine.days import DayGrid
from domain.metric_engine.errors import MetricEngineError
from domain.metric_engine.exposures import Exposures, first_per_entity, in_experiment_window
from domain.metric_engine.sources import SESSION_PROPERTY, math_of, numeric_values, source_mask
from domain.metric_engine.spec import ActionSteps, ExperimentSpec, Source


def qualifying_rows(events: EventColumns, mask: np.ndarray, exposures: Exposures, window: int) -> IntArray:
    """Rows of `mask` at or after the entity's first exposure and, with a window, before it closes."""
    rows = np.flatnonzero(mask)
    starts = exposures.first[events.entity[rows]]
    times = events.timestamp[rows]
    keep = times >= starts  # never-exposed entities have first = NEVER
    if window:
        keep &= times - starts < window
    return rows[keep].astype(np.int64)


def _distinct_rows(events: EventColumns, rows: IntArray, keys: IntArray) -> IntArray:
    """The first row of each (entity, key) pair, keys < 0 dropped (a null session id counts no session)."""
    valid = keys >= 0
    rows, keys = rows[valid], keys[valid]
    pairs = events.entity[rows] * (int(keys.max(initial=0)) + 1) + keys
    _, first = first_per_entity(pairs)
    return np.sort(rows[first])


def _session_codes(events: EventColumns, rows: IntArray) -> IntArray:
    column = events.column(SESSION_PROPERTY)
    table = np.asarray(
        [i if v not in (None, "") else -1 for i, v in enumerate(column.values)], dtype=np.int64
    )
    return column.lookup(table, -1).astype(np.int64)[rows]


class Accumulator:
    """Running per-entity aggregate for one `math`."""

    def __init__(self, math: str, entities: int) -> None:
        self.math = math
        self.total = np.zeros(entities, dtype=np.float64)
        self.count = np.zeros(entities, dtype=np.float64)
        start = np.inf if math == "min" else -np.inf
        self.extreme = np.full(entities, start, dtype=np.float64)

    def add(self, entity: IntArray, value: FloatArray) -> None:
        size = self.total.size
        if self.math in ("min", "max"):
            (np.minimum if self.math == "min" else np.maximum).at(self.extreme, entity, value)
            self.count += np.bincount(entity, minlength=size)
        elif self.math == "avg":
            self.total += np.bincount(entity, weights=value, minlength=size)
            self.count += np.bincount(entity, minlength=size)
        else:
            self.total += np.bincount(entity, weights=value, minlength=size)

    def values(self) -> FloatArray:
        """Per-entity value now; entities without events are 0 (upstream's outer coalesce)."""
        if self.math in ("min", "max"):
            return np.where(self.count > 0, self.extreme, 0.0)
        if self.math == "avg":
            return np.divide(self.total, self.count, out=np.zeros_like(self.total), where=self.count > 0)
        return self.total.copy()


def row_values(
    events: EventColumns, source: Source, rows: IntArray, timezone: str
) -> tuple[IntArray, FloatArray, str]:
    """(rows, value per row, math) of already-qualified rows of a source, in time order.

    Distinct maths keep the first row of each (entity, session) or (entity, local day) and count
    it once, so from here on they are a plain sum of ones (`total`).
    """
    math = math_of(source)
    if math == "unique_session":
        rows = _distinct_rows(events, rows, _session_codes(events, rows))
    elif math == "dau":
        times = events.timestamp[rows]
        grid = DayGrid.covering(int(times.min(initial=0)), int(times.max(initial=0)), timezone)
        rows = _distinct_rows(events, rows, grid.index(times))
    if math in ("sum", "avg", "min", "max"):
        if not source.math_property:
            raise MetricEngineError(f"Math '{math}' needs a math_property")
        values = numeric_values(events, source.math_property)[rows]
    else:
        values = np.ones(rows.size, dtype=np.float64)
    return rows, values, "total" if math in ("unique_session", "dau") else math


def contributions(
    events: EventColumns,
    source: Source,
    spec: ExperimentSpec,
    exposures: Exposures,
    window: int,
    actions: Mapping[int, ActionSteps],
) -> tuple[IntArray, FloatArray, str]:
    """(rows, value per row, math) of a source after first exposure, in time order."""
    mask = source_mask(events, source, actions) & in_experiment_window(events, spec)
    return row_values(events, source, qualifying_rows(events, mask, exposures, window), spec.timezone)


def values_by_day(
    events: EventColumns,
    source: Source,
    spec: ExperimentSpec,
    exposures: Exposures,
    window: int,
    as_of: Sequence[int],
) -> Iterator[FloatArray]:
    """Per-entity cumulative values as of each boundary (ascending), in one sweep."""
    rows, values, math = contributions(events, source, spec, exposures, window, spec.actions)
    times = events.timestamp[rows]
    entity = events.entity[rows]
    cuts = np.searchsorted(times, np.asarray(as_of, dtype=np.int64), side="left")
    state = Accumulator(math, events.entity_count)
    done = 0
    for cut in cuts:
        if cut > done:
            state.add(entity[done:cut], values[done:cut])
            done = int(cut)
        yield state.values()
