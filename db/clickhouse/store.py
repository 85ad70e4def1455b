"""`EVENTS_BACKEND=clickhouse` as one object: where capture writes, where results are computed.

Built once per process from the settings (`events_backend`), handed to the capture route as its
writer and to `db.metric_analysis` through the session (`make_sessionmaker(engine, events=…)`), so
the callers of `metric_results` / `exposure_results` are the same for both backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine

from db.clickhouse.analysis import metric_query, metric_series_from_rows
from db.clickhouse.client import ClickHouse
from db.clickhouse.exposures import Scope, exposure_counts_sql
from db.clickhouse.writer import ClickHouseEventWriter
from domain.metric_engine import ExperimentSpec, MetricEngineError, exposure_query_needs
from domain.metric_engine.exposure_series import exposure_days, exposure_response
from settings import Settings

_REGEX_ERRORS = ("CANNOT_COMPILE_REGEXP", "re2")


class ClickHouseEvents:
    """Captured events and their analysis in ClickHouse."""

    def __init__(self, ch: ClickHouse, ttl_days: int | None = None) -> None:
        self.ch = ch
        self.ttl_days = ttl_days

    @classmethod
    def from_settings(cls, settings: Settings) -> ClickHouseEvents | None:
        """The configured backend, or None for `EVENTS_BACKEND=sql` (today's tables and engine)."""
        if settings.events_backend != "clickhouse" or not settings.clickhouse_url:
            return None
        return cls(
            ClickHouse(settings.clickhouse_url, settings.clickhouse_database), settings.clickhouse_ttl_days
        )

    def writer(self, engine: AsyncEngine, *, max_pending_rows: int) -> ClickHouseEventWriter:
        return ClickHouseEventWriter(self.ch, engine, max_pending_rows=max_pending_rows)

    def _rows(self, query: str) -> list[list[Any]]:
        try:
            return self.ch.rows(query)
        except Exception as exc:
            # A user's regex RE2 cannot compile is the user's error, as in the embedded engine.
            if any(marker in str(exc) for marker in _REGEX_ERRORS):
                raise MetricEngineError("Invalid regular expression in a filter of this metric") from None
            raise

    def metric_series(
        self, team_id: int, spec: ExperimentSpec, metric: Mapping[str, Any], as_of: Sequence[int]
    ) -> list[dict[str, Any]]:
        """Results as of each boundary (ascending µs), from one ClickHouse query (blocking)."""
        if list(as_of) != sorted(as_of):
            raise ValueError("as_of must be ascending")
        if not as_of:
            return []
        scope = Scope(self.ch.database, team_id, spec, tuple(as_of))
        parsed, query = metric_query(scope, metric)
        return metric_series_from_rows(parsed, scope, query.names, self._rows(query.text))

    def exposure_counts(self, team_id: int, spec: ExperimentSpec, as_of: int) -> dict[str, Any]:
        """The ExperimentExposureQuery body as of `as_of` (blocking)."""
        scope = Scope(self.ch.database, team_id, spec, (as_of,))
        days = exposure_days(spec, as_of)
        rows = self._rows(exposure_counts_sql(scope, exposure_query_needs(spec), days[0].isoformat()))
        counts = np.zeros((len(spec.variants) + 1, len(days)), dtype=np.int64)
        for label, day, entities in rows:
            counts[int(label), min(max(int(day), 0), len(days) - 1)] += int(entities)
        return exposure_response(spec, counts, as_of)

    async def metric_results(
        self, team_id: int, spec: ExperimentSpec, metric: Mapping[str, Any], as_of: Sequence[int]
    ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.metric_series, team_id, spec, metric, as_of)

    async def exposure_results(self, team_id: int, spec: ExperimentSpec, as_of: int) -> dict[str, Any]:
        return await asyncio.to_thread(self.exposure_counts, team_id, spec, as_of)

    async def health(self) -> str:
        try:
            ok = await self.ch.run(self.ch.ping)
        except Exception as exc:
            return f"unavailable ({type(exc).__name__})"
        return "ok" if ok else "unavailable (no answer)"

    def close(self) -> None:
        self.ch.close()
