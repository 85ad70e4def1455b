"""A transition whose first attempt committed while its workflow task was lost, recovered once.

Under contention the server can discard the workflow task that ran a transition's local activity:
the row is written, the workflow's history never saw it, and the update is delivered again. If
another handler adopts the database's record of it first (here `resync`, which the API runs when
it finds such an operation), the redelivered update must answer with that record — not run its
activity again and put the transition in the workflow's history twice (seen once in fifty
concurrent transitions on PostgreSQL, tests/race/).

Deterministic: with no worker running, the row is changed by the activity directly under the
update's operation id, then `resync` and the update are sent; the worker starts after both are
waiting, so one workflow task delivers them in that order and `resync` holds the lock while the
update waits for it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from temporalio.client import Client

from activities.experiments import ExperimentActivities
from db.engine import make_async_engine, make_sessionmaker
from domain.experiment_messages import ActivityInput, ExperimentSnapshot, HistoryEntry, TransitionRequest
from domain.operation_ids import update_operation_id
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment, handle
from tests.support.histories import record_golden
from worker import build_worker
from workflows.constants import experiment_workflow_id

LOST = "lost-pause"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def apply_behind_the_workflows_back(settings: Settings, project_id: int, experiment_id: int) -> None:
    """What the lost workflow task left: the pause applied under the update's operation id."""
    engine = make_async_engine(settings.database_url)
    try:
        inp = ActivityInput(
            op_id=update_operation_id(experiment_workflow_id(project_id, experiment_id), LOST),
            operation="pause",
            project_id=project_id,
            experiment_id=experiment_id,
            now=datetime.now(UTC),
            request=TransitionRequest(),
        )
        snapshot = await ExperimentActivities(make_sessionmaker(engine)).apply_transition(inp)
        assert snapshot.status.value == "paused"
    finally:
        await engine.dispose()


async def test_a_lost_transition_adopted_meanwhile_is_recorded_once(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    engine = make_async_engine(settings.database_url)
    try:
        async with build_worker(temporal_client, settings, engine):
            exp = await create_experiment(api)
            assert (await action(api, exp["id"], "launch")).status_code == 200
        await apply_behind_the_workflows_back(settings, api.project_id, exp["id"])
        wf = handle(temporal_client, api.project_id, exp["id"])
        resync = asyncio.create_task(wf.execute_update("resync", result_type=ExperimentSnapshot))
        await asyncio.sleep(0.5)
        pause = asyncio.create_task(
            wf.execute_update("pause", TransitionRequest(), id=LOST, result_type=ExperimentSnapshot)
        )
        await asyncio.sleep(0.5)
        async with build_worker(temporal_client, settings, engine):
            adopted, paused = await asyncio.wait_for(asyncio.gather(resync, pause), timeout=30)
            history = await wf.query("history", result_type=list[HistoryEntry])
            state = await wf.query("state", result_type=ExperimentSnapshot)
    finally:
        await engine.dispose()
    await record_golden(await wf.fetch_history(), "lost_update_adopted_while_waiting")
    assert adopted.status.value == paused.status.value == state.status.value == "paused"
    assert paused.version == adopted.version == state.version  # the first attempt's result
    mine = [h for h in history if h.update_id == LOST]
    assert len(mine) == 1, mine
    assert mine[0].detail == "recovered from the database"
    trail = (await api.get(api.project(f"experiments/{exp['id']}/activity/"))).json()["results"]
    assert [row["operation"] for row in trail if row["outcome"] == "accepted"] == [
        "pause",
        "launch",
        "create",
    ]
