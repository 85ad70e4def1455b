"""Holdouts CRUD and the flags of the experiments using them (kept in sync through the workflow)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment
from tests.support.projects import in_project, other_project, scoped_key

pytestmark = pytest.mark.usefixtures("worker")

GROUP = {"properties": [], "rollout_percentage": 10}


def bad(detail: str, attr: str | None = None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


async def make_holdout(api: ApiClient, **overrides: Any) -> dict[str, Any]:
    r = await api.post(
        api.project("experiment_holdouts/"), {"name": "Global holdout", "filters": [GROUP]} | overrides
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_create_rewrites_variants_and_renders(api: ApiClient) -> None:
    holdout = await make_holdout(api, description="10% held back")
    assert set(holdout) == {"id", "name", "description", "filters", "created_by", "created_at", "updated_at"}
    assert holdout["filters"] == [
        {"properties": [], "rollout_percentage": 10, "variant": f"holdout-{holdout['id']}"}
    ]
    assert holdout["created_by"]["email"] == "admin@flagship.local"
    got = await api.get(api.project(f"experiment_holdouts/{holdout['id']}/"))
    assert got.status_code == 200 and got.json() == holdout
    listed = (await api.get(api.project("experiment_holdouts/"))).json()
    assert listed["count"] == 1 and listed["results"] == [holdout]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"filters": [GROUP]}, bad("This field is required.", "name", "required")),
        ({"name": None, "filters": [GROUP]}, bad("This field may not be null.", "name", "null")),
        ({"name": "x" * 401, "filters": [GROUP]}, bad("Ensure this field has no more than 400 characters.", "name", "max_length")),
        ({"name": "h"}, bad("Filters are required to create an holdout group", "filters")),
        ({"name": "h", "filters": []}, bad("Filters are required to create an holdout group", "filters")),
        ({"name": "h", "filters": None}, bad("This field may not be null.", "filters", "null")),
        ({"name": "h", "filters": [{"properties": []}]}, bad("Rollout percentage must be present.", "filters")),
        ({"name": "h", "filters": [{"rollout_percentage": None}]}, bad("Rollout percentage must be present.", "filters")),
        ({"name": "h", "filters": [{"rollout_percentage": 150}]}, bad("Rollout percentage must be between 0 and 100.", "filters")),
        ({"name": "h", "filters": [{"rollout_percentage": -1}]}, bad("Rollout percentage must be between 0 and 100.", "filters")),
    ],
)  # fmt: skip
async def test_create_validation(api: ApiClient, body: dict[str, Any], expected: dict[str, Any]) -> None:
    r = await api.post(api.project("experiment_holdouts/"), body)
    assert r.status_code == 400 and r.json() == expected


async def test_experiment_flag_follows_holdout_changes_and_delete(api: ApiClient) -> None:
    holdout = await make_holdout(api)
    hid = holdout["id"]
    exp = await create_experiment(api, holdout_id=hid)
    assert exp["holdout_id"] == hid and exp["holdout"]["name"] == "Global holdout"
    assert exp["feature_flag"]["filters"]["holdout"] == {"id": hid, "exclusion_percentage": 10}
    running = await create_experiment(api, name="Running", feature_flag_key="running", holdout_id=hid)
    assert (await action(api, running["id"], "launch")).status_code == 200

    r = await api.patch(
        api.project(f"experiment_holdouts/{hid}/"),
        {"filters": [{"properties": [], "rollout_percentage": 25}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["filters"] == [{"properties": [], "rollout_percentage": 25, "variant": f"holdout-{hid}"}]
    for eid in (exp["id"], running["id"]):
        got = (await api.get(api.project(f"experiments/{eid}/"))).json()
        assert got["feature_flag"]["filters"]["holdout"] == {"id": hid, "exclusion_percentage": 25}
        assert got["feature_flag"]["filters"]["multivariate"]["variants"][0]["key"] == "control"
    activity = (await api.get(api.project(f"experiments/{exp['id']}/activity/"))).json()
    assert activity["results"][0]["operation"] == "update" and activity["results"][0]["outcome"] == "accepted"

    r = await api.patch(api.project(f"experiment_holdouts/{hid}/"), {"name": "Renamed"})
    assert r.status_code == 200 and r.json()["name"] == "Renamed"

    r = await api.delete(api.project(f"experiment_holdouts/{hid}/"))
    assert r.status_code == 204 and r.content == b""
    for eid in (exp["id"], running["id"]):
        got = (await api.get(api.project(f"experiments/{eid}/"))).json()
        assert got["holdout_id"] is None and got["holdout"] is None
        assert got["feature_flag"]["filters"]["holdout"] is None
    assert (await api.get(api.project(f"experiment_holdouts/{hid}/"))).status_code == 404


async def test_update_validation_and_put(api: ApiClient) -> None:
    hid = (await make_holdout(api))["id"]
    path = api.project(f"experiment_holdouts/{hid}/")
    r = await api.patch(path, {"filters": [{"rollout_percentage": 101}]})
    assert r.json() == bad("Rollout percentage must be between 0 and 100.", "filters")
    r = await api.http.put(path, json={"filters": [GROUP]}, headers={"Authorization": f"Bearer {api.key}"})
    assert r.status_code == 400 and r.json() == bad("This field is required.", "name", "required")


async def test_scopes(api: ApiClient) -> None:
    hid = (await make_holdout(api))["id"]
    reader = await scoped_key(api, "experiment:read")
    assert (await api.get(api.project("experiment_holdouts/"), key=reader)).status_code == 200
    missing = {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": "API key missing required scope 'experiment:write'",
        "attr": None,
    }
    r = await api.post(api.project("experiment_holdouts/"), {"name": "h", "filters": [GROUP]}, key=reader)
    assert r.status_code == 403 and r.json() == missing
    r = await api.patch(api.project(f"experiment_holdouts/{hid}/"), {"name": "x"}, key=reader)
    assert r.status_code == 403 and r.json() == missing
    r = await api.delete(api.project(f"experiment_holdouts/{hid}/"), key=reader)
    assert r.status_code == 403 and r.json() == missing
    flags_only = await scoped_key(api, "feature_flag:read")
    r = await api.get(api.project("experiment_holdouts/"), key=flags_only)
    assert r.status_code == 403 and r.json()["detail"] == "API key missing required scope 'experiment:read'"


async def test_other_projects_holdouts_are_invisible_and_unusable(api: ApiClient) -> None:
    other = await other_project(api)
    r = await api.post(in_project(api, other, "experiment_holdouts/"), {"name": "Theirs", "filters": [GROUP]})
    assert r.status_code == 201
    theirs = r.json()["id"]
    assert (await api.get(api.project(f"experiment_holdouts/{theirs}/"))).status_code == 404
    assert (await api.patch(api.project(f"experiment_holdouts/{theirs}/"), {"name": "x"})).status_code == 404
    assert (await api.delete(api.project(f"experiment_holdouts/{theirs}/"))).status_code == 404
    assert (await api.get(api.project("experiment_holdouts/"))).json()["count"] == 0
    r = await api.post(
        api.project("experiments/"),
        {"name": "x", "feature_flag_key": "x", "holdout_id": theirs, "allow_unknown_events": True},
    )
    assert r.status_code == 400
    assert r.json() == bad(f'Invalid pk "{theirs}" - object does not exist.', "holdout_id", "does_not_exist")


async def test_patch_holdout_id(api: ApiClient) -> None:
    hid = (await make_holdout(api))["id"]
    exp = await create_experiment(api)
    path = api.project(f"experiments/{exp['id']}/")
    r = await api.patch(path, {"holdout_id": hid})
    assert r.status_code == 200, r.text
    assert r.json()["holdout_id"] == hid
    assert r.json()["feature_flag"]["filters"]["holdout"] == {"id": hid, "exclusion_percentage": 10}
    await action(api, exp["id"], "launch")
    other = (await make_holdout(api, name="Other"))["id"]
    r = await api.patch(path, {"holdout_id": other})
    assert r.status_code == 400 and r.json() == bad("Can't update holdout on running Experiment")
