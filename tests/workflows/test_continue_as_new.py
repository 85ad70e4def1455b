"""Continue-as-new when Temporal suggests it: state, history, pending work and seen update ids
carry over to the new run (a server configured to suggest it after a few events)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from api.app import create_app
from db.bootstrap import Credentials
from db.engine import make_async_engine
from domain.experiment_messages import ExperimentSnapshot, HistoryEntry
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


@pytest.fixture
def suggesting_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [TEMPORAL, "server", "start-dev", "--headless", "--port", str(port), "--log-level", "error",
         "--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=40", *cli_flags()],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def test_continue_as_new_carries_state(
    suggesting_server: str, settings: Settings, credentials: Credentials
) -> None:
    settings = replace(settings, temporal_address=suggesting_server, temporal_namespace="default",
                       task_queue=f"tq-{uuid.uuid4().hex[:8]}")  # fmt: skip
    client = await connect_with_retry(suggesting_server, "default")
    engine = make_async_engine(settings.database_url)
    app = create_app(settings, temporal_client=client)
    async with LifespanManager(app) as manager, build_worker(client, settings, engine):
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            api = ApiClient(http, credentials.personal_api_key, credentials.project_id)
            exp = await create_experiment(api)
            wf = handle(client, api.project_id, exp["id"])
            first_run = (await wf.describe()).run_id
            keyed = await action(api, exp["id"], "launch", headers={"Idempotency-Key": "launch-key"})
            assert keyed.status_code == 200
            for i in range(12):
                r = await action(api, exp["id"], "pause" if i % 2 == 0 else "resume")
                assert r.status_code == 200, r.text
            latest = await client.get_workflow_handle(wf.id).describe()
            assert latest.run_id != first_run, "the workflow never continued as new"
            history = await wf.query("history", result_type=list[HistoryEntry])
            assert [h.operation for h in history][:3] == ["create", "launch", "pause"]
            assert len(history) == 14
            state = await wf.query("state", result_type=ExperimentSnapshot)
            assert state.status == "running" and state.flag_active
            # The update id seen in the first run still returns its first result.
            again = await action(api, exp["id"], "launch", headers={"Idempotency-Key": "launch-key"})
            assert again.status_code == 200 and again.json()["start_date"] == keyed.json()["start_date"]
    await engine.dispose()
