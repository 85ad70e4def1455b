"""Auth exactly as PostHog, and PostHog's `{type, code, detail, attr}` body on every error."""

from __future__ import annotations

from typing import Any

import pytest

from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.projects import other_project, scoped_key
from tests.support.users import make_other_organization

NOT_AUTHENTICATED = {
    "type": "authentication_error",
    "code": "not_authenticated",
    "detail": "Authentication credentials were not provided.",
    "attr": None,
}
NOT_FOUND = {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


def denied(detail: str) -> dict[str, Any]:
    return {"type": "authentication_error", "code": "permission_denied", "detail": detail, "attr": None}


async def test_no_key_and_bad_keys(api: ApiClient) -> None:
    flags = api.project("feature_flags/")
    r = await api.http.get(flags)
    assert r.status_code == 401 and r.json() == NOT_AUTHENTICATED
    assert "www-authenticate" not in r.headers
    r = await api.get(flags, key="phx_not_a_real_key")
    assert r.status_code == 401
    assert r.json() == {
        "type": "authentication_error",
        "code": "authentication_failed",
        "detail": "Personal API key found in request Authorization header is invalid.",
        "attr": None,
    }
    r = await api.http.get(flags, params={"personal_api_key": "phx_nope"})
    assert r.json()["detail"] == "Personal API key found in request query string is invalid."
    r = await api.http.post(flags, json={"personal_api_key": "phx_nope", "key": "x"})
    assert r.json()["detail"] == "Personal API key found in request body is invalid."
    # The key in the query string and in the body work like the header.
    assert (await api.http.get(flags, params={"personal_api_key": api.key})).status_code == 200


async def test_scopes(api: ApiClient) -> None:
    read_only = await scoped_key(api, "feature_flag:read")
    flags = api.project("feature_flags/")
    assert (await api.get(flags, key=read_only)).status_code == 200
    r = await api.post(flags, {"key": "nope"}, key=read_only)
    assert r.status_code == 403 and r.json() == denied("API key missing required scope 'feature_flag:write'")
    r = await api.get(api.project("experiments/"), key=read_only)
    assert r.json() == denied("API key missing required scope 'experiment:read'")
    writer = await scoped_key(api, "feature_flag:write")
    assert (await api.get(flags, key=writer)).status_code == 200  # write implies read
    current = (await api.get("/api/personal_api_keys/@current", key=writer)).json()
    assert current["scopes"] == ["feature_flag:write"] and "value" not in current
    # The agent toolkit bootstraps with an experiment-scoped key: @me and @current must answer.
    toolkit = await scoped_key(api, "experiment:read", "experiment:write", scoped_teams=[api.project_id])
    assert (await api.get("/api/users/@me/", key=toolkit)).status_code == 200
    assert (await api.get("/api/personal_api_keys/@current", key=toolkit)).json()["scoped_teams"] == [
        api.project_id
    ]


async def test_project_scoping_and_other_organizations(api: ApiClient, settings: Settings) -> None:
    second = await other_project(api)
    only_first = await scoped_key(api, "*", scoped_teams=[api.project_id])
    r = await api.get(f"/api/projects/{second}/feature_flags/", key=only_first)
    assert r.status_code == 403
    assert r.json() == denied(f"API key does not have access to the requested project: ID {second}.")
    their_project, their_key = await make_other_organization(settings)
    r = await api.get(f"/api/projects/{their_project}/feature_flags/")
    assert r.json() == denied("You don't have access to the project.")
    r = await api.get(api.project("feature_flags/"), key=their_key)
    assert r.json() == denied("You don't have access to the project.")
    assert (await api.get("/api/projects/99999/feature_flags/")).json() == NOT_FOUND
    # @current and the environments alias resolve to the caller's project.
    assert (await api.get("/api/projects/@current/feature_flags/")).status_code == 200
    assert (await api.get(f"/api/environments/{api.project_id}/feature_flags")).status_code == 200
    # An object of another project is a 404, not a leak.
    created = await api.post(f"/api/projects/{second}/feature_flags/", {"key": "second-only"})
    assert created.status_code == 201
    assert (await api.get(api.project(f"feature_flags/{created.json()['id']}/"))).json() == NOT_FOUND


@pytest.mark.parametrize(
    "raw_id",
    ["99999", "9" * 18, "9" * 19, "9" * 40, "0001", "\u0661", "-1", "1.0", "1e3", "%20"],
)
async def test_project_ids_in_the_path(api: ApiClient, raw_id: str) -> None:
    """The path's project is read with the key (one query): any spelling answers as before."""
    r = await api.get(f"/api/projects/{raw_id}/feature_flags/")
    if raw_id in ("0001", "\u0661") and api.project_id == 1:
        assert r.status_code == 200  # int() reads both as project 1, as it always did
    else:
        assert r.status_code == 404 and r.json() == NOT_FOUND


async def test_error_bodies(api: ApiClient) -> None:
    r = await api.get("/api/nothing-here/")
    assert r.status_code == 404 and r.json() == NOT_FOUND
    r = await api.http.put("/api/users/@me/", headers={"Authorization": f"Bearer {api.key}"})
    assert r.status_code == 405
    assert r.json() == {
        "type": "invalid_request",
        "code": "method_not_allowed",
        "detail": 'Method "PUT" not allowed.',
        "attr": None,
    }
    r = await api.http.post(
        api.project("feature_flags/"),
        content=b"{not json",
        headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"},
    )
    assert (
        r.status_code == 400 and r.json()["type"] == "invalid_request" and r.json()["code"] == "parse_error"
    )
    r = await api.post(api.project("feature_flags/"), {"key": "k", "filters": "nope"})
    assert r.status_code == 400 and r.json()["attr"] == "filters" and r.json()["type"] == "validation_error"
    r = await api.post(api.project("feature_flags/"), {"name": "no key"})
    assert r.json() == {
        "type": "validation_error",
        "code": "required",
        "detail": "This field is required.",
        "attr": "key",
    }
    r = await api.post("/api/personal_api_keys/", {"label": "x", "scoped_teams": ["a"]})
    assert r.status_code == 400 and r.json()["attr"] == "scoped_teams__0"


async def test_me_keys_and_projects(api: ApiClient) -> None:
    me = (await api.get("/api/users/@me/")).json()
    assert me["team"]["id"] == api.project_id and me["organizations"][0]["id"] == me["organization"]["id"]
    created = await api.post("/api/personal_api_keys/", {"label": "ci", "scopes": ["experiment:read"]})
    assert created.status_code == 201 and created.json()["value"].startswith("phx_")
    listed = (await api.get("/api/personal_api_keys/")).json()
    assert all("value" not in k for k in listed) and {k["label"] for k in listed} >= {"ci", "bootstrap"}
    assert (await api.delete(f"/api/personal_api_keys/{created.json()['id']}/")).status_code == 204
    assert (await api.get(api.project(""), key=created.json()["value"])).status_code == 401
    project = await api.post("/api/projects/", {"name": "Second"})
    assert project.status_code == 201 and project.json()["api_token"].startswith("phc_")
    projects = (await api.get("/api/projects/?limit=1")).json()
    assert projects["count"] == 2 and len(projects["results"]) == 1 and projects["next"]
    bad_scope = await api.post("/api/personal_api_keys/", {"label": "x", "scopes": ["nothing:read"]})
    assert bad_scope.status_code == 400


@pytest.mark.parametrize(
    ("body", "detail", "attr"),
    [
        ({"key": "has space"}, "Only letters, numbers, hyphens (-) & underscores (_) are allowed.", "key"),
        (
            {
                "key": "mv",
                "filters": {
                    "multivariate": {
                        "variants": [
                            {"key": "a", "rollout_percentage": 60},
                            {"key": "b", "rollout_percentage": 60},
                        ]
                    }
                },
            },
            "Invalid variant definitions: Variant rollout percentages must sum to 100.",
            "filters",
        ),
    ],
)
async def test_flag_validation(api: ApiClient, body: dict[str, Any], detail: str, attr: str) -> None:
    r = await api.post(api.project("feature_flags/"), body)
    assert r.status_code == 400 and r.json()["detail"] == detail and r.json()["attr"] == attr


async def test_flag_crud_pagination_and_soft_delete(api: ApiClient) -> None:
    for i in range(3):
        assert (
            await api.post(api.project("feature_flags/"), {"key": f"flag-{i}", "name": f"Flag {i}"})
        ).status_code == 201
    r = await api.post(api.project("feature_flags/"), {"key": "flag-0"})
    assert r.json() == {
        "type": "validation_error",
        "code": "unique",
        "detail": "There is already a feature flag with this key.",
        "attr": "key",
    }
    page = (await api.get(api.project("feature_flags/?limit=2"))).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"] and page["previous"] is None
    assert (await api.get(api.project("feature_flags/?search=flag-1"))).json()["count"] == 1
    flag_id = page["results"][0]["id"]
    assert (await api.delete(api.project(f"feature_flags/{flag_id}/"))).status_code == 405
    assert (await api.patch(api.project(f"feature_flags/{flag_id}/"), {"deleted": True})).status_code == 200
    assert (await api.get(api.project(f"feature_flags/{flag_id}/"))).status_code == 404
    assert (await api.get(api.project("feature_flags/"))).json()["count"] == 2
    # The key of a deleted flag is free again.
    assert (
        await api.post(api.project("feature_flags/"), {"key": page["results"][0]["key"]})
    ).status_code == 201


async def test_openapi_and_docs(api: ApiClient) -> None:
    schema = await api.http.get("/api/schema/")
    assert schema.status_code == 200 and "/api/projects/{project_id}/experiments/" in schema.json()["paths"]
    assert (await api.http.get("/docs")).status_code == 200
