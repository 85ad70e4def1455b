"""`POST …/query/` is bounded (issue 13 item 11): over the per-process concurrency limit it answers
DRF's 429 with Retry-After; past the time limit it answers 503 and the database stops the work;
an exposure query's dates never widen the experiment's window."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from api.app import create_app
from api.query_limits import QueryLimiter
from db.bootstrap import Credentials
from db.engine import make_async_engine, make_sessionmaker
from settings import Settings
from tests.api.test_query import experiment, flag_called, query
from tests.support.analysis import store_events
from tests.support.api_client import ApiClient


@pytest_asyncio.fixture(loop_scope="session")
async def app(
    settings: Settings, credentials: Credentials, temporal_client: Client
) -> AsyncIterator[FastAPI]:
    app = create_app(settings.with_overrides(query_concurrency=1), temporal_client=temporal_client)
    async with LifespanManager(app):
        yield app


async def test_one_query_too_many_is_throttled(app: FastAPI, credentials: Credentials) -> None:
    release = asyncio.Event()

    async def occupy(session: AsyncSession) -> None:
        await release.wait()

    limiter: QueryLimiter = app.state.query_limiter
    busy = asyncio.create_task(limiter.run(occupy))
    await asyncio.sleep(0)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {credentials.personal_api_key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as http:
        body = {"query": {"kind": "ExperimentQuery", "experiment_id": 1, "metric": {}}}
        r = await http.post(f"/api/projects/{credentials.project_id}/query/", json=body)
        assert r.status_code == 429, r.text
        assert r.headers["retry-after"] == "1"
        assert r.json() == {
            "type": "throttled_error",
            "code": "throttled",
            "detail": "Request was throttled. Expected available in 1 second.",
            "attr": None,
        }
        release.set()
        await busy
        r = await http.post(f"/api/projects/{credentials.project_id}/query/", json=body)
        assert r.status_code == 404, r.text  # the slot is free again: the query runs (no such experiment)


SLOW_SQL = {
    # Counts far past any time limit; SQLite's interrupt or PostgreSQL's statement timeout stops it.
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
    "postgresql": "SELECT pg_sleep(30)",
}


async def test_a_query_past_its_time_limit_is_stopped(settings: Settings) -> None:
    engine = make_async_engine(settings.database_url)
    stopped: list[BaseException] = []
    try:
        limiter = QueryLimiter(make_sessionmaker(engine), concurrency=1, timeout=0.5)

        async def slow(session: AsyncSession) -> Any:
            try:
                connection = await session.connection()
                return (await connection.execute(text(SLOW_SQL[engine.dialect.name]))).all()
            except BaseException as error:
                stopped.append(error)
                raise

        started = time.monotonic()
        with pytest.raises(Exception) as refused:
            await limiter.run(slow)
        assert getattr(refused.value, "status", None) == 503
        assert "took longer than 0.5 seconds" in getattr(refused.value, "detail", "")
        assert time.monotonic() - started < 3
        # The database itself gave up on the statement, so the slot comes back soon.
        for _ in range(100):
            if limiter.running == 0:
                break
            await asyncio.sleep(0.05)
        assert stopped, "the slow statement was never stopped"
        assert limiter.running == 0
        assert await limiter.run(lambda session: asyncio.sleep(0, result="ok")) == "ok"
    finally:
        await engine.dispose()


@pytest.mark.usefixtures("worker")
async def test_exposure_query_dates_are_clamped_to_the_experiment(api: ApiClient, settings: Settings) -> None:
    exp, start = await experiment(api, settings)
    # An exposure a day before the launch; a window that starts earlier must not count it.
    await store_events(settings, api.project_id, [flag_called("zoe", "test", start - timedelta(days=1))])
    early = (start - timedelta(days=3)).isoformat()
    r = await query(api, {"kind": "ExperimentExposureQuery", "experiment_id": exp["id"], "start_date": early})
    assert r.status_code == 200, r.text
    assert r.json()["total_exposures"] == {"control": 2, "test": 1, "$multiple": 1}
    assert r.json()["date_range"]["date_from"].startswith(start.date().isoformat())
