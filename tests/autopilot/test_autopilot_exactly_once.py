"""Exactly once across failures (issue 16): the worker is killed inside the acting activity and the
Temporal server restarts between the evaluation and the action — one action, one audit entry, one
webhook delivery id. PostgreSQL, whose row locks let the test hold the action (it writes the flag
row, the evaluation does not) while the evaluation has already committed."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from db.bootstrap import Credentials
from db.engine import make_async_engine, make_sessionmaker
from db.tables import Experiment
from domain.experiment_messages import HistoryEntry
from settings import Settings
from tests.api.test_approvals import eventually, get
from tests.autopilot.test_autopilot_webhook import Receiver
from tests.autopilot.test_autopilot_workflow import GUARD, USERS, launched, seed, trail
from tests.conftest import TEMPORAL_BIN
from tests.support.api_client import ApiClient
from tests.support.postgres import free_port
from tests.support.processes import start_worker
from workflows.client import connect, ensure_search_attributes
from workflows.constants import experiment_workflow_id
from workflows.search_attributes import ALL_KEYS

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL's row locks to hold the action after the evaluation committed")
    return database_url


class Server:
    """A Temporal dev server of this test's own, persisted to a file, restartable on its port."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.db = directory / "temporal.sqlite"
        self.env: WorkflowEnvironment | None = None

    async def start(self) -> Client:
        self.env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=TEMPORAL_BIN,
            search_attributes=ALL_KEYS,
            dev_server_log_level="error",
            port=self.port,
            dev_server_extra_args=["--db-filename", str(self.db)],
        )
        await ensure_search_attributes(self.env.client, "default")
        return await connect(f"127.0.0.1:{self.port}", "default")

    async def stop(self) -> None:
        assert self.env is not None
        await self.env.shutdown()


@pytest_asyncio.fixture(loop_scope="session")
async def own_server(tmp_path: Path) -> AsyncIterator[Server]:
    server = Server(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        if server.env is not None:
            await server.stop()


async def _version_and_verdict(settings: Settings, experiment_id: int) -> tuple[int, Any]:
    engine = make_async_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            row = await session.get(Experiment, experiment_id)
            assert row is not None
            return row.version, ((row.scheduling_config or {}).get("status") or {}).get("autopilot")
    finally:
        await engine.dispose()


async def test_one_action_one_entry_one_delivery(
    tmp_path: Path, settings: Settings, credentials: Credentials, own_server: Server
) -> None:
    client = (
        await own_server.start()
        if own_server.env is None
        else await connect(f"127.0.0.1:{own_server.port}", "default")
    )
    settings = replace(
        settings,
        temporal_address=f"127.0.0.1:{own_server.port}",
        temporal_namespace="default",
        temporal_rpc_timeout_seconds=30.0,
    )
    receiver = Receiver(failures=0)
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    worker = start_worker(settings)
    app = create_app(settings, temporal_client=client)
    try:
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                api = ApiClient(http, credentials.personal_api_key, credentials.project_id)
                rules = {
                    "guardrails": [{"metric": GUARD, "action": "pause"}],
                    "notify": {"webhook_url": receiver.url},
                }
                exp = await launched(api, settings, rules)
                await seed(api, settings, exp, rates={"refund": {"control": 0.05, "test": 0.25}}, users=USERS)
                worker = await _fail_between_evaluation_and_action(
                    settings, client, own_server, worker, api.project_id, exp
                )
                await _check_once(api, settings, client, exp, receiver)
    finally:
        receiver.server.shutdown()
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=15)


async def _fail_between_evaluation_and_action(
    settings: Settings,
    client: Client,
    server: Server,
    worker: subprocess.Popen[bytes],
    project_id: int,
    exp: dict[str, Any],
) -> subprocess.Popen[bytes]:
    dsn = settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as lock:
        # The pause writes the flag row; the evaluation only the experiment row.
        lock.execute("SELECT id FROM feature_flag WHERE id = %s FOR UPDATE", (exp["feature_flag"]["id"],))
        workflow = client.get_workflow_handle(experiment_workflow_id(project_id, exp["id"]))
        await workflow.signal("evaluate_rules")

        async def evaluated() -> bool:
            return (await _version_and_verdict(settings, exp["id"]))[1] is not None

        await eventually(evaluated, timeout=30)
        await asyncio.sleep(1.0)  # the action's local activity is now waiting for the flag row
        active = lock.execute("SELECT active FROM feature_flag WHERE id = %s", (exp["feature_flag"]["id"],))
        assert active.fetchone() == (True,)  # judged, not yet acted on
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        await server.stop()
        await server.start()
        worker = start_worker(settings)
        await asyncio.sleep(1.0)
        lock.rollback()
    return worker


async def _check_once(
    api: ApiClient, settings: Settings, client: Client, exp: dict[str, Any], receiver: Receiver
) -> None:
    async def paused() -> bool:
        return bool((await get(api, exp["id"]))["status"] == "paused")

    await eventually(paused, timeout=60)

    async def delivered() -> bool:
        return bool(receiver.received)

    await eventually(delivered, timeout=30)
    await asyncio.sleep(2.0)  # a duplicate would arrive now
    accepted = [
        e for e in await trail(api, exp["id"]) if e["via"] == "autopilot" and e["outcome"] == "accepted"
    ]
    assert [e["operation"] for e in accepted] == ["pause"]
    workflow = client.get_workflow_handle(experiment_workflow_id(api.project_id, exp["id"]))
    history = await workflow.query("history", result_type=list[HistoryEntry])
    assert [h.operation for h in history if h.via == "autopilot" and h.outcome == "accepted"] == ["pause"]
    assert len({delivery for delivery, _, _ in receiver.received}) == 1
