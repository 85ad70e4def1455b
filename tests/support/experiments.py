"""Helpers to drive experiments through the REST API in tests."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle

from tests.support.api_client import ApiClient
from workflows.constants import experiment_workflow_id


async def create_experiment(api: ApiClient, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Checkout test",
        "feature_flag_key": "checkout-test",
        "allow_unknown_events": True,
    } | overrides
    r = await api.post(api.project("experiments/"), body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def action(api: ApiClient, eid: int, name: str, body: Any = None, **kwargs: Any) -> Any:
    return await api.post(api.project(f"experiments/{eid}/{name}/"), body, **kwargs)


def handle(client: Client, project_id: int, experiment_id: int) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(experiment_workflow_id(project_id, experiment_id))
