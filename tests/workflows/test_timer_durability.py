"""A scheduled end survives a restart of both the worker and the Temporal server (persistence
file), and fires exactly once afterwards."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
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
from tests.support.postgres import free_port
from worker import build_worker
from workflows.client import connect_with_retry
from workflows.search_attributes import cli_flags

TEMPORAL = str(Path(sys.executable).parent / "temporal")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


class DevServer:
    def __init__(self, db_file: Path) -> None:
        self.db_file = db_file
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [TEMPORAL, "server", "start-dev", "--headless", "--port", str(self.port), "--db-filename",
             str(self.db_file), "--log-level", "error", *cli_flags()],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[DevServer]:
    server = DevServer(tmp_path / "temporal.sqlite")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_scheduled_end_fires_once_after_worker_and_server_restart(
    dev_server: DevServer, settings: Settings, credentials: Credentials
) -> None:
    settings = replace(settings, temporal_address=dev_server.address, temporal_namespace="default",
                       task_queue=f"tq-{uuid.uuid4().hex[:8]}")  # fmt: skip
    engine = make_async_engine(settings.database_url)
    client = await connect_with_retry(dev_server.address, "default")
    app = create_app(settings, temporal_client=client)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            api = ApiClient(http, credentials.personal_api_key, credentials.project_id)
            async with build_worker(client, settings, engine):
                end_at = (datetime.now(UTC) + timedelta(seconds=6)).isoformat()
                exp = await create_experiment(api, scheduling_config={"end_at": end_at})
                assert (await action(api, exp["id"], "launch")).status_code == 200
            dev_server.stop()
            await asyncio.sleep(1)
            dev_server.start()
            fresh: Client = await connect_with_retry(dev_server.address, "default")
            async with build_worker(fresh, settings, engine):
                for _ in range(200):
                    got = (await api.get(api.project(f"experiments/{exp['id']}/"))).json()
                    if got["status"] == "stopped":
                        break
                    await asyncio.sleep(0.1)
                assert got["status"] == "stopped"
                await asyncio.sleep(1)
                history = await handle(fresh, api.project_id, exp["id"]).query(
                    "history", result_type=list[HistoryEntry]
                )
            audit = (await api.get(api.project(f"experiments/{exp['id']}/activity/"))).json()["results"]
    await engine.dispose()
    assert [(h.operation, h.via) for h in history if h.operation == "end"] == [("end", "timer")]
    assert next((a["operation"], a["via"]) for a in audit if a["outcome"] == "accepted") == ("end", "timer")
    assert sum(1 for a in audit if a["operation"] == "end") == 1
