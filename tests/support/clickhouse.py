"""ClickHouse for the tests: ClickHouse's own engine in this process (chdb), one data directory per
test session (chdb hosts one per process) and one database per test. The backend's exact SQL runs
through clickhouse-connect's chdb client, the same `Client` calls a server receives over HTTP.

`Parity` runs an analysis on both engines and asserts they agree: counts (and every other integer)
exactly, floating-point values to a relative 1e-9.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from db.clickhouse.client import ClickHouse
from db.clickhouse.schema import EVENT_COLUMNS, migrate
from db.clickhouse.store import ClickHouseEvents
from db.clickhouse.writer import encode
from db.events import EventRow
from domain.metric_engine import (
    ExperimentSpec,
    MetricEngineError,
    events_from_rows,
    exposure_counts,
    metric_series,
    to_micros,
)
from tests.support.metric_events import START, Row, at

RELATIVE = 1e-9


def new_database(url: str, ttl_days: int | None = None) -> ClickHouse:
    ch = ClickHouse(url, f"test_{uuid.uuid4().hex[:12]}")
    migrate(ch, ttl_days)
    return ch


def insert_rows(ch: ClickHouse, team_id: int, rows: Sequence[Row]) -> None:
    """Rows in the given order (their capture order: `seq` follows it, as the SQL row id does)."""
    events = [
        EventRow(str(uuid.uuid4()), team_id, name, user, when, props) for name, user, when, props in rows
    ]
    if events:
        ch.insert(EVENT_COLUMNS, encode(events, 1, START))


def assert_same(embedded: Any, clickhouse: Any, path: str = "") -> None:
    """Integers, strings and structure exactly; floats to a relative 1e-9."""
    if isinstance(embedded, dict):
        assert isinstance(clickhouse, dict) and embedded.keys() == clickhouse.keys(), path
        for key in embedded:
            assert_same(embedded[key], clickhouse[key], f"{path}.{key}")
    elif isinstance(embedded, list):
        assert isinstance(clickhouse, list) and len(embedded) == len(clickhouse), path
        for i, (a, b) in enumerate(zip(embedded, clickhouse, strict=True)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(embedded, float) and not isinstance(clickhouse, bool):
        assert isinstance(clickhouse, float | int), (path, embedded, clickhouse)
        same = math.isclose(embedded, clickhouse, rel_tol=RELATIVE, abs_tol=1e-12)
        assert same or (math.isnan(embedded) and math.isnan(clickhouse)), (path, embedded, clickhouse)
    else:
        assert type(embedded) is type(clickhouse) and embedded == clickhouse, (path, embedded, clickhouse)


class Parity:
    """Both engines on the same rows; each call stores its rows under a project of its own."""

    def __init__(self, ch: ClickHouse) -> None:
        self.events = ClickHouseEvents(ch)
        self._teams = itertools.count(1000)

    def series(
        self, spec: ExperimentSpec, metric: dict[str, Any], rows: Sequence[Row], as_of: Sequence[int]
    ) -> list[dict[str, Any]]:
        team = next(self._teams)
        insert_rows(self.events.ch, team, rows)
        try:
            embedded = metric_series(spec, metric, events_from_rows(rows), as_of)
        except MetricEngineError as refused:
            with pytest.raises(MetricEngineError) as also:
                self.events.metric_series(team, spec, metric, as_of)
            assert str(also.value) == str(refused)
            raise
        assert_same(embedded, self.events.metric_series(team, spec, metric, as_of))
        return embedded

    def result(
        self, spec: ExperimentSpec, metric: dict[str, Any], rows: list[Row], hours: float = 24 * 30
    ) -> dict[str, Any]:
        """`tests.support.metric_events.result`, on both engines."""
        return self.series(spec, metric, rows, [to_micros(at(hours))])[0]

    def exposures(self, spec: ExperimentSpec, rows: Sequence[Row], as_of: int) -> dict[str, Any]:
        team = next(self._teams)
        insert_rows(self.events.ch, team, rows)
        embedded = exposure_counts(events_from_rows(rows), spec, as_of)
        assert_same(embedded, self.events.exposure_counts(team, spec, as_of))
        return embedded
