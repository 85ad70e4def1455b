"""Every lifecycle action and its PostHog 400 messages, through REST, on the real dev server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment

pytestmark = pytest.mark.usefixtures("worker")


def error(detail: str, attr: str | None = None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


async def test_full_lifecycle(api: ApiClient) -> None:
    exp = await create_experiment(api)
    eid = exp["id"]
    assert exp["status"] == "draft"
    assert exp["feature_flag"]["active"] is False
    assert exp["feature_flag"]["filters"]["multivariate"]["variants"][0]["key"] == "control"

    r = await action(api, eid, "launch")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "running" and r.json()["start_date"] is not None
    assert r.json()["feature_flag"]["active"] is True

    r = await action(api, eid, "pause")
    assert r.json()["status"] == "paused" and r.json()["feature_flag"]["active"] is False
    r = await action(api, eid, "resume")
    assert r.json()["status"] == "running" and r.json()["feature_flag"]["active"] is True
    r = await action(api, eid, "end", {"conclusion": "won", "conclusion_comment": "clear win"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (
        body["status"] == "stopped" and body["conclusion"] == "won" and body["feature_flag"]["active"] is True
    )
    r = await action(api, eid, "archive")
    assert r.json()["archived"] is True
    r = await action(api, eid, "unarchive")
    assert r.json()["archived"] is False
    r = await action(api, eid, "reset")
    body = r.json()
    assert body["status"] == "draft" and body["start_date"] is None and body["conclusion"] is None


@pytest.mark.parametrize(
    ("setup", "operation", "message"),
    [
        ([], "pause", "Experiment has not been launched yet."),
        ([], "resume", "Experiment has not been launched yet."),
        ([], "end", "Experiment has not been launched yet."),
        ([], "reset", "Experiment is already in draft state."),
        ([], "archive", "Experiment must be ended before it can be archived."),
        ([], "unarchive", "Experiment is not archived."),
        (["launch"], "launch", "Experiment has already been launched."),
        (["launch"], "resume", "Experiment is not paused."),
        (["launch", "pause"], "pause", "Experiment is already paused."),
        (["launch", "end"], "end", "Experiment has already ended."),
        (["launch", "end"], "pause", "Experiment has already ended."),
        (["launch", "end", "archive"], "archive", "Experiment is already archived."),
    ],
)
async def test_rejected_transitions(api: ApiClient, setup: list[str], operation: str, message: str) -> None:
    exp = await create_experiment(api)
    for step in setup:
        assert (await action(api, exp["id"], step)).status_code == 200
    r = await action(api, exp["id"], operation)
    assert r.status_code == 400
    assert r.json() == error(message)
    activity = (await api.get(api.project(f"experiments/{exp['id']}/activity/"))).json()
    assert activity["results"][0]["outcome"] == "rejected"
    assert activity["results"][0]["detail"] == message
