"""Bounds on the analysis `POST …/query/` runs for a caller: how many at once, and for how long.

An analysis loads every matching event and runs the engine over them, so a caller could otherwise
tie up the database and the process. Each API process runs at most `query_concurrency` analyses;
one more is refused at once with DRF's 429 and `Retry-After`. An analysis that runs past
`query_timeout_seconds` is answered 503; on PostgreSQL the statement timeout stops its query in the
server, on SQLite the connection is interrupted. The slot stays taken until the work has really
ended (an engine pass already running in its thread finishes first), so the bound holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import service_unavailable, throttled

T = TypeVar("T")


class QueryLimiter:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], concurrency: int, timeout: float
    ) -> None:
        self._sessionmaker = sessionmaker
        self._concurrency = self._free = max(1, concurrency)
        self._timeout = timeout

    @property
    def running(self) -> int:
        """Analyses holding a slot now (a timed-out one until its work has really ended)."""
        return self._concurrency - self._free

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `work` with a session of its own (it may outlive the request), within the bounds."""
        if self._free <= 0:
            raise throttled(1)
        self._free -= 1
        interrupt: list[Any] = []
        task = asyncio.ensure_future(self._work(work, interrupt))
        task.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self._timeout)
        except TimeoutError:
            for connection in interrupt:
                with contextlib.suppress(Exception):
                    await connection.interrupt()
            raise service_unavailable(
                f"The query took longer than {self._timeout:g} seconds and was stopped. "
                "Narrow it (a shorter date range or fewer events) or try again later."
            ) from None

    def _release(self, task: asyncio.Future[Any]) -> None:
        self._free += 1
        if not task.cancelled():
            task.exception()  # retrieved: a timed-out analysis that failed later is not an error

    async def _work(self, work: Callable[[AsyncSession], Awaitable[T]], interrupt: list[Any]) -> T:
        async with self._sessionmaker() as session:
            connection = await session.connection()
            if connection.dialect.name == "postgresql":
                milliseconds = int(self._timeout * 1000)
                await connection.execute(text(f"SET LOCAL statement_timeout = {milliseconds}"))
            else:
                raw = await connection.get_raw_connection()
                interrupt.append(raw.driver_connection)
            return await work(session)
