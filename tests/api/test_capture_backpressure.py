"""Capture's write queue is bounded (issue 13 item 2): when as many events wait for their commit as
the queue may hold, capture answers 503 with Retry-After (the SDKs retry 5xx) and accepts nothing it
will not store; retried events are deduplicated by (project, uuid)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest_asyncio
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlmodel import col, select
from temporalio.client import Client

from api.app import create_app
from db.bootstrap import Credentials
from db.engine import make_async_engine, make_sessionmaker
from db.events import EventWriter
from db.tables import Event
from settings import Settings

QUEUE_LIMIT = 3


@pytest_asyncio.fixture(loop_scope="session")
async def app(
    settings: Settings, credentials: Credentials, temporal_client: Client
) -> AsyncIterator[FastAPI]:
    app = create_app(
        settings.with_overrides(capture_queue_max_events=QUEUE_LIMIT), temporal_client=temporal_client
    )
    async with LifespanManager(app):
        yield app


@contextmanager
def events_table_locked(database_url: str) -> Iterator[None]:
    """Another connection holds the write lock on the events, as a slow or busy database would."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("COMMIT")
            conn.close()
        return
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as pg:
        pg.execute("LOCK TABLE event IN EXCLUSIVE MODE")
        yield
        pg.commit()


def batch(token: str, *uuids: str) -> dict[str, Any]:
    return {"api_key": token, "batch": [{"event": "e", "distinct_id": "u", "uuid": u} for u in uuids]}


async def stored_uuids(settings: Settings) -> list[str]:
    engine = make_async_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return sorted((await session.exec(select(Event.uuid).order_by(col(Event.id)))).all())
    finally:
        await engine.dispose()


async def wait_pending(writer: EventWriter, rows: int) -> None:
    for _ in range(500):
        if writer.pending_rows == rows:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{writer.pending_rows} rows pending, expected {rows}")


async def test_a_full_queue_answers_503_and_stores_only_what_it_accepted(
    app: FastAPI, settings: Settings, credentials: Credentials
) -> None:
    token = credentials.project_api_token
    first = [str(uuid.uuid4()) for _ in range(2)]
    second = [str(uuid.uuid4()) for _ in range(2)]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        with events_table_locked(settings.database_url):
            accepted = asyncio.create_task(http.post("/batch/", json=batch(token, *first)))
            await wait_pending(app.state.event_writer, 2)
            # Answered at once, not queued behind the lock (an unbounded queue would wait here).
            refused = await asyncio.wait_for(http.post("/batch/", json=batch(token, *second)), 5)
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["type"] == "server_error"
            assert not accepted.done()  # still waiting for its commit: no answer before the data is safe
        assert (await accepted).status_code == 200
        assert await stored_uuids(settings) == sorted(first)
        # The SDK retries the refused batch, and (after a lost answer) the accepted one again.
        assert (await http.post("/batch/", json=batch(token, *second))).status_code == 200
        assert (await http.post("/batch/", json=batch(token, *first))).status_code == 200
    assert await stored_uuids(settings) == sorted(first + second)
    assert app.state.event_writer.pending_rows == 0
