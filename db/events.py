"""Appending captured events: multi-row INSERT … ON CONFLICT DO NOTHING, event definitions, group types.

Helpers take a connection inside the caller's transaction and never commit; `EventWriter` owns its
transactions and acknowledges a write only after its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import select

from db.tables import EventDefinition, GroupTypeMapping
from db.tables.groups import MAX_GROUP_TYPES
from db.types import utcnow

log = logging.getLogger("flagship.events")

_COLUMNS = "uuid, team_id, event, distinct_id, timestamp, properties, created_at"
# 7 parameters a row: 1,000 rows stay far below SQLite's and PostgreSQL's bind-parameter limits.
ROWS_PER_STATEMENT = 1000
# last_seen_at is advisory (like a key's last_used_at): refreshing it on every batch would make every
# ingest update the same hot rows. A name new to this process is always written at once.
DEFINITION_TOUCH_SECONDS = 60.0


class EventRow(NamedTuple):
    """One event to append (a tuple: tens of thousands are built per second)."""

    uuid: str
    team_id: int
    event: str
    distinct_id: str
    timestamp: datetime
    properties: dict[str, Any]


def _sqlite_datetime(value: datetime) -> str:
    """Exactly SQLAlchemy's SQLite DATETIME storage format (UTC, always microseconds): the ORM's range
    filters compare these as strings, so the raw path must write the same text."""
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    return utc.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def properties_json(properties: dict[str, Any]) -> str:
    text = orjson.dumps(properties, option=orjson.OPT_NON_STR_KEYS).decode()
    # PostgreSQL's jsonb refuses the NUL escape; both backends store the same replacement.
    return text.replace("\\u0000", "\\ufffd") if "\\u0000" in text else text


@lru_cache(maxsize=256)
def _insert_sql(dialect: str, rows: int) -> str:
    if dialect == "postgresql":
        row = "(%s, %s, %s, %s, %s, CAST(%s AS JSONB), %s)"
    else:
        row = "(?, ?, ?, ?, ?, ?, ?)"
    values = ", ".join([row] * rows)
    return f"INSERT INTO event ({_COLUMNS}) VALUES {values} ON CONFLICT (team_id, uuid) DO NOTHING"


def _flat_params(dialect: str, rows: Sequence[EventRow], created_at: datetime) -> tuple[Any, ...]:
    params: list[Any] = []
    extend = params.extend
    if dialect == "postgresql":
        for r in rows:
            extend(
                (
                    r.uuid,
                    r.team_id,
                    r.event,
                    r.distinct_id,
                    r.timestamp,
                    properties_json(r.properties),
                    created_at,
                )
            )
    else:
        created = _sqlite_datetime(created_at)
        for r in rows:
            extend(
                (r.uuid, r.team_id, r.event, r.distinct_id, _sqlite_datetime(r.timestamp),
                 properties_json(r.properties), created)
            )  # fmt: skip
    return tuple(params)


async def insert_events(conn: AsyncConnection, rows: Sequence[EventRow]) -> None:
    """Append rows; a uuid already stored for the project is skipped (SDK retries are idempotent).

    Raw SQL on purpose: per-row ORM bind processing costs more than the insert itself at 50k events/s."""
    dialect = conn.dialect.name
    now = utcnow()
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        await conn.exec_driver_sql(_insert_sql(dialect, len(chunk)), _flat_params(dialect, chunk, now))


def _dialect_insert(conn: AsyncConnection, table: Any) -> Any:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


async def upsert_event_definitions(conn: AsyncConnection, names: Iterable[tuple[int, str]]) -> None:
    """Create each (team_id, name) definition or move its last_seen_at forward."""
    now = utcnow()
    # Sorted: concurrent upserts then lock rows in one order and cannot deadlock on PostgreSQL.
    values = [
        {"team_id": t, "name": n, "created_at": now, "last_seen_at": now} for t, n in sorted(set(names))
    ]
    if not values:
        return
    stmt = _dialect_insert(conn, EventDefinition).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["team_id", "name"], set_={"last_seen_at": stmt.excluded.last_seen_at}
    )
    await conn.execute(stmt)


async def group_types(conn: AsyncConnection, team_id: int) -> dict[str, int]:
    result = await conn.execute(
        select(GroupTypeMapping.group_type, GroupTypeMapping.group_type_index).where(
            GroupTypeMapping.team_id == team_id
        )
    )
    return {name: index for name, index in result.all()}


async def ensure_group_types(conn: AsyncConnection, team_id: int, names: Sequence[str]) -> dict[str, int]:
    """Give unseen group types the next free indexes in order of first sight (at most five, as PostHog).

    Another process may claim an index first: the insert then does nothing, and the loop re-reads."""
    existing = await group_types(conn, team_id)
    for _attempt in range(MAX_GROUP_TYPES + 1):
        missing = [name for name in dict.fromkeys(names) if name not in existing]
        free = [i for i in range(MAX_GROUP_TYPES) if i not in existing.values()]
        if not missing or not free:
            break
        now = utcnow()
        values = [
            {"team_id": team_id, "group_type": name, "group_type_index": index, "created_at": now}
            for name, index in zip(missing, free, strict=False)
        ]
        await conn.execute(_dialect_insert(conn, GroupTypeMapping).values(values).on_conflict_do_nothing())
        existing = await group_types(conn, team_id)
    return existing


class WriterFull(Exception):
    """The write queue holds as many events as it may: the caller should answer 503 (retryable)."""


@dataclass(slots=True)
class _Job:
    rows: Sequence[EventRow]
    done: asyncio.Future[None]


@dataclass
class EventWriter:
    """Coalesces concurrent capture requests into shared transactions.

    While one transaction commits, newly arrived batches queue up and go into the next one together, so
    SQLite sees one writer per process instead of many contending for its lock, and PostgreSQL fewer
    commits. `write` returns only after the commit that holds its rows.

    Bounded: at most `max_pending_rows` events wait in memory. A write that would go past it is refused
    at once with `WriterFull` (nothing of it is queued), so a slow database turns into 503s the SDKs
    retry, never into unbounded memory or an event acknowledged and then lost. A single batch larger
    than the bound is still taken when nothing else waits (the body-size cap bounds it)."""

    engine: AsyncEngine
    max_rows: int = 20_000
    max_pending_rows: int = 100_000
    _pending_rows: int = 0
    _queue: asyncio.Queue[_Job] = field(default_factory=asyncio.Queue)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _touched: dict[tuple[int, str], float] = field(default_factory=dict)

    def start(self) -> EventWriter:
        # SQLite takes one writer at a time anyway; PostgreSQL gains from a few transactions in flight.
        workers = 3 if self.engine.dialect.name == "postgresql" else 1
        self._tasks = [asyncio.create_task(self._run(), name=f"event-writer-{i}") for i in range(workers)]
        return self

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._queue.empty():
            self._queue.get_nowait().done.cancel()

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    async def write(self, rows: Sequence[EventRow]) -> None:
        if self._pending_rows and self._pending_rows + len(rows) > self.max_pending_rows:
            raise WriterFull
        job = _Job(rows, asyncio.get_running_loop().create_future())
        self._pending_rows += len(rows)
        job.done.add_done_callback(lambda done: self._finished(done, len(rows)))
        self._queue.put_nowait(job)
        # Shielded: a client that disconnects must not cancel a commit other requests share.
        await asyncio.shield(job.done)

    def _finished(self, done: asyncio.Future[None], rows: int) -> None:
        self._pending_rows -= rows
        # Marks a failure as retrieved even when the request that waited for it was cancelled meanwhile.
        if not done.cancelled():
            done.exception()

    def _take(self, first: _Job) -> list[_Job]:
        jobs, count = [first], len(first.rows)
        while count < self.max_rows and not self._queue.empty():
            job = self._queue.get_nowait()
            jobs.append(job)
            count += len(job.rows)
        return jobs

    async def _run(self) -> None:
        while True:
            jobs = self._take(await self._queue.get())
            try:
                await self._commit_jobs(jobs)
            finally:
                for job in jobs:  # cancelled mid-commit (shutdown): nobody may wait forever
                    if not job.done.done():
                        job.done.cancel()

    async def _commit_jobs(self, jobs: list[_Job]) -> None:
        try:
            await self._commit([row for job in jobs for row in job.rows])
        except Exception as error:
            if len(jobs) == 1:
                log.warning("event write failed: %s", type(error).__name__)
                jobs[0].done.set_exception(error)
                return
            # One bad batch must not fail the others it was coalesced with: retry each on its own.
            for job in jobs:
                await self._commit_jobs([job])
            return
        for job in jobs:
            job.done.set_result(None)

    def _stale_definitions(self, rows: Sequence[EventRow]) -> list[tuple[int, str]]:
        now = time.monotonic()
        touched = self._touched
        names = {(row.team_id, row.event) for row in rows}
        return [
            name for name in names if name not in touched or now - touched[name] >= DEFINITION_TOUCH_SECONDS
        ]

    async def _commit(self, rows: list[EventRow]) -> None:
        stale = self._stale_definitions(rows)
        async with self.engine.begin() as conn:
            await insert_events(conn, rows)
            await upsert_event_definitions(conn, stale)
        now = time.monotonic()
        for name in stale:
            self._touched[name] = now
