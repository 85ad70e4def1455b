"""Second projects and scoped keys, for scope checks and cross-project isolation."""

from __future__ import annotations

from tests.support.api_client import ApiClient


async def scoped_key(api: ApiClient, *scopes: str, scoped_teams: list[int] | None = None) -> str:
    """A new personal API key of the bootstrap user with only these scopes."""
    body: dict[str, object] = {"label": "scoped", "scopes": list(scopes)}
    if scoped_teams is not None:
        body["scoped_teams"] = scoped_teams
    r = await api.post("/api/personal_api_keys/", body)
    assert r.status_code == 201, r.text
    return str(r.json()["value"])


async def other_project(api: ApiClient, name: str = "Other project", **extra: object) -> int:
    """A second project in the same organization (the bootstrap user can use it)."""
    r = await api.post("/api/projects/", {"name": name, **extra})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def in_project(api: ApiClient, project_id: int, path: str) -> str:
    return f"/api/projects/{project_id}/{path.lstrip('/')}"
