"""Launch and end start the experiment's metrics recalculation (a child workflow)."""

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


async def test_launch_and_end_start_recalculations(api: ApiClient, temporal_client: Client) -> None:
    exp = await create_experiment(api, metrics=[METRIC])
    assert (await action(api, exp["id"], "launch")).status_code == 200
    assert (await action(api, exp["id"], "end")).status_code == 200
    for reason in ("experiment_launch", "experiment_stop"):
        wf_id = experiment_recalculation_workflow_id(api.project_id, exp["id"], reason)
        for _ in range(50):
            try:
                desc = await temporal_client.get_workflow_handle(wf_id).describe()
                break
            except RPCError:
                await asyncio.sleep(0.1)
        assert desc.id == wf_id
