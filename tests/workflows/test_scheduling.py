"""scheduling_config drives durable timers: auto-launch, auto-end, duration_days, re-arm, cancel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client

from domain.experiment_messages import HistoryEntry
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment, handle

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def get(api: ApiClient, eid: int) -> dict[str, Any]:
    return dict((await api.get(api.project(f"experiments/{eid}/"))).json())


async def wait_status(api: ApiClient, eid: int, status: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        exp = await get(api, eid)
        if exp["status"] == status:
            return exp
        assert asyncio.get_running_loop().time() < deadline, f"still {exp['status']}, wanted {status}"
        await asyncio.sleep(0.1)


async def timer_ops(client: Client, project_id: int, eid: int) -> list[tuple[str, str]]:
    history = await handle(client, project_id, eid).query("history", result_type=list[HistoryEntry])
    return [(h.operation, h.outcome) for h in history if h.via == "timer"]


async def test_auto_launch_then_auto_end_with_conclusion(api: ApiClient, temporal_client: Client) -> None:
    config = {"launch_at": at(1.5), "end_at": at(3.5), "end_conclusion": "won", "team_note": "kept verbatim"}
    exp = await create_experiment(api, scheduling_config=config)
    assert [a["action"] for a in exp["scheduled_actions"]] == ["launch", "end"]
    launched = await wait_status(api, exp["id"], "running")
    assert launched["scheduling_config"]["status"]["launch"]["state"] == "done"
    assert launched["scheduling_config"]["team_note"] == "kept verbatim"
    assert [a["action"] for a in launched["scheduled_actions"]] == ["end"]
    query = f'ExperimentScheduledEndAt > "{datetime.now(UTC).isoformat()}" AND ProjectId = {api.project_id}'
    assert [wf.id async for wf in temporal_client.list_workflows(query)] == [
        f"experiment-{api.project_id}-{exp['id']}"
    ]
    ended = await wait_status(api, exp["id"], "stopped")
    assert ended["conclusion"] == "won" and ended["scheduled_actions"] == []
    assert await timer_ops(temporal_client, api.project_id, exp["id"]) == [
        ("launch", "accepted"),
        ("end", "accepted"),
    ]
    audit = (await api.get(api.project(f"experiments/{exp['id']}/activity/"))).json()["results"]
    assert [(a["operation"], a["via"]) for a in audit[:2]] == [("end", "timer"), ("launch", "timer")]


async def test_duration_days_counts_from_start(api: ApiClient, temporal_client: Client) -> None:
    exp = await create_experiment(api, scheduling_config={"duration_days": 2 / 86400})
    assert exp["scheduled_actions"] == []  # nothing to count from until it starts
    started = (await action(api, exp["id"], "launch")).json()
    assert [a["action"] for a in started["scheduled_actions"]] == ["end"]
    await wait_status(api, exp["id"], "stopped")


async def test_patch_rearms_and_past_schedule_fires_at_once(api: ApiClient, temporal_client: Client) -> None:
    exp = await create_experiment(api, scheduling_config={"launch_at": at(-60)})
    await wait_status(api, exp["id"], "running", timeout=5)
    url = api.project(f"experiments/{exp['id']}/")
    assert (await api.patch(url, {"scheduling_config": {"end_at": at(3600)}})).status_code == 200
    await asyncio.sleep(1)
    assert (await get(api, exp["id"]))["status"] == "running"
    assert (await api.patch(url, {"scheduling_config": {"end_at": at(1)}})).status_code == 200
    await wait_status(api, exp["id"], "stopped")


async def test_manual_end_cancels_the_timer(api: ApiClient, temporal_client: Client) -> None:
    exp = await create_experiment(api, scheduling_config={"end_at": at(2)})
    assert (await action(api, exp["id"], "launch")).status_code == 200
    r = await action(api, exp["id"], "end")
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["scheduling_config"]["status"]["end"]["state"] == "cancelled"
    await asyncio.sleep(3)
    assert await timer_ops(temporal_client, api.project_id, exp["id"]) == []
    assert (await get(api, exp["id"]))["end_date"] == ended["end_date"]


async def test_ship_at_scheduled_end(api: ApiClient) -> None:
    exp = await create_experiment(api, scheduling_config={"end_at": at(2), "ship_variant_key": "test"})
    assert (await action(api, exp["id"], "launch")).status_code == 200
    ended = await wait_status(api, exp["id"], "stopped")
    variants = ended["feature_flag"]["filters"]["multivariate"]["variants"]
    assert [(v["key"], v["rollout_percentage"]) for v in variants] == [("control", 0), ("test", 100)]


async def test_failed_auto_launch_is_recorded_and_not_retried(
    api: ApiClient, temporal_client: Client
) -> None:
    exp = await create_experiment(api, scheduling_config={"launch_at": at(1.5)})
    flag_url = api.project(f"feature_flags/{exp['feature_flag']['id']}/")
    assert (await api.patch(flag_url, {"deleted": True})).status_code == 200
    for _ in range(60):
        status = (await get(api, exp["id"]))["scheduling_config"].get("status")
        if status:
            break
        await asyncio.sleep(0.1)
    assert status["launch"]["state"] == "failed"
    assert (
        status["launch"]["detail"]
        == "Experiment cannot be launched because its feature flag has been deleted."
    )
    await asyncio.sleep(1)
    assert await timer_ops(temporal_client, api.project_id, exp["id"]) == [("launch", "failed")]


@pytest.mark.parametrize(
    ("config", "detail"),
    [
        ({"end_at": "2030-01-01T10:00:00"}, "scheduling_config.end_at must include a timezone"),
        ({"end_at": "2030-01-01T10:00:00Z", "duration_days": 3}, "cannot both be set"),
        ({"launch_at": "2030-01-02T00:00:00Z", "end_at": "2030-01-01T00:00:00Z"}, "must be after"),
        ({"ship_variant_key": "test"}, "needs end_at or duration_days"),
        ({"end_at": "2030-01-01T10:00:00Z", "ship_variant_key": "nope"}, "Variant 'nope' not found"),
        ({"duration_days": -1}, "positive number"),
        ("soon", "must be an object"),
    ],
)
async def test_validation(api: ApiClient, config: Any, detail: str) -> None:
    r = await api.post(
        api.project("experiments/"), {"name": "x", "feature_flag_key": "k", "scheduling_config": config}
    )
    assert r.status_code == 400, r.text
    assert r.json()["attr"] == "scheduling_config" and detail in r.json()["detail"]


async def test_archived_experiment_cannot_be_scheduled(api: ApiClient) -> None:
    exp = await create_experiment(api)
    for step in ("launch", "end", "archive"):
        assert (await action(api, exp["id"], step)).status_code == 200
    r = await api.patch(api.project(f"experiments/{exp['id']}/"), {"scheduling_config": {"end_at": at(60)}})
    assert r.status_code == 400
    assert r.json()["detail"] == "Cannot schedule a launch or end on an archived experiment."
