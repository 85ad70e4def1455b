"""Determinism: recorded histories of real lifecycles replay against the current workflow code.

Golden histories live in tests/histories/*.json. A workflow change that would alter the history
of running experiments must go behind `workflow.patched(...)`, or these replays fail. Refresh the
goldens only for a new path (never to make a failing replay pass), under a new name, keeping the
old ones: `RECORD_HISTORY=full_lifecycle_<what changed> pytest tests/workflows/test_replay.py -k fresh`.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory

from domain.experiment_messages import HistoryEntry, TransitionRequest
from settings import Settings
from tests.api.test_approvals import eventually, get
from tests.autopilot.test_autopilot_workflow import GUARD, USERS, evaluate, launched, seed
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment, handle
from tests.support.histories import HISTORIES, replayer
from tests.support.users import make_user

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def record(client: Client, project_id: int, experiment_id: int) -> WorkflowHistory:
    history = await handle(client, project_id, experiment_id).fetch_history()
    name = os.environ.get("RECORD_HISTORY")
    if name:
        target = HISTORIES / f"{name}.json"
        assert not target.exists(), f"{target} exists: goldens are never overwritten"
        target.write_text(history.to_json())
    return history


async def test_fresh_full_lifecycle_replays(api: ApiClient, temporal_client: Client) -> None:
    exp = await create_experiment(api)
    for step in ("launch", "pause", "resume", "end", "archive", "unarchive", "reset"):
        r = await action(api, exp["id"], step)
        assert r.status_code == 200, (step, r.text)
    assert (await action(api, exp["id"], "reset")).status_code == 400  # rejected: no history events
    wf = handle(temporal_client, api.project_id, exp["id"])
    await wf.signal("launch", TransitionRequest())
    await wf.signal("resume")  # invalid signal: recorded, ignored
    for _ in range(100):  # signals are asynchronous: wait until both are processed
        if len(await wf.query("history", result_type=list[HistoryEntry])) >= 10:
            break
        await asyncio.sleep(0.05)
    url = api.project(f"experiments/{exp['id']}/")
    assert (await api.patch(url, {"name": "renamed"})).status_code == 200
    assert (await api.patch(url, {"deleted": True})).status_code == 200
    await wf.result()
    history = await record(temporal_client, api.project_id, exp["id"])
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None


async def test_fresh_timers_approvals_and_autopilot_replay(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    """The paths beside REST transitions: an autopilot decision held for approval (a pending
    change and its expiry deadline), the approval signal applying it, a scheduled end fired by the
    timer, a refused signal recorded by an activity, and the soft delete that completes the run."""
    approver, approver_key = await make_user(settings, api.project_id)
    policy = {"action_key": "feature_flag.disable", "approver_config": {"quorum": 1, "users": [approver]}}
    assert (await api.post(api.project("approval_policies/"), policy)).status_code == 201
    end_at = datetime.now(UTC) + timedelta(seconds=8)
    autopilot = {"guardrails": [{"metric": GUARD, "action": "pause"}]}
    exp = await launched(
        api, settings, autopilot, scheduling_config={"autopilot": autopilot, "end_at": end_at.isoformat()}
    )
    await seed(api, settings, exp, rates={"refund": {"control": 0.05, "test": 0.25}}, users=USERS)
    assert (await evaluate(api, exp["id"]))["action"] == "pause"  # held back: a change request
    requests = (await api.get(api.project("change_requests/"))).json()["results"]
    ok = await api.post(api.project(f"change_requests/{requests[0]['id']}/approve/"), {}, key=approver_key)
    assert ok.status_code == 200, ok.text

    async def status_is(wanted: str) -> bool:
        return bool((await get(api, exp["id"]))["status"] == wanted)

    await eventually(lambda: status_is("paused"))
    assert (await action(api, exp["id"], "resume")).status_code == 200
    await eventually(lambda: status_is("stopped"), timeout=30)  # the scheduled end, by the timer
    wf = handle(temporal_client, api.project_id, exp["id"])
    await wf.signal("resume")  # invalid now: recorded, ignored
    for _ in range(100):
        if any(h.outcome == "rejected" for h in await wf.query("history", result_type=list[HistoryEntry])):
            break
        await asyncio.sleep(0.05)
    assert (await api.patch(api.project(f"experiments/{exp['id']}/"), {"deleted": True})).status_code == 200
    await wf.result()
    history = await record(temporal_client, api.project_id, exp["id"])
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None


def golden_histories() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


@pytest.mark.parametrize("path", golden_histories(), ids=lambda p: p.stem)
async def test_golden_history_replays(path: Path) -> None:
    # Under the id it ran with: operation ids embed the workflow id, and a replay that recovers
    # applied operations from the database parses them back with it.
    text = path.read_text()
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    history = WorkflowHistory.from_json(started["workflowId"], text)
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
