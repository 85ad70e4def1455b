"""eligible_feature_flags, requires_flag_implementation, stats and prompt_templates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db.bootstrap import Credentials
from db.engine import make_async_engine, make_sessionmaker
from db.tables import Action
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment
from tests.support.projects import in_project, other_project, scoped_key

pytestmark = pytest.mark.usefixtures("worker")


def variants(*keys: str) -> dict[str, Any]:
    share = 100 // len(keys)
    split = [share] * len(keys)
    split[-1] += 100 - share * len(keys)
    return {
        "multivariate": {
            "variants": [{"key": k, "rollout_percentage": p} for k, p in zip(keys, split, strict=True)]
        }
    }


async def make_flag(
    api: ApiClient, key: str, filters: dict[str, Any], project: int | None = None, **extra: Any
) -> int:
    path = in_project(api, project, "feature_flags/") if project else api.project("feature_flags/")
    r = await api.post(
        path, {"key": key, "name": f"Flag {key}", "filters": {"groups": []} | filters, **extra}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def eligible(api: ApiClient, query: str = "", **kwargs: Any) -> Any:
    return await api.get(api.project(f"experiments/eligible_feature_flags/{query}"), **kwargs)


async def some_flags(api: ApiClient) -> None:
    """Two eligible flags among ineligible, deleted and other-project ones."""
    await make_flag(api, "eligible-a", variants("control", "test"))
    await make_flag(api, "eligible-b", variants("control", "x", "y"), active=False, evaluation_tags=["web"])
    await make_flag(api, "control-second", variants("test", "control"))
    await make_flag(api, "single", variants("control"))
    await make_flag(api, "boolean", {})
    gone = await make_flag(api, "deleted-one", variants("control", "test"))
    assert (await api.patch(api.project(f"feature_flags/{gone}/"), {"deleted": True})).status_code == 200
    await make_flag(api, "theirs", variants("control", "test"), project=await other_project(api))


async def test_eligible_feature_flags(api: ApiClient) -> None:
    await some_flags(api)
    body = (await eligible(api)).json()
    assert set(body) == {"results", "count"}
    assert body["count"] == 2 and [f["key"] for f in body["results"]] == ["eligible-b", "eligible-a"]
    assert {"id", "key", "filters", "active", "experiment_set", "created_by"} <= set(body["results"][0])
    cases = {
        "?search=-B": ["eligible-b"],
        "?search=flag eligible-a": ["eligible-a"],
        "?active=true": ["eligible-a"],
        "?active=false": ["eligible-b"],
        "?has_evaluation_contexts=yes": ["eligible-b"],
        "?has_evaluation_contexts=false": ["eligible-a"],
        "?evaluation_runtime=all": ["eligible-b", "eligible-a"],
        "?evaluation_runtime=server": [],
        "?order=key": ["eligible-a", "eligible-b"],
        "?order=-name": ["eligible-b", "eligible-a"],
        "?limit=1&offset=1": ["eligible-a"],
        "?limit=500": ["eligible-b", "eligible-a"],
        "?created_by_id=999999": [],
    }
    for query, keys in cases.items():
        assert [f["key"] for f in (await eligible(api, query)).json()["results"]] == keys, query
    assert (await eligible(api, "?limit=1")).json()["count"] == 2
    r = await eligible(api, "?order=bad")
    assert r.status_code == 400
    assert r.json() == {
        "type": "validation_error",
        "code": "invalid_input",
        "detail": "Invalid order field: 'bad'",
        "attr": None,
    }
    for query in ("?limit=abc", "?offset=1.5"):
        r = await eligible(api, query)
        assert r.status_code == 400 and r.json() == {"error": "Invalid limit or offset"}


async def test_eligible_feature_flags_scope(api: ApiClient) -> None:
    experiments_only = await scoped_key(api, "experiment:read", "experiment:write")
    r = await eligible(api, key=experiments_only)
    assert r.status_code == 403 and r.json()["detail"] == "API key missing required scope 'feature_flag:read'"
    assert (await eligible(api, key=await scoped_key(api, "feature_flag:read"))).status_code == 200


async def capture(api: ApiClient, creds: Credentials, name: str, props: dict[str, Any], at: datetime) -> None:
    item = {
        "event": name,
        "distinct_id": "u",
        "properties": props,
        "timestamp": at.isoformat(),
        "uuid": str(uuid.uuid4()),
    }
    r = await api.http.post("/batch/", json={"api_key": creds.project_api_token, "batch": [item]})
    assert r.status_code == 200


async def make_action(settings: Settings, team_id: int, event: str) -> int:
    """No actions API yet: the row is written the way a migration from PostHog would bring it."""
    engine = make_async_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            row = Action(team_id=team_id, name="Bought", steps=[{"event": event}])
            session.add(row)
            await session.commit()
            assert row.id is not None
            return row.id
    finally:
        await engine.dispose()


async def test_requires_flag_implementation(
    api: ApiClient, credentials: Credentials, settings: Settings
) -> None:
    path = api.project("experiments/requires_flag_implementation/")
    now = datetime.now(UTC)

    async def result(query: str) -> Any:
        r = await api.get(path + query)
        assert r.status_code == 200, r.text
        return r.json()

    assert await result("") == {"result": True}
    await capture(api, credentials, "signup", {"plan": "pro"}, now)
    await capture(api, credentials, "old", {"$feature/checkout": "test"}, now - timedelta(days=8))
    await capture(api, credentials, "purchase", {"$feature/checkout": "test"}, now)
    assert await result('?events=[{"id": "signup"}]') == {"result": True}
    assert await result('?events=[{"id": "old"}]') == {"result": True}
    assert await result('?events=[{"id": "signup"}, {"id": "purchase"}]') == {"result": False}
    action_id = await make_action(settings, api.project_id, "purchase")
    assert await result(f'?actions=[{{"id": {action_id}}}]') == {"result": False}
    r = await api.get(path, key=await scoped_key(api, "feature_flag:read"))
    assert r.status_code == 403 and r.json()["detail"] == "API key missing required scope 'experiment:read'"


async def test_stats(api: ApiClient) -> None:
    path = api.project("experiments/stats/")
    empty = {
        "launched_last_30d": 0,
        "launched_previous_30d": 0,
        "percent_change": 0.0,
        "active_experiments": 0,
        "completed_last_30d": 0,
    }
    assert (await api.get(path)).json() == empty
    long_ago = (datetime.now(UTC) - timedelta(days=45)).isoformat()
    recently = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    running = await create_experiment(api, name="A", feature_flag_key="a")
    await action(api, running["id"], "launch")
    for key, body in (("b", {"start_date": long_ago}), ("c", {"start_date": long_ago, "end_date": recently})):
        exp = await create_experiment(api, name=key, feature_flag_key=key)
        r = await api.patch(api.project(f"experiments/{exp['id']}/"), body)
        assert r.status_code == 200, r.text
    archived = await create_experiment(api, name="D", feature_flag_key="d")
    for step in ("launch", "end", "archive"):
        await action(api, archived["id"], step)
    deleted = await create_experiment(api, name="F", feature_flag_key="f")
    await action(api, deleted["id"], "launch")
    await api.patch(api.project(f"experiments/{deleted['id']}/"), {"deleted": True})
    await create_experiment(api, name="Draft", feature_flag_key="draft")
    assert (await api.get(path)).json() == {
        "launched_last_30d": 1,
        "launched_previous_30d": 2,
        "percent_change": -50.0,
        "active_experiments": 2,
        "completed_last_30d": 1,
    }
    other = await other_project(api, timezone="Pacific/Auckland")
    assert (await api.get(in_project(api, other, "experiments/stats/"))).json() == empty
    r = await api.get(path, key=await scoped_key(api, "feature_flag:read"))
    assert r.status_code == 403 and r.json()["detail"] == "API key missing required scope 'experiment:read'"


async def test_prompt_templates(api: ApiClient) -> None:
    r = await api.get(
        api.project("experiments/prompt_templates/"), key=await scoped_key(api, "experiment:read")
    )
    assert r.status_code == 200
    assert r.json() == [
        {"key": "cost", "label": "Cost", "description": "Compares LLM cost per user across prompt versions."},
        {
            "key": "latency",
            "label": "Latency",
            "description": "Compares LLM response time per user across prompt versions.",
        },
        {
            "key": "eval_pass_rate",
            "label": "Eval pass rate",
            "description": "Compares the share of evaluations that pass across prompt versions.",
        },
    ]
