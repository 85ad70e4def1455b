"""Engines for SQLite and PostgreSQL from one DATABASE_URL.

Users give a sync-style URL (`sqlite:///…`, `postgresql+psycopg://…`); the API and the worker use
the async driver for the same database, migrations the sync one.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, create_engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from db import sqlite_driver


def async_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def sync_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API and the worker read while the other writes; busy_timeout makes a writer
    # wait for the lock instead of failing at once when both write.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_async_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        # The dialect's own connect arguments, through a driver that makes one trip to aiosqlite's
        # thread per statement instead of four (db/sqlite_driver.py).
        parsed = make_url(async_url(url))
        args, kwargs = parsed.get_dialect()().create_connect_args(parsed)
        creator = sqlite_driver.connector(*args, **{**kwargs, "timeout": 10})
        engine = create_async_engine(parsed, async_creator=creator)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # pool_pre_ping: a restarted Postgres must not surface as a 500 on the next request.
    return create_async_engine(async_url(url), pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sync_engine(url: str) -> Engine:
    engine = create_engine(sync_url(url))
    if is_sqlite(url):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def write_queue(engine: AsyncEngine) -> AbstractAsyncContextManager[Any]:
    """Hold around a write transaction: on SQLite, one at a time per process, first come first served.

    SQLite admits one writer; one that finds the lock taken sleeps in growing steps (the busy
    timeout's backoff, up to 100 ms a step), so concurrent writers in one process stretched a 10 ms
    transaction into hundreds of milliseconds under load. Queued here they run back to back.
    PostgreSQL needs nothing: its row locks queue writers of the same row and no one else.
    """
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    lock = _SQLITE_WRITERS.get(engine.sync_engine)
    if lock is None:
        lock = _SQLITE_WRITERS[engine.sync_engine] = asyncio.Lock()
    return lock


EVENTS_BACKEND_KEY = "events_backend"


def make_sessionmaker(engine: AsyncEngine, events: object | None = None) -> async_sessionmaker[AsyncSession]:
    """`events`: the process's events backend when it is not this database (EVENTS_BACKEND=clickhouse);
    sessions carry it in `info`, where `db.metric_analysis` dispatches on it."""
    # expire_on_commit=False: rows stay readable after the transaction that wrote them.
    info = {EVENTS_BACKEND_KEY: events} if events is not None else None
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, info=info)
