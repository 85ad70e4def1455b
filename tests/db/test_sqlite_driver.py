"""The SQLite driver (db/sqlite_driver.py): one trip to aiosqlite's thread per statement, same results."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import sqlite_driver
from db.engine import make_async_engine

ROWS = sqlite_driver.FIRST_BATCH * 2 + 7  # more than one batch, not a multiple of it


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(f"sqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
        await conn.execute(
            text("INSERT INTO item (name) VALUES (:name)"), [{"name": f"n{i}"} for i in range(ROWS)]
        )
    yield engine
    await engine.dispose()


async def _trips(conn: AsyncConnection) -> list[Any]:
    """Record every call the driver sends to the connection's thread."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, sqlite_driver.OneTripConnection)
    calls: list[Any] = []
    original = driver._execute

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(fn)
        return await original(fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    driver._execute = counted  # type: ignore[method-assign]
    return calls


async def test_a_statement_is_one_trip(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        trips = await _trips(conn)
        row = (await conn.execute(text("SELECT id, name FROM item WHERE name = 'n3'"))).one()
        assert tuple(row) == (4, "n3")
        assert len(trips) == 1
        result = await conn.execute(text("UPDATE item SET name = name || '!' WHERE id <= 3"))
        assert result.rowcount == 3
        assert len(trips) == 2


async def test_results_larger_than_a_batch_are_complete_and_in_order(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        trips = await _trips(conn)
        ids = (await conn.execute(text("SELECT id FROM item ORDER BY id"))).scalars().all()
        assert ids == list(range(1, ROWS + 1))
        assert len(trips) == 2  # the statement with its first batch, then the rest


async def test_a_stream_reads_batch_by_batch(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        trips = await _trips(conn)
        result = await conn.stream(text("SELECT id FROM item ORDER BY id"))
        assert len(trips) == 1  # only the first batch was read so far
        seen = [row[0] async for row in result]
        assert seen == list(range(1, ROWS + 1))
        assert len(trips) == 1 + ROWS // sqlite_driver.FIRST_BATCH  # one more trip per batch


async def test_an_abandoned_result_closes_its_cursor(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        result = await conn.stream(text("SELECT id FROM item ORDER BY id"))
        first = await result.fetchmany(3)
        assert [row[0] for row in first] == [1, 2, 3]
        await result.close()
        assert (await conn.execute(text("SELECT count(*) FROM item"))).scalar_one() == ROWS


async def test_errors_are_the_dbapis_and_the_connection_goes_on(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with pytest.raises(IntegrityError):
            await conn.execute(text("INSERT INTO item (name) VALUES ('n1')"))
        await conn.rollback()
        inserted = await conn.execute(text("INSERT INTO item (name) VALUES ('fresh') RETURNING id"))
        assert inserted.scalar_one() == ROWS + 1
        await conn.commit()
    async with engine.connect() as conn:
        assert (
            await conn.execute(text("SELECT name FROM item WHERE id = :id"), {"id": ROWS + 1})
        ).scalar_one() == ("fresh")


async def test_rolled_back_writes_are_gone(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("DELETE FROM item"))
        await conn.rollback()
        assert (await conn.execute(text("SELECT count(*) FROM item"))).scalar_one() == ROWS
