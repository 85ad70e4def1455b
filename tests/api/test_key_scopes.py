"""Keys cannot escalate: a personal API key creates only keys within its own scopes, scoped_teams and
scoped_organizations; and scoped_organizations is enforced on every project and organization view."""

from __future__ import annotations

import uuid
from typing import Any

from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.projects import in_project, other_project
from tests.support.users import make_user

KEYS = "/api/personal_api_keys/"


def denied(detail: str) -> dict[str, Any]:
    return {"type": "authentication_error", "code": "permission_denied", "detail": detail, "attr": None}


async def new_key(api: ApiClient, body: dict[str, Any], *, key: str | None = None) -> str:
    r = await api.post(KEYS, {"label": "k"} | body, key=key)
    assert r.status_code == 201, r.text
    return str(r.json()["value"])


async def test_a_project_scoped_key_cannot_mint_a_wider_key(api: ApiClient) -> None:
    other = await other_project(api)
    scoped = await new_key(
        api,
        {"scopes": ["personal_api_key:write", "experiment:read"], "scoped_teams": [api.project_id]},
    )
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "API key cannot create a key with scope '*' that it does not have."),  # scopes default to *
        ({"scopes": ["*"]}, "API key cannot create a key with scope '*' that it does not have."),
        ({"scopes": []}, "API key cannot create a key with scope '*' that it does not have."),
        (
            {"scopes": ["experiment:write"], "scoped_teams": [api.project_id]},
            "API key cannot create a key with scope 'experiment:write' that it does not have.",
        ),
        (
            {"scopes": ["experiment:read"]},
            "API key cannot create a key for projects outside its own scoped_teams.",
        ),
        (
            {"scopes": ["experiment:read"], "scoped_teams": [api.project_id, other]},
            "API key cannot create a key for projects outside its own scoped_teams.",
        ),
    ]
    for body, detail in cases:
        r = await api.post(KEYS, {"label": "wider"} | body, key=scoped)
        assert r.status_code == 403, (body, r.text)
        assert r.json() == denied(detail)
    # Within its own: fine, and the result is no wider either.
    narrow = await new_key(api, {"scopes": ["experiment:read"], "scoped_teams": [api.project_id]}, key=scoped)
    assert (await api.get(api.project("experiments/"), key=narrow)).status_code == 200
    r = await api.get(in_project(api, other, "experiments/"), key=narrow)
    assert r.json() == denied(f"API key does not have access to the requested project: ID {other}.")
    # A project-scoped key makes no new projects: they would lie outside its own.
    writer = await new_key(api, {"scopes": ["project:write"], "scoped_teams": [api.project_id]})
    r = await api.post("/api/projects/", {"name": "Sideways"}, key=writer)
    assert r.json() == denied("API keys with scoped projects are only supported on project-based views.")


async def test_scoped_organizations_are_checked_and_enforced(api: ApiClient, settings: Settings) -> None:
    me = (await api.get("/api/users/@me/")).json()
    own_org = me["organization"]["id"]
    elsewhere = str(uuid.uuid4())
    r = await api.post(KEYS, {"label": "x", "scoped_organizations": [elsewhere]})
    assert r.status_code == 400
    assert r.json() == {
        "type": "validation_error",
        "code": "invalid_input",
        "detail": "You must be a member of all organizations that you are scoping the key to.",
        "attr": "scoped_organizations",
    }
    org_key = await new_key(api, {"scoped_organizations": [own_org]})
    assert (await api.get(api.project("experiments/"), key=org_key)).status_code == 200
    assert (await api.get("/api/projects/", key=org_key)).status_code == 200
    r = await api.post(KEYS, {"label": "wider", "scopes": ["*"]}, key=org_key)
    assert r.json() == denied(
        "API key cannot create a key for organizations outside its own scoped_organizations."
    )
    await new_key(api, {"scoped_organizations": [own_org]}, key=org_key)

    # A key scoped to another organization (older data: nothing checked it then) reaches nothing here.
    _, foreign = await make_user(settings, api.project_id, scoped_organizations=[elsewhere])
    org_denied = denied(f"API key does not have access to the requested organization: ID {own_org}.")
    for path in (api.project("experiments/"), api.project("feature_flags/"), "/api/projects/"):
        r = await api.get(path, key=foreign)
        assert r.status_code == 403 and r.json() == org_denied, path
    r = await api.post("/api/projects/", {"name": "Nope"}, key=foreign)
    assert r.json() == org_denied
