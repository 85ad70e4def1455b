"""Determinism: recorded histories of real lifecycles replay against the current workflow code.

Golden histories live in tests/histories/*.json. A workflow change that would alter the history
of running experiments must go behind `workflow.patched(...)`, or these replays fail. Refresh the
goldens only for a new path (never to make a failing replay pass), under a new name, keeping the
old ones: `RECORD_HISTORY=full_lifecycle_<what changed> pytest tests/workflows/test_replay.py -k fresh`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from domain.experiment_messages import HistoryEntry, TransitionRequest
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment, handle
from workflows.experiment import ExperimentWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def replayer() -> Replayer:
    return Replayer(workflows=[ExperimentWorkflow], data_converter=pydantic_data_converter)


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


def golden_histories() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


@pytest.mark.parametrize("path", golden_histories(), ids=lambda p: p.stem)
async def test_golden_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json("experiment-golden", path.read_text())
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
