"""Create, retrieve, list, PATCH, soft delete and restore, with PostHog's shapes and messages."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment, handle

pytestmark = pytest.mark.usefixtures("worker")

REPRESENTATION_KEYS = {
    "id", "name", "description", "start_date", "end_date", "feature_flag_key", "feature_flag", "holdout",
    "holdout_id", "exposure_cohort", "parameters", "secondary_metrics", "saved_metrics", "saved_metrics_ids",
    "filters", "archived", "deleted", "created_by", "created_at", "updated_at", "type", "exposure_criteria",
    "metrics", "metrics_secondary", "stats_config", "scheduling_config", "conclusion", "conclusion_comment",
    "primary_metrics_ordered_uuids", "secondary_metrics_ordered_uuids", "only_count_matured_users", "status",
    "user_access_level", "scheduled_actions",
}  # fmt: skip

METRIC = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase", "math": "total"},
}


def bad(detail: str, attr: str | None = None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


async def test_create_defaults_and_representation(api: ApiClient) -> None:
    exp = await create_experiment(api, metrics=[METRIC])
    assert set(exp) == REPRESENTATION_KEYS
    assert exp["description"] == ""
    assert exp["stats_config"] == {"method": "bayesian"}
    assert exp["exposure_criteria"] == {"filterTestAccounts": True}
    assert exp["parameters"] is None and exp["saved_metrics_ids"] is None
    assert exp["type"] == "product"
    flag = exp["feature_flag"]
    assert flag["name"] == "Feature Flag for Experiment Checkout test"
    assert flag["filters"]["groups"] == [{"properties": [], "rollout_percentage": 100}]
    metric = exp["metrics"][0]
    assert metric["uuid"] and len(metric["fingerprint"]) == 64
    assert exp["primary_metrics_ordered_uuids"] == [metric["uuid"]]
    assert exp["secondary_metrics_ordered_uuids"] is None
    assert exp["created_by"]["email"] == "admin@flagship.local"
    got = await api.get(api.project(f"experiments/{exp['id']}"))
    assert got.status_code == 200 and got.json() == exp


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"feature_flag_key": "k"}, bad("This field is required.", "name", "required")),
        ({"name": "x"}, bad("This field is required.", "feature_flag_key", "required")),
        ({"name": None, "feature_flag_key": "k"}, bad("This field may not be null.", "name", "null")),
        (
            {"name": "x", "feature_flag_key": "bad key!"},
            bad("Only letters, numbers, hyphens (-) & underscores (_) are allowed.", "key", "invalid_key"),
        ),
        (
            {"name": "x", "feature_flag_key": "k", "type": "mobile"},
            bad('"mobile" is not a valid choice.', "type", "invalid_choice"),
        ),
        (
            {
                "name": "x",
                "feature_flag_key": "k",
                "parameters": {
                    "feature_flag_variants": [
                        {"key": "a", "rollout_percentage": 50},
                        {"key": "b", "rollout_percentage": 50},
                    ]
                },
            },
            bad(
                "Feature flag variants must contain a variant with key 'control' (lowercase, exactly). Got keys: ['a', 'b']. Rename the baseline variant's 'key' to 'control'.",
                "parameters",
            ),
        ),
        (
            {
                "name": "x",
                "feature_flag_key": "k",
                "parameters": {
                    "feature_flag_variants": [
                        {"key": "control", "rollout_percentage": 50},
                        {"key": "test", "rollout_percentage": 40},
                    ]
                },
            },
            bad("Invalid variant definitions: Variant rollout percentages must sum to 100.", "filters"),
        ),
        (
            {"name": "x", "feature_flag_key": "k", "stats_config": {"method": "magic"}},
            bad("Invalid stats method: 'magic'. Must be one of: bayesian, frequentist"),
        ),
        ({"name": "x", "feature_flag_key": "k", "metrics": "nope"}, bad("Metrics must be a list", "metrics")),
        (
            {
                "name": "x",
                "feature_flag_key": "k",
                "start_date": "2024-02-01T00:00:00Z",
                "end_date": "2024-01-01T00:00:00Z",
            },
            bad("End date must be after start date"),
        ),
        (
            {"name": "x", "feature_flag_key": "k", "holdout_id": 999},
            bad('Invalid pk "999" - object does not exist.', "holdout_id", "does_not_exist"),
        ),
    ],
)
async def test_create_validation_messages(
    api: ApiClient, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    r = await api.post(api.project("experiments/"), body)
    assert r.status_code == 400, r.text
    assert r.json() == expected


async def test_unknown_events_are_refused_unless_allowed(api: ApiClient) -> None:
    body = {"name": "x", "feature_flag_key": "k", "metrics": [METRIC]}
    r = await api.post(api.project("experiments/"), body)
    assert r.status_code == 400
    assert r.json()["detail"].startswith("Event(s) 'purchase' not found.")
    assert (
        await api.post(api.project("experiments/"), body | {"allow_unknown_events": True})
    ).status_code == 201


async def test_existing_flag_is_reused_untouched(api: ApiClient) -> None:
    flag = {
        "key": "shared",
        "filters": {
            "groups": [{"properties": [], "rollout_percentage": 30}],
            "multivariate": {
                "variants": [
                    {"key": "control", "rollout_percentage": 50},
                    {"key": "test", "rollout_percentage": 50},
                ]
            },
        },
        "active": False,
    }
    created = await api.post(api.project("feature_flags/"), flag)
    assert created.status_code == 201, created.text
    a = await create_experiment(api, feature_flag_key="shared", start_date="2024-01-01T00:00:00Z")
    b = await create_experiment(api, name="second", feature_flag_key="shared")
    assert a["feature_flag"]["id"] == b["feature_flag"]["id"] == created.json()["id"]
    assert a["feature_flag"]["active"] is False  # upstream never modifies a reused flag
    assert a["status"] == "paused"  # running with an inactive flag


async def test_patch_rules(api: ApiClient) -> None:
    exp = await create_experiment(api)
    url = api.project(f"experiments/{exp['id']}/")
    r = await api.patch(url, {"name": "Renamed", "description": "why"})
    assert r.status_code == 200 and r.json()["name"] == "Renamed"
    assert (await api.patch(url, {"type": "web"})).json() == bad("Can't update keys: type on Experiment")
    assert (await api.patch(url, {"feature_flag_key": "other"})).json() == bad(
        "Can't update keys: get_feature_flag_key on Experiment"
    )
    assert (await api.patch(url, {"feature_flag_key": "checkout-test"})).status_code == 200
    assert (await api.patch(url, {"filters": {"properties": [{"key": "x"}]}})).json() == bad(
        "Experiments do not support global filter properties"
    )
    # A draft PATCH of parameters without variants resets the flag to the 50/50 default.
    r = await api.patch(url, {"parameters": {"rollout_percentage": 40}})
    assert r.json()["feature_flag"]["filters"]["groups"][0]["rollout_percentage"] == 40
    # Launch by PATCH (the agent toolkit's way) activates the flag.
    r = await api.patch(url, {"start_date": "2026-01-01T00:00:00.000Z"})
    assert r.json()["status"] == "running" and r.json()["feature_flag"]["active"] is True
    three = [{"key": k, "rollout_percentage": p} for k, p in (("control", 34), ("a", 33), ("b", 33))]
    assert (await api.patch(url, {"parameters": {"feature_flag_variants": three}})).json() == bad(
        "Can't update feature_flag_variants on Experiment"
    )
    # Running, without update_feature_flag_params: stored in parameters, flag untouched.
    two = [{"key": "control", "rollout_percentage": 10}, {"key": "test", "rollout_percentage": 90}]
    r = await api.patch(url, {"parameters": {"feature_flag_variants": two}})
    assert r.status_code == 200
    assert r.json()["parameters"]["feature_flag_variants"][0]["split_percent"] == 10
    assert r.json()["feature_flag"]["filters"]["multivariate"]["variants"][0]["rollout_percentage"] == 50
    # Conclude by PATCH, then restart by PATCH (agent toolkit lifecycle).
    r = await api.patch(url, {"end_date": "2026-02-01T00:00:00Z", "conclusion": "won"})
    assert r.json()["status"] == "stopped" and r.json()["conclusion"] == "won"
    r = await api.patch(url, {"end_date": None, "conclusion": None})
    assert r.json()["status"] == "running"


async def test_soft_delete_completes_workflow_and_restore_starts_a_new_run(
    api: ApiClient, temporal_client: Client
) -> None:
    exp = await create_experiment(api)
    url = api.project(f"experiments/{exp['id']}/")
    assert (await api.delete(url)).status_code == 405
    r = await api.patch(url, {"deleted": True})
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert (await api.get(url)).status_code == 404
    listed = (await api.get(api.project("experiments/"))).json()
    assert listed["count"] == 0
    wf = handle(temporal_client, api.project_id, exp["id"])
    result = await wf.result()
    assert result is not None
    assert (await wf.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert (await action(api, exp["id"], "launch")).status_code == 404
    r = await api.patch(url, {"deleted": False})
    assert r.status_code == 200 and r.json()["deleted"] is False
    assert (await wf.describe()).status == WorkflowExecutionStatus.RUNNING
    assert (await action(api, exp["id"], "launch")).status_code == 200


async def test_list_filters_and_order(api: ApiClient) -> None:
    draft = await create_experiment(api, name="Alpha", feature_flag_key="f1")
    running = await create_experiment(api, name="beta", feature_flag_key="f2")
    paused = await create_experiment(api, name="Gamma", feature_flag_key="f3")
    for eid, steps in ((running["id"], ["launch"]), (paused["id"], ["launch", "pause"])):
        for step in steps:
            assert (await action(api, eid, step)).status_code == 200

    async def ids(query: str) -> list[int]:
        r = await api.get(api.project(f"experiments/?{query}"))
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()["results"]]

    assert await ids("status=draft") == [draft["id"]]
    assert await ids("status=running") == [running["id"]]
    assert await ids("status=PAUSED") == [paused["id"]]
    assert await ids("status=all&order=name") == [draft["id"], running["id"], paused["id"]]
    assert await ids("search=amm") == [paused["id"]]
    assert await ids("order=-status") == [paused["id"], running["id"], draft["id"]]
    r = await api.get(api.project("experiments/?order=bogus"))
    assert r.json() == bad("Invalid order field: 'bogus'")
    r = await api.get(api.project("experiments/?feature_flag_id=x"))
    assert r.json() == bad("feature_flag_id must be an integer")
    page = (await api.get(api.project("experiments/?limit=1&offset=1"))).json()
    assert page["count"] == 3 and len(page["results"]) == 1 and page["next"] and page["previous"]


async def test_flag_edit_rewrites_linked_experiment_parameters(api: ApiClient) -> None:
    exp = await create_experiment(api)
    three = [{"key": k, "rollout_percentage": p} for k, p in (("control", 34), ("a", 33), ("b", 33))]
    filters = exp["feature_flag"]["filters"] | {"multivariate": {"variants": three}}
    r = await api.patch(api.project(f"feature_flags/{exp['feature_flag']['id']}/"), {"filters": filters})
    assert r.status_code == 200, r.text
    got = (await api.get(api.project(f"experiments/{exp['id']}/"))).json()
    assert [v["key"] for v in got["parameters"]["feature_flag_variants"]] == ["control", "a", "b"]
    audit = (await api.get(api.project(f"experiments/{exp['id']}/activity/"))).json()["results"]
    assert audit[0]["operation"] == "update" and audit[0]["outcome"] == "accepted"


BIG = 10**20  # more than either database stores in an integer column


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"parameters": {"ensure_experience_continuity": "x"}}, bad("Must be a valid boolean.", "ensure_experience_continuity")),
        ({"saved_metrics_ids": [{"id": "abc"}]}, bad("Saved metric does not exist or does not belong to this project", "saved_metrics_ids")),
        ({"saved_metrics_ids": [{"id": BIG}]}, bad("Saved metric does not exist or does not belong to this project", "saved_metrics_ids")),
        ({"holdout_id": "abc"}, bad("Incorrect type. Expected pk value, received str.", "holdout_id", "incorrect_type")),
        ({"holdout_id": BIG}, bad(f'Invalid pk "{BIG}" - object does not exist.', "holdout_id", "does_not_exist")),
    ],
)  # fmt: skip
async def test_create_rejects_values_no_row_can_hold(
    api: ApiClient, overrides: dict[str, Any], expected: dict[str, Any]
) -> None:
    body = {"name": "n", "feature_flag_key": "values-no-row-can-hold"} | overrides
    r = await api.post(api.project("experiments/"), body)
    assert (r.status_code, r.json()) == (400, expected)


async def test_experience_continuity_takes_drf_booleans(api: ApiClient) -> None:
    exp = await create_experiment(api, parameters={"ensure_experience_continuity": "true"})
    assert exp["feature_flag"]["ensure_experience_continuity"] is True


async def test_ids_no_row_can_have_are_not_found(api: ApiClient) -> None:
    not_found = {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}
    for path in ("experiments/abc/", f"experiments/{BIG}/"):
        r = await api.get(api.project(path))
        assert (r.status_code, r.json()) == (404, not_found), path
    for query in (f"feature_flag_id={BIG}", f"created_by_id={BIG}"):
        r = await api.get(api.project(f"experiments/?{query}"))
        assert r.status_code < 500, (query, r.text)


async def test_put_needs_the_required_fields_and_an_empty_patch_is_a_no_op(api: ApiClient) -> None:
    exp = await create_experiment(api)
    url = api.project(f"experiments/{exp['id']}/")
    r = await api.http.put(url, json={}, headers=api._headers(None, None))
    assert (r.status_code, r.json()) == (400, bad("This field is required.", "name", "required"))
    r = await api.http.put(url, json={"name": "only"}, headers=api._headers(None, None))
    assert (r.status_code, r.json()) == (400, bad("This field is required.", "feature_flag_key", "required"))
    r = await api.http.put(
        url,
        json={"name": "full", "feature_flag_key": exp["feature_flag_key"]},
        headers=api._headers(None, None),
    )
    assert r.status_code == 200 and r.json()["name"] == "full", r.text
    r = await api.http.patch(url, headers=api._headers(None, None))  # no body at all
    assert r.status_code == 200 and r.json()["name"] == "full", r.text
    r = await api.http.post(api.project("experiments/"), headers=api._headers(None, None))
    assert (r.status_code, r.json()) == (400, bad("This field is required.", "name", "required"))


async def test_fields_coerce_like_drf(api: ApiClient) -> None:
    """CharFields take numbers and trim; BooleanFields take "true" and 1; null and NUL are errors."""
    exp = await create_experiment(api, name=123, description="  padded  ", feature_flag_key="coerced-fields")
    assert (exp["name"], exp["description"]) == ("123", "padded")
    url = api.project(f"experiments/{exp['id']}/")
    r = await api.patch(url, {"archived": "true"})
    assert r.status_code == 200 and r.json()["archived"] is True, r.text
    r = await api.patch(url, {"archived": 0})
    assert r.status_code == 200 and r.json()["archived"] is False, r.text
    r = await api.patch(url, {"archived": None})
    assert (r.status_code, r.json()) == (400, bad("This field may not be null.", "archived", "null"))
    r = await api.patch(url, {"archived": "maybe"})
    assert (r.status_code, r.json()) == (400, bad("Must be a valid boolean.", "archived"))
    r = await api.patch(url, {"name": "a\u0000b"})
    assert (r.status_code, r.json()) == (
        400,
        bad("Null characters are not allowed.", "name", "null_characters_not_allowed"),
    )
    r = await api.patch(url, {"name": True})
    assert (r.status_code, r.json()) == (400, bad("Not a valid string.", "name"))
