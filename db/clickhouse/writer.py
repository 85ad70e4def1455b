"""Capture into ClickHouse: the `EventWriter` contract (`write(rows)` returns once the rows are
stored) with a bound on what may wait.

Concurrent capture requests queue up while one INSERT runs and go into the next one together, so
ClickHouse sees few large inserts instead of many small parts. At most `max_pending_rows` rows may be
queued or in flight: past that `write` raises `EventBacklogFull` at once (the capture route answers
503 and the SDK retries later) instead of holding memory without limit while ClickHouse is slow.

Event definitions stay in the SQL database, where the API reads them; they are written after the
insert, each name at most once a minute per process (a retry of the whole write is harmless: the
events table deduplicates by uuid).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from db.clickhouse.client import ClickHouse
from db.clickhouse.schema import EVENT_COLUMNS
from db.events import EventRow, WriterFull, properties_json, upsert_event_definitions
from db.types import utcnow

log = logging.getLogger("flagship.events.clickhouse")
DEFINITION_REFRESH_SECONDS = 60.0
SEQ_PER_MICROSECOND = 4096  # capture order: µs of the write * 4096 + position (fits in UInt64 until 2112)


class EventBacklogFull(WriterFull):
    """Too many captured events are waiting for ClickHouse; the caller should retry later."""


def clickhouse_time(moment: datetime) -> str:
    """`DateTime64(6, 'UTC')` text."""
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return utc.isoformat(" ", "microseconds")[:26]


def encode(rows: Sequence[EventRow], first_seq: int, created_at: datetime) -> bytes:
    """JSON lines for `INSERT … FORMAT JSONEachRow`, `seq` counting up from `first_seq`."""
    return encode_rows(rows, range(first_seq, first_seq + len(rows)), created_at)


def encode_rows(rows: Sequence[EventRow], seqs: Sequence[int], created_at: datetime) -> bytes:
    """JSON lines in EVENT_COLUMNS order, each row with its capture order `seq`."""
    created = clickhouse_time(created_at)
    lines = [
        orjson.dumps(
            {
                "uuid": row.uuid,
                "team_id": row.team_id,
                "event": row.event,
                "distinct_id": row.distinct_id,
                "timestamp": clickhouse_time(row.timestamp),
                "properties": properties_json(row.properties),
                "created_at": created,
                "seq": seq,
            }
        )
        for row, seq in zip(rows, seqs, strict=True)
    ]
    return b"\n".join(lines) + b"\n"


@dataclass(slots=True)
class _Write:
    rows: Sequence[EventRow]
    done: asyncio.Future[None]


@dataclass
class ClickHouseEventWriter:
    ch: ClickHouse
    engine: AsyncEngine  # the SQL database, for event definitions
    max_pending_rows: int = 200_000
    max_batch_rows: int = 50_000
    _queue: asyncio.Queue[_Write] = field(default_factory=asyncio.Queue)
    _task: asyncio.Task[None] | None = None
    _pending: int = 0
    _last_seq: int = 0
    _refreshed: dict[tuple[int, str], float] = field(default_factory=dict)

    def start(self) -> ClickHouseEventWriter:
        self._task = asyncio.create_task(self._run(), name="clickhouse-event-writer")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            self._queue.get_nowait().done.cancel()

    async def write(self, rows: Sequence[EventRow]) -> None:
        if self._pending + len(rows) > self.max_pending_rows:
            raise EventBacklogFull(f"{self._pending} events are waiting for ClickHouse; try again shortly")
        write = _Write(rows, asyncio.get_running_loop().create_future())
        write.done.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._pending += len(rows)
        self._queue.put_nowait(write)
        # Shielded: a client that disconnects must not cancel an insert other requests share.
        await asyncio.shield(write.done)

    def _batch(self, first: _Write) -> list[_Write]:
        batch, count = [first], len(first.rows)
        while count < self.max_batch_rows and not self._queue.empty():
            batch.append(self._queue.get_nowait())
            count += len(batch[-1].rows)
        return batch

    async def _run(self) -> None:
        while True:
            batch = self._batch(await self._queue.get())
            try:
                await self._store(batch)
            finally:
                self._pending -= sum(len(write.rows) for write in batch)
                for write in batch:  # cancelled mid-insert (shutdown): nobody may wait forever
                    if not write.done.done():
                        write.done.cancel()

    async def _store(self, batch: list[_Write]) -> None:
        try:
            await self._insert([row for write in batch for row in write.rows])
        except Exception as error:
            if len(batch) == 1:
                log.warning("clickhouse event write failed: %s", type(error).__name__)
                batch[0].done.set_exception(error)
                return
            for write in batch:  # one bad request must not fail those it was batched with
                await self._store([write])
            return
        for write in batch:
            write.done.set_result(None)

    def _next_seq(self, count: int) -> int:
        first = max(self._last_seq + 1, time.time_ns() // 1000 * SEQ_PER_MICROSECOND)
        self._last_seq = first + count - 1
        return first

    async def _insert(self, rows: list[EventRow]) -> None:
        data = await asyncio.to_thread(encode, rows, self._next_seq(len(rows)), utcnow())
        await self.ch.run(self.ch.insert, EVENT_COLUMNS, data)
        now = time.monotonic()
        due = sorted(
            {(r.team_id, r.event) for r in rows}
            - {k for k, at in self._refreshed.items() if now - at < DEFINITION_REFRESH_SECONDS}
        )
        if due:
            async with self.engine.begin() as conn:
                await upsert_event_definitions(conn, due)
            self._refreshed.update(dict.fromkeys(due, now))
