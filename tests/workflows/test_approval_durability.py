"""A change waiting for approval survives a worker restart and is applied exactly once."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client

from db.engine import make_async_engine
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment
from tests.support.users import make_user
from worker import build_worker


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def test_worker_restart_while_waiting_for_approval(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    approver_id, approver_key = await make_user(settings, api.project_id)
    policy = {"action_key": "feature_flag.update", "approver_config": {"quorum": 1, "users": [approver_id]}}
    assert (await api.post(api.project("approval_policies/"), policy)).status_code == 201
    engine = make_async_engine(settings.database_url)
    async with build_worker(temporal_client, settings, engine):
        exp = await create_experiment(api)
        assert (await action(api, exp["id"], "launch")).status_code == 200
        r = await action(api, exp["id"], "ship_variant", {"variant_key": "test"})
        assert r.status_code == 409
    cr_id = r.json()["change_request_id"]
    # No worker now: the approval is recorded and the signal waits in the workflow's history.
    ok = await api.post(api.project(f"change_requests/{cr_id}/approve/"), {}, key=approver_key)
    assert ok.status_code == 200 and ok.json()["state"] == "approved"
    async with build_worker(temporal_client, settings, engine):
        for _ in range(100):
            got = (await api.get(api.project(f"experiments/{exp['id']}/"))).json()
            if got["status"] == "stopped":
                break
            await asyncio.sleep(0.1)
        assert got["status"] == "stopped"
        # A duplicate signal (an approval system retrying) changes nothing.
        ok = await api.post(api.project(f"change_requests/{cr_id}/approve/"), {}, key=approver_key)
        await asyncio.sleep(0.5)
    await engine.dispose()
    audit = (await api.get(api.project(f"experiments/{exp['id']}/activity/"))).json()["results"]
    assert [a["operation"] for a in audit if a["outcome"] == "accepted"].count("ship_variant") == 1
    cr = (await api.get(api.project(f"change_requests/{cr_id}/"))).json()
    assert cr["state"] == "applied" and cr["result_data"]["end_date"] is not None
