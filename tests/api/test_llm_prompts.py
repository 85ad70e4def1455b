"""LLM prompts (versions) and `create_from_prompt` experiments built on them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.api_client import ApiClient
from tests.support.projects import in_project, other_project, scoped_key

pytestmark = pytest.mark.usefixtures("worker")

PROMPT_KEYS = {
    "id", "name", "prompt", "version", "created_by", "created_at", "updated_at", "deleted", "is_latest",
    "latest_version", "version_count", "first_version_created_at",
}  # fmt: skip


def bad(detail: str, attr: str | None = None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


async def make_prompt(
    api: ApiClient, name: str = "support-bot", versions: int = 1, project: int | None = None
) -> None:
    base = in_project(api, project, "llm_prompts/") if project else api.project("llm_prompts/")
    r = await api.post(base, {"name": name, "prompt": "You are helpful. v1"})
    assert r.status_code == 201, r.text
    for version in range(1, versions):
        r = await api.patch(
            f"{base}name/{name}/", {"prompt": f"You are helpful. v{version + 1}", "base_version": version}
        )
        assert r.status_code == 200, r.text


async def test_prompt_versions(api: ApiClient) -> None:
    r = await api.post(api.project("llm_prompts/"), {"name": "support-bot", "prompt": {"system": "Be kind"}})
    assert r.status_code == 201
    first = r.json()
    assert set(first) == PROMPT_KEYS and first["version"] == 1 and first["is_latest"] is True
    assert first["created_by"]["email"] == "admin@flagship.local" and first["version_count"] == 1
    path = api.project("llm_prompts/name/support-bot/")
    r = await api.patch(path, {"prompt": {"system": "Be kinder"}, "base_version": 1})
    assert r.status_code == 200, r.text
    second = r.json()
    assert (second["version"], second["latest_version"], second["version_count"]) == (2, 2, 2)
    assert second["first_version_created_at"] == first["created_at"]
    r = await api.patch(path, {"prompt": "stale edit", "base_version": 1})
    assert r.status_code == 409
    assert r.json() == {
        "detail": "The prompt changed since you opened it. Reload the latest version and try again.",
        "current_version": 2,
    }
    latest = (await api.get(path)).json()
    assert (
        latest["version"] == 2 and latest["prompt"] == {"system": "Be kinder"} and "created_by" not in latest
    )
    old = (await api.get(path + "?version=1")).json()
    assert old["version"] == 1 and old["is_latest"] is False and old["latest_version"] == 2
    listed = (await api.get(api.project("llm_prompts/"))).json()
    assert listed["count"] == 1 and listed["results"][0]["version"] == 2
    assert (await api.get(api.project(f"llm_prompts/{first['id']}/"))).json()["version"] == 1
    r = await api.patch(api.project("llm_prompts/name/nope/"), {"prompt": "x", "base_version": 1})
    assert r.status_code == 404 and r.json() == {"detail": "Prompt with name 'nope' not found."}
    r = await api.get(api.project("llm_prompts/name/support-bot/?version=9"))
    assert r.status_code == 404 and r.json() == {"detail": "Prompt with name 'support-bot' not found."}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"prompt": "x"}, bad("This field is required.", "name", "required")),
        ({"name": "a b", "prompt": "x"}, bad("Only letters, numbers, hyphens (-) and underscores (_) are allowed.", "name", "invalid_name")),
        ({"name": "New", "prompt": "x"}, bad("'new' is a reserved name and cannot be used.", "name", "reserved_name")),
        ({"name": "ok"}, bad("This field is required.", "prompt", "required")),
        ({"name": "ok", "prompt": None}, bad("This field may not be null.", "prompt", "null")),
        ({"name": "taken", "prompt": "x"}, bad("A prompt with this name already exists.", "name", "unique")),
    ],
)  # fmt: skip
async def test_prompt_validation(api: ApiClient, body: dict[str, Any], expected: dict[str, Any]) -> None:
    await make_prompt(api, "taken")
    r = await api.post(api.project("llm_prompts/"), body)
    assert r.status_code == 400 and r.json() == expected


async def test_prompt_scopes_and_isolation(api: ApiClient) -> None:
    other = await other_project(api)
    await make_prompt(api, "theirs", project=other)
    assert (await api.get(api.project("llm_prompts/"))).json()["count"] == 0
    r = await api.get(api.project("llm_prompts/name/theirs/"))
    assert r.status_code == 404
    r = await api.patch(api.project("llm_prompts/name/theirs/"), {"prompt": "x", "base_version": 1})
    assert r.status_code == 404
    reader = await scoped_key(api, "llm_prompt:read")
    r = await api.post(api.project("llm_prompts/"), {"name": "mine", "prompt": "x"}, key=reader)
    assert r.status_code == 403 and r.json()["detail"] == "API key missing required scope 'llm_prompt:write'"
    r = await api.get(api.project("llm_prompts/"), key=await scoped_key(api, "experiment:read"))
    assert r.status_code == 403 and r.json()["detail"] == "API key missing required scope 'llm_prompt:read'"


async def from_prompt(api: ApiClient, body: dict[str, Any], **kwargs: Any) -> Any:
    return await api.post(api.project("experiments/create_from_prompt/"), body, **kwargs)


async def test_create_from_prompt(api: ApiClient) -> None:
    await make_prompt(api, "support-bot", versions=3)
    r = await from_prompt(
        api, {"prompt_name": "support-bot", "versions": [1, 3], "templates": ["cost", "latency"]}
    )
    assert r.status_code == 201, r.text
    exp = r.json()
    assert exp["name"] == "support-bot: v1, v3 (cost, latency)" and exp["status"] == "draft"
    assert exp["feature_flag_key"] == "support-bot-v1-v3-cost-latency" and exp["description"] == ""
    params = exp["parameters"]
    assert [(v["key"], v["name"], v["rollout_percentage"]) for v in params["feature_flag_variants"]] == [
        ("control", "v1", 50),
        ("test", "v3", 50),
    ]
    assert json.loads(params["feature_flag_payloads"]["test"]) == {
        "prompt_name": "support-bot",
        "prompt_version": 3,
    }
    assert params["prompt_metadata"] == {
        "name": "support-bot",
        "templates": ["cost", "latency"],
        "versions": [1, 3],
    }
    assert exp["feature_flag"]["filters"]["payloads"] == params["feature_flag_payloads"]
    cost, latency = exp["metrics"]
    assert (cost["name"], cost["goal"], cost["metric_type"]) == ("Cost", "decrease", "mean")
    assert (
        cost["source"]["math_property"] == "$ai_total_cost_usd"
        and latency["source"]["math_property"] == "$ai_latency"
    )
    assert cost["source"]["properties"] == [
        {"key": "$ai_prompt_name", "operator": "exact", "type": "event", "value": "support-bot"}
    ]
    assert exp["primary_metrics_ordered_uuids"] == [cost["uuid"], latency["uuid"]]
    listed = (await api.get(api.project("experiments/?prompt_name=support-bot"))).json()
    assert [e["id"] for e in listed["results"]] == [exp["id"]]


async def test_create_from_prompt_keys_names_and_many_versions(api: ApiClient) -> None:
    await make_prompt(api, "support-bot", versions=3)
    first = await from_prompt(
        api, {"prompt_name": "support-bot", "versions": [1, 3], "templates": ["cost", "latency"]}
    )
    assert first.json()["feature_flag_key"] == "support-bot-v1-v3-cost-latency"
    again = await from_prompt(
        api, {"prompt_name": "support-bot", "versions": [1, 3], "templates": ["cost", "latency"]}
    )
    assert again.json()["feature_flag_key"] == "support-bot-v1-v3-cost-latency-2"
    three = await from_prompt(
        api,
        {"prompt_name": "support-bot", "versions": [3, 1, 2], "templates": ["eval_pass_rate"], "name": "Mine", "feature_flag_key": "mine"},
    )  # fmt: skip
    assert (
        three.status_code == 201
        and three.json()["name"] == "Mine"
        and three.json()["feature_flag_key"] == "mine"
    )
    variants = three.json()["parameters"]["feature_flag_variants"]
    assert [(v["key"], v["name"], v["rollout_percentage"]) for v in variants] == [
        ("control", "v3", 33),
        ("test-1", "v1", 33),
        ("test-2", "v2", 34),
    ]
    ratio = three.json()["metrics"][0]
    assert ratio["metric_type"] == "ratio" and ratio["numerator"]["event"] == "$ai_evaluation"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"versions": [1, 2], "templates": ["cost"]}, bad("This field is required.", "prompt_name", "required")),
        ({"prompt_name": "", "versions": [1, 2], "templates": ["cost"]}, bad("This field may not be blank.", "prompt_name", "blank")),
        ({"prompt_name": "p", "templates": ["cost"]}, bad("This field is required.", "versions", "required")),
        ({"prompt_name": "p", "versions": "1,2", "templates": ["cost"]}, bad('Expected a list of items but got type "str".', "versions", "not_a_list")),
        ({"prompt_name": "p", "versions": [1], "templates": ["cost"]}, bad("Ensure this field has at least 2 elements.", "versions", "min_length")),
        ({"prompt_name": "p", "versions": list(range(1, 12)), "templates": ["cost"]}, bad("Ensure this field has no more than 10 elements.", "versions", "max_length")),
        ({"prompt_name": "p", "versions": [1, "x"], "templates": ["cost"]}, bad("A valid integer is required.", "versions__1")),
        ({"prompt_name": "p", "versions": [0, 1], "templates": ["cost"]}, bad("Ensure this value is greater than or equal to 1.", "versions__0", "min_value")),
        ({"prompt_name": "p", "versions": [1, 1], "templates": ["cost"]}, bad("versions must not contain duplicates.", "versions")),
        ({"prompt_name": "p", "versions": [1, 2], "templates": []}, bad("Ensure this field has at least 1 elements.", "templates", "min_length")),
        ({"prompt_name": "p", "versions": [1, 2], "templates": ["speed"]}, bad('"speed" is not a valid choice.', "templates__0", "invalid_choice")),
        ({"prompt_name": "p", "versions": [1, 2], "templates": ["cost", "cost"]}, bad("templates must not contain duplicates.", "templates")),
        ({"prompt_name": "p", "versions": [1, 2, 5], "templates": ["cost"]}, bad("Versions not found for prompt 'p': [5]", "versions")),
        ({"prompt_name": "p", "versions": [1, 2], "templates": ["cost"], "feature_flag_key": "existing"}, bad("Feature flag 'existing' already exists for this team. Pick a different key, or omit this field to auto-generate one.", "feature_flag_key")),
    ],
)  # fmt: skip
async def test_create_from_prompt_validation(
    api: ApiClient, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    await make_prompt(api, "p", versions=2)
    r = await api.post(api.project("feature_flags/"), {"key": "existing", "filters": {"groups": []}})
    assert r.status_code == 201
    r = await from_prompt(api, body)
    assert r.status_code == 400 and r.json() == expected


async def test_create_from_prompt_scopes_and_isolation(api: ApiClient) -> None:
    body = {"prompt_name": "theirs", "versions": [1, 2], "templates": ["cost"]}
    r = await from_prompt(api, body, key=await scoped_key(api, "experiment:write"))
    assert r.status_code == 403 and r.json()["detail"] == "API key missing required scope 'llm_prompt:read'"
    r = await from_prompt(api, body, key=await scoped_key(api, "experiment:read", "llm_prompt:read"))
    assert r.status_code == 403 and r.json()["detail"] == "API key missing required scope 'experiment:write'"
    await make_prompt(api, "theirs", versions=2, project=await other_project(api))
    r = await from_prompt(api, body, key=await scoped_key(api, "experiment:write", "llm_prompt:read"))
    assert r.status_code == 400 and r.json() == bad(
        "Versions not found for prompt 'theirs': [1, 2]", "versions"
    )
