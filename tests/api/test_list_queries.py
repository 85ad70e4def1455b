"""List endpoints load what each row shows in one query per kind, never one per row (issue 13 item
11): listing six rows costs the same number of SQL statements as listing two."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import event
from temporalio.client import Client

from api.app import create_app
from db.bootstrap import Credentials
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.users import make_user

METRIC = {"kind": "ExperimentMetric", "metric_type": "mean", "source": {"kind": "EventsNode", "event": "buy"}}


SEEN: list[str] = []


def _record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
    # Authentication's own statements vary (its key cache, last_used_at): not the list's work.
    if not re.match(r"\s*(SELECT|UPDATE) (personal_api_key|project)\.", sql):
        SEEN.append(sql)


@pytest_asyncio.fixture(loop_scope="session")
async def app(
    settings: Settings, credentials: Credentials, temporal_client: Client
) -> AsyncIterator[FastAPI]:
    app = create_app(settings, temporal_client=temporal_client)
    async with LifespanManager(app):
        await app.state.flag_cache.stop()  # its poll would be counted too
        engine = app.state.engine.sync_engine
        event.listen(engine, "before_cursor_execute", _record)
        try:
            yield app
        finally:
            event.remove(engine, "before_cursor_execute", _record)


@pytest_asyncio.fixture(loop_scope="session")
async def client(app: FastAPI, credentials: Credentials) -> AsyncIterator[ApiClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield ApiClient(http, credentials.personal_api_key, credentials.project_id)


async def statements(app: FastAPI, call: Callable[[], Awaitable[httpx.Response]]) -> int:
    SEEN.clear()
    r = await call()
    assert r.status_code == 200, r.text
    return len(SEEN)


async def make_rows(api: ApiClient, kind: str, n: int, start: int, key: str) -> None:
    for i in range(start, start + n):
        if kind == "feature_flags/":
            body: dict[str, Any] = {"key": f"f{i}", "filters": {"groups": [{"rollout_percentage": 100}]}}
        elif kind == "experiment_holdouts/":
            body = {"name": f"h{i}", "filters": [{"properties": [], "rollout_percentage": 10}]}
        elif kind == "experiment_saved_metrics/":
            body = {"name": f"m{i}", "query": METRIC}
        else:
            body = {"name": f"p{i}", "prompt": {"system": "hi"}}
        r = await api.post(api.project(kind), body, key=key)
        assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "kind", ["feature_flags/", "experiment_holdouts/", "experiment_saved_metrics/", "llm_prompts/"]
)
async def test_a_page_costs_the_same_whatever_its_length(
    app: FastAPI, client: ApiClient, settings: Settings, kind: str
) -> None:
    # Rows by two different creators, so each row has a creator to look up.
    _, other_key = await make_user(settings, client.project_id)
    await make_rows(client, kind, 1, 0, client.key)
    await make_rows(client, kind, 1, 1, other_key)
    two = await statements(app, lambda: client.get(client.project(kind)))
    await make_rows(client, kind, 2, 2, client.key)
    await make_rows(client, kind, 2, 4, other_key)
    six = await statements(app, lambda: client.get(client.project(kind)))
    assert six == two, (kind, two, six)


async def test_change_requests_page_costs_the_same_whatever_its_length(
    app: FastAPI, client: ApiClient, settings: Settings
) -> None:
    approver, _ = await make_user(settings, client.project_id)
    policy = {"action_key": "feature_flag.disable", "approver_config": {"quorum": 1, "users": [approver]}}
    assert (await client.post(client.project("approval_policies/"), policy)).status_code == 201
    await make_rows(client, "feature_flags/", 6, 0, client.key)
    flags = (await client.get(client.project("feature_flags/"))).json()["results"]

    async def held_back(flag: dict[str, Any]) -> None:
        r = await client.patch(client.project(f"feature_flags/{flag['id']}/"), {"active": False})
        assert r.status_code == 409, r.text

    for flag in flags[:2]:
        await held_back(flag)
    two = await statements(app, lambda: client.get(client.project("change_requests/")))
    for flag in flags[2:]:
        await held_back(flag)
    six = await statements(app, lambda: client.get(client.project("change_requests/")))
    assert six == two, (two, six)
