"""Launch and end start the experiment's metrics recalculation (a child workflow), unless the
experiment has no metric at all (inline or saved)."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment
from workflows.timeseries_names import experiment_recalculation_workflow_id

pytestmark = pytest.mark.usefixtures("worker")

METRIC = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase"},
}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def _started(client: Client, workflow_id: str, *, wait: float = 5.0) -> bool:
    for _ in range(int(wait / 0.1)):
        try:
            await client.get_workflow_handle(workflow_id).describe()
            return True
        except RPCError:
            await asyncio.sleep(0.1)
    return False


async def _launch_and_end(api: ApiClient, experiment_id: int) -> None:
    assert (await action(api, experiment_id, "launch")).status_code == 200
    assert (await action(api, experiment_id, "end")).status_code == 200


async def test_launch_and_end_start_recalculations(api: ApiClient, temporal_client: Client) -> None:
    exp = await create_experiment(api, metrics=[METRIC])
    await _launch_and_end(api, exp["id"])
    for reason in ("experiment_launch", "experiment_stop"):
        wf_id = experiment_recalculation_workflow_id(api.project_id, exp["id"], reason)
        assert await _started(temporal_client, wf_id), reason


async def test_a_saved_metric_is_a_metric_to_recalculate(api: ApiClient, temporal_client: Client) -> None:
    saved = await api.post(api.project("experiment_saved_metrics/"), {"name": "Saved", "query": METRIC})
    assert saved.status_code == 201, saved.text
    exp = await create_experiment(
        api, saved_metrics_ids=[{"id": saved.json()["id"], "metadata": {"type": "primary"}}]
    )
    assert (await action(api, exp["id"], "launch")).status_code == 200
    wf_id = experiment_recalculation_workflow_id(api.project_id, exp["id"], "experiment_launch")
    assert await _started(temporal_client, wf_id)


async def test_no_metrics_no_recalculation(api: ApiClient, temporal_client: Client) -> None:
    exp = await create_experiment(api)
    await _launch_and_end(api, exp["id"])
    # The end's workflow task ran after the launch's: had the launch started one, it would exist.
    for reason in ("experiment_launch", "experiment_stop"):
        wf_id = experiment_recalculation_workflow_id(api.project_id, exp["id"], reason)
        assert not await _started(temporal_client, wf_id, wait=0.5), reason
