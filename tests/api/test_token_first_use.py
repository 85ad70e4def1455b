"""A project's token works the moment `POST /api/projects/` answers 201, on every SDK route, before
the flag cache's background poll has seen the project (issue 13 item 1). The official SDKs drop
events for good on a 401, and they start sending the instant their project exists."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from sqlmodel import col, func, select
from temporalio.client import Client

from api.app import create_app
from db.bootstrap import Credentials
from db.engine import make_async_engine, make_sessionmaker
from db.tables import Event
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.bootstrap import run_bootstrap
from tests.support.processes import base_env, free_port, process, wait_for

CAPTURE_PATHS = ("/batch/", "/e/", "/capture/", "/i/v0/e/", "/i/v0/ai/batch/", "/track/")


@pytest_asyncio.fixture(loop_scope="session")
async def frozen_api(
    settings: Settings, credentials: Credentials, temporal_client: Client
) -> AsyncIterator[ApiClient]:
    """The app with its flag-cache poller stopped: what the cache knows is what it loaded at start,
    so every token of a project created later is a cache miss, deterministically."""
    app = create_app(settings, temporal_client=temporal_client)
    async with LifespanManager(app) as manager:
        await app.state.flag_cache.stop()
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield ApiClient(http, credentials.personal_api_key, credentials.project_id)


async def new_project(api: ApiClient) -> tuple[int, str]:
    r = await api.post("/api/projects/", {"name": f"fresh {uuid.uuid4().hex[:6]}"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), str(r.json()["api_token"])


def one_event(token: str, name: str) -> dict[str, Any]:
    return {"api_key": token, "batch": [{"event": name, "distinct_id": "u1", "uuid": str(uuid.uuid4())}]}


async def events_of(settings: Settings, project_id: int) -> int:
    engine = make_async_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            count = await session.exec(select(func.count()).where(col(Event.team_id) == project_id))
            return int(count.one())
    finally:
        await engine.dispose()


async def test_capture_accepts_a_new_projects_token_at_once(
    frozen_api: ApiClient, settings: Settings
) -> None:
    project_id, token = await new_project(frozen_api)
    for path in CAPTURE_PATHS:
        r = await frozen_api.http.post(path, json=one_event(token, path))
        assert r.status_code == 200, (path, r.text)
    r = await frozen_api.http.post(
        "/i/v1/analytics/events",
        json={"batch": [{"event": "v1", "distinct_id": "u1", "uuid": str(uuid.uuid4())}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    assert await events_of(settings, project_id) == len(CAPTURE_PATHS) + 1


async def test_flags_and_definitions_accept_a_new_projects_token_at_once(frozen_api: ApiClient) -> None:
    project_id, token = await new_project(frozen_api)
    flag = {"key": "fresh-flag", "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}}
    r = await frozen_api.post(f"/api/projects/{project_id}/feature_flags/", flag)
    assert r.status_code == 201, r.text
    for path in ("/flags/?v=2", "/decide/?v=3"):
        r = await frozen_api.http.post(path, json={"api_key": token, "distinct_id": "u1"})
        assert r.status_code == 200, (path, r.text)
        assert "fresh-flag" in r.text, r.text
    r = await frozen_api.http.post(
        "/flags/?v=2", json={"distinct_id": "u1"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    r = await frozen_api.get(f"/flags/definitions?token={token}")
    assert r.status_code == 200 and [f["key"] for f in r.json()["flags"]] == ["fresh-flag"], r.text


async def test_an_unknown_token_is_still_refused(frozen_api: ApiClient) -> None:
    r = await frozen_api.http.post("/flags/?v=2", json={"api_key": "phc_nosuchtoken", "distinct_id": "u"})
    assert r.status_code == 401 and r.json()["code"] == "authentication_failed", r.text
    r = await frozen_api.http.post("/batch/", json=one_event("phc_nosuchtoken", "x"))
    assert r.status_code == 401 and r.json()["code"] == "invalid_api_key", r.text
    # The negative cache remembers it briefly: asking again is answered the same way.
    r = await frozen_api.http.post("/batch/", json=one_event("phc_nosuchtoken", "x"))
    assert r.status_code == 401, r.text


@pytest.mark.slow
async def test_every_api_process_accepts_a_new_token_at_once(tmp_path: Path, database_url: str) -> None:
    """WEB_CONCURRENCY=2: the project is created through one process, the SDK calls may land on the
    other, which has never seen the token; each call is a new connection, so both take turns."""
    key = "phx_firstusetestkey00000000000000000000000000"
    creds = await run_bootstrap(database_url, key, None)
    assert creds is not None
    port = free_port()
    env = base_env(tmp_path, database_url) | {
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # closed: projects and SDK routes need no Temporal
    }
    log = tmp_path / "api.log"
    base = f"http://127.0.0.1:{port}"
    with process([sys.executable, "-m", "api"], env, log) as proc:
        wait_for(f"{base}/metrics", proc, log)
        for n in range(10):
            r = httpx.post(
                f"{base}/api/projects/", json={"name": f"p{n}"}, headers={"Authorization": f"Bearer {key}"}
            )
            assert r.status_code == 201, r.text
            token = r.json()["api_token"]
            for path in ("/batch/", "/flags/?v=2", "/e/", "/decide/?v=3"):
                body = one_event(token, path) | {"distinct_id": "u1"}
                r = httpx.post(f"{base}{path}", json=body, headers={"Connection": "close"})
                assert r.status_code == 200, (n, path, r.text)
