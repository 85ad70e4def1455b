"""SQLite write transactions of one process queue in arrival order instead of sleeping in SQLite's
busy-timeout backoff; on PostgreSQL nothing is held (row locks do the work)."""

from __future__ import annotations

import asyncio

from sqlalchemy import update
from sqlmodel import col

from db.engine import make_async_engine, make_sessionmaker, write_queue
from db.tables import Project


async def test_writers_queue_in_order_on_sqlite_and_run_freely_on_postgres(database_url: str) -> None:
    engine = make_async_engine(database_url)
    sessionmaker = make_sessionmaker(engine)
    order: list[tuple[str, int]] = []

    async def writer(n: int) -> None:
        async with write_queue(engine), sessionmaker() as session:
            order.append(("begin", n))
            await session.exec(update(Project).where(col(Project.id) == -1).values(name="unchanged"))
            await asyncio.sleep(0.02)  # a transaction that stays open a while
            await session.commit()
            order.append(("end", n))

    try:
        await asyncio.gather(*(writer(n) for n in range(5)))
    finally:
        await engine.dispose()
    if engine.dialect.name == "sqlite":
        assert order == [(step, n) for n in range(5) for step in ("begin", "end")]
        assert write_queue(engine) is write_queue(engine)  # one queue per engine
    else:
        assert [step for step, _ in order[:5]] == ["begin"] * 5  # all open at once
