"""`GET /flags/definitions` and `GET /api/feature_flag/local_evaluation/`: shape, auth, ETag."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from db.bootstrap import Credentials
from tests.api.test_flags_eval import MV, create_flag, patch_flag, rollout
from tests.support.api_client import ApiClient

PATHS = (
    "/flags/definitions",
    "/flags/definitions/",
    "/api/feature_flag/local_evaluation/",
    "/api/feature_flag/local_evaluation",
)


async def definitions_eventually(
    api: ApiClient, token: str, expected_keys: set[str], key: str | None = None
) -> dict[str, Any]:
    deadline = time.monotonic() + 2.0
    while True:
        r = await api.get(f"/flags/definitions?token={token}&send_cohorts", key=key)
        assert r.status_code == 200, r.text
        found = {flag["key"] for flag in r.json()["flags"]}
        if found == expected_keys or time.monotonic() > deadline:
            assert found == expected_keys
            return dict(r.json())
        await asyncio.sleep(0.05)


async def test_definitions_list_live_flags_of_the_project(api: ApiClient, credentials: Credentials) -> None:
    flag = await create_flag(api, "checkout", MV, name="Checkout")
    paused = await create_flag(api, "paused", rollout(50))
    deleted = await create_flag(api, "deleted", rollout(50))
    await patch_flag(api, paused["id"], active=False)
    await patch_flag(api, deleted["id"], deleted=True)
    other = (await api.post("/api/projects/", {"name": "Other"})).json()
    r = await api.post(
        f"/api/projects/{other['id']}/feature_flags/", {"key": "elsewhere", "filters": rollout(100)}
    )
    assert r.status_code == 201
    token = credentials.project_api_token
    data = await definitions_eventually(api, token, {"checkout", "paused"})
    assert set(data) >= {"flags", "group_type_mapping", "cohorts"}
    assert data["group_type_mapping"] == {} and data["cohorts"] == {}
    by_key = {f["key"]: f for f in data["flags"]}
    assert by_key["paused"]["active"] is False and by_key["paused"]["version"] == 2
    checkout = by_key["checkout"]
    assert checkout["id"] == flag["id"] and checkout["team_id"] == credentials.project_id
    assert checkout["filters"] == MV and checkout["name"] == "Checkout"
    assert checkout["deleted"] is False and checkout["active"] is True
    assert checkout["ensure_experience_continuity"] is False
    await definitions_eventually(api, other["api_token"], {"elsewhere"})


async def test_every_path_etag_and_304(api: ApiClient, credentials: Credentials) -> None:
    await create_flag(api, "a", rollout(100))
    token = credentials.project_api_token
    await definitions_eventually(api, token, {"a"})
    etags = set()
    for path in PATHS:
        r = await api.get(f"{path}?token={token}&send_cohorts")
        assert r.status_code == 200, path
        etags.add(r.headers["etag"])
    assert len(etags) == 1
    etag = etags.pop()
    assert etag.startswith('W/"')
    r = await api.get(f"/flags/definitions?token={token}", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.headers["etag"] == etag and r.content == b""
    await create_flag(api, "b", rollout(100))
    await definitions_eventually(api, token, {"a", "b"})
    r = await api.get(f"/flags/definitions?token={token}", headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag


async def test_group_type_mapping_follows_capture(api: ApiClient, credentials: Credentials) -> None:
    token = credentials.project_api_token
    event = {"event": "e", "distinct_id": "u", "properties": {"$groups": {"company": "c", "team": "t"}}}
    assert (await api.http.post("/batch/", json={"api_key": token, "batch": [event]})).status_code == 200
    r = await api.get(f"/flags/definitions?token={token}")
    assert r.json()["group_type_mapping"] == {"0": "company", "1": "team"}


async def test_auth(api: ApiClient, credentials: Credentials) -> None:
    token = credentials.project_api_token
    r = await api.http.get(f"/flags/definitions?token={token}")
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    r = await api.get(f"/flags/definitions?token={token}", key="phx_not_a_key")
    assert (
        r.status_code == 401
        and r.json()["detail"] == "Personal API key found in request Authorization header is invalid."
    )
    project = (await api.get(api.project(""))).json()
    r = await api.get(f"/flags/definitions?token={token}", key=project["secret_api_token"])
    assert r.status_code == 200, r.text
    r = await api.get("/api/feature_flag/local_evaluation/", key=project["secret_api_token"])
    assert r.status_code == 200, r.text
    r = await api.get(f"/flags/definitions?token={token}", key="phs_wrong")
    assert r.status_code == 401
    narrow = await api.post("/api/personal_api_keys/", {"label": "exp", "scopes": ["experiment:read"]})
    r = await api.get(f"/flags/definitions?token={token}", key=narrow.json()["value"])
    assert r.status_code == 403 and r.json()["detail"] == "API key missing required scope 'feature_flag:read'"
    reader = await api.post("/api/personal_api_keys/", {"label": "ff", "scopes": ["feature_flag:read"]})
    assert (await api.get(f"/flags/definitions?token={token}", key=reader.json()["value"])).status_code == 200
    r = await api.get("/flags/definitions?token=phc_unknown")
    assert r.status_code == 401


async def test_secret_key_of_another_project_is_refused(api: ApiClient, credentials: Credentials) -> None:
    other = (await api.post("/api/projects/", {"name": "Other"})).json()
    r = await api.get(
        f"/flags/definitions?token={credentials.project_api_token}", key=other["secret_api_token"]
    )
    assert r.status_code == 403
