"""Fault injection: a worker killed inside an activity, no worker at all, Temporal unreachable."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from temporalio.client import Client

from api.app import create_app
from db.bootstrap import Credentials
from db.engine import make_async_engine
from domain.experiment_messages import HistoryEntry
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment, handle
from tests.support.processes import start_worker
from worker import build_worker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Long enough to ride out a workflow-task timeout (10 s) after the worker is killed.
    return replace(settings, temporal_rpc_timeout_seconds=30.0)


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


async def test_worker_killed_inside_launch_activity_completes_once(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    first = start_worker(settings)
    second: subprocess.Popen[bytes] | None = None
    try:
        exp = await create_experiment(api)
        lock = sqlite3.connect(sqlite_path(settings.database_url), isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # the launch activity will wait for this write lock
        launch = asyncio.create_task(action(api, exp["id"], "launch"))
        await asyncio.sleep(1.5)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = start_worker(settings)
        await asyncio.sleep(1.0)
        lock.execute("ROLLBACK")
        lock.close()
        r = await launch
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "running"
        start_date = r.json()["start_date"]
        history = await handle(temporal_client, api.project_id, exp["id"]).query(
            "history", result_type=list[HistoryEntry]
        )
        assert [h.operation for h in history if h.operation == "launch"] == ["launch"]
        audit = (await api.get(api.project(f"experiments/{exp['id']}/activity/"))).json()["results"]
        assert [a["operation"] for a in audit if a["outcome"] == "accepted"] == ["launch", "create"]
        got = (await api.get(api.project(f"experiments/{exp['id']}/"))).json()
        assert got["start_date"] == start_date and got["feature_flag"]["active"] is True
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=15)


async def test_no_worker_reads_still_work_and_writes_fail_fast(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    engine = make_async_engine(settings.database_url)
    async with build_worker(temporal_client, settings, engine):
        exp = await create_experiment(api)
    await engine.dispose()
    assert (await api.get(api.project(f"experiments/{exp['id']}/"))).status_code == 200
    assert (await api.get(api.project("experiments/"))).json()["count"] == 1


async def test_write_without_worker_is_503_in_bounded_time(
    short_timeout_api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    api = short_timeout_api
    engine = make_async_engine(settings.database_url)
    async with build_worker(temporal_client, settings, engine):
        exp = await create_experiment(api)
    await engine.dispose()
    started = time.monotonic()
    r = await action(api, exp["id"], "launch")
    elapsed = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert r.json()["type"] == "server_error" and "No worker" in r.json()["detail"]
    assert elapsed < 6


async def test_temporal_unreachable(tmp_path: Path, database_url: str, credentials: Credentials) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        temporal_address="127.0.0.1:9",
        temporal_rpc_timeout_seconds=2.0,
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            api = ApiClient(http, credentials.personal_api_key, credentials.project_id)
            started = time.monotonic()
            r = await api.post(api.project("experiments/"), {"name": "x", "feature_flag_key": "k"})
            assert r.status_code == 503, r.text
            assert "Temporal is unreachable" in r.json()["detail"]
            assert time.monotonic() - started < 6
            assert (await api.get(api.project("experiments/"))).status_code == 200
            health = await http.get("/_health")
            assert health.status_code == 503 and health.json()["database"] == "ok"
