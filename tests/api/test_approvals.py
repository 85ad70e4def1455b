"""Approval policies and change requests: the 409, approvals that apply themselves, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from temporalio.client import Client

from domain.experiment_messages import ApprovalGranted, HistoryEntry, PendingChange
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment, handle
from tests.support.users import make_user

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.1)


async def setup(
    api: ApiClient, settings: Settings, action_key: str, **policy: Any
) -> tuple[dict[str, Any], str, int]:
    approver_id, approver_key = await make_user(settings, api.project_id)
    body = {"action_key": action_key, "approver_config": {"quorum": 1, "users": [approver_id]}} | policy
    r = await api.post(api.project("approval_policies/"), body)
    assert r.status_code == 201, r.text
    exp = await create_experiment(api)
    return exp, approver_key, approver_id


async def get(api: ApiClient, eid: int) -> dict[str, Any]:
    return dict((await api.get(api.project(f"experiments/{eid}/"))).json())


async def test_ship_needs_approval_then_applies_itself(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    exp, approver_key, approver_id = await setup(api, settings, "feature_flag.update")
    assert (await action(api, exp["id"], "launch")).status_code == 200
    before = await get(api, exp["id"])
    r = await action(api, exp["id"], "ship_variant", {"variant_key": "test", "conclusion": "won"})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "approval_required" and body["status"] == "approval_required"
    assert body["resource_type"] == "feature_flag" and body["resource_id"] == str(exp["feature_flag"]["id"])
    assert body["required_approvers"] == {"quorum": 1, "users": [approver_id]}
    cr = body["change_request"]
    assert cr["id"] == body["change_request_id"] and cr["state"] == "pending" and cr["is_requester"] is True
    assert set(cr) >= {
        "intent",
        "policy_snapshot",
        "expires_at",
        "approvals",
        "can_approve",
        "can_cancel",
        "user_decision",
    }
    # Nothing changed: the flag is as it was and the experiment is still running.
    now = await get(api, exp["id"])
    assert now["status"] == "running" and now["feature_flag"]["filters"] == before["feature_flag"]["filters"]
    again = await action(api, exp["id"], "ship_variant", {"variant_key": "test", "conclusion": "won"})
    assert again.status_code == 409 and again.json()["code"] == "change_request_pending"
    assert again.json()["message"] == "A pending approval request already exists for this action"
    # The requester may not approve their own change.
    own = await api.post(api.project(f"change_requests/{cr['id']}/approve/"), {})
    assert own.status_code == 403 and own.json()["detail"] == "You cannot approve your own change request."
    ok = await api.post(api.project(f"change_requests/{cr['id']}/approve/"), {}, key=approver_key)
    assert ok.status_code == 200, ok.text
    assert ok.json()["state"] in ("approved", "applied")

    async def shipped() -> bool:
        return bool((await get(api, exp["id"]))["status"] == "stopped")

    await eventually(shipped)
    final = await get(api, exp["id"])
    assert final["conclusion"] == "won"
    assert [
        v["rollout_percentage"] for v in final["feature_flag"]["filters"]["multivariate"]["variants"]
    ] == [0, 100]
    state = (await api.get(api.project(f"change_requests/{cr['id']}/"))).json()["state"]
    assert state == "applied"
    # Approving twice counts once; a retry of the original request returns 200 and does nothing twice.
    assert (
        await api.post(api.project(f"change_requests/{cr['id']}/approve/"), {}, key=approver_key)
    ).status_code == 400
    retry = await action(api, exp["id"], "ship_variant", {"variant_key": "test", "conclusion": "won"})
    assert retry.status_code == 200 and retry.json()["end_date"] == final["end_date"]
    audit = (await api.get(api.project(f"experiments/{exp['id']}/activity/"))).json()["results"]
    assert next((a["operation"], a["via"]) for a in audit if a["outcome"] == "accepted") == (
        "ship_variant",
        "approval",
    )
    history = await handle(temporal_client, api.project_id, exp["id"]).query(
        "history", result_type=list[HistoryEntry]
    )
    assert [(h.operation, h.outcome, h.via) for h in history][-3:] == [
        ("ship_variant", "approval_required", "rest"),
        ("ship_variant", "approval_required", "rest"),
        ("ship_variant", "accepted", "approval"),
    ]


async def test_external_approval_signal_through_temporal(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    exp, _, _ = await setup(api, settings, "feature_flag.disable")
    assert (await action(api, exp["id"], "launch")).status_code == 200
    r = await action(api, exp["id"], "pause")
    assert r.status_code == 409
    cr_id = r.json()["change_request_id"]
    wf = handle(temporal_client, api.project_id, exp["id"])
    await wf.signal("approval_granted", ApprovalGranted(change_request_id=cr_id, source="external"))

    async def paused() -> bool:
        return bool((await get(api, exp["id"]))["status"] == "paused")

    await eventually(paused)
    assert (await wf.query("pending_changes", result_type=list[PendingChange])) == []


async def test_expiry_reject_and_cancel(api: ApiClient, settings: Settings, temporal_client: Client) -> None:
    exp, approver_key, _ = await setup(api, settings, "feature_flag.enable", expiry_seconds=2)
    first = await action(api, exp["id"], "launch")
    assert first.status_code == 409
    cr_id = first.json()["change_request_id"]

    async def expired() -> bool:
        return bool((await api.get(api.project(f"change_requests/{cr_id}/"))).json()["state"] == "expired")

    await eventually(expired, timeout=15)
    assert (await get(api, exp["id"]))["status"] == "draft"
    wf = handle(temporal_client, api.project_id, exp["id"])
    assert (await wf.query("pending_changes", result_type=list[PendingChange])) == []
    second = await action(api, exp["id"], "launch")
    assert second.status_code == 409 and second.json()["code"] == "approval_required"
    rejected = await api.post(
        api.project(f"change_requests/{second.json()['change_request_id']}/reject/"), {}, key=approver_key
    )
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    third = await action(api, exp["id"], "launch")
    assert third.status_code == 409
    third_id = third.json()["change_request_id"]
    other = await api.post(api.project(f"change_requests/{third_id}/cancel/"), {}, key=approver_key)
    assert other.status_code == 403
    cancelled = await api.post(api.project(f"change_requests/{third_id}/cancel/"), {})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert (await get(api, exp["id"]))["status"] == "draft"
    await eventually(lambda: _no_pending(wf))


async def _no_pending(wf: Any) -> bool:
    return bool((await wf.query("pending_changes", result_type=list[PendingChange])) == [])


async def test_policy_validation_and_isolation(api: ApiClient) -> None:
    r = await api.post(api.project("approval_policies/"), {"action_key": "feature_flag.delete"})
    assert r.status_code == 400 and r.json()["attr"] == "action_key"
    r = await api.post(
        api.project("approval_policies/"),
        {"action_key": "feature_flag.update", "approver_config": {"quorum": 0}},
    )
    assert r.status_code == 400 and r.json()["attr"] == "approver_config"
    other = await api.post("/api/projects/", {"name": "Other"})
    assert other.status_code == 201
    created = await api.post(api.project("approval_policies/"), {"action_key": "feature_flag.update"})
    assert created.status_code == 201
    pid = created.json()["id"]
    assert (await api.get(f"/api/projects/{other.json()['id']}/approval_policies/{pid}/")).status_code == 404
    assert (await api.delete(api.project(f"approval_policies/{pid}/"))).status_code == 204
