"""Every path that changes a flag passes the approval gate (issue 13 item 10): a PATCH that launches,
`update_feature_flag_params`, and the flags API (linked to an experiment or not); a change request
applies only to its own experiment; governing an enabled policy takes the rights to decide under it."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import Client

from domain.experiment_messages import ApprovalGranted, HistoryEntry
from settings import Settings
from tests.api.test_approvals import eventually, get
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment, handle
from tests.support.users import make_user

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def policy(api: ApiClient, settings: Settings, action_key: str) -> tuple[int, str, int]:
    """(policy id, approver key, approver id) of an enabled policy with one named approver."""
    approver_id, approver_key = await make_user(settings, api.project_id)
    body = {"action_key": action_key, "approver_config": {"quorum": 1, "users": [approver_id]}}
    r = await api.post(api.project("approval_policies/"), body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), approver_key, approver_id


async def approve(api: ApiClient, cr_id: str, key: str) -> dict[str, Any]:
    r = await api.post(api.project(f"change_requests/{cr_id}/approve/"), {}, key=key)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_patch_that_launches_needs_approval_then_applies_itself(
    api: ApiClient, settings: Settings
) -> None:
    _, approver_key, _ = await policy(api, settings, "feature_flag.enable")
    exp = await create_experiment(api)
    r = await api.patch(api.project(f"experiments/{exp['id']}/"), {"start_date": "2026-01-01T00:00:00Z"})
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "approval_required"
    assert r.json()["change_request"]["action_key"] == "feature_flag.enable"
    held = await get(api, exp["id"])
    assert held["status"] == "draft" and held["start_date"] is None
    assert held["feature_flag"]["active"] is False
    await approve(api, r.json()["change_request_id"], approver_key)

    async def launched() -> bool:
        now = await get(api, exp["id"])
        return bool(now["status"] == "running" and now["feature_flag"]["active"])

    await eventually(launched)
    assert (await get(api, exp["id"]))["start_date"] == "2026-01-01T00:00:00Z"


async def test_update_feature_flag_params_needs_approval(api: ApiClient, settings: Settings) -> None:
    _, approver_key, _ = await policy(api, settings, "feature_flag.update")
    exp = await create_experiment(api)
    assert (await action(api, exp["id"], "launch")).status_code == 200
    variants = [
        {"key": "control", "rollout_percentage": 30},
        {"key": "test", "rollout_percentage": 70},
    ]
    body = {"parameters": {"feature_flag_variants": variants}, "update_feature_flag_params": True}
    r = await api.patch(api.project(f"experiments/{exp['id']}/"), body)
    assert r.status_code == 409, r.text
    before = [
        v["rollout_percentage"]
        for v in (await get(api, exp["id"]))["feature_flag"]["filters"]["multivariate"]["variants"]
    ]
    assert before == [50, 50]
    await approve(api, r.json()["change_request_id"], approver_key)

    async def applied() -> bool:
        flag = (await get(api, exp["id"]))["feature_flag"]
        return [v["rollout_percentage"] for v in flag["filters"]["multivariate"]["variants"]] == [30, 70]

    await eventually(applied)


async def test_the_flags_api_is_gated_for_any_flag(api: ApiClient, settings: Settings) -> None:
    _, approver_key, _ = await policy(api, settings, "feature_flag.disable")
    flag = {"key": "plain-flag", "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}}
    created = await api.post(api.project("feature_flags/"), flag)
    assert created.status_code == 201, created.text
    flag_id = created.json()["id"]
    r = await api.patch(api.project(f"feature_flags/{flag_id}/"), {"active": False})
    assert r.status_code == 409, r.text
    assert r.json()["resource_id"] == str(flag_id)
    assert (await api.get(api.project(f"feature_flags/{flag_id}/"))).json()["active"] is True
    # A change the policy does not cover goes through.
    renamed = await api.patch(api.project(f"feature_flags/{flag_id}/"), {"name": "Renamed"})
    assert renamed.status_code == 200, renamed.text
    decided = await approve(api, r.json()["change_request_id"], approver_key)
    assert decided["state"] == "applied"
    now = (await api.get(api.project(f"feature_flags/{flag_id}/"))).json()
    assert now["active"] is False and now["name"] == "Renamed"


async def test_pausing_through_the_flags_api_is_gated_like_pause(api: ApiClient, settings: Settings) -> None:
    await policy(api, settings, "feature_flag.disable")
    exp = await create_experiment(api)
    assert (await action(api, exp["id"], "launch")).status_code == 200
    r = await api.patch(api.project(f"feature_flags/{exp['feature_flag']['id']}/"), {"active": False})
    assert r.status_code == 409, r.text
    assert (await get(api, exp["id"]))["status"] == "running"


async def test_a_change_request_applies_only_to_its_own_experiment(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    await policy(api, settings, "feature_flag.disable")
    first = await create_experiment(api)
    second = await create_experiment(api, name="Other", feature_flag_key="other-flag")
    for exp in (first, second):
        assert (await action(api, exp["id"], "launch")).status_code == 200
    r = await action(api, first["id"], "pause")
    assert r.status_code == 409, r.text
    cr_id = r.json()["change_request_id"]
    # An approval system names the request, but signals the wrong experiment's workflow.
    wf = handle(temporal_client, api.project_id, second["id"])
    await wf.signal("approval_granted", ApprovalGranted(change_request_id=cr_id, source="external"))

    async def recorded() -> bool:
        history = await wf.query("history", result_type=list[HistoryEntry])
        return any(h.outcome == "failed" for h in history)

    await eventually(recorded)
    assert (await get(api, second["id"]))["status"] == "running"
    assert (await get(api, first["id"]))["status"] == "running"
    cr = (await api.get(api.project(f"change_requests/{cr_id}/"))).json()
    assert cr["state"] == "pending"


async def test_only_approvers_may_disable_or_delete_an_enabled_policy(
    api: ApiClient, settings: Settings
) -> None:
    policy_id, approver_key, _ = await policy(api, settings, "feature_flag.enable")
    off = await api.patch(api.project(f"approval_policies/{policy_id}/"), {"enabled": False})
    assert off.status_code == 403, off.text
    assert (
        off.json()["detail"]
        == "Only this policy's approvers can change, disable or delete it while it is enabled."
    )
    assert (await api.delete(api.project(f"approval_policies/{policy_id}/"))).status_code == 403
    ok = await api.patch(api.project(f"approval_policies/{policy_id}/"), {"enabled": False}, key=approver_key)
    assert ok.status_code == 200 and ok.json()["enabled"] is False
    # Disabled, it binds nobody: anyone with the scope may remove it.
    assert (await api.delete(api.project(f"approval_policies/{policy_id}/"))).status_code == 204
