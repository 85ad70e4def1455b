"""aiosqlite with one trip to its thread per statement.

aiosqlite runs every DB-API call (cursor(), execute(), fetchall(), close()) as its own trip to the
connection's thread and back, and SQLAlchemy makes all four for each statement. A trip costs about
0.1 ms of CPU in thread and event-loop wake-ups, far more than the statement itself (microseconds
on a local file), so a transition's dozen statements spent most of their database time crossing
threads. Here the cursor is made, executed and its first rows fetched in one trip, and closed in
the same trip when that was all; SQLAlchemy's fetchall() then reads them from memory. A result
larger than the first batch (a `yield_per` stream) is fetched batch by batch as before, so memory
stays bounded.

The connection is aiosqlite's own (its thread, queue, commit, rollback and close); only its cursor
is replaced. `make_async_engine` plugs it in through SQLAlchemy's `async_creator`.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")

# Rows fetched with the statement: every ORM query here returns fewer; streams read more per trip.
FIRST_BATCH = 512

Description = tuple[tuple[Any, ...], ...] | None


class OneTripConnection(aiosqlite.Connection):
    def cursor(self) -> OneTripCursor:  # type: ignore[override]  # aiosqlite's is an awaitable context
        return OneTripCursor(self)

    async def commit(self) -> None:
        if self._in_transaction():
            await super().commit()

    async def rollback(self) -> None:
        # The pool rolls back every connection it gets back; after a commit or plain reads (no
        # transaction: sqlite3 begins one at the first write) that trip would do nothing.
        if self._in_transaction():
            await super().rollback()

    def _in_transaction(self) -> bool:
        """Read from the event loop's thread: the connection is not in use between two calls."""
        try:
            return self._conn.in_transaction
        except (sqlite3.ProgrammingError, ValueError):
            return True  # a connection bound to its thread (:memory:), or closed: ask it there


def connector(database: str, **kwargs: Any) -> Callable[[], OneTripConnection]:
    """SQLAlchemy's `async_creator`: an awaitable connection to `database`, opened in its thread."""

    async def connect() -> OneTripConnection:
        connection = OneTripConnection(lambda: sqlite3.connect(database, **kwargs), iter_chunk_size=64)
        connection._thread.daemon = True  # as SQLAlchemy's own aiosqlite dialect does
        await connection
        return connection

    return connect  # type: ignore[return-value]


async def _in_thread(connection: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """One trip: `fn(*args)` in the connection's thread (aiosqlite's own queue)."""
    return await connection._execute(fn, *args)  # type: ignore[no-untyped-call, no-any-return]


def _execute(
    conn: sqlite3.Connection, sql: str, parameters: Sequence[Any] | None, many: Iterable[Any] | None
) -> tuple[sqlite3.Cursor | None, Description, int, int | None, list[Any]]:
    """In the connection's thread: run the statement and fetch what it returned, up to a batch."""
    cursor = conn.cursor()
    try:
        if many is not None:
            cursor.executemany(sql, many)
        elif parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchmany(FIRST_BATCH) if description is not None else []
        rowcount, lastrowid = cursor.rowcount, cursor.lastrowid
    except BaseException:
        cursor.close()
        raise
    exhausted = description is None or len(rows) < FIRST_BATCH
    if exhausted:
        cursor.close()
    return (None if exhausted else cursor), description, rowcount, lastrowid, rows


def _fetch(cursor: sqlite3.Cursor, size: int | None) -> tuple[list[Any], bool]:
    """In the connection's thread: more rows (all when `size` is None); closes a drained cursor."""
    rows = cursor.fetchall() if size is None else cursor.fetchmany(size)
    drained = size is None or len(rows) < size
    if drained:
        cursor.close()
    return rows, drained


class OneTripCursor:
    """The async DB-API cursor SQLAlchemy's aiosqlite adapter drives."""

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self._open: sqlite3.Cursor | None = None  # a result with rows left in the database
        self._rows: deque[Any] = deque()
        self.description: Description = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> OneTripCursor:
        return await self._run(sql, parameters, None)

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> OneTripCursor:
        return await self._run(sql, None, list(seq_of_parameters))

    async def _run(self, sql: str, parameters: Sequence[Any] | None, many: list[Any] | None) -> OneTripCursor:
        await self.close()
        conn = self._connection._conn
        self._open, self.description, self.rowcount, self.lastrowid, rows = await _in_thread(
            self._connection, _execute, conn, sql, parameters, many
        )
        self._rows = deque(rows)
        return self

    async def _more(self, size: int | None) -> None:
        if self._open is None:
            return
        rows, drained = await _in_thread(self._connection, _fetch, self._open, size)
        self._rows.extend(rows)
        if drained:
            self._open = None

    async def fetchall(self) -> list[Any]:
        await self._more(None)
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        wanted = self.arraysize if size is None else size
        if len(self._rows) < wanted:
            await self._more(max(wanted - len(self._rows), FIRST_BATCH))
        return [self._rows.popleft() for _ in range(min(wanted, len(self._rows)))]

    async def fetchone(self) -> Any:
        if not self._rows:
            await self._more(FIRST_BATCH)
        return self._rows.popleft() if self._rows else None

    async def close(self) -> None:
        self._rows.clear()
        if self._open is not None:
            cursor, self._open = self._open, None
            await _in_thread(self._connection, cursor.close)
