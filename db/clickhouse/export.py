"""`python -m db export-events`: copy the SQL database's events into ClickHouse, in batches, with progress.

Batches go in row-id order, and each event's `seq` is its SQL row id, so ties of equal timestamps
keep the order the embedded engine gave them. A batch is read, inserted and reported before the
next one: an interrupted export resumes with `--after-id` (the last id reported), and re-copying
rows is harmless because the events table deduplicates by uuid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.clickhouse.client import ClickHouse
from db.clickhouse.schema import EVENT_COLUMNS
from db.clickhouse.writer import encode_rows
from db.events import EventRow
from db.tables import Event
from db.types import utcnow

EVENTS: Table = Event.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Progress:
    copied: int
    total: int
    last_id: int


def _where(team_id: int | None, after_id: int) -> ColumnElement[bool]:
    condition = EVENTS.c.id > after_id
    return condition & (EVENTS.c.team_id == team_id) if team_id is not None else condition


async def export_events(
    engine: AsyncEngine,
    ch: ClickHouse,
    report: Callable[[Progress], None],
    *,
    batch_size: int = 50_000,
    team_id: int | None = None,
    after_id: int = 0,
) -> Progress:
    """Copy events with id > `after_id` (of one project, or all); `report` after every batch."""
    async with engine.connect() as conn:
        counted = await conn.execute(
            select(func.count()).select_from(EVENTS).where(_where(team_id, after_id))
        )
    progress = Progress(0, int(counted.scalar_one()), after_id)
    columns = [EVENTS.c[name] for name in ("id", *EventRow._fields)]
    while True:
        query = (
            select(*columns).where(_where(team_id, progress.last_id)).order_by(EVENTS.c.id).limit(batch_size)
        )
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return progress
        events = [EventRow(*row[1:]) for row in rows]
        data = encode_rows(events, [int(row[0]) for row in rows], utcnow())
        await ch.run(ch.insert, EVENT_COLUMNS, data)
        progress = Progress(progress.copied + len(rows), progress.total, int(rows[-1][0]))
        report(progress)
